"""Whether the routes agree: the graph, the closed form and the finite differences, within
REL_TOL relative. A route is held to that only where it can resolve the derivative: the graph
where its paths do not cancel below what rounding moves (`Resolution.graph`), the finite
difference above its rounding floor. A route that cannot is set aside with a note naming the
routes trusted instead; where no route resolves a derivative, none is trusted (exit status 3).
Below the smallest normal float64 (ABS_TOL) a number has lost bits, and only there is the
comparison absolute. At a kink each side is compared with its own slope."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise

from gradcalc.derivation.subjects import short
from gradcalc.derivation.trace import (
    ABS_TOL,
    REL_TOL,
    Agreement,
    DeriveTrace,
    KinkTrace,
    NumericTrace,
    PointTrace,
    finite_or_none,
)
from gradcalc.records import record


def close(a: float | None, b: float | None, slack: float = 0.0) -> bool:
    """a and b agree to REL_TOL relative, give or take ``slack`` (what rounding can move them)."""
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return False
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b)) + slack + ABS_TOL


@record
class Routes:
    """One derivative's three routes, each None where it gave no number, with what rounding can
    move the graph's sum of paths and the finite difference's quotient."""

    graph: float | None
    graph_rounding: float
    closed: float | None
    numeric: float | None
    numeric_floor: float

    @property
    def graph_resolves(self) -> bool:
        return self.graph is not None and self.graph_rounding <= REL_TOL * abs(self.graph)

    @property
    def numeric_resolves(self) -> bool:
        return self.numeric is not None and self.numeric_floor <= REL_TOL * abs(self.numeric)

    def resolved(self) -> dict[str, float]:
        """The routes that resolve this derivative, by name."""
        found: dict[str, float] = {}
        if self.graph is not None and self.graph_resolves:
            found["the graph"] = self.graph
        if self.closed is not None:
            found["the closed form"] = self.closed
        if self.numeric is not None and self.numeric_resolves:
            found["the finite difference"] = self.numeric
        return found

    @property
    def outvoted(self) -> bool:
        """The finite difference resolves a number the graph and the closed form, two
        independent routes that agree, both contradict (cosine at a = (0, 0, 2e-39): the
        function varies on a scale of 2e-39, where 1 − cos rounds to 1, so no step sees it)."""
        if self.numeric is None or self.graph is None or self.closed is None:
            return False
        if not (self.graph_resolves and close(self.graph, self.closed, self.graph_rounding)):
            return False
        within = abs(self.graph - self.numeric) <= self.numeric_floor
        return not (within or close(self.graph, self.numeric, self.graph_rounding))

    def trusted(self) -> list[str]:
        """The resolving routes, when they agree with one another; else none."""
        if self.outvoted:
            return ["the graph", "the closed form"]
        found = self.resolved()
        values = list(found.values())
        if all(close(a, b) for a, b in pairwise(values)):
            return list(found)
        return []


def routes(point: PointTrace, i: int, j: int) -> Routes:
    graph = point.graph_jacobian[i][j]
    usable = not point.graph.non_finite and math.isfinite(graph)
    rounding = point.graph_rounding[i][j] if point.graph_rounding else 0.0
    closed = finite_or_none(point.closed_jacobian[i][j]) if point.closed_jacobian else None
    return Routes(
        graph if usable else None,
        rounding if usable else 0.0,
        closed,
        point.numeric.central[i][j],
        point.numeric.floor(j, i),
    )


def trusted_words(column: Sequence[Routes]) -> str:
    """Which routes the derivatives of one input rest on, and why, as a clause."""
    names: list[str] | None = None
    for r in column:
        found = r.trusted()
        names = found if names is None else [n for n in names if n in found]
    if not names:
        return "none of the routes resolves it, so none is trusted: treat the result as unknown"
    if len(names) >= 2:
        joined = " and ".join(names)
        return f"trusted: {joined}, independent routes that agree to {REL_TOL:g} relative"
    if names[0] == "the graph":
        return "trusted: the graph alone, whose paths do not cancel"
    return f"trusted: {names[0]} alone, the only route that resolves it here"


def check_agreement(
    table: Sequence[Sequence[Routes]], numeric: NumericTrace, kinks: list[KinkTrace]
) -> Agreement:
    """``table`` holds each derivative's routes, [output][input]."""
    by_input = {k.index: k for k in reversed(kinks)}
    closed_ok: list[bool] = []
    numeric_ok: list[bool] = []
    trusted: list[bool] = []
    outvoted: list[bool] = []
    for i, row in enumerate(table):
        for j, r in enumerate(row):
            slack = r.graph_rounding
            if r.graph is not None and r.closed is not None:
                closed_ok.append(close(r.graph, r.closed, slack))
            best = r.graph if r.graph is not None else r.closed
            if best is None:
                continue
            if r.numeric is not None:
                within = abs(best - r.numeric) <= r.numeric_floor  # below what h can resolve
                numeric_ok.append(close(best, r.numeric, slack) or within)
                outvoted.append(numeric_ok[-1] or r.outvoted)
                trusted.append(bool(r.trusted()))
                continue
            if j in numeric.unstable or (r.graph is None and r.closed is None):
                trusted.append(bool(r.trusted()))
            floor = numeric.floor(j)
            nl, nr = numeric.left[i][j], numeric.right[i][j]
            kink = by_input.get(j)
            if kink is not None and kink.left is not None and i == 0:
                numeric_ok.append(
                    close(nl, kink.left, floor)
                    and close(nr, kink.right, floor)
                    and close(best, kink.reported, slack)
                )
            elif nl is not None and nr is not None and close(nl, nr, 2 * floor):
                numeric_ok.append(close(best, nl, slack + floor) and close(best, nr, slack + floor))
            elif nl is not None and nr is not None:
                tol = REL_TOL * max(abs(nl), abs(nr)) + floor + slack
                numeric_ok.append(min(nl, nr) - tol <= best <= max(nl, nr) + tol)
    return Agreement(
        all(closed_ok) if closed_ok else None,
        all(numeric_ok) if numeric_ok else None,
        all(trusted) if trusted else None,
        outvoted=not all(numeric_ok) and bool(outvoted) and all(outvoted),
    )


