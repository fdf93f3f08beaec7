"""One BLAS thread by default, the user's thread variables when set, and `--threads N` over both.

The variables only count before numpy loads, so the command line is run in a fresh interpreter
(benchmarks/bench_threads.py measures what the default saves on a busy machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradcalc.threads import THREAD_VARIABLES, default_to_one, use

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "configs" / "worked-example.yaml")

PROBE = """
import os, sys
sys.argv = ["gradcalc", *{args!r}]
from gradcalc.__main__ import run
try:
    run()
finally:
    import numpy
    tasks = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else -1
    blas = getattr(numpy.__config__, "CONFIG", {{}}).get("Build Dependencies", {{}})
    name = blas.get("blas", {{}}).get("name", "")
    values = [os.environ.get(v, "-") for v in {variables!r}]
    sys.stderr.write("\\nTHREADS " + " ".join([str(tasks), name or "?", *values]) + "\\n")
"""


def test_one_thread_when_the_user_has_set_none() -> None:
    env = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "262144", "PATH": "/bin"}
    default_to_one(env)
    assert {v: env[v] for v in THREAD_VARIABLES} == dict.fromkeys(THREAD_VARIABLES, "1")
    # The variables that work around older OpenBLAS bugs are not ours to touch.
    assert env["OPENBLAS_CORETYPE"] == "Haswell" and env["OPENBLAS_L2_SIZE"] == "262144"


@pytest.mark.parametrize("variable", THREAD_VARIABLES)
def test_any_thread_variable_the_user_set_stands(variable: str) -> None:
    env = {variable: "3"}
    default_to_one(env)
    assert env == {variable: "3"}


def test_an_empty_variable_is_not_a_choice() -> None:
    env = {"OMP_NUM_THREADS": ""}
    default_to_one(env)
    assert env["OMP_NUM_THREADS"] == "1" and env["OPENBLAS_NUM_THREADS"] == "1"


def test_threads_option_beats_the_environment() -> None:
    env = {"OMP_NUM_THREADS": "8"}
    use(2, env)
    assert {v: env[v] for v in THREAD_VARIABLES} == dict.fromkeys(THREAD_VARIABLES, "2")


def _probe(args: list[str], env: dict[str, str]) -> tuple[int, str, list[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args, variables=THREAD_VARIABLES)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    line = [x for x in done.stderr.splitlines() if x.startswith("THREADS ")][-1].split()
    return int(line[1]), line[2], line[3:], done.stderr


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    return {**env, **extra}


def _openblas_threads_checkable(blas: str) -> bool:
    return sys.platform == "linux" and (os.cpu_count() or 1) >= 2 and "openblas" in blas


def test_the_command_line_loads_numpy_with_one_thread() -> None:
    tasks, blas, values, err = _probe(["step", EXAMPLE, "--format", "json"], _clean_env())
    assert values == ["1"] * len(THREAD_VARIABLES), err
    if _openblas_threads_checkable(blas):
        assert tasks == 1  # OpenBLAS starts its pool when it loads: no worker thread


def test_threads_option_gives_numpy_that_many() -> None:
    args = ["--threads", "2", "step", EXAMPLE, "--format", "json"]
    tasks, blas, values, err = _probe(args, _clean_env(OMP_NUM_THREADS="1"))
    assert values == ["2"] * len(THREAD_VARIABLES), err
    if _openblas_threads_checkable(blas):
        assert tasks == 2


def test_the_users_variable_reaches_numpy_untouched() -> None:
    tasks, blas, values, err = _probe(["list"], _clean_env(OPENBLAS_NUM_THREADS="2"))
    assert values == ["2" if v == "OPENBLAS_NUM_THREADS" else "-" for v in THREAD_VARIABLES], err
    if _openblas_threads_checkable(blas):
        assert tasks == 2


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_threads_must_be_a_whole_number_of_at_least_one(run_cli, value: str) -> None:
    result = run_cli(["--threads", value, "list"])
    assert result.exit_code == 2
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert "--threads" in result.stderr
