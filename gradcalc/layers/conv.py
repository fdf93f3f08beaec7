"""Convolution layers, conv2d and conv1d: cross-correlation as in PyTorch,

    z[n, o, i, j] = Σ_c Σ_p Σ_q K[o, c, p, q] · x̃[n, c, sH·i + p, sW·j + q] + b[o],

x̃ being the input with its zero padding. Computed with im2col: the windows become the rows of a
matrix, and the layer is one matrix product. conv1d is conv2d with a height of one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcalc.functions.registry import Written
from gradcalc.layers.record import Array, Cache, Layer, LayerType, Mistake, Shape, WrittenCells
from gradcalc.layers.shapes import cell, check_rank, pair, show, tensor
from gradcalc.layers.windows import out_size, pad, scatter, windows

if TYPE_CHECKING:
    from gradcalc.errors import KeyPath
    from gradcalc.yamldoc import Doc

KEYS = ("kernels", "biases", "stride", "padding", "activation")
KERNEL_INIT_KEYS = ("init", "seed", "channels", "size")


def _as2d(layer: Layer, x: Array) -> Array:
    return x[:, :, None, :] if len(layer.in_shape) == 2 else x


def forward(layer: Layer, theta: Mapping[str, Array], x: Array) -> tuple[Array, Cache]:
    kernels = theta["kernels"]
    k4 = kernels[:, :, None, :] if kernels.ndim == 3 else kernels
    o, c, kh, kw = k4.shape
    stride, padding = layer.options["stride"], layer.options["padding"]
    padded = pad(_as2d(layer, x), padding)
    win = windows(padded, (kh, kw), stride)
    n, _, ho, wo = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
    z = cols @ k4.reshape(o, -1).T
    z += theta["biases"]
    z = np.ascontiguousarray(z.reshape(n, ho, wo, o).transpose(0, 3, 1, 2))
    if len(layer.in_shape) == 2:
        z = z[:, :, 0, :]
    return z, {"cols": cols, "padded_shape": padded.shape}


def backward(
    layer: Layer, theta: Mapping[str, Array], cache: Cache, delta: Array, scale: float, x: Array
) -> tuple[Array, dict[str, Array]]:
    kernels = theta["kernels"]
    k4, d4, rows = _by_window(kernels, delta)
    # ∂C/∂K[o, c, p, q] = Σ_n,i,j δ[n, o, i, j] x̃[n, c, sH·i + p, sW·j + q]: δᵀ times the columns.
    grad_k = ((scale * rows).T @ cache["cols"]).reshape(kernels.shape)
    grad_b = scale * d4.sum(axis=(0, 2, 3))
    grad_padded = _spread(rows, k4, d4.shape, cache["padded_shape"], layer.options["stride"])
    return np.ascontiguousarray(_crop(layer, grad_padded)), {"kernels": grad_k, "biases": grad_b}


def _by_window(kernels: Array, delta: Array) -> tuple[Array, Array, Array]:
    """The kernels and δ in 2-D (a conv1d's with its height of one), and δ as one row per
    window (n, i, j), one column per output channel."""
    k4 = kernels[:, :, None, :] if kernels.ndim == 3 else kernels
    d4 = delta[:, :, None, :] if delta.ndim == 3 else delta
    n, o, ho, wo = d4.shape
    return k4, d4, d4.transpose(0, 2, 3, 1).reshape(n * ho * wo, o)


def _spread(
    rows: Array,
    k4: Array,
    d_shape: tuple[int, ...],
    padded_shape: tuple[int, ...],
    stride: tuple[int, int],
) -> Array:
    """∂C/∂x̃: each window's share δ·K added back where the window took it from (the full
    convolution of δ with the flipped kernel), the padding still on."""
    o, c, kh, kw = k4.shape
    n, _, ho, wo = d_shape
    parts = (rows @ k4.reshape(o, -1)).reshape(n, ho, wo, c, kh, kw).transpose(0, 3, 1, 2, 4, 5)
    return scatter(parts, padded_shape, (kh, kw), stride)


def _parse(axes: int) -> Any:
    def parse(
        doc: Doc,
        raw: dict[str, Any],
        path: KeyPath,
        in_shape: Shape,
        index: int,
        outputs: int | None,
    ) -> Layer:
        from gradcalc.step import config as c

        name = "conv2d" if axes == 2 else "conv1d"
        check_rank(doc, path, name, axes, in_shape, index)
        channels = in_shape[0]
        if "kernels" not in raw:
            raise doc.error(path, "missing key 'kernels'", _kernel_hint(axes))
        k_path: KeyPath = (*path, "kernels")
        k_raw = raw["kernels"]
        if c._is_init(k_raw):
            c._check_keys(doc, k_raw, k_path, KERNEL_INIT_KEYS, "a kernel initializer")
            for key in ("channels", "size"):
                if key not in k_raw:
                    raise doc.error(k_path, f"initialized kernels need '{key}'", _kernel_hint(axes))
            from gradcalc.layers.shapes import whole

            out = whole(doc, k_raw["channels"], (*k_path, "channels"), 1)
            size = pair(doc, k_raw["size"], (*k_path, "size"), axes, 1)
            shape = (out, channels, *size)
            record = c._init_record(doc, k_raw["init"], (*k_path, "init"))
            seed = c._seed(doc, k_raw.get("seed", 0), (*k_path, "seed"))
            if math.prod(shape) > c.MAX_PARAMETERS:
                raise doc.error(
                    k_path, f"{math.prod(shape):,} numbers; at most {c.MAX_PARAMETERS:,}"
                )
            fan = math.prod(size)
            kernels = c._draw(record, seed, index + 2, 0, shape, channels * fan, out * fan)
        else:
            kernels = tensor(doc, k_raw, k_path, "kernels", axes + 2)
        ksize = kernels.shape[2:]
        if kernels.shape[1] != channels:
            raise doc.error(
                k_path,
                f"kernels of shape {show(kernels.shape)} take {kernels.shape[1]} input "
                f"channel{'s' if kernels.shape[1] != 1 else ''}, but the input to this layer has "
                f"shape {show(in_shape)}: {channels} channel{'s' if channels != 1 else ''}",
                f"write kernels as (C_out, {channels}, {', '.join('k' * axes)})",
            )
        stride = pair(doc, raw.get("stride", 1), (*path, "stride"), axes, 1)
        padding = pair(doc, raw.get("padding", 0), (*path, "padding"), axes, 0)
        spatial = in_shape[1:]
        sizes = []
        for n, k, s, p in zip(spatial, ksize, stride, padding, strict=True):
            if k > n + 2 * p:
                raise doc.error(
                    k_path,
                    f"a {show(ksize)} kernel is larger than the padded input: shape "
                    f"{show(in_shape)} with padding {show(padding)} is "
                    f"{show(tuple(m + 2 * q for m, q in zip(spatial, padding, strict=True)))}",
                    "use a smaller kernel or more padding",
                )
            sizes.append(out_size(n, k, s, p))
        out = kernels.shape[0]
        b_path: KeyPath = (*path, "biases")
        b_raw = raw.get("biases")
        if b_raw is None:
            biases = np.zeros(out)
        elif c._is_init(b_raw):
            biases = c._initialized(doc, b_raw, b_path, (out,), index + 2, 1, channels)
        else:
            biases = tensor(doc, b_raw, b_path, "biases")
            if biases.ndim == 0:
                biases = biases[None]
        if biases.shape != (out,):
            raise doc.error(
                b_path,
                f"{biases.size} biases for {out} kernels (shape {show(kernels.shape)})",
                "give one bias per output channel",
            )
        from gradcalc.layers.config import activation as named

        activation, params = named(doc, raw, path)
        if axes == 1:
            stride, padding = (1, *stride), (0, *padding)
        unused = tuple(
            (n + 2 * p - k) % s
            for n, k, s, p in zip(spatial, ksize, stride[-axes:], padding[-axes:], strict=True)
        )
        return Layer(
            CONV2D if axes == 2 else CONV1D,
            index,
            in_shape,
            (out, *sizes),
            {"kernels": kernels, "biases": biases},
            activation,
            params,
            {"stride": stride, "padding": padding, "unused": unused},
        )

    return parse


def _kernel_hint(axes: int) -> str:
    if axes == 2:
        return "kernels: (C_out, C_in, kH, kW), or {init: he_normal, seed: 0, channels: 8, size: 3}"
    return "kernels: (C_out, C_in, k), or {init: he_normal, seed: 0, channels: 8, size: 3}"


# The named mistakes, each a value computed from the student's given numbers (ctx: the check's
# Context, gradcalc/layers/check.py): nothing where the mistake changes nothing.


def _kernel_flipped(ctx: Any, l: int) -> dict[str, Array]:
    layer = ctx.shape.layer(l)
    theta = dict(ctx.theta_pass(l))
    kernels = theta["kernels"]
    flipped = np.ascontiguousarray(
        kernels[..., ::-1, ::-1] if kernels.ndim == 4 else kernels[..., ::-1]
    )
    if np.array_equal(flipped, kernels):
        return {}
    return {"z": forward(layer, {**theta, "kernels": flipped}, ctx.x(l))[0]}


def _at_stride_one(ctx: Any, l: int) -> dict[str, Array]:
    """∂C/∂K and ∂C/∂x with each δ[i, j] placed at (i, j) instead of (sH·i, sW·j)."""
    layer = ctx.shape.layer(l)
    stride = layer.options["stride"]
    if stride == (1, 1):
        return {}
    kernels = ctx.theta_pass(l)["kernels"]
    k4, d4, rows = _by_window(kernels, ctx.given("delta", l))
    _, c, kh, kw = k4.shape
    n, _, ho, wo = d4.shape
    padded = pad(_as2d(layer, ctx.x(l)), layer.options["padding"])
    win = windows(padded, (kh, kw), (1, 1))[:, :, :ho, :wo]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
    grad_k = ((ctx.net.scale * rows).T @ cols).reshape(kernels.shape)
    grad_x = _crop(layer, _spread(rows, k4, d4.shape, padded.shape, (1, 1)))
    return {"grad_kernels": grad_k, "grad_input": grad_x}


def _crop(layer: Layer, grad_padded: Array) -> Array:
    """∂C/∂x: ∂C/∂x̃ with the padding cut away."""
    ph, pw = layer.options["padding"]
    h, w = grad_padded.shape[2] - 2 * ph, grad_padded.shape[3] - 2 * pw
    out = grad_padded[:, :, ph : ph + h, pw : pw + w]
    return out[:, :, 0, :] if len(layer.in_shape) == 2 else out


def _padding_not_removed(ctx: Any, l: int) -> dict[str, Array]:
    """∂C/∂x read off ∂C/∂x̃ without taking the border away: its first H×W cells."""
    layer = ctx.shape.layer(l)
    ph, pw = layer.options["padding"]
    if not ph and not pw:
        return {}
    # ∂C/∂x̃ in full: the layer's backward before its crop, over the same given δ.
    padded_shape = pad(_as2d(layer, ctx.x(l)), (ph, pw)).shape
    k4, d4, rows = _by_window(ctx.theta_pass(l)["kernels"], ctx.given("delta", l))
    grad_padded = _spread(rows, k4, d4.shape, padded_shape, layer.options["stride"])
    h, w = grad_padded.shape[2] - 2 * ph, grad_padded.shape[3] - 2 * pw
    out = grad_padded[:, :, :h, :w]
    return {"grad_input": out[:, :, 0, :] if len(layer.in_shape) == 2 else out}


def _bias_not_summed(ctx: Any, l: int) -> dict[str, Array]:
    """∂C/∂b[o] from the first position's δ alone."""
    delta = ctx.given("delta", l)
    if math.prod(delta.shape[2:]) == 1:
        return {}
    first = delta[:, :, 0, 0] if delta.ndim == 4 else delta[:, :, 0]
    return {"grad_biases": ctx.net.scale * first.sum(axis=0)}


