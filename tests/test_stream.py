"""Long runs: the streamed engine, --show/--every/--last/--explain-steps, --format jsonl, the
bucketed sparkline, the JSON encoder, output limits and the progress bar."""

from __future__ import annotations

import gc
import importlib
import io
import json
import math
import os
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
from test_step_cli import DIVERGING

from gradcalc.doc.notation import sparkline
from gradcalc.step import config
from gradcalc.step.engine import Stream, run
from gradcalc.step.select import Selection, gaps, parse_steps

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"

BATCH = """\
inputs:
  - [0.8, 0.7, 0.1]
  - [0.1, -0.4, 0.9]
  - [-0.6, 0.3, 0.2]
targets: [[1, 0], [0, 1], [1, 0]]
loss: cross_entropy
learning_rate: 0.5
steps: 12
layers:
  - weights: [[0.2, 0.3, 0.4], [-0.2, 0.1, 0.5]]
    biases: [-0.2, -0.2]
    activation: tanh
  - weights: [[-0.3, 0.1], [0.4, 0.2]]
    biases: [-0.2, 0.1]
    activation: softmax
"""


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


# ---- streaming equivalence ------------------------------------------------------------------


@pytest.mark.parametrize("show", ["all", "summary", "final"])
def test_jsonl_records_are_the_json_document_steps(run_cli, write_config, tmp_path, show) -> None:
    path = str(write_config(tmp_path, BATCH))
    doc = json.loads(run_cli(["step", path, "--format", "json", "--show", show]).stdout)
    result = run_cli(["step", path, "--format", "jsonl", "--show", show])
    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout)
    *records, last = lines
    assert records == doc["steps"]
    assert {**last, "steps": records} == doc
    assert doc["steps_run"] == 12 and doc["show"] == show
    assert len(records) == {"all": 12, "summary": 12, "final": 0}[show]


def test_summary_norms_match_the_full_records(run_cli, write_config, tmp_path) -> None:
    """‖∂C/∂w‖ and ‖Δw‖ recomputed with numpy from the full document's arrays."""
    path = str(write_config(tmp_path, BATCH))
    full = json.loads(run_cli(["step", path, "--format", "json"]).stdout)
    summary = json.loads(run_cli(["step", path, "--format", "json", "--show", "summary"]).stdout)
    spec = config.load(path)
    before = [(layer.weights, layer.biases) for layer in spec.layers]
    for st, sm in zip(full["steps"], summary["steps"], strict=True):
        assert sm["loss"] == st["loss"] and sm["step"] == st["step"]
        for i, (lt, ls) in enumerate(zip(st["layers"], sm["layers"], strict=True)):
            w, b = np.array(lt["weights"]), np.array(lt["biases"])
            assert ls["grad_weights_norm"] == pytest.approx(
                math.sqrt(sum(g * g for row in lt["grad_weights"] for g in row)), rel=1e-12
            )
            assert ls["grad_biases_norm"] == pytest.approx(
                np.linalg.norm(lt["grad_biases"]), rel=1e-12
            )
            assert ls["update_weights_norm"] == pytest.approx(
                np.linalg.norm(w - before[i][0]), rel=1e-12
            )
            assert ls["update_biases_norm"] == pytest.approx(
                np.linalg.norm(b - before[i][1]), rel=1e-12
            )
            before[i] = (w, b)
    # The final parameters are the last step's updated ones.
    last = full["steps"][-1]["layers"]
    assert [p["weights"] for p in full["parameters"]] == [lt["weights"] for lt in last]


def test_streamed_run_equals_the_kept_run() -> None:
    spec = config.load(str(CONFIGS / "tanh-mse.yaml"))
    whole = run(spec)
    kept = run(spec, keep=lambda s: s in (2, 5))
    assert [st.step for st in kept.steps] == [2, 5]
    assert kept.n_steps == whole.n_steps == 5
    assert list(kept.losses) == [st.loss for st in whole.steps]
    for a, b in zip(kept.steps, (whole.steps[1], whole.steps[4]), strict=True):
        for la, lb in zip(a.layers, b.layers, strict=True):
            assert np.array_equal(la.weights, lb.weights)
    assert kept.final.loss == whole.final.loss


