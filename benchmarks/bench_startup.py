"""How long each command takes to start, next to the imports no command can avoid. Not a test:
run it by hand,

    python benchmarks/bench_startup.py            # 15 rounds, about half a minute
    python benchmarks/bench_startup.py --rounds 30

The baseline is `python -c "import numpy, yaml, click, rich, orjson"`: the dependencies every
command needs (rich only its package; the tables' modules are the commands' own cost). Each
round runs the baseline and every command once, in turn, so a busy machine slows them alike;
the figures are medians, and the ratio is a command's median over the baseline's. The goal is
≤ 1.15× for every command: a command imports only what it uses (tests/test_startup_imports.py
pins which modules each command must not load). A second, informative ratio is over the
baseline plus rich's console and table modules, which a command loads only to draw on a terminal
with colour (or what gradcalc.doc.plain leaves to rich): the commands here write to a pipe, so
step, derive, check and list draw their tables without them.

The commands run as the installed script does (gradcalc.__main__.run), which also sets the
cyclic garbage collector for a short-lived process (collect rarely, freeze the heap at exit); the
baseline runs with Python's defaults.

The thread variables of the child processes are left as they are: the commands pin one BLAS
thread themselves (see bench_threads.py), so the baseline gets the same setting, or the ratio
would credit the commands with OpenBLAS starting fewer threads.

On a machine busy with other work the wall-clock medians move by tenths from run to run; the
last column, the median of each run's CPU time (user + system) over the baseline's, moves far
less, and says the same thing when the machine is quiet.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASELINE = "import numpy, yaml, click, rich, orjson"
# For reading the ratios: what drawing with rich adds (its console and table modules, which
# `import rich` does not load). The goal is measured against BASELINE.
WITH_TABLES = "import numpy, yaml, click, rich.console, rich.table, orjson"
GOAL = 1.15
DEFAULT_GC = (
    "import sys; sys.argv = ['gradcalc', *{args!r}]\n"
    "from gradcalc.threads import default_to_one\n"
    "default_to_one()\n"
    "from gradcalc.cli import main\n"
    "main()\n"
)

COMMANDS: dict[str, list[str]] = {
    "step --example worked-example": ["step", "--example", "worked-example"],
    "check worked-example + its answers": [
        "check",
        str(REPO / "configs" / "worked-example.yaml"),
        str(REPO / "configs" / "answers" / "worked-example.yaml"),
    ],
    "derive sigmoid --at 0.3": ["derive", "sigmoid", "--at", "0.3"],
    "list": ["list"],
    "--version": ["--version"],
}


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """The run's wall-clock time and its CPU time (user + system), in seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # check's answers may be wrong on purpose: status 1
        sys.exit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="runs of each (≥ 10)")
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="run the commands with Python's collector settings, as the baseline runs (what "
        "the imports and the work cost, without the script's collector settings)",
    )
    args = parser.parse_args()
    rounds = max(10, args.rounds)
    cache = tempfile.TemporaryDirectory(prefix="gradcalc-bench-pycache-")
    env = dict(os.environ)
    # Bytecode as an installed package has it: with PYTHONDONTWRITEBYTECODE set (as some CI
    # images do) every run would compile gradcalc's sources again, and time the compiler. The
    # cache goes to a temporary folder, for the baseline's modules as for gradcalc's.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache.name
    # The one BLAS thread the command line sets (unless the user has set a thread variable).
    if not any(v in env for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")):
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    runs = {
        "baseline": [sys.executable, "-c", BASELINE],
        "tables": [sys.executable, "-c", WITH_TABLES],
    }
    for name, cmd in COMMANDS.items():
        if args.default_gc:  # gradcalc.__main__.run without its gc.set_threshold and gc.freeze
            runs[name] = [sys.executable, "-c", DEFAULT_GC.format(args=cmd)]
        else:
            runs[name] = [sys.executable, "-m", "gradcalc", *cmd]
    for argv in runs.values():  # warm the caches (bytecode, the page cache) first
        timed(argv, env)
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, argv in runs.items():
            wall, used = timed(argv, env)
            times[name].append(wall)
            cpu[name].append(used)
    base = statistics.median(times["baseline"])
    base_cpu = statistics.median(cpu["baseline"])
    tables = statistics.median(times["tables"])
    how = ", the commands with Python's collector settings" if args.default_gc else ""
    print(f"start-up, median of {rounds} interleaved runs ({sys.version.split()[0]}{how}):")
    print(f"  {'baseline: ' + BASELINE:<76} {base * 1000:7.1f} ms   1.00×  cpu 1.00×")
    label = "(with tables: " + WITH_TABLES + ")"
    tables_cpu = statistics.median(cpu["tables"]) / base_cpu
    print(f"  {label:<76} {tables * 1000:7.1f} ms  ({tables / base:.2f}×) cpu {tables_cpu:.2f}×")
    worst = 0.0
    for name in COMMANDS:
        median = statistics.median(times[name])
        ratio = median / base
        worst = max(worst, ratio)
        print(
            f"  {'gradcalc ' + name:<76} {median * 1000:7.1f} ms   {ratio:.2f}×"
            f"  cpu {statistics.median(cpu[name]) / base_cpu:.2f}×"
            f"  ({median / tables:.2f}× with tables)"
        )
    verdict = "within" if worst <= GOAL else "OVER"
    print(f"start-up line: worst {worst:.2f}× the baseline ({verdict} the {GOAL:.2f}× goal)")


if __name__ == "__main__":
    main()
