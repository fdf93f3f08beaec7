"""Moodle: a question bank in Moodle XML, one Embedded Answers (Cloze) question per variant,
each cell a NUMERICAL sub-question with its tolerance (gradcalc/course/answers.py).

Reference: Moodle XML format, https://docs.moodle.org/en/Moodle_XML_format, and the Embedded
Answers (Cloze) question type, https://docs.moodle.org/en/Embedded_Answers_(Cloze)_question_type
(`{1:NUMERICAL:=value:tolerance}`).
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.sax.saxutils import escape

from gradcalc.course.answers import answer_cells
from gradcalc.course.exports.prairielearn import problem_html
from gradcalc.course.variants import Course, Problem


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _question(course: Course, problem: Problem) -> str:
    cells = answer_cells(problem, course.decimals)
    rows = "".join(
        f"<tr><td>\\({c.tex}\\)</td><td>{{1:NUMERICAL:={c.value:.12g}:{c.tolerance:g}}}</td></tr>"
        for c in cells
    )
    text = re.sub(r"\$(.+?)\$", r"\\(\1\\)", problem_html(course, problem))
    text += f"<table>{rows}</table>"
    title = course.template.title or "Backpropagation by hand"
    return (
        '  <question type="cloze">\n'
        f"    <name><text>{escape(f'{title}: variant {problem.id}')}</text></name>\n"
        f'    <questiontext format="html"><text>{_cdata(text)}</text></questiontext>\n'
        '    <generalfeedback format="html"><text></text></generalfeedback>\n'
        "    <penalty>0.3333333</penalty>\n"
        "    <hidden>0</hidden>\n"
        f"    <idnumber>{escape(problem.id)}</idnumber>\n"
        "  </question>\n"
    )


def write(course: Course, out: Path) -> list[Path]:
    title = course.template.title or "Backpropagation by hand"
    category = (
        '  <question type="category">\n'
        f"    <category><text>$course$/top/gradcalc/{escape(title)}</text></category>\n"
        "  </question>\n"
    )
    body = "".join(_question(course, p) for p in course.problems)
    path = out / "moodle.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f'<?xml version="1.0" encoding="UTF-8"?>\n<quiz>\n{category}{body}</quiz>\n'
    path.write_text(text, encoding="utf-8", newline="\n")
    return [path]
