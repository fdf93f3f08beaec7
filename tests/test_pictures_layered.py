"""`step --diagram`, `--plot` and `--format html` of layered networks (conv, pooling, flatten,
normalisation, recurrent and dense records): dense layers drawn as units, recurrent ones
unrolled in time, the others as blocks with their settings.

Every SVG is parsed; every marked number is compared with the run's own arrays (a recurrent
layer's h_t, c_t and ∂C/∂h_t with its JSON record's); every block's numbers are read back and
compared with its layer's config (read independently of the block code: kernels' shape,
stride, padding, window, hidden size); no two labels or blocks overlap.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_pictures import SVG, _boxes, _numbers, _overlap, parse_number

import gradcalc
from gradcalc.step.examples import available

ROOT = Path(__file__).resolve().parent.parent


def _layered_examples() -> list[str]:
    from gradcalc.step.config import NetworkSpec

    return sorted(
        n for n, p in available().items() if not isinstance(gradcalc.load(str(p)), NetworkSpec)
    )


# Layered networks beyond the bundled one: 1-D layers, a batch, channels, stride and padding;
# a wide flatten read by a wide dense layer (both elided); a dense layer before a block.
CONFIGS = {
    "conv1d-avgpool": """
inputs: [[[1, 2, 3, 4, 5, 6], [0, 1, 0, 1, 0, 1]], [[2, 0, 1, 1, 0, 3], [1, 1, 1, 0, 0, 0]]]
targets: [[1, 0, 0], [0, 0, 1]]
loss: mse
learning_rate: 0.1
layers:
  - {type: conv1d, kernels: [[[1, 0, 1], [0, 1, 0]], [[0.5, -1, 0], [1, 0, 0.2]]],
     stride: 2, padding: 1, activation: tanh}
  - {type: avgpool1d, size: 2, stride: 1}
  - {type: flatten}
  - {weights: [[0.1, 0.2, 0.3, 0.4], [0.0, -0.1, 0.2, 0.1], [-0.3, 0.2, 0.1, 0.0]],
     biases: [0, 0.1, -0.1], activation: sigmoid}
""",
    "wide": """
input: [[[1, 2, 0, 1, 3, 1], [0, 1, 3, 1, 0, 2], [2, 1, 0, 0, 1, 1], [1, 0, 1, 2, 2, 0],
         [0, 0, 1, 1, 2, 1], [1, 3, 0, 2, 1, 0]]]
target: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
loss: cross_entropy
learning_rate: 0.05
layers:
  - type: conv2d
    kernels: {init: he_normal, seed: 3, channels: 1, size: 3}
    stride: [1, 1]
    padding: 0
    activation: relu
  - type: flatten
  - weights: {init: he_normal, seed: 4}
    biases: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    activation: softmax
""",
    "upstream-conv": """
input: [[[1, 2, 0], [0, 1, 3], [2, 1, 0]]]
loss: upstream
upstream: [[[1, -1], [0.5, 2]]]
learning_rate: 0.1
layers:
  - type: conv2d
    kernels: [[[[1, 0], [0, -1]]]]
    biases: [0]
""",
    "pool-only": """
input: [[[1, 2, 0, 1], [0, 1, 3, 1], [2, 1, 0, 0], [1, 0, 1, 2]]]
loss: upstream
upstream: [[[1]]]
learning_rate: 0.1
layers:
  - {type: maxpool2d, size: 2, stride: 3}
""",
    "dense-first": """
input: [0.5, -1.0, 2.0]
target: [1, 0]
loss: cross_entropy
learning_rate: 0.1
layers:
  - {weights: [[0.1, 0.2, -0.1], [0.3, -0.2, 0.1], [0.0, 0.1, 0.2]], biases: [0, 0, 0.1],
     activation: tanh}
  - {type: flatten}
  - {weights: [[0.5, -0.5, 0.2], [0.1, 0.3, -0.4]], biases: [0, 0], activation: softmax}
""",
    # 9 steps (elided), H = 4 (norms), inputs of 2 (listed), a batch, truncation, a dense
    # layer reading h_T.
    "gru-long": """
