"""The loss registry: one record per cost function, in one table.

Arrays are (examples, units); `value` returns one cost per example and `grad` returns ∂C_x/∂a.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from gradcalc.functions.activations import log_sigmoid, sigmoid
from gradcalc.functions.registry import (
    Array,
    Fused,
    Kink,
    Loss,
    NodeParams,
    Param,
    Params,
    Written,
    fresh,
    index,
    subscript,
)

if TYPE_CHECKING:
    from gradcalc.doc.notation import Notation
    from gradcalc.graph import Graph, Node


def _n(a: Array) -> int:
    return a.shape[-1]


def _xlogy(y: Array, a: Array) -> Array:
    # y·ln a with 0·ln 0 = 0, so a unit with y = 0 never produces log(0).
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y == 0, 0.0, y * np.log(np.where(y == 0, 1.0, a)))


def _xlog1my(y: Array, a: Array) -> Array:
    # y·ln(1 − a) as log1p(−a): ln of the rounded 1 − a is 2e−5 off at a = 1e−12.
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y == 0, 0.0, y * np.log1p(-np.where(y == 0, 0.0, a)))


def _huber(r: Array, delta: float) -> Array:
    ar = np.abs(r)
    return np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta))


def _unit(v: Array) -> tuple[Array, Array]:
    """v/‖v‖ and ‖v‖ row-wise, scaled first so that squaring 1e200 cannot overflow."""
    scale = np.max(np.abs(v), axis=-1, keepdims=True)
    scale = np.where(scale == 0, 1.0, scale)
    scaled = v / scale
    norm = np.sqrt(np.sum(scaled * scaled, axis=-1, keepdims=True))
    return scaled / norm, scale * norm


def _cosine_value(a: Array, y: Array, p: Params) -> Array:
    return 1.0 - np.sum(_unit(y)[0] * _unit(a)[0], axis=-1)


def _cosine_grad(a: Array, y: Array, p: Params) -> Array:
    # −(ŷ − (ŷ·â) â)/‖a‖: the part of ŷ orthogonal to a, so the gradient never changes ‖a‖.
    y_hat, _ = _unit(y)
    a_hat, a_norm = _unit(a)
    cos = np.sum(y_hat * a_hat, axis=-1, keepdims=True)
    return -(y_hat - cos * a_hat) / a_norm


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


def _softmax_share(z: Array) -> tuple[Array, Array, Array]:
    """For each row of z, its largest unit t, the other units' share r = Σ_{k≠t} e^(z_k − z_t)
    and softmax(z), bit for bit as the activation computes it, from the same max and
    exponentials. r is summed without the top unit's 1, so a share of 1e-37 is kept rather than
    lost in 1 + r."""
    z = np.asarray(z, dtype=float)
    top = np.argmax(z, axis=-1)[..., None]
    e = np.subtract(z, z.max(axis=-1, keepdims=True))
    np.exp(e, out=e)
    total = e.sum(axis=-1, keepdims=True)
    np.put_along_axis(e, top, 0.0, axis=-1)
    share = e.sum(axis=-1, keepdims=True)
    np.put_along_axis(e, top, 1.0, axis=-1)  # e^(z_t − z_t), exactly
    e /= total
    return top, share, e


def _ce_softmax_with_output(z: Array, y: Array, p: Params) -> tuple[Array, Array]:
    # C_x = Σ_j y_j (ln Σ_k e^(z_k) − z_j) = Σ_j y_j ((z_t − z_j) + log1p(r)): both terms ≥ 0,
    # so a tiny cost (z = (42.4, −42.9): 8.95e-38) keeps its digits instead of rounding to 0.
    z = np.asarray(z, dtype=float)
    top, share, s = _softmax_share(z)
    gap = np.take_along_axis(z, top, axis=-1) - z
    value = (y * (gap + np.log1p(share))).sum(axis=-1)
    return value, s


def _ce_softmax_value(z: Array, y: Array, p: Params) -> Array:
    return _ce_softmax_with_output(z, y, p)[0]


def _ce_softmax_delta(s: Array, y: Array, p: Params) -> Array:
    # s = softmax(z): δ = s Σ_j y_j − y, which is s − y for a one-hot or probability target.
    # From a written a (check's hand calculation); the engine takes δ from z, below.
    y = np.asarray(y)
    return s * y.sum(axis=-1, keepdims=True) - y


def _ce_softmax_delta_from_z(z: Array, y: Array, p: Params) -> Array:
    # δ_t = s_t Y − y_t with s_t = 1 − r/(1 + r) and Y = Σ_j y_j: (Y − y_t) − Y r/(1 + r), which
    # for a one-hot target at t is −r/(1 + r), not 1 − 1 = 0 where s_t rounds to 1.
    y = np.asarray(y, dtype=float)
    top, share, s = _softmax_share(z)
    total_y = y.sum(axis=-1, keepdims=True)
    delta = s * total_y - y
    top_delta = (total_y - np.take_along_axis(y, top, axis=-1)) - total_y * share / (1.0 + share)
    np.put_along_axis(delta, top, top_delta, axis=-1)
    return delta


def _softmax_complements(z: Array) -> tuple[Array, Array, Array, Array, Array]:
    """For s = softmax(z), from z and without cancellation: s, ln s_j, ln(1 − s_j), and for the
    largest unit t of each row 1 − s_t and s_i/(1 − s_t). 1 − s_t is the other units' share,
    never 1 minus an s_t that rounded to 1 (z = (40, 0): 1 − s₁ = e⁻⁴⁰, not 0), and ln s_t is
    −log1p of that share (not ln of a sum that rounded to 1)."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # masked below
        return _complements(np.asarray(z, dtype=float))


