"""flatten: one example's (C, H, W) becomes a vector of C·H·W values, row-major, as
torch.flatten(x, 1); the backward pass reshapes the gradient back."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gradcalc.functions.registry import Written
from gradcalc.layers.record import Array, Cache, Layer, LayerType, Shape, WrittenCells

if TYPE_CHECKING:
    from gradcalc.errors import KeyPath
    from gradcalc.yamldoc import Doc


def parse(
    doc: Doc, raw: dict[str, Any], path: KeyPath, in_shape: Shape, index: int, outputs: int | None
) -> Layer:
    from gradcalc.layers.config import activation

    return Layer(FLATTEN, index, in_shape, (math.prod(in_shape),), {}, *activation(doc, raw, path))


def forward(layer: Layer, theta: Mapping[str, Array], x: Array) -> tuple[Array, Cache]:
    return x.reshape(x.shape[0], -1), {}


def backward(
    layer: Layer, theta: Mapping[str, Array], cache: Cache, delta: Array, scale: float, x: Array
) -> tuple[Array, dict[str, Array]]:
    return delta.reshape(x.shape), {}


def _write_forward(sheet: Any, ls: Any, n: int) -> list[Any]:
    from gradcalc.doc.blocks import Para

    shape = ls.layer.in_shape
    text = (
        "row-major, as torch.flatten: x[c,i,j] becomes z[(c·H + i)·W + j]"
        if len(shape) == 3
        else "row-major, as torch.flatten"
    )
    return [Para(sheet.nt.text(text + "; the values are unchanged."))]


def _write_backward(sheet: Any, ls: Any) -> list[Any]:
    from gradcalc.doc.blocks import Para

    return [Para(sheet.nt.text("∂C/∂x is δ reshaped back to the input's shape."))]


FLATTEN = LayerType(
    name="flatten",
    title="flatten (row-major, as torch.flatten)",
    equations=(
        Written("z[(c·H + i)·W + j] = x[c,i,j]", r"z_{(cH+i)W+j} = x_{cij}"),
        Written(
            "∂C/∂x[c,i,j] = δ[(c·H + i)·W + j]",
            r"\partial C/\partial x_{cij} = \delta _{(cH+i)W+j}",
        ),
    ),
    keys=("activation",),
    written=WrittenCells(
        lambda sheet, ls, n: _write_forward(sheet, ls, n),
        lambda sheet, ls: _write_backward(sheet, ls),
    ),
    rank=None,
    parse=parse,
    forward=forward,
    backward=backward,
)
