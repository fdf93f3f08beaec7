"""Tables that fit a terminal of any width without cutting an index or a number.

rich squeezes a table that is too wide by cutting its cells (`0.5523…`, an empty `l` column).
`Fit` measures the table at the width it is printed at and, when it does not fit, prints its value
columns in several tables one under the other, each repeating the key columns (x, l, j, k) so
every row still says what it is. A key column and one value column that still do not fit fold
their cells onto several lines rather than cut them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

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
        width = options.max_width
        self._widths = self._column_widths(console, options)
        every = list(range(len(self._widths)))
        if Measurement.get(console, options.update(width=10**6), self.table).maximum <= width:
            yield self.table
        elif self._width(every) <= width:
            # Each column kept at least as wide as its widest number: rich wraps only words.
            yield self._piece(every, fold=False)
        else:
            for columns in self._groups(width):
                yield self._piece(columns, fold=self._width(columns) > width)
        if self.caption:
            # Wrapped here at words: rich's own wrapping leaves a space at each line's end.
            yield Text("\n".join(textwrap.wrap(self.caption, width)), style="dim")

    # -- splitting -------------------------------------------------------------------------------
    def _column_widths(self, console: Console, options: ConsoleOptions) -> list[int]:
        """The narrowest each column can be without cutting: its widest cell in a no-wrap
        column, else its longest word; a header may always wrap at its spaces."""
        wide = options.update(width=10**6)
        widths = []
        for column in self.table.columns:
            cells = [Measurement.get(console, wide, c) for c in column.cells]
            header = Measurement.get(console, wide, column.header).minimum
            widest = (m.maximum if column.no_wrap else m.minimum for m in cells)
            widths.append(max(header, *widest))
        return widths

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

    def _piece(self, columns: list[int], fold: bool) -> Table:
        source = self.table
        piece = Table(
            box=source.box,
            show_header=source.show_header,
            header_style=source.header_style,
            show_edge=source.show_edge,
            expand=False,
        )
        cells = []
        for i in columns:
            column = source.columns[i]
            piece.add_column(
                column.header,
                justify=column.justify,
                style=column.style,
                overflow="fold" if fold else column.overflow,
                width=None if fold else self._widths[i],
            )
            # No-wrap cells as Text that may not wrap, while the header may.
            no_wrap = column.no_wrap and not fold
            cells.append([_unwrapped(c) if no_wrap else c for c in column.cells])
        for row in zip(*cells, strict=True):
            piece.add_row(*row)
        return piece


def _unwrapped(cell: object) -> object:
    if isinstance(cell, str):
        return Text(cell, no_wrap=True)
    return cell
