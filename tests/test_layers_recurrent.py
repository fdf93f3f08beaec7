"""Recurrent layer records (rnn, lstm, gru) and sequence data: proven against a float64
reference written here from PyTorch's equations (a loop over examples and steps, no gradcalc
code), central differences of that reference, and torch where it is importable."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_layers import _yaml, close, close_fd, step_json

from gradcalc.functions.optimizers import REGISTRY as OPTIMIZERS

KINDS = ("rnn", "lstm", "gru")
GATE_COUNT = {"rnn": 1, "lstm": 4, "gru": 3}

# -- the reference ---------------------------------------------------------------------------


def sig(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def cell(kind: str, p: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray) -> Any:
    """One step of one example, from PyTorch's documented equations."""
    H = h.shape[0]
    b_ih = p.get("bias_ih", p.get("biases"))
    b_hh = p.get("bias_hh", np.zeros_like(b_ih))
    W_ih, W_hh = p["weight_ih"], p["weight_hh"]
    if kind == "rnn":
        return np.tanh(W_ih @ x + b_ih + W_hh @ h + b_hh), c
    if kind == "lstm":
        gi = W_ih @ x + b_ih + W_hh @ h + b_hh
        i, f, g, o = sig(gi[:H]), sig(gi[H : 2 * H]), np.tanh(gi[2 * H : 3 * H]), sig(gi[3 * H :])
        c_new = f * c + i * g
        return o * np.tanh(c_new), c_new
    gx = W_ih @ x + b_ih
    gh = W_hh @ h + b_hh
    r = sig(gx[:H] + gh[:H])
    z = sig(gx[H : 2 * H] + gh[H : 2 * H])
    n = np.tanh(gx[2 * H :] + r * gh[2 * H :])
    return (1 - z) * n + z * h, c


