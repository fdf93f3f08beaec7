"""gradcalc check through the real command: full marks for right answers (exact, rounded, the
step contract itself), the drift bound, carried error, the output formats and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from gradcalc.check.bounds import Bounds, decimals_unit, sig_figs_unit
from gradcalc.check.cells import Shape, expected, expected_final
from gradcalc.check.grade import _run_rounded, sig_figs_rounder
from gradcalc.functions.training import hand_round
from gradcalc.step import config
from gradcalc.step.engine import run

ROOT = Path(__file__).resolve().parent.parent
SHEET = str(ROOT / "configs" / "worked-example.yaml")
BUNDLED = sorted(str(p) for p in (ROOT / "configs").glob("*.yaml"))

# The issue's answer sheet: the worked example to three places (δ² and ∂C/∂w³ with 3 figures).
ISSUE_SHEET = """\
step: 1
z:      {2: [0.21, -0.24], 3: [-0.322]}
a:      {2: [0.552, 0.440], 3: [0.420]}
loss: 0.115
delta:  {3: [-0.117], 2: [0.00867, -0.00288]}
grad_weights: {3: [[-0.0646, -0.0515]]}
grad_biases:  {3: [-0.117]}
weights: {3: [[-0.235, 0.151]]}
biases:  {3: [-0.083]}
"""


def _json(result) -> dict:
    return json.loads(result.stdout)


def step_json(run_cli, cfg: str, *extra: str) -> str:
    result = run_cli(["step", cfg, "--format", "json", *extra])
    assert result.exit_code == 0, result.output
    return result.stdout


# ---- full marks ------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", BUNDLED, ids=lambda p: Path(p).stem)
def test_the_step_contract_grades_full_marks(cfg: str, run_cli) -> None:
    contract = step_json(run_cli, cfg)
    result = run_cli(["check", cfg, "-", "--format", "json", "--require-all"], input=contract)
    assert result.exit_code == 0, result.output
    doc = _json(result)
    n_cells = sum(
        int(np.prod(Shape.of(config.load(cfg)).array_shape(k)))
        for k in Shape.of(config.load(cfg)).step_keys()
    ) * config.load(cfg).steps + sum(
        int(np.prod(Shape.of(config.load(cfg)).array_shape(k)))
        for k in Shape.of(config.load(cfg)).final_keys()
    )
    assert doc["score"] == doc["max_score"] == n_cells
    assert {c["verdict"] for c in doc["cells"]} == {"correct"}
    assert doc["first_error"] is None and doc["passed"] is True


@pytest.mark.parametrize("cfg", BUNDLED, ids=lambda p: Path(p).stem)
def test_the_round_3_trace_grades_full_marks_with_decimals_3(cfg: str, run_cli) -> None:
    contract = step_json(run_cli, cfg, "--round", "3")
    result = run_cli(["check", cfg, "-", "--format", "json", "--decimals", "3"], input=contract)
    assert result.exit_code == 0, result.output
    doc = _json(result)
    assert doc["score"] == doc["max_score"] > 0
    assert {c["verdict"] for c in doc["cells"]} <= {"correct", "rounding"}
    # Without the document's own `round: 3` (and its record of the first forward pass, which
    # was rounded too), each number is read to the decimals it is written with: the same full
    # marks; held to 12 decimals, the numbers are wrong.
    unmarked = json.dumps({**json.loads(contract), "round": None, "initial": None})
    if "adam" not in cfg:  # adam's rounded √v̂ of 0 makes numbers of a million, written to 1 place
        written = run_cli(["check", cfg, "-", "--format", "json", "--no-carry"], input=unmarked)
        assert written.exit_code == 0, written.output
        assert _json(written)["options"]["written_places"] == 3
    strict = ["check", cfg, "-", "--format", "json", "--no-carry", "--decimals", "12"]
    assert run_cli(strict, input=unmarked).exit_code == 1
    # With the document's `round: 3` alone it grades as with --decimals 3.
    assert run_cli(["check", cfg, "-", "--format", "json"], input=contract).exit_code == 0


def test_the_worked_example_exactly_and_to_three_places(run_cli, tmp_path) -> None:
    exact = tmp_path / "exact.yaml"
    trace = run(config.load(SHEET))
    st = trace.steps[0]
    doc = {
        "step": 1,
        "z": {lt.layer: lt.z[0].tolist() for lt in st.layers},
        "a": {lt.layer: lt.a[0].tolist() for lt in st.layers},
        "loss": st.loss,
        "delta": {lt.layer: lt.delta[0].tolist() for lt in st.layers},
        "grad_weights": {lt.layer: lt.grad_weights.tolist() for lt in st.layers},
        "grad_biases": {lt.layer: lt.grad_biases.tolist() for lt in st.layers},
        "weights": {lt.layer: lt.weights.tolist() for lt in st.layers},
        "biases": {lt.layer: lt.biases.tolist() for lt in st.layers},
    }
    exact.write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = run_cli(["check", SHEET, str(exact), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert _json(result)["score"] == _json(result)["max_score"] == 32

    issue = tmp_path / "issue.yaml"
    issue.write_text(ISSUE_SHEET, encoding="utf-8")
    result = run_cli(["check", SHEET, str(issue), "--decimals", "3", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = _json(result)
    assert doc["score"] == doc["max_score"] == 16
    verdicts = {c["symbol"]: c["verdict"] for c in doc["cells"]}
    assert verdicts["z²₁"] == "correct" and verdicts["a²₁"] == "rounding"
    # Without --decimals each number is read to the decimals it is written with: the same.
    result = run_cli(["check", SHEET, str(issue), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert _json(result)["score"] == 16 and _json(result)["hint"] is None
    # Held to 12 decimals the rounded a² is wrong, and z³ from it is wrong too.
    result = run_cli(["check", SHEET, str(issue), "--format", "json", "--decimals", "12"])
    assert result.exit_code == 1
    verdicts = {c["symbol"]: c["verdict"] for c in _json(result)["cells"]}
    assert verdicts["a²₁"] == "wrong" and verdicts["z²₁"] == "correct"
    assert verdicts["z³₁"] == "wrong"


def test_a_round_n_contract_is_graded_to_its_rounding(run_cli) -> None:
    contract = step_json(run_cli, SHEET, "--round", "2")
    assert json.loads(contract)["round"] == 2
    result = run_cli(["check", SHEET, "-", "--format", "json"], input=contract)
    assert result.exit_code == 0, result.output
    assert _json(result)["options"]["decimals"] == 2
    # An explicit option wins over the document's own rounding.
    result = run_cli(["check", SHEET, "-", "--format", "json", "--sig-figs", "6"], input=contract)
    assert result.exit_code == 1


def test_the_bundled_answers_grade_full_marks(run_cli) -> None:
    answers = str(ROOT / "configs" / "answers" / "worked-example.yaml")
    result = run_cli(["check", SHEET, answers, "--decimals", "3", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = _json(result)
    assert doc["score"] == doc["max_score"] == 32


# ---- the drift bound -------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", BUNDLED, ids=lambda p: Path(p).stem)
@pytest.mark.parametrize("rule", ["decimals 2", "decimals 3", "sig-figs 3", "sig-figs 4"])
def test_the_rounded_trace_lies_within_the_drift_bound(cfg: str, rule: str) -> None:
    """The bound is a first-order bound; the engine's own hand-rounded run must be inside it."""
    kind, n = rule.split()
    spec = config.load(cfg)
    if spec.optimizer.name in ("adagrad", "rmsprop", "adam", "adamw"):
        # A first-order bound with the rule's state exact cannot hold where the step divides by
        # the root of a rounded state: Adam's v ~ (1 − β₂)g² rounds to 0 at a few places.
        pytest.skip(f"the drift bound does not cover {spec.optimizer.name}'s root of its state")
    exact = run(spec)
    if kind == "decimals":
        unit, rounder = decimals_unit(int(n)), hand_round(int(n))
    else:
        unit, rounder = sig_figs_unit(int(n)), sig_figs_rounder(int(n))
    steps, final = _run_rounded(spec, spec.steps, rounder)
    bounds = Bounds(spec, exact, unit)
    shape = Shape.of(spec)
    worst = 0.0
    for s in range(spec.steps):
        for key in shape.step_keys():
            gap = np.abs(expected(steps[s], key) - expected(exact.steps[s], key))
            bound = bounds.steps[s][key]
            assert np.all(gap <= bound + 1e-12), (s + 1, key, gap, bound)
            worst = max(worst, float(np.max(gap / np.maximum(bound, 1e-300))))
    for key in shape.final_keys():
        gap = np.abs(expected_final(final, key) - expected_final(exact.final, key))
        assert np.all(gap <= bounds.final[key] + 1e-12), key
    assert worst > 0.01  # the bound is not vacuous: some cell drifts a visible part of it


