"""Issue 15's limits: one rule for every integer option, and bounded depth and work.

Every integer option of every command is a WholeNumber (found by walking the click commands,
so a new option is covered without a new test); a value out of range is one line and exit 2
with the range in words; the help says `N ≥ 1`, never click's `[1<=x<=9223372036854775807]`.
A network has at most MAX_LAYERS layers and a run at most MAX_WORK operations, refused before
the first step with the size.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

import gradcalc
from gradcalc.cli import cli
from gradcalc.cli.options import WholeNumber
from gradcalc.errors import GradcalcError
from gradcalc.limits import MAX_LAYERS, MAX_STEPS, MAX_WORK
from gradcalc.step import config

ROOT = Path(__file__).resolve().parent.parent
WORKED = ROOT / "configs" / "worked-example.yaml"


def _one_line(result, status: int, *mentions: str) -> str:
    assert result.exit_code == status, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1, result.stderr
    for text in mentions:
        assert text in result.stderr, result.stderr
    return result.stderr


def _integer_options() -> list[tuple[str, click.Option]]:
    found = []
    ctx = click.Context(cli)
    commands = {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}
    for name, command in sorted({"gradcalc": cli, **commands}.items()):
        assert command is not None
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(
                param.type, click.types._NumberRangeBase | type(click.INT)
            ):
                found.append((name, param))
    return found


INTEGER_OPTIONS = [
    pytest.param(name, option, id=f"{name} {option.opts[0]}") for name, option in _integer_options()
]


def test_the_walk_finds_the_integer_options() -> None:
    names = {(name, option.opts[0]) for name, option in _integer_options()}
    assert {("step", "--every"), ("step", "--max-rows"), ("derive", "--digits")} <= names


@pytest.mark.parametrize(("command", "option"), INTEGER_OPTIONS)
def test_every_integer_option_is_a_whole_number_with_its_range_in_the_help(
    run_cli, command: str, option: click.Option
) -> None:
    assert isinstance(option.type, WholeNumber)
    args = [] if command == "gradcalc" else [command]  # the group's own options
    help_text = run_cli([*args, "--help"]).stdout
    assert "<=x" not in help_text and "x>=" not in help_text
    assert "9223372036854775807" not in help_text
    assert option.type._describe_range() in " ".join(help_text.split())


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--max-rows", "-5"], "--max-rows': must be a whole number ≥ 0, got -5"),
        (["--max-terms", "0"], "--max-terms': must be a whole number ≥ 1, got 0"),
        (["--max-terms", "-5"], "--max-terms': must be a whole number ≥ 1, got -5"),
        (["--every", "0"], "--every': must be a whole number ≥ 1, got 0"),
        (["--last", "-1"], "--last': must be a whole number ≥ 1, got -1"),
        (["--steps", str(MAX_STEPS + 1)], f"from 0 to {MAX_STEPS:,}, got {MAX_STEPS + 1}"),
        (["--round", "13"], "--round': must be a whole number from 0 to 12, got 13"),
        (["--digits", "0"], "--digits': must be a whole number from 1 to 17, got 0"),
        (["--every", "2.5"], "--every': expected a whole number ≥ 1, got '2.5'"),
        (["--max-terms", "-1" + "0" * 5000], "≥ 1, got -1000000000000000000…"),
    ],
)
def test_an_integer_out_of_range_is_one_line_with_the_range(run_cli, args, words) -> None:
    _one_line(run_cli(["step", str(WORKED), *args]), 2, words)


def test_derive_digits_out_of_range(run_cli) -> None:
    result = run_cli(["derive", "tanh", "--at", "1", "--digits", "18"])
    _one_line(result, 2, "--digits': must be a whole number from 1 to 17, got 18")


@pytest.mark.parametrize("huge", ["9223372036854775808", "1" + "0" * 5000])
def test_every_and_last_past_int64_mean_as_many_as_there_are(run_cli, huge: str) -> None:
    """--every 2⁶³ was an OverflowError traceback: every step past the run's length shows the
    first and the last step, as --every 1,000,000 does."""
    base = ["step", str(WORKED), "--steps", "5", "--format", "json"]
    doc = json.loads(run_cli([*base, "--every", huge]).stdout)
    assert [st["step"] for st in doc["steps"]] == [1, 5]
    doc = json.loads(run_cli([*base, "--last", huge]).stdout)
    assert [st["step"] for st in doc["steps"]] == [1, 2, 3, 4, 5]
    result = run_cli(["step", str(WORKED), "--max-terms", huge, "--explain", "--no-color"])
    assert result.exit_code == 0, result.output


# ---- depth and work --------------------------------------------------------------------------

HEAD = "input: [0.5]\ntarget: [0.1]\nloss: mse\nlearning_rate: 0.1\n"
UNIT = "{weights: [[0.9]], biases: [0.0], activation: tanh}"


def test_too_many_layers_are_refused_with_the_count(run_cli, write_config, tmp_path) -> None:
    n = MAX_LAYERS + 1
    path = write_config(tmp_path, HEAD + "layers: [" + ", ".join([UNIT] * n) + "]\n")
    _one_line(run_cli(["step", str(path)]), 2, "line 5: layers:", f"{n:,} layers", "at most")
    sizes = ", ".join(["1"] * (n + 1))
    short = write_config(
        tmp_path, HEAD + f"layers: {{sizes: [{sizes}], activation: tanh, init: zeros}}\n"
    )
    _one_line(run_cli(["step", str(short)]), 2, "layers.sizes:", f"{n:,} layers")


def test_a_hundred_thousand_layers_through_aliases_are_refused_quickly(
    run_cli, write_config, tmp_path
) -> None:
    """Issue 15: 100,000 one-unit layers took 12 s and 533 MB; within every other limit. The
    YAML is read (about 2.3 million Python calls, tests/python_calls.py) and no layer is built:
    building and running them makes some 12 million."""
    from python_calls import within

    text = HEAD + f"layers: [&l {UNIT}, " + ", ".join(["*l"] * 99_999) + "]\n"
    path = write_config(tmp_path, text)
    _one_line(within(5_000_000, run_cli, ["step", str(path)]), 2, "100,000 layers")


def test_the_deepest_network_allowed_runs(run_cli, write_config, tmp_path) -> None:
    path = write_config(tmp_path, HEAD + "layers: [" + ", ".join([UNIT] * MAX_LAYERS) + "]\n")
    doc = json.loads(run_cli(["step", str(path), "--format", "json", "--show", "final"]).stdout)
    assert doc["sizes"] == [1] * (MAX_LAYERS + 1)


def _work(spec: config.NetworkSpec, steps: int) -> int:
    params = sum(layer.weights.size + layer.biases.size for layer in spec.layers)
    return steps * (spec.x.shape[0] + 8) * (params + 500 * len(spec.layers))


def test_a_run_too_long_is_refused_before_the_first_step(run_cli, write_config, tmp_path):
    path = write_config(
        tmp_path,
        "inputs: {file: x.npy}\ntargets: {file: y.npy}\nloss: mse\nlearning_rate: 0.1\n"
        "layers: {sizes: [200, 300, 10], activation: sigmoid, init: he_normal}\n",
    )
    import numpy as np

    np.save(tmp_path / "x.npy", np.zeros((64, 200)))
    np.save(tmp_path / "y.npy", np.zeros((64, 10)))
    spec = config.load(str(path))
    steps = 100_000
    assert _work(spec, steps) > MAX_WORK
    with pytest.raises(GradcalcError, match="operations"):
        config.check_work(spec, steps)
    result = run_cli(["step", str(path), "--steps", str(steps), "--show", "summary"])
    message = _one_line(result, 2, "100,000 steps × (64 examples + 8) × (63,310 parameters")
    assert "operations" in message and "fewer steps" in message
    assert result.stdout == ""  # refused before the header, not after a step
    # The Python API is bounded by the same rule.
    with pytest.raises(GradcalcError, match="operations"):
        gradcalc.run(spec, steps=steps)


def test_a_long_run_of_a_small_network_is_still_allowed() -> None:
    """The documented million steps of the worked example stay inside the bound."""
    spec = config.load(str(WORKED))
    assert _work(spec, MAX_STEPS) <= MAX_WORK
    config.check_work(spec, MAX_STEPS)  # does not raise
    with pytest.raises(GradcalcError):
        config.check_work(spec, 10 * MAX_STEPS)
