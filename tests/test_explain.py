"""Worked solutions: `gradcalc step --explain`, `--format markdown|latex`, `--round` and `--output`.

The golden files in tests/golden/ are the real command's output for the worked example. After an
intended change of that output, regenerate them and review the diff:

    python tests/regen_golden.py

The LaTeX compile test runs only where pdflatex is installed (it is skipped otherwise).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from gradcalc.cli import cli
from gradcalc.doc.notation import Notation, latex_escape, tex_rows
from gradcalc.doc.numbers import Style
from gradcalc.functions.training import hand_round

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKED = "configs/worked-example.yaml"

_spec = importlib.util.spec_from_file_location("regen_golden", HERE / "regen_golden.py")
assert _spec is not None and _spec.loader is not None
regen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regen)


# What the equations say, not how they wrap: one equation a line (tests/test_terminal_width.py
# checks the wrapping).
WIDE = "1000"


def gradcalc(*args: str, cwd: Path = ROOT) -> Result:
    """Run the real command from `cwd` (the repository root, like a user in a checkout)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        return CliRunner().invoke(cli, list(args), env={"NO_COLOR": "1", "COLUMNS": WIDE})


def ok(*args: str, cwd: Path = ROOT) -> str:
    result = gradcalc(*args, cwd=cwd)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.stdout


def step_json(*args: str) -> dict[str, Any]:
    return json.loads(ok("step", WORKED, "--format", "json", *args))


def section(text: str, title: str) -> str:
    """The lines of `text` from the heading `title` to the next top-level heading."""
    start = text.index("\n" + title + "\n")
    rest = text[start + len(title) + 2 :]
    end = re.search(r"\n\n\S[^\n]*\n[─═]+\n", rest)
    return rest[: end.start() + 1] if end else rest


# The first pass of the sheet, line by line as --explain writes it (exact arithmetic).
FIRST_PASS = [
    "z²₁ = w²₁₁a¹₁ + w²₁₂a¹₂ + w²₁₃a¹₃ + b²₁ = 0.2×0.8 + 0.3×0.7 + 0.4×0.1 + (−0.2) = 0.210",
    "a²₁ = σ(z²₁) = σ(0.210) = 0.552",
    "z²₂ = w²₂₁a¹₁ + w²₂₂a¹₂ + w²₂₃a¹₃ + b²₂ = −0.2×0.8 + 0.1×0.7 + 0.5×0.1 + (−0.2) = −0.240",
    "a²₂ = σ(z²₂) = σ(−0.240) = 0.440",
    "z³₁ = w³₁₁a²₁ + w³₁₂a²₂ + b³₁ = −0.3×0.552 + 0.1×0.440 + (−0.2) = −0.322",
    "a³₁ = σ(z³₁) = σ(−0.322) = 0.420",
    "C = ½ Σ_j (y_j − a_j)² = ½(0.9 − 0.420)² = 0.115",
    "δ³₁ = (a³₁ − y₁) σ'(z³₁) = (0.420 − 0.9) × 0.244 = −0.117",
    "δ²₁ = (w³₁₁δ³₁) σ'(z²₁) = (−0.3×(−0.117)) × 0.247 = 0.00867",
    "δ²₂ = (w³₁₂δ³₁) σ'(z²₂) = (0.1×(−0.117)) × 0.246 = −0.00288",
    "∂C/∂b³₁ = δ³₁ = −0.117",
    "∂C/∂w³₁₁ = a²₁ δ³₁ = 0.552 × (−0.117) = −0.0646",
    "∂C/∂w³₁₂ = a²₂ δ³₁ = 0.440 × (−0.117) = −0.0515",
    "∂C/∂b²₁ = δ²₁ = 0.00867",
    "∂C/∂b²₂ = δ²₂ = −0.00288",
    "∂C/∂w²₁₁ = a¹₁ δ²₁ = 0.8 × 0.00867 = 0.00694",
    "∂C/∂w²₁₂ = a¹₂ δ²₁ = 0.7 × 0.00867 = 0.00607",
    "∂C/∂w²₁₃ = a¹₃ δ²₁ = 0.1 × 0.00867 = 0.000867",
    "∂C/∂w²₂₁ = a¹₁ δ²₂ = 0.8 × (−0.00288) = −0.00230",
    "∂C/∂w²₂₂ = a¹₂ δ²₂ = 0.7 × (−0.00288) = −0.00202",
    "∂C/∂w²₂₃ = a¹₃ δ²₂ = 0.1 × (−0.00288) = −0.000288",
    "w³₁₁ → w³₁₁ − η ∂C/∂w³₁₁ = −0.3 − 1 × (−0.0646) = −0.235",
    "w³₁₂ → w³₁₂ − η ∂C/∂w³₁₂ = 0.1 − 1 × (−0.0515) = 0.151",
    "b³₁ → b³₁ − η ∂C/∂b³₁ = −0.2 − 1 × (−0.117) = −0.0831",
    "w²₁₁ → w²₁₁ − η ∂C/∂w²₁₁ = 0.2 − 1 × 0.00694 = 0.193",
    "w²₁₂ → w²₁₂ − η ∂C/∂w²₁₂ = 0.3 − 1 × 0.00607 = 0.294",
    "w²₁₃ → w²₁₃ − η ∂C/∂w²₁₃ = 0.4 − 1 × 0.000867 = 0.399",
    "w²₂₁ → w²₂₁ − η ∂C/∂w²₂₁ = −0.2 − 1 × (−0.00230) = −0.198",
    "w²₂₂ → w²₂₂ − η ∂C/∂w²₂₂ = 0.1 − 1 × (−0.00202) = 0.102",
    "w²₂₃ → w²₂₃ − η ∂C/∂w²₂₃ = 0.5 − 1 × (−0.000288) = 0.500",
    "b²₁ → b²₁ − η ∂C/∂b²₁ = −0.2 − 1 × 0.00867 = −0.209",
    "b²₂ → b²₂ − η ∂C/∂b²₂ = −0.2 − 1 × (−0.00288) = −0.197",
]