# ---- memory: what the writers and the engine keep -------------------------------------------


def test_the_engine_keeps_no_step_it_has_handed_out() -> None:
    spec = config.load(str(CONFIGS / "tanh-mse.yaml"))
    stream = Stream(spec, steps=200)
    refs = []
    for st in stream:
        refs.append(weakref.ref(st))
    gc.collect()
    alive = sum(ref() is not None for ref in refs)
    assert alive <= 1  # at most the first, whose arrays give the initial pass
    trace = stream.finish()
    assert trace.steps == () and trace.n_steps == 200 and len(trace.losses) == 200


def test_table_writer_keeps_only_drawn_sections_without_arrays() -> None:
    from gradcalc.step.writers import TableWriter

    spec = config.load(str(CONFIGS / "tanh-mse.yaml"))
    stream = Stream(spec, steps=500)
    mask = Selection().mask(500, 19)
    writer = TableWriter(lambda s: bool(mask[s]), 40)
    writer.start(stream.head())
    for st in stream:
        writer.step(st)
    assert [s for s, _ in writer.drawn] == [*range(1, 20), 500]
    # What is kept is text, not the steps' arrays.
    gc.collect()
    kept_arrays = [
        obj
        for section in writer.drawn
        for obj in gc.get_referents(*section[1])
        if isinstance(obj, np.ndarray)
    ]
    assert kept_arrays == []


def test_json_writer_writes_each_step_as_it_arrives() -> None:
    from gradcalc.step.json import Writer

    spec = config.load(str(CONFIGS / "tanh-mse.yaml"))
    stream = Stream(spec, steps=30)
    chunks: list[bytes] = []
    writer = Writer(chunks.append, lines=True)
    writer.start(stream.head())
    for n, st in enumerate(stream, 1):
        writer.step(st)
        assert len(chunks) == n and json.loads(chunks[-1])["step"] == n
    assert not hasattr(writer, "steps") and not hasattr(writer, "kept")


# ---- which steps are shown -------------------------------------------------------------------


def _shown(selection: Selection, n: int, head: int | None = None) -> list[int]:
    return [int(s) for s in np.flatnonzero(selection.mask(n, head))]


@pytest.mark.parametrize(
    ("selection", "n", "head", "expected"),
    [
        (Selection(), 30, None, list(range(1, 31))),
        (Selection(), 30, 3, [1, 2, 3, 30]),
        (Selection(), 5, 3, [1, 2, 3, 4, 5]),  # never skip a single step between shown ones
        (Selection(every=10), 35, 3, [1, 11, 21, 31, 35]),
        (Selection(every=2), 7, 3, list(range(1, 8))),
        (Selection(last=3), 10, 3, [8, 9, 10]),
        (Selection(steps=(1, 4)), 9, 3, [1, 4]),
        (Selection(steps=(1, 3)), 9, 3, [1, 2, 3]),
        (Selection(every=5, last=2, steps=(3,)), 12, 3, [1, 2, 3, 6, 11, 12]),
        (Selection(steps=(2,)), 0, 3, []),
    ],
)
def test_selection(selection: Selection, n: int, head: int | None, expected: list[int]) -> None:
    assert _shown(selection, n, head) == expected


def test_parse_steps_and_gaps() -> None:
    assert parse_steps("1,4") == (1, 4)
    assert parse_steps("2-4, 9,3") == (2, 3, 4, 9)
    for bad in ("", "a", "0", "5-2", "1,,x"):
        with pytest.raises(ValueError):
            parse_steps(bad)
    assert gaps([1, 4], 9) == [(1, 2, 3), (2, 5, 9)]
    assert gaps([3], 3) == [(0, 1, 2)]
    assert gaps([], 4) == [(0, 1, 4)]