def _complements(z: Array) -> tuple[Array, Array, Array, Array, Array]:
    top = np.argmax(z, axis=-1)[..., None]
    m = np.take_along_axis(z, top, axis=-1)
    others = z.copy()
    np.put_along_axis(others, top, -np.inf, axis=-1)
    share = np.exp(others - m).sum(axis=-1, keepdims=True)  # Σ_{k≠t} e^(z_k − z_t)
    log_total = np.log1p(share)  # ln Σ_k e^(z_k) − z_t
    s = np.exp(z - m) / (1.0 + share)
    log_s = (z - m) - log_total  # z_t − m is 0 exactly: ln s_t = −log1p(share)
    # Every other unit has s_j ≤ 1/2, where log1p(−s_j) is exact to rounding.
    log_q = np.log1p(-s)
    m2 = others.max(axis=-1, keepdims=True)  # −∞ for a single unit
    shift = np.where(np.isfinite(m2), m2, 0.0)
    lse_rest = shift + np.log(np.exp(others - shift).sum(axis=-1, keepdims=True))
    log_q_top = (lse_rest - m) - log_total  # ln(1 − s_t) = ln Σ_{k≠t} e^(z_k) − ln Σ_k e^(z_k)
    np.put_along_axis(log_q, top, log_q_top, axis=-1)
    over_q_top = np.exp(z - lse_rest)  # s_i/(1 − s_t) = e^(z_i)/Σ_{k≠t} e^(z_k) ≤ 1 for i ≠ t
    return s, log_s, log_q, np.exp(log_q_top), over_q_top


def _bce_softmax_value(z: Array, y: Array, p: Params) -> Array:
    _, log_s, log_q, _, _ = _softmax_complements(z)
    y = np.asarray(y, dtype=float)
    # y_j = 1 leaves out ln(1 − s_j) (1 − s_j = 0 for a single unit), as 0·ln 0 = 0. Every
    # term has the same sign: the sum loses nothing.
    ones = y == 1.0
    terms = y * log_s + np.where(ones, 0.0, (1.0 - y) * np.where(ones, 0.0, log_q))
    return -terms.sum(axis=-1)