SECOND_PASS = [
    "z²₁ = w²₁₁a¹₁ + w²₁₂a¹₂ + w²₁₃a¹₃ + b²₁ = 0.193×0.8 + 0.294×0.7 + 0.399×0.1 + (−0.209)"
    " = 0.191",
    "a²₁ = σ(z²₁) = σ(0.191) = 0.548",
    "z²₂ = w²₂₁a¹₁ + w²₂₂a¹₂ + w²₂₃a¹₃ + b²₂ = −0.198×0.8 + 0.102×0.7 + 0.500×0.1 + (−0.197)"
    " = −0.234",
    "a²₂ = σ(z²₂) = σ(−0.234) = 0.442",
    "z³₁ = w³₁₁a²₁ + w³₁₂a²₂ + b³₁ = −0.235×0.548 + 0.151×0.442 + (−0.0831) = −0.145",
    "a³₁ = σ(z³₁) = σ(−0.145) = 0.464",
    "C = ½ Σ_j (y_j − a_j)² = ½(0.9 − 0.464)² = 0.0951",
]

# The sheet's three-decimal hand calculation (Q3) and its second forward pass.
SHEET_ROUND3 = {
    "z2": [0.210, -0.240],
    "a2": [0.552, 0.440],
    "z3": [-0.322],
    "a3": [0.420],
    "delta3": [-0.117],
    "grad_w3": [[-0.065, -0.051]],
    "delta2": [0.009, -0.003],
    "b2": [-0.209, -0.197],
    "w3": [[-0.235, 0.151]],
    "b3": [-0.083],
}
SHEET_SECOND_PASS = {
    "z2": [0.1907, -0.2336],
    "a2": [0.5475, 0.4419],
    "z3": [-0.1449],
    "a3": [0.4638],
}
SHEET_TOLERANCE = 0.0005 + 1e-9


# -- golden files --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(regen.CASES))
def test_golden(name: str) -> None:
    expected = (HERE / "golden" / name).read_text(encoding="utf-8")
    assert regen.produce(regen.CASES[name]) == expected, (
        f"{name} differs from the command's output; if the change is intended, run "
        "`python tests/regen_golden.py` and review the diff"
    )


