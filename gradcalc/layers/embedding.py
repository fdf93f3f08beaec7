"""embedding: each token id picks its row of a table, as nn.Embedding: z[t] = E[id_t].

The input is `tokens:` (ids, (T,) for one sequence, (N, T) for a batch). Backward, row v of
∂C/∂E is the SUM of δ[t] over every position t holding token v: a token that repeats gets the
gradient of each of its positions added, never the last one written over the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcalc.functions.registry import Written
from gradcalc.layers.record import Array, Cache, Layer, LayerType, Mistake, Shape, WrittenCells
from gradcalc.layers.shapes import show, tensor

if TYPE_CHECKING:
    from gradcalc.errors import KeyPath
    from gradcalc.yamldoc import Doc


def tokens(doc: Doc, data: dict[str, Any], first: str) -> tuple[Array, bool]:
    """`tokens:` as (N, T) ids held in floats (the engine's arrays are float64), and whether it
    is a batch ((N, T) given) or one sequence ((T,) given)."""
    for key in ("input", "inputs", "sequence", "sequences"):
        if key in data:
            raise doc.error((key,), f"give either 'tokens' or '{key}', not both")
    if first != "embedding":
        raise doc.error(
            ("tokens",),
            f"token ids need an embedding layer first, but layers[0] is {first}",
            "add a layer {type: embedding, table: …} first",
        )
    ids = tensor(doc, data["tokens"], ("tokens",), "'tokens'")
    if ids.ndim not in (1, 2):
        raise doc.error(
            ("tokens",),
            f"expected ids (T) for one sequence or (N, T) for a batch, got shape {show(ids.shape)}",
        )
    bad = np.argwhere((ids != np.round(ids)) | (ids < 0))
    if bad.size:
        where = tuple(int(i) for i in bad[0])
        raise doc.error(
            ("tokens", *where),
            f"a token id is a whole number ≥ 0, got {ids[where]:g}",
        )
    batch = ids.ndim == 2
    return (ids if batch else ids[None]), batch


def check_ids(doc: Doc, x: Array, batch: bool, layer: Layer) -> None:
    """Every id names a row of the embedding's table."""
    vocabulary = layer.params["table"].shape[0]
    bad = np.argwhere(x >= vocabulary)
    if bad.size:
        n, t = (int(i) for i in bad[0])
        raise doc.error(
            ("tokens", n, t) if batch else ("tokens", t),
            f"token id {x[n, t]:g} is outside the table: layers[0].table has {vocabulary} rows "
            f"(ids 0–{vocabulary - 1})",
            "add rows to the table or use a smaller id",
        )


def parse(
    doc: Doc, raw: dict[str, Any], path: KeyPath, in_shape: Shape, index: int, outputs: int | None
) -> Layer:
    from gradcalc.layers.config import activation

    if index != 0 or len(in_shape) != 1:
        raise doc.error(
            path,
            "an embedding layer comes first and takes the config's 'tokens:'",
            "give the ids as tokens: [2, 0, 2]",
        )
    if "table" not in raw:
        raise doc.error(path, "missing key 'table'", "the (vocabulary, d) table of vectors")
    table = tensor(doc, raw["table"], (*path, "table"), "a (vocabulary, d) table", rank=2)
    return Layer(
        EMBEDDING,
        index,
        in_shape,
        (in_shape[0], table.shape[1]),
        {"table": table},
        *activation(doc, raw, path),
        {"positions": True},  # a dense after it acts on each position
    )


def forward(layer: Layer, theta: Mapping[str, Array], x: Array) -> tuple[Array, Cache]:
    ids = x.astype(np.intp)
    return theta["table"][ids], {"ids": ids}


def backward(
    layer: Layer, theta: Mapping[str, Array], cache: Cache, delta: Array, scale: float, x: Array
) -> tuple[Array, dict[str, Array]]:
    grad = np.zeros_like(theta["table"])
    np.add.at(grad, cache["ids"], scale * delta)  # repeated ids add, as index_add_
    return np.zeros_like(x), {"table": grad}


def uses(ids: Array, vocabulary: int) -> Array:
    """(N, vocabulary, T): 1 where position t holds token v, the positions each row sums."""
    return (ids[:, None, :] == np.arange(vocabulary)[None, :, None]).astype(np.int64)


def _extra(ls: Any) -> list[Any]:
    vocabulary = ls.layer.params["table"].shape[0]
    label = "the positions feeding each table row (row v: 1 where token v sits; ∂C/∂E sums them)"
    return [(label, "positions", uses(ls.cache["ids"], vocabulary), True)]


def _overwritten(ctx: Any, l: int) -> dict[str, Array]:
    """∂C/∂E with each repeated token's row set to the δ of one position (the last written)
    instead of the sum over its positions."""
    ids = ctx.spec.x.astype(np.intp)
    if all(len(set(row.tolist())) == len(row) for row in ids):
        return {}
    delta = ctx.given("delta", l)
    table = ctx.theta_pass(l)["table"]
    grad = np.zeros_like(table)
    for n in range(ids.shape[0]):  # within a sequence the last write wins, as E[ids] = δ does
        part = np.zeros_like(grad)
        part[ids[n]] = delta[n]
        grad += part
    grad = ctx.net.scale * grad
    if ctx.spec.weight_decay:
        grad = grad + ctx.spec.weight_decay * table
    return {"grad_table": grad}


def _write_forward(sheet: Any, ls: Any, n: int) -> list[Any]:
    from gradcalc.doc.blocks import Eqs, Para
    from gradcalc.layers.written import eq

    nt, l = sheet.nt, ls.layer.number
    ids = ls.cache["ids"][n]
    table = (ls.params_ahead or ls.params_before)["table"]
    items = [
        eq(nt.sym("z", l, t), nt.sym("E", None, int(v)), nt.vec(table[v], sheet.given()))
        for (t,), v in zip(sheet.cells(ids.shape), ids, strict=False)
    ]
    return [
        Para(nt.text(f"Each position takes the table row of its token (ids {ids.tolist()}):")),
        Eqs(tuple(items)),
        *sheet.more(ids.shape, nt.sym("z", l)),
    ]


def _write_backward(sheet: Any, ls: Any) -> list[Any]:
    from gradcalc.doc.blocks import Eqs, Para
    from gradcalc.layers.written import eq

    nt, l = sheet.nt, ls.layer.number
    ids = ls.cache["ids"]
    grad = ls.grads["table"]
    blocks: list[Any] = [
        Para(
            nt.text(
                "∂C/∂E[v] = Σ δ[t] over the positions t holding token v: a repeated token's "
                "rows are summed, not overwritten; a token not in the input gets 0:"
            )
        )
    ]
    items = []
    for (v,) in sheet.cells((grad.shape[0],)):
        places = [(e, int(t)) for e in range(ids.shape[0]) for t in np.flatnonzero(ids[e] == v)]
        lhs = nt.sym(nt.d("E"), l, v)
        terms = [nt.vec(ls.delta[e, t]) for e, t in places]
        items.append(eq(lhs, sheet.scaled(sheet.total(terms)) if terms else "", nt.vec(grad[v])))
        if len(places) > 1:  # the repeated token: which positions were added
            where = ", ".join(
                f"t = {t}" if ids.shape[0] == 1 else f"example {e + 1} t = {t}" for e, t in places
            )
            items.append(eq(nt.words(f"  (token {v} at {len(places)} positions: {where})"), ""))
    blocks += [Eqs(tuple(items)), *sheet.more((grad.shape[0],), nt.d("E"))]
    blocks.append(Para(nt.text("The ids are not trained: ∂C/∂x of the input is not defined.")))
    return blocks


def _block(layer: Layer) -> tuple[str, tuple[str, ...]]:
    """--diagram's block: the table's size."""
    vocabulary, d = layer.params["table"].shape
    return ("table lookup", (f"vocabulary {vocabulary}, d = {d}",))


EMBEDDING = LayerType(
    name="embedding",
    title="embedding (table lookup, as nn.Embedding)",
    equations=(
        Written("z[t] = E[id_t]", r"z_t = E_{\mathrm{id}_t}"),
        Written(
            "∂C/∂E[v] = Σ_(t: id_t = v) δ[t]  (repeated tokens summed)",
            r"\partial C/\partial E_v = \sum _{t:\,\mathrm{id}_t = v} \delta _t",
        ),
    ),
    keys=("table", "activation"),
    rank=1,
    parse=parse,
    forward=forward,
    backward=backward,
    decays=("table",),
    symbols={"table": "E"},
    mistakes=(
        Mistake(
            "embedding_gradient_overwritten",
            "a repeated token's gradient row set to one position's δ (the last written) "
            "instead of the sum over its positions",
            _overwritten,
        ),
    ),
    extra=_extra,
    linear=False,
    record_keys=("positions",),
    block=_block,
    written=WrittenCells(
        lambda sheet, ls, n: _write_forward(sheet, ls, n),
        lambda sheet, ls: _write_backward(sheet, ls),
    ),
)
