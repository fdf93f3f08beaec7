"""Normalisation layers, batchnorm and layernorm, with PyTorch's conventions:

    μ = mean of x,  σ² = mean of (x − μ)²  (÷m, the biased variance),
    x̂ = (x − μ)/√(σ² + ε),  z = γ x̂ + β.

batchnorm takes its m values over the batch, per feature of a vector (nn.BatchNorm1d) or per
channel of a (C, L) or (C, H, W) input over the batch and every position (nn.BatchNorm1d/2d);
layernorm over each example's last axis (nn.LayerNorm(d)). In training batch norm updates its
running statistics, the state the engine carries from step to step:
running_mean ← (1 − momentum) running_mean + momentum μ and running_var the same with the
unbiased σ²·m/(m − 1); in eval mode it normalises with them instead of the batch's.

Backward, ∂C/∂x splits into three paths (δ = ∂C/∂z in the convention of every δ here: the
gradient of the sum of the examples' costs, before a mean's 1/m):

    ∂C/∂x̂ = δ γ,
    ∂C/∂σ² = Σ ∂C/∂x̂ (x − μ) · (−½)(σ² + ε)^(−3/2),
    ∂C/∂μ = −Σ ∂C/∂x̂ / √(σ² + ε)        (its term through σ², ∂C/∂σ² · (−2/m) Σ (x − μ), is 0),
    ∂C/∂x = ∂C/∂x̂/√(σ² + ε)  +  ∂C/∂σ² · 2(x − μ)/m  +  ∂C/∂μ/m
            (direct, through x̂)  (via σ²)             (via μ).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

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
from gradcalc.layers.shapes import mode as parse_mode

if TYPE_CHECKING:
    from gradcalc.errors import KeyPath
    from gradcalc.yamldoc import Doc


# ---- the arithmetic ---------------------------------------------------------------------------


def _axes(layer: Layer, ndim: int) -> tuple[int, ...]:
    """The axes a statistic is taken over, of an (N, *in_shape) array."""
    if layer.kind.name == "layernorm":
        return (ndim - 1,)
    return (0, *range(2, ndim))


def _shaped(layer: Layer, v: Array, ndim: int) -> Array:
    """γ, β or a per-channel statistic, broadcast against (N, *in_shape)."""
    if layer.kind.name == "layernorm":
        return v
    return v.reshape((1, v.shape[0]) + (1,) * (ndim - 2))


def _count(layer: Layer, shape: tuple[int, ...]) -> int:
    """m: how many values each statistic is taken over."""
    return int(np.prod([shape[a] for a in _axes(layer, len(shape))]))


def _eval(layer: Layer) -> bool:
    return bool(layer.options.get("mode") == "eval")


def forward(layer: Layer, theta: Mapping[str, Array], x: Array) -> tuple[Array, Cache]:
    axes, eps = _axes(layer, x.ndim), layer.options["eps"]
    m = _count(layer, x.shape)
    if _eval(layer):
        mu = _shaped(layer, layer.state["running_mean"], x.ndim)
        var = _shaped(layer, layer.state["running_var"], x.ndim)
        mu, var = np.broadcast_to(mu, mu.shape), np.broadcast_to(var, var.shape)
    else:
        mu = x.mean(axis=axes, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)  # ÷m: PyTorch's biased variance
    centred = x - mu
    inv = 1.0 / np.sqrt(var + eps)
    x_hat = centred * inv
    z = _shaped(layer, theta["gamma"], x.ndim) * x_hat + _shaped(layer, theta["beta"], x.ndim)
    return z, {"mu": mu, "var": var, "inv": inv, "centred": centred, "x_hat": x_hat, "m": m}


def paths(layer: Layer, theta: Mapping[str, Array], cache: Cache, delta: Array) -> dict[str, Array]:
    """∂C/∂x̂, ∂C/∂σ², ∂C/∂μ and ∂C/∂x's three paths (kept dims); in eval mode the statistics
    are constants and ∂C/∂x is its direct path alone."""
    axes = _axes(layer, delta.ndim)
    grad_x_hat = delta * _shaped(layer, theta["gamma"], delta.ndim)
    inv, centred, m = cache["inv"], cache["centred"], cache["m"]
    direct = grad_x_hat * inv
    if _eval(layer):
        zero = np.zeros_like(direct)
        return {
            "grad_x_hat": grad_x_hat,
            "direct": direct,
            "via_var": zero,
            "via_mean": zero,
            "grad_var": np.zeros_like(inv),
            "grad_mean": np.zeros_like(inv),
        }
    grad_var = (grad_x_hat * centred).sum(axis=axes, keepdims=True) * (-0.5 * inv**3)
    grad_mean = -grad_x_hat.sum(axis=axes, keepdims=True) * inv
    return {
        "grad_x_hat": grad_x_hat,
        "grad_var": grad_var,
        "grad_mean": grad_mean,
        "direct": direct,
        "via_var": grad_var * 2.0 * centred / m,
        "via_mean": np.broadcast_to(grad_mean / m, direct.shape),
    }


def _sum_axes(layer: Layer, ndim: int) -> tuple[int, ...]:
    """The axes ∂C/∂γ and ∂C/∂β sum over: all but the channel's (batch norm), all but the
    last (layer norm)."""
    if layer.kind.name == "layernorm":
        return tuple(range(ndim - 1))
    return tuple(a for a in range(ndim) if a != 1)


def backward(
    layer: Layer, theta: Mapping[str, Array], cache: Cache, delta: Array, scale: float, x: Array
) -> tuple[Array, dict[str, Array]]:
    p = paths(layer, theta, cache, delta)
    grad_x = p["direct"] + p["via_var"] + p["via_mean"]
    axes = _sum_axes(layer, delta.ndim)
    return grad_x, {
        "gamma": scale * (delta * cache["x_hat"]).sum(axis=axes),
        "beta": scale * delta.sum(axis=axes),
    }


def update_state(layer: Layer, state: Mapping[str, Array], cache: Cache) -> dict[str, Array]:
    """Training: each running statistic moves `momentum` of the way to the batch's, the
    variance unbiased (÷(m − 1)), as PyTorch; eval mode leaves them as they are."""
    if _eval(layer):
        return dict(state)
    momentum, m = layer.options["momentum"], cache["m"]
    mu, var = cache["mu"].ravel(), cache["var"].ravel()
    return {
        "running_mean": (1 - momentum) * state["running_mean"] + momentum * mu,
        "running_var": (1 - momentum) * state["running_var"] + momentum * var * m / (m - 1),
    }


def check_batch(layer: Layer, n: int) -> tuple[tuple[str, ...], str] | None:
    if _eval(layer) or layer.kind.name != "batchnorm":
        return None
    m = n * int(np.prod(layer.in_shape[1:]))
    if m > 1:
        return None
    return (
        ("mode",),
        "batch norm in train mode needs more than one value per channel: a batch of one gives "
        "the variance of one example, 0 (PyTorch refuses it too); give a batch (inputs:) or use "
        "mode: eval with running_mean and running_var",
    )


# ---- the config -------------------------------------------------------------------------------


def _vector(
    doc: Doc, raw: dict[str, Any], path: KeyPath, key: str, width: int, what: str, default: float
) -> Array:
    if key not in raw:
        return np.full(width, default)
    value = tensor(doc, raw[key], (*path, key), key)
    if value.ndim == 0:
        value = value[None]
    if value.shape != (width,):
        raise doc.error(
            (*path, key),
            f"{key} has shape {show(value.shape)}, but this layer normalises {width} {what}",
            f"give one value per {what.rstrip('s')}: {width} numbers",
        )
    return value


def _eps(doc: Doc, raw: dict[str, Any], path: KeyPath) -> float:
    from gradcalc.yamldoc import number

    eps = number(doc, raw.get("eps", 1e-5), (*path, "eps"))
    if not eps > 0:
        raise doc.error((*path, "eps"), f"must be > 0, got {eps:g}", "PyTorch's default is 1e-5")
    return eps


def _parse_batchnorm(
    doc: Doc, raw: dict[str, Any], path: KeyPath, in_shape: Shape, index: int, outputs: int | None
) -> Layer:
    from gradcalc.layers.config import activation
    from gradcalc.yamldoc import number

    if len(in_shape) not in (1, 2, 3):
        before = feeding(index)
        raise doc.error(
            path,
            f"batchnorm takes a vector, (C, L) or (C, H, W), but {before} gives shape "
            f"{show(in_shape)}",
        )
    width = in_shape[0]
    what = "features" if len(in_shape) == 1 else "channels"
    gamma = _vector(doc, raw, path, "gamma", width, what, 1.0)
    beta = _vector(doc, raw, path, "beta", width, what, 0.0)
    eps = _eps(doc, raw, path)
    momentum = number(doc, raw.get("momentum", 0.1), (*path, "momentum"))
    if not 0 <= momentum <= 1:
        raise doc.error((*path, "momentum"), f"must be between 0 and 1, got {momentum:g}")
    mode = parse_mode(doc, raw, path)
    if mode == "eval":
        for key in ("running_mean", "running_var"):
            if key not in raw:
                raise doc.error(
                    path,
                    f"eval mode normalises with the running statistics: missing key '{key}'",
                    f"give running_mean and running_var ({width} numbers each), or use mode: train",
                )
    running_mean = _vector(doc, raw, path, "running_mean", width, what, 0.0)
    running_var = _vector(doc, raw, path, "running_var", width, what, 1.0)
    if np.any(running_var < 0):
        raise doc.error((*path, "running_var"), "a variance is ≥ 0")
    return Layer(
        BATCHNORM,
        index,
        in_shape,
        in_shape,
        {"gamma": gamma, "beta": beta},
        *activation(doc, raw, path),
        {"mode": mode, "eps": eps, "momentum": momentum},
        {"running_mean": running_mean, "running_var": running_var},
    )


def _parse_layernorm(
    doc: Doc, raw: dict[str, Any], path: KeyPath, in_shape: Shape, index: int, outputs: int | None
) -> Layer:
    from gradcalc.layers.config import activation

    width = in_shape[-1]
    if width < 2:
        raise doc.error(
            path,
            f"layernorm normalises each example over its last axis, but it holds {width} value: "
            "its variance is 0",
        )
    gamma = _vector(doc, raw, path, "gamma", width, "features", 1.0)
    beta = _vector(doc, raw, path, "beta", width, "features", 0.0)
    eps = _eps(doc, raw, path)
    return Layer(
        LAYERNORM,
        index,
        in_shape,
        in_shape,
        {"gamma": gamma, "beta": beta},
        *activation(doc, raw, path),
        {"eps": eps},
    )


# ---- tables and JSON --------------------------------------------------------------------------


def _stat(layer: Layer, v: Array) -> Array:
    """A statistic as shown: per channel (C,) for batch norm; per example for layer norm."""
    if layer.kind.name == "layernorm":
        return np.ascontiguousarray(v[..., 0])
    return np.ascontiguousarray(v).reshape(-1)


def _theta(ls: Any) -> Mapping[str, Array]:
    return ls.params_ahead or ls.params_before


def _extra(ls: Any) -> list[Any]:
    """Forward: the statistics and x̂."""
    layer, cache = ls.layer, ls.cache
    per = layer.kind.name == "layernorm"
    evaluating = _eval(layer)
    where = "per example" if per else "per channel" if len(layer.in_shape) > 1 else "per feature"
    source = "the running" if evaluating else "the batch" if not per else "the example's"
    return [
        (f"μ, {source} mean {where}", "mean", _stat(layer, cache["mu"]), per),
        (
            f"σ², {source} variance {where}" + ("" if evaluating else " (÷m)"),
            "var",
            _stat(layer, cache["var"]),
            per,
        ),
        ("x̂ = (x − μ)/√(σ² + ε)", "x_hat", cache["x_hat"], True),
    ]


def _backward_extra(ls: Any) -> list[Any]:
    """Backward: ∂C/∂x̂ and, in training, ∂C/∂σ², ∂C/∂μ and the three paths of ∂C/∂x."""
    layer = ls.layer
    per = layer.kind.name == "layernorm"
    p = paths(layer, _theta(ls), ls.cache, ls.delta)
    out = [("∂C/∂x̂ = δ γ", "grad_x_hat", p["grad_x_hat"], True)]
    if not _eval(layer):
        out += [
            ("∂C/∂σ²", "grad_var", _stat(layer, p["grad_var"]), per),
            ("∂C/∂μ", "grad_mean", _stat(layer, p["grad_mean"]), per),
            ("∂C/∂x direct, through x̂", "grad_input_direct", p["direct"], True),
            ("∂C/∂x via σ²", "grad_input_via_var", p["via_var"], True),
            ("∂C/∂x via μ", "grad_input_via_mean", np.ascontiguousarray(p["via_mean"]), True),
        ]
    return out


RECORD_KEYS = (
    "mean",
    "var",
    "x_hat",
    "grad_x_hat",
    "grad_var",
    "grad_mean",
    "grad_input_direct",
    "grad_input_via_var",
    "grad_input_via_mean",
)

# ---- check's cells ----------------------------------------------------------------------------

_PATHS = {
    "grad_x_hat": "grad_x_hat",
    "grad_var": "grad_var",
    "grad_mean": "grad_mean",
    "grad_input_direct": "direct",
    "grad_input_via_var": "via_var",
    "grad_input_via_mean": "via_mean",
}


def _compute(name: str) -> Any:
    def compute(
        layer: Layer,
        theta: Mapping[str, Array],
        x: Array,
        delta: Array,
        state: Mapping[str, Array],
    ) -> Array:
        cache = forward(layer, theta, x)[1]
        if name in ("mean", "var"):
            return _stat(layer, cache["mu" if name == "mean" else "var"])
        if name == "x_hat":
            return np.asarray(cache["x_hat"])
        if name in ("running_mean", "running_var"):
            return update_state(layer, state, cache)[name]
        value = paths(layer, theta, cache, delta)[_PATHS[name]]
        if name in ("grad_var", "grad_mean"):
            return _stat(layer, value)
        return np.ascontiguousarray(np.broadcast_to(value, x.shape))

    return compute


def _stat_shape(layer: Layer, n: int) -> Shape:
    if layer.kind.name == "layernorm":
        return (n, *layer.in_shape[:-1])
    return (layer.in_shape[0],)


def _cell_shape(layer: Layer, n: int) -> Shape:
    return (n, *layer.in_shape)


def _training(layer: Layer) -> bool:
    return not _eval(layer)


def _quantities(kind: str) -> tuple[Quantity, ...]:
    per = kind == "layernorm"
    out = [
        Quantity("mean", "μ", "forward", per, _stat_shape, _compute("mean")),
        Quantity("var", "σ²", "forward", per, _stat_shape, _compute("var")),
        Quantity("x_hat", "x̂", "forward", True, _cell_shape, _compute("x_hat")),
        Quantity("grad_x_hat", "∂C/∂x̂", "backward", True, _cell_shape, _compute("grad_x_hat")),
        Quantity(
            "grad_var", "∂C/∂σ²", "backward", per, _stat_shape, _compute("grad_var"), _training
        ),
        Quantity(
            "grad_mean", "∂C/∂μ", "backward", per, _stat_shape, _compute("grad_mean"), _training
        ),
    ]
    for name, symbol in (
        ("grad_input_direct", "∂C/∂x direct"),
        ("grad_input_via_var", "∂C/∂x via σ²"),
        ("grad_input_via_mean", "∂C/∂x via μ"),
    ):
        out.append(Quantity(name, symbol, "backward", True, _cell_shape, _compute(name), _training))
    if kind == "batchnorm":
        for name in ("running_mean", "running_var"):
            out.append(Quantity(name, f"{name} new", "state", False, _stat_shape, _compute(name)))
    return tuple(out)


# ---- named mistakes ---------------------------------------------------------------------------


def _given_paths(ctx: Any, l: int, gamma: Array | None = None) -> tuple[Layer, dict[str, Array]]:
    layer = ctx.shape.layer(l)
    theta = dict(ctx.theta_pass(l))
    if gamma is not None:
        theta["gamma"] = gamma
    return layer, paths(layer, theta, ctx.cache(l), ctx.given("delta", l))


def _missing_mean_path(ctx: Any, l: int) -> dict[str, Array]:
    layer, p = _given_paths(ctx, l)
    if _eval(layer):
        return {}
    return {"grad_input": p["direct"] + p["via_var"], "grad_input_via_mean": 0 * p["via_mean"]}


def _missing_variance_path(ctx: Any, l: int) -> dict[str, Array]:
    layer, p = _given_paths(ctx, l)
    if _eval(layer):
        return {}
    return {"grad_input": p["direct"] + p["via_mean"], "grad_input_via_var": 0 * p["via_var"]}


def _unbiased_variance(ctx: Any, l: int) -> dict[str, Array]:
    layer = ctx.shape.layer(l)
    if _eval(layer):
        return {}
    x = ctx.x(l)
    cache = forward(layer, ctx.theta_pass(l), x)[1]
    m = cache["m"]
    theta = ctx.theta_pass(l)
    unbiased = cache["var"] * m / (m - 1)
    x_hat = cache["centred"] / np.sqrt(unbiased + layer.options["eps"])
    z = _shaped(layer, theta["gamma"], x.ndim) * x_hat + _shaped(layer, theta["beta"], x.ndim)
    return {"z": z, "var": _stat(layer, unbiased), "x_hat": x_hat}


def _gamma_not_applied(ctx: Any, l: int) -> dict[str, Array]:
    gamma = ctx.theta_pass(l)["gamma"]
    if np.all(gamma == 1):
        return {}
    _, p = _given_paths(ctx, l, np.ones_like(gamma))
    return {
        "grad_input": p["direct"] + p["via_var"] + p["via_mean"],
        "grad_x_hat": p["grad_x_hat"],
        "grad_input_direct": p["direct"],
        "grad_var": _stat(ctx.shape.layer(l), p["grad_var"]),
        "grad_mean": _stat(ctx.shape.layer(l), p["grad_mean"]),
    }


MISTAKES = (
    Mistake(
        "bn_missing_mean_path",
        "∂C/∂x without its path through μ: ∂C/∂x̂/√(σ² + ε) + ∂C/∂σ² · 2(x − μ)/m, the ∂C/∂μ/m "
        "term left out",
        _missing_mean_path,
    ),
    Mistake(
        "bn_missing_variance_path",
        "∂C/∂x without its path through σ²: ∂C/∂x̂/√(σ² + ε) + ∂C/∂μ/m, the ∂C/∂σ² · 2(x − μ)/m "
        "term left out",
        _missing_variance_path,
    ),
    Mistake(
        "bn_unbiased_variance",
        "z normalised with the unbiased variance (÷(m − 1)) instead of PyTorch's ÷m in training",
        _unbiased_variance,
    ),
    Mistake(
        "bn_gamma_not_applied_in_backward",
        "∂C/∂x worked from ∂C/∂x̂ = δ, the factor γ left out of the backward pass",
        _gamma_not_applied,
    ),
)


# ---- the worked solution ----------------------------------------------------------------------


class _Names:
    """The symbols of a normalisation, in the sheet's kind."""

    def __init__(self, nt: Any) -> None:
        tex = nt.tex
        self.nt = nt
        self.mu = r"\mu" if tex else "μ"
        self.var = r"\sigma^{2}" if tex else "σ²"
        self.x_hat = r"\hat{x}" if tex else "x̂"
        self.gamma = r"\gamma" if tex else "γ"
        self.beta = r"\beta" if tex else "β"
        self.half = r"(-\tfrac{1}{2})" if tex else "(−½)"
        self.power = "^{-3/2}" if tex else "^(−3/2)"

    def sqrt(self, body: str) -> str:
        return rf"\sqrt{{{body}}}" if self.nt.tex else f"√({body})"

    def over(self, top: str, bottom: str) -> str:
        return rf"\frac{{{top}}}{{{bottom}}}" if self.nt.tex else f"{top}/{bottom}"


