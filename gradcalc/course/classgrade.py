"""Grading a whole class in one process: every answer sheet against its own variant of a course
folder (`gradcalc generate -o DIR`), into a gradebook and a per-cell summary of the class.

A sheet's variant is its `id:` key when it has one (the key is taken out before the sheet is
read), else its file name without the extension (alice.yaml → alice).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gradcalc.errors import GradcalcError

if TYPE_CHECKING:
    from gradcalc.check.grade import Options, Report
    from gradcalc.layers.config import LayeredSpec
    from gradcalc.step.config import NetworkSpec

SUFFIXES = (".yaml", ".yml", ".json")

# The status of a gradebook row.
GRADED, UNREADABLE, UNKNOWN, DUPLICATE, NO_SHEET = (
    "graded",
    "unreadable",
    "unknown id",
    "duplicate",
    "no sheet",
)


@dataclass(frozen=True)
class Sheet:
    file: str
    id: str | None
    status: str
    report: Report | None = None
    error: str | None = None  # the one-line reason a sheet was not graded
    columns: dict[str, str] = field(default_factory=dict)  # the roster's, from the manifest


@dataclass(frozen=True)
class ClassReport:
    course: str
    sheets: tuple[Sheet, ...]
    columns: tuple[str, ...]

    @property
    def failed(self) -> list[Sheet]:
        """The sheets that could not be graded (unreadable, an unknown or repeated id)."""
        return [s for s in self.sheets if s.status in (UNREADABLE, UNKNOWN, DUPLICATE)]


def sheet_files(paths: Iterable[str]) -> list[Path]:
    """The answer files named: a folder stands for its *.yaml, *.yml and *.json files."""
    out: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
        elif path.is_file():
            out.append(path)
        else:
            raise GradcalcError(f"--class {name}: no such file or folder")
    return out


def grade_class(course_dir: str, paths: Sequence[str], options: Options) -> ClassReport:
    from gradcalc.course.files import read_manifest

    folder = Path(course_dir)
    manifest = read_manifest(folder)
    variants = {str(v["id"]): v for v in manifest["variants"]}
    columns = tuple(manifest.get("columns", ()))
    decimals = manifest.get("decimals")
    if options.decimals is None and options.sig_figs is None and isinstance(decimals, int):
        from dataclasses import replace

        options = replace(options, decimals=decimals)  # the places the sheets asked for
    specs: dict[str, NetworkSpec | LayeredSpec] = {}
    graded: dict[str, Sheet] = {}
    extra: list[Sheet] = []
    for path in sheet_files(paths):
        sheet = _grade_one(path, folder, variants, specs, options)
        if sheet.id is not None and sheet.id in graded and sheet.status != UNKNOWN:
            first = graded[sheet.id].file
            extra.append(
                Sheet(
                    sheet.file, sheet.id, DUPLICATE, error=f"id {sheet.id} again ({first} has it)"
                )
            )
        elif sheet.id is None or sheet.id not in variants:  # no variant to put it beside
            extra.append(sheet)
        else:
            graded[sheet.id] = sheet
    rows: list[Sheet] = []
    for vid, variant in variants.items():
        cols = {k: str(v) for k, v in (variant.get("columns") or {}).items()}
        found = graded.get(vid)
        if found is None:
            rows.append(Sheet("", vid, NO_SHEET, columns=cols))
        else:
            rows.append(Sheet(found.file, vid, found.status, found.report, found.error, cols))
    return ClassReport(str(folder), tuple(rows + extra), columns)


def _grade_one(
    path: Path,
    folder: Path,
    variants: dict[str, Any],
    specs: dict[str, NetworkSpec | LayeredSpec],
    options: Options,
) -> Sheet:
    import numpy as np

    from gradcalc.check.answers import EMPTY_HINT, Run, parse, read_sheet
    from gradcalc.check.cells import Shape
    from gradcalc.check.grade import grade
    from gradcalc.errors import ConfigError, NumericError
    from gradcalc.step import config as config_mod
    from gradcalc.yamldoc import read_text

    name = str(path)
    sid: str | None = path.stem  # until the sheet's own id: key says otherwise
    try:
        source, text = read_text(name)
        doc = parse(text, source, EMPTY_HINT)  # as check reads one sheet (.json: strict JSON)
        if isinstance(doc.data, dict) and "id" in doc.data:
            raw = doc.data.pop("id")
            if not isinstance(raw, str | int) or isinstance(raw, bool):
                raise doc.error(("id",), "expected the student's id")
            sid = str(raw)
            if sid not in variants and isinstance(raw, int):  # id: 5 for the variant 05
                sid = next((v for v in variants if v.isdigit() and int(v) == raw), sid)
        if sid not in variants:
            return Sheet(name, sid, UNKNOWN, error=f"{source}: no variant has the id '{sid}'")
        if sid not in specs:  # a dense network, or one of layer records (conv, pooling…)
            specs[sid] = config_mod.load(str(folder / str(variants[sid]["folder"]) / "config.yaml"))
        spec = specs[sid]
        steps = spec.steps
        answers = read_sheet(doc, Shape.of(spec), steps, Run.of(spec, steps))
        if options.decimals is None and options.sig_figs is None and answers.round_to is not None:
            from dataclasses import replace

            options = replace(options, decimals=answers.round_to)
        # As check: the run goes as far as the last step graded.
        last = steps if options.require_all or answers.final else max(answers.steps, default=0)
        with np.errstate(all="ignore"):  # answers far off overflow what is worked from them
            report = grade(spec, answers, last, options)
        return Sheet(name, sid, GRADED, report)
    except ConfigError as exc:
        return Sheet(name, sid, UNREADABLE, error=str(exc))
    except NumericError as exc:
        return Sheet(name, sid, UNREADABLE, error=f"{name}: {exc}; no answer can be graded")


# ---- the gradebook and the class summary ------------------------------------------------------


def _cell_name(cell: Any) -> str:
    if cell.step is None:
        return f"{cell.symbol} (after the update)"
    return cell.symbol if cell.step == 1 else f"{cell.symbol} (step {cell.step})"


def first_error(report: Report) -> str:
    fe = report.first_error
    if fe is None:
        return ""
    mistake = fe.cell.mistakes_text
    return _cell_name(fe.cell) + (f": {mistake}" if mistake else "")


def mistakes(report: Report) -> str:
    return "; ".join(
        f"{_cell_name(c)}: {c.mistakes_text}"
        for c in report.cells
        if c.verdict == "wrong" and c.mistakes_text
    )


GRADEBOOK_COLUMNS = ("id", "score", "max", "first_error", "mistakes", "wrong", "status", "file")


def gradebook_rows(report: ClassReport) -> list[dict[str, Any]]:
    rows = []
    for s in report.sheets:
        r = s.report
        row: dict[str, Any] = {
            "id": s.id or "",
            **{c: s.columns.get(c, "") for c in report.columns},
            "score": _num(r.score) if r else "",
            "max": _num(r.max_score) if r else "",
            "first_error": first_error(r) if r else "",
            "mistakes": mistakes(r) if r else "",
            "wrong": sum(c.verdict == "wrong" for c in r.cells) if r else "",
            "status": s.status,
            "file": s.file,
            "error": s.error or "",
        }
        rows.append(row)
    return rows


def _num(value: float) -> str:
    return f"{value:g}"


def gradebook_csv(report: ClassReport) -> str:
    fields = ["id", *report.columns, *GRADEBOOK_COLUMNS[1:], "error"]
    return _csv(fields, gradebook_rows(report))


def _csv(fields: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


SUMMARY_COLUMNS = ("cell", "quantity", "answered", "right", "wrong", "missing", "mistakes")


def cell_summary(report: ClassReport) -> list[dict[str, Any]]:
    """One row per cell of the sheets, in the order of a hand solution: how many sheets got it
    right (✓ ≈ ↳), wrong or left it missing, and the mistakes named on it with their counts."""
    table: dict[str, dict[str, Any]] = {}
    for s in report.sheets:
        if s.report is None:
            continue
        for c in s.report.cells:
            row = table.setdefault(
                _cell_name(c),
                {
                    "cell": _cell_name(c),
                    "quantity": c.group,
                    "answered": 0,
                    "right": 0,
                    "wrong": 0,
                    "missing": 0,
                    "mistakes": Counter(),
                },
            )
            if c.verdict == "missing":
                row["missing"] += 1
                continue
            row["answered"] += 1
            if c.verdict == "wrong":
                row["wrong"] += 1
                row["mistakes"][c.mistakes_text or "unnamed"] += 1
            else:
                row["right"] += 1
    return list(table.values())


def mistake_counts(report: ClassReport) -> Counter[str]:
    """How many sheets each named mistake appears on (once per sheet)."""
    counts: Counter[str] = Counter()
    for s in report.sheets:
        if s.report is not None:
            counts.update({c.mistake for c in s.report.cells if c.verdict == "wrong" and c.mistake})
    return counts


def summary_csv(report: ClassReport) -> str:
    rows = []
    for row in cell_summary(report):
        named = "; ".join(f"{m} ×{n}" for m, n in row["mistakes"].most_common())
        rows.append({**row, "mistakes": named})
    return _csv(SUMMARY_COLUMNS, rows)


def summary_text(report: ClassReport) -> str:
    graded = [s for s in report.sheets if s.report is not None]
    parts = [f"{report.course}: {len(graded)} sheet{'s' if len(graded) != 1 else ''} graded"]
    absent = sum(s.status == NO_SHEET for s in report.sheets)
    if absent:
        parts.append(f"{absent} student{'s' if absent != 1 else ''} without a sheet")
    if report.failed:
        parts.append(f"{len(report.failed)} not graded (see the status column)")
    text = ", ".join(parts) + "."
    cells = [r for r in cell_summary(report) if r["wrong"]]
    if cells:
        worst = max(cells, key=lambda r: r["wrong"])
        text += f"\nMost often wrong: {worst['cell']} ({worst['wrong']} of {worst['answered']})."
    counts = mistake_counts(report)
    if counts:
        text += (
            "\nMost common mistakes: "
            + ", ".join(f"{m} ({n} sheet{'s' if n != 1 else ''})" for m, n in counts.most_common(3))
            + "."
        )
    return text + "\n"


def document(report: ClassReport) -> dict[str, Any]:
    from gradcalc.contract import versioned

    cells = [
        {**row, "mistakes": dict(row["mistakes"].most_common())} for row in cell_summary(report)
    ]
    # As the CSV's rows, but with numbers as numbers (null where a sheet was not graded) and
    # no reason (null) where one was (schemas/gradebook.schema.json).
    sheets = []
    for s, row in zip(report.sheets, gradebook_rows(report), strict=True):
        r = s.report
        row["id"] = s.id
        row["score"] = r.score if r else None
        row["max"] = r.max_score if r else None
        row["wrong"] = row["wrong"] if r else None
        row["error"] = s.error
        sheets.append(row)
    return versioned(
        {
            "course": report.course,
            "sheets": sheets,
            "cells": cells,
            "mistakes": dict(mistake_counts(report).most_common()),
        }
    )


def render_json(report: ClassReport) -> str:
    return json.dumps(document(report), ensure_ascii=False)
