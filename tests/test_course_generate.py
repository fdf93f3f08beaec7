"""gradcalc generate: per-student variants of a template, their sheets and keys."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcalc.course.template import variant_seed

N_VARIANTS = 200
BUNDLED = ["generate", "--example", "worked-example"]


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    from conftest import _run_cli

    out = tmp_path_factory.mktemp("course") / "hw"
    # --no-pdf: no test reads the 200 PDFs (27 of the fixture's 29 s); the real pdflatex run is
    # test_a_variant_gets_its_pdfs_from_the_real_pdflatex's.
    args = [*BUNDLED, "--count", str(N_VARIANTS), "--seed", "11", "-o", str(out), "--no-pdf"]
    result = _run_cli(args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # a success says nothing on stderr
    return out


def _folders(out: Path) -> list[Path]:
    manifest = json.loads((out / "course.json").read_text())
    return [out / v["folder"] for v in manifest["variants"]]


# ---- an independent float64 reference: the dense SGD step written out with numpy -----------

_F = {
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda a: a * (1 - a)),
    "tanh": (np.tanh, lambda a: 1 - a**2),
}


def _reference(cfg: dict) -> dict:
    x, y = np.array(cfg["input"], float), np.array(cfg["target"], float)
    eta = cfg["learning_rate"]
    ws = [np.array(layer["weights"], float) for layer in cfg["layers"]]
    bs = [np.array(layer["biases"], float) for layer in cfg["layers"]]
    fs = [_F[layer["activation"]] for layer in cfg["layers"]]

    def forward(ws, bs):
        a, zs, acts = x, [], [x]
        for w, b, (f, _) in zip(ws, bs, fs, strict=True):
            z = w @ a + b
            a = f(z)
            zs.append(z)
            acts.append(a)
        return zs, acts, 0.5 * float(np.sum((y - a) ** 2))

    zs, acts, loss = forward(ws, bs)
    deltas = [None] * len(ws)
    deltas[-1] = (acts[-1] - y) * fs[-1][1](acts[-1])
    for i in range(len(ws) - 2, -1, -1):
        deltas[i] = (ws[i + 1].T @ deltas[i + 1]) * fs[i][1](acts[i + 1])
    gw = [np.outer(d, a) for d, a in zip(deltas, acts[:-1], strict=True)]
    new_w = [w - eta * g for w, g in zip(ws, gw, strict=True)]
    new_b = [b - eta * d for b, d in zip(bs, deltas, strict=True)]
    _, _, loss_after = forward(new_w, new_b)
    return {
        "z": zs,
        "delta": deltas,
        "grad_weights": gw,
        "weights": new_w,
        "biases": new_b,
        "loss": loss,
        "loss_after": loss_after,
    }


def _close(a, b) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return bool(np.all(np.abs(a - b) <= 1e-12 + 1e-9 * np.abs(b)))


def test_every_key_is_step_on_its_config_and_every_constraint_holds(course, run_cli):
    template = yaml.safe_load(
        (
            Path(__file__).parent.parent / "configs/templates/worked-example.template.yaml"
        ).read_text()
    )
    assert template["constraints"] == {
        "max_abs_z": 4,
        "distinct": True,
        "loss_decreases": True,
        "nonzero_gradients": True,
    }
    folders = _folders(course)
    assert len(folders) == N_VARIANTS
    seen = set()
    for folder in folders:
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        seen.add(json.dumps(cfg, sort_keys=True))
        key = json.loads((folder / "key.json").read_text())
        result = run_cli(["step", str(folder / "config.yaml"), "--format", "json"])
        assert result.exit_code == 0, result.output
        step = json.loads(result.stdout)
        key.pop("config"), step.pop("config")
        assert key == step, folder
        # the constraints, checked on the independent reference
        ref = _reference(cfg)
        assert max(float(np.max(np.abs(z))) for z in ref["z"]) <= 4
        assert ref["loss_after"] < ref["loss"]
        for q in ("delta", "grad_weights"):  # nothing rounds to 0.000
            assert min(float(np.min(np.abs(g))) for g in ref[q]) >= 0.0005
        for values in [cfg["input"]] + [
            v
            for layer in cfg["layers"]
            for v in ([w for row in layer["weights"] for w in row], layer["biases"])
        ]:
            assert len(set(values)) == len(values)
        # the key agrees with the reference
        layers = key["steps"][0]["layers"]
        assert _close(key["steps"][0]["loss"], ref["loss"])
        assert _close(key["final"]["loss"], ref["loss_after"])
        for i, layer in enumerate(layers):
            for q in ("z", "delta", "grad_weights", "weights", "biases"):
                assert _close(layer[q], ref[q][i]), (folder, q)
        # the rules' ranges and decimals
        for v in cfg["input"] + [
            w for layer in cfg["layers"] for row in layer["weights"] for w in row
        ]:
            assert round(v, 1) == v
        assert cfg["learning_rate"] in (0.5, 1.0)
        assert cfg["layers"][0]["activation"] in ("sigmoid", "tanh")
        assert all(0.1 <= v <= 0.9 for v in cfg["input"])
    assert len(seen) > N_VARIANTS * 0.95  # different problems, not one copied


def test_every_folder_holds_sheet_answers_key_and_solution(course, run_cli):
    folder = _folders(course)[0]
    names = {p.name for p in folder.iterdir()}
    assert {
        "config.yaml",
        "sheet.md",
        "sheet.tex",
        "answers.yaml",
        "key.json",
        "solution.md",
        "solution.tex",
    } <= names
    sheet = (folder / "sheet.md").read_text()
    assert "rounded to 3 decimals" in sheet
    assert "z²₁" in sheet and "∂C/∂w²₂₃" in sheet and "b²₂ new" in sheet
    assert "answers.yaml" in sheet
    # the blank sheet is check --template's, and the key is graded full marks by check
    template = run_cli(["check", str(folder / "config.yaml"), "--template"])
    assert (folder / "answers.yaml").read_text().split("\n")[3:] == template.stdout.split("\n")[3:]
    graded = run_cli(
        ["check", str(folder / "config.yaml"), str(folder / "key.json"), "--format", "json"]
    )
    assert graded.exit_code == 0, graded.output
    report = json.loads(graded.stdout)
    assert report["score"] == report["max_score"] == 32 + 2  # and the final output and C
    solution = (folder / "solution.md").read_text()
    assert solution.startswith("# Worked solution")
    assert "\\documentclass" in (folder / "solution.tex").read_text()


def test_the_variant_seed_is_sha256_of_the_seed_and_the_id():
    digest = hashlib.sha256(b"gradcalc-variant/1/11/alice").digest()
    assert variant_seed(11, "alice") == int.from_bytes(digest[:8], "big")
    assert variant_seed(11, "alice") != variant_seed(12, "alice") != variant_seed(11, "bob")


def test_a_roster_gives_byte_identical_output_twice_and_keeps_its_columns(tmp_path, run_cli):
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name,email\nalice,Alice A,a@uni.edu\nbob,Bob B,b@uni.edu\n")
    outs = []
    for name in ("one", "two"):
        out = tmp_path / name
        args = [*BUNDLED, "--roster", str(roster), "--seed", "5", "-o", str(out), "--no-pdf"]
        assert run_cli(args).exit_code == 0
        outs.append(out)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert len(files) == 2 + 2 * 7
    for rel in files:
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes(), rel
    rows = (outs[0] / "variants.csv").read_text().splitlines()
    assert rows[0] == "id,name,email,variant_seed,folder"
    assert rows[1] == f"alice,Alice A,a@uni.edu,{variant_seed(5, 'alice')},alice"
    # the same id gets the same problem whoever else is on the roster
    solo = tmp_path / "solo.csv"
    solo.write_text("id\nbob\n")
    assert (
        run_cli(
            [*BUNDLED, "--roster", str(solo), "--seed", "5", "-o", str(tmp_path / "s")]
        ).exit_code
        == 0
    )
    assert (tmp_path / "s/bob/config.yaml").read_bytes() == (
        outs[0] / "bob/config.yaml"
    ).read_bytes()


def _template(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return path


BASE = """\
input: [0.5, 0.4]
target: [0.5]
loss: quadratic
learning_rate: 1
layers:
  - weights: {uniform: [-0.5, 0.5], decimals: 1, shape: [1, 2]}
    biases: [BIAS]
    activation: sigmoid
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            BASE.replace("decimals: 1", "decimal: 1"),
            "t.yaml, line 6: layers[0].weights.decimal: unknown key in a uniform rule "
            "(did you mean 'decimals'?)",
        ),
        (
            BASE.replace("[-0.5, 0.5]", "[0.5, -0.5]"),
            "t.yaml, line 6: layers[0].weights.uniform: lo > hi: [0.5, -0.5]",
        ),
        (
            BASE.replace("activation: sigmoid", "activation: {choice: [sigmoid, tanhh]}"),
            "t.yaml, line 8: layers[0].activation: unknown activation 'tanhh'",
        ),
        (
            BASE + "constraints:\n  max_abz: 4\n",
            "t.yaml, line 10: constraints.max_abz: unknown constraint (did you mean 'max_abs_z'?)",
        ),
        (
            # a bias of 5 saturates every draw: the constraint is named, with its line
            BASE.replace("BIAS", "5") + "constraints:\n  max_abs_z: 4\n",
            "t.yaml, line 10: constraints.max_abs_z: no variant met it in 200 draws (for id '1'; "
            "it failed 200 of them)",
        ),
        (
            BASE.replace("{uniform: [-0.5, 0.5], decimals: 1, shape: [1, 2]}", "[[0.1, 0.2]]"),
            "t.yaml, line 1: the template has no rule",
        ),
        (
            BASE.replace("shape: [1, 2]", "shape: [2, 2]"),
            "t.yaml, line 7: layers[0].biases: 1 biases for 2 rows of weights",
        ),
    ],
)
def test_template_errors_are_one_line_exit_2(tmp_path, run_cli, text, message):
    path = _template(tmp_path, text.replace("BIAS", "0.1"))
    result = run_cli(["generate", str(path), "--count", "1", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "Error: " + message.replace("t.yaml", str(path)).split(" (")[0].split("(for")[0]
    )


def test_redraws_are_deterministic_and_met(tmp_path, run_cli):
    """nonzero_gradients and distinct force redraws; the same seed redraws the same way."""
    text = (
        BASE.replace("BIAS", "0.1")
        + "constraints:\n  nonzero_gradients: true\n  distinct: true\nsheet: {decimals: 4}\n"
    )
    path = _template(tmp_path, text)
    first = None
    for name in ("a", "b"):
        out = tmp_path / name
        assert (
            run_cli(
                ["generate", str(path), "--count", "30", "--seed", "2", "-o", str(out), "--no-pdf"]
            ).exit_code
            == 0
        )
        manifest = json.loads((out / "course.json").read_text())
        draws = [v["draw"] for v in manifest["variants"]]
        first = first or draws
        assert draws == first
        for v in manifest["variants"]:
            key = json.loads((out / v["folder"] / "key.json").read_text())
            for layer in key["steps"][0]["layers"]:
                for q in ("delta", "grad_weights", "grad_biases"):
                    assert np.min(np.abs(layer[q])) >= 0.5e-4
            w = yaml.safe_load((out / v["folder"] / "config.yaml").read_text())["layers"][0][
                "weights"
            ][0]
            assert w[0] != w[1]
    assert any(d > 0 for d in first)  # some variants were redrawn


def test_count_ids_are_padded_and_options_are_checked(tmp_path, run_cli):
    out = tmp_path / "o"
    assert run_cli([*BUNDLED, "--count", "12", "-o", str(out)]).exit_code == 0
    assert (out / "01").is_dir() and (out / "12").is_dir()
    both = run_cli([*BUNDLED, "--count", "2", "--roster", "r.csv", "-o", str(out)])
    assert both.exit_code == 2 and "--count N or --roster CSV" in both.stderr


def test_generate_is_not_loaded_by_step_start_up():
    code = (
        "import sys; from gradcalc.cli import cli; sys.argv=['gradcalc','step','--help']\n"
        "try:\n    cli()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('gradcalc.course')))"
    )
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_a_variant_gets_its_pdfs_from_the_real_pdflatex(tmp_path, run_cli):
    out = tmp_path / "hw"
    result = run_cli([*BUNDLED, "--count", "1", "--seed", "11", "-o", str(out)])
    assert result.exit_code == 0, result.output
    pdfs = sorted(p.name for p in (out / "1").glob("*.pdf"))
    assert pdfs, sorted(p.name for p in (out / "1").iterdir())
    for name in pdfs:
        assert (out / "1" / name).read_bytes().startswith(b"%PDF")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_every_latex_sheet_compiles(course, tmp_path):
    for folder in _folders(course)[:20]:
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
            )
            assert done.returncode == 0, (folder, name)


