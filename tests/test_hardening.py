"""Issue 10's reproducers, one regression test each, through the real command.

Every number is checked by a second route: 60-digit mpmath for derivatives, the exit status and
the one line on stderr for refusals, the file system itself for --output.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import mpmath
import numpy as np
import pytest
from click.testing import CliRunner

from gradcalc.cli import EXIT_STATUSES, cli
from gradcalc.functions.activations import REGISTRY as ACTIVATION_RECORDS
from gradcalc.functions.training import hand_round

ROOT = Path(__file__).resolve().parent.parent
WORKED = ROOT / "configs" / "worked-example.yaml"
BASE = WORKED.read_text(encoding="utf-8")
mpmath.mp.dps = 60


def one_line_error(result, status: int = 2, *mentions: str) -> str:
    assert result.exit_code == status, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    message = result.stderr
    assert message.endswith("\n") and message.count("\n") == 1, f"not one line: {message!r}"
    for text in mentions:
        assert text in message, message
    return message


def with_line(key: str, value: str) -> str:
    """BASE with the line of `key:` replaced (a key it lacks is appended)."""
    lines = [line for line in BASE.splitlines() if not line.startswith(f"{key}:")]
    lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


def json_of(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


# ---- 1. no traceback for any input ----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "mention"),
    [
        ("learning_rate", "1" + "0" * 5000, "learning_rate: the number 1000"),
        ("input", "[1" + "0" * 5000 + ", 0.7, 0.1]", "input[0]: the number 1000"),
        ("steps", "1" + "0" * 5000, "steps: the number 1000"),
        ("learning_rate", "1e400", "learning_rate: the number 1e400 is too large"),
    ],
)
def test_huge_number_literals_name_line_and_key(
    run_cli, write_config, tmp_path, key, value, mention
):
    path = write_config(tmp_path, with_line(key, value))
    line = with_line(key, value).splitlines().index(f"{key}: {value}") + 1
    one_line_error(run_cli(["step", str(path)]), 2, mention, f"line {line}:", "too large")


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("1:30.5", "base-60"),
        ("1:30", "base-60"),  # YAML 1.1 silently read this as 90
        ("-1:00:00", "base-60"),
        ("010", "leading zero"),  # YAML 1.1: octal 8
        ("0x1F", "decimal"),
        ("0o17", "decimal"),
        ("0b101", "decimal"),
        ("yes", "boolean"),
        ("on", "boolean"),
        ("Off", "boolean"),
    ],
)
def test_yaml11_number_forms_are_text_and_refused(run_cli, write_config, tmp_path, text, hint):
    for key in ("learning_rate", "steps"):
        path = write_config(tmp_path, with_line(key, text))
        message = one_line_error(run_cli(["step", str(path)]), 2, f"{key}:", "a string", hint)
        assert "line 14" in message
    # the same rule inside a list
    path = write_config(tmp_path, BASE.replace("input: [0.8,", f"input: [{text},"))
    one_line_error(run_cli(["step", str(path)]), 2, "input[0]:", hint)


@pytest.mark.parametrize(
    "tagged",
    [
        "!!int 0x1F",
        "!!float 1:30",
        "!!float abc",
        "!!int",
        "!!int 1.5",
        "!!bool 1",
        "!!bool yes",
        "!!null x",
    ],
)
def test_explicit_tags_that_do_not_fit_are_one_line(
    run_cli, write_config, tmp_path, tagged
) -> None:
    path = write_config(tmp_path, with_line("learning_rate", tagged))
    one_line_error(run_cli(["step", str(path)]), 2, "line 14:", "learning_rate:")


@pytest.mark.parametrize(
    ("tagged", "value"), [("!!float 1", 1.0), ("!!int 2", 2), ("!!float 0.5", 0.5)]
)
def test_explicit_tags_that_fit_are_read(run_cli, write_config, tmp_path, tagged, value) -> None:
    path = write_config(tmp_path, with_line("learning_rate", tagged))
    assert json_of(run_cli(["step", str(path), "--format", "json"]))["learning_rate"] == value


@pytest.mark.parametrize(
    ("text", "value"), [("1e-3", 1e-3), ("2E1", 20.0), ("1_0", 10.0), (".5", 0.5), ("+3", 3.0)]
)
def test_yaml12_decimal_numbers_still_read(run_cli, write_config, tmp_path, text, value):
    path = write_config(tmp_path, with_line("learning_rate", text))
    assert json_of(run_cli(["step", str(path), "--format", "json"]))["learning_rate"] == value


@pytest.mark.parametrize(
    "data",
    [
        b"input: [1]\xff\n",
        "input: [1]\n".encode("utf-16"),
        bytes(range(256)),
    ],
    ids=["latin-byte", "utf-16", "binary"],
)
def test_non_utf8_standard_input_is_one_line(data: bytes) -> None:
    result = CliRunner().invoke(cli, ["step", "-"], input=data)
    one_line_error(result, 2, "<stdin>", "is not UTF-8 text")


def test_non_utf8_standard_input_under_the_c_locale() -> None:
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}
    run = subprocess.run(
        [sys.executable, "-m", "gradcalc", "step", "-"],
        input=b"input: [1]\xff\n",
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.decode().count("\n") == 1
    assert b"is not UTF-8 text" in run.stderr and b"Traceback" not in run.stderr


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\ufffe"])
def test_control_characters_are_one_line_with_the_line_number(
    run_cli, write_config, tmp_path, char
):
    path = write_config(tmp_path, BASE.replace("target: [0.9]", f"target: [0.9{char}]"))
    one_line_error(run_cli(["step", str(path)]), 2, "line 3:", f"U+{ord(char):04X}")
    result = CliRunner().invoke(
        cli, ["step", "-"], input=BASE.replace("target: [0.9]", f"target: [{char}]")
    )
    one_line_error(result, 2, "<stdin>, line 3:", "control character")


def test_max_rows_past_int64_shows_everything(run_cli) -> None:
    huge = run_cli(["step", str(WORKED), "--max-rows", "99999999999999999999", "--no-color"])
    every = run_cli(["step", str(WORKED), "--max-rows", "0", "--no-color"])
    assert huge.exit_code == 0, huge.output
    assert huge.stdout == every.stdout


def test_derive_cosine_with_a_huge_target(run_cli) -> None:
    doc = json_of(
        run_cli(["derive", "cosine", "--at", "1,1", "--target", "1e200,1", "--format", "json"])
    )
    # y/‖y‖ = (1, 1e-200) ≈ (1, 0): C = 1 − 1/√2 and ∂C/∂a = −(ŷ − cos·â)/‖a‖ = (−1, 1)/(2√2).
    assert doc["value"] == pytest.approx(1 - 1 / math.sqrt(2), rel=1e-12)
    assert doc["gradient"] == pytest.approx(
        [-1 / (2 * math.sqrt(2)), 1 / (2 * math.sqrt(2))], rel=1e-9
    )
    assert doc["agreement"]["ok"] is True


def test_derive_huber_with_a_huge_delta(run_cli) -> None:
    doc = json_of(
        run_cli(
            [
                "derive",
                "huber",
                "--at",
                "1",
                "--target",
                "0",
                "--param",
                "delta=1e200",
                "--format",
                "json",
            ]
        )
    )
    assert doc["value"] == 0.5 and doc["gradient"] == [1.0]  # ½(y − a)², ∂/∂a = a − y


# ---- 2. derivatives that do not lose a path ------------------------------------------------


def _sigma(x):
    return 1 / (1 + mpmath.exp(-x))


# Exact derivatives in forms without cancellation; mpmath's exponent is unbounded, so e^−800 is
# an ordinary number there, and 60 digits are far more than float64's 16.
MP_DERIVATIVES = {
    "sigmoid": lambda x: mpmath.exp(-abs(x)) / (1 + mpmath.exp(-abs(x))) ** 2,
    "tanh": lambda x: 1 / mpmath.cosh(x) ** 2,
    "softplus": _sigma,
    "silu": lambda x: _sigma(x) * (1 + x * _sigma(-x)),
}


def _truth(name: str, x: float) -> float:
    return float(MP_DERIVATIVES[name](mpmath.mpf(x)))


def _agrees(doc: dict, truth: float) -> bool:
    """Relative agreement, except where the derivative is below what float64 resolves next to f
    (tanh'(40) = 1 − tanh²(40) ≈ 7e−35 next to tanh = 1): there the tool must say so."""
    value = doc["derivative"]
    if abs(value - truth) <= 1e-9 * abs(truth) or (abs(truth) < 1e-300 and value == 0):
        return True
    resolved = any("below what float64 resolves" in note for note in doc["notes"])
    return resolved and abs(value - truth) <= 1e-15 * max(1.0, abs(doc["value"]))


@pytest.mark.parametrize("name", list(MP_DERIVATIVES))
@pytest.mark.parametrize("x", [-800, -709, -400, -354.9, -40, -1, 0.3, 40, 354.9, 400, 709.8, 800])
def test_registry_derivatives_match_60_digit_mpmath(run_cli, name: str, x: float) -> None:
    truth = _truth(name, x)
    doc = json_of(run_cli(["derive", name, f"--at={x}", "--format", "json"]))
    assert _agrees(doc, truth), (name, x, doc["derivative"], truth, doc["notes"])
    assert doc["agreement"]["ok"] is True
    formula = json_of(run_cli(["derive", f"{name}(x)", f"--at={x}", "--format", "json"]))
    assert _agrees(formula, truth), (f"{name}(x)", x, formula["derivative"], truth)


def test_tanh_at_400_is_zero_not_one(run_cli) -> None:
    doc = json_of(run_cli(["derive", "tanh", "--at", "400", "--format", "json"]))
    assert doc["derivative"] == 0.0  # 1 − tanh²(400) ≈ 4e−348: below float64
    assert not doc.get("non_finite_nodes")  # so the 0 is the graph's, not a fallback


def test_softmax_at_400_399_matches_mpmath(run_cli) -> None:
    doc = json_of(run_cli(["derive", "softmax", "--at", "400,399", "--format", "json"]))
    a = [mpmath.mpf(400), mpmath.mpf(399)]
    total = sum(mpmath.exp(v) for v in a)
    s = [mpmath.exp(v) / total for v in a]
    truth = [[float(s[i] * ((i == j) - s[j])) for j in range(2)] for i in range(2)]
    assert np.allclose(doc["jacobian"], truth, rtol=1e-12, atol=0)
    assert doc["jacobian"][0][0] == pytest.approx(0.19661193324148185, rel=1e-12)
    assert doc["agreement"]["ok"] is True


@pytest.mark.parametrize(("name", "x"), [("sigmoid", -400), ("silu", -400)])
def test_sigmoid_and_silu_at_minus_400_agree_relatively(run_cli, name: str, x: float) -> None:
    truth = _truth(name, x)
    doc = json_of(run_cli(["derive", name, f"--at={x}", "--format", "json"]))
    assert doc["derivative"] == pytest.approx(truth, rel=1e-12)  # silu's sign was wrong
    assert not any("float64 resolves" in note for note in doc["notes"])  # the wrong cause
    assert any(
        "leaves float64's range" in note and "no path is lost" in note for note in doc["notes"]
    )


@pytest.mark.parametrize(
    ("formula", "x"), [("tanh(x)", 800), ("softplus(x)", 800), ("sigmoid(x)", -800)]
)
def test_formulas_use_the_stable_forms(run_cli, formula: str, x: float) -> None:
    registry = json_of(
        run_cli(["derive", formula.removesuffix("(x)"), f"--at={x}", "--format", "json"])
    )
    doc = json_of(run_cli(["derive", formula, f"--at={x}", "--format", "json"]))
    assert doc["value"] == registry["value"] and doc["derivative"] == registry["derivative"]
    assert doc["agreement"]["ok"] is True


def test_wide_sweep_keeps_a_path_plain_float64_drops() -> None:
    from gradcalc.graph import Graph

    g = Graph()
    x = g.input("x", -400.0)
    w = g.add(1.0, g.exp(g.neg(x)))
    f = g.div(1.0, w)
    lost = g.backward(f)
    assert lost  # ∂f/∂w = −1/w² ≈ −4e−348 underflows in float64
    assert x.adjoint == pytest.approx(_truth("sigmoid", -400), rel=1e-12)


def test_disagreeing_routes_exit_3_naming_the_trusted_one(run_cli, monkeypatch) -> None:
    from gradcalc.functions import activations

    wrong = dataclasses.replace(
        activations.REGISTRY["sigmoid"], prime=lambda z, a, p: 2 * a * (1 - a)
    )
    monkeypatch.setitem(activations.REGISTRY, "sigmoid", wrong)
    result = run_cli(["derive", "sigmoid", "--at", "0.3", "--format", "json"])
    message = one_line_error(
        result, 3, "disagree", "closed form", "trusted: the finite difference and the graph"
    )
    assert "the closed form is wrong" in message
    assert json.loads(result.stdout)["agreement"]["ok"] is False  # the answer is still printed
    table = run_cli(["derive", "sigmoid", "--at", "0.3"])
    assert table.exit_code == 3 and table.stdout


# ---- 3. exit statuses that mean what they say --------------------------------------------

ONE_UNIT = """\
input: [1.0]
target: [{y}]
loss: {loss}
learning_rate: 0.1
layers:
  - weights: [[{w}]]
    biases: [{b}]
    activation: identity
"""


@pytest.mark.parametrize(
    ("loss", "y", "w", "b", "mentions"),
    [
        ("cross_entropy", 1.0, -1.0, 0.0, ("loss:", "a_j > 0", "a^2 = -1", "identity")),
        ("binary_cross_entropy", 1.0, 2.0, 0.0, ("loss:", "(0, 1)", "a^2 = 2")),
        ("cosine", 1.0, 0.0, 0.0, ("loss:", "zero vector", "a^2 = 0")),
        ("quadratic", 1.0, 1e308, 1e308, ("layers[0]:", "z^2 = inf")),
    ],
)
@pytest.mark.parametrize("steps", ["1", "0"])
def test_problems_in_the_configs_own_values_exit_2(
    run_cli, write_config, tmp_path, loss, y, w, b, mentions, steps
) -> None:
    path = write_config(tmp_path, ONE_UNIT.format(loss=loss, y=y, w=w, b=b))
    message = one_line_error(run_cli(["step", str(path), "--steps", steps]), 2, *mentions)
    assert "before any update" in message
    assert "try a smaller learning rate" not in message


def test_divergence_after_updates_is_still_exit_1(run_cli, write_config, tmp_path) -> None:
    path = write_config(tmp_path, ONE_UNIT.format(loss="quadratic", y=0.5, w=1.0, b=0.0))
    result = run_cli(["step", str(path), "--learning-rate", "1e300", "--steps", "5"])
    message = one_line_error(result, 1, "step ", "diverged")
    assert "before any update" not in message


def test_round_does_not_overflow_where_the_exact_run_does_not(
    run_cli, write_config, tmp_path
) -> None:
    text = BASE.replace("biases: [-0.2, -0.2]", "biases: [1e307, -0.2]")
    path = write_config(tmp_path, text)
    exact = json_of(run_cli(["step", str(path), "--format", "json"]))
    rounded = json_of(run_cli(["step", str(path), "--format", "json", "--round", "2"]))
    assert (
        rounded["steps"][0]["layers"][0]["z"][0] == exact["steps"][0]["layers"][0]["z"][0] == 1e307
    )


def test_hand_round_leaves_whole_floats_alone() -> None:
    values = np.array([1e307, -1e307, 2.0**60 + 4096, 0.125, -0.0045, 123456.785])
    rounded = hand_round(2)(values)
    assert list(rounded[:3]) == list(values[:3])
    assert list(rounded[3:]) == [0.13, 0.0, 123456.79]


COMMANDS = [
    ["list"],
    ["list", "--format", "json"],
    ["examples"],
    ["completion", "bash"],
    ["step", str(WORKED)],
    ["step", str(WORKED), "--format", "json"],
    ["step", str(WORKED), "--explain"],
    ["derive", "tanh", "--at", "0.5"],
    ["derive", "tanh", "--at", "0.5", "--format", "json"],
    ["--help"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a)[:40])
def test_a_closed_pipe_is_status_0_for_every_command(args: list[str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradcalc", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first byte
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert err == b""


def _interrupt_during_write(
    monkeypatch, exc: BaseException | None = None, signum: int | None = None
):
    real = os.replace

    def replace(src, dst):
        assert Path(src).exists()  # the temp file is there when the interruption comes
        if signum is not None:
            os.kill(os.getpid(), signum)
            threading.Event().wait(5)  # the handler raises before this returns
        raise exc  # type: ignore[misc]

    monkeypatch.setattr(os, "replace", replace)
    return real


@pytest.mark.parametrize("command", [["step", str(WORKED)], ["derive", "tanh", "--at", "1"]])
def test_ctrl_c_exits_130_with_one_line_and_no_file(
    run_cli, monkeypatch, tmp_path, command
) -> None:
    _interrupt_during_write(monkeypatch, KeyboardInterrupt())
    target = tmp_path / "out.md"
    result = run_cli([*command, "--format", "markdown", "-o", str(target)])
    one_line_error(result, 130, "interrupted")
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temp file


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_while_writing_removes_the_temp_file(
    run_cli, monkeypatch, tmp_path, signum
) -> None:
    _interrupt_during_write(monkeypatch, signum=signum)
    result = run_cli(["step", str(WORKED), "--format", "markdown", "-o", str(tmp_path / "out.md")])
    one_line_error(result, 128 + signum, "terminated")
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler, signal.SIG_IGN)


def test_sigterm_from_outside_leaves_no_temp_file(tmp_path) -> None:
    """A real SIGTERM to a real process, repeated: the temp file never stays behind."""
    for attempt in range(6):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gradcalc",
                "step",
                str(WORKED),
                "--format",
                "markdown",
                "-o",
                "out.md",
            ],
            cwd=tmp_path,
            stderr=subprocess.PIPE,
        )
        threading.Event().wait(0.05 * attempt + 0.15)
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=60)
        assert status in (0, 143, -signal.SIGTERM), proc.stderr.read() if proc.stderr else b""
        leftovers = [p.name for p in tmp_path.iterdir() if p.name != "out.md"]
        assert leftovers == []


