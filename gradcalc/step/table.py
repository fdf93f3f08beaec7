"""Tables for a terminal: one section per step, in the order of a hand solution.

The sections are built as parts (gradcalc.doc.plain's Text, and the title, grid and fitted
table below) that draw themselves two ways: `to_rich` gives rich renderables, for a terminal with
colour and for Jupyter; `plain` writes, without importing rich's console and table modules, the
characters rich prints without colour, or None where only rich can draw them (a table to split
to fit the width, a word longer than the line), and the caller prints with rich.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.cells import cell_len

from gradcalc.doc import plain as plain_doc
from gradcalc.doc.numbers import Style
from gradcalc.doc.plain import Table, Text
from gradcalc.step.select import gaps
from gradcalc.step.trace import ForwardTrace, LayerTrace, RunTrace, StepTrace

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.measure import Measurement

# The tables' numbers: six significant digits, so 0.000867027 keeps its digits instead of
# rounding to 0.001, or --digits N; `render` sets them for the tables it builds.
_DIGITS: ContextVar[int] = ContextVar("digits", default=6)


def num(value: float) -> str:
    return Style(_DIGITS.get())(value)


def vec(values: Iterable[float]) -> str:
    return "[" + ", ".join(num(v) for v in values) + "]"


def num_drift(value: float) -> str:
    """A drift between the rounded and the exact run: three digits (fewer with --digits)."""
    return Style(min(3, _DIGITS.get()))(value)


# The columns that say which row it is (example, layer, unit, input): repeated in every piece
# of a table split to fit the terminal.
_KEYS = ("x", "l", "j", "k")


class _Title:
    """A section title, `name   equations` (one or more lines), wrapped at spaces to the width:
    a continuation line starts under the equations, not at the left edge."""

    def __init__(self, text: str, style: str = "bold") -> None:
        self.text = text
        self.style = style

    def wrapped(self, width: int) -> str:
        lines: list[str] = []
        for line in self.text.split("\n"):
            lead = re.match(r"\s+|\S.*?\s{2,}(?=\S)", line)
            indent = min(cell_len(lead.group()) if lead else 0, width // 2)
            lines += textwrap.wrap(
                line,
                width,
                subsequent_indent=" " * indent,
                break_long_words=False,
                break_on_hyphens=False,
            ) or [""]
        return "\n".join(lines)

    def lines(self, width: int) -> list[str] | None:
        return _plain_lines(Text(self.wrapped(width), style=self.style), width)

    def to_rich(self) -> _Title:
        return self

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text as RichText

        yield RichText(self.wrapped(options.max_width), style=self.style)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        from rich.measure import Measurement

        longest = max(cell_len(line) for line in self.text.split("\n"))
        return Measurement(min(longest, options.max_width), longest)


def _cells(text: str) -> int:
    """The columns a cell takes: its length, but m̂ (m and a combining mark) takes one."""
    return len(text) if text.isascii() else cell_len(text)


class _Grid:
    """A right-justified table drawn like rich's default Table (heavy head, padded cells), in
    one pass of string formatting: rich lays out every cell on its own, ~0.1 ms each, which
    made a drawn step of a 784-128-64-10 network take ~100 ms. A table wider than the console
    goes to Fit, which splits it into pieces repeating the key columns (rich draws those)."""

    def __init__(
        self, columns: tuple[str, ...], rows: list[tuple[str, ...]], keys: int, caption: str
    ) -> None:
        self.columns = columns
        self.rows = rows
        self.keys = keys
        self.caption = caption

    def _widths(self) -> list[int]:
        widths = [cell_len(c) for c in self.columns]
        for row in self.rows:
            for i, cell in enumerate(row):
                n = _cells(cell)
                if n > widths[i]:
                    widths[i] = n
        return widths

    def _fits(self, widths: list[int], width: int) -> bool:
        return sum(widths) + 3 * len(widths) + 1 <= width

    def _body(self, widths: list[int]) -> str:
        return "".join(
            "│"
            + "│".join(
                f" {' ' * (w - _cells(cell))}{cell} " for cell, w in zip(row, widths, strict=True)
            )
            + "│\n"
            for row in self.rows
        )

    def _caption(self, width: int) -> str:
        # As Fit writes it: wrapped at words, no trailing spaces.
        return "\n".join(textwrap.wrap(self.caption, width))

    def lines(self, width: int) -> list[str] | None:
        widths = self._widths()
        if not self._fits(widths, width):
            return None
        bars = ["━" * (w + 2) for w in widths]
        header = "┃".join(
            " " + " " * (w - cell_len(column)) + column + " "
            for column, w in zip(self.columns, widths, strict=True)
        )
        out = ["┏" + "┳".join(bars) + "┓", "┃" + header + "┃", "┡" + "╇".join(bars) + "┩"]
        out += self._body(widths).split("\n")[:-1]
        out.append("└" + "┴".join("─" * (w + 2) for w in widths) + "┘")
        if self.caption:
            caption = _plain_lines(Text(self._caption(width), style="dim"), width)
            if caption is None:
                return None
            out += caption
        return out

    def to_rich(self) -> _Grid:
        return self

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.segment import Segment
        from rich.text import Text as RichText

        widths = self._widths()
        if not self._fits(widths, options.max_width):
            from gradcalc.doc.fit import Fit

            yield Fit(self._rich(), self.keys, self.caption)
            return
        bars = ["━" * (w + 2) for w in widths]
        line = Segment.line()
        yield Segment("┏" + "┳".join(bars) + "┓")
        yield line
        yield Segment("┃")
        header = console.get_style("table.header")
        for column, w in zip(self.columns, widths, strict=True):
            yield Segment(" " + " " * (w - cell_len(column)) + column + " ", header)
            yield Segment("┃")
        yield line
        yield Segment("┡" + "╇".join(bars) + "┩")
        yield line
        body = self._body(widths)
        if body:
            yield Segment(body)
        yield Segment("└" + "┴".join("─" * (w + 2) for w in widths) + "┘")
        yield line
        if self.caption:
            yield RichText(self._caption(options.max_width), style="dim")

    def _rich(self) -> Any:
        from rich.table import Table as RichTable

        table = RichTable(expand=False)
        for column in self.columns:
            table.add_column(column, justify="right", no_wrap=True)
        for row in self.rows:
            table.add_row(*row)
        return table


class _Fitted:
    """A table with a Fit around it on rich's side (split to fit the width, its first column
    repeated); drawn plain where gradcalc.doc.plain can draw it as Fit lays it out."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def lines(self, width: int) -> list[str] | None:
        return _plain_lines(self.table, width)

    def to_rich(self) -> Any:
        from gradcalc.doc.fit import Fit

        return Fit(self.table.to_rich(), 1)


