"""The picture model every drawing is laid out in, whatever the command: shapes and labels at
positions in pixels, with each label's bounding box known before anything is written.

A drawing (the network of `step --diagram`, the loss curve of `--plot`, derive's graph) is built
as a Figure here, then written by svg.py. Labels are set in a monospaced font, so a label's box
is its character count times the font's advance: the layout can place labels where they touch
nothing else, and the tests can check that no two boxes overlap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# DejaVu Sans Mono, Liberation Mono and Courier advance 0.600 em a character; a little more
# keeps the box honest where a fallback font draws a Greek letter or a subscript wider.
ADVANCE = 0.62
LEADING = 1.25  # line height, in em
FONT = "DejaVu Sans Mono, Liberation Mono, Menlo, Consolas, monospace"


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Box, gap: float = 0.0) -> bool:
        return not (
            self.x1 + gap <= other.x0
            or other.x1 + gap <= self.x0
            or self.y1 + gap <= other.y0
            or other.y1 + gap <= self.y0
        )

    def grown(self, by: float) -> Box:
        return Box(self.x0 - by, self.y0 - by, self.x1 + by, self.y1 + by)


# A piece of a label's line: its text and, for a number, what it is ("w:3:1:2"), which the SVG
# carries as data-q so a reader (and the tests) can tell which value of the trace it shows.
Span = tuple[str, str | None]
Line = tuple[Span, ...]


def line(*spans: str | Span) -> Line:
    return tuple((s, None) if isinstance(s, str) else s for s in spans)


def line_width(ln: Line, size: float) -> float:
    return sum(len(text) for text, _ in ln) * ADVANCE * size


@dataclass(frozen=True)
class Label:
    """Lines of text centred on (cx, cy); `boxed`: drawn on a white ground over the lines
    beneath it, and counted by the overlap test."""

    cx: float
    cy: float
    lines: tuple[Line, ...]
    size: float = 11.0
    cls: str = "label"
    boxed: bool = True
    anchor: str = "middle"  # or "start": cx is then the left edge
    bold: bool = False

    @property
    def width(self) -> float:
        return max((line_width(ln, self.size) for ln in self.lines), default=0.0)

    @property
    def height(self) -> float:
        return len(self.lines) * LEADING * self.size

    @property
    def box(self) -> Box:
        w, h = self.width, self.height
        x0 = self.cx - w / 2 if self.anchor == "middle" else self.cx
        return Box(x0, self.cy - h / 2, x0 + w, self.cy + h / 2)


@dataclass(frozen=True)
class Circle:
    cx: float
    cy: float
    r: float
    cls: str = "unit"

    @property
    def box(self) -> Box:
        return Box(self.cx - self.r, self.cy - self.r, self.cx + self.r, self.cy + self.r)


@dataclass(frozen=True)
class Rect:
    box: Box
    cls: str = "block"


@dataclass(frozen=True)
class Segment:
    x1: float
    y1: float
    x2: float
    y2: float
    cls: str = "edge"
    arrow: bool = False


@dataclass(frozen=True)
class Polyline:
    points: tuple[tuple[float, float], ...]
    cls: str = "curve"
    data: tuple[tuple[str, str], ...] = ()  # data-* attributes: what the points stand for
    closed: bool = False  # a filled polygon (a band) rather than a line


Shape = Label | Circle | Rect | Segment | Polyline


@dataclass
class Figure:
    width: float
    height: float
    title: str
    shapes: list[Shape] = field(default_factory=list)
    style: str = ""  # extra CSS for this kind of figure
    data: tuple[tuple[str, str], ...] = ()  # data-* attributes of the root element

    def labels(self) -> list[Label]:
        return [s for s in self.shapes if isinstance(s, Label)]


def overlapping(boxes: Sequence[Box], gap: float = 0.0) -> list[tuple[int, int]]:
    """The pairs of boxes that overlap (sorted sweep along x: fast for thousands of labels)."""
    order = sorted(range(len(boxes)), key=lambda i: boxes[i].x0)
    found: list[tuple[int, int]] = []
    active: list[int] = []
    for i in order:
        b = boxes[i]
        active = [k for k in active if boxes[k].x1 + gap > b.x0]
        found += [(k, i) for k in active if boxes[k].overlaps(b, gap)]
        active.append(i)
    return found


class Placer:
    """Places labels one at a time where they overlap nothing placed before: the obstacles are
    kept in a grid of cells, so each try looks only at its neighbours."""

    def __init__(self, obstacles: Iterable[Box] = (), cell: float = 64.0, gap: float = 1.0):
        self.cell = cell
        self.gap = gap
        self.grid: dict[tuple[int, int], list[Box]] = {}
        for b in obstacles:
            self.add(b)

    def _cells(self, b: Box) -> Iterable[tuple[int, int]]:
        c = self.cell
        for i in range(int(b.x0 // c) - 1, int(b.x1 // c) + 2):
            for j in range(int(b.y0 // c) - 1, int(b.y1 // c) + 2):
                yield i, j

    def add(self, b: Box) -> None:
        c = self.cell
        for i in range(int(b.x0 // c), int(b.x1 // c) + 1):
            for j in range(int(b.y0 // c), int(b.y1 // c) + 1):
                self.grid.setdefault((i, j), []).append(b)

    def free(self, b: Box) -> bool:
        return not any(
            b.overlaps(o, self.gap) for cell in self._cells(b) for o in self.grid.get(cell, ())
        )
