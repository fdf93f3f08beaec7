"""Every fused loss (a cost computed from z^L where composing it with the output activation
would lose digits) against an independent 800-digit mpmath cost and its derivative, at points
where the output rounds to 1 in float64: the cost and δ^L keep every digit, through the full
step and the lean one alike. Parametrized over the registry, so a new fused pair is covered."""

from __future__ import annotations

import json

import mpmath
import numpy as np
import pytest

from gradcalc.functions.losses import REGISTRY as LOSSES


def _activation(name: str, z: list[mpmath.mpf]) -> list[mpmath.mpf]:
    if name == "softmax":
        total = mpmath.fsum(mpmath.exp(v) for v in z)
        return [mpmath.exp(v) / total for v in z]
    if name == "sigmoid":
        return [1 / (1 + mpmath.exp(-v)) for v in z]
    raise AssertionError(f"no reference for the activation {name!r}: add one")


def _one_minus(name: str, z: list[mpmath.mpf], j: int) -> mpmath.mpf:
    """1 − a_j without cancellation even at 800 digits (e^−800 is below any working precision)."""
    if name == "softmax":
        return mpmath.fsum(mpmath.exp(v) for k, v in enumerate(z) if k != j) / mpmath.fsum(
            mpmath.exp(v) for v in z
        )
    return 1 / (1 + mpmath.exp(z[j]))


def _cost(loss: str, activation: str, z: list[mpmath.mpf], y: list[float]) -> mpmath.mpf:
    a = _activation(activation, z)
    if loss == "cross_entropy":
        return -mpmath.fsum(yj * mpmath.log(aj) for yj, aj in zip(y, a, strict=True) if yj)
    if loss == "binary_cross_entropy":
        return -mpmath.fsum(
            (yj * mpmath.log(aj) if yj else 0)
            + ((1 - yj) * mpmath.log(_one_minus(activation, z, j)) if yj != 1 else 0)
            for j, (yj, aj) in enumerate(zip(y, a, strict=True))
        )
    raise AssertionError(f"no reference for the loss {loss!r}: add one")


def _truth(loss: str, activation: str, z: list[float], y: list[float]):
    with mpmath.workdps(800):
        at = [mpmath.mpf(v) for v in z]

        def along(i: int) -> mpmath.mpf:
            return mpmath.diff(
                lambda t: _cost(
                    loss, activation, [t if k == i else at[k] for k in range(len(at))], y
                ),
                at[i],
            )

        return float(_cost(loss, activation, at, y)), [float(along(i)) for i in range(len(z))]


FUSED = sorted({(loss.name, act) for loss in LOSSES.values() for act in loss.fused})
# Saturated points: the output rounds to 1 (or 0) in float64, where the cost or δ^L is tiny.
POINTS = {
    "softmax": [([42.42973252, -42.87662994], [1.0, 0.0]), ([40.0, 0.0, -3.0], [1.0, 0.0, 0.0])],
    "sigmoid": [([40.0, -45.0], [1.0, 0.0]), ([38.0], [1.0])],
}


@pytest.mark.parametrize(("loss", "activation"), FUSED, ids=[f"{l}-{a}" for l, a in FUSED])
def test_a_fused_loss_keeps_a_tiny_cost_and_delta(
    run_cli, write_config, tmp_path, loss: str, activation: str
) -> None:
    assert activation in POINTS, f"add saturated points for {activation}"
    for z, y in POINTS[activation]:
        if loss == "binary_cross_entropy" and activation == "softmax" and len(z) == 1:
            continue
        value, gradient = _truth(loss, activation, z, y)
        assert 0 < value < 1e-15 and min(map(abs, gradient)) < 1e-15  # a point that matters
        rows = ", ".join(f"[{v!r}]" for v in z)
        path = write_config(
            tmp_path,
            f"input: [1.0]\ntarget: {y}\nloss: {loss}\nlearning_rate: 0.1\n"
            f"layers:\n  - weights: [{rows}]\n    biases: {[0.0] * len(z)}\n"
            f"    activation: {activation}\n",
        )
        full = json.loads(run_cli(["step", str(path), "--format", "json"]).stdout)["steps"][0]
        assert full["loss"] == pytest.approx(value, rel=1e-12), (z, y)
        assert full["layers"][0]["delta"] == pytest.approx(gradient, rel=1e-10, abs=1e-300)
        lean = run_cli(["step", str(path), "--format", "json", "--show", "summary"]).stdout
        assert json.loads(lean)["steps"][0]["loss"] == full["loss"]
        record = LOSSES[loss].fused[activation]
        delta = record.delta(np.array([z]), np.array([y]), {})[0]
        assert delta.tolist() == pytest.approx(gradient, rel=1e-12, abs=1e-300)
