"""gradcalc derive: one function's derivative worked through its computational graph.

The subject is an activation, softmax or a loss from the registries, or a formula in x. At each
point the record's decomposition is built into a graph and swept backwards; the result is checked
against the record's closed form and against float64 finite differences (central, or one-sided
at a kink). Everything computed is returned as a plain DeriveTrace for the renderers; nothing
here prints.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcalc.doc.display import RichDisplay
from gradcalc.errors import GradcalcError, did_you_mean
from gradcalc.functions.activations import REGISTRY as ACTIVATIONS
from gradcalc.functions.losses import REGISTRY as LOSSES
from gradcalc.functions.registry import Activation, Loss, Param, fresh, subscript
from gradcalc.graph import CONSTANTS, Graph, Node, PathLimitExceeded, parse_expression

MAX_VALUES = 100  # values in --at: every point gets its graph, sweeps and differences
PATH_LIMIT = 64  # paths listed per input; the sweep's adjoint is their full sum either way
PATH_INPUTS = 3  # paths are listed for graphs with one output and at most this many inputs
REL_TOL = 1e-6
ABS_TOL = 1e-9  # times max(1, |f|): the rounding floor of a difference quotient in float64
STEP = float(np.finfo(float).eps) ** (1 / 3)  # the step that balances truncation and rounding
MAX_SHRINKS = 12  # quarterings of the step before a branch point counts as reached
BRANCHING = ("abs", "max0", "select")

Row = tuple[float, ...]
Matrix = tuple[Row, ...]
OptRow = tuple[float | None, ...]
OptMatrix = tuple[OptRow, ...]


class DeriveError(GradcalcError):
    """Bad input to `gradcalc derive`: exit status 2 and one line."""


# ---- the trace -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeRow:
    name: str
    definition: str
    kind: str  # "input", "const" or "operation"
    value: float
    adjoints: Row  # ∂output/∂node for each output (softmax: s₁ … s_N), 0 where unused

    @property
    def adjoint(self) -> float:
        return self.adjoints[0]


@dataclass(frozen=True)
class EdgeRow:
    src: str
    dst: str
    symbolic: str  # ∂dst/∂src in the names of dst's arguments
    local: float


@dataclass(frozen=True)
class SweepTerm:
    """One consumer's share of a node's adjoint: consumer adjoint × local partial."""

    consumer: str
    consumer_adjoint: float
    symbolic: str
    local: float


@dataclass(frozen=True)
class SweepRow:
    node: str
    adjoint: float
    terms: tuple[SweepTerm, ...]  # empty for the output itself (adjoint 1)


@dataclass(frozen=True)
class PathRow:
    nodes: tuple[str, ...]
    symbolic: tuple[str, ...]  # the edge partials along the path
    locals: Row
    product: float


@dataclass(frozen=True)
class PathSet:
    """The chain rule from ``src`` to ``dst`` as a sum over paths; ``total`` is the adjoint."""

    src: str
    dst: str
    count: int
    paths: tuple[PathRow, ...]  # the first PATH_LIMIT when count is larger
    total: float

    @property
    def capped(self) -> bool:
        return len(self.paths) < self.count


@dataclass(frozen=True)
class GraphTrace:
    inputs: tuple[str, ...]  # differentiated inputs: x (and PReLU's a), or a₁ … a_n
    outputs: tuple[str, ...]
    nodes: tuple[NodeRow, ...]  # evaluation order
    edges: tuple[EdgeRow, ...]  # evaluation order, constant sources left out
    sweeps: tuple[tuple[SweepRow, ...], ...]  # one per output, output first
    paths: tuple[PathSet, ...]
    non_finite: tuple[str, ...]  # nodes whose value or adjoint left float64


@dataclass(frozen=True)
class KinkTrace:
    index: int  # which input
    input: str
    where: str
    differentiable: bool
    left: float | None  # the stated one-sided derivatives (registry records; None for a formula)
    right: float | None
    reported: float | None  # what the closed form and the graph report there
    convention: str
    numeric_left: float | None
    numeric_right: float | None


@dataclass(frozen=True)
class NumericTrace:
    """Finite differences in float64, [output][input]; central is None where one-sided."""

    central: OptMatrix
    left: OptMatrix
    right: OptMatrix
    steps: Row  # per input
    params: Mapping[str, float | None] = field(default_factory=dict)

    def method(self, j: int) -> str:
        return "central" if any(row[j] is not None for row in self.central) else "one-sided"


@dataclass(frozen=True)
class Agreement:
    closed_form: bool | None  # graph vs closed form (None: no closed form, or graph unusable)
    numeric: bool | None  # graph (closed form if the graph is unusable) vs finite differences

    @property
    def ok(self) -> bool:
        return self.closed_form is not False and self.numeric is not False


@dataclass(frozen=True)
class PointTrace:
    at: Row
    value: Row  # the outputs: closed-form value (a formula's graph value)
    graph: GraphTrace
    graph_jacobian: Matrix  # [output][input] from the sweeps
    closed_jacobian: Matrix | None
    numeric: NumericTrace
    jacobian: OptMatrix  # reported: the graph's, or the closed form's where the graph overflowed
    param_graph: Mapping[str, float]
    param_closed: Mapping[str, float] | None
    kinks: tuple[KinkTrace, ...]
    agreement: Agreement
    notes: tuple[str, ...]

    @property
    def parameter_gradients(self) -> dict[str, float | None]:
        closed = self.param_closed or {}
        return {
            k: v if math.isfinite(v) else _finite_or_none(closed.get(k))
            for k, v in self.param_graph.items()
        }


@dataclass(frozen=True)
class DeriveTrace(RichDisplay):
    name: str  # the registry name, or the formula as typed
    kind: str  # "activation", "vector_activation", "loss" or "expression"
    formula: str
    derivative_text: str | None  # the closed form's text; None for a formula
    symbol: str
    params: Mapping[str, float]
    target: Row | None
    points: tuple[PointTrace, ...]
    notes: tuple[str, ...]
    tolerance: tuple[float, float] = (REL_TOL, ABS_TOL)

    @property
    def elementwise(self) -> bool:
        return self.kind in ("activation", "expression")

    def to_dict(self) -> dict[str, Any]:
        """The `--format json` document, as Python data."""
        from gradcalc.derivation.json import document

        return document(self)

    def renderables(self) -> list[Any]:
        from gradcalc.derivation.table import renderables

        return renderables(self)

    @property
    def several(self) -> bool:
        return len(self.points) > 1

    @property
    def value(self) -> float | list[float]:
        if self.elementwise:
            values = [p.value[0] for p in self.points]
            return values if self.several else values[0]
        point = self.points[0]
        return list(point.value) if self.kind == "vector_activation" else point.value[0]

    @property
    def derivative(self) -> float | list[float | None] | None:
        values = [p.jacobian[0][0] for p in self.points]
        return values if self.several else values[0]

    @property
    def jacobian(self) -> list[list[float | None]]:
        return [list(row) for row in self.points[0].jacobian]

    @property
    def gradient(self) -> list[float | None]:
        return list(self.points[0].jacobian[0])

    @property
    def parameter_gradients(self) -> dict[str, float | list[float | None] | None]:
        names = list(self.points[0].param_graph)
        if not self.several:
            return dict(self.points[0].parameter_gradients)
        return {k: [p.parameter_gradients[k] for p in self.points] for k in names}

    @property
    def agreement(self) -> Agreement:
        def combine(values: list[bool | None]) -> bool | None:
            known = [v for v in values if v is not None]
            return all(known) if known else None

        return Agreement(
            combine([p.agreement.closed_form for p in self.points]),
            combine([p.agreement.numeric for p in self.points]),
        )


# ---- input parsing ---------------------------------------------------------------------------


def parse_values(text: str, option: str) -> list[float]:
    """ "0.3" or "1,2,3" -> floats; anything else is a one-line DeriveError."""
    parts = [part.strip() for part in text.split(",")]
    if not text.strip():
        raise DeriveError(f"{option} needs a number or a comma-separated list, got nothing")
    if len(parts) > MAX_VALUES:
        raise DeriveError(f"{option} has {len(parts)} values, over the limit of {MAX_VALUES}")
    values = []
    for part in parts:
        if not part:
            raise DeriveError(f"{option}: an empty value in {text!r}")
        try:
            value = float(part)
        except ValueError:
            raise DeriveError(f"{option}: {part!r} is not a number (in {text!r})") from None
        if not math.isfinite(value):
            raise DeriveError(f"{option}: {part!r} is not a finite number")
        values.append(value)
    return values


def parse_params(items: Sequence[str], params: Sequence[Param], owner: str) -> dict[str, float]:
    """KEY=VALUE items checked against ``params``; the defaults fill in the rest."""
    by_name = {p.name: p for p in params}
    given: dict[str, float] = {}
    for item in items:
        key, text = _split_param(item)
        if key not in by_name:
            if not by_name:
                raise DeriveError(f"--param {key}: {owner} takes no parameters")
            raise DeriveError(
                f"--param {key}: {owner} has no parameter {key!r} ({did_you_mean(key, by_name)})"
            )
        if key in given:
            raise DeriveError(f"--param {key} is given twice")
        try:
            value = float(text)
        except ValueError:
            raise DeriveError(f"--param {key}: {text!r} is not a number") from None
        problem = by_name[key].problem(value)
        if problem:
            raise DeriveError(f"--param {key}: {problem}")
        given[key] = value
    return {p.name: given.get(p.name, p.default) for p in params}


def _split_param(item: str) -> tuple[str, str]:
    key, sep, text = (part.strip() for part in item.partition("="))
    if not sep or not key or not text:
        raise DeriveError(f"--param expects KEY=VALUE, got {item!r}")
    return key, text


# ---- subjects: what is differentiated, and its routes --------------------------------------


@dataclass
class _Built:
    graph: Graph
    inputs: list[Node]
    outputs: list[Node]
    learnable: dict[str, Node]
    remarks: list[str] = field(default_factory=list)  # registry kinks met inside a formula


@dataclass(frozen=True)
class _KinkHit:
    where: str
    left: float
    right: float
    reported: float
    convention: str


@dataclass(frozen=True)
class _Subject:
    kind: str
    name: str
    formula: str
    derivative_text: str | None
    symbol: str
    params: dict[str, float]
    build: Callable[[Sequence[float], Mapping[str, float]], _Built]
    evaluate: Callable[[Sequence[float], Mapping[str, float]], Row]
    closed: Callable[[Sequence[float]], Matrix] | None = None
    closed_params: Callable[[Sequence[float]], dict[str, float]] | None = None
    kinks: Callable[[Sequence[float], int], list[_KinkHit]] = lambda values, j: []
    notes: tuple[str, ...] = ()
    registry: bool = True


def _param_nodes(g: Graph, params: Sequence[Param], values: Mapping[str, float]) -> dict[str, Node]:
    nodes = {}
    for p in params:
        value = values.get(p.name, p.default)
        if p.learnable:
            nodes[p.name] = g.input(fresh(g, p.label), value)
            continue
        same = p.label in g and g[p.label].is_const and g[p.label].value == value
        nodes[p.name] = g.const(value, name=p.label if same else fresh(g, p.label))
    return nodes


def _quiet(fn: Callable[[], np.ndarray]) -> np.ndarray:
    # Overflow is reported as a non-finite result and a note, never as a warning.
    with np.errstate(all="ignore"):
        return fn()


def _activation(rec: Activation, params: dict[str, float]) -> _Subject:
    learnable = [p.name for p in rec.params if p.learnable]

    def build(values: Sequence[float], p: Mapping[str, float]) -> _Built:
        g = Graph()
        x = g.input("x", values[0])
        nodes = _param_nodes(g, rec.params, p)
        out = rec.graph(g, x, nodes)
        return _Built(g, [x], [out], {k: nodes[k] for k in learnable})

    def column(values: Sequence[float]) -> np.ndarray:
        return np.array([[float(values[0])]])

    def evaluate(values: Sequence[float], p: Mapping[str, float]) -> Row:
        return (float(_quiet(lambda: rec.forward(column(values), p))[0, 0]),)

    def closed(values: Sequence[float]) -> Matrix:
        z = column(values)
        prime = _quiet(lambda: rec.prime(z, rec.forward(z, params), params))
        return ((float(prime[0, 0]),),)

    def closed_params(values: Sequence[float]) -> dict[str, float]:
        if rec.param_partials is None:
            return {}
        z = column(values)
        partials = _quiet(lambda: rec.param_partials(z, rec.forward(z, params), params))
        return {k: float(v[0, 0]) for k, v in partials.items()}

    def kinks(values: Sequence[float], j: int) -> list[_KinkHit]:
        return [
            _KinkHit(
                f"x = {_short(k.at(params))}",
                k.left(params),
                k.right(params),
                k.reported(params),
                k.convention,
            )
            for k in rec.kinks
            if values[0] == k.at(params)
        ]

    return _Subject(
        "activation",
        rec.name,
        rec.formula,
        rec.derivative,
        rec.symbol,
        params,
        build,
        evaluate,
        closed,
        closed_params if learnable else None,
        kinks,
        rec.notes,
    )


def _vector_activation(rec: Activation, params: dict[str, float]) -> _Subject:
    assert rec.vjp is not None

    def build(values: Sequence[float], p: Mapping[str, float]) -> _Built:
        g = Graph()
        xs = [g.input(f"a{subscript(i)}", v) for i, v in enumerate(values, 1)]
        outs = rec.graph(g, xs, _param_nodes(g, rec.params, p))
        return _Built(g, xs, list(outs), {})

    def evaluate(values: Sequence[float], p: Mapping[str, float]) -> Row:
        return tuple(float(v) for v in _quiet(lambda: rec.forward(np.array([values]), p))[0])

    def closed(values: Sequence[float]) -> Matrix:
        # Row i of the Jacobian is Jᵀe_i read back through the record's vector-Jacobian product.
        n = len(values)
        z = np.repeat(np.array([values], dtype=float), n, axis=0)
        rows = _quiet(lambda: rec.vjp(z, rec.forward(z, params), np.eye(n), params))
        return tuple(tuple(float(v) for v in row) for row in rows)

    return _Subject(
        "vector_activation",
        rec.name,
        rec.formula,
        rec.derivative,
        rec.symbol,
        params,
        build,
        evaluate,
        closed,
        notes=rec.notes,
    )


def _loss(rec: Loss, params: dict[str, float], target: list[float]) -> _Subject:
    y = np.array([target])
    n = len(target)

    def build(values: Sequence[float], p: Mapping[str, float]) -> _Built:
        g = Graph()
        a = [g.input(f"a{subscript(j)}", v) for j, v in enumerate(values, 1)]
        ys = [g.const(v, name=f"y{subscript(j)}") for j, v in enumerate(target, 1)]
        out = rec.graph(g, a, ys, _param_nodes(g, rec.params, p))
        return _Built(g, a, [out], {})

    def evaluate(values: Sequence[float], p: Mapping[str, float]) -> Row:
        return (float(_quiet(lambda: rec.value(np.array([values]), y, p))[0]),)

    def closed(values: Sequence[float]) -> Matrix:
        grad = _quiet(lambda: rec.grad(np.array([values], dtype=float), y, params))
        return (tuple(float(v) for v in grad[0]),)

    def kinks(values: Sequence[float], j: int) -> list[_KinkHit]:
        yj = target[j]
        return [
            _KinkHit(
                k.where.replace("_j", subscript(j + 1)),
                k.left(yj, n, params),
                k.right(yj, n, params),
                k.reported(yj, n, params),
                k.convention,
            )
            for k in rec.kinks
            if values[j] == k.at(yj, params)
        ]

    return _Subject(
        "loss",
        rec.name,
        rec.formula,
        rec.derivative,
        "C",
        params,
        build,
        evaluate,
        closed,
        kinks=kinks,
        notes=rec.notes,
    )


def _expression(text: str, given: Sequence[str]) -> _Subject:
    scalar = {k: r for k, r in ACTIVATIONS.items() if r.elementwise and r.graph is not None}
    params = _expression_params(given, scalar)
    remarks: list[str] = []
    called: dict[str, Activation] = {}

    def wrap(rec: Activation) -> Callable[[Graph, Node], Node]:
        def call(g: Graph, arg: Node) -> Node:
            called[rec.name] = rec
            values = {p.name: params.get(p.name, p.default) for p in rec.params}
            nodes = _param_nodes(g, [_as_constant(p) for p in rec.params], values)
            out = rec.graph(g, arg, nodes)
            g.rename(out, fresh(g, rec.symbol))
            for k in rec.kinks:
                if arg.value == k.at(values) and k.left(values) != k.right(values):
                    remarks.append(
                        f"{rec.name}({arg.name}) sits on its kink at {arg.name} = "
                        f"{_short(arg.value)} and reports {_short(k.reported(values))} there "
                        f"({k.convention})"
                    )
            return out

        return call

    expression = parse_expression(text, functions={k: wrap(r) for k, r in scalar.items()})

    def build(values: Sequence[float], p: Mapping[str, float]) -> _Built:
        remarks.clear()
        g = Graph()
        x = g.input("x", values[0])
        out = expression.build(g, {"x": x})
        if re.fullmatch(r"n\d+", out.name):
            g.rename(out, fresh(g, "f"))
        return _Built(g, [x], [out], {}, list(remarks))

    def evaluate(values: Sequence[float], p: Mapping[str, float]) -> Row:
        return tuple(out.value for out in build(values, p).outputs)

    notes = ("a formula has no closed form here: the graph and finite differences are the routes",)
    build([0.0], params)  # to learn which activations the formula calls
    for key, value in params.items():
        takers = [p for rec in called.values() for p in rec.params if p.name == key]
        if not takers:
            notes += (f"--param {key} has no effect: no function in the formula takes it",)
        for p in takers:
            if problem := p.problem(value):
                raise DeriveError(f"--param {key}: {problem}")
    return _Subject(
        "expression",
        text,
        f"f(x) = {text}",
        None,
        "f",
        params,
        build,
        evaluate,
        notes=notes,
        registry=False,
    )


def _as_constant(p: Param) -> Param:
    # Inside a formula a learnable parameter is a constant: the derivative is taken in x only.
    return Param(p.name, p.default, p.description, symbol=p.symbol) if p.learnable else p


def _expression_params(given: Sequence[str], scalar: Mapping[str, Activation]) -> dict[str, float]:
    """--param for a formula: a key some activation takes; its range is checked once the
    formula's functions are known."""
    known = {p.name for rec in scalar.values() for p in rec.params}
    result: dict[str, float] = {}
    for item in given:
        key, _ = _split_param(item)
        if key in known:
            value = parse_params([item], [Param(key, 0.0, "")], "a formula")[key]
        else:
            raise DeriveError(
                f"--param {key}: no function a formula can call takes {key!r} "
                f"({did_you_mean(key, known)})"
            )
        if key in result:
            raise DeriveError(f"--param {key} is given twice")
        result[key] = value
    return result


