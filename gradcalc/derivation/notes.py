"""What a derivation at one point should point out: kinks, values that leave float64, remarks
from a formula's functions."""

from __future__ import annotations

import math

from gradcalc.derivation.subjects import Built, Subject, short
from gradcalc.derivation.trace import GraphTrace, KinkTrace, Matrix


def point_notes(
    s: Subject,
    values: list[float],
    graph: GraphTrace,
    kinks: list[KinkTrace],
    closed: Matrix | None,
    built: Built,
) -> list[str]:
    notes = []
    for k in kinks:
        numeric = (
            f"one-sided differences give {short(k.numeric_left)} (left) and "
            f"{short(k.numeric_right)} (right)"
        )
        if k.left is None:
            state = "differentiable" if k.differentiable else "not differentiable"
            notes.append(
                f"at x = {short(values[k.index])}, {k.where}: {numeric}, so the formula is "
                f"{state} there; the sweep reports {short(k.reported)} ({k.convention})"
            )
        elif k.differentiable:
            notes.append(
                f"at {k.where} the formula of {s.name} changes branch, but both one-sided "
                f"derivatives are {short(k.left)}, so it is differentiable there (the graph "
                f"takes {k.convention}); {numeric}"
            )
        else:
            notes.append(
                f"{s.name} is not differentiable at {k.where}: the derivative from the left is "
                f"{short(k.left)} and from the right {short(k.right)}; reported: "
                f"{short(k.reported)} ({k.convention}); {numeric}"
            )
    if graph.non_finite:
        where = ", ".join(graph.non_finite[:4])
        fallback = (
            "the closed form and the finite differences are reported instead"
            if closed is not None
            else "only the finite differences remain"
        )
        point = ", ".join(short(v) for v in values)
        notes.append(
            f"the graph leaves float64 at {point} (non-finite value or adjoint at {where}); "
            f"its derivative is not usable there, so {fallback}"
        )
    if s.kind == "expression" and not kinks:
        notes.extend(built.remarks)
    point = ", ".join(short(v) for v in values)
    if closed is not None and not all(math.isfinite(v) for row in closed for v in row):
        notes.append(f"the closed form leaves float64 at {point}")
    if not all(math.isfinite(v) for v in s.evaluate(values, s.params)):
        notes.append(f"the value is not finite at {point}, so there are no finite differences")
    return notes
