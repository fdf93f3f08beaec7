"""The Markdown writer: a worked solution (of `step` or `derive`) as a standalone document.

Math sits between `$…$` and `$$…$$` and every `\\\\` ends its line, which is what GitHub's math
renderer needs; tables are pipe tables.
"""

from __future__ import annotations

from collections.abc import Sequence

from gradcalc.doc.blocks import Block, Eqs, Heading, Mermaid, Para, Table
from gradcalc.doc.notation import equation_rows


def _equations(block: Eqs) -> str:
    rows = equation_rows(block.items)
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
    if isinstance(block, Mermaid):
        return "```mermaid\n" + block.source + "\n```"
    return _table(block)


def write(blocks: Sequence[Block], compact: bool = False) -> str:
    return "\n\n".join(render_block(b) for b in blocks) + "\n"