def resolve(
    name: str, given: Sequence[str], target: list[float] | None, at: list[float]
) -> _Subject:
    """NAME -> the subject: a registry name or alias, else a formula in x."""
    text = name.strip()
    if text in ACTIVATIONS:
        rec = ACTIVATIONS[text]
        _no_target(target, f"{rec.name} is an activation")
        params = parse_params(given, rec.params, rec.name)
        return _activation(rec, params) if rec.elementwise else _vector_activation(rec, params)
    if text in LOSSES:
        rec_loss = LOSSES[text]
        params = parse_params(given, rec_loss.params, rec_loss.name)
        return _loss(rec_loss, params, _check_target(rec_loss, target, at))
    if len(text) <= 60 and text.isidentifier() and text not in ("x", *CONSTANTS):
        choices = [*ACTIVATIONS, *LOSSES]
        raise DeriveError(f"unknown function '{text}' ({did_you_mean(text, choices)})")
    _no_target(target, "a formula in x")
    return _expression(name, given)


def _no_target(target: list[float] | None, what: str) -> None:
    if target is not None:
        raise DeriveError(f"--target is only for losses; {what}")


def _check_target(rec: Loss, target: list[float] | None, at: list[float]) -> list[float]:
    if target is None:
        raise DeriveError(
            f"{rec.name} is a loss: give the target with --target Y[,Y...] "
            f"(as many values as --at; --at is the output a)"
        )
    if len(target) != len(at):
        raise DeriveError(f"--at has {len(at)} values but --target has {len(target)}")
    a, y = np.array([at]), np.array([target])
    if rec.check_target is not None and (problem := rec.check_target(y)):
        raise DeriveError(f"--target: {rec.name}: {problem}")
    if rec.check_output is not None and (problem := rec.check_output(a, y)):
        raise DeriveError(f"--at: {rec.name}: {problem}")
    return target


