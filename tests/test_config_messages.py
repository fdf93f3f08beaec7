"""Refusals that say what to do: an initializer's `units` on each recurrent matrix, a
suggestion only where a name was plausibly mistyped, and the article before a layer type."""

from __future__ import annotations

import pytest
import yaml

LSTM = {
    "sequence": [[1.0], [2.0], [3.0]],
    "targets": [[1.0], [0.0], [1.0]],
    "loss": "quadratic",
    "learning_rate": 0.1,
    "layers": [
        {
            "type": "lstm",
            "weight_ih": {"init": "xavier_uniform", "seed": 0, "units": 3},
            "weight_hh": {"init": "xavier_uniform", "seed": 1},
            "biases": {"init": "zeros"},
        },
        {
            "weights": {"init": "xavier_uniform", "seed": 2, "units": 1},
            "biases": [0.0],
            "activation": "sigmoid",
        },
    ],
}


def _write(tmp_path, config) -> str:
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def _json(run_cli, path):
    import json

    result = run_cli(["step", path, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_units_may_be_written_on_every_recurrent_matrix(run_cli, tmp_path, kind):
    """docs/recurrent.md writes `{init: xavier_uniform, seed: 0, units: H}` for either matrix:
    the same H on W_hh is the same network; another H is refused at its key."""
    base = yaml.safe_load(yaml.safe_dump(LSTM))
    base["layers"][0]["type"] = kind
    if kind == "gru":  # b_hn sits inside r ⊙ (W_hn h + b_hn): a GRU needs both vectors
        del base["layers"][0]["biases"]
        base["layers"][0]["bias_ih"] = base["layers"][0]["bias_hh"] = [0.0] * 9
    plain = _json(run_cli, _write(tmp_path, base))
    base["layers"][0]["weight_hh"]["units"] = 3
    assert _json(run_cli, _write(tmp_path, base)) == plain
    base["layers"][0]["weight_hh"]["units"] = 4
    result = run_cli(["step", _write(tmp_path, base)])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "layers[0].weight_hh.units: 4 units, but the layer has H = 3" in line


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("dilation", None), ("activaton", "activation"), ("pading", "padding"), ("kernel", "kernels")],
)
def test_a_suggestion_only_for_a_plausible_typo(run_cli, tmp_path, key, suggestion):
    config = {
        "input": [[1.0, 2.0, 0.0, 1.0]],
        "target": [1.0],
        "loss": "quadratic",
        "learning_rate": 0.1,
        "layers": [
            {"type": "conv1d", "kernels": [[[1.0, -1.0]]], key: 1},
            {"type": "flatten"},
            {"weights": [[1.0, 1.0, 1.0]], "biases": [0.0], "activation": "identity"},
        ],
    }
    result = run_cli(["step", _write(tmp_path, config)])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert f"layers[0].{key}: unknown key in a conv1d layer" in line
    if suggestion:
        assert f"did you mean '{suggestion}'?" in line
    else:
        assert "did you mean" not in line and "expected one of: " in line and "kernels" in line


@pytest.mark.parametrize(("kind", "article"), [("lstm", "an"), ("rnn", "an"), ("gru", "a")])
def test_the_layer_type_takes_its_article(run_cli, tmp_path, kind, article):
    config = yaml.safe_load(yaml.safe_dump(LSTM))
    config["layers"][0]["type"] = kind
    config["layers"][0]["hidden"] = 3
    result = run_cli(["step", _write(tmp_path, config)])
    assert result.exit_code == 2
    assert f"unknown key in {article} {kind} layer" in result.stderr
