"""The finite-difference route: central differences in float64 with a step that balances
truncation and rounding, shrunk until no branch of the graph switches inside it, else one-sided
differences on each side of the branch point."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from gradcalc.derivation.subjects import Built, Subject
from gradcalc.derivation.trace import (
    REL_TOL,
    NumericTrace,
    OptMatrix,
    Row,
    finite_or_none,
)
from gradcalc.graph import Graph, Node

EPS = float(np.finfo(float).eps)
SUBNORMAL = 5e-324  # the least any rounding of f can be off by
STEP = EPS ** (1 / 3)  # the step that balances truncation and rounding
MAX_SHRINKS = 12  # quarterings of the step before a branch point counts as reached
BRANCHING = ("abs", "max0", "select")


def branch_mask(g: Graph, outputs: list[Node]) -> list[int]:
    """Positions of the branching nodes (|·|, max gate, select) the outputs depend on."""
    upstream = {n for out in outputs for n in g.sweep_order(out, include_consts=True)}
    return [i for i, n in enumerate(g.nodes) if n.prim in BRANCHING and n in upstream]


def branch_state(node: Node) -> object:
    if node.prim == "select":
        return node.extra["cond"]
    v = node.args[0].value
    return "nan" if math.isnan(v) else (v > 0) - (v < 0)


def shift(values: Sequence[float], j: int, h: float) -> list[float]:
    point = list(values)
    point[j] += h
    return point


def _finite(row: Row) -> bool:
    return all(math.isfinite(v) for v in row)


def first_step(x: float) -> float:
    return STEP * max(1.0, abs(x))


def differences(
    s: Subject,
    values: list[float],
    f0: Row,
    base: tuple[object, ...],
    signature: Callable[[Sequence[float]], tuple[object, ...] | None],
    forced: set[int],
    noise: Row = (),
) -> tuple[NumericTrace, list[int]]:
    """Central differences where the point's branch holds on both sides of a step; one-sided
    (second order) differences where no step keeps it, i.e. at a kink or a branch point.
    ``noise`` bounds the rounding error of each f_i near the point (ln(1 + e^x) at −40 is
    0 ± ε, not 0 ± ε·0)."""
    noise = noise or (0.0,) * len(f0)
    m, n = len(f0), len(values)
    central: list[list[float | None]] = [[None] * n for _ in range(m)]
    left: list[list[float | None]] = [[None] * n for _ in range(m)]
    right: list[list[float | None]] = [[None] * n for _ in range(m)]
    steps = []
    floors = []
    entry_floors: list[list[float]] = [[0.0] * n for _ in range(m)]
    unstable = []
    one_sided = []
    finite0 = _finite(f0)
    for j in range(n):
        found = (
            _central(s, values, j, base, signature, noise) if finite0 and j not in forced else None
        )
        if found is not None:
            h, quotient, floor_row = found
            for i in range(m):
                entry_floors[i][j] = floor_row[i]
            floor = max(floor_row, default=0.0)
            for i in range(m):
                central[i][j] = quotient[i] if quotient is not None else None
            if quotient is None:
                unstable.append(j)
            steps.append(h)
            floors.append(floor)
            continue
        one_sided.append(j)
        step = first_step(values[j])
        if not finite0:
            steps.append(step)
            floors.append(0.0)
            continue
        floor = 0.0
        for side, table in ((-1.0, left), (1.0, right)):
            derivative, step, side_floor = _one_sided(s, values, j, f0, side, signature, noise)
            floor = max(floor, side_floor)
            for i in range(m):
                table[i][j] = derivative[i] if derivative is not None else None
        steps.append(step)
        floors.append(floor)

    def freeze(table: list[list[float | None]]) -> OptMatrix:
        return tuple(tuple(finite_or_none(v) for v in row) for row in table)

    trace = NumericTrace(
        freeze(central),
        freeze(left),
        freeze(right),
        tuple(steps),
        floors=tuple(floors),
        entry_floors=tuple(tuple(row) for row in entry_floors),
        unstable=tuple(unstable),
    )
    return trace, one_sided


def _quotient(
    s: Subject, values: list[float], j: int, h: float, noise: Row
) -> tuple[Row, Row] | None:
    """The central difference quotient at step h, and each output's rounding floor
    8·max(ε·|f_i|, noise_i)/h. None where the step has underflowed (x = 2e-313)."""
    if not h > 0:
        return None
    # A step that x ± h keep exactly (0.5 + 6e-6 is not 6e-6 past 0.5): else the two points are
    # not symmetric about x, and the quotient is the slope at their midpoint.
    x = values[j]
    h = ((x + h) - x) or h
    lo_point, hi_point = shift(values, j, -h), shift(values, j, h)
    width = hi_point[j] - lo_point[j]
    lo, hi = s.evaluate(lo_point, s.params), s.evaluate(hi_point, s.params)
    if not (width > 0 and _finite(lo) and _finite(hi)):
        return None
    floor = tuple(
        8 * max(EPS * max(abs(a), abs(b)), e, SUBNORMAL) / h
        for a, b, e in zip(lo, hi, noise, strict=True)
    )
    return tuple((b - a) / width for a, b in zip(lo, hi, strict=True)), floor


def _central(
    s: Subject,
    values: list[float],
    j: int,
    base: tuple[object, ...],
    signature: Callable[[Sequence[float]], tuple[object, ...] | None],
    noise: Row,
) -> tuple[float, Row | None, Row] | None:
    """(h, quotient, floors) for the first step whose quotient a quarter of it confirms (the
    floors: rounding's, and the gap to that quarter step's quotient); the
    quotient is None when none does before the step runs out (the point is too close to a
    singularity, or the function varies on a scale float64 cannot step across). None when no
    step keeps the point's branch (a kink): then one-sided differences are taken."""
    h = _central_step(s, values, j, base, signature)
    if h is None:
        return None
    first = h
    # x's own scale, or, at x = 0, the point's (cosine at a = (0, 4e-90) varies on 4e-90).
    relative = STEP * (abs(values[j]) or max(abs(v) for v in values))
    if 0 < relative < h / 4 and _keeps_branch(values, j, relative, base, signature):
        # |x| ≪ 1: a function whose scale is x's own (cosine of tiny vectors) is flat across an
        # absolute step. If a step relative to x tells another story, follow that one.
        at_h, at_relative = (
            _quotient(s, values, j, h, noise),
            _quotient(s, values, j, relative, noise),
        )
        if at_relative is not None and (at_h is None or not _confirms(at_h, at_relative)):
            h = relative
    for _ in range(MAX_SHRINKS):
        at_h, at_quarter = _quotient(s, values, j, h, noise), _quotient(s, values, j, h / 4, noise)
        if at_h is None or at_quarter is None:
            break
        if _confirms(at_h, at_quarter):
            # The gap to the quarter step is 15/16 of h's truncation error: part of the floor.
            gaps = (abs(u - v) for u, v in zip(at_h[0], at_quarter[0], strict=True))
            return h, at_h[0], tuple(f + gap for f, gap in zip(at_h[1], gaps, strict=True))
        h /= 4
        if not _keeps_branch(values, j, h, base, signature):
            break
    return first, None, (0.0,) * len(noise)


