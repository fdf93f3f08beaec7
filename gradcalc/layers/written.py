"""The worked solution of a layered run as doc blocks (--explain, Markdown, LaTeX): the run's
frame here, each layer's own cells written by its type (LayerType.written), every number
substituted. `--max-terms` cuts a sum, `--max-rows` the cells written per channel."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from gradcalc.doc.blocks import Block, Eq, Eqs, Heading, Para
from gradcalc.doc.notation import Notation
from gradcalc.layers.engine import LayeredRun, LayeredStepTrace, LayerStep
from gradcalc.layers.shapes import cell, show


@dataclass(frozen=True)
class Sheet:
    """What a layer type's writer needs: the notation, the limits, the run's settings."""

    nt: Notation
    max_terms: int
    max_rows: int
    scale: float  # the reduction's 1/m (mean) or 1 (sum)
    step: int
    run: LayeredRun

    def total(self, terms: list[str]) -> str:
        hidden = len(terms) - self.max_terms if len(terms) > self.max_terms else 0
        return self.nt.total(terms[: self.max_terms], hidden)

    def cells(self, shape: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
        """The first max_rows cells (0: all), row-major."""
        for k, index in enumerate(np.ndindex(*shape)):
            if self.max_rows and k >= self.max_rows:
                return
            yield index

    def more(self, shape: tuple[int, ...], what: str) -> list[Block]:
        total = int(np.prod(shape))
        if self.max_rows and total > self.max_rows:
            hidden = total - self.max_rows
            return [Para(self.nt.text(f"… {hidden} more cells of {what} (--max-rows 0 shows all)"))]
        return []

    def given(self, first_layer: bool = False) -> bool:
        """Whether numbers read from the config are written as given: its parameters at step 1,
        its input always."""
        return first_layer or self.step == 1

    def sym(self, name: str, layer: int | None, index: tuple[int, ...]) -> str:
        return self.nt.sym(name, layer, *index)

    def prose(self, text: str) -> str:
        """A sentence in this kind's prose, x̃ kept as x with its tilde (LaTeX's prose would lose
        the combining accent)."""
        if not self.nt.tex:
            return text
        return self.nt.math(r"\tilde{x}").join(self.nt.text(part) for part in text.split("x̃"))

    def tilde_x(self, layer: int, index: tuple[int, ...]) -> str:
        return self.nt.sym(r"\tilde{x}" if self.nt.tex else "x̃", layer, *index)

    def scaled(self, body: str) -> str:
        if self.scale == 1:
            return body
        return f"{self.nt.num(self.scale)}{self.nt.times}[{body}]"


def eq(lhs: str, *rhs: str) -> Eq:
    """lhs = each stage, a stage that repeats the one before left out (δ = 0.2, not = 0.2 = 0.2)."""
    stages: list[str] = []
    for r in rhs:
        if r and (not stages or stages[-1] != r):
            stages.append(r)
    return Eq(lhs, tuple(("=", r) for r in stages))


def input_gradient(
    sheet: Sheet, ls: LayerStep, sent_to: Callable[[int, int, int], list[str]]
) -> list[Block]:
    """∂C/∂x of a layer over windows (convolution, pooling), the first example's cell by cell:
    `sent_to(c, u, v)`, the terms the windows holding cell (u, v) of channel c send it, summed;
    0 where no window holds it."""
    nt, layer = sheet.nt, ls.layer
    grad_x = ls.grad_x[0][:, None, :] if len(layer.in_shape) == 2 else ls.grad_x[0]
    items = []
    for c, u, v in sheet.cells(grad_x.shape):
        terms = sent_to(c, u, v)
        items.append(
            eq(
                nt.sym(nt.d("x"), layer.number, *cell(layer, c, u, v)),
                sheet.total(terms) if terms else "0",
                nt.num(grad_x[c, u, v]),
            )
        )
    return [Eqs(tuple(items)), *sheet.more(grad_x.shape, nt.d("x"))]


def build(
    trace: LayeredRun,
    steps: tuple[LayeredStepTrace, ...],
    kind: str,
    max_terms: int,
    max_rows: int,
    digits: int,
) -> list[Block]:
    nt = Notation(kind, trace.round_to, digits)  # type: ignore[arg-type]
    chain = " → ".join(
        [f"input {show(trace.shapes[0])}"]
        + [f"{layer.kind.name} {show(layer.out_shape)}" for layer in trace.layers]
    )
    blocks: list[Block] = [
        Heading(1, nt.text(f"Worked solution: {trace.source}")),
        Para(
            nt.text(
                f"{chain}; loss {trace.loss}; η = {trace.learning_rate:g}; "
                f"optimizer {trace.optimizer}."
            )
        ),
    ]
    if any(layer.kind.name in ("embedding", "attention", "meanpool") for layer in trace.layers):
        blocks.append(
            Para(
                nt.text(
                    "Cells are indexed from 0; a sequence's are [position, feature], row t of Q, "
                    "K, V and x being position t."
                )
            )
        )
    elif any(
        layer.kind.name != "dense" and len(layer.in_shape) > 1 and "hidden" not in layer.options
        for layer in trace.layers
    ):
        blocks.append(
            Para(
                Sheet(nt, 0, 0, 1.0, 0, trace).prose(
                    "Convolution here is cross-correlation, as in PyTorch: the kernel is not "
                    "flipped. Cells are indexed from 0, [channel, row, column] ([channel, "
                    "position] in 1-D); x̃ is a layer's input with its zero padding."
                )
            )
        )
    scale = 1.0 / trace.x.shape[0] if trace.batch and trace.reduction == "mean" else 1.0
    for st in steps:
        sheet = Sheet(nt, max_terms, max_rows, scale, st.step, trace)
        blocks.append(Heading(2, nt.text(f"Step {st.step}")))
        examples = trace.x.shape[0]
        for n in range(examples):
            if max_rows and n >= max_rows:
                blocks.append(
                    Para(nt.text(f"… {examples - n} more examples (--max-rows 0 shows all)"))
                )
                break
            if trace.batch:
                blocks.append(Heading(3, nt.text(f"Forward pass, example {n + 1}")))
            else:
                blocks.append(Heading(3, nt.text("Forward pass")))
            for ls in st.layers:
                blocks += forward(sheet, ls, n)
        blocks.append(Heading(3, nt.text("Cost")))
        blocks += _cost(sheet, trace, st)
        blocks.append(Heading(3, nt.text("Backward pass")))
        for ls in reversed(st.layers):
            blocks += backward(sheet, ls, trace.batch)
        blocks.append(Heading(3, nt.text("Update")))
        for ls in st.layers:
            blocks += _update(sheet, trace, ls)
    blocks.append(
        Para(
            nt.text(f"After {trace.n_steps} step{'s' if trace.n_steps != 1 else ''}: C = ")
            + nt.math(nt.num(trace.final.loss))
        )
    )
    return blocks


def forward(sheet: Sheet, ls: LayerStep, n: int) -> list[Block]:
    writer = ls.layer.kind.written
    layer = ls.layer
    title = (
        f"Layer {layer.number} ({layer.kind.name}), {show(layer.in_shape)} → "
        f"{show(layer.out_shape)}"
    )
    blocks: list[Block] = [Para(sheet.nt.text(title))]
    if writer is not None:
        blocks += writer.forward(sheet, ls, n)
    blocks += activation(sheet, ls, n)
    return blocks


def backward(sheet: Sheet, ls: LayerStep, batch: bool) -> list[Block]:
    nt = sheet.nt
    layer = ls.layer
    blocks: list[Block] = [Para(nt.text(f"Layer {layer.number} ({layer.kind.name})"))]
    blocks += _delta(sheet, ls)
    writer = layer.kind.written
    if writer is not None:
        blocks += writer.backward(sheet, ls)
    return blocks


def activation(sheet: Sheet, ls: LayerStep, n: int) -> list[Block]:
    nt, layer = sheet.nt, ls.layer
    f = layer.activation
    if layer.residual:
        return _residual(sheet, ls, n)
    if getattr(f, "bare", False):
        return []
    l = layer.number
    if not f.elementwise:
        return [
            Eqs(
                (eq(nt.sym("a", l), f"{nt.written(f.symbol)}({nt.vec(ls.z[n])})", nt.vec(ls.a[n])),)
            )
        ]
    items = []
    for index in sheet.cells(ls.z.shape[1:]):
        cell = (n, *index)
        items.append(
            eq(
                nt.sym("a", l, *index),
                f"{nt.written(f.symbol)}({nt.num(ls.z[cell])})",
                nt.num(ls.a[cell]),
            )
        )
    return [Eqs(tuple(items)), *sheet.more(ls.z.shape[1:], nt.sym("a", l))]


def _residual(sheet: Sheet, ls: LayerStep, n: int) -> list[Block]:
    """`residual: true`: a = x + f(z), cell by cell."""
    nt, layer = sheet.nt, ls.layer
    f, l = layer.activation, layer.number
    bare = getattr(f, "bare", False)
    fz = ls.z if bare else f.forward(ls.z, ls.activation_params_before)
    items = []
    for index in sheet.cells(ls.z.shape[1:]):
        cell = (n, *index)
        applied = nt.par(ls.z[cell]) if bare else f"{nt.written(f.symbol)}({nt.num(ls.z[cell])})"
        stages = [f"{nt.num(ls.x[cell], layer.index == 0)} + {applied}"]
        if not bare:
            stages.append(f"{nt.num(ls.x[cell], layer.index == 0)} + {nt.par(fz[cell])}")
        items.append(eq(nt.sym("a", l, *index), *stages, nt.num(ls.a[cell])))
    return [
        Para(nt.text("The residual: a = x + f(z), the layer's input added to its output:")),
        Eqs(tuple(items)),
        *sheet.more(ls.z.shape[1:], nt.sym("a", l)),
    ]


def _delta(sheet: Sheet, ls: LayerStep) -> list[Block]:
    """δ = ∂C/∂a ⊙ f′(z) (or the fused output's δ), cell by cell for the first example."""
    nt, layer = sheet.nt, ls.layer
    f, l = layer.activation, layer.number
    run = sheet.run
    if getattr(f, "bare", False):
        given = "the loss's gradient" if layer is run.layers[-1] else "the layer above's ∂C/∂x"
        return [Para(nt.text(f"f is the identity: δ = ∂C/∂a, {given}."))]
    if layer is run.layers[-1] and run.fused is not None:
        from gradcalc.functions.losses import REGISTRY

        fused = REGISTRY[run.loss].fused[run.fused]
        y = run.y.reshape(run.y.shape[0], -1)[0]
        items = []
        for (j,) in sheet.cells(ls.z.shape[1:]):
            _, numbers = fused.written(nt, j, ls.a[0], y, nt.sym("a", l, j), nt.sym("y", None, j))
            items.append(eq(nt.sym("δ", l, j), numbers, nt.num(ls.delta[0, j])))
        note = f"{run.fused} with {run.loss}: δ is worked from z directly (example 1):"
        return [Para(nt.text(note)), Eqs(tuple(items))]
    if not f.elementwise:
        return [Eqs((eq(nt.sym("δ", l), nt.vec(ls.delta[0])),))]
    prime = f.prime(ls.z, ls.a, ls.activation_params_before)
    items = []
    for index in sheet.cells(ls.z.shape[1:]):
        cell = (0, *index)
        items.append(
            eq(
                nt.sym("δ", l, *index),
                f"{nt.num(ls.grad_a[cell])}{nt.ttimes}{nt.par(prime[cell])}",
                nt.num(ls.delta[cell]),
            )
        )
    return [
        Para(nt.text("δ = ∂C/∂a × f′(z), with f′ of the layer's activation:")),
        Eqs(tuple(items)),
        *sheet.more(ls.z.shape[1:], nt.sym("δ", l)),
    ]


def _cost(sheet: Sheet, trace: LayeredRun, st: LayeredStepTrace) -> list[Block]:
    from gradcalc.functions.losses import REGISTRY, UPSTREAM

    nt = sheet.nt
    loss = UPSTREAM if trace.loss == "upstream" else REGISTRY[trace.loss]
    last = st.layers[-1]
    n = trace.x.shape[0]
    a = (last.a[:, -1] if trace.sliced else last.a).reshape(n, -1)
    y = trace.y.reshape(n, -1)
    shown = min(a.shape[1], sheet.max_terms)
    items = []
    for k in range(min(n, sheet.max_rows or n)):
        stages = loss.cost_written(nt, a[k], y[k], shown, trace.loss_params)
        items.append(
            Eq(
                nt.sym("C", None, k + 1) if n > 1 else "C",
                (*(("=", s) for s in stages), ("=", nt.num(st.losses[k]))),
            )
        )
    blocks: list[Block] = [
        Para(nt.text(f"{trace.loss}: ") + nt.formula(loss.formula)),
        Eqs(tuple(items)),
    ]
    if n > 1:
        blocks.append(
            Para(nt.text(f"C = the {trace.reduction} over the batch = ") + nt.math(nt.num(st.loss)))
        )
    return blocks


def _update(sheet: Sheet, trace: LayeredRun, ls: LayerStep) -> list[Block]:
    nt, layer = sheet.nt, ls.layer
    blocks: list[Block] = []
    for name, new in ls.params.items():
        symbol = layer.kind.symbols.get(name, name)
        old, grad = ls.params_before[name], ls.grads[name]
        items = []
        for index in sheet.cells(new.shape):
            rhs = ""
            if trace.optimizer == "sgd":
                rhs = (
                    f"{nt.num(old[index], sheet.given())} {nt.minus} "
                    f"{nt.num(trace.learning_rate, True)}{nt.ttimes}{nt.par(grad[index])}"
                )
            items.append(eq(nt.sym(symbol, layer.number, *index), rhs, nt.num(new[index])))
        lead = (
            f"{symbol} ← {symbol} − η ∂C/∂{symbol}"
            if trace.optimizer == "sgd"
            else f"{symbol} by {trace.optimizer}"
        )
        blocks += [
            Para(nt.text(f"Layer {layer.number}: {lead}")),
            Eqs(tuple(items)),
            *sheet.more(new.shape, nt.sym(symbol, layer.number)),
        ]
    return blocks


def document(
    trace: LayeredRun,
    steps: tuple[LayeredStepTrace, ...],
    fmt: str,
    max_terms: int,
    max_rows: int,
    digits: int,
) -> list[Block]:
    from gradcalc.doc import DOCUMENTS

    kind = "text" if fmt == "explain" else DOCUMENTS[fmt][1]
    return build(trace, steps, kind, max_terms, max_rows, digits)
