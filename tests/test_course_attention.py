"""The course kit for token embeddings and self-attention: `gradcalc generate` of the bundled
attention-worked-example template (its keys against `step`, an independent float64 reference
and central differences of it, the max_attention_weight constraint), its sheets and LaTeX,
check --class naming a planted attention mistake, and the exports that take such a course."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from test_layers_attention import check_against_reference, ref_attention_back, ref_net

N_VARIANTS = 30
DECIMALS = 3
NAME = "attention-worked-example"
ROOT = Path(__file__).parent.parent
TEMPLATE = ROOT / f"configs/templates/{NAME}.template.yaml"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    from conftest import _run_cli

    out = tmp_path_factory.mktemp("attention") / "hw"
    args = ["generate", "--example", NAME, "--count", str(N_VARIANTS), "--seed", "11"]
    result = _run_cli([*args, "-o", str(out), "--no-pdf"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return out


def _folders(out: Path) -> list[Path]:
    manifest = json.loads((out / "course.json").read_text())
    return [out / v["folder"] for v in manifest["variants"]]


def _close(a, b) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= 1e-12 + 1e-9 * np.abs(b)))


def _reference(cfg: dict[str, Any], mode: str = "") -> dict[str, Any]:
    """The forward pass by test_layers_attention's loop reference, and the backward pass by hand:
    δ³ = ∂C/∂a³ of the mse (the mean over the T·d values; the activation is linear), attention's
    by its loop reference, and ∂C/∂E row v the sum of ∂C/∂x³[t] over the positions holding v."""
    ids = np.array(cfg["tokens"])
    y = np.array(cfg["targets"], float)
    embedding, attention = cfg["layers"]
    forward = ref_net(cfg["layers"], ids)
    a3 = forward[1]["a"]
    delta3 = 2 * (a3 - y) / y.size
    x = forward[0]["a"]
    back = ref_attention_back(x, attention, delta3, mode)
    table = np.zeros_like(np.array(embedding["table"], float))
    for t, v in enumerate(ids):
        table[v] += back["grad_input"][t]
    return {
        "forward": forward,
        "loss": float(np.mean((a3 - y) ** 2)),
        "delta": [back["grad_input"], delta3],
        "grads": [{"table": table}, {k: back[k] for k in ("wq", "wk", "wv")}],
        "stages": {k: back[k] for k in ("grad_q", "grad_k", "grad_v")},
    }


def test_every_key_is_step_and_the_reference_and_every_constraint_holds(course, run_cli):
    template = yaml.safe_load(TEMPLATE.read_text())
    bound = template["constraints"]["max_attention_weight"]
    seen = set()
    folders = _folders(course)
    for n, folder in enumerate(folders):
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        seen.add(json.dumps(cfg, sort_keys=True))
        key = json.loads((folder / "key.json").read_text())
        result = run_cli(["step", str(folder / "config.yaml"), "--format", "json"])
        assert result.exit_code == 0, result.output
        step = json.loads(result.stdout)
        assert key.pop("config") == "config.yaml" and step.pop("config").endswith("config.yaml")
        assert key == step, folder
        ref = _reference(cfg)
        records = key["steps"][0]["layers"]
        assert _close(key["steps"][0]["loss"], ref["loss"])
        for i, record in enumerate(records):
            assert _close(record["z"], ref["forward"][i]["z"]), (folder, i)
            assert _close(record["a"], ref["forward"][i]["a"]), (folder, i)
            assert _close(record["delta"], ref["delta"][i]), (folder, i)
            for name, g in ref["grads"][i].items():
                assert _close(record["grads"][name], g), (folder, i, name)
                assert _close(
                    record["params"][name],
                    np.array(cfg["layers"][i][name]) - cfg["learning_rate"] * g,
                )
        weights = np.array(records[1]["attention_weights"])
        assert _close(weights, ref["forward"][1]["weights"])
        for name, g in ref["stages"].items():
            assert _close(records[1][name], g), (folder, name)
        # the constraints: no nearly one-hot row, every gradient shows, the loss falls
        assert weights.max() <= bound and weights.min() >= 1 - bound, folder
        assert len(set(cfg["tokens"])) == 2  # a repeated token zeroes ∂C/∂S: redrawn
        used = np.array(records[0]["grads"]["table"])[cfg["tokens"]]
        smallest = 0.5 * 10.0**-DECIMALS
        for g in (used, *(np.array(records[1]["grads"][k]) for k in ("wq", "wk", "wv"))):
            assert np.abs(g).min() >= smallest, folder
        assert np.abs(np.array(records[1]["z"])).max() <= 4
        assert key["final"]["loss"] < key["steps"][0]["loss"]
        if n < 5:  # and the reference's own backward pass, by central differences
            layers = [dict(layer) for layer in cfg["layers"]]
            check_against_reference(
                step, layers, np.array([cfg["tokens"]]), np.array([cfg["targets"]], float)
            )
    assert len(seen) == N_VARIANTS


def test_the_template_draws_what_it_says(course):
    drawn = [yaml.safe_load((f / "config.yaml").read_text()) for f in _folders(course)]
    assert {t for cfg in drawn for t in cfg["tokens"]} == {0, 1, 2}
    for name, values in (("wq", {-1, 0, 1}), ("wk", {-1, 0, 1}), ("wv", {-1, 0, 1, 2})):
        seen = {v for cfg in drawn for row in cfg["layers"][1][name] for v in row}
        assert seen == values, name
    assert {cfg["learning_rate"] for cfg in drawn} == {0.1, 0.2}


def test_without_the_bound_some_row_is_nearly_one_hot_and_a_tight_one_names_itself(
    tmp_path, run_cli
):
    base = TEMPLATE.read_text()
    loose = tmp_path / "loose.yaml"
    loose.write_text(re.sub(r"  max_attention_weight: .*\n", "", base), "utf-8")
    args = ["--count", "30", "--seed", "4", "--no-pdf"]
    assert run_cli(["generate", str(loose), *args, "-o", str(tmp_path / "a")]).exit_code == 0
    largest = [
        np.max(
            json.loads((f / "key.json").read_text())["steps"][0]["layers"][1]["attention_weights"]
        )
        for f in _folders(tmp_path / "a")
    ]
    assert max(largest) > 0.9
    tight = tmp_path / "tight.yaml"
    tight.write_text(base.replace("max_attention_weight: 0.9", "max_attention_weight: 0.5"))
    result = run_cli(["generate", str(tight), *args, "-o", str(tmp_path / "b")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "constraints.max_attention_weight: no variant met it" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(base.replace("max_attention_weight: 0.9", "max_attention_weight: 0"))
    result = run_cli(["generate", str(bad), *args, "-o", str(tmp_path / "c")])
    assert result.exit_code == 2 and "max_attention_weight: expected a number > 0" in result.stderr


def test_a_causal_row_of_one_position_is_not_held_to_the_bound(tmp_path, run_cli):
    """Under a causal mask the first row attends to itself alone (weight 1 by force): the bound
    looks at the rows that attend to two or more positions."""
    text = TEMPLATE.read_text().replace("causal: false", "causal: true")
    path = tmp_path / "causal.yaml"
    path.write_text(text, "utf-8")
    out = tmp_path / "o"
    result = run_cli(["generate", str(path), "--count", "4", "--no-pdf", "-o", str(out)])
    assert result.exit_code == 0, result.output
    for folder in _folders(out):
        p = np.array(
            json.loads((folder / "key.json").read_text())["steps"][0]["layers"][1][
                "attention_weights"
            ]
        )
        assert p[0, 0, 0] == 1 and 0.1 <= p[0, 1, 0] <= 0.9


def test_every_folder_holds_a_sheet_answers_key_and_solution(course, run_cli, monkeypatch):
    folder = _folders(course)[0]
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    monkeypatch.chdir(folder)
    sheet = (folder / "sheet.md").read_text()
    assert f"rounded to {DECIMALS} decimals" in sheet
    ids = ", ".join(str(t) for t in cfg["tokens"])
    rows = ", ".join("[" + ", ".join(f"{v:g}" for v in r) + "]" for r in cfg["targets"])
    for text in (
        f"token ids x: ({ids})",
        f"the target y = [{rows}] (a row per position)",
        "query position i (the row), key position j (the column)",
        "E² = [[",
        "1 head, d_k = 2, no mask, residual x + f(z)",
        "S³[0,1,0]",
        "P³[0,0,1]",
        "∂C/∂S³[0,1,1]",
        "∂C/∂Q³[1,0]",
        "∂C/∂E²[2,1]",
        "∂C/∂wk³[0,1]",
        "wv³[1,1] new",
        "E²[0,0] new",
    ):
        assert text in sheet, text
    # the ids are not differentiated: no ∂C/∂x² is asked of the embedding
    assert "∂C/∂x²" not in sheet and "∂C/∂x³[1,1]" in sheet
    template = run_cli(["check", str(folder / "config.yaml"), "--template"])
    assert (folder / "answers.yaml").read_text().split("\n")[4:] == template.stdout.split("\n")[4:]
    assert "\n  2: [null" not in template.stdout.split("grad_input:")[1].split("grad_table")[0]
    graded = run_cli(
        ["check", str(folder / "config.yaml"), str(folder / "key.json"), "--format", "json"]
    )
    assert graded.exit_code == 0, graded.output
    report = json.loads(graded.stdout)
    assert report["score"] == report["max_score"] > 100
    assert (folder / "solution.md").read_text() == run_cli(
        ["step", "config.yaml", "--format", "markdown"]
    ).stdout
    assert (folder / "solution.tex").read_text() == run_cli(
        ["step", "config.yaml", "--format", "latex"]
    ).stdout


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_the_latex_sheets_compile(course, tmp_path):
    for folder in _folders(course)[:2]:
        tex = (folder / "sheet.tex").read_text()
        assert not any(ord(ch) > 127 for ch in tex), [ch for ch in tex if ord(ch) > 127]
        assert "token ids $x = (" in tex and "\\begin{pmatrix}" in tex
        for name in ("sheet.tex", "solution.tex"):
            done = subprocess.run(
                [
                    "pdflatex",
                    "-interaction=nonstopmode",
                    "-halt-on-error",
                    "-output-directory",
                    str(tmp_path),
                    str(folder / name),
                ],
                capture_output=True,
                check=False,
                timeout=120,
            )
            assert done.returncode == 0, (folder, name, done.stdout[-2000:])


# ---- the class ---------------------------------------------------------------------------------


def _plant(doc: dict[str, Any], cfg: dict[str, Any]) -> tuple[str, str] | None:
    """∂C/∂Q and ∂C/∂K without the scale 1/√d_k (attention_missing_scale), worked to the
    sheet's places: (its first cell, its name), or None where the slip is within rounding."""
    record = doc["steps"][0]["layers"][1]
    x = np.array(doc["steps"][0]["layers"][0]["a"], float)
    wrong = ref_attention_back(
        x, cfg["layers"][1], np.array(record["delta"]), "attention_missing_scale"
    )
    # every cell of ∂C/∂Q, the first the slip changes, 10 units of the last place off: well
    # past check's rounding bound, so the first wrong cell is the slip's and named for it
    if np.abs(wrong["grad_q"] - np.array(record["grad_q"])).min() <= 10 * 10.0**-DECIMALS:
        return None
    for stage in ("grad_q", "grad_k", "grad_input"):
        record[stage] = np.round(wrong[stage], DECIMALS).tolist()
    for w in ("wq", "wk"):
        record["grads"][w] = np.round(wrong[w], DECIMALS).tolist()
    return "∂C/∂Q³", "attention_missing_scale"


