"""`gradcalc derive` in the terminal: a page of the sheet, in the sheet's order.

The function and its closed-form derivative; the graph's nodes in evaluation order; every edge
with its local partial; the reverse sweep; the chain rule as a sum over paths; the derivative
three ways; then kinks and other notes. Several --at points show the first point's graph and a
table of every point.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from gradcalc.derivation.agreement import largest_gap
from gradcalc.derivation.notes import write
from gradcalc.derivation.trace import JSON_SWEEPS, DeriveTrace, GraphTrace, PathSet, PointTrace
from gradcalc.doc.numbers import Style
from gradcalc.doc.plain import Group, Renderable, Table, Text, plain, to_rich

if TYPE_CHECKING:
    from rich.console import Console

MAX_SWEEP_COLUMNS = 6  # softmax: one adjoint column per output, up to this many
FULL_JACOBIAN_ROWS = 4  # softmax: every entry three ways up to this size, else a summary


Number = Callable[[float | None], str]


def numbers(digits: int = 6) -> Number:
    """`digits` decimals from 1 up (1.740818), `digits` significant digits below (0.0819251),
    "—" where there is no value."""
    style = Style(digits, fixed_from_one=True)
    return lambda value: "—" if value is None else style(value)


def render(trace: DeriveTrace, console: Console, digits: int = 6) -> None:
    from rich.console import Group as RichGroup

    console.print(RichGroup(*renderables(trace, digits)))


def render_plain(trace: DeriveTrace, width: int, digits: int = 6) -> str | None:
    """The tables as `render` prints them without colour, drawn without rich; None where only
    rich can draw them at this width (see gradcalc.doc.plain)."""
    return plain(parts(trace, digits), width)


def renderables(trace: DeriveTrace, digits: int = 6) -> list[Any]:
    """The tables as rich renderables (a terminal with colour, Jupyter)."""
    return to_rich(parts(trace, digits))


def parts(trace: DeriveTrace, digits: int = 6) -> list[Renderable]:
    num = numbers(digits)
    point = trace.points[0]
    out: list[Renderable] = [_header(trace, num)]
    if trace.several:
        out.append(
            Text(
                f"\nThe graph at the first point, x = {num(point.at[0])}; every point is "
                f"summarised below (--format json has each point's graph).",
                style="italic",
            )
        )
    graph = point.graph
    out.append(_nodes(graph, num))
    if graph.edges:
        out.append(_edges(graph, num))
    out.append(_sweep(graph, num))
    for path_set in graph.paths:
        out.append(_paths(graph, path_set, num))
    if trace.elementwise:
        out.append(_three_ways_scalar(trace, point, num))
    elif trace.kind == "vector_activation":
        out.append(_three_ways_jacobian(trace, point, num))
    else:
        out.append(_three_ways_gradient(trace, point, num))
    if trace.several:
        out.append(_summary(trace, num))
    if trace.notes:
        out.append(_notes([write(note, Style(digits)) for note in trace.notes]))
    return out


# ---- sections --------------------------------------------------------------------------------


def _header(trace: DeriveTrace, num: Number) -> Renderable:
    lines = Text()
    lines.append(trace.name, style="bold")
    lines.append(f"    {trace.formula}\n")
    lines.append("closed form  ", style="dim")
    lines.append(trace.derivative_text or "none for a formula: graph and finite differences")
    if trace.params:
        lines.append("\nparameters   ", style="dim")
        lines.append(", ".join(f"{k} = {num(v)}" for k, v in trace.params.items()))
    lines.append("\nat           ", style="dim")
    point = trace.points[0]
    if trace.elementwise:
        lines.append("x = " + ", ".join(num(p.at[0]) for p in trace.points))
    else:
        lines.append("a = " + _vector(point.at, num))
    if trace.target is not None:
        lines.append("\ntarget       ", style="dim")
        lines.append("y = " + _vector(trace.target, num))
    value = point.value[0] if trace.kind != "vector_activation" else None
    lines.append("\nvalue        ", style="dim")
    if value is None:
        lines.append("s = " + _vector(point.value, num))
    elif trace.several:
        lines.append(", ".join(num(p.value[0]) for p in trace.points))
    else:
        lines.append(num(value))
    return lines


def _nodes(graph: GraphTrace, num: Number) -> Renderable:
    table = _table(("node", "definition", "value"), justify=("left", "left", "right"))
    for node in graph.nodes:
        # Bare numbers are read inside the definitions; named constants (y₁, α, n) get a row.
        if node.kind == "const" and node.name == node.definition:
            continue
        definition = {"input": "input", "const": "constant"}.get(node.kind, "")
        if node.kind == "operation":
            definition = node.definition
        elif node.kind == "const":
            definition = f"constant {node.definition}"
        table.add_row(node.name, definition, num(node.value))
    return _titled("Nodes, in evaluation order", table)


def _edges(graph: GraphTrace, num: Number) -> Renderable:
    table = _table(
        ("edge", "local partial", "symbolic", "value"), justify=("left",) * 3 + ("right",)
    )
    for e in graph.edges:
        table.add_row(f"{e.src} → {e.dst}", f"∂{e.dst}/∂{e.src}", e.symbolic, num(e.local))
    return _titled("Edges: the local partial derivative on each (constants left out)", table)


def _sweep(graph: GraphTrace, num: Number) -> Renderable:
    if len(graph.outputs) > 1:
        return _sweeps_side_by_side(graph, num)
    out = graph.outputs[0]
    table = _table(
        ("node", "adjoint", "= Σ over consumers", "numbers", "value"),
        justify=("left", "left", "left", "left", "right"),
    )
    for row in graph.sweeps[0]:
        if row.terms:
            chain = " + ".join(f"∂{out}/∂{t.consumer}·{_factor(t.symbolic)}" for t in row.terms)
            numbers = " + ".join(f"{num(t.consumer_adjoint)} × {num(t.local)}" for t in row.terms)
        else:
            chain, numbers = "(the output)", ""
        table.add_row(row.node, f"∂{out}/∂{row.node}", chain, numbers, num(row.adjoint))
    return _titled(f"Reverse sweep, from {out} back to the inputs", table)


def _sweeps_side_by_side(graph: GraphTrace, num: Number) -> Renderable:
    shown = graph.outputs[:MAX_SWEEP_COLUMNS]
    table = _table(
        ("node", *(f"∂{o}/∂·" for o in shown)), justify=("left",) + ("right",) * len(shown)
    )
    order = [row.node for row in graph.sweeps[0]]
    for rows in graph.sweeps[1:]:
        order.extend(r.node for r in rows if r.node not in order)
    by_name = {node.name: node for node in graph.nodes}
    for name in sorted(order, key=[n.name for n in graph.nodes].index, reverse=True):
        adjoints = by_name[name].adjoints[: len(shown)]
        table.add_row(name, *(num(a) for a in adjoints))
    title = "Reverse sweeps, one per output (adjoints, output to inputs)"
    if len(graph.outputs) > len(shown):
        more = "all" if len(graph.outputs) <= JSON_SWEEPS else f"the first {JSON_SWEEPS}"
        title += f"; the first {len(shown)} of {len(graph.outputs)} outputs (--format json: {more})"
    return _titled(title, table)


def _paths(graph: GraphTrace, path_set: object, num: Number) -> Renderable:
    assert isinstance(path_set, PathSet)
    table = _table(("path", "product of edge partials", "value"), justify=("left", "left", "right"))
    for path in path_set.paths:
        product = "·".join(f"({s})" for s in path.symbolic) or "1 (the input is the output)"
        table.add_row(" → ".join(path.nodes), product, num(path.product))
    total = f"∂{path_set.dst}/∂{path_set.src}"
    table.add_row(Text("sum = " + total, style="bold"), "", Text(num(path_set.total), style="bold"))
    word = "path" if path_set.count == 1 else "paths"
    title = f"Chain rule: {total} as a sum over the {path_set.count} {word} from {path_set.src}"
    if path_set.capped:
        title += (
            f" (only the first {len(path_set.paths)} are listed; the sum is the sweep's adjoint, "
            f"which counts them all)"
        )
    return _titled(title, table)


def _three_ways_scalar(trace: DeriveTrace, point: PointTrace, num: Number) -> Renderable:
    table = _table(("route", "value"), justify=("left", "right"))
    graph_value = point.graph_jacobian[0][0]
    table.add_row("graph (reverse sweep)", num(graph_value))
    closed = point.closed_jacobian
    table.add_row("closed form", num(closed[0][0]) if closed else "none (a formula)")
    table.add_row(*_numeric_cells(point, 0, 0, num))
    out = point.graph.outputs[0]
    for key, value in point.param_graph.items():
        closed_params = point.param_closed or {}
        table.add_row(f"∂{out}/∂{key}, graph", num(value))
        table.add_row(f"∂{out}/∂{key}, closed form", num(closed_params.get(key)))
        table.add_row(f"∂{out}/∂{key}, central difference", num(point.numeric.params.get(key)))
    return _titled("The derivative three ways", Group(table, _agreement_line(trace, point)))


def _three_ways_jacobian(trace: DeriveTrace, point: PointTrace, num: Number) -> Renderable:
    n = len(point.at)
    outputs = point.graph.outputs
    inputs = point.graph.inputs
    matrix = _table(("", *(f"∂/∂{x}" for x in inputs)), justify=("left",) + ("right",) * n)
    for i, out in enumerate(outputs):
        matrix.add_row(out, *(num(v) for v in point.graph_jacobian[i]))
    parts: list[Renderable] = [
        Text(f"From the graph (closed form {trace.derivative_text}):"),
        matrix,
    ]
    closed, central = point.closed_jacobian, point.numeric.central
    if n <= FULL_JACOBIAN_ROWS:
        table = _table(
            ("entry", "graph", "closed form", "central difference"),
            justify=("left", "right", "right", "right"),
        )
        for i, out in enumerate(outputs):
            for j, x in enumerate(inputs):
                table.add_row(
                    f"∂{out}/∂{x}",
                    num(point.graph_jacobian[i][j]),
                    num(closed[i][j] if closed else None),
                    num(central[i][j]),
                )
        parts.append(table)
    else:
        parts.append(
            Text(
                f"largest |graph − closed form| {num(largest_gap(point.graph_jacobian, closed))}, "
                f"largest |graph − central difference| "
                f"{num(largest_gap(point.graph_jacobian, central))}"
            )
        )
    parts.append(_agreement_line(trace, point))
    return _titled("The Jacobian three ways", Group(*parts))


def _three_ways_gradient(trace: DeriveTrace, point: PointTrace, num: Number) -> Renderable:
    assert trace.target is not None
    out = point.graph.outputs[0]
    table = _table(
        ("j", "a_j", "y_j", "graph", "closed form", "finite difference"),
        justify=("right",) * 6,
    )
    closed = point.closed_jacobian
    for j, x in enumerate(point.at):
        table.add_row(
            str(j + 1),
            num(x),
            num(trace.target[j]),
            num(point.graph_jacobian[0][j]),
            num(closed[0][j] if closed else None),
            _numeric_cells(point, 0, j, num)[1],
        )
    title = f"The gradient ∂{out}/∂a_j three ways"
    return _titled(title, Group(table, _agreement_line(trace, point)))


def _summary(trace: DeriveTrace, num: Number) -> Renderable:
    first = trace.points[0]
    out = first.graph.outputs[0]
    extra = [f"∂{out}/∂{key}" for key in first.param_graph]
    table = _table(
        ("x", "f(x)", "graph", "closed form", "finite difference", *extra, "agree"),
        justify=("right",) * (5 + len(extra)) + ("left",),
    )
    for point in trace.points:
        closed = point.closed_jacobian
        table.add_row(
            num(point.at[0]),
            num(point.value[0]),
            num(point.graph_jacobian[0][0]),
            num(closed[0][0]) if closed else "—",
            _numeric_cells(point, 0, 0, num)[1],
            *(num(v) for v in point.param_graph.values()),
            _verdict(point.agreement.ok),
        )
    return _titled("Every point", table)


def _notes(notes: Sequence[str]) -> Renderable:
    text = Text()
    for i, note in enumerate(notes):
        text.append(("\n" if i else "") + "• " + note)
    return _titled("Notes", text)


# ---- helpers ---------------------------------------------------------------------------------


def _numeric_cells(point: PointTrace, i: int, j: int, num: Number) -> tuple[str, str]:
    numeric = point.numeric
    step = numeric.steps[j]
    central = numeric.central[i][j]
    if central is not None:
        return f"central difference (h = {step:.3g})", num(central)
    left, right = numeric.left[i][j], numeric.right[i][j]
    return f"one-sided differences (h = {step:.3g})", f"{num(left)} ← | → {num(right)}"


def _agreement_line(trace: DeriveTrace, point: PointTrace) -> Text:
    agreement = point.agreement
    rel = trace.tolerance[0]
    graph_usable = not point.graph.non_finite
    routes = ["graph"] if graph_usable else []
    if agreement.closed_form is not None or (not graph_usable and point.closed_jacobian):
        routes.append("closed form")
    if agreement.numeric is not None:
        routes.append("finite differences")
    line = Text("agreement  ", style="bold")
    if len(routes) < 2:
        line.append("no second route to compare with here (see the notes)", style="yellow")
    elif agreement.ok and agreement.numeric is False:
        line.append("graph and closed form agree; the finite difference is outvoted", style="green")
        line.append(" (see the notes)", style="yellow")
    elif agreement.ok:
        line.append(f"{', '.join(routes[:-1])} and {routes[-1]} agree", style="green")
        if not graph_usable:
            line.append(" (the graph overflowed)", style="yellow")
    else:
        failed = []
        if agreement.closed_form is False:
            failed.append("graph ≠ closed form")
        if agreement.numeric is False:
            failed.append("≠ finite differences")
        if agreement.trusted is False:
            failed.append("no route resolves it")
        line.append("DISAGREE: " + ", ".join(failed), style="red")
    line.append(
        f"\n           within {rel:g} relative, give or take what rounding moves a route",
        style="dim",
    )
    return line


def _verdict(ok: bool) -> Text:
    return Text("yes" if ok else "NO", style="green" if ok else "red")


def _factor(symbolic: str) -> str:
    """A partial as a factor: bare names and numbers as they are, anything else in brackets."""
    return symbolic if re.fullmatch(r"[\w.₀-₉‖]+", symbolic) else f"({symbolic})"


def _vector(values: Sequence[float], num: Number) -> str:
    return "(" + ", ".join(num(v) for v in values) + ")"


def _table(columns: Sequence[str], justify: Sequence[str]) -> Table:
    table = Table(edge=False)
    for column, side in zip(columns, justify, strict=True):
        table.add_column(column, justify=side, overflow="fold")
    return table


def _titled(title: str, body: Renderable) -> Renderable:
    return Group(Text("\n" + title, style="bold"), body)