@pytest.mark.parametrize("seed", range(8))
def test_the_drift_bound_holds_on_generated_networks(seed: int) -> None:
    """Kinked and smooth activations, fused and plain losses, batches: two steps each."""
    from test_check_mistakes import NETWORKS, make_spec

    spec = make_spec(seed, *NETWORKS[seed])
    exact = run(spec, steps=2)
    shape = Shape.of(spec)
    for unit, rounder in (
        (decimals_unit(2), hand_round(2)),
        (sig_figs_unit(2), sig_figs_rounder(2)),
    ):
        steps, _ = _run_rounded(spec, 2, rounder)
        bounds = Bounds(spec, exact, unit)
        for s in range(2):
            for key in shape.step_keys():
                gap = np.abs(expected(steps[s], key) - expected(exact.steps[s], key))
                assert np.all(gap <= bounds.steps[s][key] + 1e-12), (s + 1, key)


def test_the_bound_grows_with_the_rounding_and_starts_at_half_a_unit() -> None:
    spec = config.load(SHEET)
    exact = run(spec)
    b2 = Bounds(spec, exact, decimals_unit(2)).steps[0]
    b4 = Bounds(spec, exact, decimals_unit(4)).steps[0]
    # z² is computed from exact inputs: its only error is its own rounding.
    assert np.allclose(b2[("z", 2)], 0.005) and np.allclose(b4[("z", 2)], 0.00005)
    for key in b2:
        assert np.all(b2[key] > b4[key])


