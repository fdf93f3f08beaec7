"""gradcalc generate --format: each course-platform export parsed against its published structure,
and the PrairieLearn server.py and the Gradescope autograder run as their platforms run them."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from gradcalc.course.exports import EXPORTS

ROSTER = "id,name,email\nalice,Alice,alice@uni.edu\nbob,Bob,bob@uni.edu\ncarol,Carol,c@uni.edu\n"
FORMATS = list(EXPORTS)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    from conftest import _run_cli

    root = tmp_path_factory.mktemp("exports")
    (root / "roster.csv").write_text(ROSTER)
    args = ["generate", "--example", "worked-example", "--roster", str(root / "roster.csv")]
    args += ["--seed", "9", "-o", str(root / "hw")]
    for fmt in FORMATS:
        args += ["--format", fmt]
    result = _run_cli(args)
    assert result.exit_code == 0, result.output
    return root / "hw"


def _key(course: Path, sid: str) -> dict:
    return json.loads((course / sid / "key.json").read_text())


def _key_cells(course: Path, sid: str) -> dict[str, float]:
    """The key's cells by the exports' names (z_2_1, delta_3_1, gw_2_1_3, w_2_1_3, loss)."""
    key = _key(course, sid)
    step = key["steps"][0]
    out = {"loss": step["loss"]}
    short = {"grad_weights": "gw", "grad_biases": "gb", "weights": "w", "biases": "b"}
    for layer in step["layers"]:
        l = layer["layer"]
        for q in ("z", "a", "delta", "grad_weights", "grad_biases", "weights", "biases"):
            values = layer[q]
            name = short.get(q, q)
            for j, v in enumerate(values, start=1):
                if isinstance(v, list):
                    for k, vk in enumerate(v, start=1):
                        out[f"{name}_{l}_{j}_{k}"] = vk
                else:
                    out[f"{name}_{l}_{j}"] = v
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_export_is_written_and_the_same_twice(course, tmp_path, run_cli, fmt):
    args = [
        "generate",
        "--example",
        "worked-example",
        "--roster",
        str(course.parent / "roster.csv"),
    ]
    result = run_cli([*args, "--seed", "9", "-o", str(tmp_path / "again"), "--format", fmt])
    assert result.exit_code == 0
    mine = sorted(p for p in (tmp_path / "again/exports").rglob("*") if p.is_file())
    assert mine
    for path in mine:
        other = course / "exports" / path.relative_to(tmp_path / "again/exports")
        assert path.read_bytes() == other.read_bytes(), path


# ---- PrairieLearn ------------------------------------------------------------------------------


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "pl-number-input":
            self.inputs.append(dict(attrs))


def _server(course: Path):
    """The question folder and server.py's VARIANTS (read without grading: grade() runs in a
    fresh interpreter, tests/pl_server.py, as it puts its bundled gradcalc in place)."""
    from pl_server import load_variants

    folder = next((course / "exports/prairielearn").iterdir())
    return folder, load_variants(folder / "server.py")


def test_prairielearn_info_and_question(course):
    folder, variants = _server(course)
    info = json.loads((folder / "info.json").read_text())
    assert {"uuid", "title", "topic", "tags", "type"} <= set(info)
    assert info["type"] == "v3" and isinstance(info["tags"], list)
    uuid.UUID(info["uuid"])
    parser = _Inputs()
    parser.feed((folder / "question.html").read_text())
    names = [i["answers-name"] for i in parser.inputs]
    assert names == [c["name"] for c in variants[0]["cells"]] and len(names) == 32
    assert set(names) == set(_key_cells(course, "alice"))
    for i in parser.inputs:
        assert i["comparison"] == "relabs" and float(i["atol"]) == 0.001 and i["label"]
    assert "{{{params.problem}}}" in (folder / "question.html").read_text()


def test_prairielearn_server_generates_and_grades_full_and_partial_credit(course, tmp_path):
    from pl_server import run

    folder, variants = _server(course)
    ids = [v["id"] for v in variants]
    assert ids == ["alice", "bob", "carol"]
    cases = []
    for seed in range(6):
        variant = variants[seed % 3]
        key = _key_cells(course, variant["id"])
        # full credit: the key rounded to the sheet's 3 decimals
        full = {k: round(v, 3) for k, v in key.items()}
        # partial: δ³₁ written without σ'(z³₁), the cells after it worked from it
        config = variant["config"]
        wrong = round(full["a_3_1"] - config["target"][0], 3)
        b = round(config["layers"][1]["biases"][0] - config["learning_rate"] * wrong, 3)
        partial = {**full, "delta_3_1": wrong, "gb_3_1": wrong, "b_3_1": b}
        cases += [{"seed": seed, "submitted": full}, {"seed": seed, "submitted": partial}]
    results = run(folder / "server.py", cases, tmp_path)["results"]
    seen = set()
    for result in results[::2]:
        generated, graded = result["generated"], result["graded"]
        variant = variants[generated["params"]["variant"]]
        seen.add(variant["id"])
        key = _key_cells(course, variant["id"])
        assert generated["correct_answers"] == pytest.approx(key, rel=1e-12)
        assert graded["score"] == 1.0
        assert all(p["score"] == 1.0 for p in graded["partial_scores"].values())
    for result in results[1::2]:
        graded = result["graded"]
        scores = {k: p["score"] for k, p in graded["partial_scores"].items()}
        assert scores["delta_3_1"] == 0.0
        assert scores["gb_3_1"] == scores["b_3_1"] == 1.0  # carried forward
        assert graded["partial_scores"]["b_3_1"]["feedback"].startswith("carried")
        assert graded["score"] == pytest.approx(31 / 32)
    assert seen == {"alice", "bob", "carol"}


def test_prairielearn_grade_agrees_with_check_on_the_sheets_slip(tmp_path, run_cli):
    """The worked example itself as a one-variant course; its bundled slip sheet (δ³ without
    σ'(z³), all after it carried) graded by server.py and by gradcalc check, cell by cell."""
    from pl_server import run

    repo = Path(__file__).resolve().parent.parent
    template = yaml.safe_load((repo / "configs/worked-example.yaml").read_text())
    template["learning_rate"] = {"choice": [1.0]}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(template))
    out = tmp_path / "c"
    args = ["generate", str(path), "--count", "1", "-o", str(out), "--format", "prairielearn"]
    assert run_cli(args).exit_code == 0
    folder, _ = _server(out)
    slip = yaml.safe_load((repo / "configs/answers/worked-example-slip.yaml").read_text())
    submitted = {}
    short = {"grad_weights": "gw", "grad_biases": "gb", "weights": "w", "biases": "b"}
    for q, layers in slip.items():
        if q == "step":
            continue
        if q == "loss":
            submitted["loss"] = layers
            continue
        for l, values in layers.items():
            for j, v in enumerate(values, start=1):
                if isinstance(v, list):
                    for k, vk in enumerate(v, start=1):
                        submitted[f"{short.get(q, q)}_{l}_{j}_{k}"] = vk
                else:
                    submitted[f"{short.get(q, q)}_{l}_{j}"] = v
    data = run(folder / "server.py", [{"seed": 0, "submitted": submitted}], tmp_path)
    partial = data["results"][0]["graded"]["partial_scores"]
    graded = run_cli(
        [
            "check",
            str(out / "1/config.yaml"),
            str(repo / "configs/answers/worked-example-slip.yaml"),
            "--decimals",
            "3",
            "--format",
            "json",
        ]
    )
    cells = json.loads(graded.stdout)["cells"]
    by_check = {}
    for c in cells:
        name = "_".join(
            [short.get(c["quantity"], c["quantity"])]
            + ([str(c["layer"])] if c["layer"] else [])
            + [str(i) for i in c["index"]]
        )
        by_check[name] = 1.0 if c["verdict"] in ("correct", "rounding", "carried") else 0.0
        assert partial[name]["feedback"].startswith(c["verdict"])
    mine = {k: partial[k]["score"] for k in by_check}
    assert mine == by_check
    assert sum(mine.values()) == 15 and mine["delta_3_1"] == 0.0
    assert "wrong: " in partial["delta_3_1"]["feedback"]  # the named mistake, as check names it


