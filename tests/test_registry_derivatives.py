"""Every registry entry's decomposition, closed form and finite differences agree.

Parametrized over ACTIVATIONS and LOSSES, so a new entry is covered without touching this file.
Each derivative is proven by independent routes: the graph built here from the record's
decomposition, the record's closed form, and a Richardson-extrapolated central difference of the
record's numpy value computed here (not derive's own). Away from kinks they must agree to a
relative 1e-6, with an absolute floor of 1e-12·max(1, |f|) for derivatives that float64 cannot
resolve next to f (σ'(50) ≈ 2e-22 is 0 in the closed form, since σ(50) rounds to 1).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from gradcalc.derivation.engine import derive
from gradcalc.derivation.notes import write
from gradcalc.functions.activations import ACTIVATIONS
from gradcalc.functions.losses import LOSSES
from gradcalc.functions.registry import Activation, Kink, Loss, Param, subscript
from gradcalc.graph import Graph, Node

REGULAR_POINTS = [-50.0, -10.0, -4.2, -3.0, -2.0, -1.0, -0.7, -0.5, -0.1, 0.1]
REGULAR_POINTS += [0.3, 0.5, 0.9, 1.0, 1.7, 2.0, 3.0, 5.0, 10.0, 50.0]
NEAR = 1e-3  # a kink's neighbourhood: kink ± NEAR


def close(a: float, b: float, f: float = 0.0, rel: float = 1e-6, floor: float = 1e-12) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b)) + floor * max(1.0, abs(f))


def richardson(fn: Callable[[float], float], x: float, h: float = 1e-4) -> float:
    def d(step: float) -> float:
        return (fn(x + step) - fn(x - step)) / (2 * step)

    return (4 * d(h / 2) - d(h)) / 3


def one_sided(fn: Callable[[float], float], x: float, side: float, h: float = 1e-5) -> float:
    """Second order from one side; rounding limits it to about eps·|f|/h ≈ 1e-11·|f|."""
    return side * (-3 * fn(x) + 4 * fn(x + side * h) - fn(x + 2 * side * h)) / (2 * h)


def one_sided_close(estimate: float, stated: float, f: float) -> bool:
    return close(estimate, stated, f, rel=1e-6, floor=1e-9)


def variants(params: Sequence[Param]) -> list[dict[str, float]]:
    """The defaults, and (when there are parameters) each set to 0.5 where that is allowed."""
    default = {p.name: p.default for p in params}
    if not params:
        return [default]
    other = {p.name: 0.5 if p.problem(0.5) is None else p.default for p in params}
    return [default, other]


def param_nodes(g: Graph, params: Sequence[Param], values: dict[str, float]) -> dict[str, Node]:
    return {
        p.name: g.input(p.label, values[p.name])
        if p.learnable
        else g.const(values[p.name], name=p.label)
        for p in params
    }


# ---- activations -----------------------------------------------------------------------------

ELEMENTWISE = [a for a in ACTIVATIONS if a.elementwise]
VECTOR = [a for a in ACTIVATIONS if not a.elementwise]


def forward(rec: Activation, p: dict[str, float]) -> Callable[[float], float]:
    return lambda x: float(rec.forward(np.array([[x]]), p)[0, 0])


def closed_prime(rec: Activation, x: float, p: dict[str, float]) -> float:
    z = np.array([[x]])
    assert rec.prime is not None
    return float(rec.prime(z, rec.forward(z, p), p)[0, 0])


def graph_at(rec: Activation, x: float, p: dict[str, float]) -> tuple[Node, Node, dict[str, Node]]:
    g = Graph()
    xn = g.input("x", x)
    nodes = param_nodes(g, rec.params, p)
    out = rec.graph(g, xn, nodes)
    g.backward(out)
    return xn, out, nodes


def kink_points(rec: Activation, p: dict[str, float]) -> list[float]:
    return [k.at(p) for k in rec.kinks]


def activation_cases() -> list[Any]:
    cases = []
    for rec in ELEMENTWISE:
        for p in variants(rec.params):
            kinks = kink_points(rec, p)
            points = REGULAR_POINTS + [k + d for k in kinks for d in (-NEAR, NEAR)]
            label = rec.name + "".join(f",{k}={v:g}" for k, v in p.items())
            cases.extend(
                pytest.param(rec, p, x, id=f"{label}@{x:g}")
                for x in points
                if all(abs(x - k) > 1e-9 for k in kinks)
            )
    return cases


def kink_cases() -> list[Any]:
    return [
        pytest.param(rec, p, k, id=f"{rec.name}{''.join(f',{n}={v:g}' for n, v in p.items())}")
        for rec in ELEMENTWISE
        for p in variants(rec.params)
        for k in rec.kinks
    ]


def test_every_entry_has_a_decomposition() -> None:
    assert all(rec.graph is not None for rec in ACTIVATIONS)
    assert all(rec.graph is not None for rec in LOSSES)
    assert len(REGULAR_POINTS) >= 20


@pytest.mark.parametrize(("rec", "p", "x"), activation_cases())
def test_activation_graph_closed_form_and_differences_agree(
    rec: Activation, p: dict[str, float], x: float
) -> None:
    xn, out, _ = graph_at(rec, x, p)
    f = forward(rec, p)
    value = f(x)
    assert close(out.value, value, value), (out.value, value)
    graph, closed, numeric = xn.adjoint, closed_prime(rec, x, p), richardson(f, x)
    assert close(graph, closed, value), f"graph {graph} vs closed form {closed}"
    assert close(graph, numeric, value), f"graph {graph} vs numeric {numeric}"

    trace = derive(rec.name, repr(x), params=[f"{k}={v!r}" for k, v in p.items()])
    assert trace.agreement.ok
    assert trace.derivative == graph
    assert trace.points[0].kinks == ()


@pytest.mark.parametrize(("rec", "p", "kink"), kink_cases())
def test_activation_at_its_kink_reports_the_convention(
    rec: Activation, p: dict[str, float], kink: Kink
) -> None:
    x = kink.at(p)
    left, right, reported = kink.left(p), kink.right(p), kink.reported(p)
    assert reported in (left, right)  # each convention here is one of the one-sided slopes
    xn, _, _ = graph_at(rec, x, p)
    assert xn.adjoint == reported
    assert closed_prime(rec, x, p) == reported
    f = forward(rec, p)
    assert one_sided_close(one_sided(f, x, -1.0), left, f(x))
    assert one_sided_close(one_sided(f, x, 1.0), right, f(x))

    trace = derive(rec.name, repr(x), params=[f"{k}={v!r}" for k, v in p.items()])
    assert trace.derivative == reported
    assert trace.agreement.ok
    (found,) = trace.points[0].kinks
    assert (found.left, found.right, found.reported) == (left, right, reported)
    assert found.differentiable == (left == right)
    assert one_sided_close(found.numeric_left, left, f(x))
    assert one_sided_close(found.numeric_right, right, f(x))
    assert trace.points[0].numeric.central[0][0] is None  # no central difference across a kink
    words = "not differentiable" if left != right else "differentiable"
    assert any(words in write(note) for note in trace.notes)


LEARNABLE = [(rec, p) for rec in ELEMENTWISE for p in rec.params if p.learnable]


@pytest.mark.parametrize(("rec", "param"), LEARNABLE, ids=[r.name for r, _ in LEARNABLE])
@pytest.mark.parametrize("x", [-50.0, -2.0, -0.3, 0.4, 3.0, 50.0])
def test_learnable_parameter_gradient_three_ways(rec: Activation, param: Param, x: float) -> None:
    p = {q.name: q.default for q in rec.params}
    _, _, nodes = graph_at(rec, x, p)
    graph = nodes[param.name].adjoint
    assert rec.param_partials is not None
    z = np.array([[x]])
    closed = float(rec.param_partials(z, rec.forward(z, p), p)[param.name][0, 0])

    def in_param(value: float) -> float:
        return float(rec.forward(z, {**p, param.name: value})[0, 0])

    numeric = richardson(in_param, p[param.name])
    assert close(graph, closed) and close(graph, numeric), (graph, closed, numeric)
    trace = derive(rec.name, repr(x))
    assert trace.parameter_gradients == {param.name: graph}


def test_prelu_gradient_in_a_is_x_on_the_negative_side() -> None:
    trace = derive("prelu", "-0.5,0,2", params=["a=0.1"])
    assert trace.derivatives == [0.1, 0.1, 1.0]
    assert trace.parameter_gradients_per_point == [{"a": -0.5}, {"a": 0.0}, {"a": 0.0}]


@pytest.mark.parametrize("rec", VECTOR, ids=[r.name for r in VECTOR])
@pytest.mark.parametrize(
    "a", [[1.0, 2.0, 3.0], [0.5], [-50.0, 50.0, 0.0], [0.1, -0.4, 2.2, 1.3, -1.0]]
)
def test_vector_activation_jacobian_three_ways(rec: Activation, a: list[float]) -> None:
    p = {q.name: q.default for q in rec.params}
    g = Graph()
    xs = [g.input(f"a{subscript(i)}", v) for i, v in enumerate(a, 1)]
    outs = rec.graph(g, xs, param_nodes(g, rec.params, p))
    values = rec.forward(np.array([a]), p)[0]
    for i, out in enumerate(outs):
        assert close(out.value, values[i])
        g.backward(out)
        assert rec.vjp is not None
        e_i = np.eye(len(a))[i : i + 1]
        closed_row = rec.vjp(np.array([a]), values[None, :], e_i, p)[0]
        for j, x in enumerate(xs):

            def component(t: float, j: int = j, i: int = i) -> float:
                shifted = list(a)
                shifted[j] = t
                return float(rec.forward(np.array([shifted]), p)[0, i])

            numeric = richardson(component, a[j])
            assert close(x.adjoint, closed_row[j]), (i, j, x.adjoint, closed_row[j])
            assert close(x.adjoint, numeric), (i, j, x.adjoint, numeric)
    trace = derive(rec.name, ",".join(repr(v) for v in a))
    assert trace.agreement.ok


# ---- losses ----------------------------------------------------------------------------------


def valid_example(loss: Loss, rng: random.Random, n: int = 3) -> tuple[list[float], list[float]]:
    """Random a and y of length n that the loss's own checks accept."""
    targets: list[Callable[[], float]] = [
        lambda: rng.uniform(0.05, 0.95),
        lambda: rng.choice([-1.0, 1.0]),
        lambda: rng.uniform(-2.0, 2.0),
    ]
    outputs: list[Callable[[], float]] = [
        lambda: rng.uniform(0.05, 0.95),
        lambda: rng.uniform(-2.0, 2.0),
    ]
    for make_y in targets:
        y = [make_y() for _ in range(n)]
        if loss.check_target and loss.check_target(np.array([y])):
            continue
        for make_a in outputs:
            a = [make_a() for _ in range(n)]
            if not (loss.check_output and loss.check_output(np.array([a]), np.array([y]))):
                return a, y
    raise AssertionError(f"no valid example for {loss.name}")