def reference_cost(
    net: dict[str, Any],
    params: dict[str, np.ndarray],
    dense: dict[str, np.ndarray] | None,
    xs: np.ndarray,
    ys: np.ndarray,
    perturbed: dict[str, np.ndarray] | None = None,
    chunk: int | None = None,
    baseline: list[list[tuple[np.ndarray, np.ndarray]]] | None = None,
    detach: str = "",
    last_only: bool = False,
) -> tuple[float, list[list[tuple[np.ndarray, np.ndarray]]]]:
    """The mean over examples of mse over every value compared. With truncation, `perturbed`
    parameters act in `chunk` only, and each chunk starts from the baseline's state: the state
    is carried across a cut, its gradient is not."""
    kind, H, k = net["kind"], net["hidden"], net.get("truncate")
    total = 0.0
    states: list[list[tuple[np.ndarray, np.ndarray]]] = []
    for e in range(xs.shape[0]):
        h, c = np.zeros(H), np.zeros(H)
        if "h0" in net:
            h = np.array(net["h0"], dtype=float)
        outs, kept = [], []
        for t in range(xs.shape[1]):
            if baseline is not None and k and t % k == 0 and t > 0:
                h, c = baseline[e][t]
            if baseline is not None and t > 0:  # a state whose gradient is dropped: constant
                h = baseline[e][t][0] if "h" in detach else h
                c = baseline[e][t][1] if "c" in detach else c
            kept.append((h.copy(), c.copy()))
            p = (
                perturbed
                if perturbed is not None and (chunk is None or t // k == chunk)
                else params
            )
            h, c = cell(kind, p, xs[e, t], h, c)
            outs.append(h)
        states.append(kept)
        out = np.array(outs) if net["return"] == "sequence" else outs[-1]
        if dense is not None:
            out = out @ dense["weights"].T + dense["biases"]
        if net["loss_at"] == "last" and net["return"] == "sequence":
            out = out[-1]
        if last_only:  # the cost's terms at the last step alone, its scale kept
            total += float(np.sum((out[-1] - ys[e][-1]) ** 2)) / out.size
        else:
            total += float(np.mean((out - ys[e]) ** 2))
    return total / xs.shape[0], states


def fd_grads(
    net: dict[str, Any],
    params: dict[str, np.ndarray],
    dense: dict[str, np.ndarray] | None,
    xs: np.ndarray,
    ys: np.ndarray,
    h: float = 1e-6,
    detach: str = "",
    last_only: bool = False,
) -> dict[str, np.ndarray]:
    """Central differences of the reference cost: each recurrent parameter (per chunk when
    truncated, summed), the dense layer's, and the input. `detach` ("h", "c") holds that
    state constant from step to step; `last_only` keeps the last step's cost terms."""
    _, base = reference_cost(net, params, dense, xs, ys)
    more = {"detach": detach, "last_only": last_only}
    k = net.get("truncate")
    chunks = range(-(-xs.shape[1] // k)) if k else [None]
    out: dict[str, np.ndarray] = {}
    for name, value in params.items():
        g = np.zeros_like(value)
        for index in np.ndindex(*value.shape):
            for chunk in chunks:
                for sign in (1, -1):
                    moved = {**params, name: value.copy()}
                    moved[name][index] += sign * h
                    cost, _ = reference_cost(net, params, dense, xs, ys, moved, chunk, base, **more)
                    g[index] += sign * cost / (2 * h)
        out[name] = g
    if dense is not None:
        for name, value in dense.items():
            g = np.zeros_like(value)
            for index in np.ndindex(*value.shape):
                for sign in (1, -1):
                    moved = {**dense, name: value.copy()}
                    moved[name][index] += sign * h
                    g[index] += sign * reference_cost(net, params, moved, xs, ys)[0] / (2 * h)
            out["dense_" + name] = g
    g = np.zeros_like(xs)
    for index in np.ndindex(*xs.shape):
        for sign in (1, -1):
            moved_x = xs.copy()
            moved_x[index] += sign * h
            cost, _ = reference_cost(net, params, dense, moved_x, ys, None, None, base, **more)
            g[index] += sign * cost / (2 * h)
    out["input"] = g * xs.shape[0]  # ∂C_x/∂x per example: the per-example cost, not the mean
    return out


# -- configs ---------------------------------------------------------------------------------


def make_net(
    rng: np.random.Generator,
    kind: str,
    steps: int,
    batch: int,
    returns: str,
    loss_at: str,
    *,
    hidden: int = 2,
    width: int = 2,
    split: bool = False,
    truncate: int | None = None,
    dense: bool = True,
) -> tuple[str, dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray] | None, Any, Any]:
    gates = GATE_COUNT[kind]
    params = {
        "weight_ih": rng.normal(scale=0.7, size=(gates * hidden, width)),
        "weight_hh": rng.normal(scale=0.7, size=(gates * hidden, hidden)),
    }
    if split or kind == "gru":
        params["bias_ih"] = rng.normal(scale=0.3, size=gates * hidden)
        params["bias_hh"] = rng.normal(scale=0.3, size=gates * hidden)
    else:
        params["biases"] = rng.normal(scale=0.3, size=gates * hidden)
    d = None
    out = hidden
    if dense:
        d = {"weights": rng.normal(size=(2, hidden)), "biases": rng.normal(size=2)}
        out = 2
    xs = rng.normal(size=(batch, steps, width))
    per = (steps, out) if returns == "sequence" and loss_at == "every" else (out,)
    ys = rng.normal(size=(batch, *per))
    net = {"kind": kind, "hidden": hidden, "return": returns, "loss_at": loss_at}
    if truncate:
        net["truncate"] = truncate
    layer = [f"  - type: {kind}"]
    for name, value in params.items():
        layer.append(f"    {name}: {_yaml(value)}")
    layer.append(f"    return: {returns}")
    if truncate:
        layer.append(f"    truncate: {truncate}")
    lines = [
        f"sequences: {_yaml(xs)}" if batch > 1 else f"sequence: {_yaml(xs[0])}",
        f"{'targets' if batch > 1 or len(per) == 2 else 'target'}: "
        f"{_yaml(ys if batch > 1 else ys[0])}",
        "loss: mse",
        "learning_rate: 0.1",
        f"loss_at: {loss_at}",
        "layers:",
        *layer,
    ]
    if d is not None:
        lines += [
            f"  - weights: {_yaml(d['weights'])}",
            f"    biases: {_yaml(d['biases'])}",
            "    activation: linear",
        ]
    return "\n".join(lines) + "\n", net, params, d, xs, ys


SHAPES = [
    (returns, loss_at)
    for returns, loss_at in (("sequence", "every"), ("sequence", "last"), ("last", "last"))
]
CASES = list(itertools.product(KINDS, range(1, 7), (1, 3), SHAPES))


@pytest.mark.parametrize(("kind", "steps", "batch", "shape"), CASES)
def test_recurrent_layers_match_the_reference_and_finite_differences(
    run_cli: Any,
    write_config: Any,
    tmp_path: Path,
    kind: str,
    steps: int,
    batch: int,
    shape: tuple[str, str],
) -> None:
    rng = np.random.default_rng(steps * 10 + batch + KINDS.index(kind) * 100)
    returns, loss_at = shape
    text, net, params, dense, xs, ys = make_net(
        rng, kind, steps, batch, returns, loss_at, split=steps % 2 == 0
    )
    doc = step_json(run_cli, write_config(tmp_path, text))
    record = doc["steps"][0]
    cost, _ = reference_cost(net, params, dense, xs, ys)
    close(record["loss"], np.asarray(cost), rtol=1e-12)
    want = fd_grads(net, params, dense, xs, ys)
    layer, top = record["layers"]
    for name in params:
        close_fd(layer["grads"][name], want[name])
    close_fd(top["grads"]["weights"], want["dense_weights"])
    close_fd(top["grads"]["biases"], want["dense_biases"])
    grad_x = np.asarray(layer["grad_input"])
    close_fd(grad_x if batch > 1 else grad_x[None], want["input"])
    # The per-step parts add up: ∂C/∂h_t = the output's part + the part from t + 1, and each
    # parameter's contributions over t sum to its gradient.
    parts = {k: np.asarray(layer[k]) for k in ("grad_h", "grad_h_direct", "grad_h_from_next")}
    close(parts["grad_h"], parts["grad_h_direct"] + parts["grad_h_from_next"], rtol=1e-12)
    for name in params:
        by_step = np.asarray(layer[f"grad_{name}_by_step"])
        assert by_step.shape == (steps, *params[name].shape)
        close(by_step.sum(axis=0), np.asarray(layer["grads"][name]), rtol=1e-10)
    norms = np.asarray(layer["grad_h_norms"])
    close(norms, np.linalg.norm(parts["grad_h"], axis=-1), rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("steps", "k"), [(4, 1), (5, 2), (6, 4), (3, 3)])
def test_truncated_bptt_stops_the_gradient_at_each_cut(
    run_cli: Any, write_config: Any, tmp_path: Path, kind: str, steps: int, k: int
) -> None:
    rng = np.random.default_rng(steps + k)
    text, net, params, dense, xs, ys = make_net(
        rng, kind, steps, 2, "sequence", "every", truncate=k
    )
    layer = step_json(run_cli, write_config(tmp_path, text))["steps"][0]["layers"][0]
    want = fd_grads(net, params, dense, xs, ys)
    for name in params:
        close_fd(layer["grads"][name], want[name])
    close_fd(layer["grad_input"], want["input"])
    back = np.asarray(layer["grad_h_from_next"])
    for t in range(steps):  # nothing comes back across a cut
        if (t + 1) % k == 0:
            assert not back[:, t].any()


@pytest.mark.parametrize("rule", sorted({r.name for r in OPTIMIZERS.values()}))
@pytest.mark.parametrize("kind", KINDS)
def test_every_update_rule_trains_a_recurrent_layer_on_its_own_gradients(
    run_cli: Any, write_config: Any, tmp_path: Path, rule: str, kind: str
) -> None:
    """Three steps under each rule: at every step the gradients are the reference's at that
    step's parameters (the update moves W_ih, W_hh and the biases as the rule moves any
    parameter, which gradcalc/layers/engine.py shares with every layer)."""
    rng = np.random.default_rng(3)
    text, net, params, dense, xs, ys = make_net(rng, kind, 3, 2, "sequence", "every")
    text = text.replace("loss_at: every", f"loss_at: every\noptimizer: {rule}\nsteps: 3")
    doc = step_json(run_cli, write_config(tmp_path, text))
    for record in doc["steps"]:
        layer, top = record["layers"]
        if record["step"] > 1:
            cost, _ = reference_cost(net, params, dense, xs, ys)
            if "lookahead" not in record:
                close(record["loss"], np.asarray(cost), rtol=1e-12)
        at = {k: np.asarray(v) for k, v in layer.get("params_lookahead", {}).items()} or params
        top_at = {k: np.asarray(v) for k, v in top.get("params_lookahead", {}).items()} or dense
        want = fd_grads(net, at, top_at, xs, ys)
        for name in params:
            close_fd(layer["grads"][name], want[name])
        params = {k: np.asarray(v) for k, v in layer["params"].items()}
        dense = {k: np.asarray(v) for k, v in top["params"].items()}


# -- torch -----------------------------------------------------------------------------------


def _torch_grads(
    torch: Any, kind: str, params: dict[str, np.ndarray], dense: Any, xs: Any, ys: Any, net: Any
) -> dict[str, np.ndarray]:
    hidden = net["hidden"]
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](
        xs.shape[2], hidden, batch_first=True, dtype=torch.float64
    )
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(params["weight_ih"]))
        module.weight_hh_l0.copy_(torch.from_numpy(params["weight_hh"]))
        module.bias_ih_l0.copy_(torch.from_numpy(params.get("bias_ih", params.get("biases"))))
        b_hh = params.get("bias_hh", np.zeros_like(params.get("biases", params.get("bias_ih"))))
        module.bias_hh_l0.copy_(torch.from_numpy(b_hh))
    x = torch.tensor(xs, requires_grad=True)
    out, _ = module(x)
    if net["return"] == "last":
        out = out[:, -1]
    w = torch.tensor(dense["weights"], requires_grad=True)
    b = torch.tensor(dense["biases"], requires_grad=True)
    out = out @ w.T + b
    if net["loss_at"] == "last" and net["return"] == "sequence":
        out = out[:, -1]
    y = torch.tensor(ys)
    loss = ((out - y) ** 2).reshape(xs.shape[0], -1).mean(dim=1).mean()
    loss.backward()
    grads = {
        "weight_ih": module.weight_ih_l0.grad.numpy(),
        "weight_hh": module.weight_hh_l0.grad.numpy(),
        "loss": np.asarray(loss.item()),
        "input": x.grad.numpy() * xs.shape[0],
        "dense_weights": w.grad.numpy(),
    }
    if "biases" in params:
        grads["biases"] = module.bias_ih_l0.grad.numpy()  # b_ih's gradient is b_hh's
    else:
        grads["bias_ih"] = module.bias_ih_l0.grad.numpy()
        grads["bias_hh"] = module.bias_hh_l0.grad.numpy()
    return grads


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("split", [False, True])
def test_torch_agrees_with_every_recurrent_layer(
    run_cli: Any, write_config: Any, tmp_path: Path, kind: str, shape: Any, split: bool
) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7 + split)
    returns, loss_at = shape
    text, net, params, dense, xs, ys = make_net(
        rng, kind, 5, 3, returns, loss_at, hidden=3, width=2, split=split
    )
    record = step_json(run_cli, write_config(tmp_path, text))["steps"][0]
    layer, top = record["layers"]
    want = _torch_grads(torch, kind, params, dense, xs, ys, net)
    close(record["loss"], want["loss"], rtol=1e-12)
    for name in params:
        close(layer["grads"][name], want[name], rtol=1e-10)
    close(layer["grad_input"], want["input"], rtol=1e-10)
    close(top["grads"]["weights"], want["dense_weights"], rtol=1e-10)


