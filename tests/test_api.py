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


@pytest.mark.parametrize("example", ["worked-example", "conv-worked-example"])
def test_to_dict_is_the_json_document(run_cli, example: str) -> None:
    """A dense run's and a layered run's to_dict are what the one JSON writer writes."""
    path = ROOT / "configs" / f"{example}.yaml"
    trace = gradcalc.run(gradcalc.load(str(path)), steps=3)
    result = run_cli(["step", str(path), "--steps", "3", "--format", "json"])
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
    assert trace.derivatives == pytest.approx([1 / (1 + np.exp(-0.5)), 1 / (1 + np.exp(1.0))])


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


# ---- the API's text is the command's text ----------------------------------------------------

SLIP = ROOT / "configs" / "answers" / "worked-example-slip.yaml"
CONV = ROOT / "configs" / "conv-worked-example.yaml"
ANSWERS = ROOT / "configs" / "answers" / "worked-example.yaml"


@pytest.mark.parametrize(
    "method, args",
    [
        ("explain", ["--explain"]),
        ("to_markdown", ["--format", "markdown"]),
        ("to_latex", ["--format", "latex"]),
    ],
)
@pytest.mark.parametrize("steps", [1, 6])
def test_run_trace_writes_what_step_writes(run_cli, method, args, steps) -> None:
    trace = gradcalc.run(gradcalc.load(EXAMPLE), steps=steps, round_to=3)
    result = run_cli(["step", str(EXAMPLE), "--steps", str(steps), "--round", "3", *args])
    assert result.exit_code == 0, result.output
    kwargs = {"width": 80} if method == "explain" else {}
    assert getattr(trace, method)(**kwargs) == result.stdout
    if steps == 6:  # the command's default selection: steps 1-3 and the last
        assert "Step 6" in result.stdout and "Step 5" not in result.stdout


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
def test_derive_trace_writes_what_derive_writes(run_cli, fmt) -> None:
    trace = gradcalc.derive("softplus", at=[0.5, -1.0])
    result = run_cli(["derive", "softplus", "--at", "0.5,-1", "--format", fmt])
    assert getattr(trace, f"to_{fmt}")() == result.stdout
    table = run_cli(["derive", "softplus", "--at", "0.5,-1"], env={"COLUMNS": "80"})
    assert trace.explain(width=80) == table.stdout


def test_run_takes_an_optimizer_like_the_command(run_cli) -> None:
    net = gradcalc.load(EXAMPLE)
    for rule in ("adam", "momentum"):
        trace = gradcalc.run(net, steps=3, optimizer=rule)
        result = run_cli(
            ["step", str(EXAMPLE), "--steps", "3", "--optimizer", rule, "--format", "json"]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(json.dumps(trace.to_dict())) == json.loads(result.stdout)
        assert trace.optimizer == rule
    # A mapping sets the rule's parameters, as the config's `optimizer: {name: ...}` does.
    text = EXAMPLE.read_text(encoding="utf-8") + "optimizer: {name: momentum, momentum: 0.5}\n"
    by_config = gradcalc.run(gradcalc.from_yaml(text), steps=3)
    by_run = gradcalc.run(net, steps=3, optimizer={"name": "momentum", "momentum": 0.5})
    assert by_run.optimizer_params == {"momentum": 0.5}
    assert by_run.final.loss == by_config.final.loss
    assert by_run.final.loss != gradcalc.run(net, steps=3, optimizer="momentum").final.loss


@pytest.mark.parametrize(
    "optimizer, words",
    [
        ("adamm", "did you mean 'adam'"),
        ({"name": "adam", "beta3": 0.9}, "unknown parameter 'beta3'"),
        ({"name": "adam", "beta1": 1.5}, "beta1 must be"),
        ({"name": "sgd", "momentum": 0.9}, "'sgd' takes no parameters"),
        ({"momentum": 0.9}, "'name' key"),
        ({"name": "adam", "beta1": "0.9"}, "must be a number"),
    ],
)
def test_run_refuses_a_bad_optimizer(optimizer, words) -> None:
    with pytest.raises(gradcalc.GradcalcError, match=re.escape(words)):
        gradcalc.run(gradcalc.load(EXAMPLE), optimizer=optimizer)


# ---- check -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answers, options, args",
    [
        (ANSWERS, {"decimals": 3}, ["--decimals", "3"]),
        (SLIP, {}, []),
        (SLIP, {"carry": False, "require_all": True}, ["--no-carry", "--require-all"]),
    ],
)
def test_check_grades_as_the_command_does(run_cli, answers, options, args) -> None:
    grade = gradcalc.check(EXAMPLE, answers, **options)
    result = run_cli(["check", str(EXAMPLE), str(answers), "--format", "json", *args])
    doc = json.loads(result.stdout)
    assert grade.to_dict() == doc
    assert result.exit_code == (0 if grade.passed else 1)
    assert (grade.score, grade.max_score, grade.passed) == (
        doc["score"],
        doc["max_score"],
        doc["passed"],
    )
    assert [c.verdict for c in grade.cells] == [c["verdict"] for c in doc["cells"]]
    assert [c.symbol for c in grade.cells] == [c["symbol"] for c in doc["cells"]]
    table = run_cli(["check", str(EXAMPLE), str(answers), *args], env={"COLUMNS": "80"})
    assert grade.explain(width=80) == table.stdout
    gradescope = run_cli(["check", str(EXAMPLE), str(answers), "--format", "gradescope", *args])
    assert grade.to_gradescope() == json.loads(gradescope.stdout)


