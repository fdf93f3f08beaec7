"""The update rules, checked through `gradcalc step --format json` against a second route.

`Reference` below is written apart from the engine and in PyTorch's own formulation of each rule
(torch.optim's source as the model, not gradcalc's): Adam as θ − (η/(1 − β₁ᵗ)) m/(√v/√(1 − β₂ᵗ)
+ ε), Nesterov as PyTorch's nesterov=True whose iterates are the look-ahead points, AdamW as
θ(1 − ηλ) then Adam, L2 decay as λw added to the weights' gradient. Its backpropagation is its
own too (sigmoid, tanh and PReLU; quadratic and mse). Every rule of the registry must have an
entry here, so a new rule is not tested until someone writes its reference.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradcalc.functions.optimizers import OPTIMIZERS

RULES = [rule.name for rule in OPTIMIZERS]

# ---- an independent network: forward, cost and gradients ----------------------------------

Layer = dict[str, Any]  # {"w": (n_l, n_{l-1}), "b": (n_l,), "act": name, "a": PReLU slope}


def _act(name: str, z: np.ndarray, slope: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """f(z), f'(z) and ∂f/∂(PReLU slope)."""
    if name == "sigmoid":
        s = 1 / (1 + np.exp(-z))
        return s, s * (1 - s), np.zeros_like(z)
    if name == "tanh":
        t = np.tanh(z)
        return t, 1 - t * t, np.zeros_like(z)
    assert name == "prelu"
    neg = z <= 0
    return np.where(neg, slope * z, z), np.where(neg, slope, 1.0), np.where(neg, z, 0.0)


