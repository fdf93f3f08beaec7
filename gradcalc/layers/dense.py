"""The dense (fully connected) layer: z = w a + b, Nielsen's BP1–BP4.

Its config keys and their checks live here, for the dense-only networks of gradcalc.step.config
and for networks with other layer types alike. Its forward and backward pass, which every
network steps through (gradcalc/step/chain.py), are in gradcalc/functions/training.py, so that a
dense-only network runs them without loading gradcalc.layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gradcalc.check.mistakes import DENSE_LAYER, listed
from gradcalc.functions.registry import Written
from gradcalc.functions.training import DENSE_PASS, dense_backward, dense_forward
from gradcalc.layers.record import Layer, LayerType, Shape, WrittenCells

if TYPE_CHECKING:
    from gradcalc.errors import KeyPath
    from gradcalc.yamldoc import Doc


# step.config's DENSE_KEYS, written here too: `gradcalc list layers` loads this module without
# the config reader.
KEYS = ("weights", "biases", "activation")


def parse(
    doc: Doc, raw: dict[str, Any], path: KeyPath, in_shape: Shape, index: int, outputs: int | None
) -> Layer:
    if len(in_shape) != 1:
        from gradcalc.layers.shapes import feeding, show

        raise doc.error(
            path,
            f"a dense layer takes a vector, but {feeding(index)} gives shape {show(in_shape)}",
            "add a layer {type: flatten} before it",
        )
    # In gradcalc.step.config, which dense-only networks read without loading gradcalc.layers
    # (and `gradcalc list` loads the layer types without the config reader).
    from gradcalc.step.config import dense_arrays

    weights, biases, activation, params = dense_arrays(
        doc, raw, path, in_shape[0], outputs, index + 2, flat=True
    )
    return Layer(
        DENSE,
        index,
        in_shape,
        (weights.shape[0],),
        {"weights": weights, "biases": biases},
        activation,
        params,
    )


def _write_forward(sheet: Any, ls: Any, n: int) -> list[Any]:
    from gradcalc.doc.blocks import Eqs
    from gradcalc.layers.written import eq

    nt, layer = sheet.nt, ls.layer
    l = layer.number
    theta = ls.params_ahead or ls.params_before
    w, b = theta["weights"], theta["biases"]
    first = layer.index == 0
    items = []
    if layer.options.get("positions"):  # the same w at every step t of a sequence
        shape = ls.z.shape[1:]
        for t, j in sheet.cells(shape):
            terms = [
                nt.prod((w[j, k], sheet.given()), (ls.x[n, t, k], first), lead=k == 0)
                for k in range(w.shape[1])
            ]
            rhs = f"{sheet.total(terms)} + {nt.par(b[j], sheet.given())}"
            items.append(eq(nt.sym("z", l, t, j), rhs, nt.num(ls.z[n, t, j])))
        return [Eqs(tuple(items)), *sheet.more(shape, nt.sym("z", l))]
    for (j,) in sheet.cells((w.shape[0],)):
        terms = [
            nt.prod((w[j, k], sheet.given()), (ls.x[n, k], first), lead=k == 0)
            for k in range(w.shape[1])
        ]
        rhs = f"{sheet.total(terms)} + {nt.par(b[j], sheet.given())}"
        items.append(eq(nt.sym("z", l, j), rhs, nt.num(ls.z[n, j])))
    return [Eqs(tuple(items)), *sheet.more((w.shape[0],), nt.sym("z", l))]


def _write_backward(sheet: Any, ls: Any) -> list[Any]:
    from gradcalc.doc.blocks import Eqs, Para
    from gradcalc.layers.written import eq

    nt, layer = sheet.nt, ls.layer
    l = layer.number
    theta = ls.params_ahead or ls.params_before
    w = theta["weights"]
    if layer.options.get("positions"):
        return _write_backward_positions(sheet, ls, w)
    m = ls.x.shape[0]
    blocks: list[Any] = [
        Para(
            nt.text(
                "∂C/∂w[j,k] = δ[j] a[k] (BP4) and ∂C/∂b[j] = δ[j] (BP3), summed over the examples:"
            )
        )
    ]
    items = []
    for j, k in sheet.cells(w.shape):
        terms = [
            nt.prod((ls.delta[e, j], False), (ls.x[e, k], layer.index == 0), lead=e == 0)
            for e in range(m)
        ]
        items.append(
            eq(
                nt.sym(nt.d("w"), l, j, k),
                sheet.scaled(sheet.total(terms)),
                nt.num(ls.grads["weights"][j, k]),
            )
        )
    for (j,) in sheet.cells((w.shape[0],)):
        terms = [nt.num(ls.delta[e, j]) if e == 0 else nt.par(ls.delta[e, j]) for e in range(m)]
        items.append(
            eq(
                nt.sym(nt.d("b"), l, j),
                sheet.scaled(sheet.total(terms)),
                nt.num(ls.grads["biases"][j]),
            )
        )
    blocks.append(Eqs(tuple(items)))
    blocks.append(
        Para(nt.text("∂C/∂a of the layer below = wᵀ δ (BP2)" + (" (example 1):" if m > 1 else ":")))
    )
    items = []
    for (k,) in sheet.cells((w.shape[1],)):
        terms = [
            nt.prod((w[j, k], sheet.given()), (ls.delta[0, j], False), lead=j == 0)
            for j in range(w.shape[0])
        ]
        items.append(eq(nt.sym(nt.d("x"), l, k), sheet.total(terms), nt.num(ls.grad_x[0, k])))
    blocks += [Eqs(tuple(items)), *sheet.more((w.shape[1],), nt.d("x"))]
    return blocks


def _write_backward_positions(sheet: Any, ls: Any, w: Any) -> list[Any]:
    """At every position t: ∂C/∂w[j,k] = Σ over examples and t of δ[t,j] x[t,k]."""
    from gradcalc.doc.blocks import Eqs, Para
    from gradcalc.layers.written import eq

    nt, layer = sheet.nt, ls.layer
    l = layer.number
    rows = ls.x.shape[0] * ls.x.shape[1]
    delta = ls.delta.reshape(rows, -1)
    x = ls.x.reshape(rows, -1)
    blocks: list[Any] = [
        Para(
            nt.text(
                "The same w acts at every step t: ∂C/∂w[j,k] = Σ δ[t,j] x[t,k] and ∂C/∂b[j] = "
                "Σ δ[t,j], summed over the steps (and the examples):"
            )
        )
    ]
    items = []
    for j, k in sheet.cells(w.shape):
        terms = [
            nt.prod((delta[r, j], False), (x[r, k], layer.index == 0), lead=r == 0)
            for r in range(rows)
        ]
        items.append(
            eq(
                nt.sym(nt.d("w"), l, j, k),
                sheet.scaled(sheet.total(terms)),
                nt.num(ls.grads["weights"][j, k]),
            )
        )
    for (j,) in sheet.cells((w.shape[0],)):
        terms = [nt.num(delta[r, j]) if r == 0 else nt.par(delta[r, j]) for r in range(rows)]
        items.append(
            eq(
                nt.sym(nt.d("b"), l, j),
                sheet.scaled(sheet.total(terms)),
                nt.num(ls.grads["biases"][j]),
            )
        )
    blocks.append(Eqs(tuple(items)))
    blocks.append(Para(nt.text("∂C/∂x[t] = wᵀ δ[t] at each step (example 1):")))
    items = []
    steps = ls.x.shape[1]
    for t, k in sheet.cells((steps, w.shape[1])):
        terms = [
            nt.prod((w[j, k], sheet.given()), (ls.delta[0, t, j], False), lead=j == 0)
            for j in range(w.shape[0])
        ]
        items.append(eq(nt.sym(nt.d("x"), l, t, k), sheet.total(terms), nt.num(ls.grad_x[0, t, k])))
    blocks += [Eqs(tuple(items)), *sheet.more((steps, w.shape[1]), nt.d("x"))]
    return blocks


DENSE = LayerType(
    name="dense",
    title="fully connected layer",
    equations=(
        Written(
            "z^l = w^l a^(l−1) + b^l,  a^l = f(z^l)", r"z^l = w^l a^{l-1} + b^l,\ a^l = f(z^l)"
        ),
        Written(
            "∂C/∂w^l_jk = a^(l−1)_k δ^l_j,  ∂C/∂b^l_j = δ^l_j,  ∂C/∂a^(l−1) = (w^l)ᵀ δ^l",
            r"\partial C/\partial w^l_{jk} = a^{l-1}_k \delta ^l_j,\ \partial C/\partial b^l_j"
            r" = \delta ^l_j,\ \partial C/\partial a^{l-1} = (w^l)^T \delta ^l",
        ),
    ),
    keys=KEYS,
    rank=1,
    parse=parse,
    forward=dense_forward,
    backward=dense_backward,
    decays=DENSE_PASS.decays,
    symbols=DENSE_PASS.symbols,
    # The dense registry's own records (one per id, gradcalc/check/mistakes.py), which carry
    # their values in a network of layer records too.
    mistakes=listed(DENSE_LAYER),
    written=WrittenCells(
        lambda sheet, ls, n: _write_forward(sheet, ls, n),
        lambda sheet, ls: _write_backward(sheet, ls),
    ),
)
