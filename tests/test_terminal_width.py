"""Step tables in terminals of every width: no index and no number is ever cut (issue 10 §5).

A table too wide for the terminal is printed in pieces that repeat its key columns (x, l, j, k);
the numbers are read back from `--format json` and must all be there, whole.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from rich.cells import cell_len
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


# ---- derive, check and list at every width (issue 16 §8) ---------------------------------------

SLIP = "configs/answers/worked-example-slip.yaml"
FITTED = {
    "derive sigmoid": ["derive", "sigmoid", "--at", "0.3"],
    "derive softmax": ["derive", "softmax", "--at", "1,2,3"],
    "derive huber": ["derive", "huber", "--at", "0.5,-2", "--target", "1,-1"],
    "derive formula": ["derive", "log(1 + exp(x))*tanh(x)", "--at", "0.7,-1.5"],
    "check": ["check", "--example", "worked-example", SLIP],
    "list": ["list"],
}
ALL_WIDTHS = [30, 34, 40, 50, 60, 80, 100, 120, 160, 200]
BOX = "│┃┏┓┗┛┡┩╇┳┴┬┼├┤└┘┌┐─━═╌"


def tokens(text: str) -> list[str]:
    """The words and numbers of a drawing, box-drawing characters taken out."""
    return text.translate({ord(c): " " for c in BOX}).split()


@pytest.mark.parametrize("name", list(FITTED))
def test_derive_check_and_list_keep_every_number_and_name_whole(run_cli, name: str) -> None:
    args = [*FITTED[name], "--no-color"]
    runs = {w: run_cli(args, env={"COLUMNS": str(w)}) for w in ALL_WIDTHS}
    for result in runs.values():
        assert result.exit_code in (0, 1), result.output  # check: a wrong cell is status 1
    wide = Counter(tokens(runs[1000 if 1000 in runs else 200].stdout))
    numbers = {t for t in wide if re.fullmatch(r"[\[(]?-?\d[\d.e+-]*[\]),:]?", t)}
    names = {t for t in wide if "_" in t and t.strip("()").replace("_", "").isalpha()}
    assert numbers and (names or name.startswith("derive"))
    for width, result in runs.items():
        text = result.stdout
        assert "…" not in text, width  # rich's mark of a cut cell
        for line in text.splitlines():
            assert cell_len(line) <= width, (width, line)
        found = Counter(tokens(text))
        # No number is broken at any width; a name (missing_activation_derivative,
        # binary_cross_entropy) stays whole wherever a table has room for it beside its key.
        assert not {n for n in numbers if not found[n]}, width
        if width >= 60:
            assert not {n for n in names if not found[n]}, (width, names - set(found))


@pytest.mark.parametrize("width", [30, 40, 50, 60, 80])
def test_check_keeps_its_note_column(run_cli, width: int) -> None:
    """The note column is never cropped: too narrow for a name, the name folds, whole."""
    result = run_cli(
        ["check", "--example", "worked-example", SLIP, "--no-color"], env={"COLUMNS": str(width)}
    )
    table = result.stdout.split("Score")[0]
    notes = "".join(
        line.rstrip(" │").rsplit("│", 1)[1].strip()
        for line in table.splitlines()
        if line.startswith("│") and line.rstrip().endswith("│")
    )
    assert "missing_activation_derivative" in notes
    carried = table.count("↳")
    assert carried >= 4  # δ² and everything after the slip
    assert notes.replace(" ", "").count("fromyouranswers:") == carried  # each one's note
    if width >= 60:
        assert "missing_activation_derivative" in tokens(table)


@pytest.mark.parametrize("width", [30, 40, 60])
def test_step_section_titles_wrap_under_their_equations(run_cli, width: int) -> None:
    text = table_output(run_cli, "worked-example", width)
    lines = text.splitlines()
    wrapped = 0
    for title in ("Forward pass", "Weights", "Biases"):
        i = next(n for n, line in enumerate(lines) if line.startswith(title))
        assert cell_len(lines[i]) <= width
        j = i + 1
        while not lines[j].startswith("┏"):  # a continuation starts under the equations
            assert lines[j].startswith(" " * min(len(title) + 2, width // 2)), lines[i : j + 1]
            assert cell_len(lines[j]) <= width
            j += 1
        wrapped += j - i - 1
    assert wrapped or width >= 60
