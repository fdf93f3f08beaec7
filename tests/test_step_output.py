"""The table and worked solution when no step runs, and the rounding drift in the table."""

from __future__ import annotations

import json

from click.testing import CliRunner

from gradcalc.cli import cli


def invoke(*args: str) -> str:
    result = CliRunner().invoke(
        cli, ["step", "--example", "worked-example", *args], env={"COLUMNS": "1000"}
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_no_steps_still_shows_the_forward_pass() -> None:
    table = invoke("--steps", "0", "--no-color")
    for value in ("0.552308", "0.440286", "-0.321664", "0.42027", "0.11507"):
        assert value in table
    explained = invoke("--steps", "0", "--explain", "--no-color")
    # With no step the initial parameters are still written into each z.
    assert "0.2×0.8 + 0.3×0.7 + 0.4×0.1 + (−0.2) = 0.210" in explained
    assert "a²₁ = σ(z²₁)" in explained
    doc = json.loads(invoke("--steps", "0", "--format", "json"))
    assert doc["steps"] == []
    assert doc["final"] == doc["initial"]


def test_rounded_table_shows_the_drift_from_the_exact_run() -> None:
    table = invoke("--round", "3", "--no-color")
    assert "exact" in table and "drift" in table
    assert "0.0951464" in table  # the exact final loss beside the rounded 0.095
    rounded = json.loads(invoke("--round", "3", "--format", "json"))
    exact = json.loads(invoke("--format", "json"))
    gap = abs(rounded["final"]["loss"] - exact["final"]["loss"])
    assert 0 < gap < 1e-3
    assert f"{gap:.3g}" in table


PRELU = """\
input: [0.5, -1.0]
target: [1]
loss: quadratic
learning_rate: 0.5
layers:
  - weights: [[0.7, 0.3], [-0.4, 0.9]]
    biases: [0.0, -0.1]
    activation: {name: prelu, a: 0.25}
  - weights: [[1.2, -0.8]]
    biases: [0.1]
    activation: sigmoid
"""


def test_prelu_slope_gradient_is_written_with_its_numbers(tmp_path) -> None:
    config = tmp_path / "prelu.yaml"
    config.write_text(PRELU, encoding="utf-8")
    runner = CliRunner()
    doc = json.loads(runner.invoke(cli, ["step", str(config), "--format", "json"]).output)
    layer = doc["steps"][0]["layers"][0]
    z, grad = layer["z"], layer["grad_activation_params"]["a"]
    assert z[0] > 0 > z[1]  # one unit on each side of the kink
    text = runner.invoke(cli, ["step", str(config), "--explain", "--no-color"]).output
    line = next(row for row in text.splitlines() if row.strip().startswith("∂C/∂α² ="))
    # ∂a_j/∂α is 0 for the positive unit and z_j for the negative one, each times ∂C/∂a_j.
    assert "×0 +" in line and f"×(−{abs(z[1]):.2f})" in line
    assert line.endswith(f"= −{abs(grad):.3g}")