def test_exit_statuses_in_help_and_readme_are_the_same_table(run_cli) -> None:
    help_text = run_cli(["--help"]).stdout
    from doc_pages import section

    readme = section("Errors and exit statuses")
    for status, commands, meaning in EXIT_STATUSES:
        assert f"{status:<6} {commands:<14} {meaning}" in help_text
        assert f"| {status} | {commands} | {meaning} |" in readme


# ---- 4. --output does not destroy what it does not own ---------------------------------


def _derive_to(run_cli, target: str, *extra: str):
    return run_cli(["derive", "tanh", "--at", "1", "--format", "markdown", "-o", target, *extra])


def test_output_to_a_fifo_writes_into_it(run_cli, tmp_path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = _derive_to(run_cli, str(fifo))
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still a FIFO, not replaced by a file
    assert received and received[0].startswith(b"#")


def test_output_to_dev_null_keeps_it_a_device(run_cli) -> None:
    assert _derive_to(run_cli, "/dev/null").exit_code == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_output_to_dev_full_reports_enospc(run_cli) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    one_line_error(_derive_to(run_cli, "/dev/full"), 2, "/dev/full", "No space left")


def test_output_through_a_symlink_replaces_its_target(run_cli, tmp_path) -> None:
    (tmp_path / "real.md").write_text("old", encoding="utf-8")
    link = tmp_path / "link.md"
    link.symlink_to("real.md")
    assert _derive_to(run_cli, str(link)).exit_code == 0
    assert link.is_symlink() and os.readlink(link) == "real.md"
    assert (tmp_path / "real.md").read_text(encoding="utf-8").startswith("#")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.md", "real.md"]


def test_output_read_only_is_refused_unless_force(run_cli, tmp_path) -> None:
    target = tmp_path / "ro.md"
    target.write_text("keep me", encoding="utf-8")
    target.chmod(0o444)
    one_line_error(_derive_to(run_cli, str(target)), 2, "read-only", "--force")
    assert target.read_text(encoding="utf-8") == "keep me"
    assert _derive_to(run_cli, str(target), "--force").exit_code == 0
    assert target.read_text(encoding="utf-8").startswith("#")
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    result = run_cli(["step", str(WORKED), "-o", str(target)])
    one_line_error(result, 2, "read-only")


def test_output_with_a_255_byte_name(run_cli, tmp_path) -> None:
    target = tmp_path / ("a" * 252 + ".md")
    assert _derive_to(run_cli, str(target)).exit_code == 0
    assert target.read_text(encoding="utf-8").startswith("#")
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_output_dash_is_standard_output(run_cli, tmp_path) -> None:
    result = run_cli(["derive", "tanh", "--at", "1", "--format", "markdown", "-o", "-"])
    assert result.exit_code == 0 and result.stdout.startswith("#")
    assert not Path("-").exists()


def test_a_real_ctrl_c_exits_130_with_one_line_and_no_file(tmp_path) -> None:
    config = tmp_path / "long.yaml"
    config.write_text(BASE.replace("steps: 1", "steps: 1000000"), encoding="utf-8")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gradcalc",
            "step",
            str(config),
            "--format",
            "json",
            "-o",
            "out.json",
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        # As from a terminal: a job started in the background (`cmd &` in a script) inherits
        # SIGINT ignored, and a program rightly keeps ignoring it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # Interrupt once the run is writing (its temporary file exists), well inside the million
    # steps: a fixed delay can land in start-up on a loaded machine.
    for _ in range(300):
        if any(p.name.startswith(".gradcalc-") for p in tmp_path.iterdir()):
            break
        threading.Event().wait(0.1)
    threading.Event().wait(0.5)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert err.count("\n") == 1 and "interrupted" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.yaml"]


def test_a_kink_contradicting_its_record_exits_3(run_cli, monkeypatch) -> None:
    from gradcalc.functions import activations

    relu = activations.REGISTRY["relu"]
    wrong_kink = dataclasses.replace(relu.kinks[0], left=lambda p: 0.5)
    monkeypatch.setitem(
        activations.REGISTRY, "relu", dataclasses.replace(relu, kinks=(wrong_kink,))
    )
    result = run_cli(["derive", "relu", "--at", "0", "--format", "json"])
    one_line_error(result, 3, "disagree", "kink")
    assert run_cli(["derive", "relu", "--at", "0.5"]).exit_code == 0


@pytest.mark.parametrize("into", ["pipe", "file"])
def test_output_to_dev_stdout(tmp_path, into: str) -> None:
    args = [sys.executable, "-m", "gradcalc", "derive", "tanh", "--at", "1", "-o", "/dev/stdout"]
    args += ["--format", "markdown"]
    if into == "pipe":
        run = subprocess.run(args, capture_output=True, timeout=60, check=False)
        assert run.returncode == 0, run.stderr
        text = run.stdout
    else:
        target = tmp_path / "shell-redirect.md"
        with target.open("wb") as fh:  # as `gradcalc ... -o /dev/stdout > file` does
            run = subprocess.run(args, stdout=fh, stderr=subprocess.PIPE, timeout=60, check=False)
        assert run.returncode == 0, run.stderr
        text = target.read_bytes()
        assert [p.name for p in tmp_path.iterdir()] == ["shell-redirect.md"]
    assert text.startswith(b"#") and b"tanh" in text


@pytest.mark.parametrize(
    "name",
    [name for name, rec in ACTIVATION_RECORDS.items() if rec.elementwise and name == rec.name],
)
@pytest.mark.parametrize("x", [-700, -400, -100, 100, 400, 700])
def test_every_activations_graph_matches_its_closed_form_far_out(
    run_cli, name: str, x: float
) -> None:
    """The class of fault, for every registry entry: no path of the graph is lost far out."""
    doc = json_of(run_cli(["derive", name, f"--at={x}", "--format", "json"]))
    graph, closed = doc["derivative"], doc["closed_form"]
    if isinstance(closed, dict):  # prelu: with its parameter gradients
        closed = closed["derivative"]
    assert doc["agreement"]["ok"] is True
    resolved = any("below what float64 resolves" in note for note in doc["notes"])
    assert abs(graph - closed) <= 1e-9 * abs(closed) or (
        resolved and abs(graph - closed) < 1e-15
    ), (
        name,
        x,
        graph,
        closed,
    )


def test_wide_numbers_against_exact_fractions() -> None:
    """Wide's arithmetic checked against Python's exact rationals, far outside float64."""
    from fractions import Fraction

    from gradcalc.graph.wide import ONE, ZERO, Wide

    def exact(w: Wide) -> Fraction:
        return Fraction(w.m) * Fraction(2) ** w.e

    def rounded(w: Wide, truth: Fraction) -> bool:  # within one rounding of float64
        return abs(exact(w) - truth) <= abs(truth) * Fraction(2) ** -52

    tiny, huge = Wide.of(1e-300), Wide.of(1e300)
    product = tiny * tiny * huge  # 1e-300, through 1e-600
    assert float(product) == pytest.approx(1e-300, rel=1e-15)
    assert (tiny * tiny).leaves_float64() and not product.leaves_float64()
    assert rounded(tiny * tiny, exact(tiny) ** 2)
    assert float(huge * huge) == math.inf and (huge * huge).leaves_float64()
    quotient = Wide.of(1.0) / Wide.of(5e-324)  # 1/(smallest subnormal) is past float64
    assert rounded(quotient, Fraction(1) / Fraction(5e-324))
    total = Wide.of(1e300) * Wide.of(1e300) + Wide.of(-1e300) * Wide.of(1e300)
    assert float(total) == 0.0 and not total
    assert float(Wide.of(2.0) + Wide.of(-0.5)) == 1.5
    assert float(ONE + ZERO) == 1.0 and float(-ONE) == -1.0
    assert math.isnan(float(Wide.of(0.0) / Wide.of(0.0)))
    assert float(Wide.of(1.0) / Wide.of(0.0)) == math.inf


# ---- found by the long fuzz run: the finite-difference route's own limits ----------------


@pytest.mark.parametrize(
    ("args", "truth"),
    [
        # cosine of 1-D vectors is constant away from 0: an absolute step crossed 0
        (["cosine", "--at=1e-12", "--target=1e-12"], [0.0]),
        # a cosine of vectors of size 1e-70 varies on that scale, not on 6e-6
        (
            ["cosine", "--at=2.58e-70,2.79e-289,2.58e-70,2.58e-70", "--target=1,0,0,0"],
            None,
        ),
        # softmax at 800: the step 800·6e-6 is too coarse for 1e-6 agreement
        (["softmax", "--at=800,800,0"], None),
        # max(0, x)^0.996 a hair right of its kink: smooth on a step relative to x
        (["identity((max(0, x))**(tanh(pi)))", "--at=1e-300"], None),
    ],
)
def test_finite_differences_shrink_until_they_are_stable(run_cli, args, truth) -> None:
    result = run_cli(["derive", *args, "--format", "json"])
    doc = json_of(result)
    assert doc["agreement"]["ok"] is True and result.stderr == ""
    if truth is not None:
        assert doc["gradient"] == truth


def test_no_stable_difference_is_said_not_a_disagreement(run_cli) -> None:
    # At −1e300 the smallest representable step (an ulp, 1e284) saturates the softmax.
    result = run_cli(["derive", "softmax", "--at=-1e300,-1e300", "--format", "json"])
    doc = json_of(result)
    assert doc["jacobian"] == [[0.25, -0.25], [-0.25, 0.25]]  # the closed form, exact here
    assert doc["numeric"]["jacobian"] == [[None, None], [None, None]]
    assert any("no finite difference in a₁ is stable" in note for note in doc["notes"])


def test_a_difference_below_its_rounding_floor_confirms_nothing(run_cli) -> None:
    # f = e − √x at x = 1e-300: √x is far below f's last bit, so every quotient is 0.
    result = run_cli(["derive", "e - sqrt(x)", "--at=1e-300", "--format", "json"])
    doc = json_of(result)
    assert doc["derivative"] == pytest.approx(-0.5e150, rel=1e-12)  # −1/(2√x)
    assert any("cannot resolve the derivative" in note for note in doc["notes"])


def test_step_streams_through_a_symlink_and_into_a_fifo(run_cli, tmp_path) -> None:
    """step writes through its streaming sink: the same rules as every --output."""
    (tmp_path / "real.json").write_text("old", encoding="utf-8")
    link = tmp_path / "link.json"
    link.symlink_to("real.json")
    assert run_cli(["step", str(WORKED), "--format", "json", "-o", str(link)]).exit_code == 0
    assert link.is_symlink() and json.loads((tmp_path / "real.json").read_text(encoding="utf-8"))
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = run_cli(["step", str(WORKED), "--format", "jsonl", "-o", str(fifo)])
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and received and received[0].startswith(b"{")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "pipe", "real.json"]


