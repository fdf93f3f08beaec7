"""Output without colour drawn without rich (gradcalc.doc.plain) is what rich prints, byte for
byte, at every width; where it cannot be (a table to wrap or split), rich draws it.

The reference is rich itself: the same parts converted to rich renderables and printed on the
plain console `gradcalc derive` uses (gradcalc.cli.options.console, capture mode).
"""

from __future__ import annotations

import pytest

import gradcalc
from gradcalc.cli.options import console
from gradcalc.derivation import table
from gradcalc.doc.plain import Group, Table, Text, plain
from gradcalc.functions.activations import ACTIVATIONS
from gradcalc.functions.losses import LOSSES

WIDTHS = (20, 30, 40, 60, 80, 100, 120, 200, 1000)


def _rich(parts: list, width: int, monkeypatch: pytest.MonkeyPatch) -> str:
    from rich.console import Group as RichGroup

    monkeypatch.setenv("COLUMNS", str(width))
    con = console("never", for_file=True)
    con.begin_capture()
    con.print(RichGroup(*(p.to_rich() for p in parts)))
    return con.end_capture()


def _cases() -> list[tuple[str, dict]]:
    cases: list[tuple[str, dict]] = []
    for a in ACTIVATIONS:
        if a.elementwise:
            cases.append((a.name, {"at": 0.3}))
            cases.append((a.name, {"at": [0.3, -1.0, 0.0]}))
        else:
            cases.append((a.name, {"at": [0.3, -1.0, 2.0]}))
    for loss in LOSSES:
        y = [1.0, -1.0, 1.0] if loss.name == "hinge" else [0.0, 1.0, 0.0]
        cases.append((loss.name, {"at": [0.2, 0.7, 0.1], "target": y}))
    return cases


@pytest.mark.parametrize(("name", "kwargs"), _cases(), ids=lambda c: str(c))
def test_derive_drawn_plain_is_what_rich_prints(
    name: str, kwargs: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = gradcalc.derive(name, **kwargs)
    parts = table.parts(trace)
    drawn = 0
    for width in WIDTHS:
        mine = plain(parts, width)
        if mine is not None:
            drawn += 1
            assert mine == _rich(parts, width, monkeypatch), f"{name} at {width} columns"
    assert drawn, f"{name}: not drawn without rich even at {WIDTHS[-1]} columns"


def test_plain_leaves_to_rich_what_it_cannot_draw_as_rich_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wide = Table()
    wide.add_column("x")
    wide.add_column("value", justify="right")
    wide.add_row("1", "0.123456789")
    assert plain([wide], 15) == _rich([wide], 15, monkeypatch)  # 1 + " │ " + 11 columns
    assert plain([wide], 14) is None  # rich would wrap or split the table
    assert plain([Text("a few words")], 10) is None  # rich would wrap the line
    assert plain([Text("")], 80) is None
    two_lines = Table()
    two_lines.add_column("x")
    two_lines.add_row("a\nb")
    assert plain([two_lines], 80) is None
    centred = Table()
    centred.add_column("x", justify="center")
    assert plain([Group(Text("title"), centred)], 80) is None


def test_plain_cells_are_text_not_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    grid = Table()
    grid.add_column("partial")
    grid.add_column("[bold]", justify="right")
    grid.add_row("[v > 0]", Text("1", style="bold"))
    parts = [Group(Text("\n[red]title", style="bold"), grid)]
    drawn = plain(parts, 80)
    assert drawn is not None and "[v > 0]" in drawn and "[red]title" in drawn
    assert drawn == _rich(parts, 80, monkeypatch)
