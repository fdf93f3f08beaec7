"""The pictures `gradcalc step` draws beside its output (--diagram, --plot): a writer that
passes each step to the output's writer and keeps what the pictures need of it.

The writers take a dense run (gradcalc/step/) or a layered one (gradcalc/layers/) alike: the
diagram draws both; the plot of a layered run draws each parameter's norms, from every step's
full record, the writer inside still getting the summaries it asked for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcalc.step.trace import RunTrace, StepSummary, StepTrace


@dataclass(frozen=True)
class Asked:
    diagram: str | None  # the file, or None
    show: str
    step: int
    plot: str | None
    digits: int


class Pictures:
    """Wraps the output's writer: asks the engine for the diagram's step in full, and for the
    norms of every step when there is a plot."""

    def __init__(self, writer: Any, asked: Asked) -> None:
        self.writer = writer
        self.asked = asked
        self.norms = getattr(writer, "norms", False) or asked.plot is not None
        self.kept: StepTrace | None = None
        self.recorder: Any = None
        self.head: RunTrace | None = None

    def full(self, step: int) -> bool:
        if self.layered and self.asked.plot is not None:
            return True
        return bool(self.writer.full(step)) or (
            self.asked.diagram is not None and step == self.asked.step
        )

    @property
    def layered(self) -> bool:
        return self.head is not None and not isinstance(self.head, RunTrace)

    def start(self, trace: Any) -> None:
        self.head = trace
        if self.asked.plot is not None:
            self.recorder = recorder(trace)
        self.writer.start(trace)

    def step(self, st: Any) -> None:
        if _full(st) and st.step == self.asked.step:
            self.kept = st
        if self.recorder is not None:
            self.recorder.add(st)
        if self.layered and _full(st) and not self.writer.full(st.step):
            from gradcalc.layers.engine import summarize

            st = summarize(st)
        self.writer.step(st)

    def finish(self, trace: RunTrace) -> Any:
        return self.writer.finish(trace)

    def files(self, trace: RunTrace) -> list[tuple[str, str, str]]:
        """(file, its SVG text, the option that named it) for each picture asked for."""
        from gradcalc.doc import svg

        out = []
        if self.asked.diagram is not None:
            from gradcalc.step import diagram

            assert self.kept is not None
            fig = diagram.build(trace, self.kept, self.asked.show, self.asked.digits)  # type: ignore[arg-type]
            out.append((self.asked.diagram, svg.write(fig), "--diagram"))
        if self.asked.plot is not None:
            from gradcalc.step import plot

            out.append((self.asked.plot, svg.write(plot.build(self.recorder, trace)), "--plot"))
        return out


def _full(st: Any) -> bool:
    """A step's full record (a dense or layered one), not its summary."""
    return getattr(st, "layers", None) is not None


def recorder(trace: Any) -> Any:
    """The plot's recorder for this run: per layer (dense), per parameter (layered)."""
    from gradcalc.step.plot import LayeredRecorder, Recorder

    if isinstance(trace, RunTrace):
        return Recorder(len(trace.sizes) - 1)
    return LayeredRecorder(trace.layers)


class SvgWriter:
    """--format svg: the network of one step, drawn as --diagram draws it."""

    def __init__(self, show: str, step: int, digits: int) -> None:
        self.show = show
        self.target = step
        self.digits = digits
        self.norms = False
        self.kept: StepTrace | None = None

    def full(self, step: int) -> bool:
        return step == self.target

    def start(self, trace: RunTrace) -> None:
        pass

    def step(self, st: Any) -> None:
        if _full(st) and st.step == self.target:
            self.kept = st

    def finish(self, trace: Any) -> str:
        from gradcalc.doc import svg
        from gradcalc.step import diagram

        assert self.kept is not None
        return svg.write(diagram.build(trace, self.kept, self.show, self.digits))  # type: ignore[arg-type]


