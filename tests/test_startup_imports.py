"""The import discipline that keeps start-up fast: each command imports what it uses and no more.

Each case runs the real entry point in a fresh interpreter and lists the modules loaded by the
time it exits; a module the command does not use must not be among them. Nothing is timed here
(benchmarks/bench_startup.py measures the start-up against its baseline).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "configs" / "worked-example.yaml")
ANSWERS = str(ROOT / "configs" / "answers" / "worked-example.yaml")
SLIP = str(ROOT / "configs" / "answers" / "worked-example-slip.yaml")

PROBE = """
import atexit, sys
sys.argv = ["gradcalc", *{args!r}]
atexit.register(lambda: sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)) + "\\n"))
from gradcalc.__main__ import run
run()
"""

# What every computing command may skip: the other commands' engines and the writers of formats
# not asked for.
DERIVE = ("gradcalc.derivation", "gradcalc.graph")
STEP = ("gradcalc.step.engine", "gradcalc.step.config", "yaml")
# (gradcalc/__init__.py imports the empty gradcalc.check package itself; see the comment there.)
CHECK = ("gradcalc.check.answers", "gradcalc.check.cells", "gradcalc.check.grade")
DOCUMENTS = ("gradcalc.doc.markdown", "gradcalc.doc.latex", "gradcalc.step.solution")
TABLES = (
    "rich.console",
    "rich.table",
    "gradcalc.doc.fit",
    "gradcalc.step.table",
    "gradcalc.derivation.table",
)
# Plain output (the probe's standard output is a pipe) drawn without rich (gradcalc.doc.plain).
RICH = ("rich.console", "rich.table", "rich.text", "gradcalc.doc.fit")
# The layer types: a network of dense layers is read and run without them.
LAYERS = ("gradcalc.layers",)
# What a small sheet answered well does not need: the named mistakes (loaded when a cell is
# wrong), JSON (written for --format json only), the typical digits' Counter.most_common.
GRADED_WELL = ("gradcalc.check.mistakes", "json", "heapq")
# check's table names cells with gradcalc.doc.indices, not the notation of worked solutions.
NOTATION = ("gradcalc.doc.notation", "gradcalc.doc.numbers", "gradcalc.symbols")

CASES: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "--version": (["--version"], ("numpy", "rich", "yaml", "orjson", "gradcalc.functions")),
    "--help": (["--help"], ("numpy", "rich", "yaml", "orjson", "gradcalc.functions")),
    "list": (["list"], (*DERIVE, *STEP, *CHECK, "orjson", "rich.console", "rich.table")),
    "examples": (["examples"], (*DERIVE, *CHECK, "numpy", "rich.console", "orjson")),
    # Plain output (the probe's standard output is a pipe) that fits its width: drawn without
    # rich's console and tables (gradcalc.doc.plain).
    "derive": (
        ["derive", "sigmoid", "--at", "0.3"],
        (
            *STEP,
            *CHECK,
            *DOCUMENTS,
            "gradcalc.derivation.solution",
            "gradcalc.derivation.json",
            "rich.console",
            "rich.table",
        ),
    ),
    "derive --color never": (
        ["derive", "sigmoid", "--at", "0.3", "--color", "never"],
        ("rich.console", "rich.table"),
    ),
    "derive json": (
        ["derive", "sigmoid", "--at", "0.3", "--format", "json"],
        (*STEP, *CHECK, *DOCUMENTS, *TABLES),
    ),
    # One step: no loss curve, so no notation either.
    "step": (
        ["step", EXAMPLE],
        (
            *DERIVE,
            *CHECK,
            *DOCUMENTS,
            *RICH,
            *LAYERS,
            "orjson",
            "json",
            "gradcalc.step.json",
            "gradcalc.doc.notation",
        ),
    ),
    "step summary": (
        ["step", EXAMPLE, "--steps", "5", "--show", "summary"],
        (*DERIVE, *CHECK, *DOCUMENTS, *RICH, *LAYERS, "orjson", "json"),
    ),
    "step json": (
        ["step", EXAMPLE, "--format", "json"],
        (*DERIVE, *CHECK, *DOCUMENTS, *TABLES),
    ),
    "step explain": (
        ["step", EXAMPLE, "--explain"],
        (*DERIVE, *CHECK, "gradcalc.doc.markdown", "gradcalc.doc.latex", "orjson"),
    ),
    "check": (
        ["check", EXAMPLE, ANSWERS, "--decimals", "3"],
        (
            *DERIVE,
            *DOCUMENTS,
            *RICH,
            *LAYERS,
            *GRADED_WELL,
            *NOTATION,
            "orjson",
            "gradcalc.step.table",
            "gradcalc.cli.step",
        ),
    ),
    # As the start-up benchmark runs it: the answers judged to the decimals they are written with.
    "check as written": (
        ["check", EXAMPLE, ANSWERS],
        (*DERIVE, *DOCUMENTS, *RICH, *LAYERS, *GRADED_WELL, *NOTATION, "orjson"),
    ),
    "check json": (
        ["check", EXAMPLE, ANSWERS, "--decimals", "3", "--format", "json"],
        (*DERIVE, *DOCUMENTS, *TABLES, "orjson"),
    ),
}


# Piped output 80 columns wide, whatever the terminal and CI environment running the tests.
_ENV = {
    **{k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")},
    "COLUMNS": "80",
}


def _loaded(args: list[str], status: int = 0) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_ENV,
    )
    assert done.returncode == status, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("MODULES ")]
    assert lines, done.stderr[-2000:]
    return set(lines[-1].split()[1:])


@functools.cache
def _baseline() -> frozenset[str]:
    """What importing the dependencies loads from outside themselves (numpy 1.24 loads json for
    its version): no command can avoid those, so they are not held against it."""
    code = "import sys, numpy, yaml, click, rich, orjson; print(' '.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=_ENV
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # The dependencies themselves stay held against a command that need not load them (numpy
    # for --version); only what they pull in from elsewhere is forgiven.
    own = ("numpy", "yaml", "_yaml", "click", "rich", "orjson")
    return frozenset(m for m in done.stdout.split() if m.split(".")[0] not in own)


@pytest.mark.parametrize("case", list(CASES))
def test_a_command_imports_only_what_it_uses(case: str) -> None:
    args, absent = CASES[case]
    loaded = _loaded(args) - _baseline()
    found = sorted(m for m in loaded for a in absent if m == a or m.startswith(a + "."))
    assert not found, f"gradcalc {' '.join(args)} imported {found}"


def test_the_probe_sees_what_a_command_uses() -> None:
    """The listing is real: a command's own modules are in it."""
    loaded = _loaded(["step", EXAMPLE, "--format", "json"])
    assert {"numpy", "yaml", "orjson", "gradcalc.step.engine", "gradcalc.step.json"} <= loaded
    # Colour asked for: rich draws the tables.
    colour = _loaded(["derive", "tanh", "--at", "1", "--color", "always"])
    assert {"rich.console", "rich.table", "gradcalc.derivation.table"} <= colour
    steps = _loaded(["step", EXAMPLE, "--color", "always"])
    assert {"rich.console", "rich.table", "gradcalc.step.table"} <= steps
    # A wrong answer: the named mistakes are looked for.
    assert "gradcalc.check.mistakes" in _loaded(["check", EXAMPLE, SLIP], status=1)
    # A network with other layer types than dense: the layer types.
    conv = _loaded(["step", str(ROOT / "configs" / "conv-worked-example.yaml")])
    assert "gradcalc.layers" in conv


def test_the_command_collects_garbage_rarely_and_not_at_exit() -> None:
    """gradcalc.__main__.run: the cyclic collector runs every 50,000 new objects while modules
    load (not every 700), stays on for a long run, and is not run over the heap at exit."""
    probe = (
        "import atexit, gc, sys\n"
        f"sys.argv = ['gradcalc', 'step', {EXAMPLE!r}, '--format', 'json']\n"
        "atexit.register(lambda: sys.stderr.write("
        "f'\\nGC {gc.isenabled()} {gc.get_threshold()[0]} {gc.get_freeze_count() > 0}\\n'))\n"
        "from gradcalc.__main__ import run\n"
        "run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=_ENV
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.splitlines()[-1] == "GC True 50000 True"