MISTAKES = (
    Mistake(
        "kernel_flipped",
        "z by true convolution (the kernel flipped) instead of PyTorch's cross-correlation",
        _kernel_flipped,
    ),
    Mistake(
        "stride_ignored_in_backward",
        "∂C/∂K and ∂C/∂x with δ[i, j] placed at (i, j), as if the stride were 1",
        _at_stride_one,
    ),
    Mistake(
        "padding_not_removed",
        "∂C/∂x read off the padded gradient ∂C/∂x̃ without removing its border (its first H×W "
        "cells)",
        _padding_not_removed,
    ),
    Mistake(
        "bias_gradient_not_summed",
        "∂C/∂b from δ at one position (the first) instead of the sum over every position",
        _bias_not_summed,
    ),
)


def _setting(values: tuple[int, ...], axes: int) -> str:
    """A stride or padding as the config may give it: one number when every axis has it."""
    values = values[-axes:]
    return str(values[0]) if len(set(values)) == 1 else "(" + ", ".join(map(str, values)) + ")"


def _block(layer: Layer) -> tuple[str, tuple[str, ...]]:
    """--diagram's block: its kernels, their size and the channels they read, stride, padding."""
    kernels = layer.params["kernels"]
    o, c = kernels.shape[:2]
    axes = len(layer.in_shape) - 1
    size = show(kernels.shape[2:]) if axes > 1 else f"of {kernels.shape[2]}"
    return (
        "cross-correlation",
        (
            f"{o} kernel{'s' if o != 1 else ''} {size}, {c} channel{'s' if c != 1 else ''} in",
            f"stride {_setting(layer.options['stride'], axes)}, "
            f"padding {_setting(layer.options['padding'], axes)}",
        ),
    )


