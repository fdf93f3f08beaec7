"""A dense network and a layered one are built from the same network-level settings
(gradcalc/step/config.py: training, make_spec) and refused for too much work in the same words
(refuse_work): the same network written both ways gives the same settings and messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gradcalc
from gradcalc.functions.optimizers import OPTIMIZERS
from gradcalc.layers.config import LayeredSpec
from gradcalc.step.config import NetworkSpec, Training

SHARED = [*Training.__dataclass_fields__, "source", "batch", "files"]


def _network(rule: str, layered: bool) -> dict[str, Any]:
    dense = [
        {"weights": [[0.7, 0.3], [-0.4, 0.9]], "biases": [0.0, -0.1], "activation": "tanh"},
        {"weights": [[1.2, -0.8]], "biases": [0.1], "activation": "sigmoid"},
    ]
    return {
        "inputs": [[0.5, -1.0], [-0.8, 0.4]],
        "targets": [[1.0], [0.0]],
        "loss": "binary_cross_entropy",
        "learning_rate": 0.25,
        "steps": 4,
        "reduction": "sum",
        "weight_decay": 0.01,
        "optimizer": rule,
        "layers": [{"type": "flatten"}, *dense] if layered else dense,
    }


@pytest.mark.parametrize("rule", OPTIMIZERS, ids=lambda r: r.name)
def test_both_kinds_of_spec_hold_the_same_settings(rule: Any) -> None:
    dense = gradcalc.from_dict(_network(rule.name, False), name="net")
    layered = gradcalc.from_dict(_network(rule.name, True), name="net")
    assert isinstance(dense, NetworkSpec) and isinstance(layered, LayeredSpec)
    for key in SHARED:
        assert getattr(layered, key) == getattr(dense, key), key
    assert dense.optimizer is layered.optimizer is rule
    assert (dense.learning_rate, dense.steps, dense.reduction) == (0.25, 4, "sum")
    assert dense.weight_decay == 0.01 and layered.loss_at is None
    np.testing.assert_array_equal(layered.x, dense.x)
    np.testing.assert_array_equal(layered.y, dense.y)


def _power(value: float) -> str:
    exponent = len(str(int(value))) - 1
    mantissa = f"{value / 10**exponent:.1f}".removesuffix(".0")
    return mantissa + "×10" + str(exponent).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


@pytest.mark.parametrize("layered", [False, True], ids=["dense", "layered"])
def test_too_much_work_is_refused_in_the_same_words(
    run_cli: Any, write_config: Any, tmp_path: Path, layered: bool
) -> None:
    """50 inputs → 50 → 2, three examples, a million steps: steps × (3 + 8) × (the work of
    one example + 500 per layer), over 2×10¹⁰. A dense network counts its parameters; a
    layered one each layer's multiply-adds (the flatten passes over its 50 inputs once)."""
    rng = np.random.default_rng(0)
    net = _network("sgd", layered)
    net["inputs"] = rng.normal(size=(3, 50)).round(3).tolist()
    net["targets"] = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    net["layers"][-2]["weights"] = rng.normal(size=(50, 50)).round(3).tolist()
    net["layers"][-2]["biases"] = [0.0] * 50
    net["layers"][-1]["weights"] = rng.normal(size=(2, 50)).round(3).tolist()
    net["layers"][-1]["biases"] = [0.0, 0.0]
    path = write_config(tmp_path, json.dumps(net))  # JSON is YAML
    result = run_cli(["step", str(path), "--steps", "1000000"])
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    params = 50 * 50 + 50 + 2 * 50 + 2
    per_example, unit, layers, fewer = (
        (50 + 50 * 50 + 50 + 2 * 50 + 2, "multiply-adds per example", 3, "channels")
        if layered
        else (params, "parameters", 2, "parameters")
    )
    work = 1_000_000 * (3 + 8) * (per_example + 500 * layers)
    want = (
        f"{path}: 1,000,000 steps × (3 examples + 8) × ({per_example:,} {unit} + 500 × "
        f"{layers} layers) is about {_power(work)} operations; a run may take at most 2×10¹⁰ "
        f"(a few minutes): use fewer steps, examples, layers or {fewer}"
    )
    assert want in result.stderr, result.stderr
