"""`check --format html`: the graded sheet as a page, each cell with its verdict and mistake,
in the block model every document is written in (gradcalc.doc.html lays it out)."""

from __future__ import annotations

from gradcalc.check.cells import GROUPS
from gradcalc.check.grade import MARKS, Report
from gradcalc.check.views import (
    _explanation,
    _note,
    _tally,
    first_error_lines,
    num,
    points,
    precision_text,
)
from gradcalc.doc.blocks import Block, Heading, Para, Table
from gradcalc.doc.notation import markdown_code, markdown_text, plural

_WORDS = {
    "correct": "correct",
    "rounding": "correct to rounding",
    "carried": "follows from your answers",
    "wrong": "wrong",
    "missing": "not answered",
}


def blocks(report: Report) -> list[Block]:
    o = report.options
    answered = sum(c.answer is not None for c in report.cells)
    out: list[Block] = [
        Heading(1, "Grading: " + markdown_code(report.answers)),
        Para(
            f"Graded against {markdown_code(report.config)}: {plural(answered, 'answered cell')}, "
            f"correct within rtol {o.rtol:g}, atol {o.atol:g}"
            + markdown_text(precision_text(report).replace("\n", "; "))
            + (f"; worked to {o.decimals} decimals" if o.decimals is not None else "")
            + (f"; worked to {o.sig_figs} significant figures" if o.sig_figs is not None else "")
            + ("; no carried error" if not o.carry else "")
            + "."
        ),
    ]
    if report.cells:
        t = _tally(report.cells)
        out.append(Para(f"**Score: {points(t['score'])} of {points(t['max_score'])}.**"))
    pointer = first_error_lines(report)
    if pointer:
        out.append(Para(markdown_text(" ".join(pointer))))
    if report.hint:
        out.append(Para(markdown_text(report.hint)))
    steps: dict[int | None, list] = {}
    for cell in report.cells:
        steps.setdefault(cell.step, []).append(cell)
    for step, cells in steps.items():
        out.append(Heading(2, "Final forward pass" if step is None else f"Step {step}"))
        rows = tuple(
            (
                markdown_text(c.symbol),
                num(c.answer),
                num(c.expected),
                f"{MARKS[c.verdict]} {_WORDS[c.verdict]}",
                markdown_text(_note(c)),
            )
            for c in cells
        )
        out.append(Table(("quantity", "answer", "expected", "verdict", "mistake or note"), rows))
    if report.cells:
        rows_score = []
        for group, cells in report.groups():
            t = _tally(cells)
            rows_score.append(
                (
                    GROUPS[group],
                    *(str(int(t[v])) for v in ("correct", "rounding", "carried", "wrong")),
                    f"{points(t['score'])}/{points(t['max_score'])}",
                )
            )
        out += [
            Heading(2, "Score"),
            Table(("group", "✓", "≈", "↳", "✗", "score"), tuple(rows_score)),
        ]
    named: list[str] = []
    for cell in report.cells:
        for mistake in cell.matches or ((cell.mistake,) if cell.mistake else ()):
            if mistake not in named:
                named.append(mistake)
    if named:
        out += [
            Heading(2, "The mistakes named"),
            Table(
                ("known mistake", "what it is"),
                tuple((markdown_code(n), markdown_text(_explanation(n))) for n in named),
            ),
        ]
    return out


def render_html(report: Report) -> str:
    from gradcalc.doc import html

    return html.write(blocks(report))