def _cell(n: int, index: tuple[int, ...]) -> tuple[int, ...]:
    """Example n's cell at `index` of (N, *in_shape)."""
    return (n, *index)


def _groups(layer: Layer, ls: Any, n: int, sheet: Any) -> list[tuple[tuple[int, ...], Any]]:
    """Each statistic's index as written and the selector of its values in (N, *in_shape):
    a channel over the batch (batch norm), or example n's last axis at a position (layer
    norm)."""
    if layer.kind.name == "batchnorm":
        return [((c,), (slice(None), c)) for (c,) in sheet.cells((layer.in_shape[0],))]
    return [(g, (n, *g)) for g in sheet.cells(layer.in_shape[:-1])]


def _write_forward(sheet: Any, ls: Any, n: int) -> list[Any]:
    from gradcalc.doc.blocks import Eqs, Para
    from gradcalc.layers.written import eq

    nt, layer = sheet.nt, ls.layer
    s = _Names(nt)
    l = layer.number
    cache, theta = ls.cache, _theta(ls)
    eps = layer.options["eps"]
    bn = layer.kind.name == "batchnorm"
    first = layer.index == 0
    mu, var = _stat(layer, cache["mu"]), _stat(layer, cache["var"])
    m = cache["m"]
    blocks: list[Any] = []
    if _eval(layer):
        if n == 0:
            blocks.append(
                Para(nt.text("Eval mode: μ and σ² are the running statistics, not the batch's:"))
            )
            items = []
            for (c,) in sheet.cells(mu.shape):
                items.append(eq(nt.sym(s.mu, None, c), nt.num(mu[c], True)))
                items.append(eq(nt.sym(s.var, None, c), nt.num(var[c], True)))
            blocks.append(Eqs(tuple(items)))
    elif not bn or n == 0:
        over = (
            f"over the batch{' and every position' if len(layer.in_shape) > 1 else ''}, "
            f"m = {m} values per {'channel' if len(layer.in_shape) > 1 else 'feature'}"
            if bn
            else f"over the example's last axis, m = {m} values"
        )
        blocks.append(Para(nt.text(f"μ and σ² (÷m, the biased variance) {over}:")))
        items = []
        for index, sel in _groups(layer, ls, n, sheet):
            values = np.asarray(ls.x[sel]).ravel()
            at = index if bn else (n, *index)
            terms = [nt.num(v, first) if t == 0 else nt.par(v, first) for t, v in enumerate(values)]
            items.append(
                eq(nt.sym(s.mu, None, *index), f"({sheet.total(terms)})/{m}", nt.num(mu[at]))
            )
            squares = [
                nt.squared(f"({nt.num(v, first)} {nt.minus} {nt.par(mu[at])})") for v in values
            ]
            items.append(
                eq(nt.sym(s.var, None, *index), f"({sheet.total(squares)})/{m}", nt.num(var[at]))
            )
        blocks.append(Eqs(tuple(items)))
    items = []
    gamma, beta = theta["gamma"], theta["beta"]
    for idx in sheet.cells(layer.in_shape):
        at = (idx[0],) if bn else (n, *idx[:-1])
        k = idx[0] if bn else idx[-1]
        x = ls.x[_cell(n, idx)]
        stat_mu = mu[at[0]] if bn else mu[at]
        stat_var = var[at[0]] if bn else var[at]
        items.append(
            eq(
                nt.sym(s.x_hat, None, *idx),
                s.over(
                    f"({nt.num(x, first)} {nt.minus} {nt.par(stat_mu)})",
                    s.sqrt(f"{nt.num(stat_var)} + {nt.num(eps, True)}"),
                ),
                nt.num(cache["x_hat"][_cell(n, idx)]),
            )
        )
        items.append(
            eq(
                nt.sym("z", l, *idx),
                nt.prod(
                    (gamma[k], sheet.given()), (cache["x_hat"][_cell(n, idx)], False), lead=True
                )
                + f" + {nt.par(beta[k], sheet.given())}",
                nt.num(ls.z[_cell(n, idx)]),
            )
        )
    blocks += [
        Para(nt.text("x̂ = (x − μ)/√(σ² + ε) and z = γ x̂ + β:")),
        Eqs(tuple(items)),
        *sheet.more(layer.in_shape, nt.sym("z", l)),
    ]
    return blocks


