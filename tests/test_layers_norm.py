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
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz import ODD_VALUES, check_result, fuzz_settings, invoke
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
    for step in doc["steps"]:
        records = step["layers"]
        if previous is not None:  # the state carried: this step's before is the last's after
            for rec, last in zip(records, previous, strict=True):
                assert rec.get("state_before") == last.get("state")
        at = [
            {k: np.array(v, dtype=float) for k, v in rec.get("params_lookahead", {}).items()}
            for rec in records
        ]
        if not any(at):
            at = _starts(doc, step["step"], net)
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


# -- torch ----------------------------------------------------------------------------------------


def _torch_run(
    name: str,
) -> tuple[Any, list[Any], list[Any], Any]:
    """The network in torch (float64): its cost, the norm modules, each layer's input, the
    input tensor."""
    torch = pytest.importorskip("torch")
    net, x, y, reduction = NETWORKS[name]
    xt = torch.tensor(np.asarray(x, dtype=float), requires_grad=True)
    a = xt
    modules: list[Any] = []
    for layer in net:
        t = layer["type"]
        module: Any = None
        if t == "dense":
            module = torch.nn.Linear(a.shape[1], len(layer["biases"])).double()
            with torch.no_grad():
                module.weight.copy_(torch.tensor(np.asarray(layer["weights"], dtype=float)))
                module.bias.copy_(torch.tensor(np.asarray(layer["biases"], dtype=float)))
        elif t == "conv2d":
            k = np.asarray(layer["kernels"])
            module = torch.nn.Conv2d(k.shape[1], k.shape[0], k.shape[2:]).double()
            with torch.no_grad():
                module.weight.copy_(torch.tensor(np.asarray(k, dtype=float)))
                module.bias.copy_(torch.tensor(np.asarray(layer["biases"], dtype=float)))
        elif t == "flatten":
            module = torch.nn.Flatten()
        elif t == "batchnorm":
            cls = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d}
            module = cls[a.ndim](
                a.shape[1], eps=layer.get("eps", 1e-5), momentum=layer.get("momentum", 0.1)
            ).double()
            with torch.no_grad():
                module.weight.copy_(torch.tensor(np.asarray(layer["gamma"], dtype=float)))
                module.bias.copy_(torch.tensor(np.asarray(layer["beta"], dtype=float)))
                if "running_mean" in layer:
                    module.running_mean.copy_(
                        torch.tensor(np.asarray(layer["running_mean"], dtype=float))
                    )
                    module.running_var.copy_(
                        torch.tensor(np.asarray(layer["running_var"], dtype=float))
                    )
            module.train(layer.get("mode", "train") == "train")
        elif t == "layernorm":
            module = torch.nn.LayerNorm(a.shape[-1], eps=layer.get("eps", 1e-5)).double()
            with torch.no_grad():
                module.weight.copy_(torch.tensor(np.asarray(layer["gamma"], dtype=float)))
                module.bias.copy_(torch.tensor(np.asarray(layer["beta"], dtype=float)))
        elif t == "dropout":
            if layer.get("mode", "train") == "train":
                keep = torch.tensor(dropout_mask(layer, tuple(a.shape)))
                scale = 1 / (1 - layer["p"])
                module = lambda v, keep=keep, scale=scale: v * keep * scale  # noqa: E731
            else:
                module = torch.nn.Dropout(layer["p"]).eval()
        a = module(a)
        a = {"tanh": torch.tanh, "sigmoid": torch.sigmoid}.get(
            layer.get("activation", "linear"), lambda v: v
        )(a)
        modules.append(module)
    yt = torch.tensor(np.asarray(y, dtype=float))
    per = ((a.reshape(len(y), -1) - yt) ** 2).mean(dim=1)
    cost = per.mean() if reduction == "mean" else per.sum()
    cost.backward()
    return cost, modules, [], xt


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_torch_agrees(run_cli: Any, write_config: Any, tmp_path: Path, name: str) -> None:
    """nn.BatchNorm1d/2d (train and eval), nn.LayerNorm and a fixed dropout mask: the cost,
    every parameter's gradient, ∂C/∂ of the input and the running statistics after the step."""
    cost, modules, _, xt = _torch_run(name)
    net, x, _, reduction = NETWORKS[name]
    doc = step_doc(run_cli, write_config, tmp_path, name)
    st = doc["steps"][0]
    close(st["loss"], cost.item(), 1e-12)
    names = {"weights": "weight", "kernels": "weight", "biases": "bias", "gamma": "weight"}
    names["beta"] = "bias"
    for layer, module, rec in zip(net, modules, st["layers"], strict=True):
        for k, g in rec["grads"].items():
            # a floor for a conv bias before a normalisation: 0, found as rounding noise
            want = getattr(module, names[k]).grad.numpy()
            np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-12)
        if layer["type"] == "batchnorm":
            close(rec["state"]["running_mean"], module.running_mean.numpy(), 1e-12)
            close(rec["state"]["running_var"], module.running_var.numpy(), 1e-12)
    n = len(x) if reduction == "mean" else 1
    close(st["layers"][0]["grad_input"], xt.grad.numpy() * n, 1e-10)