Part = Text | _Title | _Grid | _Fitted


def _plain_lines(part: Text | Table, width: int) -> list[str] | None:
    drawn = plain_doc.plain([part], width)
    return None if drawn is None else drawn.split("\n")[:-1]


def to_rich(parts: Sequence[Part]) -> list[RenderableType]:
    return [part.to_rich() for part in parts]


def plain(parts: Sequence[Part], width: int) -> str | None:
    """The parts as rich prints them without colour at `width` columns, or None where only
    rich can draw them."""
    out: list[str] = []
    for part in parts:
        lines = _plain_lines(part, width) if isinstance(part, Text) else part.lines(width)
        if lines is None:
            return None
        out += lines
    return "".join(line + "\n" for line in out)


def _table(
    title: str, columns: Sequence[str], rows: Iterator[tuple[str, ...]], total: int, limit: int
) -> list[Part]:
    """A titled table of at most `limit` rows (0: all); only the rows shown are formatted."""
    shown = list(islice(rows, limit or None))
    hidden = total - limit if limit else 0
    caption = ""
    if hidden > 0:
        caption = f"… {hidden} more rows (--max-rows 0 shows all; --format json)"
    keys = next((i for i, c in enumerate(columns) if c not in _KEYS), len(columns))
    # The title wraps under its equations, not at the left edge.
    return [_Title("\n" + title), _Grid(tuple(columns), shown, keys, caption)]


def _lead(trace: RunTrace, x: int) -> tuple[str, ...]:
    return (str(x + 1),) if trace.batch else ()