# ---- Moodle XML --------------------------------------------------------------------------------

CLOZE = re.compile(r"\{1:NUMERICAL:=([^:}]+):([^}]+)\}")


def test_moodle_xml_is_a_quiz_of_cloze_questions_with_tolerances(course):
    root = ET.parse(course / "exports/moodle.xml").getroot()
    assert root.tag == "quiz"
    questions = root.findall("question")
    assert questions[0].get("type") == "category"
    assert questions[0].find("category/text").text.startswith("$course$/")
    cloze = questions[1:]
    assert [q.get("type") for q in cloze] == ["cloze"] * 3
    for q, sid in zip(cloze, ["alice", "bob", "carol"], strict=True):
        assert sid in q.find("name/text").text
        text = q.find("questiontext")
        assert text.get("format") == "html"
        answers = CLOZE.findall(text.find("text").text)
        key = list(_key_cells(course, sid).values())
        assert len(answers) == 32
        values = sorted(float(v) for v, _ in answers)
        assert values == pytest.approx(sorted(key), rel=1e-11, abs=1e-15)
        assert all(float(t) >= 0.001 for _, t in answers)
        assert q.find("penalty") is not None and q.find("generalfeedback") is not None


# ---- Canvas QTI 1.2 ----------------------------------------------------------------------------