def test_check_reports_the_first_error_and_typed_verdicts() -> None:
    grade = gradcalc.check(gradcalc.load(EXAMPLE), SLIP)
    assert not grade.passed and grade.score < grade.max_score
    first = grade.first_error
    assert first is not None and first.verdict == "wrong"
    assert first == next(c for c in grade.cells if c.verdict == "wrong")
    assert {c.verdict for c in grade.cells} <= {"correct", "rounding", "carried", "wrong"}
    assert grade.score == sum(c.score for c in grade.cells)


def test_check_takes_answers_as_a_mapping_with_arrays() -> None:
    data = yaml.safe_load(ANSWERS.read_text(encoding="utf-8"))
    data["z"][2] = np.array(data["z"][2])
    data["delta"][3] = tuple(data["delta"][3])
    by_dict = gradcalc.check(EXAMPLE, data, decimals=3)
    by_file = gradcalc.check(EXAMPLE, ANSWERS, decimals=3)
    assert by_dict.cells == by_file.cells and by_dict.answers == "<dict>"


@pytest.mark.parametrize(
    "answers, options, words",
    [
        ({"z": {2: ["x", 1.0]}}, {}, "<dict>: z[2][0]: expected a number"),
        ({"zz": 1}, {}, "did you mean 'z'"),
        (ANSWERS, {"decimals": 3, "sig_figs": 2}, "not both"),
        (ANSWERS, {"rtol": -1.0}, "rtol must be a finite number"),
        (ANSWERS, {"atol": float("nan")}, "atol must be a finite number"),
        (ANSWERS, {"steps": 0}, "steps must be a whole number ≥ 1"),
        (ANSWERS, {"decimals": 13}, "decimals must be"),
    ],
)
def test_check_refuses_bad_input(answers, options, words) -> None:
    with pytest.raises(gradcalc.GradcalcError, match=re.escape(words)) as info:
        gradcalc.check(EXAMPLE, answers, **options)
    if isinstance(answers, dict):
        assert isinstance(info.value, gradcalc.ConfigError) and info.value.line is None


def test_check_name_is_the_function_also_after_the_subpackage_loads() -> None:
    code = (
        "import gradcalc\n"
        "from gradcalc.check import grade, views\n"
        "import gradcalc.check.answers\n"
        "print(callable(gradcalc.check), gradcalc.check.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "gradcalc.api"]


def test_grade_markdown_has_a_row_per_cell() -> None:
    grade = gradcalc.check(EXAMPLE, SLIP)
    markdown = grade.to_markdown()
    blocks = [b.splitlines() for b in markdown.split("\n\n")]
    cells = [row for b in blocks if b[0].startswith("| quantity |") for row in b[2:]]
    assert len(cells) == len(grade.cells)
    wrong = next(c for c in grade.cells if c.mistake)
    assert any(wrong.symbol in r and wrong.mistake in r and "✗" in r for r in cells)
    assert "| **total** |" in markdown and grade.to_markdown() == grade._repr_markdown_()


# ---- typed results ---------------------------------------------------------------------------


def test_derive_gives_scalars_and_lists_their_own_properties() -> None:
    one = gradcalc.derive("tanh", at=0.5)
    assert isinstance(one.derivative, float) and isinstance(one.value, float)
    assert one.derivative == pytest.approx(1 - np.tanh(0.5) ** 2, rel=1e-12)
    assert one.derivatives == [one.derivative] and one.values == [one.value]
    several = gradcalc.derive("tanh", at=[0.5, -2.0])
    assert several.derivatives == pytest.approx(1 - np.tanh([0.5, -2.0]) ** 2, rel=1e-12)
    with pytest.raises(gradcalc.GradcalcError, match=r"2 points: read \.derivatives"):
        _ = several.derivative
    with pytest.raises(gradcalc.GradcalcError, match=r"read \.values"):
        _ = several.value
    loss = gradcalc.derive("quadratic", at=[0.2, 0.9], target=[0.0, 1.0])
    assert loss.value == pytest.approx(0.5 * (0.2**2 + 0.1**2), rel=1e-12)
    assert loss.gradient == pytest.approx([0.2, -0.1], rel=1e-12)
    with pytest.raises(gradcalc.GradcalcError, match=r"read \.gradient or \.jacobian"):
        _ = loss.derivative
    soft = gradcalc.derive("softmax", at=[1.0, 2.0])
    s = np.exp([1.0, 2.0]) / np.exp([1.0, 2.0]).sum()
    assert soft.values == pytest.approx(s.tolist(), rel=1e-12)
    for row, expected in zip(soft.jacobian, np.diag(s) - np.outer(s, s), strict=True):
        assert row == pytest.approx(expected.tolist(), rel=1e-9)
    with pytest.raises(gradcalc.GradcalcError, match="vector"):
        _ = soft.value


def test_parameter_gradients_one_point_and_several() -> None:
    one = gradcalc.derive("prelu", at=-0.5, params={"a": 0.1})
    assert one.parameter_gradients == {"a": -0.5}  # ∂(a·x)/∂a = x for x < 0
    several = gradcalc.derive("prelu", at=[-0.5, 2.0], params={"a": 0.1})
    assert several.parameter_gradients_per_point == [{"a": -0.5}, {"a": 0.0}]


# ---- display ---------------------------------------------------------------------------------


def _results() -> list[object]:
    return [
        gradcalc.run(gradcalc.load(EXAMPLE)),
        gradcalc.derive("sigmoid", at=0.3),
        gradcalc.check(EXAMPLE, SLIP),
    ]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["run", "derive", "check"])
