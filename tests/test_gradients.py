"""Analytic gradients against central finite differences, for every activation × loss pair.

The pairs come from the registries, so a new activation or loss is covered without touching this
file. Which output activation a loss may sit on is worked out from the loss's own `check_output`
(probing each activation over a range of z), and targets from its `check_target`.
"""

from __future__ import annotations

import dataclasses
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from gradcalc.functions.activations import ACTIVATIONS
from gradcalc.functions.losses import LOSSES
from gradcalc.functions.registry import Activation, ElementwiseActivation, Loss, defaults
from gradcalc.step.config import LayerSpec, NetworkSpec, load_text
from gradcalc.step.engine import Network

H = 1e-6  # central-difference step
TOL = 1e-6  # relative error allowed between analytic and numeric gradients
SIZES = (3, 4, 3)
BATCH = 4

ACT_BY_NAME = {a.name: a for a in ACTIVATIONS}
LOSS_BY_NAME = {loss.name: loss for loss in LOSSES}


def _seed(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode())


# ---- which targets and output activations each loss accepts ----------------------------------


def _target_candidates(rng: np.random.Generator, m: int, n: int) -> Iterator[np.ndarray]:
    # Values strictly inside (0, 1): fine for regression, probabilities and cosine (non-zero).
    yield rng.uniform(0.1, 0.9, (m, n))
    # Class labels ±1 (hinge), with both signs present.
    signs = rng.choice([-1.0, 1.0], (m, n))
    signs[:, 0], signs[:, -1] = 1.0, -1.0
    yield signs


