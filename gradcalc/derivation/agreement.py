"""Whether the routes agree: the graph, the closed form and the finite differences, within
REL_TOL relative and ABS_TOL·max(1, |f|) absolute; at a kink, each side with its own slope."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from gradcalc.derivation.trace import (
    ABS_TOL,
    REL_TOL,
    Agreement,
    KinkTrace,
    Matrix,
    NumericTrace,
    finite_or_none,
)


def close(a: float | None, b: float | None, scale: float) -> bool:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return False
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b)) + ABS_TOL * scale


def check_agreement(
    jac: Matrix,
    closed: Matrix | None,
    numeric: NumericTrace,
    kinks: list[KinkTrace],
    graph_ok: bool,
    scale: float,
) -> Agreement:
    by_input = {k.index: k for k in reversed(kinks)}
    closed_ok: list[bool] = []
    numeric_ok: list[bool] = []
    for i, row in enumerate(jac):
        for j, g in enumerate(row):
            c = closed[i][j] if closed else None
            # A route that left float64 is not a route: it is reported in the notes instead.
            c = finite_or_none(c)
            best = g if graph_ok and math.isfinite(g) else c
            if graph_ok and c is not None:
                closed_ok.append(close(g, c, scale))
            if best is None:
                continue
            central = numeric.central[i][j]
            if central is not None:
                numeric_ok.append(close(best, central, scale))
                continue
            nl, nr = numeric.left[i][j], numeric.right[i][j]
            kink = by_input.get(j)
            if kink is not None and kink.left is not None and i == 0:
                numeric_ok.append(
                    close(nl, kink.left, scale)
                    and close(nr, kink.right, scale)
                    and close(best, kink.reported, scale)
                )
            elif nl is not None and nr is not None and close(nl, nr, scale):
                numeric_ok.append(close(best, nl, scale) and close(best, nr, scale))
            elif nl is not None and nr is not None:
                tol = REL_TOL * max(abs(nl), abs(nr)) + ABS_TOL * scale
                numeric_ok.append(min(nl, nr) - tol <= best <= max(nl, nr) + tol)
    return Agreement(
        all(closed_ok) if closed_ok else None,
        all(numeric_ok) if numeric_ok else None,
    )


def below_resolution(
    best: Matrix | None, closed: Matrix | None, numeric: NumericTrace, scale: float
) -> bool:
    """True when some route pair agrees only thanks to the absolute floor (σ'(50): 2e-22 vs 0)."""
    if best is None:
        return False
    for i, row in enumerate(best):
        for j, value in enumerate(row):
            others = [numeric.central[i][j], closed[i][j] if closed else None]
            for other in others:
                if other is None or not math.isfinite(value):
                    continue
                gap = abs(value - other)
                if gap > REL_TOL * max(abs(value), abs(other)) and gap <= ABS_TOL * scale:
                    return True
    return False


def param_agreement(
    agreement: Agreement,
    graph: Mapping[str, float],
    closed: Mapping[str, float] | None,
    numeric: NumericTrace,
    scale: float,
) -> Agreement:
    if not graph:
        return agreement
    closed_ok = agreement.closed_form
    numeric_ok = agreement.numeric
    for key, g in graph.items():
        if closed is not None and key in closed:
            closed_ok = (closed_ok is not False) and close(g, closed[key], scale)
        if numeric.params.get(key) is not None:
            numeric_ok = (numeric_ok is not False) and close(g, numeric.params[key], scale)
    return Agreement(closed_ok, numeric_ok)


def largest_gap(
    a: Sequence[Sequence[float]], b: Sequence[Sequence[float | None]] | None
) -> float | None:
    """The largest |a − b| over the entries b has (None where a route gave no number)."""
    if b is None:
        return None
    gaps = [
        abs(x - y)
        for ra, rb in zip(a, b, strict=True)
        for x, y in zip(ra, rb, strict=True)
        if y is not None
    ]
    return max(gaps) if gaps else None