def test_jupyter_shows_markdown_with_tables(index) -> None:
    result = _results()[index]
    bundle = result._repr_mimebundle_()  # type: ignore[attr-defined]
    assert bundle["text/markdown"] == result._repr_markdown_()  # type: ignore[attr-defined]
    # Not rich's preformatted HTML, which Jupyter would prefer: the --format html page
    # (tests/test_notebook.py), or none.
    assert bundle.get("text/html", "") == getattr(result, "_repr_html_", str)()
    lines = bundle["text/markdown"].splitlines()
    assert any(re.fullmatch(r"\|( ?:?-+:? ?\|)+", line) for line in lines), "no Markdown table"
    assert bundle["text/plain"].strip()
    assert "text/markdown" not in result._repr_mimebundle_(exclude=["text/markdown"])  # type: ignore[attr-defined]


def test_grade_displays_in_a_rich_console() -> None:
    from rich.console import Console

    console = Console(width=100, record=True, file=io.StringIO(), color_system=None)
    grade = gradcalc.check(EXAMPLE, SLIP)
    console.print(grade)
    assert console.export_text() == grade.explain(width=100)


# ---- the public names, their types and their reference page ----------------------------------


def test_every_public_name_loads_and_is_listed() -> None:
    for name in gradcalc.__all__:
        assert getattr(gradcalc, name) is not None, name
    assert set(gradcalc.__all__) <= set(dir(gradcalc))
    with pytest.raises(AttributeError):
        _ = gradcalc.no_such_name  # type: ignore[attr-defined]


def test_public_names_load_lazily() -> None:
    code = (
        "import sys, gradcalc\n"
        "heavy = ('numpy', 'yaml', 'rich', 'gradcalc.api', 'gradcalc.step',"
        " 'gradcalc.check.grade')\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "gradcalc.RunTrace\n"
        "print('gradcalc.step.trace' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"]


def test_a_conv_config_loads_through_the_api_as_a_layered_spec() -> None:
    """load, from_yaml and from_dict say what they return: a config with other layer types
    than dense is a LayeredSpec, which run() takes."""
    from gradcalc.layers.config import LayeredSpec
    from gradcalc.layers.engine import LayeredRun

    text = CONV.read_text(encoding="utf-8")
    for net in (
        gradcalc.load(CONV),
        gradcalc.from_yaml(text, "conv.yaml"),
        gradcalc.from_dict(yaml.safe_load(text), "conv"),
    ):
        assert isinstance(net, LayeredSpec) and not isinstance(net, gradcalc.NetworkSpec)
        trace = gradcalc.run(net, steps=1)
        assert isinstance(trace, LayeredRun) and np.isfinite(trace.final.loss)
    assert isinstance(gradcalc.load(EXAMPLE), gradcalc.NetworkSpec)


