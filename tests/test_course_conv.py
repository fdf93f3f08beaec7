"""The course kit for a convolution: `gradcalc generate` of a template of layer records (conv,
max-pool, flatten, dense), its sheets, answer templates and keys, the no_pool_ties constraint,
check --class grading the class, and the exports that take or refuse such variants."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

N_VARIANTS = 60
BUNDLED = ["generate", "--example", "conv-worked-example"]
DECIMALS = 3


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    from conftest import _run_cli

    out = tmp_path_factory.mktemp("conv-course") / "hw"
    args = [*BUNDLED, "--count", str(N_VARIANTS), "--seed", "5", "-o", str(out), "--no-pdf"]
    result = _run_cli(args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return out


def _folders(out: Path) -> list[Path]:
    manifest = json.loads((out / "course.json").read_text())
    return [out / v["folder"] for v in manifest["variants"]]


# ---- an independent float64 reference: the template's network written out with loops -------


def _conv(x: np.ndarray, k: np.ndarray, b: np.ndarray, s: int) -> np.ndarray:
    c_in, h, w = x.shape
    o, _, kh, kw = k.shape
    z = np.zeros((o, (h - kh) // s + 1, (w - kw) // s + 1))
    for q in range(o):
        for i in range(z.shape[1]):
            for j in range(z.shape[2]):
                z[q, i, j] = b[q] + sum(
                    k[q, c, p, r] * x[c, s * i + p, s * j + r]
                    for c in range(c_in)
                    for p in range(kh)
                    for r in range(kw)
                )
    return z


def _reference(cfg: dict) -> dict:
    x = np.array(cfg["input"], float)
    y = np.array(cfg["target"], float)
    eta = cfg["learning_rate"]
    conv, pool, _, dense = cfg["layers"]
    s, size = conv["stride"], pool["size"]
    k0, b0 = np.array(conv["kernels"], float), np.array(conv["biases"], float)
    w0, bd0 = np.array(dense["weights"], float), np.array(dense["biases"], float)

    def forward(k, b, w, bd):
        z2 = _conv(x, k, b, s)
        a2 = np.maximum(z2, 0)
        ho, wo = (a2.shape[1] - size) // size + 1, (a2.shape[2] - size) // size + 1
        z3, where, margins = np.zeros((a2.shape[0], ho, wo)), {}, []
        for c in range(a2.shape[0]):
            for i in range(ho):
                for j in range(wo):
                    cells = [
                        (a2[c, size * i + p, size * j + r], (size * i + p, size * j + r))
                        for p in range(size)
                        for r in range(size)
                    ]
                    best = max(cells, key=lambda t: t[0])  # the first of equals, row-major
                    z3[c, i, j], where[c, i, j] = best[0], best[1]
                    top = sorted(v for v, _ in cells)
                    margins.append(top[-1] - top[-2])
        z4 = z3.ravel()
        z5 = w @ z4 + bd
        a5 = np.exp(z5 - z5.max()) / np.exp(z5 - z5.max()).sum()
        return z2, a2, z3, where, margins, z4, z5, a5, float(-np.sum(y * np.log(a5)))

    z2, a2, z3, where, margins, z4, z5, a5, loss = forward(k0, b0, w0, bd0)
    d5 = a5 - y
    gw, gbd = np.outer(d5, z4), d5
    d3 = (w0.T @ d5).reshape(z3.shape)
    gx3 = np.zeros_like(a2)
    for (c, i, j), (p, r) in where.items():
        gx3[c, p, r] += d3[c, i, j]
    d2 = gx3 * (z2 > 0)
    gk = np.zeros_like(k0)
    for q in range(k0.shape[0]):
        for c in range(k0.shape[1]):
            for p in range(k0.shape[2]):
                for r in range(k0.shape[3]):
                    gk[q, c, p, r] = sum(
                        d2[q, i, j] * x[c, s * i + p, s * j + r]
                        for i in range(d2.shape[1])
                        for j in range(d2.shape[2])
                    )
    gb = d2.sum(axis=(1, 2))
    after = forward(k0 - eta * gk, b0 - eta * gb, w0 - eta * gw, bd0 - eta * gbd)[-1]
    return {
        "z": [z2, z3, z4, z5],
        "delta": [d2, d3, d3.ravel(), d5],
        "grad_input": [None, gx3, d3, w0.T @ d5],
        "kernels": gk,
        "conv_biases": gb,
        "weights": gw,
        "loss": loss,
        "loss_after": after,
        "margins": margins,
    }


def _close(a, b) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return bool(np.all(np.abs(a - b) <= 1e-12 + 1e-9 * np.abs(b)))


def test_every_key_is_the_reference_and_step_and_every_constraint_holds(course, run_cli):
    template = yaml.safe_load(
        (
            Path(__file__).parent.parent / "configs/templates/conv-worked-example.template.yaml"
        ).read_text()
    )
    assert template["constraints"]["no_pool_ties"] is True
    seen, strides = set(), set()
    for folder in _folders(course):
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        seen.add(json.dumps(cfg, sort_keys=True))
        strides.add(cfg["layers"][0]["stride"])
        key = json.loads((folder / "key.json").read_text())
        result = run_cli(["step", str(folder / "config.yaml"), "--format", "json"])
        assert result.exit_code == 0, result.output
        step = json.loads(result.stdout)
        assert key.pop("config") == "config.yaml" and step.pop("config").endswith("config.yaml")
        assert key == step, folder
        ref = _reference(cfg)
        # no_pool_ties: every window's largest cell leads by more than one unit of the last place
        assert min(ref["margins"]) > 10.0**-DECIMALS, folder
        assert ref["loss_after"] < ref["loss"]  # loss_decreases
        layers = key["steps"][0]["layers"]
        assert _close(key["steps"][0]["loss"], ref["loss"])
        assert _close(key["final"]["loss"], ref["loss_after"])
        for i, layer in enumerate(layers):
            assert _close(layer["z"], ref["z"][i]), (folder, i)
            assert _close(layer["delta"], ref["delta"][i]), (folder, i)
            if ref["grad_input"][i] is not None:
                assert _close(layer["grad_input"], ref["grad_input"][i]), (folder, i)
        assert _close(layers[0]["grads"]["kernels"], ref["kernels"])
        assert _close(layers[0]["grads"]["biases"], ref["conv_biases"])
        assert _close(layers[3]["grads"]["weights"], ref["weights"])
        # the rules: whole-number inputs 0..3 and kernels −1..1, in their shapes
        assert np.array(cfg["input"]).shape == (1, 4, 4)
        assert np.isin(np.array(cfg["input"]), [0, 1, 2, 3]).all()
        assert np.array(cfg["layers"][0]["kernels"]).shape == (1, 1, 2, 2)
        assert np.isin(np.array(cfg["layers"][0]["kernels"]), [-1, 0, 1]).all()
        assert cfg["target"] in ([1, 0], [0, 1])
    assert strides == {1, 2}
    assert len(seen) == N_VARIANTS


def test_the_ties_constraint_redraws_what_a_hand_would_tie(tmp_path, run_cli):
    """Without no_pool_ties some variants of a small-integer template tie in a window; with it,
    none does, and the redraws are recorded in the manifest (draw > 0)."""
    text = (
        Path(__file__).parent.parent / "configs/templates/conv-worked-example.template.yaml"
    ).read_text()
    loose = tmp_path / "loose.template.yaml"
    loose.write_text(
        text.replace("  no_pool_ties: true", "  no_pool_ties: false"), encoding="utf-8"
    )
    args = ["--count", "40", "--seed", "9", "--no-pdf"]
    assert run_cli(["generate", str(loose), *args, "-o", str(tmp_path / "a")]).exit_code == 0
    assert run_cli([*BUNDLED, *args, "-o", str(tmp_path / "b")]).exit_code == 0
    tied = [
        min(_reference(yaml.safe_load((f / "config.yaml").read_text()))["margins"]) <= 1e-3
        for f in _folders(tmp_path / "a")
    ]
    assert any(tied)  # the constraint has something to do
    for f in _folders(tmp_path / "b"):
        assert min(_reference(yaml.safe_load((f / "config.yaml").read_text()))["margins"]) > 1e-3
    draws = [
        v["draw"] for v in json.loads((tmp_path / "b" / "course.json").read_text())["variants"]
    ]
    assert max(draws) > 0


def test_a_template_that_cannot_avoid_ties_names_the_constraint(tmp_path, run_cli):
    path = tmp_path / "t.yaml"
    path.write_text(
        """