def test_save_weights_follows_the_output_rules(run_cli, tmp_path) -> None:
    target = tmp_path / "w.npz"
    target.write_bytes(b"keep")
    target.chmod(0o444)
    one_line_error(run_cli(["step", str(WORKED), "--save-weights", str(target)]), 2, "read-only")
    assert target.read_bytes() == b"keep"
    assert run_cli(["step", str(WORKED), "--save-weights", str(target), "--force"]).exit_code == 0
    assert set(np.load(target)) == {"w2", "b2", "w3", "b3"}
    long = tmp_path / ("w" * 250 + ".npz")
    assert run_cli(["step", str(WORKED), "--save-weights", str(long)]).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([long.name, "w.npz"])


@pytest.mark.parametrize(
    "row", ["[!!int -0.2, 0.1, 0.5]", "[!!int 1e3, 0.1, 0.5]", "[!!float x, 0.1, 0.5]"]
)
def test_a_tag_that_does_not_fit_in_a_fast_row_is_one_line(run_cli, write_config, tmp_path, row):
    """Found by the long fuzz run: the fast path for rows of numbers took the tag on trust."""
    path = write_config(tmp_path, BASE.replace("[-0.2, 0.1, 0.5]", row))
    one_line_error(run_cli(["step", str(path)]), 2, "layers[0].weights[1][0]", "does not fit")


