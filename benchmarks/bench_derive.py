"""How fast `gradcalc derive` works a big subject: softmax of 100 values (the --at limit), a
Jacobian of 10,000 entries three ways. Not a test: run it by hand,

    python benchmarks/bench_derive.py            # about half a minute on two cores
    python benchmarks/bench_derive.py --quick    # fewer repeats

It prints the median of the real command's wall time (a fresh process, JSON and the terminal
table), the in-process time of the derivation and of the JSON writer, and the JSON's size. The
goal is ≤ 0.5 s for the command.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gradcalc.derivation.engine import derive  # noqa: E402
from gradcalc.derivation.json import render  # noqa: E402

# 100 values over [−5, 5), and 100 far apart, where one output is near 1 and the rest tiny.
CASES = {
    "softmax, 100 values in [-5, 5)": ",".join(f"{i / 10 - 5:g}" for i in range(100)),
    "softmax, 100 values 0, 7.3, …, 722.7": ",".join(f"{i * 7.3:g}" for i in range(100)),
}


def median_time(fn: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 9")
    repeats = 3 if parser.parse_args().quick else 9
    command = [sys.executable, "-m", "gradcalc", "derive", "softmax", "--at"]
    for label, at in CASES.items():
        print(label)
        for fmt in ("json", "table"):

            def run(fmt: str = fmt, at: str = at) -> None:
                subprocess.run(
                    [*command, at, "--format", fmt], cwd=REPO, capture_output=True, check=False
                )

            print(f"  gradcalc derive --format {fmt:5}  {median_time(run, repeats):6.3f} s")
        trace = derive("softmax", at)
        work = median_time(lambda at=at: derive("softmax", at), repeats)
        write = median_time(lambda trace=trace: render(trace), repeats)
        print(f"  derive() in process            {work:6.3f} s")
        print(f"  JSON writer                    {write:6.3f} s")
        print(f"  JSON size                      {len(render(trace).encode()) / 1e6:6.2f} MB")


if __name__ == "__main__":
    main()