class HtmlWriter:
    """--format html: the worked solution's page, with the network of the first step it shows
    drawn, the loss and norm curves (two steps or more), and each shown step's numbers as
    tables."""

    def __init__(self, shown: Any, max_terms: int, max_rows: int, digits: int) -> None:
        from gradcalc.step.writers import SolutionWriter

        self.solution = SolutionWriter(shown, "html", max_terms, max_rows, digits)
        self.max_rows = max_rows
        self.digits = digits
        self.norms = True
        self.recorder: Any = None

    def full(self, step: int) -> bool:
        return self.solution.full(step)

    def start(self, trace: RunTrace) -> None:
        from gradcalc.step.plot import Recorder

        self.recorder = Recorder(len(trace.sizes) - 1)

    def step(self, st: StepTrace | StepSummary) -> None:
        self.recorder.add(st)
        self.solution.step(st)

    def finish(self, trace: RunTrace) -> str:
        from gradcalc.doc import html

        return html.write(self.blocks(trace))

    def blocks(self, trace: RunTrace) -> list[Any]:
        import dataclasses

        from gradcalc.doc.notation import Notation
        from gradcalc.step.solution import build

        kept = tuple(self.solution.kept)
        nt = Notation("markdown", trace.round_to, self.digits)
        blocks: list[Any] = list(
            build(
                dataclasses.replace(trace, steps=kept),
                nt,
                exact=trace.exact,
                max_terms=self.solution.max_terms,
                max_rows=self.max_rows,
                document=True,
            )
        )
        extra = _pictures(trace, kept, self.recorder, self.digits)
        for st in kept[:3]:
            extra += tables(trace, st, self.digits, self.max_rows)
        return _before_solution(blocks, extra)


class LayeredHtmlWriter:
    """--format html of a layered run: its worked solution's page (gradcalc/layers/written.py),
    with the network of the first step it shows drawn, the loss and norm curves (two steps or
    more) and each shown step's numbers as tables (the first three), as a dense run's page has
    them."""

    def __init__(self, shown: Any, max_terms: int, max_rows: int, digits: int) -> None:
        from gradcalc.layers.solution import SolutionWriter

        self.solution = SolutionWriter("html", shown, max_terms, max_rows, digits)
        self.max_rows = max_rows
        self.digits = digits
        self.norms = True
        self.recorder: Any = None

    def full(self, step: int) -> bool:
        return True  # every step's parameters' norms, for the curves

    def start(self, trace: Any) -> None:
        self.recorder = recorder(trace)

    def step(self, st: Any) -> None:
        self.recorder.add(st)
        self.solution.step(st)

    def finish(self, trace: Any) -> str:
        from gradcalc.doc import html

        return html.write(self.blocks(trace))

    def blocks(self, trace: Any) -> list[Any]:
        from gradcalc.layers.written import document

        s = self.solution
        kept = tuple(s.kept)
        blocks = document(trace, kept, "html", s.max_terms, s.max_rows, self.digits)
        extra = _pictures(trace, kept, self.recorder, self.digits)
        for st in kept[:3]:
            extra += layered_tables(trace, st, self.digits, self.max_rows)
        return _before_solution(blocks, extra)


def _pictures(trace: Any, kept: tuple[Any, ...], recorder: Any, digits: int) -> list[Any]:
    """A page's pictures: the network at the first step it shows, and the loss and norm
    curves when the run has two steps or more."""
    from gradcalc.doc import html, svg
    from gradcalc.step import diagram, plot

    out: list[Any] = []
    if kept:
        fig = diagram.build(trace, kept[0], "update", digits)
        out.append(
            html.Picture(
                svg.write(fig, standalone=False),
                f"The network at step {kept[0].step}, as the sheet draws it.",
            )
        )
    if trace.n_steps >= 2:
        out.append(
            html.Picture(
                svg.write(plot.build(recorder, trace), standalone=False), "The loss per step."
            )
        )
    return out


def _before_solution(blocks: list[Any], extra: list[Any]) -> list[Any]:
    """`extra` placed after the page's title and the run's description, before the worked
    solution (its first heading after the title)."""
    at = next((i for i, b in enumerate(blocks) if i and type(b).__name__ == "Heading"), 1)
    return blocks[:at] + extra + blocks[at:]


