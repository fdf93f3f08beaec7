"""`step --diagram` and `--plot`: SVG pictures read back and checked against the trace.

Every SVG is parsed as XML; every number it shows carries data-q (which quantity it is) and is
compared with the trace's own value to the decimals written; no two labels' grounds overlap
each other or a unit's circle, and each unit's values sit inside its circle.
"""

from __future__ import annotations

import itertools
import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gradcalc
from gradcalc.step.examples import available


def _dense_examples() -> list[str]:
    """The bundled networks of dense layers (tests/test_pictures_layered.py draws the others,
    whose records differ)."""
    from gradcalc.step.config import NetworkSpec

    return sorted(
        n for n, p in available().items() if isinstance(gradcalc.load(str(p)), NetworkSpec)
    )


ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"
_SUP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def parse_number(text: str) -> tuple[float, float]:
    """A number as the sheet writes it (−0.117, 0.210, 1.23×10⁻⁵, 0.9) and half a unit of its
    last written decimal: how far from the exact value its rounding may be."""
    text = text.replace("−", "-")
    m = re.fullmatch(r"(-?\d+(?:\.(\d+))?)(?:×10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+))?", text)
    assert m, f"not a number: {text!r}"
    exp = int(m.group(3).translate(_SUP)) if m.group(3) else 0
    decimals = len(m.group(2) or "")
    return float(m.group(1)) * 10.0**exp, 0.5 * 10.0 ** (exp - decimals)


def _value(st: Any, trace: Any, q: str, example: int = 0) -> float:
    if q == "loss":
        return float(st.loss)
    name, l, *idx = q.split(":")
    layer, i = int(l), [int(v) - 1 for v in idx]
    if name == "x":
        return float(trace.x[example, i[0]])
    if name == "y":
        return float(trace.y[example, i[0]])
    lt = st.layers[layer - 2]
    arrays = {
        "z": lt.z[example],
        "a": lt.a[example],
        "delta": lt.delta[example],
        "b": lt.biases_before,
        "grad_b": lt.grad_biases,
        "new_b": lt.biases,
        "w": lt.weights_before,
        "grad_w": lt.grad_weights,
        "new_w": lt.weights,
    }
    return float(arrays[name][tuple(i)])


def _numbers(root: ET.Element) -> list[tuple[str, str]]:
    return [
        (el.get("data-q") or "", el.text or "")
        for el in root.iter(SVG + "tspan")
        if el.get("data-q")
    ]


def _boxes(root: ET.Element) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]]]:
    grounds = [
        tuple(float(r.get(k) or 0) for k in ("x", "y", "width", "height"))
        for r in root.iter(SVG + "rect")
        if r.get("class") == "ground"
    ]
    circles = [
        tuple(float(c.get(k) or 0) for k in ("cx", "cy", "r"))
        for c in root.iter(SVG + "circle")
        if "unit" in (c.get("class") or "")
    ]
    return grounds, circles


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return not (
        a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]
    )


def assert_no_overlap(root: ET.Element) -> None:
    grounds, circles = _boxes(root)
    for i, a in enumerate(grounds):
        for b in grounds[i + 1 :]:
            assert not _overlap(a, b), f"labels overlap: {a} {b}"
        for cx, cy, r in circles:
            assert not _overlap(a, (cx - r, cy - r, 2 * r, 2 * r)), (
                f"label {a} on a unit at {cx, cy}"
            )


def _diagram(run_cli: Any, tmp_path: Path, *args: str) -> ET.Element:
    out = tmp_path / "net.svg"
    result = run_cli(["step", *args, "--diagram", str(out), "--show", "final"])
    assert result.exit_code == 0, result.output
    return ET.fromstring(out.read_text(encoding="utf-8"))