def test_check_class_gives_full_marks_and_names_the_planted_mistake(course, run_cli, tmp_path):
    sheets = tmp_path / "sheets"
    sheets.mkdir()
    planted = {}
    for i, folder in enumerate(_folders(course)):
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        result = run_cli(
            ["step", str(folder / "config.yaml"), "--round", str(DECIMALS), "--format", "json"]
        )
        doc = json.loads(result.stdout)
        planted[folder.name] = _plant(doc, cfg) if i % 2 else None
        (sheets / f"{folder.name}.json").write_text(json.dumps(doc))
    result = run_cli(["check", str(course), "--class", str(sheets)])
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert len(rows) == N_VARIANTS and {r["status"] for r in rows.values()} == {"graded"}
    assert sum(p is not None for p in planted.values()) >= N_VARIANTS // 4
    for sid, row in rows.items():
        if planted[sid] is not None:
            cell, mistake = planted[sid]
            assert row["first_error"].startswith(cell), row
            assert mistake in row["first_error"], row
            assert int(row["score"]) < int(row["max"])
        else:
            assert row["score"] == row["max"] != "" and row["first_error"] == "", row


# ---- exports -----------------------------------------------------------------------------------


def test_exports_of_an_attention_course(tmp_path, run_cli):
    """prairielearn writes a question of every cell (its server.py grades with gradcalc check:
    tests/test_course_prairielearn.py); moodle-xml and canvas-qti ask for every cell with its
    key value and tolerance."""
    import xml.etree.ElementTree as ET

    from test_course_exports import canvas_package

    args = ["generate", "--example", NAME, "--count", "3", "--seed", "1", "--no-pdf"]
    exported = run_cli([*args, "-o", str(tmp_path / "p"), "--format", "prairielearn"])
    assert exported.exit_code == 0, exported.output
    question = next((tmp_path / "p" / "exports" / "prairielearn").iterdir()) / "question.html"
    assert question.read_text().count("<pl-number-input") > 0
    out = tmp_path / "o"
    formats = ["--format", "moodle-xml", "--format", "canvas-qti", "--format", "gradescope"]
    result = run_cli([*args, "-o", str(out), *formats])
    assert result.exit_code == 0, result.output
    quiz = ET.fromstring((out / "exports" / "moodle.xml").read_text(encoding="utf-8"))
    questions = [q for q in quiz.iter("question") if q.get("type") == "cloze"]
    tests = canvas_package(out / "exports" / "canvas-qti.zip")
    assert len(questions) == len(tests) == 3
    for folder, question, cells in zip(_folders(out), questions, tests.values(), strict=True):
        key = json.loads((folder / "key.json").read_text())
        record = key["steps"][0]["layers"][1]
        text = question.find("questiontext/text").text or ""
        answers = [float(v) for v in re.findall(r"\{1:NUMERICAL:=([^:]+):", text)]
        assert len(answers) == len(cells) > 100
        assert sorted(answers) == pytest.approx(sorted(v for v, _, _ in cells.values()))
        assert "grad_input_2_0" not in cells  # the ids are not differentiated
        for name, value in (
            ("grad_scores_3_0_1_0", record["grad_scores"][0][1][0]),
            ("grad_wq_3_1_0", record["grads"]["wq"][1][0]),
            ("grad_table_2_0_1", key["steps"][0]["layers"][0]["grads"]["table"][0][1]),
        ):
            exact, lo, hi = cells[name]
            assert exact == pytest.approx(value, rel=1e-12) and lo < exact < hi, name
        assert "P^{3}" in text and "\\partial C/\\partial S^{3}" in text
        assert "token ids" in text and "1 head" in text


