"""What is differentiated: NAME and the command's strings (--at, --target, --param) parsed into
a Subject — a registry activation, softmax, a loss, or a formula in x — with its routes to the
derivative: the graph it builds, its value, its closed form and where it has kinks."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from gradcalc.derivation.trace import Matrix, Note, Row
from gradcalc.errors import GradcalcError, did_you_mean
from gradcalc.functions.activations import REGISTRY as ACTIVATIONS
from gradcalc.functions.losses import REGISTRY as LOSSES
from gradcalc.functions.registry import (
    Activation,
    ElementwiseActivation,
    Loss,
    Param,
    VectorActivation,
    fresh,
    subscript,
)
from gradcalc.graph import CONSTANTS, Graph, Node, parse_expression
from gradcalc.records import record

_T = TypeVar("_T")
MAX_VALUES = 100  # values in --at: every point gets its graph, sweeps and differences


class DeriveError(GradcalcError):
    """Bad input to `gradcalc derive`: exit status 2 and one line."""


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


@dataclass
class Built:
    graph: Graph
    inputs: list[Node]
    outputs: list[Node]
    learnable: dict[str, Node]
    remarks: list[Note] = field(default_factory=list)  # registry kinks met inside a formula


@record
class KinkHit:
    where: str
    left: float
    right: float
    reported: float
    convention: str


@record
class Subject:
    kind: str
    name: str
    formula: str
    derivative_text: str | None
    symbol: str
    params: dict[str, float]
    build: Callable[[Sequence[float], Mapping[str, float]], Built]
    evaluate: Callable[[Sequence[float], Mapping[str, float]], Row]
    closed: Callable[[Sequence[float]], Matrix] | None = None
    closed_params: Callable[[Sequence[float]], dict[str, float]] | None = None
    kinks: Callable[[Sequence[float], int], list[KinkHit]] = lambda values, j: []
    notes: tuple[Note, ...] = ()
    record: Activation | Loss | None = None


def _record_notes(rec: Activation | Loss) -> tuple[Note, ...]:
    return tuple(Note("record", words={"text": text}) for text in rec.notes)


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


def quiet(fn: Callable[[], _T]) -> _T:
    # Overflow is reported as a non-finite result and a note, never as a warning.
    with np.errstate(all="ignore"):
        return fn()


def _activation(rec: ElementwiseActivation, params: dict[str, float]) -> Subject:
    learnable = [p.name for p in rec.params if p.learnable]

    def build(values: Sequence[float], p: Mapping[str, float]) -> Built:
        g = Graph()
        x = g.input("x", values[0])
        nodes = _param_nodes(g, rec.params, p)
        out = rec.graph(g, x, nodes)
        return Built(g, [x], [out], {k: nodes[k] for k in learnable})

    def column(values: Sequence[float]) -> np.ndarray:
        return np.array([[float(values[0])]])

    def evaluate(values: Sequence[float], p: Mapping[str, float]) -> Row:
        return (float(quiet(lambda: rec.forward(column(values), p))[0, 0]),)

    def closed(values: Sequence[float]) -> Matrix:
        z = column(values)
        prime = quiet(lambda: rec.prime(z, rec.forward(z, params), params))
        return ((float(prime[0, 0]),),)

    def closed_params(values: Sequence[float]) -> dict[str, float]:
        partial = rec.param_partials
        if partial is None:
            return {}
        z = column(values)
        partials = quiet(lambda: partial(z, rec.forward(z, params), params))
        return {k: float(v[0, 0]) for k, v in partials.items()}

    def kinks(values: Sequence[float], j: int) -> list[KinkHit]:
        return [
            KinkHit(
                f"x = {short(k.at(params))}",
                k.left(params),
                k.right(params),
                k.reported(params),
                k.convention,
            )
            for k in rec.kinks
            if values[0] == k.at(params)
        ]

    return Subject(
        "activation",
        rec.name,
        rec.formula.text,
        rec.derivative.text,
        rec.symbol.text,
        params,
        build,
        evaluate,
        closed,
        closed_params if learnable else None,
        kinks,
        _record_notes(rec),
        rec,
    )


def _vector_activation(rec: VectorActivation, params: dict[str, float]) -> Subject:

    def build(values: Sequence[float], p: Mapping[str, float]) -> Built:
        g = Graph()
        xs = [g.input(f"a{subscript(i)}", v) for i, v in enumerate(values, 1)]
        outs = rec.graph(g, xs, _param_nodes(g, rec.params, p))
        return Built(g, xs, list(outs), {})

    def evaluate(values: Sequence[float], p: Mapping[str, float]) -> Row:
        return tuple(float(v) for v in quiet(lambda: rec.forward(np.array([values]), p))[0])

    def closed(values: Sequence[float]) -> Matrix:
        # Row i of the Jacobian is Jᵀe_i read back through the record's vector-Jacobian product.
        n = len(values)
        z = np.repeat(np.array([values], dtype=float), n, axis=0)
        rows = quiet(lambda: rec.vjp(z, rec.forward(z, params), np.eye(n), params))
        return tuple(tuple(float(v) for v in row) for row in rows)

    return Subject(
        "vector_activation",
        rec.name,
        rec.formula.text,
        rec.derivative.text,
        rec.symbol.text,
        params,
        build,
        evaluate,
        closed,
        notes=_record_notes(rec),
        record=rec,
    )


def _loss(rec: Loss, params: dict[str, float], target: list[float]) -> Subject:
    y = np.array([target])
    n = len(target)

    def build(values: Sequence[float], p: Mapping[str, float]) -> Built:
        g = Graph()
        a = [g.input(f"a{subscript(j)}", v) for j, v in enumerate(values, 1)]
        ys = [g.const(v, name=f"y{subscript(j)}") for j, v in enumerate(target, 1)]
        out = rec.graph(g, a, ys, _param_nodes(g, rec.params, p))
        return Built(g, a, [out], {})

    def evaluate(values: Sequence[float], p: Mapping[str, float]) -> Row:
        return (float(quiet(lambda: rec.value(np.array([values]), y, p))[0]),)

    def closed(values: Sequence[float]) -> Matrix:
        grad = quiet(lambda: rec.grad(np.array([values], dtype=float), y, params))
        return (tuple(float(v) for v in grad[0]),)

    def kinks(values: Sequence[float], j: int) -> list[KinkHit]:
        yj = target[j]
        return [
            KinkHit(
                k.where.replace("_j", subscript(j + 1)),
                k.left(yj, n, params),
                k.right(yj, n, params),
                k.reported(yj, n, params),
                k.convention,
            )
            for k in rec.kinks
            if values[j] == k.at(yj, params)
        ]

    return Subject(
        "loss",
        rec.name,
        rec.formula.text,
        rec.derivative.text,
        "C",
        params,
        build,
        evaluate,
        closed,
        kinks=kinks,
        notes=_record_notes(rec),
        record=rec,
    )


def _expression(text: str, given: Sequence[str]) -> Subject:
    scalar = {k: r for k, r in ACTIVATIONS.items() if isinstance(r, ElementwiseActivation)}
    params = _expression_params(given, scalar)
    remarks: list[Note] = []
    called: dict[str, ElementwiseActivation] = {}

    def wrap(rec: ElementwiseActivation) -> Callable[[Graph, Node], Node]:
        def call(g: Graph, arg: Node) -> Node:
            called[rec.name] = rec
            values = {p.name: params.get(p.name, p.default) for p in rec.params}
            nodes = _param_nodes(g, [_as_constant(p) for p in rec.params], values)
            out = rec.graph(g, arg, nodes)
            g.rename(out, fresh(g, rec.symbol.text))
            for k in rec.kinks:
                if arg.value == k.at(values) and k.left(values) != k.right(values):
                    remarks.append(
                        Note(
                            "function_kink",
                            rec.name,
                            {"x": arg.value, "reported": k.reported(values)},
                            {"arg": arg.name, "convention": k.convention},
                        )
                    )
            return out

        return call

    expression = parse_expression(text, functions={k: wrap(r) for k, r in scalar.items()})

    def build(values: Sequence[float], p: Mapping[str, float]) -> Built:
        remarks.clear()
        g = Graph()
        x = g.input("x", values[0])
        out = expression.build(g, {"x": x})
        if re.fullmatch(r"n\d+", out.name):
            g.rename(out, fresh(g, "f"))
        return Built(g, [x], [out], {}, list(remarks))

    def evaluate(values: Sequence[float], p: Mapping[str, float]) -> Row:
        return tuple(out.value for out in build(values, p).outputs)

    notes: tuple[Note, ...] = (Note("formula"),)
    build([0.0], params)  # to learn which activations the formula calls
    for key, value in params.items():
        takers = [p for rec in called.values() for p in rec.params if p.name == key]
        if not takers:
            notes += (Note("param_unused", key),)
        for p in takers:
            if problem := p.problem(value):
                raise DeriveError(f"--param {key}: {problem}")
    return Subject(
        "expression",
        text,
        f"f(x) = {text}",
        None,
        "f",
        params,
        build,
        evaluate,
        notes=notes,
    )


def _as_constant(p: Param) -> Param:
    # Inside a formula a learnable parameter is a constant: the derivative is taken in x only.
    return Param(p.name, p.default, p.description, symbol=p.symbol) if p.learnable else p


def _expression_params(
    given: Sequence[str], scalar: Mapping[str, ElementwiseActivation]
) -> dict[str, float]:
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
) -> Subject:
    """NAME -> the subject: a registry name or alias, else a formula in x."""
    text = name.strip()
    if text in ACTIVATIONS:
        rec = ACTIVATIONS[text]
        _no_target(target, f"{rec.name} is an activation")
        params = parse_params(given, rec.params, rec.name)
        if isinstance(rec, ElementwiseActivation):
            return _activation(rec, params)
        return _vector_activation(rec, params)
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


def short(v: float | None) -> str:
    """A number for a sentence: six significant digits, "n/a" when unknown."""
    if v is None:
        return "n/a"
    if v == 0:
        return "0"
    return f"{v:.6g}"