def make_target(loss: Loss, rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    for y in _target_candidates(rng, m, n):
        if loss.check_target is None or loss.check_target(y) is None:
            return y
    raise AssertionError(f"no test target satisfies loss {loss.name!r}: extend _target_candidates")


def _probe_z(n: int) -> np.ndarray:
    """Pre-activations an output layer may see: all-negative, mixed and all-positive rows."""
    rng = np.random.default_rng(0)
    rows = [np.full(n, -3.0), np.full(n, -0.2), np.linspace(-2, 2, n), np.full(n, 2.5)]
    rows += list(rng.uniform(-4, 4, (16, n)))
    return np.array(rows)


def output_ok(act: Activation, loss: Loss) -> bool:
    """True if `act` as the output layer keeps `loss` defined for any reasonable z."""
    if loss.check_output is None:
        return True
    z = _probe_z(SIZES[-1])
    with np.errstate(all="ignore"):
        a = act.forward(z, defaults(act.params))
    y = make_target(loss, np.random.default_rng(1), z.shape[0], z.shape[1])
    return bool(np.all(np.isfinite(a))) and loss.check_output(a, y) is None


def _fallback_output(loss: Loss) -> Activation:
    preferred = ["sigmoid", "softmax", "identity"]
    ordered = [ACT_BY_NAME[n] for n in preferred if n in ACT_BY_NAME] + list(ACTIVATIONS)
    for act in ordered:
        if output_ok(act, loss):
            return act
    raise AssertionError(f"no output activation keeps loss {loss.name!r} defined")


def pairs() -> list[tuple[str, str, str]]:
    """(hidden activation, output activation, loss) for every activation × loss."""
    out = []
    for loss in LOSSES:
        for act in ACTIVATIONS:
            output = act if output_ok(act, loss) else _fallback_output(loss)
            out.append((act.name, output.name, loss.name))
    return out


PAIRS = pairs()
CASES = [("one", 1, "mean"), ("mean", BATCH, "mean"), ("sum", BATCH, "sum")]


def test_pairing_follows_the_loss_checks() -> None:
    """The pairing rules the issue names are what the registries' checks give."""
    valid = {(h, loss) for h, o, loss in PAIRS if h == o}
    expected_valid = [
        ("softmax", "cross_entropy"),
        ("sigmoid", "cross_entropy"),
        ("sigmoid", "binary_cross_entropy"),
        ("sigmoid", "quadratic"),
        ("relu", "mse"),
        ("identity", "hinge"),
        ("tanh", "cosine"),
    ]
    for pair in expected_valid:
        if pair[0] in ACT_BY_NAME and pair[1] in LOSS_BY_NAME:
            assert pair in valid
    for pair in [("identity", "cross_entropy"), ("tanh", "binary_cross_entropy")]:
        if pair[0] in ACT_BY_NAME and pair[1] in LOSS_BY_NAME:
            assert pair not in valid
    assert len(PAIRS) == len(ACTIVATIONS) * len(LOSSES)


# ---- a random network and its cost ----------------------------------------------------------


def make_spec(
    hidden: str, output: str, loss_name: str, m: int, reduction: str, seed: int
) -> NetworkSpec:
    rng = np.random.default_rng(seed)
    loss = LOSS_BY_NAME[loss_name]
    acts = [ACT_BY_NAME[hidden], ACT_BY_NAME[output]]
    layers = []
    for (n_in, n_out), act in zip(pairwise(SIZES), acts, strict=True):
        params = defaults(act.params)
        # Learnable parameters start away from their default so their gradient is exercised.
        for p in act.params:
            if p.learnable:
                params[p.name] = p.default + 0.1
        layers.append(
            LayerSpec(
                weights=rng.normal(0.0, 0.8, (n_out, n_in)),
                biases=rng.normal(0.0, 0.3, n_out),
                activation=act,
                params=params,
            )
        )
    return NetworkSpec(
        source="random.yaml",
        x=rng.normal(0.0, 1.0, (m, SIZES[0])),
        y=make_target(loss, rng, m, SIZES[-1]),
        batch=m > 1,
        loss=loss,
        loss_params=defaults(loss.params),
        learning_rate=0.1,
        steps=1,
        reduction=reduction,
        layers=tuple(layers),
    )


def make_live_spec(
    hidden: str, output: str, loss_name: str, m: int, reduction: str, *key: str
) -> NetworkSpec:
    """A random network in which every layer gets a non-zero weight gradient.

    Some draws are legitimately flat (a dead ReLU output, or l1 through a softmax with every
    residual of one sign), which would make the comparison vacuous; draw again, deterministically.
    """
    for attempt in range(50):
        spec = make_spec(hidden, output, loss_name, m, reduction, _seed(*key, str(attempt)))
        trace = Network(spec).step(1)
        if all(np.linalg.norm(r.grad_weights) > 1e-6 for r in trace.layers):
            return spec
    raise AssertionError(f"no random {hidden}/{output}/{loss_name} network has live gradients")


def cost(spec: NetworkSpec) -> float:
    return Network(spec).forward_trace().loss


def _with_layer(spec: NetworkSpec, i: int, **changes: Any) -> NetworkSpec:
    layers = list(spec.layers)
    layers[i] = dataclasses.replace(layers[i], **changes)
    return dataclasses.replace(spec, layers=tuple(layers))


def numeric_gradient(spec: NetworkSpec, i: int, what: str) -> np.ndarray:
    """Central differences of the reduced cost w.r.t. layers[i].weights or .biases."""
    base = getattr(spec.layers[i], what)
    grad = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        values = []
        for sign in (1.0, -1.0):
            changed = base.copy()
            changed[index] += sign * H
            values.append(cost(_with_layer(spec, i, **{what: changed})))
        grad[index] = (values[0] - values[1]) / (2 * H)
    return grad


def numeric_param_gradient(spec: NetworkSpec, i: int, name: str) -> float:
    values = []
    for sign in (1.0, -1.0):
        params = dict(spec.layers[i].params)
        params[name] += sign * H
        values.append(cost(_with_layer(spec, i, params=params)))
    return (values[0] - values[1]) / (2 * H)


def fd_noise(spec: NetworkSpec) -> float:
    """The rounding error of a central difference: about eps·|C|/h (a generous multiple of it)."""
    return 100 * np.finfo(float).eps * max(1.0, abs(cost(spec))) / H


def relative_error(
    analytic: np.ndarray | float, numeric: np.ndarray | float, noise: float = 0.0
) -> float:
    """‖g − n‖ / (‖g‖ + ‖n‖), after forgiving the finite differences' own rounding noise."""
    g, n = np.asarray(analytic, dtype=float), np.asarray(numeric, dtype=float)
    diff = max(0.0, float(np.linalg.norm(g - n)) - noise * np.sqrt(g.size))
    return diff / max(1e-8, float(np.linalg.norm(g) + np.linalg.norm(n)))


def entrywise_error(analytic: np.ndarray, numeric: np.ndarray, noise: float) -> float:
    """Max per-entry |g − n| / (|g| + |n|), after forgiving the rounding noise."""
    diff = np.maximum(0.0, np.abs(analytic - numeric) - noise)
    return float(np.max(diff / np.maximum(1e-8, np.abs(analytic) + np.abs(numeric))))


def check_gradients(spec: NetworkSpec) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trace = Network(spec).step(1)
    assert trace.loss == pytest.approx(cost(spec), rel=1e-12)
    noise = fd_noise(spec)
    total = 0.0
    for i, record in enumerate(trace.layers):
        for what, analytic in (("weights", record.grad_weights), ("biases", record.grad_biases)):
            numeric = numeric_gradient(spec, i, what)
            assert analytic.shape == numeric.shape
            err = relative_error(analytic, numeric, noise)
            assert err <= TOL, f"layers[{i}].{what}: relative error {err:.3g}"
            err = entrywise_error(analytic, numeric, noise)
            assert err <= TOL, f"layers[{i}].{what}: an entry's relative error is {err:.3g}"
            total += float(np.linalg.norm(analytic))
        for p in spec.layers[i].activation.params:
            if not p.learnable:
                continue
            assert p.name in record.grad_params, f"no gradient for learnable {p.name!r}"
            analytic_p = record.grad_params[p.name]
            numeric_p = numeric_param_gradient(spec, i, p.name)
            err = relative_error(analytic_p, numeric_p, noise)
            assert err <= TOL, f"layers[{i}] parameter {p.name}: relative error {err:.3g}"
            # SGD moves the learnable parameter like a weight.
            assert record.params[p.name] == pytest.approx(
                spec.layers[i].params[p.name] - spec.learning_rate * analytic_p, rel=1e-12
            )
    assert total > 0, "every gradient is zero: the check would be vacuous"


@pytest.mark.parametrize(("case", "m", "reduction"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize(
    ("hidden", "output", "loss"), PAIRS, ids=[f"{h}-{o}-{l}" for h, o, l in PAIRS]
)
def test_gradients_match_central_differences(
    hidden: str, output: str, loss: str, case: str, m: int, reduction: str
) -> None:
    spec = make_live_spec(hidden, output, loss, m, reduction, hidden, output, loss, case)
    check_gradients(spec)


@pytest.mark.parametrize("act", [a.name for a in ACTIVATIONS])
def test_activation_as_both_layers_with_quadratic(act: str) -> None:
    """Every activation is also checked as the output layer (quadratic accepts any output)."""
    spec = make_live_spec(act, act, "quadratic", BATCH, "mean", act, "both")
    check_gradients(spec)


def test_huber_linear_region() -> None:
    """A small δ puts residuals on both sides of the kink; the default δ = 1 rarely leaves ½r²."""
    if "huber" not in LOSS_BY_NAME:
        pytest.skip("no huber loss registered")
    spec = make_spec("tanh", "identity", "huber", BATCH, "mean", _seed("huber-small-delta"))
    spec = dataclasses.replace(spec, loss_params={"delta": 0.3})
    a = Network(spec).forward_trace().a[-1]
    r = np.abs(spec.y - a)
    assert np.any(r > 0.3) and np.any(r < 0.3)
    check_gradients(spec)


def test_sum_reduction_is_m_times_mean() -> None:
    mean = make_spec("tanh", "sigmoid", "quadratic", BATCH, "mean", _seed("reduction"))
    total = dataclasses.replace(mean, reduction="sum")
    g_mean, g_sum = Network(mean).step(1), Network(total).step(1)
    assert g_sum.loss == pytest.approx(BATCH * g_mean.loss, rel=1e-12)
    for lm, ls in zip(g_mean.layers, g_sum.layers, strict=True):
        np.testing.assert_allclose(ls.grad_weights, BATCH * lm.grad_weights, rtol=1e-12)
        np.testing.assert_allclose(ls.grad_biases, BATCH * lm.grad_biases, rtol=1e-12)
        # δ is per example and does not depend on the reduction.
        np.testing.assert_allclose(ls.delta, lm.delta, rtol=1e-12)


def _yaml_matrix(a: np.ndarray) -> str:
    return "[" + ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in a) + "]"


def _yaml_vector(a: np.ndarray) -> str:
    return "[" + ", ".join(repr(float(v)) for v in a) + "]"


def test_spec_through_yaml_gives_the_same_gradients() -> None:
    """The loader reads random floats (including 1e-05-style exponents) exactly."""
    spec = make_spec("prelu", "softmax", "cross_entropy", BATCH, "sum", _seed("yaml"))
    spec.layers[0].weights[0, 0] = 1.5e-05  # repr gives an exponent without a dot
    layers = []
    for layer in spec.layers:
        act = layer.activation.name
        params = "".join(f", {k}: {v!r}" for k, v in layer.params.items())
        layers.append(
            f"  - weights: {_yaml_matrix(layer.weights)}\n"
            f"    biases: {_yaml_vector(layer.biases)}\n"
            f"    activation: {{name: {act}{params}}}\n"
        )
    text = (
        f"inputs: {_yaml_matrix(spec.x)}\n"
        f"targets: {_yaml_matrix(spec.y)}\n"
        f"loss: {spec.loss.name}\n"
        f"learning_rate: {spec.learning_rate!r}\n"
        f"reduction: {spec.reduction}\n"
        "layers:\n" + "".join(layers)
    )
    loaded = load_text(text, "test.yaml")
    np.testing.assert_array_equal(loaded.x, spec.x)
    np.testing.assert_array_equal(loaded.y, spec.y)
    for a, b in zip(loaded.layers, spec.layers, strict=True):
        np.testing.assert_array_equal(a.weights, b.weights)
        np.testing.assert_array_equal(a.biases, b.biases)
        assert a.params == b.params
    direct, through = Network(spec).step(1), Network(loaded).step(1)
    for a, b in zip(direct.layers, through.layers, strict=True):
        np.testing.assert_array_equal(a.grad_weights, b.grad_weights)
        assert a.grad_params == b.grad_params
    check_gradients(loaded)


# ---- fused losses: same value as the formula, stable for large |z| ---------------------------


def _fused_cases() -> list[tuple[str, str]]:
    return [(loss.name, act) for loss in LOSSES for act in loss.fused]


FUSED = _fused_cases()


def test_the_issue_s_fused_paths_exist() -> None:
    for pair in [
        ("cross_entropy", "softmax"),
        ("cross_entropy", "sigmoid"),
        ("binary_cross_entropy", "sigmoid"),
    ]:
        assert pair in FUSED


@contextmanager
def strict_numpy() -> Iterator[None]:
    """Overflow, division by zero and invalid operations fail the test (underflow to 0 is fine)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            yield


def _fused_target(loss: Loss, act: str, rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    y = make_target(loss, rng, m, n)
    if act == "softmax" and loss.name == "cross_entropy":
        y = y / y.sum(axis=-1, keepdims=True)  # a distribution, as with one-hot classes
    return y


@pytest.mark.parametrize(("loss_name", "act_name"), FUSED, ids=[f"{lo}+{a}" for lo, a in FUSED])
def test_fused_value_and_delta_match_the_formula(loss_name: str, act_name: str) -> None:
    loss, act = LOSS_BY_NAME[loss_name], ACT_BY_NAME[act_name]
    rng = np.random.default_rng(_seed("fused", loss_name, act_name))
    z = rng.uniform(-4, 4, (6, 3))
    y = _fused_target(loss, act_name, rng, 6, 3)
    params = defaults(loss.params)
    fused = loss.fused[act_name]
    with strict_numpy():
        a = act.forward(z, defaults(act.params))
        unfused = loss.value(a, y, params)
        value = fused.value(z, y, params)
        delta = fused.delta(z, y, params)
        chain = act.backward(z, a, loss.grad(a, y, params), defaults(act.params))
    assert value.shape == (6,)
    np.testing.assert_allclose(value, unfused, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(delta, chain, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("loss_name", "act_name"), FUSED, ids=[f"{lo}+{a}" for lo, a in FUSED])
@pytest.mark.parametrize("scale", [1e3, -1e3])
def test_fused_paths_are_finite_at_large_z(loss_name: str, act_name: str, scale: float) -> None:
    loss = LOSS_BY_NAME[loss_name]
    rng = np.random.default_rng(_seed("fused-large", loss_name, act_name))
    z = np.array([[scale, -scale, 0.5 * scale], [scale, scale, scale], [-scale, 0.0, scale]])
    y = _fused_target(loss, act_name, rng, 3, 3)
    params = defaults(loss.params)
    fused = loss.fused[act_name]
    with strict_numpy():
        value = fused.value(z, y, params)
        delta = fused.delta(z, y, params)
    assert np.all(np.isfinite(value)) and np.all(value >= 0)
    assert np.all(np.isfinite(delta))


@pytest.mark.parametrize(("loss_name", "act_name"), FUSED, ids=[f"{lo}+{a}" for lo, a in FUSED])
def test_fused_network_step_at_large_z_is_warning_free(loss_name: str, act_name: str) -> None:
    """A whole step whose output pre-activations are ±1e3 stays finite, with no warnings."""
    spec = make_spec("tanh", act_name, loss_name, BATCH, "mean", _seed("big", loss_name, act_name))
    out = spec.layers[-1]
    weights = np.zeros_like(out.weights)
    biases = np.array([1e3, -1e3, 1e3])[: out.biases.shape[0]]
    spec = _with_layer(spec, len(spec.layers) - 1, weights=weights, biases=biases)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trace = Network(spec).step(1)
    assert np.isfinite(trace.loss)
    for record in trace.layers:
        for array in (record.delta, record.grad_weights, record.grad_biases, record.weights):
            assert np.all(np.isfinite(array))


def test_strict_numpy_catches_overflow() -> None:
    with strict_numpy(), pytest.raises(FloatingPointError):
        np.exp(np.array([1e3]))


# ---- every activation at |z| = 1e3 ----------------------------------------------------------

BIG_Z = np.array([[1e3, -1e3, 0.5, -0.5], [-1e3, -1e3, -1e3, -1e3], [1e3, 1e3, 1e3, 1e3]])


@pytest.mark.parametrize("act_name", [a.name for a in ACTIVATIONS])
def test_activation_is_finite_and_warning_free_at_large_z(act_name: str) -> None:
    act = ACT_BY_NAME[act_name]
    p = defaults(act.params)
    with strict_numpy():
        a = act.forward(BIG_Z, p)
        if isinstance(act, ElementwiseActivation):
            derivative = act.prime(BIG_Z, a, p)
        else:
            derivative = act.backward(BIG_Z, a, np.ones_like(BIG_Z), p)
        if act.param_partials is not None:
            partials = act.param_partials(BIG_Z, a, p)
            assert all(np.all(np.isfinite(v)) for v in partials.values())
    assert a.shape == BIG_Z.shape
    assert np.all(np.isfinite(a))
    assert np.all(np.isfinite(derivative))


@pytest.mark.parametrize("act_name", [a.name for a in ACTIVATIONS])
def test_activation_derivative_matches_central_differences(act_name: str) -> None:
    """forward/prime (or the vector-Jacobian product) agree at random moderate z."""
    act = ACT_BY_NAME[act_name]
    p = defaults(act.params)
    rng = np.random.default_rng(_seed("prime", act_name))
    z = rng.uniform(-3, 3, (5, 4))
    g = rng.normal(size=z.shape)  # an arbitrary ∂C/∂a
    a = act.forward(z, p)
    analytic = act.backward(z, a, g, p)
    numeric = np.zeros_like(z)

    def f(zz: np.ndarray) -> float:
        return float(np.sum(g * act.forward(zz, p)))

    for index in np.ndindex(z.shape):
        plus, minus = z.copy(), z.copy()
        plus[index] += H
        minus[index] -= H
        numeric[index] = (f(plus) - f(minus)) / (2 * H)
    assert relative_error(analytic, numeric) <= TOL


def test_sigmoid_saturates_cleanly() -> None:
    sigmoid = ACT_BY_NAME["sigmoid"]
    with strict_numpy():
        a = sigmoid.forward(np.array([[-1e3, 1e3]]), {})
    assert a[0, 0] >= 0.0 and a[0, 0] < 1e-300
    assert a[0, 1] == 1.0
