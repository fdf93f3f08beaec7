"""derive is right at every point: each route (the graph, the closed form, the finite difference
where it resolves the derivative) against 60-digit mpmath, RELATIVELY, for |x| ≤ 700 on every
registered activation and loss; and the regressions of issue 15's derive items.

The references are written here, apart from the engine: each function's derivative in mpmath,
whose exponent is unbounded, so e^−1400 is an ordinary number. A route must be within 1e-12 of it
relatively, give or take only what a relative error of a few ε in the inputs moves the exact
derivative (4ε·Σ_k |x_k ∂f'/∂x_k|: at the root of silu' or at a = y for binary cross-entropy the
derivative is 0 and float64 cannot be relatively right there; anywhere else this is far below
1e-12 relative). Below the smallest normal float64 a number has lost bits, and only there is the
comparison absolute.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import jsonschema
import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcalc.derivation.agreement import routes
from gradcalc.derivation.engine import derive
from gradcalc.derivation.trace import DeriveTrace
from gradcalc.functions.activations import REGISTRY as ACTIVATIONS
from gradcalc.functions.losses import REGISTRY as LOSSES

mpmath.mp.dps = 60
EPS = sys.float_info.epsilon
TINY = sys.float_info.min
REL = 1e-12
EXAMPLES = int(os.environ.get("GRADCALC_FUZZ_EXAMPLES", "0")) or None
SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "schemas" / "derive.schema.json").read_text()
)

MP = mpmath.mpf
Vector = list[mpmath.mpf]


def _sigma(x: mpmath.mpf) -> mpmath.mpf:
    return 1 / (1 + mpmath.exp(-x))


def _step(x: mpmath.mpf, below: mpmath.mpf) -> mpmath.mpf:
    return MP(1) if x > 0 else below


# f'(x) of each elementwise activation at its default parameters.
ACTIVATION_PRIMES: dict[str, Callable[[mpmath.mpf], mpmath.mpf]] = {
    "identity": lambda x: MP(1),
    "sigmoid": lambda x: _sigma(x) * _sigma(-x),
    "tanh": lambda x: 1 / mpmath.cosh(x) ** 2,
    "relu": lambda x: _step(x, MP(0)),
    "leaky_relu": lambda x: _step(x, MP("0.01")),
    "prelu": lambda x: _step(x, MP("0.25")),
    "elu": lambda x: _step(x, mpmath.exp(x)),
    "softplus": _sigma,
    "silu": lambda x: _sigma(x) * (1 + x * _sigma(-x)),
}


def _norm(v: Vector) -> mpmath.mpf:
    return mpmath.sqrt(sum(t * t for t in v))


def _cosine_grad(a: Vector, y: Vector) -> Vector:
    na, ny = _norm(a), _norm(y)
    dot = sum(p * q for p, q in zip(a, y, strict=True))
    return [-q / (ny * na) + dot * p / (ny * na**3) for p, q in zip(a, y, strict=True)]


def _sign(v: mpmath.mpf) -> mpmath.mpf:
    return MP((v > 0) - (v < 0))


# ∂C/∂a of each loss at its default parameters (huber's δ = 1).
LOSS_GRADIENTS: dict[str, Callable[[Vector, Vector], Vector]] = {
    "quadratic": lambda a, y: [p - q for p, q in zip(a, y, strict=True)],
    "mse": lambda a, y: [2 * (p - q) / len(a) for p, q in zip(a, y, strict=True)],
    "l1": lambda a, y: [_sign(p - q) / len(a) for p, q in zip(a, y, strict=True)],
    "huber": lambda a, y: [max(-1, min(1, p - q)) / len(a) for p, q in zip(a, y, strict=True)],
    "cross_entropy": lambda a, y: [-q / p if q else MP(0) for p, q in zip(a, y, strict=True)],
    "binary_cross_entropy": lambda a, y: [
        (p - q) / (p * (1 - p)) for p, q in zip(a, y, strict=True)
    ],
    "hinge": lambda a, y: [-q if q * p < 1 else MP(0) for p, q in zip(a, y, strict=True)],
    "cosine": _cosine_grad,
}


# Where a gradient is by its nature a small difference of larger terms and no float64 form known
# here avoids it: the cosine gradient −(ŷ − cos·â)/‖a‖ nearly parallel, whose terms are of size
# 1/‖a‖ (its graph and closed form are then 1e-12 off relatively at a 0.7° angle). Allowed: a
# few ε of the terms, in units of 4ε like the slack.
INTRINSIC: dict[str, Callable[[Vector, Vector], mpmath.mpf]] = {
    "cosine": lambda a, y: 4 / _norm(a),
}


def _softmax_jacobian(z: Vector) -> list[Vector]:
    top = max(z)
    e = [mpmath.exp(v - top) for v in z]
    total = sum(e)
    s = [v / total for v in e]
    # 1 − s_i as Σ_{k≠i} s_k: at (0, 114) 1 − s₂ cancels 50 of the 60 digits.
    rest = [sum(v for k, v in enumerate(s) if k != i) for i in range(len(z))]
    return [
        [s[i] * rest[i] if i == j else -s[i] * s[j] for j in range(len(z))] for i in range(len(z))
    ]


def test_every_registry_entry_has_a_reference() -> None:
    elementwise = {k for k, r in ACTIVATIONS.items() if r.elementwise and k == r.name}
    assert elementwise == set(ACTIVATION_PRIMES)
    assert {k for k, r in LOSSES.items() if k == r.name} == set(LOSS_GRADIENTS)
    assert {k for k, r in ACTIVATIONS.items() if not r.elementwise} == {"softmax"}


def _sensitivity(fn: Callable[[Vector], Vector], x: Vector) -> list[mpmath.mpf]:
    """Σ_k |x_k ∂fn_i/∂x_k|, from 60-digit central differences: what a relative error of one
    unit in each x_k moves fn_i by (a huge number across a jump of a piecewise fn: lenient
    there, as a point within 1e-20 of a kink deserves)."""
    total = [MP(0)] * len(fn(x))
    for k in range(len(x)):
        h = MP("1e-20") * max(1, abs(x[k]))
        up, down = list(x), list(x)
        up[k] += h
        down[k] -= h
        for i, (u, d) in enumerate(zip(fn(up), fn(down), strict=True)):
            total[i] += abs(x[k] * (u - d) / (2 * h))
    return total


def _assert_close(route: str, got: float | None, exact: mpmath.mpf, slack: mpmath.mpf, where):
    if abs(exact) > sys.float_info.max:  # past float64: no number, and a note says why
        assert got is None or not math.isfinite(got), (route, got, where)
        return
    assert got is not None and math.isfinite(got), (route, got, where)
    gap = abs(MP(got) - exact)
    allowed = REL * abs(exact) + 4 * EPS * slack + 4 * TINY
    assert gap <= allowed, (route, got, float(exact), float(gap / max(abs(exact), TINY)), where)


def _check_routes(trace: DeriveTrace, exact: list[Vector], slack: list[list[mpmath.mpf]]) -> None:
    """Every route of every entry against the reference, and no false disagreement."""
    point = trace.points[0]
    where = (trace.name, point.at, trace.target)
    beyond = any(abs(v) > sys.float_info.max for row in exact for v in row)
    assert point.agreement.ok or beyond, (where, [n.kind for n in point.notes])
    if point.kinks:
        return  # on a kink: the one-sided slopes are tests/test_registry_derivatives.py's
    for i, row in enumerate(exact):
        for j, truth in enumerate(row):
            r = routes(point, i, j)
            s = slack[i][j]
            _assert_close("reported", point.jacobian[i][j], truth, s, where)
            if r.closed is not None:
                _assert_close("closed form", r.closed, truth, s, where)
            if r.graph is not None:
                extra = 0 if r.graph_resolves else r.graph_rounding / (4 * EPS)
                _assert_close("graph", r.graph, truth, s + extra, where)
            if r.numeric is not None and r.numeric_resolves:
                gap = abs(MP(r.numeric) - truth)
                assert gap <= 2e-6 * abs(truth) + 4 * EPS * s + 4 * TINY, (
                    "finite difference",
                    r.numeric,
                    float(truth),
                    where,
                )


def fuzz_settings(default: int) -> settings:
    return settings(
        max_examples=EXAMPLES or default,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


# Points over the whole range, with the scales where cancellation used to bite (|x| ≈ 10–40).
WIDE = st.one_of(
    st.floats(min_value=-700, max_value=700, allow_nan=False),
    st.floats(min_value=-40, max_value=40, allow_nan=False),
    st.floats(min_value=-1e-3, max_value=1e-3, allow_nan=False),
)


@pytest.mark.parametrize("name", sorted(ACTIVATION_PRIMES))
@fuzz_settings(30)
@given(x=WIDE)
def test_activation_routes_match_mpmath_relatively(name: str, x: float) -> None:
    prime = ACTIVATION_PRIMES[name]
    trace = derive(name, repr(x))
    exact = prime(MP(x))
    slack = _sensitivity(lambda v: [prime(v[0])], [MP(x)])[0]
    _check_routes(trace, [[exact]], [[slack]])


@fuzz_settings(30)
@given(z=st.lists(WIDE, min_size=1, max_size=4))
def test_softmax_routes_match_mpmath_relatively(z: list[float]) -> None:
    trace = derive("softmax", ",".join(repr(v) for v in z))
    zs = [MP(v) for v in z]
    exact = _softmax_jacobian(zs)
    n = len(z)
    slack_flat = _sensitivity(lambda v: [e for row in _softmax_jacobian(v) for e in row], zs)
    slack = [slack_flat[i * n : (i + 1) * n] for i in range(n)]
    _check_routes(trace, exact, slack)


def _loss_point(name: str) -> st.SearchStrategy[tuple[list[float], list[float]]]:
    """(a, y) in the loss's domain, 1 to 3 units."""
    unit = st.floats(min_value=0, max_value=1, exclude_min=True, exclude_max=True)
    if name == "binary_cross_entropy":
        a_s, y_s = unit, st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 1))
    elif name == "cross_entropy":
        a_s = st.one_of(unit, st.floats(min_value=1e-300, max_value=700))
        y_s = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 10))
    elif name == "hinge":
        a_s, y_s = WIDE, st.sampled_from([-1.0, 1.0])
    else:
        a_s, y_s = WIDE, WIDE
    pair = st.tuples(a_s, y_s)
    points = st.lists(pair, min_size=1, max_size=3).map(
        lambda ps: ([a for a, _ in ps], [y for _, y in ps])
    )
    if name == "cosine":
        # ‖a‖² of an a (or y·a of a y) below 1e-154 underflows and the graph leaves float64;
        # then the closed form alone stands, and nearly parallel it is a difference of terms of
        # size 1/‖a‖, which the finite difference cannot arbitrate.
        points = points.filter(lambda p: min(max(map(abs, v)) for v in p) > 1e-100)
    return points