def _forward(
    trace: RunTrace, zs: Sequence[np.ndarray], activations: Sequence[np.ndarray], limit: int
) -> list[Part]:
    def rows() -> Iterator[tuple[str, ...]]:
        for x in range(m):
            lead = _lead(trace, x)
            for k, v in enumerate(trace.x[x], 1):
                yield (*lead, "1", str(k), "(input)", num(v))
            for l, (z, a) in enumerate(zip(zs, activations, strict=True), 2):
                for j in range(z.shape[1]):
                    yield (*lead, str(l), str(j + 1), num(z[x, j]), num(a[x, j]))

    m = trace.x.shape[0]
    cols = (["x"] if trace.batch else []) + ["l", "j", "z^l_j", "a^l_j"]
    title = "Forward pass   z^l = w^l a^(l-1) + b^l,  a^l = f(z^l)"
    return _table(title, cols, rows(), m * sum(trace.sizes), limit)


def _loss_line(
    trace: RunTrace,
    losses: np.ndarray,
    loss: float,
    output: np.ndarray,
    cost: ForwardTrace | StepTrace | None = None,
) -> Text:
    """The cost line; `cost` (a pass or a step) adds its data cost and L2 penalty apart."""
    text = Text()
    text.append("Loss  ", style="bold")
    text.append(f"{trace.loss}: {trace.loss_formula}")
    if trace.loss_params:
        text.append(
            "  (" + ", ".join(f"{k} = {num(v)}" for k, v in trace.loss_params.items()) + ")"
        )
    if trace.batch:
        text.append(f"\n      per example: {vec(losses[:20])}" + (" …" if len(losses) > 20 else ""))
        text.append(f"\n      {trace.reduction} over {len(losses)} examples: ")
    else:
        text.append(f"\n      y = {vec(trace.y[0][:20])},  a^L = {vec(output[0][:20])}:  C = ")
    text.append(num(loss), style="bold")
    if trace.weight_decay and cost is not None:
        data = cost.loss if cost.data_loss is None else cost.data_loss
        text.append(f"\n      = {num(data)} (data) + {num(cost.penalty)} (penalty (λ/2) Σ w²)")
    if trace.fused:
        text.append(f"\n      (computed from z^L through {trace.fused}, which avoids log(0))")
    return text


def _backward(trace: RunTrace, st: StepTrace, limit: int) -> list[Part]:
    def rows() -> Iterator[tuple[str, ...]]:
        for x in range(m):
            lead = _lead(trace, x)
            for lt in reversed(st.layers):
                fused = trace.fused is not None and lt is st.layers[-1]
                for j in range(lt.z.shape[1]):
                    ga = "" if fused else num(lt.grad_a[x, j])
                    if fused:
                        prime = "(from z)"
                    else:
                        prime = "Jacobian" if lt.prime is None else num(lt.prime[x, j])
                    yield (*lead, str(lt.layer), str(j + 1), ga, prime, num(lt.delta[x, j]))

    m = trace.x.shape[0]
    cols = (["x"] if trace.batch else []) + ["l", "j", "∂C/∂a^l_j", "f'(z^l_j)", "δ^l_j"]
    title = (
        "Backward pass   δ^L = ∇_a C ⊙ f'(z^L) (BP1),\n"
        "                δ^l = ((w^(l+1))ᵀ δ^(l+1)) ⊙ f'(z^l) (BP2)"
    )
    return _table(title, cols, rows(), m * sum(trace.sizes[1:]), limit)


def _biases(trace: RunTrace, st: StepTrace, limit: int) -> list[Part]:
    def rows() -> Iterator[tuple[str, ...]]:
        for lt in reversed(st.layers):
            for j in range(lt.biases.shape[0]):
                yield (
                    str(lt.layer),
                    str(j + 1),
                    num(lt.biases_before[j]),
                    num(lt.grad_biases[j]),
                    num(lt.biases[j]),
                )

    mean = " (batch " + trace.reduction + ")" if trace.batch else ""
    title = f"Biases   ∂C/∂b^l_j = δ^l_j{mean} (BP3),  {_rule_text(trace, 'b')}"
    cols = ["l", "j", "b^l_j", "∂C/∂b^l_j", "b^l_j new"]
    return _table(title, cols, rows(), sum(trace.sizes[1:]), limit)


