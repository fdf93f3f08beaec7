"""Attention, embedding, meanpool and `residual: true` (gradcalc/layers/attention.py,
embedding.py, meanpool.py): proven against an independent float64 reference written with loops
from the equations (nothing from gradcalc), against central finite differences of that
reference, and against torch (nn.MultiheadAttention, nn.Embedding) for every update rule."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_layers import TORCH_RULES, close, close_fd, finite_differences, step_json

from gradcalc.functions.optimizers import REGISTRY as OPTIMIZERS

# -- the reference: loops over positions and heads, nothing from gradcalc -----------------------


def ref_attention(x: np.ndarray, p: dict[str, Any]) -> dict[str, np.ndarray]:
    """One example x (T, d) through one attention layer: Q, K, V, S, P, H and z (with the
    residual added when p["residual"])."""
    T = x.shape[0]
    heads = p.get("heads", 1)
    q = x @ np.asarray(p["wq"]).T + np.asarray(p.get("bq", 0.0))
    k = x @ np.asarray(p["wk"]).T + np.asarray(p.get("bk", 0.0))
    v = x @ np.asarray(p["wv"]).T + np.asarray(p.get("bv", 0.0))
    dk, dv = q.shape[1] // heads, v.shape[1] // heads
    scale = p.get("scale") or 1 / math.sqrt(dk)
    s = np.zeros((heads, T, T))
    w = np.zeros((heads, T, T))
    out = np.zeros((T, v.shape[1]))
    for h in range(heads):
        for i in range(T):
            for j in range(T):
                s[h, i, j] = scale * sum(q[i, h * dk + c] * k[j, h * dk + c] for c in range(dk))
            seen = [j for j in range(T) if not p.get("causal") or j <= i]
            top = max(s[h, i, j] for j in seen)
            total = sum(math.exp(s[h, i, j] - top) for j in seen)
            for j in seen:
                w[h, i, j] = math.exp(s[h, i, j] - top) / total
            for c in range(dv):
                out[i, h * dv + c] = sum(w[h, i, j] * v[j, h * dv + c] for j in range(T))
    z = out
    if "wo" in p:
        z = out @ np.asarray(p["wo"]).T + np.asarray(p.get("bo", 0.0))
    a = x + z if p.get("residual") else z
    return {"q": q, "k": k, "v": v, "scores": s, "weights": w, "heads": out, "z": z, "a": a}


def ref_net(layers: list[dict[str, Any]], x: np.ndarray) -> list[dict[str, np.ndarray]]:
    """One example through the layers; x is token ids when the first layer is an embedding."""
    out = []
    for layer in layers:
        kind = layer["type"]
        if kind == "embedding":
            table = np.asarray(layer["table"])
            z = np.array([table[int(t)] for t in x])
            record = {"z": z, "a": z}
        elif kind == "attention":
            record = ref_attention(x, layer)
        elif kind == "meanpool":
            z = np.array(
                [sum(x[t, k] for t in range(x.shape[0])) / x.shape[0] for k in range(x.shape[1])]
            )
            record = {"z": z, "a": z}
        else:
            z = np.asarray(layer["weights"]) @ x + np.asarray(layer["biases"])
            a = np.tanh(z) if layer.get("activation") == "tanh" else z
            record = {"z": z, "a": x + a if layer.get("residual") else a}
        out.append(record)
        x = record["a"]
    return out


def ref_cost(layers: list[dict[str, Any]], xs: np.ndarray, ys: np.ndarray) -> float:
    """mse per example (the mean over every output value), the mean over the batch."""
    total = 0.0
    for x, y in zip(xs, ys, strict=True):
        a = ref_net(layers, x)[-1]["a"]
        total += float(np.mean((a - y) ** 2))
    return total / len(xs)


# -- configs ------------------------------------------------------------------------------------


def _yaml(value: Any) -> str:
    return json.dumps(np.asarray(value).tolist() if isinstance(value, np.ndarray) else value)


def config_text(
    layers: list[dict[str, Any]], xs: Any, ys: Any, extra: str = "", key: str = "inputs"
) -> str:
    target = "targets" if key in ("inputs", "tokens") else "target"
    lines = [f"{key}: {_yaml(xs)}", f"{target}: {_yaml(ys)}", "loss: mse", "learning_rate: 0.1"]
    lines += [extra, "layers:"]
    for layer in layers:
        lines.append(f"  - type: {layer['type']}")
        for name, value in layer.items():
            if name != "type":
                lines.append(f"    {name}: {_yaml(value)}")
    return "\n".join(lines) + "\n"


def attention_layer(
    rng: np.random.Generator, d: int, heads: int, causal: bool, residual: bool, wo: bool = True
) -> dict[str, Any]:
    layer: dict[str, Any] = {"type": "attention", "heads": heads, "causal": causal}
    for p in "qkv":
        layer[f"w{p}"] = rng.normal(size=(d, d))
        layer[f"b{p}"] = rng.normal(size=d) * 0.3
    if wo:
        layer["wo"] = rng.normal(size=(d, d)) * 0.5
        layer["bo"] = rng.normal(size=d) * 0.3
    if residual:
        layer["residual"] = True
    return layer


PARAMS = ("table", "wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo", "weights", "biases")


def check_against_reference(
    got: dict[str, Any], layers: list[dict[str, Any]], xs: np.ndarray, ys: np.ndarray
) -> None:
    """Every layer's z, every parameter's gradient (by finite differences of the reference cost)
    and, when the input is vectors, ∂C_x/∂x of the first layer."""
    step = got["steps"][0]
    cost = step.get("lookahead", step)["loss"]  # nesterov's passes run at θ̃
    close(cost, np.asarray(ref_cost(layers, xs, ys)), rtol=1e-12)
    refs = [ref_net(layers, x) for x in xs]
    one = "reduction" in got and got["reduction"] is None  # one example: no batch axis

    def rows(values: list[Any]) -> np.ndarray:
        return np.array(values[0] if one else values)

    for i, record in enumerate(step["layers"]):
        close(record["z"], rows([r[i]["z"] for r in refs]), rtol=1e-10)
        close(record["a"], rows([r[i]["a"] for r in refs]), rtol=1e-10)
        for name in PARAMS:
            if name in layers[i]:
                array = np.array(layers[i][name], dtype=float)
                layers[i][name] = array
                fd = finite_differences(lambda: ref_cost(layers, xs, ys), array)
                close_fd(record["grads"][name], fd)
    if layers[0]["type"] != "embedding":
        x = np.array(xs, dtype=float)
        fd = finite_differences(lambda: ref_cost(layers, x, ys), x) * len(xs)  # ∂C_x/∂x
        close_fd(step["layers"][0]["grad_input"], fd[0] if one else fd)


# -- proof: heads 1–2, causal on/off, residual on/off, T 1–5, batches ---------------------------

CASES = [
    (heads, causal, residual, T, batch, pooled)
    for heads, causal, residual, T, batch, pooled in itertools.product(
        [1, 2], [False, True], [False, True], [1, 2, 3, 5], [1, 2], [False, True]
    )
    if (T + batch + heads) % 2 == 0 or T == 5  # half the grid, every value of each axis kept
]


@pytest.mark.parametrize(("heads", "causal", "residual", "T", "batch", "pooled"), CASES)
def test_attention_matches_the_reference_and_finite_differences(
    run_cli: Any,
    write_config: Any,
    tmp_path: Path,
    heads: int,
    causal: bool,
    residual: bool,
    T: int,
    batch: int,
    pooled: bool,
) -> None:
    rng = np.random.default_rng(100 * T + 10 * heads + batch)
    d = 4
    layers = [attention_layer(rng, d, heads, causal, residual, wo=heads == 2 or residual)]
    xs = rng.normal(size=(batch, T, d))
    if pooled:
        layers += [
            {"type": "meanpool"},
            {
                "type": "dense",
                "weights": rng.normal(size=(2, d)),
                "biases": rng.normal(size=2),
                "activation": "tanh",
            },
        ]
        ys = rng.normal(size=(batch, 2))
    else:
        ys = rng.normal(size=(batch, T, d))
    got = step_json(run_cli, write_config(tmp_path, config_text(layers, xs, ys)))
    check_against_reference(got, layers, xs, ys)
    record = got["steps"][0]["layers"][0]
    refs = [ref_attention(x, layers[0]) for x in xs]
    for key, ref_key in [
        ("q", "q"),
        ("k", "k"),
        ("v", "v"),
        ("scores", "scores"),
        ("attention_weights", "weights"),
        ("head_outputs", "heads"),
    ]:
        close(record[key], np.array([r[ref_key] for r in refs]), rtol=1e-10)
    # ∂C/∂x is the sum of its paths, each shown on its own.
    paths = sum(np.asarray(record[f"grad_input_via_{p}"]) for p in "qkv")
    if residual:
        paths = paths + np.asarray(record["grad_input_via_residual"])
    close(record["grad_input"], paths, rtol=1e-12)
    if causal:
        weights = np.asarray(record["attention_weights"])
        assert np.all(weights[..., np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] == 0)
        assert np.all(
            np.asarray(record["grad_scores"])[
                ..., np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]
            ]
            == 0
        )


def test_the_softmax_backward_is_the_full_jacobian_per_row(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    """∂C/∂S of each row is (diag(p) − p pᵀ) ∂C/∂P, the Jacobian built whole here."""
    rng = np.random.default_rng(7)
    layers = [attention_layer(rng, 4, 2, False, False)]
    xs, ys = rng.normal(size=(1, 3, 4)), rng.normal(size=(1, 3, 4))
    record = step_json(run_cli, write_config(tmp_path, config_text(layers, xs, ys)))["steps"][0][
        "layers"
    ][0]
    p = np.asarray(record["attention_weights"])[0]
    grad_p = np.asarray(record["grad_attention_weights"])[0]
    want = np.array(
        [
            [(np.diag(p[h, i]) - np.outer(p[h, i], p[h, i])) @ grad_p[h, i] for i in range(3)]
            for h in range(2)
        ]
    )
    close(np.asarray(record["grad_scores"])[0], want, rtol=1e-12)


@pytest.mark.parametrize("batch", [False, True])
def test_embedding_sums_the_rows_of_repeated_tokens(
    run_cli: Any, write_config: Any, tmp_path: Path, batch: bool
) -> None:
    rng = np.random.default_rng(11)
    layers = [
        {"type": "embedding", "table": rng.normal(size=(4, 4))},
        attention_layer(rng, 4, 2, True, True),
        {"type": "meanpool"},
        {
            "type": "dense",
            "weights": rng.normal(size=(3, 4)),
            "biases": rng.normal(size=3),
            "activation": "linear",
        },
    ]
    ids = np.array([[2, 0, 2, 1], [3, 3, 0, 3]]) if batch else np.array([[2, 0, 2]])
    ys = rng.normal(size=(len(ids), 3))
    text = config_text(layers, ids if batch else ids[0], ys if batch else ys[0], key="tokens")
    text = text.replace("targets:", "target:") if not batch else text
    got = step_json(run_cli, write_config(tmp_path, text))
    check_against_reference(got, layers, ids, ys)
    record = got["steps"][0]["layers"][0]
    delta = np.asarray(record["delta"]) if batch else np.asarray(record["delta"])[None]
    scale = 1 / len(ids)
    want = np.zeros((4, 4))
    for n, t in itertools.product(range(ids.shape[0]), range(ids.shape[1])):
        want[ids[n, t]] += scale * delta[n, t]
    close(record["grads"]["table"], want, rtol=1e-12)
    positions = np.asarray(record["positions"])
    positions = positions if batch else positions[None]
    assert positions.shape == (len(ids), 4, ids.shape[1])
    assert positions[0, 2].tolist() == [int(t == 2) for t in ids[0]]


def test_per_position_targets_on_the_attention_output(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    """One sequence of tokens: `targets:` holds one row per position (T, d)."""
    rng = np.random.default_rng(12)
    layers = [
        {"type": "embedding", "table": rng.normal(size=(3, 2))},
        attention_layer(rng, 2, 1, False, True, wo=False),
    ]
    ids, ys = np.array([[2, 0, 2]]), rng.normal(size=(1, 3, 2))
    got = step_json(
        run_cli, write_config(tmp_path, config_text(layers, ids[0], ys[0], key="tokens"))
    )
    check_against_reference(got, layers, ids, ys)


@pytest.mark.parametrize("activation", ["linear", "tanh"])
def test_residual_on_a_dense_layer(
    run_cli: Any, write_config: Any, tmp_path: Path, activation: str
) -> None:
    """A network of dense layers only, one with `residual: true`: a = x + f(wx + b)."""
    rng = np.random.default_rng(13)
    layers = [
        {
            "type": "dense",
            "weights": rng.normal(size=(3, 3)),
            "biases": rng.normal(size=3),
            "activation": activation,
            "residual": True,
        },
        {
            "type": "dense",
            "weights": rng.normal(size=(2, 3)),
            "biases": rng.normal(size=2),
            "activation": "linear",
        },
    ]
    xs, ys = rng.normal(size=(2, 3)), rng.normal(size=(2, 2))
    got = step_json(run_cli, write_config(tmp_path, config_text(layers, xs, ys)))
    check_against_reference(got, layers, xs, ys)


@pytest.mark.parametrize("rule", sorted({r.name for r in OPTIMIZERS.values()}))
def test_every_update_rule_moves_every_parameter(
    run_cli: Any, write_config: Any, tmp_path: Path, rule: str
) -> None:
    """Two steps of each rule: the second step's gradients are the reference's at the
    parameters the first step left (so the rule moved every array of every layer)."""
    rng = np.random.default_rng(17)
    layers = [
        {"type": "embedding", "table": rng.normal(size=(3, 4))},
        attention_layer(rng, 4, 2, True, True),
        {"type": "meanpool"},
        {
            "type": "dense",
            "weights": rng.normal(size=(2, 4)),
            "biases": rng.normal(size=2),
            "activation": "linear",
        },
    ]
    ids, ys = np.array([[2, 0, 2], [1, 1, 0]]), rng.normal(size=(2, 2))
    got = step_json(
        run_cli,
        write_config(
            tmp_path, config_text(layers, ids, ys, f"optimizer: {rule}\nsteps: 2", "tokens")
        ),
    )
    first, second = got["steps"]
    moved = [dict(layer) for layer in layers]
    for i, record in enumerate(first["layers"]):
        for name, value in record["params"].items():
            if name != "bk":  # ∂C/∂bk is 0: bk shifts a row's scores by one constant
                assert not np.allclose(value, layers[i][name]), (rule, name)
            # a look-ahead rule (nesterov) takes the second step's gradient at θ̃
            ahead = second["layers"][i].get("params_lookahead", {})
            moved[i][name] = np.asarray(ahead.get(name, value))
    check_against_reference({"steps": [second]}, moved, ids, ys)


# -- torch ---------------------------------------------------------------------------------------

TORCH_NETS = [
    # (heads, causal, residual, batch, embedding)
    (1, False, False, 1, True),
    (2, True, True, 2, True),
    (2, False, True, 3, False),
    (1, True, False, 2, False),
]


def _torch_run(
    torch: Any, layers: list[dict[str, Any]], xs: Any, ys: Any, rule: str, lam: float
) -> list[dict[str, Any]]:
    dt = torch.float64
    att = next(layer for layer in layers if layer["type"] == "attention")
    d = np.asarray(att["wq"]).shape[1]
    mha = torch.nn.MultiheadAttention(d, att["heads"], bias=True, batch_first=True, dtype=dt)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.tensor(np.concatenate([att["wq"], att["wk"], att["wv"]])))
        mha.in_proj_bias.copy_(torch.tensor(np.concatenate([att["bq"], att["bk"], att["bv"]])))
        mha.out_proj.weight.copy_(torch.tensor(att["wo"]))
        mha.out_proj.bias.copy_(torch.tensor(att["bo"]))
    dense = layers[-1]
    w = torch.tensor(dense["weights"], dtype=dt, requires_grad=True)
    c = torch.tensor(dense["biases"], dtype=dt, requires_grad=True)
    decayed, free = (
        [mha.in_proj_weight, mha.out_proj.weight, w],
        [mha.in_proj_bias, mha.out_proj.bias, c],
    )
    emb = None
    if layers[0]["type"] == "embedding":
        emb = torch.nn.Embedding(*np.asarray(layers[0]["table"]).shape, dtype=dt)
        with torch.no_grad():
            emb.weight.copy_(torch.tensor(layers[0]["table"]))
        decayed.append(emb.weight)
    h = TORCH_RULES[rule]
    decay = h.get("weight_decay", lam) if rule == "adamw" else lam
    groups = [{"params": decayed, "weight_decay": decay}, {"params": free, "weight_decay": 0.0}]
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
    T = np.asarray(xs).shape[1]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1) if att["causal"] else None
    out = []
    for _ in range(3):
        opt.zero_grad()
        if emb is not None:
            x = emb(torch.tensor(xs, dtype=torch.long))
            x.retain_grad()
        else:
            x = torch.tensor(xs, dtype=dt, requires_grad=True)
        a, _ = mha(x, x, x, attn_mask=mask, need_weights=False)
        if att.get("residual"):
            a = x + a
        pooled = a.mean(dim=1)
        cost = ((pooled @ w.T + c - y) ** 2).mean(dim=1).mean()
        if rule == "adamw" and lam:
            cost = cost + lam / 2 * sum((p**2).sum() for p in decayed)
        cost.backward()
        shown = 0.0 if rule == "adamw" else lam
        grads = {
            "loss": cost.item(),
            "in_proj": mha.in_proj_weight.grad.numpy()
            + shown * mha.in_proj_weight.detach().numpy(),
            "wo": mha.out_proj.weight.grad.numpy() + shown * mha.out_proj.weight.detach().numpy(),
            "bo": mha.out_proj.bias.grad.numpy().copy(),
            "x": x.grad.numpy().copy() * len(xs),
        }
        if emb is not None:
            grads["table"] = emb.weight.grad.numpy() + shown * emb.weight.detach().numpy()
        opt.step()
        grads["after"] = mha.in_proj_weight.detach().numpy().copy()
        grads["after_table"] = emb.weight.detach().numpy().copy() if emb is not None else None
        out.append(grads)
    return out


@pytest.mark.parametrize("rule", sorted(TORCH_RULES))
@pytest.mark.parametrize("case", range(len(TORCH_NETS)))
def test_torch_agrees_for_every_update_rule(
    run_cli: Any, write_config: Any, tmp_path: Path, rule: str, case: int
) -> None:
    torch = pytest.importorskip("torch")
    heads, causal, residual, batch, embedding = TORCH_NETS[case]
    rng = np.random.default_rng(case + 40)
    d, T = 4, 3
    att = attention_layer(rng, d, heads, causal, residual)
    layers: list[dict[str, Any]] = [
        att,
        {"type": "meanpool"},
        {
            "type": "dense",
            "weights": rng.normal(size=(2, d)),
            "biases": rng.normal(size=2),
            "activation": "linear",
        },
    ]
    if embedding:
        layers.insert(0, {"type": "embedding", "table": rng.normal(size=(5, d))})
        xs: Any = rng.integers(0, 5, size=(batch, T))
        xs[:, 0] = xs[:, -1]  # a repeated token in every sequence
    else:
        xs = rng.normal(size=(batch, T, d))
    ys = rng.normal(size=(batch, 2))
    lam = 0.03 if rule in ("sgd", "adamw", "momentum") else 0.0
    hyper = dict(TORCH_RULES[rule])
    optimizer = "{name: " + rule + "".join(f", {k}: {v!r}" for k, v in hyper.items()) + "}"
    settings = f"optimizer: {optimizer}\nweight_decay: {lam}\nsteps: 3"
    key = "tokens" if embedding else "inputs"
    got = step_json(run_cli, write_config(tmp_path, config_text(layers, xs, ys, settings, key)))
    want = _torch_run(torch, layers, xs, ys, rule, lam)
    index = 1 if embedding else 0
    for g, w in zip(got["steps"], want, strict=True):
        # torch's cost: the data cost (its L2 is the optimizer's weight_decay), at its iterate
        # (for nesterov, gradcalc's look-ahead point).
        cost = g["lookahead"] if rule == "nesterov" else g
        close(cost["loss" if rule == "adamw" else "data_loss"], np.asarray(w["loss"]), rtol=1e-10)
        record = g["layers"][index]
        grads = record["grads"]
        close(np.concatenate([grads["wq"], grads["wk"], grads["wv"]]), w["in_proj"], rtol=1e-8)
        close(grads["wo"], w["wo"], rtol=1e-8)
        close(grads["bo"], w["bo"], rtol=1e-8)
        close(record["grad_input"], w["x"], rtol=1e-8)

        def after(layer: dict[str, Any], name: str) -> np.ndarray:
            value = np.asarray(layer["params"][name])
            if rule == "nesterov":  # torch's iterates are gradcalc's look-ahead points θ − ημv
                v = np.asarray(layer["optimizer_state"][name]["velocity"])
                value = value - 0.1 * hyper["momentum"] * v
            return value

        projections = np.concatenate([after(record, p) for p in ("wq", "wk", "wv")])
        close(projections, w["after"], rtol=1e-8)
        if embedding:
            close(g["layers"][0]["grads"]["table"], w["table"], rtol=1e-8)
            close(after(g["layers"][0], "table"), w["after_table"], rtol=1e-8)


# -- check: the named mistakes, each on its own mistake and on nothing else ---------------------


def ref_attention_back(
    x: np.ndarray, p: dict[str, Any], delta: np.ndarray, mode: str = ""
) -> dict[str, np.ndarray]:
    """One example's ∂C/∂x and (unreduced) ∂C/∂wq, ∂C/∂wk, ∂C/∂wv by loops, from δ, with `mode`
    one of the named mistakes' slips ("" for none)."""
    f = ref_attention(x, p)
    T, heads = x.shape[0], p.get("heads", 1)
    q, k, v = f["q"], f["k"], f["v"]
    dk, dv = q.shape[1] // heads, v.shape[1] // heads
    scale = 1.0 if mode == "attention_missing_scale" else 1 / math.sqrt(dk)
    d_heads = delta @ np.asarray(p["wo"]) if "wo" in p else delta
    weights = f["weights"]
    if mode == "causal_mask_in_backward_missing":  # the softmax of every score, none masked
        weights = np.array(
            [[np.exp(r - r.max()) / np.exp(r - r.max()).sum() for r in s] for s in f["scores"]]
        )
    dq, dkk, dvv = np.zeros(q.shape), np.zeros(k.shape), np.zeros(v.shape)
    for h in range(heads):
        hv, hk = slice(h * dv, (h + 1) * dv), slice(h * dk, (h + 1) * dk)
        dp = d_heads[:, hv] @ v[:, hv].T
        dvv[:, hv] = weights[h].T @ d_heads[:, hv]
        ds = np.zeros((T, T))
        for i in range(T):
            pi = weights[h, i]
            jac = np.diag(pi) - np.outer(pi, pi)
            if mode == "softmax_diagonal_only":
                jac = np.diag(np.diag(jac))
            ds[i] = jac @ dp[i]
        dq[:, hk] = scale * ds @ k[:, hk]
        dkk[:, hk] = scale * ds.T @ q[:, hk]
    paths = [dvv @ np.asarray(p["wv"])]
    if mode != "attention_single_input_path":
        paths += [dq @ np.asarray(p["wq"]), dkk @ np.asarray(p["wk"])]
    grad_x = sum(paths)
    if p.get("residual") and mode != "residual_path_missing":
        grad_x = grad_x + delta  # a linear activation: ∂C/∂a = δ
    return {
        "grad_input": grad_x,
        "wq": dq.T @ x,
        "wk": dkk.T @ x,
        "wv": dvv.T @ x,
        "grad_q": dq,
        "grad_k": dkk,
        "grad_v": dvv,
    }