@pytest.mark.parametrize("name", sorted(LOSS_GRADIENTS))
@fuzz_settings(30)
@given(data=st.data())
def test_loss_routes_match_mpmath_relatively(name: str, data: st.DataObject) -> None:
    a, y = data.draw(_loss_point(name))
    trace = derive(name, ",".join(map(repr, a)), ",".join(map(repr, y)))
    grad = LOSS_GRADIENTS[name]
    av, yv = [MP(v) for v in a], [MP(v) for v in y]
    exact = grad(av, yv)
    # Rounding in y moves the computation as rounding in a does (cosine normalises both).
    by_a = _sensitivity(lambda v: grad(v, yv), av)
    by_y = _sensitivity(lambda v: grad(av, v), yv)
    intrinsic = INTRINSIC.get(name, lambda a, y: MP(0))(av, yv)
    slack = [p + q + intrinsic for p, q in zip(by_a, by_y, strict=True)]
    _check_routes(trace, [exact], [slack])


# ---- issue 15, item 1: tanh far out -------------------------------------------------------------


@pytest.mark.parametrize("x", [10.0, 15.0, 18.0, 19.0, 20.0, 30.0, -20.0, 300.0])
def test_tanh_far_out_is_the_whole_derivative(run_cli, x: float) -> None:
    """Was half the derivative from |x| ≈ 19 (8.4967e-18 at 20), reported as agreeing."""
    result = run_cli(["derive", "tanh", f"--at={x}", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    exact = 1 / mpmath.cosh(MP(x)) ** 2
    for route in (doc["derivative"], doc["closed_form"], doc["graph"]["nodes"][0]["adjoint"]):
        assert abs(MP(route) - exact) <= REL * exact, (route, float(exact))
    if x == 20.0:
        assert doc["derivative"] == pytest.approx(1.69934e-17, rel=1e-5)
        (note,) = [n for n in doc["notes"] if "cannot resolve" in n]
        assert "trusted: the graph and the closed form" in note


def test_a_tiny_derivative_is_held_to_relative_agreement(run_cli, monkeypatch) -> None:
    """With the old closed form 1 − tanh², 0 at x = 20, the routes agreed within an absolute
    floor of 1e-9; now the relative gap is a disagreement, and no route is trusted alone."""
    from gradcalc.derivation import subjects

    old = replace(ACTIVATIONS["tanh"], prime=lambda z, a, p: 1.0 - a * a)
    monkeypatch.setitem(subjects.ACTIVATIONS, "tanh", old)
    result = run_cli(["derive", "tanh", "--at", "20"])
    assert result.exit_code == 3, result.output
    assert "closed form 0" in result.stderr and "graph 1.69934e-17" in result.stderr


# ---- item 2: binary cross-entropy at a small a ------------------------------------------------


def test_bce_at_a_tiny_output_agrees_and_has_the_right_value(run_cli) -> None:
    """Exited 3: the finite difference gave 0, and the value was ln of the rounded 1 − a."""
    result = run_cli(
        ["derive", "binary_cross_entropy", "--at", "1e-12", "--target", "0", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    a = MP("1e-12")
    assert abs(MP(doc["value"]) + mpmath.log1p(-a)) <= REL * -mpmath.log1p(-a)
    assert doc["gradient"][0] == pytest.approx(1.000000000001, rel=1e-15)
    assert doc["numeric"]["gradient"][0] == pytest.approx(1.0, rel=1e-6)
    assert doc["agreement"]["ok"] is True


# ---- item 3: the softmax Jacobian's diagonal where an output saturates -------------------------


@pytest.mark.parametrize("z", [(30.0, -30.0, 0.0), (100.0, -100.0, 50.0), (700.0, 0.0, -700.0)])
def test_softmax_diagonal_keeps_its_digits(run_cli, z: tuple[float, ...]) -> None:
    """J₀₀ was 9.3608e-14 for 9.3576e-14 at (30, −30, 0), and 0 for 1.93e-22 at (100, −100, 50)."""
    at = ",".join(map(repr, z))
    result = run_cli(["derive", "softmax", "--at", at, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    exact = _softmax_jacobian([MP(v) for v in z])
    for i in range(3):
        truth = exact[i][i]
        if truth < TINY:
            continue
        for matrix in (doc["jacobian"], doc["closed_form"]["jacobian"]):
            assert abs(MP(matrix[i][i]) - truth) <= REL * truth, (i, matrix[i][i], float(truth))


def test_the_softmax_vjp_keeps_the_sheet_form_for_hand_rounded_outputs() -> None:
    """A hand-rounded a (its sum is not 1) is worked as the sheet writes it:
    a_j(g_j − Σ a_i g_i)."""
    softmax = ACTIVATIONS["softmax"]
    a, g = np.array([[0.67, 0.24, 0.09]]), np.array([[0.5, -1.0, 2.0]])
    sheet = a * (g - np.sum(a * g, axis=-1, keepdims=True))
    np.testing.assert_array_equal(softmax.vjp(np.array([[1.0, 0.0, -1.0]]), a, g, {}), sheet)


# ---- item 5: softmax of 100 values ----------------------------------------------------------


def test_softmax_of_100_values_writes_the_jacobian_not_every_sweep(run_cli) -> None:
    """Took 4 s and wrote 4 MB, mostly 100 sweeps of 200 nodes each."""
    at = ",".join(f"{i / 10 - 5:g}" for i in range(100))
    result = run_cli(["derive", "softmax", "--at", at, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert len(result.stdout) < 2_000_000
    assert len(doc["jacobian"]) == 100 and all(len(row) == 100 for row in doc["jacobian"])
    assert doc["sweeps_listed"] == 10 and len(doc["sweep"]) == 10
    assert all(len(node["adjoints"]) == 10 for node in doc["graph"]["nodes"])
    sums = [sum(row) for row in doc["jacobian"]]  # Σ_j ∂s_i/∂z_j = 0: softmax is shift-invariant
    assert max(abs(v) for v in sums) < 1e-15


def test_three_outputs_keep_every_sweep(run_cli) -> None:
    doc = json.loads(run_cli(["derive", "softmax", "--at", "1,2,3", "--format", "json"]).stdout)
    assert len(doc["sweep"]) == 3 and "sweeps_listed" not in doc
