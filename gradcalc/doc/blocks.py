"""The block model every worked solution is written in, whatever the command and the format.

A command's solution builder turns its trace into a list of blocks; a writer in this package
lays the list out as terminal text, Markdown or LaTeX. The blocks carry text already written in
the writer's notation (see notation.py); the writers only arrange it.
"""

from __future__ import annotations

from gradcalc.records import record


@record
class Heading:
    level: int  # 1 the title, 2 a part (a step), 3 a stage of the step
    text: str


@record
class Para:
    text: str


@record
class Eq:
    lhs: str
    rhs: tuple[tuple[str, str], ...]  # (relation, expression), e.g. ("=", "0.2×0.8 + …")
    tag: str = ""


@record
class Eqs:
    items: tuple[Eq, ...]


@record
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


@record
class Mermaid:
    """A Mermaid flowchart: drawn by the Markdown writer, left out by the others."""

    source: str


Block = Heading | Para | Eqs | Table | Mermaid