def test_a_value_outside_the_bound_is_wrong_even_with_decimals(run_cli, tmp_path) -> None:
    answers = tmp_path / "a.yaml"
    answers.write_text("z: {3: [-0.330]}\n", encoding="utf-8")  # exact −0.321664
    result = run_cli(["check", SHEET, str(answers), "--decimals", "3", "--format", "json"])
    assert result.exit_code == 1
    assert _json(result)["cells"][0]["verdict"] == "wrong"


# ---- carried error ---------------------------------------------------------------------------


def test_carried_error_and_no_carry(run_cli, tmp_path) -> None:
    # z²₁ slipped (0.31 for 0.21); a²₁ = σ(0.31) follows from it, as does z³ from a².
    a21 = float(1 / (1 + np.exp(-0.31)))
    a22 = float(1 / (1 + np.exp(0.24)))
    z3 = -0.3 * a21 + 0.1 * a22 - 0.2
    answers = tmp_path / "a.yaml"
    answers.write_text(
        f"z: {{2: [0.31, -0.24], 3: [{z3!r}]}}\na: {{2: [{a21!r}, {a22!r}]}}\n", encoding="utf-8"
    )
    result = run_cli(["check", SHEET, str(answers), "--format", "json"])
    assert result.exit_code == 1
    doc = _json(result)
    verdicts = [(c["symbol"], c["verdict"]) for c in doc["cells"]]
    assert verdicts == [
        ("z²₁", "wrong"),
        ("z²₂", "correct"),
        ("a²₁", "carried"),
        ("a²₂", "correct"),
        ("z³₁", "carried"),
    ]
    assert doc["cells"][2]["carried_from_answers"] == pytest.approx(a21)
    fe = doc["first_error"]
    assert fe["symbol"] == "z²₁" and fe["later_wrong"] == 0 and fe["follows"] is True
    assert doc["score"] == 4 and doc["max_score"] == 5

    result = run_cli(["check", SHEET, str(answers), "--format", "json", "--no-carry"])
    doc = _json(result)
    assert [c["verdict"] for c in doc["cells"]] == [
        "wrong",
        "correct",
        "wrong",
        "correct",
        "wrong",
    ]
    assert doc["first_error"]["follows"] is True and doc["first_error"]["later_wrong"] == 2
    table = run_cli(["check", SHEET, str(answers), "--no-carry"], env={"NO_COLOR": "1"})
    assert "Every later ✗ follows from it" in table.stdout


def test_a_cell_whose_inputs_were_not_answered_cannot_be_carried(run_cli, tmp_path) -> None:
    # a²₁ is wrong, but nothing it is computed from was answered: it stays wrong.
    answers = tmp_path / "a.yaml"
    answers.write_text("a: {2: [0.65, null]}\n", encoding="utf-8")
    result = run_cli(["check", SHEET, str(answers), "--format", "json"])
    assert [c["verdict"] for c in _json(result)["cells"]] == ["wrong"]