# -- the sheet, exact ----------------------------------------------------------------------------
def test_explain_writes_the_sheets_first_pass() -> None:
    text = ok("step", WORKED, "--explain", "--no-color")
    step = section(text, "The SGD step")
    for line in FIRST_PASS:
        assert "  " + line + "\n" in step, line


def test_explain_writes_the_second_pass_with_the_updated_parameters() -> None:
    text = ok("step", WORKED, "--explain", "--no-color")
    second = section(text, "Forward pass with the updated parameters")
    for line in SECOND_PASS:
        assert "  " + line + "\n" in second, line
    summary = section(text, "Summary")
    assert re.search(r"a³₁\s+0\.420\s+0\.464\s+0\.9\n", summary)
    assert re.search(r"C \(quadratic\)\s+0\.115\s+0\.0951\n", summary)


def test_explain_keeps_small_gradients_readable() -> None:
    text = ok("step", WORKED, "--explain", "--no-color")
    assert "= 0.000867\n" in text and "= −0.000288\n" in text
    assert "= 0.001\n" not in text


# -- the sheet, rounded to three decimals --------------------------------------------------------
def test_round3_json_gives_the_sheets_three_decimal_values() -> None:
    doc = step_json("--round", "3")
    assert doc["round"] == 3
    l2, l3 = doc["steps"][0]["layers"]
    got = {
        "z2": l2["z"],
        "a2": l2["a"],
        "z3": l3["z"],
        "a3": l3["a"],
        "delta3": l3["delta"],
        "grad_w3": l3["grad_weights"],
        "delta2": l2["delta"],
        "b2": l2["biases"],
        "w3": l3["weights"],
        "b3": l3["biases"],
    }
    for key, want in SHEET_ROUND3.items():
        assert np.allclose(got[key], want, rtol=0, atol=1e-12), (key, got[key], want)


def test_round3_second_forward_pass_is_within_half_a_unit_of_the_sheet() -> None:
    doc = step_json("--round", "3", "--steps", "2")
    l2, l3 = doc["steps"][1]["layers"]  # step 2 starts with the forward pass on updated weights
    got = {"z2": l2["z"], "a2": l2["a"], "z3": l3["z"], "a3": l3["a"]}
    for key, want in SHEET_SECOND_PASS.items():
        assert np.all(np.abs(np.subtract(got[key], want)) <= SHEET_TOLERANCE), (key, got[key])
    final = step_json("--round", "3")["final"]["output"]
    assert abs(final[0] - 0.4638) <= SHEET_TOLERANCE


def test_round3_explain_shows_exactly_three_decimals() -> None:
    text = ok("step", WORKED, "--explain", "--no-color", "--round", "3")
    step = section(text, "The SGD step")
    for line in [
        "= 0.2×0.8 + 0.3×0.7 + 0.4×0.1 + (−0.2) = 0.210",
        "= −0.2×0.8 + 0.1×0.7 + 0.5×0.1 + (−0.2) = −0.240",
        "a²₁ = σ(z²₁) = σ(0.210) = 0.552",
        "a²₂ = σ(z²₂) = σ(−0.240) = 0.440",
        "= −0.3×0.552 + 0.1×0.440 + (−0.2) = −0.322",
        "a³₁ = σ(z³₁) = σ(−0.322) = 0.420",
        "δ³₁ = (a³₁ − y₁) σ'(z³₁) = (0.420 − 0.9) × 0.244 = −0.117",
        "∂C/∂w³₁₁ = a²₁ δ³₁ = 0.552 × (−0.117) = −0.065",
        "∂C/∂w³₁₂ = a²₂ δ³₁ = 0.440 × (−0.117) = −0.051",
        "δ²₁ = (w³₁₁δ³₁) σ'(z²₁) = (−0.3×(−0.117)) × 0.247 = 0.009",
        "δ²₂ = (w³₁₂δ³₁) σ'(z²₂) = (0.1×(−0.117)) × 0.246 = −0.003",
        "b²₁ → b²₁ − η ∂C/∂b²₁ = −0.2 − 1 × 0.009 = −0.209",
        "b²₂ → b²₂ − η ∂C/∂b²₂ = −0.2 − 1 × (−0.003) = −0.197",
        "w³₁₁ → w³₁₁ − η ∂C/∂w³₁₁ = −0.3 − 1 × (−0.065) = −0.235",
        "w³₁₂ → w³₁₂ − η ∂C/∂w³₁₂ = 0.1 − 1 × (−0.051) = 0.151",
        "b³₁ → b³₁ − η ∂C/∂b³₁ = −0.2 − 1 × (−0.117) = −0.083",
    ]:
        assert line + "\n" in step, line
    # Every result (the value after the last '=') has exactly three decimals.
    for eq in re.findall(r"^  \S.* = (\S+)$", step, flags=re.M):
        assert re.fullmatch(r"−?\d+\.\d{3}", eq), eq
    second = section(text, "Forward pass with the updated parameters")
    values = {
        m.group(1): float(m.group(2).replace("−", "-"))
        for m in re.finditer(r"^  ([za][²³]₁|[za]²₂) = .* = (\S+)$", second, flags=re.M)
    }
    sheet = {
        "z²₁": 0.1907,
        "z²₂": -0.2336,
        "a²₁": 0.5475,
        "a²₂": 0.4419,
        "z³₁": -0.1449,
        "a³₁": 0.4638,
    }
    assert values.keys() == sheet.keys()
    for key, want in sheet.items():
        assert abs(values[key] - want) <= SHEET_TOLERANCE, (key, values[key])