@pytest.mark.parametrize("example", _dense_examples())
@pytest.mark.parametrize("show", ["forward", "backward", "update"])
def test_every_number_of_the_diagram_is_the_traces(run_cli, tmp_path, example, show) -> None:
    net = gradcalc.load(str(available()[example]))
    trace = gradcalc.run(net, steps=2)
    root = _diagram(
        run_cli,
        tmp_path,
        "--example",
        example,
        "--steps",
        "2",
        "--diagram-step",
        "2",
        "--diagram-show",
        show,
    )
    st = trace.steps[1]
    shown = _numbers(root)
    names = {q.split(":")[0] for q, _ in shown}
    want = {"x", "y", "z", "a", "w", "b", "loss"}
    if show != "forward":
        want |= {"delta", "grad_w", "grad_b"}
    if show == "update":
        want |= {"new_w", "new_b"}
    assert names == want
    for q, text in shown:
        value, half = parse_number(text)
        exact = _value(st, trace, q)
        assert abs(value - exact) <= half * (1 + 1e-9) + 1e-15, (q, text, exact)
    # Every unit and every edge of a network this small is drawn and labelled.
    sizes = trace.sizes
    assert sum(1 for q, _ in shown if q.startswith("w:")) == sum(
        a * b for a, b in itertools.pairwise(sizes)
    )
    assert sum(1 for q, _ in shown if q.startswith("a:")) == sum(sizes[1:])
    assert_no_overlap(root)
    assert "step 2 of 2" in "".join(root.itertext())


def test_the_worked_example_shows_the_sheets_numbers(run_cli, tmp_path) -> None:
    root = _diagram(run_cli, tmp_path, "--example", "worked-example", "--diagram-show", "update")
    shown = dict(_numbers(root))
    assert shown["a:3:1"] == "0.420" and shown["delta:3:1"] == "−0.117"
    assert shown["w:3:1:1"] == "−0.300" and shown["new_w:3:1:1"] == "−0.235"
    assert shown["delta:2:1"] == "0.00867" and shown["z:2:1"] == "0.210"


def test_a_wide_layer_is_elided_with_a_count(run_cli, tmp_path, write_config) -> None:
    config = write_config(
        tmp_path,
        "input: [0.5, -0.25, 0.125]\ntarget: [1, 0]\nloss: quadratic\nlearning_rate: 0.1\n"
        "layers: {sizes: [3, 20, 30, 2], activation: tanh, output: sigmoid,\n"
        "         init: xavier_normal, seed: 1}\n",
    )
    root = _diagram(run_cli, tmp_path, str(config), "--diagram-show", "backward")
    text = "".join(root.itertext())
    assert "⋮ 9 more" in text and "⋮ 19 more" in text
    shown = dict(_numbers(root))
    units = {int(q.split(":")[2]) for q in shown if q.startswith("a:2:")}
    assert units == {*range(1, 11), 20}
    # Edges between shown units only: 3×11 + 11×11 + 11×2.
    assert sum(1 for q in shown if q.startswith("w:")) == 3 * 11 + 11 * 11 + 11 * 2
    net = gradcalc.load(str(config))
    trace = gradcalc.run(net)
    for q, text in shown.items():
        value, half = parse_number(text)
        assert abs(value - _value(trace.steps[0], trace, q)) <= half * (1 + 1e-9) + 1e-15, q
    assert_no_overlap(root)


def test_a_batch_draws_its_first_example(run_cli, tmp_path) -> None:
    root = _diagram(
        run_cli, tmp_path, "--example", "softmax-classifier", "--diagram-show", "backward"
    )
    assert "example 1 of 4" in "".join(root.itertext())


def test_the_layout_places_every_label_apart() -> None:
    """The layout's own boxes (not only the SVG's): labels, and circles, never overlap."""
    from gradcalc.doc.layout import Circle, Label, overlapping
    from gradcalc.step import diagram

    net = gradcalc.from_dict(
        {
            "input": [0.1] * 12,
            "target": [0.5] * 12,
            "loss": "quadratic",
            "learning_rate": 0.1,
            "layers": {
                "sizes": [12, 12, 12],
                "activation": "sigmoid",
                "init": "xavier_normal",
                "seed": 3,
            },
        }
    )
    trace = gradcalc.run(net)
    fig = diagram.build(trace, trace.steps[0], "update")
    boxes = [s.box for s in fig.shapes if isinstance(s, Label) and s.boxed]
    boxes += [s.box for s in fig.shapes if isinstance(s, Circle)]
    assert len(boxes) > 12 * 12 * 2
    assert overlapping(boxes) == []
    for s in fig.shapes:  # and all inside the picture
        if isinstance(s, Label):
            b = s.box
            assert b.x0 >= 0 and b.x1 <= fig.width and b.y0 >= 0 and b.y1 <= fig.height, s.lines