def _bce_softmax_delta(z: Array, y: Array, p: Params) -> Array:
    """∂C/∂z_i of C = −Σ_j [y_j ln s_j + (1 − y_j) ln(1 − s_j)], s = softmax(z):

        δ_i = n s_i − y_i − s_i Σ_{k≠i} (1 − y_k)/(1 − s_k),

    rearranged so that nothing near 1 is subtracted from 1. With t the largest unit,
    Y = Σ_{k≠t} y_k, c_k = (1 − y_k) s_k/(1 − s_k) for k ≠ t (each ≤ 1) and B = Σ c_k:

        δ_t = (1 − y_t) + Y − B − (1 − s_t)(1 + Y − B)
        δ_i = s_i (2 + Y − y_i − B + c_i) − y_i − (1 − y_t) s_i/(1 − s_t)      (i ≠ t)
    """
    s, _, _, q_top, over_q_top = _softmax_complements(z)
    y = np.asarray(y, dtype=float)
    top = np.argmax(np.asarray(z), axis=-1)[..., None]
    is_top = np.zeros(s.shape, dtype=bool)
    np.put_along_axis(is_top, top, True, axis=-1)
    c = np.where(is_top, 0.0, (1.0 - y) * s / np.where(is_top, 1.0, 1.0 - s))
    b = c.sum(axis=-1, keepdims=True)
    y_top = np.take_along_axis(y, top, axis=-1)
    y_rest = np.where(is_top, 0.0, y).sum(axis=-1, keepdims=True)
    delta_top = (1.0 - y_top) + y_rest - b - q_top * (1.0 + y_rest - b)
    from_top = (1.0 - y_top) * np.where(is_top, 0.0, over_q_top)
    delta = s * (2.0 + y_rest - y - b + c) - y - from_top
    np.put_along_axis(delta, top, delta_top, axis=-1)
    return delta


def _softmax_bce_written(
    nt: Notation, j: int, a: Array, y: Array, aj: str, yj: str
) -> tuple[str, str]:
    # δ_j = t_j − a_j Σ_i t_i with t_i = (a_i − y_i)/(1 − a_i) = ∂C/∂a_i · a_i: the BCE
    # gradient through the softmax Jacobian; t_i = −1 exactly where y_i = 1. The largest unit's
    # 1 − a_t is the others' sum, which does not round to 0 where a_t rounds to 1.
    complement = 1.0 - a
    top = int(np.argmax(a))
    complement[top] = np.delete(a, top).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(y == 1.0, -1.0, (a - y) / np.where(y == 1.0, 1.0, complement))
    ai, yi = nt.sym("a", None, "i"), nt.sym("y", None, "i")
    return (
        f"({aj} {nt.minus} {yj})/(1 {nt.minus} {aj}) {nt.minus} {aj} {nt.total_sym('i')} "
        f"({ai} {nt.minus} {yi})/(1 {nt.minus} {ai})",
        f"{nt.par(float(t[j]))} {nt.minus} {nt.num(a[j])}{nt.ttimes}{nt.par(float(t.sum()))}",
    )


# Decompositions into graph primitives, with the sheet's node names where it gives them. The
# targets y_j arrive as constant nodes; a node's name carries its unit's index (u₁, v₂, ...).

Nodes = list["Node"]


def _residual_graph(g: Graph, a: Nodes, y: Nodes, power: str) -> Node:
    """S = Σ_j v_j with u_j = y_j − a_j and v_j = u_j² ("square") or |u_j| ("abs")."""
    vs = []
    for j, (aj, yj) in enumerate(zip(a, y, strict=True), 1):
        u = g.sub(yj, aj, name=fresh(g, f"u{subscript(j)}"))
        v_name = fresh(g, f"v{subscript(j)}")
        vs.append(g.pow(u, 2.0, name=v_name) if power == "square" else g.abs(u, name=v_name))
    return g.sum(*vs, name=fresh(g, "S"))


def _quadratic_graph(g: Graph, a: Nodes, y: Nodes, p: NodeParams) -> Node:
    total = _residual_graph(g, a, y, "square")
    return g.mul(g.const(0.5, name="½"), total, name=fresh(g, "C"))


def _mean_graph(power: str) -> Callable[[Graph, Nodes, Nodes, NodeParams], Node]:
    def build(g: Graph, a: Nodes, y: Nodes, p: NodeParams) -> Node:
        total = _residual_graph(g, a, y, power)
        return g.div(total, g.const(float(len(a)), name="n"), name=fresh(g, "C"))

    return build


