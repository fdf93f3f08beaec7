"""A problem sheet states every setting a hand calculation needs: the update rule with its
hyperparameters, how a batch's costs combine, weight decay, and the cost's and the activations'
own parameters. Without them a variant whose rule is Adam, or whose batch sums, cannot be
worked from its sheet alone."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gradcalc.functions.optimizers import OPTIMIZERS

DENSE = {
    "inputs": [[0.5, -0.25], [1.0, 0.75]],
    "targets": [[1.0], [0.0]],
    "learning_rate": {"choice": [0.5, 0.25]},
    "layers": [
        {"weights": [[0.1, 0.2], [0.2, -0.1]], "biases": [0.1, 0.0], "activation": "tanh"},
        {"weights": [[0.3, 0.1]], "biases": [0.2], "activation": "sigmoid"},
    ],
}
CONV = {
    "inputs": [[[1, 2, 0], [0, 1, 3]], [[2, 0, 1], [1, 1, 0]]],
    "targets": [[1.0], [0.0]],
    "learning_rate": {"choice": [0.5, 0.25]},
    "layers": [
        {
            "type": "conv1d",
            "kernels": [[[1, -1], [0, 1]], [[0.5, 0.5], [1, 0]]],
            "activation": "relu",
        },
        {"type": "flatten"},
        {"weights": [[0.1, 0.2, -0.1, 0.3]], "biases": [0.0], "activation": "sigmoid"},
    ],
}


def _sheets(tmp_path: Path, template: dict) -> tuple[str, str]:
    from conftest import _run_cli

    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(template))
    out = tmp_path / "out"
    result = _run_cli(["generate", str(path), "--count", "1", "-o", str(out), "--no-pdf"])
    assert result.exit_code == 0, result.output
    folder = next(p for p in out.iterdir() if p.is_dir())
    return (folder / "sheet.md").read_text(), (folder / "sheet.tex").read_text()


@pytest.mark.parametrize("base", [DENSE, CONV], ids=["dense", "layered"])
@pytest.mark.parametrize("rule", OPTIMIZERS, ids=lambda r: r.name)
def test_the_sheet_states_the_update_rule_and_its_hyperparameters(tmp_path, rule, base):
    hyper = {p.name: p.default * 0.9 if p.default else 0.01 for p in rule.params}
    config = {**base, "loss": "quadratic", "optimizer": {"name": rule.name, **hyper}}
    md, tex = _sheets(tmp_path, config)
    if rule.name == "sgd":
        assert "update rule" not in md
        return
    assert f"The update rule is `{rule.name}`" in md
    assert f"\\texttt{{{rule.name}}}" in tex
    for equation in rule.equations:
        assert equation.text in md
        assert equation.tex in tex
    for p in rule.params:
        label = p.written.text if p.written else p.label
        assert f"{label} = {hyper[p.name]:.12g}" in md, (p.name, md)


@pytest.mark.parametrize("base", [DENSE, CONV], ids=["dense", "layered"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_the_sheet_says_how_a_batch_combines(tmp_path, base, reduction):
    md, tex = _sheets(tmp_path, {**base, "loss": "quadratic", "reduction": reduction})
    sentence = f"The cost of the batch is the {reduction} of the 2 examples' costs"
    assert sentence in md and sentence in tex


def test_one_example_says_nothing_of_a_batch(tmp_path):
    one = {**DENSE, "input": DENSE["inputs"][0], "target": DENSE["targets"][0]}
    del one["inputs"], one["targets"]
    md, _ = _sheets(tmp_path, {**one, "loss": "quadratic"})
    assert "of the batch" not in md and "Weight decay" not in md


@pytest.mark.parametrize("base", [DENSE, CONV], ids=["dense", "layered"])
def test_the_sheet_states_weight_decay_and_which_parameters_it_takes(tmp_path, base):
    md, tex = _sheets(tmp_path, {**base, "loss": "quadratic", "weight_decay": 0.05})
    assert "Weight decay λ = 0.05" in md and "\\lambda = 0.05" in tex
    which = "K, w" if base is CONV else "(w;"
    assert which in md


def test_the_sheet_states_the_cost_and_activation_parameters(tmp_path):
    layers = [dict(layer) for layer in DENSE["layers"]]
    layers[0]["activation"] = {"name": "leaky_relu", "alpha": 0.2}
    md, tex = _sheets(
        tmp_path, {**DENSE, "layers": layers, "loss": {"name": "huber", "delta": 0.5}}
    )
    assert "The cost's parameters are δ = 0.5." in md and "\\delta  = 0.5" in tex
    assert "layer 2's leaky_relu: α = 0.2" in md and "\\alpha  = 0.2" in tex


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("base", [DENSE, CONV], ids=["dense", "layered"])
def test_a_sheet_with_every_setting_compiles(tmp_path, base):
    layers = [dict(layer) for layer in base["layers"]]
    layers[0]["activation"] = {"name": "leaky_relu", "alpha": 0.2}
    config = {
        **base,
        "layers": layers,
        "loss": {"name": "huber", "delta": 0.5},
        "optimizer": {"name": "adamw", "weight_decay": 0.01},
        "weight_decay": 0.05,
        "reduction": "sum",
    }
    _, tex = _sheets(tmp_path, config)
    (tmp_path / "sheet.tex").write_text(tex)
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "sheet.tex"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]


@pytest.mark.parametrize("base", [DENSE, CONV], ids=["dense", "layered"])
def test_the_prairielearn_problem_states_them_too(tmp_path, base):
    from conftest import _run_cli

    config = {**base, "loss": "quadratic", "optimizer": {"name": "adam"}, "reduction": "sum"}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(config))
    result = _run_cli(
        [
            "generate",
            str(path),
            "--count",
            "1",
            "-o",
            str(tmp_path / "o"),
            "--no-pdf",
            "--format",
            "prairielearn",
        ]
    )
    assert result.exit_code == 0, result.output
    server = next((tmp_path / "o").rglob("server.py")).read_text()
    assert "The update rule is <code>adam</code>" in server
    assert "the sum of the 2 examples" in server
    assert "1 step of adam" in server or "one step of adam" in server
