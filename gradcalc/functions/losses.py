"""The loss registry: one record per cost function, in one table.

Arrays are (examples, units); `value` returns one cost per example and `grad` returns ∂C_x/∂a.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gradcalc.functions.activations import log_sigmoid, sigmoid, softmax
from gradcalc.functions.registry import Array, Fused, Loss, Param, Params, index


def _n(a: Array) -> int:
    return a.shape[-1]


def _xlogy(y: Array, a: Array) -> Array:
    # y·ln a with 0·ln 0 = 0, so a unit with y = 0 never produces log(0).
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y == 0, 0.0, y * np.log(np.where(y == 0, 1.0, a)))


def _huber(r: Array, delta: float) -> Array:
    ar = np.abs(r)
    return np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta))


def _norms(y: Array, a: Array) -> tuple[Array, Array, Array]:
    ny = np.linalg.norm(y, axis=-1, keepdims=True)
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    dot = np.sum(y * a, axis=-1, keepdims=True)
    return ny, na, dot


def _cosine_grad(a: Array, y: Array, p: Params) -> Array:
    ny, na, dot = _norms(y, a)
    return -(y / (ny * na) - dot * a / (ny * na**3))


def _nonzero_rows(what: str) -> Callable[..., str | None]:
    def check(v: Array, y: Array | None = None) -> str | None:
        if np.any(np.all(v == 0, axis=-1)):
            return f"{what} is the zero vector, for which the cosine is undefined"
        return None

    return check


def _positive_where_target(a: Array, y: Array) -> str | None:
    if np.any((a <= 0) & (y != 0)):
        return "needs a_j > 0 wherever y_j > 0 (a softmax or sigmoid output layer ensures it)"
    return None


def _in_unit_interval(open_: bool) -> Callable[..., str | None]:
    def check(v: Array, y: Array | None = None) -> str | None:
        bad = np.any((v <= 0) | (v >= 1)) if open_ else np.any((v < 0) | (v > 1))
        if bad:
            return "needs values in (0, 1)" if open_ else "needs values in [0, 1]"
        return None

    return check


def _nonnegative(y: Array) -> str | None:
    return "needs targets y_j ≥ 0" if np.any(y < 0) else None


def _plus_minus_one(y: Array) -> str | None:
    return "needs targets y_j of −1 or +1" if np.any((y != 1) & (y != -1)) else None


def _ce_softmax_value(z: Array, y: Array, p: Params) -> Array:
    m = np.max(z, axis=-1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))
    return np.sum(y * (lse - z), axis=-1)


LOSSES: list[Loss] = [
    Loss(
        name="quadratic",
        formula="C = ½ Σ_j (y_j − a_j)²",
        derivative="∂C/∂a_j = a_j − y_j",
        value=lambda a, y, p: 0.5 * np.sum((y - a) ** 2, axis=-1),
        grad=lambda a, y, p: a - y,
    ),
    Loss(
        name="mse",
        formula="C = (1/n) Σ_j (y_j − a_j)²",
        derivative="∂C/∂a_j = (2/n)(a_j − y_j)",
        value=lambda a, y, p: np.mean((y - a) ** 2, axis=-1),
        grad=lambda a, y, p: 2.0 * (a - y) / _n(a),
        aliases=("l2",),
    ),
    Loss(
        name="l1",
        formula="C = (1/n) Σ_j |y_j − a_j|",
        derivative="∂C/∂a_j = −sgn(y_j − a_j)/n (0 where y_j = a_j)",
        value=lambda a, y, p: np.mean(np.abs(y - a), axis=-1),
        grad=lambda a, y, p: np.sign(a - y) / _n(a),
        aliases=("mae",),
    ),
    Loss(
        name="huber",
        formula="C = (1/n) Σ_j h_δ(y_j − a_j),  h_δ(r) = ½r² if |r| ≤ δ, else δ(|r| − δ/2)",
        derivative="∂C/∂a_j = clip(a_j − y_j, −δ, δ)/n",
        value=lambda a, y, p: np.mean(_huber(y - a, p["delta"]), axis=-1),
        grad=lambda a, y, p: np.clip(a - y, -p["delta"], p["delta"]) / _n(a),
        params=(
            Param(
                "delta", 1.0, "where the quadratic part meets the linear", low=0.0, low_open=True
            ),
        ),
    ),
    Loss(
        name="cross_entropy",
        formula="C = −Σ_j y_j ln a_j",
        derivative="∂C/∂a_j = −y_j/a_j",
        value=lambda a, y, p: -np.sum(_xlogy(y, a), axis=-1),
        grad=lambda a, y, p: np.where(y == 0, 0.0, -y / np.where(y == 0, 1.0, a)),
        check_target=_nonnegative,
        check_output=_positive_where_target,
        fused={
            "softmax": Fused(
                value=_ce_softmax_value,
                delta=lambda z, y, p: softmax(z) * np.sum(y, axis=-1, keepdims=True) - y,
            ),
            "sigmoid": Fused(
                value=lambda z, y, p: -np.sum(y * log_sigmoid(z), axis=-1),
                delta=lambda z, y, p: -y * sigmoid(-z),
            ),
        },
    ),
    Loss(
        name="binary_cross_entropy",
        formula="C = −Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)]",
        derivative="∂C/∂a_j = (a_j − y_j)/(a_j(1 − a_j))",
        value=lambda a, y, p: -np.sum(_xlogy(y, a) + _xlogy(1.0 - y, 1.0 - a), axis=-1),
        grad=lambda a, y, p: (a - y) / (a * (1.0 - a)),
        aliases=("bce",),
        check_target=_in_unit_interval(open_=False),
        check_output=_in_unit_interval(open_=True),
        fused={
            "sigmoid": Fused(
                value=lambda z, y, p: (
                    -np.sum(y * log_sigmoid(z) + (1.0 - y) * log_sigmoid(-z), axis=-1)
                ),
                delta=lambda z, y, p: sigmoid(z) - y,
            ),
        },
    ),
    Loss(
        name="hinge",
        formula="C = Σ_j max(0, 1 − y_j a_j)",
        derivative="∂C/∂a_j = −y_j if y_j a_j < 1, else 0 (0 at the margin)",
        value=lambda a, y, p: np.sum(np.maximum(0.0, 1.0 - y * a), axis=-1),
        grad=lambda a, y, p: np.where(y * a < 1.0, -y, 0.0),
        check_target=_plus_minus_one,
    ),
    Loss(
        name="cosine",
        formula="C = 1 − (y·a)/(‖y‖ ‖a‖)",
        derivative="∂C/∂a_j = −y_j/(‖y‖‖a‖) + (y·a) a_j/(‖y‖‖a‖³)",
        value=lambda a, y, p: (
            1.0 - np.sum(y * a, axis=-1) / (np.linalg.norm(y, axis=-1) * np.linalg.norm(a, axis=-1))
        ),
        grad=_cosine_grad,
        check_target=_nonzero_rows("the target y"),
        check_output=_nonzero_rows("the output a"),
    ),
]

REGISTRY: dict[str, Loss] = index(LOSSES)