# ---- the work at one point -------------------------------------------------------------------


def derive(
    name: str, at: str | None, target: str | None = None, params: Sequence[str] = ()
) -> DeriveTrace:
    """Parse the command's arguments, work every point and return the trace."""
    if at is None:
        raise DeriveError("give the point with --at X[,X...] (e.g. --at 0.3)")
    values = parse_values(at, "--at")
    targets = parse_values(target, "--target") if target is not None else None
    subject = resolve(name, params, targets, values)
    if subject.kind in ("activation", "expression"):
        points = tuple(_work(subject, [x]) for x in values)
    else:
        points = (_work(subject, values),)
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
    )


def _work(s: _Subject, values: list[float]) -> PointTrace:
    built = s.build(values, s.params)
    g, outputs = built.graph, built.outputs
    if s.kind == "expression" and not math.isfinite(outputs[0].value):
        raise DeriveError(
            f"{s.name} is {outputs[0].value} at x = {_short(values[0])}: outside its domain "
            f"or beyond float64"
        )
    graph, jac, param_graph = _sweep(built)
    f0 = s.evaluate(values, s.params)
    scale = max([1.0, *(abs(v) for v in f0 if math.isfinite(v))])
    closed = s.closed(values) if s.closed else None
    param_closed = s.closed_params(values) if s.closed_params else None

    mask = _branch_mask(g, outputs)

    def signature(point: Sequence[float]) -> tuple[object, ...] | None:
        if not mask:
            return ()
        nodes = s.build(point, s.params).graph.nodes
        if len(nodes) != len(g.nodes):
            return None
        return tuple(_state(nodes[i]) for i in mask)

    base = tuple(_state(g.nodes[i]) for i in mask)
    hits = {j: s.kinks(values, j) for j in range(len(values))}
    forced = {j for j, found in hits.items() if found}
    numeric, one_sided = _differences(s, values, f0, base, signature, forced)
    numeric = _with_param_differences(s, values, numeric, built)

    kinks: list[KinkTrace] = []
    for j in one_sided:
        if hits[j]:
            kinks.extend(_kink_trace(s, built, values, j, hit, numeric, jac) for hit in hits[j])
        elif not s.registry:
            kinks.append(_kink_trace(s, built, values, j, None, numeric, jac))
    graph_ok = not graph.non_finite
    reported = tuple(
        tuple(
            jac[i][j]
            if graph_ok and math.isfinite(jac[i][j])
            else _finite_or_none(closed[i][j] if closed else None)
            for j in range(len(values))
        )
        for i in range(len(outputs))
    )
    agreement = _agreement(jac, closed, numeric, kinks, graph_ok, scale)
    agreement = _param_agreement(agreement, param_graph, param_closed, numeric, scale)
    notes = _notes(s, values, graph, kinks, closed, built)
    if agreement.ok and _below_resolution(jac if graph_ok else closed, closed, numeric, scale):
        notes.append(
            f"at {', '.join(_short(v) for v in values)} the derivative is below what float64 "
            f"resolves next to f ({_short(scale)}): the routes agree only to within "
            f"{ABS_TOL:g}·max(1, |f|), not to {REL_TOL:g} relative"
        )
    return PointTrace(
        at=tuple(values),
        value=f0,
        graph=graph,
        graph_jacobian=jac,
        closed_jacobian=closed,
        numeric=numeric,
        jacobian=reported,
        param_graph=param_graph,
        param_closed=param_closed,
        kinks=tuple(kinks),
        agreement=agreement,
        notes=tuple(notes),
    )


