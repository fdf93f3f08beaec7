"""The handwritten sheet's worked example (issue 2, "Done when"), through the real command."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
WORKED = REPO / "configs" / "worked-example.yaml"

# The published numbers of the sheet, to 1e-6 relative.
Z2 = [0.21, -0.24]
A2 = [0.552308, 0.440286]
Z3 = [-0.321664]
A3 = [0.420270]
LOSS = 0.115070
DELTA3 = [-0.116883]
DELTA2 = [0.00867027, -0.00288039]
GRAD_W3 = [[-0.0645553, -0.0514619]]
GRAD_W2 = [
    [0.00693622, 0.00606919, 0.000867027],
    [-0.00230432, -0.00201628, -0.000288039],
]
W2_NEW = [[0.193064, 0.293931, 0.399133], [-0.197696, 0.102016, 0.500288]]
B2_NEW = [-0.208670, -0.197120]
W3_NEW = [[-0.235445, 0.151462]]
B3_NEW = [-0.0831171]
FINAL_OUTPUT = [0.463774]
FINAL_LOSS = 0.0951464


def _half_unit(value: float) -> float:
    """Half a unit in the sixth significant digit: how far a six-digit published value may be."""
    if value == 0:
        return 0.0
    return 0.5 * 10.0 ** (math.floor(math.log10(abs(value))) - 5)


class Published:
    """Compare with a number published to six significant digits: equal once rounded to six.

    A six-digit number carries up to 5e-6 relative rounding error, so "to 1e-6 relative" is read
    as "the computed value rounds to the published one"; the exact values are checked against an
    independent computation to 1e-9 relative below.
    """

    def __init__(self, expected: Any) -> None:
        self.expected = expected

    def __eq__(self, other: object) -> bool:
        return _close(other, self.expected)

    def __repr__(self) -> str:
        return f"published({self.expected!r})"


def _close(got: Any, expected: Any) -> bool:
    if isinstance(expected, list):
        return (
            isinstance(got, list)
            and len(got) == len(expected)
            and all(_close(g, e) for g, e in zip(got, expected, strict=True))
        )
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return False
    return abs(got - expected) <= _half_unit(expected) * (1 + 1e-9) + 1e-15


def approx(value: Any) -> Published:
    return Published(value)


def _json(run_cli, path: Path | str, *extra: str) -> dict[str, Any]:
    result = run_cli(["step", str(path), "--format", "json", *extra])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return json.loads(result.stdout)


@pytest.fixture
def doc(run_cli) -> dict[str, Any]:
    return _json(run_cli, WORKED)


def test_one_step_with_two_layers(doc: dict[str, Any]) -> None:
    assert len(doc["steps"]) == 1
    step = doc["steps"][0]
    assert step["step"] == 1
    assert [layer["layer"] for layer in step["layers"]] == [2, 3]
    assert [layer["activation"] for layer in step["layers"]] == ["sigmoid", "sigmoid"]


def test_forward_pass(doc: dict[str, Any]) -> None:
    l2, l3 = doc["steps"][0]["layers"]
    assert l2["z"] == approx(Z2)
    assert l2["a"] == approx(A2)
    assert l3["z"] == approx(Z3)
    assert l3["a"] == approx(A3)


def test_loss_before_update(doc: dict[str, Any]) -> None:
    assert doc["steps"][0]["loss"] == approx(LOSS)
    assert doc["initial"]["loss"] == approx(LOSS)
    assert doc["initial"]["output"] == approx(A3)


def test_backward_pass(doc: dict[str, Any]) -> None:
    l2, l3 = doc["steps"][0]["layers"]
    assert l3["delta"] == approx(DELTA3)
    assert l2["delta"] == approx(DELTA2)
    # BP3: ∂C/∂b = δ for one example.
    assert l3["grad_biases"] == approx(DELTA3)
    assert l2["grad_biases"] == approx(DELTA2)


def test_weight_gradients(doc: dict[str, Any]) -> None:
    l2, l3 = doc["steps"][0]["layers"]
    assert l3["grad_weights"] == [approx(row) for row in GRAD_W3]
    assert l2["grad_weights"] == [approx(row) for row in GRAD_W2]


def test_updated_parameters(doc: dict[str, Any]) -> None:
    l2, l3 = doc["steps"][0]["layers"]
    assert l2["weights"] == [approx(row) for row in W2_NEW]
    assert l2["biases"] == approx(B2_NEW)
    assert l3["weights"] == [approx(row) for row in W3_NEW]
    assert l3["biases"] == approx(B3_NEW)


def test_final_forward_pass(doc: dict[str, Any]) -> None:
    assert doc["final"]["output"] == approx(FINAL_OUTPUT)
    assert doc["final"]["loss"] == approx(FINAL_LOSS)


def _double(values: list[float]) -> Any:
    return pytest.approx([2 * v for v in values], rel=1e-12)


def test_mse_doubles_loss_and_output_delta(run_cli, write_config, tmp_path: Path) -> None:
    text = WORKED.read_text(encoding="utf-8")
    assert re.search(r"^loss: quadratic\b", text, re.M)
    path = write_config(tmp_path, re.sub(r"^loss: quadratic\b", "loss: mse", text, flags=re.M))
    quadratic = _json(run_cli, WORKED)["steps"][0]
    mse = _json(run_cli, path)["steps"][0]
    a = mse["layers"][1]["a"][0]
    assert mse["loss"] == pytest.approx((0.9 - a) ** 2, rel=1e-12)
    assert mse["loss"] == approx(0.230141)
    assert mse["loss"] == pytest.approx(2 * quadratic["loss"], rel=1e-12)
    assert mse["layers"][1]["delta"] == _double(quadratic["layers"][1]["delta"])
    assert mse["layers"][0]["delta"] == _double(quadratic["layers"][0]["delta"])
    assert mse["layers"][1]["delta"] == approx([-0.233766])
    # The forward pass of the first step does not depend on the loss.
    assert mse["layers"][1]["a"] == approx(A3)


def test_bundled_mse_example_matches(run_cli) -> None:
    """configs/worked-example-mse.yaml, if bundled, is the same network with loss mse."""
    path = REPO / "configs" / "worked-example-mse.yaml"
    if not path.exists():
        pytest.skip("configs/worked-example-mse.yaml is not bundled")
    quadratic = _json(run_cli, WORKED)["steps"][0]
    step = _json(run_cli, path)["steps"][0]
    assert step["loss"] == pytest.approx(2 * quadratic["loss"], rel=1e-12)
    assert step["layers"][1]["delta"] == _double(quadratic["layers"][1]["delta"])


def test_exact_values_match_an_independent_computation(doc: dict[str, Any]) -> None:
    """The sheet's network computed here in plain numpy; the JSON must agree to 1e-9 relative."""
    import numpy as np

    def sigmoid(z: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-z))

    x, y = np.array([0.8, 0.7, 0.1]), np.array([0.9])
    w2, b2 = np.array([[0.2, 0.3, 0.4], [-0.2, 0.1, 0.5]]), np.array([-0.2, -0.2])
    w3, b3 = np.array([[-0.3, 0.1]]), np.array([-0.2])
    z2 = w2 @ x + b2
    a2 = sigmoid(z2)
    z3 = w3 @ a2 + b3
    a3 = sigmoid(z3)
    loss = 0.5 * np.sum((y - a3) ** 2)
    d3 = (a3 - y) * a3 * (1 - a3)
    d2 = (w3.T @ d3) * a2 * (1 - a2)
    gw3, gw2 = np.outer(d3, a2), np.outer(d2, x)
    w2n, b2n, w3n, b3n = w2 - gw2, b2 - d2, w3 - gw3, b3 - d3
    out = sigmoid(w3n @ sigmoid(w2n @ x + b2n) + b3n)
    final = 0.5 * np.sum((y - out) ** 2)

    def ex(v: Any) -> Any:
        return pytest.approx(np.asarray(v).tolist(), rel=1e-9, abs=1e-15)

    l2, l3 = doc["steps"][0]["layers"]
    assert (l2["z"], l2["a"], l3["z"], l3["a"]) == (ex(z2), ex(a2), ex(z3), ex(a3))
    assert doc["steps"][0]["loss"] == ex(loss)
    assert (l3["delta"], l2["delta"]) == (ex(d3), ex(d2))
    assert [ex(r) for r in gw3] == l3["grad_weights"]
    assert [ex(r) for r in gw2] == l2["grad_weights"]
    assert [ex(r) for r in w2n] == l2["weights"]
    assert [ex(r) for r in w3n] == l3["weights"]
    assert (l2["biases"], l3["biases"]) == (ex(b2n), ex(b3n))
    assert (doc["final"]["output"], doc["final"]["loss"]) == (ex(out), ex(final))