def test_overlapping_finds_what_overlaps() -> None:
    from gradcalc.doc.layout import Box, overlapping

    boxes = [Box(0, 0, 10, 10), Box(20, 0, 30, 10), Box(9, 9, 15, 15), Box(10, 0, 20, 5)]
    assert sorted(tuple(sorted(p)) for p in overlapping(boxes)) == [(0, 2)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "0"], "--diagram {out}: the run has no step to draw (--steps 0)"),
        (["--diagram-step", "3"], "step 3 asked for, but the run has 1 step"),
    ],
)
def test_a_diagram_of_no_step_is_refused(run_cli, tmp_path, args, message) -> None:
    out = tmp_path / "d.svg"
    result = run_cli(["step", "--example", "worked-example", "--diagram", str(out), *args])
    assert result.exit_code == 2
    assert message.format(out=out) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("option", ["--diagram", "--plot"])
def test_an_unwritable_picture_is_refused_before_the_run(run_cli, tmp_path, option) -> None:
    missing = tmp_path / "no" / "d.svg"
    result = run_cli(["step", "--example", "worked-example", option, str(missing)])
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"Error: {option} {missing}: directory {missing.parent} does not exist"
    )
    folder = run_cli(["step", "--example", "worked-example", option, str(tmp_path)])
    assert folder.exit_code == 2 and "is a directory" in folder.stderr
    config = available()["worked-example"]
    same = run_cli(["step", str(config), option, str(config)])
    assert same.exit_code == 2 and "is the config being read" in same.stderr


def test_diagram_options_need_the_diagram(run_cli) -> None:
    result = run_cli(["step", "--example", "worked-example", "--diagram-step", "1"])
    assert result.exit_code == 2 and "give --diagram FILE too" in result.stderr


# -- the plot ----------------------------------------------------------------------------------


def test_buckets_merge_as_a_reshape_would() -> None:
    from gradcalc.step.plot import Buckets

    values = np.random.default_rng(0).normal(size=(101, 2))
    b = Buckets(2, capacity=8)
    for s, v in enumerate(values, 1):
        b.add(s, v)
    assert b.per == 16
    middle, lo, mean, hi = b.series()
    for i in range(len(middle)):
        part = values[16 * i : 16 * (i + 1)]
        assert middle[i] == (16 * i + 1 + min(16 * (i + 1), 101)) / 2
        np.testing.assert_allclose(mean[i], part.mean(axis=0), rtol=1e-12)
        np.testing.assert_array_equal(lo[i], part.min(axis=0))
        np.testing.assert_array_equal(hi[i], part.max(axis=0))
    assert len(middle) == 7  # 101 steps in buckets of 16


def test_buckets_keep_their_memory_for_a_million_steps() -> None:
    from gradcalc.step.plot import Buckets

    b = Buckets(3)
    size = b.lo.nbytes + b.hi.nbytes + b.total.nbytes + b.count.nbytes
    for s in range(1, 10**6 + 1, 997):  # steps arrive in order; the gaps only save time
        b.add(s, np.array([1.0, 2.0, float(s)]))
    assert b.lo.nbytes + b.hi.nbytes + b.total.nbytes + b.count.nbytes == size
    assert b.per >= 10**6 // 512
    middle, *_ = b.series()
    assert len(middle) <= 512 and middle[-1] <= 10**6


def _curves(root: ET.Element) -> dict[str, list[tuple[float, float]]]:
    """Each plotted series as (step, value) points, read back through its axes' maps."""

    def inverse(spec: str) -> Any:
        a, pa, b, pb, scale = spec.split()
        a_, pa_, b_, pb_ = map(float, (a, pa, b, pb))

        def back(p: float) -> float:
            v = a_ + (p - pa_) / (pb_ - pa_) * (b_ - a_)
            return 10**v if scale == "log" else v

        return back

    out = {}
    for el in root.iter(SVG + "polyline"):
        if el.get("data-series"):
            bx, by = inverse(el.get("data-xmap") or ""), inverse(el.get("data-ymap") or "")
            pts = [tuple(map(float, p.split(","))) for p in (el.get("points") or "").split()]
            out[el.get("data-series") or ""] = [(bx(x), by(y)) for x, y in pts]
    return out