_EQUATIONS = (
    Written(
        "z[o,i,j] = Σ_c Σ_p Σ_q K[o,c,p,q] x̃[c, s·i+p, s·j+q] + b[o]  (cross-correlation)",
        r"z_{oij} = \sum _c \sum _p \sum _q K_{ocpq}\, \tilde x_{c,si+p,sj+q} + b_o",
    ),
    Written(
        "∂C/∂K[o,c,p,q] = Σ_i Σ_j δ[o,i,j] x̃[c, s·i+p, s·j+q],  ∂C/∂b[o] = Σ_i Σ_j δ[o,i,j],  "
        "∂C/∂x̃[c,u,v] = Σ_o Σ_i Σ_j δ[o,i,j] K[o,c,u−s·i,v−s·j]",
        r"\partial C/\partial K_{ocpq} = \sum _{ij} \delta _{oij} \tilde x_{c,si+p,sj+q},\ "
        r"\partial C/\partial b_o = \sum _{ij} \delta _{oij},\ "
        r"\partial C/\partial \tilde x_{cuv} = \sum _o \sum _{ij} \delta _{oij} K_{oc,u-si,v-sj}",
    ),
)

CONV2D = LayerType(
    name="conv2d",
    title="2-D convolution (cross-correlation, as PyTorch)",
    equations=_EQUATIONS,
    keys=KEYS,
    rank=3,
    parse=_parse(2),
    forward=forward,
    backward=backward,
    decays=("kernels",),
    symbols={"kernels": "K", "biases": "b"},
    mistakes=MISTAKES,
    extra=lambda ls: _extra(ls),
    block=_block,
    written=WrittenCells(
        lambda sheet, ls, n: _write_forward(sheet, ls, n),
        lambda sheet, ls: _write_backward(sheet, ls),
    ),
)