# -- named mistakes: each named on its own wrong answer, none on the right one --------------

MISTAKES = [
    ("bptt_missing_recurrent_term", "rnn"),
    ("bptt_missing_recurrent_term", "gru"),
    ("bptt_missing_direct_term", "rnn"),
    ("bptt_missing_direct_term", "lstm"),
    ("bptt_not_summed_over_time", "rnn"),
    ("bptt_not_summed_over_time", "lstm"),
    ("bptt_not_summed_over_time", "gru"),
    ("wrong_time_index", "rnn"),
    ("lstm_cell_path_missing", "lstm"),
]


def _mistaken_answers(
    name: str, kind: str, layer: dict[str, Any], net: Any, params: Any, dense: Any, xs: Any, ys: Any
) -> dict[str, np.ndarray]:
    """The mistaken gradients, worked apart from gradcalc: as central differences of the
    reference with the path the mistake leaves out held constant, or from the record's own
    per-step numbers."""
    if name == "bptt_not_summed_over_time":
        return {n: np.asarray(layer[f"grad_{n}_by_step"])[-1] for n in params}
    if name == "wrong_time_index":  # tanh: ∂C/∂s_t = ∂C/∂h_t (1 − h_t²), times h_t, not h_(t−1)
        h = np.asarray(layer["hidden"])
        pre = np.asarray(layer["grad_h"]) * (1 - h**2)
        return {"weight_hh": np.einsum("nti,ntk->ik", pre, h) / xs.shape[0]}
    options = {
        "bptt_missing_recurrent_term": {"detach": "h"},
        "lstm_cell_path_missing": {"detach": "c"},
        "bptt_missing_direct_term": {"last_only": True},
    }[name]
    want = fd_grads(net, params, dense, xs, ys, **options)
    out = {n: want[n] for n in params}
    out["grad_input"] = want["input"]
    return out


