"""The dense and the layered JSON documents are one contract written by one writer
(gradcalc/step/json.py; gradcalc/layers/views.py adds what layer types need): the same network
run both ways writes the same settings, costs, activation parameters, update-rule state and tail,
and the layered head adds `shapes` and `layer_types` right after `sizes`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradcalc.functions.optimizers import OPTIMIZERS

# A batch, an L2 penalty and a learned PReLU slope: every optional key of a step record.
NETWORK = """\
inputs: [[0.5, -1.0], [-0.8, 0.4], [1.5, 0.25]]
targets: [[0.25, 1.0], [0.75, 0.0], [0.5, 0.5]]
loss: mse
learning_rate: 0.3
weight_decay: 0.05
optimizer: {rule}
steps: 3
layers:
{flatten}  - weights: [[0.7, 0.3], [-0.4, 0.9]]
    biases: [0.0, -0.1]
    activation: {{name: prelu, a: 0.25}}
  - weights: [[1.2, -0.8], [0.5, 0.25]]
    biases: [0.1, -0.2]
    activation: sigmoid
"""


def _documents(run_cli: Any, tmp_path: Path, rule: str, fmt: str = "json") -> tuple[Any, Any]:
    """The network run dense, and run layered (a flatten first: the identity on a vector)."""
    docs = []
    for name, flatten in (("dense", ""), ("layered", "  - type: flatten\n")):
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        path = folder / "net.yaml"
        path.write_text(NETWORK.format(rule=rule, flatten=flatten), encoding="utf-8")
        result = run_cli(["step", str(path), "--format", fmt])
        assert result.exit_code == 0, result.stderr
        docs.append([json.loads(line) for line in result.stdout.splitlines()])
    return docs[0], docs[1]


def _close(got: Any, want: Any) -> None:
    np.testing.assert_allclose(np.asarray(got, float), np.asarray(want, float), rtol=1e-12)


def _prelu_sigmoid_mse(w2, b2, a, w3, b3, x, y) -> np.ndarray:
    """Each example's cost, written apart from the engine: PReLU, then sigmoid, then MSE."""
    z2 = x @ np.asarray(w2).T + b2
    a2 = np.where(z2 > 0, z2, a * z2)
    a3 = 1.0 / (1.0 + np.exp(-(a2 @ np.asarray(w3).T + b3)))
    return np.mean((y - a3) ** 2, axis=1)


@pytest.mark.parametrize("rule", OPTIMIZERS, ids=lambda r: r.name)
def test_dense_and_layered_documents_agree(run_cli: Any, tmp_path: Path, rule: Any) -> None:
    (dense,), (layered,) = _documents(run_cli, tmp_path, rule.name)

    keys = list(dense)
    at = keys.index("sizes") + 1
    assert list(layered) == [*keys[:at], "shapes", "layer_types", *keys[at:]]
    assert layered["shapes"] == [[2], [2], [2], [2]]
    assert layered["layer_types"] == ["flatten", "dense", "dense"]
    assert layered["sizes"] == [2, *dense["sizes"]]
    for key in set(keys) - {"config", "sizes", "steps", "initial", "final", "parameters"}:
        assert layered[key] == dense[key], key

    assert len(dense["steps"]) == len(layered["steps"]) == 3
    for ours, theirs in zip(dense["steps"], layered["steps"], strict=True):
        costs = [k for k in ours if k != "layers"]
        assert [k for k in theirs if k != "layers"] == costs
        for key in costs:
            if key == "lookahead":
                assert list(theirs[key]) == list(ours[key])
                for name in ours[key]:
                    _close(theirs[key][name], ours[key][name])
            else:
                _close(theirs[key], ours[key])
        # The dense layers come after the flatten, one layer number on.
        for one, other in zip(ours["layers"], theirs["layers"][1:], strict=True):
            assert other["layer"] == one["layer"] + 1
            for key in (
                "activation_params",
                "grad_activation_params",
                "activation_params_lookahead",
            ):
                assert (key in other) == (key in one), key
                for name, value in one.get(key, {}).items():
                    _close(other[key][name], value)
            if "weights_lookahead" in one:
                _close(other["params_lookahead"]["weights"], one["weights_lookahead"])
                _close(other["params_lookahead"]["biases"], one["biases_lookahead"])
            assert set(other["optimizer_state"]) == set(one["optimizer_state"])
            for kind, arrays in one["optimizer_state"].items():
                assert set(other["optimizer_state"][kind]) == set(arrays)
                for name, value in arrays.items():
                    _close(other["optimizer_state"][kind][name], value)

    for end in ("initial", "final"):
        assert list(layered[end]) == list(dense[end])
        for key in dense[end]:
            _close(layered[end][key], dense[end][key])