def loss_graph(
    loss: Loss, a: list[float], y: list[float], p: dict[str, float]
) -> tuple[list[Node], Node]:
    g = Graph()
    an = [g.input(f"a{subscript(j)}", v) for j, v in enumerate(a, 1)]
    yn = [g.const(v, name=f"y{subscript(j)}") for j, v in enumerate(y, 1)]
    out = loss.graph(g, an, yn, param_nodes(g, loss.params, p))
    g.backward(out)
    return an, out


def loss_value(loss: Loss, y: list[float], p: dict[str, float]) -> Callable[[list[float]], float]:
    return lambda a: float(loss.value(np.array([a]), np.array([y]), p)[0])


def loss_gradient(loss: Loss, a: list[float], y: list[float], p: dict[str, float]) -> list[float]:
    return [float(v) for v in loss.grad(np.array([a]), np.array([y]), p)[0]]


def partial(fn: Callable[[list[float]], float], a: list[float], j: int) -> float:
    def along(t: float) -> float:
        shifted = list(a)
        shifted[j] = t
        return fn(shifted)

    return richardson(along, a[j], h=1e-5)


LOSS_CASES = [
    pytest.param(
        loss, p, seed, id=f"{loss.name}{''.join(f',{k}={v:g}' for k, v in p.items())}#{seed}"
    )
    for loss in LOSSES
    for p in variants(loss.params)
    for seed in range(8)
]