def _huber_graph(g: Graph, a: Nodes, y: Nodes, p: NodeParams) -> Node:
    # The sheet's t = y − a, u = t²/2, v = δ|t|, w = v − δ²/2, and one select between u and w.
    delta = p["delta"]
    offset = g.const(delta.value * delta.value / 2, name="δ²/2")  # inf, not OverflowError
    hs = []
    for j, (aj, yj) in enumerate(zip(a, y, strict=True), 1):
        k = subscript(j)
        t = g.sub(yj, aj, name=fresh(g, f"t{k}"))
        q = g.pow(t, 2.0, name=fresh(g, f"q{k}"))
        u = g.div(q, 2.0, name=fresh(g, f"u{k}"))
        m = g.abs(t, name=fresh(g, f"m{k}"))
        v = g.mul(delta, m, name=fresh(g, f"v{k}"))
        w = g.sub(v, offset, name=fresh(g, f"w{k}"))
        inside = abs(t.value) <= delta.value
        hs.append(
            g.select(
                inside,
                u,
                w,
                cond_text=f"|{t.name}| ≤ δ",
                cond_tex=rf"\vert {t.tex}\vert \le \delta ",
                name=fresh(g, f"h{k}"),
            )
        )
    total = g.sum(*hs, name=fresh(g, "S"))
    return g.div(total, g.const(float(len(a)), name="n"), name=fresh(g, "C"))


def _cross_entropy_graph(g: Graph, a: Nodes, y: Nodes, p: NodeParams) -> Node:
    vs: list[Node | float] = []
    for j, (aj, yj) in enumerate(zip(a, y, strict=True), 1):
        # A term with y_j = 0 is 0 whatever a_j is (0·ln 0 = 0): it is left out of the graph, so
        # an a_j ≤ 0 there cannot put ln of a non-positive number into it.
        if yj.value == 0:
            continue
        u = g.log(aj, name=fresh(g, f"u{subscript(j)}"))
        minus_y = g.const(-yj.value, name=f"−{yj.name}")
        vs.append(g.mul(minus_y, u, name=fresh(g, f"v{subscript(j)}")))
    return g.sum(*(vs or [0.0]), name=fresh(g, "C"))


def _binary_cross_entropy_graph(g: Graph, a: Nodes, y: Nodes, p: NodeParams) -> Node:
    hs = []
    for j, (aj, yj) in enumerate(zip(a, y, strict=True), 1):
        k = subscript(j)
        u = g.log(aj, name=fresh(g, f"u{k}"))
        r = g.sub(1.0, aj, name=fresh(g, f"r{k}"))
        q = g.log(r, name=fresh(g, f"q{k}"))
        v = g.mul(yj, u, name=fresh(g, f"v{k}"))
        w = g.mul(g.const(1.0 - yj.value, name=f"(1 − {yj.name})"), q, name=fresh(g, f"w{k}"))
        hs.append(g.add(v, w, name=fresh(g, f"h{k}")))
    total = g.sum(*hs, name=fresh(g, "S"))
    return g.neg(total, name=fresh(g, "C"))


def _hinge_graph(g: Graph, a: Nodes, y: Nodes, p: NodeParams) -> Node:
    hs = []
    for j, (aj, yj) in enumerate(zip(a, y, strict=True), 1):
        k = subscript(j)
        u = g.mul(g.const(-yj.value, name=f"−{yj.name}"), aj, name=fresh(g, f"u{k}"))
        v = g.add(1.0, u, name=fresh(g, f"v{k}"))
        hs.append(g.max0(v, name=fresh(g, f"h{k}")))
    return g.sum(*hs, name=fresh(g, "C"))


def _cosine_graph(g: Graph, a: Nodes, y: Nodes, p: NodeParams) -> Node:
    us = [
        g.mul(yj, aj, name=fresh(g, f"u{subscript(j)}"))
        for j, (aj, yj) in enumerate(zip(a, y, strict=True), 1)
    ]
    dot = g.sum(*us, name=fresh(g, "d"))
    qs = [g.pow(aj, 2.0, name=fresh(g, f"q{subscript(j)}")) for j, aj in enumerate(a, 1)]
    norm_a = g.pow(g.sum(*qs, name=fresh(g, "r")), 0.5, name=fresh(g, "m"))
    norm_y = g.const(math.hypot(*(yj.value for yj in y)), name="‖y‖")  # 1e200 squared: inf
    k = g.mul(norm_y, norm_a, name=fresh(g, "k"))
    c = g.div(dot, k, name=fresh(g, "c"))
    return g.sub(1.0, c, name=fresh(g, "C"))


# The costs as a hand calculation writes them, with one example's numbers: y_j given (written as
# in the config), a_j computed. Each returns the stages after the formula, in the notation `nt`.


