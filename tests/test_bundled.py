"""What an installed gradcalc carries besides its code (issue 16, item 6): the JSON Schemas
(`gradcalc schema NAME`) and the bundled answer sheets (`gradcalc check --example NAME`), both
usable from a folder that is not a checkout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gradcalc.contract import SCHEMAS
from gradcalc.step.examples import answer_sheets, available

ROOT = Path(__file__).resolve().parent.parent

# One real document per schema, produced by the command the schema describes.
DOCUMENTS = {
    "step": ["step", "--example", "worked-example", "--format", "json"],
    "derive": ["derive", "sigmoid", "--at", "0.3", "--format", "json"],
    "check": ["check", "--example", "worked-example-slip", "--decimals", "3", "--format", "json"],
    "list": ["list", "--format", "json"],
    # A course of three, one sheet graded (the others have none): made in the test's folder.
    "gradebook": ["check", "hw", "--class", "sheets", "--format", "json"],
}


def test_every_published_schema_has_its_command() -> None:
    published = {p.name.removesuffix(".schema.json") for p in (ROOT / "schemas").glob("*.json")}
    assert published == set(SCHEMAS) == set(DOCUMENTS)


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_prints_the_published_file(run_cli, name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no schemas/ here: the command finds its own
    result = run_cli(["schema", name])
    assert result.exit_code == 0, result.output
    published = (ROOT / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8")
    assert result.stdout == published
    assert json.loads(result.stdout)["title"].startswith(f"gradcalc {name} ")


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_validates_what_its_command_prints(run_cli, name: str, tmp_path, monkeypatch):
    jsonschema = pytest.importorskip("jsonschema")
    monkeypatch.chdir(tmp_path)
    schema = json.loads(run_cli(["schema", name]).stdout)
    if name == "gradebook":
        run_cli(["generate", "--example", "worked-example", "--count", "3", "-o", "hw"])
        (tmp_path / "sheets").mkdir()
        step = run_cli(["step", "hw/1/config.yaml", "--round", "3", "--format", "json"])
        (tmp_path / "sheets" / "1.json").write_text(step.stdout, encoding="utf-8")
    result = run_cli(DOCUMENTS[name])
    assert result.exit_code in (0, 1), result.output  # check's slip sheet: one wrong cell
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(json.loads(result.stdout)))
    # The schema says something: a document with only the version keys does not pass.
    assert list(validator.iter_errors({"format_version": 1, "gradcalc_version": "0.1.0"}))


def test_schema_writes_a_file(run_cli, tmp_path) -> None:
    target = tmp_path / "step.schema.json"
    result = run_cli(["schema", "step", "-o", str(target)])
    assert result.exit_code == 0 and result.stdout == ""
    assert target.read_text(encoding="utf-8") == run_cli(["schema", "step", "-o", "-"]).stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["schema", "steps"], "'steps' is not one of 'step', 'derive', 'check', 'list'"),
        (["schema"], "Missing argument 'COMMAND'"),
    ],
)
def test_schema_refuses_an_unknown_name(run_cli, args: list[str], needle: str) -> None:
    result = run_cli(args)
    assert result.exit_code == 2 and result.stdout == ""
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1


# ---- bundled answer sheets ---------------------------------------------------------------------


def test_every_answer_sheet_answers_a_bundled_config() -> None:
    from gradcalc.step.examples import find_answers

    sheets = answer_sheets()
    assert {"worked-example", "worked-example-slip"} <= set(sheets)
    for name in sheets:
        config, path = find_answers(name)
        assert config in available() and path == sheets[name]
    assert find_answers("worked-example-slip")[0] == "worked-example"


@pytest.mark.parametrize("name", sorted(answer_sheets()))
def test_check_example_grades_the_bundled_sheet(run_cli, name: str, tmp_path, monkeypatch):
    """The same grades as the sheet and its config given by path, from an empty folder."""
    config, path = ROOT / "configs" / "worked-example.yaml", ROOT / "configs" / "answers"
    by_path = run_cli(
        ["check", str(config), str(path / f"{name}.yaml"), "--decimals", "3", "--format", "json"]
    )
    monkeypatch.chdir(tmp_path)
    bundled = run_cli(["check", "--example", name, "--decimals", "3", "--format", "json"])
    assert bundled.exit_code == by_path.exit_code == (1 if "slip" in name else 0)
    doc, expected = json.loads(bundled.stdout), json.loads(by_path.stdout)
    assert doc["cells"] == expected["cells"] and doc["score"] == expected["score"]
    table = run_cli(["check", "--example", name, "--decimals", "3"]).stdout
    assert table.startswith(f"answers/{name}.yaml\ngraded against worked-example.yaml")


def test_check_example_names_the_sheets_it_has(run_cli) -> None:
    result = run_cli(["check", "--example", "worked-exampel-slip"])
    assert result.exit_code == 2
    assert "no bundled answer sheet named 'worked-exampel-slip'" in result.stderr
    assert "did you mean 'worked-example-slip'?" in result.stderr
    # A config without a bundled sheet still takes ANSWERS or --template, as before.
    result = run_cli(["check", "--example", "tanh-mse"])
    assert result.exit_code == 2 and "worked-example-slip" in result.stderr
    assert run_cli(["check", "--example", "tanh-mse", "--template"]).exit_code == 0