@pytest.mark.parametrize("steps", [1, 7, 3000])
def test_the_plot_draws_the_streamed_summaries(run_cli, tmp_path, steps) -> None:
    import json

    plot = tmp_path / "plot.svg"
    result = run_cli(
        [
            "step",
            "--example",
            "tanh-mse",
            "--steps",
            str(steps),
            "--format",
            "jsonl",
            "--show",
            "summary",
            "--plot",
            str(plot),
        ]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(l) for l in result.stdout.splitlines()][:-1]
    assert len(records) == steps
    series = {
        "C": np.array([r["loss"] for r in records]),
        **{
            f"‖∂C/∂w{'²³⁴'[i]}‖": np.array([r["layers"][i]["grad_weights_norm"] for r in records])
            for i in range(2)
        },
        **{
            f"‖Δw{'²³⁴'[i]}‖": np.array([r["layers"][i]["update_weights_norm"] for r in records])
            for i in range(2)
        },
    }
    root = ET.fromstring(plot.read_text(encoding="utf-8"))
    curves = _curves(root)
    assert set(curves) == set(series)
    per = 1
    while math.ceil(steps / per) > 512:
        per *= 2
    for name, values in series.items():
        points = curves[name]
        assert len(points) == math.ceil(steps / per)
        for i, (x, y) in enumerate(points):
            part = values[i * per : (i + 1) * per]
            assert x == pytest.approx(
                (i * per + 1 + min((i + 1) * per, steps)) / 2, abs=0.06 * steps / 500 + 0.01
            )
            # Points are written to 0.1 px: 1/2000 of an axis's span (of a decade on a log axis).
            assert y == pytest.approx(part.mean(), rel=2e-2, abs=1e-3 * float(values.max())), (
                name,
                i,
            )
    assert not ET.tostring(root).count(b"nan")


def test_the_loss_axis_is_logarithmic_when_it_spans_decades(run_cli, tmp_path) -> None:
    plot = tmp_path / "plot.svg"
    result = run_cli(
        [
            "step",
            "--example",
            "worked-example",
            "--steps",
            "500",
            "--plot",
            str(plot),
            "--show",
            "final",
        ]
    )
    assert result.exit_code == 0, result.output
    root = ET.fromstring(plot.read_text(encoding="utf-8"))
    loss = next(el for el in root.iter(SVG + "polyline") if el.get("data-series") == "C")
    assert (loss.get("data-ymap") or "").endswith("log")
    linear = run_cli(
        [
            "step",
            "--example",
            "worked-example",
            "--steps",
            "3",
            "--plot",
            str(plot),
            "--show",
            "final",
        ]
    )
    assert linear.exit_code == 0
    root = ET.fromstring(plot.read_text(encoding="utf-8"))
    loss = next(el for el in root.iter(SVG + "polyline") if el.get("data-series") == "C")
    assert (loss.get("data-ymap") or "").endswith("linear")


PROBE = """
import atexit, sys
sys.argv = ["gradcalc", *{args!r}]
atexit.register(lambda: sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)) + "\\n"))
from gradcalc.__main__ import run
run()
"""


PICTURE_MODULES = {
    "gradcalc.doc.svg",
    "gradcalc.doc.layout",
    "gradcalc.doc.html",
    "gradcalc.doc.mathml",
    "gradcalc.step.diagram",
    "gradcalc.step.plot",
    "gradcalc.step.pictures",
    "gradcalc.derivation.picture",
    "gradcalc.check.page",
}


@pytest.mark.parametrize(
    ("args", "own"),
    [
        (["step", "configs/worked-example.yaml"], "gradcalc.step.engine"),
        (["step", "configs/worked-example.yaml", "--format", "markdown"], "gradcalc.doc.markdown"),
        (["derive", "sigmoid", "--at", "0.3"], "gradcalc.derivation.engine"),
        (["derive", "sigmoid", "--at", "0.3", "--format", "dot"], "gradcalc.derivation.dot"),
    ],
)
def test_a_command_without_pictures_imports_none_of_their_modules(args, own) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modules = set(done.stderr.rsplit("MODULES ", 1)[1].split())
    assert own in modules
    assert not modules & PICTURE_MODULES