@pytest.mark.parametrize(("loss", "p", "seed"), LOSS_CASES)
def test_loss_gradient_three_ways(loss: Loss, p: dict[str, float], seed: int) -> None:
    a, y = valid_example(loss, random.Random(f"{loss.name}-{seed}"))
    an, out = loss_graph(loss, a, y, p)
    value = loss_value(loss, y, p)
    assert close(out.value, value(a), value(a))
    closed = loss_gradient(loss, a, y, p)
    for j in range(len(a)):
        numeric = partial(value, a, j)
        assert close(an[j].adjoint, closed[j], value(a)), (j, an[j].adjoint, closed[j])
        assert close(an[j].adjoint, numeric, value(a), rel=1e-6), (j, an[j].adjoint, numeric)
    trace = derive(
        loss.name,
        ",".join(repr(v) for v in a),
        ",".join(repr(v) for v in y),
        [f"{k}={v!r}" for k, v in p.items()],
    )
    assert trace.agreement.ok
    assert trace.gradient == [x.adjoint for x in an]
    assert trace.value == value(a)


def loss_kink_cases() -> list[Any]:
    cases = []
    for loss in LOSSES:
        for p in variants(loss.params):
            for k in loss.kinks:
                for y0 in (1.0, -1.0, 0.5):
                    if loss.check_target and loss.check_target(np.array([[y0, 1.0, -1.0]])):
                        continue
                    label = f"{loss.name}{''.join(f',{n}={v:g}' for n, v in p.items())}"
                    cases.append(pytest.param(loss, p, k, y0, id=f"{label}:{k.where}:y={y0}"))
    return cases


