"""The update-rule registry: how θ moves once backpropagation has given g = ∂C/∂θ."""

from __future__ import annotations

from gradcalc.functions.registry import (
    Array,
    OptimizerState,
    Params,
    Rounder,
    UpdateRule,
    Written,
    index,
)


def _sgd(
    theta: Array, g: Array, state: OptimizerState, p: Params, eta: float, t: int, r: Rounder
) -> tuple[Array, dict[str, Array]]:
    return r(theta - eta * g), {}


OPTIMIZERS: list[UpdateRule] = [
    UpdateRule(
        name="sgd",
        title="stochastic gradient descent",
        equations=(Written("θ ← θ − η g", r"\theta \leftarrow \theta - \eta\, g"),),
        update=_sgd,
    ),
]

REGISTRY: dict[str, UpdateRule] = index(OPTIMIZERS)
