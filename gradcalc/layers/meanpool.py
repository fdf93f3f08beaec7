"""meanpool: the mean over the T positions of a (T, d) sequence, one vector of d values, as
x.mean(dim=1); backward, each position gets δ/T."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcalc.functions.registry import Written
from gradcalc.layers.record import Array, Cache, Layer, LayerType, Shape, WrittenCells
from gradcalc.layers.shapes import feeding, show

if TYPE_CHECKING:
    from gradcalc.errors import KeyPath
    from gradcalc.yamldoc import Doc


def parse(
    doc: Doc, raw: dict[str, Any], path: KeyPath, in_shape: Shape, index: int, outputs: int | None
) -> Layer:
    from gradcalc.layers.config import activation

    if len(in_shape) != 2:
        before = feeding(index)
        raise doc.error(
            path,
            f"meanpool takes a sequence (T, d), but {before} gives shape {show(in_shape)}",
        )
    return Layer(MEANPOOL, index, in_shape, (in_shape[1],), {}, *activation(doc, raw, path))


def forward(layer: Layer, theta: Mapping[str, Array], x: Array) -> tuple[Array, Cache]:
    return x.mean(axis=1), {}


def backward(
    layer: Layer, theta: Mapping[str, Array], cache: Cache, delta: Array, scale: float, x: Array
) -> tuple[Array, dict[str, Array]]:
    return np.broadcast_to(delta[:, None, :] / x.shape[1], x.shape).copy(), {}


def _write_forward(sheet: Any, ls: Any, n: int) -> list[Any]:
    from gradcalc.doc.blocks import Eqs
    from gradcalc.layers.written import eq

    nt, l = sheet.nt, ls.layer.number
    x = ls.x[n]
    items = []
    for (k,) in sheet.cells((x.shape[1],)):
        terms = [nt.num(x[t, k]) if t == 0 else nt.par(x[t, k]) for t in range(x.shape[0])]
        items.append(
            eq(nt.sym("z", l, k), f"({sheet.total(terms)})/{x.shape[0]}", nt.num(ls.z[n, k]))
        )
    return [Eqs(tuple(items)), *sheet.more((x.shape[1],), nt.sym("z", l))]


def _write_backward(sheet: Any, ls: Any) -> list[Any]:
    from gradcalc.doc.blocks import Para

    T = ls.x.shape[1]
    return [
        Para(
            sheet.nt.text(
                f"∂C/∂x[t] = δ/{T} at every position t: "
                + sheet.nt.vec(ls.grad_x[0, 0])
                + (" (example 1)." if ls.x.shape[0] > 1 else ".")
            )
        )
    ]


MEANPOOL = LayerType(
    name="meanpool",
    title="mean over the positions of a sequence",
    equations=(
        Written("z[k] = (1/T) Σ_t x[t,k]", r"z_k = \frac{1}{T} \sum _t x_{tk}"),
        Written("∂C/∂x[t,k] = δ[k]/T", r"\partial C/\partial x_{tk} = \delta _k/T"),
    ),
    keys=("activation",),
    rank=2,
    parse=parse,
    forward=forward,
    backward=backward,
    written=WrittenCells(
        lambda sheet, ls, n: _write_forward(sheet, ls, n),
        lambda sheet, ls: _write_backward(sheet, ls),
    ),
)
