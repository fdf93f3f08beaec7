"""Text, tables and groups that print without rich when the output is plain.

Importing rich's console and table modules costs a command about a fifth of its start-up, and
rich lays out every cell on its own. A writer that builds its output from these three
classes (instead of rich's Text, Table and Group, whose calls they take) gets both ways out:
`to_rich` makes the rich renderables for a terminal with colour (or a Jupyter display), and
`plain` writes the same characters rich would — the heavy-head box, the padding, the
justification — in one pass of string formatting, for output without colour or bold.

`plain` draws only what it can draw exactly as rich does: a text line or a table wider than the
width, a cell of several lines or a centred column make it return None, and the caller prints
with rich (which wraps, or splits the table to fit, see fit.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

Style = str | None


class Text:
    """A line (or lines) of text in spans, each with its rich style (e.g. "bold", "dim")."""

    def __init__(self, text: str = "", style: Style = None) -> None:
        self.spans: list[tuple[str, Style]] = []
        self.style = style
        if text:
            self.spans.append((text, None))

    def append(self, text: str, style: Style = None) -> Text:
        self.spans.append((text, style))
        return self

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.spans)

    def to_rich(self) -> Any:
        from rich.text import Text as RichText

        text = RichText(style=self.style or "")
        for part, style in self.spans:
            text.append(part, style=style)
        return text


Cell = str | Text


class Table:
    """rich's default table (heavy head), without its outer edge and edge padding: the one
    kind the derivation's writer draws."""

    def __init__(self) -> None:
        self.headers: list[str] = []
        self.justify: list[str] = []
        self.rows: list[tuple[Cell, ...]] = []

    def add_column(self, header: str, justify: str = "left") -> None:
        self.headers.append(header)
        self.justify.append(justify)

    def add_row(self, *cells: Cell) -> None:
        self.rows.append(cells)

    def to_rich(self) -> Any:
        from rich.table import Table as RichTable
        from rich.text import Text as RichText

        table = RichTable(expand=False, show_edge=False, pad_edge=False)
        for header, side in zip(self.headers, self.justify, strict=True):
            # Text, never markup: a partial such as "[v > 0]" prints as it is.
            table.add_column(RichText(header), justify=side, overflow="fold")  # type: ignore[arg-type]
        for row in self.rows:
            table.add_row(*(RichText(c) if isinstance(c, str) else c.to_rich() for c in row))
        return table


class Group:
    def __init__(self, *parts: Renderable) -> None:
        self.parts = parts

    def to_rich(self) -> Any:
        from rich.console import Group as RichGroup

        return RichGroup(*(part.to_rich() for part in self.parts))


Renderable = Text | Table | Group


def to_rich(parts: Sequence[Renderable]) -> list[Any]:
    return [part.to_rich() for part in parts]


def plain(parts: Sequence[Renderable], width: int) -> str | None:
    """The parts as rich prints them without colour at `width` columns, or None where only
    rich can (something to wrap or to split)."""
    from rich.cells import cell_len

    out: list[str] = []

    def draw(part: Renderable) -> bool:
        if isinstance(part, Group):
            return all(draw(p) for p in part.parts)
        if isinstance(part, Text):
            text = part.plain
            if not text or text.endswith("\n"):
                return False
            lines = text.split("\n")
            if any(cell_len(line) > width for line in lines):
                return False
            out.extend(lines)
            return True
        return _table(part, width, out, cell_len)

    if not all(draw(part) for part in parts):
        return None
    return "".join(line + "\n" for line in out)


def _table(table: Table, width: int, out: list[str], cell_len: Any) -> bool:
    rows = [[c if isinstance(c, str) else c.plain for c in row] for row in table.rows]
    if any("\n" in cell for row in [table.headers, *rows] for cell in row):
        return False
    if "center" in table.justify or "full" in table.justify:
        return False
    widths = [cell_len(h) for h in table.headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], cell_len(cell))
    if sum(widths) + 3 * (len(widths) - 1) > width:
        return False

    def line(cells: Sequence[str], bar: str) -> str:
        padded = []
        for cell, w, side in zip(cells, widths, table.justify, strict=True):
            space = " " * (w - cell_len(cell))
            padded.append(space + cell if side == "right" else cell + space)
        return f" {bar} ".join(padded)

    last = len(widths) - 1
    rule = "╇".join("━" * (w + (i > 0) + (i < last)) for i, w in enumerate(widths))
    out.append(line(table.headers, "┃"))
    out.append(rule)
    out.extend(line(row, "│") for row in rows)
    return True


def width() -> int | None:
    """The width rich gives a console that is not a terminal: a terminal's found on standard
    input, output or error, else 80; COLUMNS overrides. None where rich decides otherwise
    (Windows' legacy console)."""
    if os.name == "nt":
        return None
    columns = os.environ.get("COLUMNS")
    found = None
    for fd in (0, 1, 2):
        try:
            found = os.get_terminal_size(fd).columns
        except (AttributeError, ValueError, OSError):
            continue
        break
    if columns is not None and columns.isdigit():
        if int(columns) == 0:
            return None  # rich keeps a width of 0
        found = int(columns)
    return found or 80


def writable(text: str) -> bool:
    """Whether standard output can take the text as it is (rich's ASCII forms otherwise)."""
    from gradcalc.doc.ascii import cannot_write

    stream = sys.stdout
    if getattr(stream, "ascii_forms", False):
        return False
    encoding = (getattr(stream, "encoding", "utf-8") or "utf-8").lower()
    return not cannot_write(encoding)
