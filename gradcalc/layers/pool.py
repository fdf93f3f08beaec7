"""Pooling layers: max and average over windows, in one and two dimensions, as PyTorch.

A max-pool sends each output's gradient to the input cell its value came from. On a tie the
first maximum in row-major order takes it all (PyTorch's choice); `ties: split` shares it
equally among the tied cells instead. An average pool sends each cell 1/(kH·kW) of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcalc.functions.registry import Written
from gradcalc.layers.record import Array, Cache, Layer, LayerType, Mistake, Shape, WrittenCells
from gradcalc.layers.shapes import cell, check_rank, pair, show
from gradcalc.layers.windows import out_size, scatter, windows

if TYPE_CHECKING:
    from gradcalc.errors import KeyPath
    from gradcalc.yamldoc import Doc

TIES = ("first", "split")


def _as2d(layer: Layer, x: Array) -> Array:
    return x[:, :, None, :] if len(layer.in_shape) == 2 else x


def _forward(kind: str) -> Any:
    def forward(layer: Layer, theta: Mapping[str, Array], x: Array) -> tuple[Array, Cache]:
        size, stride = layer.options["size"], layer.options["stride"]
        win = windows(_as2d(layer, x), size, stride)
        flat = win.reshape(*win.shape[:4], size[0] * size[1])
        if kind == "avg":
            z = flat.mean(axis=-1)
            share = np.full(flat.shape, 1.0 / flat.shape[-1])
        else:
            first = flat.argmax(axis=-1)
            z = np.take_along_axis(flat, first[..., None], axis=-1)[..., 0]
            if layer.options.get("ties") == "split":
                tied = flat == z[..., None]
                share = tied / tied.sum(axis=-1, keepdims=True)
            else:
                share = np.zeros(flat.shape)
                np.put_along_axis(share, first[..., None], 1.0, axis=-1)
        if len(layer.in_shape) == 2:
            z = z[:, :, 0, :]
        return z, {"share": share, "input_shape": (x.shape[0], *_shape2d(layer))}

    return forward


def _shape2d(layer: Layer) -> tuple[int, ...]:
    shape = layer.in_shape
    return (shape[0], 1, shape[1]) if len(shape) == 2 else shape


def backward(
    layer: Layer, theta: Mapping[str, Array], cache: Cache, delta: Array, scale: float, x: Array
) -> tuple[Array, dict[str, Array]]:
    size, stride = layer.options["size"], layer.options["stride"]
    d4 = delta[:, :, None, :] if delta.ndim == 3 else delta
    share = cache["share"]
    parts = (share * d4[..., None]).reshape(*share.shape[:4], *size)
    grad_x = scatter(parts, cache["input_shape"], size, stride)
    if len(layer.in_shape) == 2:
        grad_x = grad_x[:, :, 0, :]
    return grad_x, {}


def _routes(ls: Any) -> list[Any]:
    """Each output cell's source: the input cell its maximum came from, where its gradient goes
    ((row, column) in 2-D, the position in 1-D; the first in row-major order on a tie)."""
    layer = ls.layer
    share = ls.cache["share"]  # (N, C, Ho, Wo, kH·kW)
    kw = layer.options["size"][1]
    sh, sw = layer.options["stride"]
    first = share.argmax(axis=-1)
    ho, wo = share.shape[2], share.shape[3]
    rows = np.arange(ho)[:, None] * sh + first // kw
    cols = np.arange(wo)[None, :] * sw + first % kw
    label = "the input cell each output came from (its gradient goes there)"
    if layer.options.get("ties") == "split":
        label += "; on a tie, the first of the cells that share it"
    if len(layer.in_shape) == 2:
        return [(label, "source", cols[:, :, 0, :], True)]
    return [(label, "source", np.stack([rows, cols], axis=-1), True)]


def _flips(ls: Any, e_x: Array, e_delta: Array) -> Array:
    """A max-pool's maximum can move to another cell of its window when the values are within
    their drift of each other: each such cell may then receive the window's whole δ."""
    layer = ls.layer
    size, stride = layer.options["size"], layer.options["stride"]
    x = windows(_as2d(layer, ls.x), size, stride)
    e = windows(_as2d(layer, e_x), size, stride)
    x = x.reshape(*x.shape[:4], -1)
    e = e.reshape(*e.shape[:4], -1)
    first = x.argmax(axis=-1)[..., None]
    top = np.take_along_axis(x, first, axis=-1)
    e_top = np.take_along_axis(e, first, axis=-1)
    rivals = x >= top - (e_top + e)
    contested = rivals.sum(axis=-1, keepdims=True) > 1
    d4 = ls.delta[:, :, None, :] if ls.delta.ndim == 3 else ls.delta
    e4 = e_delta[:, :, None, :] if e_delta.ndim == 3 else e_delta
    worst = (np.abs(d4) + e4)[..., None] * (rivals & contested)
    parts = worst.reshape(*worst.shape[:4], *size)
    out = scatter(parts, (ls.x.shape[0], *_shape2d(layer)), size, stride)
    return out[:, :, 0, :] if len(layer.in_shape) == 2 else out