def test_roster_ids_that_differ_only_in_case_are_refused(tmp_path, run_cli):
    roster = tmp_path / "r.csv"
    roster.write_text("id\nAlice\nbob\nalice\n")
    result = run_cli([*BUNDLED, "--roster", str(roster), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: {roster}, line 4: id: 'alice' again (first on line 2; ids differ in more than "
        "case)"
    )


RULES = """\
input: {normal: {mean: 0.5, std: 0.2}, decimals: 2, shape: 2}
target: [{choice: [0.25, 0.75]}]
loss: quadratic
learning_rate: {int: [1, 3]}
layers:
  - weights: {uniform: [-1, 1], decimals: 3, shape: [1, 2]}
    biases: [0.0]
    activation: sigmoid
"""


def test_every_rule_draws_by_the_documented_hash(tmp_path, run_cli):
    """Each number is u = SHA-256("{variant seed}/{draw}/{key path}/{item}")[:8] / 2⁶⁴, mapped
    by its rule: recomputed here from the documentation, apart from the code."""
    path = _template(tmp_path, RULES)
    out = tmp_path / "o"
    assert (
        run_cli(
            ["generate", str(path), "--count", "300", "--seed", "4", "-o", str(out), "--no-pdf"]
        ).exit_code
        == 0
    )
    manifest = json.loads((out / "course.json").read_text())
    inputs, rates = [], set()
    for v in manifest["variants"]:
        seed = int.from_bytes(
            hashlib.sha256(f"gradcalc-variant/1/4/{v['id']}".encode()).digest()[:8], "big"
        )
        assert v["seed"] == seed and v["draw"] == 0

        def u(path: str, item: int, seed: int = seed) -> float:
            digest = hashlib.sha256(f"{seed}/0/{path}/{item}".encode()).digest()
            return int.from_bytes(digest[:8], "big") / 2.0**64

        cfg = yaml.safe_load((out / v["id"] / "config.yaml").read_text())
        w = cfg["layers"][0]["weights"][0]
        assert w == [round(-1 + 2 * u("layers[0].weights", i), 3) + 0.0 for i in range(2)]
        assert cfg["target"] == [[0.25, 0.75][int(u("target[0]", 0) * 2)]]
        assert cfg["learning_rate"] == 1 + int(u("learning_rate", 0) * 3)
        for i, x in enumerate(cfg["input"]):
            u1, u2 = u("input", i), u("input", i + 1_000_000)
            g = np.sqrt(-2 * np.log(1 - u1)) * np.cos(2 * np.pi * u2)
            assert x == pytest.approx(round(0.5 + 0.2 * g, 2), abs=1e-12)
            assert round(x, 2) == x
            inputs.append(x)
        rates.add(cfg["learning_rate"])
    assert rates == {1, 2, 3}
    assert np.mean(inputs) == pytest.approx(0.5, abs=0.03)
    assert np.std(inputs) == pytest.approx(0.2, abs=0.03)


_ANY = st.one_of(
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["x", "", "1e3", "sigmoid", None, True, [], {}]),
    st.lists(st.integers(-3, 3), max_size=3),
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["uniform", "int", "choice", "normal", "unknown"]),
    body=_ANY,
    extra=st.dictionaries(
        st.sampled_from(["decimals", "shape", "decimal", "mean"]), _ANY, max_size=2
    ),
    where=st.sampled_from(["weights", "biases", "activation", "learning_rate"]),
)
def test_any_rule_is_a_variant_or_one_line_exit_2(tmp_path, run_cli, kind, body, extra, where):
    data = yaml.safe_load(BASE.replace("BIAS", "0.1"))
    rule = {kind: body, **extra}
    if where == "learning_rate":
        data["learning_rate"] = rule
    else:
        data["layers"][0][where] = rule
    data["layers"][0].setdefault("weights", [[0.1, 0.2]])
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(data))
    result = run_cli(
        ["generate", str(path), "--count", "2", "-o", str(tmp_path / "o"), "--max-tries", "3"]
    )
    assert result.exit_code in (0, 2), (rule, result.output, result.exception)
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert "Traceback" not in result.output