def _weights(trace: RunTrace, st: StepTrace, limit: int) -> list[Part]:
    def rows() -> Iterator[tuple[str, ...]]:
        for lt in reversed(st.layers):
            n_out, n_in = lt.weights.shape
            for j in range(n_out):
                for k in range(n_in):
                    mid = () if trace.batch else (num(lt.a_prev[0, k]), num(lt.delta[0, j]))
                    yield (
                        str(lt.layer),
                        str(j + 1),
                        str(k + 1),
                        num(lt.weights_before[j, k]),
                        *mid,
                        num(lt.grad_weights[j, k]),
                        num(lt.weights[j, k]),
                    )

    l2 = f" + {num(trace.weight_decay)}·w^l_jk" if trace.weight_decay else ""
    title = f"Weights   ∂C/∂w^l_jk = a^(l-1)_k δ^l_j{l2} (BP4),  {_rule_text(trace, 'w')}"
    cols = (
        ["l", "j", "k", "w^l_jk"]
        + ([] if trace.batch else ["a^(l-1)_k", "δ^l_j"])
        + ["∂C/∂w^l_jk", "w^l_jk new"]
    )
    total = sum(a * b for a, b in zip(trace.sizes[:-1], trace.sizes[1:], strict=True))
    return _table(title, cols, rows(), total, limit)


def _plain(trace: RunTrace) -> bool:
    """The update is plain gradient descent (its record says so)."""
    from gradcalc.functions.optimizers import REGISTRY

    return REGISTRY[trace.optimizer].plain


def _rule_text(trace: RunTrace, sym: str) -> str:
    if _plain(trace):
        return f"{sym} → {sym} − {num(trace.learning_rate)}·∂C/∂{sym}"
    return f"{sym} → new {sym} by {trace.optimizer} (see Update)"


def _update(trace: RunTrace, st: StepTrace, limit: int) -> list[Part]:
    """Each parameter's update, one row per quantity the rule works out (so the table fits a
    terminal however many the rule has): its state before and after, m̂ and v̂, and θ itself."""
    from gradcalc.functions.optimizers import REGISTRY

    rule = REGISTRY[trace.optimizer]
    if not rule.state and not rule.derived and not rule.decays:
        return []  # plain SGD: the weight and bias tables say it all
    symbol = {name: rule.symbols[name].text for name in (*rule.state, *rule.derived)}

    def parameters(lt: LayerTrace) -> Iterator[tuple[str, str, int, float, float, float]]:
        """(kind, label, flat index, θ before, ∂C/∂θ, θ after) of each of the layer's θ."""
        wide = max(lt.weights.shape) >= 10
        n_in = lt.weights.shape[1]
        for n, (before, grad, after) in enumerate(
            zip(lt.weights_before.flat, lt.grad_weights.flat, lt.weights.flat, strict=True)
        ):
            j, k = divmod(n, n_in)
            yield (
                "weights",
                f"w_{j + 1},{k + 1}" if wide else f"w_{j + 1}{k + 1}",
                n,
                before,
                grad,
                after,
            )
        for j, (before, grad, after) in enumerate(
            zip(lt.biases_before, lt.grad_biases, lt.biases, strict=True)
        ):
            yield "biases", f"b_{j + 1}", j, before, grad, after
        for name, g in lt.grad_params.items():
            yield name, name, 0, lt.params_before[name], g, lt.params[name]

    def rows() -> Iterator[tuple[str, ...]]:
        for lt in reversed(st.layers):
            ahead = {"weights": lt.weights_ahead, "biases": lt.biases_ahead}
            for kind, label, n, before, grad, after in parameters(lt):
                lead = [str(lt.layer), label, num(grad)]
                blank = ["", "", ""]
                at = ahead.get(kind) if kind in ahead else (lt.params_ahead or {}).get(kind)
                if at is not None:
                    yield (*lead, "θ̃", "", num(np.ravel(at)[n]))
                    lead = blank
                derived = lt.optimizer_derived.get(kind, {})
                if "decayed" in derived:
                    yield (*lead, "θ − ηλθ", "", num(np.ravel(derived["decayed"])[n]))
                    lead = blank
                for name in rule.state:
                    old = np.ravel(lt.optimizer_state_before[kind][name])[n]
                    new = np.ravel(lt.optimizer_state[kind][name])[n]
                    yield (*lead, symbol[name], num(old), num(new))
                    lead = blank
                for name in rule.derived:
                    yield (*lead, symbol[name], "", num(np.ravel(derived[name])[n]))
                    lead = blank
                yield (*lead, "θ", num(before), num(after))

    equations = ";  ".join(e.text for e in rule.equations)
    title = f"Update   {rule.name}: {equations}"
    per = len(rule.state) + len(rule.derived) + 1 + (rule.lookahead is not None)
    decays = 1 if rule.decay and trace.optimizer_params.get(rule.decay) else 0
    total = sum((lt.weights.size + lt.biases.size + len(lt.grad_params)) * per for lt in st.layers)
    total += decays * sum(lt.weights.size for lt in st.layers)
    cols = ["l", "θ", "∂C/∂θ", "quantity", "before", "after"]
    return _table(title, cols, rows(), total, limit)


