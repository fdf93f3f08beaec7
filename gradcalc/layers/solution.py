"""The worked solution of a layered run: every output cell as its substituted sum, every kernel
gradient as its sum over positions (--explain, Markdown, LaTeX)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradcalc.layers.engine import LayeredRun, LayeredStepTrace, LayeredSummary


class SolutionWriter:
    def __init__(
        self, fmt: str, shown: Callable[[int], bool], max_terms: int, max_rows: int, digits: int
    ) -> None:
        self.fmt, self.shown, self.max_terms, self.max_rows, self.digits = (
            fmt,
            shown,
            max_terms,
            max_rows,
            digits,
        )
        self.kept: list[LayeredStepTrace] = []

    def full(self, step: int) -> bool:
        return self.shown(step)

    def start(self, trace: LayeredRun) -> None:
        pass

    def step(self, st: LayeredStepTrace | LayeredSummary) -> None:
        if isinstance(st, LayeredStepTrace) and self.shown(st.step):
            self.kept.append(st)

    def finish(self, trace: LayeredRun) -> Any:
        from gradcalc.layers.written import document

        text = document(
            trace, tuple(self.kept), self.fmt, self.max_terms, self.max_rows, self.digits
        )
        return lambda con: (
            con.file.write(text)
            if self.fmt != "explain"
            else con.print(text, markup=False, highlight=False)
        )
