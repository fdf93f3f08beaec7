"""What a newcomer meets first (issue 16): the help, the error wording, JSON's one rule,
shell completion of every option that takes a value, and the dependency bounds CI tests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from gradcalc.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = str(ROOT / "configs" / "answers" / "worked-example-slip.yaml")


# ---- help ------------------------------------------------------------------------------------


def assert_help_layout(text: str, usage: str) -> None:
    """click's help as --help lays it out: usage first, then paragraphs and indented options."""
    lines = text.splitlines()
    assert lines[0].startswith(f"Usage: {usage}"), lines[0]
    assert len(lines) > 8
    assert "Options:" in lines
    assert any(line.startswith("  -h, --help") for line in lines)
    assert not text.startswith("Error")


def test_bare_gradcalc_prints_the_help_laid_out_on_stderr(run_cli) -> None:
    result = run_cli([], env={"COLUMNS": "100"})
    assert result.exit_code == 2  # no command is a usage error
    assert result.stdout == ""
    assert_help_layout(result.stderr, "gradcalc [OPTIONS] COMMAND [ARGS]...")
    assert "Commands:" in result.stderr.splitlines()
    # The same text --help prints, line for line.
    assert result.stderr == run_cli(["--help"], env={"COLUMNS": "100"}).stdout


def test_bare_gradcalc_through_the_installed_entry_point() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "gradcalc"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert_help_layout(run.stderr, "gradcalc [OPTIONS] COMMAND [ARGS]...")


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_every_help_is_laid_out(run_cli, name: str) -> None:
    words = [name] if name else []
    for flag in ("--help", "-h"):
        result = run_cli([*words, flag], env={"COLUMNS": "100"})
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
        usage = f"gradcalc {name} [OPTIONS]" if name else "gradcalc [OPTIONS] COMMAND"
        assert_help_layout(result.stdout, usage)


@pytest.mark.parametrize("name", [n for n in COMMANDS if n != "completion"])
def test_help_mentions_output_only_where_there_is_one(run_cli, name: str) -> None:
    text = run_cli([name, "--help"], env={"COLUMNS": "100"}).stdout
    has_output = any("--output" in p.opts for p in command(name).params)
    assert bool(re.search(r"(?<![\w-])-o(?![\w-])", text)) is has_output, name


def command(name: str) -> click.Command:
    found = cli.get_command(click.Context(cli), name)
    assert found is not None
    return found


