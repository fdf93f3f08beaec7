"""attention: scaled dot-product self-attention over the T positions of a (T, d) sequence, its
heads split as nn.MultiheadAttention's.

Forward, for each head h (its slice of d_k rows of wq and wk, d_v of wv):
    Q = x wqᵀ + bq,  K = x wkᵀ + bk,  V = x wvᵀ + bv
    S = Q Kᵀ · scale (scale = 1/√d_k unless given), future positions set to −∞ when causal
    P = softmax of each row of S,  H = P V
and z = [H_1 … H_heads] woᵀ + bo (the heads side by side when there is no wo).

Backward, from δ = ∂C/∂z: ∂C/∂H from wo; ∂C/∂P = ∂C/∂H Vᵀ and ∂C/∂V = Pᵀ ∂C/∂H; each row of
∂C/∂S is the softmax Jacobian (diag(p) − p pᵀ) times that row of ∂C/∂P (a masked entry has
p = 0, so it gets none); ∂C/∂Q = ∂C/∂S K · scale, ∂C/∂K = ∂C/∂Sᵀ Q · scale. x feeds Q, K and
V, so ∂C/∂x is the sum of three paths, ∂C/∂Q wq + ∂C/∂K wk + ∂C/∂V wv (and ∂C/∂a itself with
`residual: true`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcalc.check.mistakes import REGISTRY
from gradcalc.functions.registry import Written
from gradcalc.layers.record import (
    Array,
    Cache,
    Layer,
    LayerType,
    Mistake,
    Quantity,
    Shape,
    WrittenCells,
)
from gradcalc.layers.shapes import feeding, show, tensor

if TYPE_CHECKING:
    from gradcalc.errors import KeyPath
    from gradcalc.yamldoc import Doc

PROJECTIONS = ("q", "k", "v")
KEYS = (
    "heads",
    "wq",
    "wk",
    "wv",
    "bq",
    "bk",
    "bv",
    "wo",
    "bo",
    "causal",
    "scale",
    "activation",
)


# ---- config ---------------------------------------------------------------------------------


def parse(
    doc: Doc, raw: dict[str, Any], path: KeyPath, in_shape: Shape, index: int, outputs: int | None
) -> Layer:
    from gradcalc.layers.config import activation
    from gradcalc.layers.shapes import whole
    from gradcalc.yamldoc import number, type_name

    before = feeding(index)
    if len(in_shape) != 2:
        raise doc.error(
            path,
            f"attention takes a sequence (T, d), but {before} gives shape {show(in_shape)}",
            "start with an embedding layer, or give the vectors as input: [[…], …] (T, d)",
        )
    d = in_shape[1]
    heads = whole(doc, raw.get("heads", 1), (*path, "heads"), 1)
    params: dict[str, Array] = {}
    for p in PROJECTIONS:
        key = f"w{p}"
        if key not in raw:
            raise doc.error(
                path, f"missing key '{key}'", f"a (d_{p}·heads, d) matrix, as nn.Linear"
            )
        w = _matrix(
            doc,
            raw[key],
            (*path, key),
            f"a ({'d_v' if p == 'v' else 'd_k'}·heads, d) matrix",
            d,
            index,
            2 + PROJECTIONS.index(p),
        )
        if w.shape[1] != d:
            raise doc.error(
                (*path, key),
                f"rows have {w.shape[1]} weights but {before} gives {d} values per position",
                f"each row needs {d} numbers (the weights of nn.Linear(d, d_k·heads))",
            )
        if w.shape[0] % heads:
            raise doc.error(
                (*path, "heads"),
                f"d = {w.shape[0]} (the rows of {key}) is not divisible by heads = {heads}: "
                "nn.MultiheadAttention splits d across the heads",
                f"use a number of heads that divides {w.shape[0]}",
            )
        params[key] = w
    if params["wk"].shape[0] != params["wq"].shape[0]:
        raise doc.error(
            (*path, "wk"),
            f"wk has {params['wk'].shape[0]} rows but wq has {params['wq'].shape[0]}: Q and K "
            "need the same width to take their dot products",
        )
    for p in PROJECTIONS:
        key = f"b{p}"
        if key in raw:
            rows = params[f"w{p}"].shape[0]
            params[key] = _bias(
                doc, raw[key], (*path, key), rows, f"w{p}", d, index, 6 + PROJECTIONS.index(p)
            )
    width = params["wv"].shape[0]
    if "wo" in raw:
        wo = _matrix(doc, raw["wo"], (*path, "wo"), "a (d, d_v·heads) matrix", width, index, 5)
        if wo.shape[1] != width:
            raise doc.error(
                (*path, "wo"),
                f"rows have {wo.shape[1]} weights but the heads give {width} values per position "
                f"(the rows of wv)",
                f"each row needs {width} numbers",
            )
        params["wo"] = wo
        width = wo.shape[0]
        if "bo" in raw:
            params["bo"] = _bias(doc, raw["bo"], (*path, "bo"), width, "wo", d, index, 12)
    elif "bo" in raw:
        raise doc.error((*path, "bo"), "bo is the bias of the output projection wo", "add wo")
    causal = raw.get("causal", False)
    if not isinstance(causal, bool):
        raise doc.error((*path, "causal"), f"expected true or false, got {type_name(causal)}")
    d_k = params["wq"].shape[0] // heads
    scale = raw.get("scale")
    if scale is None:
        scale = 1 / math.sqrt(d_k)
    else:
        where: KeyPath = (*path, "scale")
        scale = number(doc, scale, where)
        if scale <= 0:
            raise doc.error(where, f"must be > 0, got {scale:g}", "leave it out for 1/√d_k")
    return Layer(
        ATTENTION,
        index,
        in_shape,
        (in_shape[0], width),
        params,
        *activation(doc, raw, path),
        {"heads": heads, "causal": causal, "scale": float(scale), "d_k": d_k, "positions": True},
    )


def _matrix(
    doc: Doc, value: Any, path: KeyPath, what: str, columns: int, index: int, stream: int
) -> Array:
    """Given numbers (or {file: …}), or {init: …, seed: …, units: …} drawn with fan-in
    `columns` (units, the rows, default `columns`: d_k·heads = d as nn.MultiheadAttention)."""
    from gradcalc.step import config as c

    if c._is_init(value):
        units = c._units(doc, value, path) or columns
        drawn = {k: v for k, v in value.items() if k != "units"}
        return c._initialized(doc, drawn, path, (units, columns), index + 2, stream)
    return tensor(doc, value, path, what, rank=2)


def _bias(
    doc: Doc, value: Any, path: KeyPath, rows: int, of: str, d: int, index: int, stream: int
) -> Array:
    from gradcalc.step import config as c

    if c._is_init(value):
        return c._initialized(doc, value, path, (rows,), index + 2, stream, d)
    b = tensor(doc, value, path, "a vector of biases", rank=1)
    if b.shape[0] != rows:
        raise doc.error(path, f"{b.shape[0]} biases for {rows} rows of {of}", "one bias per row")
    return b


# ---- the passes ----------------------------------------------------------------------------


def _heads(a: Array, heads: int) -> Array:
    """(N, T, heads·d_h) -> (N, heads, T, d_h)."""
    n, t, width = a.shape
    return a.reshape(n, t, heads, width // heads).transpose(0, 2, 1, 3)


def _joined(a: Array) -> Array:
    """(N, heads, T, d_h) -> (N, T, heads·d_h)."""
    n, h, t, dh = a.shape
    return a.transpose(0, 2, 1, 3).reshape(n, t, h * dh)


def allowed(layer: Layer) -> Array:
    """(T, T): True where query i may attend to key j (j ≤ i when causal)."""
    T = layer.in_shape[0]
    if layer.options["causal"]:
        return np.tril(np.ones((T, T), dtype=bool))
    return np.ones((T, T), dtype=bool)


def softmax_rows(scores: Array, mask: Array) -> Array:
    """The softmax of each row over its allowed entries (0 elsewhere), the row's maximum
    subtracted first."""
    shifted = np.where(mask, scores, -np.inf)
    shifted = shifted - shifted.max(axis=-1, keepdims=True)
    e = np.where(mask, np.exp(shifted), 0.0)
    return e / e.sum(axis=-1, keepdims=True)


def forward(layer: Layer, theta: Mapping[str, Array], x: Array) -> tuple[Array, Cache]:
    heads, scale = layer.options["heads"], layer.options["scale"]
    qkv = {}
    for p in PROJECTIONS:
        out = x @ theta[f"w{p}"].T
        if f"b{p}" in theta:
            out = out + theta[f"b{p}"]
        qkv[p] = out
    q, k, v = (_heads(qkv[p], heads) for p in PROJECTIONS)
    mask = allowed(layer)
    scores = scale * (q @ k.transpose(0, 1, 3, 2))
    weights = softmax_rows(scores, mask)
    joined = _joined(weights @ v)
    z = joined
    if "wo" in theta:
        z = joined @ theta["wo"].T
        if "bo" in theta:
            z = z + theta["bo"]
    cache = {**qkv, "scores": scores, "mask": mask, "weights": weights, "heads_out": joined}
    return z, cache


def softmax_backward(weights: Array, grad_weights: Array) -> Array:
    """Each row of ∂C/∂S: (diag(p) − p pᵀ) ∂C/∂p, the full Jacobian's product written as
    p ⊙ (∂C/∂p − p·∂C/∂p)."""
    inner = np.sum(weights * grad_weights, axis=-1, keepdims=True)
    return weights * (grad_weights - inner)


def passes(
    layer: Layer,
    theta: Mapping[str, Array],
    cache: Cache,
    delta: Array,
    weights: Array | None = None,
    grad_scores_of: Any = softmax_backward,
    scale: float | None = None,
) -> dict[str, Array]:
    """Every per-example quantity of the backward pass, from δ. `weights`, `grad_scores_of` and
    `scale` replaced give the named mistakes' values (gradcalc/layers/check.py)."""
    heads = layer.options["heads"]
    scale = layer.options["scale"] if scale is None else scale
    p = cache["weights"] if weights is None else weights
    q, k, v = (_heads(cache[name], heads) for name in PROJECTIONS)
    grad_joined = delta @ theta["wo"] if "wo" in theta else delta
    grad_h = _heads(grad_joined, heads)
    grad_p = grad_h @ v.transpose(0, 1, 3, 2)
    grad_v = p.transpose(0, 1, 3, 2) @ grad_h
    grad_s = grad_scores_of(p, grad_p)
    grad_q = scale * (grad_s @ k)
    grad_k = scale * (grad_s.transpose(0, 1, 3, 2) @ q)
    out = {
        "grad_heads": grad_joined,
        "grad_weights": grad_p,
        "grad_scores": grad_s,
        "grad_q": _joined(grad_q),
        "grad_k": _joined(grad_k),
        "grad_v": _joined(grad_v),
    }
    for name in PROJECTIONS:
        out[f"via_{name}"] = out[f"grad_{name}"] @ theta[f"w{name}"]
    return out