def test_explain_steps_writes_out_the_steps_asked_for(run_cli) -> None:
    tanh = str(CONFIGS / "tanh-mse.yaml")
    result = run_cli(["step", tanh, "--explain", "--explain-steps", "1,4", "--no-color"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Step 1 of 5" in text and "Step 4 of 5" in text
    assert "Step 2 of 5" not in text and "Step 5 of 5" not in text
    assert "Steps 2 to 3 are not written out" in text
    assert "Step 5 is not written out" in text
    last = run_cli(["step", tanh, "--explain", "--last", "1", "--no-color"]).stdout
    assert "Step 5 of 5" in last and "Steps 1 to 4 are not written out" in last


def test_every_and_last_choose_the_table_sections(run_cli, write_config, tmp_path) -> None:
    path = str(write_config(tmp_path, BATCH))
    text = run_cli(["step", path, "--every", "5", "--no-color"]).stdout
    shown = [int(line.split()[1]) for line in text.splitlines() if line.startswith("Step ")]
    assert shown == [1, 6, 11, 12]
    assert "… steps 2 to 5 not shown" in text and "… steps 7 to 10 not shown" in text
    doc = json.loads(run_cli(["step", path, "--format", "json", "--last", "2"]).stdout)
    assert [st["step"] for st in doc["steps"]] == [11, 12]


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--explain-steps", "9"], "the run has 5 steps"),
        (["--explain-steps", "x"], "--explain-steps"),
        (["--every", "0"], "--every"),
        (["--show", "summary", "--last", "2"], "--show summary"),
    ],
)
def test_selection_errors_exit_2(run_cli, args: list[str], mentions: str) -> None:
    result = run_cli(["step", str(CONFIGS / "tanh-mse.yaml"), *args])
    assert result.exit_code == 2
    assert mentions in result.stderr and "Traceback" not in result.output


def test_summary_table_is_one_line_per_step(run_cli, write_config, tmp_path) -> None:
    path = str(write_config(tmp_path, BATCH))
    result = run_cli(["step", path, "--show", "summary", "--no-color"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines() if line[:8].strip().isdigit()]
    doc = json.loads(run_cli(["step", path, "--format", "json", "--show", "summary"]).stdout)
    assert [int(r[0]) for r in rows] == list(range(1, 13))
    for row, record in zip(rows, doc["steps"], strict=True):
        assert float(row[1]) == pytest.approx(record["loss"], rel=1e-5)
        assert float(row[2]) == pytest.approx(record["layers"][0]["grad_weights_norm"], rel=1e-5)
    final = run_cli(["step", path, "--show", "final", "--no-color"]).stdout
    assert "Step 1" not in final and "Summary" in final and "loss per step" in final


# ---- the loss curve --------------------------------------------------------------------------


def test_sparkline_is_bucketed_to_the_width_and_logarithmic() -> None:
    values = np.exp(-np.linspace(0, 12, 2000))  # five decades
    line = sparkline(values, 60)
    assert len(line) == 60
    assert line[0] == "█" and line[-1] == "▁"
    # On a log scale an exponential decay descends evenly: every bar appears.
    assert set(line) == set("▁▂▃▄▅▆▇█")
    assert sparkline([3.0, 2.0, 1.0]) == "█▅▁"  # short and within a decade: linear, unbucketed
    linear = sparkline(np.linspace(2.0, 1.0, 100), 10)
    assert len(linear) == 10 and linear[0] == "█" and linear[-1] == "▁"


def test_long_run_table_sparkline_fits_the_width(run_cli) -> None:
    args = ["step", str(CONFIGS / "tanh-mse.yaml"), "--steps", "2000", "--show", "final"]
    text = run_cli([*args, "--no-color"]).stdout
    curve = next(line for line in text.splitlines() if line.startswith("loss per step"))
    assert len(curve) <= 80


# ---- the JSON encoder ------------------------------------------------------------------------


EDGE = [0.1, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e16, 1e-5, 1 / 3]


@pytest.mark.parametrize("fallback", [False, True])
def test_json_floats_round_trip_exactly(monkeypatch, fallback: bool) -> None:
    import gradcalc.step.json as module

    if fallback:
        monkeypatch.setitem(sys.modules, "orjson", None)  # import fails: the stdlib path
    module = importlib.reload(module)
    try:
        rng = np.random.default_rng(0)
        values = np.concatenate(
            [EDGE, rng.standard_normal(5000) * 10.0 ** rng.integers(-300, 300, 5000)]
        )
        matrix = values[:5000].reshape(50, 100)
        decoded = json.loads(module.encode({"v": values, "m": matrix[:, ::2]}))
        assert np.array_equal(np.array(decoded["v"]), values)
        assert np.array_equal(np.array(decoded["m"]), matrix[:, ::2])
        assert math.copysign(1, decoded["v"][1]) == -1.0
    finally:
        monkeypatch.undo()
        importlib.reload(module)


# ---- limits ----------------------------------------------------------------------------------


def test_enormous_output_is_refused_up_front(run_cli, write_config, tmp_path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((8, 300)))
    np.save(tmp_path / "y.npy", np.full((8, 10), 0.1))
    path = write_config(
        tmp_path,
        "inputs: {file: x.npy}\ntargets: {file: y.npy}\nloss: mse\nlearning_rate: 0.1\n"
        "steps: 1000000\nlayers: {sizes: [300, 300, 10], activation: sigmoid, init: he_normal}\n",
    )
    result = run_cli(["step", str(path), "--format", "json"])
    assert result.exit_code == 2
    message = result.stderr
    assert message.count("\n") == 1
    assert "would write about" in message and "TB (1,000,000 steps" in message
    assert "--show summary" in message


# ---- progress --------------------------------------------------------------------------------


def _run_with_pty_stderr(args: list[str], env: dict[str, str]) -> tuple[str, bytes]:
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradcalc", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, **env},
        cwd=REPO,
    )
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    return out.decode(), err


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_shows_on_a_terminal_only(run_cli) -> None:
    args = ["step", "--example", "tanh-mse", "--steps", "3000", "--show", "final", "--no-color"]
    env = {"GRADCALC_PROGRESS_AFTER": "0", "COLUMNS": "100"}
    out, err = _run_with_pty_stderr(args, env)
    assert "Summary" in out and "not shown" not in out
    assert b"3000" in err and b"steps" in err  # the bar: "steps ━━━ 1234/3000"
    quiet, err_quiet = _run_with_pty_stderr([*args, "--quiet"], env)
    assert err_quiet == b"" and quiet == out
    piped = subprocess.run(
        [sys.executable, "-m", "gradcalc", *args],
        capture_output=True,
        env={**os.environ, **env},
        cwd=REPO,
        check=True,
    )
    assert piped.stderr == b"" and piped.stdout.decode() == out


