"""gradcalc check's inputs, options and limits through the real command: strict JSON, the run a
JSON document records, the number forms gradcalc itself prints, non-finite values and warnings,
the steps graded and what is refused up front, and the blank sheet's formats."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from python_calls import within

from gradcalc.check.answers import ascii_number
from gradcalc.doc.numbers import Style, number
from gradcalc.functions.optimizers import REGISTRY as OPTIMIZERS
from gradcalc.limits import MAX_NODES

ROOT = Path(__file__).resolve().parent.parent
SHEET = str(ROOT / "configs" / "worked-example.yaml")
BUNDLED = sorted(str(p) for p in (ROOT / "configs").glob("*.yaml"))
# What one check of a small sheet may cost in Python calls (tests/python_calls.py): a few
# thousand, and the imports of a first run; a guard that lets the work through passes it at once.
CHECK_CALLS = 100_000


def _json(result) -> dict:
    return json.loads(result.stdout)


def _refused(result, *parts: str) -> str:
    """Exit 2, nothing on stdout, one line on stderr holding every part; the line."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def _contract(run_cli, cfg: str, *extra: str) -> str:
    result = run_cli(["step", cfg, "--format", "json", *extra])
    assert result.exit_code == 0, result.output
    return result.stdout


# ---- strict JSON ---------------------------------------------------------------------------------

NOT_JSON = [
    ('{"loss": 0.115,}', 1, "trailing comma"),
    ('{\n  "z": {"2": [0.21, -0.24,]}\n}', 2, "trailing comma"),
    ('{\n  "loss": NaN\n}', 2, "NaN is not a JSON number"),
    ('{"loss": -Infinity}', 1, "-Infinity is not a JSON number"),
    ('{"loss": 0.1} // the cost', 1, "not valid JSON"),
    ("{'loss': 0.1}", 1, "not valid JSON"),
    ('{"loss": 01}', 1, "not valid JSON"),
    ("{loss: 0.1}", 1, "not valid JSON"),
]


@pytest.mark.parametrize("text, line, message", NOT_JSON, ids=[t for t, _, _ in NOT_JSON])
def test_a_json_file_is_strict_json(run_cli, tmp_path, text, line, message) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(text, encoding="utf-8")
    error = _refused(run_cli(["check", SHEET, str(answers)]), f"{answers}, line {line}:", message)
    assert "remove the quotes" not in error  # there are none to remove
    if "NaN" in text or "Infinity" in text:
        assert "write null for a cell left unanswered" in error


@pytest.mark.parametrize("value", ["NaN", "nan", "-Infinity", "inf", "∞", "−∞", "'NaN'"])
def test_a_non_finite_answer_in_yaml_says_what_to_write(run_cli, value) -> None:
    """float() reads "NaN", so the hint used to be "remove the quotes", where there are none."""
    error = _refused(
        run_cli(["check", SHEET, "-"], input=f"loss: {value}\n"),
        "line 1: loss: expected a finite number",
        "(write null for a cell left unanswered)",
    )
    assert "remove the quotes" not in error


