"""A dense network run by the dense engine and, given as layer records, by the layered one.

`residual: false` on a layer sends a dense-only config through gradcalc/layers/ (the key is
the layered reader's); the network is the same, so every number of every step must be the same
to the last bit, rounded by hand (--round) or not, for every update rule and every activation.
A student rounds each quantity as it is written down: z, a, f′(z), δ, ∂a/∂p (the PReLU row of
the tables), then the sums built from them; both engines must do it alike.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from gradcalc.functions.activations import REGISTRY as ACTIVATIONS
from gradcalc.functions.activations import sigmoid
from gradcalc.functions.optimizers import OPTIMIZERS
from gradcalc.functions.registry import Param, Written
from gradcalc.functions.training import hand_round
from gradcalc.layers.config import LayeredSpec
from gradcalc.layers.engine import LayeredRun
from gradcalc.step.config import NetworkSpec, load_data
from gradcalc.step.engine import run
from gradcalc.step.trace import RunTrace

STEPS = 3


def _config(hidden: Any, output: str, loss: str, **settings: Any) -> dict[str, Any]:
    return {
        "inputs": [[0.81, -0.37, 0.12], [-0.45, 0.66, 0.93]],
        "targets": [[0.0, 1.0], [1.0, 0.0]],
        "loss": loss,
        "learning_rate": 0.37,
        "steps": STEPS,
        "layers": [
            {
                "weights": [[0.213, -0.347, 0.419], [-0.254, 0.161, 0.538], [0.333, 0.05, -0.71]],
                "biases": [-0.17, 0.09, 0.2],
                "activation": hidden,
            },
            {
                "weights": [[-0.318, 0.127, 0.45], [0.22, -0.61, 0.14]],
                "biases": [-0.21, 0.04],
                "activation": output,
            },
        ],
        **settings,
    }


def _both(data: dict[str, Any], round_to: int | None) -> tuple[RunTrace, LayeredRun]:
    dense = load_data(data, "dense.yaml")
    layered_data = dict(data, layers=[dict(data["layers"][0], residual=False), data["layers"][1]])
    layered = load_data(layered_data, "layered.yaml")
    assert isinstance(dense, NetworkSpec) and isinstance(layered, LayeredSpec)
    with np.errstate(all="ignore"):
        a, b = run(dense, round_to=round_to), run(layered, round_to=round_to)
    assert isinstance(a, RunTrace) and isinstance(b, LayeredRun)
    return a, b


def _same(a: Any, b: Any, what: str) -> None:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, what
    assert np.array_equal(a, b, equal_nan=True), f"{what}: dense {a} layered {b}"


def _agree(a: RunTrace, b: LayeredRun) -> None:
    assert len(a.steps) == len(b.steps) == STEPS
    _same(a.losses, b.losses, "C per step")
    for st, ls_step in zip(a.steps, b.steps, strict=True):
        _same(st.losses, ls_step.losses, f"C_x, step {st.step}")
        for lt, ls in zip(st.layers, ls_step.layers, strict=True):
            at = f"step {st.step}, layer {lt.layer}"
            _same(lt.z, ls.z, f"z, {at}")
            _same(lt.a, ls.a, f"a, {at}")
            _same(lt.grad_a, ls.grad_a, f"∂C/∂a, {at}")
            _same(lt.delta, ls.delta, f"δ, {at}")
            _same(lt.grad_weights, ls.grads["weights"], f"∂C/∂w, {at}")
            _same(lt.grad_biases, ls.grads["biases"], f"∂C/∂b, {at}")
            _same(lt.weights, ls.params["weights"], f"w after, {at}")
            _same(lt.biases, ls.params["biases"], f"b after, {at}")
            assert lt.grad_params == ls.grad_activation_params, at
            assert lt.params == ls.activation_params, at
    _same(a.final.loss, b.final.loss, "the final C")
    _same(a.final.output, b.final.a[-1], "the final output")


@pytest.mark.parametrize("round_to", [None, 3])
@pytest.mark.parametrize("rule", [rule.name for rule in OPTIMIZERS])
def test_every_update_rule_gives_the_same_numbers_on_both_engines(
    rule: str, round_to: int | None
) -> None:
    """PReLU's learned slope, a fused softmax + cross-entropy output and an L2 penalty: every
    path of a step, with each rule's state and look-ahead."""
    data = _config(
        {"name": "prelu", "a": 0.2}, "softmax", "cross_entropy", optimizer=rule, weight_decay=0.01
    )
    _agree(*_both(data, round_to))


@pytest.mark.parametrize("round_to", [None, 2])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_gives_the_same_numbers_on_both_engines(
    name: str, round_to: int | None
) -> None:
    _agree(*_both(_config(name, "sigmoid", "quadratic", reduction="sum"), round_to))


