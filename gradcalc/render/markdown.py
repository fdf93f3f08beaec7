"""`gradcalc step --format markdown`: the worked solution as a standalone Markdown document.

Math sits between `$…$` and `$$…$$` and every `\\\\` ends its line, which is what GitHub's math
renderer needs; tables are pipe tables.
"""

from __future__ import annotations

from gradcalc.render.explain import Block, Eqs, Heading, Para, Table, build
from gradcalc.render.notation import Notation, tex_rows
from gradcalc.trace import RunTrace


def _equations(block: Eqs) -> str:
    rows: list[str] = []
    for eq in block.items:
        lines = tex_rows(eq.lhs, eq.rhs)
        if eq.tag:
            lines[-1] += rf" \qquad \text{{({eq.tag})}}"
        rows.extend(lines)
    return "$$\n\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}\n$$"


def _table(block: Table) -> str:
    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |"

    align = ["---"] + ["--:"] * (len(block.header) - 1)
    out = [line(block.header), "| " + " | ".join(align) + " |", *(line(r) for r in block.rows)]
    if block.note:
        out += ["", block.note]
    return "\n".join(out)


def render_block(block: Block) -> str:
    if isinstance(block, Heading):
        return "#" * block.level + " " + block.text
    if isinstance(block, Para):
        return block.text
    if isinstance(block, Eqs):
        return _equations(block)
    return _table(block)


def render(
    trace: RunTrace, *, exact: RunTrace | None = None, max_terms: int = 6, max_rows: int = 40
) -> str:
    blocks = build(
        trace,
        Notation("markdown", trace.round_to),
        exact=exact,
        max_terms=max_terms,
        max_rows=max_rows,
        document=True,
    )
    return "\n\n".join(render_block(b) for b in blocks) + "\n"
