"""The one number formatter (gradcalc/doc/numbers.py) and `--digits N` in every view.

The formatter is checked by reading its text back: the value it names must be the input to within
half a unit in the last significant digit, with exactly the significant digits asked for. The
views are checked against numbers taken from `--format json` and formatted here by Python.
"""

from __future__ import annotations

import json
import math
import random
import re

import pytest

from gradcalc.doc.numbers import Style

VALUES = [0.21, -0.116883, 0.000867027, 1.740818, -2.01375, 123456.7, 1.234e-7, 9.9999e8, 0.5]


def read_back(text: str) -> float:
    """The value a written number names: −, ×10ⁿ, 10^{n} and \\times read as Python would."""
    plain = text.replace("−", "-").replace(r"\times", "*").replace(" ", "")
    plain = plain.translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-"))
    match = re.fullmatch(r"(-?[\d.]+)(?:(?:×|\*)10\^?\{?(-?\d+)\}?)?", plain)
    assert match, text
    mantissa, exponent = match.groups()
    return float(mantissa) * (10.0 ** int(exponent) if exponent else 1.0)


def significant(text: str) -> int:
    digits = re.sub(r"[^\d]", "", re.split(r"×|\\times", text)[0])
    return len(digits.lstrip("0")) or 1


@pytest.mark.parametrize("digits", [1, 3, 6, 10])
@pytest.mark.parametrize("tex", [False, True])
def test_sheet_rule_keeps_exactly_the_digits_asked_for(digits: int, tex: bool) -> None:
    rng = random.Random(digits)
    values = VALUES + [rng.uniform(-1, 1) * 10 ** rng.randint(-8, 8) for _ in range(200)]
    for v in values:
        text = Style(digits, "sheet", tex=tex)(v)
        assert text.isascii() == tex or "−" not in text
        e = math.floor(math.log10(abs(v)))
        if "×" in text or "times" in text:
            unit = 10.0 ** (math.floor(math.log10(abs(read_back(text)))) - digits + 1)
            assert significant(text) == digits, (v, text)
        elif "." in text:
            unit = 10.0 ** -len(text.split(".")[1])
            assert significant(text) == digits, (v, text)
        else:  # below 10⁶ without a power of ten: every integer digit stays
            unit = 1.0
            assert significant(text) == max(digits, e + 1), (v, text)
        assert abs(read_back(text) - v) <= 0.5 * unit * (1 + 1e-9), (v, text)


@pytest.mark.parametrize("digits", [2, 6, 9])
def test_general_rule_reads_back_within_its_digits(digits: int) -> None:
    rng = random.Random(digits)
    for _ in range(200):
        v = rng.uniform(-1, 1) * 10 ** rng.randint(-8, 8)
        text = Style(digits)(v)
        assert abs(float(text) - v) <= 0.5 * 10 ** (math.floor(math.log10(abs(v))) - digits + 1)
    assert Style(digits)(-0.0) == Style(digits)(0.0) == "0"


def test_decimals_and_fixed_from_one() -> None:
    assert Style(3, "sheet", decimals=2)(-0.004) == "0.00"  # no −0.00
    assert Style(6, fixed_from_one=True)(1.7408182) == "1.740818"
    assert Style(6, fixed_from_one=True)(0.0819251234) == "0.0819251"
    derive = Style(6, "sheet", exact_short=True, fixed_from_one=True, tex=True)
    assert derive(-0.3) == "-0.3" and derive(1.7408182) == "1.740818"
    assert derive(0.9999999) == "1.000000" and derive(float("nan")) == r"\mathrm{nan}"


# -- --digits in every view ---------------------------------------------------------------------


def test_step_digits_in_table_and_worked_solutions(run_cli) -> None:
    doc = json.loads(run_cli(["step", "--example", "worked-example", "--format", "json"]).stdout)
    loss = doc["steps"][0]["loss"]
    z = doc["steps"][0]["layers"][0]["z"][0]
    table = run_cli(["step", "--example", "worked-example", "--digits", "4"]).stdout
    assert f"{loss:.4g}" in table and f"{loss:.6g}" not in table
    explain = run_cli(["step", "--example", "worked-example", "--explain", "--digits", "5"])
    assert explain.exit_code == 0
    # z²₁ = 0.21 exactly: five significant digits keep their zeros.
    assert f"= {z:.5f}".rstrip() in explain.stdout.replace("−", "-")
    for fmt in ("markdown", "latex"):
        text = run_cli(["step", "--example", "worked-example", "--format", fmt, "--digits", "5"])
        assert f"{z:.5f}" in text.stdout


@pytest.mark.parametrize("fmt", ["table", "markdown", "latex", "dot"])
def test_derive_digits_in_every_format(run_cli, fmt: str) -> None:
    doc = json.loads(run_cli(["derive", "sigmoid", "--at", "0.3", "--format", "json"]).stdout)
    derivative = doc["derivative"]
    default = run_cli(["derive", "sigmoid", "--at", "0.3", "--format", fmt]).stdout
    four = run_cli(["derive", "sigmoid", "--at", "0.3", "--format", fmt, "--digits", "4"]).stdout
    assert f"{derivative:.6g}" in default and f"{derivative:.6g}" not in four
    assert f"{derivative:.4g}" in four


def test_digits_out_of_range_is_a_usage_error(run_cli) -> None:
    result = run_cli(["derive", "sigmoid", "--at", "0.3", "--digits", "0"])
    assert result.exit_code == 2 and "--digits" in result.output
