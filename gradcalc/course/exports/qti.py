"""Canvas: a QTI 1.2 content package (a zip), one assessment whose items are the variants; each
item asks for every cell with a numeric fill-in (`response_num`, `render_fib`) and scores it by
the range value ± tolerance (gradcalc/course/answers.py).

Reference: IMS Question & Test Interoperability 1.2 (ASI XML binding and content packaging,
https://www.imsglobal.org/question/index.html#version1.2), and Canvas's QTI import,
https://canvas.instructure.com/doc/api/file.content_exports.html.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from gradcalc.course.answers import answer_cells
from gradcalc.course.exports.prairielearn import problem_html
from gradcalc.course.variants import Course, Problem

ASSESSMENT = "gradcalc_assessment.xml"


def _item(course: Course, problem: Problem) -> str:
    cells = answer_cells(problem, course.decimals)
    parts = [
        f"<item ident={quoteattr('variant_' + problem.id)} "
        f"title={quoteattr('Variant ' + problem.id)}>",
        "<itemmetadata><qtimetadata><qtimetadatafield><fieldlabel>question_type</fieldlabel>"
        "<fieldentry>numerical_question</fieldentry></qtimetadatafield>"
        f"<qtimetadatafield><fieldlabel>points_possible</fieldlabel><fieldentry>{len(cells)}"
        "</fieldentry></qtimetadatafield></qtimetadata></itemmetadata>",
        "<presentation>",
        '<material><mattext texttype="text/html">'
        + escape(problem_html(course, problem))
        + "</mattext></material>",
    ]
    for c in cells:
        parts.append(
            f"<material><mattext>{escape(c.symbol)} =</mattext></material>"
            f'<response_num ident="{c.name}" rcardinality="Single" numtype="Decimal">'
            '<render_fib fibtype="Decimal" rows="1" columns="12"/></response_num>'
        )
    parts += [
        "</presentation>",
        '<resprocessing><outcomes><decvar varname="SCORE" vartype="Decimal" minvalue="0" '
        f'maxvalue="{len(cells)}"/></outcomes>',
    ]
    for c in cells:
        lo, hi = c.value - c.tolerance, c.value + c.tolerance
        parts.append(
            f'<respcondition continue="Yes" title="{c.name}"><conditionvar><and>'
            f'<vargte respident="{c.name}">{lo!r}</vargte>'
            f'<varlte respident="{c.name}">{hi!r}</varlte>'
            '</and></conditionvar><setvar action="Add" varname="SCORE">1</setvar>'
            "</respcondition>"
        )
    parts += ["</resprocessing>", "</item>"]
    return "\n".join(parts)


def assessment(course: Course) -> str:
    title = course.template.title or "Backpropagation by hand"
    items = "\n".join(_item(course, p) for p in course.problems)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<questestinterop xmlns="http://www.imsglobal.org/xsd/ims_qtiasiv1p2">\n'
        f'<assessment ident="gradcalc_course" title={quoteattr(title)}>\n'
        '<section ident="root_section">\n'
        f"{items}\n</section>\n</assessment>\n</questestinterop>\n"
    )


def manifest() -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<manifest identifier="gradcalc_manifest" '
        'xmlns="http://www.imsglobal.org/xsd/imscp_v1p1">\n'
        "<metadata><schema>IMS Content</schema><schemaversion>1.1.3</schemaversion></metadata>\n"
        "<organizations/>\n<resources>\n"
        f'<resource identifier="gradcalc_assessment" type="imsqti_xmlv1p2" href="{ASSESSMENT}">'
        f'<file href="{ASSESSMENT}"/></resource>\n'
        "</resources>\n</manifest>\n"
    )


def write(course: Course, out: Path) -> list[Path]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in (("imsmanifest.xml", manifest()), (ASSESSMENT, assessment(course))):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # the same bytes twice
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text.encode("utf-8"))
    path = out / "canvas-qti.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return [path]
