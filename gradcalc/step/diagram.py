"""`step --diagram`: one step of the network drawn as the sheet draws it.

Each layer is a column of circles (unit j of layer l shows z^l_j and a^l_j, and δ^l_j after the
backward pass); each edge k → j carries w^l_jk (and ∂C/∂w^l_jk and the new w^l_jk when asked);
each unit's bias sits above its circle. The numbers are those of one example of the batch (the
first unless asked). A layer of more than MAX_UNITS units shows its first HEAD_UNITS units and
its last, and a count of the rest, as the tables do.

The layout is a list of columns: a dense layer is a column of units. Another kind of layer will
be a column of its own kind (a block with its shapes and key numbers) placed the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from gradcalc.doc.layout import Circle, Figure, Label, Line, Placer, Segment, line
from gradcalc.doc.notation import Notation, subscript
from gradcalc.step.trace import LayerTrace, RunTrace, StepTrace

Show = Literal["forward", "backward", "update"]
SHOWS: tuple[Show, ...] = ("forward", "backward", "update")

MAX_UNITS = 12  # a layer larger than this is elided …
HEAD_UNITS = 10  # … to its first HEAD_UNITS units and its last

UNIT_SIZE = 11.0  # font sizes, px
EDGE_SIZE = 10.0
TITLE_SIZE = 13.0
MARGIN = 20.0
# Where along an edge (0 at the source circle, 1 at the target's) its label is tried, in turn.
_ALONG = (0.5, 0.4, 0.6, 0.3, 0.7, 0.45, 0.55, 0.35, 0.65, 0.25, 0.75, 0.2, 0.8, 0.15, 0.85)


@dataclass(frozen=True)
class Column:
    """One layer as drawn: its units' indices (1-based) in order, None where units are elided."""

    layer: int
    title: str
    units: tuple[int | None, ...]
    size: int


def shown_units(n: int) -> tuple[int | None, ...]:
    if n <= MAX_UNITS:
        return tuple(range(1, n + 1))
    return (*range(1, HEAD_UNITS + 1), None, n)


def _q(name: str, layer: int, *idx: int) -> str:
    return ":".join([name, str(layer), *map(str, idx)])


