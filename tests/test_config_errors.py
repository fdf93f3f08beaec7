"""The config loader's refusals, each through the real command `gradcalc step FILE`.

Every refusal must exit with status 2, print nothing on stdout, no traceback, and one short line
on stderr naming the file, the key path and the line where known.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from python_calls import within

from gradcalc.errors import format_path

BASE = """\
input: [0.8, 0.7, 0.1]
target: [0.9]
loss: quadratic
learning_rate: 1.0
steps: 1
layers:
  - weights: [[0.2, 0.3, 0.4],
              [-0.2, 0.1, 0.5]]
    biases: [-0.2, -0.2]
    activation: sigmoid
  - weights: [[-0.3, 0.1]]
    biases: [-0.2]
    activation: sigmoid
"""
# Where things first are in BASE (1-based lines).
LINE: dict[str, int] = {}
for _n, _line in enumerate(BASE.splitlines(), 1):
    LINE.setdefault(_line.split(":")[0].strip(" -"), _n)
SECOND_LAYER = 11  # "  - weights: [[-0.3, 0.1]]"
HIDDEN_ACTIVATION = "    activation: sigmoid\n  - weights"


def edit(text: str, old: str, new: str, count: int = 1) -> str:
    assert text.count(old) == count, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line_of(text: str, fragment: str, occurrence: int = 1) -> int:
    """The 1-based line of the n-th line containing `fragment`."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if fragment in line]
    assert len(hits) >= occurrence, f"{fragment!r} not in the text"
    return hits[occurrence - 1]


def refused(
    run_cli,
    path: Path | str,
    *fragments: str,
    line: int | None = None,
    key: tuple[str | int, ...] | None = None,
    extra: tuple[str, ...] = (),
) -> str:
    """Run `gradcalc step PATH`; assert a clean exit-2 refusal; return the message."""
    result = run_cli(["step", str(path), *extra])
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    assert result.stdout == ""
    message = result.stderr
    assert message.endswith("\n") and message.count("\n") == 1, f"not one line: {message!r}"
    body = message.removeprefix("Error: ").strip()
    assert len(body.replace(str(path), "")) <= 200, f"not short: {body!r}"
    assert str(path) in body, f"the file is not named: {body!r}"
    if line is not None:
        assert f"line {line}" in body, f"'line {line}' not in {body!r}"
    if key is not None:
        assert format_path(key) in body, f"{format_path(key)!r} not in {body!r}"
    for fragment in fragments:
        assert fragment in body, f"{fragment!r} not in {body!r}"
    return body


@pytest.fixture
def refuse(run_cli, write_config, tmp_path: Path):
    """refuse(yaml_text, *fragments, line=..., key=...) -> the message."""

    def check(
        text: str,
        *fragments: str,
        line: int | None = None,
        key: tuple[str | int, ...] | None = None,
    ) -> str:
        path = write_config(tmp_path, text)
        return refused(run_cli, path, *fragments, line=line, key=key)

    return check


