"""A terminal whose encoding cannot write gradcalc's symbols (issue 16 §3): a Windows code page
(cp1252) or ASCII. Every command writes the symbols' ASCII forms (σ′ as sigma', δ as d, − as -)
instead of a traceback, says so once on stderr, and keeps its exit status; JSON and files
written with -o stay UTF-8, the same bytes as on a UTF-8 terminal.

These run the real program in a subprocess: the encoding is the interpreter's, set by
PYTHONIOENCODING before it starts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.text import Text

from gradcalc.doc.ascii import _ascii_text, to_ascii

ROOT = Path(__file__).resolve().parent.parent
SLIP = str(ROOT / "configs" / "answers" / "worked-example-slip.yaml")
NOTE = "gradcalc: note: the output's encoding"

# Each command and format that writes text, with its exit status.
CALLS = {
    "step tables": (["step", "--example", "worked-example"], 0),
    "step --explain": (["step", "--example", "worked-example", "--explain"], 0),
    "step --explain --round": (["step", "--example", "adam-worked-example", "--explain"], 0),
    "step summary": (["step", "--example", "softmax-classifier", "--show", "summary"], 0),
    "step markdown": (["step", "--example", "worked-example", "--format", "markdown"], 0),
    "step latex": (["step", "--example", "worked-example", "--format", "latex"], 0),
    "derive": (["derive", "softmax", "--at", "1,2,3"], 0),
    "derive markdown": (["derive", "sigmoid", "--at", "0.3", "--format", "markdown"], 0),
    "derive dot": (["derive", "x*tanh(x)", "--at", "0.7", "--format", "dot"], 0),
    "check": (["check", "--example", "worked-example", SLIP], 1),
    "check template": (["check", "--example", "worked-example", "--template"], 0),
    "list": (["list"], 0),
    "examples": (["examples"], 0),
    "help": (["step", "--help"], 0),
}


def gradcalc(
    args: list[str], encoding: str, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONIOENCODING": encoding,
        "COLUMNS": "100",
        "NO_COLOR": "1",
        "PYTHONUTF8": "0",
    }
    env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "gradcalc", *args],
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def on_utf8(run_cli, args: list[str]) -> tuple[int, str]:
    """The same call on a UTF-8 terminal (in-process: the same text, faster)."""
    result = run_cli(args, env={"COLUMNS": "100", "NO_COLOR": "1", "FORCE_COLOR": None})
    return result.exit_code, result.stdout


def numbers(text: str) -> list[str]:
    return re.findall(r"(?<![\w.^_])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])", text)


# Every call on cp1252; a few on an ASCII terminal.
ENCODED = [(name, "cp1252") for name in CALLS] + [
    (name, "ascii") for name in ("step --explain", "check", "list")
]


@pytest.mark.parametrize(("name", "encoding"), ENCODED)
def test_every_command_writes_ascii_forms(run_cli, name: str, encoding: str) -> None:
    args, status = CALLS[name]
    run = gradcalc(args, encoding)
    err = run.stderr.decode("ascii")  # stderr is ASCII too
    assert "Traceback" not in err
    assert run.returncode == status, err
    out = run.stdout.decode("ascii")  # raises on any byte that is not ASCII
    utf8_status, wide = on_utf8(run_cli, args)
    assert utf8_status == status
    # Said once, and only when a symbol was rewritten.
    assert err.count(NOTE) == (0 if wide.isascii() else 1), err
    # Nothing is lost but the symbols' shapes: every number is still there.
    assert sorted(numbers(out)) == sorted(numbers(to_ascii(wide))), name


def test_the_worked_example_explained_on_cp1252() -> None:
    run = gradcalc(["step", "--example", "worked-example", "--explain"], "cp1252")
    assert run.returncode == 0
    out = run.stdout.decode("ascii")
    for written in ("a^2_1 = sigma(z^2_1) = sigma(0.210) = 0.552", "d^3_1", "dC/dw^3_11", "eta"):
        assert written in out, written
    assert "w^2_11 a^1_1" in out  # an index ends before the next symbol
    assert "====" in out and "----" in out  # the headings' rules


def test_tables_draw_ascii_boxes_whose_rows_line_up() -> None:
    run = gradcalc(["derive", "sigmoid", "--at", "0.3"], "cp1252")
    out = run.stdout.decode("ascii")
    assert "sigma'(z) = sigma(z)(1 - sigma(z))" in out
    check = gradcalc(["check", "--example", "worked-example", SLIP], "cp1252")
    table = [line for line in check.stdout.decode("ascii").splitlines() if line.startswith("|")]
    assert table and len({len(line) for line in table[:5]}) == 1  # columns aligned
    assert any("| ok |" in line for line in table) and any("| X  |" in line for line in table)


@pytest.mark.parametrize(
    "args",
    [
        ["step", "--example", "worked-example", "--format", "json"],
        ["derive", "softmax", "--at", "1,2,3", "--format", "json"],
        ["list", "--format", "json"],
        ["check", "--example", "worked-example", SLIP, "--format", "json"],
    ],
    ids=lambda args: args[0],
)
def test_json_stays_utf8_whatever_the_terminal(run_cli, args: list[str]) -> None:
    """The machine contract does not change with the terminal: the same bytes, symbols and all."""
    run = gradcalc(args, "cp1252")
    utf8_status, utf8 = on_utf8(run_cli, args)
    assert run.returncode == utf8_status
    assert run.stdout.decode("utf-8") == utf8
    assert not utf8.isascii() or args[0] == "step"
    assert NOTE not in run.stderr.decode("ascii")


@pytest.mark.parametrize(
    "args",
    [
        ["step", "--example", "worked-example"],
        ["step", "--example", "worked-example", "--explain"],
        ["derive", "sigmoid", "--at", "0.3", "--format", "markdown"],
        ["derive", "sigmoid", "--at", "0.3"],
        ["check", "--example", "worked-example", SLIP],
    ],
    ids=" ".join,
)
def test_a_file_written_with_output_is_utf8_whatever_the_terminal(
    run_cli, args: list[str], tmp_path: Path
) -> None:
    run = gradcalc([*args, "-o", str(tmp_path / "cp1252")], "cp1252")
    assert run.stdout == b"" and b"Traceback" not in run.stderr
    on_utf8(run_cli, [*args, "-o", str(tmp_path / "utf-8")])
    written = (tmp_path / "cp1252").read_bytes()
    assert written == (tmp_path / "utf-8").read_bytes()
    assert not written.isascii()  # the symbols themselves: σ, δ, box drawing


def test_an_error_is_one_ascii_line_with_its_status() -> None:
    run = gradcalc(["check", "--example", "worked-example", SLIP, "--rtol", "-1"], "cp1252")
    assert run.returncode == 2
    assert run.stderr.decode("ascii").splitlines() == [
        "Error: Invalid value for '--rtol': must be a finite number >= 0, got -1 "
        "(see 'gradcalc check --help')"
    ]


# ---- the ASCII forms themselves -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ascii"),
    [
        ("σ′(z²₂)", "sigma'(z^2_2)"),
        ("aˡ⁻¹ₖ", "a^(l-1)_k"),
        ("δᴸⱼ = ∂C/∂aᴸⱼ · σ′(zᴸⱼ)", "d^L_j = dC/da^L_j * sigma'(z^L_j)"),
        ("w²₁₁a¹₁ + b²₁", "w^2_11 a^1_1 + b^2_1"),
        ("Σₖ wˡ⁺¹ₖⱼ δˡ⁺¹ₖ", "sum_k w^(l+1)_kj d^(l+1)_k"),
        ("θ ← θ − η·m̂/(√v̂ + ε)", "theta <- theta - eta*mhat/(sqrt vhat + epsilon)"),
        ("λ ≥ 0, x ≤ ½, ‖∇C‖ ≈ 1…", "lambda >= 0, x <= 1/2, ||grad C|| ~ 1..."),
        ("✓ ≈ ↳ ✗", "ok ~ -> X"),
        ("┏━┳━┓│", "+-+-+|"),
        ("plain ASCII stays", "plain ASCII stays"),
        ("café", "cafe"),
    ],
)
def test_ascii_forms(text: str, ascii: str) -> None:
    assert to_ascii(text, note=False) == ascii
    assert to_ascii(text, note=False).isascii()


def test_styles_move_with_their_characters() -> None:
    text = Text("ab σ′ cd δ²₁ ef")
    text.stylize("bold", 3, 5)  # σ′
    text.stylize("red", 9, 12)  # δ²₁
    ascii = _ascii_text(text)
    assert ascii.plain == "ab sigma' cd d^2_1 ef"
    assert [(ascii.plain[s.start : s.end], str(s.style)) for s in ascii.spans] == [
        ("sigma'", "bold"),
        ("d^2_1", "red"),
    ]
