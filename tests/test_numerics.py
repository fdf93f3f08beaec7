"""Numerical edge cases of the registries and the hand rounding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradcalc.functions.losses import REGISTRY as LOSSES
from gradcalc.functions.training import hand_round


@pytest.mark.parametrize("scale", [1e-150, 1.0, 1e150, 1e300])
def test_cosine_is_scale_invariant_without_overflow(scale: float) -> None:
    cosine = LOSSES["cosine"]
    a, y = np.array([[3.0, 4.0]]), np.array([[1.0, 0.0]])
    with np.errstate(all="raise"):
        value = cosine.value(a * scale, y, {})
        grad = cosine.grad(a * scale, y, {})
    assert value[0] == pytest.approx(1 - 3 / 5, rel=1e-12)
    # The gradient scales as 1/‖a‖ and stays orthogonal to a.
    assert grad * scale == pytest.approx(cosine.grad(a, y, {}), rel=1e-12)
    assert float(np.sum(grad * a)) == pytest.approx(0.0, abs=1e-12 / scale)


def test_hand_rounding_never_gives_negative_zero() -> None:
    rounded = hand_round(1)(np.array([-0.01, -0.04, 0.04]))
    assert all(math.copysign(1.0, v) == 1.0 for v in rounded)


@pytest.mark.parametrize("layered", [False, True], ids=["dense engine", "layer records"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_rounder_set_on_a_network_rounds_its_update_too(layered: bool, optimizer: str) -> None:
    """check grades a rounded trace by setting a network's rounder after it is built: the
    update rule, shared by both engines, must round with it (θ_new to one decimal here)."""
    from gradcalc.api import from_dict
    from gradcalc.layers.engine import Network as LayeredNetwork
    from gradcalc.step.engine import Network

    layers: list[dict[str, object]] = [
        {"weights": [[0.13, -0.21], [0.34, 0.05]], "biases": [0.01, -0.02], "activation": "tanh"}
    ]
    if layered:
        layers.insert(0, {"type": "flatten"})
    spec = from_dict(
        {
            "input": [0.7, -1.3],
            "target": [0.2, 0.9],
            "loss": "mse",
            "learning_rate": 0.37,
            "optimizer": optimizer,
            "layers": layers,
        }
    )
    net = LayeredNetwork(spec) if layered else Network(spec)  # type: ignore[arg-type]
    net.r = hand_round(1)
    st = net.step(1)
    record = st.layers[-1]
    moved = record.params["weights"] if layered else record.weights  # type: ignore[union-attr]
    assert np.array_equal(moved, np.round(moved, 1))
    assert not np.array_equal(moved, np.asarray(layers[-1]["weights"]))