def test_base_config_is_accepted(run_cli, write_config, tmp_path: Path) -> None:
    result = run_cli(["step", str(write_config(tmp_path, BASE)), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"][0]["loss"] == pytest.approx(0.1150703, rel=1e-6)


def test_refusal_check_can_fail(run_cli, write_config, tmp_path: Path) -> None:
    with pytest.raises(AssertionError):
        refused(run_cli, write_config(tmp_path, BASE))


# ---- the document --------------------------------------------------------------------------


def test_empty_file(refuse) -> None:
    refuse("", "empty")


def test_only_comments_is_empty(refuse) -> None:
    refuse("# a config\n\n", "empty")


def test_top_level_list(refuse) -> None:
    refuse("- input: [1]\n- target: [1]\n", "mapping", "list", line=1)


def test_top_level_scalar(refuse) -> None:
    refuse("42\n", "mapping", "42", line=1)


def test_yaml_syntax_error_names_the_line(refuse) -> None:
    text = edit(BASE, "target: [0.9]", "target: [0.9\nloss2: x")
    refuse(text, "YAML", line=line_of(text, "loss2"))


def test_yaml_bad_indentation(refuse) -> None:
    text = edit(BASE, "loss: quadratic", "  loss: quadratic")
    refuse(text, "YAML", line=LINE["loss"])


# ---- missing and unknown keys --------------------------------------------------------------


@pytest.mark.parametrize("key", ["input", "target", "loss", "learning_rate", "layers"])
def test_missing_top_level_key(refuse, key: str) -> None:
    if key == "layers":
        text = BASE[: BASE.index("layers:")]
    else:
        lines = [line for line in BASE.splitlines(keepends=True) if not line.startswith(key)]
        text = "".join(lines)
    refuse(text, f"missing key '{key}'")


@pytest.mark.parametrize("key", ["weights", "biases", "activation"])
def test_missing_layer_key(refuse, key: str) -> None:
    lines = BASE.splitlines(keepends=True)
    second = lines[SECOND_LAYER - 1 :]
    if key == "weights":
        second[0] = "  - " + second[1].lstrip()
        del second[1]
    else:
        second = [line for line in second if not line.strip().startswith(key)]
    text = "".join(lines[: SECOND_LAYER - 1] + second)
    refuse(text, f"missing key '{key}'", key=("layers", 1), line=SECOND_LAYER)


def test_unknown_top_level_key_suggests_nearest(refuse) -> None:
    text = edit(BASE, "learning_rate:", "learnig_rate:")
    refuse(text, "learnig_rate", "did you mean 'learning_rate'", line=LINE["learning_rate"])


def test_unknown_layer_key(refuse) -> None:
    text = edit(BASE, "    biases: [-0.2]\n", "    biases: [-0.2]\n    bias: [0.1]\n")
    refuse(text, "did you mean 'biases'", key=("layers", 1, "bias"), line=line_of(text, "bias:"))


def test_duplicate_top_level_key_names_the_duplicate(refuse) -> None:
    text = BASE + "loss: mse\n"
    refuse(text, "duplicate", "'loss'", f"line {LINE['loss']}", line=line_of(text, "loss: mse"))


def test_duplicate_layer_key(refuse) -> None:
    text = edit(BASE, "    biases: [-0.2]\n", "    biases: [-0.2]\n    biases: [0.3]\n")
    refuse(text, "duplicate", "'biases'", line=line_of(text, "biases: [0.3]"))


# ---- wrong types and values ----------------------------------------------------------------


def test_string_weights(refuse) -> None:
    text = edit(BASE, "[[-0.3, 0.1]]", "heavy")
    refuse(text, "heavy", key=("layers", 1, "weights"), line=SECOND_LAYER)


def test_quoted_number_hints_remove_the_quotes(refuse) -> None:
    text = edit(BASE, "learning_rate: 1.0", 'learning_rate: "0.5"')
    refuse(text, "remove the quotes", key=("learning_rate",), line=LINE["learning_rate"])


def test_quoted_weight_names_the_entry(refuse) -> None:
    text = edit(BASE, "[[-0.3, 0.1]]", "[[-0.3, '0.1']]")
    refuse(text, "remove the quotes", key=("layers", 1, "weights", 0, 1), line=SECOND_LAYER)


def test_boolean_is_not_a_number(refuse) -> None:
    text = edit(BASE, "learning_rate: 1.0", "learning_rate: true")
    refuse(text, "boolean", key=("learning_rate",), line=LINE["learning_rate"])


def test_boolean_weight(refuse) -> None:
    text = edit(BASE, "[[-0.3, 0.1]]", "[[-0.3, yes]]")
    refuse(text, "boolean", key=("layers", 1, "weights", 0, 1), line=SECOND_LAYER)


def test_infinite_number(refuse) -> None:
    text = edit(BASE, "biases: [-0.2]\n", "biases: [.inf]\n")
    refuse(text, "finite", key=("layers", 1, "biases", 0), line=line_of(text, ".inf"))


def test_nan(refuse) -> None:
    text = edit(BASE, "input: [0.8, 0.7, 0.1]", "input: [0.8, .nan, 0.1]")
    refuse(text, "finite", key=("input", 1), line=LINE["input"])


def test_integer_too_large_for_a_float(refuse) -> None:
    """A 400-digit integer is a number YAML reads but float() cannot: refuse it as non-finite."""
    text = edit(BASE, "learning_rate: 1.0", "learning_rate: 1" + "0" * 400)
    refuse(text, key=("learning_rate",), line=LINE["learning_rate"])


def test_ragged_matrix(refuse) -> None:
    text = edit(BASE, "[-0.2, 0.1, 0.5]]", "[-0.2, 0.1]]")
    refuse(text, "ragged", key=("layers", 0, "weights", 1), line=line_of(text, "[-0.2, 0.1]]"))


def test_weights_do_not_chain(refuse) -> None:
    text = edit(BASE, "[[-0.3, 0.1]]", "[[-0.3, 0.1, 0.2]]")
    refuse(text, "layers[0]", "2", key=("layers", 1, "weights"), line=SECOND_LAYER)


def test_bias_count(refuse) -> None:
    text = edit(BASE, "biases: [-0.2, -0.2]", "biases: [-0.2]")
    refuse(text, "bias", key=("layers", 0, "biases"), line=line_of(text, "biases: [-0.2]"))


def test_input_size_does_not_match_first_layer(refuse) -> None:
    text = edit(BASE, "input: [0.8, 0.7, 0.1]", "input: [0.8, 0.7]")
    body = refuse(text, "input", key=("layers", 0, "weights"), line=LINE["weights"])
    assert "2" in body and "3" in body


def test_target_size_does_not_match_output(refuse) -> None:
    text = edit(BASE, "target: [0.9]", "target: [0.9, 0.1]")
    refuse(text, "output", key=("target",), line=LINE["target"])


def test_batch_sizes_differ(refuse) -> None:
    text = edit(BASE, "input: [0.8, 0.7, 0.1]", "inputs: [[0.8, 0.7, 0.1], [0.1, 0.2, 0.3]]")
    text = edit(text, "target: [0.9]", "targets: [[0.9], [0.1], [0.5]]")
    body = refuse(text, key=("targets",), line=LINE["target"])
    assert "3" in body and "2" in body


def test_input_with_inputs(refuse) -> None:
    text = BASE + "inputs: [[0.8, 0.7, 0.1]]\n"
    refuse(text, "input", "not both", key=("inputs",), line=line_of(text, "inputs:"))


def test_input_with_targets(refuse) -> None:
    text = edit(BASE, "target: [0.9]", "targets: [[0.9]]")
    refuse(text, "'input'", "'target'", key=("targets",), line=LINE["target"])


def test_inputs_with_target(refuse) -> None:
    text = edit(BASE, "input: [0.8, 0.7, 0.1]", "inputs: [[0.8, 0.7, 0.1]]")
    refuse(text, "'inputs'", "'targets'", key=("target",), line=LINE["target"])


# ---- names and parameters ------------------------------------------------------------------


def test_unknown_activation_suggests_nearest(refuse) -> None:
    text = edit(BASE, HIDDEN_ACTIVATION, "    activation: sigmod\n  - weights")
    refuse(
        text,
        "sigmod",
        "did you mean 'sigmoid'",
        key=("layers", 0, "activation"),
        line=line_of(text, "sigmod"),
    )


def test_unknown_loss_suggests_nearest(refuse) -> None:
    text = edit(BASE, "loss: quadratic", "loss: quadratc")
    refuse(text, "quadratc", "did you mean 'quadratic'", key=("loss",), line=LINE["loss"])


def test_activation_mapping_without_name(refuse) -> None:
    text = edit(BASE, HIDDEN_ACTIVATION, "    activation: {alpha: 0.1}\n  - weights")
    refuse(text, "'name'", key=("layers", 0, "activation"), line=line_of(text, "alpha"))


def test_unknown_parameter_suggests_nearest(refuse) -> None:
    text = edit(
        BASE, HIDDEN_ACTIVATION, "    activation: {name: leaky_relu, alpah: 0.1}\n  - weights"
    )
    refuse(
        text,
        "did you mean 'alpha'",
        key=("layers", 0, "activation", "alpah"),
        line=line_of(text, "alpah"),
    )


def test_unknown_loss_parameter(refuse) -> None:
    text = edit(BASE, "loss: quadratic", "loss: {name: huber, delt: 0.5}")
    refuse(text, "did you mean 'delta'", key=("loss", "delt"), line=LINE["loss"])


@pytest.mark.parametrize(
    ("activation", "key"),
    [("{name: leaky_relu, alpha: -1}", "alpha"), ("{name: elu, alpha: 0}", "alpha")],
    ids=["leaky_relu-alpha--1", "elu-alpha-0"],
)
def test_activation_parameter_out_of_range(refuse, activation: str, key: str) -> None:
    text = edit(BASE, HIDDEN_ACTIVATION, f"    activation: {activation}\n  - weights")
    refuse(text, key, key=("layers", 0, "activation", key), line=line_of(text, activation))


def test_huber_delta_zero(refuse) -> None:
    text = edit(BASE, "loss: quadratic", "loss: {name: huber, delta: 0}")
    refuse(text, "delta", "> 0", key=("loss", "delta"), line=LINE["loss"])


def test_parameters_on_an_activation_without_any(refuse) -> None:
    text = edit(BASE, HIDDEN_ACTIVATION, "    activation: {name: sigmoid, alpha: 1}\n  - weights")
    refuse(
        text, "no parameters", key=("layers", 0, "activation", "alpha"), line=line_of(text, "alpha")
    )


# ---- steps, learning rate, reduction -------------------------------------------------------


def test_negative_steps(refuse) -> None:
    text = edit(BASE, "steps: 1", "steps: -1")
    refuse(text, "-1", key=("steps",), line=LINE["steps"])


def test_non_integer_steps(refuse) -> None:
    text = edit(BASE, "steps: 1", "steps: 1.5")
    refuse(text, "1.5", key=("steps",), line=LINE["steps"])


@pytest.mark.parametrize("rate", ["0", "-1"])
def test_learning_rate_not_positive(refuse, rate: str) -> None:
    text = edit(BASE, "learning_rate: 1.0", f"learning_rate: {rate}")
    refuse(text, "> 0", key=("learning_rate",), line=LINE["learning_rate"])


def test_bad_reduction(refuse) -> None:
    text = BASE + "reduction: avg\n"
    refuse(text, "avg", "mean", key=("reduction",), line=line_of(text, "reduction"))


# ---- files ---------------------------------------------------------------------------------


def test_missing_file(run_cli, tmp_path: Path) -> None:
    refused(run_cli, tmp_path / "nosuch.yaml", "no such file")


def test_a_directory(run_cli, tmp_path: Path) -> None:
    refused(run_cli, tmp_path, "directory")


def test_not_utf8(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(BASE.replace("quadratic", "quadr\xe9tic").encode("latin-1"))
    refused(run_cli, path, "UTF-8")


# ---- untrusted input -----------------------------------------------------------------------


def test_python_tag_is_refused_not_executed(refuse, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    text = f'steps: !!python/object/apply:os.system ["touch {marker}"]\n' + edit(
        BASE, "steps: 1\n", ""
    )
    refuse(text, "tag", key=("steps",), line=1)
    assert not marker.exists()


def test_python_tag_echo_is_refused(run_cli, write_config, tmp_path: Path, capfd) -> None:
    text = BASE + 'reduction: !!python/object/apply:os.system ["echo hi"]\n'
    refused(run_cli, write_config(tmp_path, text), "tag", key=("reduction",))
    assert "hi" not in capfd.readouterr().out


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(["1.0"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines.append(f"input: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly(run_cli, write_config, tmp_path: Path) -> None:
    """9⁹ values through aliases: refused from the count of values the aliases expand to, in a
    few thousand Python calls (tests/python_calls.py), not by expanding them (10⁸ values)."""
    path = write_config(tmp_path, _alias_bomb())
    within(100_000, refused, run_cli, path)


def test_recursive_alias_is_refused(refuse) -> None:
    """`&a [.., *a]` composes into a cycle; it must be refused, not recurse until a crash."""
    text = edit(BASE, "input: [0.8, 0.7, 0.1]", "input: &a [0.8, 0.7, *a]")
    refuse(text, line=LINE["input"])


def test_deep_nesting_is_refused(refuse) -> None:
    """Brackets nested 600 deep: a clean refusal, not a RecursionError."""
    text = edit(BASE, "input: [0.8, 0.7, 0.1]", "input: " + "[" * 600 + "]" * 600)
    refuse(text)


def test_plain_aliases_are_fine(run_cli, write_config, tmp_path: Path) -> None:
    text = edit(BASE, "biases: [-0.2, -0.2]", "biases: [&b -0.2, *b]")
    result = run_cli(["step", str(write_config(tmp_path, text)), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"][0]["loss"] == pytest.approx(0.1150703, rel=1e-6)


# ---- loss-specific targets -----------------------------------------------------------------


def test_hinge_target_not_plus_minus_one(refuse) -> None:
    text = edit(BASE, "loss: quadratic", "loss: hinge")
    refuse(text, "hinge", key=("target",), line=LINE["target"])


def test_cosine_zero_target(refuse) -> None:
    text = edit(edit(BASE, "loss: quadratic", "loss: cosine"), "target: [0.9]", "target: [0]")
    refuse(text, "cosine", "zero", key=("target",), line=LINE["target"])


def test_cross_entropy_negative_target(refuse) -> None:
    text = edit(
        edit(BASE, "loss: quadratic", "loss: cross_entropy"), "target: [0.9]", "target: [-0.5]"
    )
    refuse(text, "cross_entropy", key=("target",), line=LINE["target"])


# ---- numbers however written ---------------------------------------------------------------


def test_numbers_however_written(run_cli, write_config, tmp_path: Path) -> None:
    text = edit(BASE, "learning_rate: 1.0", "learning_rate: 1e-3")
    text = edit(text, "input: [0.8, 0.7, 0.1]", "input: [.5, -1, 2E5]")
    text = edit(text, "biases: [-0.2, -0.2]", "biases: [-.5, +1.5e-1]")
    result = run_cli(["step", str(write_config(tmp_path, text)), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["learning_rate"] == 0.001
    x, w = [0.5, -1.0, 2e5], [[0.2, 0.3, 0.4], [-0.2, 0.1, 0.5]]
    b = [-0.5, 0.15]
    expected = [
        sum(wi * xi for wi, xi in zip(row, x, strict=True)) + bj
        for row, bj in zip(w, b, strict=True)
    ]
    assert doc["steps"][0]["layers"][0]["z"] == pytest.approx(expected, rel=1e-12)


# ---- CLI overrides and standard input ------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        ("--steps", "-1"),
        ("--learning-rate", "0"),
        ("--learning-rate", "-1"),
        ("--learning-rate", "nan"),
        ("--steps", "1.5"),
    ],
    ids=["steps--1", "eta-0", "eta--1", "eta-nan", "steps-1.5"],
)
def test_bad_overrides(run_cli, write_config, tmp_path: Path, extra: tuple[str, str]) -> None:
    result = run_cli(["step", str(write_config(tmp_path, BASE)), *extra])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert extra[0] in result.stderr


def test_infinite_learning_rate_override_is_bad_input(
    run_cli, write_config, tmp_path: Path
) -> None:
    """`learning_rate: .inf` in a file is refused with status 2; the option must agree."""
    result = run_cli(["step", str(write_config(tmp_path, BASE)), "--learning-rate", "inf"])
    assert result.exit_code == 2, result.output
    assert "--learning-rate" in result.stderr


def test_stdin(run_cli) -> None:
    result = run_cli(["step", "-", "--format", "json"], input=BASE)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["steps"][0]["loss"] == pytest.approx(0.1150703, rel=1e-6)


def test_stdin_error_names_stdin(run_cli) -> None:
    result = run_cli(["step", "-"], input=edit(BASE, "loss: quadratic", "loss: quadratc"))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "<stdin>" in result.stderr
    assert f"line {LINE['loss']}" in result.stderr
    assert "did you mean 'quadratic'" in result.stderr


# ---- optimizer and weight_decay --------------------------------------------------------------


def _with(text: str) -> str:
    return edit(BASE, "steps: 1\n", "steps: 1\n" + text)


OPT_LINE = LINE["steps"] + 1


def test_unknown_optimizer_suggests_nearest(refuse) -> None:
    refuse(
        _with("optimizer: adma\n"),
        "unknown optimizer 'adma'",
        "did you mean 'adam'",
        key=("optimizer",),
        line=OPT_LINE,
    )


def test_unknown_optimizer_in_a_mapping(refuse) -> None:
    refuse(
        _with("optimizer: {name: rmsprp}\n"),
        "did you mean 'rmsprop'",
        key=("optimizer", "name"),
        line=OPT_LINE,
    )


def test_optimizer_mapping_needs_a_name(refuse) -> None:
    refuse(_with("optimizer: {momentum: 0.9}\n"), "'name'", key=("optimizer",), line=OPT_LINE)


def test_unknown_optimizer_parameter(refuse) -> None:
    refuse(
        _with("optimizer: {name: adam, betta1: 0.9}\n"),
        "unknown parameter",
        "did you mean 'beta1'",
        key=("optimizer", "betta1"),
        line=OPT_LINE,
    )


def test_sgd_takes_no_parameters(refuse) -> None:
    refuse(
        _with("optimizer: {name: sgd, momentum: 0.9}\n"),
        "takes no parameters",
        key=("optimizer", "momentum"),
    )


@pytest.mark.parametrize(
    ("optimizer", "key", "fragment"),
    [
        ("{name: momentum, momentum: 1}", "momentum", "< 1"),
        ("{name: nesterov, momentum: -0.1}", "momentum", "≥ 0"),
        ("{name: rmsprop, beta: 1.0}", "beta", "< 1"),
        ("{name: adam, beta1: 1}", "beta1", "< 1"),
        ("{name: adam, beta2: -0.5}", "beta2", "≥ 0"),
        ("{name: adagrad, eps: 0}", "eps", "> 0"),
        ("{name: adam, eps: -1e-8}", "eps", "> 0"),
        ("{name: adamw, weight_decay: -0.01}", "weight_decay", "≥ 0"),
    ],
)
def test_optimizer_parameter_out_of_range(refuse, optimizer: str, key: str, fragment: str) -> None:
    refuse(_with(f"optimizer: {optimizer}\n"), fragment, key=("optimizer", key), line=OPT_LINE)


def test_optimizer_parameter_must_be_a_number(refuse) -> None:
    refuse(
        _with("optimizer: {name: momentum, momentum: '0.9'}\n"),
        "remove the quotes",
        key=("optimizer", "momentum"),
        line=OPT_LINE,
    )


def test_optimizer_name_must_be_a_string(refuse) -> None:
    refuse(_with("optimizer: [adam]\n"), "optimizer name", key=("optimizer",), line=OPT_LINE)


def test_negative_weight_decay(refuse) -> None:
    refuse(_with("weight_decay: -0.1\n"), "≥ 0", key=("weight_decay",), line=OPT_LINE)


def test_weight_decay_must_be_a_number(refuse) -> None:
    refuse(_with("weight_decay: lots\n"), "expected a number", key=("weight_decay",), line=OPT_LINE)


def test_misspelt_weight_decay_key(refuse) -> None:
    refuse(_with("weight_decy: 0.1\n"), "did you mean 'weight_decay'", line=OPT_LINE)