sequences: [[[0.5, 0.1], [-0.1, 0.2], [0.3, 0.0], [0.2, 0.4], [0.1, -0.3], [0.0, 0.5],
             [0.4, 0.4], [-0.2, 0.1], [0.3, 0.3]],
            [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3], [0.4, 0.4], [0.5, 0.5], [0.6, 0.6],
             [0.7, 0.7], [0.8, 0.8], [0.9, 0.9]]]
targets: [[1, 0], [0, 1]]
loss: cross_entropy
learning_rate: 0.1
layers:
  - type: gru
    weight_ih: {init: xavier_uniform, seed: 1, units: 4}
    weight_hh: {init: xavier_uniform, seed: 2}
    bias_ih: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    bias_hh: [0, 0, 0, 0, 0.1, 0, 0, 0, 0, 0, 0, 0]
    return: last
    truncate: 3
  - {weights: [[0.1, 0.2, 0.3, 0.4], [0.0, -0.1, 0.2, 0.1]], biases: [0, 0.1], activation: softmax}
""",
    # Two LSTM units over 4 steps (listed vectors), every h_t returned, a 2-unit rnn above it.
    "lstm-rnn": """
sequence: [[1.0], [-0.5], [0.5], [0.2]]
targets: [[0.1, 0.2], [0.0, 0.1], [0.3, -0.1], [0.2, 0.2]]
loss: mse
loss_at: every
learning_rate: 0.5
layers:
  - type: lstm
    weight_ih: {init: xavier_uniform, seed: 3, units: 2}
    weight_hh: {init: xavier_uniform, seed: 4}
    biases: [0, 0, 1, 1, 0, 0, 0, 0]
    initial_state: [0.1, -0.1]
    initial_cell: [0.2, 0.0]
  - type: rnn
    weights_input: [[0.5, -0.3], [0.2, 0.4]]
    weights_hidden: [[0.1, 0.0], [0.3, -0.2]]
    biases: [0, 0.1]
    activation: relu
""",
}


def _config(tmp_path: Path, name: str) -> list[str]:
    if name in CONFIGS:
        path = tmp_path / f"{name}.yaml"
        path.write_text(CONFIGS[name], encoding="utf-8")
        return [str(path)]
    return ["--example", name]


def _spec(tmp_path: Path, name: str) -> Any:
    args = _config(tmp_path, name)
    return gradcalc.load(args[-1] if len(args) == 1 else str(available()[name]))


NETWORKS = [*_layered_examples(), *CONFIGS]


def _value(st: Any, trace: Any, q: str, example: int = 0) -> float:
    """The value a data-q names, read off the layered run's own records."""
    if q == "loss":
        return float(st.loss)
    name, l, *idx = q.split(":")
    layer, i = int(l), tuple(int(v) - 1 for v in idx)
    m = trace.x.shape[0]
    if name == "x":
        return float(trace.x.reshape(m, -1)[example, i[0]])
    if name == "y":
        return float(trace.y.reshape(m, -1)[example, i[0]])
    ls = st.layers[layer - 2]
    if name in RECURRENT:
        return _recurrent(ls, name, i, example)
    arrays = {
        "z": ls.z.reshape(m, -1)[example],
        "a": ls.a.reshape(m, -1)[example],
        "delta": ls.delta.reshape(m, -1)[example],
        "b": ls.params_before.get("biases"),
        "grad_b": ls.grads.get("biases"),
        "new_b": ls.params.get("biases"),
        "w": ls.params_before.get("weights"),
        "grad_w": ls.grads.get("weights"),
        "new_w": ls.params.get("weights"),
    }
    return float(arrays[name][i])


# What an unrolled recurrent layer marks: h:l:t:j (t from 0: h_0), c:l:t:j, grad_h:l:t:j,
# xt:l:t:i, and a vector's norm (h_norm:l:t…).
RECURRENT = {f"{n}{norm}" for n in ("h", "c", "grad_h", "xt") for norm in ("", "_norm")}


