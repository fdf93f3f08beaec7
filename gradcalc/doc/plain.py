"""Text, tables and groups that print without rich when the output is plain.

Importing rich's console and table modules costs a command about a fifth of its start-up, and
rich lays out every cell on its own. A writer that builds its output from these three
classes (instead of rich's Text, Table and Group, whose calls they take) gets both ways out:
`to_rich` makes the rich renderables for a terminal with colour (or a Jupyter display), and
`plain` writes the same characters rich would — the heavy-head box, the padding, the
justification — in one pass of string formatting, for output without colour or bold.

`plain` draws only what it can draw exactly as rich does: text wraps at words as rich wraps it,
but a word longer than the width, a table wider than the width or a cell of several lines make
it return None, and the caller prints with rich (which folds, or splits the table to fit, see
fit.py).
"""

from __future__ import annotations

import os
import re
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
    """rich's default table (heavy head, not expanded), with its outer edge and the padding
    beside it (`edge`) or without either."""

    def __init__(self, edge: bool = True, markup: bool = False) -> None:
        self.edge = edge
        # markup: rich reads its string cells and headers as console markup ("[bold]…"), as
        # rich's own Table does with strings; else they are text as they are.
        self.markup = markup
        self.headers: list[str] = []
        self.justify: list[str] = []
        self.min_widths: list[int] = []
        self.no_wrap: list[bool] = []
        self.overflow: list[str] = []
        self.rows: list[tuple[Cell, ...]] = []
        self.styles: list[Style] = []

    def add_column(
        self,
        header: str,
        justify: str = "left",
        min_width: int = 0,
        no_wrap: bool = False,
        overflow: str = "ellipsis",  # rich's; it matters only to rich, which draws what wraps
    ) -> None:
        self.overflow.append(overflow)
        self.headers.append(header)
        self.justify.append(justify)
        self.min_widths.append(min_width)
        self.no_wrap.append(no_wrap)

    def add_row(self, *cells: Cell, style: Style = None) -> None:
        self.rows.append(cells)
        self.styles.append(style)

    def to_rich(self) -> Any:
        from rich.table import Table as RichTable
        from rich.text import Text as RichText

        table = RichTable(expand=False, show_edge=self.edge, pad_edge=self.edge)
        for header, side, least, whole, overflow in zip(
            self.headers, self.justify, self.min_widths, self.no_wrap, self.overflow, strict=True
        ):
            # Text, never markup: a partial such as "[v > 0]" prints as it is.
            table.add_column(
                header if self.markup else RichText(header),
                justify=side,  # type: ignore[arg-type]
                overflow=overflow,  # type: ignore[arg-type]
                min_width=least or None,
                no_wrap=whole,
            )
        for row, style in zip(self.rows, self.styles, strict=True):
            cells = (
                (c if self.markup else RichText(c)) if isinstance(c, str) else c.to_rich()
                for c in row
            )
            table.add_row(*cells, style=style)
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
            for line in part.plain.split("\n"):
                wrapped = _wrap(line, width, cell_len)
                if wrapped is None:
                    return False
                out.extend(wrapped)
            return True
        return _table(part, width, out, cell_len)

    if not all(draw(part) for part in parts):
        return None
    return "".join(line + "\n" for line in out)


_WORD = re.compile(r"\s*\S+\s*")
_TRAILING = re.compile(r"\s+$")


def _wrap(line: str, width: int, cell_len: Any) -> list[str] | None:
    """The line wrapped at words as rich's Text.wrap does (rich/_wrap.py divide_line, then
    each piece's whitespace beyond the width cut); None for a word longer than the width,
    which rich folds."""
    breaks: list[int] = []
    offset = 0
    match = _WORD.match(line, 0)
    while match is not None:
        start, end = match.span()
        word = match.group(0)
        length = cell_len(word.rstrip())
        if width - offset >= length:
            offset += cell_len(word)
        elif length > width:
            return None
        elif offset and start:
            breaks.append(start)
            offset = cell_len(word)
        match = _WORD.match(line, end)
    pieces = [line[a:b] for a, b in zip([0, *breaks], [*breaks, len(line)], strict=True)]
    out = []
    for piece in pieces:
        if len(piece) > width:
            space = _TRAILING.search(piece)
            if space is not None:
                piece = piece[: len(piece) - min(len(space.group()), len(piece) - width)]
        if cell_len(piece) > width:
            return None
        out.append(piece)
    return out


def _table(table: Table, width: int, out: list[str], cell_len: Any) -> bool:
    rows = [[c if isinstance(c, str) else c.plain for c in row] for row in table.rows]
    if any("\n" in cell for row in [table.headers, *rows] for cell in row):
        return False
    strings = [table.headers, *([c for c in row if isinstance(c, str)] for row in table.rows)]
    if table.markup and any("[" in cell for row in strings for cell in row):
        return False  # rich may read markup in it
    if "full" in table.justify:
        return False
    least = zip(table.headers, table.min_widths, strict=True)
    widths = [max(cell_len(header), w) for header, w in least]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], cell_len(cell))
    n = len(widths)
    if sum(widths) + 3 * (n - 1) + (4 if table.edge else 0) > width:
        return False

    def line(cells: Sequence[str], bar: str, edge: str) -> str:
        padded = []
        for cell, w, side in zip(cells, widths, table.justify, strict=True):
            if side in ("right", "center"):
                cell = cell.rstrip()  # as rich's Lines.justify does before it aligns
            excess = w - cell_len(cell)
            left = {"right": excess, "center": excess // 2}.get(side, 0)
            padded.append(" " * left + cell + " " * (excess - left))
        inner = f" {bar} ".join(padded)
        return f"{edge} {inner} {edge}" if table.edge else inner

    def rule(fill: str, cross: str, ends: str) -> str:
        if table.edge:
            return ends[0] + cross.join(fill * (w + 2) for w in widths) + ends[1]
        return cross.join(fill * (w + (i > 0) + (i < n - 1)) for i, w in enumerate(widths))

    if table.edge:
        out.append(rule("━", "┳", "┏┓"))
    out.append(line(table.headers, "┃", "┃"))
    out.append(rule("━", "╇", "┡┩"))
    out.extend(line(row, "│", "│") for row in rows)
    if table.edge:
        out.append(rule("─", "┴", "└┘"))
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
    stream = sys.stdout
    if getattr(stream, "ascii_forms", False):
        return False
    encoding = (getattr(stream, "encoding", "utf-8") or "utf-8").lower()
    if encoding.replace("-", "").replace("_", "") in ("utf8", "utf16", "utf32"):
        return True  # holds every symbol: no need to load the ASCII forms' tables to ask
    from gradcalc.doc.ascii import cannot_write

    return not cannot_write(encoding)
