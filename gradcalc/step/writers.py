"""What each output format keeps of a streamed run: a writer takes the run's head, then each
step as it is produced, then the finished trace, and hands back what is left to draw.

Only the JSON writers (json.py) write while the run goes on; the table keeps the drawn steps'
sections (a few formatted rows each, no arrays) and the worked solutions the steps they write
out, so memory follows what is shown, not how many steps ran.

Each writer also tells the engine what it needs: `full(step)`, whether that step must come as
a StepTrace, and `norms`, whether the other steps' StepSummary needs its norms; the engine runs
the steps nobody needs in full without their records (engine.Network.lean_step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gradcalc.doc.plain import Drawing
from gradcalc.step.trace import RunTrace, StepSummary, StepTrace

if TYPE_CHECKING:
    from gradcalc.step.table import Part

# Finished text, or a drawing on a rich console (a Drawing can also be drawn without rich).
View = str | Callable[[Any], None]


class TableWriter:
    def __init__(self, shown: Callable[[int], bool], max_rows: int, digits: int = 6) -> None:
        self.shown = shown
        self.max_rows = max_rows
        self.digits = digits
        self.drawn: list[tuple[int, list[Part]]] = []
        self.head: RunTrace | None = None
        self.norms = False  # the steps not drawn need only their cost

    def full(self, step: int) -> bool:
        return self.shown(step)

    def start(self, trace: RunTrace) -> None:
        self.head = trace

    def step(self, st: StepTrace | StepSummary) -> None:
        if isinstance(st, StepTrace) and self.shown(st.step):
            from gradcalc.step.table import _DIGITS, step_parts

            assert self.head is not None
            token = _DIGITS.set(self.digits)
            try:
                section = step_parts(self.head, st, self.max_rows)
            finally:
                _DIGITS.reset(token)
            self.drawn.append((st.step, section))

    def finish(self, trace: RunTrace) -> View:
        from gradcalc.step import table

        drawn, digits, rows = self.drawn, self.digits, self.max_rows
        return Drawing(
            lambda con: table.render(trace, con, rows, trace.exact, drawn, digits),
            lambda width: table.render_plain(trace, width, rows, trace.exact, drawn, digits),
        )


class SummaryLines:
    """--show summary as a table: one line per step, written as the step is produced."""

    def __init__(self, write: Callable[[str], None], digits: int = 6) -> None:
        self.write = write
        self.digits = digits
        self.widths: list[int] = []
        self.norms = True

    def full(self, step: int) -> bool:
        return False

    def start(self, trace: RunTrace) -> None:
        from gradcalc.step.table import _header

        columns = ["step", "C"]
        for l in range(2, len(trace.sizes) + 1):
            columns += [f"‖∂C/∂w^{l}‖", f"‖Δw^{l}‖"]
        self.widths = [max(len(c), 8 if i == 0 else 12) for i, c in enumerate(columns)]
        self.write(_header(trace).plain + "\n\n" + self._line(columns))

    def _line(self, cells: list[str]) -> str:
        return "  ".join(c.rjust(w) for c, w in zip(cells, self.widths, strict=True)) + "\n"

    def step(self, st: StepTrace | StepSummary) -> None:
        from gradcalc.doc.numbers import Style
        from gradcalc.step.engine import summarize

        num = Style(self.digits)
        norms = summarize(st).norms
        assert norms is not None
        cells = [str(st.step), num(st.loss)]
        # The norms as --format jsonl's summary records have them (step.json.summary_record).
        for g_w, _, d_w, _ in norms.tolist():
            cells += [num(g_w), num(d_w)]
        self.write(self._line(cells))

    def finish(self, trace: RunTrace) -> View:
        from gradcalc.step import table

        def parts(width: int) -> list[Part]:
            token = table._DIGITS.set(self.digits)
            try:
                out = table._summary(trace, trace.exact)
                curve = table.loss_curve(trace, width)
                return out if curve is None else [*out, curve]
            finally:
                table._DIGITS.reset(token)

        def draw(con: Any) -> None:
            from rich.console import Group

            con.print(Group(*table.to_rich(parts(con.width))))

        return Drawing(draw, lambda width: table.plain(parts(width), width))


class SolutionWriter:
    """The worked solution (--explain, Markdown, LaTeX): keeps the steps it writes out."""

    def __init__(
        self,
        shown: Callable[[int], bool],
        fmt: str,
        max_terms: int,
        max_rows: int,
        digits: int = 3,
    ) -> None:
        """`fmt`: "explain" (terminal text) or a document format of gradcalc.doc.DOCUMENTS."""
        self.shown = shown
        self.fmt = fmt
        self.digits = digits
        self.max_terms = max_terms
        self.max_rows = max_rows
        self.kept: list[StepTrace] = []
        self.norms = False

    def full(self, step: int) -> bool:
        return self.shown(step)

    def start(self, trace: RunTrace) -> None:
        pass

    def step(self, st: StepTrace | StepSummary) -> None:
        if isinstance(st, StepTrace) and self.shown(st.step):
            self.kept.append(st)

    def finish(self, trace: RunTrace) -> View:
        import dataclasses

        from gradcalc.doc import DOCUMENTS, write_document
        from gradcalc.doc.notation import Notation
        from gradcalc.step.solution import build

        kind = "text" if self.fmt == "explain" else DOCUMENTS[self.fmt][1]
        trace = dataclasses.replace(trace, steps=tuple(self.kept))
        self.kept = []
        blocks = build(
            trace,
            Notation(kind, trace.round_to, self.digits),
            exact=trace.exact,
            max_terms=self.max_terms,
            max_rows=self.max_rows,
            document=kind != "text",
        )
        if kind == "text":
            from gradcalc.doc import text

            return lambda con: text.write(blocks, con)
        return write_document(self.fmt, blocks)


def solution(
    trace: RunTrace,
    fmt: str,
    *,
    digits: int = 3,
    max_terms: int = 6,
    max_rows: int = 40,
    width: int = 100,
) -> str:
    """A whole run's worked solution as the command writes it by default: the first three
    steps and the last; `fmt` is "explain" (plain text `width` columns wide) or a format of
    gradcalc.doc.DOCUMENTS."""
    from gradcalc.doc.display import capture
    from gradcalc.step.select import Selection

    shown = Selection().mask(trace.n_steps, 3)
    writer = SolutionWriter(lambda step: bool(shown[step]), fmt, max_terms, max_rows, digits)
    for st in trace.steps:
        writer.step(st)
    view = writer.finish(trace)
    return view if isinstance(view, str) else capture(view, width)
