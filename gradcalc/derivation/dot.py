"""`gradcalc derive --format dot`: the computational graph as a Graphviz digraph.

Each node is labelled with its definition, value and adjoint, each edge with its local partial
derivative, symbolically and as a number; constants appear inside the definitions, not as nodes.
Several --at points give one cluster per point. Softmax nodes carry the adjoint of the first
output s₁ (the JSON has every output's).
"""

from __future__ import annotations

from gradcalc.derivation.trace import DeriveTrace, GraphTrace, PointTrace
from gradcalc.doc.numbers import Style


def render(trace: DeriveTrace, digits: int = 6) -> str:
    num = Style(digits)
    lines = [
        f"digraph {_quote('gradcalc derive ' + trace.name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        f"  label={_quote(_title(trace, num))};",
        "  labelloc=t;",
    ]
    if not trace.several:
        lines.extend(_body(trace.points[0].graph, "", "  ", num))
    else:
        for i, point in enumerate(trace.points, 1):
            lines.append(f"  subgraph cluster_{i} {{")
            lines.append(f"    label={_quote(_where(trace, point, num))};")
            lines.extend(_body(point.graph, f"{i}:", "    ", num))
            lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _body(graph: GraphTrace, prefix: str, indent: str, num: Style) -> list[str]:
    out = graph.outputs[0]
    lines = []
    for node in graph.nodes:
        if node.kind == "const":
            continue
        head = node.name if node.kind == "input" else f"{node.name} = {node.definition}"
        label = f"{head}\nvalue {num(node.value)}\n∂{out}/∂{node.name} = {num(node.adjoint)}"
        shape = ", shape=ellipse" if node.kind == "input" else ""
        lines.append(f"{indent}{_quote(prefix + node.name)} [label={_quote(label)}{shape}];")
    for e in graph.edges:
        value = num(e.local)
        label = f"∂{e.dst}/∂{e.src} = {e.symbolic}" + ("" if e.symbolic == value else f" = {value}")
        lines.append(
            f"{indent}{_quote(prefix + e.src)} -> {_quote(prefix + e.dst)} [label={_quote(label)}];"
        )
    return lines


def _title(trace: DeriveTrace, num: Style) -> str:
    if trace.several:
        return trace.formula
    return f"{trace.formula}, at {_where(trace, trace.points[0], num)}"


def _where(trace: DeriveTrace, point: PointTrace, num: Style) -> str:
    if trace.elementwise:
        return f"x = {num(point.at[0])}"
    return "a = (" + ", ".join(num(v) for v in point.at) + ")"


def _quote(text: str) -> str:
    """A DOT string: backslashes and quotes escaped, newlines as \\n line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
