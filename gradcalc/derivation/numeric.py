"""The finite-difference route: central differences in float64 with a step that balances
truncation and rounding, shrunk until no branch of the graph switches inside it, else one-sided
differences on each side of the branch point."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from gradcalc.derivation.subjects import Built, Subject
from gradcalc.derivation.trace import NumericTrace, OptMatrix, Row, finite_or_none
from gradcalc.graph import Graph, Node

STEP = float(np.finfo(float).eps) ** (1 / 3)  # the step that balances truncation and rounding
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
) -> tuple[NumericTrace, list[int]]:
    """Central differences where the point's branch holds on both sides of a step; one-sided
    (second order) differences where no step keeps it, i.e. at a kink or a branch point."""
    m, n = len(f0), len(values)
    central: list[list[float | None]] = [[None] * n for _ in range(m)]
    left: list[list[float | None]] = [[None] * n for _ in range(m)]
    right: list[list[float | None]] = [[None] * n for _ in range(m)]
    steps = []
    one_sided = []
    finite0 = _finite(f0)
    for j in range(n):
        h = _central_step(s, values, j, base, signature) if finite0 and j not in forced else None
        if h is not None:
            lo = s.evaluate(shift(values, j, -h), s.params)
            hi = s.evaluate(shift(values, j, h), s.params)
            for i in range(m):
                central[i][j] = (hi[i] - lo[i]) / (2 * h)
            steps.append(h)
            continue
        one_sided.append(j)
        step = first_step(values[j])
        if not finite0:
            steps.append(step)
            continue
        for side, table in ((-1.0, left), (1.0, right)):
            derivative, step = _one_sided(s, values, j, f0, side, signature)
            for i in range(m):
                table[i][j] = derivative[i] if derivative is not None else None
        steps.append(step)

    def freeze(table: list[list[float | None]]) -> OptMatrix:
        return tuple(tuple(finite_or_none(v) for v in row) for row in table)

    trace = NumericTrace(freeze(central), freeze(left), freeze(right), tuple(steps))
    return trace, one_sided


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
    return None


def _one_sided(
    s: Subject,
    values: list[float],
    j: int,
    f0: Row,
    side: float,
    signature: Callable[[Sequence[float]], tuple[object, ...] | None],
) -> tuple[Row | None, float]:
    h = first_step(values[j])
    for _ in range(MAX_SHRINKS):
        p1, p2 = shift(values, j, side * h), shift(values, j, 2 * side * h)
        f1, f2 = s.evaluate(p1, s.params), s.evaluate(p2, s.params)
        sig = signature(p1)
        if _finite(f1) and _finite(f2) and sig is not None and sig == signature(p2):
            row = tuple(
                side * (-3 * a + 4 * b - c) / (2 * h) for a, b, c in zip(f0, f1, f2, strict=True)
            )
            return row, h
        h /= 4
    return None, h


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
    return NumericTrace(numeric.central, numeric.left, numeric.right, numeric.steps, result)