def _recurrent(ls: Any, name: str, i: tuple[int, ...], example: int) -> float:
    """A recurrent layer's value, read off its JSON record (hidden, cells, grad_h), its config
    (the initial state) and its input: apart from the diagram's own arrays."""
    from gradcalc.layers.views import layer_record

    record = layer_record(ls, True)
    layer = ls.layer
    hidden = layer.options["hidden"]
    t = i[0] + 1  # back to t as written (h_0 is t = 0)
    base = name.removesuffix("_norm")
    if base == "xt":
        vector = ls.x[example, t - 1]
    elif base == "grad_h":
        vector = record["grad_h"][example, t - 1]
    else:
        key, start = ("hidden", "initial_state") if base == "h" else ("cells", "initial_cell")
        given = layer.options.get(start)
        first = np.zeros(hidden) if given is None else np.asarray(given, dtype=float)
        vector = first if t == 0 else record[key][example, t - 1]
    if name.endswith("_norm"):
        return float(np.sqrt(np.sum(np.square(vector))))
    return float(vector[i[1]])


def _draw(run_cli: Any, tmp_path: Path, name: str, *args: str) -> ET.Element:
    out = tmp_path / "net.svg"
    result = run_cli(
        ["step", *_config(tmp_path, name), *args, "--diagram", str(out), "--show", "final"]
    )
    assert result.exit_code == 0, result.output
    return ET.fromstring(out.read_text(encoding="utf-8"))


def _block_texts(root: ET.Element) -> list[str]:
    """Each block's lines, joined by ' | ', left to right."""
    out = []
    for el in root.iter(SVG + "text"):
        if el.get("class") == "block-text":
            out.append(" | ".join("".join(t.itertext()) for t in el.findall(SVG + "tspan")))
    return out


def _expected_block(layer: Any) -> list[str]:
    """What a block must say, from the layer's config (its options and parameters), written
    out here apart from the block code."""
    from gradcalc.layers.shapes import show

    kind = layer.kind.name
    rank = len(layer.in_shape) - 1
    lines: list[str]
    if kind.startswith("conv"):
        k = layer.params["kernels"]
        s, p = layer.options["stride"][-rank:], layer.options["padding"][-rank:]
        lines = [
            "cross-correlation",
            f"{k.shape[0]} kernel{'s' * (k.shape[0] != 1)} "
            f"{show(k.shape[2:]) if rank > 1 else f'of {k.shape[2]}'}, "
            f"{k.shape[1]} channel{'s' * (k.shape[1] != 1)} in",
            f"stride {s[0] if len(set(s)) == 1 else s}, padding {p[0] if len(set(p)) == 1 else p}",
        ]
    elif kind in ("rnn", "lstm", "gru"):
        cell = {"rnn": f"{layer.options['activation']} RNN", "lstm": "LSTM", "gru": "GRU"}[kind]
        lines = [kind, f"{cell} cell, H = {layer.params['weight_hh'].shape[1]}"]
        lines.append("returns every h_t" if len(layer.out_shape) == 2 else "returns h_T only")
        if layer.options.get("truncate"):
            lines.append(f"gradient truncated every {layer.options['truncate']} steps")
    elif "pool" in kind:
        size, s = layer.options["size"][-rank:], layer.options["stride"][-rank:]
        lines = [
            "max pooling" if kind.startswith("max") else "average pooling",
            f"window {show(size)}, stride {s[0] if len(set(s)) == 1 else s}",
        ]
        if kind.startswith("max"):
            lines.append(f"ties: {layer.options['ties']}")
    elif kind == "attention":
        h = layer.options["heads"]
        lines = [
            "self-attention",
            f"{h} head{'s' * (h != 1)}, d_k = {layer.params['wq'].shape[0] // h}",
            ("causal mask" if layer.options["causal"] else "no mask")
            + (", residual x + f(z)" if layer.residual else ""),
        ]
    elif kind == "embedding":
        v, d = layer.params["table"].shape
        lines = ["table lookup", f"vocabulary {v}, d = {d}"]
    else:
        lines = [kind]
    lines.append(f"{show(layer.in_shape)} → {show(layer.out_shape)}")
    if layer.activation.name != "identity":
        lines.append(f"activation {layer.activation.name}")
    return lines


