"""Layer records beyond dense (gradcalc/layers/): conv1d/conv2d, max/avg pooling, flatten and
`loss: upstream`, proven against an independent float64 reference written with direct loops,
against central finite differences of that reference, and against the dense engine for every
update rule (a convolution whose kernel covers its whole input is a dense layer)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz import ODD_VALUES, check_result, fuzz_settings, invoke

from gradcalc.functions.optimizers import REGISTRY as OPTIMIZERS

# -- the reference: direct loops, nothing from gradcalc ------------------------------------------


def ref_conv(
    x: np.ndarray, k: np.ndarray, b: np.ndarray, stride: tuple[int, int], pad: tuple[int, int]
) -> np.ndarray:
    """One example (C, H, W), kernels (O, C, kH, kW): cross-correlation, zero padding."""
    c_in, h, w = x.shape
    o_n, _, kh, kw = k.shape
    (sh, sw), (ph, pw) = stride, pad
    xp = np.zeros((c_in, h + 2 * ph, w + 2 * pw))
    xp[:, ph : ph + h, pw : pw + w] = x
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    z = np.zeros((o_n, ho, wo))
    for o in range(o_n):
        for i in range(ho):
            for j in range(wo):
                total = b[o]
                for c in range(c_in):
                    for p in range(kh):
                        for q in range(kw):
                            total += k[o, c, p, q] * xp[c, sh * i + p, sw * j + q]
                z[o, i, j] = total
    return z


def ref_conv_back(
    x: np.ndarray, k: np.ndarray, delta: np.ndarray, stride: tuple[int, int], pad: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """∂C/∂K, ∂C/∂b and ∂C/∂x of one example, from δ = ∂C/∂z."""
    c_in, h, w = x.shape
    o_n, _, kh, kw = k.shape
    (sh, sw), (ph, pw) = stride, pad
    xp = np.zeros((c_in, h + 2 * ph, w + 2 * pw))
    xp[:, ph : ph + h, pw : pw + w] = x
    dk, db, dxp = np.zeros(k.shape), np.zeros(o_n), np.zeros(xp.shape)
    for o in range(o_n):
        for i in range(delta.shape[1]):
            for j in range(delta.shape[2]):
                db[o] += delta[o, i, j]
                for c in range(c_in):
                    for p in range(kh):
                        for q in range(kw):
                            dk[o, c, p, q] += delta[o, i, j] * xp[c, sh * i + p, sw * j + q]
                            dxp[c, sh * i + p, sw * j + q] += delta[o, i, j] * k[o, c, p, q]
    return dk, db, dxp[:, ph : ph + h, pw : pw + w]


def ref_pool(
    x: np.ndarray, size: tuple[int, int], stride: tuple[int, int], kind: str
) -> tuple[np.ndarray, np.ndarray]:
    """z and the routing of each output's gradient: (C, Ho, Wo, H, W) weights."""
    c_n, h, w = x.shape
    (kh, kw), (sh, sw) = size, stride
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    z = np.zeros((c_n, ho, wo))
    route = np.zeros((c_n, ho, wo, h, w))
    for c in range(c_n):
        for i in range(ho):
            for j in range(wo):
                best, where = -np.inf, (0, 0)
                total = 0.0
                for p in range(kh):
                    for q in range(kw):
                        v = x[c, sh * i + p, sw * j + q]
                        total += v
                        if v > best:  # strictly: the first maximum in row-major order
                            best, where = v, (sh * i + p, sw * j + q)
                        if kind == "avg":
                            route[c, i, j, sh * i + p, sw * j + q] = 1.0 / (kh * kw)
                if kind == "max":
                    z[c, i, j] = best
                    route[c, i, j, where[0], where[1]] = 1.0
                else:
                    z[c, i, j] = total / (kh * kw)
    return z, route