def _grads(
    theta: Mapping[str, Array],
    cache: Cache,
    back: dict[str, Array],
    delta: Array,
    x: Array,
    scale: float,
) -> dict[str, Array]:
    """∂C/∂θ of the reduced cost, each projection's from its ∂C/∂Q, ∂C/∂K or ∂C/∂V."""
    grads: dict[str, Array] = {}
    for name in PROJECTIONS:
        g = back[f"grad_{name}"]
        grads[f"w{name}"] = scale * np.einsum("ntj,ntk->jk", g, x)
        grads[f"b{name}"] = scale * g.sum(axis=(0, 1))
    if "wo" in theta:
        grads["wo"] = scale * np.einsum("ntj,ntk->jk", delta, cache["heads_out"])
        grads["bo"] = scale * delta.sum(axis=(0, 1))
    return {k: grads[k] for k in theta}


def backward(
    layer: Layer, theta: Mapping[str, Array], cache: Cache, delta: Array, scale: float, x: Array
) -> tuple[Array, dict[str, Array]]:
    back = passes(layer, theta, cache, delta)
    return back["via_q"] + back["via_k"] + back["via_v"], _grads(
        theta, cache, back, delta, x, scale
    )


def step_back(ls: Any) -> dict[str, Array]:
    """A step record's backward stages, from the pass its gradients came from."""
    return passes(ls.layer, ls.params_ahead or ls.params_before, ls.cache, ls.delta)