def _pairs(y: Array, a: Array, shown: int) -> list[tuple[float, float]]:
    return list(zip(y[:shown].tolist(), a[:shown].tolist(), strict=True))


def _scaled(nt: Notation, scale: str, terms: list[str], hidden: int) -> str:
    """scale·(sum of the terms): a sum of several terms behind a factor goes in brackets."""
    body = nt.total(terms, hidden)
    if scale and (len(terms) > 1 or hidden):
        body = f"[{body}]"
    return f"{scale}{body}"


def _mean_scale(nt: Notation, n: int) -> str:
    return nt.frac(1, n) if n > 1 else ""


def _residual(nt: Notation, yv: float, av: float) -> str:
    """y_j − a_j with its numbers."""
    return f"{nt.num(yv, True)} {nt.minus} {nt.par(av)}"


def _squares_written(mean: bool) -> Callable[..., tuple[str, ...]]:
    def write(nt: Notation, a: Array, y: Array, shown: int, p: Params) -> tuple[str, ...]:
        terms = [nt.squared(f"({_residual(nt, yv, av)})") for yv, av in _pairs(y, a, shown)]
        scale = _mean_scale(nt, a.shape[0]) if mean else nt.half
        return (_scaled(nt, scale, terms, a.shape[0] - shown),)

    return write


def _l1_written(nt: Notation, a: Array, y: Array, shown: int, p: Params) -> tuple[str, ...]:
    terms = [f"|{_residual(nt, yv, av)}|" for yv, av in _pairs(y, a, shown)]
    return (_scaled(nt, _mean_scale(nt, a.shape[0]), terms, a.shape[0] - shown),)


def _huber_written(nt: Notation, a: Array, y: Array, shown: int, p: Params) -> tuple[str, ...]:
    """Each h_δ(r) as the branch that applies: ½r² where |r| ≤ δ, else δ(|r| − δ/2)."""
    delta = p["delta"]
    d = nt.par(delta, True)
    terms = [
        nt.half + nt.squared(f"({_residual(nt, yv, av)})")
        if abs(yv - av) <= delta  # the value's test, on the same numbers
        else f"{d}(|{_residual(nt, yv, av)}| {nt.minus} {d}/2)"
        for yv, av in _pairs(y, a, shown)
    ]
    return (_scaled(nt, _mean_scale(nt, a.shape[0]), terms, a.shape[0] - shown),)


def _cross_entropy_written(
    nt: Notation, a: Array, y: Array, shown: int, p: Params
) -> tuple[str, ...]:
    terms = [f"{nt.num(yv, True)} {nt.ln} {nt.num(av)}" for yv, av in _pairs(y, a, shown)]
    return (f"{nt.minus}[{nt.total(terms, a.shape[0] - shown)}]",)


def _binary_cross_entropy_written(
    nt: Notation, a: Array, y: Array, shown: int, p: Params
) -> tuple[str, ...]:
    terms = [
        f"[{nt.num(yv, True)} {nt.ln} {nt.par(av)} + "
        f"(1 {nt.minus} {nt.par(yv, True)}) {nt.ln}(1 {nt.minus} {nt.par(av)})]"
        for yv, av in _pairs(y, a, shown)
    ]
    hidden = a.shape[0] - shown
    body = nt.total(terms, hidden)
    return (f"{nt.minus}({body})" if len(terms) > 1 or hidden else f"{nt.minus}{body}",)


def _hinge_written(nt: Notation, a: Array, y: Array, shown: int, p: Params) -> tuple[str, ...]:
    fn = r"\max" if nt.tex else "max"
    terms = [
        f"{fn}(0, 1 {nt.minus} {nt.prod((yv, True), (av, False))})"
        for yv, av in _pairs(y, a, shown)
    ]
    return (nt.total(terms, a.shape[0] - shown),)


def _cosine_written(nt: Notation, a: Array, y: Array, shown: int, p: Params) -> tuple[str, ...]:
    """1 − (y·a)/(‖y‖ ‖a‖): the dot product term by term, then as a number; the norms as
    numbers (worked out here for the writing, like the products of a sum)."""
    with np.errstate(over="ignore"):
        dot = float(np.dot(y, a))
    norms = nt.prod((math.hypot(*y.tolist()), False), (math.hypot(*a.tolist()), False))
    products = nt.total(
        [
            nt.prod((yv, True), (av, False), lead=i == 0)
            for i, (yv, av) in enumerate(_pairs(y, a, shown))
        ],
        a.shape[0] - shown,
    )
    return (
        f"1 {nt.minus} ({products})/({norms})",
        f"1 {nt.minus} {nt.par(dot)}/({norms})",
    )


