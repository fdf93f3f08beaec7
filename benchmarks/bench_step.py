"""How fast `gradcalc step` is next to the floor: a hand-written numpy loop of the same network
and, when it is importable, PyTorch float64 autograd. Not a test: run it by hand,

    python benchmarks/bench_step.py            # about two minutes on two cores
    python benchmarks/bench_step.py --quick    # fewer repeats

Each figure is the median of ≥ 7 runs, the contenders interleaved run by run so that a busy
machine slows them alike. It prints ratios, full-JSON cost per step, peak memory (RSS) of the
real command for 10 and 1,000 steps, YAML load time against plain PyYAML, and the end-to-end
time of one step of a 10⁶-parameter network.
"""

from __future__ import annotations

import os

# One BLAS/OpenMP thread for every contender: on a small machine numpy's and torch's thread pools
# otherwise fight over the cores and the figures measure the fight. Set before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import itertools  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gradcalc.step import config  # noqa: E402
from gradcalc.step.engine import Stream, reuse_freed_memory  # noqa: E402
from gradcalc.step.json import encode, step_record, summary_record  # noqa: E402

SIZES = [784, 128, 64, 10]
BATCH = 64
ETA = 0.1


def write_network(folder: Path, sizes: list[int], name: str, steps: int = 10) -> Path:
    rng = np.random.default_rng(1)
    np.save(folder / f"{name}-x.npy", rng.random((BATCH, sizes[0])))
    np.save(folder / f"{name}-y.npy", np.eye(sizes[-1])[rng.integers(0, sizes[-1], BATCH)])
    path = folder / f"{name}.yaml"
    path.write_text(
        f"inputs: {{file: {name}-x.npy}}\n"
        f"targets: {{file: {name}-y.npy}}\n"
        "loss: cross_entropy\n"
        f"learning_rate: {ETA}\n"
        f"steps: {steps}\n"
        f"layers: {{sizes: {sizes}, activation: sigmoid, output: softmax, "
        "init: he_normal, seed: 0}\n",
        encoding="utf-8",
    )
    return path


def numpy_loop(spec: config.NetworkSpec, n: int) -> float:
    """The same SGD steps as a person would write them with numpy, cost included."""
    ws = [layer.weights.copy() for layer in spec.layers]
    bs = [layer.biases.copy() for layer in spec.layers]
    x, y = spec.x, spec.y
    m = x.shape[0]
    loss = 0.0
    for _ in range(n):
        activations = [x]
        a = x
        for w, b in zip(ws[:-1], bs[:-1], strict=True):
            a = 1.0 / (1.0 + np.exp(-(a @ w.T + b)))
            activations.append(a)
        z = a @ ws[-1].T + bs[-1]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        out = e / e.sum(axis=1, keepdims=True)
        loss = float(-np.sum(y * np.log(out)) / m)
        delta = (out - y) / m
        for i in range(len(ws) - 1, -1, -1):
            grad_w = delta.T @ activations[i]
            grad_b = delta.sum(axis=0)
            if i:
                a = activations[i]
                delta = (delta @ ws[i]) * a * (1.0 - a)
            ws[i] -= ETA * grad_w
            bs[i] -= ETA * grad_b
    return loss


def gradcalc_summary(spec: config.NetworkSpec, n: int) -> float:
    """What `--show summary` computes: every step, and its summary record (the writer asks
    the engine for no step in full, and for the norms)."""
    loss = 0.0
    for st in Stream(spec, steps=n, full=lambda s: False, norms=True):
        loss = summary_record(st)["loss"]
    return loss


def gradcalc_json(spec: config.NetworkSpec, n: int) -> float:
    """What `--format json` computes and encodes per step."""
    size = 0
    for st in Stream(spec, steps=n):
        size += len(encode(step_record(st, spec.batch)))
    return size


def torch_loop(spec: config.NetworkSpec, n: int) -> float:
    import torch

    torch.set_num_threads(1)
    ws = [torch.tensor(layer.weights, requires_grad=True) for layer in spec.layers]
    bs = [torch.tensor(layer.biases, requires_grad=True) for layer in spec.layers]
    x = torch.tensor(spec.x)
    y = torch.tensor(spec.y)
    loss = torch.zeros(())
    for _ in range(n):
        a = x
        for w, b in zip(ws[:-1], bs[:-1], strict=True):
            a = torch.sigmoid(a @ w.T + b)
        z = a @ ws[-1].T + bs[-1]
        loss = -(y * torch.log_softmax(z, dim=1)).sum() / x.shape[0]
        for p in ws + bs:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in ws + bs:
                p -= ETA * p.grad
    return float(loss.detach())


