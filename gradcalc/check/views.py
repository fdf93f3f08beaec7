"""A grading report as a terminal table, as JSON (the contract) and as Gradescope's results.json."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gradcalc.check.cells import GROUPS
from gradcalc.check.grade import MARKS, VERDICTS, Cell, Report
from gradcalc.doc.indices import plural
from gradcalc.doc.plain import Renderable, Table, Text, plain, to_rich


def num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def points(value: float) -> str:
    return f"{value:g}"


def _where(cell: Cell) -> str:
    return "the final forward pass" if cell.step is None else f"step {cell.step}"


def first_error_lines(report: Report) -> list[str]:
    """Where the first wrong cell is, and whether the later errors follow from it."""
    fe = report.first_error
    if fe is None:
        return []
    cell = fe.cell
    first = f"The first error is {cell.symbol} ({_where(cell)})"
    first += f", {cell.mistakes_text}." if cell.mistake else "."
    after = report.cells[report.cells.index(cell) + 1 :]
    carried = any(c.verdict == "carried" for c in after)
    if fe.later_wrong == 0:
        if carried:
            return [first, "Every later ↳ follows from it; no other cell is wrong."]
        return [first, "No other cell is wrong."]
    if fe.follows:
        return [first, "Every later ✗ follows from it: each is right given the answers before it."]
    if fe.later_wrong == 1:
        return [first, "1 later ✗ is an error of its own."]
    return [first, f"{fe.later_wrong} later ✗ are errors of their own."]


def first_error_text(report: Report) -> str | None:
    return " ".join(first_error_lines(report)) or None


def precision_text(report: Report) -> str:
    """How the answers' rounding is read, for the header ('' with --decimals or --sig-figs,
    which the header names itself)."""
    if report.options.rounding:
        return ""
    n = report.written_places
    if n is None:
        return "\neach answer judged to the decimals it is written with"
    example = "0." + "552309753186"[:n] if n > 0 else "12"
    return (
        f"\neach answer judged to the decimals it is written with, at least {n} "
        f"({example} means ± {0.5 * 10.0**-n:.{n + 1}f})"
    )


def _tally(cells: Iterable[Cell]) -> dict[str, float]:
    cells = list(cells)
    out: dict[str, float] = {v: sum(c.verdict == v for c in cells) for v in VERDICTS}
    out["score"] = sum(c.score for c in cells)
    out["max_score"] = sum(c.points for c in cells)
    return out


def _note(cell: Cell) -> str:
    if cell.verdict == "carried" and cell.carried is not None:
        return f"from your answers: {num(cell.carried)}"
    if cell.verdict == "wrong":
        return cell.mistakes_text or ""
    if cell.verdict == "missing":
        return "not answered"
    return ""


# ---- table -----------------------------------------------------------------------------------


def _explanation(mistake: str) -> str:
    """A named mistake's one-line definition: the dense registry's, or a layer type's own."""
    from gradcalc.check.mistakes import REGISTRY

    if mistake in REGISTRY:
        return REGISTRY[mistake].explanation
    from gradcalc.layers import REGISTRY as LAYERS

    return next(
        (m.description for t in LAYERS.values() for m in t.mistakes if m.name == mistake), ""
    )


def render_table(report: Report, console: Any) -> None:
    from rich.console import Group

    console.print(Group(*to_rich(table_parts(report))))


def render_plain(report: Report, width: int) -> str | None:
    """The tables as `render_table` prints them without colour, drawn without rich; None where
    only rich can draw them at this width (see gradcalc.doc.plain)."""
    return plain(table_parts(report), width)