# ---- the quantities check grades ------------------------------------------------------------

# (name, symbol, stage, the key of the value in forward's cache or passes', the shape's kind)
STAGES = (
    ("q", "Q", "forward", "q", "qk"),
    ("k", "K", "forward", "k", "qk"),
    ("v", "V", "forward", "v", "v"),
    ("scores", "S", "forward", "scores", "square"),
    ("attention_weights", "P", "forward", "weights", "square"),
    ("head_outputs", "H", "forward", "heads_out", "v"),
    ("grad_attention_weights", "∂C/∂P", "backward", "grad_weights", "square"),
    ("grad_scores", "∂C/∂S", "backward", "grad_scores", "square"),
    ("grad_q", "∂C/∂Q", "backward", "grad_q", "qk"),
    ("grad_k", "∂C/∂K", "backward", "grad_k", "qk"),
    ("grad_v", "∂C/∂V", "backward", "grad_v", "v"),
)


def _shape(kind: str) -> Any:
    def shape(layer: Layer, n: int) -> Shape:
        T, heads = layer.in_shape[0], layer.options["heads"]
        if kind == "square":
            return (n, heads, T, T)
        return (n, T, layer.params["wq" if kind == "qk" else "wv"].shape[0])

    return shape


def _stages(
    layer: Layer, theta: Mapping[str, Array], x: Array, delta: Array, backward: bool
) -> dict[str, Array]:
    cache = forward(layer, theta, x)[1]
    return {**cache, **passes(layer, theta, cache, delta)} if backward else cache


