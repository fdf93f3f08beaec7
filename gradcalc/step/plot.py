"""`step --plot`: the loss per step, and the norms of each layer's gradient and update.

The curves come from the streamed summaries, a step at a time, into at most BUCKETS buckets of
consecutive steps (their least, mean and greatest value): when the buckets fill, neighbours
merge and each bucket covers twice the steps. Memory stays flat however many steps run, as the
terminal's sparkline does; the plot draws each bucket's mean, and its range as a band.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gradcalc.doc.layout import Box, Circle, Figure, Label, Polyline, Segment, line
from gradcalc.doc.notation import superscript
from gradcalc.doc.numbers import Style
from gradcalc.step.trace import StepSummary, StepTrace

BUCKETS = 512

WIDTH = 760.0
PANEL = 230.0  # height of each panel's plotting area
LEFT, RIGHT, TOP = 78.0, 170.0, 60.0
SIZE = 11.0


class Buckets:
    """Values of consecutive steps (1, 2, …, in order), `columns` a step, in fixed memory."""

    def __init__(self, columns: int, capacity: int = BUCKETS) -> None:
        self.capacity = capacity - capacity % 2
        self.per = 1  # steps a bucket
        self.lo = np.full((self.capacity, columns), np.inf)
        self.hi = np.full((self.capacity, columns), -np.inf)
        self.total = np.zeros((self.capacity, columns))
        self.count = np.zeros(self.capacity, dtype=np.int64)
        self.steps = 0

    def add(self, step: int, values: np.ndarray) -> None:
        i = (step - 1) // self.per
        if i >= self.capacity:
            self._merge()
            i = (step - 1) // self.per
        np.minimum(self.lo[i], values, out=self.lo[i])
        np.maximum(self.hi[i], values, out=self.hi[i])
        self.total[i] += values
        self.count[i] += 1
        self.steps = step

    def _merge(self) -> None:
        half = self.capacity // 2
        self.lo[:half] = np.minimum(self.lo[0::2], self.lo[1::2])
        self.hi[:half] = np.maximum(self.hi[0::2], self.hi[1::2])
        self.total[:half] = self.total[0::2] + self.total[1::2]
        self.count[:half] = self.count[0::2] + self.count[1::2]
        self.lo[half:], self.hi[half:], self.total[half:], self.count[half:] = np.inf, -np.inf, 0, 0
        self.per *= 2

    def series(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per filled bucket: its middle step, and the least, mean and greatest values."""
        n = int(np.count_nonzero(self.count))
        first = np.arange(n) * self.per + 1
        last = np.minimum(first + self.per - 1, self.steps)
        middle = (first + last) / 2
        mean = self.total[:n] / self.count[:n, None]
        return middle, self.lo[:n], mean, self.hi[:n]


class Recorder:
    """Takes each step of the stream: its cost and its layers' ‖∂C/∂w^l‖ and ‖Δw^l‖."""

    title = "‖∂C/∂wˡ‖ (solid) and ‖Δwˡ‖ (dashed) per layer"

    def __init__(self, layers: int) -> None:
        self.layers = layers
        self.buckets = Buckets(1 + 2 * layers)
        self.names = [
            (f"‖∂C/∂w{superscript(str(i + 2))}‖", f"‖Δw{superscript(str(i + 2))}‖")
            for i in range(layers)
        ]

    def add(self, st: StepTrace | StepSummary) -> None:
        from gradcalc.step.engine import summarize

        norms = summarize(st).norms
        assert norms is not None
        values = np.concatenate(([st.loss], norms[:, 0], norms[:, 2]))
        self.buckets.add(st.step, values)