def _sweep(built: _Built) -> tuple[GraphTrace, Matrix, dict[str, float]]:
    g, outputs = built.graph, built.outputs
    differentiated = [*built.inputs, *built.learnable.values()]
    adjoints: dict[Node, list[float]] = {node: [] for node in g.nodes}
    consumers: dict[Node, list[tuple[Node, int]]] = {}
    for node in g.nodes:
        for k, arg in enumerate(node.args):
            consumers.setdefault(arg, []).append((node, k))
    sweeps = []
    jacobian = []
    param_graph: dict[str, float] = {}
    paths: list[PathSet] = []
    for i, out in enumerate(outputs):
        g.backward(out)
        upstream = set(g.sweep_order(out, include_consts=True))
        for node in g.nodes:
            adjoints[node].append(node.adjoint)
        jacobian.append(tuple(x.adjoint for x in built.inputs))
        rows = []
        for node in g.sweep_order(out):
            terms = tuple(
                SweepTerm(
                    c.name,
                    c.adjoint,
                    c.symbolic_partials()[k],
                    c.local_partials()[k],
                )
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
        )
        for node in g.nodes
    )
    edges = tuple(
        EdgeRow(e.src.name, e.dst.name, e.symbolic, e.local)
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
        rows.append(
            PathRow(names, tuple(e.symbolic for e in path), locals_, math.prod(locals_, start=1.0))
        )
    return PathSet(src.name, dst.name, count, tuple(rows), src.adjoint)


# ---- finite differences ----------------------------------------------------------------------


def _branch_mask(g: Graph, outputs: list[Node]) -> list[int]:
    """Positions of the branching nodes (|·|, max gate, select) the outputs depend on."""
    upstream = {n for out in outputs for n in g.sweep_order(out, include_consts=True)}
    return [i for i, n in enumerate(g.nodes) if n.prim in BRANCHING and n in upstream]


def _state(node: Node) -> object:
    if node.prim == "select":
        return node.extra["cond"]
    v = node.args[0].value
    return "nan" if math.isnan(v) else (v > 0) - (v < 0)


def _shift(values: Sequence[float], j: int, h: float) -> list[float]:
    point = list(values)
    point[j] += h
    return point


def _finite(row: Row) -> bool:
    return all(math.isfinite(v) for v in row)


def _first_step(x: float) -> float:
    return STEP * max(1.0, abs(x))


def _differences(
    s: _Subject,
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
            lo = s.evaluate(_shift(values, j, -h), s.params)
            hi = s.evaluate(_shift(values, j, h), s.params)
            for i in range(m):
                central[i][j] = (hi[i] - lo[i]) / (2 * h)
            steps.append(h)
            continue
        one_sided.append(j)
        step = _first_step(values[j])
        if not finite0:
            steps.append(step)
            continue
        for side, table in ((-1.0, left), (1.0, right)):
            derivative, step = _one_sided(s, values, j, f0, side, signature)
            for i in range(m):
                table[i][j] = derivative[i] if derivative is not None else None
        steps.append(step)

    def freeze(table: list[list[float | None]]) -> OptMatrix:
        return tuple(tuple(_finite_or_none(v) for v in row) for row in table)

    trace = NumericTrace(freeze(central), freeze(left), freeze(right), tuple(steps))
    return trace, one_sided


def _central_step(
    s: _Subject,
    values: list[float],
    j: int,
    base: tuple[object, ...],
    signature: Callable[[Sequence[float]], tuple[object, ...] | None],
) -> float | None:
    x = values[j]
    h = _first_step(x)
    relative = False
    for _ in range(MAX_SHRINKS):
        lo, hi = _shift(values, j, -h), _shift(values, j, h)
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
    s: _Subject,
    values: list[float],
    j: int,
    f0: Row,
    side: float,
    signature: Callable[[Sequence[float]], tuple[object, ...] | None],
) -> tuple[Row | None, float]:
    h = _first_step(values[j])
    for _ in range(MAX_SHRINKS):
        p1, p2 = _shift(values, j, side * h), _shift(values, j, 2 * side * h)
        f1, f2 = s.evaluate(p1, s.params), s.evaluate(p2, s.params)
        sig = signature(p1)
        if _finite(f1) and _finite(f2) and sig is not None and sig == signature(p2):
            row = tuple(
                side * (-3 * a + 4 * b - c) / (2 * h) for a, b, c in zip(f0, f1, f2, strict=True)
            )
            return row, h
        h /= 4
    return None, h


def _with_param_differences(
    s: _Subject, values: list[float], numeric: NumericTrace, built: _Built
) -> NumericTrace:
    if not built.learnable:
        return numeric
    result: dict[str, float | None] = {}
    for key in built.learnable:
        value = s.params[key]
        h = _first_step(value)
        hi = s.evaluate(values, {**s.params, key: value + h})[0]
        lo = s.evaluate(values, {**s.params, key: value - h})[0]
        result[key] = _finite_or_none((hi - lo) / (2 * h))
    return NumericTrace(numeric.central, numeric.left, numeric.right, numeric.steps, result)


# ---- kinks, agreement and notes --------------------------------------------------------------


def _kink_trace(
    s: _Subject,
    built: _Built,
    values: list[float],
    j: int,
    hit: _KinkHit | None,
    numeric: NumericTrace,
    jac: Matrix,
) -> KinkTrace:
    name = built.inputs[j].name
    nl, nr = numeric.left[0][j], numeric.right[0][j]
    if hit is not None:
        return KinkTrace(
            j,
            name,
            hit.where,
            hit.left == hit.right,
            hit.left,
            hit.right,
            hit.reported,
            hit.convention,
            nl,
            nr,
        )
    where, convention = _branch_description(s, built, values, j)
    if not where:
        one_side = (nl is None) != (nr is None)
        where = "an edge of the formula's domain" if one_side else "no central difference fits"
    differentiable = nl is not None and nr is not None and _close(nl, nr, 1.0)
    return KinkTrace(j, name, where, differentiable, None, None, jac[0][j], convention, nl, nr)


def _branch_description(s: _Subject, built: _Built, values: list[float], j: int) -> tuple[str, str]:
    """Which branching nodes switch at this point, and what the sweep takes for them."""
    g = built.graph
    h = _first_step(values[j]) / 4**MAX_SHRINKS
    sides = [s.build(_shift(values, j, d * h), s.params).graph.nodes for d in (-1.0, 1.0)]
    wheres, conventions = [], []
    for i in _branch_mask(g, built.outputs):
        node = g.nodes[i]
        if all(len(nodes) == len(g.nodes) and _state(nodes[i]) == _state(node) for nodes in sides):
            continue
        if node.prim == "select":
            wheres.append(f"{node.name} = {node.definition} switches branch")
            conventions.append(f"{node.name} takes the branch its condition picks here")
        else:
            wheres.append(f"{node.name} = {node.definition} at its kink")
            rule = "sgn(0) = 0" if node.prim == "abs" else "max(0, ·) passes no gradient at 0"
            conventions.append(f"{node.name}: {rule}")
    conventions.extend(built.remarks)
    where = "; ".join(wheres)
    return where, "; ".join(dict.fromkeys(conventions)) or "the primitives' own rules"


def _close(a: float | None, b: float | None, scale: float) -> bool:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return False
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b)) + ABS_TOL * scale