@pytest.mark.parametrize(
    "rule", [r for r in OPTIMIZERS if r.lookahead is not None], ids=lambda r: r.name
)
def test_layered_lookahead_has_each_examples_cost(run_cli: Any, tmp_path: Path, rule: Any) -> None:
    """A batch's look-ahead cost per example (as a dense run's has): the costs at θ̃ the dense
    record gives, by an independent forward pass, and their mean is the look-ahead data cost."""
    (dense,), (layered,) = _documents(run_cli, tmp_path, rule.name)
    x = np.array([[0.5, -1.0], [-0.8, 0.4], [1.5, 0.25]])
    y = np.array([[0.25, 1.0], [0.75, 0.0], [0.5, 0.5]])
    for ours, theirs in zip(dense["steps"], layered["steps"], strict=True):
        hidden, top = ours["layers"]
        want = _prelu_sigmoid_mse(
            hidden["weights_lookahead"],
            hidden["biases_lookahead"],
            hidden.get("activation_params_lookahead", hidden["activation_params"])["a"],
            top["weights_lookahead"],
            top["biases_lookahead"],
            x,
            y,
        )
        _close(theirs["lookahead"]["losses"], want)
        # The layered record alone (its θ̃ and ã) gives the same costs.
        hidden, top = (layer["params_lookahead"] for layer in theirs["layers"][1:])
        a = theirs["layers"][1]["activation_params_lookahead"]["a"]
        mine = _prelu_sigmoid_mse(*hidden.values(), a, *top.values(), x, y)
        _close(theirs["lookahead"]["losses"], mine)
        _close(np.mean(theirs["lookahead"]["losses"]), theirs["lookahead"]["data_loss"])


def test_jsonl_tail_is_the_document_without_steps(run_cli: Any, tmp_path: Path) -> None:
    """--format jsonl: the step records, then head and tail in one line, for both kinds."""
    for doc, lines in zip(
        _documents(run_cli, tmp_path, "nesterov"),
        _documents(run_cli, tmp_path, "nesterov", "jsonl"),
        strict=True,
    ):
        whole = dict(doc[0])
        assert lines[:-1] == whole.pop("steps")
        assert lines[-1] == whole


@pytest.mark.parametrize(
    "rule", [r for r in OPTIMIZERS if r.lookahead is not None], ids=lambda r: r.name
)
def test_layered_lookahead_document_grades_as_its_own_answers(
    run_cli: Any, tmp_path: Path, rule: Any
) -> None:
    """`check` reads a layered document with every look-ahead key as an answer sheet."""
    path = tmp_path / "net.yaml"
    path.write_text(NETWORK.format(rule=rule.name, flatten="  - type: flatten\n"), "utf-8")
    doc = tmp_path / "doc.json"
    doc.write_text(run_cli(["step", str(path), "--format", "json"]).stdout, "utf-8")
    assert "activation_params_lookahead" in json.loads(doc.read_text())["steps"][0]["layers"][1]
    result = run_cli(["check", str(path), str(doc), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert all(c["verdict"] == "correct" for c in json.loads(result.stdout)["cells"])


@pytest.mark.parametrize("example", ["rnn-bptt", "lstm-step", "conv-worked-example"])
def test_layered_head_says_where_a_sequence_is_costed(run_cli: Any, example: str) -> None:
    """`loss_at` (the config's, every or last) follows `layer_types` for a sequence input, and
    is absent for any other; jsonl's last line has it too."""
    import yaml

    path = Path(__file__).resolve().parents[1] / "configs" / f"{example}.yaml"
    want = yaml.safe_load(path.read_text(encoding="utf-8")).get("loss_at")
    for fmt in ("json", "jsonl"):
        doc = json.loads(run_cli(["step", str(path), "--format", fmt]).stdout.splitlines()[-1])
        keys = list(doc)
        if want is None:
            assert "loss_at" not in doc
        else:
            assert doc["loss_at"] == want
            assert keys[keys.index("layer_types") + 1] == "loss_at"


def test_answers_made_with_another_loss_at_are_refused(run_cli: Any, tmp_path: Path) -> None:
    path = Path(__file__).resolve().parents[1] / "configs" / "rnn-bptt.yaml"
    doc = json.loads(run_cli(["step", str(path), "--format", "json"]).stdout)
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps(doc), "utf-8")
    assert run_cli(["check", str(path), str(answers)]).exit_code == 0
    answers.write_text(json.dumps({**doc, "loss_at": "last"}), "utf-8")
    result = run_cli(["check", str(path), str(answers)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"Error: {answers}, line 1: loss_at: the answers were made with loss_at: last, "
        "the config's is every"
    ]
