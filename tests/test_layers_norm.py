"""batchnorm, layernorm and dropout (gradcalc/layers/norm.py, dropout.py): proven against an
independent float64 reference written here from the equations (batch norm's backward in its
compact form, not the three paths the engine sums), against central finite differences of that
reference for dense and conv inputs, both modes and every update rule, and against torch where
it is installed; their named mistakes both ways; bad input in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_layers import ref_conv

from gradcalc.functions.optimizers import REGISTRY as OPTIMIZERS

RULES = sorted({r.name for r in OPTIMIZERS.values()})

# -- the reference: numpy from the equations, nothing from gradcalc -------------------------------


def ref_norm(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float, kind: str, stats: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z, μ and σ² (÷m) of batch norm (per channel: axis 1 of (N, C, …)) or layer norm (over
    the last axis); `stats`: eval mode's (running_mean, running_var)."""
    if kind == "layernorm":
        mu = x.mean(axis=-1, keepdims=True)
        var = x.var(axis=-1, keepdims=True)
        return gamma * (x - mu) / np.sqrt(var + eps) + beta, mu, var
    moved = np.moveaxis(x, 1, -1)  # (N, …, C)
    flat = moved.reshape(-1, x.shape[1])
    if stats is None:
        mu, var = flat.mean(axis=0), flat.var(axis=0)
    else:
        mu, var = np.asarray(stats[0]), np.asarray(stats[1])
    out = gamma * (moved - mu) / np.sqrt(var + eps) + beta
    return np.moveaxis(out, -1, 1), mu, var


def ref_bn_back(
    dz: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float, kind: str
) -> np.ndarray:
    """∂/∂x in the compact form dx = (1/m)(σ² + ε)^(−½) (m dx̂ − Σ dx̂ − x̂ Σ dx̂ x̂)."""
    if kind == "layernorm":
        moved_x, moved_d = x, dz
    else:
        moved_x, moved_d = np.moveaxis(x, 1, -1), np.moveaxis(dz, 1, -1)
    shape = moved_x.shape
    if kind == "layernorm":  # each row apart: m = its length
        xs, ds = moved_x.reshape(-1, shape[-1]), moved_d.reshape(-1, shape[-1])
        m = shape[-1]
        mu, var = xs.mean(axis=1, keepdims=True), xs.var(axis=1, keepdims=True)
        x_hat = (xs - mu) / np.sqrt(var + eps)
        dxh = ds * gamma
        dx = m * dxh - dxh.sum(1, keepdims=True) - x_hat * (dxh * x_hat).sum(1, keepdims=True)
        return (dx / (m * np.sqrt(var + eps))).reshape(shape)
    xs, ds = moved_x.reshape(-1, shape[-1]), moved_d.reshape(-1, shape[-1])
    m = xs.shape[0]
    mu, var = xs.mean(axis=0), xs.var(axis=0)
    x_hat = (xs - mu) / np.sqrt(var + eps)
    dxh = ds * gamma
    dx = (m * dxh - dxh.sum(0) - x_hat * (dxh * x_hat).sum(0)) / (m * np.sqrt(var + eps))
    return np.moveaxis(dx.reshape(shape), -1, 1)