def test_carried_across_steps(run_cli, tmp_path) -> None:
    """Step 2 starts from the student's own updated weights."""
    cfg = str(ROOT / "configs" / "tanh-mse.yaml")
    contract = json.loads(step_json(run_cli, cfg, "--steps", "2"))
    w = contract["steps"][0]["layers"][1]["weights"]
    w[0][0] += 0.05
    contract["steps"][0]["layers"][1]["weights"] = w
    # Step 2 as the student would work it from the slipped weight: recompute z³ of step 2.
    a2 = np.array(contract["steps"][1]["layers"][0]["a"])
    b3 = np.array(contract["steps"][0]["layers"][1]["biases"])
    contract["steps"][1] = {
        "step": 2,
        "layers": [{"layer": 3, "z": (np.array(w) @ a2 + b3).tolist()}],
    }
    del contract["final"]
    result = run_cli(
        ["check", cfg, "-", "--steps", "2", "--format", "json"], input=json.dumps(contract)
    )
    cells = {(c["step"], c["symbol"]): c["verdict"] for c in _json(result)["cells"]}
    assert cells[(1, "w³₁₁ new")] == "wrong"
    assert cells[(2, "z³₁")] == "carried"


# ---- output formats --------------------------------------------------------------------------


def test_json_schema(run_cli, tmp_path) -> None:
    answers = tmp_path / "a.yaml"
    answers.write_text(ISSUE_SHEET.replace("{3: [-0.117], 2", "{3: [-0.480], 2"), encoding="utf-8")
    result = run_cli(["check", SHEET, str(answers), "--format", "json", "--decimals", "3"])
    assert result.exit_code == 1
    doc = _json(result)
    assert {"score", "max_score", "cells", "first_error"} <= set(doc)
    for cell in doc["cells"]:
        assert {
            "quantity",
            "layer",
            "index",
            "answer",
            "expected",
            "verdict",
            "mistake",
            "explanation",
        } <= set(cell)
        assert cell["verdict"] in ("correct", "rounding", "carried", "wrong", "missing")
    delta3 = next(c for c in doc["cells"] if c["symbol"] == "δ³₁")
    assert delta3 == {
        **delta3,
        "quantity": "delta",
        "layer": 3,
        "index": [1],
        "answer": -0.48,
        "verdict": "wrong",
        "mistake": "missing_activation_derivative",
    }
    assert doc["first_error"]["symbol"] == "δ³₁"
    assert doc["first_error"]["mistake"] == "missing_activation_derivative"


def test_gradescope_output_and_points(run_cli, tmp_path) -> None:
    answers = tmp_path / "a.yaml"
    answers.write_text(ISSUE_SHEET.replace("0.115", "0.230"), encoding="utf-8")
    points = tmp_path / "points.yaml"
    points.write_text("delta: 2\nloss: 3\n", encoding="utf-8")
    out = tmp_path / "results.json"
    result = run_cli(
        [
            "check",
            SHEET,
            str(answers),
            "--decimals",
            "3",
            "--format",
            "gradescope",
            "--points",
            str(points),
            "-o",
            str(out),
        ]
    )
    assert result.exit_code == 1 and result.stdout == ""
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert set(doc) >= {"score", "max_score", "tests"}
    tests = {t["name"]: t for t in doc["tests"]}
    for t in doc["tests"]:
        assert set(t) >= {"name", "score", "max_score", "output"}
    assert tests["Step 1: C"]["score"] == 0 and tests["Step 1: C"]["max_score"] == 3
    assert "factor_of_two" in tests["Step 1: C"]["output"]
    assert tests["Step 1: δ^l"]["max_score"] == 6 and tests["Step 1: δ^l"]["score"] == 6
    assert doc["max_score"] == 16 - 1 - 3 + 3 + 2 * 3
    assert doc["score"] == doc["max_score"] - 3