def _costs(loss: str, a: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """C_x per example and ∂C_x/∂a."""
    if loss == "quadratic":
        return 0.5 * ((a - y) ** 2).sum(axis=1), a - y
    assert loss == "mse"
    n = a.shape[1]
    return ((a - y) ** 2).sum(axis=1) / n, 2 * (a - y) / n


def _cost_and_grads(
    layers: list[Layer], x: np.ndarray, y: np.ndarray, loss: str, scale: float, lam: float
) -> tuple[float, float, list[dict[str, np.ndarray]]]:
    """(data cost, L2 penalty, per layer {"w", "b", ["a"]} gradients of the regularized cost)."""
    acts, zs, primes, slopes = [x], [], [], []
    for layer in layers:
        z = acts[-1] @ layer["w"].T + layer["b"]
        a, prime, d_slope = _act(layer["act"], z, layer.get("a", 0.0))
        zs.append(z)
        acts.append(a)
        primes.append(prime)
        slopes.append(d_slope)
    per_example, grad_a = _costs(loss, acts[-1], y)
    data = scale * per_example.sum()
    penalty = lam / 2 * sum((layer["w"] ** 2).sum() for layer in layers)
    grads: list[dict[str, np.ndarray]] = [{} for _ in layers]
    for i in reversed(range(len(layers))):
        delta = grad_a * primes[i]
        grads[i]["w"] = scale * delta.T @ acts[i] + lam * layers[i]["w"]
        grads[i]["b"] = scale * delta.sum(axis=0)
        if "a" in layers[i]:
            grads[i]["a"] = np.asarray(scale * (grad_a * slopes[i]).sum())
        grad_a = delta @ layers[i]["w"]
    return float(data), float(penalty), grads


# ---- the rules, written as torch.optim computes them ---------------------------------------


class Reference:
    """One rule for every trainable array, in torch.optim's formulation."""

    state_names: tuple[str, ...] = ()

    def __init__(self, hyper: dict[str, float], lr: float) -> None:
        self.h, self.lr, self.t = hyper, lr, 0
        self.state: dict[tuple[int, str], dict[str, np.ndarray]] = {}

    def st(self, key: tuple[int, str], p: np.ndarray) -> dict[str, np.ndarray]:
        return self.state.setdefault(key, {n: np.zeros_like(p) for n in self.state_names})

    def apply(self, key: tuple[int, str], p: np.ndarray, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def point(self, key: tuple[int, str], p: np.ndarray) -> np.ndarray:
        """Where the gradient is taken."""
        return p

    def theta(self, key: tuple[int, str], p: np.ndarray) -> np.ndarray:
        """The engine's θ from this formulation's iterate."""
        return p


class Sgd(Reference):
    def apply(self, key, p, g):
        return p - self.lr * g


class Momentum(Reference):
    state_names = ("velocity",)

    def apply(self, key, p, g):
        s = self.st(key, p)
        # torch: buf = g at the first step, then buf = μ buf + g (the same with buf = 0).
        s["velocity"] = g.copy() if self.t == 1 else self.h["momentum"] * s["velocity"] + g
        return p - self.lr * s["velocity"]


class Nesterov(Momentum):
    """torch's nesterov=True: φ ← φ − η (g(φ) + μ buf); its φ is the engine's look-ahead
    point θ − η μ v, so θ = φ + η μ v."""

    def apply(self, key, p, g):
        s = self.st(key, p)
        s["velocity"] = g.copy() if self.t == 1 else self.h["momentum"] * s["velocity"] + g
        return p - self.lr * (g + self.h["momentum"] * s["velocity"])

    def theta(self, key, p):
        return p + self.lr * self.h["momentum"] * self.st(key, p)["velocity"]


class Adagrad(Reference):
    state_names = ("sum_sq",)

    def apply(self, key, p, g):
        s = self.st(key, p)
        s["sum_sq"] = s["sum_sq"] + g * g
        return p - self.lr * g / (np.sqrt(s["sum_sq"]) + self.h["eps"])


class Rmsprop(Reference):
    state_names = ("square_avg",)

    def apply(self, key, p, g):
        s = self.st(key, p)
        alpha = self.h["beta"]
        s["square_avg"] = alpha * s["square_avg"] + (1 - alpha) * g * g
        return p - self.lr * g / (np.sqrt(s["square_avg"]) + self.h["eps"])


class Adam(Reference):
    state_names = ("m", "v")

    def apply(self, key, p, g):
        s = self.st(key, p)
        b1, b2 = self.h["beta1"], self.h["beta2"]
        s["m"] = s["m"] + (1 - b1) * (g - s["m"])  # torch's lerp
        s["v"] = b2 * s["v"] + (1 - b2) * g * g
        step_size = self.lr / (1 - b1**self.t)
        denom = np.sqrt(s["v"]) / math.sqrt(1 - b2**self.t) + self.h["eps"]
        return p - step_size * s["m"] / denom


class AdamW(Adam):
    def apply(self, key, p, g):
        if key[1] == "w":
            p = p * (1 - self.lr * self.h["weight_decay"])
        return super().apply(key, p, g)


REFERENCES: dict[str, type[Reference]] = {
    "sgd": Sgd,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": Adagrad,
    "rmsprop": Rmsprop,
    "adam": Adam,
    "adamw": AdamW,
}
# Not the defaults, so a rule that ignored its parameters would be caught.
HYPER: dict[str, dict[str, float]] = {
    "sgd": {},
    "momentum": {"momentum": 0.8},
    "nesterov": {"momentum": 0.7},
    "adagrad": {"eps": 1e-3},
    "rmsprop": {"beta": 0.9, "eps": 1e-4},
    "adam": {"beta1": 0.85, "beta2": 0.99, "eps": 1e-4},
    "adamw": {"beta1": 0.85, "beta2": 0.99, "eps": 1e-4, "weight_decay": 0.05},
}


def test_every_rule_has_a_reference() -> None:
    assert set(REFERENCES) == set(RULES)
    assert set(HYPER) == set(RULES)


def reference_run(
    layers: list[Layer],
    x: np.ndarray,
    y: np.ndarray,
    *,
    loss: str,
    reduction: str,
    lr: float,
    lam: float,
    rule: str,
    hyper: dict[str, float],
    steps: int,
) -> list[dict[str, Any]]:
    """Per step: the cost at θ before it, and θ and the state after it."""
    ref = REFERENCES[rule](hyper, lr)
    scale = 1 / x.shape[0] if reduction == "mean" else 1.0
    phi = [
        {k: (np.array(v, dtype=float) if k != "act" else v) for k, v in lt.items()} for lt in layers
    ]
    keys = [(i, k) for i, lt in enumerate(phi) for k in ("w", "b", "a") if k in lt]
    out = []
    for _ in range(steps):
        ref.t += 1
        theta = [dict(lt) for lt in phi]
        for i, k in keys:
            theta[i][k] = ref.theta((i, k), phi[i][k])
        data, penalty, _ = _cost_and_grads(theta, x, y, loss, scale, lam)
        _, _, grads = _cost_and_grads(phi, x, y, loss, scale, lam)
        for i, k in keys:
            phi[i][k] = ref.apply((i, k), phi[i][k], grads[i][k])
        after = [dict(lt) for lt in phi]
        for i, k in keys:
            after[i][k] = ref.theta((i, k), phi[i][k])
        out.append(
            {
                "data": data,
                "penalty": penalty,
                "layers": after,
                "state": {key: dict(ref.state.get(key, {})) for key in keys},
            }
        )
    return out


# ---- the runs ------------------------------------------------------------------------------

NETWORK = [
    {"w": [[0.2, -0.3, 0.4], [-0.5, 0.1, 0.6]], "b": [-0.2, 0.1], "act": "prelu", "a": 0.25},
    {"w": [[0.7, -0.4], [0.3, 0.8]], "b": [0.05, -0.1], "act": "tanh"},
    {"w": [[-0.3, 0.9]], "b": [-0.2], "act": "sigmoid"},
]
X = [[0.8, -0.7, 0.1], [-0.4, 0.9, 0.5], [0.3, 0.2, -0.6]]
Y = [[0.9], [0.1], [0.4]]
KIND = {"w": "weights", "b": "biases", "a": "a"}
STEPS = 6


def _yaml(x, y, *, batch: bool, loss: str, reduction: str, lr: float, lam: float, rule, hyper):
    layers = []
    for lt in NETWORK:
        act = f"{{name: prelu, a: {lt['a']!r}}}" if lt["act"] == "prelu" else lt["act"]
        layers.append(f"  - weights: {lt['w']}\n    biases: {lt['b']}\n    activation: {act}\n")
    params = "".join(f", {k}: {v!r}" for k, v in hyper.items())
    data = (
        f"inputs: {x}\ntargets: {y}\nreduction: {reduction}\n"
        if batch
        else (f"input: {x[0]}\ntarget: {y[0]}\n")
    )
    return (
        f"{data}loss: {loss}\nlearning_rate: {lr!r}\nsteps: {STEPS}\n"
        f"optimizer: {{name: {rule}{params}}}\nweight_decay: {lam!r}\nlayers:\n" + "".join(layers)
    )


def _close(got: Any, want: Any, what: str) -> None:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, what
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=what)


CASES = [
    ("one", False, "quadratic", "mean"),
    ("batch-mean", True, "mse", "mean"),
    ("batch-sum", True, "quadratic", "sum"),
]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("lam", [0.0, 0.03])
def test_rule_matches_the_reference(run_cli, write_config, tmp_path: Path, rule, case, lam):
    _, batch, loss, reduction = case
    x, y = (X, Y) if batch else (X[:1], Y[:1])
    lr = 0.3 if rule in ("sgd", "momentum", "nesterov") else 0.05
    text = _yaml(
        x,
        y,
        batch=batch,
        loss=loss,
        reduction=reduction,
        lr=lr,
        lam=lam,
        rule=rule,
        hyper=HYPER[rule],
    )
    result = run_cli(["step", str(write_config(tmp_path, text)), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["optimizer"] == {"name": rule, **HYPER[rule]}
    assert doc["weight_decay"] == lam
    want = reference_run(
        NETWORK,
        np.array(x, float),
        np.array(y, float),
        loss=loss,
        reduction=reduction,
        lr=lr,
        lam=lam,
        rule=rule,
        hyper=HYPER[rule],
        steps=STEPS,
    )
    for st, ref in zip(doc["steps"], want, strict=True):
        n = st["step"]
        _close(st["data_loss"], ref["data"], f"step {n} data cost")
        _close(st["penalty"], ref["penalty"], f"step {n} penalty")
        _close(st["loss"], ref["data"] + ref["penalty"], f"step {n} cost")
        for layer, ref_layer in zip(st["layers"], ref["layers"], strict=True):
            l = layer["layer"]
            _close(layer["weights"], ref_layer["w"], f"step {n} w^{l}")
            _close(layer["biases"], ref_layer["b"], f"step {n} b^{l}")
            if "a" in ref_layer:
                _close(layer["activation_params"]["a"], ref_layer["a"], f"step {n} a^{l}")
            state = layer["optimizer_state"]
            for k in ("w", "b", "a"):
                ref_state = ref["state"].get((l - 2, k), {})
                got = state.get(KIND[k], {})
                assert set(got) == set(ref_state), (n, l, k)
                for name, value in ref_state.items():
                    _close(got[name], value, f"step {n} {name} of {k}^{l}")
    # Each step's cost is the one at the parameters the step before left.
    data, penalty, _ = _cost_and_grads(
        want[-1]["layers"],
        np.array(x, float),
        np.array(y, float),
        loss,
        1 / len(x) if reduction == "mean" else 1.0,
        lam,
    )
    _close(doc["final"]["loss"], data + penalty, "final cost")


def test_the_reference_can_fail() -> None:
    """The comparison notices a rule written slightly wrong (ε inside the root)."""

    class EpsInside(Adagrad):
        def apply(self, key, p, g):
            s = self.st(key, p)
            s["sum_sq"] = s["sum_sq"] + g * g
            return p - self.lr * g / np.sqrt(s["sum_sq"] + self.h["eps"])

    x, y = np.array(X[:1], float), np.array(Y[:1], float)
    kwargs: dict[str, Any] = dict(
        loss="quadratic", reduction="mean", lr=0.05, lam=0.0, hyper={"eps": 1e-3}, steps=3
    )
    right = reference_run(NETWORK, x, y, rule="adagrad", **kwargs)
    REFERENCES["adagrad"] = EpsInside
    try:
        wrong = reference_run(NETWORK, x, y, rule="adagrad", **kwargs)
    finally:
        REFERENCES["adagrad"] = Adagrad
    with pytest.raises(AssertionError):
        _close(wrong[-1]["layers"][0]["w"], right[-1]["layers"][0]["w"], "w")


# ---- hand-computed: one unit, z = w·1 + b, C = ½(z − 0)², η = 0.1, two steps ----------------
# Step 1 at w = 1, b = 0: z = 1, so ∂C/∂w = ∂C/∂b = 1.

ONE_UNIT = """\
input: [1.0]
target: [0.0]
loss: quadratic
learning_rate: 0.1
steps: 2
optimizer: {optimizer}
weight_decay: {lam}
layers:
  - weights: [[1.0]]
    biases: [0.0]
    activation: identity
"""

HAND: dict[str, tuple[str, float, list[tuple[float, float]]]] = {
    # (optimizer, λ, [(w, b) after step 1, after step 2])
    # w = 1 − 0.1·1 = 0.9, b = −0.1; z = 0.8: w = 0.9 − 0.08 = 0.82, b = −0.18.
    "sgd": ("sgd", 0.0, [(0.9, -0.1), (0.82, -0.18)]),
    # v = 1: w = 0.9, b = −0.1; z = 0.8, v = 0.9·1 + 0.8 = 1.7: w = 0.9 − 0.17 = 0.73, b = −0.27.
    "momentum": ("momentum", 0.0, [(0.9, -0.1), (0.73, -0.27)]),
    # Step 1 as momentum (v = 0, θ̃ = θ). Step 2: w̃ = 0.9 − 0.1·0.9·1 = 0.81, b̃ = −0.19,
    # z̃ = 0.62, v = 0.9 + 0.62 = 1.52: w = 0.9 − 0.152 = 0.748, b = −0.1 − 0.152 = −0.252.
    "nesterov": ("nesterov", 0.0, [(0.9, -0.1), (0.748, -0.252)]),
    # eps 0.01: s = 1, w = 1 − 0.1/1.01 = 0.9009901, b = −0.0990099; z = 0.8019802,
    # s = 1 + 0.8019802² = 1.6431722, √s = 1.2818628:
    # w = 0.9009901 − 0.1·0.8019802/(1.2818628 + 0.01) = 0.9009901 − 0.0620794 = 0.8389107,
    # b = −0.0990099 − 0.0620794 = −0.1610893.
    "adagrad": (
        "{name: adagrad, eps: 0.01}",
        0.0,
        [(0.9009901, -0.0990099), (0.8389107, -0.1610893)],
    ),
    # β = 0.99, eps 0.01: s = 0.01, √s = 0.1, w = 1 − 0.1·1/0.11 = 0.0909091, b = −0.9090909;
    # z = −0.8181818, s = 0.0099 + 0.01·0.6694215 = 0.0165942, √s = 0.1288185:
    # step = 0.1·(−0.8181818)/0.1388185 = −0.5893895: w = 0.6802986, b = −0.3197014.
    "rmsprop": (
        "{name: rmsprop, eps: 0.01}",
        0.0,
        [(0.0909091, -0.9090909), (0.6802986, -0.3197014)],
    ),
    # m = 0.1, v = 0.001, m̂ = 1, v̂ = 1: w = 1 − 0.1/(1 + 1e-8) = 0.9, b = −0.1; z = 0.8,
    # m = 0.09 + 0.08 = 0.17, v = 0.000999 + 0.00064 = 0.001639, m̂ = 0.17/0.19 = 0.8947368,
    # v̂ = 0.001639/0.001999 = 0.8199100, √v̂ = 0.9054888: step = 0.1·0.9881262 = 0.0988126:
    # w = 0.8011874, b = −0.1988126.
    "adam": ("adam", 0.0, [(0.9, -0.1), (0.8011874, -0.1988126)]),
    # λ = 0.01 decays w only: w = 1·(1 − 0.001) = 0.999, then − 0.1: w = 0.899, b = −0.1;
    # z = 0.799, w = 0.899·0.999 = 0.898101; m = 0.09 + 0.0799 = 0.1699,
    # v = 0.000999 + 0.000638401 = 0.001637401, m̂ = 0.8942105, v̂ = 0.8191100,
    # √v̂ = 0.9050470: step = 0.1·0.9880270 = 0.0988027: w = 0.7992983, b = −0.1988027.
    "adamw": ("adamw", 0.0, [(0.899, -0.1), (0.7992983, -0.1988027)]),
}


def test_every_rule_is_worked_by_hand() -> None:
    assert set(HAND) == set(RULES)


@pytest.mark.parametrize("rule", RULES)
def test_rule_by_hand(run_cli, write_config, tmp_path: Path, rule: str) -> None:
    optimizer, lam, want = HAND[rule]
    text = ONE_UNIT.format(optimizer=optimizer, lam=lam)
    result = run_cli(["step", str(write_config(tmp_path, text)), "--format", "json"])
    assert result.exit_code == 0, result.output
    steps = json.loads(result.stdout)["steps"]
    for st, (w, b) in zip(steps, want, strict=True):
        assert st["layers"][0]["weights"][0][0] == pytest.approx(w, abs=1e-7)
        assert st["layers"][0]["biases"][0] == pytest.approx(b, abs=1e-7)


def test_l2_penalty_by_hand(run_cli, write_config, tmp_path: Path) -> None:
    # C = ½z² + (0.1/2)w²: at w = 1, b = 0 the data cost is 0.5 and the penalty 0.05;
    # ∂C/∂w = 1 + 0.1·1 = 1.1, so w = 1 − 0.11 = 0.89; ∂C/∂b = 1, b = −0.1.
    text = ONE_UNIT.format(optimizer="sgd", lam=0.1)
    result = run_cli(
        ["step", str(write_config(tmp_path, text)), "--format", "json", "--steps", "1"]
    )
    assert result.exit_code == 0, result.output
    st = json.loads(result.stdout)["steps"][0]
    assert (st["data_loss"], st["penalty"], st["loss"]) == pytest.approx((0.5, 0.05, 0.55))
    assert st["layers"][0]["grad_weights"][0][0] == pytest.approx(1.1)
    assert st["layers"][0]["weights"][0][0] == pytest.approx(0.89)
    assert st["layers"][0]["biases"][0] == pytest.approx(-0.1)


def test_nesterov_json_shows_the_lookahead_point(run_cli, write_config, tmp_path: Path) -> None:
    text = ONE_UNIT.format(optimizer="nesterov", lam=0.0)
    result = run_cli(["step", str(write_config(tmp_path, text)), "--format", "json"])
    st = json.loads(result.stdout)["steps"][1]
    # The hand case above: θ̃ = (0.81, −0.19), z̃ = 0.62; the step's loss is at θ = (0.9, −0.1).
    assert st["layers"][0]["weights_lookahead"][0] == pytest.approx([0.81])
    assert st["layers"][0]["biases_lookahead"] == pytest.approx([-0.19])
    assert st["layers"][0]["z"] == pytest.approx([0.62])
    assert st["lookahead"]["loss"] == pytest.approx(0.5 * 0.62**2)
    assert st["loss"] == pytest.approx(0.5 * 0.8**2)


def test_optimizer_option_overrides_the_file(run_cli, write_config, tmp_path: Path) -> None:
    path = write_config(tmp_path, ONE_UNIT.format(optimizer="{name: adam, beta1: 0.5}", lam=0))
    same = json.loads(
        run_cli(["step", str(path), "--format", "json", "--optimizer", "adam"]).stdout
    )
    other = json.loads(
        run_cli(["step", str(path), "--format", "json", "--optimizer", "momentum"]).stdout
    )
    assert same["optimizer"] == {"name": "adam", "beta1": 0.5, "beta2": 0.999, "eps": 1e-8}
    assert other["optimizer"] == {"name": "momentum", "momentum": 0.9}
    assert other["steps"][1]["layers"][0]["weights"][0][0] == pytest.approx(0.73)


def test_unknown_optimizer_option(run_cli, write_config, tmp_path: Path) -> None:
    path = write_config(tmp_path, ONE_UNIT.format(optimizer="sgd", lam=0))
    result = run_cli(["step", str(path), "--optimizer", "adma"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "--optimizer" in result.stderr and "did you mean 'adam'" in result.stderr


def test_sgd_written_out_is_the_default(run_cli, write_config, tmp_path: Path) -> None:
    implicit = ONE_UNIT.replace("optimizer: {optimizer}\nweight_decay: {lam}\n", "")
    a = run_cli(["step", str(write_config(tmp_path, implicit, "a.yaml")), "--format", "json"])
    text = ONE_UNIT.format(optimizer="sgd", lam=0)
    b = run_cli(["step", str(write_config(tmp_path, text, "b.yaml")), "--format", "json"])
    da, db = json.loads(a.stdout), json.loads(b.stdout)
    assert da["steps"] == db["steps"] and da["final"] == db["final"]
    assert da["optimizer"] == {"name": "sgd"} and da["weight_decay"] == 0.0


# ---- gradcalc list -------------------------------------------------------------------------


def test_list_json_has_every_update_rule(run_cli) -> None:
    result = run_cli(["list", "--format", "json"])
    assert result.exit_code == 0, result.output
    rules = json.loads(result.stdout)["optimizers"]
    assert [r["name"] for r in rules] == RULES
    for row, rule in zip(rules, OPTIMIZERS, strict=True):
        assert row["equations"] == [e.text for e in rule.equations]
        assert row["equations_tex"] == [e.tex for e in rule.equations]
        assert row["state"] == list(rule.state)
        assert [p["name"] for p in row["params"]] == [p.name for p in rule.params]
    adam = next(r for r in rules if r["name"] == "adam")
    assert "θ ← θ − η m̂/(√v̂ + ε)" in adam["equations"]
    assert {p["name"]: p["default"] for p in adam["params"]} == {
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
    }


def test_list_table_shows_every_update_rule(run_cli) -> None:
    result = run_cli(["list", "--no-color"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for rule in OPTIMIZERS:
        assert rule.name in result.stdout
        for equation in rule.equations:
            assert equation.text in result.stdout, equation.text


# ---- gradcalc check with an update rule ------------------------------------------------------


@pytest.mark.parametrize("rule", RULES)
def test_check_carries_an_error_through_each_rule(run_cli, write_config, tmp_path, rule) -> None:
    """A wrong δ³ carried correctly into ∂C/∂w³ (with the L2 term, at Nesterov's look-ahead
    weights) and into the new w³ (AdamW's decay first) is graded as carried, not wrong."""
    config = write_config(
        tmp_path,
        _yaml(
            X[:1],
            Y[:1],
            batch=False,
            loss="quadratic",
            reduction="mean",
            lr=0.1,
            lam=0.03,
            rule=rule,
            hyper=HYPER[rule],
        ),
    )
    doc = json.loads(run_cli(["step", str(config), "--format", "json"]).stdout)
    full = run_cli(["check", str(config), "-", "--format", "json"], input=json.dumps(doc))
    assert full.exit_code == 0, full.output
    assert json.loads(full.stdout)["score"] == json.loads(full.stdout)["max_score"]

    st1, st2 = doc["steps"][0]["layers"], doc["steps"][1]["layers"]
    out, hidden = st2[-1], st2[-2]
    w_pass = np.array(out.get("weights_lookahead", st1[-1]["weights"]))
    delta = np.array(out["delta"]) + 0.5
    grad_w = np.outer(delta, hidden["a"]) + 0.03 * w_pass
    # The student's new w³ from the carried gradient, by the reference (a second route).
    ref = REFERENCES[rule](HYPER[rule], 0.1)
    ref.t = 2
    theta = np.array(st1[-1]["weights"])
    before = {k: np.array(v) for k, v in st1[-1]["optimizer_state"].get("weights", {}).items()}
    ref.state[(2, "w")] = before
    if rule == "nesterov":  # the reference works in PyTorch's variable φ = θ − ημv
        phi = ref.apply(
            (2, "w"), theta - 0.1 * HYPER[rule]["momentum"] * before["velocity"], grad_w
        )
        new_w = ref.theta((2, "w"), phi)
    else:
        new_w = ref.apply((2, "w"), theta, grad_w)
    sheet = {
        "steps": [
            {
                "step": 2,
                "layers": [
                    {
                        "layer": 4,
                        "delta": delta.tolist(),
                        "grad_weights": grad_w.tolist(),
                        "weights": new_w.tolist(),
                    }
                ],
            }
        ]
    }
    result = run_cli(["check", str(config), "-", "--format", "json"], input=json.dumps(sheet))
    verdicts = {(c["quantity"], c["verdict"]) for c in json.loads(result.stdout)["cells"]}
    assert verdicts == {("delta", "wrong"), ("grad_weights", "carried"), ("weights", "carried")}
