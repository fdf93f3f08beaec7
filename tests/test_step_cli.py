"""The command line through click's CliRunner (JSON parsed as data), and once as a real process."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import click
import pytest

import gradcalc
from gradcalc.cli import COMMANDS, cli

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"
WORKED = CONFIGS / "worked-example.yaml"

BATCH = """\
inputs:
  - [0.8, 0.7, 0.1]
  - [0.1, -0.4, 0.9]
  - [-0.6, 0.3, 0.2]
targets: [[0.9], [0.1], [0.5]]
loss: quadratic
learning_rate: 0.5
reduction: {reduction}
layers:
  - weights: [[0.2, 0.3, 0.4],
              [-0.2, 0.1, 0.5]]
    biases: [-0.2, -0.2]
    activation: tanh
  - weights: [[-0.3, 0.1]]
    biases: [-0.2]
    activation: sigmoid
"""

# A linear unit with too large a learning rate: |w| grows ×9 per step until the loss overflows.
DIVERGING = """\
input: [1.0]
target: [0.0]
loss: quadratic
learning_rate: 10
steps: 1000
layers:
  - weights: [[1.0]]
    biases: [0.0]
    activation: identity
"""


def _strict_json(text: str) -> Any:
    """json.loads that refuses NaN and Infinity (Python's json accepts them by default)."""

    def refuse(name: str) -> Any:
        raise ValueError(f"non-finite number {name} in the JSON")

    return json.loads(text, parse_constant=refuse)


def _floats(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _floats(v)]
    if isinstance(value, float):
        return [value]
    return []


def step_json(run_cli, *args: str, input: str | None = None) -> dict[str, Any]:
    result = run_cli(["step", *args, "--format", "json"], input=input)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return _strict_json(result.stdout)


# ---- version and help ----------------------------------------------------------------------


def test_version(run_cli) -> None:
    result = run_cli(["--version"])
    assert result.exit_code == 0
    assert gradcalc.__version__ in result.stdout
    assert "gradcalc" in result.stdout


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_group_help(run_cli, flag: str) -> None:
    result = run_cli([flag])
    assert result.exit_code == 0
    assert "Example:" in result.stdout
    for name in cli.list_commands(click.Context(cli)):
        assert name in result.stdout
    assert "step" in result.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_help_has_an_example(run_cli, name: str) -> None:
    result = run_cli([name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.stdout
    # "every command's help ends with an example": the last paragraph (click wraps it).
    assert result.stdout.strip().split("\n\n")[-1].lstrip().startswith("Example:")


def test_unknown_command_suggests(run_cli) -> None:
    result = run_cli(["stpe"])
    assert result.exit_code == 2
    assert "step" in result.stderr
    assert "Traceback" not in result.output


# ---- examples ------------------------------------------------------------------------------


def test_examples_lists_every_config(run_cli) -> None:
    result = run_cli(["examples"])
    assert result.exit_code == 0, result.output
    names = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
    assert "worked-example" in names
    lines = result.stdout.strip().splitlines()
    for name in names:
        line = next((ln for ln in lines if ln.split()[:1] == [name]), None)
        assert line is not None, f"{name} not listed"
        assert line[len(name) :].strip(), f"{name} has no description"


def test_examples_json(run_cli) -> None:
    result = run_cli(["examples", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = _strict_json(result.stdout)
    assert sorted(r["name"] for r in rows) == sorted(p.stem for p in CONFIGS.glob("*.yaml"))
    for row in rows:
        assert row["description"].strip(), row
        assert Path(row["path"]).is_file()


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIGS.glob("*.yaml")))
def test_every_example_runs(run_cli, name: str) -> None:
    doc = step_json(run_cli, "--example", name)
    assert doc["steps"], name
    assert all(math.isfinite(f) for f in _floats(doc))


def test_issue_examples_are_bundled() -> None:
    """Section 7: a softmax + CE batch, tanh + mse over steps, relu + huber, a prelu network."""
    import yaml

    seen = set()
    for path in CONFIGS.glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        loss = data["loss"] if isinstance(data["loss"], str) else data["loss"]["name"]
        layers = data["layers"]
        if isinstance(layers, dict):  # the sizes: shorthand
            named = [layers["activation"], layers.get("output", layers["activation"])]
        else:
            named = [layer.get("activation", "identity") for layer in layers]
        acts = {a if isinstance(a, str) else a["name"] for a in named}
        steps = data.get("steps", 1)
        if loss == "cross_entropy" and "softmax" in acts and "inputs" in data:
            seen.add("softmax-ce-batch")
        if loss == "mse" and "tanh" in acts and steps > 1:
            seen.add("tanh-mse-steps")
        if loss == "huber" and "relu" in acts:
            seen.add("relu-huber")
        if "prelu" in acts:
            seen.add("prelu")
    assert seen == {"softmax-ce-batch", "tanh-mse-steps", "relu-huber", "prelu"}


def test_example_equals_the_file(run_cli) -> None:
    by_name = step_json(run_cli, "--example", "worked-example")
    by_file = step_json(run_cli, str(WORKED))
    # Only the displayed source name may differ.
    by_name.pop("config")
    by_file.pop("config")
    assert by_name == by_file


def test_unknown_example_suggests(run_cli) -> None:
    result = run_cli(["step", "--example", "nosuch"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "nosuch" in result.stderr
    assert "worked-example" in result.stderr  # the list, or a nearest name
    result = run_cli(["step", "--example", "worked-exampel"])
    assert result.exit_code == 2
    assert "did you mean 'worked-example'" in result.stderr
    assert "Traceback" not in result.output


def test_config_and_example_together(run_cli) -> None:
    result = run_cli(["step", str(WORKED), "--example", "worked-example"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_neither_config_nor_example(run_cli) -> None:
    result = run_cli(["step"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# ---- steps and output ----------------------------------------------------------------------


def test_three_steps_decrease_the_loss(run_cli) -> None:
    doc = step_json(run_cli, str(WORKED), "--steps", "3")
    assert [s["step"] for s in doc["steps"]] == [1, 2, 3]
    losses = [s["loss"] for s in doc["steps"]] + [doc["final"]["loss"]]
    assert all(b < a for a, b in pairwise(losses)), losses
    # Each step starts from the previous step's updated parameters.
    for before, after in pairwise(doc["steps"]):
        assert after["layers"][0]["z"] != before["layers"][0]["z"]


def test_each_step_loss_is_before_its_update(run_cli) -> None:
    """Step k's loss is the forward pass with the parameters left by step k − 1."""
    three = step_json(run_cli, str(WORKED), "--steps", "3")
    for k in (1, 2):
        shorter = step_json(run_cli, str(WORKED), "--steps", str(k))
        assert three["steps"][k]["loss"] == pytest.approx(shorter["final"]["loss"], rel=1e-12)
        assert three["steps"][k - 1] == shorter["steps"][k - 1]


def test_steps_override_and_zero_steps(run_cli) -> None:
    doc = step_json(run_cli, str(WORKED), "--steps", "0")
    assert doc["steps"] == []
    assert doc["final"]["loss"] == pytest.approx(0.1150703, rel=1e-6)


def test_learning_rate_override(run_cli) -> None:
    base = step_json(run_cli, str(WORKED))
    half = step_json(run_cli, str(WORKED), "--learning-rate", "0.5")
    assert half["learning_rate"] == 0.5
    g = base["steps"][0]["layers"][1]["grad_biases"][0]
    assert half["steps"][0]["layers"][1]["biases"][0] == pytest.approx(-0.2 - 0.5 * g, rel=1e-12)


def test_json_is_one_finite_document(run_cli) -> None:
    result = run_cli(["step", str(WORKED), "--format", "json", "--steps", "2"])
    assert result.exit_code == 0
    doc = _strict_json(result.stdout)  # one document: trailing garbage would fail to parse
    floats = _floats(doc)
    assert len(floats) > 20
    assert all(math.isfinite(f) for f in floats)
    step = doc["steps"][0]
    assert {"step", "loss", "layers"} <= set(step)
    for layer in step["layers"]:
        assert {
            "layer",
            "activation",
            "z",
            "a",
            "delta",
            "grad_weights",
            "grad_biases",
            "weights",
            "biases",
        } <= set(layer)
    assert {"loss", "output"} <= set(doc["final"])


def test_large_z_stays_finite(run_cli, write_config, tmp_path: Path) -> None:
    """Softmax + cross-entropy and sigmoid with pre-activations of ±1e3: no NaN, exit 0."""
    text = """\
input: [1.0, -1.0]
target: [0, 1, 0]
loss: cross_entropy
learning_rate: 0.1
layers:
  - weights: [[1000.0, 0.0], [0.0, 1000.0]]
    biases: [0.0, 0.0]
    activation: sigmoid
  - weights: [[1000.0, 0.0], [0.0, 1000.0], [-1000.0, -1000.0]]
    biases: [0.0, 0.0, 0.0]
    activation: softmax
"""
    doc = step_json(run_cli, str(write_config(tmp_path, text)))
    assert all(math.isfinite(f) for f in _floats(doc))
    assert doc["steps"][0]["loss"] == pytest.approx(1000.0, rel=1e-6)


@pytest.mark.parametrize(
    ("args", "env"),
    [
        ([], {}),  # piped (CliRunner is not a terminal)
        ([], {"NO_COLOR": "1", "FORCE_COLOR": "1"}),
        (["--no-color"], {"FORCE_COLOR": "1"}),
    ],
    ids=["piped", "NO_COLOR", "--no-color"],
)
def test_no_ansi_escapes(run_cli, args: list[str], env: dict[str, str]) -> None:
    result = run_cli(["step", str(WORKED), *args], env=env)
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.output
    assert "0.000867027" in result.stdout


def test_colour_when_forced(run_cli) -> None:
    """The ANSI check above can fail: with a forced terminal, there are escapes."""
    result = run_cli(["step", str(WORKED)], env={"FORCE_COLOR": "1", "NO_COLOR": None})
    assert result.exit_code == 0
    assert "\x1b[" in result.stdout


def test_diverging_run_exits_1_naming_step_and_quantity(
    run_cli, write_config, tmp_path: Path
) -> None:
    result = run_cli(["step", str(write_config(tmp_path, DIVERGING)), "--format", "json"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    message = result.stderr
    assert message.count("\n") == 1
    assert "step " in message
    step = int(message.split("step ", 1)[1].split(":")[0].split()[0])
    assert 1 < step <= 1000
    assert any(q in message for q in ("loss", "z^", "a^", "δ", "w^", "b^"))
    assert "not finite" in message


def test_diverging_learning_rate_override(run_cli) -> None:
    """The worked example itself, with an absurd η, either stays finite or stops cleanly."""
    result = run_cli(
        ["step", str(WORKED), "--learning-rate", "1e300", "--steps", "20", "--format", "json"]
    )
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 0:
        assert all(math.isfinite(f) for f in _floats(_strict_json(result.stdout)))
    else:
        assert result.exit_code == 1
        assert "step " in result.stderr


# ---- batches -------------------------------------------------------------------------------


def test_batch_rows_per_example(run_cli, write_config, tmp_path: Path) -> None:
    doc = step_json(run_cli, str(write_config(tmp_path, BATCH.format(reduction="mean"))))
    assert doc["examples"] == 3
    step = doc["steps"][0]
    assert len(step["losses"]) == 3
    assert step["loss"] == pytest.approx(sum(step["losses"]) / 3, rel=1e-12)
    widths = {2: 2, 3: 1}
    for layer in step["layers"]:
        for key in ("z", "a", "delta"):
            rows = layer[key]
            assert len(rows) == 3, key
            assert all(isinstance(r, list) and len(r) == widths[layer["layer"]] for r in rows)
    # The batch's gradients are the mean of per-example ones: ∂C/∂b = mean of δ rows.
    out = step["layers"][1]
    assert out["grad_biases"][0] == pytest.approx(sum(r[0] for r in out["delta"]) / 3)
    assert len(doc["final"]["output"]) == 3


def test_batch_sum_is_m_times_mean(run_cli, write_config, tmp_path: Path) -> None:
    mean = step_json(
        run_cli, str(write_config(tmp_path, BATCH.format(reduction="mean"), "mean.yaml"))
    )
    total = step_json(
        run_cli, str(write_config(tmp_path, BATCH.format(reduction="sum"), "sum.yaml"))
    )
    m = 3
    assert total["reduction"] == "sum" and mean["reduction"] == "mean"
    assert total["steps"][0]["loss"] == pytest.approx(m * mean["steps"][0]["loss"], rel=1e-12)
    for lm, ls in zip(mean["steps"][0]["layers"], total["steps"][0]["layers"], strict=True):
        assert ls["delta"] == lm["delta"]  # per example, whatever the reduction
        assert ls["grad_biases"] == pytest.approx([m * g for g in lm["grad_biases"]], rel=1e-12)
        for row_s, row_m in zip(ls["grad_weights"], lm["grad_weights"], strict=True):
            assert row_s == pytest.approx([m * g for g in row_m], rel=1e-12)


def test_batch_table_renders(run_cli, write_config, tmp_path: Path) -> None:
    result = run_cli(
        ["step", str(write_config(tmp_path, BATCH.format(reduction="mean"))), "--no-color"]
    )
    assert result.exit_code == 0, result.output
    assert "Summary" in result.stdout


def test_prelu_json_has_activation_params(run_cli, write_config, tmp_path: Path) -> None:
    text = BATCH.format(reduction="mean").replace(
        "activation: tanh", "activation: {name: prelu, a: 0.2}"
    )
    doc = step_json(run_cli, str(write_config(tmp_path, text)))
    hidden = doc["steps"][0]["layers"][0]
    assert set(hidden["activation_params"]) == {"a"}
    grad = hidden["grad_activation_params"]["a"]
    assert hidden["activation_params"]["a"] == pytest.approx(0.2 - 0.5 * grad, rel=1e-12)
    assert grad != 0


# ---- a real process ------------------------------------------------------------------------


def _process_env() -> dict[str, str]:
    env = dict(os.environ)
    # The checkout's package, whether or not it is installed in this interpreter.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("FORCE_COLOR", None)
    return env


def _check_process(argv: list[str]) -> None:
    proc = subprocess.run(
        [*argv, "step", str(WORKED), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_process_env(),
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    doc = _strict_json(proc.stdout)
    assert doc["final"]["loss"] == pytest.approx(0.0951464, rel=1e-5)

    bad = subprocess.run(
        [*argv, "step", str(REPO / "no-such-config.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        env=_process_env(),
        cwd=REPO,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert "no-such-config.yaml" in bad.stderr

    table = subprocess.run(
        [*argv, "step", str(WORKED)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_process_env(),
        cwd=REPO,
    )
    assert table.returncode == 0
    assert "\x1b[" not in table.stdout  # piped: no colour
    assert "0.000867027" in table.stdout


def test_python_dash_m() -> None:
    _check_process([sys.executable, "-m", "gradcalc"])


def test_console_script() -> None:
    script = shutil.which("gradcalc") or shutil.which(
        "gradcalc", path=str(Path(sys.executable).parent)
    )
    if script is None:
        # Not installed here: the same entry point, run as a module (asserted above too).
        _check_process([sys.executable, "-m", "gradcalc"])
        return
    _check_process([script])
