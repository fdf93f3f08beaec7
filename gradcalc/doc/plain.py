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
from collections.abc import Callable, Sequence
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

    def __init__(
        self,
        edge: bool = True,
        markup: bool = False,
        title: Text | None = None,
        show_lines: bool = False,
    ) -> None:
        self.edge = edge
        self.title = title  # over the table, at its left
        self.show_lines = show_lines
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

        table = RichTable(
            expand=False,
            show_edge=self.edge,
            pad_edge=self.edge,
            show_lines=self.show_lines,
            title=None if self.title is None else self.title.to_rich(),
            title_justify="left",
        )
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


class Drawing:
    """A view that draws on a rich console (`draw(console)`) and can also be drawn without
    rich: `plain(width)` gives the text rich would print without colour at that width, or None
    where only rich can draw it. A command's plain output then skips importing rich's console
    (gradcalc.cli.options.emit)."""

    def __init__(self, draw: Callable[[Any], None], plain: Callable[[int], str | None]) -> None:
        self.draw = draw
        self.plain = plain

    def __call__(self, console: Any) -> None:
        self.draw(console)


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


def _fits(line: str, width: int, cell_len: Any) -> bool:
    """Whether _wrap leaves the line as it is: it fits, and has no trailing space to cut (which
    _wrap cuts from a line longer in characters than `width`, as rich does)."""
    return cell_len(line) <= width and (len(line) <= width or not line[-1:].isspace())


def _longest(text: str, cell_len: Any) -> int:
    """The width of the text's longest line (the second of _measure)."""
    return max((cell_len(line) for line in text.splitlines()), default=0)


def _measure(text: str, cell_len: Any) -> tuple[int, int]:
    """rich's measure of a text: its longest word, its longest line."""
    lines = text.splitlines()
    longest = max((cell_len(line) for line in lines), default=0)
    words = text.split()
    return max((cell_len(word) for word in words), default=longest), longest


def share(widths: dict[int, int], wanted: Sequence[int], spare: int) -> dict[int, int]:
    """Columns' widths given `spare` cells to share among those that want more, evenly and up
    to what each wants (fit.py's Fit lays out a table too wide for its line with it)."""
    widths = dict(widths)
    wrapping = [i for i in widths if wanted[i] > widths[i]]
    while spare > 0 and wrapping:
        part = max(1, spare // len(wrapping))
        for i in list(wrapping):
            add = min(part, wanted[i] - widths[i], spare)
            widths[i] += add
            spare -= add
            if widths[i] >= wanted[i]:
                wrapping.remove(i)
    return widths


def _table(table: Table, width: int, out: list[str], cell_len: Any) -> bool:
    rows = [[c if isinstance(c, str) else c.plain for c in row] for row in table.rows]
    if "full" in table.justify:
        return False
    strings = [table.headers, *([c for c in row if isinstance(c, str)] for row in table.rows)]
    if table.markup and any("[" in cell for row in strings for cell in row):
        return False  # rich may read markup in it
    n = len(table.headers)
    columns = [[row[i] for row in rows] for i in range(n)]
    natural = [max([table.min_widths[i], _longest(table.headers[i], cell_len)]) for i in range(n)]
    for i, cells in enumerate(columns):
        natural[i] = max([natural[i], *(_longest(c, cell_len) for c in cells)])
    extra = 3 * n + 1 if table.edge else 3 * (n - 1)
    if sum(natural) + extra <= width:
        widths = natural
    else:
        # Too wide: as fit.py's Fit lays it out where every column keeps its widest word (or,
        # no_wrap and the key column, its widest cell); a narrower line it splits: rich's.
        # (Fit counts the edges and their padding whether the table has them or not.)
        fit_extra = 3 * n + 1
        least, wanted = [], []
        for i, cells in enumerate(columns):
            measured = [_measure(c, cell_len) for c in cells]
            whole = table.no_wrap[i] or (
                i == 0 and max((m[1] for m in measured), default=0) <= width // 2
            )
            header = _measure(table.headers[i], cell_len)[0]
            least.append(max([header, *(m[1] if whole else m[0] for m in measured)]))
            wanted.append(max([least[-1], *(m[1] for m in measured)]))
        if sum(least) + fit_extra > width:
            return False
        shared = share(dict(enumerate(least)), wanted, width - sum(least) - fit_extra)
        widths = [shared[i] for i in range(n)]

    def cell_lines(text: str, i: int) -> list[str] | None:
        lines: list[str] = []
        if "\n" not in text and _fits(text, widths[i], cell_len):
            lines = [text]  # what _wrap gives a line that fits, without its word by word
        else:
            for line in text.split("\n"):
                wrapped = _wrap(line, widths[i], cell_len)
                if wrapped is None:
                    return None
                lines += wrapped
        side = table.justify[i]
        out = []
        for line in lines:
            if side in ("right", "center"):
                line = line.rstrip()  # as rich's Lines.justify does before it aligns
            excess = widths[i] - cell_len(line)
            left = {"right": excess, "center": excess // 2}.get(side, 0)
            out.append(" " * left + line + " " * (excess - left))
        return out

    def row_lines(cells: Sequence[str], bar: str, bottom: bool = False) -> list[str] | None:
        """A row's lines; cells shorter than the row at its top (a header's at its bottom)."""
        parts = [cell_lines(cell, i) for i, cell in enumerate(cells)]
        if any(p is None for p in parts):
            return None
        height = max(len(p) for p in parts if p is not None)
        for i, p in enumerate(parts):
            assert p is not None
            blank = [" " * widths[i]] * (height - len(p))
            parts[i] = blank + p if bottom else p + blank
        lines = []
        for k in range(height):
            texts = [p[k] for p in parts if p is not None]
            inner = f" {bar} ".join(texts)
            lines.append(f"{bar} {inner} {bar}" if table.edge else inner)
        return lines

    def rule(fill: str, cross: str, ends: str) -> str:
        if table.edge:
            return ends[0] + cross.join(fill * (w + 2) for w in widths) + ends[1]
        return cross.join(fill * (w + (i > 0) + (i < n - 1)) for i, w in enumerate(widths))

    drawn: list[str] = []
    if table.title is not None:
        full = sum(widths) + extra
        for line in table.title.plain.split("\n"):
            wrapped = _wrap(line, full, cell_len)
            if wrapped is None:
                return False
            drawn += [piece + " " * (full - cell_len(piece)) for piece in wrapped]
    if table.edge:
        drawn.append(rule("━", "┳", "┏┓"))
    heading = row_lines(table.headers, "┃", bottom=True)
    if heading is None:
        return False
    drawn += heading
    drawn.append(rule("━", "╇", "┡┩"))
    for k, row in enumerate(rows):
        if k and table.show_lines:
            drawn.append(rule("─", "┼", "├┤"))
        lines = row_lines(row, "│")
        if lines is None:
            return False
        drawn += lines
    if table.edge:
        drawn.append(rule("─", "┴", "└┘"))
    out += drawn
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