def _learned_swish() -> Any:
    """f(z) = z σ(βz) with β learned: ∂a/∂β = z² σ(βz)(1 − σ(βz)) has more digits than z, so
    rounding it before the sum (as a hand does) changes ∂C/∂β (PReLU's ∂a/∂α = z does not)."""

    def forward(z: np.ndarray, p: Any) -> np.ndarray:
        return z * sigmoid(p["beta"] * z)

    def prime(z: np.ndarray, a: np.ndarray, p: Any) -> np.ndarray:
        s = sigmoid(p["beta"] * z)
        return s + p["beta"] * z * s * (1 - s)

    def partials(z: np.ndarray, a: np.ndarray, p: Any) -> dict[str, np.ndarray]:
        s = sigmoid(p["beta"] * z)
        return {"beta": z * z * s * (1 - s)}

    return dataclasses.replace(
        ACTIVATIONS["prelu"],
        name="test_swish_beta",
        formula=Written("f(z) = z σ(βz)", r"f(z) = z \sigma(\beta z)"),
        forward=forward,
        prime=prime,
        param_partials=partials,
        params=(Param("beta", 1.0, "slope, learned", learnable=True),),
        aliases=(),
    )


@pytest.mark.parametrize("round_to", [None, 1, 2, 3])
def test_a_learned_parameter_sums_its_rounded_partials_on_both_engines(
    monkeypatch: pytest.MonkeyPatch, round_to: int | None
) -> None:
    """∂C/∂β = Σ ∂C/∂a ⊙ ∂a/∂β from the ∂a/∂β the tables show, rounded (the layered engine
    summed the unrounded ones: 28.4 instead of 28.1 at step 2 with one decimal)."""
    swish = _learned_swish()
    monkeypatch.setitem(ACTIVATIONS, swish.name, swish)
    data = _config({"name": swish.name, "beta": 0.8}, "identity", "quadratic", reduction="sum")
    data["inputs"] = [[5 * v for v in row] for row in data["inputs"]]  # ∂C/∂a of size 1–10
    a, b = _both(data, round_to)
    _agree(a, b)
    if round_to is None:
        return
    rounded = hand_round(round_to)
    for st in a.steps:  # what the rounding is: the rounded sum of the rounded partials
        lt = st.layers[0]
        partial = swish.param_partials(lt.z, lt.a, lt.params_before)["beta"]
        assert np.array_equal(lt.param_partials["beta"], rounded(partial))
        by_hand = rounded(np.asarray(np.sum(lt.grad_a * rounded(partial))))
        assert lt.grad_params["beta"] == float(by_hand)


ONE_UNIT = """\
input: [1.0]
target: [{y}]
loss: {loss}
learning_rate: {eta}
layers:
  - weights: [[{w}]]
    biases: [{b}]
    activation: identity{extra}
"""


@pytest.mark.parametrize(
    ("loss", "y", "w", "b", "eta", "status", "mentions"),
    [
        ("cross_entropy", 1.0, -1.0, 0.0, 0.1, 2, ("a^2 = -1", "'identity'", "before any")),
        ("binary_cross_entropy", 1.0, 2.0, 0.0, 0.1, 2, ("(0, 1)", "a^2 = 2", "before any")),
        ("cosine", 1.0, 0.0, 0.0, 0.1, 2, ("zero vector", "a^2 = 0", "before any")),
        ("quadratic", 1.0, 1e308, 1e308, 0.1, 2, ("layers[0]:", "z^2 = inf", "weights and")),
        # The update makes w = 1e150 − 1e200 · 1e150 overflow at step 1: the learning rate's
        # doing (exit 1), not the config's (the layered engine said 2, at the key 'loss').
        ("quadratic", 0.0, 1e150, 0.0, 1e200, 1, ("step 1:", "the updated w^2", "diverged")),
        # The first update takes a^2 out of the loss's domain: divergence, naming a^2.
        ("binary_cross_entropy", 1.0, 0.5, 0.0, 1.0, 1, ("step 2:", "the updates took a^2")),
    ],
)
def test_both_engines_fail_alike(
    run_cli, write_config, tmp_path, loss, y, w, b, eta, status, mentions
) -> None:
    """The same bad value or divergence: the same exit status and the same one line."""
    messages = []
    for name, extra in (("dense.yaml", ""), ("layered.yaml", "\n    residual: false")):
        text = ONE_UNIT.format(loss=loss, y=y, w=w, b=b, eta=eta, extra=extra)
        result = run_cli(["step", str(write_config(tmp_path, text, name)), "--steps", "3"])
        assert result.exit_code == status, result.output
        assert "Traceback" not in result.output and result.stderr.count("\n") == 1
        for text in mentions:
            assert text in result.stderr, result.stderr
        messages.append(result.stderr.replace(name, "config"))
    assert messages[0] == messages[1]


def test_only_a_layered_network_computes_the_gradient_of_its_input() -> None:
    """BP2 stops above the data in a dense-only network (nothing shows ∂C/∂x of its first
    layer); a layered network's first layer gives it (its JSON's grad_input, its tables)."""
    from gradcalc.layers.engine import Network as Layered
    from gradcalc.step.engine import Network

    data = _config("tanh", "sigmoid", "quadratic")
    dense = load_data(data, "dense.yaml")
    layered = load_data(
        dict(data, layers=[dict(data["layers"][0], residual=False), data["layers"][1]]), "l.yaml"
    )
    assert isinstance(dense, NetworkSpec) and isinstance(layered, LayeredSpec)
    first = Network(dense).passes(1)[2][0]
    assert first.grad_x.size == 0
    given = Layered(layered).passes(1)[2]
    assert given[0].grad_x.shape == layered.x.shape
    assert np.array_equal(given[0].grad_x, given[0].delta @ given[0].params_before["weights"])