class _Diagram:
    def __init__(
        self, trace: RunTrace, st: StepTrace, show: Show, digits: int, example: int
    ) -> None:
        self.trace, self.st, self.example = trace, st, example
        self.nt = Notation("text", trace.round_to, digits)
        self.backward = show in ("backward", "update")
        self.update = show == "update"
        sizes = trace.sizes
        self.columns = [Column(1, "input a¹", shown_units(sizes[0]), sizes[0])]
        for lt in st.layers:
            n = sizes[lt.layer - 1]
            title = f"layer {lt.layer}: {lt.activation}"
            self.columns.append(Column(lt.layer, title, shown_units(n), n))

    def num(self, value: float) -> str:
        return self.nt.num(float(value))

    def layer(self, l: int) -> LayerTrace:
        return self.st.layers[l - 2]

    # -- what each label says ------------------------------------------------------------------
    def unit_lines(self, l: int, j: int) -> tuple[Line, ...]:
        e, sub = self.example, subscript(str(j))
        if l == 1:
            x = self.st.layers[0].a_prev[e, j - 1]
            return (line(f"x{sub} ", (self.num(x), _q("x", 1, j))),)
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
        y = self.trace.y[self.example, j - 1]
        return (line(f"y{subscript(str(j))} ", (self.num(y), _q("y", len(self.trace.sizes), j))),)

    # -- layout --------------------------------------------------------------------------------
    def build(self) -> Figure:
        units = {
            (c.layer, j): self.unit_lines(c.layer, j)
            for c in self.columns
            for j in c.units
            if j is not None
        }
        r = max(
            max(math.hypot(lb.width / 2, lb.height / 2) for lb in _probes(units.values())) + 4,
            20.0,
        )
        biases = {
            (c.layer, j): self.bias_lines(c.layer, j)
            for c in self.columns[1:]
            for j in c.units
            if j is not None
        }
        bias_h = max((lb.height for lb in _probes(biases.values(), EDGE_SIZE)), default=0.0)
        bias_w = max((lb.width for lb in _probes(biases.values(), EDGE_SIZE)), default=0.0)
        edge = _probes([self.edge_lines(2, 1, 1)], EDGE_SIZE)[0]
        gap_x = 2 * r + max(2.2 * edge.width, bias_w)
        gap_y = max(2 * r + bias_h + 16, edge.height * 1.6)
        for _ in range(16):
            fig = self._draw(units, biases, r, gap_x, gap_y, bias_h)
            if fig is not None:
                return fig
            gap_x *= 1.25
            gap_y *= 1.12
        raise AssertionError("no room for the edge labels")  # pragma: no cover

    def _draw(
        self,
        units: dict[tuple[int, int], tuple[Line, ...]],
        biases: dict[tuple[int, int], tuple[Line, ...]],
        r: float,
        gap_x: float,
        gap_y: float,
        bias_h: float,
    ) -> Figure | None:
        """The figure with these gaps, or None when some edge label finds no free place."""
        trace, st = self.trace, self.st
        top = MARGIN + 2.2 * TITLE_SIZE + 2.5 * UNIT_SIZE + bias_h + 6
        tallest = max(len(c.units) for c in self.columns)
        centre: dict[tuple[int, int | None], tuple[float, float]] = {}
        shapes: list[Circle | Label | Segment] = []
        labels: list[Label] = []
        x0 = MARGIN + r
        for i, c in enumerate(self.columns):
            x = x0 + i * gap_x
            offset = (tallest - len(c.units)) * gap_y / 2
            for n, j in enumerate(c.units):
                centre[c.layer, j] = (x, top + r + offset + n * gap_y)
            labels.append(
                Label(x, MARGIN + 2.2 * TITLE_SIZE + UNIT_SIZE, (line(c.title),), UNIT_SIZE, "head")
            )
        bottom = top + 2 * r + (tallest - 1) * gap_y

        # Edges first, under everything.
        edges: list[tuple[int, int, int, Segment]] = []
        for prev, c in zip(self.columns, self.columns[1:], strict=False):
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
                cls = "unit input" if c.layer == 1 else "unit"
                shapes.append(Circle(x, y, r, cls))
                labels.append(Label(x, y, units[c.layer, j], UNIT_SIZE, "value", boxed=False))
                if c.layer > 1:
                    labels.append(
                        Label(x, y - r - 3 - bias_h / 2, biases[c.layer, j], EDGE_SIZE, "bias")
                    )
        last = self.columns[-1]
        right = x0 + (len(self.columns) - 1) * gap_x + r
        for j in last.units:
            if j is not None:
                x, y = centre[last.layer, j]
                lb = Label(x + r + 6, y, self.target_lines(j), UNIT_SIZE, "target", anchor="start")
                labels.append(lb)
                right = max(right, lb.box.x1)

        placer = Placer(
            [Circle(*centre[c.layer, j], r).box.grown(1) for c in self.columns for j in c.units]
            + [lb.box for lb in labels]
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
        notes = [
            f"circles: {what} of unit j"
            + (f", example {self.example + 1} of {m}" if m > 1 else "")
            + "; edges k → j: wˡⱼₖ"
            + (", ∂C/∂wˡⱼₖ" if self.backward else "")
            + (", the new wˡⱼₖ" if self.update else "")
            + "; above each unit: its bias bˡⱼ",
        ]
        if st.layers[0].weights_ahead is not None:
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
        fig.shapes.extend(shapes)
        fig.shapes.extend(labels)
        return fig


def _source(trace: RunTrace) -> str:
    return trace.source.rsplit("/", 1)[-1]


def _probes(texts: object, size: float = UNIT_SIZE) -> list[Label]:
    return [Label(0, 0, t, size) for t in texts]  # type: ignore[attr-defined]


def build(
    trace: RunTrace, st: StepTrace, show: Show = "forward", digits: int = 3, example: int = 0
) -> Figure:
    """Step `st` of `trace` drawn as the sheet draws the network, showing up to `show`
    (forward: z, a, w, b; backward: and δ, ∂C/∂w, ∂C/∂b; update: and the new w and b)."""
    return _Diagram(trace, st, show, digits, example).build()