def _confirms(a: tuple[Row, Row], b: tuple[Row, Row]) -> bool:
    """Two difference quotients agree to REL_TOL/16, or within what rounding can move them."""
    (d, floor), (e, other) = a, b
    # Truncation shrinks 16-fold from h to h/4, so their gap is 15/16 of h's own error: held to
    # REL_TOL/16, the quotient kept is within REL_TOL of the derivative by a wide margin.
    return all(
        abs(u - v) <= REL_TOL / 16 * max(abs(u), abs(v)) + f + g
        for u, v, f, g in zip(d, e, floor, other, strict=True)
    )


def _keeps_branch(
    values: list[float],
    j: int,
    h: float,
    base: tuple[object, ...],
    signature: Callable[[Sequence[float]], tuple[object, ...] | None],
) -> bool:
    return signature(shift(values, j, -h)) == base == signature(shift(values, j, h))


def _central_step(
    s: Subject,
    values: list[float],
    j: int,
    base: tuple[object, ...],
    signature: Callable[[Sequence[float]], tuple[object, ...] | None],
) -> float | None:
    x = values[j]
    h = first_step(x)
    relative = False
    for _ in range(MAX_SHRINKS):
        lo, hi = shift(values, j, -h), shift(values, j, h)
        if not (_finite(s.evaluate(lo, s.params)) and _finite(s.evaluate(hi, s.params))):
            # Near the edge of the domain (ln a with a → 0) a step relative to x keeps accuracy.
            if not relative and 0 < STEP * abs(x) < h:
                h, relative = STEP * abs(x), True
            else:
                h /= 4
            continue
        if signature(lo) == base == signature(hi):
            return h
        h /= 4
    # A point a hair from a branch point (max(0, x) at x = 1e-300) keeps its branch within a
    # step relative to x, where the function is as smooth as anywhere on that side.
    h = STEP * abs(x)
    inside = h > 0 and all(_finite(s.evaluate(shift(values, j, d), s.params)) for d in (-h, h))
    return h if inside and _keeps_branch(values, j, h, base, signature) else None


def _one_sided(
    s: Subject,
    values: list[float],
    j: int,
    f0: Row,
    side: float,
    signature: Callable[[Sequence[float]], tuple[object, ...] | None],
    noise: Row,
) -> tuple[Row | None, float, float]:
    """(−3f₀ + 4f₁ − f₂)/2h on one side, its step, and its rounding floor 8·ε·max|f|/h."""
    h = first_step(values[j])
    for _ in range(MAX_SHRINKS):
        h = abs((values[j] + side * h) - values[j]) or h  # x + h and x + 2h exact, as above
        if not h > 0:
            break
        p1, p2 = shift(values, j, side * h), shift(values, j, 2 * side * h)
        f1, f2 = s.evaluate(p1, s.params), s.evaluate(p2, s.params)
        sig = signature(p1)
        if _finite(f1) and _finite(f2) and sig is not None and sig == signature(p2):
            row = tuple(
                side * (-3 * a + 4 * b - c) / (2 * h) for a, b, c in zip(f0, f1, f2, strict=True)
            )
            size = max(abs(v) for v in (*f0, *f1, *f2))
            return row, h, 8 * max(EPS * size, *noise, SUBNORMAL) / h
        h /= 4
    return None, h, 0.0


def with_param_differences(
    s: Subject, values: list[float], numeric: NumericTrace, built: Built
) -> NumericTrace:
    if not built.learnable:
        return numeric
    result: dict[str, float | None] = {}
    for key in built.learnable:
        value = s.params[key]
        h = first_step(value)
        hi = s.evaluate(values, {**s.params, key: value + h})[0]
        lo = s.evaluate(values, {**s.params, key: value - h})[0]
        result[key] = finite_or_none((hi - lo) / (2 * h))
    return replace(numeric, params=result)