def _parse(kind: str, axes: int) -> Any:
    def parse(
        doc: Doc,
        raw: dict[str, Any],
        path: KeyPath,
        in_shape: Shape,
        index: int,
        outputs: int | None,
    ) -> Layer:
        from gradcalc.layers.config import activation

        name = f"{kind}pool{axes}d"
        check_rank(doc, path, name, axes, in_shape, index)
        if "size" not in raw:
            raise doc.error(path, "missing key 'size'", "the window, e.g. size: 2")
        size = pair(doc, raw["size"], (*path, "size"), axes, 1)
        stride = pair(doc, raw.get("stride", raw["size"]), (*path, "stride"), axes, 1)
        ties = raw.get("ties", "first")
        if kind == "avg" and "ties" in raw:
            raise doc.error((*path, "ties"), "an average pool has no ties to break")
        if ties not in TIES:
            from gradcalc.errors import did_you_mean

            raise doc.error(
                (*path, "ties"), f"unknown tie rule {ties!r}", did_you_mean(str(ties), TIES)
            )
        spatial = in_shape[1:]
        for n, k in zip(spatial, size, strict=True):
            if k > n:
                raise doc.error(
                    (*path, "size"),
                    f"a {show(size)} window is larger than its input of shape {show(in_shape)}",
                )
        sizes = tuple(out_size(n, k, s, 0) for n, k, s in zip(spatial, size, stride, strict=True))
        unused = tuple((n - k) % s for n, k, s in zip(spatial, size, stride, strict=True))
        if axes == 1:
            size, stride = (1, *size), (1, *stride)
        return Layer(
            _TYPES[name],
            index,
            in_shape,
            (in_shape[0], *sizes),
            {},
            *activation(doc, raw, path),
            {
                "size": size,
                "stride": stride,
                "ties": ties,
                "unused": unused,
                "window": math.prod(size),
            },
        )

    return parse


_KEYS = ("size", "stride")

_MAX_EQUATIONS = (
    Written(
        "z[c,i,j] = max_(p,q) x[c, s·i+p, s·j+q]",
        r"z_{cij} = \max_{p,q} x_{c,si+p,sj+q}",
    ),
    Written(
        "∂C/∂x[c,u,v] = Σ_(i,j) δ[c,i,j] [(u,v) is the argmax of window (i,j)]",
        r"\partial C/\partial x_{cuv} = \sum _{ij} \delta _{cij} [(u,v) = \arg\max_{(i,j)}]",
    ),
)
_AVG_EQUATIONS = (
    Written(
        "z[c,i,j] = (1/(kH·kW)) Σ_(p,q) x[c, s·i+p, s·j+q]",
        r"z_{cij} = \frac{1}{k_H k_W} \sum _{p,q} x_{c,si+p,sj+q}",
    ),
    Written(
        "∂C/∂x[c,u,v] = Σ_(i,j) δ[c,i,j]/(kH·kW) over the windows (i,j) that hold (u,v)",
        r"\partial C/\partial x_{cuv} = \sum _{(i,j) \ni (u,v)} \delta _{cij}/(k_H k_W)",
    ),
)


