"""Grading works out only what a verdict needs: a sheet rounded well is graded without the
rounded run, the drift bounds or the values worked from its other answers (what made `check` of
a small sheet take ~10 ms), and a sheet with errors still gets all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradcalc.check import answers as answers_mod
from gradcalc.check import grade as grade_mod
from gradcalc.check import mistakes
from gradcalc.check.cells import Shape
from gradcalc.step import config

ROOT = Path(__file__).resolve().parent.parent
SHEET = ROOT / "configs" / "answers" / "worked-example.yaml"


def _grade(text: str) -> grade_mod.Report:
    spec = config.load(str(ROOT / "configs" / "worked-example.yaml"))
    shape = Shape.of(spec)
    sheet = answers_mod.load_text(text, "answers.yaml", shape, 1, answers_mod.Run.of(spec, 1))
    return grade_mod.grade(spec, sheet, 1, grade_mod.Options())


def _refuse(*args, **kwargs):
    raise AssertionError("worked out although no verdict needs it")


def test_a_sheet_rounded_well_needs_no_bound_rounded_run_or_carried_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("Bounds", "_run_rounded", "forms_of"):
        monkeypatch.setattr(grade_mod, name, _refuse)
    monkeypatch.setattr(mistakes, "named", _refuse)
    # Nothing wrong: no hint about the rounding to work out either.
    monkeypatch.setattr(answers_mod.Answers, "digits_written", _refuse)
    report = _grade(SHEET.read_text(encoding="utf-8"))
    assert report.passed and len(report.cells) == 32
    assert {c.verdict for c in report.cells} == {"correct", "rounding"}


def test_a_sheet_with_an_error_still_carries_it_and_names_the_mistake() -> None:
    """δ³ with the wrong sign: ✗ named, and ∂C/∂b³ worked from it ↳ with its value."""
    text = SHEET.read_text(encoding="utf-8")
    for quantity in ("delta", "grad_biases"):
        text = text.replace(f"{quantity}: {{3: [-0.117]", f"{quantity}: {{3: [0.117]")
    report = _grade(text)
    by_symbol = {c.symbol: c for c in report.cells}
    assert by_symbol["δ³₁"].verdict == "wrong" and by_symbol["δ³₁"].matches
    assert by_symbol["∂C/∂b³₁"].verdict == "carried" and by_symbol["∂C/∂b³₁"].carried == 0.117
    assert not report.passed
