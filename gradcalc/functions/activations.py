"""The activation registry: one record per function, in one table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradcalc.functions.registry import (
    Activation,
    Array,
    Kink,
    NodeParams,
    Param,
    Params,
    fresh,
    index,
    subscript,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from gradcalc.graph import Graph, Node


def sigmoid(z: Array) -> Array:
    # exp of −|z| only, so neither branch can overflow for large |z|: 1/(1 + e) for z ≥ 0,
    # e/(1 + e) below, written with one buffer (this runs on every layer of every step).
    z = np.asarray(z)
    e = np.abs(z, out=np.empty(z.shape))
    np.negative(e, out=e)
    np.exp(e, out=e)
    out = np.where(z >= 0, 1.0, e)
    np.divide(out, np.add(e, 1.0, out=e), out=out)
    return out


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


# Decompositions into graph primitives, with the sheet's node names where it gives them.


def _identity_graph(g: Graph, x: Node, p: NodeParams) -> Node:
    return g.sum(x, name=fresh(g, "f"))


def _sigmoid_graph(g: Graph, x: Node, p: NodeParams, out: str = "f") -> Node:
    u = g.neg(x, name=fresh(g, "u"))
    v = g.exp(u, name=fresh(g, "v"))
    w = g.add(1.0, v, name=fresh(g, "w"))
    return g.div(1.0, w, name=fresh(g, out))


def _tanh_graph(g: Graph, x: Node, p: NodeParams) -> Node:
    u = g.exp(x, name=fresh(g, "u"))
    v = g.exp(g.neg(x, name=fresh(g, f"−{x.name}")), name=fresh(g, "v"))
    w = g.add(u, v, name=fresh(g, "w"))
    z = g.sub(u, v, name=fresh(g, "z"))
    return g.div(z, w, name=fresh(g, "y"))


def _relu_graph(g: Graph, x: Node, p: NodeParams) -> Node:
    return g.max0(x, name=fresh(g, "y"))


def _negative_slope_graph(key: str) -> Callable[[Graph, Node, NodeParams], Node]:
    """y = x if x > 0 else c, with c = (slope)·x: leaky_relu's α, prelu's learned a."""

    def build(g: Graph, x: Node, p: NodeParams) -> Node:
        c = g.mul(p[key], x, name=fresh(g, "c"))
        return g.select(x.value > 0, x, c, cond_text=f"{x.name} > 0", name=fresh(g, "y"))

    return build


def _elu_graph(g: Graph, x: Node, p: NodeParams) -> Node:
    u = g.exp(x, name=fresh(g, "u"))
    v = g.sub(u, 1.0, name=fresh(g, "v"))
    c = g.mul(p["alpha"], v, name=fresh(g, "c"))
    return g.select(x.value > 0, x, c, cond_text=f"{x.name} > 0", name=fresh(g, "y"))


def _softplus_graph(g: Graph, x: Node, p: NodeParams) -> Node:
    u = g.exp(x, name=fresh(g, "u"))
    v = g.add(1.0, u, name=fresh(g, "v"))
    return g.log(v, name=fresh(g, "f"))


def _silu_graph(g: Graph, x: Node, p: NodeParams) -> Node:
    s = _sigmoid_graph(g, x, p, out="σ")
    return g.mul(x, s, name=fresh(g, "f"))


def _softmax_graph(g: Graph, xs: list[Node], p: NodeParams) -> list[Node]:
    us = [g.exp(x, name=fresh(g, f"u{subscript(i)}")) for i, x in enumerate(xs, 1)]
    t = g.sum(*us, name=fresh(g, "t"))
    return [g.div(u, t, name=fresh(g, f"s{subscript(i)}")) for i, u in enumerate(us, 1)]


def _kink_at_zero(slope: str, convention: str) -> Kink:
    """A junction at z = 0 between the slope ``slope`` (a parameter, or a number) and 1."""

    def left(p: Params) -> float:
        return float(p[slope]) if slope in p else float(slope)

    return Kink(
        where="z = 0",
        convention=convention,
        at=lambda p: 0.0,
        left=left,
        right=lambda p: 1.0,
        reported=left,
    )


ACTIVATIONS: list[Activation] = [
    Activation(
        name="identity",
        symbol="id",
        formula="f(z) = z",
        derivative="f'(z) = 1",
        forward=lambda z, p: z.copy(),
        prime=lambda z, a, p: np.ones_like(z),
        aliases=("linear",),
        graph=_identity_graph,
    ),
    Activation(
        name="sigmoid",
        symbol="σ",
        formula="σ(z) = 1/(1 + e^(−z))",
        derivative="σ'(z) = σ(z)(1 − σ(z))",
        forward=lambda z, p: sigmoid(z),
        prime=lambda z, a, p: a * (1.0 - a),
        graph=_sigmoid_graph,
    ),
    Activation(
        name="tanh",
        symbol="tanh",
        formula="tanh(z) = (e^z − e^(−z))/(e^z + e^(−z))",
        derivative="tanh'(z) = 1 − tanh²(z)",
        forward=lambda z, p: np.tanh(z),
        prime=lambda z, a, p: 1.0 - a * a,
        graph=_tanh_graph,
    ),
    Activation(
        name="relu",
        symbol="ReLU",
        formula="ReLU(z) = max(0, z)",
        derivative="ReLU'(z) = 1 if z > 0, else 0 (0 at z = 0 by convention)",
        forward=lambda z, p: np.maximum(z, 0.0),
        prime=lambda z, a, p: _step(z),
        graph=_relu_graph,
        kinks=(_kink_at_zero("0", "the sheet's choice: the max gate passes no gradient at 0"),),
    ),
    Activation(
        name="leaky_relu",
        symbol="LReLU",
        formula="f(z) = z if z > 0, else α·z",
        derivative="f'(z) = 1 if z > 0, else α",
        forward=lambda z, p: np.where(z > 0, z, p["alpha"] * z),
        prime=lambda z, a, p: np.where(z > 0, 1.0, p["alpha"]),
        params=(Param("alpha", 0.01, "slope for z ≤ 0", low=0.0, symbol="α"),),
        graph=_negative_slope_graph("alpha"),
        kinks=(_kink_at_zero("alpha", "the negative-side slope α, the sheet's 'α otherwise'"),),
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
        graph=_negative_slope_graph("a"),
        kinks=(_kink_at_zero("a", "the negative-side slope a, the sheet's 'a otherwise'"),),
    ),
    Activation(
        name="elu",
        symbol="ELU",
        formula="f(z) = z if z > 0, else α(e^z − 1)",
        derivative="f'(z) = 1 if z > 0, else α·e^z",
        forward=lambda z, p: np.where(z > 0, z, p["alpha"] * np.expm1(np.minimum(z, 0.0))),
        prime=lambda z, a, p: np.where(z > 0, 1.0, p["alpha"] * np.exp(np.minimum(z, 0.0))),
        params=(
            Param("alpha", 1.0, "scale of the negative part", low=0.0, low_open=True, symbol="α"),
        ),
        graph=_elu_graph,
        kinks=(_kink_at_zero("alpha", "the negative-side slope α·e⁰ = α"),),
    ),
    Activation(
        name="softplus",
        symbol="softplus",
        formula="f(z) = ln(1 + e^z)",
        derivative="f'(z) = σ(z)",
        forward=lambda z, p: np.logaddexp(0.0, z),
        prime=lambda z, a, p: sigmoid(z),
        graph=_softplus_graph,
    ),
    Activation(
        name="silu",
        symbol="SiLU",
        formula="f(z) = z·σ(z)",
        derivative="f'(z) = σ(z)(1 + z(1 − σ(z)))",
        forward=lambda z, p: z * sigmoid(z),
        prime=lambda z, a, p: sigmoid(z) * (1.0 + z * (1.0 - sigmoid(z))),
        aliases=("swish",),
        graph=_silu_graph,
    ),
    Activation(
        name="softmax",
        symbol="softmax",
        formula="s_j(z) = e^(z_j) / Σ_k e^(z_k)",
        derivative="∂s_i/∂z_j = s_i(1 − s_j) if i = j, else −s_i·s_j",
        forward=lambda z, p: softmax(z),
        vjp=_softmax_vjp,
        graph=_softmax_graph,
    ),
]

REGISTRY: dict[str, Activation] = index(ACTIVATIONS)
