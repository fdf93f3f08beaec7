"""How fast `gradcalc step` runs a convolutional network next to a hand-written numpy im2col loop
of the same network (and torch's conv2d in float64 where torch is importable), and whether its
memory stays flat over a long run. Not a test: run it by hand,

    python benchmarks/bench_layers.py            # about a minute on two cores
    python benchmarks/bench_layers.py --quick    # fewer repeats, a shorter RSS run

The network is MNIST-shaped: 1×28×28 → conv 8@3×3 (ReLU) → maxpool 2 → conv 16@3×3 (ReLU) →
maxpool 2 → flatten → dense 10, softmax + cross-entropy, a batch of 64, plain SGD. The target is
gradcalc's `--show summary` step within 1.5× of the numpy loop, and a peak RSS that does not grow
with the number of steps (10 against 1,000).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_step import command_medians, medians  # noqa: E402

from gradcalc.layers.engine import Stream  # noqa: E402
from gradcalc.layers.views import summary_record  # noqa: E402
from gradcalc.step import config  # noqa: E402

BATCH, ETA = 64, 0.05


def write_network(folder: Path, steps: int = 10) -> Path:
    rng = np.random.default_rng(0)
    np.save(folder / "x.npy", rng.random((BATCH, 1, 28, 28)))
    np.save(folder / "y.npy", np.eye(10)[rng.integers(0, 10, BATCH)])
    path = folder / "mnist.yaml"
    path.write_text(
        "inputs: {file: x.npy}\ntargets: {file: y.npy}\nloss: cross_entropy\n"
        f"learning_rate: {ETA}\nsteps: {steps}\nlayers:\n"
        "  - type: conv2d\n    kernels: {init: he_normal, seed: 0, channels: 8, size: 3}\n"
        "    activation: relu\n"
        "  - type: maxpool2d\n    size: 2\n"
        "  - type: conv2d\n    kernels: {init: he_normal, seed: 0, channels: 16, size: 3}\n"
        "    activation: relu\n"
        "  - type: maxpool2d\n    size: 2\n"
        "  - type: flatten\n"
        "  - weights: {init: he_normal, seed: 0, units: 10}\n    biases: {init: zeros}\n"
        "    activation: softmax\n",
        encoding="utf-8",
    )
    return path


# ---- the floor: the same network by hand, im2col and its transpose ------------------------------


def _conv(x: np.ndarray, k: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n, c, _, _ = x.shape
    o, _, kh, kw = k.shape
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))
    ho, wo = win.shape[2], win.shape[3]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
    z = (cols @ k.reshape(o, -1).T + b).reshape(n, ho, wo, o).transpose(0, 3, 1, 2)
    return z, cols


def _conv_back(d: np.ndarray, cols: np.ndarray, k: np.ndarray, x_shape: tuple) -> tuple:
    n, o, ho, wo = d.shape
    _, c, kh, kw = k.shape
    rows = d.transpose(0, 2, 3, 1).reshape(-1, o)
    dk = (rows.T @ cols).reshape(k.shape)
    db = rows.sum(axis=0)
    parts = (rows @ k.reshape(o, -1)).reshape(n, ho, wo, c, kh, kw)
    dx = np.zeros(x_shape)
    for p in range(kh):
        for q in range(kw):
            dx[:, :, p : p + ho, q : q + wo] += parts[:, :, :, :, p, q].transpose(0, 3, 1, 2)
    return dk, db, dx


def _pool(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n, c, h, w = x.shape
    win = x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
    win = win.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    arg = win.argmax(axis=-1)
    return np.take_along_axis(win, arg[..., None], axis=-1)[..., 0], arg


def _pool_back(d: np.ndarray, arg: np.ndarray, x_shape: tuple) -> np.ndarray:
    n, c, ho, wo = d.shape
    mask = np.zeros((n, c, ho, wo, 4))
    np.put_along_axis(mask, arg[..., None], d[..., None], axis=-1)
    out = np.zeros(x_shape)
    block = (
        mask.reshape(n, c, ho, wo, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho * 2, wo * 2)
    )
    out[:, :, : ho * 2, : wo * 2] = block
    return out


def numpy_loop(spec: config.NetworkSpec, steps: int) -> float:
    layers = spec.layers
    k1, b1 = layers[0].params["kernels"].copy(), layers[0].params["biases"].copy()
    k2, b2 = layers[2].params["kernels"].copy(), layers[2].params["biases"].copy()
    w, b = layers[5].params["weights"].copy(), layers[5].params["biases"].copy()
    x, y = spec.x, spec.y
    m = x.shape[0]
    loss = 0.0
    for _ in range(steps):
        z1, c1 = _conv(x, k1, b1)
        a1 = np.maximum(z1, 0)
        p1, g1 = _pool(a1)
        z2, c2 = _conv(p1, k2, b2)
        a2 = np.maximum(z2, 0)
        p2, g2 = _pool(a2)
        f = p2.reshape(m, -1)
        z3 = f @ w.T + b
        e = np.exp(z3 - z3.max(axis=1, keepdims=True))
        s = e / e.sum(axis=1, keepdims=True)
        loss = float(-(y * np.log(s)).sum() / m)
        d3 = (s - y) / m
        dw, db = d3.T @ f, d3.sum(axis=0)
        dp2 = (d3 @ w).reshape(p2.shape)
        d2 = _pool_back(dp2, g2, a2.shape) * (z2 > 0)
        dk2, db2, dp1 = _conv_back(d2, c2, k2, p1.shape)
        d1 = _pool_back(dp1, g1, a1.shape) * (z1 > 0)
        dk1, db1, _ = _conv_back(d1, c1, k1, x.shape)
        k1 -= ETA * dk1
        b1 -= ETA * db1
        k2 -= ETA * dk2
        b2 -= ETA * db2
        w -= ETA * dw
        b -= ETA * db
    return loss


def gradcalc_summary(spec: config.NetworkSpec, steps: int) -> float:
    loss = 0.0
    for st in Stream(spec, steps=steps, full=lambda s: False):
        loss = summary_record(st)["loss"]
    return loss


def torch_loop(spec: config.NetworkSpec, steps: int) -> Any:
    """The same network and SGD steps with torch in float64 on one thread, or None without
    torch; it returns the loss of its last step (torch's mean cross-entropy of the logits is
    gradcalc's softmax output with the mean cross-entropy)."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(1)
    layers = spec.layers
    names = [(0, "kernels"), (0, "biases"), (2, "kernels"), (2, "biases")]
    names += [(5, "weights"), (5, "biases")]
    x, y = torch.from_numpy(spec.x), torch.from_numpy(spec.y)

    def run() -> float:
        k1, b1, k2, b2, w, b = (
            torch.tensor(layers[i].params[n], requires_grad=True) for i, n in names
        )
        optimizer = torch.optim.SGD([k1, b1, k2, b2, w, b], lr=ETA)
        loss = None
        for _ in range(steps):
            optimizer.zero_grad()
            h = F.max_pool2d(F.relu(F.conv2d(x, k1, b1)), 2)
            h = F.max_pool2d(F.relu(F.conv2d(h, k2, b2)), 2)
            loss = F.cross_entropy(F.linear(h.flatten(1), w, b), y)
            loss.backward()
            optimizer.step()
        return float(loss.item()) if loss is not None else 0.0

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    with tempfile.TemporaryDirectory() as tmp:
        path = write_network(Path(tmp))
        spec = config.load(str(path))
        a, b = numpy_loop(spec, 3), gradcalc_summary(spec, 3)
        print(f"the same loss after 3 steps: numpy {a:.12f}, gradcalc {b:.12f}")
        torch_run = torch_loop(spec, 3)
        if torch_run is not None:
            print(f"torch after 3 steps: {torch_run():.12f}")
        steps = 10
        contenders = {
            "numpy im2col loop": lambda: numpy_loop(spec, steps),
            "gradcalc --show summary": lambda: gradcalc_summary(spec, steps),
        }
        torch_run = torch_loop(spec, steps)
        if torch_run is not None:
            contenders["torch conv2d (float64)"] = torch_run
        times = medians(contenders, repeats)
        floor = times["numpy im2col loop"]
        for name, t in times.items():
            print(f"{name:26s} {1000 * t / steps:8.2f} ms/step   {t / floor:5.2f}×")
        long = 200 if args.quick else 1000
        runs = {
            f"{n} steps": ["step", str(path), "--steps", str(n), "--show", "summary", "-q"]
            for n in (10, long)
        }
        for name, (elapsed, peak) in command_medians(runs, 1).items():
            print(f"gradcalc step {name:12s} {elapsed:7.2f} s   peak RSS {peak / 2**20:6.1f} MiB")


if __name__ == "__main__":
    main()
