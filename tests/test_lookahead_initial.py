"""A look-ahead rule (Nesterov) runs a step's passes at θ̃, but the run's initial pass is at θ:
with --round, θ̃ = θ rounded differs from θ, and the document's `initial` must still be the pass
before training (the same for every update rule), so that `check` takes the step's own rounded
document as a sheet worked right."""

from __future__ import annotations

import json

import pytest
import yaml

from gradcalc.functions.optimizers import OPTIMIZERS

AHEAD = [r.name for r in OPTIMIZERS if r.lookahead is not None]
DENSE = [
    {
        "weights": [[0.123456, -0.654321], [0.333333, 0.271828]],
        "biases": [0.1, -0.2],
        "activation": "tanh",
    },
    {"weights": [[0.314159, -0.577215]], "biases": [0.05], "activation": "sigmoid"},
]
NETWORKS = {
    "dense": {"inputs": [[0.5, -0.3], [0.2, 0.9]], "layers": DENSE},
    "conv": {
        "inputs": [[[0.5, -0.3, 0.8]], [[0.2, 0.9, -0.4]]],
        "layers": [
            {
                "type": "conv1d",
                "kernels": [[[0.412345, -0.276543]], [[0.187654, 0.355555]]],
                "activation": "relu",
            },
            {"type": "flatten"},
            {
                "weights": [[0.111111, -0.222222, 0.333333, 0.444444]],
                "biases": [0.0],
                "activation": "sigmoid",
            },
        ],
    },
}


def _doc(run_cli, tmp_path, network: str, rule: str, decimals: int) -> tuple[str, dict]:
    config = {
        **NETWORKS[network],
        "targets": [[1.0], [0.0]],
        "loss": "quadratic",
        "learning_rate": 0.5,
        "optimizer": rule,
        "steps": 2,
    }
    path = tmp_path / f"{network}-{rule}.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli(["step", str(path), "--round", str(decimals), "--format", "json"])
    assert result.exit_code == 0, result.output
    return str(path), json.loads(result.stdout)


@pytest.mark.parametrize("decimals", [1, 2, 3])
@pytest.mark.parametrize("network", list(NETWORKS))
@pytest.mark.parametrize("rule", AHEAD)
def test_the_initial_pass_is_at_theta_and_check_takes_the_rounded_document(
    run_cli, tmp_path, rule, network, decimals
):
    path, doc = _doc(run_cli, tmp_path, network, rule, decimals)
    _, plain = _doc(run_cli, tmp_path, network, "sgd", decimals)
    assert doc["initial"] == plain["initial"]  # before training, whatever the rule
    assert doc["initial"]["loss"] == doc["steps"][0]["loss"]  # the cost of step 1 at θ
    sheet = tmp_path / "sheet.json"
    sheet.write_text(json.dumps(doc))
    graded = run_cli(["check", path, str(sheet), "--decimals", str(decimals)])
    assert graded.exit_code == 0, graded.output