def _agreement(
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
            c = _finite_or_none(c)
            best = g if graph_ok and math.isfinite(g) else c
            if graph_ok and c is not None:
                closed_ok.append(_close(g, c, scale))
            if best is None:
                continue
            central = numeric.central[i][j]
            if central is not None:
                numeric_ok.append(_close(best, central, scale))
                continue
            nl, nr = numeric.left[i][j], numeric.right[i][j]
            kink = by_input.get(j)
            if kink is not None and kink.left is not None and i == 0:
                numeric_ok.append(
                    _close(nl, kink.left, scale)
                    and _close(nr, kink.right, scale)
                    and _close(best, kink.reported, scale)
                )
            elif nl is not None and nr is not None and _close(nl, nr, scale):
                numeric_ok.append(_close(best, nl, scale) and _close(best, nr, scale))
            elif nl is not None and nr is not None:
                tol = REL_TOL * max(abs(nl), abs(nr)) + ABS_TOL * scale
                numeric_ok.append(min(nl, nr) - tol <= best <= max(nl, nr) + tol)
    return Agreement(
        all(closed_ok) if closed_ok else None,
        all(numeric_ok) if numeric_ok else None,
    )


def _below_resolution(
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


def _param_agreement(
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
            closed_ok = (closed_ok is not False) and _close(g, closed[key], scale)
        if numeric.params.get(key) is not None:
            numeric_ok = (numeric_ok is not False) and _close(g, numeric.params[key], scale)
    return Agreement(closed_ok, numeric_ok)


def _notes(
    s: _Subject,
    values: list[float],
    graph: GraphTrace,
    kinks: list[KinkTrace],
    closed: Matrix | None,
    built: _Built,
) -> list[str]:
    notes = []
    for k in kinks:
        numeric = (
            f"one-sided differences give {_short(k.numeric_left)} (left) and "
            f"{_short(k.numeric_right)} (right)"
        )
        if k.left is None:
            state = "differentiable" if k.differentiable else "not differentiable"
            notes.append(
                f"at x = {_short(values[k.index])}, {k.where}: {numeric}, so the formula is "
                f"{state} there; the sweep reports {_short(k.reported)} ({k.convention})"
            )
        elif k.differentiable:
            notes.append(
                f"at {k.where} the formula of {s.name} changes branch, but both one-sided "
                f"derivatives are {_short(k.left)}, so it is differentiable there (the graph "
                f"takes {k.convention}); {numeric}"
            )
        else:
            notes.append(
                f"{s.name} is not differentiable at {k.where}: the derivative from the left is "
                f"{_short(k.left)} and from the right {_short(k.right)}; reported: "
                f"{_short(k.reported)} ({k.convention}); {numeric}"
            )
    if graph.non_finite:
        where = ", ".join(graph.non_finite[:4])
        fallback = (
            "the closed form and the finite differences are reported instead"
            if closed is not None
            else "only the finite differences remain"
        )
        point = ", ".join(_short(v) for v in values)
        notes.append(
            f"the graph leaves float64 at {point} (non-finite value or adjoint at {where}); "
            f"its derivative is not usable there, so {fallback}"
        )
    if s.kind == "expression" and not kinks:
        notes.extend(built.remarks)
    point = ", ".join(_short(v) for v in values)
    if closed is not None and not all(math.isfinite(v) for row in closed for v in row):
        notes.append(f"the closed form leaves float64 at {point}")
    if not all(math.isfinite(v) for v in s.evaluate(values, s.params)):
        notes.append(f"the value is not finite at {point}, so there are no finite differences")
    return notes


# ---- small helpers ---------------------------------------------------------------------------


def _finite_or_none(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _short(v: float | None) -> str:
    """A number for a sentence: six significant digits, "n/a" when unknown."""
    if v is None:
        return "n/a"
    if v == 0:
        return "0"
    return f"{v:.6g}"


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
