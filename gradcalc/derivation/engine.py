"""gradcalc derive: one function's derivative worked through its computational graph.

The pipeline: `subjects` parses NAME and the options into a Subject; at each point its graph is
built and swept backwards (here), `numeric` takes finite differences, `kinks` accounts for the
points where a branch switches, `agreement` compares the routes and `notes` says what to point
out. Everything computed is returned as a plain DeriveTrace (`trace`) for the views; nothing
here prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from gradcalc.derivation.agreement import (
    Routes,
    check_agreement,
    largest_gap,
    outvoted,
    param_agreement,
    routes,
    trusted_words,
    unresolved,
)
from gradcalc.derivation.kinks import kink_trace
from gradcalc.derivation.notes import numeric_note, outvoted_note, point_notes, rounding_note
from gradcalc.derivation.numeric import (
    EPS,
    branch_mask,
    branch_state,
    differences,
    with_param_differences,
)
from gradcalc.derivation.subjects import (
    MAX_VALUES,
    Built,
    DeriveError,
    Subject,
    parse_params,
    parse_values,
    resolve,
    short,
)
from gradcalc.derivation.trace import (
    ABS_TOL,
    REL_TOL,
    Agreement,
    DeriveTrace,
    EdgeRow,
    GraphTrace,
    KinkTrace,
    Matrix,
    NodeRow,
    NumericTrace,
    PathRow,
    PathSet,
    PointTrace,
    Row,
    SweepRow,
    SweepTerm,
)
from gradcalc.graph import Graph, Node, PathLimitExceeded
from gradcalc.graph.wide import ONE, Wide

PATH_LIMIT = 64  # paths listed per input; the sweep's adjoint is their full sum either way
PATH_INPUTS = 3  # paths are listed for graphs with one output and at most this many inputs

# The names views and callers import from here; the modules above hold them.
__all__ = [
    "ABS_TOL",
    "MAX_VALUES",
    "REL_TOL",
    "Agreement",
    "DeriveError",
    "DeriveTrace",
    "EdgeRow",
    "GraphTrace",
    "KinkTrace",
    "NodeRow",
    "NumericTrace",
    "PathRow",
    "PathSet",
    "PointTrace",
    "SweepRow",
    "SweepTerm",
    "derive",
    "largest_gap",
    "parse_params",
    "parse_values",
    "resolve",
]


def derive(
    name: str, at: str | None, target: str | None = None, params: Sequence[str] = ()
) -> DeriveTrace:
    """Parse the command's arguments, work every point and return the trace."""
    if at is None:
        raise DeriveError("give the point with --at X[,X...] (e.g. --at 0.3)")
    values = parse_values(at, "--at")
    targets = parse_values(target, "--target") if target is not None else None
    subject = resolve(name, params, targets, values)
    try:
        if subject.kind in ("activation", "expression"):
            points = tuple(_work(subject, [x]) for x in values)
        else:
            points = (_work(subject, values),)
    except (OverflowError, ZeroDivisionError) as exc:
        # Python's float arithmetic raises where numpy and the primitives give inf or nan; a
        # decomposition that still does so is refused in one line rather than a traceback.
        raise DeriveError(
            f"{subject.name} at {at}: a step of the computation is beyond float64 ({exc})"
        ) from None
    notes = list(subject.notes)
    for point in points:
        notes.extend(point.notes)
    return DeriveTrace(
        name=subject.name,
        kind=subject.kind,
        formula=subject.formula,
        derivative_text=subject.derivative_text,
        symbol=subject.symbol,
        params=subject.params,
        target=tuple(targets) if targets is not None else None,
        points=points,
        notes=tuple(notes),
        record=subject.record,
    )


