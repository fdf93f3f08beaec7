"""gradcalc check --class: a whole class graded in one run, into a gradebook and a summary."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from course_sheets import write_sheets

N_SHEETS = 200


@pytest.fixture(scope="module")
def klass(tmp_path_factory) -> tuple[Path, Path, dict[str, str | None]]:
    from conftest import _run_cli

    root = tmp_path_factory.mktemp("class")
    course = root / "hw"
    args = ["generate", "--example", "worked-example", "--count", str(N_SHEETS), "--seed", "3"]
    args.append("--no-pdf")  # grading reads no PDF; compiling 200 took 27 s
    assert _run_cli([*args, "-o", str(course)]).exit_code == 0
    planted = write_sheets(course, root / "sheets")
    return course, root / "sheets", planted


def test_the_gradebook_names_every_planted_mistake(klass, run_cli, tmp_path):
    course, sheets, planted = klass
    summary = tmp_path / "cells.csv"
    result = run_cli(["check", str(course), "--class", str(sheets), "--summary", str(summary)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == N_SHEETS
    assert {r["status"] for r in rows} == {"graded"}
    for row in rows:
        kind = planted[row["id"]]
        assert row["max"] == "34", row  # 32 cells and the final output and cost
        if kind is None:
            assert (row["score"], row["first_error"], row["mistakes"]) == ("34", "", ""), row
        elif kind == "garbled":
            assert row["score"] == "33" and row["first_error"].startswith("z²₁"), row
        else:
            assert row["score"] == "33", row
            cell = "δ³₁" if kind == "missing_activation_derivative" else "b³₁ new"
            assert row["first_error"].startswith(f"{cell}: "), row
            assert kind in row["first_error"] and kind in row["mistakes"], row
    cells = {r["cell"]: r for r in csv.DictReader(io.StringIO(summary.read_text()))}
    quarter = N_SHEETS // 4
    assert cells["δ³₁"]["wrong"] == str(quarter)
    assert cells["δ³₁"]["mistakes"] == f"missing_activation_derivative ×{quarter}"
    assert cells["b³₁ new"]["mistakes"] == f"update_sign ×{quarter}"
    assert cells["z²₁"]["wrong"] == str(quarter)
    assert cells["a²₁"]["wrong"] == "0"


def test_json_has_the_sheets_cells_and_mistake_counts(klass, run_cli, tmp_path):
    course, sheets, _ = klass
    out = tmp_path / "gb.json"
    result = run_cli(
        ["check", str(course), "--class", str(sheets), "--format", "json", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "200 sheets graded" in result.stdout and "Most often wrong:" in result.stdout
    doc = json.loads(out.read_text())
    assert doc["format_version"] == 1 and len(doc["sheets"]) == N_SHEETS
    assert doc["mistakes"] == {"missing_activation_derivative": 50, "update_sign": 50}


def test_an_unreadable_sheet_exits_2_and_the_gradebook_says_which(klass, run_cli, tmp_path):
    course, sheets, _ = klass
    bad = tmp_path / "001.yaml"
    bad.write_text("z: {2: [0.1, x]}\n")
    stranger = tmp_path / "zed.yaml"
    stranger.write_text("loss: 0.1\n")
    gb = tmp_path / "gb.csv"
    files = [str(sheets / "003.json"), str(bad), str(stranger)]
    result = run_cli(
        ["check", str(course), *[arg for f in files for arg in ("--class", f)], "-o", str(gb)]
    )
    assert result.exit_code == 2
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("Error: 2 of ")
    rows = {(r["id"], r["status"]): r for r in csv.DictReader(gb.open())}
    assert rows[("001", "unreadable")]["error"].startswith(
        f"{bad}, line 1: z.2[1]: expected a number"
    )
    assert ("zed", "unknown id") in rows
    assert ("003", "graded") in rows and ("002", "no sheet") in rows


def test_class_needs_a_course_folder(run_cli, tmp_path):
    result = run_cli(["check", str(tmp_path), "--class", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a course folder: no course.json" in result.stderr


def test_class_refuses_template_and_example(run_cli, tmp_path):
    for extra in (["--template"], ["--example", "worked-example"]):
        result = run_cli(["check", str(tmp_path), "--class", str(tmp_path), *extra])
        assert result.exit_code == 2 and "--class grades against a course folder" in result.stderr


def test_an_integer_id_finds_its_zero_padded_variant(klass, run_cli, tmp_path):
    course, sheets, _ = klass
    doc = json.loads((sheets / "003.json").read_text())
    (tmp_path / "mine.json").write_text(json.dumps({"id": 3, **doc}))
    result = run_cli(["check", str(course), "--class", str(tmp_path / "mine.json")])
    assert result.exit_code == 0, result.output
    row = next(r for r in csv.DictReader(io.StringIO(result.stdout)) if r["id"] == "003")
    assert row["status"] == "graded" and row["file"].endswith("mine.json")


def test_sheets_are_read_as_check_reads_one(klass, run_cli, tmp_path):
    """Strict JSON for a .json sheet, and a step document recorded for another run refused."""
    course, sheets, _ = klass
    doc = json.loads((sheets / "003.json").read_text())
    (tmp_path / "003.json").write_text(json.dumps(doc).replace('"loss":', '"loss": NaN, "x":', 1))
    (tmp_path / "005.json").write_text(json.dumps({**doc, "learning_rate": 7.0}))
    (tmp_path / "nobody.json").write_text("{")  # unreadable, and its name is no id
    gb = tmp_path / "gb.csv"
    result = run_cli(["check", str(course), "--class", str(tmp_path), "-o", str(gb)])
    assert result.exit_code == 2
    rows = {r["id"]: r for r in csv.DictReader(gb.open()) if r["status"] == "unreadable"}
    assert set(rows) == {"003", "005", "nobody"}
    assert "not valid JSON" in rows["003"]["error"]
    single = run_cli(["check", str(course / "005/config.yaml"), str(tmp_path / "005.json")])
    assert single.exit_code == 2
    assert rows["005"]["error"] == single.stderr.strip().removeprefix("Error: ")