def test_the_same_text_named_yaml_is_read_as_yaml(run_cli, tmp_path) -> None:
    """YAML's flow mappings allow the trailing comma: only the .json name makes it strict."""
    answers = tmp_path / "answers.yaml"
    answers.write_text('{"loss": 0.11507027535766015,}', encoding="utf-8")
    result = run_cli(["check", SHEET, str(answers), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [c["verdict"] for c in _json(result)["cells"]] == ["correct"]


def test_a_points_file_named_json_is_strict_too(run_cli, tmp_path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("loss: 0.11507027535766015\n", encoding="utf-8")
    points = tmp_path / "points.json"
    points.write_text('{"loss": 2,}', encoding="utf-8")
    _refused(
        run_cli(["check", SHEET, str(answers), "--points", str(points)]),
        f"{points}, line 1: not valid JSON",
    )
    points.write_text('{"loss": 2}', encoding="utf-8")
    result = run_cli(["check", SHEET, str(answers), "--points", str(points), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert _json(result)["max_score"] == 2


def test_a_step_document_saved_as_json_still_grades(run_cli, tmp_path) -> None:
    answers = tmp_path / "trace.json"
    answers.write_text(_contract(run_cli, SHEET), encoding="utf-8")
    result = run_cli(["check", SHEET, str(answers), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert _json(result)["score"] == _json(result)["max_score"] == 34


# ---- the run a JSON document records -------------------------------------------------------------


def test_a_document_made_with_another_learning_rate_is_refused(run_cli, tmp_path) -> None:
    answers = tmp_path / "trace.json"
    answers.write_text(_contract(run_cli, SHEET, "--learning-rate", "0.5"), encoding="utf-8")
    _refused(
        run_cli(["check", SHEET, str(answers)]),
        "learning_rate: the answers were made with η = 0.5, the run graded has η = 1",
        "(grade them with --learning-rate 0.5)",
    )
    for flag in ("--learning-rate", "--eta"):
        result = run_cli(["check", SHEET, str(answers), flag, "0.5", "--format", "json"])
        assert result.exit_code == 0, result.output
        assert _json(result)["score"] == _json(result)["max_score"] == 34


OTHER_RULES = [name for name in OPTIMIZERS if OPTIMIZERS[name].name != "sgd"]


@pytest.mark.parametrize("rule", OTHER_RULES)
def test_a_document_made_with_another_update_rule_is_refused(run_cli, tmp_path, rule) -> None:
    answers = tmp_path / "trace.json"
    answers.write_text(_contract(run_cli, SHEET, "--optimizer", rule), encoding="utf-8")
    name = OPTIMIZERS[rule].name
    _refused(
        run_cli(["check", SHEET, str(answers)]),
        f"optimizer.name: the answers were made with the update rule '{name}', the run "
        "graded uses 'sgd'",
        f"(grade them with --optimizer {name})",
    )
    result = run_cli(["check", SHEET, str(answers), "--optimizer", rule, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = _json(result)
    assert doc["score"] == doc["max_score"] == 34
    # Graded the other way round: an SGD document against the rule.
    sgd = tmp_path / "sgd.json"
    sgd.write_text(_contract(run_cli, SHEET), encoding="utf-8")
    _refused(run_cli(["check", SHEET, str(sgd), "--optimizer", rule]), "optimizer.name")


def test_a_document_with_other_optimizer_parameters_is_refused(run_cli, tmp_path) -> None:
    cfg = str(ROOT / "configs" / "adam-worked-example.yaml")
    doc = json.loads(_contract(run_cli, cfg))
    doc["optimizer"]["beta1"] = 0.5
    answers = tmp_path / "trace.json"
    answers.write_text(json.dumps(doc), encoding="utf-8")
    _refused(
        run_cli(["check", cfg, str(answers)]),
        "optimizer.beta1: the answers were made with adam's beta1 = 0.5",
    )


def test_a_document_of_another_number_of_steps_is_refused(run_cli, tmp_path) -> None:
    answers = tmp_path / "trace.json"
    answers.write_text(_contract(run_cli, SHEET, "--steps", "3"), encoding="utf-8")
    _refused(
        run_cli(["check", SHEET, str(answers)]),
        "steps_run: the answers are of a run of 3 steps, the run graded has 1",
        "(grade them with --steps 3)",
    )
    result = run_cli(["check", SHEET, str(answers), "--steps", "3", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = _json(result)
    assert doc["score"] == doc["max_score"] == 3 * 32 + 2


def test_a_document_made_from_other_inputs_is_refused(run_cli, tmp_path) -> None:
    """Same sizes, same η, other inputs: only the recorded first forward pass tells."""
    text = Path(SHEET).read_text(encoding="utf-8")
    assert "[0.8, 0.7, 0.1]" in text
    other = tmp_path / "other.yaml"
    other.write_text(text.replace("[0.8, 0.7, 0.1]", "[0.8, 0.7, 0.2]"), encoding="utf-8")
    answers = tmp_path / "trace.json"
    answers.write_text(_contract(run_cli, str(other)), encoding="utf-8")
    _refused(
        run_cli(["check", SHEET, str(answers)]),
        "initial.output: the answers' first forward pass gives a^L = ",
        "other inputs, targets or initial weights",
    )
    # Without that record, the numbers are simply wrong.
    doc = json.loads(answers.read_text(encoding="utf-8"))
    del doc["initial"]
    answers.write_text(json.dumps(doc), encoding="utf-8")
    assert run_cli(["check", SHEET, str(answers)]).exit_code == 1


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("loss_function", "cross_entropy", "loss_function: the answers were made with the loss"),
        ("weight_decay", 0.01, "weight_decay: the answers were made with weight_decay 0.01"),
    ],
)
def test_a_document_with_another_loss_or_decay_is_refused(
    run_cli, tmp_path, key, value, message
) -> None:
    doc = json.loads(_contract(run_cli, SHEET))
    doc[key] = value
    answers = tmp_path / "trace.json"
    answers.write_text(json.dumps(doc), encoding="utf-8")
    _refused(run_cli(["check", SHEET, str(answers)]), message)


def test_check_shares_step_s_run_options(run_cli) -> None:
    """One declaration each (gradcalc/cli/options.py): the same names, help and refusals."""
    from gradcalc.cli.check import command as check
    from gradcalc.cli.step import command as step

    def options(cmd) -> dict[str, tuple]:
        return {
            p.name: (tuple(p.opts), p.help, p.metavar)
            for p in cmd.params
            if p.name in ("learning_rate", "optimizer")
        }

    assert options(check) == options(step) and len(options(check)) == 2
    for args, message in [
        (["--learning-rate", "0"], "must be a finite number > 0, got 0"),
        (["--learning-rate", "inf"], "must be a finite number > 0"),
        (["--optimizer", "adamm"], "unknown update rule 'adamm'"),
        (["--steps", "0"], "--steps"),
        (["--steps", "1000001"], "--steps"),
    ]:
        _refused(run_cli(["check", SHEET, "-", *args], input="loss: 0.1\n"), message)


def test_check_grades_with_the_overridden_run(run_cli) -> None:
    """--learning-rate changes what the updated weights must be, as in step."""
    doc = json.loads(_contract(run_cli, SHEET, "--learning-rate", "0.25"))
    sheet = {"step": 1, "weights": {3: doc["steps"][0]["layers"][1]["weights"]}}
    text = yaml.safe_dump(sheet)
    right = run_cli(["check", SHEET, "-", "--eta", "0.25", "--format", "json"], input=text)
    assert right.exit_code == 0 and _json(right)["score"] == 2
    wrong = run_cli(["check", SHEET, "-", "--format", "json"], input=text)
    assert wrong.exit_code == 1


# ---- gradcalc's own number forms read back -------------------------------------------------------

FORMS = [
    ("−0.240", -0.24),
    ("−1.5", -1.5),
    ("1.23×10⁻⁵", 1.23e-5),
    ("−4.56×10⁶", -4.56e6),
    ("7×10¹²", 7e12),
    ("1.23 \\times 10^{-5}", 1.23e-5),
    ("-1.23 \\times 10^{7}", -1.23e7),
    ("1.23\\times10^{-5}", 1.23e-5),
    ("(-0.2)", -0.2),
    ("(−0.2)", -0.2),
    ("$-0.240$", -0.24),
    ("1\u2009234.567\u20098", 1234.5678),
    ("−12\u202f345", -12345.0),
    ("1\\,234.5", 1234.5),
    ("2.5 × 10⁻³", 2.5e-3),
    ("2.5·10⁻³", 2.5e-3),
]


@pytest.mark.parametrize("text, value", FORMS, ids=[t for t, _ in FORMS])
def test_every_written_form_reads_back(text: str, value: float) -> None:
    written = ascii_number(text)
    assert written is not None and written.isascii()
    assert float(written) == value


@pytest.mark.parametrize(
    "text",
    ["0.1", "-0.1", "1e-05", "abc", "−", "1,5", "0x1F", "1.2.3", "×10⁻⁵", "1 234", "1\u20091"],
)
def test_what_is_no_written_number_stays_refused(text: str) -> None:
    """A plain decimal in quotes is left to the "remove the quotes" refusal; a thin space
    groups digits only between digits; 1 234 (a plain space) is two numbers."""
    assert ascii_number(text) in (None, "11")  # 1 thin-space 1: a grouping, read as 11
    if text == "1\u20091":
        assert ascii_number(text) == "11"


# Every rule the writers use (gradcalc/doc/numbers.py): the tables' general format, the worked
# solutions' sheet rule on the terminal and in TeX, --round N, the derive documents'.
STYLES = [
    *(Style(d) for d in (1, 3, 6, 10, 17)),
    Style(6, fixed_from_one=True),
    *(Style(d, "sheet", tex=tex) for d in (3, 6) for tex in (False, True)),
    *(Style(6, "sheet", trim=True, tex=tex) for tex in (False, True)),
    *(Style(3, "sheet", decimals=n, tex=tex) for n in (0, 2, 3, 12) for tex in (False, True)),
    *(Style(6, "sheet", exact_short=True, fixed_from_one=True, tex=tex) for tex in (False, True)),
    Style(1, "sheet", trim=True, tex=True),
]


def _read(text: str) -> float:
    written = ascii_number(text)
    return float(written if written is not None else text)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
    st.sampled_from(STYLES),
)
def test_every_number_gradcalc_prints_reads_back_as_the_value_printed(v, style) -> None:
    """Read back, a printed number is the value printed: writing it again gives the same text,
    and it lies within half a unit of the last printed digit of the value."""
    text = number(v, style)
    value = _read(text)
    assert value == _independent(text), (v, text, value)
    if not style.exact_short:  # which writes 1.02200×10¹⁴⁹ short once it is exact: 1.022×10¹⁴⁹
        assert number(value, style) == text, (v, text, value)
    if style.decimals is not None:
        assert abs(value - v) <= 0.5 * 10.0**-style.decimals * (1 + 1e-9) + 1e-300
    elif v != 0:
        assert math.isclose(value, v, rel_tol=0.5 * 10.0 ** (1 - style.digits) + 1e-15)


# A number as the writers print it: a sign, digits, and an exponent in any of their forms.
TOKEN = re.compile(
    r"[−-]?\d+(?:\.\d+)?(?:(?:×10[⁻]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+)|(?: \\times 10\^\{-?\d+\})|(?:e[-+]\d+))?"
)


def _tokens(text: str) -> list[str]:
    return [m.group() for m in TOKEN.finditer(text)]


def _independent(token: str) -> float:
    """The value of a printed token, read without gradcalc's reader."""
    sup = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
    t = token.replace("−", "-")
    if "×10" in t:
        mantissa, exponent = t.split("×10")
        return float(f"{mantissa}e{int(exponent.translate(sup))}")
    if "\\times" in t:
        mantissa, exponent = t.split(" \\times 10^")
        return float(f"{mantissa}e{int(exponent.strip('{}'))}")
    return float(t)


def test_the_independent_reader_reads_what_the_writers_write() -> None:
    assert _independent("−1.5×10⁻⁷") == -1.5e-7
    assert _independent("1.5 \\times 10^{12}") == 1.5e12


@pytest.mark.parametrize(
    "args",
    [
        ["step", "--example", "worked-example", "--explain"],
        ["step", "--example", "tanh-mse", "--explain", "--round", "3"],
        ["step", "--example", "softmax-classifier", "--format", "markdown"],
        ["step", "--example", "relu-huber", "--format", "latex"],
        ["step", "--example", "worked-example", "--steps", "3"],
        ["derive", "sigmoid", "--at", "-30,0.3"],
        ["derive", "tanh", "--at", "-0.5", "--format", "markdown"],
        ["derive", "softmax", "--at", "1,-2,30", "--format", "latex"],
    ],
    ids=lambda a: " ".join(a[1:4]),
)
def test_every_number_step_and_derive_print_reads_back(run_cli, args) -> None:
    result = run_cli([*args, "--color", "never"] if args[0] == "step" else args)
    assert result.exit_code == 0, result.output
    tokens = _tokens(result.stdout)
    assert len(tokens) > 20
    unicode_forms = 0
    for token in tokens:
        value = _read(token)
        assert math.isclose(value, _independent(token), rel_tol=1e-15), token
        unicode_forms += ("−" in token) or ("×" in token) or ("\\times" in token)
    if "--explain" in args:
        assert unicode_forms > 0


def _yaml_scalar(text: str) -> str:
    """A number as a user copies it into a YAML sheet: bare, or in double quotes where YAML
    would otherwise read its braces and commas (TeX's 10^{-5})."""
    return json.dumps(text, ensure_ascii=False) if re.search(r"[{}\[\],:#]", text) else text


@pytest.mark.parametrize("tex", [False, True], ids=["terminal", "tex"])
@pytest.mark.parametrize("digits", [6, 10])
def test_a_sheet_copied_from_the_worked_solution_grades_full_marks(
    run_cli, tmp_path, tex, digits
) -> None:
    """Every cell written as the worked solution writes it (−0.240000, 6.45553×10⁻⁷,
    1.23 \\times 10^{-7}), copied into a sheet, grades ✓. Small inputs make tiny gradients,
    which the solution writes with a power of ten."""
    text = Path(SHEET).read_text(encoding="utf-8").replace("[0.8, 0.7, 0.1]", "[8e-6, 7e-6, 1e-6]")
    cfg = tmp_path / "small.yaml"
    cfg.write_text(text, encoding="utf-8")
    doc = json.loads(_contract(run_cli, str(cfg)))
    style = Style(digits, "sheet", tex=tex)
    step = doc["steps"][0]

    def row(values) -> str:
        if isinstance(values[0], list):
            return "[" + ", ".join(row(v) for v in values) + "]"
        return "[" + ", ".join(_yaml_scalar(number(v, style)) for v in values) + "]"

    lines = ["step: 1", f"loss: {_yaml_scalar(number(step['loss'], style))}"]
    for q in ("z", "a", "delta", "grad_weights", "grad_biases", "weights", "biases"):
        lines.append(f"{q}:")
        lines += [f"  {layer['layer']}: {row(layer[q])}" for layer in step["layers"]]
    sheet = "\n".join(lines) + "\n"
    assert ("\\times 10^{-" if tex else "×10⁻") in sheet
    assert "-0." in sheet if tex else "−0." in sheet
    result = run_cli(["check", str(cfg), "-", "--format", "json"], input=sheet)
    assert result.exit_code == 0, result.output
    graded = _json(result)
    assert graded["score"] == graded["max_score"] == 32
    assert {c["verdict"] for c in graded["cells"]} == {"correct"}
    assert any(c["answer"] < 0 for c in graded["cells"])


def test_the_unicode_minus_of_the_issue_is_read(run_cli) -> None:
    sheet = "z: {2: [0.21, −0.240]}\n"
    result = run_cli(["check", SHEET, "-", "--format", "json"], input=sheet)
    assert result.exit_code == 0, result.output
    assert [c["answer"] for c in _json(result)["cells"]] == [0.21, -0.24]
    # What is still no number is refused with its key path.
    _refused(
        run_cli(["check", SHEET, "-"], input="z: {2: [0.21, '−0.2x']}\n"),
        "line 1: z.2[1]: expected a number, got a string",
    )


# ---- non-finite values and warnings --------------------------------------------------------------


def _no_warnings(run_cli, args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run_cli(args, **kw)
    assert "Warning" not in result.stderr and "Traceback" not in result.output, result.stderr
    # A warning turned into an error would end the command with an exception (and status 1).
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_no_warning_reaches_a_real_process(run_cli, tmp_path) -> None:
    """The same odd inputs through `python -W error -m gradcalc`: any warning is a failure."""
    import subprocess
    import sys

    relu = str(ROOT / "configs" / "relu-huber.yaml")
    full = run_cli(["check", relu, "--template"]).stdout.replace("null", "-1.0e308")
    (tmp_path / "x.csv").write_text("", encoding="utf-8")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "inputs: {file: x.csv}\ntargets: [[1]]\nloss: quadratic\nlearning_rate: 1\n"
        "layers: {sizes: [1, 1], activation: sigmoid}\n",
        encoding="utf-8",
    )
    big = "z: {2: [1.0e308, -1.0e308]}\na: {2: [1.0e308, -1.0e308]}\n"
    cases = [
        (["check", SHEET, "-", "--format", "json", "--require-all"], big, 1),
        (["check", relu, "-", "--format", "json"], full, 1),
        (["check", relu, "-", "--format", "gradescope", "--decimals", "2"], full, 1),
        (["step", str(cfg)], "", 2),
    ]
    for args, text, status in cases:
        run = subprocess.run(
            [sys.executable, "-W", "error", "-m", "gradcalc", *args],
            input=text,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == status, (args, run.stderr)
        assert "Warning" not in run.stderr and "Traceback" not in run.stderr, run.stderr
        if status == 1:
            json.loads(run.stdout)


@pytest.mark.parametrize("cfg", BUNDLED, ids=lambda p: Path(p).stem)
@pytest.mark.parametrize("big", ["1.0e308", "-1.0e308"])
def test_answers_near_the_float_limit_grade_wrong_in_every_format(run_cli, cfg, big) -> None:
    """Every cell answered 1e308: what is worked from them overflows; that matches nothing (no
    ↳ and no named mistake from an infinite value), and every writer writes valid JSON."""
    blank = run_cli(["check", cfg, "--template"])
    sheet = blank.stdout.replace("null", big)
    for fmt in ("json", "gradescope", "table"):
        result = _no_warnings(run_cli, ["check", cfg, "-", "--format", fmt], input=sheet)
        assert result.exit_code == 1, result.output
        assert result.stderr == ""
        if fmt == "json":
            doc = json.loads(result.stdout)  # strict: no Infinity, no NaN
            assert "correct" not in {c["verdict"] for c in doc["cells"]}
            for c in doc["cells"]:
                # ↳ only where the answer is what its own answered inputs give (a = relu(z)
                # = 1e308), never from an infinite value: 1e308 is not "close to" ∞.
                if c["verdict"] == "carried":
                    assert math.isclose(c["carried_from_answers"], c["answer"], rel_tol=1e-4)
        elif fmt == "gradescope":
            json.loads(result.stdout)


def test_the_issue_s_overflowing_z(run_cli) -> None:
    sheet = "z: {2: [1.0e308, -1.0e308]}\n"
    result = _no_warnings(
        run_cli, ["check", SHEET, "-", "--format", "json", "--require-all"], input=sheet
    )
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["score"] == 0 and doc["max_score"] == 32


@pytest.mark.parametrize("points", ["1.0e308", "-1", "1e7"])
def test_points_are_bounded(run_cli, tmp_path, points) -> None:
    file = tmp_path / "points.yaml"
    file.write_text(f"z: {points}\n", encoding="utf-8")
    result = _no_warnings(
        run_cli, ["check", SHEET, "-", "--points", str(file)], input="z: {3: [-0.3]}\n"
    )
    _refused(result, "line 1: z: points per cell must be between 0 and 1,000,000")


def test_an_empty_csv_is_refused_without_a_warning(run_cli, tmp_path) -> None:
    (tmp_path / "x.csv").write_text("", encoding="utf-8")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "inputs: {file: x.csv}\ntargets: [[1]]\nloss: quadratic\nlearning_rate: 1\n"
        "layers: {sizes: [1, 1], activation: sigmoid}\n",
        encoding="utf-8",
    )
    for command in ("step", "check"):
        args = [command, str(cfg)] + (["--template"] if command == "check" else [])
        _refused(_no_warnings(run_cli, args), "inputs.file: 'x.csv' holds no numbers")


def test_a_run_that_diverges_is_bad_input_for_check(run_cli) -> None:
    """Status 1 means a wrong answer: a run that cannot be graded against is status 2."""
    cfg = str(ROOT / "configs" / "relu-huber.yaml")
    result = _no_warnings(
        run_cli,
        ["check", cfg, "-", "--learning-rate", "1e300", "--steps", "5"],
        input="step: 5\nloss: 0.1\n",
    )
    _refused(result, "diverged", "no answer can be graded against it")


# ---- the steps graded, and limits ----------------------------------------------------------------


def test_only_the_steps_answered_are_run_and_kept(run_cli) -> None:
    """Step 1 of a run of 10⁶ steps: one step is run, not a million. Grading it makes a few
    thousand Python calls (tests/python_calls.py); a million steps would make tens of millions,
    so the budget stops them within the first few thousand."""
    result = within(
        CHECK_CALLS,
        run_cli,
        ["check", SHEET, "-", "--steps", "1000000", "--format", "json"],
        input="step: 1\nloss: 0.11507027535766015\n",
    )
    assert result.exit_code == 0, result.output
    assert _json(result)["score"] == 1


def test_the_steps_answered_keep_only_their_traces() -> None:
    from gradcalc.check.recompute import exact_steps
    from gradcalc.step import config

    spec = config.load(SHEET)
    trace = exact_steps(spec, 40, {3, 40})
    assert [s.step for s in trace.steps] == [3, 40]
    full = exact_steps(spec, 40, None)
    assert len(full.steps) == 40
    for kept in trace.steps:
        same = full.steps[kept.step - 1]
        for a, b in zip(kept.layers, same.layers, strict=True):
            assert np.array_equal(a.weights, b.weights) and np.array_equal(a.z, b.z)
    assert np.array_equal(trace.final.output, full.final.output)


def _answers_from(doc: dict, steps: list[int], wrong_weights: bool) -> dict:
    blocks = []
    for s in steps:
        step = doc["steps"][s - 1]
        block: dict = {"step": s, "loss": step["loss"]}
        for layer in step["layers"]:
            for q in ("z", "a", "delta", "weights", "biases"):
                block.setdefault(q, {})[layer["layer"]] = layer[q]
        blocks.append(block)
    if wrong_weights:
        # A wrong w³ after the first step answered; the next step's z³, when it is answered,
        # worked from it (z³ = w³ a² + b³ with the answered a² and b³) is carried.
        first = blocks[0]
        w = np.array(first["weights"][3]) + 0.5
        first["weights"][3] = w.tolist()
        if len(blocks) > 1 and blocks[1]["step"] == first["step"] + 1:
            a2 = np.array(blocks[1]["a"][2])
            blocks[1]["z"][3] = (w @ a2 + np.array(first["biases"][3])).tolist()
    return {"steps": blocks, "final": {"loss": doc["final"]["loss"]}}


@pytest.mark.parametrize("steps", [[2, 3], [3], [1, 4], [4]])
@pytest.mark.parametrize("wrong_weights", [False, True])
def test_grading_the_steps_answered_gives_what_grading_every_step_gives(
    run_cli, steps, wrong_weights
) -> None:
    """--require-all runs and keeps every step: the cells answered get the same verdicts and
    the same carried values when only the answered steps are kept."""
    cfg = str(ROOT / "configs" / "momentum-tanh-mse.yaml")
    doc = json.loads(_contract(run_cli, cfg, "--steps", "4"))
    sheet = yaml.safe_dump(_answers_from(doc, steps, wrong_weights))
    args = ["check", cfg, "-", "--steps", "4", "--format", "json"]
    kept = run_cli(args, input=sheet)
    every = run_cli([*args, "--require-all"], input=sheet)
    assert kept.exit_code == int(wrong_weights), kept.output
    answered = [
        {k: c[k] for k in ("step", "symbol", "verdict", "carried_from_answers")}
        for c in _json(every)["cells"]
        if c["answer"] is not None
    ]
    assert answered == [
        {k: c[k] for k in ("step", "symbol", "verdict", "carried_from_answers")}
        for c in _json(kept)["cells"]
    ]
    verdicts = {c["verdict"] for c in answered}
    if not wrong_weights:
        assert verdicts == {"correct"}
    elif steps == [2, 3]:
        assert "carried" in verdicts and "wrong" in verdicts
        carried = [c for c in answered if c["verdict"] == "carried"]
        assert carried[0]["step"] == 3 and carried[0]["symbol"] == "z³₁"
    else:
        assert verdicts == {"correct", "wrong"}


def test_require_all_over_a_million_steps_is_refused_with_its_size(run_cli) -> None:
    _refused(
        run_cli(["check", SHEET, "-", "--steps", "1000000", "--require-all"], input="loss: 1\n"),
        "--require-all: grading every cell of 1,000,000 steps is 32,000,000 cells",
        "GB",
    )


def test_a_rounded_grading_of_a_far_step_is_refused_with_its_size(run_cli) -> None:
    _refused(
        run_cli(
            ["check", SHEET, "-", "--steps", "1000000", "--decimals", "3"],
            input="step: 1000000\nloss: 0.1\n",
        ),
        "grading every step up to the last one answered would hold about",
        "1,000,000 steps ×",
    )


def test_a_template_of_a_million_steps_is_refused_up_front(run_cli) -> None:
    """Refused from its size alone: writing the 32,000,000 cells would take at least a Python
    call per cell, far past the budget."""
    _refused(
        within(CHECK_CALLS, run_cli, ["check", SHEET, "--template", "--steps", "1000000"]),
        "--template: a blank sheet of 32,000,000 cells (1,000,000 steps × 32 cells)",
        f"more than the {MAX_NODES:,} values an answer file may hold",
        "--steps N",
    )


def _wide(tmp_path: Path, n_in: int, n_hidden: int) -> str:
    np.save(tmp_path / "x.npy", np.linspace(-1, 1, n_in))
    cfg = tmp_path / "wide.yaml"
    cfg.write_text(
        "input: {file: x.npy}\ntarget: [1]\nloss: quadratic\n"
        f"learning_rate: 0.1\nlayers: {{sizes: [{n_in}, {n_hidden}, 1], activation: sigmoid, "
        "init: xavier_uniform, seed: 0}\n",
        encoding="utf-8",
    )
    return str(cfg)


def test_a_far_step_of_a_long_run_is_refused_up_front_by_its_work(run_cli, tmp_path) -> None:
    """The same bound as step's (gradcalc/limits.py MAX_WORK), on the steps run to grade: the
    last one answered."""
    cfg = _wide(tmp_path, 1000, 100)
    args = ["check", cfg, "-", "--steps", "1000000"]
    far = within(CHECK_CALLS, run_cli, args, input="step: 1000000\nloss: 0.12345678901234567\n")
    _refused(far, "1,000,000 steps ×", "operations; a run may take at most")
    near = within(CHECK_CALLS, run_cli, args, input="step: 2\nloss: 0.12345678901234567\n")
    assert near.exit_code == 1, near.output  # graded: the loss is wrong


def test_a_template_for_a_wide_network_is_small_and_loads_back(run_cli, tmp_path) -> None:
    """A row of 1,000 cells names its first two and its last in the comment, not all."""
    cfg = _wide(tmp_path, 1000, 100)
    # 200,402 cells (w, b and their gradients): the budget is under one Python call a cell, so
    # the rows are written whole, not cell by cell
    result = within(CHECK_CALLS, run_cli, ["check", cfg, "--template"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout) < 2_000_000
    assert "w²₁,₁, w²₁,₂, …, w²₁,₁₀₀₀" in result.stdout or "…" in result.stdout
    graded = run_cli(["check", cfg, "-", "--format", "json"], input=result.stdout)
    assert graded.exit_code == 0 and _json(graded)["cells"] == []


def test_a_template_no_answer_file_could_hold_is_refused(run_cli, tmp_path) -> None:
    cfg = _wide(tmp_path, 1000, 1000)  # 2 × 10⁶ weights and their gradients
    _refused(
        run_cli(["check", cfg, "--template"]),
        "--template: a blank sheet of ",
        "write a sheet by hand",
    )


# ---- the blank sheet's formats -------------------------------------------------------------------


@pytest.mark.parametrize("cfg", BUNDLED, ids=lambda p: Path(p).stem)
def test_a_json_template_is_json_and_loads_back(run_cli, tmp_path, cfg) -> None:
    result = run_cli(["check", cfg, "--template", "--format", "json"])
    assert result.exit_code == 0, result.output
    blank = json.loads(result.stdout)  # strict JSON
    assert blank["steps"][0]["step"] == 1
    sheet = tmp_path / "sheet.json"
    sheet.write_text(result.stdout, encoding="utf-8")
    graded = run_cli(["check", cfg, str(sheet), "--format", "json"])
    assert graded.exit_code == 0 and _json(graded)["cells"] == []
    required = run_cli(["check", cfg, str(sheet), "--format", "json", "--require-all"])
    yaml_sheet = run_cli(["check", cfg, "--template"]).stdout
    from_yaml = run_cli(["check", cfg, "-", "--format", "json", "--require-all"], input=yaml_sheet)
    # The same cells as the YAML sheet, every one missing.
    assert [c["symbol"] for c in _json(required)["cells"]] == [
        c["symbol"] for c in _json(from_yaml)["cells"]
    ]
    assert {c["verdict"] for c in _json(required)["cells"]} == {"missing"}


def test_a_template_written_to_a_json_name_is_json(run_cli, tmp_path) -> None:
    out = tmp_path / "sheet.json"
    result = run_cli(["check", SHEET, "--template", "-o", str(out)])
    assert result.exit_code == 0, result.output
    json.loads(out.read_text(encoding="utf-8"))
    assert run_cli(["check", SHEET, str(out)]).exit_code == 0


def test_a_gradescope_template_is_refused(run_cli) -> None:
    _refused(
        run_cli(["check", SHEET, "--template", "--format", "gradescope"]),
        "--template writes a blank answer sheet",
        "give one or the other",
    )