QTI = "{http://www.imsglobal.org/xsd/ims_qtiasiv1p2}"
CP = "{http://www.imsglobal.org/xsd/imscp_v1p1}"


# The Canvas question types this export writes, and the QTI 1.2 ASI order of an item's
# children (itemmetadata, presentation, resprocessing; objectives, rubric and feedback unused).
CANVAS_TYPES = {"text_only_question": 0, "numerical_question": 1}
ITEM_ORDER = ["itemmetadata", "presentation", "resprocessing"]


def canvas_package(path: Path) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Validate a canvas-qti.zip offline as far as its published structure goes, and return
    each assessment's title with each numerical question's (exact value, lo, hi).

    - imsmanifest.xml at the root, an IMS CP 1.1 manifest (metadata schema "IMS Content",
      organizations, resources); every resource of type imsqti_xmlv1p2 with an href and a
      <file> that exist in the zip, and every file of the zip referenced;
    - each resource a QTI 1.2 questestinterop holding one assessment (ident, title) of one
      section of items, every ident unique in the package;
    - each item: itemmetadata (Canvas's question_type and points_possible), presentation,
      resprocessing in the ASI order; a numerical question has one material and one
      response_str (rcardinality Single, render_fib fibtype Decimal, a response_label), an
      outcomes/decvar SCORE 0..100, and one respcondition continue="No" on that response:
      varequal the value, or vargte lo and varlte hi, setting SCORE to 100.
    """
    out: dict[str, dict[str, tuple[float, float, float]]] = {}
    idents: list[str] = []
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        manifest = ET.fromstring(zf.read("imsmanifest.xml"))
        assert manifest.tag == f"{CP}manifest" and manifest.get("identifier")
        assert manifest.find(f"{CP}metadata/{CP}schema").text == "IMS Content"
        assert manifest.find(f"{CP}organizations") is not None
        resources = manifest.findall(f"{CP}resources/{CP}resource")
        assert resources
        referenced = {"imsmanifest.xml"}
        for resource in resources:
            assert resource.get("type") == "imsqti_xmlv1p2" and resource.get("identifier")
            href = resource.get("href")
            files = [f.get("href") for f in resource.findall(f"{CP}file")]
            assert href in names and href in files and set(files) <= names
            referenced |= set(files)
            qti = ET.fromstring(zf.read(href))
            assert qti.tag == f"{QTI}questestinterop"
            (test,) = qti.findall(f"{QTI}assessment")
            assert test.get("ident") == resource.get("identifier") and test.get("title")
            idents.append(test.get("ident"))
            (section,) = test.findall(f"{QTI}section")
            cells: dict[str, tuple[float, float, float]] = {}
            for item in section.findall(f"{QTI}item"):
                idents.append(item.get("ident"))
                children = [c.tag.removeprefix(QTI) for c in item]
                assert children == [t for t in ITEM_ORDER if t in children], children
                fields = {
                    f.find(f"{QTI}fieldlabel").text: f.find(f"{QTI}fieldentry").text
                    for f in item.findall(
                        f"{QTI}itemmetadata/{QTI}qtimetadata/{QTI}qtimetadatafield"
                    )
                }
                kind = fields["question_type"]
                assert float(fields["points_possible"]) == CANVAS_TYPES[kind]
                text = item.find(f"{QTI}presentation/{QTI}material/{QTI}mattext")
                assert text.get("texttype") == "text/html" and text.text
                if kind == "text_only_question":
                    assert item.find(f"{QTI}resprocessing") is None
                    continue
                (response,) = item.findall(f"{QTI}presentation/{QTI}response_str")
                assert response.get("rcardinality") == "Single"
                render = response.find(f"{QTI}render_fib")
                assert render.get("fibtype") == "Decimal"
                assert render.find(f"{QTI}response_label") is not None
                decvar = item.find(f"{QTI}resprocessing/{QTI}outcomes/{QTI}decvar")
                assert decvar.get("varname") == "SCORE" and decvar.get("maxvalue") == "100"
                (cond,) = item.findall(f"{QTI}resprocessing/{QTI}respcondition")
                assert cond.get("continue") == "No"
                rid = response.get("ident")
                tests = {
                    e.tag.removeprefix(QTI): e
                    for e in cond.iter()
                    if e.get("respident") is not None
                }
                assert {e.get("respident") for e in tests.values()} == {rid}
                assert set(tests) == {"varequal", "vargte", "varlte"}
                setvar = cond.find(f"{QTI}setvar")
                assert (setvar.get("action"), setvar.get("varname"), setvar.text) == (
                    "Set",
                    "SCORE",
                    "100",
                )
                value, lo, hi = (float(tests[t].text) for t in ("varequal", "vargte", "varlte"))
                assert lo < value < hi
                cells[item.get("ident").removeprefix(test.get("ident") + "_")] = (value, lo, hi)
            out[test.get("title")] = cells
        assert referenced == names, names - referenced
    assert len(idents) == len(set(idents))
    return out


def test_canvas_qti_package_is_a_quiz_per_variant_of_numerical_questions(course):
    tests = canvas_package(course / "exports/canvas-qti.zip")
    assert len(tests) == 3
    for (title, cells), sid in zip(tests.items(), ["alice", "bob", "carol"], strict=True):
        assert title.endswith(f"variant {sid}")
        key = _key_cells(course, sid)
        assert set(cells) == set(key) and len(cells) == 32
        for name, (value, lo, hi) in cells.items():
            assert value == pytest.approx(key[name], rel=1e-12) and lo < key[name] < hi
            assert hi - lo >= 2 * 0.001 * (1 - 1e-9)


def test_the_canvas_check_fails_on_what_canvas_would_not_import(course, tmp_path):
    """The validator above can fail: a missing file, a second response in a numerical
    question, a resource pointing nowhere."""
    source = course / "exports/canvas-qti.zip"
    with zipfile.ZipFile(source) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    href = next(n for n in files if n != "imsmanifest.xml")
    broken = {
        "dropped": {n: b for n, b in files.items() if n != href},
        "two responses": {
            **files,
            href: files[href].replace(
                b"</response_str>", b'</response_str><response_str ident="r2"/>', 1
            ),
        },
        "unreferenced": {**files, "extra.xml": b"<x/>"},
    }
    for name, content in broken.items():
        path = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for n, b in content.items():
                zf.writestr(n, b)
        with pytest.raises((AssertionError, KeyError, ValueError)):
            canvas_package(path)


# ---- Gradescope --------------------------------------------------------------------------------


def _autograder(course: Path, tmp_path: Path, user: dict, answers: dict | None) -> dict:
    source = tmp_path / "source"
    with zipfile.ZipFile(course / "exports/gradescope-autograder.zip") as zf:
        for name in ("setup.sh", "run_autograder"):
            assert stat.S_IMODE(zf.getinfo(name).external_attr >> 16) & 0o111
        zf.extractall(source)
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "submission_metadata.json").write_text(
        json.dumps({"id": 1, "users": [user], "assignment": {"title": "hw"}})
    )
    if answers is not None:
        (root / "submission/answers.yaml").write_text(yaml.safe_dump(answers))
    env = {**os.environ, "AUTOGRADER_ROOT": str(root)}
    subprocess.run([sys.executable, str(source / "run.py")], env=env, check=True)
    return json.loads((root / "results/results.json").read_text())


def _hand_sheet(course: Path, sid: str) -> dict:
    from gradcalc.step import config
    from gradcalc.step.engine import run
    from gradcalc.step.json import render

    spec = config.load(str(course / sid / "config.yaml"))
    return json.loads(render(run(spec, round_to=3)))


def _valid_results(results: dict) -> None:
    """Gradescope's results.json: score and tests, each test with its score and status."""
    assert isinstance(results["score"], int | float)
    assert isinstance(results.get("output", ""), str)
    for test in results["tests"]:
        assert isinstance(test["name"], str)
        assert isinstance(test["score"], int | float) and isinstance(test["max_score"], int | float)
        assert test.get("status", "passed") in ("passed", "failed")


@pytest.mark.parametrize(
    "user",
    [{"email": "bob@uni.edu", "id": 7, "name": "Bob"}, {"email": "x@y", "sid": "bob", "name": "B"}],
)
def test_gradescope_autograder_grades_the_students_own_variant(course, tmp_path, user):
    results = _autograder(course, tmp_path, user, _hand_sheet(course, "bob"))
    _valid_results(results)
    assert results["score"] == 34 and len(results["tests"]) > 0
    assert all(t["status"] == "passed" for t in results["tests"])


def test_gradescope_autograder_refuses_a_stranger_and_someone_elses_sheet(course, tmp_path):
    results = _autograder(course, tmp_path / "a", {"email": "who@x", "id": 1}, {"loss": 0.1})
    _valid_results(results)
    assert results["score"] == 0 and "No variant" in results["output"]
    results = _autograder(
        course, tmp_path / "b", {"email": "alice@uni.edu"}, _hand_sheet(course, "bob")
    )
    _valid_results(results)
    assert results["score"] < 34  # bob's numbers are not alice's


def test_setup_installs_gradcalc(course):
    with zipfile.ZipFile(course / "exports/gradescope-autograder.zip") as zf:
        setup = zf.read("setup.sh").decode()
        names = zf.namelist()
    assert "pip install" in setup and "gradcalc==" in setup
    assert {"course/course.json", "course/alice/config.yaml", "run.py"} <= set(names)


def test_prairielearn_holds_variants_of_different_cells(tmp_path, run_cli):
    """The conv template's stride (1 or 2) gives its variants a 3×3 or a 2×2 feature map: one
    question.html holds every cell once, a cell not every variant has inside a Mustache section
    that generate() opens for the variants that have it, and each variant grades in full."""
    import re

    from pl_server import load_variants, run

    out = tmp_path / "o"
    args = ["generate", "--example", "conv-worked-example", "--count", "2", "--seed", "0"]
    result = run_cli([*args, "--no-pdf", "-o", str(out), "--format", "prairielearn"])
    assert result.exit_code == 0, result.output
    folder = next((out / "exports" / "prairielearn").iterdir())
    question = (folder / "question.html").read_text()
    variants = load_variants(folder / "server.py")
    names = [[c["name"] for c in v["cells"]] for v in variants]
    assert names[0] != names[1]  # the case this test is about
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", n) for ns in names for n in ns)
    answered = re.findall(r'answers-name="([^"]+)"', question)
    assert sorted(answered) == sorted(set(names[0]) | set(names[1]))  # each cell once
    section = re.compile(r"\{\{#params\.cells\.(\w+)\}\}(.*?)\{\{/params\.cells\.\1\}\}", re.S)
    sectioned = {m.group(1) for m in section.finditer(question)}
    assert sectioned == set(names[0]) ^ set(names[1])  # only the cells some variant lacks

    cases = [
        {"seed": k, "submitted": {c["name"]: c["value"] for c in v["cells"]}}
        for k, v in enumerate(variants)
    ]
    report = run(folder / "server.py", cases, tmp_path)
    for k, r in enumerate(report["results"]):
        cells = r["generated"]["params"]["cells"]
        shown = section.sub(lambda m, c=cells: m.group(2) if c.get(m.group(1)) else "", question)
        # As Mustache renders it for this variant: its own cells, in the order of its sheet.
        assert re.findall(r'answers-name="([^"]+)"', shown) == names[k]
        assert r["graded"]["score"] == 1.0
        assert set(r["graded"]["partial_scores"]) == set(names[k])