@pytest.mark.parametrize(("name", "kind"), MISTAKES)
def test_each_recurrent_mistake_is_named_on_its_own_wrong_answer(
    run_cli: Any, write_config: Any, tmp_path: Path, name: str, kind: str
) -> None:
    rng = np.random.default_rng(11)
    dense = name != "bptt_missing_direct_term"
    text, net, params, d, xs, ys = make_net(
        rng, kind, 4, 2, "sequence", "every", hidden=2, dense=dense
    )
    path = write_config(tmp_path, text)
    contract = step_json(run_cli, path)
    layer = contract["steps"][0]["layers"][0]
    mistaken = _mistaken_answers(name, kind, layer, net, params, d, xs, ys)
    exact = {n: np.asarray(layer["grads"][n]) for n in params}
    for key, value in mistaken.items():
        if key == "grad_input":
            assert not np.allclose(value, np.asarray(layer["grad_input"]), rtol=1e-4)
            layer["grad_input"] = value.tolist()
        else:
            assert not np.allclose(value, exact[key], rtol=1e-4), key
            layer["grads"][key] = value.tolist()
    if name == "bptt_missing_recurrent_term":  # ∂C/∂h_t is its part from the output alone
        layer["grad_h"] = layer["grad_h_direct"]
        layer["grad_h_from_next"] = np.zeros_like(np.asarray(layer["grad_h"])).tolist()
    result = run_cli(["check", str(path), "-", "--format", "json"], input=json.dumps(contract))
    assert result.exit_code == 1, result.output
    cells = json.loads(result.stdout)["cells"]
    wrong = [c for c in cells if c["verdict"] == "wrong"]
    assert wrong and all(c["mistake"] == name for c in wrong), {c["mistake"] for c in wrong}
    if name == "bptt_missing_recurrent_term":
        assert {"grad_h", "grad_h_from_next"} <= {c["quantity"] for c in wrong}
    right = run_cli(
        ["check", str(path), "-", "--format", "json"], input=json.dumps(step_json(run_cli, path))
    )
    assert right.exit_code == 0, right.output
    assert not any(c["mistake"] for c in json.loads(right.stdout)["cells"])