# ---- the fast tables -------------------------------------------------------------------------


@pytest.mark.parametrize("width", [200, 30])
def test_fast_grid_draws_what_rich_table_and_fit_draw(width: int) -> None:
    from rich.console import Console
    from rich.table import Table

    from gradcalc.doc.fit import Fit
    from gradcalc.step.table import _Grid

    columns = ("l", "j", "∂C/∂a^l_j", "δ^l_j")
    rows = [("2", str(j), f"{j * 0.123456:.6g}", f"{-j / 7:.6g}") for j in range(1, 30)]
    table = Table(expand=False)
    for c in columns:
        table.add_column(c, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(*r)

    def draw(renderable) -> str:
        con = Console(width=width, no_color=True, color_system=None, file=io.StringIO())
        con.begin_capture()
        con.print(renderable)
        return con.end_capture()

    caption = "… 12 more rows (--max-rows 0 shows all; --format json)"
    assert draw(_Grid(columns, rows, 2, caption)) == draw(Fit(table, 2, caption))
    if width == 200:
        assert draw(_Grid(columns, rows, 2, "")) == draw(table)


def test_a_diverging_stream_keeps_the_records_before_the_failing_step(
    run_cli, write_config, tmp_path
) -> None:
    path = str(write_config(tmp_path, DIVERGING))
    result = run_cli(["step", path, "--format", "jsonl"])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    failing = int(result.stderr.split("step ", 1)[1].split(":")[0])
    records = _lines(result.stdout)
    assert [r["step"] for r in records] == list(range(1, failing))
    assert all(math.isfinite(r["loss"]) for r in records)
    # The document form is held back: nothing half-written on standard output.
    assert run_cli(["step", path, "--format", "json"]).stdout == ""
    out = tmp_path / "out.json"
    out.write_text("before")
    assert run_cli(["step", path, "--format", "json", "-o", str(out)]).exit_code == 1
    assert out.read_text() == "before" and len(list(tmp_path.iterdir())) == 2
