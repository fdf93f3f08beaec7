"""`step --diagram`: one step of the network drawn as the sheet draws it.

Each layer is a column of circles (unit j of layer l shows z^l_j and a^l_j, and δ^l_j after the
backward pass); each edge k → j carries w^l_jk (and ∂C/∂w^l_jk and the new w^l_jk when asked);
each unit's bias sits above its circle. The numbers are those of one example of the batch (the
first unless asked). A layer of more than MAX_UNITS units shows its first HEAD_UNITS units and
its last, and a count of the rest, as the tables do.

The layout is a list of columns: a dense layer is a column of units. A layer of another type
(gradcalc/layers/: conv, pooling, flatten…) is a block with its shapes and key numbers, which its
layer record gives (LayerType.block; by default its name and its shape change); a block whose
output a dense layer reads is followed by a column of that output's values as units, so the
dense layer's edges have their sources. A recurrent layer (LayerType.unrolled) is drawn unrolled
in time: a frame holding its cell once per step t, x_t below each cell, h_t (and ∂C/∂h_t after
the backward pass) above it and h_(t−1) → h_t between them; beyond MAX_STEPS steps the middle
ones are elided with a count.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gradcalc.doc.layout import (
    Box,
    Circle,
    Figure,
    Label,
    Line,
    Placer,
    Rect,
    Segment,
    line,
    line_width,
)
from gradcalc.doc.notation import Notation, subscript, superscript
from gradcalc.step.trace import RunTrace

Show = Literal["forward", "backward", "update"]
SHOWS: tuple[Show, ...] = ("forward", "backward", "update")

MAX_UNITS = 12  # a layer larger than this is elided …
HEAD_UNITS = 10  # … to its first HEAD_UNITS units and its last
MAX_STEPS = 6  # a recurrent layer unrolled over more steps than this is elided …
HEAD_STEPS = 4  # … to its first HEAD_STEPS steps and its last
MAX_LISTED = 3  # a vector of more values than this is shown by its norm

UNIT_SIZE = 11.0  # font sizes, px
EDGE_SIZE = 10.0
TITLE_SIZE = 13.0
MARGIN = 20.0
BLOCK_PAD = 8.0  # between a block's lines and its frame
FLOW = 44.0  # the room between a block and its neighbours, for the arrows
# An unrolled recurrent layer's frame, its cells and a truncated h arrow (only in a figure
# that has one, so the others' SVG stays as it was).
UNROLLED_STYLE = """.block.frame { fill: #f6f9f6; }
.cell { fill: #f4f7fb; stroke: #33557a; stroke-width: 1.2; }
.edge.cut { stroke-dasharray: 5 3; }
"""
# Where along an edge (0 at the source circle, 1 at the target's) its label is tried, in turn.
_ALONG = (0.5, 0.4, 0.6, 0.3, 0.7, 0.45, 0.55, 0.35, 0.65, 0.25, 0.75, 0.2, 0.8, 0.15, 0.85)


@dataclass(frozen=True)
class Column:
    """One layer as drawn: its units' indices (1-based) in order, None where units are elided.
    kind "layer": a dense layer's units (z, a, δ; edges and biases); "input": the values a
    layer reads (x, or a block's output a^l); "block": a layer of another type, as `lines`;
    "unrolled": a recurrent layer, its `lines` above its cells, from `arrays`
    (LayerType.unrolled)."""

    layer: int
    title: str
    units: tuple[int | None, ...]
    size: int
    kind: str = "layer"
    lines: tuple[Line, ...] = ()
    arrays: Any = None

    @property
    def framed(self) -> bool:
        """Drawn in a frame (a block, an unrolled layer) rather than as units."""
        return self.kind in ("block", "unrolled")


@dataclass(frozen=True)
class _Unrolled:
    """A recurrent layer's drawing inside its frame, with (0, 0) the frame's top left."""

    width: float
    height: float
    shapes: tuple[Rect | Segment | Label, ...]

    def at(self, x0: float, y0: float) -> list[Rect | Segment | Label]:
        out: list[Rect | Segment | Label] = []
        for s in self.shapes:
            if isinstance(s, Rect):
                b = s.box
                out.append(Rect(Box(b.x0 + x0, b.y0 + y0, b.x1 + x0, b.y1 + y0), s.cls))
            elif isinstance(s, Segment):
                out.append(
                    dataclasses.replace(s, x1=s.x1 + x0, y1=s.y1 + y0, x2=s.x2 + x0, y2=s.y2 + y0)
                )
            else:
                out.append(dataclasses.replace(s, cx=s.cx + x0, cy=s.cy + y0))
        return out


@dataclass(frozen=True)
class _Dense:
    """A dense layer of a layered run, under the names the dense trace gives its arrays."""

    z: np.ndarray
    a: np.ndarray
    delta: np.ndarray
    weights_before: np.ndarray
    grad_weights: np.ndarray
    weights: np.ndarray
    biases_before: np.ndarray
    grad_biases: np.ndarray
    biases: np.ndarray


def _dense(ls: Any) -> _Dense:
    n = ls.z.shape[0]
    return _Dense(
        ls.z.reshape(n, -1),
        ls.a.reshape(n, -1),
        ls.delta.reshape(n, -1),
        ls.params_before["weights"],
        ls.grads["weights"],
        ls.params["weights"],
        ls.params_before["biases"],
        ls.grads["biases"],
        ls.params["biases"],
    )


def block_lines(layer: Any) -> tuple[Line, ...]:
    """A layer drawn as a block: its record's title and key numbers (by default its type's
    name), its shape change, and its activation unless it is the identity."""
    from gradcalc.layers.shapes import show

    if layer.kind.block is not None:
        title, keys = layer.kind.block(layer)
    else:
        title, keys = layer.kind.name, ()
    out = [line(title), *(line(k) for k in keys)]
    out.append(line(f"{show(layer.in_shape)} → {show(layer.out_shape)}"))
    if not getattr(layer.activation, "bare", False):
        out.append(line(f"activation {layer.activation.name}"))
    return tuple(out)


def shown_units(n: int) -> tuple[int | None, ...]:
    if n <= MAX_UNITS:
        return tuple(range(1, n + 1))
    return (*range(1, HEAD_UNITS + 1), None, n)


def shown_steps(steps: int) -> tuple[int | None, ...]:
    if steps <= MAX_STEPS:
        return tuple(range(1, steps + 1))
    return (*range(1, HEAD_STEPS + 1), None, steps)


def _q(name: str, layer: int, *idx: int) -> str:
    return ":".join([name, str(layer), *map(str, idx)])


class _Diagram:
    def __init__(self, trace: Any, st: Any, show: Show, digits: int, example: int) -> None:
        self.trace, self.st, self.example = trace, st, example
        self._memo: dict[Any, Any] = {}
        self.nt = Notation("text", trace.round_to, digits)
        self.backward = show in ("backward", "update")
        self.update = show == "update"
        self.layered = not isinstance(trace, RunTrace)
        # The values an "input" column shows, by l (x for l = 1), and each dense layer's arrays.
        self.values: dict[int, np.ndarray] = {}
        self.dense: dict[int, Any] = {}
        sizes = trace.sizes
        if not self.layered:
            self.columns = [Column(1, "input a¹", shown_units(sizes[0]), sizes[0], "input")]
            self.values[1] = st.layers[0].a_prev
            for lt in st.layers:
                n = sizes[lt.layer - 1]
                title = f"layer {lt.layer}: {lt.activation}"
                self.columns.append(Column(lt.layer, title, shown_units(n), n))
                self.dense[lt.layer] = lt
            return
        from gradcalc.layers.shapes import show as shape

        m = trace.x.shape[0]
        self.columns = []
        if st.layers[0].layer.kind.name == "dense":
            self.columns.append(Column(1, "input a¹", shown_units(sizes[0]), sizes[0], "input"))
            self.values[1] = trace.x.reshape(m, -1)
        else:
            lines = (line(f"{shape(trace.shapes[0])}"),)
            self.columns.append(Column(1, "input x", (), sizes[0], "block", lines))
        for ls in st.layers:
            layer = ls.layer
            l, n = layer.number, sizes[layer.index + 1]
            if layer.kind.name != "dense":
                title = f"layer {l}: {layer.kind.name}"
                if layer.kind.unrolled is not None:
                    arrays = layer.kind.unrolled(ls)
                    column = Column(l, title, (), n, "unrolled", block_lines(layer), arrays)
                else:
                    column = Column(l, title, (), n, "block", block_lines(layer))
                self.columns.append(column)
                continue
            if self.columns[-1].framed:  # the block's output, as the dense layer reads it
                k = sizes[l - 2]
                title = f"a{superscript(str(l - 1))} as read"
                self.columns.append(Column(l - 1, title, shown_units(k), k, "input"))
                self.values[l - 1] = st.layers[l - 3].a.reshape(m, -1)
            title = f"layer {l}: {layer.activation.name}"
            self.columns.append(Column(l, title, shown_units(n), n))
            self.dense[l] = _dense(ls)

    def num(self, value: float) -> str:
        return self.nt.num(float(value))

    def layer(self, l: int) -> Any:
        return self.dense[l]

    # -- what each label says ------------------------------------------------------------------
    def unit_lines(self, c: Column, j: int) -> tuple[Line, ...]:
        e, sub, l = self.example, subscript(str(j)), c.layer
        if c.kind == "input":
            v = self.values[l][e, j - 1]
            if l == 1:
                return (line(f"x{sub} ", (self.num(v), _q("x", 1, j))),)
            return (line(f"a{sub} ", (self.num(v), _q("a", l, j))),)
        lt = self.layer(l)
        out = [
            line(f"z{sub} ", (self.num(lt.z[e, j - 1]), _q("z", l, j))),
            line(f"a{sub} ", (self.num(lt.a[e, j - 1]), _q("a", l, j))),
        ]
        if self.backward:
            out.append(line(f"δ{sub} ", (self.num(lt.delta[e, j - 1]), _q("delta", l, j))))
        return tuple(out)

    def bias_lines(self, l: int, j: int) -> tuple[Line, ...]:
        lt, sub = self.layer(l), subscript(str(j))
        out = [line(f"b{sub} ", (self.num(lt.biases_before[j - 1]), _q("b", l, j)))]
        if self.backward:
            out.append(line("∂C/∂b ", (self.num(lt.grad_biases[j - 1]), _q("grad_b", l, j))))
        if self.update:
            out.append(line("new b ", (self.num(lt.biases[j - 1]), _q("new_b", l, j))))
        return tuple(out)

    def edge_lines(self, l: int, j: int, k: int) -> tuple[Line, ...]:
        lt = self.layer(l)
        out = [line("w ", (self.num(lt.weights_before[j - 1, k - 1]), _q("w", l, j, k)))]
        if self.backward:
            g = lt.grad_weights[j - 1, k - 1]
            out.append(line("∂C/∂w ", (self.num(g), _q("grad_w", l, j, k))))
        if self.update:
            out.append(line("new w ", (self.num(lt.weights[j - 1, k - 1]), _q("new_w", l, j, k))))
        return tuple(out)

    def target_lines(self, j: int) -> tuple[Line, ...]:
        m = self.trace.x.shape[0]
        y = self.trace.y.reshape(m, -1)[self.example, j - 1]
        return (line(f"y{subscript(str(j))} ", (self.num(y), _q("y", len(self.trace.sizes), j))),)

    # -- a recurrent layer unrolled ------------------------------------------------------------
    def vector(self, name: str, values: np.ndarray, q: str, norm: bool = False) -> Line:
        """`name` and its values, each marked (q:i for i = 1…); more than MAX_LISTED values (or
        `norm`, with more than one) by their norm (h:2:1 marked h_norm:2:1)."""
        if values.size > MAX_LISTED or (norm and values.size > 1):
            kind, where = q.split(":", 1)
            return line(
                f"‖{name}‖ ", (self.num(float(np.linalg.norm(values))), f"{kind}_norm:{where}")
            )
        if values.size == 1:
            return line(f"{name} ", (self.num(values[0]), f"{q}:1"))
        spans: list[Any] = [f"{name} ("]
        for i, v in enumerate(values, 1):
            spans += [(self.num(v), f"{q}:{i}"), ", " if i < values.size else ")"]
        return line(*spans)

    def step_lines(self, c: Column, t: int) -> tuple[tuple[Line, ...], tuple[Line, ...]]:
        """What cell t shows above it (h_t, c_t, ∂C/∂h_t) and below it (x_t)."""
        e, l, sub, arrays = self.example, c.layer, subscript(str(t)), c.arrays
        above = [self.vector(f"h{sub}", arrays["h"][e, t], _q("h", l, t))]
        if "c" in arrays:
            above.append(self.vector(f"c{sub}", arrays["c"][e, t], _q("c", l, t)))
        if self.backward and "grad_h" in arrays:
            grad = arrays["grad_h"][e, t - 1]
            above.append(self.vector(f"∂C/∂h{sub}", grad, _q("grad_h", l, t), norm=True))
        below = (self.vector(f"x{sub}", arrays["x"][e, t - 1], _q("xt", l, t)),)
        return tuple(above), below

    def unrolled(self, c: Column) -> _Unrolled:
        """Column c's cells over time, laid out once (the layout's gaps do not change it)."""
        key = ("unrolled", c.layer)
        if key not in self._memo:
            self._memo[key] = self._unroll(c)
        return self._memo[key]

    def _unroll(self, c: Column) -> _Unrolled:
        arrays, l, e = c.arrays, c.layer, self.example
        steps = shown_steps(arrays["x"].shape[1])
        cell = "".join(text for text, _ in c.lines[0]).upper()  # its type's name: RNN, LSTM
        lines = {t: self.step_lines(c, t) for t in steps if t is not None}
        texts = {t: (line(cell), line(f"t = {t}")) for t in lines}
        start = [self.vector("h₀", arrays["h"][e, 0], _q("h", l, 0))]
        if "c" in arrays:
            start.append(self.vector("c₀", arrays["c"][e, 0], _q("c", l, 0)))
        first = Label(0, 0, tuple(start), EDGE_SIZE)
        more = arrays["x"].shape[1] - HEAD_STEPS - 1
        elided = (line(f"⋯ {more} more"), line("steps"))
        probe = lambda ls, size=EDGE_SIZE: Label(0, 0, ls, size)  # noqa: E731
        cell_w = max(probe(t, UNIT_SIZE).width for t in texts.values()) + 2 * BLOCK_PAD
        cell_h = probe(next(iter(texts.values())), UNIT_SIZE).height + BLOCK_PAD
        up_h = max(probe(a).height for a, _ in lines.values())
        down_h = max(probe(b).height for _, b in lines.values())
        slot = max(
            [cell_w]
            + [max(probe(a).width, probe(b).width) for a, b in lines.values()]
            + ([probe(elided).width] if None in steps else [])
        )
        gap = FLOW * 0.8
        title = Label(0, 0, c.lines, UNIT_SIZE, "block-text", boxed=False)
        y_title = BLOCK_PAD + title.height / 2
        y_up = BLOCK_PAD + title.height + 8 + up_h / 2
        y_cell = y_up + up_h / 2 + gap / 2 + cell_h / 2
        y_down = y_cell + cell_h / 2 + gap / 2 + down_h / 2
        height = y_down + down_h / 2 + BLOCK_PAD
        x_first = BLOCK_PAD + first.width / 2
        x = BLOCK_PAD + first.width + gap + slot / 2
        centres = []
        for _t in steps:
            centres.append(x)
            x += slot + gap
        width = max(x - gap - slot / 2 + slot / 2 + BLOCK_PAD, title.width + 2 * BLOCK_PAD)
        # The title centred over the frame (the width may be the title's).
        out: list[Rect | Segment | Label] = [
            dataclasses.replace(title, cx=width / 2, cy=y_title),
            dataclasses.replace(first, cx=x_first, cy=y_cell, cls="state"),
        ]
        cuts = set(arrays["cuts"])
        left = BLOCK_PAD + first.width  # where the h arrow into the next cell starts
        for n, (t, cx) in enumerate(zip(steps, centres, strict=True)):
            if t is None:
                lb = Label(cx, y_cell, elided, EDGE_SIZE, "elided")
                out += [lb, Segment(left + 2, y_cell, lb.box.x0 - 2, y_cell, "edge elided")]
                left = lb.box.x1
                continue
            box = Box(cx - cell_w / 2, y_cell - cell_h / 2, cx + cell_w / 2, y_cell + cell_h / 2)
            cut = n > 0 and steps[n - 1] is not None and steps[n - 1] in cuts
            out.append(
                Segment(left + 2, y_cell, box.x0 - 1, y_cell, "edge cut" if cut else "edge", True)
            )
            left = box.x1
            above, below = lines[t]
            up = Label(cx, y_up, above, EDGE_SIZE, "state")
            down = Label(cx, y_down, below, EDGE_SIZE, "state")
            out += [
                Rect(box, "cell"),
                Label(cx, y_cell, texts[t], UNIT_SIZE, "cell-text", boxed=False),
                Segment(cx, box.y0 - 1, cx, up.box.y1 + 2, "edge", True),
                Segment(cx, down.box.y0 - 2, cx, box.y1 + 1, "edge", True),
                up,
                down,
            ]
        return _Unrolled(width, height, tuple(out))

    # -- layout --------------------------------------------------------------------------------
    def build(self) -> Figure:
        units = {
            (c.layer, j): self.unit_lines(c, j)
            for c in self.columns
            if not c.framed
            for j in c.units
            if j is not None
        }
        r = max(
            max(
                (math.hypot(lb.width / 2, lb.height / 2) for lb in _probes(units.values())),
                default=0.0,
            )
            + 4,
            20.0,
        )
        biases = {
            (c.layer, j): self.bias_lines(c.layer, j)
            for c in self.columns
            if c.kind == "layer"
            for j in c.units
            if j is not None
        }
        bias_h = max((lb.height for lb in _probes(biases.values(), EDGE_SIZE)), default=0.0)
        bias_w = max((lb.width for lb in _probes(biases.values(), EDGE_SIZE)), default=0.0)
        first = next((c.layer for c in self.columns if c.kind == "layer"), None)
        probe = [] if first is None else [self.edge_lines(first, 1, 1)]
        edge = _probes(probe, EDGE_SIZE)[0] if probe else Label(0, 0, ())
        gap_x = 2 * r + max(2.2 * edge.width, bias_w)
        gap_y = max(2 * r + bias_h + 16, edge.height * 1.6)
        for _ in range(16):
            fig = self._draw(units, biases, r, gap_x, gap_y, bias_h, bias_w)
            if fig is not None:
                return fig
            gap_x *= 1.25
            gap_y *= 1.12
        raise AssertionError("no room for the edge labels")  # pragma: no cover

    def _half(self, c: Column, r: float, bias_w: float) -> float:
        """Half a column's width beside a block: its widest part (units, biases, title)."""
        title = line_width(line(c.title), UNIT_SIZE) / 2
        if c.kind == "block":
            return max(Label(0, 0, c.lines, UNIT_SIZE).width / 2 + BLOCK_PAD, title)
        if c.kind == "unrolled":
            return max(self.unrolled(c).width / 2, title)
        elided = line_width(line("⋮ 9999 more"), UNIT_SIZE) / 2 if None in c.units else 0.0
        return max(r, title, elided, bias_w / 2 if c.kind == "layer" else 0.0)

    def _draw(
        self,
        units: dict[tuple[int, int], tuple[Line, ...]],
        biases: dict[tuple[int, int], tuple[Line, ...]],
        r: float,
        gap_x: float,
        gap_y: float,
        bias_h: float,
        bias_w: float = 0.0,
    ) -> Figure | None:
        """The figure with these gaps, or None when some edge label finds no free place."""
        trace, st = self.trace, self.st
        top = MARGIN + 2.2 * TITLE_SIZE + 2.5 * UNIT_SIZE + bias_h + 6
        tallest = max(max(len(c.units) for c in self.columns), 1)
        blocks = {
            i: Label(0, 0, c.lines, UNIT_SIZE, "block-text", boxed=False)
            for i, c in enumerate(self.columns)
            if c.kind == "block"
        }
        unrolled = {i: self.unrolled(c) for i, c in enumerate(self.columns) if c.kind == "unrolled"}
        base = 2 * r + (tallest - 1) * gap_y
        span = max(
            [base]
            + [lb.height + 2 * BLOCK_PAD for lb in blocks.values()]
            + [u.height for u in unrolled.values()]
        )
        middle = top + span / 2
        centre: dict[tuple[int, int | None], tuple[float, float]] = {}
        shapes: list[Circle | Label | Rect | Segment] = []
        labels: list[Label] = []
        frames: dict[int, Box] = {}
        inner: dict[int, list[Label]] = {}  # the labels inside an unrolled layer's frame
        x0 = MARGIN + r
        if 0 in blocks:
            x0 = MARGIN + self._half(self.columns[0], r, bias_w)
        # Unit columns side by side are gap_x apart; a block and its neighbours, their halves
        # and the arrows' room.
        pairs, extra, xs = 0, 0.0, []
        for i, c in enumerate(self.columns):
            if i:
                prev = self.columns[i - 1]
                if prev.framed or c.framed:
                    extra += self._half(prev, r, bias_w) + FLOW + self._half(c, r, bias_w)
                else:
                    pairs += 1
            x = x0 + pairs * gap_x + extra
            xs.append(x)
            offset = (tallest - len(c.units)) * gap_y / 2 + (span - base) / 2
            for n, j in enumerate(c.units):
                centre[c.layer, j] = (x, top + r + offset + n * gap_y)
            labels.append(
                Label(x, MARGIN + 2.2 * TITLE_SIZE + UNIT_SIZE, (line(c.title),), UNIT_SIZE, "head")
            )
            if i in blocks:
                lb = blocks[i] = Label(x, middle, c.lines, UNIT_SIZE, "block-text", boxed=False)
                frames[i] = lb.box.grown(BLOCK_PAD)
                shapes.append(Rect(frames[i], "block"))
            if i in unrolled:
                u = unrolled[i]
                frames[i] = Box(x - u.width / 2, middle - u.height / 2, x + u.width / 2, 0)
                frames[i] = dataclasses.replace(frames[i], y1=frames[i].y0 + u.height)
                shapes.append(Rect(frames[i], "block frame"))
                for s in u.at(frames[i].x0, frames[i].y0):
                    if isinstance(s, Label):
                        inner.setdefault(i, []).append(s)
                    else:
                        shapes.append(s)
        bottom = top + span

        # Edges first, under everything.
        edges: list[tuple[int, int, int, Segment]] = []
        for i in range(1, len(self.columns)):
            prev, c = self.columns[i - 1], self.columns[i]
            if prev.framed or c.framed:
                shapes += self._flow(i, xs, frames, centre, r, middle)
                continue
            for j in c.units:
                for k in prev.units:
                    (xa, ya), (xb, yb) = centre[prev.layer, k], centre[c.layer, j]
                    d = math.hypot(xb - xa, yb - ya)
                    ux, uy = (xb - xa) / d, (yb - ya) / d
                    seg = Segment(
                        xa + ux * r,
                        ya + uy * r,
                        xb - ux * r,
                        yb - uy * r,
                        "edge" if j is not None and k is not None else "edge elided",
                    )
                    shapes.append(seg)
                    if j is not None and k is not None:
                        edges.append((c.layer, j, k, seg))

        for c in self.columns:
            for j in c.units:
                x, y = centre[c.layer, j]
                if j is None:
                    more = c.size - HEAD_UNITS - 1
                    labels.append(
                        Label(x, y, (line(f"⋮ {more} more"), line("units")), UNIT_SIZE, "elided")
                    )
                    continue
                cls = "unit input" if c.kind == "input" else "unit"
                shapes.append(Circle(x, y, r, cls))
                labels.append(Label(x, y, units[c.layer, j], UNIT_SIZE, "value", boxed=False))
                if c.kind == "layer":
                    labels.append(
                        Label(x, y - r - 3 - bias_h / 2, biases[c.layer, j], EDGE_SIZE, "bias")
                    )
        for i in range(len(self.columns)):  # each frame's text, left to right
            labels += [blocks[i]] if i in blocks else inner.get(i, [])
        last = self.columns[-1]
        right = xs[-1] + (frames[len(xs) - 1].x1 - xs[-1] if last.framed else r)
        if last.kind == "layer":  # the target beside the output units (a block's: in the JSON)
            for j in last.units:
                if j is not None:
                    x, y = centre[last.layer, j]
                    lb = Label(
                        x + r + 6, y, self.target_lines(j), UNIT_SIZE, "target", anchor="start"
                    )
                    labels.append(lb)
                    right = max(right, lb.box.x1)
        right = max([right] + [lb.box.x1 for lb in labels if lb.cls == "head"])

        placer = Placer(
            [
                Circle(*centre[c.layer, j], r).box.grown(1)
                for c in self.columns
                if not c.framed
                for j in c.units
            ]
            + [lb.box for lb in labels]
            + list(frames.values())
        )
        for l, j, k, seg in edges:
            lines = self.edge_lines(l, j, k)
            for t in _ALONG:
                x = seg.x1 + t * (seg.x2 - seg.x1)
                y = seg.y1 + t * (seg.y2 - seg.y1)
                lb = Label(x, y, lines, EDGE_SIZE, "weight")
                if placer.free(lb.box):
                    placer.add(lb.box)
                    labels.append(lb)
                    break
            else:
                return None

        # The cost, and what the picture shows.
        m = trace.x.shape[0]
        loss = Label(
            MARGIN,
            bottom + 10 + 0.7 * UNIT_SIZE,
            (line(f"C ({trace.loss}) ", (self.num(st.loss), "loss")),),
            UNIT_SIZE,
            "loss",
            anchor="start",
        )
        shown = {"forward": "z, a", "backward": "z, a, δ", "update": "z, a, δ"}
        what = shown["update" if self.update else "backward" if self.backward else "forward"]
        notes = []
        if self.dense:
            notes.append(
                f"circles: {what} of unit j"
                + (f", example {self.example + 1} of {m}" if m > 1 else "")
                + "; edges k → j: wˡⱼₖ"
                + (", ∂C/∂wˡⱼₖ" if self.backward else "")
                + (", the new wˡⱼₖ" if self.update else "")
                + "; above each unit: its bias bˡⱼ",
            )
        recurrent = [c for c in self.columns if c.kind == "unrolled"]
        if recurrent:
            notes.append(
                "recurrent layers unrolled in time: cell t reads x_t and h_(t−1) and gives h_t"
                + (" (and c_t)" if any("c" in c.arrays for c in recurrent) else "")
                + (f", example {self.example + 1} of {m}" if m > 1 else "")
                + (
                    "; a dashed h arrow is truncated: no gradient goes back along it"
                    if any(c.arrays["cuts"] for c in recurrent)
                    else ""
                )
            )
            if self.backward:
                notes.append(
                    "∂C/∂h_t: all of the gradient reaching h_t (from the output at t and from "
                    "t+1); where H > 1, its norm ‖∂C/∂h_t‖"
                )
        if any(c.kind == "block" and c.layer > 1 for c in self.columns):
            notes.append(
                "blocks: the other layers, with their settings and shapes (one example's); "
                "their numbers are in the tables and --explain"
            )
        if self.layered:
            ahead = st.layers[0].params_ahead is not None
        else:
            ahead = st.layers[0].weights_ahead is not None
        if ahead:
            notes.append(
                f"{trace.optimizer} looks ahead: z, a, δ and the gradients are those of the "
                "look-ahead parameters θ̃; w and b are θ, which the update moves"
            )
        caption = Label(
            MARGIN,
            loss.box.y1 + 4 + 0.7 * EDGE_SIZE,
            tuple(line(t) for t in notes),
            EDGE_SIZE,
            "muted",
            boxed=False,
            anchor="start",
        )
        title = Label(
            MARGIN,
            MARGIN + TITLE_SIZE * 0.6,
            (
                line(
                    f"{_source(trace)}: step {st.step} of {trace.n_steps}, "
                    f"η = {trace.learning_rate:g}"
                ),
            ),
            TITLE_SIZE,
            "title",
            boxed=False,
            anchor="start",
        )
        labels += [loss, caption, title]
        width = max(right, caption.box.x1, title.box.x1) + MARGIN
        height = caption.box.y1 + MARGIN
        fig = Figure(width, height, f"{_source(trace)}, step {st.step}")
        if recurrent:
            fig.style = UNROLLED_STYLE
        fig.shapes.extend(shapes)
        fig.shapes.extend(labels)
        return fig

    def _flow(
        self,
        i: int,
        xs: list[float],
        frames: dict[int, Box],
        centre: dict[tuple[int, int | None], tuple[float, float]],
        r: float,
        middle: float,
    ) -> list[Segment]:
        """The arrows into column i from the one before, where either is a block: block to
        block one arrow; a block to units (or units to a block) one line a unit."""
        prev, c = self.columns[i - 1], self.columns[i]
        start = frames[i - 1].x1 if prev.framed else None
        end = frames[i].x0 if c.framed else None
        if start is not None and end is not None:
            return [Segment(start, middle, end, middle, "edge", arrow=True)]
        if start is not None:
            return [
                Segment(start, middle, xs[i] - r, centre[c.layer, j][1], "edge", arrow=True)
                for j in c.units
                if j is not None
            ]
        assert end is not None
        return [
            Segment(xs[i - 1] + r, centre[prev.layer, j][1], end, middle, "edge", arrow=True)
            for j in prev.units
            if j is not None
        ]


def _source(trace: Any) -> str:
    return trace.source.rsplit("/", 1)[-1]


def _probes(texts: object, size: float = UNIT_SIZE) -> list[Label]:
    return [Label(0, 0, t, size) for t in texts]  # type: ignore[attr-defined]


def build(trace: Any, st: Any, show: Show = "forward", digits: int = 3, example: int = 0) -> Figure:
    """Step `st` of `trace` drawn as the sheet draws the network, showing up to `show`
    (forward: z, a, w, b; backward: and δ, ∂C/∂w, ∂C/∂b; update: and the new w and b). The
    trace is a dense run's (RunTrace, StepTrace) or a layered one's (LayeredRun,
    LayeredStepTrace): its dense layers drawn as units, the others as blocks."""
    return _Diagram(trace, st, show, digits, example).build()