def test_pdf_sheets_are_made_with_pdflatex_from_path(tmp_path, run_cli):
    """A stand-in pdflatex on PATH (the real one is checked above where it exists): each sheet is
    compiled beside itself with a fixed date, and --pdf without one is refused."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pdflatex"
    fake.write_text(
        '#!/bin/sh\nfor a; do out="$prev"; prev="$a"; done\n'
        'dir=""; while [ $# -gt 1 ]; do [ "$1" = -output-directory ] && dir="$2"; shift; done\n'
        'echo "%PDF $SOURCE_DATE_EPOCH $1" > "$dir/${1%.tex}.pdf"\n'
    )
    fake.chmod(0o755)
    out = tmp_path / "o"
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = run_cli([*BUNDLED, "--count", "2", "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert (out / "1/sheet.pdf").read_text() == "%PDF 0 sheet.tex\n"
    no_tex = run_cli(
        [*BUNDLED, "--count", "1", "-o", str(out), "--pdf"], env={"PATH": "/nonexistent"}
    )
    assert no_tex.exit_code == 2 and "pdflatex was not found" in no_tex.stderr


def test_the_docs_page_shows_the_bundled_template_and_every_constraint():
    from gradcalc.course.constraints import CONSTRAINTS

    repo = Path(__file__).resolve().parent.parent
    page = (repo / "docs/course-kit.md").read_text()
    shown = re.search(r"```yaml\n(.*?)```", page, re.S).group(1)
    bundled = (repo / "configs/templates/worked-example.template.yaml").read_text()
    assert yaml.safe_load(shown) == yaml.safe_load(bundled)
    table = page.split("## Constraints", 1)[1].split("\n## ", 1)[0]
    for name in CONSTRAINTS:
        assert f"| `{name}" in table, name


def test_only_a_new_or_a_course_folder_is_written_into(tmp_path, run_cli):
    (tmp_path / "notes.txt").write_text("mine")
    result = run_cli([*BUNDLED, "--count", "1", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "a folder that is not empty and holds no course.json" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    out = tmp_path / "hw"
    for _ in range(2):  # a course folder is generated again in place
        assert run_cli([*BUNDLED, "--count", "1", "-o", str(out)]).exit_code == 0