def assert_apart(root: ET.Element) -> None:
    """No two labels' grounds overlap, none lies on a unit, a block or a recurrent cell; no two
    blocks or frames (an unrolled layer's) overlap, and each label of a frame lies inside it."""
    grounds, circles = _boxes(root)

    def rects(cls: str) -> list[tuple[float, ...]]:
        return [
            tuple(float(r.get(k) or 0) for k in ("x", "y", "width", "height"))
            for r in root.iter(SVG + "rect")
            if r.get("class") == cls
        ]

    frames = rects("block frame")
    blocks = rects("block") + rects("cell")
    for a in grounds:
        around = [f for f in frames if _overlap(a, f)]
        for f in around:  # a label touching a frame lies inside it
            assert f[0] <= a[0] and a[0] + a[2] <= f[0] + f[2], f"label {a} across {f}"
            assert f[1] <= a[1] and a[1] + a[3] <= f[1] + f[3], f"label {a} across {f}"
    for i, a in enumerate(frames):
        for b in [*frames[i + 1 :], *rects("block")]:
            assert not _overlap(a, b), f"frames overlap: {a} {b}"
    for i, a in enumerate(grounds):
        for b in grounds[i + 1 :]:
            assert not _overlap(a, b), f"labels overlap: {a} {b}"
        for cx, cy, r in circles:
            assert not _overlap(a, (cx - r, cy - r, 2 * r, 2 * r)), f"label {a} on a unit"
        for b in blocks:
            assert not _overlap(a, b), f"label {a} on a block {b}"
    for i, a in enumerate(blocks):
        for b in blocks[i + 1 :]:
            assert not _overlap(a, b), f"blocks overlap: {a} {b}"
        for cx, cy, r in circles:
            assert not _overlap(a, (cx - r, cy - r, 2 * r, 2 * r)), f"block {a} on a unit"


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("show", ["forward", "backward", "update"])
def test_every_number_and_block_of_a_layered_diagram_is_the_runs(
    run_cli, tmp_path, name, show
) -> None:
    spec = _spec(tmp_path, name)
    trace = gradcalc.run(spec, steps=2)
    root = _draw(
        run_cli, tmp_path, name, "--steps", "2", "--diagram-step", "2", "--diagram-show", show
    )
    st = trace.steps[1]
    shown = _numbers(root)
    assert shown
    names = {q.split(":")[0] for q, _ in shown}
    recurrent = any(layer.kind.name in ("rnn", "lstm", "gru") for layer in spec.layers)
    if any(layer.kind.name == "dense" for layer in spec.layers):  # (blocks show no values)
        assert ("delta" in names) == (show != "forward")
        assert ("new_w" in names) == (show == "update")
    elif not recurrent:
        assert names == {"loss"}
    if recurrent:
        assert {"h", "xt"} <= {n.removesuffix("_norm") for n in names}
        assert any(n.startswith("grad_h") for n in names) == (show != "forward")
    for q, text in shown:
        value, half = parse_number(text)
        exact = _value(st, trace, q)
        assert abs(value - exact) <= half * 1.0001 + 1e-12, (q, text, exact)
    # Every dense layer's units and every other layer's block, in order.
    blocks = [layer for layer in spec.layers if layer.kind.name != "dense"]
    texts = _block_texts(root)
    first = 0 if spec.layers[0].kind.name == "dense" else 1
    if first:
        assert texts[0] == "×".join(map(str, trace.x.shape[1:]))
    assert [t.split(" | ") for t in texts[first:]] == [_expected_block(b) for b in blocks]
    for layer in spec.layers:
        if layer.kind.name == "dense":
            assert any(q.startswith(f"z:{layer.number}:") for q, _ in shown)
    assert_apart(root)


def test_the_conv_worked_example_draws_the_sheets_blocks(run_cli, tmp_path) -> None:
    root = _draw(run_cli, tmp_path, "conv-worked-example", "--diagram-show", "backward")
    assert _block_texts(root) == [
        "1×4×4",
        "cross-correlation | 1 kernel 2×2, 1 channel in | stride 1, padding 0 | "
        "1×4×4 → 1×3×3 | activation relu",
        "max pooling | window 2×2, stride 2 | ties: first | 1×3×3 → 1×1×1",
        "flatten | 1×1×1 → 1",
    ]
    shown = dict(_numbers(root))
    # a⁴ (the flattened max, 1) as the dense layer reads it; the softmax's z, a and δ.
    assert shown["a:4:1"] == "1.00" and shown["z:5:1"] == "0.500" and shown["a:5:1"] == "0.731"
    assert shown["delta:5:1"] == "−0.269" and shown["loss"] == "0.313"
    heads = ["".join(el.itertext()) for el in root.iter(SVG + "text") if el.get("class") == "head"]
    assert heads == [
        "input x",
        "layer 2: conv2d",
        "layer 3: maxpool2d",
        "layer 4: flatten",
        "a⁴ as read",
        "layer 5: softmax",
    ]
    arrows = [el for el in root.iter(SVG + "line") if el.get("marker-end")]
    assert len(arrows) == 4  # input → conv → pool → flatten → a⁴


