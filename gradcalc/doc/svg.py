"""The SVG writer: a Figure (layout.py) as a standalone SVG document, written as text.

No library and no system binary: the shapes are few and plain. Every label is a <text> in a
monospaced font whose lines are <tspan>s; a number carries data-q naming the quantity it shows,
so the picture can be read back and checked against the trace.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from gradcalc.doc.layout import FONT, LEADING, Circle, Figure, Label, Polyline, Rect, Segment

STYLE = """
text { font-family: %s; fill: #1a1a1a; }
.title { font-weight: bold; }
.ground { fill: #ffffff; fill-opacity: 0.9; }
.unit { fill: #f4f7fb; stroke: #33557a; stroke-width: 1.4; }
.unit.input { fill: #fbf8ee; stroke: #7a6a33; }
.unit.elided { fill: none; stroke: #999; stroke-dasharray: 3 3; }
.edge { stroke: #8aa0b8; stroke-width: 1; }
.edge.elided { stroke-dasharray: 2 4; }
.block { fill: #eef3ee; stroke: #3f6a3f; }
.axis { stroke: #444; stroke-width: 1; }
.grid { stroke: #e3e3e3; stroke-width: 1; }
.curve { fill: none; stroke: #1f5fa8; stroke-width: 1.6; }
.band { fill: #1f5fa8; fill-opacity: 0.15; stroke: none; }
.muted { fill: #666; }
"""

# Line colours of a plot's series, in turn; a dashed line is the same layer's update.
PALETTE = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad", "#d68910", "#17727a", "#7f8c8d")


def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _label(lb: Label) -> str:
    out = []
    if lb.boxed:
        b = lb.box
        out.append(
            f'<rect class="ground" x="{_f(b.x0)}" y="{_f(b.y0)}" '
            f'width="{_f(b.x1 - b.x0)}" height="{_f(b.y1 - b.y0)}"/>'
        )
    top = lb.cy - lb.height / 2
    step = LEADING * lb.size
    weight = ' font-weight="bold"' if lb.bold else ""
    x = _f(lb.cx)
    tspans = []
    for i, ln in enumerate(lb.lines):
        # The baseline sits 0.3 em above the bottom of its line box.
        y = _f(top + (i + 1) * step - 0.3 * lb.size)
        parts = "".join(
            f"<tspan data-q={quoteattr(q)}>{escape(t)}</tspan>" if q else escape(t) for t, q in ln
        )
        tspans.append(f'<tspan x="{x}" y="{y}">{parts}</tspan>')
    out.append(
        f'<text class={quoteattr(lb.cls)} font-size="{_f(lb.size)}" '
        f'text-anchor="{lb.anchor}"{weight}>' + "".join(tspans) + "</text>"
    )
    return "".join(out)


def _shape(s: object) -> str:
    if isinstance(s, Label):
        return _label(s)
    if isinstance(s, Circle):
        return f'<circle class={quoteattr(s.cls)} cx="{_f(s.cx)}" cy="{_f(s.cy)}" r="{_f(s.r)}"/>'
    if isinstance(s, Rect):
        b = s.box
        return (
            f'<rect class={quoteattr(s.cls)} x="{_f(b.x0)}" y="{_f(b.y0)}" '
            f'width="{_f(b.x1 - b.x0)}" height="{_f(b.y1 - b.y0)}" rx="4"/>'
        )
    if isinstance(s, Segment):
        marker = ' marker-end="url(#arrow)"' if s.arrow else ""
        return (
            f'<line class={quoteattr(s.cls)} x1="{_f(s.x1)}" y1="{_f(s.y1)}" '
            f'x2="{_f(s.x2)}" y2="{_f(s.y2)}"{marker}/>'
        )
    assert isinstance(s, Polyline)
    points = " ".join(f"{_f(x)},{_f(y)}" for x, y in s.points)
    data = "".join(f" data-{k}={quoteattr(v)}" for k, v in s.data)
    tag = "polygon" if s.closed else "polyline"
    return f'<{tag} class={quoteattr(s.cls)} points="{points}"{data}/>'


def write(fig: Figure, standalone: bool = True) -> str:
    """The figure as SVG text: a document with its XML declaration, or (`standalone` False)
    the <svg> element alone, to be put inline in an HTML page."""
    w, h = _f(fig.width), _f(fig.height)
    data = "".join(f" data-{k}={quoteattr(v)}" for k, v in fig.data)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img"{data}>'
    )
    style = (STYLE % FONT) + fig.style
    parts = [head, f"<title>{escape(fig.title)}</title>", f"<style>{style}</style>"]
    if any(isinstance(s, Segment) and s.arrow for s in fig.shapes):
        # (Only where an edge has an arrow: a page with several pictures has one such id.)
        parts.append(
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            'fill="#8aa0b8"/></marker></defs>'
        )
    parts.append('<rect width="100%" height="100%" fill="#ffffff"/>')
    parts += [_shape(s) for s in fig.shapes]
    parts.append("</svg>")
    body = "\n".join(parts) + "\n"
    if standalone:
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + body
    return body