def test_the_worked_example_is_torchs(run_cli: Any) -> None:
    """--example batchnorm-worked-example: 3 examples × 2 features, one step, as torch."""
    torch = pytest.importorskip("torch")
    result = run_cli(["step", "--example", "batchnorm-worked-example", "--format", "json"])
    assert result.exit_code == 0, result.output
    st = json.loads(result.stdout)["steps"][0]
    bn = st["layers"][0]
    x = torch.tensor([[1.0, 2.0], [3.0, 0.0], [2.0, 1.0]], dtype=torch.float64, requires_grad=True)
    module = torch.nn.BatchNorm1d(2, eps=1e-5, momentum=0.1).double()
    linear = torch.nn.Linear(2, 2).double()
    with torch.no_grad():
        module.weight.copy_(torch.tensor([1.0, 0.5], dtype=torch.float64))
        module.bias.copy_(torch.tensor([0.0, 0.1], dtype=torch.float64))
        module.running_var.fill_(0.5)
        linear.weight.copy_(torch.tensor([[0.5, -0.5], [0.25, 1.0]], dtype=torch.float64))
        linear.bias.copy_(torch.tensor([0.0, 0.1], dtype=torch.float64))
    z = module(x)
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], dtype=torch.float64)
    cost = ((torch.sigmoid(linear(z)) - y) ** 2).mean()
    cost.backward()
    close(st["loss"], cost.item(), 1e-12)
    close(bn["z"], z.detach().numpy(), 1e-12)
    close(bn["grad_input"], x.grad.numpy() * 3, 1e-10)
    close(bn["grads"]["gamma"], module.weight.grad.numpy(), 1e-10)
    close(bn["grads"]["beta"], module.bias.grad.numpy(), 1e-10)
    close(bn["state"]["running_mean"], module.running_mean.numpy(), 1e-12)
    close(bn["state"]["running_var"], module.running_var.numpy(), 1e-12)
    assert bn["mean"] == [2.0, 1.0]
    assert bn["state_before"] == {"running_mean": [0.0, 0.0], "running_var": [0.5, 0.5]}