@pytest.mark.parametrize("name", ["rnn-bptt", "lstm-step", "gru-long", "lstm-rnn"])
def test_a_recurrent_layer_is_drawn_unrolled_in_time(run_cli, tmp_path, name) -> None:
    """Its cell once per step t (the middle elided past 6 steps, with a count), an h arrow into
    each cell from h_0 or the cell before (dashed where truncation cuts the gradient), h_t
    above each cell and x_t below it."""
    spec = _spec(tmp_path, name)
    root = _draw(run_cli, tmp_path, name, "--diagram-show", "backward")
    recurrent = [layer for layer in spec.layers if layer.kind.name in ("rnn", "lstm", "gru")]
    texts = [
        " | ".join("".join(t.itertext()) for t in el.findall(SVG + "tspan"))
        for el in root.iter(SVG + "text")
        if el.get("class") in ("cell-text", "elided")
    ]
    expected, arrows, cuts = [], 0, 0
    for layer in recurrent:
        steps = layer.in_shape[0]
        cell = layer.kind.name.upper()
        shown = list(range(1, steps + 1)) if steps <= 6 else [1, 2, 3, 4, steps]
        expected += [f"{cell} | t = {t}" for t in shown]
        if steps > 6:
            expected.insert(len(expected) - 1, f"⋯ {steps - 5} more | steps")
        arrows += len(shown)
        k = layer.options.get("truncate")
        cuts += sum(1 for a, b in itertools.pairwise(shown) if b == a + 1 and k and a % k == 0)
    assert texts == expected
    lines = list(root.iter(SVG + "line"))
    flat = [el for el in lines if el.get("marker-end") and el.get("y1") == el.get("y2")]
    inside = [el for el in flat if float(el.get("x1") or 0) > 70]  # (not the input's arrow)
    assert len([el for el in inside if el.get("class") in ("edge", "edge cut")]) >= arrows
    assert len([el for el in lines if el.get("class") == "edge cut"]) == cuts
    # h_t above its cell, x_t below it.
    cells = [r for r in root.iter(SVG + "rect") if r.get("class") == "cell"]
    assert len(cells) == len([t for t in expected if "more" not in t])
    ys = {}
    for parent in root.iter(SVG + "tspan"):
        for child in parent.findall(SVG + "tspan"):
            if child.get("data-q"):
                ys[child.get("data-q")] = float(parent.get("y") or 0)
    top = float(cells[0].get("y") or 0)
    bottom = top + float(cells[0].get("height") or 0)
    l = recurrent[0].number
    h1 = next(q for q in ys if q.startswith(f"h:{l}:1") or q == f"h_norm:{l}:1")
    x1 = next(q for q in ys if q.startswith(f"xt:{l}:1") or q == f"xt_norm:{l}:1")
    assert ys[h1] < top and ys[x1] > bottom, (ys[h1], ys[x1], top, bottom)


def test_a_wide_layer_after_a_block_is_elided_with_a_count(run_cli, tmp_path) -> None:
    root = _draw(run_cli, tmp_path, "wide")
    elided = [
        " ".join(t.text or "" for t in el.findall(SVG + "tspan"))
        for el in root.iter(SVG + "text")
        if el.get("class") == "elided"
    ]
    assert elided == ["⋮ 5 more units", "⋮ 3 more units"]  # a⁴ has 16, the output 14


