"""Dropout, inverted as in PyTorch: in training each value is kept where the mask is 1 and scaled
by 1/(1 − p), zeroed where it is 0; eval mode is the identity.

    z = x ⊙ mask / (1 − p),   ∂C/∂x = δ ⊙ mask / (1 − p).

The mask is given (`mask:`, one 0/1 array per example) or drawn with `seed: N` by
numpy.random.default_rng(N).random((N_examples, *input shape)) ≥ p: a value is kept where its
uniform draw is at least p. It is drawn once and the same mask is used at every step (a hand
calculation's mask, not a fresh one per step).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcalc.functions.registry import Written
from gradcalc.layers.record import Array, Cache, Layer, LayerType, Mistake, Shape, WrittenCells
from gradcalc.layers.shapes import mode as parse_mode
from gradcalc.layers.shapes import show, tensor

if TYPE_CHECKING:
    from gradcalc.errors import KeyPath
    from gradcalc.yamldoc import Doc


def draw(seed: int, shape: tuple[int, ...], p: float) -> Array:
    """The documented mask of `seed: N`: uniform draws in [0, 1), a value kept where ≥ p."""
    return (np.random.default_rng(seed).random(shape) >= p).astype(float)


def mask(layer: Layer, shape: tuple[int, ...]) -> Array:
    """The keep-mask of a batch of `shape` (N, *in_shape): ones in eval mode."""
    o = layer.options
    if o["mode"] == "eval":
        return np.ones(shape)
    if o.get("mask") is not None:
        return np.broadcast_to(o["mask"].reshape((-1, *layer.in_shape)), shape)
    return draw(o["seed"], shape, o["p"])


def scale(layer: Layer) -> float:
    return 1.0 if layer.options["mode"] == "eval" else 1.0 / (1.0 - layer.options["p"])


def forward(layer: Layer, theta: Mapping[str, Array], x: Array) -> tuple[Array, Cache]:
    keep = mask(layer, x.shape)
    return x * keep * scale(layer), {"mask": keep}


def backward(
    layer: Layer, theta: Mapping[str, Array], cache: Cache, delta: Array, scale_: float, x: Array
) -> tuple[Array, dict[str, Array]]:
    return delta * cache["mask"] * scale(layer), {}


def parse(
    doc: Doc, raw: dict[str, Any], path: KeyPath, in_shape: Shape, index: int, outputs: int | None
) -> Layer:
    from gradcalc.layers.config import activation
    from gradcalc.step.config import _seed
    from gradcalc.yamldoc import number

    p = number(doc, raw.get("p", 0.5), (*path, "p"))
    if not 0 <= p < 1:
        raise doc.error(
            (*path, "p"),
            f"the drop probability p must be in [0, 1), got {p:g}",
            "p = 1 drops everything (its scale 1/(1 − p) is infinite)" if p == 1 else None,
        )
    mode = parse_mode(doc, raw, path)
    if "mask" in raw and "seed" in raw:
        raise doc.error((*path, "seed"), "give either 'mask' or 'seed', not both")
    keep = None
    seed = None
    if "mask" in raw:
        keep = tensor(doc, raw["mask"], (*path, "mask"), "mask")
        if not np.all((keep == 0) | (keep == 1)):
            bad = keep[(keep != 0) & (keep != 1)][0]
            raise doc.error(
                (*path, "mask"),
                f"a keep-mask holds 0 (dropped) or 1 (kept), got {bad:g}",
                "the scale 1/(1 − p) is applied for you",
            )
        if keep.shape != in_shape and keep.shape[1:] != in_shape:
            raise doc.error(
                (*path, "mask"),
                f"mask has shape {show(keep.shape)}, but this layer's input is {show(in_shape)} "
                "per example",
                f"give one {show(in_shape)} mask per example",
            )
    elif "seed" in raw:
        seed = _seed(doc, raw["seed"], (*path, "seed"))
    elif mode == "train" and p > 0:
        raise doc.error(
            path,
            "dropout in training needs its keep-mask: missing key 'mask' (or 'seed')",
            "mask: one 0/1 array per example, or seed: 0 to draw one",
        )
    return Layer(
        DROPOUT,
        index,
        in_shape,
        in_shape,
        {},
        *activation(doc, raw, path),
        {"p": p, "mode": mode, "mask": keep, "seed": seed if keep is None else None},
    )


def check_batch(layer: Layer, n: int) -> tuple[tuple[str, ...], str] | None:
    keep = layer.options.get("mask")
    if keep is None or layer.options["mode"] == "eval":
        return None
    given = keep.shape[0] if keep.shape != layer.in_shape else 1
    if keep.shape == layer.in_shape and n == 1:
        return None
    if keep.shape[1:] == layer.in_shape and given == n:
        return None
    return (
        ("mask",),
        f"mask has shape {show(keep.shape)}, but the batch is {n} example"
        f"{'s' if n != 1 else ''} of shape {show(layer.in_shape)}: give one mask per example "
        f"({show((n, *layer.in_shape))})",
    )


def _extra(ls: Any) -> list[Any]:
    layer = ls.layer
    if layer.options["mode"] == "eval":
        return []
    return [
        ("keep-mask (1 kept, 0 dropped)", "mask", ls.cache["mask"], True),
        ("scale 1/(1 − p)", "scale", np.asarray(scale(layer)), False),
    ]


# ---- named mistakes ---------------------------------------------------------------------------


def _not_rescaled(ctx: Any, l: int) -> dict[str, Array]:
    layer = ctx.shape.layer(l)
    if layer.options["mode"] == "eval" or layer.options["p"] == 0:
        return {}
    x, delta = ctx.x(l), ctx.given("delta", l)
    keep = mask(layer, x.shape)
    return {"z": x * keep, "grad_input": delta * keep}


def _mask_not_applied(ctx: Any, l: int) -> dict[str, Array]:
    layer = ctx.shape.layer(l)
    delta = ctx.given("delta", l)
    keep = mask(layer, delta.shape)
    if layer.options["mode"] == "eval" or np.all(keep == 1):
        return {}
    return {"grad_input": delta * scale(layer)}


MISTAKES = (
    Mistake(
        "dropout_not_rescaled",
        "z = x ⊙ mask (and ∂C/∂x = δ ⊙ mask) without inverted dropout's scale 1/(1 − p)",
        _not_rescaled,
    ),
    Mistake(
        "dropout_mask_not_applied_in_backward",
        "∂C/∂x = δ/(1 − p) at every cell: the mask left out of the backward pass, so dropped "
        "values get a gradient",
        _mask_not_applied,
    ),
)


# ---- the worked solution ----------------------------------------------------------------------


def _write_forward(sheet: Any, ls: Any, n: int) -> list[Any]:
    from gradcalc.doc.blocks import Eqs, Para
    from gradcalc.layers.written import eq

    nt, layer = sheet.nt, ls.layer
    l = layer.number
    if layer.options["mode"] == "eval":
        return [Para(nt.text("Eval mode: dropout is the identity, z = x."))]
    k = scale(layer)
    first = layer.index == 0
    items = []
    for idx in sheet.cells(layer.in_shape):
        cell = (n, *idx)
        items.append(
            eq(
                nt.sym("z", l, *idx),
                nt.prod((ls.x[cell], first), (ls.cache["mask"][cell], True), (k, True), lead=True),
                nt.num(ls.z[cell]),
            )
        )
    p = layer.options["p"]
    return [
        Para(
            nt.text(
                f"z = x × mask × 1/(1 − p): p = {p:g}, scale 1/(1 − {p:g}) = {nt.num(k, True)}; "
                "a dropped value is 0:"
            )
        ),
        Eqs(tuple(items)),
        *sheet.more(layer.in_shape, nt.sym("z", l)),
    ]


def _write_backward(sheet: Any, ls: Any) -> list[Any]:
    from gradcalc.doc.blocks import Eqs, Para
    from gradcalc.layers.written import eq

    nt, layer = sheet.nt, ls.layer
    l = layer.number
    if layer.options["mode"] == "eval":
        return [Para(nt.text("Eval mode: ∂C/∂x = δ."))]
    k = scale(layer)
    items = []
    for idx in sheet.cells(layer.in_shape):
        cell = (0, *idx)
        items.append(
            eq(
                nt.sym(nt.d("x"), l, *idx),
                nt.prod(
                    (ls.delta[cell], False), (ls.cache["mask"][cell], True), (k, True), lead=True
                ),
                nt.num(ls.grad_x[cell]),
            )
        )
    first = " (example 1)" if ls.x.shape[0] > 1 else ""
    return [
        Para(nt.text(f"∂C/∂x = δ × mask × 1/(1 − p): the same mask and scale{first}:")),
        Eqs(tuple(items)),
        *sheet.more(layer.in_shape, nt.d("x")),
    ]


DROPOUT = LayerType(
    name="dropout",
    keeps_positions=True,
    title="inverted dropout (kept values scaled by 1/(1 − p), as PyTorch)",
    equations=(
        Written("z = x ⊙ mask/(1 − p)  (eval: z = x)", r"z = x \odot m/(1-p)"),
        Written("∂C/∂x = δ ⊙ mask/(1 − p)", r"\partial C/\partial x = \delta \odot m/(1-p)"),
    ),
    keys=("p", "mask", "seed", "mode", "activation"),
    rank=None,
    parse=parse,
    forward=forward,
    backward=backward,
    mistakes=MISTAKES,
    extra=_extra,
    written=WrittenCells(
        lambda sheet, ls, n: _write_forward(sheet, ls, n),
        lambda sheet, ls: _write_backward(sheet, ls),
    ),
    check_batch=check_batch,
    record_keys=("mask", "scale"),
)
