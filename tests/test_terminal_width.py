"""Step tables in terminals of every width: no index and no number is ever cut (issue 10 §5).

A table too wide for the terminal is printed in pieces that repeat its key columns (x, l, j, k);
the numbers are read back from `--format json` and must all be there, whole.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from rich.console import Console
from rich.table import Table

from gradcalc.doc.fit import Fit

EXAMPLES = ["worked-example", "softmax-classifier", "prelu"]
WIDTHS = [80, 76, 70, 60, 50, 40, 30]


def table_output(run_cli, example: str, width: int, *extra: str) -> str:
    result = run_cli(
        ["step", "--example", example, "--no-color", *extra], env={"COLUMNS": str(width)}
    )
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("example", EXAMPLES)
def test_no_index_or_number_is_cut(run_cli, example: str, width: int) -> None:
    for extra in ([], ["--round", "3"]):
        text = table_output(run_cli, example, width, *extra)
        rows = [line for line in text.splitlines() if line.startswith("│")]
        assert rows
        for line in text.splitlines():
            assert len(line) <= width, line
        for row in rows:
            assert "…" not in row, row  # rich's mark of a cut cell
            cells = [c.strip() for c in row.strip("│").split("│")]
            # a key column (l, j, k, x) is never empty: every piece of a split table repeats it
            if cells[0] == "" and any(re.fullmatch(r"-?[\d.e+-]+", c) for c in cells):
                pytest.fail(f"an empty key cell next to numbers: {row}")
        doc = json.loads(run_cli(["step", "--example", example, "--format", "json", *extra]).stdout)
        digits = 6
        for layer in doc["steps"][0]["layers"]:
            for row in layer["weights"]:
                for value in row:
                    written = "0" if value == 0 else f"{value:.{digits}g}"
                    assert written in text, (value, width)


@pytest.mark.parametrize("width", [40, 60])
def test_more_rows_caption_wraps_without_trailing_spaces(run_cli, width: int) -> None:
    text = table_output(run_cli, "softmax-classifier", width, "--max-rows", "3")
    caption = [i for i, line in enumerate(text.splitlines()) if "more rows" in line]
    assert caption
    lines = text.splitlines()
    for i in caption:
        for line in lines[i : i + 2]:
            assert line == line.rstrip(), repr(line)


def test_fit_splits_repeating_keys_and_folds_when_even_one_column_is_too_wide() -> None:
    table = Table()
    for name in ("l", "j", "value one", "value two", "value three"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_row("2", "1", "0.123456789", "-12345.6789", "3.14159265")
    for width, pieces in ((80, 1), (40, 2), (30, 3)):
        console = Console(width=width, record=True, color_system=None)
        console.print(Fit(table, keys=2))
        out = console.export_text()
        assert out.count("┏") == pieces, out
        for number in ("0.123456789", "-12345.6789", "3.14159265"):
            assert number in out
        assert out.count("│ 2 │ 1 │") == pieces  # the keys in every piece
    console = Console(width=14, record=True, color_system=None)
    console.print(Fit(table, keys=2))
    out = console.export_text()
    assert "…" not in out  # folded onto the next lines, not cut
    assert "│ 2 │ 1 │ 0. │" in out and "│   │   │ 12 │" in out


@pytest.mark.parametrize("width", [100, 80, 60, 40])
@pytest.mark.parametrize("example", EXAMPLES)
def test_explain_wraps_at_words_and_terms_within_the_width(
    run_cli, example: str, width: int
) -> None:
    wide = table_output(run_cli, example, 1000, "--explain", "--round", "3")
    text = table_output(run_cli, example, width, "--explain", "--round", "3")

    # Only line breaks were added (and a split table repeats its labels): every word and number
    # of the wide text is still there whole.
    def words(t: str) -> Counter[str]:
        return Counter(w for w in t.split() if set(w) - set("─═"))

    assert not words(wide) - words(text)
    for line in text.splitlines():
        # A line runs over only when it is one unbreakable word after its indent.
        assert len(line) <= width or " " not in line.strip(), line
        assert line == line.rstrip(), repr(line)
    assert max(len(line) for line in wide.splitlines()) > width  # there was something to wrap


def test_explain_continues_an_equation_under_its_first_relation(run_cli) -> None:
    text = table_output(run_cli, "worked-example", 80, "--explain")
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("  z²₂ = "))
    assert len(lines[i]) <= 80
    # the continuation starts further in than the equation, under its right-hand side
    assert lines[i + 1].startswith(" " * len("  z²₂ ")) and lines[i + 1].strip()