def test_round3_summary_shows_the_drift_from_the_exact_run() -> None:
    text = ok("step", WORKED, "--explain", "--no-color", "--round", "3")
    drift = text[text.index("How far the hand rounding") :]
    assert re.search(r"C after step 1\s+0\.095\s+0\.0951464\s+−0\.000146\n", drift)
    assert re.search(r"a³₁ after\s+0\.464\s+0\.463774\s+0\.000226\n", drift)
    for fmt_ in ("markdown", "latex"):
        doc = ok("step", WORKED, "--format", fmt_, "--round", "3")
        assert "drifted from the exact computation" in doc and "0.0951464" in doc
    assert "drifted" not in ok("step", WORKED, "--explain", "--no-color")


# -- rounding rules ------------------------------------------------------------------------------
def test_hand_rounding_goes_half_away_from_zero() -> None:
    assert hand_round(2)(np.array([0.125, -0.125, 0.135, -0.005])).tolist() == [
        0.13,
        -0.13,
        0.14,
        -0.01,
    ]
    assert float(hand_round(3)(np.array(0.0045))) == 0.005  # 0.0045 is stored as 0.00449999…
    assert float(hand_round(2)(np.array(2.675))) == 2.68
    assert float(hand_round(0)(np.array(-2.5))) == -3.0
    assert np.round(0.125, 2) == 0.12  # what numpy would do instead (half to even)


def test_rounding_changes_the_results() -> None:
    exact, rounded = step_json(), step_json("--round", "3")
    assert exact["round"] is None
    assert rounded["final"]["loss"] == 0.095 != exact["final"]["loss"]
    assert rounded["steps"][0]["layers"][0]["delta"] != exact["steps"][0]["layers"][0]["delta"]
    coarse = step_json("--round", "1")
    assert coarse["steps"][0]["layers"][0]["delta"] == [0.0, -0.0]  # δ² vanishes at 1 decimal


# -- notation ------------------------------------------------------------------------------------
def test_symbols_in_nielsens_notation() -> None:
    text, tex = Notation("text"), Notation("latex")
    assert text.sym("z", 2, 1) == "z²₁" and tex.sym("z", 2, 1) == "z^{2}_{1}"
    assert text.sym("w", 2, 1, 2) == "w²₁₂" and tex.sym("w", 2, 1, 2) == "w^{2}_{12}"
    assert text.sym("w", 10, 10, 2) == "w¹⁰₁₀,₂" and tex.sym("w", 10, 10, 2) == "w^{10}_{10,2}"
    assert text.sym("δ", 3, 1) == "δ³₁" and tex.sym("δ", 3, 1) == r"\delta^{3}_{1}"
    assert text.sym("a", "l-1", "k") == "aˡ⁻¹ₖ" and tex.sym("a", "l-1", "k") == "a^{l-1}_{k}"