@pytest.mark.parametrize("key", ["²", "١", "99999999999999999999"])
def test_check_refuses_a_layer_key_that_only_looks_like_a_number(run_cli, tmp_path, key) -> None:
    """ "²".isdigit() is true and int("²") raises: the same class as the config's numbers."""
    answers = (ROOT / "configs" / "answers" / "worked-example.yaml").read_text(encoding="utf-8")
    path = tmp_path / "answers.yaml"
    path.write_text(answers.replace("z: {2:", f"z: {{{key}:"), encoding="utf-8")
    result = run_cli(["check", str(WORKED), str(path), "--decimals", "3"])
    one_line_error(result, 2, "line 4:", "expected a layer number")


# ---- issue 15: BCE on a softmax output, long decimals -----------------------------------------


def _softmax_bce_truth(z: list[float], y: list[float]) -> tuple[float, list[float]]:
    """C = −Σ_j [y_j ln s_j + (1 − y_j) ln(1 − s_j)] at 60 digits, with 1 − s_j summed from the
    other units (no cancellation at any precision), and ∂C/∂z_i by mpmath's own differentiation
    of that cost: nothing shared with the engine's closed form."""

    def cost(*zz: mpmath.mpf) -> mpmath.mpf:
        exps = [mpmath.exp(v) for v in zz]
        total = mpmath.fsum(exps)
        out = mpmath.mpf(0)
        for j, yj in enumerate(y):
            if yj:
                out -= yj * mpmath.log(exps[j] / total)
            if yj != 1:
                rest = mpmath.fsum(e for k, e in enumerate(exps) if k != j)
                out -= (1 - yj) * mpmath.log(rest / total)
        return out

    def along(i: int) -> mpmath.mpf:
        return mpmath.diff(lambda t: cost(*[t if k == i else at[k] for k in range(len(at))]), at[i])

    # 800 digits: a unit's share of the cost can be e⁻⁷⁰⁰ of the whole, and still a float64.
    with mpmath.workdps(800):
        at = [mpmath.mpf(v) for v in z]
        return float(cost(*at)), [float(along(i)) for i in range(len(z))]


