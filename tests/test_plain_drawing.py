"""Output without colour drawn without rich (gradcalc.doc.plain) is what rich prints, byte for
byte, at every width; where it cannot be (a table to wrap or split), rich draws it.

The reference is rich itself: the same parts converted to rich renderables and printed on the
plain console `gradcalc derive` uses (gradcalc.cli.options.console, capture mode).
"""

from __future__ import annotations

from pathlib import Path

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


def _grid(edge: bool) -> Table:
    grid = Table(edge=edge)
    grid.add_column("x", min_width=4)
    grid.add_column("value", justify="right")
    grid.add_column("", justify="center")
    grid.add_column("note", overflow="fold")
    grid.add_row("1", "0.123456789", "✓", "")
    grid.add_row("δ²₁", "-2", "≈", "a note", style="bold")
    return grid


def _marked() -> Table:
    grid = Table(markup=True)
    grid.add_column("[b]x[/b]")
    grid.add_column("y", justify="right")
    grid.add_row("[bold]1[/bold]", "2  ")
    return grid


def _spaced() -> Table:
    grid = Table(markup=True)
    grid.add_column("x", justify="right")
    grid.add_column("y", justify="center")
    grid.add_row("1  ", " 2  ")
    return grid


PIECES = {
    "markup": [_marked()],
    "trailing spaces": [_spaced()],
    "edged table": [_grid(edge=True)],
    "bare table": [_grid(edge=False)],
    "words": [Text("each answer judged to the decimals it is written with,  at least 3  ")],
    "lines": [Text("\ntitle", style="bold"), Text(""), Text("a\n\nb ± c   ")],
    "group": [Group(Text("head").append(" tail", style="dim"), _grid(edge=True))],
}


@pytest.mark.parametrize("name", list(PIECES))
def test_plain_draws_as_rich_or_leaves_it_to_rich(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = PIECES[name]
    drawn = 0
    for width in range(4, 90):
        mine = plain(parts, width)
        if mine is not None:
            drawn += 1
            assert mine == _rich(parts, width, monkeypatch), f"{name} at {width} columns"
    assert drawn >= 10 or name == "markup"


def test_plain_leaves_to_rich_what_only_rich_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    assert plain([_grid(edge=True)], 80) is not None
    # 35 columns wide: at 33 its note wraps as fit.py's Fit lays it out; at 28 rich splits it.
    wrapped = plain([_grid(edge=True)], 33)
    assert wrapped is not None and "│ a     │" in wrapped
    assert wrapped == _rich([_grid(edge=True)], 33, monkeypatch)
    assert plain([_grid(edge=True)], 28) is None
    assert plain([_grid(edge=False)], 28) is None
    assert plain([Text("a word longer than the width")], 5) is None  # rich folds it
    two_lines = Table()
    two_lines.add_column("x")
    two_lines.add_row("a\nb")
    assert plain([two_lines], 80) == _rich([two_lines], 80, monkeypatch)
    assert plain([_marked()], 80) is None  # rich reads the markup


def test_plain_cells_are_text_not_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    grid = Table()
    grid.add_column("partial")
    grid.add_column("[bold]", justify="right")
    grid.add_row("[v > 0]", Text("1", style="bold"))
    parts = [Group(Text("\n[red]title", style="bold"), grid)]
    drawn = plain(parts, 80)
    assert drawn is not None and "[v > 0]" in drawn and "[red]title" in drawn
    assert drawn == _rich(parts, 80, monkeypatch)


CHECKS = [
    ["configs/worked-example.yaml", "configs/answers/worked-example.yaml"],
    ["configs/worked-example.yaml", "configs/answers/worked-example-slip.yaml"],
    ["configs/worked-example.yaml", "configs/answers/worked-example.yaml", "--decimals", "3"],
]


@pytest.mark.parametrize("args", CHECKS, ids=lambda a: " ".join(a[1:]))
@pytest.mark.parametrize("width", [30, 45, 60, 80, 120])
def test_check_drawn_plain_is_what_rich_prints(
    args: list[str], width: int, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gradcalc.check import views

    root = Path(__file__).resolve().parent.parent
    argv = ["check", *(str(root / a) if a.endswith(".yaml") else a for a in args)]
    env = {"COLUMNS": str(width)}
    plain_texts: list[str | None] = []
    original = views.render_plain
    with monkeypatch.context() as m:
        m.setattr(
            views,
            "render_plain",
            lambda r, w: plain_texts.append(original(r, w)) or plain_texts[-1],
        )
        drawn = run_cli(argv, env=env)
    if width >= 80 and "slip" not in args[1]:  # these fit: drawn without rich
        assert plain_texts and plain_texts[0] is not None
    with monkeypatch.context() as m:
        m.setattr(views, "render_plain", lambda report, width: None)
        by_rich = run_cli(argv, env=env)
    assert drawn.exit_code == by_rich.exit_code
    assert drawn.stdout == by_rich.stdout


@pytest.mark.parametrize("kind", [[], ["activations"], ["losses"], ["layers"], ["optimizers"]])
@pytest.mark.parametrize("width", [30, 50, 80, 100, 160, 300])
def test_list_drawn_plain_is_what_rich_prints(
    kind: list[str], width: int, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gradcalc.doc.plain as module

    env = {"COLUMNS": str(width)}
    texts: list[str | None] = []
    original = module.plain
    with monkeypatch.context() as m:
        m.setattr(module, "plain", lambda parts, w: texts.append(original(parts, w)) or texts[-1])
        drawn = run_cli(["list", *kind], env=env)
    if width >= 80:  # wrapped in its columns, as fit.py lays them out
        assert texts and texts[0] is not None
    with monkeypatch.context() as m:
        m.setattr(module, "plain", lambda parts, w: None)
        by_rich = run_cli(["list", *kind], env=env)
    assert drawn.exit_code == by_rich.exit_code == 0
    assert drawn.stdout == by_rich.stdout
