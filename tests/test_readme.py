"""The documentation's promises: its console examples print what the tool prints, on the README
and on every page of docs/, and the Quick start holds exactly the two set-up commands that .ci/run
executes."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from doc_pages import PAGES, ROOT, console_commands, name, parse, pipe, same_data, text

from gradcalc.cli import cli

README = (ROOT / "README.md").read_text(encoding="utf-8")
SHOWN = [(page, command, output) for page, command, output in console_commands() if output]


def test_quick_start_has_exactly_two_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    markers = re.findall(r"<!-- quick-start:(\w+) -->", section)
    assert markers == ["run", "test"]
    commands = re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)
    assert len(commands) == 2
    assert "gradcalc step" in commands[0] and "pip install ." in commands[0]
    # The suite tests the checkout's source, not a copy in site-packages.
    assert "pip install -e '.[test]'" in commands[1] and commands[1].endswith("pytest")


def test_every_page_with_a_command_shows_one_run() -> None:
    """A test of something: the examples are found on the README and in docs/."""
    pages = {name(page) for page, _, _ in SHOWN}
    assert "README.md" in pages and len(pages) >= 6


@pytest.mark.parametrize(
    ("page", "command", "expected"),
    SHOWN,
    ids=[f"{name(p)}: {c[:40]}" for p, c, _ in SHOWN],
)
def test_console_example_matches_the_tool(page, command: str, expected: str, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    # An example whose command ends in "# exit status N" shows a run that ends with status N.
    words, stages, status = parse(command)
    if "bad.yaml" in words:
        pytest.skip("illustrates an error on a file the reader writes")
    result = CliRunner().invoke(cli, words, env={"NO_COLOR": "1"})
    assert result.exit_code == status, result.output
    output = pipe(result.output, stages)
    if any(stage[0] == "jq" and "-r" not in stage for stage in stages):
        # Numbers from a jq pipe may differ in the last bit between numpy builds.
        assert same_data(json.loads(output), json.loads(expected))
    else:
        assert output.rstrip("\n") == expected.rstrip("\n")


def test_activation_and_loss_tables_are_the_registries() -> None:
    """Every registry record has its row, with its formula, derivative and parameters as the
    record writes them; `python tests/readme_tables.py` rewrites the tables."""
    from readme_tables import BLOCK, rewrite, tables

    found = {m.group(2): m.group(3) for page in PAGES for m in BLOCK.finditer(text(page))}
    assert set(found) == {"activations", "losses"}
    assert found == tables(), "run: python tests/readme_tables.py"
    assert all(rewrite(text(page)) == text(page) for page in PAGES)