# The same record in one dimension: only its name, equations, rank and parser differ.
CONV1D = dataclasses.replace(
    CONV2D,
    name="conv1d",
    title="1-D convolution (cross-correlation, as PyTorch)",
    equations=(
        Written(
            "z[o,i] = Σ_c Σ_p K[o,c,p] x̃[c, s·i+p] + b[o]",
            r"z_{oi} = \sum _c \sum _p K_{ocp}\, \tilde x_{c,si+p} + b_o",
        ),
        Written(
            "∂C/∂K[o,c,p] = Σ_i δ[o,i] x̃[c, s·i+p],  ∂C/∂b[o] = Σ_i δ[o,i]",
            r"\partial C/\partial K_{ocp} = \sum _i \delta _{oi} \tilde x_{c,si+p},\ "
            r"\partial C/\partial b_o = \sum _i \delta _{oi}",
        ),
    ),
    rank=2,
    parse=_parse(1),
)


def _extra(ls: Any) -> list[Any]:
    """The padded input x̃ the kernels slide over (when there is padding)."""
    ph, pw = ls.layer.options["padding"]
    if not ph and not pw:
        return []
    x = ls.x if ls.x.ndim == 4 else ls.x[:, :, None, :]
    padded = pad(x, (ph, pw))
    if ls.x.ndim == 3:
        padded = padded[:, :, 0, :]
    return [("input with its padding x̃", "padded_input", padded, True)]


# ---- the worked solution ----------------------------------------------------------------------


def _views(ls: Any, n: int) -> tuple[Array, Array, Array, Array, Array]:
    """(x̃ of example n as (C, H, W), kernels as (O, C, kH, kW), biases, z (O, Ho, Wo), δ of all
    examples as (N, O, Ho, Wo)): conv1d with a height of one."""
    layer = ls.layer
    theta = ls.params_ahead or ls.params_before
    kernels = theta["kernels"]
    k4 = kernels[:, :, None, :] if kernels.ndim == 3 else kernels
    xp = pad(_as2d(layer, ls.x[n : n + 1]), layer.options["padding"])[0]
    z = ls.z[n][:, None, :] if kernels.ndim == 3 else ls.z[n]
    d = ls.delta[:, :, None, :] if kernels.ndim == 3 else ls.delta
    return xp, k4, theta["biases"], z, d


