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