def test_the_gradescope_autograder_grades_and_names_the_attention_mistake(tmp_path, run_cli):
    from test_course_exports import _autograder, _valid_results

    out = tmp_path / "c"
    args = ["generate", "--example", NAME, "--count", "6", "--seed", "1", "--no-pdf"]
    assert run_cli([*args, "-o", str(out), "--format", "gradescope"]).exit_code == 0

    def rounded(folder: Path) -> dict[str, Any]:
        config = str(folder / "config.yaml")
        return json.loads(run_cli(["step", config, "--round", "3", "--format", "json"]).stdout)

    def cfg(folder: Path) -> dict[str, Any]:
        return yaml.safe_load((folder / "config.yaml").read_text())

    folder = next(f for f in _folders(out) if _plant(rounded(f), cfg(f)))
    user = {"email": "a@b.org", "sid": folder.name, "name": "A"}
    results = _autograder(out, tmp_path / "full", user, rounded(folder))
    _valid_results(results)
    full = json.loads(
        run_cli(
            ["check", str(folder / "config.yaml"), str(folder / "key.json"), "--format", "json"]
        ).stdout
    )["max_score"]
    assert results["score"] == full
    sheet = rounded(folder)
    _, mistake = _plant(sheet, cfg(folder)) or ("", "")
    results = _autograder(out, tmp_path / "slip", user, sheet)
    _valid_results(results)
    assert results["score"] < full and mistake in json.dumps(results)


