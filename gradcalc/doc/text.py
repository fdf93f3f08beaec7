"""The terminal writer: blocks as plain lines with bold headings (`--explain`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gradcalc.doc.blocks import Block, Eqs, Heading, Para, Table
from gradcalc.doc.notation import BREAK

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text


def _text_table(table: Table) -> list[str]:
    rows = [table.header, *table.rows]
    widths = [max(len(r[c]) for r in rows) for c in range(len(table.header))]

    def line(cells: Sequence[str]) -> str:
        return (
            "  "
            + "   ".join(
                cell.ljust(w) if c == 0 else cell.rjust(w)
                for c, (cell, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
        )

    out = [line(table.header), "  " + "   ".join("─" * w for w in widths)]
    out += [line(r) for r in table.rows]
    if table.note:
        out.append("  " + table.note)
    return out


def to_text(blocks: Sequence[Block]) -> Text:
    """Plain lines with bold headings; equations one per line so they can be read and copied."""
    from rich.text import Text

    text = Text()
    for i, block in enumerate(blocks):
        before = blocks[i - 1] if i else None
        tight = (
            (isinstance(before, Heading) and before.level > 1)
            or (
                isinstance(before, Para)
                and before.text.endswith(":")
                and isinstance(block, Eqs | Table)
            )
            or (isinstance(before, Para) and isinstance(block, Para))
        )
        if before is not None and not tight:
            text.append("\n")
        if isinstance(block, Heading):
            rule = {1: "═", 2: "─"}.get(block.level)
            text.append(block.text + "\n", style="bold")
            if rule:
                text.append(rule * len(block.text) + "\n")
        elif isinstance(block, Para):
            text.append(block.text + "\n")
        elif isinstance(block, Eqs):
            for eq in block.items:
                chain = "".join(f" {rel} {expr}" for rel, expr in eq.rhs).replace(BREAK, "")
                tag = f"   ({eq.tag})" if eq.tag else ""
                text.append(f"  {eq.lhs}{chain}{tag}\n")
        elif isinstance(block, Table):
            text.append("\n".join(_text_table(block)) + "\n")
    return text


def write(blocks: Sequence[Block], console: Console) -> None:
    console.print(to_text(blocks), soft_wrap=True, end="")
