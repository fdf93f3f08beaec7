"""The table and worked solution when no step runs, and the rounding drift in the table."""

from __future__ import annotations

import json

from click.testing import CliRunner

from gradcalc.cli import cli


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, ["step", "--example", "worked-example", *args])
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