def _spread_evenly(weight: str) -> Any:
    """∂C/∂x of a max-pool with each window's δ sent to all its cells ("all": δ each) or shared
    as an average pool's ("average": δ/(kH·kW) each)."""

    def values(ctx: Any, l: int) -> dict[str, Array]:
        layer = ctx.shape.layer(l)
        size, stride = layer.options["size"], layer.options["stride"]
        if size[0] * size[1] == 1:
            return {}
        delta = ctx.given("delta", l)
        d4 = delta[:, :, None, :] if delta.ndim == 3 else delta
        share = 1.0 if weight == "all" else 1.0 / (size[0] * size[1])
        parts = np.broadcast_to(share * d4[..., None, None], (*d4.shape, *size))
        shape = (d4.shape[0], *_shape2d(layer))
        grad_x = scatter(np.ascontiguousarray(parts), shape, size, stride)
        return {"grad_input": grad_x[:, :, 0, :] if len(layer.in_shape) == 2 else grad_x}

    return values


_MAX_EQUATIONS_1D = (
    Written("z[c,i] = max_p x[c, s·i+p]", r"z_{ci} = \max_p x_{c,si+p}"),
    Written(
        "∂C/∂x[c,u] = Σ_i δ[c,i] [u is the argmax of window i]",
        r"\partial C/\partial x_{cu} = \sum _i \delta _{ci} [u = \arg\max_i]",
    ),
)
_AVG_EQUATIONS_1D = (
    Written("z[c,i] = (1/k) Σ_p x[c, s·i+p]", r"z_{ci} = \frac{1}{k} \sum _p x_{c,si+p}"),
    Written(
        "∂C/∂x[c,u] = Σ_i δ[c,i]/k over the windows i that hold u",
        r"\partial C/\partial x_{cu} = \sum _{i \ni u} \delta _{ci}/k",
    ),
)

_MAX_MISTAKES = (
    Mistake(
        "pool_gradient_to_all",
        "a max-pool's δ sent to every cell of its window instead of the maximum's alone",
        _spread_evenly("all"),
    ),
    Mistake(
        "pool_gradient_average",
        "a max-pool's δ shared as an average pool's, δ/(kH·kW) to each cell of the window",
        _spread_evenly("average"),
    ),
)


def _block(kind: str) -> Any:
    def block(layer: Layer) -> tuple[str, tuple[str, ...]]:
        """--diagram's block: the window, the stride, and how a max-pool shares a tie."""
        axes = len(layer.in_shape) - 1
        size, stride = layer.options["size"][-axes:], layer.options["stride"][-axes:]
        lines = [
            f"window {show(size)}, stride "
            + (str(stride[0]) if len(set(stride)) == 1 else "(" + ", ".join(map(str, stride)) + ")")
        ]
        if kind == "max":
            lines.append(f"ties: {layer.options.get('ties', 'first')}")
        return ("max pooling" if kind == "max" else "average pooling", tuple(lines))

    return block


def _type(kind: str, axes: int) -> LayerType:
    return LayerType(
        name=f"{kind}pool{axes}d",
        title=f"{axes}-D {'max' if kind == 'max' else 'average'} pooling",
        equations={
            ("max", 2): _MAX_EQUATIONS,
            ("avg", 2): _AVG_EQUATIONS,
            ("max", 1): _MAX_EQUATIONS_1D,
            ("avg", 1): _AVG_EQUATIONS_1D,
        }[kind, axes],
        keys=(*_KEYS, "ties", "activation") if kind == "max" else (*_KEYS, "activation"),
        rank=axes + 1,
        parse=_parse(kind, axes),
        forward=_forward(kind),
        backward=backward,
        mistakes=_MAX_MISTAKES if kind == "max" else (),
        extra=_routes if kind == "max" else None,
        flips=_flips if kind == "max" else None,
        block=_block(kind),
        written=WrittenCells(
            lambda sheet, ls, n: _write_forward(sheet, ls, n),
            lambda sheet, ls: _write_backward(sheet, ls),
        ),
    )


MAXPOOL2D, MAXPOOL1D = _type("max", 2), _type("max", 1)
AVGPOOL2D, AVGPOOL1D = _type("avg", 2), _type("avg", 1)
_TYPES = {t.name: t for t in (MAXPOOL2D, MAXPOOL1D, AVGPOOL2D, AVGPOOL1D)}


# ---- the worked solution ----------------------------------------------------------------------