_RNG = np.random.default_rng(15)
SOFTMAX_BCE_CASES = [
    ([40.0, 0.0], [1.0, 1.0]),  # the issue's: a² rounds to (1, 4e−18); C = 40, δ = (1, −1)
    ([40.0, 0.0], [0.3, 1.0]),
    ([800.0, 0.0, -3.0], [1.0, 0.5, 0.0]),  # 1 − s₁ ≈ e⁻⁸⁰⁰, below float64
    ([-2.0, 35.0, 1.0, 0.5], [0.2, 1.0, 0.0, 1.0]),
    *(
        (_RNG.uniform(-30, 30, n).tolist(), np.round(_RNG.uniform(0, 1, n), 2).tolist())
        for n in (2, 3, 5)
    ),
]


@pytest.mark.parametrize(("z", "y"), SOFTMAX_BCE_CASES)
def test_bce_on_a_saturated_softmax_is_the_exact_finite_cost(
    run_cli, write_config, tmp_path, z: list[float], y: list[float]
) -> None:
    rows = ", ".join(f"[{v!r}]" for v in z)
    path = write_config(
        tmp_path,
        f"input: [1.0]\ntarget: {list(y)}\nloss: binary_cross_entropy\nlearning_rate: 0.1\n"
        f"layers:\n  - weights: [{rows}]\n    biases: {[0.0] * len(z)}\n"
        "    activation: softmax\n",
    )
    value, gradient = _softmax_bce_truth(z, y)
    doc = json_of(run_cli(["step", str(path), "--format", "json"]))
    step = doc["steps"][0]
    assert step["loss"] == pytest.approx(value, rel=1e-12)
    assert step["layers"][0]["delta"] == pytest.approx(gradient, rel=1e-10, abs=1e-300)
    # ∂C/∂w = a¹ δ with a¹ = 1, and the lean path (--show summary) gives the same cost.
    grad_w = [row[0] for row in step["layers"][0]["grad_weights"]]
    assert grad_w == pytest.approx(gradient, rel=1e-10, abs=1e-300)
    lean = json_of(run_cli(["step", str(path), "--format", "json", "--show", "summary"]))
    assert lean["steps"][0]["loss"] == step["loss"]