def test_numbers_keep_significant_digits_or_exact_decimals() -> None:
    fmt = Style(3, "sheet")
    assert fmt(0.21) == "0.210" and fmt(-0.116883) == "−0.117"
    assert fmt(0.000867027) == "0.000867" and fmt(-0.0645553) == "−0.0646"
    tex = Style(3, "sheet", tex=True)
    assert fmt(1.234e-7) == "1.23×10⁻⁷" and tex(1.234e-7) == r"1.23 \times 10^{-7}"
    three = Style(3, "sheet", decimals=3)
    assert fmt(0.0) == fmt(-0.0) == "0" and three(-0.0) == "0.000"
    assert Style(6, "sheet", trim=True)(0.2) == "0.2" and three(0.0045) == "0.004"
    nt = Notation("text", round_to=3)
    assert nt.num(0.21) == "0.210" and nt.num(0.2, given=True) == "0.2"
    assert nt.par(-0.2) == "(−0.200)" and nt.par(0.2) == "0.200"
    assert nt.prod((-0.3, True), (-0.117, False), lead=True) == "−0.3×(−0.117)"


def test_tex_helpers_escape_and_break() -> None:
    assert latex_escape("a_b%c#d&e\\f{g}~h^i<j>") == (
        r"a\_b\%c\#d\&e\textbackslash{}f\{g\}\~{}h\^{}i\textless{}j\textgreater{}"
    )
    assert latex_escape("données.yaml") == "donnees.yaml"
    nt = Notation("latex")
    long_sum = nt.total([f"0.{k}{nt.times}0.{k}" for k in range(1, 10)])
    rows = tex_rows("z^{2}_{1}", [("=", long_sum), ("=", "0.5")], limit=40)
    assert len(rows) > 2 and rows[0].startswith("z^{2}_{1} &= ")
    assert all(r.startswith("&") for r in rows[1:])


# -- other networks ------------------------------------------------------------------------------
BATCH = """\
inputs: [[0.5, -1.0, 2.0], [1.5, 0.2, -0.3], [0.0, 0.1, 0.9]]
targets: [[1, 0], [0, 1], [1, 0]]
loss: cross_entropy
learning_rate: 0.5
steps: 5
layers:
  - weights: [[0.1, -0.2, 0.3], [0.4, 0.1, -0.5], [-0.3, 0.2, 0.2]]
    biases: [0.0, 0.1, -0.1]
    activation: tanh
  - weights: [[0.2, -0.1, 0.3], [-0.2, 0.4, 0.1]]
    biases: [0.05, -0.05]
    activation: softmax
"""

PRELU = """\
input: [1.0, -2.0]
target: [0.5, 0.25, 0.25]
loss: {name: huber, delta: 0.5}
learning_rate: 0.1
layers:
  - weights: [[0.3, 0.8], [-0.4, 0.2]]
    biases: [0.1, -0.1]
    activation: {name: prelu, a: 0.2}
  - weights: [[0.5, -0.5], [0.25, 0.75], [0.1, 0.1]]
    biases: [0.0, 0.0, 0.1]
    activation: softmax
"""

MSE = WORKED_MSE = (
    (ROOT / WORKED).read_text(encoding="utf-8").replace("loss: quadratic", "loss: mse")
)


def wide(n_in: int = 12, n_hidden: int = 9) -> str:
    rng = np.random.default_rng(7)
    w2 = np.round(rng.uniform(-1, 1, (n_hidden, n_in)), 2).tolist()
    w3 = np.round(rng.uniform(-1, 1, (1, n_hidden)), 2).tolist()
    x = np.round(rng.uniform(-1, 1, n_in), 2).tolist()
    return (
        f"input: {x}\ntarget: [1]\nloss: binary_cross_entropy\nlearning_rate: 0.3\n"
        f"layers:\n  - weights: {w2}\n    biases: {[0.0] * n_hidden}\n"
        f"    activation: {{name: leaky_relu, alpha: 0.1}}\n"
        f"  - weights: {w3}\n    biases: [0.0]\n    activation: sigmoid\n"
    )


