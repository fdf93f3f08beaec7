"""The JSON contract of `gradcalc derive --format json`: one document, full float precision.

``value``, ``derivative`` and ``parameter_gradients`` hold a number for one --at value and a list
for several; softmax gives ``jacobian`` and a loss ``gradient``. ``graph`` and ``edges`` describe
the (first) point's graph; with several points ``points`` holds every point in full. Past
JSON_SWEEPS outputs only the first ones' sweeps and node adjoints are written (``sweeps_listed``).
A number that left float64 (overflow) is null, and a note says why.
"""

from __future__ import annotations

import json
import math
from typing import Any

from gradcalc.contract import versioned
from gradcalc.derivation.notes import write
from gradcalc.derivation.trace import (
    JSON_SWEEPS,
    DeriveTrace,
    GraphTrace,
    KinkTrace,
    NumericTrace,
    PointTrace,
)


def render(trace: DeriveTrace) -> str:
    return json.dumps(document(trace), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def document(trace: DeriveTrace) -> dict[str, Any]:
    first = trace.points[0]
    doc: dict[str, Any] = {
        "name": trace.name,
        "kind": trace.kind,
        "formula": trace.formula,
        "closed_form_derivative": trace.derivative_text,
        "params": dict(trace.params),
        "at": _one_or_many([p.at[0] for p in trace.points])
        if trace.elementwise
        else list(first.at),
    }
    if trace.target is not None:
        doc["target"] = list(trace.target)
    values = trace.values
    doc["value"] = _clean(_one_or_many(values) if trace.kind != "vector_activation" else values)
    if trace.elementwise:
        doc["derivative"] = _clean(_one_or_many(trace.derivatives))
    elif trace.kind == "vector_activation":
        doc["jacobian"] = _clean(trace.jacobian)
    else:
        doc["gradient"] = _clean(trace.gradient)
    if first.param_graph:
        per_point = trace.parameter_gradients_per_point
        doc["parameter_gradients"] = _clean(
            per_point[0]
            if not trace.several
            else {k: [g[k] for g in per_point] for k in first.param_graph}
        )
    doc["closed_form"] = _one_or_many([_closed(trace, p) for p in trace.points])
    doc["numeric"] = _one_or_many([_numeric(trace, p) for p in trace.points])
    agreement = trace.agreement
    doc["agreement"] = {
        "graph_vs_closed_form": agreement.closed_form,
        "graph_vs_numeric": agreement.numeric,
        "ok": agreement.ok,
        "relative_tolerance": trace.tolerance[0],
        "absolute_tolerance": trace.tolerance[1],
    }
    doc.update(_graph(first.graph))
    doc["kinks"] = [_kink(k) for p in trace.points for k in p.kinks]
    doc["notes"] = [write(note) for note in trace.notes]
    if trace.several:
        doc["points"] = [_point(trace, p) for p in trace.points]
    return versioned(doc)


def _graph(graph: GraphTrace) -> dict[str, Any]:
    several_outputs = len(graph.outputs) > 1
    listed = graph.outputs[:JSON_SWEEPS]
    nodes = []
    for node in graph.nodes:
        row: dict[str, Any] = {
            "name": node.name,
            "expression": node.definition,
            "kind": node.kind,
            "value": _clean(node.value),
            "adjoint": _clean(node.adjoint),
        }
        if several_outputs:
            row["adjoints"] = {
                out: _clean(a) for out, a in zip(listed, node.adjoints, strict=False)
            }
        nodes.append(row)
    return {
        "graph": {"inputs": list(graph.inputs), "outputs": list(graph.outputs), "nodes": nodes},
        "edges": [
            {"from": e.src, "to": e.dst, "partial": e.symbolic, "local": _clean(e.local)}
            for e in graph.edges
        ],
        "sweep": [
            {
                "output": out,
                "order": [{"node": r.node, "adjoint": _clean(r.adjoint)} for r in rows],
            }
            for out, rows in zip(listed, graph.sweeps, strict=False)
        ],
        "paths": [
            {
                "from": ps.src,
                "to": ps.dst,
                "count": ps.count,
                "listed": len(ps.paths),
                "sum": _clean(ps.total),
                "paths": [
                    {
                        "nodes": list(path.nodes),
                        "partials": list(path.symbolic),
                        "locals": _clean(list(path.locals)),
                        "product": _clean(path.product),
                    }
                    for path in ps.paths
                ],
            }
            for ps in graph.paths
        ],
        "non_finite_nodes": list(graph.non_finite),
        **({"sweeps_listed": len(listed)} if len(listed) < len(graph.outputs) else {}),
    }


def _closed(trace: DeriveTrace, point: PointTrace) -> Any:
    closed = point.closed_jacobian
    if closed is None:
        return None
    if trace.elementwise:
        result: Any = closed[0][0]
        if point.param_closed:
            return _clean({"derivative": result, "parameter_gradients": dict(point.param_closed)})
        return _clean(result)
    if trace.kind == "vector_activation":
        return _clean({"jacobian": [list(row) for row in closed]})
    return _clean({"gradient": list(closed[0])})


def _numeric(trace: DeriveTrace, point: PointTrace) -> dict[str, Any]:
    numeric: NumericTrace = point.numeric
    n = len(point.at)
    methods = [numeric.method(j) for j in range(n)]
    doc: dict[str, Any] = {"method": methods[0] if len(set(methods)) == 1 else "mixed"}
    if trace.elementwise:
        if methods[0] == "central":
            doc["derivative"] = numeric.central[0][0]
        else:
            doc["left"], doc["right"] = numeric.left[0][0], numeric.right[0][0]
        doc["step"] = numeric.steps[0]
    elif trace.kind == "vector_activation":
        doc["jacobian"] = [list(row) for row in numeric.central]
        doc["steps"] = list(numeric.steps)
    else:
        doc["gradient"] = list(numeric.central[0])
        doc["steps"] = list(numeric.steps)
        one_sided = [j for j in range(n) if methods[j] == "one-sided"]
        if one_sided:
            doc["one_sided"] = [
                {"index": j + 1, "left": numeric.left[0][j], "right": numeric.right[0][j]}
                for j in one_sided
            ]
    if numeric.params:
        doc["parameter_gradients"] = dict(numeric.params)
    return _clean(doc)


def _kink(k: KinkTrace) -> dict[str, Any]:
    return _clean(
        {
            "input": k.input,
            "where": k.where,
            "differentiable": k.differentiable,
            "left": k.left,
            "right": k.right,
            "reported": k.reported,
            "convention": k.convention,
            "numeric_left": k.numeric_left,
            "numeric_right": k.numeric_right,
        }
    )


def _point(trace: DeriveTrace, point: PointTrace) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "at": point.at[0],
        "value": _clean(point.value[0]),
        "derivative": _clean(point.jacobian[0][0]),
    }
    if point.param_graph:
        doc["parameter_gradients"] = _clean(point.parameter_gradients)
    doc["closed_form"] = _closed(trace, point)
    doc["numeric"] = _numeric(trace, point)
    doc["agreement"] = {
        "graph_vs_closed_form": point.agreement.closed_form,
        "graph_vs_numeric": point.agreement.numeric,
        "ok": point.agreement.ok,
    }
    doc.update(_graph(point.graph))
    doc["kinks"] = [_kink(k) for k in point.kinks]
    doc["notes"] = [write(note) for note in point.notes]
    return doc


def _one_or_many(items: list[Any]) -> Any:
    return items[0] if len(items) == 1 else items


def _clean(value: Any) -> Any:
    """Non-finite floats become null: JSON has no inf or nan."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