def test_the_docs_page_shows_the_bundled_attention_template():
    page = (ROOT / "docs/course-kit.md").read_text()
    section = page.split("### Embeddings and attention", 1)[1]
    shown = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    assert yaml.safe_load(shown) == yaml.safe_load(TEMPLATE.read_text())


def test_a_repeated_token_template_names_an_overwritten_embedding_gradient(tmp_path, run_cli):
    """Three positions, a token repeated (drawn by `choice` of whole sequences): ∂C/∂E's row of
    the repeated token is the sum over its positions, and a sheet that writes the last
    position's δ over the first is named embedding_gradient_overwritten."""
    text = re.sub(
        r"(?m)^tokens: .*$", "tokens: {choice: [[0, 1, 0], [2, 1, 2]]}", TEMPLATE.read_text()
    )
    text = re.sub(r"(?m)^targets: .*$", "targets: {int: [-1, 2], shape: [3, 2]}", text)
    path = tmp_path / "t3.yaml"
    path.write_text(text, "utf-8")
    out = tmp_path / "o"
    result = run_cli(
        ["generate", str(path), "--count", "8", "--seed", "3", "--no-pdf", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    sheets = tmp_path / "sheets"
    sheets.mkdir()
    planted = {}
    for folder in _folders(out):
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        ids = cfg["tokens"]
        repeated = ids[0]
        assert ids[2] == repeated != ids[1]
        key = json.loads((folder / "key.json").read_text())["steps"][0]["layers"][0]
        delta = np.array(key["delta"])
        assert _close(np.array(key["grads"]["table"])[repeated], delta[0] + delta[2])
        sheet = json.loads(
            run_cli(
                ["step", str(folder / "config.yaml"), "--round", "3", "--format", "json"]
            ).stdout
        )
        record = sheet["steps"][0]["layers"][0]
        if np.abs(delta[0]).min() > 10 * 10.0**-DECIMALS:  # the slip shows in both cells
            record["grads"]["table"][repeated] = record["delta"][2]  # written over, not added
            planted[folder.name] = f"∂C/∂E²[{repeated},0]"
        (sheets / f"{folder.name}.json").write_text(json.dumps(sheet))
    assert len(planted) >= 2
    result = run_cli(["check", str(out), "--class", str(sheets)])
    assert result.exit_code == 0, result.output
    for row in csv.DictReader(io.StringIO(result.stdout)):
        if row["id"] in planted:
            assert row["first_error"].startswith(planted[row["id"]]), row
            assert "embedding_gradient_overwritten" in row["first_error"], row
        else:
            assert row["score"] == row["max"] != "", row
