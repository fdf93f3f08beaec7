"""The terminal writer: blocks as plain lines with bold headings (`--explain`)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.cells import cell_len

from gradcalc.doc.blocks import Block, Eq, Eqs, Heading, Para, Table
from gradcalc.doc.notation import BREAK

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text


def _text_table(table: Table, width: int = 0) -> list[str]:
    """The table in aligned columns. Wider than `width`, its headers wrap at their words, its
    columns after the first (the labels) go into several tables one under the other, each
    repeating the labels, and the labels wrap at their words if they must."""
    rows = [table.header, *table.rows]
    n = len(table.header)
    widths = [max(cell_len(r[c]) for r in rows) for c in range(n)]

    def total(group: list[int]) -> int:
        return 2 + sum(widths[c] for c in group) + 3 * (len(group) - 1)

    groups: list[list[int]] = [list(range(n))]
    if width and total(groups[0]) > width:
        longest = [max(cell_len(w) for w in table.header[c].split() or [""]) for c in range(n)]
        widths = [max([longest[c], *(cell_len(r[c]) for r in table.rows)]) for c in range(n)]
        groups = [[0]]
        for c in range(1, n):
            if len(groups[-1]) > 1 and total([*groups[-1], c]) > width:
                groups.append([0])
            groups[-1].append(c)
        widest = max(total(group) for group in groups)
        if widest > width:
            words = max(cell_len(w) for r in rows for w in r[0].split() or [""])
            widths[0] = max(words, widths[0] - (widest - width))

    def lines(cells: Sequence[str], group: list[int]) -> list[str]:
        wrapped = [
            textwrap.wrap(cells[c], widths[c], break_long_words=False) or [""] for c in group
        ]
        out = []
        for k in range(max(len(w) for w in wrapped)):
            parts = []
            for c, w in zip(group, wrapped, strict=True):
                cell = w[k] if k < len(w) else ""
                pad = " " * (widths[c] - cell_len(cell))
                parts.append(cell + pad if c == 0 else pad + cell)
            out.append(("  " + "   ".join(parts)).rstrip())
        return out

    out: list[str] = []
    for group in groups:
        if out:
            out.append("")
        out += lines(table.header, group)
        out.append("  " + "   ".join("─" * widths[c] for c in group))
        out += [text for r in table.rows for text in lines(r, group)]
    if table.note:
        out.extend(_fill(table.note, width, "  ", "  ") if width else ["  " + table.note])
    return out


def _fill(text: str, width: int, first: str = "", rest: str = "") -> list[str]:
    """Lines of at most `width` cells, broken at spaces only (never inside a word or number)."""
    if cell_len(first + text) <= width:
        return [first + text]
    lines = textwrap.wrap(
        text,
        width,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return lines or [first + text]


def _equation(eq: Eq, width: int) -> list[str]:
    """`  lhs = e₁ = e₂ … (tag)` on one line when it fits; else a new line at each relation that
    does not fit, aligned under the first, and a sum too long for its line continued at its
    terms (the BREAK marks), then at spaces."""
    head = f"  {eq.lhs}"
    tag = f"   ({eq.tag})" if eq.tag else ""
    whole = head + "".join(f" {rel} {expr}" for rel, expr in eq.rhs).replace(BREAK, "") + tag
    if cell_len(whole) <= width:
        return [whole]
    indent = " " * (cell_len(head) + 1)
    lines: list[str] = []
    line = head
    for rel, expr in eq.rhs:
        terms = expr.split(BREAK)
        piece = f" {rel} {terms[0]}"
        if line.strip() and line != head and cell_len(line + piece) > width:
            lines.append(line)
            line = indent[:-1]
        line += piece
        for term in terms[1:]:  # " + t" after the first term of a sum
            if cell_len(line + term) > width:
                lines.append(line)
                line = indent + "   " + term.lstrip()
            else:
                line += term
    if tag and cell_len(line + tag) > width:
        lines.append(line)
        line = indent + tag.strip()
    else:
        line += tag
    lines.append(line)
    # A single term longer than the line still breaks, at its spaces.
    out: list[str] = []
    for text in lines:
        lead = text[: len(text) - len(text.lstrip())]
        out.extend(_fill(text.lstrip(), width, lead, lead + "    "))
    return out


def to_text(blocks: Sequence[Block], width: int = 0) -> Text:
    """Plain lines with bold headings; equations one per line so they can be read and copied.
    With `width`, prose wraps at words and equations at relations and terms to fit it."""
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
            lines = _fill(block.text, width) if width else [block.text]
            text.append("\n".join(lines) + "\n", style="bold")
            if rule:
                text.append(rule * max(cell_len(line) for line in lines) + "\n")
        elif isinstance(block, Para):
            if width:
                lines = [w for line in block.text.split("\n") for w in _fill(line, width)]
                text.append("\n".join(lines) + "\n")
            else:
                text.append(block.text + "\n")
        elif isinstance(block, Eqs):
            for eq in block.items:
                if width:
                    text.append("\n".join(_equation(eq, width)) + "\n")
                    continue
                chain = "".join(f" {rel} {expr}" for rel, expr in eq.rhs).replace(BREAK, "")
                tag = f"   ({eq.tag})" if eq.tag else ""
                text.append(f"  {eq.lhs}{chain}{tag}\n")
        elif isinstance(block, Table):
            text.append("\n".join(_text_table(block, width)) + "\n")
    return text


def write(blocks: Sequence[Block], console: Console) -> None:
    """At the console's width: the terminal's, or 80 when piped (COLUMNS overrides both). On a
    console whose encoding cannot write the symbols, in their ASCII forms, laid out as such."""
    from gradcalc.doc.ascii import ascii_blocks, wants_ascii

    if wants_ascii(console):
        blocks = ascii_blocks(blocks)
    console.print(to_text(blocks, console.width), soft_wrap=True, end="")