def test_api_reference_is_current() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_api_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_api_reference_example_runs(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(import gradcalc\n.*?)```", page, re.S)
    assert code, "docs/api.md lost its example"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.group(1), "docs/api.md", "exec"), {})
    assert "Worked solution" in out.getvalue()


USER_SCRIPT = '''
"""A user's script: every public name, used as the reference documents it."""

from __future__ import annotations

import gradcalc
from gradcalc import (
    Agreement,
    CellGrade,
    ConfigError,
    DeriveTrace,
    ForwardTrace,
    GradcalcError,
    Grade,
    LayerSpec,
    LayerState,
    LayerTrace,
    NetworkSpec,
    NumericError,
    PointTrace,
    RunTrace,
    StepTrace,
    Verdict,
)

version: str = gradcalc.__version__
loaded = gradcalc.load("{example}")
assert isinstance(loaded, NetworkSpec)  # dense layers (other layer types: a LayeredSpec)
net: NetworkSpec = loaded
same = gradcalc.from_yaml("x: 1") if version == "" else net
also = gradcalc.from_dict({{"input": [1.0]}}) if version == "" else net
conv = gradcalc.load("{conv}")
conv_loss: float = 0.0 if isinstance(conv, NetworkSpec) else 2.0 * gradcalc.run(conv).final.loss
first: LayerSpec = net.layers[0]
trace: RunTrace = gradcalc.run(net, steps=2, optimizer={{"name": "adam", "beta1": 0.8}})
step: StepTrace = trace.steps[0]
layer: LayerTrace = step.layers[0]
final: ForwardTrace = trace.final
state: LayerState = trace.parameters[0]
doubled: float = 2.0 * trace.final.loss + 2.0 * step.loss
text: str = trace.explain() + trace.to_markdown() + trace.to_latex()
d: DeriveTrace = gradcalc.derive("sigmoid", at=0.3)
slope: float = 2.0 * d.derivative
slopes: list[float] = [2.0 * s for s in gradcalc.derive("tanh", at=[0.1, 0.2]).derivatives]
grad: list[float] = gradcalc.derive("quadratic", at=[0.1], target=[0.0]).gradient
point: PointTrace = d.points[0]
agreement: Agreement = d.agreement
ok: bool = agreement.ok and point.agreement.ok
grade: Grade = gradcalc.check(net, "{answers}", decimals=3)
cell: CellGrade = grade.cells[0]
verdict: Verdict = cell.verdict
score: float = grade.score / grade.max_score
wrong: list[CellGrade] = [c for c in grade.cells if c.verdict == "wrong"]
markdown: str = grade.to_markdown() + d.to_markdown() + d.to_latex() + d.explain()
try:
    gradcalc.from_dict({{"loss": "quadratc"}})
except ConfigError as error:
    where: tuple[str | int, ...] = error.path
    line: int | None = error.line
except NumericError:
    pass
except GradcalcError:
    pass
'''


def _mypy(tmp_path: Path, *scripts: Path) -> subprocess.CompletedProcess[str]:
    """mypy --strict on a user's scripts, with gradcalc as a user's mypy sees an installed
    package: its types are used and its own errors are not the script's. (mypy cannot follow
    an editable install's import hook, so it is pointed at the checkout.)"""
    import os

    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\nstrict = True\n\n[mypy-gradcalc,gradcalc.*]\nfollow_imports = silent\n"
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--no-incremental",
            *map(str, scripts),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(ROOT)},
    )


def test_a_script_using_every_public_name_passes_mypy_strict(tmp_path) -> None:
    script = USER_SCRIPT.format(
        example=EXAMPLE.as_posix(), answers=ANSWERS.as_posix(), conv=CONV.as_posix()
    )
    used = set(re.findall(r"\b(\w+)\b", script))
    assert set(gradcalc.__all__) <= used, set(gradcalc.__all__) - used
    good = tmp_path / "user_script.py"
    good.write_text(script, encoding="utf-8")
    # And mypy is not merely silent: a list used as a number, a name gradcalc lacks, and a
    # loaded config taken for a dense one without asking (it may have other layer types).
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "import gradcalc\n"
        'x: float = 2.0 * gradcalc.derive("tanh", at=[0.1]).derivatives\n'
        "gradcalc.no_such_function()\n"
        'n: gradcalc.NetworkSpec = gradcalc.load("c.yaml")\n',
        encoding="utf-8",
    )
    done = _mypy(tmp_path, good, wrong)  # one mypy run: each start takes seconds
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    expected = [["wrong.py", "2"], ["wrong.py", "3"], ["wrong.py", "4"]]
    assert [e.split(":")[:2] for e in errors] == expected, done.stdout
    # The script runs, too: the values have the types mypy was told.
    ran = subprocess.run([sys.executable, str(good)], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr


def test_grade_cells_name_the_mistakes_the_json_names(run_cli) -> None:
    grade = gradcalc.check(EXAMPLE, SLIP)
    doc = json.loads(run_cli(["check", str(EXAMPLE), str(SLIP), "--format", "json"]).stdout)
    assert [c.mistakes for c in grade.cells] == [tuple(c["mistakes"]) for c in doc["cells"]]
    assert any(c.mistakes for c in grade.cells)
    assert all(c.mistake == (c.mistakes[0] if c.mistakes else None) for c in grade.cells)