def _write_backward(sheet: Any, ls: Any) -> list[Any]:
    from gradcalc.doc.blocks import Eqs, Para
    from gradcalc.layers.written import eq

    nt, layer = sheet.nt, ls.layer
    s = _Names(nt)
    l = layer.number
    cache, theta = ls.cache, _theta(ls)
    bn = layer.kind.name == "batchnorm"
    eps = layer.options["eps"]
    gamma = theta["gamma"]
    p = paths(layer, theta, cache, ls.delta)
    x_hat, delta = cache["x_hat"], ls.delta
    blocks: list[Any] = [
        Para(
            nt.text(
                "∂C/∂γ = Σ δ x̂ and ∂C/∂β = Σ δ, over "
                + (
                    f"the m values of each {'channel' if len(layer.in_shape) > 1 else 'feature'}:"
                    if bn
                    else "every example and position:"
                )
            )
        )
    ]
    items = []
    for (k,) in sheet.cells(gamma.shape):
        sel = (slice(None), k) if bn else (..., k)
        ds, xs = np.asarray(delta[sel]).ravel(), np.asarray(x_hat[sel]).ravel()
        terms = [
            nt.prod((d, False), (v, False), lead=t == 0)
            for t, (d, v) in enumerate(zip(ds, xs, strict=True))
        ]
        items.append(
            eq(
                nt.sym(nt.d(s.gamma), l, k),
                sheet.scaled(sheet.total(terms)),
                nt.num(ls.grads["gamma"][k]),
            )
        )
        plain = [nt.num(d) if t == 0 else nt.par(d) for t, d in enumerate(ds)]
        items.append(
            eq(
                nt.sym(nt.d(s.beta), l, k),
                sheet.scaled(sheet.total(plain)),
                nt.num(ls.grads["beta"][k]),
            )
        )
    blocks.append(Eqs(tuple(items)))
    first = " (example 1)" if ls.x.shape[0] > 1 else ""
    shape = layer.in_shape
    gxh = p["grad_x_hat"]
    items = []
    for idx in sheet.cells(shape):
        k = idx[0] if bn else idx[-1]
        items.append(
            eq(
                nt.sym(nt.d(s.x_hat), None, *idx),
                nt.prod((delta[_cell(0, idx)], False), (gamma[k], sheet.given()), lead=True),
                nt.num(gxh[_cell(0, idx)]),
            )
        )
    blocks += [Para(nt.text(f"∂C/∂x̂ = δ γ{first}:")), Eqs(tuple(items))]
    var = _stat(layer, cache["var"])
    if _eval(layer):
        items = []
        for idx in sheet.cells(shape):
            c = idx[0] if bn else None
            v = var[c] if bn else var[_cell(0, idx[:-1])]
            items.append(
                eq(
                    nt.sym(nt.d("x"), l, *idx),
                    s.over(
                        nt.par(gxh[_cell(0, idx)]),
                        s.sqrt(f"{nt.num(v, True)} + {nt.num(eps, True)}"),
                    ),
                    nt.num(ls.grad_x[_cell(0, idx)]),
                )
            )
        blocks += [
            Para(nt.text(f"Eval mode: μ and σ² are constants, so ∂C/∂x = ∂C/∂x̂/√(σ² + ε){first}:")),
            Eqs(tuple(items)),
            *sheet.more(shape, nt.d("x")),
        ]
        if bn:
            blocks.append(Para(nt.text("Eval mode: the running statistics are left as they are.")))
        return blocks
    m = cache["m"]
    g_var, g_mean = _stat(layer, p["grad_var"]), _stat(layer, p["grad_mean"])
    items = []
    for index, sel in _groups(layer, ls, 0, sheet):
        at = index if bn else (0, *index)
        gs = np.asarray(gxh[sel]).ravel()
        cs = np.asarray(cache["centred"][sel]).ravel()
        terms = [
            nt.prod((g, False), (c, False), lead=t == 0)
            for t, (g, c) in enumerate(zip(gs, cs, strict=True))
        ]
        items.append(
            eq(
                nt.sym(nt.d(s.var), None, *index),
                f"[{sheet.total(terms)}]{nt.ttimes}{s.half}{nt.ttimes}"
                f"({nt.num(var[at] + eps)}){s.power}",
                nt.num(g_var[at]),
            )
        )
        plain = [nt.num(g) if t == 0 else nt.par(g) for t, g in enumerate(gs)]
        items.append(
            eq(
                nt.sym(nt.d(s.mu), None, *index),
                f"{nt.minus}" + s.over(f"[{sheet.total(plain)}]", s.sqrt(nt.num(var[at] + eps))),
                nt.num(g_mean[at]),
            )
        )
    blocks += [
        Para(
            nt.text(
                "∂C/∂σ² = Σ ∂C/∂x̂ (x − μ) × (−½)(σ² + ε)^(−3/2) and ∂C/∂μ = −Σ ∂C/∂x̂/√(σ² + ε) "
                + ("over each channel's m values" if bn else "over example 1's last axis")
                + " (∂C/∂μ's term through σ², ∂C/∂σ² × (−2/m) Σ (x − μ), is 0):"
            )
        ),
        Eqs(tuple(items)),
    ]
    items = []
    for idx in sheet.cells(shape):
        at = (idx[0],) if bn else (0, *idx[:-1])
        cell = (0, *idx)
        items.append(
            eq(
                nt.sym(nt.d("x"), l, *idx),
                s.over(nt.par(gxh[cell]), s.sqrt(nt.num(var[at] + eps)))
                + f" + {nt.prod((g_var[at], False), (2, True), (cache['centred'][cell], False))}"
                + f"/{m}"
                + f" + {s.over(nt.par(g_mean[at]), str(m))}",
                f"{nt.num(p['direct'][cell])} + {nt.par(p['via_var'][cell])} + "
                f"{nt.par(p['via_mean'][cell])}",
                nt.num(ls.grad_x[cell]),
            )
        )
    blocks += [
        Para(
            nt.text(
                "∂C/∂x = ∂C/∂x̂/√(σ² + ε) (direct, through x̂) + ∂C/∂σ² × 2(x − μ)/m (via σ²) "
                f"+ ∂C/∂μ/m (via μ){first}:"
            )
        ),
        Eqs(tuple(items)),
        *sheet.more(shape, nt.d("x")),
    ]
    if bn:
        blocks += _write_state(sheet, ls)
    return blocks


