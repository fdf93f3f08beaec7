"""The activation registry: one record per function, in one table."""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING

import numpy as np

from gradcalc.functions.registry import (
    Activation,
    Array,
    ElementwiseActivation,
    Kink,
    NodeParams,
    Param,
    Params,
    VectorActivation,
    Written,
    fresh,
    index,
    subscript,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from gradcalc.doc.notation import Notation
    from gradcalc.graph import Graph, Node


def sigmoid(z: Array) -> Array:
    # exp of −|z| only, so neither branch can overflow for large |z|: 1/(1 + e) for z ≥ 0,
    # e/(1 + e) below, written with one buffer (this runs on every layer of every step).
    z = np.asarray(z)
    e = np.abs(z, out=np.empty(z.shape))
    np.negative(e, out=e)
    np.exp(e, out=e)
    # The numerator 1 for z ≥ 0, else e: e ≤ 1, so the larger of e and (z ≥ 0) (np.where's
    # result, without its slower select; nan stays nan).
    out = np.maximum(e, np.greater_equal(z, 0.0), out=np.empty(z.shape))
    np.divide(out, np.add(e, 1.0, out=e), out=out)
    return out


def log_sigmoid(z: Array) -> Array:
    return -np.logaddexp(0.0, -z)


def softmax(z: Array) -> Array:
    z = np.asarray(z)
    e = np.subtract(z, z.max(axis=-1, keepdims=True))
    np.exp(e, out=e)
    e /= e.sum(axis=-1, keepdims=True)
    return e


def _sigmoid_prime(z: Array, a: Array, p: Params) -> Array:
    # σ(z)(1 − σ(z)) with 1 − σ(z) = σ(−z): 1 − a cancels where a rounds towards 1 (σ'(40) ≈
    # 4e−18, not 0). A hand-rounded a keeps the sheet's a(1 − a) of the number written.
    return a * np.where(a == sigmoid(z), sigmoid(-z), 1.0 - a)


def _tanh_prime(z: Array, a: Array, p: Params) -> Array:
    # 1 − tanh²(z) = sech²(z) = 4e/(1 + e)² with e = e^(−2|z|): 1 − a² cancels where a rounds
    # towards ±1 (tanh'(20) ≈ 1.7e−17, not 0). A hand-rounded a keeps the sheet's 1 − a².
    e = np.exp(-2.0 * np.abs(z))
    return np.where(a == np.tanh(z), 4.0 * e / ((1.0 + e) * (1.0 + e)), 1.0 - a * a)


def _softmax_vjp(z: Array, a: Array, g: Array, p: Params) -> Array:
    # J = diag(s) − s sᵀ, so Jᵀg = s ⊙ (g − (g·s)).
    diff = g - np.sum(g * a, axis=-1, keepdims=True)
    # At the largest s_d, g_d − g·s = Σ_k s_k(g_d − g_k) when Σ s = 1, with no cancellation as
    # s_d → 1 (the Jacobian's s_d(1 − s_d) is s_d·Σ_{k≠d} s_k, not 0 at (100, −100, 50)). A
    # hand-rounded a, whose sum is not 1, keeps the sheet's form.
    d = np.argmax(a, axis=-1)[..., None]
    g_d = np.take_along_axis(g, d, axis=-1)
    rest = np.sum(a * (g_d - g), axis=-1, keepdims=True)
    own = np.all(a == softmax(z), axis=-1, keepdims=True)
    np.put_along_axis(diff, d, np.where(own, rest, np.take_along_axis(diff, d, axis=-1)), -1)
    return a * diff


def _step(z: Array) -> Array:
    return (z > 0).astype(float)


# Decompositions into graph primitives, with the sheet's node names where it gives them.
# Where the sheet's form would take e^t of a t past LOG_MAX (e^t = inf), the graph is built in
# the mirrored form that only takes e^(−|t|), like the closed forms above: a formula calling
# tanh(x) at 800 then works as `derive tanh --at 800` does.
LOG_MAX = math.log(sys.float_info.max)  # ≈ 709.78


def _identity_graph(g: Graph, x: Node, p: NodeParams) -> Node:
    return g.sum(x, name=fresh(g, "f"))


def _sigmoid_graph(g: Graph, x: Node, p: NodeParams, out: str = "f") -> Node:
    if -x.value > LOG_MAX:  # σ(x) = e^x/(1 + e^x)
        v = g.exp(x, name=fresh(g, "v"))
        w = g.add(1.0, v, name=fresh(g, "w"))
        return g.div(v, w, name=fresh(g, out))
    u = g.neg(x, name=fresh(g, "u"))
    v = g.exp(u, name=fresh(g, "v"))
    w = g.add(1.0, v, name=fresh(g, "w"))
    return g.div(1.0, w, name=fresh(g, out))


# Past |x| = 2 the sheet's four paths of tanh cancel: the two through e^x sum to 2v/w², a
# (e^(2|x|) + 1)/2-th of either (28 at 2, 2e8 at 10; at 19 the sum is 0 in float64 and half the
# derivative is lost). The mirrored form's paths all have one sign.
TANH_SHEET = 2.0


def _tanh_graph(g: Graph, x: Node, p: NodeParams) -> Node:
    if abs(x.value) > TANH_SHEET:  # tanh(x) = ±(1 − e^(−2|x|))/(1 + e^(−2|x|))
        sign = 1.0 if x.value > 0 else -1.0
        t = g.mul(-2.0 * sign, x, name=fresh(g, "t"))
        v = g.exp(t, name=fresh(g, "v"))
        w = g.add(1.0, v, name=fresh(g, "w"))
        z = g.sub(1.0, v, name=fresh(g, "z")) if sign > 0 else g.sub(v, 1.0, name=fresh(g, "z"))
        return g.div(z, w, name=fresh(g, "y"))
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
        return g.select(
            x.value > 0,
            x,
            c,
            cond_text=f"{x.name} > 0",
            cond_tex=f"{x.tex} > 0",
            name=fresh(g, "y"),
        )

    return build


def _elu_graph(g: Graph, x: Node, p: NodeParams) -> Node:
    u = g.exp(x, name=fresh(g, "u"))
    v = g.sub(u, 1.0, name=fresh(g, "v"))
    c = g.mul(p["alpha"], v, name=fresh(g, "c"))
    return g.select(
        x.value > 0, x, c, cond_text=f"{x.name} > 0", cond_tex=f"{x.tex} > 0", name=fresh(g, "y")
    )


def _softplus_graph(g: Graph, x: Node, p: NodeParams) -> Node:
    if x.value > LOG_MAX:  # ln(1 + e^x) = x + ln(1 + e^(−x))
        m = g.neg(x, name=fresh(g, f"−{x.name}"))
        u = g.exp(m, name=fresh(g, "u"))
        v = g.add(1.0, u, name=fresh(g, "v"))
        r = g.log(v, name=fresh(g, "r"))
        return g.add(x, r, name=fresh(g, "f"))
    u = g.exp(x, name=fresh(g, "u"))
    v = g.add(1.0, u, name=fresh(g, "v"))
    return g.log(v, name=fresh(g, "f"))


def _silu_graph(g: Graph, x: Node, p: NodeParams) -> Node:
    s = _sigmoid_graph(g, x, p, out="σ")
    return g.mul(x, s, name=fresh(g, "f"))


def _softmax_graph(g: Graph, xs: list[Node], p: NodeParams) -> list[Node]:
    us = [g.exp(x, name=fresh(g, f"u{subscript(i)}")) for i, x in enumerate(xs, 1)]
    t = g.sum(*us, name=fresh(g, "t"))
    # s_d = u_d/t's two paths from u_d, 1/t and −u_d/t², cancel as s_d → 1: their sum
    # s_d(1 − s_d)/u_d is 0 in float64 at (100, −100, 50). Only one s can pass ½, and that one
    # is built as 1/(1 + r/u_d) with r = Σ_{k≠d} u_k, whose paths all have one sign.
    d = max(range(len(us)), key=lambda k: us[k].value)
    others = [u for k, u in enumerate(us) if k != d]
    dominant = bool(others) and us[d].value > math.fsum(u.value for u in others)
    outs = []
    for i, u in enumerate(us, 1):
        name = fresh(g, f"s{subscript(i)}")
        if dominant and i - 1 == d:
            r = g.sum(*others, name=fresh(g, "r"))
            q = g.div(r, u, name=fresh(g, "q"))
            w = g.add(1.0, q, name=fresh(g, "w"))
            outs.append(g.div(1.0, w, name=name))
        else:
            outs.append(g.div(u, t, name=name))
    return outs


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


def _softmax_vjp_written(
    nt: Notation, l: int, j: int, a: Array, g: Array, shown: int
) -> tuple[str, str]:
    """δ_j = a_j(∂C/∂a_j − Σ_i a_i ∂C/∂a_i), the sum written out for its first `shown` terms."""
    inner = nt.total(
        [nt.prod((a[i], False), (g[i], False), lead=i == 0) for i in range(shown)],
        a.shape[0] - shown,
    )
    isum = f"{nt.total_sym('i')} {nt.sym('a', l, 'i')} {nt.d(nt.sym('a', l, 'i'))}"
    aj = nt.sym("a", l, j + 1)
    return (
        f"{aj}({nt.d(aj)} {nt.minus} {isum})",
        f"{nt.num(a[j])}{nt.ttimes}({nt.num(g[j])} {nt.minus} ({inner}))",
    )


def _op(name: str) -> Written:
    """A function name as the sheet writes it: upright in TeX."""
    return Written(name, rf"\operatorname{{{name}}}")


ACTIVATIONS: list[Activation] = [
    ElementwiseActivation(
        name="identity",
        symbol=_op("id"),
        formula=Written("f(z) = z", "f(z) = z"),
        derivative=Written("f'(z) = 1", "f'(z) = 1"),
        forward=lambda z, p: z.copy(),
        prime=lambda z, a, p: np.ones_like(z),
        aliases=("linear",),
        graph=_identity_graph,
        bare=True,
    ),
    ElementwiseActivation(
        name="sigmoid",
        symbol=Written("σ", r"\sigma"),
        formula=Written("σ(z) = 1/(1 + e^(−z))", r"\sigma (z) = 1/(1 + e^{-z})"),
        derivative=Written("σ'(z) = σ(z)(1 − σ(z))", r"\sigma '(z) = \sigma (z)(1 - \sigma (z))"),
        forward=lambda z, p: sigmoid(z),
        prime=_sigmoid_prime,
        graph=_sigmoid_graph,
    ),
    ElementwiseActivation(
        name="tanh",
        symbol=Written("tanh", r"\tanh"),
        formula=Written(
            "tanh(z) = (e^z − e^(−z))/(e^z + e^(−z))", r"\tanh(z) = (e^z - e^{-z})/(e^z + e^{-z})"
        ),
        derivative=Written("tanh'(z) = 1 − tanh²(z)", r"\tanh'(z) = 1 - \tanh^{2}(z)"),
        forward=lambda z, p: np.tanh(z),
        prime=_tanh_prime,
        graph=_tanh_graph,
    ),
    ElementwiseActivation(
        name="relu",
        symbol=_op("ReLU"),
        formula=Written("ReLU(z) = max(0, z)", r"\operatorname{ReLU}(z) = \max(0, z)"),
        derivative=Written(
            "ReLU'(z) = 1 if z > 0, else 0 (0 at z = 0 by convention)",
            r"\operatorname{ReLU}'(z) = 1 \text{ if } z > 0, \text{ else } 0 (0 \text{ at } z = 0"
            r" \text{ by convention })",
        ),
        forward=lambda z, p: np.maximum(z, 0.0),
        prime=lambda z, a, p: _step(z),
        graph=_relu_graph,
        kinks=(_kink_at_zero("0", "the sheet's choice: the max gate passes no gradient at 0"),),
    ),
    ElementwiseActivation(
        name="leaky_relu",
        symbol=_op("LReLU"),
        formula=Written(
            "f(z) = z if z > 0, else α·z",
            r"f(z) = z \text{ if } z > 0, \text{ else } \alpha \cdot z",
        ),
        derivative=Written(
            "f'(z) = 1 if z > 0, else α", r"f'(z) = 1 \text{ if } z > 0, \text{ else } \alpha"
        ),
        forward=lambda z, p: np.where(z > 0, z, p["alpha"] * z),
        prime=lambda z, a, p: np.where(z > 0, 1.0, p["alpha"]),
        params=(Param("alpha", 0.01, "slope for z ≤ 0", low=0.0, symbol="α"),),
        graph=_negative_slope_graph("alpha"),
        kinks=(_kink_at_zero("alpha", "the negative-side slope α, the sheet's 'α otherwise'"),),
    ),
    ElementwiseActivation(
        name="prelu",
        symbol=_op("PReLU"),
        formula=Written(
            "f(z) = z if z > 0, else a·z (a learned)",
            r"f(z) = z \text{ if } z > 0, \text{ else } a\cdot z (a \text{ learned })",
        ),
        derivative=Written(
            "∂f/∂z = 1 if z > 0, else a;  ∂f/∂a = z if z ≤ 0, else 0",
            r"\partial f/\partial z = 1 \text{ if } z > 0, \text{ else } a; \partial f/\partial a"
            r" = z \text{ if } z \le 0, \text{ else } 0",
        ),
        forward=lambda z, p: np.where(z > 0, z, p["a"] * z),
        prime=lambda z, a, p: np.where(z > 0, 1.0, p["a"]),
        param_partials=lambda z, a, p: {"a": np.where(z > 0, 0.0, z)},
        params=(
            Param(
                "a",
                0.25,
                "slope for z ≤ 0, learned by SGD",
                learnable=True,
                # α on the sheet keeps it apart from the activations a^l_j.
                written=Written("α", r"\alpha"),
            ),
        ),
        graph=_negative_slope_graph("a"),
        kinks=(_kink_at_zero("a", "the negative-side slope a, the sheet's 'a otherwise'"),),
    ),
    ElementwiseActivation(
        name="elu",
        symbol=_op("ELU"),
        formula=Written(
            "f(z) = z if z > 0, else α(e^z − 1)",
            r"f(z) = z \text{ if } z > 0, \text{ else } \alpha (e^z - 1)",
        ),
        derivative=Written(
            "f'(z) = 1 if z > 0, else α·e^z",
            r"f'(z) = 1 \text{ if } z > 0, \text{ else } \alpha \cdot e^z",
        ),
        forward=lambda z, p: np.where(z > 0, z, p["alpha"] * np.expm1(np.minimum(z, 0.0))),
        prime=lambda z, a, p: np.where(z > 0, 1.0, p["alpha"] * np.exp(np.minimum(z, 0.0))),
        params=(
            Param("alpha", 1.0, "scale of the negative part", low=0.0, low_open=True, symbol="α"),
        ),
        graph=_elu_graph,
        kinks=(_kink_at_zero("alpha", "the negative-side slope α·e⁰ = α"),),
    ),
    ElementwiseActivation(
        name="softplus",
        symbol=_op("softplus"),
        formula=Written("f(z) = ln(1 + e^z)", r"f(z) = \ln(1 + e^z)"),
        derivative=Written("f'(z) = σ(z)", r"f'(z) = \sigma (z)"),
        forward=lambda z, p: np.logaddexp(0.0, z),
        prime=lambda z, a, p: sigmoid(z),
        graph=_softplus_graph,
    ),
    ElementwiseActivation(
        name="silu",
        symbol=_op("SiLU"),
        formula=Written("f(z) = z·σ(z)", r"f(z) = z\cdot \sigma (z)"),
        derivative=Written(
            "f'(z) = σ(z)(1 + z(1 − σ(z)))", r"f'(z) = \sigma (z)(1 + z(1 - \sigma (z)))"
        ),
        forward=lambda z, p: z * sigmoid(z),
        prime=lambda z, a, p: sigmoid(z) * (1.0 + z * (1.0 - sigmoid(z))),
        aliases=("swish",),
        graph=_silu_graph,
    ),
    VectorActivation(
        name="softmax",
        symbol=_op("softmax"),
        formula=Written("s_j(z) = e^(z_j) / Σ_k e^(z_k)", r"s_j(z) = e^{z_j} / \sum _k e^{z_k}"),
        derivative=Written(
            "∂s_i/∂z_j = s_i(1 − s_j) if i = j, else −s_i·s_j",
            r"\partial s_i/\partial z_j = s_i(1 - s_j) \text{ if } i = j,"
            r" \text{ else } -s_i\cdot s_j",
        ),
        forward=lambda z, p: softmax(z),
        vjp=_softmax_vjp,
        vjp_written=_softmax_vjp_written,
        graph=_softmax_graph,
        output="s",
    ),
]

REGISTRY: dict[str, Activation] = index(ACTIVATIONS)
