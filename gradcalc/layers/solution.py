"""The worked solution's writer for a layered run (--explain, Markdown, LaTeX): keeps the steps
it writes out, then lays out the blocks gradcalc/layers/written.py builds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradcalc.layers.engine import LayeredRun, LayeredStepTrace, LayeredSummary


class SolutionWriter:
    def __init__(
        self, fmt: str, shown: Callable[[int], bool], max_terms: int, max_rows: int, digits: int
    ) -> None:
        self.fmt = fmt
        self.shown = shown
        self.max_terms = max_terms
        self.max_rows = max_rows
        self.digits = digits
        self.kept: list[LayeredStepTrace] = []

    def full(self, step: int) -> bool:
        return self.shown(step)

    def start(self, trace: LayeredRun) -> None:
        pass

    def step(self, st: LayeredStepTrace | LayeredSummary) -> None:
        if isinstance(st, LayeredStepTrace) and self.shown(st.step):
            self.kept.append(st)

    def finish(self, trace: LayeredRun) -> Any:
        from gradcalc.doc import write_document
        from gradcalc.layers.written import document

        blocks = document(
            trace, tuple(self.kept), self.fmt, self.max_terms, self.max_rows, self.digits
        )
        self.kept = []
        if self.fmt == "explain":
            from gradcalc.doc import text

            return lambda con: text.write(blocks, con)
        return write_document(self.fmt, blocks)