def _write_forward(sheet: Any, ls: Any, n: int) -> list[Any]:
    from gradcalc.doc.blocks import Eqs, Para
    from gradcalc.layers.written import eq

    nt, layer = sheet.nt, ls.layer
    l = layer.number
    xp, k4, b, z, _ = _views(ls, n)
    o_n, c_n, kh, kw = k4.shape
    sh, sw = layer.options["stride"]
    first = layer.index == 0
    blocks: list[Any] = []
    if any(layer.options["padding"]):
        blocks.append(Para(nt.text("The input with its zero padding:")))
        rows = [
            eq(sheet.tilde_x(l - 1, (c,)), nt.matrix(xp[c] if xp.shape[1] > 1 else xp[c][0:1]))
            for c in range(c_n)
        ]
        blocks.append(Eqs(tuple(rows)))
    for o in range(o_n):
        items = []
        for i, j in sheet.cells(z.shape[1:]):
            terms = [
                nt.prod(
                    (xp[c, sh * i + p, sw * j + q], first),
                    (k4[o, c, p, q], sheet.given()),
                    lead=t == 0,
                )
                for t, (c, p, q) in enumerate(np.ndindex(c_n, kh, kw))
            ]
            rhs = f"{sheet.total(terms)} + {nt.par(b[o], sheet.given())}"
            items.append(eq(nt.sym("z", l, *cell(layer, o, i, j)), rhs, nt.num(z[o, i, j])))
        blocks += [Eqs(tuple(items)), *sheet.more(z.shape[1:], f"output channel {o}")]
    return blocks


def _write_backward(sheet: Any, ls: Any) -> list[Any]:
    from gradcalc.doc.blocks import Eqs, Para
    from gradcalc.layers.written import eq, input_gradient

    nt, layer = sheet.nt, ls.layer
    l = layer.number
    first = layer.index == 0
    sh, sw = layer.options["stride"]
    ph, pw = layer.options["padding"]
    examples = ls.x.shape[0]
    padded = [_views(ls, m)[0] for m in range(examples)]
    _, k4, _, _, d = _views(ls, 0)
    o_n, _, kh, kw = k4.shape
    ho, wo = d.shape[2], d.shape[3]
    blocks: list[Any] = [
        Para(
            sheet.prose(
                (
                    "∂C/∂K[o,c,p] = Σ over every position i of δ[o,i] x̃[c, s·i+p]"
                    if len(layer.in_shape) == 2
                    else "∂C/∂K[o,c,p,q] = Σ over every position (i, j) of δ[o,i,j] "
                    "x̃[c, s·i+p, s·j+q]"
                )
                + (" and over the examples:" if examples > 1 else ":")
            )
        )
    ]
    items = []
    grad_k = ls.grads["kernels"].reshape(k4.shape)
    for o, c, p, q in sheet.cells(k4.shape):
        terms = [
            nt.prod(
                (d[m, o, i, j], False), (padded[m][c, sh * i + p, sw * j + q], first), lead=t == 0
            )
            for t, (m, i, j) in enumerate(np.ndindex(examples, ho, wo))
        ]
        items.append(
            eq(
                nt.sym(nt.d("K"), l, *cell(layer, o, c, p, q)),
                sheet.scaled(sheet.total(terms)),
                nt.num(grad_k[o, c, p, q]),
            )
        )
    blocks += [Eqs(tuple(items)), *sheet.more(k4.shape, nt.d("K"))]
    blocks.append(Para(nt.text("∂C/∂b[o] = the sum of δ[o] over every position, not one:")))
    items = []
    for o in range(o_n):
        terms = [nt.num(v) if t == 0 else nt.par(v) for t, v in enumerate(d[:, o].ravel())]
        items.append(
            eq(
                nt.sym(nt.d("b"), l, o),
                sheet.scaled(sheet.total(terms)),
                nt.num(ls.grads["biases"][o]),
            )
        )
    blocks.append(Eqs(tuple(items)))
    blocks.append(
        Para(
            sheet.prose(
                "∂C/∂x̃ is the full convolution of δ with the flipped kernel: "
                + (
                    "∂C/∂x̃[c,u] = Σ_o Σ_i δ[o,i] K[o,c,u−s·i]"
                    if len(layer.in_shape) == 2
                    else "∂C/∂x̃[c,u,v] = Σ_o Σ_(i,j) δ[o,i,j] K[o,c,u−s·i,v−s·j]"
                )
                + ", the same as adding each window's δ·K back where the window took its cells. "
                "∂C/∂x is ∂C/∂x̃ with the padding removed"
                + (" (example 1):" if examples > 1 else ":")
            )
        )
    )

    def sent_to(c: int, u: int, v: int) -> list[str]:
        sent: list[str] = []
        for o, i, j in np.ndindex(o_n, ho, wo):
            p, q = u + ph - sh * i, v + pw - sw * j
            if 0 <= p < kh and 0 <= q < kw:
                sent.append(
                    nt.prod((d[0, o, i, j], False), (k4[o, c, p, q], sheet.given()), lead=not sent)
                )
        return sent

    return [*blocks, *input_gradient(sheet, ls, sent_to)]