def medians(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            gc.collect()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


# The child reports its own high-water mark (VmHWM belongs to the process image after exec;
# ru_maxrss would still count the benchmark's own memory, copied by fork before the exec).
_PEAK = """
import atexit, os, sys
def _peak():
    with open("/proc/self/status") as fh:
        kb = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM"))
    with open(os.environ["BENCH_PEAK_FILE"], "w") as out:
        out.write(str(kb * 1024))
atexit.register(_peak)
sys.argv = ["gradcalc", *sys.argv[1:]]
from gradcalc.cli import main
main()
"""


def run_command(args: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of one `gradcalc` process."""
    with tempfile.NamedTemporaryFile() as peak:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _PEAK, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=REPO,
            env={**os.environ, "BENCH_PEAK_FILE": peak.name},
            check=False,
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"gradcalc {' '.join(args)} failed: {proc.stderr.decode()}")
        return elapsed, int(Path(peak.name).read_text() or 0)


def command_medians(runs: dict[str, list[str]], repeats: int) -> dict[str, tuple[float, int]]:
    results: dict[str, list[tuple[float, int]]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, args in runs.items():
            results[name].append(run_command(args))
    return {
        name: (
            statistics.median(t for t, _ in rs),
            int(statistics.median(r for _, r in rs)),
        )
        for name, rs in results.items()
    }


def inline_yaml(folder: Path, parameters: int) -> Path:
    """A config with about `parameters` weights written out at full precision."""
    rng = np.random.default_rng(2)
    n_in = 1000
    n_out = parameters // n_in
    w = rng.standard_normal((n_out, n_in))
    rows = "\n".join("    - [" + ", ".join(repr(v) for v in row) + "]" for row in w.tolist())
    text = (
        f"input: [{', '.join(['0.5'] * n_in)}]\n"
        f"target: [{', '.join(['0.1'] * n_out)}]\n"
        "loss: quadratic\nlearning_rate: 0.1\nlayers:\n"
        f"  - weights:\n{rows}\n    biases: [{', '.join(['0.0'] * n_out)}]\n"
        "    activation: sigmoid\n"
    )
    path = folder / "inline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="7 repeats and shorter runs")
    options = parser.parse_args()
    repeats = 7 if options.quick else 9
    # What `gradcalc step` does first; the numpy loop and torch run in this process too.
    reuse_freed_memory()
    steps = 50 if options.quick else 100

    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        net = write_network(folder, SIZES, "mnist")
        spec = config.load(str(net))
        print(
            f"network {'-'.join(map(str, SIZES))}, sigmoid, softmax + cross-entropy, "
            f"batch {BATCH}; medians of {repeats} interleaved runs of {steps} steps"
        )
        contenders: dict[str, Callable[[], object]] = {
            "numpy loop": lambda: numpy_loop(spec, steps),
            "gradcalc --show summary": lambda: gradcalc_summary(spec, steps),
            "gradcalc --format json": lambda: gradcalc_json(spec, steps),
        }
        if have_torch:
            contenders["pytorch float64 autograd"] = lambda: torch_loop(spec, steps)
        result = medians(contenders, repeats)
        floor = result["numpy loop"]
        for name, t in result.items():
            print(f"  {name:28s} {t / steps * 1e3:8.3f} ms/step  {t / floor:5.2f}× numpy")
        if have_torch:
            torch_t = result["pytorch float64 autograd"]
            print(
                f"  gradcalc summary / pytorch: {result['gradcalc --show summary'] / torch_t:.2f}×"
            )
        json_cost = (result["gradcalc --format json"] - result["gradcalc --show summary"]) / steps
        print(f"  JSON encoding of one full step: {json_cost * 1e3:.2f} ms")

        # The real command, end to end.
        long = 1000
        runs = {
            "start-up (--steps 0)": ["step", str(net), "--steps", "0", "--show", "final"],
            f"summary jsonl, {long} steps": [
                "step",
                str(net),
                "--steps",
                str(long),
                "--show",
                "summary",
                "--format",
                "jsonl",
            ],
            "table, 10 steps": ["step", str(net), "--steps", "10", "--no-color"],
            f"table, {long} steps": ["step", str(net), "--steps", str(long), "--no-color"],
            "json, 10 steps": ["step", str(net), "--steps", "10", "--format", "json"],
            "json, 100 steps": ["step", str(net), "--steps", "100", "--format", "json"],
            f"json, {long} steps": ["step", str(net), "--steps", str(long), "--format", "json"],
        }
        cmd = command_medians(runs, 7 if not options.quick else 3)
        print("\nthe command, end to end (median wall time, peak RSS):")
        for name, (t, rss) in cmd.items():
            print(f"  {name:28s} {t:7.3f} s  {rss / 1e6:7.1f} MB")
        loop_long = medians({"numpy": lambda: numpy_loop(spec, long)}, 3)["numpy"]
        startup = cmd["start-up (--steps 0)"][0]
        summary_t = cmd[f"summary jsonl, {long} steps"][0]
        print(
            f"  summary jsonl {long} steps / (numpy loop {loop_long:.3f} s + start-up "
            f"{startup:.3f} s): {summary_t / (loop_long + startup):.2f}×"
        )
        for kind in ("table", "json"):
            small = cmd[f"{kind}, 10 steps"][1]
            big = cmd[f"{kind}, {long} steps"][1]
            print(f"  peak RSS {kind}: {long} steps / 10 steps = {big / small:.2f}×")
        json_step = (cmd[f"json, {long} steps"][0] - cmd["json, 100 steps"][0]) / (long - 100)
        print(f"  full JSON, per step end to end: {json_step * 1e3:.1f} ms")

        # One step of a 10⁶-parameter network, declared by sizes + init and from .npz.
        big_sizes = [1000, 990, 10]
        big = write_network(folder, big_sizes, "million", steps=1)
        rng = np.random.default_rng(3)
        arrays = {
            "w2": rng.standard_normal((990, 1000)) * 0.03,
            "b2": np.zeros(990),
            "w3": rng.standard_normal((10, 990)) * 0.03,
            "b3": np.zeros(10),
        }
        np.savez(folder / "million.npz", **arrays)
        from_npz = folder / "million-npz.yaml"
        layers = "".join(
            f"  - weights: {{file: million.npz, key: w{l}}}\n"
            f"    biases: {{file: million.npz, key: b{l}}}\n"
            f"    activation: {'sigmoid' if l == 2 else 'softmax'}\n"
            for l in (2, 3)
        )
        from_npz.write_text(
            "inputs: {file: million-x.npy}\ntargets: {file: million-y.npy}\n"
            f"loss: cross_entropy\nlearning_rate: {ETA}\nlayers:\n{layers}",
            encoding="utf-8",
        )
        params = sum(a * b for a, b in itertools.pairwise(big_sizes))
        one = command_medians(
            {
                "sizes + init": ["step", str(big), "--show", "final"],
                ".npz": ["step", str(from_npz), "--show", "final"],
                "sizes + init, full json": ["step", str(big), "--format", "json"],
            },
            5 if not options.quick else 3,
        )
        print(f"\none step of a {params:,}-parameter network, end to end:")
        for name, (t, rss) in one.items():
            print(f"  {name:28s} {t:7.3f} s  {rss / 1e6:7.1f} MB")

        # Loading 10⁶ inline numbers: gradcalc against plain PyYAML on the same file.
        import yaml

        inline = inline_yaml(folder, 1_000_000)
        text = inline.read_text(encoding="utf-8")
        loads = medians(
            {
                "yaml.load CSafeLoader": lambda: yaml.load(text, Loader=yaml.CSafeLoader),
                "gradcalc config.load": lambda: config.load(str(inline)),
            },
            repeats,
        )
        print(f"\nloading {inline.stat().st_size / 1e6:.1f} MB of YAML (10⁶ inline numbers):")
        for name, t in loads.items():
            print(f"  {name:28s} {t:7.3f} s")
        ratio = loads["gradcalc config.load"] / loads["yaml.load CSafeLoader"]
        print(f"  gradcalc / PyYAML: {ratio:.2f}×")

        # Drawing a step as rich tables.
        from rich.console import Console

        from gradcalc.step.table import step_parts, to_rich

        stream = Stream(spec, steps=1)
        head = stream.head()
        st = next(iter(stream))
        con = Console(file=open(os.devnull, "w"), width=120)  # noqa: SIM115

        def draw() -> None:
            for part in to_rich(step_parts(head, st, 40)):
                con.print(part)

        drawn = medians({"table": draw}, repeats)["table"]
        print(f"\nrich tables, one drawn step (--max-rows 40): {drawn * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