def _write_state(sheet: Any, ls: Any) -> list[Any]:
    """The running statistics' update: the state carried to the next step, not trained."""
    from gradcalc.doc.blocks import Eqs, Para
    from gradcalc.layers.written import eq

    nt, layer = sheet.nt, ls.layer
    momentum, m = layer.options["momentum"], ls.cache["m"]
    mu, var = _stat(layer, ls.cache["mu"]), _stat(layer, ls.cache["var"])
    before, after = ls.state_before, ls.state
    keep, move = nt.num(1 - momentum, True), nt.num(momentum, True)
    items = []
    for (c,) in sheet.cells(mu.shape):
        old_mean = nt.num(before["running_mean"][c], sheet.given())
        old_var = nt.num(before["running_var"][c], sheet.given())
        items.append(
            eq(
                nt.sym(nt.name("running_mean") if nt.tex else "running_mean", None, c),
                f"{keep}{nt.ttimes}{old_mean} + {move}{nt.ttimes}{nt.par(mu[c])}",
                nt.num(after["running_mean"][c]),
            )
        )
        items.append(
            eq(
                nt.sym(nt.name("running_var") if nt.tex else "running_var", None, c),
                f"{keep}{nt.ttimes}{old_var} + {move}{nt.ttimes}{nt.par(var[c])}"
                f"{nt.ttimes}{m}/{m - 1}",
                nt.num(after["running_var"][c]),
            )
        )
    return [
        Para(
            nt.text(
                "The running statistics, carried to the next step (not trained): "
                f"running_mean ← (1 − momentum) running_mean + momentum μ, and running_var the "
                f"same with the unbiased variance σ² × m/(m − 1), momentum = {momentum:g}:"
            )
        ),
        Eqs(tuple(items)),
    ]