def write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return name


@pytest.mark.parametrize(
    "config",
    [BATCH, PRELU, MSE, wide()],
    ids=["batch-softmax-ce", "prelu-softmax-huber", "mse", "wide"],
)
def test_every_form_runs_on_other_networks(tmp_path: Path, config: str) -> None:
    name = write(tmp_path, "net.yaml", config)
    for extra in ([], ["--round", "2"]):
        text = ok("step", name, "--explain", "--no-color", *extra, cwd=tmp_path)
        assert "Forward pass with the updated parameters" in text and "Summary" in text
        md = ok("step", name, "--format", "markdown", *extra, cwd=tmp_path)
        assert md.startswith("# Worked solution") and "$$\n\\begin{aligned}" in md
        assert "| --- |" in md
        tex = ok("step", name, "--format", "latex", *extra, cwd=tmp_path)
        assert tex.startswith("\\documentclass") and tex.endswith("\\end{document}\n")
        assert tex.isascii()


def test_batch_writes_one_example_then_the_reduction(tmp_path: Path) -> None:
    text = ok("step", write(tmp_path, "b.yaml", BATCH), "--explain", "--no-color", cwd=tmp_path)
    assert "Example 1 of 3 is written out" in text
    assert re.search(r"C = \(1/3\) Σₓ Cₓ = \(1/3\)\(0\.404 \+ 0\.535 \+ 0\.520\) = 0\.486\n", text)
    assert "∂C/∂b³₁ = (1/3) Σₓ δ³₁ = (1/3)(−0.332 + 0.414 + (−0.406)) = −0.108\n" in text
    assert "δ³₁ = a³₁ − y₁ = 0.668 − 1 = −0.332" in text  # softmax + cross-entropy from z
    # A single step between shown ones is shown rather than skipped.
    assert "Step 4 of 5" in text and "Step 5 of 5" in text and "not written out (" not in text


def test_other_losses_use_their_own_derivative(tmp_path: Path) -> None:
    text = ok("step", write(tmp_path, "m.yaml", MSE), "--explain", "--no-color", cwd=tmp_path)
    assert "∂C/∂a_j = (2/n)(a_j − y_j)" in text
    assert "δ³₁ = 2(a³₁ − y₁) σ'(z³₁) = 2(0.420 − 0.9) × 0.244 = −0.234\n" in text
    prelu = ok("step", write(tmp_path, "p.yaml", PRELU), "--explain", "--no-color", cwd=tmp_path)
    assert "∂C/∂a_j = clip(a_j − y_j, −δ, δ)/n" in prelu
    assert "softmax couples its units" in prelu
    # The chain, then each unit's ∂C/∂a_j × ∂a_j/∂α with its numbers, then the value.
    assert re.search(r"∂C/∂α² = Σⱼ ∂C/∂a²ⱼ · ∂a²ⱼ/∂α² = \S+×\S+( \+ \S+×\S+)* = \S+\n", prelu)
    assert re.search(r"α² → α² − η ∂C/∂α² = 0\.2 − 0\.1 × \S+ = \S+\n", prelu)


def test_max_terms_caps_sums_and_units(tmp_path: Path) -> None:
    name = write(tmp_path, "w.yaml", wide())
    text = ok("step", name, "--explain", "--no-color", "--max-terms", "4", cwd=tmp_path)
    assert re.search(r"z²₁ = Σₖ w²₁ₖa¹ₖ \+ b²₁ = (\S+ \+ ){4}… \+ \(8 more terms\) \+ 0 = ", text)
    assert "… 5 more units in layer 2 not written out" in text
    assert "z²₅ =" not in text
    assert "(9 more terms)" not in ok(
        "step", name, "--explain", "--no-color", "--max-terms", "12", cwd=tmp_path
    )


def test_latex_escapes_user_strings(tmp_path: Path) -> None:
    name = write(tmp_path, "odd_100%#&.yaml", PRELU)
    tex = ok("step", name, "--format", "latex", cwd=tmp_path)
    assert r"\texttt{odd\_100\%\#\&.yaml}" in tex
    md = ok("step", name, "--format", "markdown", cwd=tmp_path)
    assert "`odd_100%#&.yaml`" in md