def test_the_state_after_the_run_is_saved(run_cli: Any, tmp_path: Path) -> None:
    """The document's `parameters` and --save-weights carry the running statistics after the
    last step, as torch's state_dict does."""
    out = tmp_path / "w.npz"
    args = ["step", "--example", "batchnorm-worked-example", "--steps", "2"]
    result = run_cli([*args, "--format", "json", "--save-weights", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    last = doc["steps"][-1]["layers"][0]["state"]
    assert doc["parameters"][0]["state"] == last
    assert doc["steps"][1]["layers"][0]["state_before"] == doc["steps"][0]["layers"][0]["state"]
    saved = np.load(out)
    close(saved["running_mean2"], last["running_mean"], 1e-15)
    close(saved["running_var2"], last["running_var"], 1e-15)
    assert "running_mean3" not in saved


# -- named mistakes, both ways --------------------------------------------------------------------

BN_X = np.array([[1.0, 2.0], [3.0, 0.0], [2.0, 1.0]])
BN_GAMMA, BN_EPS = np.array([1.0, 0.5]), 1e-5


def _bn_paths(delta: np.ndarray, gamma: np.ndarray) -> dict[str, np.ndarray]:
    """The three paths of ∂C/∂x, written here from docs/normalization.md's equations."""
    m = BN_X.shape[0]
    mu, var = BN_X.mean(axis=0), BN_X.var(axis=0)
    inv = 1 / np.sqrt(var + BN_EPS)
    dxh = delta * gamma
    d_var = (dxh * (BN_X - mu)).sum(axis=0) * -0.5 * inv**3
    d_mu = -dxh.sum(axis=0) * inv
    return {
        "direct": dxh * inv,
        "via_var": d_var * 2 * (BN_X - mu) / m,
        "via_mean": np.broadcast_to(d_mu / m, BN_X.shape),
    }


def _worked(run_cli: Any) -> dict[str, Any]:
    result = run_cli(["step", "--example", "batchnorm-worked-example", "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["steps"][0]["layers"][0]


def _mistaken(q: str, name: str, bn: dict[str, Any]) -> np.ndarray:
    delta = np.array(bn["delta"])
    paths = _bn_paths(delta, BN_GAMMA)
    if name == "bn_missing_mean_path":
        return paths["direct"] + paths["via_var"]
    if name == "bn_missing_variance_path":
        return paths["direct"] + paths["via_mean"]
    if name == "bn_gamma_not_applied_in_backward":
        plain = _bn_paths(delta, np.ones(2))
        return plain["direct"] + plain["via_var"] + plain["via_mean"]
    assert name == "bn_unbiased_variance"
    m = BN_X.shape[0]
    var = BN_X.var(axis=0) * m / (m - 1)
    return BN_GAMMA * (BN_X - BN_X.mean(axis=0)) / np.sqrt(var + BN_EPS) + np.array([0.0, 0.1])


def _grade(run_cli: Any, example: str | Path, sheet: dict[str, Any]) -> dict[str, Any]:
    where = ["--example", example] if isinstance(example, str) else [str(example)]
    result = run_cli(["check", *where, "-", "--format", "json"], input=json.dumps(sheet))
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


BN_MISTAKES = [
    ("grad_input", "bn_missing_mean_path"),
    ("grad_input", "bn_missing_variance_path"),
    ("grad_input", "bn_gamma_not_applied_in_backward"),
    ("z", "bn_unbiased_variance"),
]


def test_the_paths_are_shown_as_the_docs_write_them(run_cli: Any) -> None:
    bn = _worked(run_cli)
    paths = _bn_paths(np.array(bn["delta"]), BN_GAMMA)
    close(bn["grad_input_direct"], paths["direct"], 1e-12)
    close(bn["grad_input_via_var"], paths["via_var"], 1e-12)
    close(bn["grad_input_via_mean"], paths["via_mean"], 1e-12)
    close(bn["x_hat"], (BN_X - BN_X.mean(0)) / np.sqrt(BN_X.var(0) + BN_EPS), 1e-12)


@pytest.mark.parametrize(("q", "name"), BN_MISTAKES)
def test_batch_norm_mistakes_are_named_both_ways(run_cli: Any, q: str, name: str) -> None:
    bn = _worked(run_cli)
    wrong = _mistaken(q, name, bn)
    right = np.array(bn[q])
    assert not np.allclose(wrong, right, rtol=1e-3)
    report = _grade(run_cli, "batchnorm-worked-example", {"step": 1, q: {"2": wrong.tolist()}})
    cells = report["cells"]
    named = [c for c in cells if c["verdict"] == "wrong"]
    assert named and all(c["mistake"] == name for c in named), cells
    assert all(c["verdict"] in ("wrong", "correct") for c in cells)
    fine = _grade(run_cli, "batchnorm-worked-example", {"step": 1, q: {"2": right.tolist()}})
    assert fine["passed"] and all(c["mistake"] is None for c in fine["cells"])


@pytest.mark.parametrize("name", ["dropout_not_rescaled", "dropout_mask_not_applied_in_backward"])
def test_dropout_mistakes_are_named_both_ways(
    run_cli: Any, write_config: Any, tmp_path: Path, name: str
) -> None:
    doc = step_doc(run_cli, write_config, tmp_path, "dropout-mask")
    path = tmp_path / "dropout-mask.yaml"
    layer = NETWORKS["dropout-mask"][0][1]
    drop = doc["steps"][0]["layers"][1]
    x = np.array(doc["steps"][0]["layers"][0]["a"])
    keep = np.array(layer["mask"], dtype=float)
    delta = np.array(drop["delta"])
    scale = 1 / (1 - layer["p"])
    if name == "dropout_not_rescaled":
        wrong = {"z": {"3": (x * keep).tolist()}, "grad_input": {"3": (delta * keep).tolist()}}
    else:
        wrong = {"grad_input": {"3": (delta * scale).tolist()}}
    report = _grade(run_cli, path, {"step": 1, **wrong})
    named = [c for c in report["cells"] if c["verdict"] == "wrong"]
    assert named and all(c["mistake"] == name for c in named), report["cells"]
    right = {q: {"3": drop[q]} for q in wrong}
    fine = _grade(run_cli, path, {"step": 1, **right})
    assert fine["passed"] and all(c["mistake"] is None for c in fine["cells"])


def _rounded(value: Any, places: int) -> Any:
    if isinstance(value, list):
        return [_rounded(v, places) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v, places) for k, v in value.items()}
    return round(value, places) if isinstance(value, float) else value


ADDED = (
    "mean",
    "var",
    "x_hat",
    "grad_x_hat",
    "grad_var",
    "grad_mean",
    "grad_input_direct",
    "grad_input_via_var",
    "grad_input_via_mean",
)


@pytest.mark.parametrize(
    "name", ["dense-bn-train", "conv-bn-eval", "conv-bn-train", "layernorm", "dropout-mask"]
)
def test_a_whole_step_document_grades_itself_and_rounded_answers_are_rounding(
    run_cli: Any, write_config: Any, tmp_path: Path, name: str
) -> None:
    """The JSON document is read back as answers, every quantity a cell (μ, σ², x̂, the paths,
    the running statistics after the step); every one rounded to 3 decimals is ✓ or ≈ with
    --decimals 3 (the drift bound of a normalisation, each number moved on its own at any
    size)."""
    doc = step_doc(run_cli, write_config, tmp_path, name)
    path = tmp_path / f"{name}.yaml"
    report = _grade(run_cli, path, doc)
    assert report["passed"] and report["score"] == report["max_score"] > 0
    graded = {c["quantity"] for c in report["cells"]}
    norm = (
        next(rec for rec in doc["steps"][0]["layers"] if rec["type"].endswith("norm"))["type"]
        if "norm" in name or "bn" in name
        else None
    )
    if norm is not None:
        assert {"mean", "var", "x_hat", "grad_x_hat"} <= graded
    if name == "dense-bn-train":
        assert set(ADDED) | {"running_mean", "running_var", "gamma", "grad_beta"} <= graded
    sheet: dict[str, Any] = {"step": 1}
    for rec in doc["steps"][0]["layers"]:
        l = str(rec["layer"])
        for q in ("z", "delta", "grad_input", *ADDED):
            if q in rec:
                sheet.setdefault(q, {})[l] = _rounded(rec[q], 3)
        for k, v in rec["grads"].items():
            sheet.setdefault(f"grad_{k}", {})[l] = _rounded(v, 3)
        for k, v in rec.get("state", {}).items():
            sheet.setdefault(k, {})[l] = _rounded(v, 3)
    result = run_cli(
        ["check", str(path), "-", "--format", "json", "--decimals", "3"], input=json.dumps(sheet)
    )
    report = json.loads(result.stdout)
    assert result.exit_code == 0, [c for c in report["cells"] if c["verdict"] == "wrong"]
    assert {c["verdict"] for c in report["cells"]} <= {"correct", "rounding"}
    assert len(report["cells"]) > 20


def test_the_added_cells_name_their_mistakes(run_cli: Any) -> None:
    """σ² with ÷(m − 1) is bn_unbiased_variance; ∂C/∂x̂ without γ is
    bn_gamma_not_applied_in_backward; a zero path via μ is bn_missing_mean_path."""
    bn = _worked(run_cli)
    m = 3
    sheet = {
        "step": 1,
        "var": {"2": (BN_X.var(axis=0) * m / (m - 1)).tolist()},
        "grad_x_hat": {"2": bn["delta"]},
        "grad_input_via_mean": {"2": np.zeros((3, 2)).tolist()},
        "x_hat": {"2": bn["x_hat"]},
    }
    report = _grade(run_cli, "batchnorm-worked-example", sheet)
    by = {}
    for c in report["cells"]:
        by.setdefault(c["quantity"], set()).add((c["verdict"], c["mistake"]))
    assert by["var"] == {("wrong", "bn_unbiased_variance")}
    assert ("wrong", "bn_gamma_not_applied_in_backward") in by["grad_x_hat"]
    assert by["grad_input_via_mean"] == {("wrong", "bn_missing_mean_path")}
    assert by["x_hat"] == {("correct", None)}


# -- bad input: one line, exit 2, the key path ----------------------------------------------------

_HEAD = "inputs: [[1, 2], [3, 0], [2, 1]]\ntargets: [[1, 0], [0, 1], [1, 1]]\nloss: mse\n"
_HEAD += "learning_rate: 0.1\nlayers:\n"
BAD = [
    ("  - type: batchnorm\n    gamma: [1, 2, 3]\n", ["layers[0].gamma", "shape 3", "2 features"]),
    ("  - type: batchnorm\n    eps: 0\n", ["layers[0].eps", "must be > 0"]),
    ("  - type: batchnorm\n    eps: -1.0e-5\n", ["layers[0].eps", "must be > 0"]),
    ("  - type: layernorm\n    eps: 0\n", ["layers[0].eps", "must be > 0"]),
    ("  - type: layernorm\n    beta: [1, 2, 3]\n", ["layers[0].beta", "2 features"]),
    ("  - type: batchnorm\n    mode: test\n", ["layers[0].mode", "'train' or 'eval'"]),
    ("  - type: batchnorm\n    momentum: 1.5\n", ["layers[0].momentum", "between 0 and 1"]),
    (
        "  - type: batchnorm\n    mode: eval\n    running_mean: [0, 0]\n",
        ["layers[0]", "eval mode", "missing key 'running_var'"],
    ),
    (
        "  - type: batchnorm\n    mode: eval\n",
        ["layers[0]", "eval mode", "running_mean"],
    ),
    (
        "  - type: batchnorm\n    mode: eval\n    running_mean: [0, 0]\n    running_var: [1, -1]\n",
        ["layers[0].running_var", "≥ 0"],
    ),
    ("  - type: dropout\n    p: 1\n    seed: 0\n", ["layers[0].p", "[0, 1)"]),
    ("  - type: dropout\n    p: -0.1\n    seed: 0\n", ["layers[0].p", "[0, 1)"]),
    (
        "  - type: dropout\n    p: 0.5\n    mask: [[1, 0], [1, 2], [0, 1]]\n",
        ["layers[0].mask", "0 (dropped) or 1 (kept)", "got 2"],
    ),
    (
        "  - type: dropout\n    p: 0.5\n    mask: [[1, 0], [1, 1]]\n",
        ["layers[0].mask", "shape 2×2", "3 examples"],
    ),
    (
        "  - type: dropout\n    p: 0.5\n    mask: [[1, 0, 1], [1, 1, 1], [0, 1, 1]]\n",
        ["layers[0].mask", "shape 3×3"],
    ),
    ("  - type: dropout\n    p: 0.5\n", ["layers[0]", "missing key 'mask'", "seed"]),
    (
        "  - type: dropout\n    p: 0.5\n    mask: [[1, 0], [1, 1], [0, 1]]\n    seed: 1\n",
        ["layers[0].seed", "not both"],
    ),
]


@pytest.mark.parametrize(("layers", "pieces"), BAD)
def test_bad_input_is_one_line_with_its_key_path(
    run_cli: Any, write_config: Any, tmp_path: Path, layers: str, pieces: list[str]
) -> None:
    result = run_cli(["step", str(write_config(tmp_path, _HEAD + layers))])
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    for piece in pieces:
        assert piece in result.stderr, result.stderr


def test_a_batch_of_one_in_train_mode_is_refused_with_the_reason(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    text = "input: [1, 2]\ntarget: [1, 0]\nloss: mse\nlearning_rate: 0.1\nlayers:\n"
    result = run_cli(["step", str(write_config(tmp_path, text + "  - type: batchnorm\n"))])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "layers[0]" in result.stderr and "the variance of one example, 0" in result.stderr
    evaluating = "  - type: batchnorm\n    mode: eval\n    running_mean: [0, 1]\n"
    evaluating += "    running_var: [1, 2]\n"
    ok = run_cli(["step", str(write_config(tmp_path, text + evaluating)), "--format", "json"])
    assert ok.exit_code == 0, ok.output
    z = json.loads(ok.stdout)["steps"][0]["layers"][0]["z"]
    close(z, [1 / np.sqrt(1 + 1e-5), 1 / np.sqrt(2 + 1e-5)], 1e-12)
    # one example of a conv output has several values per channel: a batch of one is fine
    conv = "input: [[[1, 2], [0, 1]]]\ntarget: [1]\nloss: mse\nlearning_rate: 0.1\nlayers:\n"
    conv += "  - type: batchnorm\n  - type: flatten\n  - weights: [[1, 1, 1, 1]]\n"
    conv += "    biases: [0]\n    activation: linear\n"
    assert run_cli(["step", str(write_config(tmp_path, conv))]).exit_code == 0


# -- the CLI: the example, list, the worked solution, schemas ---------------------------------


def test_list_layers_shows_the_new_types(run_cli: Any) -> None:
    result = run_cli(["list", "layers"])
    assert result.exit_code == 0, result.output
    for name in ("batchnorm", "layernorm", "dropout"):
        assert name in result.stdout


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_explain_writes_every_path_and_json_validates(
    run_cli: Any, write_config: Any, tmp_path: Path, name: str
) -> None:
    import jsonschema

    path = write_config(tmp_path, config(name), f"{name}.yaml")
    doc = json.loads(run_cli(["step", str(path), "--format", "json"]).stdout)
    schema = json.loads(Path("schemas/step.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(doc, schema)
    explain = run_cli(["step", str(path), "--explain"])
    assert explain.exit_code == 0, explain.output
    text = explain.stdout
    if "-train" in name or name.startswith("layernorm") or name.startswith("conv1d"):
        assert "(direct, through x̂)" in text and "(via σ²)" in text and "(via μ)" in text
    if name.endswith("-eval") and "bn" in name:
        assert "Eval mode: μ and σ² are the running statistics" in text
    if name.startswith("dropout") and not name.endswith("eval"):
        assert "z = x × mask × 1/(1 − p)" in text
    for fmt in ("markdown", "latex"):
        result = run_cli(["step", str(path), "--format", fmt])
        assert result.exit_code == 0, result.output
    table = run_cli(["step", str(path)])
    assert table.exit_code == 0, table.output


def test_the_worked_example_explains_every_number(run_cli: Any) -> None:
    result = run_cli(["step", "--example", "batchnorm-worked-example", "--explain"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "μ₀ = (1 + 3 + 2)/3 = 2.00" in text
    assert "σ²₀ = ((1 − 2.00)² + (3 − 2.00)² + (2 − 2.00)²)/3 = 0.667" in text
    assert "∂C/∂x²₀ = (−0.0357)/√(0.667) + (−0.0700)×2×(−1.00)/3 + (−0.00778)/3" in text
    assert "= −0.0437 + 0.0467 + (−0.00259) = 0.000364" in text
    assert "running_mean₀ = 0.9 × 0 + 0.1 × 2.00 = 0.200" in text
    assert "running_var₀ = 0.9 × 0.5 + 0.1 × 0.667 × 3/2 = 0.550" in text
    table = run_cli(["step", "--example", "batchnorm-worked-example"]).stdout
    assert "running_var^2 before the step" in table and "∂C/∂x via μ (example 1)" in table


# -- fuzz: valid and nearly valid configs of these layers end cleanly -----------------------------


@st.composite
def norm_configs(draw: Any) -> dict[str, Any]:
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    batch = draw(st.integers(1, 3))
    width = draw(st.integers(1, 3))
    conv = draw(st.booleans())
    shape: tuple[int, ...] = (width, 2, 2) if conv else (width,)
    layers: list[dict[str, Any]] = []
    for kind in draw(st.lists(st.sampled_from(["batchnorm", "layernorm", "dropout"]), max_size=3)):
        layer: dict[str, Any] = {"type": kind}
        if kind in ("batchnorm", "layernorm"):
            n = shape[0] if kind == "batchnorm" else shape[-1]
            if draw(st.booleans()):
                layer["gamma"] = rng.normal(size=n).round(2).tolist()
            layer["eps"] = draw(st.sampled_from([1e-5, 0.1, 1e-12]))
        if kind == "batchnorm":
            layer["mode"] = draw(st.sampled_from(["train", "eval"]))
            layer["running_mean"] = rng.normal(size=shape[0]).round(2).tolist()
            layer["running_var"] = rng.uniform(0, 2, size=shape[0]).round(2).tolist()
        if kind == "dropout":
            layer["p"] = draw(st.sampled_from([0.0, 0.25, 0.5, 0.9]))
            layer["mode"] = draw(st.sampled_from(["train", "eval"]))
            if draw(st.booleans()):
                layer["mask"] = rng.integers(0, 2, size=(batch, *shape)).tolist()
            else:
                layer["seed"] = draw(st.integers(0, 5))
        layer["activation"] = draw(st.sampled_from(["linear", "tanh", "relu"]))
        layers.append(layer)
    if conv:
        layers.append({"type": "flatten"})
    layers.append(
        {
            "weights": rng.normal(size=(2, int(np.prod(shape)))).round(2).tolist(),
            "biases": [0.0, 0.0],
            "activation": "sigmoid",
        }
    )
    return {
        "inputs": rng.normal(size=(batch, *shape)).round(2).tolist(),
        "targets": rng.uniform(size=(batch, 2)).round(2).tolist(),
        "loss": "mse",
        "learning_rate": 0.1,
        "optimizer": draw(st.sampled_from(RULES)),
        "steps": draw(st.integers(1, 2)),
        "layers": layers,
    }


FORMATS = [[], ["--format", "json"], ["--explain"], ["--format", "latex"], ["--round", "2"]]


@fuzz_settings(40)
@given(norm_configs(), st.sampled_from(FORMATS))
def test_valid_configs_end_cleanly(config: dict[str, Any], extra: list[str]) -> None:
    args = ["step", "-", *extra]
    check_result("step", args, invoke(args, input=json.dumps(config)))


@fuzz_settings(60)
@given(norm_configs(), st.data())
def test_nearly_valid_configs_end_cleanly(config: dict[str, Any], data: Any) -> None:
    layer = data.draw(st.sampled_from(config["layers"]))
    key = data.draw(st.sampled_from(sorted(layer)))
    layer[key] = data.draw(st.sampled_from(ODD_VALUES) | st.integers(-3, 9) | st.text(max_size=6))
    args = ["step", "-", *data.draw(st.sampled_from(FORMATS))]
    check_result("step", args, invoke(args, input=json.dumps(config)))