def test_bce_on_a_single_softmax_unit(run_cli, write_config, tmp_path) -> None:
    """softmax of one unit is 1: with y = 1 the cost is exactly 0; with y < 1 it is infinite,
    and the refusal still says which values the loss needs."""
    text = (
        "input: [1.0]\ntarget: [{y}]\nloss: bce\nlearning_rate: 0.1\n"
        "layers:\n  - weights: [[2.0]]\n    biases: [0.0]\n    activation: softmax\n"
    )
    doc = json_of(
        run_cli(["step", str(write_config(tmp_path, text.format(y=1))), "--format", "json"])
    )
    assert doc["steps"][0]["loss"] == 0.0 and doc["steps"][0]["layers"][0]["delta"] == [0.0]
    path = write_config(tmp_path, text.format(y=0.5))
    for extra in ([], ["--show", "summary"]):
        one_line_error(run_cli(["step", str(path), *extra]), 2, "loss:", "needs values in (0, 1)")


def test_bce_on_softmax_matches_mpmath_across_float64s_range() -> None:
    """The fused record itself on random rows with |z| up to 700 and targets of 0, 1 and
    between: cost and δ^L to 1e-12 relative, tiny costs and tiny δ included."""
    from gradcalc.functions.losses import REGISTRY as LOSS_RECORDS

    fused = LOSS_RECORDS["binary_cross_entropy"].fused["softmax"]
    rng = np.random.default_rng(4)
    cases = [([42.42973252, -42.87662994], [1.0, 0.0])]  # C = 2e⁻⁸⁵: once half of it was lost
    for _ in range(30):
        n = int(rng.integers(2, 6))
        z = rng.uniform(-1, 1, n) * rng.choice([1.0, 10.0, 50.0, 300.0, 700.0])
        cases.append((z.tolist(), rng.choice([0.0, 1.0, 0.5, 0.25, 0.9], n).tolist()))
    for z, y in cases:
        value, gradient = _softmax_bce_truth(z, y)
        row, target = np.array([z]), np.array([y])
        assert fused.value(row, target, {})[0] == pytest.approx(value, rel=1e-12), (z, y)
        got = fused.delta(row, target, {})[0]
        assert got.tolist() == pytest.approx(gradient, rel=1e-12, abs=1e-300), (z, y)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("0." + "0" * 5000 + "1", 0.0),  # 1e−5001: the nearest float64 is 0
        ("0." + "0" * 300 + "123", 1.23e-301),
        ("0.5" + "0" * 5000 + "1", 0.5),
        ("0" * 5000 + "0.25", 0.25),  # leading zeros
        ("-0." + "0" * 320 + "5", -5e-321),  # subnormal
        ("3." + "14159265358979323846" * 250, math.pi),
    ],
)
def test_a_decimal_of_many_digits_is_read(run_cli, write_config, tmp_path, literal, value):
    """Issue 15: a 5,002-digit 0.000…01 was refused as "too large"; float() reads a decimal
    of any length, correctly rounded."""
    from gradcalc.step import config

    for text in (
        f"[{literal}, 0.7, 0.1]",
        f"\n  - {literal}\n  - 0.7\n  - 0.1",
    ):  # fast row, or not
        path = write_config(tmp_path, BASE.replace("[0.8, 0.7, 0.1]", text))
        assert config.load(str(path)).x[0, 0] == value
        json_of(run_cli(["step", str(path), "--format", "json"]))


