"""How fast `gradcalc check --class` grades a class: 1,000 generated sheets of the worked
example's template (a quarter of them with a planted mistake), graded in one process on one
core. Not a test: run it by hand,

    python benchmarks/bench_class.py            # about half a minute
    python benchmarks/bench_class.py --sheets 200

It prints the sheets graded per second (the issue asks for ≥ 50) and checks that the gradebook
names every planted mistake.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import io  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from click.testing import CliRunner  # noqa: E402
from course_sheets import write_sheets  # noqa: E402

from gradcalc.cli import cli  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sheets", type=int, default=1000)
    n = parser.parse_args().sheets
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        course, sheets = Path(tmp) / "hw", Path(tmp) / "sheets"
        start = time.perf_counter()
        args = ["generate", "--example", "worked-example", "--count", str(n), "-o", str(course)]
        done = runner.invoke(cli, [*args, "--no-pdf"])
        assert done.exit_code == 0, done.output
        generated = time.perf_counter() - start
        planted = write_sheets(course, sheets)
        start = time.perf_counter()
        done = runner.invoke(cli, ["check", str(course), "--class", str(sheets)])
        graded = time.perf_counter() - start
        assert done.exit_code == 0, done.output
        rows = list(csv.DictReader(io.StringIO(done.stdout)))
    named = sum(
        1
        for r in rows
        if planted[r["id"]] in (None, "garbled") or planted[r["id"]] in r["mistakes"]
    )
    print(f"generate: {n} variants in {generated:.1f} s ({n / generated:.0f} a second)")
    print(
        f"check --class: {len(rows)} sheets in {graded:.2f} s ({len(rows) / graded:.0f} a second)"
    )
    print(f"planted mistakes named in the gradebook: {named} of {len(rows)} sheets as planted")


if __name__ == "__main__":
    main()