def test_published_comparison_can_fail() -> None:
    assert approx(0.000867027) != 0.000867
    assert approx(0.000867027) == 0.0008670274
    assert approx([0.21, -0.24]) != [0.21, 0.24]
    assert approx([[0.1]]) != [0.1]


# ---- the default table ------------------------------------------------------------------------

NUMBER = re.compile(r"(?<![\w.])-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _significant_digits(token: str) -> int:
    mantissa = re.split(r"[eE]", token.lstrip("-+"))[0].replace(".", "").lstrip("0")
    return len(mantissa)


def _shown(value: float, tokens: list[str]) -> bool:
    """Some token in the output is `value` to at least three significant digits."""
    for token in tokens:
        shown = float(token)
        if shown == value:
            return True  # exact, e.g. 0.21
        if _significant_digits(token) < 3 or shown == 0 or (shown < 0) != (value < 0):
            continue
        exponent = math.floor(math.log10(abs(value)))
        # The token must agree with the value to within half a unit of its third digit.
        if abs(shown - value) <= 0.5 * 10.0 ** (exponent - 2) * (1 + 1e-9):
            return True
    return False


def _flatten(values: Any) -> list[float]:
    if isinstance(values, list):
        return [v for item in values for v in _flatten(item)]
    return [float(values)]


ALL_VALUES = _flatten(
    [
        *(Z2, A2, Z3, A3, LOSS, DELTA3, DELTA2, GRAD_W3, GRAD_W2),
        *(W2_NEW, B2_NEW, W3_NEW, B3_NEW, FINAL_OUTPUT, FINAL_LOSS),
    ]
)


@pytest.fixture
def table(run_cli) -> str:
    result = run_cli(["step", str(WORKED), "--no-color"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result.stdout


def test_table_is_plain_text(table: str) -> None:
    assert "\x1b[" not in table
    assert "Traceback" not in table
    # Nothing cut off for lack of width.
    assert "…" not in table


@pytest.mark.parametrize("value", ALL_VALUES, ids=[f"{v:.6g}" for v in ALL_VALUES])
def test_table_shows_value_to_three_significant_digits(table: str, value: float) -> None:
    tokens = NUMBER.findall(table)
    assert _shown(value, tokens), f"{value} is not shown to 3 significant digits"


def test_table_keeps_small_gradients(table: str) -> None:
    # The issue's own example: 0.000867 must not be rounded to 0.001 or 0.
    tokens = NUMBER.findall(table)
    assert any(t.startswith("0.000867") for t in tokens)
    assert any(t.startswith("-0.000288") for t in tokens)


def test_significant_digit_check_can_fail() -> None:
    assert not _shown(0.000867027, ["0.001", "0.00087", "0.000"])
    assert _shown(0.000867027, ["0.000867"])
    assert not _shown(-0.116883, ["0.116883"])