def _upstream_graph(g: Graph, a: Nodes, y: Nodes, p: NodeParams) -> Node:
    us = [
        g.mul(yj, aj, name=fresh(g, f"u{subscript(j)}"))
        for j, (aj, yj) in enumerate(zip(a, y, strict=True), 1)
    ]
    return g.sum(*us, name=fresh(g, "C"))


def _upstream_written(nt: Notation, a: Array, y: Array, shown: int, p: Params) -> tuple[str, ...]:
    terms = [
        nt.prod((yv, True), (av, False), lead=i == 0)
        for i, (yv, av) in enumerate(_pairs(y, a, shown))
    ]
    return (nt.total(terms, a.shape[0] - shown),)


# δ^L_j of a fused pair, written from z: symbolically and with its numbers.


def _output_minus_target(
    nt: Notation, j: int, a: Array, y: Array, aj: str, yj: str
) -> tuple[str, str]:
    return f"{aj} {nt.minus} {yj}", f"{nt.num(a[j])} {nt.minus} {nt.par(y[j], True)}"


def _softmax_cross_entropy_written(
    nt: Notation, j: int, a: Array, y: Array, aj: str, yj: str
) -> tuple[str, str]:
    # δ_j = a_j Σ_i y_i − y_j, which is a_j − y_j when the targets sum to 1.
    if abs(float(np.sum(y)) - 1.0) < 1e-12:
        return _output_minus_target(nt, j, a, y, aj, yj)
    total = nt.total_sym("i") + " " + nt.sym("y", None, "i")
    return (
        f"{aj} {total} {nt.minus} {yj}",
        f"{nt.num(a[j])}{nt.ttimes}{nt.par(float(np.sum(y)), True)} {nt.minus} "
        f"{nt.par(y[j], True)}",
    )


def _sigmoid_cross_entropy_written(
    nt: Notation, j: int, a: Array, y: Array, aj: str, yj: str
) -> tuple[str, str]:
    return (
        f"{nt.minus}{yj}(1 {nt.minus} {aj})",
        f"{nt.minus}{nt.par(y[j], True)}{nt.ttimes}(1 {nt.minus} {nt.num(a[j])})",
    )


def _huber_kink(sign: float) -> Kink:
    """Where r = y_j − a_j = sign·δ: the quadratic piece meets the linear one, slopes equal."""

    def slope(y: float, n: int, p: Params) -> float:
        return -sign * p["delta"] / n

    return Kink(
        where=f"y_j − a_j = {'' if sign > 0 else '−'}δ",
        convention="the quadratic branch, |r| ≤ δ",
        at=lambda y, p: y - sign * p["delta"],
        left=slope,
        right=slope,
        reported=slope,
    )


