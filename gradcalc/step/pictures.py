"""The pictures `gradcalc step` draws beside its output (--diagram, --plot): a writer that
passes each step to the output's writer and keeps what the pictures need of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
        self.norms = writer.norms or asked.plot is not None
        self.kept: StepTrace | None = None
        self.recorder: Any = None
        self.head: RunTrace | None = None

    def full(self, step: int) -> bool:
        return bool(self.writer.full(step)) or (
            self.asked.diagram is not None and step == self.asked.step
        )

    def start(self, trace: RunTrace) -> None:
        self.head = trace
        if self.asked.plot is not None:
            from gradcalc.step.plot import Recorder

            self.recorder = Recorder(len(trace.sizes) - 1)
        self.writer.start(trace)

    def step(self, st: StepTrace | StepSummary) -> None:
        if isinstance(st, StepTrace) and st.step == self.asked.step:
            self.kept = st
        if self.recorder is not None:
            self.recorder.add(st)
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