# -- views: tables, JSON, worked solutions, the examples -------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "extra",
    [
        ["--format", "json"],
        ["--format", "json", "--show", "summary"],
        ["--format", "jsonl"],
        ["--format", "json", "--round", "4"],
    ],
)
def test_recurrent_json_validates_and_reads_back_as_answers(
    run_cli: Any, write_config: Any, tmp_path: Path, kind: str, extra: list[str]
) -> None:
    from test_json_schemas import validate

    rng = np.random.default_rng(2)
    text, *_ = make_net(rng, kind, 3, 2, "sequence", "every", split=True)
    path = write_config(tmp_path, text + "steps: 2\n")
    result = run_cli(["step", str(path), *extra])
    assert result.exit_code == 0, result.output
    if "jsonl" in extra:
        *records, last = [json.loads(line) for line in result.stdout.splitlines()]
        doc = {**last, "steps": records}
    else:
        doc = json.loads(result.stdout)
    validate(doc, "step")
    if extra == ["--format", "json"]:
        checked = run_cli(["check", str(path), "-", "--format", "json"], input=result.stdout)
        assert checked.exit_code == 0, checked.output
        validate(json.loads(checked.stdout), "check")
        layer = doc["steps"][0]["layers"][0]
        assert np.asarray(layer["hidden"]).shape == (2, 3, 2)
        assert np.asarray(layer["grad_weight_hh_by_step"]).shape == (3, GATE_COUNT[kind] * 2, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_tables_show_the_split_the_norms_and_the_sentence(
    run_cli: Any, write_config: Any, tmp_path: Path, kind: str
) -> None:
    rng = np.random.default_rng(4)
    text, *_ = make_net(rng, kind, 4, 1, "sequence", "every")
    result = run_cli(["step", str(write_config(tmp_path, text))])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for piece in (
        "∂C/∂h_t from the output at t",
        "∂C/∂h_t from t+1",
        "‖∂C/∂h_t‖ (t = 1..T)",
        "∂C/∂W_hh at each t, t = 4:",
        "for t = 1..4 (example 1): ",
        "their product",
    ):
        assert piece in out, piece
    assert ("∂C/∂c_t from t+1" in out) == (kind == "lstm")
    assert f"layer 2 ({kind}, " in out


@pytest.mark.parametrize(
    ("weight", "activation", "verdict"),
    [
        (0.05, "tanh", "The gradient vanishes over the sequence"),
        (3.0, "linear", "The gradient may explode over the sequence"),
        (0.9, "linear", "neither vanishes nor explodes"),
    ],
)
def test_the_jacobians_product_says_when_the_gradient_vanishes_or_explodes(
    run_cli: Any, write_config: Any, tmp_path: Path, weight: float, activation: str, verdict: str
) -> None:
    text = (
        f"sequence: {[0.1 * t for t in range(8)]}\ntarget: [0.5]\nloss: mse\nlearning_rate: 0.1\n"
        "layers:\n  - type: rnn\n    weights_input: [[0.5]]\n"
        f"    weights_hidden: [[{weight}]]\n    biases: [0]\n    activation: {activation}\n"
        "    return: last\n"
    )
    path = write_config(tmp_path, text)
    result = run_cli(["step", str(path)])
    assert result.exit_code == 0, result.output
    assert verdict in result.stdout
    layer = step_json(run_cli, path)["steps"][0]["layers"][0]
    norms = np.asarray(layer["jacobian_norms"])
    if activation == "linear":  # ∂h_t/∂h_(t−1) = W_hh exactly
        close(norms, np.full(7, weight), rtol=1e-12)
    close(np.asarray(layer["jacobian_product"]), np.asarray(np.prod(norms)), rtol=1e-12)


def test_the_jacobian_norms_are_the_reference_s_finite_differences(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    """‖∂s_t/∂s_(t−1)‖₂ of each cell, against the Jacobian of the reference's step by central
    differences (an LSTM's state is (h, c))."""
    for kind in KINDS:
        rng = np.random.default_rng(9)
        text, _net, params, _, xs, _ = make_net(rng, kind, 3, 1, "sequence", "every", hidden=3)
        layer = step_json(run_cli, write_config(tmp_path, text))["steps"][0]["layers"][0]
        hidden = np.asarray(layer["hidden"])
        cells = np.asarray(layer.get("cells", np.zeros_like(hidden)))
        for t in (1, 2):
            state = (
                np.concatenate([hidden[t - 1], cells[t - 1]]) if kind == "lstm" else hidden[t - 1]
            )
            jac = np.zeros((state.size, state.size))
            for k in range(state.size):
                moved = []
                for sign in (1, -1):
                    s = state.copy()
                    s[k] += sign * 1e-6
                    h, c = cell(kind, params, xs[0, t], s[:3], s[3:] if kind == "lstm" else s)
                    moved.append(np.concatenate([h, c]) if kind == "lstm" else h)
                jac[:, k] = (moved[0] - moved[1]) / 2e-6
            close(layer["jacobian_norms"][t - 1], np.asarray(np.linalg.norm(jac, 2)), rtol=1e-6)


def test_the_issue_example_runs_and_its_dense_acts_at_every_step(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    text = (
        "sequence: [[0.5], [-0.1], [0.3]]\ntargets: [[0.2], [0.0], [0.4]]\nloss: mse\n"
        "loss_at: every\nlearning_rate: 0.1\nlayers:\n  - type: rnn\n"
        "    weights_input: [[0.8], [-0.4]]\n    weights_hidden: [[0.5, 0.1], [0.0, 0.9]]\n"
        "    biases: [0, 0]\n    activation: tanh\n    initial_state: [0, 0]\n"
        "    return: sequence\n    truncate: null\n"
        "  - weights: [[1.0, -1.0]]\n    biases: [0]\n    activation: linear\n"
    )
    doc = step_json(run_cli, write_config(tmp_path, text))
    rnn, dense = doc["steps"][0]["layers"]
    h = np.asarray(rnn["z"])
    assert dense["input_shape"] == [3, 2] and dense["output_shape"] == [3, 1]
    close(dense["z"], h @ np.array([[1.0, -1.0]]).T, rtol=1e-14)
    # By hand: h_1 = tanh(W_ih x_1) from h_0 = 0.
    close(h[0], np.tanh(np.array([0.8, -0.4]) * 0.5), rtol=1e-14)


def test_a_dense_layer_alone_acts_at_every_step_of_a_sequence(
    run_cli: Any, write_config: Any, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    xs, w, b = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 3)), rng.normal(size=2)
    ys = rng.normal(size=(2, 4, 2))
    text = (
        f"sequences: {_yaml(xs)}\ntargets: {_yaml(ys)}\nloss: mse\nlearning_rate: 0.1\n"
        f"layers:\n  - weights: {_yaml(w)}\n    biases: {_yaml(b)}\n    activation: tanh\n"
    )
    layer = step_json(run_cli, write_config(tmp_path, text))["steps"][0]["layers"][0]
    a = np.tanh(xs @ w.T + b)
    close(layer["a"], a, rtol=1e-13)
    delta = 2 * (a - ys) / 8 * (1 - a**2)  # mse over T·out = 8 values
    close(layer["grads"]["weights"], np.einsum("ntj,ntk->jk", delta, xs) / 2, rtol=1e-12)
    close(layer["grads"]["biases"], delta.sum(axis=(0, 1)) / 2, rtol=1e-12)
    close(layer["grad_input"], delta @ w, rtol=1e-12)


def test_the_examples_write_their_worked_solutions(run_cli: Any, tmp_path: Path) -> None:
    explain = run_cli(["step", "--example", "rnn-bptt", "--explain"])
    assert explain.exit_code == 0, explain.output
    for line in (
        "s₁ = 0.8×0.5 + 0.5×0 + 0.1 = 0.500",
        "h₁ = tanh(0.500) = 0.462",
        "∂C/∂h₂ = 0.164 + 0.5 × 0.0176 = 0.173",
        "∂C/∂W_hh₀₀ = 0.201×0 + 0.162×0.462 + 0.0176×0.246 = 0.0793",
    ):
        assert line in explain.stdout, line
    lstm = run_cli(["step", "--example", "lstm-step", "--explain"])
    assert lstm.exit_code == 0, lstm.output
    assert "∂C/∂c₂ = 0.0253 × 0.432 × (1 − 0.0831²) + 0.770 × (−0.158) = −0.111" in lstm.stdout
    for fmt in ("markdown", "latex"):
        for name in ("rnn-bptt", "lstm-step"):
            result = run_cli(["step", "--example", name, "--format", fmt])
            assert result.exit_code == 0, result.output
            assert ("\\partial" in result.stdout) == (fmt == "latex") or fmt == "markdown"
    # A wider layer is summarised: its vectors cut at --max-terms.
    rng = np.random.default_rng(0)
    text, *_ = make_net(rng, "gru", 3, 1, "sequence", "every", hidden=6)
    path = tmp_path / "wide.yaml"
    path.write_text(text, encoding="utf-8")
    cut = run_cli(["step", str(path), "--explain", "--max-terms", "2"])
    assert cut.exit_code == 0, cut.output
    assert "more" in cut.stdout or "…" in cut.stdout


def test_the_python_api_runs_a_recurrent_config() -> None:
    import gradcalc

    trace = gradcalc.run(gradcalc.load("configs/lstm-step.yaml"), steps=2)
    assert trace.to_dict()["layer_types"] == ["lstm"]
    assert "∂C/∂c" in trace.explain()


# -- bad input: one line, exit 2, the key path -----------------------------------------------

HEAD = "loss: mse\nlearning_rate: 0.1\n"
RNN = (
    "layers:\n  - type: rnn\n    weights_input: [[0.8], [-0.4]]\n"
    "    weights_hidden: [[0.5, 0.1], [0.0, 0.9]]\n    biases: [0, 0]\n"
)
ONE = "sequence: [[1], [2]]\ntargets: [[1, 1], [1, 1]]\n"
BAD = [
    (
        "sequences: [[[1], [2]], [[1]]]\ntargets: [[[1, 1], [1, 1]], [[1, 1], [1, 1]]]\n"
        + HEAD
        + RNN,
        ["sequences[1]", "a sequence of 1 step, but sequences[0] has 2"],
    ),
    (
        "sequence: [[1], [2]]\ntargets: [[1, 1], [1, 1], [1, 1]]\n" + HEAD + RNN,
        ["targets", "shape 3×2", "the output is 2×2", "'target:' the last step's 2"],
    ),
    ("sequence: [[1], [2]]\ntarget: [1, 1, 1]\n" + HEAD + RNN, ["target", "shape 3", "is 2"]),
    (ONE + "loss_at: last\n" + HEAD + RNN, ["targets", "with loss_at: last", "2×2"]),
    (ONE + "loss_at: everywhere\n" + HEAD + RNN, ["loss_at", "did you mean 'every'"]),
    (ONE + HEAD + RNN + "    truncate: 0\n", ["layers[0].truncate", "must be ≥ 1", "got 0"]),
    (ONE + HEAD + RNN + "    truncate: -3\n", ["layers[0].truncate", "got -3"]),
    (
        "sequence: [[1, 2], [2, 3]]\ntargets: [[1, 1], [1, 1]]\n" + HEAD + RNN,
        ["layers[0].weights_input", "shape 2×1", "(H = 2, the input width 2)"],
    ),
    (
        ONE + HEAD + RNN.replace("[[0.5, 0.1], [0.0, 0.9]]", "[[0.5, 0.1, 1], [0.0, 0.9, 1]]"),
        ["layers[0].weights_hidden", "shape 2×3", "2×2"],
    ),
    (
        ONE + HEAD + "layers:\n  - type: lstm\n    weight_ih: [[1], [1], [1], [1], [1]]\n"
        "    weight_hh: [[1]]\n    biases: [0]\n",
        ["layers[0].weight_ih", "not a multiple of the 4"],
    ),
    (
        ONE + HEAD + "layers:\n  - type: lstm\n    weight_ih: [[1], [1], [1], [1]]\n"
        "    weight_hh: [[1, 2], [1, 2], [1, 2], [1, 2]]\n    biases: [0, 0, 0, 0]\n",
        ["layers[0].weight_hh", "(4·H = 4, H = 1)", "4×1"],
    ),
    (
        ONE + HEAD + "layers:\n  - type: gru\n    weight_ih: [[1], [1], [1]]\n"
        "    weight_hh: [[1], [1], [1]]\n    biases: [0, 0, 0]\n",
        ["layers[0].biases", "bias_ih"],
    ),
    (
        ONE + HEAD + RNN.replace("biases: [0, 0]", "biases: [0, 0, 0]"),
        ["layers[0].biases", "3 biases", "2 rows"],
    ),
    (
        "sequence: [[1], [2]]\ntarget: [1, 1]\nloss_at: every\n"
        + HEAD
        + RNN
        + "    return: last\n",
        ["loss_at", "not a sequence"],
    ),
    ("input: [1]\n" + ONE + HEAD + RNN, ["input", "not both"]),
    ("input: [1, 2]\ntarget: [1, 1]\nloss_at: last\n" + HEAD + RNN, ["loss_at", "sequence input"]),
    (ONE + HEAD + RNN + "    initial_state: [1, 2, 3]\n", ["layers[0].initial_state", "H = 2"]),
    (ONE + HEAD + RNN + "    activation: softmax\n", ["layers[0].activation", "vector"]),
    (ONE + HEAD + RNN + "    return: all\n", ["layers[0].return", "'sequence' or 'last'"]),
    ("sequence: [[[1]]]\ntargets: [[1, 1]]\n" + HEAD + RNN, ["sequence", "(T, input)"]),
    ("sequences: [[[1], [2]]]\ntarget: [1, 1]\n" + HEAD + RNN, ["target", "'targets'"]),
]


@pytest.mark.parametrize(("text", "pieces"), BAD)
def test_bad_recurrent_input_is_one_line_with_the_key_path(
    run_cli: Any, write_config: Any, tmp_path: Path, text: str, pieces: list[str]
) -> None:
    result = run_cli(["step", str(write_config(tmp_path, text))])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output
    for piece in pieces:
        assert piece in result.stderr, (piece, result.stderr)


@pytest.mark.parametrize("kind", KINDS)
def test_initial_states_are_torch_s_h0_and_c0(
    run_cli: Any, write_config: Any, tmp_path: Path, kind: str
) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(21)
    text, _, params, _, xs, _ = make_net(rng, kind, 4, 2, "sequence", "every", split=True)
    h0, c0 = rng.normal(size=2), rng.normal(size=2)
    extra = f"    initial_state: {_yaml(h0)}\n"
    if kind == "lstm":
        extra += f"    initial_cell: {_yaml(c0)}\n"
    text = text.replace("    return: sequence\n", "    return: sequence\n" + extra)
    layer = step_json(run_cli, write_config(tmp_path, text))["steps"][0]["layers"][0]
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](
        2, 2, batch_first=True, dtype=torch.float64
    )
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(module, f"{name}_l0").copy_(torch.from_numpy(params[name]))
    start = torch.from_numpy(np.tile(h0, (1, 2, 1)))
    if kind == "lstm":
        start = (start, torch.from_numpy(np.tile(c0, (1, 2, 1))))
    out, _ = module(torch.from_numpy(xs), start)
    close(layer["hidden"], out.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_a_rounded_recurrent_run_lies_within_the_drift_bound(
    write_config: Any, tmp_path: Path, kind: str, shape: tuple[str, str]
) -> None:
    """The hand-rounded run of each cell (loss_at every and last) stays inside check's
    first-order drift bound, for every graded cell including ∂C/∂h_t and ∂C/∂c_t."""
    from gradcalc.check.bounds import Bounds, decimals_unit
    from gradcalc.check.cells import Shape, expected
    from gradcalc.check.grade import _run_rounded
    from gradcalc.functions.training import hand_round
    from gradcalc.step import config
    from gradcalc.step.engine import run

    rng = np.random.default_rng(31)
    text, *_ = make_net(rng, kind, 3, 2, *shape, hidden=2, split=True)
    spec = config.load(str(write_config(tmp_path, text + "steps: 2\n")))
    exact = run(spec)
    steps, _ = _run_rounded(spec, 2, hand_round(3))
    bounds = Bounds(spec, exact, decimals_unit(3))
    cells = Shape.of(spec)
    graded = set()
    for s in range(2):
        for key in cells.step_keys():
            gap = np.abs(expected(steps[s], key) - expected(exact.steps[s], key))
            assert np.all(gap <= bounds.steps[s][key] + 1e-12), (s + 1, key)
            graded.add(key[0])
    assert {"grad_h", "grad_h_from_next"} <= graded
    assert ("grad_c" in graded) == (kind == "lstm")


def test_the_drift_bound_moves_every_number_of_a_wide_layer(
    write_config: Any, tmp_path: Path
) -> None:
    """Past 4,096 uncertain numbers (W_hh alone is 60 × 60 here, uncertain from the second
    step) the bound still moves each one on its own: a bound cut to the cells' own rounding
    there fell short of the hand-rounded run and marked its rightly rounded answers wrong."""
    from gradcalc.check.bounds import Bounds, decimals_unit
    from gradcalc.check.cells import Shape, expected
    from gradcalc.check.grade import _run_rounded
    from gradcalc.functions.training import hand_round
    from gradcalc.step import config
    from gradcalc.step.engine import run

    rng = np.random.default_rng(8)
    text, *_ = make_net(rng, "rnn", 2, 1, "last", "last", hidden=60, width=8)
    spec = config.load(str(write_config(tmp_path, text + "steps: 2\n")))
    assert sum(v.size for v in spec.layers[0].params.values()) > 4096
    exact = run(spec)
    steps, _ = _run_rounded(spec, 2, hand_round(3))
    bounds = Bounds(spec, exact, decimals_unit(3))
    for key in Shape.of(spec).step_keys():
        gap = np.abs(expected(steps[1], key) - expected(exact.steps[1], key))
        assert np.all(gap <= bounds.steps[1][key] + 1e-12), key