def _params(trace: RunTrace, st: StepTrace) -> list[Part]:
    learnable = [lt for lt in st.layers if lt.grad_params]
    if not learnable:
        return []
    table = Table()
    for column in ("l", "activation", "parameter", "old", "∂C/∂p", "new"):
        table.add_column(column, justify="right")
    for lt in reversed(learnable):
        for name, grad in lt.grad_params.items():
            table.add_row(
                str(lt.layer),
                lt.activation,
                name,
                num(lt.params_before[name]),
                num(grad),
                num(lt.params[name]),
            )
    title = "p → p − η·∂C/∂p" if _plain(trace) else _rule_text(trace, "p")
    return [Text(f"\nActivation parameters   {title}", style="bold"), _Fitted(table)]


def _summary(trace: RunTrace, exact: RunTrace | None = None) -> list[Part]:
    after = f"after step {trace.n_steps}" if trace.n_steps else "(no steps run)"
    table = Table()
    table.add_column("")
    table.add_column("before training", justify="right")
    table.add_column(after, justify="right")
    if exact is not None:
        table.add_column("exact", justify="right")
        table.add_column("drift", justify="right")
    table.add_column("target y", justify="right")

    def drift(rounded: np.ndarray, exact_value: np.ndarray) -> list[str]:
        if exact is None:
            return []
        return [vec(np.ravel(exact_value)), num_drift(float(np.max(np.abs(rounded - exact_value))))]

    n = trace.x.shape[0]
    shown = min(n, 10)
    for x in range(shown):
        label = f"output a^L (example {x + 1})" if trace.batch else "output a^L"
        final = trace.final.output[x]
        extra = drift(final, exact.final.output[x]) if exact is not None else []
        table.add_row(label, vec(trace.initial.output[x]), vec(final), *extra, vec(trace.y[x]))
    if shown < n:
        table.add_row(f"… {n - shown} more examples", *[""] * (len(table.headers) - 1))
    extra = []
    if exact is not None:
        extra = [num(exact.final.loss), num_drift(abs(trace.final.loss - exact.final.loss))]
    table.add_row(
        f"loss C ({trace.loss})", num(trace.initial.loss), num(trace.final.loss), *extra, ""
    )
    return [Text("\nSummary", style="bold"), _Fitted(table)]


def _header(trace: RunTrace) -> Text:
    sizes = "-".join(str(s) for s in trace.sizes)
    acts = ", ".join(p.activation for p in trace.initial_parameters)
    text = Text()
    text.append(f"{trace.source}", style="bold")
    text.append(f": a {sizes} network")
    if acts:
        text.append(f" ({acts})")
    examples = trace.x.shape[0]
    text.append(f", {examples} example{'s' if examples != 1 else ''}")
    text.append(
        f", loss {trace.loss}, η = {num(trace.learning_rate)}, "
        f"{trace.n_steps} step{'s' if trace.n_steps != 1 else ''}"
    )
    if not _plain(trace):
        hyper = ", ".join(f"{k} = {num(v)}" for k, v in trace.optimizer_params.items())
        text.append(f", optimizer {trace.optimizer}" + (f" ({hyper})" if hyper else ""))
    if trace.weight_decay:
        text.append(f", L2 weight decay λ = {num(trace.weight_decay)}")
    if trace.round_to is not None:
        text.append(f", every quantity rounded to {trace.round_to} decimals")
    return text


