"""PrairieLearn's grade(data), done by gradcalc check's own grader: the form's numbers, one per
cell, become the answers of the variant's sheet, graded as `gradcalc check --class` grades a
returned sheet (the course's decimals, error-carried-forward credit, the named mistakes).

The generated server.py imports this module from the zip it carries (exports/bundle.py): it
needs numpy and the standard library, never PyYAML, click, rich or orjson.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# What each verdict of check says to the student, after its own word.
_GLOSS = {
    "rounding": "right to the rounding of your earlier numbers",
    "carried": "right given your earlier answers (error carried forward)",
}


def number(value: Any) -> float | None:
    """A submitted answer as a finite number; None for a blank, text or a non-finite value."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            out = float(value)
        elif isinstance(value, str):
            out = float(value.strip().replace("\u2212", "-"))
        else:
            return None
    except (ValueError, OverflowError):
        return None
    return out if math.isfinite(out) else None


def _feedback(cell: Any) -> str:
    if cell.verdict == "wrong" and cell.mistakes_text:
        why = f" — {cell.explanation}" if cell.explanation else ""
        return f"wrong: {cell.mistakes_text}{why}"
    gloss = _GLOSS.get(cell.verdict)
    return f"{cell.verdict}: {gloss}" if gloss else str(cell.verdict)


def _unanswered(raw: Any) -> str:
    blank = raw is None or (isinstance(raw, str) and not raw.strip())
    return "not answered" if blank else "not a number"


def grade(variant: Mapping[str, Any], submitted: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
    """(partial_scores, score) for one variant: `variant` holds its config (as from_dict takes
    it), the course's decimals and its cells (name, step, quantity, layer, index as written);
    `submitted` maps cell names to the student's numbers."""
    import numpy as np

    from gradcalc.check.answers import Answers
    from gradcalc.check.cells import Shape, indices
    from gradcalc.check.grade import Options
    from gradcalc.check.grade import grade as grade_sheet
    from gradcalc.errors import GradcalcError
    from gradcalc.step.config import load_data

    cells = variant["cells"]
    feedback: dict[str, tuple[float, str]] = {}
    spec = load_data(variant["config"], "config.yaml")
    shape = Shape.of(spec)
    dims = {key: shape.array_shape(key) for key in shape.step_keys()}
    where = {key: {tuple(index): pos for pos, index in indices(key, shape)} for key in dims}
    # As the course's blank sheet filled in: every step, every array (NaN where not answered).
    answers = Answers("submitted answers")
    for s in range(1, spec.steps + 1):
        answers.steps[s] = {key: np.full(d, np.nan) for key, d in dims.items() if d}
    answered: dict[tuple[Any, ...], str] = {}
    for cell in cells:
        raw = submitted.get(cell["name"])
        value = number(raw)
        if value is None:
            feedback[cell["name"]] = (0.0, _unanswered(raw))
            continue
        key = (cell["quantity"], cell["layer"])
        index = tuple(cell["index"])
        block = answers.steps[cell["step"]]
        block.setdefault(key, np.full(dims[key], np.nan))[where[key][index]] = value
        answered[(cell["step"], cell["quantity"], cell["layer"], index)] = cell["name"]
    if answered:
        options = Options(decimals=variant["decimals"])
        try:
            # Answers far off overflow what is worked from them (as in check).
            with np.errstate(all="ignore"):
                report = grade_sheet(spec, answers, spec.steps, options)
        except GradcalcError as exc:  # the run diverges: no answer can be graded against it
            for name in answered.values():
                feedback[name] = (0.0, f"not graded: {exc}")
        else:
            for c in report.cells:
                graded = answered.get((c.step, c.quantity, c.layer, tuple(c.index)))
                if graded is not None:
                    feedback[graded] = (1.0 if c.score > 0 else 0.0, _feedback(c))
    partial: dict[str, Any] = {}
    total = 0.0
    for c in cells:
        score, text = feedback.get(c["name"], (0.0, "not graded"))
        partial[c["name"]] = {"score": score, "weight": 1, "feedback": text}
        total += score
    return partial, total / len(cells) if cells else 0.0
