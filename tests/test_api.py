"""The public Python API: the README's example runs, and the API agrees with the command line."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import gradcalc

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = ROOT / "configs" / "worked-example.yaml"


def test_readme_python_example_prints_what_its_comments_say(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    code = re.search(r"<!-- python-api -->\n```python\n(.*?)```", README, re.S)
    assert code, "the README's Python API example is missing"
    expected = [c.strip() for c in re.findall(r"# → (.*)$", code.group(1), re.M)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.group(1), "README.md", "exec"), {})
    printed = out.getvalue().splitlines()
    assert len(printed) == len(expected)
    for line, comment in zip(printed, expected, strict=True):
        prefix = comment.split("  (")[0].rstrip("…")
        assert line.startswith(prefix), (line, comment)


def test_to_dict_is_the_json_document(run_cli) -> None:
    trace = gradcalc.run(gradcalc.load(EXAMPLE), steps=3)
    result = run_cli(["step", str(EXAMPLE), "--steps", "3", "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(json.dumps(trace.to_dict())) == json.loads(result.stdout)


def test_from_dict_and_from_yaml_match_the_file() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    data["layers"][0]["weights"] = np.array(data["layers"][0]["weights"])  # arrays count as lists
    data["input"] = tuple(data["input"])
    by_file = gradcalc.run(gradcalc.load(str(EXAMPLE))).to_dict()
    by_yaml = gradcalc.run(gradcalc.from_yaml(text, "worked-example.yaml")).to_dict()
    by_dict = gradcalc.run(gradcalc.from_dict(data)).to_dict()
    for doc in (by_yaml, by_dict):
        assert doc["steps"] == by_file["steps"] and doc["final"] == by_file["final"]


def test_derive_agrees_with_the_command(run_cli) -> None:
    trace = gradcalc.derive("softplus", at=[0.5, -1.0])
    result = run_cli(["derive", "softplus", "--at", "0.5,-1", "--format", "json"])
    assert trace.to_dict() == json.loads(result.stdout)
    # softplus' = σ, proven by a second route
    assert trace.derivative == pytest.approx([1 / (1 + np.exp(-0.5)), 1 / (1 + np.exp(1.0))])


def test_derive_loss_with_target_and_params() -> None:
    trace = gradcalc.derive("huber", at=[1.0, 0.1], target=[0.0, 0.0], params={"delta": 0.5})
    # Huber is the mean over the units: ∂/∂a_j = clip(a_j − y_j, ±δ) / n
    assert trace.gradient == pytest.approx([0.5 / 2, 0.1 / 2])


def test_round_to_keeps_the_exact_run() -> None:
    trace = gradcalc.run(gradcalc.load(EXAMPLE), round_to=3)
    assert trace.round_to == 3 and trace.exact is not None and trace.exact.round_to is None
    assert trace.final.loss == round(trace.final.loss, 3)
    assert trace.exact.final.loss == pytest.approx(0.0951464277, rel=1e-9)


@pytest.mark.parametrize(
    "data, path",
    [
        (
            {"input": [1], "target": [1], "loss": "quadratc", "learning_rate": 1, "layers": []},
            ("loss",),
        ),
        ({"input": [1.0], "target": [1.0], "loss": "quadratic", "learning_rate": -1}, ()),
        ({1: 2}, ()),
        ({"input": [object()]}, ("input", 0)),
    ],
)
def test_from_dict_errors_are_config_errors(data, path) -> None:
    with pytest.raises(gradcalc.ConfigError) as info:
        gradcalc.from_dict(data)
    assert info.value.source == "<dict>" and info.value.line is None
    assert info.value.path[: len(path)] == path
    assert isinstance(info.value, gradcalc.GradcalcError)


def test_config_error_carries_file_key_path_and_line(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    text = EXAMPLE.read_text(encoding="utf-8")
    bad.write_text(text.replace("activation: sigmoid", "activation: sigmod", 1))
    with pytest.raises(gradcalc.ConfigError) as info:
        gradcalc.load(bad)
    assert info.value.source == str(bad)
    assert info.value.path[-1] == "activation" and info.value.line is not None
    assert "did you mean 'sigmoid'" in str(info.value)


@pytest.mark.parametrize("kwargs", [{"steps": -1}, {"steps": 1.5}, {"learning_rate": 0.0}])
def test_run_refuses_bad_arguments(kwargs) -> None:
    with pytest.raises(gradcalc.GradcalcError):
        gradcalc.run(gradcalc.load(EXAMPLE), **kwargs)


def test_a_diverging_run_is_a_numeric_error() -> None:
    net = gradcalc.from_dict(
        {
            "input": [1e150],
            "target": [0.0],
            "loss": "quadratic",
            "learning_rate": 1e150,
            "layers": [{"weights": [[1.0]], "biases": [0.0], "activation": "identity"}],
        }
    )
    with pytest.raises(gradcalc.NumericError):
        gradcalc.run(net, steps=3)


def test_traces_display_as_their_tables() -> None:
    from rich.console import Console

    console = Console(width=120, record=True, file=io.StringIO(), color_system=None)
    console.print(gradcalc.run(gradcalc.load(EXAMPLE)))
    text = console.export_text()
    assert "0.0951464" in text and "δ" in text
    bundle = gradcalc.derive("sigmoid", at=0.3)._repr_mimebundle_()
    assert "0.244458" in bundle["text/plain"]


def test_import_gradcalc_stays_cheap() -> None:
    code = "import sys, gradcalc; print([m for m in ('numpy', 'yaml', 'rich') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_py_typed_ships() -> None:
    assert (Path(gradcalc.__file__).parent / "py.typed").exists()