class LayeredRecorder:
    """The same for a layered run (gradcalc/layers/), one pair of curves per parameter of each
    layer that has parameters (‖∂C/∂K²‖ and ‖ΔK²‖, ‖∂C/∂b²‖ and ‖Δb²‖…): from each step's
    full record, which the pictures ask the stream for (its summary sums a layer's parameters)."""

    title = "‖∂C/∂θˡ‖ (solid) and ‖Δθˡ‖ (dashed) per layer and parameter"

    def __init__(self, layers: tuple[Any, ...]) -> None:
        self.params = [(layer.index, name) for layer in layers for name in layer.params]
        self.layers = len(self.params)
        self.buckets = Buckets(1 + 2 * self.layers)
        self.names = []
        for i, name in self.params:
            layer = layers[i]
            symbol = layer.kind.symbols.get(name, name) + superscript(str(layer.number))
            self.names.append((f"‖∂C/∂{symbol}‖", f"‖Δ{symbol}‖"))

    def add(self, st: Any) -> None:
        from gradcalc.functions.training import norm, update_norm

        grads, moved = [], []
        with np.errstate(over="ignore"):
            for i, name in self.params:
                ls = st.layers[i]
                grads.append(norm(ls.grads[name]))
                moved.append(update_norm(ls.params[name], ls.params_before[name]))
        self.buckets.add(st.step, np.array([st.loss, *grads, *moved]))


def _nice(span: float) -> float:
    raw = span / 5
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


class _Axis:
    """A linear or log10 map from values to pixels (`a` at pixel `pa`, `b` at `pb`)."""

    def __init__(self, lo: float, hi: float, pa: float, pb: float, log: bool) -> None:
        self.log = log
        if log:
            lo, hi = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
            if lo == hi:
                hi = lo + 1
        elif lo == hi:
            lo, hi = lo - (abs(lo) or 1) * 0.5, hi + (abs(hi) or 1) * 0.5
        self.a, self.b, self.pa, self.pb = float(lo), float(hi), pa, pb

    def __call__(self, v: float) -> float:
        if self.log:
            if v <= 0:  # a zero (an update that did not move) sits on the axis
                return self.pa
            v = math.log10(v)
        return self.pa + (v - self.a) / (self.b - self.a) * (self.pb - self.pa)

    def ticks(self) -> list[float]:
        if self.log:
            every = max(1, math.ceil((self.b - self.a) / 6))
            return [10.0**e for e in range(int(self.a), int(self.b) + 1, every)]
        d = _nice(self.b - self.a)
        start = math.ceil(self.a / d) * d
        return [start + i * d for i in range(int((self.b - start) / d + 1e-9) + 1)]

    def data(self, name: str) -> tuple[str, str]:
        scale = "log" if self.log else "linear"
        return name, f"{self.a!r} {self.pa!r} {self.b!r} {self.pb!r} {scale}"


def _range(lo: np.ndarray, hi: np.ndarray) -> tuple[float, float, bool]:
    """The values' range, and whether to draw it on a log axis: when none is negative and the
    positive ones span more than two decades (zeros then sit on the axis)."""
    low, high = float(lo.min()), float(hi.max())
    positive = lo[lo > 0]
    if low >= 0 and positive.size and high / float(positive.min()) > 100:
        return float(positive.min()), high, True
    return low, high, False


COLOURS = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad", "#d68910", "#17727a", "#7f8c8d")


