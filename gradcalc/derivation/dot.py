"""`gradcalc derive --format dot`: the computational graph as a Graphviz digraph.

Each node is labelled with its definition, value and adjoint, each edge with its local partial
derivative, symbolically and as a number; constants appear inside the definitions, not as nodes.
Several --at points give one cluster per point. Softmax nodes carry the adjoint of the first
output s₁ (the JSON has every output's).
"""

from __future__ import annotations

from gradcalc.derivation.engine import DeriveTrace, GraphTrace, PointTrace


def render(trace: DeriveTrace) -> str:
    lines = [
        f"digraph {_quote('gradcalc derive ' + trace.name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        f"  label={_quote(_title(trace))};",
        "  labelloc=t;",
    ]
    if not trace.several:
        lines.extend(_body(trace.points[0].graph, prefix="", indent="  "))
    else:
        for i, point in enumerate(trace.points, 1):
            lines.append(f"  subgraph cluster_{i} {{")
            lines.append(f"    label={_quote(_where(trace, point))};")
            lines.extend(_body(point.graph, prefix=f"{i}:", indent="    "))
            lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _body(graph: GraphTrace, prefix: str, indent: str) -> list[str]:
    out = graph.outputs[0]
    lines = []
    for node in graph.nodes:
        if node.kind == "const":
            continue
        head = node.name if node.kind == "input" else f"{node.name} = {node.definition}"
        label = f"{head}\nvalue {_num(node.value)}\n∂{out}/∂{node.name} = {_num(node.adjoint)}"
        shape = ", shape=ellipse" if node.kind == "input" else ""
        lines.append(f"{indent}{_quote(prefix + node.name)} [label={_quote(label)}{shape}];")
    for e in graph.edges:
        value = _num(e.local)
        label = f"∂{e.dst}/∂{e.src} = {e.symbolic}" + ("" if e.symbolic == value else f" = {value}")
        lines.append(
            f"{indent}{_quote(prefix + e.src)} -> {_quote(prefix + e.dst)} [label={_quote(label)}];"
        )
    return lines


def _title(trace: DeriveTrace) -> str:
    if trace.several:
        return trace.formula
    return f"{trace.formula}, at {_where(trace, trace.points[0])}"


def _where(trace: DeriveTrace, point: PointTrace) -> str:
    if trace.elementwise:
        return f"x = {_num(point.at[0])}"
    return "a = (" + ", ".join(_num(v) for v in point.at) + ")"


def _num(value: float) -> str:
    return f"{value:.6g}"


def _quote(text: str) -> str:
    """A DOT string: backslashes and quotes escaped, newlines as \\n line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