def _work(s: Subject, values: list[float]) -> PointTrace:
    built = s.build(values, s.params)
    g, outputs = built.graph, built.outputs
    if s.kind == "expression" and not math.isfinite(outputs[0].value):
        raise DeriveError(
            f"{s.name} is {outputs[0].value} at x = {short(values[0])}: outside its domain "
            f"or beyond float64"
        )
    graph, jac, param_graph = _sweep(built)
    f0 = s.evaluate(values, s.params)
    closed = s.closed(values) if s.closed else None
    param_closed = s.closed_params(values) if s.closed_params else None

    mask = branch_mask(g, outputs)

    def signature(point: Sequence[float]) -> tuple[object, ...] | None:
        if not mask:
            return ()
        nodes = s.build(point, s.params).graph.nodes
        if len(nodes) != len(g.nodes):
            return None
        return tuple(branch_state(nodes[i]) for i in mask)

    base = tuple(branch_state(g.nodes[i]) for i in mask)
    hits = {j: s.kinks(values, j) for j in range(len(values))}
    forced = {j for j, found in hits.items() if found}
    error = _forward_errors(g)
    # f's own rounding, and what a relative ε in each input moves it by: an evaluation that
    # shifts by another input (softmax's z − max z at (129, 6e-8)) rounds the step itself.
    noise = tuple(
        _finite_or_zero(
            error[out] + EPS * sum(abs(x * d) for x, d in zip(values, row, strict=True))
        )
        for out, row in zip(outputs, jac, strict=True)
    )
    numeric, one_sided = differences(s, values, f0, base, signature, forced, noise)
    numeric = with_param_differences(s, values, numeric, built)

    kinks: list[KinkTrace] = []
    for j in one_sided:
        if hits[j]:
            kinks.extend(kink_trace(s, built, values, j, hit, numeric, jac) for hit in hits[j])
        elif s.record is None:
            kinks.append(kink_trace(s, built, values, j, None, numeric, jac))
    rules = _rounding_rules(g, error)
    swept = [_sweep_rounding(g, out, built.inputs, rules) for out in outputs]
    spread = tuple(size for size, _ in swept)
    rounding = tuple(bound for _, bound in swept)
    point = PointTrace(
        at=tuple(values),
        value=f0,
        graph=graph,
        graph_jacobian=jac,
        closed_jacobian=closed,
        numeric=numeric,
        jacobian=(),
        param_graph=param_graph,
        param_closed=param_closed,
        kinks=tuple(kinks),
        agreement=Agreement(None, None),
        notes=(),
        graph_spread=spread,
        graph_rounding=rounding,
    )
    table = [[routes(point, i, j) for j in range(len(values))] for i in range(len(outputs))]
    reported = tuple(tuple(_reported(r) for r in row) for row in table)
    agreement = check_agreement(table, numeric, kinks)
    agreement = param_agreement(agreement, param_graph, param_closed, numeric)
    notes = point_notes(s, values, graph, kinks, closed, built)
    for j in outvoted(table):
        notes.append(outvoted_note(values, built.inputs[j].name, numeric, j))
    numeric_unresolved, graph_unresolved = unresolved(table)
    for j in numeric_unresolved:
        words = trusted_words([row[j] for row in table])
        notes.append(numeric_note("numeric_floor", values, built.inputs[j].name, numeric, j, words))
    for i, j in graph_unresolved:
        notes.append(rounding_note(point, i, j, trusted_words([table[i][j]])))
    for j in numeric.unstable:
        notes.append(numeric_note("numeric_unstable", values, built.inputs[j].name, numeric, j))
    return replace(point, jacobian=reported, agreement=agreement, notes=tuple(notes))


def _forward_errors(g: Graph) -> dict[Node, float]:
    """A running bound on each node's rounding error, node by node: ε·|value| for its own
    rounding plus its arguments' errors through its partials. Where a value cancels (1 + e^−40
    is 1, so ln of it is 0) it is far above ε·|value|."""
    error: dict[Node, float] = {}
    for node in g.nodes:
        if node.is_leaf:
            error[node] = 0.0
            continue
        carried = sum(
            abs(local) * error[arg] if error[arg] else 0.0
            for arg, local in zip(node.args, node.local_partials(), strict=True)
        )
        error[node] = EPS * abs(node.value) + carried
    return error


# Primitives whose partials are constants: an error in their arguments does not move them.
CONSTANT_PARTIALS = frozenset({"neg", "add", "sub", "sum", "abs", "max0", "select"})
# Primitives whose partials are computed from their own value (∂e^a/∂a = e^a).
OWN_VALUE_PARTIALS = frozenset({"exp", "pow"})
Edges = list[tuple[Node, float, Wide]]  # (argument, |partial| in float64 and in Wide)


def _rounding_rules(g: Graph, error: dict[Node, float]) -> dict[Node, tuple[float, Edges]]:
    """Per node: the relative error of its partials (their own rounding, and the errors of the
    values they are computed from: ∂(n/x)/∂x = −(n/x)/x where n = e^x − 1 has cancelled), and
    its arguments with |partial|."""

    def relative(node: Node) -> float:
        e = error[node]
        return 0.0 if e == 0 else e / abs(node.value) if node.value else math.inf

    rules = {}
    for node in g.nodes:
        moved = 2 * EPS
        if node.prim not in CONSTANT_PARTIALS:
            moved += 2 * sum(relative(arg) for arg in node.args)
        if node.prim in OWN_VALUE_PARTIALS:
            moved += relative(node)
        edges: Edges = [
            (arg, float(size), size)
            for arg, local in zip(node.args, node.wide_partials(), strict=True)
            if (size := Wide(abs(local.m), local.e))
        ]
        rules[node] = (moved, edges)
    return rules


def _sweep_rounding(
    g: Graph, out: Node, inputs: list[Node], rules: dict[Node, tuple[float, Edges]]
) -> tuple[Row, Row]:
    """For each input, Σ over the paths to ``out`` of |product of partials| (the size of the
    terms the sweep sums), and how far rounding can move ∂out/∂input: along every path, the
    relative errors of its partials times the path's |product|, plus the rounding of the sums."""
    order = g.sweep_order(out, include_consts=True)
    found = _rounding_sweep(order, out, rules, float)
    if not all(math.isfinite(v) for pair in found.values() for v in pair):
        # A partial past float64 on the way (1/a at a = 5e-324): the exponent kept apart.
        found = _rounding_sweep(order, out, rules, Wide.of)
    pairs = [found.get(x, (0.0, 0.0)) for x in inputs]
    sizes = tuple(float(size) for size, _ in pairs)
    return sizes, tuple(
        float(far) + EPS * len(order) * size for (_, far), size in zip(pairs, sizes, strict=True)
    )