LOSSES: list[Loss] = [
    Loss(
        name="quadratic",
        formula=Written("C = ½ Σ_j (y_j − a_j)²", r"C = \tfrac{1}{2} \sum _j (y_j - a_j)^{2}"),
        derivative=Written("∂C/∂a_j = a_j − y_j", r"\partial C/\partial a_j = a_j - y_j"),
        value=lambda a, y, p: 0.5 * np.sum((y - a) ** 2, axis=-1),
        grad=lambda a, y, p: a - y,
        graph=_quadratic_graph,
        cost_written=_squares_written(mean=False),
        residual_scale=lambda nt, n: "",
    ),
    Loss(
        name="mse",
        formula=Written("C = (1/n) Σ_j (y_j − a_j)²", r"C = (1/n) \sum _j (y_j - a_j)^{2}"),
        derivative=Written(
            "∂C/∂a_j = (2/n)(a_j − y_j)", r"\partial C/\partial a_j = (2/n)(a_j - y_j)"
        ),
        value=lambda a, y, p: np.mean((y - a) ** 2, axis=-1),
        grad=lambda a, y, p: 2.0 * (a - y) / _n(a),
        aliases=("l2",),
        graph=_mean_graph("square"),
        cost_written=_squares_written(mean=True),
        residual_scale=lambda nt, n: "2" if n == 1 else nt.frac(2, n),
    ),
    Loss(
        name="l1",
        formula=Written("C = (1/n) Σ_j |y_j − a_j|", r"C = (1/n) \sum _j |y_j - a_j|"),
        derivative=Written(
            "∂C/∂a_j = −sgn(y_j − a_j)/n (0 where y_j = a_j)",
            r"\partial C/\partial a_j = -\operatorname{sgn}(y_j - a_j)/n"
            r" (0 \text{ where } y_j = a_j)",
        ),
        value=lambda a, y, p: np.mean(np.abs(y - a), axis=-1),
        grad=lambda a, y, p: np.sign(a - y) / _n(a),
        aliases=("mae",),
        graph=_mean_graph("abs"),
        cost_written=_l1_written,
        kinks=(
            Kink(
                where="a_j = y_j",
                convention="the sheet's sgn(0) = 0",
                at=lambda y, p: y,
                left=lambda y, n, p: -1.0 / n,
                right=lambda y, n, p: 1.0 / n,
                reported=lambda y, n, p: 0.0,
            ),
        ),
    ),
    Loss(
        name="huber",
        formula=Written(
            "C = (1/n) Σ_j h_δ(y_j − a_j),  h_δ(r) = ½r² if |r| ≤ δ, else δ(|r| − δ/2)",
            r"C = (1/n) \sum _j h_\delta (y_j - a_j), h_\delta (r) = \tfrac{1}{2}r^{2} \text{ if } "
            r"|r| \le \delta , \text{ else } \delta (|r| - \delta /2)",
        ),
        derivative=Written(
            "∂C/∂a_j = clip(a_j − y_j, −δ, δ)/n",
            r"\partial C/\partial a_j = \operatorname{clip}(a_j - y_j, -\delta , \delta )/n",
        ),
        value=lambda a, y, p: np.mean(_huber(y - a, p["delta"]), axis=-1),
        grad=lambda a, y, p: np.clip(a - y, -p["delta"], p["delta"]) / _n(a),
        params=(
            Param(
                "delta",
                1.0,
                "where the quadratic part meets the linear",
                low=0.0,
                low_open=True,
                symbol="δ",
            ),
        ),
        graph=_huber_graph,
        cost_written=_huber_written,
        kinks=(_huber_kink(1.0), _huber_kink(-1.0)),
    ),
    Loss(
        name="cross_entropy",
        formula=Written("C = −Σ_j y_j ln a_j", r"C = -\sum _j y_j \ln a_j"),
        derivative=Written("∂C/∂a_j = −y_j/a_j", r"\partial C/\partial a_j = -y_j/a_j"),
        value=lambda a, y, p: -np.sum(_xlogy(y, a), axis=-1),
        grad=lambda a, y, p: np.where(y == 0, 0.0, -y / np.where(y == 0, 1.0, a)),
        check_target=_nonnegative,
        check_output=_positive_where_target,
        fused={
            "softmax": Fused(
                value=_ce_softmax_value,
                delta=_ce_softmax_delta_from_z,
                written=_softmax_cross_entropy_written,
                from_output=_ce_softmax_delta,
                with_output=_ce_softmax_with_output,
            ),
            "sigmoid": Fused(
                value=lambda z, y, p: -np.sum(y * log_sigmoid(z), axis=-1),
                delta=lambda z, y, p: -y * sigmoid(-z),
                written=_sigmoid_cross_entropy_written,
            ),
        },
        graph=_cross_entropy_graph,
        cost_written=_cross_entropy_written,
    ),
    Loss(
        name="binary_cross_entropy",
        formula=Written(
            "C = −Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)]",
            r"C = -\sum _j [y_j \ln a_j + (1 - y_j) \ln(1 - a_j)]",
        ),
        derivative=Written(
            "∂C/∂a_j = (a_j − y_j)/(a_j(1 − a_j))",
            r"\partial C/\partial a_j = (a_j - y_j)/(a_j(1 - a_j))",
        ),
        value=lambda a, y, p: -np.sum(_xlogy(y, a) + _xlog1my(1.0 - y, a), axis=-1),
        grad=lambda a, y, p: (a - y) / (a * (1.0 - a)),
        aliases=("bce",),
        check_target=_in_unit_interval(open_=False),
        check_output=_in_unit_interval(open_=True),
        fused={
            "sigmoid": Fused(
                value=lambda z, y, p: (
                    -np.sum(y * log_sigmoid(z) + (1.0 - y) * log_sigmoid(-z), axis=-1)
                ),
                # σ(z) − y as (1 − y)σ(z) − yσ(−z): no 1 − 1 where σ(z) rounds to 1 and y = 1.
                delta=lambda z, y, p: (1.0 - y) * sigmoid(z) - y * sigmoid(-z),
                written=_output_minus_target,
                from_output=lambda a, y, p: a - y,
            ),
            "softmax": Fused(
                value=_bce_softmax_value,
                delta=_bce_softmax_delta,
                written=_softmax_bce_written,
            ),
        },
        graph=_binary_cross_entropy_graph,
        cost_written=_binary_cross_entropy_written,
    ),
    Loss(
        name="hinge",
        formula=Written("C = Σ_j max(0, 1 − y_j a_j)", r"C = \sum _j \max(0, 1 - y_j a_j)"),
        derivative=Written(
            "∂C/∂a_j = −y_j if y_j a_j < 1, else 0 (0 at the margin)",
            r"\partial C/\partial a_j = -y_j \text{ if } y_j a_j < 1, \text{ else } 0 (0 \text{ at "
            r"the margin })",
        ),
        value=lambda a, y, p: np.sum(np.maximum(0.0, 1.0 - y * a), axis=-1),
        grad=lambda a, y, p: np.where(y * a < 1.0, -y, 0.0),
        check_target=_plus_minus_one,
        graph=_hinge_graph,
        cost_written=_hinge_written,
        kinks=(
            Kink(
                where="y_j a_j = 1",
                convention="the sheet's choice of 0 at the margin",
                at=lambda y, p: 1.0 / y,
                left=lambda y, n, p: -y if y > 0 else 0.0,
                right=lambda y, n, p: 0.0 if y > 0 else -y,
                reported=lambda y, n, p: 0.0,
            ),
        ),
    ),
    Loss(
        name="cosine",
        formula=Written(
            "C = 1 − (y·a)/(‖y‖ ‖a‖)", r"C = 1 - (y\cdot a)/(\Vert y\Vert \Vert a\Vert )"
        ),
        derivative=Written(
            "∂C/∂a_j = −y_j/(‖y‖‖a‖) + (y·a) a_j/(‖y‖‖a‖³)",
            r"\partial C/\partial a_j = -y_j/(\Vert y\Vert \Vert a\Vert ) + (y\cdot a) a_j/(\Vert "
            r"y\Vert \Vert a\Vert ^{3})",
        ),
        value=_cosine_value,
        grad=_cosine_grad,
        check_target=_nonzero_rows("the target y"),
        check_output=_nonzero_rows("the output a"),
        graph=_cosine_graph,
        cost_written=_cosine_written,
        notes=(
            "the sheet's ∂C/∂a_j = −y_j/n is the gradient of its simplified loss "
            "−(1/n) Σ_j y_j a_j for normalised vectors, not of 1 − cos(y, a); the exact gradient "
            "here is orthogonal to a and differs from −y_j/n in general",
        ),
    ),
]

# "Given ∂C/∂output" (`loss: upstream`): the exam form. The cost is linear in the output, so its
# gradient is the given array g (the `upstream:` key, in y's place) whatever the output is. Kept
# out of REGISTRY: it has no target, so the registry's tables and worked costs do not apply.
UPSTREAM = Loss(
    name="upstream",
    formula=Written("C = Σ_j g_j a_j  (g = ∂C/∂a given)", r"C = \sum _j g_j a_j"),
    derivative=Written("∂C/∂a_j = g_j", r"\partial C/\partial a_j = g_j"),
    value=lambda a, y, p: np.sum(y * a, axis=-1),
    grad=lambda a, y, p: np.broadcast_to(y, np.shape(a)).copy(),
    graph=_upstream_graph,
    cost_written=_upstream_written,
    notes=(
        "the given upstream gradient g = ∂C/∂a stands for whatever cost follows: C = Σ g ⊙ a "
        "is the linear cost with exactly that gradient",
    ),
)

REGISTRY: dict[str, Loss] = index(LOSSES)
