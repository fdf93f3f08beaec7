"""How fast `gradcalc step` trains an LSTM next to a hand-written numpy loop of the same network
(and torch's nn.LSTM where it is importable). Not a test: run it by hand,

    python benchmarks/bench_recurrent.py            # about a minute on two cores
    python benchmarks/bench_recurrent.py --quick    # fewer repeats

The network: a batch of 32 sequences of 100 steps of 16 values → lstm with 64 units (every
step's h) → dense 64 → 4 at every step, mse at every step, plain SGD. The target is gradcalc's
`--show summary` step within 2× of the numpy loop. Both loop over the time steps (the recurrence
is inherent); each step is vectorized over the batch and the four gates.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_step import medians  # noqa: E402

from gradcalc.layers.engine import Stream  # noqa: E402
from gradcalc.layers.views import summary_record  # noqa: E402
from gradcalc.step import config  # noqa: E402

BATCH, STEPS, WIDTH, HIDDEN, OUT, ETA = 32, 100, 16, 64, 4, 0.05


def write_network(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    bound = 1 / np.sqrt(HIDDEN)  # PyTorch's U(−1/√H, 1/√H)
    arrays = {
        "x": rng.normal(size=(BATCH, STEPS, WIDTH)),
        "y": rng.normal(scale=0.5, size=(BATCH, STEPS, OUT)),
        "w_ih": rng.uniform(-bound, bound, (4 * HIDDEN, WIDTH)),
        "w_hh": rng.uniform(-bound, bound, (4 * HIDDEN, HIDDEN)),
        "b_ih": rng.uniform(-bound, bound, 4 * HIDDEN),
        "b_hh": rng.uniform(-bound, bound, 4 * HIDDEN),
        "w": rng.uniform(-bound, bound, (OUT, HIDDEN)),
        "b": rng.uniform(-bound, bound, OUT),
    }
    for name, value in arrays.items():
        np.save(folder / f"{name}.npy", value)
    path = folder / "lstm.yaml"
    path.write_text(
        "sequences: {file: x.npy}\ntargets: {file: y.npy}\nloss: mse\nloss_at: every\n"
        f"learning_rate: {ETA}\nlayers:\n"
        "  - type: lstm\n    weight_ih: {file: w_ih.npy}\n    weight_hh: {file: w_hh.npy}\n"
        "    bias_ih: {file: b_ih.npy}\n    bias_hh: {file: b_hh.npy}\n"
        "  - weights: {file: w.npy}\n    biases: {file: b.npy}\n    activation: linear\n",
        encoding="utf-8",
    )
    return path


def _sig(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def numpy_loop(spec: Any, steps: int) -> float:
    """The same training by hand: forward over t, backward through time, SGD."""
    lstm, dense = spec.layers
    w_ih, w_hh = lstm.params["weight_ih"].copy(), lstm.params["weight_hh"].copy()
    b_ih, b_hh = lstm.params["bias_ih"].copy(), lstm.params["bias_hh"].copy()
    w, b = dense.params["weights"].copy(), dense.params["biases"].copy()
    x, y = spec.x, spec.y
    n, T, _ = x.shape
    H = w_hh.shape[1]
    loss = 0.0
    for _ in range(steps):
        h = np.zeros((n, T + 1, H))
        c = np.zeros((n, T + 1, H))
        gates = np.empty((n, T, 4 * H))
        xw = x @ w_ih.T + b_ih
        for t in range(T):
            g = xw[:, t] + h[:, t] @ w_hh.T + b_hh
            g[:, : 2 * H] = _sig(g[:, : 2 * H])
            g[:, 2 * H : 3 * H] = np.tanh(g[:, 2 * H : 3 * H])
            g[:, 3 * H :] = _sig(g[:, 3 * H :])
            gates[:, t] = g
            c[:, t + 1] = g[:, H : 2 * H] * c[:, t] + g[:, :H] * g[:, 2 * H : 3 * H]
            h[:, t + 1] = g[:, 3 * H :] * np.tanh(c[:, t + 1])
        out = h[:, 1:] @ w.T + b
        loss = float(np.mean((out - y) ** 2))
        d_out = 2 * (out - y) / (T * OUT * n)
        dw = d_out.reshape(-1, OUT).T @ h[:, 1:].reshape(-1, H)
        db = d_out.reshape(-1, OUT).sum(axis=0)
        dh_out = d_out @ w
        d_pre = np.empty((n, T, 4 * H))
        dh_next = np.zeros((n, H))
        dc_next = np.zeros((n, H))
        for t in range(T - 1, -1, -1):
            g = gates[:, t]
            i, f, gg, o = g[:, :H], g[:, H : 2 * H], g[:, 2 * H : 3 * H], g[:, 3 * H :]
            tc = np.tanh(c[:, t + 1])
            dh = dh_out[:, t] + dh_next
            dc = dh * o * (1 - tc**2) + dc_next
            d = d_pre[:, t]
            d[:, :H] = dc * gg * i * (1 - i)
            d[:, H : 2 * H] = dc * c[:, t] * f * (1 - f)
            d[:, 2 * H : 3 * H] = dc * i * (1 - gg**2)
            d[:, 3 * H :] = dh * tc * o * (1 - o)
            dh_next = d @ w_hh
            dc_next = dc * f
        rows = d_pre.reshape(-1, 4 * H)
        w_ih -= ETA * (rows.T @ x.reshape(-1, x.shape[2]))
        w_hh -= ETA * (rows.T @ h[:, :-1].reshape(-1, H))
        b_ih -= ETA * rows.sum(axis=0)
        b_hh -= ETA * rows.sum(axis=0)
        w -= ETA * dw
        b -= ETA * db
    return loss


def gradcalc_summary(spec: Any, steps: int) -> float:
    loss = 0.0
    for st in Stream(spec, steps=steps, full=lambda s: False):
        loss = summary_record(st)["loss"]
    return loss


def torch_loop(spec: Any, steps: int) -> Any:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    lstm, dense = spec.layers
    module = torch.nn.LSTM(WIDTH, HIDDEN, batch_first=True, dtype=torch.float64)
    linear = torch.nn.Linear(HIDDEN, OUT, dtype=torch.float64)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(lstm.params["weight_ih"]))
        module.weight_hh_l0.copy_(torch.from_numpy(lstm.params["weight_hh"]))
        module.bias_ih_l0.copy_(torch.from_numpy(lstm.params["bias_ih"]))
        module.bias_hh_l0.copy_(torch.from_numpy(lstm.params["bias_hh"]))
        linear.weight.copy_(torch.from_numpy(dense.params["weights"]))
        linear.bias.copy_(torch.from_numpy(dense.params["biases"]))
    params = [*module.parameters(), *linear.parameters()]
    optimizer = torch.optim.SGD(params, lr=ETA)
    x, y = torch.from_numpy(spec.x), torch.from_numpy(spec.y)

    def run() -> float:
        loss = None
        for _ in range(steps):
            optimizer.zero_grad()
            loss = ((linear(module(x)[0]) - y) ** 2).mean()
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
        print(f"the same loss at step 3: numpy {a:.12f}, gradcalc {b:.12f}")
        steps = 3
        contenders = {
            "numpy loop": lambda: numpy_loop(spec, steps),
            "gradcalc --show summary": lambda: gradcalc_summary(spec, steps),
        }
        spec_torch = config.load(str(path))
        run = torch_loop(spec_torch, steps)
        if run is not None:
            contenders["torch nn.LSTM (float64)"] = run
        times = medians(contenders, repeats)
        floor = times["numpy loop"]
        for name, t in times.items():
            print(f"{name:26s} {1000 * t / steps:8.1f} ms/step   {t / floor:5.2f}×")


if __name__ == "__main__":
    main()