def test_table_on_a_terminal_and_piped(run_cli, tmp_path) -> None:
    answers = tmp_path / "a.yaml"
    answers.write_text(ISSUE_SHEET.replace("{3: [-0.117], 2", "{3: [-0.480], 2"), encoding="utf-8")
    result = run_cli(["check", SHEET, str(answers), "--decimals", "3"])
    assert result.exit_code == 1
    out = result.stdout
    assert "\x1b[" not in out
    assert "✗" in out and "missing_activation_derivative" in out and "≈" in out
    assert "The first error is δ³₁ (step 1), missing_activation_derivative." in out
    assert "δ^l without the factor f′(z^l)" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_template_round_trip(run_cli, tmp_path) -> None:
    for cfg in BUNDLED:
        result = run_cli(["check", cfg, "--template"])
        assert result.exit_code == 0, result.output
        sheet = tmp_path / "sheet.yaml"
        sheet.write_text(result.stdout, encoding="utf-8")
        assert "δ" in result.stdout and "null" in result.stdout
        graded = run_cli(["check", cfg, str(sheet), "--format", "json"])
        assert graded.exit_code == 0, graded.output
        assert _json(graded)["cells"] == []
        required = run_cli(["check", cfg, str(sheet), "--format", "json", "--require-all"])
        assert required.exit_code == 1
        verdicts = {c["verdict"] for c in _json(required)["cells"]}
        assert verdicts == {"missing"}
        # Filled in with the exact values (the template's layout is the sheet form) it passes.
        filled = yaml.safe_load(result.stdout)
        assert "steps" in filled or "step" in filled


def test_answers_from_stdin_and_output_file(run_cli, tmp_path) -> None:
    out = tmp_path / "report.txt"
    result = run_cli(["check", SHEET, "-", "--decimals", "3", "-o", str(out)], input=ISSUE_SHEET)
    assert result.exit_code == 0 and result.stdout == ""
    assert "16/16" in out.read_text(encoding="utf-8")


# ---- bad input -------------------------------------------------------------------------------

