"""What keeps a drawn problem a good one: each constraint is one record (its key under
`constraints:`, what it means, how its value is read and whether a variant meets it).

A variant that breaks one is drawn again (attempt 1, 2, … of the same seed: deterministic); the
template is refused when no attempt in `--max-tries` meets them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcalc.errors import KeyPath, did_you_mean
from gradcalc.yamldoc import Doc, number, type_name

if TYPE_CHECKING:
    from gradcalc.step.config import NetworkSpec
    from gradcalc.step.trace import RunTrace


@dataclass(frozen=True)
class Variant:
    """What a constraint looks at: the drawn network, its run and the sheet's places."""

    spec: NetworkSpec
    trace: RunTrace
    decimals: int


@dataclass(frozen=True)
class Constraint:
    name: str
    meaning: str  # one line, for the docs and `gradcalc generate --help`
    kind: str  # "number" (a bound > 0) or "flag" (true/false)
    holds: Callable[[Variant, Any], bool]


def _unsaturated(v: Variant, bound: float) -> bool:
    return all(float(np.max(np.abs(lt.z))) <= bound for st in v.trace.steps for lt in st.layers)


def _nonzero_gradients(v: Variant, on: bool) -> bool:
    if not on:
        return True
    smallest = 0.5 * 10.0 ** (-v.decimals)  # what rounds to 0 at the sheet's places
    for st in v.trace.steps:
        for lt in st.layers:
            for g in (lt.delta, lt.grad_weights, lt.grad_biases):
                if float(np.min(np.abs(g))) < smallest:
                    return False
    return True


def _distinct(v: Variant, on: bool) -> bool:
    if not on:
        return True
    groups = [v.spec.x.ravel()]
    for layer in v.spec.layers:
        groups += [layer.weights.ravel(), layer.biases.ravel()]
    return all(len(np.unique(g)) == g.size for g in groups)


def _loss_decreases(v: Variant, on: bool) -> bool:
    return not on or v.trace.final.loss < v.trace.steps[0].loss


CONSTRAINTS: dict[str, Constraint] = {
    c.name: c
    for c in (
        Constraint(
            "max_abs_z",
            "no saturated unit: every z^l_j of every step has |z| ≤ the bound (e.g. 4)",
            "number",
            _unsaturated,
        ),
        Constraint(
            "nonzero_gradients",
            "no δ, ∂C/∂w or ∂C/∂b rounds to 0 at the sheet's decimals",
            "flag",
            _nonzero_gradients,
        ),
        Constraint(
            "distinct",
            "the numbers a student could confuse differ: the inputs, and within each layer "
            "its weights and its biases, are pairwise distinct (a swapped index shows)",
            "flag",
            _distinct,
        ),
        Constraint(
            "loss_decreases",
            "the cost after the step is lower than before it",
            "flag",
            _loss_decreases,
        ),
    )
}


def read_constraints(doc: Doc, value: Any) -> dict[str, Any]:
    path: KeyPath = ("constraints",)
    if not isinstance(value, dict):
        raise doc.error(path, f"expected a mapping of constraints, got {type_name(value)}")
    out: dict[str, Any] = {}
    for name, setting in value.items():
        here = (*path, name)
        if name not in CONSTRAINTS:
            raise doc.error(here, "unknown constraint", did_you_mean(name, CONSTRAINTS))
        if CONSTRAINTS[name].kind == "flag":
            if not isinstance(setting, bool):
                raise doc.error(here, f"expected true or false, got {type_name(setting)}")
            out[name] = setting
        else:
            bound = number(doc, setting, here)
            if bound <= 0:
                raise doc.error(here, f"expected a number > 0, got {bound:g}")
            out[name] = bound
    return out


def broken(variant: Variant, constraints: dict[str, Any]) -> str | None:
    """The first constraint the variant breaks, or None."""
    for name, setting in constraints.items():
        if not CONSTRAINTS[name].holds(variant, setting):
            return name
    return None
