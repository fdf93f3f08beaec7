"""The activation registry: one record per function, in one table."""

from __future__ import annotations

import numpy as np

from gradcalc.functions.registry import Activation, Array, Param, Params, index


def sigmoid(z: Array) -> Array:
    # exp of −|z| only, so neither branch can overflow for large |z|.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def log_sigmoid(z: Array) -> Array:
    return -np.logaddexp(0.0, -z)


def softmax(z: Array) -> Array:
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _softmax_vjp(z: Array, a: Array, g: Array, p: Params) -> Array:
    # J = diag(s) − s sᵀ, so Jᵀg = s ⊙ (g − (g·s)).
    return a * (g - np.sum(g * a, axis=-1, keepdims=True))


def _step(z: Array) -> Array:
    return (z > 0).astype(float)


ACTIVATIONS: list[Activation] = [
    Activation(
        name="identity",
        symbol="id",
        formula="f(z) = z",
        derivative="f'(z) = 1",
        forward=lambda z, p: z.copy(),
        prime=lambda z, a, p: np.ones_like(z),
        aliases=("linear",),
    ),
    Activation(
        name="sigmoid",
        symbol="σ",
        formula="σ(z) = 1/(1 + e^(−z))",
        derivative="σ'(z) = σ(z)(1 − σ(z))",
        forward=lambda z, p: sigmoid(z),
        prime=lambda z, a, p: a * (1.0 - a),
    ),
    Activation(
        name="tanh",
        symbol="tanh",
        formula="tanh(z) = (e^z − e^(−z))/(e^z + e^(−z))",
        derivative="tanh'(z) = 1 − tanh²(z)",
        forward=lambda z, p: np.tanh(z),
        prime=lambda z, a, p: 1.0 - a * a,
    ),
    Activation(
        name="relu",
        symbol="ReLU",
        formula="ReLU(z) = max(0, z)",
        derivative="ReLU'(z) = 1 if z > 0, else 0 (0 at z = 0 by convention)",
        forward=lambda z, p: np.maximum(z, 0.0),
        prime=lambda z, a, p: _step(z),
    ),
    Activation(
        name="leaky_relu",
        symbol="LReLU",
        formula="f(z) = z if z > 0, else α·z",
        derivative="f'(z) = 1 if z > 0, else α",
        forward=lambda z, p: np.where(z > 0, z, p["alpha"] * z),
        prime=lambda z, a, p: np.where(z > 0, 1.0, p["alpha"]),
        params=(Param("alpha", 0.01, "slope for z ≤ 0", low=0.0),),
    ),
    Activation(
        name="prelu",
        symbol="PReLU",
        formula="f(z) = z if z > 0, else a·z (a learned)",
        derivative="∂f/∂z = 1 if z > 0, else a;  ∂f/∂a = z if z ≤ 0, else 0",
        forward=lambda z, p: np.where(z > 0, z, p["a"] * z),
        prime=lambda z, a, p: np.where(z > 0, 1.0, p["a"]),
        param_partials=lambda z, a, p: {"a": np.where(z > 0, 0.0, z)},
        params=(Param("a", 0.25, "slope for z ≤ 0, learned by SGD", learnable=True),),
    ),
    Activation(
        name="elu",
        symbol="ELU",
        formula="f(z) = z if z > 0, else α(e^z − 1)",
        derivative="f'(z) = 1 if z > 0, else α·e^z",
        forward=lambda z, p: np.where(z > 0, z, p["alpha"] * np.expm1(np.minimum(z, 0.0))),
        prime=lambda z, a, p: np.where(z > 0, 1.0, p["alpha"] * np.exp(np.minimum(z, 0.0))),
        params=(Param("alpha", 1.0, "scale of the negative part", low=0.0, low_open=True),),
    ),
    Activation(
        name="softplus",
        symbol="softplus",
        formula="f(z) = ln(1 + e^z)",
        derivative="f'(z) = σ(z)",
        forward=lambda z, p: np.logaddexp(0.0, z),
        prime=lambda z, a, p: sigmoid(z),
    ),
    Activation(
        name="silu",
        symbol="SiLU",
        formula="f(z) = z·σ(z)",
        derivative="f'(z) = σ(z)(1 + z(1 − σ(z)))",
        forward=lambda z, p: z * sigmoid(z),
        prime=lambda z, a, p: sigmoid(z) * (1.0 + z * (1.0 - sigmoid(z))),
        aliases=("swish",),
    ),
    Activation(
        name="softmax",
        symbol="softmax",
        formula="s_j(z) = e^(z_j) / Σ_k e^(z_k)",
        derivative="∂s_i/∂z_j = s_i(1 − s_j) if i = j, else −s_i·s_j",
        forward=lambda z, p: softmax(z),
        vjp=_softmax_vjp,
    ),
]

REGISTRY: dict[str, Activation] = index(ACTIVATIONS)
