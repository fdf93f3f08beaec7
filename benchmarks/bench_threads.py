"""One BLAS thread (gradcalc's default) against all of them, on a machine that is busy. Not a
test: run it by hand,

    python benchmarks/bench_threads.py             # 5 rounds, a minute or two on two cores
    python benchmarks/bench_threads.py --rounds 9 --load 0

It runs the real command, `gradcalc step NET --steps 300 --show final`, on a 784-128-64-10
sigmoid network with softmax + cross-entropy and a batch of 64, while `--load` processes (one per
core by default) spin on the CPU, as graders run side by side in a course's CI do. Each round runs
the default (one thread) and `--threads <cores>` in turn; the figures are medians. The children
get no thread variable from the environment, so the default is gradcalc's own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gradcalc.threads import THREAD_VARIABLES

SIZES = [784, 128, 64, 10]
BATCH = 64
STEPS = 300
SPIN = "while True: pass"


def write_network(folder: Path) -> Path:
    rng = np.random.default_rng(1)
    np.save(folder / "x.npy", rng.random((BATCH, SIZES[0])))
    np.save(folder / "y.npy", np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], BATCH)])
    path = folder / "net.yaml"
    path.write_text(
        "inputs: {file: x.npy}\ntargets: {file: y.npy}\nloss: cross_entropy\n"
        f"learning_rate: 0.1\nsteps: {STEPS}\n"
        f"layers: {{sizes: {SIZES}, activation: sigmoid, output: softmax, "
        "init: he_normal, seed: 0}\n",
        encoding="utf-8",
    )
    return path


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of each (default 5)")
    cores = os.cpu_count() or 1
    parser.add_argument(
        "--load", type=int, default=cores, help=f"CPU-busy processes (default {cores})"
    )
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    busy: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as folder:
        net = str(write_network(Path(folder)))
        command = [sys.executable, "-m", "gradcalc"]
        step = ["step", net, "--steps", str(STEPS), "--show", "final"]
        runs = {
            "default (1 thread)": [*command, *step],
            f"--threads {cores} (all cores)": [*command, "--threads", str(cores), *step],
        }
        try:
            for _ in range(args.load):
                busy.append(subprocess.Popen([sys.executable, "-c", SPIN]))
            times: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.rounds):
                for name, argv in runs.items():
                    times[name].append(timed(argv, env))
        finally:
            for proc in busy:
                proc.kill()
                proc.wait()
    print(
        f"{STEPS} steps of {'-'.join(map(str, SIZES))}, batch {BATCH}, on {cores} cores with "
        f"{args.load} CPU-busy processes; median (min-max) of {args.rounds} interleaved runs:"
    )
    base = statistics.median(times["default (1 thread)"])
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"  {name:<28} {median:6.2f} s  ({min(values):.2f}-{max(values):.2f})"
            f"  {median / base:.2f}×"
        )


if __name__ == "__main__":
    main()
