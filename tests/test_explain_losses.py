"""Every loss of the registry in the worked solution: its cost written with the numbers of y and a
(`--explain`, `--format markdown`, `--format latex`), and every fused (loss, activation) pair's
δ^L written from z with its numbers, not as a bare value.

The losses and the fused pairs are read from `gradcalc.functions.losses.LOSSES`, so a loss or a
pair added there is written here without a line of this file changing (its record owns the
written forms; tests/test_written_forms.py checks every record has them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gradcalc.cli import cli
from gradcalc.doc.notation import Notation
from gradcalc.functions.losses import LOSSES

# loss -> (its YAML, the output activation, the target): a valid setup for each loss of a 2-2
# network. A loss not listed gets the default, which suits any loss without constraints.
DEFAULT = ("{name}", "sigmoid", [0.9, 0.1])
SETUPS: dict[str, tuple[str, str, list[float]]] = {
    "quadratic": DEFAULT,
    "mse": DEFAULT,
    "l1": ("l1", "identity", [0.9, -0.3]),
    # δ = 0.3 puts unit 1 (r = 0.71) on the linear branch and unit 2 (r = −0.22) on the quadratic.
    "huber": ("{name: huber, delta: 0.3}", "identity", [1.2, -0.1]),
    "cross_entropy": ("cross_entropy", "softmax", [0.7, 0.3]),
    "binary_cross_entropy": ("binary_cross_entropy", "sigmoid", [1.0, 0.25]),
    "hinge": ("hinge", "tanh", [1.0, -1.0]),
    "cosine": ("cosine", "identity", [1.0, 0.5]),
}

LOSS_NAMES = [loss.name for loss in LOSSES]
FUSED_PAIRS = [(loss.name, activation) for loss in LOSSES for activation in loss.fused]


# What the equations say, not how they wrap: one equation a line (tests/test_terminal_width.py
# checks the wrapping).
WIDE = "1000"


def config(loss: str, activation: str, target: list[float]) -> str:
    return (
        "input: [0.5, -0.4]\n"
        f"target: {target}\n"
        f"loss: {loss}\n"
        "learning_rate: 0.5\n"
        "layers:\n"
        "  - weights: [[0.3, -0.6], [0.8, 0.2]]\n"
        "    biases: [0.1, -0.2]\n"
        f"    activation: {activation}\n"
    )


def setup(name: str) -> tuple[str, list[float]]:
    """The config text for the loss `name`, and its target."""
    loss, activation, target = SETUPS.get(name, DEFAULT)
    return config(loss.replace("{name}", name), activation, target), target


def gradcalc(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env={"NO_COLOR": "1", "COLUMNS": WIDE})
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.stdout


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "net.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def first_step(path: str, *extra: str) -> tuple[list[float], float, dict[str, Any]]:
    """The output a and the cost of step 1 as `--format json` reports them (one example), and
    its output layer."""
    step = json.loads(gradcalc("step", path, "--format", "json", *extra))["steps"][0]
    layer = step["layers"][-1]
    return layer["a"], step["loss"], layer


# -- reading the cost line back ------------------------------------------------------------------
def text_cost_line(text: str) -> str:
    """The first step's cost equation in `--explain` output (one example: `C = …`)."""
    match = re.search(r"\nCost\n  (C = [^\n]*)\n", text)
    assert match, text
    return match.group(1)


def tex_cost_line(text: str, heading: str, begin: str, end: str) -> str:
    """The first step's cost equation in Markdown or LaTeX, its rows joined into one line."""
    start = text.index(heading)
    body = text[text.index(begin, start) + len(begin) : text.index(end, start)]
    rows = [r.strip() for r in body.strip("\n").split(" \\\\\n")]
    assert rows[0].startswith("C &= "), rows
    line = rows[0].replace("&", "", 1)
    for row in rows[1:]:
        assert row.startswith("&"), rows  # one equation: every further row continues it
        line += " " + row.removeprefix("&").removeprefix(r"\quad").strip()
    return line


def assert_substituted(
    line: str, nt: Notation, y: list[float], a: list[float], cost: float
) -> None:
    for value in y:
        assert nt.num(value, True) in line, (value, line)
    for value in a:
        assert nt.num(value) in line, (value, line)
    assert line.endswith("= " + nt.num(cost)), (cost, line)
    assert line.count(" = ") >= 2, line  # C = … = value, not C = value