def _window(layer: Layer, x: Array, i: int, j: int) -> list[tuple[tuple[int, int], float]]:
    """The cells of window (i, j) of one channel's (H, W) input, row-major, with their values."""
    (kh, kw), (sh, sw) = layer.options["size"], layer.options["stride"]
    return [
        ((sh * i + p, sw * j + q), float(x[sh * i + p, sw * j + q]))
        for p in range(kh)
        for q in range(kw)
    ]


def _write_forward(sheet: Any, ls: Any, n: int) -> list[Any]:
    from gradcalc.doc.blocks import Eqs, Para
    from gradcalc.layers.written import eq

    nt, layer = sheet.nt, ls.layer
    l = layer.number
    x = _as2d(layer, ls.x[n : n + 1])[0]
    z = ls.z[n][:, None, :] if len(layer.in_shape) == 2 else ls.z[n]
    routes = _routes(ls)[0][2][n] if layer.kind.name.startswith("max") else None
    items = []
    sources: list[str] = []
    for c, i, j in sheet.cells(z.shape):
        cells = _window(layer, x[c], i, j)
        if routes is None:
            terms = [nt.num(v) if t == 0 else nt.par(v) for t, (_, v) in enumerate(cells)]
            rhs = f"({sheet.total(terms)})/{len(cells)}"
            items.append(eq(nt.sym("z", l, *cell(layer, c, i, j)), rhs, nt.num(z[c, i, j])))
            continue
        values = ", ".join(nt.num(v) for _, v in cells[: sheet.max_terms])
        if len(cells) > sheet.max_terms:
            values += f", {nt.dots}"
        source = routes[c, i, j] if len(layer.in_shape) == 3 else (0, routes[c, j])
        sources.append(nt.sym("x", l, *cell(layer, c, int(source[0]), int(source[1]))))
        maximum = r"\max" if nt.tex else "max"
        items.append(
            eq(nt.sym("z", l, *cell(layer, c, i, j)), f"{maximum}({values})", nt.num(z[c, i, j]))
        )
    blocks: list[Any] = [Eqs(tuple(items)), *sheet.more(z.shape, nt.sym("z", l))]
    if sources:
        listed = ", ".join(nt.math(s) for s in sources)
        blocks.append(Para(nt.text("Each maximum came from the input cell ") + listed + "."))
    unused = layer.options.get("unused", ())
    if any(unused):
        blocks.append(
            Para(
                nt.text(
                    "PyTorch's floor rule: the last input rows or columns no window reaches "
                    "are left unused."
                )
            )
        )
    return blocks


def _write_backward(sheet: Any, ls: Any) -> list[Any]:
    from gradcalc.doc.blocks import Para
    from gradcalc.layers.written import input_gradient

    nt, layer = sheet.nt, ls.layer
    share = ls.cache["share"][0]  # (C, Ho, Wo, kH·kW) of the first example
    d = ls.delta[0][:, None, :] if len(layer.in_shape) == 2 else ls.delta[0]
    (kh, kw), (sh, sw) = layer.options["size"], layer.options["stride"]
    rule = (
        "each output's δ goes to the input cell its maximum came from (the first in row-major "
        "order on a tie"
        + (
            ", shared among the tied cells with ties: split"
            if layer.options.get("ties") == "split"
            else ""
        )
        + ")"
        if layer.kind.name.startswith("max")
        else f"each output's δ is shared equally, 1/{kh * kw} to each cell of its window"
    )
    lead = Para(nt.text(f"∂C/∂x: {rule}" + (" (example 1):" if ls.x.shape[0] > 1 else ":")))

    def sent_to(c: int, u: int, v: int) -> list[str]:
        terms: list[str] = []
        for i, j in np.ndindex(d.shape[1], d.shape[2]):
            p, q = u - sh * i, v - sw * j
            if 0 <= p < kh and 0 <= q < kw and share[c, i, j, p * kw + q]:
                weight = share[c, i, j, p * kw + q]
                term = (
                    nt.num(d[c, i, j])
                    if weight == 1
                    else nt.prod((weight, False), (d[c, i, j], False), lead=True)
                )
                terms.append(term if not terms else nt.par(d[c, i, j]) if weight == 1 else term)
        return terms

    return [lead, *input_gradient(sheet, ls, sent_to)]
