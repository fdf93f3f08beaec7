"""An answer sheet asks for an activation's parameters after the update only where the step
moves them: a learned one (PReLU's α) is a cell, a fixed one (leaky ReLU's α, ELU's α) is the
config's number and no cell to fill in."""

from __future__ import annotations

import json

import pytest
import yaml

from gradcalc.functions.activations import ACTIVATIONS

WITH_PARAMS = [a for a in ACTIVATIONS if a.params]


def _config(tmp_path, activation) -> str:
    config = {
        "input": [1.0, -2.0],
        "target": [1.0],
        "loss": "quadratic",
        "learning_rate": 0.1,
        "layers": [
            {
                "weights": [[0.1, 0.2], [0.2, -0.1]],
                "biases": [0.1, 0.0],
                "activation": {"name": activation.name},
            },
            {"weights": [[0.3, 0.1]], "biases": [0.2], "activation": "sigmoid"},
        ],
    }
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.parametrize("activation", WITH_PARAMS, ids=lambda a: a.name)
def test_the_template_asks_for_moved_parameters_only(run_cli, tmp_path, activation):
    path = _config(tmp_path, activation)
    template = yaml.safe_load(run_cli(["check", path, "--template"]).stdout)
    learned = [p.name for p in activation.params if p.learnable]
    if learned:
        assert set(template["activation_params"][2]) == {p.name for p in activation.params}
        assert set(template["grad_activation_params"][2]) == set(learned)
    else:
        assert "activation_params" not in template and "grad_activation_params" not in template
    # The step's own document is still graded right in every cell.
    doc = run_cli(["step", path, "--format", "json"]).stdout
    (tmp_path / "answers.json").write_text(doc)
    graded = run_cli(["check", path, str(tmp_path / "answers.json"), "--format", "json"])
    assert graded.exit_code == 0, graded.output
    cells = json.loads(graded.stdout)["cells"]
    moved = {c["quantity"] for c in cells} & {"activation_params", "grad_activation_params"}
    assert bool(moved) == bool(learned)
