"""One module per course platform; EXPORTS maps each `gradcalc generate --format` name to it.

Each module has `write(course: Course, out: Path) -> list[Path]`, writing its files under `out`
and returning them, and may have `check(course: Course)`, refusing a course it cannot export
before anything is written."""

from __future__ import annotations

EXPORTS: dict[str, str] = {
    "prairielearn": "gradcalc.course.exports.prairielearn",
    "moodle-xml": "gradcalc.course.exports.moodle",
    "canvas-qti": "gradcalc.course.exports.qti",
    "gradescope": "gradcalc.course.exports.gradescope",
}