@pytest.mark.parametrize(
    "config",
    [None, BATCH, PRELU, wide(12, 9)],
    ids=["worked-example", "batch", "prelu-softmax", "wide"],
)
def test_latex_compiles(
    tmp_path: Path, config: str | None, pdflatex: Callable[[Path], str]
) -> None:
    name = WORKED if config is None else write(tmp_path, "net_%.yaml", config)
    tex = ok(
        "step",
        name,
        "--format",
        "latex",
        "--round",
        "3",
        "--output",
        str(tmp_path / "solution.tex"),
        cwd=ROOT if config is None else tmp_path,
    )
    assert tex == ""
    log = pdflatex(tmp_path / "solution.tex")
    assert "Overfull \\hbox" not in log  # nothing runs off the page


def test_every_registry_formula_compiles_as_tex(
    tmp_path: Path, pdflatex: Callable[[Path], str]
) -> None:
    from gradcalc.functions.activations import ACTIVATIONS
    from gradcalc.functions.losses import LOSSES

    texts = [r.formula for r in [*ACTIVATIONS, *LOSSES]] + [
        r.derivative for r in [*ACTIVATIONS, *LOSSES]
    ]
    body = "\n\n".join(f"${t.tex}$" for t in texts)
    (tmp_path / "f.tex").write_text(
        "\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n"
        + body
        + "\n\\end{document}\n",
        encoding="ascii",
    )
    pdflatex(tmp_path / "f.tex")


# -- --output ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--format", "json"],
        ["--explain", "--no-color"],
        ["--explain", "--round", "3"],
        ["--format", "markdown"],
        ["--format", "latex"],
    ],
    ids=["table", "json", "explain", "explain-round", "markdown", "latex"],
)
def test_output_writes_the_same_bytes_as_stdout(tmp_path: Path, args: list[str]) -> None:
    stdout = ok("step", WORKED, *args)
    target = tmp_path / "out.txt"
    result = gradcalc("step", WORKED, *args, "--output", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert target.read_bytes() == stdout.encode("utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary file left


def test_a_failed_run_leaves_no_file_and_keeps_an_old_one(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "input: [1, 2\n")
    result = gradcalc("step", bad, "--format", "latex", "--output", "new.tex", cwd=tmp_path)
    assert result.exit_code == 2 and "bad.yaml" in result.output
    assert not (tmp_path / "new.tex").exists()
    (tmp_path / "old.tex").write_text("keep me", encoding="utf-8")
    result = gradcalc("step", bad, "--output", "old.tex", cwd=tmp_path)
    assert result.exit_code == 2
    assert (tmp_path / "old.tex").read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "old.tex"]


def test_output_refuses_the_config_and_directories(tmp_path: Path) -> None:
    name = write(tmp_path, "net.yaml", PRELU)
    for same in ("net.yaml", "./net.yaml", str(tmp_path / "net.yaml")):
        result = gradcalc("step", name, "--format", "json", "--output", same, cwd=tmp_path)
        assert result.exit_code == 2
        assert "is the config being read" in result.output
        assert (tmp_path / "net.yaml").read_text(encoding="utf-8") == PRELU
    result = gradcalc("step", name, "--output", str(tmp_path), cwd=tmp_path)
    assert result.exit_code == 2 and "is a directory" in result.output
    result = gradcalc("step", name, "--output", "missing/out.md", cwd=tmp_path)
    assert result.exit_code == 2 and "does not exist" in result.output


def test_explain_is_not_combined_with_another_format() -> None:
    result = gradcalc("step", WORKED, "--explain", "--format", "json")
    assert result.exit_code == 2 and "--explain" in result.output


def test_round_takes_0_to_12_decimals() -> None:
    assert gradcalc("step", WORKED, "--round", "13").exit_code == 2
    assert gradcalc("step", WORKED, "--round", "-1").exit_code == 2
    # z³ rounds to 0, σ(0) = 0.5 rounds (half away from zero) to 1
    assert step_json("--round", "0")["steps"][0]["layers"][1]["a"] == [1.0]