def test_a_layer_type_without_a_block_is_drawn_from_its_shapes() -> None:
    """A new layer type need not say how it is drawn: its block is its name and its shapes."""
    from gradcalc.step import diagram

    spec = gradcalc.load(str(available()["conv-worked-example"]))
    conv = spec.layers[0]
    bare = dataclasses.replace(conv, kind=dataclasses.replace(conv.kind, name="new", block=None))
    texts = ["".join(t for t, _ in ln) for ln in diagram.block_lines(bare)]
    assert texts == ["new", "1×4×4 → 1×3×3", "activation relu"]
    trace = gradcalc.run(dataclasses.replace(spec, layers=(bare, *spec.layers[1:])), steps=1)
    fig = diagram.build(trace, trace.steps[0])
    from gradcalc.doc.layout import Label, Rect

    blocks = [s for s in fig.shapes if isinstance(s, Rect)]
    inside = [s for s in fig.shapes if isinstance(s, Label) and s.cls == "block-text"]
    assert len(blocks) == len(inside) == 4
    for frame, label in zip(blocks, inside, strict=True):
        b = label.box
        assert frame.box.x0 < b.x0 and b.x1 < frame.box.x1
        assert frame.box.y0 < b.y0 and b.y1 < frame.box.y1


def _series(root: ET.Element) -> dict[str, list[tuple[float, float]]]:
    """Each curve's points mapped back to (step, value) through its axis maps."""
    out = {}
    for el in root.iter(SVG + "polyline"):
        name = el.get("data-series")
        if not name:
            continue
        xa, xp, xb, xq, _ = (el.get("data-xmap") or "").split()
        ya, yp, yb, yq, scale = (el.get("data-ymap") or "").split()
        pts = []
        for pair in (el.get("points") or "").split():
            px, py = map(float, pair.split(","))
            x = float(xa) + (px - float(xp)) / (float(xq) - float(xp)) * (float(xb) - float(xa))
            y = float(ya) + (py - float(yp)) / (float(yq) - float(yp)) * (float(yb) - float(ya))
            pts.append((x, 10**y if scale == "log" else y))
        out[name] = pts
    return out


