"""`derive --format svg`: the graph's picture read back and checked against the trace."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

import gradcalc
from gradcalc.functions.activations import ACTIVATIONS
from gradcalc.functions.losses import LOSSES

SVG = "{http://www.w3.org/2000/svg}"

CASES: list[tuple[str, str, str | None]] = [
    *[(a.name, "0.3", None) for a in ACTIVATIONS],
    *[(loss.name, "0.6,0.3", "1,-1" if loss.name == "hinge" else "1,0") for loss in LOSSES],
    ("x*tanh(x)", "0.7", None),
    ("log(1 + exp(x))", "-1,0.5,2", None),  # several points: one graph each
    ("softmax", "1,2,3", None),
]


def _run(run_cli: Any, name: str, at: str, target: str | None) -> ET.Element:
    args = ["derive", name, "--at", at, "--format", "svg"]
    if target is not None:
        args += ["--target", target]
    result = run_cli(args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<?xml")
    return ET.fromstring(result.stdout.encode("utf-8"))


@pytest.mark.parametrize(("name", "at", "target"), CASES, ids=[c[0] for c in CASES])
def test_every_number_of_the_graph_is_the_traces(run_cli, name, at, target) -> None:
    root = _run(run_cli, name, at, target)
    points = [float(v) for v in at.split(",")]
    kwargs: dict[str, Any] = {}
    if target is not None:
        kwargs["target"] = [float(v) for v in target.split(",")]
    trace = gradcalc.derive(name, points if len(points) > 1 else points[0], **kwargs)
    shown = [
        (el.get("data-q") or "", el.text or "")
        for el in root.iter(SVG + "tspan")
        if el.get("data-q")
    ]
    seen = set()
    for q, text in shown:
        parts = q.split("|")
        graph = trace.points[int(parts.pop(0)) if trace.several else 0].graph
        kind = parts[0]
        if kind == "local":
            exact = next(e.local for e in graph.edges if (e.src, e.dst) == (parts[1], parts[2]))
        else:
            node = next(n for n in graph.nodes if n.name == parts[1])
            exact = node.value if kind == "value" else node.adjoint
        value = float(text)
        assert value == pytest.approx(exact, rel=5e-6, abs=1e-300), (q, text, exact)
        seen.add(q)
    # Every node's value and adjoint, and every edge's partial that is a number, is shown.
    for i, point in enumerate(trace.points):
        tag = f"{i}|" if trace.several else ""
        for node in point.graph.nodes:
            if node.kind != "const":
                assert f"{tag}value|{node.name}" in seen and f"{tag}adjoint|{node.name}" in seen
        for e in point.graph.edges:
            assert f"{tag}local|{e.src}|{e.dst}" in seen
    _no_overlap(root)


def _no_overlap(root: ET.Element) -> None:
    def box(el: ET.Element) -> tuple[float, ...]:
        return tuple(float(el.get(k) or 0) for k in ("x", "y", "width", "height"))

    grounds = [box(r) for r in root.iter(SVG + "rect") if r.get("class") == "ground"]
    nodes = [box(r) for r in root.iter(SVG + "rect") if "block" in (r.get("class") or "")]

    def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return not (
            a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]
        )

    every = grounds + nodes
    for i, a in enumerate(every):
        for b in every[i + 1 :]:
            assert not overlap(a, b), (a, b)


def test_an_edge_across_columns_goes_round_the_boxes(run_cli) -> None:
    """x → f of x·tanh(x) spans every column: its segments miss every box."""
    root = _run(run_cli, "x*tanh(x)", "0.7", None)
    nodes = [
        tuple(float(r.get(k) or 0) for k in ("x", "y", "width", "height"))
        for r in root.iter(SVG + "rect")
        if "block" in (r.get("class") or "")
    ]
    for seg in root.iter(SVG + "line"):
        if seg.get("class") != "edge":
            continue
        x1, y1, x2, y2 = (float(seg.get(k) or 0) for k in ("x1", "y1", "x2", "y2"))
        for x, y, w, h in nodes:
            # Sample the segment: no point strictly inside a box.
            for t in (i / 20 for i in range(1, 20)):
                px, py = x1 + t * (x2 - x1), y1 + t * (y2 - y1)
                assert not (x + 0.5 < px < x + w - 0.5 and y + 0.5 < py < y + h - 0.5)