@pytest.mark.parametrize(("loss", "p", "kink", "y0"), loss_kink_cases())
def test_loss_at_and_near_its_kinks(loss: Loss, p: dict[str, float], kink: Kink, y0: float) -> None:
    y = [y0, 1.0, -1.0]
    n = len(y)
    at = kink.at(y0, p)
    left, right, reported = kink.left(y0, n, p), kink.right(y0, n, p), kink.reported(y0, n, p)
    a = [at, 0.3, 0.2]
    value = loss_value(loss, y, p)
    an, _ = loss_graph(loss, a, y, p)
    assert an[0].adjoint == reported
    assert loss_gradient(loss, a, y, p)[0] == reported

    def along(t: float) -> float:
        return value([t, *a[1:]])

    assert one_sided_close(one_sided(along, at, -1.0), left, along(at))
    assert one_sided_close(one_sided(along, at, 1.0), right, along(at))

    args = (",".join(repr(v) for v in a), ",".join(repr(v) for v in y))
    params = [f"{k}={v!r}" for k, v in p.items()]
    trace = derive(loss.name, *args, params)
    assert trace.gradient[0] == reported
    assert trace.agreement.ok
    (found,) = trace.points[0].kinks
    assert (found.left, found.right, found.differentiable) == (left, right, left == right)
    assert one_sided_close(found.numeric_left, left, along(at))
    assert one_sided_close(found.numeric_right, right, along(at))

    for offset in (-NEAR, NEAR):
        near = [at + offset, *a[1:]]
        an, _ = loss_graph(loss, near, y, p)
        closed = loss_gradient(loss, near, y, p)
        numeric = partial(value, near, 0)
        assert close(an[0].adjoint, closed[0]) and close(an[0].adjoint, numeric)


# ---- the sheet's identities ------------------------------------------------------------------

SHEET_POINTS = [-50.0, -3.0, -0.3, 0.0, 0.3, 0.5, 2.0, 50.0]


@pytest.mark.parametrize("x", SHEET_POINTS)
def test_sigmoid_prime_is_sigma_times_one_minus_sigma(x: float) -> None:
    rec = next(a for a in ACTIVATIONS if a.name == "sigmoid")
    xn, out, _ = graph_at(rec, x, {})
    s = out.value
    assert close(xn.adjoint, s * (1 - s), rel=1e-9)


@pytest.mark.parametrize("x", SHEET_POINTS)
def test_tanh_prime_is_one_minus_tanh_squared(x: float) -> None:
    rec = next(a for a in ACTIVATIONS if a.name == "tanh")
    xn, out, _ = graph_at(rec, x, {})
    # At |x| = 50 the graph's four paths cancel to rounding level while 1 − tanh² is ~1e-43.
    assert close(xn.adjoint, 1 - out.value**2, out.value, rel=1e-9, floor=1e-15)


def test_tanh_at_half_has_four_paths_summing_to_its_derivative() -> None:
    trace = derive("tanh", "0.5")
    (paths,) = trace.points[0].graph.paths
    assert paths.count == len(paths.paths) == 4
    assert math.isclose(sum(p.product for p in paths.paths), 0.786448, rel_tol=1e-6)
    # The sheet's closing line 1/(e^x + e^−x)² drops the factor 4 of its own quotient rule.
    e = math.exp(0.5) + math.exp(-0.5)
    assert math.isclose(paths.total, 4 / e**2, rel_tol=1e-12)