def _rounding_sweep(
    order: list[Node],
    out: Node,
    rules: dict[Node, tuple[float, Edges]],
    number: Callable[[float], Any],
) -> dict[Node, tuple[Any, Any]]:
    spread = {node: number(0.0) for node in order}
    bound = {node: number(0.0) for node in order}
    spread[out] = number(1.0)
    for node in order:
        size, far = spread[node], bound[node]
        if not (size or far):
            continue
        moved, edges = rules[node]
        for arg, plain, wide in edges:
            local = plain if number is float else wide
            spread[arg] = spread[arg] + local * size
            bound[arg] = bound[arg] + local * (far + size * moved)
    return {node: (spread[node], bound[node]) for node in order}


def _finite_or_zero(v: float) -> float:
    return v if math.isfinite(v) else 0.0


def _reported(r: Routes) -> float | None:
    """The graph's number; the closed form's where the graph left float64 or its paths cancel
    below what rounding moves."""
    if r.graph is not None and (r.graph_resolves or r.closed is None):
        return r.graph
    return r.closed if r.closed is not None else r.graph


def _sweep(built: Built) -> tuple[GraphTrace, Matrix, dict[str, float]]:
    g, outputs = built.graph, built.outputs
    differentiated = [*built.inputs, *built.learnable.values()]
    adjoints: dict[Node, list[float]] = {node: [] for node in g.nodes}
    consumers: dict[Node, list[tuple[Node, int]]] = {}
    for node in g.nodes:
        for k, arg in enumerate(node.args):
            consumers.setdefault(arg, []).append((node, k))
    # Each node's partials, written and as numbers, once: a sum of n terms is consumed n times
    # per output, and writing its n partials each time made softmax of 100 values quadratic.
    partials = {
        node: tuple(
            zip(
                node.symbolic_partials(),
                node.local_partials(),
                node.symbolic_partials_tex(),
                strict=True,
            )
        )
        for node in {c for users in consumers.values() for c, _ in users}
    }
    sweeps = []
    jacobian = []
    param_graph: dict[str, float] = {}
    paths: list[PathSet] = []
    out_of_range: dict[tuple[str, str], None] = {}
    for i, out in enumerate(outputs):
        for src, dst in g.backward(out):
            out_of_range[(src.name, dst.name)] = None
        upstream = set(g.sweep_order(out, include_consts=True))
        for node in g.nodes:
            adjoints[node].append(node.adjoint)
        jacobian.append(tuple(x.adjoint for x in built.inputs))
        rows = []
        for node in g.sweep_order(out):
            terms = tuple(
                SweepTerm(c.name, c.adjoint, *partials[c][k])
                for c, k in consumers.get(node, [])
                if c in upstream
            )
            rows.append(SweepRow(node.name, node.adjoint, () if node is out else terms))
        sweeps.append(tuple(rows))
        if i == 0:
            param_graph = {k: node.adjoint for k, node in built.learnable.items()}
            if len(outputs) == 1 and len(differentiated) <= PATH_INPUTS:
                paths = [_paths(g, x, out) for x in differentiated]
    nodes = tuple(
        NodeRow(
            node.name,
            node.definition,
            "input" if node.is_input else "const" if node.is_const else "operation",
            node.value,
            tuple(adjoints[node]),
            node.definition_tex,
        )
        for node in g.nodes
    )
    edges = tuple(
        EdgeRow(e.src.name, e.dst.name, e.symbolic, e.local, e.symbolic_tex)
        for e in g.edges()
        if not e.src.is_const
    )
    used = {n for out in outputs for n in g.sweep_order(out)}
    non_finite = tuple(
        row.name
        for row, node in zip(nodes, g.nodes, strict=True)
        if node in used
        and not (math.isfinite(row.value) and all(math.isfinite(a) for a in row.adjoints))
    )
    trace = GraphTrace(
        inputs=tuple(x.name for x in differentiated),
        outputs=tuple(out.name for out in outputs),
        nodes=nodes,
        edges=edges,
        sweeps=tuple(sweeps),
        paths=tuple(paths),
        non_finite=non_finite,
        out_of_range=tuple(out_of_range),
    )
    return trace, tuple(jacobian), param_graph


def _paths(g: Graph, src: Node, dst: Node) -> PathSet:
    try:
        found = g.paths(src, dst, limit=PATH_LIMIT)
        count = len(found)
    except PathLimitExceeded as exc:
        found, count = exc.paths, exc.count
    rows = []
    for path in found:
        names = (src.name, *(e.dst.name for e in path))
        locals_ = tuple(e.local for e in path)
        product = ONE  # in Wide: a path through a partial below 1e-308 keeps its product
        for e in path:
            product = product * e.dst.wide_partials()[e.arg_index]
        rows.append(
            PathRow(
                names,
                tuple(e.symbolic for e in path),
                locals_,
                float(product),
                tuple(e.symbolic_tex for e in path),
            )
        )
    return PathSet(src.name, dst.name, count, tuple(rows), src.adjoint)