input: {int: [1, 1], shape: [1, 4, 4]}
target: [1, 0]
loss: cross_entropy
learning_rate: {choice: [0.1, 0.2]}
layers:
  - {type: maxpool2d, size: 2}
  - {type: flatten}
  - {weights: {uniform: [-1, 1], shape: [2, 4]}, biases: [0, 0], activation: softmax}
constraints: {no_pool_ties: true}
""",
        encoding="utf-8",
    )
    result = run_cli(["generate", str(path), "--count", "1", "--no-pdf", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "constraints.no_pool_ties" in result.stderr and "no variant met it" in result.stderr


def test_every_folder_holds_a_sheet_answers_key_and_solution(course, run_cli, monkeypatch):
    folder = _folders(course)[0]
    monkeypatch.chdir(folder)  # the solution names its config as step does: config.yaml
    sheet = (folder / "sheet.md").read_text()
    assert "rounded to 3 decimals" in sheet and "every index from 0" in sheet
    for cell in ("z²[0,0,0]", "∂C/∂K²[0,0,1,1]", "∂C/∂x³[0,0,0]", "K²[0,0,0,0] new", "w⁵[1,0] new"):
        assert cell in sheet, cell
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    kernel = np.array(cfg["layers"][0]["kernels"], float)[0, 0]
    assert f"K²[0,0] = [{', '.join(f'[{a:.12g}, {b:.12g}]' for a, b in kernel)}]" in sheet
    template = run_cli(["check", str(folder / "config.yaml"), "--template"])
    assert (folder / "answers.yaml").read_text().split("\n")[4:] == template.stdout.split("\n")[4:]
    graded = run_cli(
        ["check", str(folder / "config.yaml"), str(folder / "key.json"), "--format", "json"]
    )
    assert graded.exit_code == 0, graded.output
    report = json.loads(graded.stdout)
    assert report["score"] == report["max_score"] > 60
    step = run_cli(["step", "config.yaml", "--format", "markdown"])
    assert (folder / "solution.md").read_text() == step.stdout
    latex = run_cli(["step", "config.yaml", "--format", "latex"])
    assert (folder / "solution.tex").read_text() == latex.stdout


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_the_conv_latex_sheets_compile(course, tmp_path):
    for folder in _folders(course)[:4]:
        tex = (folder / "sheet.tex").read_text()
        assert "\\^{}" not in tex and "$w^l$" in tex and "$K^{2}[0,0] = " in tex
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


def test_four_axis_rules_draw_row_major_by_the_documented_hash(course):
    """kernels: {int: [-1, 1], shape: [1, 1, 2, 2]}: item i is cell i in row-major order,
    lo + ⌊u·(hi − lo + 1)⌋ with u from SHA-256 as for a matrix."""
    manifest = json.loads((course / "course.json").read_text())
    for v in manifest["variants"][:10]:

        def u(path: str, item: int, v=v) -> float:
            digest = hashlib.sha256(f"{v['seed']}/{v['draw']}/{path}/{item}".encode()).digest()
            return int.from_bytes(digest[:8], "big") / 2.0**64

        cfg = yaml.safe_load((course / v["folder"] / "config.yaml").read_text())
        kernels = np.array(cfg["layers"][0]["kernels"]).ravel().tolist()
        assert kernels == [-1 + int(u("layers[0].kernels", i) * 3) for i in range(4)]
        inputs = np.array(cfg["input"]).ravel().tolist()
        assert inputs == [int(u("input", i) * 4) for i in range(16)]


def test_a_choice_of_lists_is_written_as_plain_yaml(tmp_path, run_cli):
    """A regression: {choice: [[1, 0], [0, 1]]} drew the YAML reader's own list type, which
    config.yaml could not be written with (a traceback, exit 1)."""
    path = tmp_path / "t.yaml"
    path.write_text(
        """