def test_sigmoid_graph_at_the_sheets_point() -> None:
    """u = −0.3, v = 0.740818, w = 1.740818, f = 0.574443, adjoints as swept backwards."""
    trace = derive("sigmoid", "0.3")
    nodes = {n.name: n for n in trace.points[0].graph.nodes}
    for name, value in {"u": -0.3, "v": 0.740818, "w": 1.740818, "f": 0.574443}.items():
        assert round(nodes[name].value, 6) == value
    w = nodes["w"].value
    # Exactly −1/w², which rounds to −0.329984 (issue 3's Done-when has −0.329989, a slip).
    assert nodes["w"].adjoint == nodes["v"].adjoint == -1 / w**2
    assert round(nodes["w"].adjoint, 6) == -0.329984
    assert round(nodes["u"].adjoint, 6) == -0.244458
    assert round(nodes["x"].adjoint, 6) == 0.244458


@pytest.mark.parametrize("a", [[1.0, 2.0, 3.0], [0.2, -1.5, 0.7, 3.1]])
def test_softmax_jacobian_is_the_sheets(a: list[float]) -> None:
    trace = derive("softmax", ",".join(map(repr, a)))
    s = trace.values
    for i, row in enumerate(trace.jacobian):
        for j, entry in enumerate(row):
            expected = s[i] * (1 - s[i]) if i == j else -s[i] * s[j]
            assert entry is not None and close(entry, expected, rel=1e-9)


def sheet_gradient(name: str, a: np.ndarray, y: np.ndarray, p: dict[str, float]) -> np.ndarray:
    """Each loss's gradient formula as the sheet states it (quadratic and bce: the registry's)."""
    n = len(a)
    if name == "cross_entropy":
        return -y / a
    if name == "hinge":
        return np.where(y * a >= 1, 0.0, -y)
    if name == "l1":
        return -np.sign(y - a) / n
    if name == "huber":
        r, d = y - a, p["delta"]
        return np.where(r < -d, d, np.where(r > d, -d, a - y)) / n
    if name == "mse":
        return 2 * (a - y) / n
    if name == "quadratic":
        return a - y
    if name == "binary_cross_entropy":
        return (a - y) / (a * (1 - a))
    raise KeyError(name)


@pytest.mark.parametrize("loss", [x for x in LOSSES if x.name != "cosine"], ids=lambda x: x.name)
@pytest.mark.parametrize("seed", range(5))
def test_loss_gradient_matches_the_sheets_formula(loss: Loss, seed: int) -> None:
    rng = random.Random(f"sheet-{loss.name}-{seed}")
    a, y = valid_example(loss, rng)
    for p in variants(loss.params):
        an, _ = loss_graph(loss, a, y, p)
        expected = sheet_gradient(loss.name, np.array(a), np.array(y), p)
        assert [close(x.adjoint, e) for x, e in zip(an, expected, strict=True)] == [True] * 3


def test_cosine_gradient_is_not_the_sheets_simplified_one() -> None:
    """The sheet's ∂C/∂a_i = −y_i/n is the gradient of −(1/n) Σ y_i a_i for normalised vectors,
    not of 1 − cos(y, a): even for unit vectors the exact gradient differs (it is orthogonal
    to a, since the cosine does not change with |a|)."""
    cosine = next(x for x in LOSSES if x.name == "cosine")
    assert any("normalised" in note for note in cosine.notes)
    rng = random.Random(3)
    for _ in range(5):
        a = np.array([rng.uniform(-1, 1) for _ in range(3)])
        y = np.array([rng.uniform(-1, 1) for _ in range(3)])
        a, y = a / np.linalg.norm(a), y / np.linalg.norm(y)
        an, _ = loss_graph(cosine, list(a), list(y), {})
        exact = np.array([x.adjoint for x in an])
        assert abs(float(exact @ a)) < 1e-12
        assert not np.allclose(exact, -y / 3, atol=1e-3)
        # With unit vectors the exact gradient is −(y − (y·a)a): the sheet's −y/n is neither it
        # nor proportional to it.
        assert np.allclose(exact, -(y - (y @ a) * a), atol=1e-12)