# The README's gallery: each picture and the command (on docs/pictures.md) that draws it.
GALLERY = {
    "worked-example-diagram.svg": (
        "gradcalc step --example worked-example --diagram network.svg --diagram-show update",
        "network.svg",
    ),
    "loss-curve.svg": (
        "gradcalc step --example softmax-classifier --steps 2000 --plot loss.svg --show final",
        "loss.svg",
    ),
}


@pytest.mark.parametrize("image", sorted(GALLERY))
def test_the_gallery_is_what_the_commands_draw(run_cli, tmp_path, image) -> None:
    command, file = GALLERY[image]
    assert command in (ROOT / "docs" / "pictures.md").read_text(encoding="utf-8")
    assert f"docs/images/{image}" in (ROOT / "README.md").read_text(encoding="utf-8")
    words = command.split()[1:]
    words[words.index(file)] = str(tmp_path / file)
    result = run_cli(words)
    assert result.exit_code == 0, result.output
    drawn = (tmp_path / file).read_text(encoding="utf-8")
    assert drawn == (ROOT / "docs" / "images" / image).read_text(encoding="utf-8"), (
        f"docs/images/{image} is stale: run `{command}` with docs/images/{image} for {file}"
    )


@pytest.mark.parametrize("layers", [1, 2, 9])
@pytest.mark.parametrize("steps", [1, 40, 1500])
def test_no_two_labels_of_the_plot_overlap(layers, steps) -> None:
    from gradcalc.doc.layout import overlapping
    from gradcalc.step import plot

    net = gradcalc.from_dict(
        {
            "input": [0.3, -0.2],
            "target": [0.5],
            "loss": "quadratic",
            "learning_rate": 0.5,
            "layers": {
                "sizes": [2, *[3] * (layers - 1), 1],
                "activation": "tanh",
                "output": "sigmoid",
                "init": "xavier_normal",
                "seed": 2,
            },
        }
    )
    recorder = plot.Recorder(layers)
    trace = gradcalc.run(net, steps=steps)
    for st in trace.steps:
        recorder.add(st)
    fig = plot.build(recorder, trace)
    labels = fig.labels()
    assert overlapping([lb.box for lb in labels]) == []
    for lb in labels:
        b = lb.box
        assert b.x0 >= 0 and b.x1 <= fig.width and b.y0 >= 0 and b.y1 <= fig.height, lb.lines


def test_a_rounded_run_draws_its_rounded_numbers(run_cli, tmp_path) -> None:
    root = _diagram(
        run_cli, tmp_path, "--example", "worked-example", "--round", "3", "--diagram-show", "update"
    )
    trace = gradcalc.run(gradcalc.load(str(available()["worked-example"])), round_to=3)
    shown = _numbers(root)
    assert shown
    for q, text in shown:
        assert re.fullmatch(r"−?\d+\.\d{3}", text), (q, text)  # exactly 3 decimals
        value, _ = parse_number(text)
        assert value == pytest.approx(_value(trace.steps[0], trace, q), abs=1e-12), q


def test_a_look_ahead_rule_says_whose_numbers_it_draws(run_cli, tmp_path) -> None:
    args = ["--example", "worked-example", "--optimizer", "nesterov", "--steps", "2"]
    root = _diagram(run_cli, tmp_path, *args, "--diagram-step", "2", "--diagram-show", "backward")
    assert "nesterov looks ahead" in "".join(root.itertext())
    plain = _diagram(run_cli, tmp_path, "--example", "worked-example")
    assert "looks ahead" not in "".join(plain.itertext())


def test_format_svg_writes_the_diagram(run_cli, tmp_path) -> None:
    args = ["--example", "tanh-mse", "--steps", "3", "--diagram-step", "2"]
    svg = run_cli(["step", *args, "--diagram-show", "update", "--format", "svg"])
    assert svg.exit_code == 0, svg.output
    drawn = tmp_path / "d.svg"
    run_cli(["step", *args, "--diagram-show", "update", "--diagram", str(drawn), "--show", "final"])
    assert svg.stdout == drawn.read_text(encoding="utf-8")
    ET.fromstring(svg.stdout.encode("utf-8"))
    none = run_cli(["step", "--example", "tanh-mse", "--steps", "0", "--format", "svg"])
    assert none.exit_code == 2
    assert none.stderr.strip() == (
        "Error: --format svg: the run has no step to draw (--steps 0); give --steps 1 or more"
    )