def test_a_long_decimal_too_large_says_so_with_its_length(run_cli, write_config, tmp_path):
    literal = "1" + "0" * 5000 + ".5"
    path = write_config(tmp_path, with_line("learning_rate", literal))
    message = one_line_error(run_cli(["step", str(path)]), 2, "learning_rate:", "too large")
    assert "(5,003 characters)" in message and len(message) < 300


@pytest.mark.parametrize(
    ("target", "line"),
    [
        ("[1, 1]", "= (−1.00) − 1.00 × (−2.00) = 1.00"),
        # 1 − a²₁ rounds to 0 but is a²₂ = e⁻⁴⁰/(1 + e⁻⁴⁰): t₁ = 0.7/4.25e−18, never ∞.
        ("[0.3, 1]", "= (1.65×10¹⁷) − 1.00 × (1.65×10¹⁷) = 1.70"),
    ],
)
def test_the_worked_bce_softmax_delta_writes_finite_numbers(
    run_cli, write_config, tmp_path, target: str, line: str
) -> None:
    path = write_config(
        tmp_path,
        f"input: [1.0]\ntarget: {target}\nloss: bce\nlearning_rate: 0.1\n"
        "layers:\n  - weights: [[40], [0]]\n    biases: [0, 0]\n    activation: softmax\n",
    )
    result = run_cli(["step", str(path), "--explain", "--no-color"])
    assert result.exit_code == 0, result.output
    assert line in result.stdout and "∞" not in result.stdout
    assert "δ²₁ = (a²₁ − y₁)/(1 − a²₁) − a²₁ Σᵢ (aᵢ − yᵢ)/(1 − aᵢ)" in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["step", str(WORKED), "--format", "markdown"],
        ["step", str(WORKED), "--format", "json"],
        ["step", str(WORKED), "--show", "summary", "--format", "jsonl"],
        ["derive", "tanh", "--at", "1", "--format", "markdown"],
    ],
)
@pytest.mark.parametrize("how", ["to this thread", "to another thread"])
def test_sigterm_as_signals_are_released_leaves_no_temp_file(
    run_cli, monkeypatch, tmp_path, command, how
) -> None:
    """A SIGTERM that arrives while the temp file is being created waits until it has a name,
    and acts the moment the signals are released: the name must already be known to whoever
    removes the file (a real SIGTERM from outside once left `.gradcalc-*.tmp`). Sent to the
    process, it may reach another thread (a BLAS worker), which the mask does not hold: Python
    then runs the handler in this thread at once, as simulated here."""
    import tempfile

    real = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        made = real(*args, **kwargs)
        if how == "to this thread":
            os.kill(os.getpid(), signal.SIGTERM)  # held: delivered when the mask is restored
        else:
            signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
        return made

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    result = run_cli([*command, "-o", str(tmp_path / "out")])
    one_line_error(result, 143, "terminated")
    assert list(tmp_path.iterdir()) == []