def build(recorder: Recorder | LayeredRecorder, trace: Any, digits: int = 3) -> Figure:
    """Two panels: the loss per step, then each layer's gradient and update norms."""
    num = Style(digits)
    steps, lo, mean, hi = recorder.buckets.series()
    n = recorder.buckets.steps
    style = "".join(
        f".s{i} {{ stroke: {c}; }} .f{i} {{ fill: {c}; }}" for i, c in enumerate(COLOURS)
    )
    style += ".dashed { stroke-dasharray: 6 4; } .dot { stroke: none; }"
    source = trace.source.rsplit("/", 1)[-1]
    fig = Figure(WIDTH, TOP + 2 * PANEL + 120, f"{source}: loss and gradient norms", style=style)
    fig.shapes.append(
        Label(
            LEFT - 60,
            18,
            (line(f"{source}: {n:,} step{'s' if n != 1 else ''}, loss {trace.loss}"),),
            13,
            "title",
            boxed=False,
            anchor="start",
        )
    )
    x_axis = _Axis(1.0, float(max(n, 2)), LEFT, WIDTH - RIGHT, False)
    if n == 1:
        x_axis = _Axis(0.0, 2.0, LEFT, WIDTH - RIGHT, False)
    layers = recorder.layers
    per = recorder.buckets.per
    bucketed = f" ({per:,} steps a point; the band: least to greatest)" if per > 1 else ""
    panels = [("loss C per step" + bucketed, [(0, "C", 0, False)])]
    if layers:  # (a network without parameters, pooling alone, has no norms to draw)
        panels.append(
            (
                recorder.title,
                [(1 + i, g, i, False) for i, (g, _) in enumerate(recorder.names)]
                + [(1 + layers + i, d, i, True) for i, (_, d) in enumerate(recorder.names)],
            )
        )
    if len(panels) == 1:
        fig.height -= PANEL + 60
    for p, (title, series) in enumerate(panels):
        y0 = TOP + p * (PANEL + 60)
        cols = [c for c, *_ in series]
        vlo, vhi, log = _range(lo[:, cols], hi[:, cols])
        y_axis = _Axis(vlo, vhi, y0 + PANEL, y0, log)
        _frame(fig, x_axis, y_axis, y0, title, num)
        for c, name, colour, dashed in series:
            ys = [y_axis(v) for v in mean[:, c]]
            xs = [x_axis(s) for s in steps]
            data = (("series", name), x_axis.data("xmap"), y_axis.data("ymap"))
            if recorder.buckets.per > 1:
                band = [*zip(xs, [y_axis(v) for v in hi[:, c]], strict=True)]
                band += [*zip(xs[::-1], [y_axis(v) for v in lo[::-1, c]], strict=True)]
                fig.shapes.append(Polyline(tuple(band), f"band f{colour % 7}", closed=True))
            cls = f"curve s{colour % 7}" + (" dashed" if dashed else "")
            fig.shapes.append(Polyline(tuple(zip(xs, ys, strict=True)), cls, data))
            if len(xs) <= 40:
                fig.shapes += [
                    Circle(x, y, 2.5, f"dot f{colour % 7}") for x, y in zip(xs, ys, strict=True)
                ]
        # The legend, at the right of the panel: rows closer (and smaller) for many layers.
        pitch = min(18.0, (PANEL - 8) / len(series))
        size = min(10.0, pitch / 1.3)
        for i, (c, name, colour, dashed) in enumerate(series):
            ly = y0 + 8 + i * pitch
            fig.shapes.append(
                Segment(
                    WIDTH - RIGHT + 14,
                    ly,
                    WIDTH - RIGHT + 40,
                    ly,
                    f"curve s{colour % 7}" + (" dashed" if dashed else ""),
                )
            )
            last = float(mean[-1, c])
            fig.shapes.append(
                Label(
                    WIDTH - RIGHT + 46,
                    ly,
                    (line(f"{name} ", (num(last), f"last:{name}")),),
                    size,
                    "legend",
                    boxed=False,
                    anchor="start",
                )
            )
    head = fig.shapes[0]
    assert isinstance(head, Label)
    fig.width = max(fig.width, head.box.x1 + 20)
    return fig


def _frame(fig: Figure, xa: _Axis, ya: _Axis, y0: float, title: str, num: Style) -> None:
    fig.shapes.append(
        Label(LEFT, y0 - 12, (line(title),), SIZE, "head", boxed=False, anchor="start")
    )
    for v in ya.ticks():
        y = ya(v)
        fig.shapes.append(Segment(LEFT, y, WIDTH - RIGHT, y, "grid"))
        fig.shapes.append(
            Label(
                LEFT - 6 - len(num(v)) * 0.62 * 10,
                y,
                (line((num(v), "tick")),),
                10,
                "muted",
                boxed=False,
                anchor="start",
            )
        )
    for v in xa.ticks():
        if v < 1 or v != int(v):
            continue
        x = xa(v)
        fig.shapes.append(Segment(x, y0 + PANEL, x, y0 + PANEL + 4, "axis"))
        fig.shapes.append(
            Label(x, y0 + PANEL + 14, (line(f"{int(v):,}"),), 10, "muted", boxed=False)
        )
    fig.shapes.append(Segment(LEFT, y0 + PANEL, WIDTH - RIGHT, y0 + PANEL, "axis"))
    fig.shapes.append(Segment(LEFT, y0, LEFT, y0 + PANEL, "axis"))
    fig.shapes.append(
        Label(
            (LEFT + WIDTH - RIGHT) / 2, y0 + PANEL + 30, (line("step"),), 10, "muted", boxed=False
        )
    )


__all__ = ["Box", "Buckets", "Recorder", "build"]
