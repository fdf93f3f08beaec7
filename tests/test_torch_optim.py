"""gradcalc's update rules against torch.optim itself: local only, skipped without torch.

torch is not a dependency. To run it, in a separate virtual environment:

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch numpy pyyaml click rich pytest
    PYTHONPATH=. /tmp/torchvenv/bin/python tests/test_torch_optim.py     # a table of differences
    PYTHONPATH=. /tmp/torchvenv/bin/python -m pytest tests/test_torch_optim.py

The same 3-3-2-1 network (PReLU, tanh, sigmoid; quadratic cost, mean over a batch of 3) is
trained for 8 steps by `gradcalc step` and by torch.optim in float64, and every weight, bias and
PReLU slope is compared after every step. L2 decay is torch's `weight_decay` on the weights'
parameter group (its gradient is exactly the penalty's λw); AdamW's decoupled decay is AdamW's own
`weight_decay`, also on the weights only. torch's nesterov=True iterates are gradcalc's
look-ahead points θ − η μ v.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

STEPS = 8
LR = {"sgd": 0.3, "momentum": 0.3, "nesterov": 0.3}  # the others: 0.05
HYPER: dict[str, dict[str, float]] = {
    "sgd": {},
    "momentum": {"momentum": 0.8},
    "nesterov": {"momentum": 0.7},
    "adagrad": {"eps": 1e-8},
    "rmsprop": {"beta": 0.9, "eps": 1e-8},
    "adam": {"beta1": 0.85, "beta2": 0.99, "eps": 1e-8},
    "adamw": {"beta1": 0.85, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.0},
}
LAYERS = [
    ([[0.2, -0.3, 0.4], [-0.5, 0.1, 0.6]], [-0.2, 0.1], "prelu"),
    ([[0.7, -0.4], [0.3, 0.8]], [0.05, -0.1], "tanh"),
    ([[-0.3, 0.9]], [-0.2], "sigmoid"),
]
SLOPE = 0.25
X = [[0.8, -0.7, 0.1], [-0.4, 0.9, 0.5], [0.3, 0.2, -0.6]]
Y = [[0.9], [0.1], [0.4]]


def _config(rule: str, hyper: dict[str, float], lam: float) -> str:
    params = "".join(f", {k}: {v!r}" for k, v in hyper.items())
    layers = "".join(
        f"  - weights: {w}\n    biases: {b}\n    activation: "
        + (f"{{name: prelu, a: {SLOPE}}}" if act == "prelu" else act)
        + "\n"
        for w, b, act in LAYERS
    )
    return (
        f"inputs: {X}\ntargets: {Y}\nloss: quadratic\nlearning_rate: {LR.get(rule, 0.05)}\n"
        f"steps: {STEPS}\noptimizer: {{name: {rule}{params}}}\nweight_decay: {lam!r}\n"
        f"layers:\n{layers}"
    )


def gradcalc_trajectory(rule: str, hyper: dict[str, float], lam: float) -> list[list[np.ndarray]]:
    """Per step, the parameters in torch's order; for nesterov the look-ahead point θ − ημv."""
    from gradcalc.step.config import load_text
    from gradcalc.step.engine import run
    from gradcalc.step.json import document

    doc = document(run(load_text(_config(rule, hyper, lam), "torch-check.yaml")))
    out = []
    for st in doc["steps"]:
        params = []
        for layer in st["layers"]:
            kinds = [("weights", layer["weights"]), ("biases", layer["biases"])]
            if "activation_params" in layer:
                kinds.append(("a", [layer["activation_params"]["a"]]))
            for kind, value in kinds:
                theta = np.array(value, dtype=float)
                if rule == "nesterov":
                    v = np.array(layer["optimizer_state"][kind]["velocity"], dtype=float)
                    theta = theta - LR[rule] * hyper["momentum"] * v.reshape(theta.shape)
                params.append(theta)
        out.append(params)
    return out


def torch_trajectory(rule: str, hyper: dict[str, float], lam: float) -> list[list[np.ndarray]]:
    dt = torch.float64
    weights = [torch.tensor(w, dtype=dt, requires_grad=True) for w, _, _ in LAYERS]
    biases = [torch.tensor(b, dtype=dt, requires_grad=True) for _, b, _ in LAYERS]
    slope = torch.tensor([SLOPE], dtype=dt, requires_grad=True)
    x, y = torch.tensor(X, dtype=dt), torch.tensor(Y, dtype=dt)
    lr = LR.get(rule, 0.05)
    decay = hyper.get("weight_decay", lam) if rule == "adamw" else lam
    groups: list[dict[str, Any]] = [
        {"params": weights, "weight_decay": decay},
        {"params": [*biases, slope], "weight_decay": 0.0},
    ]
    h = hyper
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
    out = []
    for _ in range(STEPS):
        opt.zero_grad()
        a = x
        for (_, _, act), w, b in zip(LAYERS, weights, biases, strict=True):
            z = a @ w.T + b
            a = {
                "prelu": lambda t: torch.nn.functional.prelu(t, slope),
                "tanh": torch.tanh,
                "sigmoid": torch.sigmoid,
            }[act](z)
        cost = 0.5 * ((a - y) ** 2).sum(dim=1).mean()
        if rule == "adamw" and lam:
            cost = cost + lam / 2 * sum((w**2).sum() for w in weights)  # L2 beside AdamW's own
        cost.backward()
        opt.step()
        params = []
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            params += [w.detach().numpy().copy(), b.detach().numpy().copy()]
            if i == 0:
                params.append(slope.detach().numpy().copy())
        out.append(params)
    return out


def relative_difference(ours: list[list[np.ndarray]], theirs: list[list[np.ndarray]]) -> float:
    """The largest |ours − torch| / |torch| over every parameter of every step."""
    worst = 0.0
    for step_ours, step_theirs in zip(ours, theirs, strict=True):
        for a, b in zip(step_ours, step_theirs, strict=True):
            worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))))
    return worst


CASES = [
    (rule, label, lam, adamw_decay)
    for rule in HYPER
    for label, lam, adamw_decay in (
        ("no decay", 0.0, 0.0),
        ("L2 0.03", 0.03, 0.0),
        *(
            (("decoupled 0.05", 0.0, 0.05), ("decoupled 0.05 + L2 0.03", 0.03, 0.05))
            if rule == "adamw"
            else ()
        ),
    )
]


def _hyper(rule: str, adamw_decay: float) -> dict[str, float]:
    return {**HYPER[rule], "weight_decay": adamw_decay} if rule == "adamw" else HYPER[rule]


@pytest.mark.parametrize(("rule", "label", "lam", "adamw_decay"), CASES)
def test_matches_torch_optim(rule: str, label: str, lam: float, adamw_decay: float) -> None:
    hyper = _hyper(rule, adamw_decay)
    ours, theirs = gradcalc_trajectory(rule, hyper, lam), torch_trajectory(rule, hyper, lam)
    assert relative_difference(ours, theirs) < 1e-6


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {STEPS} steps, max relative difference per parameter")
    for rule, label, lam, adamw_decay in CASES:
        hyper = _hyper(rule, adamw_decay)
        diff = relative_difference(
            gradcalc_trajectory(rule, hyper, lam), torch_trajectory(rule, hyper, lam)
        )
        print(f"{rule:9} {label:26} {diff:.2e}")
