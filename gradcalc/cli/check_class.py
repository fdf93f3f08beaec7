"""gradcalc check --class: the command-line side of grading a whole class (the grading itself is
gradcalc/course/classgrade.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from gradcalc.cli.options import check_output, emit, reindent
from gradcalc.errors import GradcalcError


def run(
    course: str | None,
    paths: Sequence[str],
    fmt: str,
    output: str | None,
    summary: str | None,
    indent: int | None,
    force: bool,
    points_file: str | None,
    grading: dict[str, Any],
) -> None:
    """Grade every sheet, write the gradebook (CSV, or JSON with --format json) and the per-cell
    summary; exit 2 when a sheet could not be graded."""
    from gradcalc.check.answers import load_points
    from gradcalc.check.grade import Options
    from gradcalc.course import classgrade

    options = Options(**grading, points=load_points(points_file) if points_file else {})

    if course is None:
        raise click.UsageError("--class grades against a course folder: give it as CONFIG")
    if fmt == "gradescope":
        raise click.UsageError("--class writes a gradebook: --format table (CSV) or json")
    for target in (output, summary):
        if target is not None and target != "-":
            check_output(target, force, reads=[("an answer sheet", p) for p in paths])
    report = classgrade.grade_class(course, paths, options)
    if fmt == "json":
        emit(reindent(classgrade.render_json(report), indent), output, "never", force)
    else:
        emit(classgrade.gradebook_csv(report), output, "never", force)
    if summary is not None:
        emit(classgrade.summary_csv(report), summary, "never", force)
    if output is not None:
        click.echo(classgrade.summary_text(report), nl=False)
    failed = report.failed
    if failed:
        first = failed[0].error or failed[0].file
        raise GradcalcError(
            f"{len(failed)} of {len(report.sheets)} sheets could not be graded (the gradebook "
            f"says which); the first: {first}"
        )