input: [0.5, 0.1]
target: {choice: [[1, 0], [0, 1]]}
loss: quadratic
learning_rate: {choice: [0.5, 1.0]}
layers:
  - {weights: [[0.1, 0.2], [0.3, -0.1]], biases: [0, 0], activation: sigmoid}
""",
        encoding="utf-8",
    )
    result = run_cli(["generate", str(path), "--count", "3", "--no-pdf", "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    for folder in _folders(tmp_path / "o"):
        assert yaml.safe_load((folder / "config.yaml").read_text())["target"] in ([1, 0], [0, 1])


# ---- the class ------------------------------------------------------------------------------


def _plant_pool_to_all(doc: dict) -> bool:
    """∂C/∂x³ with the max-pool's δ sent to every cell of its window (pool_gradient_to_all);
    False where that is the right answer anyway."""
    layer = doc["steps"][0]["layers"][1]
    gx = np.array(layer["grad_input"], float)
    d = np.array(layer["delta"], float)
    spread = np.zeros_like(gx)
    spread[:, :2, :2] = d[:, :1, :1]
    if np.allclose(spread, gx):
        return False
    layer["grad_input"] = spread.tolist()
    return True


def test_check_class_grades_conv_sheets_and_names_the_planted_mistake(course, run_cli, tmp_path):
    from test_json_schemas import validate

    sheets = tmp_path / "sheets"
    sheets.mkdir()
    planted = {}
    for i, folder in enumerate(_folders(course)):
        result = run_cli(
            ["step", str(folder / "config.yaml"), "--round", str(DECIMALS), "--format", "json"]
        )
        doc = json.loads(result.stdout)
        planted[folder.name] = i % 3 == 1 and _plant_pool_to_all(doc)
        (sheets / f"{folder.name}.json").write_text(json.dumps(doc))
    result = run_cli(["check", str(course), "--class", str(sheets)])
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert len(rows) == N_VARIANTS and {r["status"] for r in rows.values()} == {"graded"}
    assert sum(planted.values()) > N_VARIANTS // 5
    for sid, row in rows.items():
        if planted[sid]:
            assert row["first_error"].startswith("∂C/∂x³"), row
            assert "pool_gradient_to_all" in row["first_error"], row
            assert int(row["score"]) < int(row["max"])
        else:
            assert row["score"] == row["max"] and row["first_error"] == "", row
    doc = json.loads(
        run_cli(["check", str(course), "--class", str(sheets), "--format", "json"]).stdout
    )
    validate(doc, "gradebook")
    assert doc["mistakes"]["pool_gradient_to_all"] == sum(planted.values())


def test_exports_of_a_conv_course(tmp_path, run_cli):
    """Every format writes its files, prairielearn too although the two variants' strides
    differ, and so do their cells (tests/test_course_exports.py checks its question.html)."""
    args = [*BUNDLED, "--count", "2", "--no-pdf"]
    out = tmp_path / "o"
    result = run_cli(
        [
            *args,
            "-o",
            str(out),
            "--format",
            "moodle-xml",
            "--format",
            "canvas-qti",
            "--format",
            "gradescope",
            "--format",
            "prairielearn",
        ]
    )
    assert result.exit_code == 0, result.output
    assert len(list((out / "exports" / "prairielearn").glob("*/server.py"))) == 1
    import xml.etree.ElementTree as ET

    quiz = ET.fromstring((out / "exports" / "moodle.xml").read_text(encoding="utf-8"))
    questions = [q for q in quiz.iter("question") if q.get("type") == "cloze"]
    assert len(questions) == 2
    text = questions[0].find("questiontext/text").text or ""
    key = json.loads((out / "1" / "key.json").read_text())
    loss = key["steps"][0]["loss"]
    assert f"{{1:NUMERICAL:={loss:.12g}:" in text and "\\partial C/\\partial K^{2}[0,0,0,0]" in text
    from test_course_exports import canvas_package

    tests = canvas_package(out / "exports" / "canvas-qti.zip")
    assert len(tests) == 2
    cells = next(iter(tests.values()))
    gk = key["steps"][0]["layers"][0]["grads"]["kernels"][0][0][0][0]
    value, lo, hi = cells["grad_kernels_2_0_0_0_0"]
    assert value == pytest.approx(gk, rel=1e-12) and lo < gk < hi
    assert cells["loss"][1] < loss < cells["loss"][2]


def test_the_gradescope_autograder_grades_a_conv_sheet(tmp_path, run_cli):
    """run.py runs gradcalc check on the student's own conv variant, as Gradescope runs it:
    full marks for the sheet worked to 3 decimals, a lower score with the mistake named."""
    from test_course_exports import _autograder, _valid_results

    out = tmp_path / "c"
    args = [*BUNDLED, "--count", "2", "--no-pdf", "-o", str(out), "--format", "gradescope"]
    assert run_cli(args).exit_code == 0
    sheet = json.loads(
        run_cli(["step", str(out / "2" / "config.yaml"), "--round", "3", "--format", "json"]).stdout
    )
    user = {"email": "a@b.org", "sid": "2", "name": "A"}
    results = _autograder(out, tmp_path / "full", user, sheet)
    _valid_results(results)
    key = json.loads(
        run_cli(
            [
                "check",
                str(out / "2" / "config.yaml"),
                str(out / "2" / "key.json"),
                "--format",
                "json",
            ]
        ).stdout
    )
    assert results["score"] == key["max_score"]
    assert _plant_pool_to_all(sheet)
    results = _autograder(out, tmp_path / "slip", user, sheet)
    assert results["score"] < key["max_score"]
    assert "pool_gradient_to_all" in json.dumps(results)


CONV1D_TEMPLATE = """
inputs: {int: [-2, 2], shape: [2, 2, 6]}
targets: [[1, 0, 0], [0, 0, 1]]
loss: mse
learning_rate: 0.1
layers:
  - type: conv1d
    kernels: {uniform: [-1, 1], decimals: 1, shape: [2, 2, 3]}
    biases: {uniform: [-0.5, 0.5], decimals: 1, shape: 2}
    stride: 2
    padding: 1
    activation: {choice: [tanh, sigmoid]}
  - {type: avgpool1d, size: 2, stride: 1}
  - {type: flatten}
  - weights: {uniform: [-0.5, 0.5], decimals: 1, shape: [3, 4]}
    biases: [0, 0.1, -0.1]
    activation: sigmoid