# ---- error wording ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["stpe"], "Error: no such command 'stpe' (did you mean 'step'?) (see 'gradcalc --help')"),
        (
            ["step", "--stpes", "2"],
            "Error: no such option '--stpes' (did you mean '--steps'",
        ),
        (["derive", "--nosuch"], "Error: no such option '--nosuch' (see 'gradcalc derive --help')"),
        (["--nosuch"], "Error: no such option '--nosuch' (see 'gradcalc --help')"),
        (["list", "--indnet", "2"], "Error: no such option '--indnet' (did you mean '--indent'?)"),
    ],
)
def test_unknown_commands_and_options_are_worded_alike(run_cli, args, expected) -> None:
    result = run_cli(args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1  # one line
    assert result.stderr.startswith(expected), result.stderr


# ---- JSON: one compact line by default, --indent N --------------------------------------------

JSON_CALLS = {
    "step": ["step", "--example", "worked-example", "--format", "json"],
    "derive": ["derive", "softmax", "--at", "1,2,3", "--format", "json"],
    "list": ["list", "--format", "json"],
    "examples": ["examples", "--format", "json"],
    "check": ["check", "--example", "worked-example", ANSWERS, "--format", "json"],
    "check gradescope": ["check", "--example", "worked-example", ANSWERS, "--format", "gradescope"],
}


def json_commands() -> list[str]:
    """Every command that has a JSON format."""
    found = []
    for name in COMMANDS:
        for param in command(name).params:
            if "--format" in getattr(param, "opts", ()) and "json" in param.type.choices:  # type: ignore[attr-defined]
                found.append(name)
    return found


def test_every_command_with_json_is_called_here_and_has_indent() -> None:
    assert set(json_commands()) == {call.split()[0] for call in JSON_CALLS}
    for name in json_commands():
        assert any("--indent" in p.opts for p in command(name).params), name


@pytest.mark.parametrize("name", list(JSON_CALLS))
def test_json_is_one_line_unless_indented(run_cli, name: str) -> None:
    compact = run_cli(JSON_CALLS[name])
    assert compact.exit_code in (0, 1), compact.output  # check: a wrong cell is status 1
    assert compact.stdout.count("\n") == 1 and compact.stdout.endswith("\n")
    assert ": " not in compact.stdout.split('"')[0]  # no padding outside strings
    data = json.loads(compact.stdout)
    for indent in (0, 2, 4):
        pretty = run_cli([*JSON_CALLS[name], "--indent", str(indent)])
        assert pretty.exit_code == compact.exit_code
        assert json.loads(pretty.stdout) == data
        lines = pretty.stdout.splitlines()
        assert len(lines) > 3
        assert lines[1].startswith(" " * indent + '"') or lines[1].startswith(" " * indent + "{")


@pytest.mark.parametrize(
    "args",
    [
        ["step", "--example", "worked-example", "--indent", "2"],
        ["step", "--example", "worked-example", "--format", "jsonl", "--indent", "2"],
        ["derive", "tanh", "--at", "1", "--indent", "2"],
        ["list", "--indent", "2"],
        ["examples", "--indent", "2"],
        ["check", "--example", "worked-example", "--template", "--indent", "2"],
    ],
)
def test_indent_without_json_is_refused(run_cli, args: list[str]) -> None:
    result = run_cli(args)
    assert result.exit_code == 2
    assert "--indent pretty-prints JSON" in result.stderr


def test_indented_step_json_to_a_file(run_cli, tmp_path: Path) -> None:
    target = tmp_path / "trace.json"
    args = ["step", "--example", "worked-example", "--format", "json"]
    result = run_cli([*args, "--indent", "2", "-o", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text(encoding="utf-8")
    assert text.startswith('{\n  "format_version": 1,')
    assert json.loads(text) == json.loads(run_cli(args).stdout)


# ---- completion ------------------------------------------------------------------------------


def complete(run_cli, line: str) -> list[tuple[str, str]]:
    words = line.split(" ")
    result = run_cli(
        [],
        env={
            "_GRADCALC_COMPLETE": "bash_complete",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(words) - 1),
        },
    )
    assert result.exit_code == 0, result.output
    rows = [row for row in result.stdout.splitlines() if row]
    return [tuple(row.split(",", 1)) for row in rows]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("gradcalc derive leaky_relu --at 1 --param ", [("plain", "alpha=")]),
        ("gradcalc derive huber --param d", [("plain", "delta=")]),
        ("gradcalc derive elu --param a", [("plain", "alpha=")]),
        ("gradcalc derive sigmoid --param ", []),  # no parameters
        ("gradcalc derive x*tanh(x) --param ", []),  # a formula's are the user's to type
        ("gradcalc check --example worked-example a.yaml --points p", [("file", "p")]),
    ],
)
def test_options_with_values_complete(run_cli, line: str, expected) -> None:
    assert complete(run_cli, line) == expected


def test_every_option_taking_a_file_completes_paths() -> None:
    for name in COMMANDS:
        for param in command(name).params:
            if param.metavar == "FILE":
                assert param._custom_shell_complete is not None, (name, param.name)


# ---- the dependency bounds CI tests ----------------------------------------------------------


def test_lowest_constraints_pin_each_lower_bound() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    bounds = {}
    for requirement in project["dependencies"]:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([\d.]+)(,<.*)?", requirement)
        assert m, f"{requirement}: every runtime dependency has a lower bound"
        bounds[m.group(1).lower()] = m.group(2)
    pins = {}
    for line in (ROOT / "constraints" / "lowest.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower()] = version
    from packaging.version import Version

    assert pins.keys() == bounds.keys()
    for name, version in pins.items():
        assert Version(version) == Version(bounds[name]), name


def test_ci_runs_the_tests_at_the_lowest_versions() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "constraints/lowest.txt" in script
    assert re.search(r"pip install .*-c constraints/lowest\.txt", script)