def outvoted(table: Sequence[Sequence[Routes]]) -> list[int]:
    """The inputs whose finite difference the graph and the closed form outvote."""
    return [j for j in range(len(table[0])) if any(row[j].outvoted for row in table)]


def unresolved(table: Sequence[Sequence[Routes]]) -> tuple[list[int], list[tuple[int, int]]]:
    """The inputs whose finite difference, and the entries whose graph, disagree with another
    route only by what rounding can move them (σ'(50) ≈ 2e−22 next to σ = 1, one ulp of which a
    step of 6e−6 turns into 4e−11): they are set aside, and a note says so."""
    inputs: list[int] = []
    entries: list[tuple[int, int]] = []
    for i, row in enumerate(table):
        for j, r in enumerate(row):
            best = r.graph if r.graph_resolves or r.closed is None else r.closed
            if r.graph is not None and not r.graph_resolves and r.graph != r.closed:
                entries.append((i, j))
            if best is None or r.numeric is None or j in inputs:
                continue
            unheard = not close(best, r.numeric, r.graph_rounding) and not r.outvoted
            if unheard and not r.numeric_resolves:
                inputs.append(j)
    return inputs, entries


def param_agreement(
    agreement: Agreement,
    graph: Mapping[str, float],
    closed: Mapping[str, float] | None,
    numeric: NumericTrace,
) -> Agreement:
    if not graph:
        return agreement
    closed_ok = agreement.closed_form
    numeric_ok = agreement.numeric
    for key, g in graph.items():
        if closed is not None and key in closed:
            closed_ok = (closed_ok is not False) and close(g, closed[key])
        if numeric.params.get(key) is not None:
            numeric_ok = (numeric_ok is not False) and close(g, numeric.params[key])
    return Agreement(closed_ok, numeric_ok, agreement.trusted, agreement.outvoted)


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
        for i, row in enumerate(point.graph_jacobian):
            for j in range(len(row)):
                r = routes(point, i, j)
                numeric, floor = r.numeric, r.numeric_floor
                if numeric is None:
                    nl, nr = point.numeric.left[i][j], point.numeric.right[i][j]
                    floor = point.numeric.floor(j)
                    numeric = nl if nl is not None and close(nl, nr, 2 * floor) else None
                found = {
                    "the graph": (r.graph, r.graph_rounding),
                    "the closed form": (r.closed, 0.0),
                    "the finite difference": (numeric, floor),
                }
                known = {k: v for k, v in found.items() if v[0] is not None}
                names = list(known)

                def agree(
                    a: str, b: str, known: dict[str, tuple[float | None, float]] = known
                ) -> bool:
                    (x, slack_x), (y, slack_y) = known[a], known[b]
                    return close(x, y, slack_x + slack_y)

                at = ", ".join(short(v) for v in point.at)
                where = f"∂{point.graph.outputs[i]}/∂{point.graph.inputs[j]} at {at}"
                numbers = ", ".join(f"{k[4:]} {short(v[0])}" for k, v in known.items())
                if all(agree(a, b) for a in names for b in names):
                    if r.trusted() or not known:
                        continue
                    return (
                        f"no route resolves {where} ({numbers}): the graph's paths cancel to "
                        f"within what rounding moves ({short(r.graph_rounding)}) and the finite "
                        f"difference is within its rounding floor ({short(floor)}); none is "
                        "trusted: treat the result as unknown"
                    )
                pairs = [(a, b) for a in names for b in names if a < b and agree(a, b)]
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