constraints: {max_abs_z: 4}
"""


def test_a_conv1d_template_with_a_batch_is_a_course_check_class_grades(tmp_path, run_cli):
    """Another layer type (conv1d, avgpool1d) and a batch of two: variants, sheets, and the
    class graded full marks for sheets worked as the sheet asks."""
    path = tmp_path / "c1.template.yaml"
    path.write_text(CONV1D_TEMPLATE, encoding="utf-8")
    out = tmp_path / "o"
    result = run_cli(["generate", str(path), "--count", "6", "--no-pdf", "-o", str(out)])
    assert result.exit_code == 0, result.output
    sheets = tmp_path / "sheets"
    sheets.mkdir()
    activations = set()
    for folder in _folders(out):
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        activations.add(cfg["layers"][0]["activation"])
        sheet = (folder / "sheet.md").read_text()
        assert "sees 2 examples" in sheet and "kernels of 3, 2 channels in" in sheet
        step = run_cli(["step", str(folder / "config.yaml"), "--round", "3", "--format", "json"])
        (sheets / f"{folder.name}.json").write_text(step.stdout)
    assert activations == {"tanh", "sigmoid"}
    rows = list(
        csv.DictReader(io.StringIO(run_cli(["check", str(out), "--class", str(sheets)]).stdout))
    )
    assert len(rows) == 6 and all(r["score"] == r["max"] != "" for r in rows), rows