def step_parts(trace: RunTrace, st: StepTrace, max_rows: int = 40) -> list[Part]:
    """One step's section; `trace` gives the run's settings (a streamed run's head will do)."""
    parts: list[Part] = [Text(f"\nStep {st.step} of {trace.n_steps}", style="bold underline")]
    zs, activations = [lt.z for lt in st.layers], [lt.a for lt in st.layers]
    if st.ahead is not None:
        parts.append(
            Text(
                "\nThe gradient is taken at the look-ahead point θ̃ = θ − η μ v: the passes "
                "below are at θ̃.\n"
                f"The step's loss is the cost at θ before the step: C = {num(st.loss)}",
            )
        )
    parts += _forward(trace, zs, activations, max_rows)
    cost = st.ahead or st
    parts.append(_loss_line(trace, cost.losses, cost.loss, activations[-1], cost))
    parts += _backward(trace, st, max_rows)
    parts += _weights(trace, st, max_rows)
    parts += _biases(trace, st, max_rows)
    parts += _params(trace, st)
    parts += _update(trace, st, max_rows)
    return parts


def loss_curve(trace: RunTrace, width: int = 80) -> Text | None:
    """The cost before every step and after the last, as a sparkline that fits `width`."""
    if trace.n_steps < 2:
        return None
    from gradcalc.doc.notation import sparkline

    first, last = float(trace.losses[0]), trace.final.loss
    words = f"  {num(first)} → {num(last)}"
    label = "loss per step: "
    bars = max(width - len(label) - len(words) - 1, 10)
    curve = sparkline(np.append(trace.losses, last), bars)
    return Text(f"{label}{curve}{words}")


# Steps already drawn: (step, its section), as a streamed run's writer keeps them.
Drawn = Sequence[tuple[int, list[Part]]]


def parts(
    trace: RunTrace,
    max_rows: int = 40,
    exact: RunTrace | None = None,
    drawn: Drawn | None = None,
    width: int = 80,
    digits: int = 6,
) -> list[Part]:
    """The header, the sections of the steps the trace kept (or those already `drawn`), a
    note for each run of steps not shown, and the summary; `width`: the loss curve's."""
    token = _DIGITS.set(digits)
    try:
        return _parts(trace, max_rows, exact, drawn, width)
    finally:
        _DIGITS.reset(token)


def _parts(
    trace: RunTrace, max_rows: int, exact: RunTrace | None, drawn: Drawn | None, width: int
) -> list[Part]:
    out: list[Part] = [_header(trace)]
    if drawn is None:
        drawn = [(st.step, step_parts(trace, st, max_rows)) for st in trace.steps]
    n = trace.n_steps
    # No note when no step was to be drawn (--show final or summary).
    notes = {i: (lo, hi) for i, lo, hi in gaps([s for s, _ in drawn], n)} if drawn else {}
    for i, (_, section) in enumerate([*drawn, (0, [])]):
        if i in notes:
            lo, hi = notes[i]
            what = f"step {lo}" if lo == hi else f"steps {lo} to {hi}"
            out.append(Text(f"\n… {what} not shown (--format json has every step)", style="dim"))
        out += section
    if not n:
        final = trace.final
        out += _forward(trace, final.z, final.a, max_rows)
        out.append(_loss_line(trace, final.losses, final.loss, final.output, final))
    out += _summary(trace, exact)
    curve = loss_curve(trace, width)
    if curve is not None:
        out.append(curve)
    return out


def renderables(
    trace: RunTrace,
    max_rows: int = 40,
    exact: RunTrace | None = None,
    drawn: Drawn | None = None,
    width: int = 80,
    digits: int = 6,
) -> list[RenderableType]:
    """The tables as rich renderables (a terminal with colour, Jupyter)."""
    return to_rich(parts(trace, max_rows, exact, drawn, width, digits))


def render(
    trace: RunTrace,
    console: Console,
    max_rows: int = 40,
    exact: RunTrace | None = None,
    drawn: Drawn | None = None,
    digits: int = 6,
) -> None:
    """`exact`: the same run without rounding, when `trace` was rounded (--round)."""
    from rich.console import Group

    console.print(Group(*renderables(trace, max_rows, exact, drawn, console.width, digits)))


def render_plain(
    trace: RunTrace,
    width: int,
    max_rows: int = 40,
    exact: RunTrace | None = None,
    drawn: Drawn | None = None,
    digits: int = 6,
) -> str | None:
    """The tables as `render` prints them without colour at `width` columns, drawn without
    rich; None where only rich can draw them."""
    return plain(parts(trace, max_rows, exact, drawn, width, digits), width)