def _compute(name: str, stage: str) -> Any:
    def compute(
        layer: Layer,
        theta: Mapping[str, Array],
        x: Array,
        delta: Array,
        state: Mapping[str, Array],
    ) -> Array:
        return np.asarray(_stages(layer, theta, x, delta, stage == "backward")[name])

    return compute


QUANTITIES = tuple(
    Quantity(name, symbol, stage, True, _shape(kind), _compute(key, stage))
    for name, symbol, stage, key, kind in STAGES
)


# ---- what the tables and JSON show ---------------------------------------------------------


def _extra(ls: Any) -> list[Any]:
    cache = ls.cache
    items: list[Any] = [
        ("Q = x wqᵀ + bq (the heads side by side)", "q", cache["q"], True),
        ("K = x wkᵀ + bk", "k", cache["k"], True),
        ("V = x wvᵀ + bv", "v", cache["v"], True),
        ("scores S = Q Kᵀ·scale per head", "scores", cache["scores"], True),
    ]
    if ls.layer.options["causal"]:
        items.append(
            (
                "mask (1: attended; 0: a future position, set to −∞)",
                "mask",
                cache["mask"].astype(np.int64),
                False,
            )
        )
    items += [
        ("softmax weights P of each row per head", "attention_weights", cache["weights"], True),
        ("head outputs P V (side by side)", "head_outputs", cache["heads_out"], True),
    ]
    return items


def _backward_extra(ls: Any) -> list[Any]:
    back = step_back(ls)
    items: list[Any] = [
        ("∂C/∂P per head", "grad_attention_weights", back["grad_weights"], True),
        (
            "∂C/∂S per head (each row: (diag(p) − p pᵀ) ∂C/∂p)",
            "grad_scores",
            back["grad_scores"],
            True,
        ),
        ("∂C/∂Q", "grad_q", back["grad_q"], True),
        ("∂C/∂K", "grad_k", back["grad_k"], True),
        ("∂C/∂V", "grad_v", back["grad_v"], True),
        ("∂C/∂x through Q (∂C/∂Q wq)", "grad_input_via_q", back["via_q"], True),
        ("∂C/∂x through K (∂C/∂K wk)", "grad_input_via_k", back["via_k"], True),
        ("∂C/∂x through V (∂C/∂V wv)", "grad_input_via_v", back["via_v"], True),
    ]
    if ls.layer.residual:
        items.append(
            ("∂C/∂x through the residual (∂C/∂a)", "grad_input_via_residual", ls.grad_a, True)
        )
    return items


RECORD_KEYS = (
    *(name for name, *_ in STAGES),
    "mask",
    "grad_input_via_q",
    "grad_input_via_k",
    "grad_input_via_v",
    "grad_input_via_residual",
)


# ---- named mistakes -------------------------------------------------------------------------


def _diagonal_only(p: Array, grad_p: Array) -> Array:
    return p * (1 - p) * grad_p


def _mistake(kind: str) -> Any:
    """The cells a mistaken softmax backward changes: ∂C/∂x and the projections' gradients."""

    def values(ctx: Any, l: int) -> dict[str, Array]:
        layer = ctx.shape.layer(l)
        cache = ctx.cache(l)
        T = layer.in_shape[0]
        extra: dict[str, Any] = {}
        if kind == "diagonal":
            if T == 1:
                return {}
            extra["grad_scores_of"] = _diagonal_only
        elif kind == "scale":
            if layer.options["scale"] == 1:
                return {}
            extra["scale"] = 1.0
        elif kind == "mask":
            if not layer.options["causal"] or T == 1:
                return {}
            extra["weights"] = softmax_rows(cache["scores"], np.ones((T, T), dtype=bool))
        return _outcome(ctx, l, lambda back: back["via_q"] + back["via_k"] + back["via_v"], extra)

    return values