def tables(trace: RunTrace, st: StepTrace, digits: int, max_rows: int) -> list[Any]:
    """Step `st`'s numbers as two tables: each unit's, and each weight's (first example)."""
    from gradcalc.doc.blocks import Heading, Table
    from gradcalc.doc.notation import Notation, subscript, superscript

    nt = Notation("text", trace.round_to, digits)
    num = nt.num
    units, weights = [], []
    for lt in st.layers:
        l = lt.layer
        for j in range(lt.z.shape[1]):
            units.append(
                (
                    f"unit {j + 1} of layer {l}",
                    num(float(lt.z[0, j])),
                    num(float(lt.a[0, j])),
                    num(float(lt.delta[0, j])),
                    num(float(lt.biases_before[j])),
                    num(float(lt.grad_biases[j])),
                    num(float(lt.biases[j])),
                )
            )
        for j in range(lt.weights.shape[0]):
            for k in range(lt.weights.shape[1]):
                weights.append(
                    (
                        f"w{superscript(str(l))}{subscript(f'{j + 1}{k + 1}')}"
                        if max(j, k) < 9
                        else f"w^{l}_{j + 1},{k + 1}",
                        num(float(lt.weights_before[j, k])),
                        num(float(lt.grad_weights[j, k])),
                        num(float(lt.weights[j, k])),
                    )
                )
    cap = max_rows or None

    def note(rows: list[Any]) -> str:
        hidden = len(rows) - len(rows[:cap])
        return f"… {hidden} more rows (--max-rows 0 shows all)" if hidden > 0 else ""

    example = " (example 1)" if trace.x.shape[0] > 1 else ""
    return [
        Heading(3, f"Step {st.step} in numbers"),
        Table(
            ("unit", f"z{example}", "a", "δ", "b", "∂C/∂b", "new b"),
            tuple(units[:cap]),
            note(units),
        ),
        Table(("weight", "w", "∂C/∂w", "new w"), tuple(weights[:cap]), note(weights)),
    ]


def layered_tables(trace: Any, st: Any, digits: int, max_rows: int) -> list[Any]:
    """Step `st` of a layered run in numbers, the arrays its terminal tables show
    (gradcalc/layers/views.py): per layer a table of its forward pass (z, a and the layer's own
    arrays), one of its backward pass (δ, ∂C/∂x, its arrays, ∂C/∂θ) and one of its parameters
    after the update; each array's matrices one after the other, a row a line; of the first
    example where an array has one per example."""
    from gradcalc.doc.blocks import Heading
    from gradcalc.doc.notation import Notation, superscript
    from gradcalc.layers.shapes import show

    num = Notation("text", trace.round_to, digits).num
    examples = trace.x.shape[0]
    which = f" (example 1 of {examples})" if examples > 1 else ""
    out: list[Any] = [Heading(3, f"Step {st.step} in numbers{which}")]
    for ls in st.layers:
        layer = ls.layer
        l, sup = layer.number, superscript(str(layer.number))
        kind = layer.kind
        act = layer.options.get("activation")
        if act is None and (layer.params or not getattr(layer.activation, "bare", False)):
            act = layer.activation.name
        out.append(
            Heading(
                4,
                f"Layer {l} ({kind.name}{f', {act}' if act else ''}), "
                f"{show(layer.in_shape)} → {show(layer.out_shape)}",
            )
        )
        extras = kind.extra(ls) if kind.extra else []
        backward = kind.backward_extra(ls) if kind.backward_extra else []
        forward: list[tuple[str, Any]] = []
        if layer.index == 0:
            forward.append(("input x", ls.x[0]))
        forward += [(label, v[0] if each else v) for label, _, v, each in extras if _input(label)]
        forward.append((f"z{sup}", ls.z[0]))
        if not getattr(layer.activation, "bare", False):
            forward.append((f"a{sup}", ls.a[0]))
        forward += [
            (label, v[0] if each else v) for label, _, v, each in extras if not _input(label)
        ]
        back = [(f"δ{sup}", ls.delta[0]), (f"∂C/∂x at layer {l}", ls.grad_x[0])]
        back += [(label, v[0] if each else v) for label, _, v, each in backward]
        back += [(f"∂C/∂{kind.symbols.get(n, n)}{sup}", g) for n, g in ls.grads.items()]
        update = [(f"{kind.symbols.get(n, n)}{sup} after", v) for n, v in ls.params.items()]
        for name, value in ls.state.items():  # carried, not trained (running statistics)
            update += [(f"{name}{sup} before", ls.state_before[name]), (f"{name}{sup}", value)]
        for title, items in (("forward", forward), ("backward", back), ("update", update)):
            if items:
                out.append(_pass_table(title, items, num, max_rows))
    return out