_BN_EQUATIONS = (
    Written(
        "μ = (1/m) Σ x,  σ² = (1/m) Σ (x − μ)²,  x̂ = (x − μ)/√(σ² + ε),  z = γ x̂ + β",
        r"\mu = \tfrac{1}{m}\sum x,\ \sigma^{2} = \tfrac{1}{m}\sum (x-\mu)^{2},\ "
        r"\hat x = (x-\mu)/\sqrt{\sigma^{2}+\varepsilon},\ z = \gamma \hat x + \beta",
    ),
    Written(
        "∂C/∂x̂ = δγ,  ∂C/∂σ² = Σ ∂C/∂x̂ (x − μ)(−½)(σ² + ε)^(−3/2),  ∂C/∂μ = −Σ ∂C/∂x̂/√(σ² + ε),  "
        "∂C/∂x = ∂C/∂x̂/√(σ² + ε) + ∂C/∂σ² · 2(x − μ)/m + ∂C/∂μ/m",
        r"\partial C/\partial \hat x = \delta\gamma,\ \partial C/\partial \sigma^{2} = \sum "
        r"\partial C/\partial \hat x\,(x-\mu)(-\tfrac{1}{2})(\sigma^{2}+\varepsilon)^{-3/2},\ "
        r"\partial C/\partial \mu = -\sum \partial C/\partial \hat x"
        r"/\sqrt{\sigma^{2}+\varepsilon},\ "
        r"\partial C/\partial x = \frac{\partial C/\partial \hat x}{\sqrt{\sigma^{2}+\varepsilon}}"
        r" + \partial C/\partial \sigma^{2}\,\frac{2(x-\mu)}{m}"
        r" + \frac{\partial C/\partial \mu}{m}",
    ),
)