@pytest.mark.parametrize("show", ["all", "summary"])
def test_the_layered_plot_draws_each_parameters_norms(run_cli, tmp_path, show) -> None:
    """Loss, ‖∂C/∂θ‖ and ‖Δθ‖ of every parameter of every layer, as numpy computes them from
    the run's records; the output beside it is what it would be without the plot."""
    args = [*_config(tmp_path, "conv1d-avgpool"), "--steps", "12", "--show", show]
    out = tmp_path / "plot.svg"
    plain = run_cli(["step", *args])
    result = run_cli(["step", *args, "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == plain.stdout
    root = ET.fromstring(out.read_text(encoding="utf-8"))
    curves = _series(root)
    trace = gradcalc.run(_spec(tmp_path, "conv1d-avgpool"), steps=12)
    expected: dict[str, list[float]] = {"C": [st.loss for st in trace.steps]}
    for i, symbol in [(0, "K²"), (0, "b²"), (3, "w⁵"), (3, "b⁵")]:
        key = "kernels" if symbol == "K²" else "weights" if symbol == "w⁵" else "biases"
        expected[f"‖∂C/∂{symbol}‖"] = [
            float(np.linalg.norm(st.layers[i].grads[key])) for st in trace.steps
        ]
        expected[f"‖Δ{symbol}‖"] = [
            float(np.linalg.norm(st.layers[i].params[key] - st.layers[i].params_before[key]))
            for st in trace.steps
        ]
    assert set(curves) == set(expected)
    for name, values in expected.items():
        pts = curves[name]
        assert [round(s) for s, _ in pts] == list(range(1, 13))
        for (_, drawn), value in zip(pts, values, strict=True):
            # A pixel is written to 0.1: compare to the axis's resolution, relatively on a log.
            assert drawn == pytest.approx(value, rel=0.02, abs=1e-9), name
    legends = {
        "".join(el.itertext()).rsplit(" ", 1)[0]: el
        for el in root.iter(SVG + "text")
        if el.get("class") == "legend"
    }
    assert set(legends) == set(expected)


def test_a_long_layered_plot_buckets_its_steps(run_cli, tmp_path) -> None:
    out = tmp_path / "plot.svg"
    result = run_cli(
        [
            "step",
            "--example",
            "conv-worked-example",
            "--steps",
            "1100",
            "--show",
            "summary",
            "--plot",
            str(out),
            "-o",
            str(tmp_path / "lines.txt"),
        ]
    )
    assert result.exit_code == 0, result.output
    root = ET.fromstring(out.read_text(encoding="utf-8"))
    curves = _series(root)
    assert len(curves["C"]) <= 512 and curves["C"][-1][0] > 1000
    assert "4 steps a point" in "".join(root.itertext())
    trace = gradcalc.run(gradcalc.load(str(available()["conv-worked-example"])), steps=1100)
    # The last bucket's mean (steps 1097-1100) is the mean of those steps' losses.
    tail = np.mean([st.loss for st in trace.steps[-4:]])
    assert curves["C"][-1][1] == pytest.approx(tail, rel=0.02)


def test_the_layered_page_has_the_network_and_the_curves(run_cli) -> None:
    from test_pictures_html import assert_self_contained

    result = run_cli(
        ["step", "--example", "conv-worked-example", "--steps", "3", "--format", "html"]
    )
    assert result.exit_code == 0, result.output
    page = assert_self_contained(result.stdout)
    assert page.tags.count("svg") == 2 and "math" in page.tags
    assert 'class="block"' in result.stdout and 'data-series="C"' in result.stdout
    assert 'data-series="‖∂C/∂K²‖"' in result.stdout
    one = run_cli(["step", "--example", "conv-worked-example", "--format", "html"])
    assert _page_svgs(one.stdout) == 1  # one step: the network, no curve


def _page_svgs(text: str) -> int:
    return len(re.findall(r"<svg ", text))


def test_format_svg_draws_a_layered_network(run_cli, tmp_path) -> None:
    result = run_cli(
        [
            "step",
            "--example",
            "conv-worked-example",
            "--steps",
            "2",
            "--format",
            "svg",
            "--diagram-step",
            "2",
            "--diagram-show",
            "update",
        ]
    )
    assert result.exit_code == 0, result.output
    root = ET.fromstring(result.stdout.encode())
    trace = gradcalc.run(gradcalc.load(str(available()["conv-worked-example"])), steps=2)
    for q, text in _numbers(root):
        value, half = parse_number(text)
        assert abs(value - _value(trace.steps[1], trace, q)) <= half * 1.0001 + 1e-12
    assert "step 2 of 2" in "".join(root.itertext())


def test_a_layered_diagram_of_no_step_is_refused(run_cli, tmp_path) -> None:
    result = run_cli(
        [
            "step",
            "--example",
            "conv-worked-example",
            "--steps",
            "0",
            "--diagram",
            str(tmp_path / "d.svg"),
        ]
    )
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "no step to draw" in result.stderr


def test_a_network_without_parameters_plots_its_loss_alone(run_cli, tmp_path) -> None:
    out = tmp_path / "plot.svg"
    args = [*_config(tmp_path, "pool-only"), "--steps", "3", "--plot", str(out)]
    result = run_cli(["step", *args])
    assert result.exit_code == 0, result.output
    root = ET.fromstring(out.read_text(encoding="utf-8"))
    assert set(_series(root)) == {"C"}
    assert float(root.get("height") or 0) < 400  # one panel


@pytest.mark.parametrize(
    ("command", "image"),
    [
        (
            "gradcalc step --example conv-worked-example --diagram conv.svg --diagram-show "
            "backward",
            "conv-worked-example-diagram.svg",
        ),
        (
            "gradcalc step --example rnn-bptt --diagram rnn.svg --diagram-show backward",
            "rnn-bptt-diagram.svg",
        ),
    ],
)
def test_the_docs_picture_is_what_the_command_draws(run_cli, tmp_path, command, image) -> None:
    page = (ROOT / "docs" / "pictures.md").read_text(encoding="utf-8")
    assert command in page and f"images/{image}" in page
    words = command.split()[1:]
    target = words[words.index("--diagram") + 1]
    words[words.index(target)] = str(tmp_path / target)
    assert run_cli(words).exit_code == 0
    drawn = (tmp_path / target).read_text(encoding="utf-8")
    path = ROOT / "docs" / "images" / image
    assert drawn == path.read_text(encoding="utf-8"), f"{path} is stale: run `{command}`"