BAD = [
    ("z: {2: [0.21]}\n", "line 1: z.2: expected 2 numbers (one per unit of layer 2), got 1"),
    ("z: {4: [0.21]}\n", "line 1: z.4: there is no layer 4: the network has layers 2..3"),
    ("z: {1: [0.8, 0.7, 0.1]}\n", "line 1: z.1: layer 1 is the input"),
    ("zz: {2: [0.21, 0.1]}\n", "line 1: zz: unknown key in an answer sheet (did you mean 'z'?)"),
    ("loss: 0.1\ndelta:\n  3: ['x']\n", "line 3: delta.3[0]: expected a number, got a string"),
    ("loss: '0.1'\n", "line 1: loss: expected a number, got a string ('0.1') (remove the quotes)"),
    ("step: 2\nloss: 0.1\n", "line 1: step: there is no step 2: the config runs 1 step"),
    (
        "grad_weights:\n  2: [[1, 2], [3, 4], [5, 6]]\n",
        "line 2: grad_weights.2: expected 2 rows (one per unit j) of 3 numbers, got 3 rows "
        "(that is the transpose",
    ),
    ("[1, 2]\n", "an answer sheet is a mapping"),
    (
        "steps:\n  - layers:\n      - {z: [0.1]}\n",
        "line 3: steps[0].layers[0]: missing key 'layer'",
    ),
    ("steps:\n  - layers:\n      - {layer: 3, zz: [0.1]}\n", "steps[0].layers[0].zz: unknown key"),
    ("loss: [0.1\n", "YAML syntax error"),
    ("steps: [{step: 1}]\nloss: 0.1\n", "line 2: loss: give the quantities of one step"),
    ("losses: [0.1]\n", "'losses' (one cost per example) is for a batch"),
    ('{"sizes": [3, 3, 1], "steps": []}', "line 1: sizes: the answers are for a 3-3-1 network"),
    ("a: !!python/object:os.system {}\n", "unsupported YAML tag"),
    ("", "the file is empty"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[m[:30] for _, m in BAD])
def test_bad_answer_files_exit_2_with_key_path_and_line(run_cli, tmp_path, text, message) -> None:
    answers = tmp_path / "bad.yaml"
    answers.write_text(text, encoding="utf-8")
    result = run_cli(["check", SHEET, str(answers)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {answers}"), result.stderr
    assert message in lines[0]
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_bad_options_and_files_exit_2(run_cli, tmp_path) -> None:
    points = tmp_path / "points.yaml"
    points.write_text("deltas: 2\n", encoding="utf-8")
    answers = tmp_path / "a.yaml"
    answers.write_text(ISSUE_SHEET, encoding="utf-8")
    cases = [
        (["check", SHEET], "give an ANSWERS file to grade, or --template"),
        (["check", SHEET, str(answers), "--template"], "or --template (one of them)"),
        (["check", SHEET, str(tmp_path / "none.yaml")], "none.yaml: no such file"),
        (["check", SHEET, str(answers), "--decimals", "3", "--sig-figs", "3"], "not both"),
        (["check", SHEET, str(answers), "--rtol", "-1"], "must be a finite number ≥ 0"),
        (["check", SHEET, str(answers), "--points", str(points)], "did you mean 'delta'?"),
        (["check", SHEET, str(answers), "-o", str(answers)], "is an input being read"),
        (["check", "-", "-"], "cannot both be standard input"),
    ]
    for args, message in cases:
        result = run_cli(args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
    assert answers.read_text(encoding="utf-8") == ISSUE_SHEET


def test_softmax_cross_entropy_is_carried_from_the_answered_output(run_cli) -> None:
    """With cross-entropy after softmax, δ^L = a − y and C = −Σ y ln a from the student's a."""
    cfg = str(ROOT / "configs" / "softmax-classifier.yaml")
    doc = json.loads(step_json(run_cli, cfg, "--steps", "1"))
    layer = doc["steps"][0]["layers"][1]
    a = np.array(layer["a"])
    a[0] = [a[0][1], a[0][0], a[0][2]]  # the first example's outputs swapped: a slip
    y = np.array(config.load(cfg).y)
    costs = -(y * np.log(a)).sum(axis=1)
    sheet = {
        "step": 1,
        "a": {3: a.tolist()},
        "losses": costs.tolist(),
        "loss": float(costs.mean()),
        "delta": {3: (a - y).tolist()},
    }
    result = run_cli(
        ["check", cfg, "-", "--steps", "1", "--format", "json"], input=json.dumps(sheet)
    )
    verdicts = {c["symbol"]: c["verdict"] for c in _json(result)["cells"]}
    assert verdicts["a³₁ (x = 1)"] == "wrong" and verdicts["a³₃ (x = 1)"] == "correct"
    assert verdicts["δ³₁ (x = 1)"] == "carried" and verdicts["C"] == "carried"
    assert verdicts["C_x (x = 1)"] == "carried" and verdicts["C_x (x = 2)"] == "correct"


# ---- the versioned contract and colour -------------------------------------------------------


def test_json_validates_against_its_schema(run_cli, tmp_path) -> None:
    pytest.importorskip("jsonschema")
    from test_json_schemas import validate

    slip = str(ROOT / "configs" / "answers" / "worked-example-slip.yaml")
    for args in (
        ["check", SHEET, slip, "--decimals", "3", "--format", "json"],
        ["check", SHEET, slip, "--format", "json", "--require-all", "--no-carry"],
        [
            "check",
            SHEET,
            str(ROOT / "configs" / "answers" / "worked-example.yaml"),
            "--format",
            "json",
        ],
    ):
        doc = _json(run_cli(args))
        assert doc["format_version"] == 1
        validate(doc, "check")
    for cfg in BUNDLED:
        contract = step_json(run_cli, cfg)
        doc = _json(run_cli(["check", cfg, "-", "--format", "json"], input=contract))
        validate(doc, "check")


@pytest.mark.parametrize(
    ("flags", "env", "coloured"),
    [
        ([], {}, False),
        ([], {"FORCE_COLOR": "1"}, True),
        (["--color", "always"], {"NO_COLOR": "1"}, True),
        (["--color", "never"], {"FORCE_COLOR": "1"}, False),
        (["--no-color"], {"FORCE_COLOR": "1"}, False),
    ],
)
def test_colour_control(run_cli, flags, env, coloured) -> None:
    slip = str(ROOT / "configs" / "answers" / "worked-example-slip.yaml")
    env = {"NO_COLOR": None, "FORCE_COLOR": None, "COLUMNS": "100", **env}
    result = run_cli(
        ["check", "--example", "worked-example", slip, "--decimals", "3", *flags], env=env
    )
    assert result.exit_code == 1
    assert ("\x1b[" in result.stdout) is coloured


def test_example_config_and_template_from_an_empty_folder(run_cli, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli(["check", "--example", "worked-example", "--template"])
    assert (
        result.exit_code == 0
        and "# Grade with: gradcalc check --example worked-example ANSWERS" in result.stdout
    )
    answers = tmp_path / "answers.yaml"
    answers.write_text(ISSUE_SHEET, encoding="utf-8")
    result = run_cli(["check", "--example", "worked-example", "answers.yaml", "--decimals", "3"])
    assert result.exit_code == 0, result.output