ATTENTION_MISTAKES = [
    "softmax_diagonal_only",
    "attention_missing_scale",
    "attention_single_input_path",
    "causal_mask_in_backward_missing",
    "residual_path_missing",
]


def _mistake_config(
    rng: np.random.Generator,
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    layers = [
        {"type": "embedding", "table": rng.normal(size=(4, 4))},
        attention_layer(rng, 4, 2, True, True),
        {"type": "meanpool"},
        {
            "type": "dense",
            "weights": rng.normal(size=(2, 4)),
            "biases": rng.normal(size=2),
            "activation": "linear",
        },
    ]
    return layers, np.array([[2, 0, 2], [1, 3, 1]]), rng.normal(size=(2, 2))


def _grade(run_cli: Any, path: Path, contract: dict[str, Any]) -> Any:
    return run_cli(["check", str(path), "-", "--format", "json"], input=json.dumps(contract))


@pytest.mark.parametrize("name", [*ATTENTION_MISTAKES, "embedding_gradient_overwritten"])
def test_each_named_mistake_fires_on_its_own_mistake_and_nothing_else(
    run_cli: Any, write_config: Any, tmp_path: Path, name: str
) -> None:
    rng = np.random.default_rng(21)
    layers, ids, ys = _mistake_config(rng)
    path = write_config(tmp_path, config_text(layers, ids, ys, key="tokens"))
    contract = step_json(run_cli, path)
    records = contract["steps"][0]["layers"]
    if name == "embedding_gradient_overwritten":
        delta = np.asarray(records[0]["delta"])
        grad = np.zeros((4, 4))
        for n in range(len(ids)):
            row = np.zeros((4, 4))
            for t in range(ids.shape[1]):  # written over, not added
                row[ids[n, t]] = delta[n, t]
            grad += row / len(ids)
        assert not np.allclose(grad, records[0]["grads"]["table"])
        records[0]["grads"]["table"] = grad.tolist()
    else:
        xs = np.asarray(records[0]["a"])
        delta = np.asarray(records[1]["delta"])
        slips = [ref_attention_back(x, layers[1], d, name) for x, d in zip(xs, delta, strict=True)]
        grad_x = np.array([s["grad_input"] for s in slips])
        assert not np.allclose(grad_x, records[1]["grad_input"])
        records[1]["grad_input"] = grad_x.tolist()
        if name not in ("attention_single_input_path", "residual_path_missing"):
            for w in ("wq", "wk"):
                records[1]["grads"][w] = (sum(s[w] for s in slips) / len(ids)).tolist()
            # the stages the slip changes, graded as cells of their own
            for stage in ("grad_q", "grad_k", "grad_v"):
                records[1][stage] = np.array([s[stage] for s in slips]).tolist()
    result = _grade(run_cli, path, contract)
    assert result.exit_code == 1, result.output
    cells = json.loads(result.stdout)["cells"]
    wrong = [c for c in cells if c["verdict"] == "wrong"]
    assert wrong and all(c["mistake"] == name for c in wrong), {c["mistake"] for c in wrong}
    assert {c["mistake"] for c in cells if c["mistake"]} == {name}
    # The right answers name none: every cell of the exact contract is correct.
    exact = _grade(run_cli, path, step_json(run_cli, path))
    assert exact.exit_code == 0, exact.output
    assert not any(c["mistake"] for c in json.loads(exact.stdout)["cells"])


def test_the_reference_backward_without_a_slip_is_the_engine_s(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    """The mistakes' loop reference, with no slip, gives the engine's ∂C/∂x and ∂C/∂wq."""
    rng = np.random.default_rng(21)
    layers, ids, ys = _mistake_config(rng)
    records = step_json(
        run_cli, write_config(tmp_path, config_text(layers, ids, ys, key="tokens"))
    )["steps"][0]["layers"]
    xs, delta = np.asarray(records[0]["a"]), np.asarray(records[1]["delta"])
    right = [ref_attention_back(x, layers[1], d) for x, d in zip(xs, delta, strict=True)]
    close(records[1]["grad_input"], np.array([r["grad_input"] for r in right]), rtol=1e-10)
    close(records[1]["grads"]["wq"], sum(r["wq"] for r in right) / 2, rtol=1e-10)


# -- bad input: one line, exit 2, the key path and what to change ------------------------------

HEAD = "loss: mse\nlearning_rate: 0.1\nlayers:\n"
TABLE = "  - type: embedding\n    table: [[0.1, 0.2], [0.3, -0.1], [-0.2, 0.4]]\n"
EYE = "[[1, 0], [0, 1]]"


def _att(wq: str = EYE, wv: str = EYE, more: str = "") -> str:
    return f"  - type: attention\n    wq: {wq}\n    wk: {wq}\n    wv: {wv}\n{more}"


ERRORS = [
    (  # d not divisible by heads
        "tokens: [2, 0]\ntargets: [[1, 0, 0], [0, 1, 0]]\n"
        + HEAD
        + "  - type: embedding\n    table: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]\n"
        + _att(
            "[[1, 0, 0], [0, 1, 0], [0, 0, 1]]",
            "[[1, 0, 0], [0, 1, 0], [0, 0, 1]]",
            "    heads: 2\n",
        ),
        ["layers[1].heads", "d = 3", "not divisible by heads = 2"],
    ),
    (  # a token id outside the table
        "tokens: [2, 0, 5]\ntargets: [[1, 0], [0, 1], [0, 0]]\n" + HEAD + TABLE,
        ["tokens[2]", "token id 5 is outside the table", "3 rows (ids 0–2)"],
    ),
    (
        "tokens: [[2, 0], [1, 3]]\ntargets: [[[1, 0], [0, 1]], [[1, 0], [0, 1]]]\n" + HEAD + TABLE,
        ["tokens[1][1]", "token id 3 is outside the table"],
    ),
    (
        "tokens: [2, 0, 1.5]\ntarget: [1, 0]\n" + HEAD + TABLE + "  - type: meanpool\n",
        ["tokens[2]", "a token id is a whole number ≥ 0, got 1.5"],
    ),
    (  # weight shapes that do not match
        "tokens: [2, 0]\ntargets: [[1, 0], [0, 1]]\n"
        + HEAD
        + TABLE
        + _att("[[1, 0, 0], [0, 1, 0]]"),
        ["layers[1].wq", "rows have 3 weights but layers[0] gives 2 values per position"],
    ),
    (
        "input: [[1, 2], [0, 1]]\ntarget: [[1, 0], [0, 1]]\n"
        + HEAD
        + "  - type: attention\n    wq: [[1, 0], [0, 1]]\n    wk: [[1, 0]]\n"
        "    wv: [[1, 0], [0, 1]]\n",
        ["layers[0].wk", "wk has 1 rows but wq has 2"],
    ),
    (
        "input: [[1, 2], [0, 1]]\ntarget: [[1, 0], [0, 1]]\n"
        + HEAD
        + _att(more="    wo: [[1, 0, 0], [0, 1, 0]]\n"),
        ["layers[0].wo", "rows have 3 weights but the heads give 2 values"],
    ),
    (
        "input: [[1, 2], [0, 1]]\ntarget: [[1, 0], [0, 1]]\n"
        + HEAD
        + _att(more="    bq: [1, 2, 3]\n"),
        ["layers[0].bq", "3 biases for 2 rows of wq"],
    ),
    (  # a residual with mismatched shapes
        "tokens: [2, 0, 1]\ntargets: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]\n"
        + HEAD
        + TABLE
        + _att(wv="[[1, 0], [0, 1], [1, 1]]", more="    residual: true\n"),
        ["layers[1].residual", "maps shape 3×2 to 3×3", "output shape equal to the input shape"],
    ),
    (
        "input: [1, 2]\ntarget: [1, 0, 0]\n"
        + HEAD
        + "  - weights: [[1, 0], [0, 1], [1, 1]]\n    biases: [0, 0, 0]\n    activation: linear\n"
        "    residual: true\n",
        ["layers[0].residual", "dense layer maps shape 2 to 3"],
    ),
    (
        "input: [[1, 2], [0, 1]]\ntarget: [[1, 0], [0, 1]]\n"
        + HEAD
        + _att(more="    residual: 1\n"),
        ["layers[0].residual", "expected true or false"],
    ),
    (  # the target convention
        "tokens: [2, 0, 1]\ntarget: [[1, 0], [0, 1], [0, 0]]\n" + HEAD + TABLE,
        ["target", "'tokens' with an output of shape 3×2 goes with 'targets'"],
    ),
    (
        "tokens: [2, 0, 1]\ntargets: [[1, 0], [0, 1]]\n" + HEAD + TABLE,
        ["targets", "shape 2×2", "the output is 3×2"],
    ),
    (
        "tokens: [2, 0, 1]\ntargets: [[1, 0], [0, 1], [0, 0]]\n" + HEAD + _att(),
        ["tokens", "token ids need an embedding layer first"],
    ),
    (
        "input: [[1, 2], [0, 1]]\ntarget: [[1, 0], [0, 1]]\n" + HEAD + _att(more="    scale: 0\n"),
        ["layers[0].scale", "must be > 0"],
    ),
    (
        "input: [[1, 2], [0, 1]]\ntarget: [1, 0]\n" + HEAD + TABLE,
        ["layers[0]", "an embedding layer takes token ids, given as 'tokens:'"],
    ),
    (
        "input: [1, 2]\ntarget: [1, 0]\n" + HEAD + "  - type: flatten\n  - type: meanpool\n",
        ["layers[1]", "meanpool takes a sequence (T, d), but layers[0] gives shape 2"],
    ),
    (  # the transformer block's inputs and targets
        "tokens: [2, 0]\nsequence: [[1, 0], [0, 1]]\ntargets: [[1, 0], [0, 1]]\n" + HEAD + TABLE,
        ["sequence", "give either 'tokens' or 'sequence', not both"],
    ),
    (
        "sequence: [[1, 2], [0, 1]]\ntarget: [[1, 0], [0, 1]]\n" + HEAD + _att(),
        ["target", "'sequence' with an output of shape 2×2 goes with 'targets'"],
    ),
    (
        "sequence: [[1, 2], [0, 1]]\ntargets: [[1], [0]]\n"
        + HEAD
        + _att(more="    residual: true\n")
        + "  - type: layernorm\n"
        + "  - type: dense\n    weights: [[1, 0, 0]]\n    biases: [0]\n    activation: linear\n",
        ["layers[2].weights", "rows have 3 weights but layers[1] gives 2 values"],
    ),
]


@pytest.mark.parametrize(("text", "pieces"), ERRORS)
def test_bad_input_is_one_line_exit_2(
    run_cli: Any, write_config: Any, tmp_path: Path, text: str, pieces: list[str]
) -> None:
    result = run_cli(["step", str(write_config(tmp_path, text))])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    for piece in pieces:
        assert piece in result.stderr, result.stderr


# -- what is shown: every view, the worked example, JSON against its schema ----------------------


def test_the_worked_example_substitutes_every_number(run_cli: Any) -> None:
    result = run_cli(["step", "--example", "attention-worked-example", "--explain", "--no-color"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    for piece in [
        "z²₁ = E₂ = (0, 1)",  # the embedding's lookup
        "S³₀₁ = 0.707 × (1.00×0 + 1.00×(−1.00)) = −0.707",  # a score, the scale written out
        "J³₀ = [[0.157, −0.157], [−0.157, 0.157]]",  # a row's full softmax Jacobian
        "∂C/∂S³₀₀ = 0.157×0.598 + (−0.157)×1.29 = −0.109",
        "∂C/∂x³₀₀ = −0.155 + (−0.0774) + 0.926 + 0.598 = 1.29",  # Q, K, V and residual paths
        "through Q   through K   through V   residual",
        "a³₀₀ = 1.00 + 1.20 = 2.20",  # the residual, a = x + f(z)
    ]:
        assert piece in text, piece
    cut = run_cli(
        ["step", "--example", "attention-worked-example", "--explain", "--max-terms", "1"]
    ).stdout
    assert "(1 more term)" in cut
    rows = run_cli(
        ["step", "--example", "attention-worked-example", "--explain", "--max-rows", "1"]
    )
    assert "more cells of" in rows.stdout


def test_the_worked_example_in_markdown_and_latex(
    run_cli: Any, tmp_path: Path, pdflatex: Any
) -> None:
    markdown = run_cli(
        ["step", "--example", "attention-worked-example", "--format", "markdown"]
    ).stdout
    assert r"J^{3}_{0} &= \begin{pmatrix}" in markdown
    assert r"| $\partial C/\partial x^{3}_{00}$ | $-0.155$ |" in markdown
    tex = tmp_path / "attention.tex"
    result = run_cli(
        ["step", "--example", "attention-worked-example", "--format", "latex", "-o", str(tex)]
    )
    assert result.exit_code == 0, result.output
    pdflatex(tex)


VIEW_NETS = [
    # (layers, xs, ys, key): two heads, causal, wo, a batch of vectors; one token sequence
    "heads",
    "tokens",
]


def _view_config(which: str) -> str:
    rng = np.random.default_rng(31)
    if which == "heads":
        layers = [attention_layer(rng, 4, 2, True, True)]
        return config_text(
            layers, rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4)), "steps: 2"
        )
    layers = [
        {"type": "embedding", "table": rng.normal(size=(3, 2))},
        attention_layer(rng, 2, 1, False, False),
        {"type": "meanpool"},
    ]
    text = config_text(layers, [2, 0, 2], [0.5, -0.5], "steps: 2\nweight_decay: 0.01", "tokens")
    return text.replace("targets:", "target:")


@pytest.mark.parametrize("fmt", ["--explain", "markdown", "latex", "table", "json", "jsonl"])
@pytest.mark.parametrize("which", VIEW_NETS)
def test_every_view(run_cli: Any, write_config: Any, tmp_path: Path, fmt: str, which: str) -> None:
    from test_json_schemas import validate

    path = write_config(tmp_path, _view_config(which))
    args = ["--explain"] if fmt == "--explain" else ["--format", fmt]
    result = run_cli(["step", str(path), *args])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    if fmt == "json":
        doc = json.loads(result.stdout)
        validate(doc, "step")
        graded = run_cli(["check", str(path), "-", "--format", "json"], input=result.stdout)
        assert graded.exit_code == 0, graded.output
        validate(json.loads(graded.stdout), "check")
    if fmt == "table":
        assert "∂C/∂S per head" in result.stdout
        assert ("mask (1: attended" in result.stdout) == (which == "heads")
    if fmt == "--explain":
        assert "full Jacobian" in result.stdout


def test_a_rounded_hand_calculation_grades_as_rounding_not_wrong(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    """The trace rounded to 3 decimals at every stage is graded ✓ or ≈ against the exact run."""
    path = write_config(tmp_path, _view_config("tokens"))
    rounded = run_cli(["step", str(path), "--format", "json", "--round", "3"])
    assert rounded.exit_code == 0, rounded.output
    graded = run_cli(
        ["check", str(path), "-", "--format", "json", "--decimals", "3"], input=rounded.stdout
    )
    assert graded.exit_code == 0, graded.output
    verdicts = {c["verdict"] for c in json.loads(graded.stdout)["cells"]}
    assert verdicts <= {"correct", "rounding"}, verdicts


@pytest.mark.parametrize("rule", ["sgd", "momentum", "nesterov"])
@pytest.mark.parametrize("rounding", ["decimals 2", "decimals 3", "sig-figs 3"])
@pytest.mark.parametrize("which", VIEW_NETS)
def test_the_rounded_trace_lies_within_the_drift_bound(
    write_config: Any, tmp_path: Path, rule: str, rounding: str, which: str
) -> None:
    """check's drift bound, propagated element by element through attention's softmax and the
    embedding's lookup, covers what rounding every quantity does to each cell."""
    from gradcalc.check.bounds import Bounds, decimals_unit, sig_figs_unit
    from gradcalc.check.cells import Shape, expected, expected_final
    from gradcalc.check.grade import _run_rounded, sig_figs_rounder
    from gradcalc.functions.training import hand_round
    from gradcalc.step import config
    from gradcalc.step.engine import run

    text = _view_config(which).replace("steps: 2", f"steps: 2\noptimizer: {rule}")
    spec = config.load(str(write_config(tmp_path, text)))
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


def test_list_layers_shows_the_sequence_layers(run_cli: Any) -> None:
    doc = json.loads(run_cli(["list", "layers", "--format", "json"]).stdout)
    rows = {r["name"]: r for r in doc["layers"]}
    assert {m["name"] for m in rows["attention"]["mistakes"]} == set(ATTENTION_MISTAKES[:4])
    assert {m["name"] for m in rows["embedding"]["mistakes"]} == {"embedding_gradient_overwritten"}
    assert "meanpool" in rows


def test_check_grades_every_stage_of_attention(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    """Q, K, V, S, P, H, ∂C/∂P, ∂C/∂S, ∂C/∂Q, ∂C/∂K and ∂C/∂V are cells: right, they are ✓; a
    slip in one (a softmax weight) is ✗ at that cell alone."""
    rng = np.random.default_rng(21)
    layers, ids, ys = _mistake_config(rng)
    path = write_config(tmp_path, config_text(layers, ids, ys, key="tokens"))
    contract = step_json(run_cli, path)
    graded = json.loads(_grade(run_cli, path, contract).stdout)["cells"]
    stages = {c["quantity"] for c in graded if c["layer"] == 3}
    assert {
        "q",
        "k",
        "v",
        "scores",
        "attention_weights",
        "head_outputs",
        "grad_attention_weights",
        "grad_scores",
        "grad_q",
        "grad_k",
        "grad_v",
    } <= stages
    record = contract["steps"][0]["layers"][1]
    record["attention_weights"][0][1][2][0] += 0.1  # example 1, head 1, row 2, column 0
    result = _grade(run_cli, path, contract)
    assert result.exit_code == 1
    wrong = [c for c in json.loads(result.stdout)["cells"] if c["verdict"] == "wrong"]
    assert [(c["quantity"], c["index"]) for c in wrong] == [("attention_weights", [1, 1, 2, 0])]
    assert wrong[0]["symbol"] == "P³[1,2,0] (x = 1)"


def test_the_blank_sheet_asks_for_every_stage(run_cli: Any) -> None:
    sheet = run_cli(["check", "--example", "attention-worked-example", "--template"]).stdout
    for q in ("q:", "scores:", "attention_weights:", "grad_scores:", "grad_v:"):
        assert f"\n{q}\n" in sheet, q


def test_projections_drawn_by_an_initializer(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    """{init: …} draws each projection from its own stream, (d, d) unless units: says; the
    drawn network is proven as any other."""
    text = (
        "inputs: [[[1, 0, 0.5, -1], [0, 1, 1, 0], [0.5, 0.5, 0, 1]]]\n"
        "targets: [[[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0]]]\nloss: mse\nlearning_rate: 0.1\n"
        "layers:\n  - type: attention\n    heads: 2\n"
        "    wq: {init: xavier_uniform, seed: 1}\n    wk: {init: xavier_uniform, seed: 1}\n"
        "    wv: {init: xavier_uniform, seed: 1, units: 4}\n    bq: {init: zeros}\n"
        "    wo: {init: xavier_uniform, seed: 1}\n    residual: true\n"
    )
    got = step_json(run_cli, write_config(tmp_path, text))
    record = got["steps"][0]["layers"][0]
    drawn = {k: np.asarray(v) for k, v in got["steps"][0]["layers"][0]["params"].items()}
    assert {k: v.shape for k, v in drawn.items()} == {
        "wq": (4, 4),
        "wk": (4, 4),
        "wv": (4, 4),
        "bq": (4,),
        "wo": (4, 4),
    }
    assert not np.allclose(drawn["wq"], drawn["wk"])  # streams of their own
    again = step_json(run_cli, write_config(tmp_path, text, "again.yaml"))
    assert again["steps"][0]["layers"][0]["params"] == record["params"]
    # the initial values: undo the step (sgd, η = 0.1) and check against the reference
    layers = [{"type": "attention", "heads": 2, "residual": True}]
    for k in drawn:
        layers[0][k] = drawn[k] + 0.1 * np.asarray(record["grads"][k])
    xs = np.array([[[1, 0, 0.5, -1], [0, 1, 1, 0], [0.5, 0.5, 0, 1]]])
    ys = np.array([[[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0]]])
    check_against_reference(got, layers, xs, ys)


# -- the transformer block: embedding (or given vectors) → attention with its residual →
# layernorm → meanpool and a dense layer, or a dense layer on each position ----------------------


def ref_block(layers: list[dict[str, Any]], x: np.ndarray) -> list[dict[str, np.ndarray]]:
    """One example through the block by the references: ids (T,) through an embedding, or
    vectors (T, d); a dense layer after a (T, d) output acts on each row alone."""
    from test_layers_norm import ref_norm

    out = []
    for layer in layers:
        kind = layer["type"]
        if kind == "embedding":
            table = np.asarray(layer["table"])
            z = np.array([table[int(t)] for t in x])
            record = {"z": z, "a": z}
        elif kind == "attention":
            record = ref_attention(x, layer)
        elif kind == "layernorm":
            z = ref_norm(
                x, np.asarray(layer["gamma"]), np.asarray(layer["beta"]), 1e-5, "layernorm"
            )[0]
            record = {"z": z, "a": z}
        elif kind == "meanpool":
            z = np.array([sum(x[t, k] for t in range(len(x))) / len(x) for k in range(x.shape[1])])
            record = {"z": z, "a": z}
        else:
            w, b = np.asarray(layer["weights"]), np.asarray(layer["biases"])
            z = np.array([w @ row + b for row in x]) if x.ndim == 2 else w @ x + b
            record = {"z": z, "a": np.tanh(z)}
        out.append(record)
        x = record["a"]
    return out


def block_cost(layers: list[dict[str, Any]], xs: np.ndarray, ys: np.ndarray) -> float:
    """mse: the mean over every output value of an example, then over the batch."""
    total = 0.0
    for x, y in zip(xs, ys, strict=True):
        total += float(np.mean((ref_block(layers, x)[-1]["a"] - y) ** 2))
    return total / len(xs)


def block_layers(
    rng: np.random.Generator, source: str, head: str, heads: int, causal: bool
) -> list[dict[str, Any]]:
    d = 4
    layers: list[dict[str, Any]] = []
    if source == "tokens":
        layers.append({"type": "embedding", "table": rng.normal(size=(5, d))})
    layers += [
        attention_layer(rng, d, heads, causal, True),
        {
            "type": "layernorm",
            "gamma": 1 + 0.3 * rng.normal(size=d),
            "beta": 0.2 * rng.normal(size=d),
        },
    ]
    if head == "meanpool":
        layers.append({"type": "meanpool"})
    layers.append(
        {
            "type": "dense",
            "weights": rng.normal(size=(2, d)),
            "biases": rng.normal(size=2),
            "activation": "tanh",
        }
    )
    return layers


def block_text(
    layers: list[dict[str, Any]], xs: np.ndarray, ys: np.ndarray, source: str, extra: str = ""
) -> str:
    """The config as a user writes it: `tokens:` or `sequence:`/`sequences:`; per-position
    `targets:` for a (T, out) output, one `target:` for the pooled one of one example."""
    batch = len(xs) > 1
    if source == "tokens":
        key, given = "tokens", (xs if batch else xs[0])
    else:
        key, given = ("sequences" if batch else "sequence"), (xs if batch else xs[0])
    target = "targets" if batch or np.asarray(ys).ndim == 3 else "target"
    text = config_text(layers, given, ys if batch else ys[0], extra, key)
    first, rest = text.split("\n", 1)
    rest = rest.split("\n", 1)[1]  # config_text's own target line
    return f"{first}\n{target}: {_yaml(ys if batch else ys[0])}\n{rest}"


BLOCKS = [
    (source, head, batch)
    for source in ("tokens", "sequence")
    for head in ("meanpool", "positions")
    for batch in (1, 2)
]


def _block_case(
    source: str, head: str, batch: int, seed: int = 0
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 70 * len(source) + 3 * len(head) + batch)
    T = 3
    layers = block_layers(rng, source, head, heads=batch, causal=head == "positions")
    if source == "tokens":
        xs = rng.integers(0, 5, size=(batch, T))
        xs[:, 0] = xs[:, -1]  # a repeated token in every sequence
    else:
        xs = rng.normal(size=(batch, T, 4))
    ys = rng.normal(size=(batch, 2) if head == "meanpool" else (batch, T, 2))
    return layers, xs, ys


def _check_block(got: dict[str, Any], layers: list[dict[str, Any]], xs: Any, ys: Any) -> None:
    """Every layer's z and a, the cost, every parameter's gradient by finite differences of the
    reference cost and, for given vectors, ∂C_x/∂x."""
    step = got["steps"][0]
    batch = len(xs) > 1
    close(step.get("lookahead", step)["loss"], np.asarray(block_cost(layers, xs, ys)), rtol=1e-12)
    refs = [ref_block(layers, x) for x in xs]
    for i, record in enumerate(step["layers"]):
        for q in ("z", "a"):
            want = np.array([r[i][q] for r in refs])
            close(record[q], want if batch else want[0], rtol=1e-10)
        for name in record["grads"]:
            array = np.array(layers[i][name], dtype=float)
            layers[i][name] = array
            fd = finite_differences(lambda: block_cost(layers, xs, ys), array)
            close_fd(record["grads"][name], fd)
    if layers[0]["type"] != "embedding":
        x = np.array(xs, dtype=float)
        fd = finite_differences(lambda: block_cost(layers, x, ys), x) * len(xs)
        close_fd(step["layers"][0]["grad_input"], fd if batch else fd[0])


@pytest.mark.parametrize(("source", "head", "batch"), BLOCKS)
def test_the_transformer_block_matches_the_reference_and_finite_differences(
    run_cli: Any, write_config: Any, tmp_path: Path, source: str, head: str, batch: int
) -> None:
    layers, xs, ys = _block_case(source, head, batch)
    got = step_json(run_cli, write_config(tmp_path, block_text(layers, xs, ys, source)))
    kinds = [record["type"] for record in got["steps"][0]["layers"]]
    assert kinds[-3:] == (
        ["layernorm", "meanpool", "dense"]
        if head == "meanpool"
        else ["attention", "layernorm", "dense"]
    )
    dense = got["steps"][0]["layers"][-1]
    # on each position: the same (2, 4) weights at every row, one output row per position
    assert np.asarray(dense["grads"]["weights"]).shape == (2, 4)
    assert dense["output_shape"] == ([2] if head == "meanpool" else [3, 2])
    _check_block(got, layers, xs, ys)
    attention = got["steps"][0]["layers"][1 if source == "tokens" else 0]
    paths = sum(np.asarray(attention[f"grad_input_via_{p}"]) for p in ("q", "k", "v", "residual"))
    close(attention["grad_input"], paths, rtol=1e-12)


@pytest.mark.parametrize("rule", sorted({r.name for r in OPTIMIZERS.values()}))
def test_the_transformer_block_under_every_update_rule(
    run_cli: Any, write_config: Any, tmp_path: Path, rule: str
) -> None:
    """Two steps: every array of every layer moved, and the second step's gradients are the
    reference's at the parameters the first step left (θ̃ for a look-ahead rule)."""
    layers, xs, ys = _block_case("tokens", "positions", 2, seed=5)
    text = block_text(layers, xs, ys, "tokens", f"optimizer: {rule}\nsteps: 2\nweight_decay: 0.01")
    first, second = step_json(run_cli, write_config(tmp_path, text))["steps"]
    moved = [dict(layer) for layer in layers]
    for i, record in enumerate(first["layers"]):
        for name, value in record["params"].items():
            if name != "bk":  # ∂C/∂bk is 0: bk shifts a row's scores by one constant
                assert not np.allclose(value, layers[i][name]), (rule, name)
            ahead = second["layers"][i].get("params_lookahead", {})
            moved[i][name] = np.asarray(ahead.get(name, value))
    # the data cost at the moved parameters; the gradients add weight decay's λθ
    want = block_cost(moved, xs, ys)
    close(second.get("lookahead", second)["data_loss"], np.asarray(want), rtol=1e-12)
    for i, record in enumerate(second["layers"]):
        for name in record["grads"]:
            array = np.array(moved[i][name], dtype=float)
            moved[i][name] = array
            fd = finite_differences(lambda: block_cost(moved, xs, ys), array)
            decay = 0.01 * array if name in ("table", "wq", "wk", "wv", "wo", "weights") else 0.0
            close_fd(np.asarray(record["grads"][name]), fd + decay)


def test_torch_agrees_on_the_transformer_block(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    """nn.Embedding → nn.MultiheadAttention + x → nn.LayerNorm → nn.Linear on each position,
    one SGD step: the cost, every gradient and the parameters after."""
    torch = pytest.importorskip("torch")
    dt = torch.float64
    layers, ids, ys = _block_case("tokens", "positions", 2, seed=9)
    emb, att, norm, dense = layers
    got = step_json(run_cli, write_config(tmp_path, block_text(layers, ids, ys, "tokens")))
    d = 4
    table = torch.tensor(emb["table"], dtype=dt, requires_grad=True)
    mha = torch.nn.MultiheadAttention(d, att["heads"], bias=True, batch_first=True, dtype=dt)
    ln = torch.nn.LayerNorm(d, eps=1e-5, dtype=dt)
    lin = torch.nn.Linear(d, 2, dtype=dt)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.tensor(np.concatenate([att["wq"], att["wk"], att["wv"]])))
        mha.in_proj_bias.copy_(torch.tensor(np.concatenate([att["bq"], att["bk"], att["bv"]])))
        mha.out_proj.weight.copy_(torch.tensor(att["wo"]))
        mha.out_proj.bias.copy_(torch.tensor(att["bo"]))
        ln.weight.copy_(torch.tensor(norm["gamma"]))
        ln.bias.copy_(torch.tensor(norm["beta"]))
        lin.weight.copy_(torch.tensor(dense["weights"]))
        lin.bias.copy_(torch.tensor(dense["biases"]))
    x = table[torch.tensor(ids, dtype=torch.long)]
    T = ids.shape[1]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1) if att["causal"] else None
    h, _ = mha(x, x, x, attn_mask=mask, need_weights=False)
    out = torch.tanh(lin(ln(x + h)))
    cost = ((out - torch.tensor(ys, dtype=dt)) ** 2).mean(dim=(1, 2)).mean()
    cost.backward()
    step = got["steps"][0]
    close(step["loss"], np.asarray(cost.item()), rtol=1e-12)
    records = step["layers"]
    close(records[0]["grads"]["table"], table.grad.numpy(), rtol=1e-9)
    grads = records[1]["grads"]
    in_proj = np.concatenate([grads["wq"], grads["wk"], grads["wv"]])
    close(in_proj, mha.in_proj_weight.grad.numpy(), rtol=1e-9)
    close(
        np.concatenate([grads["bq"], grads["bk"], grads["bv"]]),
        mha.in_proj_bias.grad.numpy(),
        rtol=1e-9,
        atol=1e-15,
    )
    close(grads["wo"], mha.out_proj.weight.grad.numpy(), rtol=1e-9)
    close(records[2]["grads"]["gamma"], ln.weight.grad.numpy(), rtol=1e-9)
    close(records[2]["grads"]["beta"], ln.bias.grad.numpy(), rtol=1e-9)
    close(records[3]["grads"]["weights"], lin.weight.grad.numpy(), rtol=1e-9)
    close(records[3]["grads"]["biases"], lin.bias.grad.numpy(), rtol=1e-9)
    after = torch.optim.SGD([table], lr=0.1)
    after.step()
    close(records[0]["params"]["table"], table.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("source", ["tokens", "sequence"])
def test_a_rounded_transformer_block_lies_within_the_drift_bound(
    run_cli: Any, write_config: Any, tmp_path: Path, source: str
) -> None:
    """Rounded to 3 decimals at every stage, the block's trace (with weight decay and
    momentum) is graded ✓ or ≈, every cell inside check's drift bound."""
    from gradcalc.check.bounds import Bounds, decimals_unit
    from gradcalc.check.cells import Shape, expected, expected_final
    from gradcalc.check.grade import _run_rounded
    from gradcalc.functions.training import hand_round
    from gradcalc.step import config
    from gradcalc.step.engine import run

    layers, xs, ys = _block_case(source, "positions", 2, seed=3)
    extra = "optimizer: momentum\nsteps: 2\nweight_decay: 0.01"
    path = write_config(tmp_path, block_text(layers, xs, ys, source, extra))
    spec = config.load(str(path))
    exact = run(spec)
    steps, final = _run_rounded(spec, spec.steps, hand_round(3))
    bounds = Bounds(spec, exact, decimals_unit(3))
    shape = Shape.of(spec)
    for s in range(spec.steps):
        for key in shape.step_keys():
            gap = np.abs(expected(steps[s], key) - expected(exact.steps[s], key))
            assert np.all(gap <= bounds.steps[s][key] + 1e-12), (s + 1, key)
    for key in shape.final_keys():
        gap = np.abs(expected_final(final, key) - expected_final(exact.final, key))
        assert np.all(gap <= bounds.final[key] + 1e-12), key
    rounded = run_cli(["step", str(path), "--format", "json", "--round", "3"])
    graded = run_cli(
        ["check", str(path), "-", "--format", "json", "--decimals", "3"], input=rounded.stdout
    )
    assert graded.exit_code == 0, graded.output
    verdicts = {c["verdict"] for c in json.loads(graded.stdout)["cells"]}
    assert verdicts <= {"correct", "rounding"}, verdicts


def test_loss_at_last_takes_the_last_position_of_the_block(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    """`loss_at: last` with `target:` (out,): the cost reads the last position's output alone,
    and every gradient is the reference's for that cost."""
    layers, ids, ys = _block_case("tokens", "positions", 1, seed=11)
    last = ys[:, -1]
    text = block_text(layers, ids, ys, "tokens").replace("targets:", "target:")
    text = text.replace(f"target: {_yaml(ys[0])}", f"target: {_yaml(last[0])}\nloss_at: last")
    got = step_json(run_cli, write_config(tmp_path, text))

    def cost() -> float:
        a = ref_block(layers, ids[0])[-1]["a"]
        return float(np.mean((a[-1] - last[0]) ** 2))

    close(got["steps"][0]["loss"], np.asarray(cost()), rtol=1e-12)
    for i, record in enumerate(got["steps"][0]["layers"]):
        for name in record["grads"]:
            array = np.array(layers[i][name], dtype=float)
            layers[i][name] = array
            close_fd(record["grads"][name], finite_differences(cost, array))