def ref_act(z: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "tanh":
        a = np.tanh(z)
        return a, 1 - a * a
    return z.copy(), np.ones_like(z)


def ref_forward(net: list[dict[str, Any]], x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(z, a) per layer for one example, every layer in loops."""
    out = []
    for layer in net:
        t = layer["type"]
        if t == "conv2d":
            z = ref_conv(x, layer["kernels"], layer["biases"], layer["stride"], layer["padding"])
        elif t == "conv1d":
            z = ref_conv(
                x[:, None, :],
                layer["kernels"][:, :, None, :],
                layer["biases"],
                (1, layer["stride"]),
                (0, layer["padding"]),
            )[:, 0, :]
        elif t in ("maxpool2d", "avgpool2d"):
            z = ref_pool(x, layer["size"], layer["stride"], t[:3])[0]
        elif t == "flatten":
            z = x.reshape(-1).copy()
        else:
            w, b = layer["weights"], layer["biases"]
            z = np.array(
                [sum(w[j, k] * x[k] for k in range(w.shape[1])) + b[j] for j in range(w.shape[0])]
            )
        a, _ = ref_act(z, layer.get("activation", "linear"))
        out.append((z, a))
        x = a
    return out


def ref_cost(net: list[dict[str, Any]], xs: np.ndarray, ys: np.ndarray, reduction: str) -> float:
    """mse over each example's output (all its values), reduced over the batch."""
    total = 0.0
    for x, y in zip(xs, ys, strict=True):
        a = ref_forward(net, x)[-1][1]
        total += float(np.mean((a.reshape(-1) - y.reshape(-1)) ** 2))
    return total / len(xs) if reduction == "mean" else total


def finite_differences(f: Any, array: np.ndarray, h: float = 1e-5) -> np.ndarray:
    grad = np.zeros(array.shape)
    for index in np.ndindex(*array.shape):
        keep = array[index]
        array[index] = keep + h
        up = f()
        array[index] = keep - h
        down = f()
        array[index] = keep
        grad[index] = (up - down) / (2 * h)
    return grad


# -- configs --------------------------------------------------------------------------------------


def _yaml(value: Any) -> str:
    return json.dumps(np.asarray(value).tolist() if isinstance(value, np.ndarray) else value)


def config_text(
    net: list[dict[str, Any]], xs: np.ndarray, ys: np.ndarray, extra: str = "", loss: str = "mse"
) -> str:
    lines = [
        f"inputs: {_yaml(xs)}",
        f"targets: {_yaml(ys)}",
        f"loss: {loss}",
        "learning_rate: 0.1",
        extra,
        "layers:",
    ]
    for layer in net:
        lines.append(f"  - type: {layer['type']}")
        for key, value in layer.items():
            if key != "type":
                lines.append(
                    f"    {key}: {_yaml(value if not isinstance(value, tuple) else list(value))}"
                )
    return "\n".join(lines) + "\n"


def step_json(run_cli: Any, path: Path, *args: str) -> dict[str, Any]:
    result = run_cli(["step", str(path), "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def close(got: Any, want: np.ndarray, rtol: float = 1e-9, atol: float = 0.0) -> None:
    """Relative to each value, with a floor at the array's own scale."""
    want = np.asarray(want, dtype=float)
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    floor = max(atol, rtol * 1e-2 * scale)
    np.testing.assert_allclose(np.asarray(got, dtype=float), want, rtol=rtol, atol=floor)


def close_fd(got: Any, want: np.ndarray) -> None:
    """Against central differences (h = 1e-5): relative 1e-6, and an absolute floor of 1e-9,
    the differences' own rounding error (ε·|C|/h for costs of order 10)."""
    close(got, want, rtol=1e-6, atol=1e-9)


# -- proof ----------------------------------------------------------------------------------

CASES = list(
    itertools.product(
        [1, 2],  # stride
        [0, 1],  # padding
        [(1, 1), (2, 3)],  # (C_in, C_out)
        [1, 3],  # batch
    )
)


def _conv_net(
    rng: np.random.Generator, stride: int, padding: int, c_in: int, c_out: int, pool: str
) -> list[dict[str, Any]]:
    net: list[dict[str, Any]] = [
        {
            "type": "conv2d",
            "kernels": rng.normal(size=(c_out, c_in, 3, 2)),
            "biases": rng.normal(size=c_out),
            "stride": stride,
            "padding": padding,
            "activation": "tanh",
        }
    ]
    h, w = (6 + 2 * padding - 3) // stride + 1, (5 + 2 * padding - 2) // stride + 1
    if pool:
        net.append({"type": pool, "size": 2, "stride": [1, 2]})
        h, w = h - 1, (w - 2) // 2 + 1
    net += [
        {"type": "flatten"},
        {
            "type": "dense",
            "weights": rng.normal(size=(2, c_out * h * w)),
            "biases": rng.normal(size=2),
            "activation": "tanh",
        },
    ]
    for layer in net:
        for key in ("stride", "padding", "size"):
            if key in layer and not isinstance(layer[key], list):
                layer[key] = layer[key]
    return net


def _ref_layers(net: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same layers with pairs spelled out for the reference."""
    out = []
    for layer in net:
        layer = dict(layer)
        for key in ("stride", "padding", "size"):
            if key in layer and layer["type"] != "conv1d":
                v = layer[key]
                layer[key] = tuple(v) if isinstance(v, list) else (v, v)
        if layer["type"].endswith("pool2d") and "stride" not in layer:
            layer["stride"] = layer["size"]
        out.append(layer)
    return out


@pytest.mark.parametrize("pool", ["", "maxpool2d", "avgpool2d"])
@pytest.mark.parametrize(("stride", "padding", "channels", "batch"), CASES)
def test_conv_net_matches_the_loop_reference_and_finite_differences(
    run_cli: Any,
    write_config: Any,
    tmp_path: Path,
    stride: int,
    padding: int,
    channels: tuple[int, int],
    batch: int,
    pool: str,
) -> None:
    rng = np.random.default_rng(stride * 100 + padding * 10 + channels[0] + batch)
    net = _conv_net(rng, stride, padding, *channels, pool)
    xs = rng.normal(size=(batch, channels[0], 6, 5))
    ys = rng.normal(size=(batch, 2))
    doc = step_json(run_cli, write_config(tmp_path, config_text(net, xs, ys)))
    ref = _ref_layers(net)
    layers = doc["steps"][0]["layers"]
    # The forward pass, layer by layer, per example.
    for n, x in enumerate(xs):
        for got, (z, a) in zip(layers, ref_forward(ref, x), strict=True):
            close(np.asarray(got["z"])[n], z)
            close(np.asarray(got["a"])[n], a)
    close(doc["steps"][0]["loss"], ref_cost(ref, xs, ys, "mean"))
    # Every gradient against central differences of the reference cost.
    for got, layer in zip(layers, ref, strict=True):
        for name in ("kernels", "biases", "weights"):
            if name in layer:
                want = finite_differences(lambda: ref_cost(ref, xs, ys, "mean"), layer[name])
                close_fd(got["grads"][name], want)
    # ∂C/∂x of the first layer, per example (∂C_x/∂x of each example's own cost).
    for n in range(batch):
        x_n, y_n = xs[n : n + 1].copy(), ys[n : n + 1]
        want = finite_differences(lambda x_n=x_n, y_n=y_n: ref_cost(ref, x_n, y_n, "sum"), x_n)[0]
        got = np.asarray(layers[0]["grad_input"])
        close_fd(got[n], want)


@pytest.mark.parametrize(("stride", "padding", "channels", "batch"), CASES)
def test_conv_backward_matches_the_loop_reference(
    run_cli: Any,
    write_config: Any,
    tmp_path: Path,
    stride: int,
    padding: int,
    channels: tuple[int, int],
    batch: int,
) -> None:
    """∂C/∂K, ∂C/∂b and ∂C/∂x from the engine's own δ, summed with loops."""
    rng = np.random.default_rng(7 + stride + padding + batch)
    net = _conv_net(rng, stride, padding, *channels, "maxpool2d")
    xs = rng.normal(size=(batch, channels[0], 6, 5))
    ys = rng.normal(size=(batch, 2))
    doc = step_json(run_cli, write_config(tmp_path, config_text(net, xs, ys, "reduction: sum")))
    conv = doc["steps"][0]["layers"][0]
    deltas = np.asarray(conv["delta"]).reshape(
        batch, channels[1], *np.asarray(conv["z"]).shape[-2:]
    )
    dk, db = np.zeros(net[0]["kernels"].shape), np.zeros(channels[1])
    for n in range(batch):
        k_n, b_n, x_n = ref_conv_back(
            xs[n], net[0]["kernels"], deltas[n], (stride, stride), (padding, padding)
        )
        dk += k_n
        db += b_n
        got = np.asarray(conv["grad_input"]).reshape(batch, *xs.shape[1:])[n]
        close(got, x_n)
    close(conv["grads"]["kernels"], dk)
    close(conv["grads"]["biases"], db)


@pytest.mark.parametrize(("stride", "padding", "batch"), [(1, 0, 1), (2, 1, 2), (3, 2, 1)])
def test_conv1d_and_pool1d_match_the_reference(
    run_cli: Any, write_config: Any, tmp_path: Path, stride: int, padding: int, batch: int
) -> None:
    rng = np.random.default_rng(stride)
    net = [
        {
            "type": "conv1d",
            "kernels": rng.normal(size=(2, 2, 3)),
            "biases": rng.normal(size=2),
            "stride": stride,
            "padding": padding,
            "activation": "tanh",
        },
        {"type": "flatten"},
    ]
    xs = rng.normal(size=(batch, 2, 9))
    length = (9 + 2 * padding - 3) // stride + 1
    ys = rng.normal(size=(batch, 2 * length))
    doc = step_json(run_cli, write_config(tmp_path, config_text(net, xs, ys)))
    layers = doc["steps"][0]["layers"]
    for n in range(batch):
        z, _ = ref_forward(net, xs[n])[0]
        got = np.asarray(layers[0]["z"])
        close(got[n], z)
    want = finite_differences(lambda: ref_cost(net, xs, ys, "mean"), net[0]["kernels"])
    close_fd(layers[0]["grads"]["kernels"], want)
    # max- and average-pooling in 1-D: the 2-D reference with a height of one.
    for kind in ("maxpool1d", "avgpool1d"):
        pool_net = [{"type": kind, "size": 3, "stride": stride}, {"type": "flatten"}]
        out = (9 - 3) // stride + 1
        path = write_config(tmp_path, config_text(pool_net, xs, rng.normal(size=(batch, 2 * out))))
        got = step_json(run_cli, path)["steps"][0]["layers"][0]
        for n in range(batch):
            z, route = ref_pool(xs[n][:, None, :], (1, 3), (1, stride), kind[:3])
            close(np.asarray(got["z"])[n], z[:, 0, :])
            delta = np.asarray(got["delta"])[n]
            dx = np.einsum("cij,cijhw->chw", delta[:, None, :], route)[:, 0, :]
            close(np.asarray(got["grad_input"])[n], dx)


def test_max_pool_tie_goes_to_the_first_maximum_or_is_split(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    base = (
        "input: [[[1, 3], [3, 0]]]\nloss: upstream\nupstream: [[[2.0]]]\nlearning_rate: 0.1\n"
        "layers:\n  - type: maxpool2d\n    size: 2\n"
    )
    first = step_json(run_cli, write_config(tmp_path, base))["steps"][0]["layers"][0]
    assert first["grad_input"] == [[[0.0, 2.0], [0.0, 0.0]]]
    assert first["source"] == [[[[0, 1]]]]
    split = step_json(run_cli, write_config(tmp_path, base + "    ties: split\n"))["steps"][0][
        "layers"
    ][0]
    assert split["grad_input"] == [[[0.0, 1.0], [1.0, 0.0]]]


def test_the_issue_example_cell(run_cli: Any) -> None:
    """z¹₀₀ = 1×1 + 2×0 + 0×0 + 1×(−1) + 0 = 0, the example's first cell."""
    doc = step_json(run_cli, Path("configs/conv-worked-example.yaml").resolve())
    conv = doc["steps"][0]["layers"][0]
    assert conv["type"] == "conv2d"
    assert conv["z"][0][0][0] == 0.0
    assert [layer["type"] for layer in doc["steps"][0]["layers"]] == [
        "conv2d",
        "maxpool2d",
        "flatten",
        "dense",
    ]
    assert doc["shapes"] == [[1, 4, 4], [1, 3, 3], [1, 1, 1], [1], [2]]


# -- every update rule: the layered engine against the dense one -------------------------------


@pytest.mark.parametrize("rule", sorted({r.name for r in OPTIMIZERS.values()}))
@pytest.mark.parametrize("decay", [0.0, 0.05])
def test_every_update_rule_moves_a_kernel_as_the_dense_engine_moves_weights(
    run_cli: Any, write_config: Any, tmp_path: Path, rule: str, decay: float
) -> None:
    """A 2×3 kernel over a 2×3 input is a dense layer over the flattened input: three steps of
    every rule, with and without the L2 penalty, give the same parameters and costs."""
    rng = np.random.default_rng(3)
    xs = rng.normal(size=(2, 1, 2, 3))
    ys = rng.normal(size=(2, 2))
    k, b = rng.normal(size=(2, 1, 2, 3)), rng.normal(size=2)
    w2, b2 = rng.normal(size=(2, 2)), rng.normal(size=2)
    settings = f"optimizer: {rule}\nweight_decay: {decay}\nsteps: 3"
    conv = [
        {"type": "conv2d", "kernels": k, "biases": b, "activation": "tanh"},
        {"type": "flatten"},
        {"type": "dense", "weights": w2, "biases": b2, "activation": "sigmoid"},
    ]
    dense = (
        f"inputs: {_yaml(xs.reshape(2, -1))}\ntargets: {_yaml(ys)}\nloss: mse\n"
        f"learning_rate: 0.1\n{settings}\nlayers:\n"
        f"  - weights: {_yaml(k.reshape(2, -1))}\n    biases: {_yaml(b)}\n    activation: tanh\n"
        f"  - weights: {_yaml(w2)}\n    biases: {_yaml(b2)}\n    activation: sigmoid\n"
    )
    got = step_json(
        run_cli, write_config(tmp_path, config_text(conv, xs, ys, settings), "conv.yaml")
    )
    want = step_json(run_cli, write_config(tmp_path, dense, "dense.yaml"))
    for g, w in zip(got["steps"], want["steps"], strict=True):
        close(g["loss"], np.asarray(w["loss"]), rtol=1e-12)
    close(
        np.asarray(got["parameters"][0]["params"]["kernels"]).reshape(2, -1),
        np.asarray(want["parameters"][0]["weights"]),
        rtol=1e-12,
    )
    close(
        got["parameters"][0]["params"]["biases"],
        np.asarray(want["parameters"][0]["biases"]),
        rtol=1e-12,
    )
    close(
        got["parameters"][2]["params"]["weights"],
        np.asarray(want["parameters"][1]["weights"]),
        rtol=1e-12,
    )


@pytest.mark.parametrize("rule", sorted({r.name for r in OPTIMIZERS.values()}))
def test_dense_layers_as_records_match_the_dense_engine(
    run_cli: Any, write_config: Any, tmp_path: Path, rule: str
) -> None:
    """A flatten in front sends dense layers through the layer records: with rounding, a
    softmax output fused with cross-entropy and a learnable PReLU, the numbers are the same."""
    head = (
        "inputs: [[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]]\ntargets: [[1, 0], [0, 1]]\n"
        "loss: cross_entropy\nlearning_rate: 0.2\n"
    )
    head += f"optimizer: {rule}\nsteps: 2\nlayers:\n"
    dense = (
        "  - weights: [[0.1, -0.2, 0.3], [0.4, 0.1, -0.5]]\n    biases: [0.1, -0.1]\n"
        "    activation: prelu\n"
        "  - weights: [[0.3, -0.6], [0.2, 0.5]]\n    biases: [0, 0.2]\n    activation: softmax\n"
    )
    for args in ([], ["--round", "4"]):
        want = step_json(run_cli, write_config(tmp_path, head + dense, "d.yaml"), *args)
        got = step_json(
            run_cli, write_config(tmp_path, head + "  - type: flatten\n" + dense, "l.yaml"), *args
        )
        for g, w in zip(got["steps"], want["steps"], strict=True):
            close(g["loss"], np.asarray(w["loss"]), rtol=1e-12)
            for gl, wl in zip(g["layers"][1:], w["layers"], strict=True):
                close(gl["delta"], np.asarray(wl["delta"]), rtol=1e-12)
                close(gl["params"]["weights"], np.asarray(wl["weights"]), rtol=1e-12)
                if "activation_params" in wl:
                    assert gl["activation_params"] == pytest.approx(
                        wl["activation_params"], rel=1e-12
                    )


def test_upstream_loss_on_a_dense_network(run_cli: Any, write_config: Any, tmp_path: Path) -> None:
    """Given ∂C/∂a, δ = g ⊙ f'(z) and ∂C/∂w = δ a^(l−1)ᵀ."""
    text = (
        "input: [1.0, 2.0]\nloss: upstream\nupstream: [0.5, -1.0]\nlearning_rate: 0.1\n"
        "layers:\n  - weights: [[1, 0], [0.5, -1]]\n    biases: [0, 0]\n    activation: linear\n"
    )
    doc = step_json(run_cli, write_config(tmp_path, text))
    layer = doc["steps"][0]["layers"][0]
    assert layer["delta"] == [0.5, -1.0]
    assert layer["grad_weights"] == [[0.5, 1.0], [-1.0, -2.0]]
    assert doc["steps"][0]["loss"] == pytest.approx(0.5 * 1.0 - 1.0 * (0.5 - 2.0))


# -- torch, where it is installed --------------------------------------------------------------


TORCH_RULES = {
    "sgd": {},
    "momentum": {"momentum": 0.8},
    "nesterov": {"momentum": 0.7},
    "adagrad": {"eps": 1e-8},
    "rmsprop": {"beta": 0.9, "eps": 1e-8},
    "adam": {"beta1": 0.85, "beta2": 0.99, "eps": 1e-8},
    "adamw": {"beta1": 0.85, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.05},
}
TORCH_NETS = [
    # (conv stride, padding, C_in, C_out, batch, pool, 1-D)
    (2, 1, 2, 3, 2, "maxpool", False),
    (1, 0, 1, 2, 3, "avgpool", False),
    (1, 2, 2, 2, 1, "", False),
    (2, 1, 2, 2, 2, "maxpool", True),
]


def _torch_run(
    torch: Any,
    net: list[dict[str, Any]],
    xs: np.ndarray,
    ys: np.ndarray,
    rule: str,
    lam: float,
    one_d: bool,
) -> list[dict[str, Any]]:
    """Three steps by torch.optim in float64: the loss, and each step's gradients (with ∂C/∂x
    per example) and parameters after it."""
    F = torch.nn.functional
    dt = torch.float64
    conv, dense = net[0], net[-1]
    k = torch.tensor(conv["kernels"], dtype=dt, requires_grad=True)
    b = torch.tensor(conv["biases"], dtype=dt, requires_grad=True)
    w = torch.tensor(dense["weights"], dtype=dt, requires_grad=True)
    c = torch.tensor(dense["biases"], dtype=dt, requires_grad=True)
    h = TORCH_RULES[rule]
    decay = h.get("weight_decay", lam) if rule == "adamw" else lam
    groups: list[dict[str, Any]] = [
        {"params": [k, w], "weight_decay": decay},
        {"params": [b, c], "weight_decay": 0.0},
    ]
    lr = 0.1
    make = {
        "sgd": lambda: torch.optim.SGD(groups, lr=lr),
        "momentum": lambda: torch.optim.SGD(groups, lr=lr, momentum=h["momentum"]),
        "nesterov": lambda: torch.optim.SGD(groups, lr=lr, momentum=h["momentum"], nesterov=True),
        "adagrad": lambda: torch.optim.Adagrad(groups, lr=lr, eps=h["eps"]),
        "rmsprop": lambda: torch.optim.RMSprop(groups, lr=lr, alpha=h["beta"], eps=h["eps"]),
        "adam": lambda: torch.optim.Adam(
            groups, lr=lr, betas=(h["beta1"], h["beta2"]), eps=h["eps"]
        ),
        "adamw": lambda: torch.optim.AdamW(
            groups, lr=lr, betas=(h["beta1"], h["beta2"]), eps=h["eps"]
        ),
    }
    opt = make[rule]()
    y = torch.tensor(ys, dtype=dt)
    out = []
    for _ in range(3):
        opt.zero_grad()
        x = torch.tensor(xs, dtype=dt, requires_grad=True)
        if one_d:
            a = torch.tanh(F.conv1d(x, k, b, stride=conv["stride"], padding=conv["padding"]))
        else:
            a = torch.tanh(F.conv2d(x, k, b, stride=conv["stride"], padding=conv["padding"]))
        if len(net) == 4:
            pool = net[1]
            fn = {
                ("maxpool", False): F.max_pool2d,
                ("avgpool", False): F.avg_pool2d,
                ("maxpool", True): F.max_pool1d,
                ("avgpool", True): F.avg_pool1d,
            }[pool["type"][:7], one_d]
            a = fn(a, pool["size"], pool["stride"])
        out_ = a.flatten(1) @ w.T + c
        cost = ((out_ - y) ** 2).mean(dim=1).mean()
        if rule == "adamw" and lam:
            cost = cost + lam / 2 * ((k**2).sum() + (w**2).sum())
        cost.backward()
        # torch.optim's weight_decay adds λθ to the gradient inside the step; gradcalc's
        # ∂C/∂θ includes it (the L2 penalty is part of C). AdamW's L2 is in the cost here.
        shown = 0.0 if rule == "adamw" else lam
        grads = {
            "loss": cost.item(),
            "kernels": k.grad.numpy() + shown * k.detach().numpy(),
            "weights": w.grad.numpy() + shown * w.detach().numpy(),
            "grad_input": x.grad.numpy().copy() * len(xs),  # ∂C_x/∂x: the mean's 1/N undone
        }
        opt.step()
        grads["after"] = [t.detach().numpy().copy() for t in (k, b, w, c)]
        out.append(grads)
    return out


@pytest.mark.parametrize("rule", sorted(TORCH_RULES))
@pytest.mark.parametrize("case", range(len(TORCH_NETS)))
def test_torch_agrees_for_every_layer_and_update_rule(
    run_cli: Any, write_config: Any, tmp_path: Path, rule: str, case: int
) -> None:
    torch = pytest.importorskip("torch")
    stride, padding, c_in, c_out, batch, pool, one_d = TORCH_NETS[case]
    rng = np.random.default_rng(case)
    size = (7,) if one_d else (7, 6)
    ksize = (3,) if one_d else (3, 3)
    net: list[dict[str, Any]] = [
        {
            "type": "conv1d" if one_d else "conv2d",
            "kernels": rng.normal(size=(c_out, c_in, *ksize)),
            "biases": rng.normal(size=c_out),
            "stride": stride,
            "padding": padding,
            "activation": "tanh",
        }
    ]
    spatial = [(n + 2 * padding - 3) // stride + 1 for n in size]
    if pool:
        net.append({"type": f"{pool}{'1' if one_d else '2'}d", "size": 2, "stride": 1})
        spatial = [n - 1 for n in spatial]
    net.append({"type": "flatten"})
    width = c_out * int(np.prod(spatial))
    net.append(
        {
            "type": "dense",
            "weights": rng.normal(size=(2, width)),
            "biases": rng.normal(size=2),
            "activation": "linear",
        }
    )
    xs = rng.normal(size=(batch, c_in, *size))
    ys = rng.normal(size=(batch, 2))
    lam = 0.03 if rule in ("sgd", "adamw", "momentum") else 0.0
    hyper = {k: v for k, v in TORCH_RULES[rule].items()}
    optimizer = "{name: " + rule + "".join(f", {k}: {v!r}" for k, v in hyper.items()) + "}"
    extra = f"optimizer: {optimizer}\nweight_decay: {lam}\nsteps: 3"
    doc = step_json(run_cli, write_config(tmp_path, config_text(net, xs, ys, extra)))
    theirs = _torch_run(torch, net, xs, ys, rule, lam, one_d)
    for record, want in zip(doc["steps"], theirs, strict=True):
        layers = record["layers"]
        # torch's cost: the data cost (its L2 is the optimizer's weight_decay), at its iterate
        # (for nesterov, gradcalc's look-ahead point).
        cost = record["lookahead"] if rule == "nesterov" else record
        close(
            cost["loss" if rule == "adamw" else "data_loss"], np.asarray(want["loss"]), rtol=1e-12
        )
        close(layers[0]["grads"]["kernels"], want["kernels"], rtol=1e-10)
        close(layers[-1]["grads"]["weights"], want["weights"], rtol=1e-10)
        close(layers[0]["grad_input"], want["grad_input"], rtol=1e-10)
        ours = [
            layers[0]["params"]["kernels"],
            layers[0]["params"]["biases"],
            layers[-1]["params"]["weights"],
            layers[-1]["params"]["biases"],
        ]
        for mine, (name, index), theirs_value in zip(
            ours,
            [("kernels", 0), ("biases", 0), ("weights", -1), ("biases", -1)],
            want["after"],
            strict=True,
        ):
            value = np.asarray(mine)
            if rule == "nesterov":  # torch's iterates are gradcalc's look-ahead points θ − ημv
                v = np.asarray(layers[index]["optimizer_state"][name]["velocity"])
                value = value - 0.1 * hyper["momentum"] * v
            close(value, theirs_value, rtol=1e-10)


# -- bad input: one line, exit 2, the layer and both shapes ------------------------------------

CONV = "  - type: conv2d\n    kernels: {k}\n"
ERRORS = [
    (
        "input: [[[1, 2], [3, 4]]]\ntarget: [1]\nloss: mse\nlearning_rate: 0.1\nlayers:\n"
        + CONV.format(k="[[[[1, 0, 0], [0, 1, 0], [0, 0, 1]]]]"),
        ["layers[0].kernels", "3×3 kernel is larger than the padded input", "1×2×2"],
    ),
    (
        "input: [[[1, 2], [3, 4]]]\ntarget: [1]\nloss: mse\nlearning_rate: 0.1\nlayers:\n"
        + CONV.format(k="[[[[1]], [[2]]]]"),
        ["layers[0].kernels", "1×2×1×1", "take 2 input channels", "1×2×2: 1 channel"],
    ),
    (
        "input: [[[1, 2], [3, 4]]]\ntarget: [1]\nloss: mse\nlearning_rate: 0.1\nlayers:\n"
        "  - type: maxpool2d\n    size: 2\n  - weights: [[1]]\n    biases: [0]\n"
        "    activation: linear\n",
        ["layers[1]", "dense layer takes a vector", "layers[0] gives shape 1×1×1", "flatten"],
    ),
    (
        "input: [[[1, 2], [3, 4]]]\ntarget: [1]\nloss: mse\nlearning_rate: 0.1\nlayers:\n"
        "  - type: flatten\n  - weights: [[1, 2, 3]]\n    biases: [0]\n    activation: linear\n",
        ["layers[1].weights", "rows have 3 weights", "4 values", "each row needs 4 numbers"],
    ),
    (
        "inputs: {file: big.npy}\ntargets: [[1]]\nloss: mse\nlearning_rate: 0.1\nlayers:\n"
        "  - type: conv2d\n    kernels: {init: he_normal, channels: 512, size: 3}\n"
        "  - type: flatten\n",
        ["layers[0]", "numbers per pass; at most"],
    ),
    (
        "input: [[1, 2]]\ntarget: [1]\nloss: mse\nlearning_rate: 0.1\nlayers:\n  - type: conv3d\n",
        ["layers[0].type", "unknown layer type 'conv3d'", "did you mean"],
    ),
    (
        "input: [1, 2]\ntarget: [1]\nloss: mse\nlearning_rate: 0.1\nlayers:\n  - type: conv2d\n"
        "    kernels: [[[[1]]]]\n",
        ["input", "the first layer takes one example (C, H, W)", "shape 2"],
    ),
]


@pytest.mark.parametrize(("text", "pieces"), ERRORS)
def test_bad_layers_are_one_line_with_the_layer_and_shapes(
    run_cli: Any, write_config: Any, tmp_path: Path, text: str, pieces: list[str]
) -> None:
    np.save(tmp_path / "big.npy", np.zeros((64, 1, 60, 60)))
    result = run_cli(["step", str(write_config(tmp_path, text))])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    for piece in pieces:
        assert piece in result.stderr, result.stderr


# -- check: the named mistakes, each on its own mistake and on nothing else -------------------


def _mistake_net(rng: np.random.Generator) -> list[dict[str, Any]]:
    return [
        {
            "type": "conv2d",
            "kernels": rng.normal(size=(2, 2, 3, 3)),
            "biases": rng.normal(size=2),
            "stride": 2,
            "padding": 1,
            "activation": "tanh",
        },
        {"type": "maxpool2d", "size": 2, "stride": 1},
        {"type": "flatten"},
        {
            "type": "dense",
            "weights": rng.normal(size=(2, 8)),
            "biases": rng.normal(size=2),
            "activation": "linear",
        },
    ]


def _padded(x: np.ndarray, p: int) -> np.ndarray:
    out = np.zeros((x.shape[0], x.shape[1] + 2 * p, x.shape[2] + 2 * p))
    out[:, p : p + x.shape[1], p : p + x.shape[2]] = x
    return out


def _mistaken(
    name: str, net: list[dict[str, Any]], xs: np.ndarray, layers: list[dict]
) -> tuple[int, str, np.ndarray]:
    """(layer index, quantity, the value the mistake gives), from loops over the contract's own
    exact δ and the config's numbers."""
    k, b = net[0]["kernels"], net[0]["biases"]
    scale = 1.0 / len(xs)
    delta = np.asarray(layers[0]["delta"])
    if name == "kernel_flipped":
        flipped = k[:, :, ::-1, ::-1]
        return 0, "z", np.array([ref_conv(x, flipped, b, (2, 2), (1, 1)) for x in xs])
    if name == "bias_gradient_not_summed":
        return 0, "grads.biases", scale * delta[:, :, 0, 0].sum(axis=0)
    if name in ("stride_ignored_in_backward", "padding_not_removed"):
        stride = 1 if name == "stride_ignored_in_backward" else 2
        dk = np.zeros(k.shape)
        dxs = []
        for n, x in enumerate(xs):
            xp = _padded(x, 1)
            dxp = np.zeros(xp.shape)
            for o, i, j, c, p, q in itertools.product(*map(range, (2, 3, 3, 2, 3, 3))):
                dk[o, c, p, q] += scale * delta[n, o, i, j] * xp[c, stride * i + p, stride * j + q]
                dxp[c, stride * i + p, stride * j + q] += delta[n, o, i, j] * k[o, c, p, q]
            dxs.append(dxp[:, 1:6, 1:6] if name == "stride_ignored_in_backward" else dxp[:, :5, :5])
        if name == "padding_not_removed":
            return 0, "grad_input", np.array(dxs)
        return 0, "grads.kernels", dk
    pool_delta = np.asarray(layers[1]["delta"])
    share = 1.0 if name == "pool_gradient_to_all" else 0.25
    dx = np.zeros((len(xs), 2, 3, 3))
    for n, c, i, j, p, q in itertools.product(*map(range, (len(xs), 2, 2, 2, 2, 2))):
        dx[n, c, i + p, j + q] += share * pool_delta[n, c, i, j]
    return 1, "grad_input", dx


MISTAKES = [
    "kernel_flipped",
    "stride_ignored_in_backward",
    "padding_not_removed",
    "bias_gradient_not_summed",
    "pool_gradient_to_all",
    "pool_gradient_average",
]


@pytest.mark.parametrize("name", MISTAKES)
def test_each_named_mistake_fires_on_its_own_mistake_and_nothing_else(
    run_cli: Any, write_config: Any, tmp_path: Path, name: str
) -> None:
    rng = np.random.default_rng(5)
    net = _mistake_net(rng)
    xs = rng.normal(size=(2, 2, 5, 5))
    ys = rng.normal(size=(2, 2))
    path = write_config(tmp_path, config_text(net, xs, ys))
    contract = step_json(run_cli, path)
    layers = contract["steps"][0]["layers"]
    index, quantity, value = _mistaken(name, net, xs, layers)
    record = layers[index]
    if quantity.startswith("grads."):
        record["grads"][quantity[6:]] = value.tolist()
    else:
        record[quantity] = value.tolist()
    result = run_cli(["check", str(path), "-", "--format", "json"], input=json.dumps(contract))
    assert result.exit_code == 1, result.output
    cells = json.loads(result.stdout)["cells"]
    wrong = [c for c in cells if c["verdict"] == "wrong"]
    assert wrong and all(c["mistake"] == name for c in wrong), {c["mistake"] for c in wrong}
    assert {c["mistake"] for c in cells if c["mistake"]} == {name}
    # The right answers name none: every cell of the exact contract is correct.
    exact = run_cli(
        ["check", str(path), "-", "--format", "json"], input=json.dumps(step_json(run_cli, path))
    )
    assert exact.exit_code == 0
    assert not any(c["mistake"] for c in json.loads(exact.stdout)["cells"])


def test_check_grades_a_layered_sheet_and_carries_an_error(run_cli: Any) -> None:
    """The sheet form with 0-based cells: a wrong z^2 cell is ✗, and the a^2 written from it
    is ↳ (right given the error)."""
    sheet = (
        "step: 1\n"
        "z: {2: [[[0, -1, -1], [-1, 1, 3], [2, 0, -2]]]}\n"
        "a: {2: [[[0, 0, 0], [0, 1, 3], [2, 0, 0]]]}\n"
    )
    good = run_cli(
        ["check", "--example", "conv-worked-example", "-", "--format", "json"], input=sheet
    )
    assert good.exit_code == 0, good.output
    assert json.loads(good.stdout)["score"] == 18
    # Whole numbers are read to ±0.5 (as written) and the drift bound of such rounding: the
    # slip must be larger than that.
    slip = sheet.replace("[-1, 1, 3]", "[-1, 1, 30]").replace("[0, 1, 3]", "[0, 1, 30]")
    bad = run_cli(
        ["check", "--example", "conv-worked-example", "-", "--format", "json"], input=slip
    )
    assert bad.exit_code == 1
    cells = {c["symbol"]: c["verdict"] for c in json.loads(bad.stdout)["cells"]}
    assert cells["z²[0,1,2]"] == "wrong" and cells["a²[0,1,2]"] == "carried"


# -- gradcalc list -------------------------------------------------------------------------------


def test_list_shows_every_layer_type_with_its_equations(run_cli: Any) -> None:
    from gradcalc.layers import REGISTRY

    doc = json.loads(run_cli(["list", "layers", "--format", "json"]).stdout)
    assert [r["name"] for r in doc["layers"]] == list(REGISTRY)
    for row in doc["layers"]:
        assert row["equations"] and len(row["equations"]) == len(row["equations_tex"])
    conv = next(r for r in doc["layers"] if r["name"] == "conv2d")
    assert {m["name"] for m in conv["mistakes"]} == set(MISTAKES[:4])
    text = run_cli(["list", "layers", "--no-color"]).stdout
    for name in REGISTRY:
        assert name in text
    assert "cross-correlation" in text


# -- the worked solution -------------------------------------------------------------------------


def test_explain_writes_each_cell_as_its_substituted_sum(run_cli: Any) -> None:
    result = run_cli(["step", "--example", "conv-worked-example", "--explain"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "z²₀₀₀ = 1×1 + 2×0 + 0×0 + 1×(−1) + 0 = 0" in text
    assert "full convolution of δ with the flipped kernel" in text
    assert "∂C/∂K²₀₀₀₁ = " in text and "= −0.807" in text
    assert "cross-correlation" in text
    cut = run_cli(["step", "--example", "conv-worked-example", "--explain", "--max-terms", "2"])
    assert "z²₀₀₀ = 1×1 + 2×0 + … + (2 more terms) + 0 = 0" in cut.stdout
    rows = run_cli(["step", "--example", "conv-worked-example", "--explain", "--max-rows", "2"])
    assert "z²₀₀₁" in rows.stdout and "z²₀₀₂" not in rows.stdout
    assert "7 more cells" in rows.stdout


def test_markdown_and_latex_write_the_sums_in_tex(
    run_cli: Any, tmp_path: Path, pdflatex: Any
) -> None:
    markdown = run_cli(["step", "--example", "conv-worked-example", "--format", "markdown"]).stdout
    assert (
        r"z^{2}_{000} &= 1 \times 1 + 2 \times 0 + 0 \times 0 + 1 \times (-1) + 0 = 0" in markdown
    )
    tex = tmp_path / "conv.tex"
    result = run_cli(
        ["step", "--example", "conv-worked-example", "--format", "latex", "-o", str(tex)]
    )
    assert result.exit_code == 0
    assert r"\tilde{x}" in tex.read_text(encoding="utf-8")
    pdflatex(tex)


WRITTEN_NETS = [
    [
        {
            "type": "conv2d",
            "kernels": [[[[1, -1], [0, 2]]], [[[0.5, 0], [1, 1]]]],
            "stride": 2,
            "padding": 1,
            "activation": "tanh",
        },
        {"type": "avgpool2d", "size": [1, 2]},
        {"type": "flatten"},
    ],
    [
        {"type": "conv1d", "kernels": [[[1, -1, 0.5]]], "biases": [0.1], "padding": 1},
        {"type": "maxpool1d", "size": 2, "ties": "split"},
        {"type": "flatten", "activation": "sigmoid"},
    ],
]


@pytest.mark.parametrize("fmt", ["--explain", "markdown", "latex", "table", "json", "jsonl"])
@pytest.mark.parametrize("index", range(len(WRITTEN_NETS)))
def test_every_view_of_other_layer_shapes(
    run_cli: Any, write_config: Any, tmp_path: Path, fmt: str, index: int
) -> None:
    net = WRITTEN_NETS[index]
    xs = (
        np.arange(2 * 16, dtype=float).reshape(2, 1, 4, 4) / 10
        if index == 0
        else np.arange(10.0).reshape(2, 1, 5) / 5
    )
    ys = np.ones((2, 6)) if index == 0 else np.ones((2, 2))
    path = write_config(
        tmp_path,
        config_text(
            [
                {
                    k: (np.asarray(v) if isinstance(v, list) and k == "kernels" else v)
                    for k, v in layer.items()
                }
                for layer in net
            ],
            xs,
            ys,
            "steps: 2\noptimizer: momentum",
        ),
    )
    args = ["step", str(path), *(["--explain"] if fmt == "--explain" else ["--format", fmt])]
    result = run_cli(args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "Step 2" in result.stdout or '"step":2' in result.stdout


def test_upstream_gives_the_exam_answers_dx_and_dk(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    """ "Given dL/dY, find dL/dX and dL/dK": one 2×2 kernel over a 3×3 input, stride 1."""
    text = (
        "input: [[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]\nloss: upstream\n"
        "upstream: [[[1, 0], [0, -1]]]\n"
        "learning_rate: 0.1\nlayers:\n  - type: conv2d\n    kernels: [[[[1, 2], [3, 4]]]]\n"
    )
    layer = step_json(run_cli, write_config(tmp_path, text))["steps"][0]["layers"][0]
    x, k, g = (
        np.arange(1.0, 10).reshape(1, 3, 3),
        np.array([[[[1.0, 2], [3, 4]]]]),
        np.array([[[1.0, 0], [0, -1]]]),
    )
    dk, db, dx = ref_conv_back(x, k, g, (1, 1), (0, 0))
    assert layer["grads"]["kernels"] == dk.tolist()
    assert layer["grads"]["biases"] == db.tolist() == [0.0]
    assert layer["grad_input"] == dx.tolist()


# -- fuzz: valid and nearly valid layered configs end cleanly -----------------------------------


@st.composite
def layered_configs(draw: Any) -> dict[str, Any]:
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    one_d = draw(st.booleans())
    batch = draw(st.integers(1, 3))
    channels = draw(st.integers(1, 2))
    length = draw(st.integers(3, 6))
    spatial = (length,) if one_d else (length, draw(st.integers(3, 6)))
    layers: list[dict[str, Any]] = []
    shape = (channels, *spatial)
    if draw(st.booleans()):
        out = draw(st.integers(1, 3))
        k = draw(st.integers(1, min(spatial)))
        stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 1))
        kernels = rng.normal(size=(out, channels, *(k,) * len(spatial))).round(2)
        layers.append(
            {
                "type": "conv1d" if one_d else "conv2d",
                "kernels": kernels.tolist(),
                "stride": stride,
                "padding": padding,
                "activation": draw(st.sampled_from(["tanh", "relu", "linear", "sigmoid"])),
            }
        )
        shape = (out, *((n + 2 * padding - k) // stride + 1 for n in spatial))
    if draw(st.booleans()):
        size = draw(st.integers(1, min(shape[1:])))
        kind = draw(st.sampled_from(["max", "avg"]))
        layers.append({"type": f"{kind}pool{'1' if one_d else '2'}d", "size": size})
        shape = (shape[0], *((n - size) // size + 1 for n in shape[1:]))
    layers.append({"type": "flatten"})
    width = int(np.prod(shape))
    units = draw(st.integers(1, 3))
    loss = draw(st.sampled_from(["mse", "cross_entropy", "upstream"]))
    layers.append(
        {
            "weights": rng.normal(size=(units, width)).round(2).tolist(),
            "biases": [0.0] * units,
            "activation": "softmax" if loss == "cross_entropy" else "tanh",
        }
    )
    xs = rng.normal(size=(batch, channels, *spatial)).round(2)
    ys = (
        np.eye(units)[rng.integers(0, units, batch)]
        if loss == "cross_entropy"
        else rng.normal(size=(batch, units)).round(2)
    )
    config: dict[str, Any] = {"inputs": xs.tolist(), "loss": loss, "learning_rate": 0.1}
    config["upstream" if loss == "upstream" else "targets"] = ys.tolist()
    config["optimizer"] = draw(st.sampled_from(sorted({r.name for r in OPTIMIZERS.values()})))
    config["steps"] = draw(st.integers(1, 2))
    config["layers"] = layers
    return config


FORMATS = [
    [],
    ["--format", "json"],
    ["--explain"],
    ["--format", "latex"],
    ["--show", "summary"],
    ["--round", "2"],
]


@fuzz_settings(60)
@given(layered_configs(), st.sampled_from(FORMATS))
def test_valid_layered_configs_end_cleanly(config: dict[str, Any], extra: list[str]) -> None:
    args = ["step", "-", *extra]
    doc = check_result("step", args, invoke(args, input=json.dumps(config)))
    if doc is not None:
        assert doc["layer_types"] == [layer.get("type", "dense") for layer in config["layers"]]


@fuzz_settings(100)
@given(layered_configs(), st.data())
def test_nearly_valid_layered_configs_end_cleanly(config: dict[str, Any], data: Any) -> None:
    layer = data.draw(st.sampled_from(config["layers"]))
    key = data.draw(st.sampled_from(sorted(layer)))
    layer[key] = data.draw(st.sampled_from(ODD_VALUES) | st.integers(-3, 9) | st.text(max_size=6))
    args = ["step", "-", *data.draw(st.sampled_from(FORMATS))]
    check_result("step", args, invoke(args, input=json.dumps(config)))


def test_the_python_api_runs_layer_records() -> None:
    import gradcalc

    net = gradcalc.from_dict(
        {
            "input": np.arange(16.0).reshape(1, 4, 4) / 10,
            "loss": "upstream",
            "upstream": np.ones((1, 3, 3)),
            "learning_rate": 0.1,
            "layers": [{"type": "conv2d", "kernels": np.ones((1, 1, 2, 2))}],
        }
    )
    trace = gradcalc.run(net, steps=2)
    doc = trace.to_dict()
    assert doc["layer_types"] == ["conv2d"] and len(doc["steps"]) == 2
    # C = Σ z with z = Σ of each 2×2 window: ∂C/∂K[p,q] = Σ of the cells each kernel cell meets.
    x = np.arange(16.0).reshape(4, 4) / 10
    want = [[x[p : p + 3, q : q + 3].sum() for q in range(2)] for p in range(2)]
    close(doc["steps"][0]["layers"][0]["grads"]["kernels"][0][0], np.array(want))


# -- check: rounding within the drift bound, a batch's blank sheet ------------------------------


@pytest.mark.parametrize("rule", ["sgd", "momentum", "nesterov"])
@pytest.mark.parametrize("rounding", ["decimals 2", "decimals 3", "sig-figs 3"])
def test_the_rounded_layered_trace_lies_within_the_drift_bound(
    write_config: Any, tmp_path: Path, rule: str, rounding: str
) -> None:
    from gradcalc.check.bounds import Bounds, decimals_unit, sig_figs_unit
    from gradcalc.check.cells import Shape, expected, expected_final
    from gradcalc.check.grade import _run_rounded, sig_figs_rounder
    from gradcalc.functions.training import hand_round
    from gradcalc.step import config
    from gradcalc.step.engine import run

    rng = np.random.default_rng(9)
    net = _mistake_net(rng)
    xs = rng.normal(size=(2, 2, 5, 5)).round(2)
    ys = rng.normal(size=(2, 2)).round(2)
    spec = config.load(
        str(write_config(tmp_path, config_text(net, xs, ys, f"optimizer: {rule}\nsteps: 2")))
    )
    kind, n = rounding.split()
    if kind == "decimals":
        unit, rounder = decimals_unit(int(n)), hand_round(int(n))
    else:
        unit, rounder = sig_figs_unit(int(n)), sig_figs_rounder(int(n))
    exact = run(spec)
    steps, final = _run_rounded(spec, spec.steps, rounder)
    bounds = Bounds(spec, exact, unit)
    shape = Shape.of(spec)
    for s in range(spec.steps):
        for key in shape.step_keys():
            gap = np.abs(expected(steps[s], key) - expected(exact.steps[s], key))
            assert np.all(gap <= bounds.steps[s][key] + 1e-12), (s + 1, key)
    for key in shape.final_keys():
        gap = np.abs(expected_final(final, key) - expected_final(exact.final, key))
        assert np.all(gap <= bounds.final[key] + 1e-12), key


def test_a_batch_blank_sheet_round_trips(run_cli: Any, write_config: Any, tmp_path: Path) -> None:
    import yaml

    rng = np.random.default_rng(2)
    net = _mistake_net(rng)
    path = write_config(
        tmp_path, config_text(net, rng.normal(size=(2, 2, 5, 5)), rng.normal(size=(2, 2)))
    )
    sheet = run_cli(["check", str(path), "--template"]).stdout
    blank = tmp_path / "blank.yaml"
    blank.write_text(sheet, encoding="utf-8")
    graded = run_cli(["check", str(path), str(blank), "--format", "json", "--require-all"])
    assert graded.exit_code == 1
    cells = json.loads(graded.stdout)["cells"]
    assert {c["verdict"] for c in cells} == {"missing"}
    # Filled in with the exact values it passes, in the sheet form.
    doc = step_json(run_cli, path)
    filled = yaml.safe_load(sheet)
    record = doc["steps"][0]
    filled["loss"], filled["losses"] = record["loss"], record["losses"]
    for layer in record["layers"]:
        l = layer["layer"]
        for q in ("z", "a", "delta", "grad_input"):
            if l in filled.get(q, {}):
                filled[q][l] = layer[q]
        for name, value in layer["grads"].items():
            filled[f"grad_{name}"][l] = value
        for name, value in layer["params"].items():
            filled[name][l] = value
    done = tmp_path / "done.yaml"
    done.write_text(yaml.safe_dump(filled), encoding="utf-8")
    result = run_cli(["check", str(path), str(done), "--format", "json", "--require-all"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["score"] == report["max_score"] == len(cells)


def test_every_layer_parameter_has_a_check_group_and_a_schema_name() -> None:
    """A layer type's parameters are graded as grad_<name> and <name>: a new one needs its
    group in gradcalc/check/cells.py and its name in schemas/check.schema.json."""
    from gradcalc.check.cells import GROUPS
    from gradcalc.layers import REGISTRY

    schema = json.loads(Path("schemas/check.schema.json").read_text(encoding="utf-8"))
    names = set(schema["properties"]["cells"]["items"]["properties"]["quantity"]["enum"])
    for kind in REGISTRY.values():
        for name in kind.symbols:
            for q in (name, f"grad_{name}"):
                assert q in GROUPS and q in names, (kind.name, q)
    assert {"z", "a", "delta", "grad_input"} <= names


# -- JSON documents of layer records validate; parameters from files ---------------------------


@pytest.mark.parametrize(
    "extra",
    [
        ["--format", "json"],
        ["--format", "json", "--show", "summary"],
        ["--format", "json", "--show", "final"],
        ["--format", "json", "--round", "3", "--optimizer", "nesterov"],
        ["--format", "jsonl"],
    ],
)
@pytest.mark.parametrize("index", range(len(WRITTEN_NETS)))
def test_layered_json_validates_against_the_schema(
    run_cli: Any, write_config: Any, tmp_path: Path, extra: list[str], index: int
) -> None:
    from test_json_schemas import validate

    net = WRITTEN_NETS[index]
    xs = (
        np.arange(32, dtype=float).reshape(2, 1, 4, 4) / 10
        if index == 0
        else np.arange(10.0).reshape(2, 1, 5) / 5
    )
    ys = np.ones((2, 6)) if index == 0 else np.ones((2, 2))
    layers = [
        {k: np.asarray(v) if k == "kernels" else v for k, v in layer.items()} for layer in net
    ]
    path = write_config(tmp_path, config_text(layers, xs, ys, "steps: 2\nweight_decay: 0.01"))
    result = run_cli(["step", str(path), *extra])
    assert result.exit_code == 0, result.output
    if "jsonl" in extra:
        *records, last = [json.loads(line) for line in result.stdout.splitlines()]
        doc = {**last, "steps": records}
    else:
        doc = json.loads(result.stdout)
    validate(doc, "step")
    contract = run_cli(["check", str(path), "-", "--format", "json"], input=result.stdout)
    if "jsonl" not in extra and "--round" not in extra and "summary" not in extra:
        assert contract.exit_code == 0, contract.output
        validate(json.loads(contract.stdout), "check")


def test_kernels_and_biases_from_files_and_initializers(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    k = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
    np.save(tmp_path / "k.npy", k)
    np.savez(tmp_path / "p.npz", b=np.array([0.5]))
    text = (
        "input: [[[1, 2, 0], [0, 1, 3], [2, 1, 0]]]\nloss: upstream\nupstream: [[[1, 1], [1, 1]]]\n"
        "learning_rate: 0.1\nlayers:\n  - type: conv2d\n    kernels: {file: k.npy}\n"
        "    biases: {file: p.npz, key: b}\n"
    )
    doc = step_json(run_cli, write_config(tmp_path, text))
    assert doc["steps"][0]["layers"][0]["z"] == [[[0.5, -0.5], [-0.5, 1.5]]]
    drawn = text.replace("{file: k.npy}", "{init: xavier_uniform, seed: 3, channels: 2, size: 2}")
    drawn = drawn.replace("{file: p.npz, key: b}", "{init: zeros}").replace(
        "[[[1, 1], [1, 1]]]", "[[[1, 1], [1, 1]], [[0, 0], [0, 0]]]"
    )
    again = step_json(run_cli, write_config(tmp_path, drawn, "drawn.yaml"))
    conv = again["steps"][0]["layers"][0]
    # The drawn kernels, before SGD's step: Glorot's uniform limit √(6/(fan_in + fan_out)).
    drawn_k = np.asarray(conv["params"]["kernels"]) + 0.1 * np.asarray(conv["grads"]["kernels"])
    assert drawn_k.shape == (2, 1, 2, 2)
    assert np.all(np.abs(drawn_k) <= np.sqrt(6 / (1 * 2 * 2 + 2 * 2 * 2)))
    same = step_json(run_cli, write_config(tmp_path, drawn, "again.yaml"))
    assert same["steps"][0]["layers"][0]["z"] == again["steps"][0]["layers"][0]["z"]


def test_a_layered_run_writes_its_worked_solution_from_python() -> None:
    import gradcalc

    trace = gradcalc.run(gradcalc.load("configs/conv-worked-example.yaml"), steps=2)
    assert "z²₀₀₀ = 1×1 + 2×0 + 0×0 + 1×(−1) + 0 = 0" in trace.explain()
    assert r"z^{2}_{000}" in trace.to_markdown() and r"\begin{document}" in trace.to_latex()


def test_a_layered_document_of_another_run_is_refused(run_cli: Any) -> None:
    """A `gradcalc step` document records its run: graded against another η it is refused,
    as for dense networks; a .json answer file is read as strict JSON."""
    contract = run_cli(["step", "--example", "conv-worked-example", "--format", "json"]).stdout
    other = run_cli(
        ["check", "--example", "conv-worked-example", "-", "--learning-rate", "0.5"],
        input=contract,
    )
    assert other.exit_code == 2 and "η = 0.1" in other.stderr, other.output
    doc = json.loads(contract)
    doc["initial"]["loss"] += 1.0
    moved = run_cli(["check", "--example", "conv-worked-example", "-"], input=json.dumps(doc))
    assert moved.exit_code == 2 and "first forward pass" in moved.stderr


def test_a_layered_json_answer_file_is_strict_json(run_cli: Any, tmp_path: Path) -> None:
    sheet = tmp_path / "answers.json"
    sheet.write_text('{"step": 1, "loss": 0.313262,}', encoding="utf-8")
    result = run_cli(["check", "--example", "conv-worked-example", str(sheet)])
    assert result.exit_code == 2 and "not valid JSON" in result.stderr


def test_pictures_are_drawn_and_json_indents(run_cli: Any, tmp_path: Path) -> None:
    """--format svg, --diagram and --plot draw layered networks too (tests/
    test_pictures_layered.py checks what); --indent re-indents a layered JSON document."""
    for args in (["--format", "svg"], ["--diagram", "d.svg"], ["--plot", "p.svg"]):
        args = [str(tmp_path / a) if a.endswith(".svg") else a for a in args]
        result = run_cli(["step", "--example", "conv-worked-example", *args])
        assert result.exit_code == 0, result.output
    doc = run_cli(["step", "--example", "conv-worked-example", "--format", "json", "--indent", "2"])
    assert doc.exit_code == 0 and doc.stdout.startswith('{\n  "format_version": 1')
    assert json.loads(doc.stdout)["layer_types"][0] == "conv2d"
    html = run_cli(["step", "--example", "conv-worked-example", "--format", "html"])
    assert html.exit_code == 0 and "<math" in html.stdout and "conv2d" in html.stdout


@pytest.mark.parametrize("fmt", ["table", "json", "gradescope", "html"])
def test_every_check_format_explains_a_layer_mistake(run_cli: Any, fmt: str) -> None:
    doc = json.loads(
        run_cli(["step", "--example", "conv-worked-example", "--format", "json"]).stdout
    )
    doc["steps"][0]["layers"][0]["grads"]["biases"] = [0.0]  # δ at the first position: 0
    result = run_cli(
        ["check", "--example", "conv-worked-example", "-", "--format", fmt], input=json.dumps(doc)
    )
    assert result.exit_code == 1, result.output
    assert "bias_gradient_not_summed" in result.stdout
    if fmt != "table":  # the table's legend wraps its text at the terminal's width
        assert "∂C/∂b from δ at one position" in result.stdout


def test_generate_makes_problems_of_a_layered_template(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    """(tests/test_course_conv.py checks the course kit of layer records in full.)"""
    text = Path("configs/conv-worked-example.yaml").read_text(encoding="utf-8")
    text = text.replace("biases: [0]\n", "biases: [{uniform: [-0.5, 0.5], decimals: 1}]\n", 1)
    template = write_config(tmp_path, text, "conv.yaml")
    out = tmp_path / "out"
    result = run_cli(["generate", str(template), "--count", "2", "-o", str(out), "--no-pdf"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "1" / "key.json").read_text())["layer_types"][0] == "conv2d"


def test_each_examples_cost_is_numbered_from_1_as_its_other_cells(run_cli, tmp_path) -> None:
    """A layered batch's C_x cells said x = 0, 1, 2 while its z, a and δ said x = 1, 2, 3."""
    doc = json.loads(
        run_cli(["step", "--example", "batchnorm-worked-example", "--format", "json"]).stdout
    )
    doc["steps"][0]["losses"][0] += 0.5
    sheet = tmp_path / "answers.json"
    sheet.write_text(json.dumps(doc), encoding="utf-8")
    result = run_cli(
        ["check", "--example", "batchnorm-worked-example", str(sheet), "--format", "json"]
    )
    cells = json.loads(result.stdout)["cells"]
    costs = [c for c in cells if c["quantity"] == "losses"]
    deltas = [c for c in cells if c["quantity"] == "delta"]
    assert [c["index"] for c in costs] == [[1], [2], [3]]
    assert [c["symbol"] for c in costs] == ["C_x (x = 1)", "C_x (x = 2)", "C_x (x = 3)"]
    assert {c["index"][0] for c in deltas} == {1, 2, 3}
    assert [c["verdict"] for c in costs] == ["wrong", "correct", "correct"]


def test_the_dense_record_takes_the_keys_the_dense_config_reads() -> None:
    from gradcalc.layers.dense import DENSE
    from gradcalc.step.config import DENSE_KEYS

    assert DENSE.keys == DENSE_KEYS
