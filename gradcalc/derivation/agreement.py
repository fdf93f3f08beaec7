"""Whether the routes agree: the graph, the closed form and the finite differences, within
REL_TOL relative and ABS_TOL·max(1, |f|) absolute; at a kink, each side with its own slope."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from gradcalc.derivation.subjects import short
from gradcalc.derivation.trace import (
    ABS_TOL,
    REL_TOL,
    Agreement,
    DeriveTrace,
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
                within = abs(best - central) <= numeric.floor(j)  # below what h can resolve
                numeric_ok.append(close(best, central, scale) or within)
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


def below_numeric_floor(best: Matrix | None, numeric: NumericTrace, scale: float) -> list[int]:
    """The inputs whose finite difference agrees with ``best`` only thanks to its rounding
    floor (f = e − √x at x = 1e-300: −√x is below f's last bit, so the quotient is 0)."""
    found = []
    for i, row in enumerate(best or ()):
        for j, value in enumerate(row):
            central = numeric.central[i][j]
            if central is None or not math.isfinite(value) or close(value, central, scale):
                continue
            if abs(value - central) <= numeric.floor(j) and j not in found:
                found.append(j)
    return found


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


def disagreement(trace: DeriveTrace) -> str | None:
    """None when every route agrees at every point; else one sentence: where the routes part,
    their numbers, and which route is trusted and why (the one a second route confirms)."""
    for point in trace.points:
        if point.agreement.ok:
            continue
        scale = max([1.0, *(abs(v) for v in point.value if math.isfinite(v))])
        for i, row in enumerate(point.graph_jacobian):
            for j, graph in enumerate(row):
                closed = point.closed_jacobian[i][j] if point.closed_jacobian else None
                closed = finite_or_none(closed)
                numeric = point.numeric.central[i][j]
                if numeric is None:
                    nl, nr = point.numeric.left[i][j], point.numeric.right[i][j]
                    numeric = nl if nl is not None and close(nl, nr, scale) else None
                usable = not point.graph.non_finite and math.isfinite(graph)
                routes = {"the graph": graph if usable else None, "the closed form": closed}
                routes["the finite difference"] = numeric
                known = {k: v for k, v in routes.items() if v is not None}
                names = list(known)
                if all(close(known[a], known[b], scale) for a in names for b in names):
                    continue
                at = ", ".join(short(v) for v in point.at)
                where = f"∂{point.graph.outputs[i]}/∂{point.graph.inputs[j]} at {at}"
                numbers = ", ".join(f"{k[4:]} {short(v)}" for k, v in known.items())
                pairs = [
                    (a, b)
                    for a in names
                    for b in names
                    if a < b and close(known[a], known[b], scale)
                ]
                if pairs:
                    a, b = pairs[0]
                    trusted = (
                        f"trusted: {a} and {b}, two independent routes that agree; "
                        f"{next(n for n in names if n not in (a, b))} is wrong here"
                    )
                else:
                    trusted = "no two routes agree, so none is trusted: treat the result as unknown"
                return f"the routes disagree for {where} ({numbers}); {trusted}"
        at = ", ".join(short(v) for v in point.at)
        if point.param_graph:  # a parameter gradient (PReLU's a) disagrees
            by_graph = ", ".join(f"∂/∂{k} {short(v)}" for k, v in point.param_graph.items())
            by_numeric = ", ".join(f"∂/∂{k} {short(v)}" for k, v in point.numeric.params.items())
            return (
                f"the routes disagree at {at} on a parameter gradient (graph {by_graph}; finite "
                f"difference {by_numeric}); none is trusted"
            )
        # At a kink: the one-sided differences contradict the record's stated slopes.
        return (
            f"the routes disagree at {at}: the one-sided differences do not match the kink's "
            "stated slopes or the reported convention; none is trusted"
        )
    return None