def _input(label: str) -> bool:
    """An array of the layer's input (a conv layer's padded input): shown before z."""
    return label.startswith("input")


# The widest a layered table is drawn: the columns beyond are counted (JSON has them all).
MAX_COLUMNS = 16


def _matrices(label: str, values: Any) -> list[tuple[str, Any]]:
    """An array as the terminal's matrices split it: a vector one row, a matrix itself, a stack
    one matrix a channel (a kernel and channel; a step t of a recurrent parameter's part)."""
    values = np.asarray(values)
    pairs = values.dtype.kind in "iu" and values.ndim >= 3 and values.shape[-1] == 2
    if values.ndim <= 1:
        return [(label, np.atleast_1d(values)[None, :])]
    lead = values.shape[: -3 if pairs else -2]
    if not lead:
        return [(label, values)]
    names = ("channel",) if len(lead) == 1 else ("kernel", "channel")
    out = []
    for index in np.ndindex(*lead):
        where = ", ".join(f"{n} {i}" for n, i in zip(names, index, strict=True))
        if label.endswith(" at each t"):
            where = f"t = {index[0] + 1}"
        out.append((f"{label}, {where}", values[index]))
    return out


def _pass_table(title: str, items: list[tuple[str, Any]], num: Any, max_rows: int) -> Any:
    """One pass of one layer as a table: each matrix's rows under its name (the row's number
    beside it), its columns numbered; rows and matrices beyond max_rows counted, columns beyond
    MAX_COLUMNS."""
    from gradcalc.doc.blocks import Table

    cap = max_rows or None
    rows: list[tuple[str, ...]] = []
    width, hidden_rows, hidden_cols = 0, 0, 0
    for label, values in items:
        parts = _matrices(label, values)
        hidden_rows += sum(len(m) for _, m in parts[cap:])
        for name, matrix in parts[:cap]:
            pairs = matrix.dtype.kind in "iu" and matrix.ndim == 3
            shown = min(matrix.shape[1], MAX_COLUMNS)
            hidden_cols = max(hidden_cols, matrix.shape[1] - shown)
            width = max(width, shown)
            hidden_rows += max(len(matrix) - (cap or len(matrix)), 0)
            for i, row in enumerate(matrix[:cap]):
                if pairs:
                    cells = [f"({r},{c})" for r, c in row[:shown].tolist()]
                elif matrix.dtype.kind in "iu":
                    cells = [str(v) for v in row[:shown].tolist()]
                else:
                    cells = [num(float(v)) for v in row[:shown]]
                index = str(i + 1) if len(matrix) > 1 else ""
                rows.append((name if i == 0 else "", index, *cells))
    body = tuple(r + ("",) * (width + 2 - len(r)) for r in rows)
    notes = []
    if hidden_rows:
        notes.append(f"{hidden_rows} more rows")
    if hidden_cols:
        notes.append(f"{hidden_cols} more columns")
    note = f"… {' and '.join(notes)} (--max-rows 0 shows all)" if notes else ""
    if hidden_cols and not hidden_rows and not cap:
        note = f"… {hidden_cols} more columns (the JSON output has them all)"
    return Table((title, "row", *(str(j) for j in range(1, width + 1))), body, note)


def page_blocks(trace: Any) -> list[Any]:
    """The blocks of `--format html`'s page for a finished run (dense or layered), as the
    command writes it by default: the first three steps and the last worked out."""
    from gradcalc.step.select import Selection

    mask = Selection().mask(trace.n_steps, 3)
    shown = lambda step: bool(mask[step])  # noqa: E731
    writer: Any
    if isinstance(trace, RunTrace):
        writer = HtmlWriter(shown, 6, 40, 3)
    else:
        writer = LayeredHtmlWriter(shown, 6, 40, 3)
    writer.start(trace)
    for st in trace.steps:
        writer.step(st)
    return list(writer.blocks(trace))


def notebook(trace: Any) -> str:
    """The page of `page_blocks` as a fragment a notebook shows (Jupyter's _repr_html_)."""
    from gradcalc.doc import html

    return html.fragment(page_blocks(trace))