_WRITTEN = WrittenCells(
    lambda sheet, ls, n: _write_forward(sheet, ls, n),
    lambda sheet, ls: _write_backward(sheet, ls),
)

BATCHNORM = LayerType(
    name="batchnorm",
    title="batch normalisation (per feature or channel over the batch, as PyTorch)",
    equations=_BN_EQUATIONS,
    keys=("gamma", "beta", "eps", "momentum", "mode", "running_mean", "running_var", "activation"),
    rank=None,
    parse=_parse_batchnorm,
    forward=forward,
    backward=backward,
    symbols={"gamma": "γ", "beta": "β"},
    mistakes=MISTAKES,
    extra=_extra,
    backward_extra=_backward_extra,
    written=_WRITTEN,
    update_state=update_state,
    check_batch=check_batch,
    linear=False,
    record_keys=RECORD_KEYS,
    quantities=_quantities("batchnorm"),
)

LAYERNORM = LayerType(
    name="layernorm",
    keeps_positions=True,
    title="layer normalisation (each example over its last axis, as nn.LayerNorm)",
    equations=(
        Written(
            "per example: μ = (1/d) Σ_k x_k,  σ² = (1/d) Σ_k (x_k − μ)²,  "
            "x̂ = (x − μ)/√(σ² + ε),  z = γ x̂ + β",
            r"\mu = \tfrac{1}{d}\sum_k x_k,\ \sigma^{2} = \tfrac{1}{d}\sum_k (x_k-\mu)^{2},\ "
            r"\hat x = (x-\mu)/\sqrt{\sigma^{2}+\varepsilon},\ z = \gamma \hat x + \beta",
        ),
        _BN_EQUATIONS[1],
    ),
    keys=("gamma", "beta", "eps", "activation"),
    rank=None,
    parse=_parse_layernorm,
    forward=forward,
    backward=backward,
    symbols={"gamma": "γ", "beta": "β"},
    extra=_extra,
    backward_extra=_backward_extra,
    written=_WRITTEN,
    linear=False,
    record_keys=RECORD_KEYS,
    quantities=_quantities("layernorm"),
)