def _outcome(ctx: Any, l: int, path: Any, extra: dict[str, Any]) -> dict[str, Array]:
    layer = ctx.shape.layer(l)
    theta, cache, delta = ctx.theta_pass(l), ctx.cache(l), ctx.given("delta", l)
    back = passes(layer, theta, cache, delta, **extra)
    grad_x = path(back)
    if layer.residual:
        grad_x = grad_x + ctx.grad_a(l)
    out = {k: back[k] for k in ("grad_scores", "grad_q", "grad_k", "grad_v")}
    grads = _grads(theta, cache, back, delta, ctx.x(l), ctx.net.scale)
    out.update({f"grad_{k}": v for k, v in grads.items()})
    if ctx.spec.weight_decay:
        for name in ("wq", "wk", "wv", "wo"):
            if name in theta:
                out[f"grad_{name}"] = out[f"grad_{name}"] + ctx.spec.weight_decay * theta[name]
    out["grad_input"] = grad_x
    return out


def _single_path(ctx: Any, l: int) -> dict[str, Array]:
    return {"grad_input": _outcome(ctx, l, lambda back: back["via_v"], {})["grad_input"]}


_DIAGONAL = REGISTRY["softmax_diagonal_only"]

MISTAKES = (
    # The registry's record (one id, one text); the values are attention's own.
    Mistake(_DIAGONAL.id, _DIAGONAL.explanation, _mistake("diagonal")),
    Mistake(
        "attention_missing_scale",
        "the scores' scale (1/√d_k) left out of the backward pass: ∂C/∂Q = ∂C/∂S K and "
        "∂C/∂K = ∂C/∂Sᵀ Q",
        _mistake("scale"),
    ),
    Mistake(
        "attention_single_input_path",
        "∂C/∂x taken through one of Q, K, V only (V's, ∂C/∂V wv), when x feeds all three",
        _single_path,
    ),
    Mistake(
        "causal_mask_in_backward_missing",
        "the backward pass with the softmax of the unmasked scores, as if no position were "
        "masked: future positions get gradient",
        _mistake("mask"),
    ),
)


# ---- the record ----------------------------------------------------------------------------


def _write_forward(sheet: Any, ls: Any, n: int) -> list[Any]:
    from gradcalc.layers.attention_written import write_forward

    return write_forward(sheet, ls, n)


def _write_backward(sheet: Any, ls: Any) -> list[Any]:
    from gradcalc.layers.attention_written import write_backward

    return write_backward(sheet, ls)


def _block(layer: Layer) -> tuple[str, tuple[str, ...]]:
    """--diagram's block: its heads and their width, the mask, the residual."""
    heads, d_k = layer.options["heads"], layer.options["d_k"]
    mask = "causal mask" if layer.options["causal"] else "no mask"
    return (
        "self-attention",
        (
            f"{heads} head{'s' if heads != 1 else ''}, d_k = {d_k}",
            mask + (", residual x + f(z)" if layer.residual else ""),
        ),
    )


ATTENTION = LayerType(
    name="attention",
    title="scaled dot-product self-attention (multi-head, as nn.MultiheadAttention)",
    equations=(
        Written(
            "Q = x wqᵀ + bq,  K = x wkᵀ + bk,  V = x wvᵀ + bv,  "
            "P = softmax_rows(Q Kᵀ·scale + mask),  z = (P V) woᵀ + bo",
            r"Q = x w_q^T + b_q,\ K = x w_k^T + b_k,\ V = x w_v^T + b_v,\ "
            r"P = \mathrm{softmax}(Q K^T s + M),\ z = (P V) w_o^T + b_o",
        ),
        Written(
            "∂C/∂S_i = (diag(p_i) − p_i p_iᵀ) ∂C/∂P_i,  ∂C/∂Q = ∂C/∂S K·scale,  "
            "∂C/∂K = ∂C/∂Sᵀ Q·scale,  ∂C/∂V = Pᵀ ∂C/∂H,  "
            "∂C/∂x = ∂C/∂Q wq + ∂C/∂K wk + ∂C/∂V wv",
            r"\partial C/\partial S_i = (\mathrm{diag}(p_i) - p_i p_i^T)\,\partial C/\partial "
            r"P_i,\ \partial C/\partial x = \partial C/\partial Q\, w_q + \partial C/\partial K"
            r"\, w_k + \partial C/\partial V\, w_v",
        ),
    ),
    keys=KEYS,
    rank=2,
    parse=parse,
    forward=forward,
    backward=backward,
    decays=("wq", "wk", "wv", "wo"),
    symbols={name: name for name in ("wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo")},
    mistakes=MISTAKES,
    extra=_extra,
    backward_extra=_backward_extra,
    linear=False,
    record_keys=RECORD_KEYS,
    quantities=QUANTITIES,
    block=_block,
    written=WrittenCells(
        lambda sheet, ls, n: _write_forward(sheet, ls, n),
        lambda sheet, ls: _write_backward(sheet, ls),
    ),
)