def table_parts(report: Report) -> list[Renderable]:
    o = report.options
    parts: list[Renderable] = []
    header = Text()
    header.append(report.answers, style="bold")
    answered = sum(c.answer is not None for c in report.cells)
    header.append(f"\ngraded against {report.config}: {plural(answered, 'answered cell')}")
    header.append(f"\ncorrect within rtol {o.rtol:g}, atol {o.atol:g}")
    header.append(precision_text(report))
    if o.decimals is not None:
        header.append(f"; worked to {o.decimals} decimals")
    if o.sig_figs is not None:
        header.append(f"; worked to {o.sig_figs} significant figures")
    if not o.carry:
        header.append("; no carried error")
    parts.append(header)

    steps: dict[int | None, list[Cell]] = {}
    for cell in report.cells:
        steps.setdefault(cell.step, []).append(cell)
    for step, cells in steps.items():
        title = "Final forward pass" if step is None else f"Step {step}"
        table = Table(markup=True)
        table.add_column("quantity", no_wrap=True, min_width=8)
        table.add_column("answer", justify="right", no_wrap=True, min_width=8)
        table.add_column("expected", justify="right", no_wrap=True, min_width=8)
        table.add_column("", justify="center", no_wrap=True, min_width=1)
        table.add_column("note", overflow="fold")
        for cell in cells:
            style = {"wrong": "red", "carried": "yellow", "rounding": "cyan"}.get(cell.verdict)
            table.add_row(
                cell.symbol,
                num(cell.answer),
                num(cell.expected),
                Text(MARKS[cell.verdict], style=style or ""),
                _note(cell),
            )
        parts += [Text("\n" + title, style="bold"), table]

    if report.cells:
        score = Table(markup=True)
        score.add_column("group", no_wrap=True)
        for mark in ("✓", "≈", "↳", "✗"):
            score.add_column(mark, justify="right")
        if o.require_all:
            score.add_column("missing", justify="right")
        score.add_column("score", justify="right")
        for group, cells in report.groups():
            t = _tally(cells)
            row = [GROUPS[group]] + [
                str(int(t[v])) for v in ("correct", "rounding", "carried", "wrong")
            ]
            if o.require_all:
                row.append(str(int(t["missing"])))
            score.add_row(*row, f"{points(t['score'])}/{points(t['max_score'])}")
        t = _tally(report.cells)
        row = ["total"] + [str(int(t[v])) for v in ("correct", "rounding", "carried", "wrong")]
        if o.require_all:
            row.append(str(int(t["missing"])))
        score.add_row(*row, f"{points(t['score'])}/{points(t['max_score'])}", style="bold")
        parts += [Text("\nScore", style="bold"), score]
    else:
        parts.append(Text("\nNo answered cells: nothing to grade."))

    pointer = first_error_lines(report)
    if pointer:
        parts.append(Text("\n" + "\n".join(pointer)))
    if report.hint:
        parts.append(Text("\n" + report.hint))
    named: dict[str, str] = {}
    for cell in report.cells:
        for mistake in cell.matches or ((cell.mistake,) if cell.mistake else ()):
            if mistake not in named:
                named[mistake] = _explanation(mistake)
    if named:
        legend = Table(markup=True)
        legend.add_column("known mistake", no_wrap=True)
        legend.add_column("what it is")
        for name, explanation in named.items():
            # The cells are read as markup: a layer's "δ[i, j]" is escaped to print as it is.
            legend.add_row(name, explanation.replace("[", r"\["))
        parts += [Text(""), legend]
    return parts


# ---- JSON ------------------------------------------------------------------------------------


def _cell(cell: Cell) -> dict[str, Any]:
    return {
        "step": cell.step,
        "quantity": cell.quantity,
        "layer": cell.layer,
        "index": list(cell.index),
        "symbol": cell.symbol,
        "answer": cell.answer,
        "expected": cell.expected,
        "verdict": cell.verdict,
        "mistake": cell.mistake,
        "mistakes": list(cell.matches) if cell.matches else [],
        "explanation": cell.explanation,
        "carried_from_answers": cell.carried,
        "points": cell.points,
    }


def document(report: Report) -> dict[str, Any]:
    o = report.options
    fe = report.first_error
    return {
        "config": report.config,
        "answers": report.answers,
        "score": report.score,
        "max_score": report.max_score,
        "passed": report.passed,
        "options": {
            "rtol": o.rtol,
            "atol": o.atol,
            "decimals": o.decimals,
            "sig_figs": o.sig_figs,
            "written_places": report.written_places,
            "carry": o.carry,
            "require_all": o.require_all,
        },
        "groups": [
            {"group": group, "name": GROUPS[group], **_tally(cells)}
            for group, cells in report.groups()
        ],
        "cells": [_cell(c) for c in report.cells],
        "first_error": None
        if fe is None
        else {
            **{
                k: v
                for k, v in _cell(fe.cell).items()
                if k in ("step", "quantity", "layer", "index", "symbol", "mistake")
            },
            "later_wrong": fe.later_wrong,
            "follows": fe.follows,
            "text": first_error_text(report),
        },
        "hint": report.hint.replace("\n", " ") if report.hint else None,
    }


def render_json(report: Report) -> str:
    import json

    from gradcalc.contract import versioned

    return json.dumps(versioned(document(report)), ensure_ascii=False, allow_nan=False) + "\n"


# ---- Gradescope ------------------------------------------------------------------------------


def gradescope(report: Report) -> dict[str, Any]:
    """Gradescope's autograder results.json: one test per quantity group of each step."""
    tests = []
    blocks: dict[tuple[int | None, str], list[Cell]] = {}
    for cell in report.cells:
        blocks.setdefault((cell.step, cell.group), []).append(cell)
    for (step, group), cells in blocks.items():
        t = _tally(cells)
        lines = []
        for c in cells:
            line = f"{MARKS[c.verdict]} {c.symbol}: "
            line += "not answered" if c.answer is None else f"answer {num(c.answer)}"
            line += f", expected {num(c.expected)}"
            note = _note(c)
            if c.verdict != "missing" and note:
                line += f" — {note}"
            for m in c.matches or ((c.mistake,) if c.mistake else ()):
                line += f" ({_explanation(m)})"
            lines.append(line)
        where = "Final forward pass" if step is None else f"Step {step}"
        tests.append(
            {
                "name": f"{where}: {GROUPS[group]}",
                "score": t["score"],
                "max_score": t["max_score"],
                "status": "passed" if t["score"] == t["max_score"] else "failed",
                "output": "\n".join(lines),
            }
        )
    return {
        "score": report.score,
        "max_score": report.max_score,
        "output": first_error_text(report) or "Every answered cell is right.",
        "tests": tests,
    }


def render_gradescope(report: Report) -> str:
    import json

    return json.dumps(gradescope(report), ensure_ascii=False, indent=2, allow_nan=False) + "\n"