# -- the cost of every loss ----------------------------------------------------------------------
@pytest.mark.parametrize("extra", [[], ["--round", "3"]], ids=["exact", "round3"])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_explain_writes_every_cost_with_its_numbers(
    tmp_path: Path, name: str, extra: list[str]
) -> None:
    text, y = setup(name)
    path = write(tmp_path, text)
    a, cost, _ = first_step(path, *extra)
    nt = Notation("text", 3 if extra else None)
    line = text_cost_line(gradcalc("step", path, "--explain", "--no-color", *extra))
    assert_substituted(line, nt, y, a, cost)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_max_terms_cuts_the_cost(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, setup(name)[0])
    a, cost, _ = first_step(path)
    nt = Notation("text")
    line = text_cost_line(gradcalc("step", path, "--explain", "--no-color", "--max-terms", "1"))
    assert "… + (1 more term)" in line, line
    assert nt.num(a[0]) in line, line
    assert line.endswith("= " + nt.num(cost)), line


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_markdown_writes_every_cost_with_its_numbers(tmp_path: Path, name: str) -> None:
    text, y = setup(name)
    path = write(tmp_path, text)
    a, cost, _ = first_step(path)
    md = gradcalc("step", path, "--format", "markdown")
    line = tex_cost_line(md, "### Cost", "\\begin{aligned}\n", "\n\\end{aligned}")
    assert_substituted(line, Notation("markdown"), y, a, cost)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_latex_writes_every_cost_with_its_numbers_and_compiles(
    tmp_path: Path, name: str, pdflatex: Callable[[Path], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text, y = setup(name)
    # The config's name is printed in the document: a short relative one keeps the line-width
    # check about the equations, not about how deep the temporary directory is.
    monkeypatch.chdir(tmp_path)
    path = Path(write(tmp_path, text)).name
    a, cost, _ = first_step(path)
    tex = gradcalc("step", path, "--format", "latex")
    line = tex_cost_line(tex, "\\subsection*{Cost}", "\\begin{align*}\n", "\n\\end{align*}")
    assert_substituted(line, Notation("latex"), y, a, cost)
    (tmp_path / "solution.tex").write_text(tex, encoding="ascii")
    log = pdflatex(tmp_path / "solution.tex")
    assert "Overfull \\hbox" not in log  # nothing runs off the page


# The forms, as a student checks them by hand (the numbers of the SETUPS above).
WRITTEN = {
    "huber": "C = (1/2)[0.3(|1.2 − 0.490| − 0.3/2) + ½(−0.1 − 0.120)²] = 0.0961",
    "hinge": "C = max(0, 1 − 1×0.454) + max(0, 1 − (−1)×0.119) = 1.67",
    "binary_cross_entropy": "C = −Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)] = "
    "−([1 ln 0.620 + (1 − 1) ln(1 − 0.620)] + [0.25 ln 0.530 + (1 − 0.25) ln(1 − 0.530)]) = 1.20",
    "cosine": "C = 1 − (y·a)/(‖y‖ ‖a‖) = 1 − (1×0.490 + 0.5×0.120)/(1.12×0.504) "
    "= 1 − 0.550/(1.12×0.504) = 0.0249",
}


@pytest.mark.parametrize("name", sorted(WRITTEN))
def test_the_written_forms(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, setup(name)[0])
    assert text_cost_line(gradcalc("step", path, "--explain", "--no-color")) == WRITTEN[name]


def test_a_batch_writes_example_1_with_its_numbers(tmp_path: Path) -> None:
    text = config("{name: huber, delta: 0.3}", "identity", [[1.2, -0.1], [0.4, 0.2]])
    text = text.replace("input: [0.5, -0.4]", "inputs: [[0.5, -0.4], [0.1, 0.2]]")
    text = text.replace("target:", "targets:")
    path = write(tmp_path, text)
    out = gradcalc("step", path, "--explain", "--no-color")
    assert "  C₁ = (1/2)[0.3(|1.2 − 0.490| − 0.3/2) + ½(−0.1 − 0.120)²] = 0.0961\n" in out


# -- the fused losses' δ^L -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pair", "target"),
    [(pair, [1.0, 0.0]) for pair in FUSED_PAIRS] + [(("cross_entropy", "softmax"), [1.0, 1.0])],
    ids=[f"{loss}-{act}" for loss, act in FUSED_PAIRS] + ["cross_entropy-softmax-sum2"],
)
def test_every_fused_pair_writes_its_output_error(
    tmp_path: Path, pair: tuple[str, str], target: list[float]
) -> None:
    loss, activation = pair
    path = write(tmp_path, config(loss, activation, target))
    layer = first_step(path)[2]
    out = gradcalc("step", path, "--explain", "--no-color")
    assert f"computed from z² through {activation}" in out
    nt = Notation("text")
    for j in range(2):
        match = re.search(rf"\n  (δ²{'₁₂'[j]} = [^\n]*)\n", out)
        assert match, out
        line = match.group(1)
        # δ = symbols = numbers = value, not δ = value
        assert line.count(" = ") == 3, line
        assert nt.num(layer["a"][j]) in line, line
        assert line.endswith("= " + nt.num(layer["delta"][j])), line
