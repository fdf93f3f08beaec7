"""step's tables drawn without rich (gradcalc.step.table.plain) are what rich prints, byte for
byte, at every width; where they cannot be (a table to split to fit), rich draws them.

The reference is rich itself: the same parts as rich renderables, printed on the plain console
`gradcalc step` uses for a file (gradcalc.cli.options.console, capture mode).
"""

from __future__ import annotations

import io

import pytest

import gradcalc
from gradcalc.cli.options import console
from gradcalc.step import table
from gradcalc.step.config import NetworkSpec
from gradcalc.step.examples import available
from gradcalc.step.trace import RunTrace
from gradcalc.step.writers import SummaryLines, TableWriter

WIDTHS = (24, 30, 40, 50, 60, 70, 80, 90, 100, 120, 200)
DENSE = [name for name, path in available().items() if isinstance(gradcalc.load(path), NetworkSpec)]
RUNS = {
    "3 steps": {"steps": 3},
    "rounded": {"steps": 2, "round_to": 3},
    "25 steps, gaps": {"steps": 25},
    "no step": {"steps": 0},
}


def _rich(draw, width: int, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", str(width))
    con = console("never", for_file=True)
    con.begin_capture()
    draw(con)
    return con.end_capture()


def _trace(name: str, run: str) -> RunTrace:
    return gradcalc.run(gradcalc.load(available()[name]), **RUNS[run])


@pytest.mark.parametrize("run", list(RUNS))
@pytest.mark.parametrize("name", DENSE)
def test_step_tables_drawn_plain_are_what_rich_prints(
    name: str, run: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = _trace(name, run)
    drawn = []
    for width in WIDTHS:
        mine = table.render_plain(trace, width, max_rows=12, exact=trace.exact, digits=5)
        if mine is not None:
            drawn.append(width)
            rich = _rich(
                lambda con: table.render(trace, con, 12, exact=trace.exact, digits=5),
                width,
                monkeypatch,
            )
            assert mine == rich, f"{name}, {run}, at {width} columns"
    # Every bundled dense example is drawn without rich on a terminal of 100 columns or more.
    assert {100, 120, 200} <= set(drawn), drawn


@pytest.mark.parametrize("name", DENSE)
def test_the_writers_views_draw_plain_as_rich_does(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The views `gradcalc step` prints: the streamed table's and --show summary's."""
    trace = _trace(name, "25 steps, gaps")
    shown = {1, 2, 25}
    tables = TableWriter(lambda s: s in shown, 40, digits=4)
    summary = SummaryLines(io.StringIO().write, digits=4)
    for writer in (tables, summary):
        writer.start(trace)
        for st in trace.steps:
            writer.step(st)
        view = writer.finish(trace)
        for width in (60, 80, 120):
            mine = view.plain(width)
            if mine is not None:
                assert mine == _rich(view, width, monkeypatch), f"{name} at {width} columns"
        assert view.plain(120) is not None


@pytest.mark.parametrize("args", [[], ["--steps", "30", "--round", "3"], ["--show", "summary"]])
def test_step_prints_without_rich_what_rich_prints(
    args: list[str], run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Piped at 80 columns (as the start-up benchmark runs it), step draws without rich's
    console and prints what rich does."""
    command = ["step", "--example", "worked-example", *args]
    env = {"COLUMNS": "80", "FORCE_COLOR": None, "TTY_COMPATIBLE": None, "NO_COLOR": None}
    with monkeypatch.context() as patched:
        patched.setattr("gradcalc.cli.options._drawn_plain", lambda *a: None)
        by_rich = run_cli(command, env=env)
    monkeypatch.setattr("gradcalc.cli.options.console", _no_console)
    plain = run_cli(command, env=env)
    assert plain.exit_code == by_rich.exit_code == 0, plain.output
    assert "Summary" in plain.stdout and plain.stdout.count("┏") >= 1
    assert plain.stdout == by_rich.stdout


def _no_console(*args, **kwargs):
    raise AssertionError("rich's console was used")


def test_a_table_too_wide_is_left_to_rich_which_splits_it(monkeypatch) -> None:
    trace = _trace("worked-example", "3 steps")
    assert table.render_plain(trace, 30) is None
    drawn = _rich(lambda con: table.render(trace, con), 30, monkeypatch)
    assert max(len(line) for line in drawn.splitlines()) <= 30


def test_a_combining_symbol_in_a_cell_is_drawn_as_rich_draws_it(monkeypatch) -> None:
    """Adam's m̂ and v̂ (a letter and a combining hat) in the Update table."""
    trace = _trace("adam-worked-example", "3 steps")
    mine = table.render_plain(trace, 100)
    assert mine is not None and "m̂" in mine
    assert mine == _rich(lambda con: table.render(trace, con), 100, monkeypatch)


def test_a_line_that_fits_is_what_wrap_leaves_it() -> None:
    """gradcalc.doc.plain's fast path for a cell that fits gives what wrapping it word by word
    gives: random lines of words, spaces, wide and combining characters, at every width."""
    import random

    from rich.cells import cell_len

    from gradcalc.doc.plain import _fits, _wrap

    pieces = ["a", "bc", "δ²₁", "0.552", " ", "  ", "\t", "m̂", "✓", "全", "\u00a0", "-"]
    rng = random.Random(16)
    checked = 0
    for _ in range(3000):
        line = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 9)))
        for width in range(1, 14):
            if _fits(line, width, cell_len):
                checked += 1
                assert _wrap(line, width, cell_len) == [line], (line, width)
    assert checked > 1000


@pytest.mark.parametrize("example", ["adam-worked-example", "momentum-tanh-mse"])
def test_every_row_of_a_table_is_as_wide_as_its_border(run_cli, example) -> None:
    """Adam's m̂ and v̂ (a letter and a combining mark: one column) were padded by their two
    characters, and their rows came out a column short of the table's border."""
    from rich.cells import cell_len

    out = run_cli(["step", "--example", example]).stdout
    blocks: list[list[str]] = [[]]
    for line in out.splitlines():
        if line and line[0] in "┏┃┡│└":
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    tables = [b for b in blocks if b]
    assert tables
    assert any("m̂" in line for b in tables for line in b) or example != "adam-worked-example"
    for block in tables:
        assert len({cell_len(line) for line in block}) == 1, block
