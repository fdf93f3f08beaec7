"""C graded from the student's own C_x on every network: a dense one, the same dense network
given as layer records (a flatten first), and a convolution. A wrong C_x followed by the C that
follows from it gives C ↳ carried; a C that follows from nothing stays ✗. The per-example costs
are worked here in plain numpy (direct loops), apart from gradcalc.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

X_DENSE = np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]])
W2 = np.array([[0.1, -0.2, 0.3], [0.4, 0.1, -0.5]])
B2 = np.array([0.1, -0.1])
W3 = np.array([[0.3, -0.6]])
B3 = np.array([0.2])
X_CONV = np.array(
    [
        [[[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [2.0, 1.0, 0.0]]],
        [[[0.5, -1.0, 1.0], [2.0, 0.0, 1.0], [-1.0, 1.0, 2.0]]],
    ]
)
K = np.array([[[[0.2, -0.1], [0.3, 0.1]]]])
WC = np.array([[0.5, -0.4, 0.3, 0.2]])
Y = np.array([[1.0], [0.0]])


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def dense_output() -> np.ndarray:
    """a³ of the 3-2-1 tanh/sigmoid network, one row per example."""
    a2 = np.tanh(X_DENSE @ W2.T + B2)
    return sigmoid(a2 @ W3.T + B3)


def conv_output() -> np.ndarray:
    """A 2×2 cross-correlation with stride 1 (loops), ReLU, flatten, a sigmoid unit."""
    out = []
    for n in range(2):
        z = np.zeros((2, 2))
        for i in range(2):
            for j in range(2):
                z[i, j] = sum(
                    X_CONV[n, 0, i + p, j + q] * K[0, 0, p, q] for p in range(2) for q in range(2)
                )
        a = np.maximum(z, 0.0).reshape(-1)
        out.append([sigmoid(WC[0] @ a)[()]])
    return np.array(out)


def quadratic(a: np.ndarray) -> np.ndarray:
    """½ Σ_j (a_j − y_j)² per example."""
    return 0.5 * np.sum((a - Y) ** 2, axis=1)


def lists(a: np.ndarray) -> str:
    return json.dumps(a.tolist())


DENSE_LAYERS = (
    f"  - weights: {lists(W2)}\n    biases: {lists(B2)}\n    activation: tanh\n"
    f"  - weights: {lists(W3)}\n    biases: {lists(B3)}\n    activation: sigmoid\n"
)
NETWORKS = {
    "dense": (X_DENSE, DENSE_LAYERS, dense_output, W2, W3),
    "dense as layers": (X_DENSE, "  - type: flatten\n" + DENSE_LAYERS, dense_output, W2, W3),
    "conv": (
        X_CONV,
        f"  - type: conv2d\n    kernels: {lists(K)}\n    activation: relu\n"
        f"  - type: flatten\n  - weights: {lists(WC)}\n    biases: [0]\n    activation: sigmoid\n",
        conv_output,
        K,
        WC,
    ),
}


def config(name: str, reduction: str, decay: float) -> str:
    x, layers, _, _, _ = NETWORKS[name]
    return (
        f"inputs: {lists(x)}\ntargets: {lists(Y)}\nloss: quadratic\nreduction: {reduction}\n"
        f"learning_rate: 0.5\nweight_decay: {decay}\nlayers:\n{layers}"
    )


def reference(name: str, reduction: str, decay: float) -> tuple[np.ndarray, float, float]:
    """(C_x, the scale of their sum, the L2 penalty (λ/2) Σ w² of the weights and kernels)."""
    _, _, output, *weights = NETWORKS[name]
    scale = 0.5 if reduction == "mean" else 1.0
    return quadratic(output()), scale, decay / 2 * sum(float(np.sum(w * w)) for w in weights)


def grade(
    run_cli: Any, tmp_path: Path, name: str, reduction: str, decay: float, sheet: str
) -> dict[str, Any]:
    cfg = tmp_path / "net.yaml"
    cfg.write_text(config(name, reduction, decay), encoding="utf-8")
    answers = tmp_path / "answers.yaml"
    answers.write_text(sheet, encoding="utf-8")
    result = run_cli(["check", str(cfg), str(answers), "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    return {c["symbol"]: c for c in json.loads(result.stdout)["cells"]}


CASES = [(n, r, d) for n in NETWORKS for r in ("mean", "sum") for d in (0.0, 0.1)]


@pytest.mark.parametrize(("name", "reduction", "decay"), CASES)
def test_reference_costs_are_the_engines(
    run_cli: Any, tmp_path: Path, name: str, reduction: str, decay: float
) -> None:
    """The numpy reference of this file is the run graded."""
    losses, scale, penalty = reference(name, reduction, decay)
    cfg = tmp_path / "net.yaml"
    cfg.write_text(config(name, reduction, decay), encoding="utf-8")
    doc = json.loads(run_cli(["step", str(cfg), "--format", "json"]).stdout)
    np.testing.assert_allclose(doc["steps"][0]["losses"], losses, rtol=1e-12)
    want = scale * losses.sum() + penalty
    np.testing.assert_allclose(doc["steps"][0]["loss"], want, rtol=1e-12)


@pytest.mark.parametrize(("name", "reduction", "decay"), CASES)
def test_cost_from_a_wrong_example_cost_is_carried(
    run_cli: Any, tmp_path: Path, name: str, reduction: str, decay: float
) -> None:
    losses, scale, penalty = reference(name, reduction, decay)
    given = losses + np.array([0.25, 0.0])  # C_1 wrong by 0.25, C_2 right
    from_given = float(scale * given.sum() + penalty)
    sheet = f"losses: {lists(given)}\nloss: {from_given!r}\n"
    cells = grade(run_cli, tmp_path, name, reduction, decay, sheet)
    assert cells["C_x (x = 1)"]["verdict"] == "wrong"
    assert cells["C_x (x = 2)"]["verdict"] == "correct"
    assert cells["C"]["verdict"] == "carried"
    assert cells["C"]["carried_from_answers"] == pytest.approx(from_given, rel=1e-12)
    assert cells["C"]["expected"] == pytest.approx(scale * losses.sum() + penalty, rel=1e-12)


@pytest.mark.parametrize(("name", "reduction", "decay"), CASES)
def test_cost_that_follows_from_nothing_is_wrong(
    run_cli: Any, tmp_path: Path, name: str, reduction: str, decay: float
) -> None:
    losses, scale, penalty = reference(name, reduction, decay)
    given = losses + np.array([0.25, 0.0])
    # Neither the exact C nor the one the given C_x lead to (nor twice or half either).
    wrong = float(scale * given.sum() + penalty + 0.37)
    sheet = f"losses: {lists(given)}\nloss: {wrong!r}\n"
    cells = grade(run_cli, tmp_path, name, reduction, decay, sheet)
    assert cells["C"]["verdict"] == "wrong"
    assert cells["C"]["carried_from_answers"] is None


@pytest.mark.parametrize("name", list(NETWORKS))
def test_rounded_hand_calculation_carries_within_its_bound(
    run_cli: Any, tmp_path: Path, name: str
) -> None:
    """C_x written to 3 decimals, one of them wrong, and C worked from the written C_x and
    written to 3 decimals: ↳ (the half units of the C_x are the bound). 0.01 further is ✗."""
    losses, scale, _ = reference(name, "sum", 0.0)
    given = np.round(losses, 3) + np.array([0.25, 0.0])
    carried = round(float(scale * given.sum()), 3)
    for loss, verdict in ((carried, "carried"), (round(carried + 0.01, 3), "wrong")):
        sheet = f"losses: [{given[0]:.3f}, {given[1]:.3f}]\nloss: {loss:.3f}\n"
        cells = grade(run_cli, tmp_path, name, "sum", 0.0, sheet)
        assert cells["C_x (x = 2)"]["verdict"] in ("correct", "rounding")
        assert cells["C"]["verdict"] == verdict, (loss, cells["C"])


# The output layer's number: the dense network's 3; a flatten in front moves it to 4.
OUTPUT = {"dense": 3, "dense as layers": 4, "conv": 4}


@pytest.mark.parametrize(("name", "reduction", "decay"), CASES)
def test_costs_from_a_wrong_output_are_carried(
    run_cli: Any, tmp_path: Path, name: str, reduction: str, decay: float
) -> None:
    """a^L wrong for the first example: its C_x and C worked from it are ↳; a C_x that follows
    from neither the given nor the right a^L is ✗."""
    _, scale, penalty = reference(name, reduction, decay)
    a = NETWORKS[name][2]() + np.array([[0.1], [0.0]])
    costs = quadratic(a)
    L = OUTPUT[name]
    sheet = f"a:\n  {L}: {lists(a)}\nlosses: {lists(costs)}\n"
    cells = grade(run_cli, tmp_path, name, reduction, decay, sheet)
    assert cells["C_x (x = 1)"]["verdict"] == "carried"
    assert cells["C_x (x = 1)"]["carried_from_answers"] == pytest.approx(costs[0], rel=1e-12)
    assert cells["C_x (x = 2)"]["verdict"] == "correct"
    # C alone (no C_x answered) from the given a^L.
    total = float(scale * costs.sum() + penalty)
    cells = grade(
        run_cli, tmp_path, name, reduction, decay, sheet.split("losses")[0] + f"loss: {total!r}\n"
    )
    assert cells["C"]["verdict"] == "carried"
    wrong = costs + np.array([0.05, 0.0])
    cells = grade(
        run_cli,
        tmp_path,
        name,
        reduction,
        decay,
        f"a:\n  {L}: {lists(a)}\nlosses: {lists(wrong)}\n",
    )
    assert cells["C_x (x = 1)"]["verdict"] == "wrong"


def test_cost_from_a_wrong_z_of_a_softmax_output_is_carried(run_cli: Any, tmp_path: Path) -> None:
    """Cross-entropy after softmax is worked from z^L where a^L is not answered: a wrong z^L
    and the C_x that −log softmax(z^L)_y gives from it are ✗ then ↳ (layer records)."""
    x = X_DENSE
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    text = (
        f"inputs: {lists(x)}\ntargets: {lists(y)}\nloss: cross_entropy\nlearning_rate: 0.5\n"
        f"layers:\n  - type: flatten\n  - weights: {lists(W2)}\n    biases: {lists(B2)}\n"
        "    activation: softmax\n"
    )
    cfg = tmp_path / "net.yaml"
    cfg.write_text(text, encoding="utf-8")
    z = x @ W2.T + B2 + np.array([[0.3, 0.0], [0.0, 0.0]])
    log_softmax = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    costs = -np.sum(y * log_softmax, axis=1)
    answers = tmp_path / "answers.yaml"
    answers.write_text(f"z:\n  3: {lists(z)}\nlosses: {lists(costs)}\n", encoding="utf-8")
    result = run_cli(["check", str(cfg), str(answers), "--format", "json"])
    cells = {c["symbol"]: c for c in json.loads(result.stdout)["cells"]}
    assert cells["z³[0] (x = 1)"]["verdict"] == "wrong"
    assert cells["C_x (x = 1)"]["verdict"] == "carried"
    assert cells["C_x (x = 1)"]["carried_from_answers"] == pytest.approx(costs[0], rel=1e-12)
    assert cells["C_x (x = 2)"]["verdict"] == "correct"