def act(name: str, z: np.ndarray) -> np.ndarray:
    return {
        "linear": lambda v: v,
        "tanh": np.tanh,
        "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    }[name](z)


def dropout_mask(layer: dict[str, Any], shape: tuple[int, ...]) -> np.ndarray:
    """docs/normalization.md's algorithm: default_rng(seed).random(shape) ≥ p keeps."""
    if "mask" in layer:
        return np.broadcast_to(np.asarray(layer["mask"], dtype=float).reshape(shape), shape)
    return (np.random.default_rng(layer["seed"]).random(shape) >= layer["p"]).astype(float)


def ref_forward(
    net: list[dict[str, Any]], params: list[dict[str, np.ndarray]], x: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray], list[Any]]:
    """The output, each layer's input, and each batch norm's batch (μ, σ², m)."""
    a = x
    inputs, stats = [], []
    for layer, p in zip(net, params, strict=True):
        inputs.append(a)
        t = layer["type"]
        stat = None
        if t == "dense":
            z = a @ p["weights"].T + p["biases"]
        elif t == "conv2d":
            z = np.stack([ref_conv(e, p["kernels"], p["biases"], (1, 1), (0, 0)) for e in a])
        elif t == "flatten":
            z = a.reshape(a.shape[0], -1)
        elif t in ("batchnorm", "layernorm"):
            given = None
            if layer.get("mode") == "eval":
                given = (layer["running_mean"], layer["running_var"])
            z, mu, var = ref_norm(a, p["gamma"], p["beta"], layer.get("eps", 1e-5), t, given)
            stat = (mu, var, a.size // a.shape[1])
        elif t == "dropout":
            if layer.get("mode") == "eval":
                z = a
            else:
                z = a * dropout_mask(layer, a.shape) / (1 - layer["p"])
        else:
            raise AssertionError(t)
        stats.append(stat)
        a = act(layer.get("activation", "linear"), z)
    return a, inputs, stats


def ref_cost(
    net: list[dict[str, Any]],
    params: list[dict[str, np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
    reduction: str,
) -> float:
    out, _, _ = ref_forward(net, params, x)
    per = ((out.reshape(len(x), -1) - y) ** 2).mean(axis=1)  # mse: (1/n) Σ (y − a)²
    return float(per.mean() if reduction == "mean" else per.sum())


def fd(f: Any, array: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Five-point central differences (error O(h⁴)): a normalisation over few values curves
    sharply, and the three-point form's O(h²) error shows at 1e-6."""
    grad = np.zeros(array.shape)
    for index in np.ndindex(*array.shape):
        keep = array[index]
        values = []
        for t in (2, 1, -1, -2):
            array[index] = keep + t * h
            values.append(f())
        array[index] = keep
        grad[index] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * h)
    return grad


def close(got: Any, want: Any, rtol: float = 1e-9) -> None:
    """Relative to each value, with a floor at a small part of the array's own scale."""
    want = np.asarray(want, dtype=float)
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    np.testing.assert_allclose(
        np.asarray(got, dtype=float), want, rtol=rtol, atol=rtol * 1e-2 * scale
    )


def close_fd(got: Any, want: Any) -> None:
    """Against central differences: relative 1e-6, and a floor of 1e-8, the
    differences' own rounding error (a conv bias before a normalisation has a gradient of 0,
    which the differences find as noise)."""
    np.testing.assert_allclose(np.asarray(got, dtype=float), want, rtol=1e-6, atol=1e-8)


# -- the networks ---------------------------------------------------------------------------------

RNG = np.random.default_rng(19)


def _r(*shape: int) -> list[Any]:
    return RNG.normal(size=shape).round(3).tolist()


def _networks() -> dict[str, tuple[list[dict[str, Any]], np.ndarray, np.ndarray, str]]:
    """name -> (layers, inputs, targets, reduction)."""
    x4 = np.array(_r(4, 3))
    y4 = (np.array(_r(4, 2)) > 0).astype(float)
    conv_x = np.array(_r(2, 1, 3, 3))
    y2 = (np.array(_r(2, 2)) > 0).astype(float)
    bn = {"type": "batchnorm", "gamma": [1.2, 0.7, -0.5], "beta": [0.1, 0.0, -0.2]}
    head = {"type": "dense", "weights": _r(3, 3), "biases": _r(3), "activation": "linear"}
    tail = {"type": "dense", "weights": _r(2, 3), "biases": _r(2), "activation": "sigmoid"}
    conv = {"type": "conv2d", "kernels": _r(2, 1, 2, 2), "biases": _r(2), "activation": "linear"}
    conv_bn = {"type": "batchnorm", "gamma": [0.9, 1.3], "beta": [0.2, -0.1], "activation": "tanh"}
    conv_tail = [
        {"type": "flatten"},
        {"type": "dense", "weights": _r(2, 8), "biases": _r(2), "activation": "sigmoid"},
    ]
    stats = {"running_mean": [0.3, -0.2], "running_var": [0.8, 1.5]}
    mask = (np.array(_r(4, 3)) > -0.3).astype(int).tolist()
    return {
        "dense-bn-train": (
            [head, {**bn, "momentum": 0.2, "activation": "tanh"}, tail],
            x4,
            y4,
            "mean",
        ),
        "dense-bn-eval": (
            [
                head,
                {
                    **bn,
                    "mode": "eval",
                    "running_mean": [0.1, -0.3, 0.2],
                    "running_var": [0.5, 1.2, 2.0],
                    "activation": "tanh",
                },
                tail,
            ],
            x4,
            y4,
            "sum",
        ),
        "conv-bn-train": ([conv, conv_bn, *conv_tail], conv_x, y2, "mean"),
        "conv-bn-eval": (
            [conv, {**conv_bn, "mode": "eval", **stats}, *conv_tail],
            conv_x,
            y2,
            "sum",
        ),
        "conv1d-input-bn": (
            [
                {"type": "batchnorm", "gamma": [1.5, 0.5], "beta": [0.0, 0.3], "eps": 0.01},
                {"type": "flatten"},
                {"type": "dense", "weights": _r(2, 6), "biases": _r(2), "activation": "sigmoid"},
            ],
            np.array(_r(2, 2, 3)),
            y2,
            "mean",
        ),
        "layernorm": (
            [
                head,
                {
                    "type": "layernorm",
                    "gamma": [1.1, 0.6, -0.8],
                    "beta": [0.0, 0.2, 0.1],
                    "activation": "tanh",
                },
                tail,
            ],
            x4,
            y4,
            "mean",
        ),
        "layernorm-conv": (
            [conv, {"type": "layernorm", "gamma": [1.4, 0.5], "beta": [0.1, -0.3]}, *conv_tail],
            conv_x,
            y2,
            "sum",
        ),
        "dropout-mask": (
            [{**head, "activation": "tanh"}, {"type": "dropout", "p": 0.25, "mask": mask}, tail],
            x4,
            y4,
            "mean",
        ),
        "dropout-seed": (
            [{**head, "activation": "tanh"}, {"type": "dropout", "p": 0.4, "seed": 7}, tail],
            x4,
            y4,
            "mean",
        ),
        "dropout-eval": (
            [{**head, "activation": "tanh"}, {"type": "dropout", "p": 0.4, "mode": "eval"}, tail],
            x4,
            y4,
            "sum",
        ),
    }


NETWORKS = _networks()
PARAMS = {
    "dense": ("weights", "biases"),
    "conv2d": ("kernels", "biases"),
    "batchnorm": ("gamma", "beta"),
    "layernorm": ("gamma", "beta"),
}


def config(name: str, extra: dict[str, Any] | None = None) -> str:
    net, x, y, reduction = NETWORKS[name]
    doc = {
        "inputs": np.asarray(x).tolist(),
        "targets": np.asarray(y).tolist(),
        "loss": "mse",
        "learning_rate": 0.1,
        "reduction": reduction,
        "layers": net,
        **(extra or {}),
    }
    return json.dumps(doc)


def params_of(layer_records: list[dict[str, Any]], key: str) -> list[dict[str, np.ndarray]]:
    return [{k: np.array(v, dtype=float) for k, v in rec[key].items()} for rec in layer_records]


def step_doc(run_cli: Any, write_config: Any, tmp_path: Path, name: str, **extra: Any) -> Any:
    path = write_config(tmp_path, config(name, extra), f"{name}.yaml")
    result = run_cli(["step", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- proof: the reference and finite differences --------------------------------------------------


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_quantity_matches_the_reference_and_finite_differences(
    run_cli: Any, write_config: Any, tmp_path: Path, name: str
) -> None:
    net, x, y, reduction = NETWORKS[name]
    doc = step_doc(run_cli, write_config, tmp_path, name)
    st = doc["steps"][0]
    records = st["layers"]
    params = [
        {k: np.array(layer[k], dtype=float) for k in PARAMS.get(layer["type"], ()) if k in layer}
        for layer in net
    ]
    for layer, p in zip(net, params, strict=True):  # the defaults: γ ones, β zeros
        if layer["type"] in ("batchnorm", "layernorm"):
            width = len(layer["gamma"])
            p.setdefault("gamma", np.ones(width))
            p.setdefault("beta", np.zeros(width))
    x = np.array(x, dtype=float)
    out, inputs, stats = ref_forward(net, params, x)
    close(st["loss"], ref_cost(net, params, x, y, reduction), 1e-12)
    close(records[-1]["a"], out, 1e-12)
    for i, (layer, rec) in enumerate(zip(net, records, strict=True)):
        for k in params[i]:
            want = fd(lambda: ref_cost(net, params, x, y, reduction), params[i][k])
            close_fd(rec["grads"][k], want)
        t = layer["type"]
        if t in ("batchnorm", "layernorm"):
            mu, var, _ = stats[i]
            close(rec["mean"], np.squeeze(mu, -1) if t == "layernorm" else mu, 1e-12)
            close(rec["var"], np.squeeze(var, -1) if t == "layernorm" else var, 1e-12)
            # the engine's three paths sum to ∂C/∂x, which the compact form gives from its δ
            delta = np.array(rec["delta"])
            if layer.get("mode") == "eval":
                want = (
                    delta
                    * np.asarray(layer["gamma"]).reshape((1, -1) + (1,) * (delta.ndim - 2))
                    / np.sqrt(np.asarray(layer["running_var"]) + layer.get("eps", 1e-5)).reshape(
                        (1, -1) + (1,) * (delta.ndim - 2)
                    )
                )
                assert "grad_input_via_mean" not in rec
            else:
                want = ref_bn_back(delta, inputs[i], params[i]["gamma"], layer.get("eps", 1e-5), t)
                paths = sum(
                    np.array(rec[k])
                    for k in ("grad_input_direct", "grad_input_via_var", "grad_input_via_mean")
                )
                close(paths, want, 1e-9)
            close(rec["grad_input"], want, 1e-9)
        if t == "dropout" and layer.get("mode") != "eval":
            keep = dropout_mask(layer, inputs[i].shape)
            np.testing.assert_array_equal(rec["mask"], keep)
            assert rec["scale"] == pytest.approx(1 / (1 - layer["p"]), rel=1e-15)
            close(rec["grad_input"], np.array(rec["delta"]) * keep / (1 - layer["p"]), 1e-12)
    # ∂C/∂x of the input: each δ is of the sum of the examples' costs (a mean's 1/m apart)
    n = x.shape[0] if reduction == "mean" else 1
    want = fd(lambda: ref_cost(net, params, x, y, reduction), x)
    close_fd(np.array(records[0]["grad_input"]), want * n)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("name", ["dense-bn-train", "conv-bn-eval", "layernorm", "dropout-seed"])
def test_every_update_rule_over_three_steps(
    run_cli: Any, write_config: Any, tmp_path: Path, name: str, rule: str
) -> None:
    """Each step's gradients are the reference's at the parameters the passes ran at (a
    look-ahead rule's θ̃), each step starts where the last ended, and the running statistics move
    by PyTorch's rule (momentum, the unbiased variance)."""
    net, x, y, reduction = NETWORKS[name]
    x = np.array(x, dtype=float)
    doc = step_doc(run_cli, write_config, tmp_path, name, optimizer=rule, steps=3)
    previous: list[dict[str, Any]] | None = None
    for st in doc["steps"]:
        records = st["layers"]
        if previous is not None:  # the state carried: this step's before is the last's after
            for rec, last in zip(records, previous, strict=True):
                assert rec.get("state_before") == last.get("state")
        at = [
            {k: np.array(v, dtype=float) for k, v in rec.get("params_lookahead", {}).items()}
            for rec in records
        ]
        if not any(at):
            at = _starts(doc, st["step"], net)
        out_net = [dict(layer) for layer in net]
        for layer, rec in zip(out_net, records, strict=True):
            if layer["type"] == "batchnorm" and "state_before" in rec:
                layer["running_mean"] = rec["state_before"]["running_mean"]
                layer["running_var"] = rec["state_before"]["running_var"]
        for i, rec in enumerate(records):
            for k in at[i]:
                want = fd(lambda at=at, o=out_net: ref_cost(o, at, x, y, reduction), at[i][k])
                close_fd(rec["grads"][k], want)
        _, _, stats = ref_forward(out_net, at, x)
        for i, (layer, rec) in enumerate(zip(out_net, records, strict=True)):
            if layer["type"] != "batchnorm":
                continue
            momentum = layer.get("momentum", 0.1)
            state = rec["state_before"]
            if layer.get("mode") == "eval":
                assert rec["state"] == state
                continue
            mu, var, m = stats[i]
            close(
                rec["state"]["running_mean"],
                (1 - momentum) * np.array(state["running_mean"]) + momentum * mu,
                1e-12,
            )
            close(
                rec["state"]["running_var"],
                (1 - momentum) * np.array(state["running_var"]) + momentum * var * m / (m - 1),
                1e-12,
            )
        previous = records
    assert len(doc["steps"]) == 3


def _starts(doc: dict[str, Any], step: int, net: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The parameters step `step` started from: the config's at step 1, else the last step's."""
    if step == 1:
        out = []
        for layer in net:
            p = {
                k: np.array(layer[k], dtype=float)
                for k in PARAMS.get(layer["type"], ())
                if k in layer
            }
            if layer["type"] in ("batchnorm", "layernorm"):
                p.setdefault("gamma", np.ones(len(layer["gamma"])))
                p.setdefault("beta", np.zeros(len(layer["gamma"])))
            out.append(p)
        return out
    return params_of(doc["steps"][step - 2]["layers"], "params")
