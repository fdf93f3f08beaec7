"""Tables that fit a terminal of any width without cutting an index or a number.

rich squeezes a table that is too wide by cutting its cells (`0.5523…`, an empty `l` column).
`Fit` measures the table at the width it is printed at and, when it does not fit, prints its value
columns in several tables one under the other, each repeating the key columns (x, l, j, k) so
every row still says what it is. A key column and one value column that still do not fit fold
the value's cells onto several lines rather than cut them (and the keys' too, on a terminal too
narrow even for them).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult


class Fit:
    """``table`` as it is when it fits, else split by columns; ``keys`` leading columns repeat.

    ``caption`` is printed under the last piece as plain text, wrapped at words with no trailing
    spaces (a table's own caption is padded to the table's width).
    """

    def __init__(self, table: Table, keys: int = 0, caption: str = "") -> None:
        self.table = table
        self.keys = keys
        self.caption = caption

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self._max_width = options.max_width
        self._widths = self._column_widths(console, options)
        every = list(range(len(self._widths)))
        if Measurement.get(console, options.update(width=10**6), self.table).maximum <= width:
            yield self.table
        elif self._width(every) <= width:
            # Each column kept at least as wide as its widest number: rich wraps only words.
            yield self._piece(every, fold=False, first=True, last=True)
        else:
            groups = list(self._groups(width))
            for n, columns in enumerate(groups):
                fold = self._width(columns) > width
                yield self._piece(columns, fold, first=n == 0, last=n == len(groups) - 1)
        if self.caption:
            # Wrapped here at words: rich's own wrapping leaves a space at each line's end.
            yield Text("\n".join(textwrap.wrap(self.caption, width)), style="dim")

    # -- splitting -------------------------------------------------------------------------------
    def _column_widths(self, console: Console, options: ConsoleOptions) -> list[int]:
        """The narrowest each column can be without cutting: its widest cell in a no-wrap
        column (or a key column), else its longest word; a header may always wrap at its
        spaces."""
        wide = options.update(width=10**6)
        widths = []
        self._whole: list[bool] = []
        self._wanted: list[int] = []  # each column's width on one line
        for i, column in enumerate(self.table.columns):
            cells = [Measurement.get(console, wide, c) for c in column.cells]
            header = Measurement.get(console, wide, column.header).minimum
            # A key (x → u) is read whole where it takes at most half the width.
            whole = column.no_wrap or (
                i < self.keys
                and max((m.maximum for m in cells), default=0) <= options.max_width // 2
            )
            self._whole.append(whole)
            widest = (m.maximum if whole else m.minimum for m in cells)
            widths.append(max(header, *widest))
            self._wanted.append(max([widths[-1], *(m.maximum for m in cells)]))
        return widths

    def _shared(self, columns: list[int]) -> dict[int, int]:
        """The columns' widths in a piece: each its narrowest, and what the piece has to spare
        shared among the columns that wrap, up to what they want (a width rich keeps to)."""
        from gradcalc.doc.plain import share

        widths = {i: self._widths[i] for i in columns}
        return share(widths, self._wanted, self._max_width - self._width(columns))

    def _groups(self, width: int) -> Iterator[list[int]]:
        keys = list(range(min(self.keys, len(self._widths))))
        group: list[int] = []
        for i in range(len(keys), len(self._widths)):
            if group and self._width(keys + group + [i]) > width:
                yield keys + group
                group = []
            group.append(i)
        if group:
            yield keys + group

    def _width(self, columns: Iterable[int]) -> int:
        # Each column: its cells, one space of padding either side, and a rule; one more rule.
        return sum(self._widths[i] + 3 for i in columns) + 1

    def _piece(self, columns: list[int], fold: bool, first: bool, last: bool) -> Table:
        source = self.table
        piece = Table(
            box=source.box,
            show_header=source.show_header,
            header_style=source.header_style,
            show_edge=source.show_edge,
            show_lines=source.show_lines,
            pad_edge=source.pad_edge,
            title=source.title if first else None,
            title_justify=source.title_justify,
            caption=source.caption if last else None,
            expand=False,
        )
        cells = []
        keys = [i for i in columns if i < self.keys]
        # Folding, the keys stay whole while they leave the rest a few columns: the values fold.
        whole_keys = fold and self._width(keys) + 12 <= self._max_width
        shared = self._shared(columns)
        for i in columns:
            column = source.columns[i]
            folded = fold and not (whole_keys and i in keys)
            piece.add_column(
                column.header,
                justify=column.justify,
                style=column.style,
                overflow="fold" if folded else column.overflow,
                width=None if folded else shared[i],
            )
            # No-wrap cells as Text that may not wrap, while the header may.
            no_wrap = self._whole[i] and not folded
            cells.append([_unwrapped(c) if no_wrap else c for c in column.cells])
        for n, row in enumerate(zip(*cells, strict=True)):
            style = source.rows[n].style if n < len(source.rows) else None
            piece.add_row(*row, style=style)
        return piece


def _unwrapped(cell: object) -> object:
    if isinstance(cell, str):
        return Text(cell, no_wrap=True)
    return cell


def fit_tables(renderable: Any, keys: int = 1) -> Any:
    """`renderable` with every rich Table in it (through Groups) made a Fit that repeats its
    first `keys` columns: so a number, a name or a word is never cut or broken inside."""
    from rich.console import Group

    if isinstance(renderable, Table):
        return Fit(renderable, keys=keys)
    if isinstance(renderable, Group):
        return Group(*(fit_tables(r, keys) for r in renderable.renderables), fit=renderable.fit)
    return renderable


def fit_hook() -> Any:
    """A rich render hook: every table printed goes through fit_tables."""
    from rich.console import RenderHook

    class FitHook(RenderHook):
        def process_renderables(self, renderables: list[Any]) -> list[Any]:
            return [fit_tables(r) for r in renderables]

    return FitHook()
