"""The README's promises: its console examples print what the tool prints, and the Quick start
holds exactly the two set-up commands that .ci/run executes."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradcalc.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def console_examples() -> list[tuple[str, str]]:
    """(command, expected output) for each `$ gradcalc ...` line followed by its output."""
    examples = []
    for block in re.findall(r"```console\n(.*?)```", README, flags=re.S):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("$ gradcalc"):
                continue
            output = []
            for follower in lines[i + 1 :]:
                if follower.startswith("$ "):
                    break
                output.append(follower)
            if output:
                examples.append((line[2:], "\n".join(output)))
    return examples


def test_quick_start_has_exactly_two_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    markers = re.findall(r"<!-- quick-start:(\w+) -->", section)
    assert markers == ["run", "test"]
    commands = re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)
    assert len(commands) == 2
    assert "gradcalc step" in commands[0] and "pip install ." in commands[0]
    assert "'.[test]'" in commands[1] and commands[1].endswith("pytest")


def jq(document: str, program: str) -> str:
    """The few jq programs the README uses: a path of .keys and [n] indices, or `keys`."""
    value = json.loads(document)
    if program == "keys":
        return json.dumps(sorted(value), separators=(",", ":"))
    for key, index in re.findall(r"\.(\w+)|\[(\d+)\]", program):
        value = value[key] if key else value[int(index)]
    return json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("command, expected", console_examples(), ids=lambda v: v[:40])
def test_console_example_matches_the_tool(command: str, expected: str, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    # An example whose command ends in "# exit status N" shows a run that ends with status N.
    status = re.search(r"#\s*exit status (\d+)\s*$", command)
    command = re.sub(r"\s*#\s*exit status \d+\s*$", "", command)
    tool, _, pipe = command.partition("|")
    words = shlex.split(tool)[1:]
    if "bad.yaml" in words:
        pytest.skip("illustrates an error on a file the reader writes")
    result = CliRunner().invoke(cli, words, env={"NO_COLOR": "1"})
    assert result.exit_code == (int(status.group(1)) if status else 0), result.output
    output = result.output
    if pipe:
        program = shlex.split(pipe)
        assert program[0] == "jq", f"the README test knows only jq pipes: {pipe}"
        output = jq(output, program[-1])
    if pipe:
        # Numbers from a jq pipe may differ in the last bit between numpy builds.
        assert same_data(json.loads(output), json.loads(expected))
    else:
        assert output.rstrip("\n") == expected.rstrip("\n")


def same_data(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_data(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_activation_and_loss_tables_are_the_registries() -> None:
    """Every registry record has its row, with its formula, derivative and parameters as the
    record writes them; `python tests/readme_tables.py` rewrites the tables."""
    from readme_tables import BLOCK, rewrite, tables

    found = {m.group(2): m.group(3) for m in BLOCK.finditer(README)}
    assert set(found) == {"activations", "losses"}
    assert found == tables(), "run: python tests/readme_tables.py"
    assert rewrite(README) == README
