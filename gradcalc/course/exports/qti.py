"""Canvas: a QTI 1.2 content package (a zip) with one assessment (a quiz) per variant, to be
assigned to its student. Each assessment opens with the problem (a `text_only_question`) and
asks for every cell with a `numerical_question` of its own: Canvas's numerical question takes
one answer, one `response_str` rendered as a decimal fill-in (`render_fib fibtype="Decimal"`),
scored by one `respcondition` that sets SCORE to 100 when the answer equals the exact value or
lies in [value − tolerance, value + tolerance] (gradcalc/course/answers.py).

Reference: IMS Question & Test Interoperability 1.2 (ASI XML binding and content packaging,
https://www.imsglobal.org/question/index.html#version1.2), and Canvas's QTI import,
https://canvas.instructure.com/doc/api/file.content_exports.html (the `question_type` and
`points_possible` item metadata are Canvas's).
"""

from __future__ import annotations

import html
import io
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from gradcalc.course.answers import AnswerCell, answer_cells
from gradcalc.course.exports.prairielearn import problem_html
from gradcalc.course.variants import Course, Problem

MANIFEST = "imsmanifest.xml"
QTI_NS = "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"
CP_NS = "http://www.imsglobal.org/xsd/imscp_v1p1"
RESPONSE = "response1"  # a numerical question's one response, as Canvas writes it


def assessment_ident(n: int) -> str:
    """An assessment's identifier and folder: by its place in the course, since an id may hold
    characters (@ +) an XML identifier should not."""
    return f"gradcalc_variant_{n:04d}"


def assessment_href(n: int) -> str:
    ident = assessment_ident(n)
    return f"{ident}/{ident}.xml"


def _metadata(question_type: str, points: int) -> str:
    fields = (("question_type", question_type), ("points_possible", str(points)))
    return (
        "<itemmetadata><qtimetadata>"
        + "".join(
            f"<qtimetadatafield><fieldlabel>{k}</fieldlabel><fieldentry>{v}</fieldentry>"
            "</qtimetadatafield>"
            for k, v in fields
        )
        + "</qtimetadata></itemmetadata>"
    )


def _problem_item(ident: str, course: Course, problem: Problem) -> str:
    return (
        f'<item ident={quoteattr(ident + "_problem")} title="The problem">'
        + _metadata("text_only_question", 0)
        + '<presentation><material><mattext texttype="text/html">'
        + escape(problem_html(course, problem))
        + "</mattext></material></presentation></item>"
    )


def _cell_item(ident: str, cell: AnswerCell, decimals: int) -> str:
    lo, hi = cell.value - cell.tolerance, cell.value + cell.tolerance
    text = f"<p>{html.escape(cell.symbol)} = ? (rounded to {decimals} decimals)</p>"
    return (
        f"<item ident={quoteattr(f'{ident}_{cell.name}')} title={quoteattr(cell.symbol)}>"
        + _metadata("numerical_question", 1)
        + '<presentation><material><mattext texttype="text/html">'
        + escape(text)
        + "</mattext></material>"
        f'<response_str ident="{RESPONSE}" rcardinality="Single">'
        '<render_fib fibtype="Decimal"><response_label ident="answer1"/></render_fib>'
        "</response_str></presentation>"
        '<resprocessing><outcomes><decvar maxvalue="100" minvalue="0" varname="SCORE" '
        'vartype="Decimal"/></outcomes>'
        '<respcondition continue="No"><conditionvar><or>'
        f'<varequal respident="{RESPONSE}">{cell.value!r}</varequal>'
        f'<and><vargte respident="{RESPONSE}">{lo!r}</vargte>'
        f'<varlte respident="{RESPONSE}">{hi!r}</varlte></and>'
        "</or></conditionvar>"
        '<setvar action="Set" varname="SCORE">100</setvar></respcondition>'
        "</resprocessing></item>"
    )


def assessment(course: Course, n: int, problem: Problem) -> str:
    """The quiz of variant n (from 1): the problem, then one numerical question per cell."""
    ident = assessment_ident(n)
    title = f"{course.template.title or 'Backpropagation by hand'}: variant {problem.id}"
    items = [_problem_item(ident, course, problem)]
    items += [_cell_item(ident, c, course.decimals) for c in answer_cells(problem, course.decimals)]
    body = "\n".join(items)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<questestinterop xmlns="{QTI_NS}">\n'
        f"<assessment ident={quoteattr(ident)} title={quoteattr(title)}>\n"
        '<section ident="root_section">\n'
        f"{body}\n</section>\n</assessment>\n</questestinterop>\n"
    )


def manifest(course: Course) -> str:
    resources = "".join(
        f'<resource identifier="{assessment_ident(n)}" type="imsqti_xmlv1p2" '
        f'href="{assessment_href(n)}"><file href="{assessment_href(n)}"/></resource>\n'
        for n in range(1, len(course.problems) + 1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<manifest identifier="gradcalc_manifest" xmlns="{CP_NS}">\n'
        "<metadata><schema>IMS Content</schema><schemaversion>1.1.3</schemaversion></metadata>\n"
        f"<organizations/>\n<resources>\n{resources}</resources>\n</manifest>\n"
    )


def write(course: Course, out: Path) -> list[Path]:
    files = [(MANIFEST, manifest(course))]
    files += [
        (assessment_href(n), assessment(course, n, p))
        for n, p in enumerate(course.problems, start=1)
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # the same bytes twice
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text.encode("utf-8"))
    path = out / "canvas-qti.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return [path]
