"""The lean steps (--show summary, final, and steps not shown in full) against the full ones.

A lean step skips the step's records and checks finiteness on one sum, but must give the same
numbers to the last bit and the same errors: every activation × loss pair and every update rule
is run both ways and compared exactly.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from test_gradients import BATCH, PAIRS, make_spec

from gradcalc.errors import ConfigError, NumericError
from gradcalc.functions.activations import REGISTRY as ACTIVATIONS
from gradcalc.functions.activations import sigmoid
from gradcalc.functions.losses import LOSSES
from gradcalc.functions.optimizers import OPTIMIZERS
from gradcalc.functions.registry import defaults
from gradcalc.step.config import NetworkSpec
from gradcalc.step.engine import Stream, summarize
from gradcalc.step.trace import StepSummary, StepTrace

STEPS = 4


def _never(step: int) -> bool:
    return False


def _both(spec: NetworkSpec, norms: bool = True) -> tuple[Stream, list, Stream, list]:
    full = Stream(spec, steps=STEPS)
    full_steps = [summarize(st, norms) for st in full]
    lean = Stream(spec, steps=STEPS, full=_never, norms=norms)
    lean_steps = list(lean)
    return full, full_steps, lean, lean_steps


def _assert_same_run(spec: NetworkSpec) -> None:
    for norms in (True, False):
        full, full_steps, lean, lean_steps = _both(spec, norms)
        assert all(isinstance(st, StepSummary) for st in lean_steps)
        for f, g in zip(full_steps, lean_steps, strict=True):
            assert (f.step, f.loss, f.data_loss, f.penalty) == (
                g.step,
                g.loss,
                g.data_loss,
                g.penalty,
            )
            if norms:
                assert np.array_equal(f.norms, g.norms)
            else:
                assert g.norms is None
        a, b = full.finish(), lean.finish()
        assert a.final.loss == b.final.loss
        assert np.array_equal(a.final.output, b.final.output)
        for p, q in zip(a.parameters, b.parameters, strict=True):
            assert np.array_equal(p.weights, q.weights) and np.array_equal(p.biases, q.biases)
            assert p.params == q.params


@pytest.mark.parametrize(("hidden", "output", "loss"), PAIRS, ids=["-".join(p) for p in PAIRS])
def test_lean_steps_are_the_full_steps_to_the_bit(hidden: str, output: str, loss: str) -> None:
    _assert_same_run(make_spec(hidden, output, loss, BATCH, "mean", 7))


@pytest.mark.parametrize("rule", [rule.name for rule in OPTIMIZERS])
@pytest.mark.parametrize("decay", [0.0, 0.01])
def test_lean_steps_follow_every_update_rule(rule: str, decay: float) -> None:
    spec = make_spec(
        "prelu" if "prelu" in ACTIVATIONS else "tanh", "sigmoid", "mse", BATCH, "sum", 3
    )
    record = next(r for r in OPTIMIZERS if r.name == rule)
    spec = dataclasses.replace(
        spec, optimizer=record, optimizer_params=defaults(record.params), weight_decay=decay
    )
    _assert_same_run(spec)


def _error(stream: Stream) -> str:
    # A domain error before any update is the config's (exit 2, issue 10); after, divergence.
    with pytest.raises((NumericError, ConfigError)) as info:
        for _ in stream:
            pass
    return str(info.value)


@pytest.mark.parametrize(
    ("hidden", "output", "loss", "eta"),
    [
        ("relu", "identity", "quadratic", 1e200),  # the updated weights overflow
        ("identity", "identity", "quadratic", 1e120),  # then z overflows at the next step
        ("elu", "tanh", "cosine", 1e250),
        ("tanh", "relu", "cross_entropy", 5.0),  # a zero output where y > 0: the loss's domain
    ],
)
def test_a_diverging_lean_step_names_what_the_full_step_names(
    hidden: str, output: str, loss: str, eta: float
) -> None:
    spec = make_spec(hidden, output, loss, BATCH, "mean", 11)
    spec = dataclasses.replace(spec, learning_rate=eta, steps=30)
    full = _error(Stream(spec))
    assert full.startswith("step ") or "before any update" in full
    assert _error(Stream(spec, full=_never)) == full
    assert _error(Stream(spec, full=_never, norms=False)) == full


def test_a_lean_step_never_writes_into_an_array_it_handed_out() -> None:
    spec = make_spec("sigmoid", "softmax", "cross_entropy", BATCH, "mean", 5)
    stream = Stream(spec, steps=9, full=lambda s: s in (3, 6))
    head = stream.head()
    initial = [(p.weights.copy(), p.biases.copy()) for p in head.parameters]
    kept: list[tuple[StepTrace, list[np.ndarray]]] = []
    for st in stream:
        if isinstance(st, StepTrace):
            arrays = [a for lt in st.layers for a in (lt.weights_before, lt.weights, lt.biases)]
            kept.append((st, [a.copy() for a in arrays]))
    assert [st.step for st, _ in kept] == [3, 6]
    for st, copies in kept:
        arrays = [a for lt in st.layers for a in (lt.weights_before, lt.weights, lt.biases)]
        assert all(np.array_equal(a, c) for a, c in zip(arrays, copies, strict=True))
    for p, (w, b) in zip(head.parameters, initial, strict=True):
        assert np.array_equal(p.weights, w) and np.array_equal(p.biases, b)


@pytest.mark.parametrize("rule", [r.name for r in OPTIMIZERS if r.update_into is not None])
def test_update_into_is_update(rule: str) -> None:
    record = next(r for r in OPTIMIZERS if r.name == rule)
    assert not record.state and not record.derived
    rng = np.random.default_rng(1)
    theta, g = rng.normal(size=(5, 7)), rng.normal(size=(5, 7)) * 1e-3
    hyper = defaults(record.params)
    new, _ = record.update(theta, g, {}, hyper, 0.3, 1, lambda v: v)
    assert np.array_equal(record.update_into(theta, g.copy(), hyper, 0.3), new)


FROM_OUTPUT = [
    (loss.name, act)
    for loss in LOSSES
    for act, fused in loss.fused.items()
    if fused.from_output is not None
]


@pytest.mark.parametrize(("loss", "act"), FROM_OUTPUT, ids=[f"{lo}+{a}" for lo, a in FROM_OUTPUT])
def test_delta_from_the_output_agrees_with_delta_from_z(loss: str, act: str) -> None:
    fused = next(lo for lo in LOSSES if lo.name == loss).fused[act]
    assert fused.from_output is not None
    rng = np.random.default_rng(2)
    z = rng.normal(0, 30, (6, 4))
    y = rng.uniform(0, 1, (6, 4))
    a = ACTIVATIONS[act].forward(z, {})
    # The hand form from a agrees to a's rounding; δ from z also keeps what an a that rounded
    # to 1 loses (tests/test_fused_losses.py).
    from_z = fused.delta(z, y, {})
    assert fused.from_output(a, y, {}) == pytest.approx(from_z, rel=1e-9, abs=1e-15)


WITH_OUTPUT = [
    (loss.name, act)
    for loss in LOSSES
    for act, fused in loss.fused.items()
    if fused.with_output is not None
]


@pytest.mark.parametrize(("loss", "act"), WITH_OUTPUT, ids=[f"{lo}+{a}" for lo, a in WITH_OUTPUT])
def test_value_with_the_output_is_value_and_forward(loss: str, act: str) -> None:
    fused = next(lo for lo in LOSSES if lo.name == loss).fused[act]
    assert fused.with_output is not None
    rng = np.random.default_rng(3)
    z = rng.normal(0, 30, (6, 4))
    y = rng.uniform(0, 1, (6, 4))
    value, a = fused.with_output(z, y, {})
    assert np.array_equal(value, fused.value(z, y, {}))
    assert np.array_equal(a, ACTIVATIONS[act].forward(z, {}))


def test_sigmoid_is_the_stable_two_branch_formula() -> None:
    """σ(z) = 1/(1 + e^(−z)) for z ≥ 0 and e^z/(1 + e^z) below, to the bit, at the edges too."""
    rng = np.random.default_rng(4)
    special = [0.0, -0.0, 1e-300, -1e-300, 5e-324, 36.0, -36.0, 745.0, -745.0, 800.0, -800.0]
    z = np.concatenate([rng.normal(0, 20, 500), special, [np.inf, -np.inf, np.nan]])
    e = np.exp(-np.abs(z))
    with np.errstate(invalid="ignore"):
        expected = np.where(z >= 0, 1.0, e) / (1.0 + e)
    assert np.array_equal(sigmoid(z), expected, equal_nan=True)
    assert sigmoid(np.float64(-2.0)).shape == () and sigmoid(-2.0) == expected_scalar(-2.0)


def expected_scalar(z: float) -> float:
    e = np.exp(-abs(z))
    return float((1.0 if z >= 0 else e) / (1.0 + e))


@pytest.mark.parametrize("show", ["summary", "final"])
def test_the_command_reports_a_lean_divergence_as_the_full_run_does(
    run_cli, write_config, tmp_path, show: str
) -> None:
    path = str(
        write_config(
            tmp_path,
            "input: [1.0]\ntarget: [0.0]\nloss: quadratic\nlearning_rate: 10\nsteps: 1000\n"
            "layers:\n  - weights: [[1.0]]\n    biases: [0.0]\n    activation: identity\n",
        )
    )
    full = run_cli(["step", path, "--format", "jsonl"])
    lean = run_cli(["step", path, "--format", "jsonl", "--show", show])
    assert full.exit_code == lean.exit_code == 1
    assert lean.stderr == full.stderr and "step " in full.stderr
    if show == "summary":
        assert [json.loads(line)["loss"] for line in lean.stdout.splitlines()] == [
            json.loads(line)["loss"] for line in full.stdout.splitlines()
        ]
