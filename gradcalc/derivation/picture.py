"""`gradcalc derive --format svg`: the computational graph laid out as the sheet lays it out.

The inputs stand at the left and each node one column right of its furthest argument; a node's
box shows its definition, its value and its adjoint ∂f/∂node after the backward sweep, and each
edge carries its local partial, symbolically and as a number. Several --at points draw one graph
each, one under the other. Softmax nodes carry the adjoint of the first output (as DOT does).
"""

from __future__ import annotations

from itertools import pairwise

from gradcalc.derivation.trace import DeriveTrace, GraphTrace
from gradcalc.doc.layout import Box, Figure, Label, Line, Placer, Rect, Segment, line
from gradcalc.doc.numbers import Style

SIZE = 11.0
EDGE_SIZE = 10.0
MARGIN = 20.0
PAD = 6.0
_ALONG = (0.5, 0.4, 0.6, 0.3, 0.7, 0.45, 0.55, 0.35, 0.65, 0.25, 0.75, 0.2, 0.8)


def _ranks(graph: GraphTrace) -> dict[str, int]:
    rank: dict[str, int] = {}
    sources: dict[str, list[str]] = {}
    for e in graph.edges:
        sources.setdefault(e.dst, []).append(e.src)
    for node in graph.nodes:  # evaluation order: arguments come first
        if node.kind != "const":
            rank[node.name] = 1 + max((rank[s] for s in sources.get(node.name, ())), default=-1)
    return rank


def _graph(
    graph: GraphTrace, top: float, num: Style, tag: str, gap_x: float, gap_y: float
) -> tuple[list[Label | Rect | Segment], float, float] | None:
    """One graph's shapes from `top` down, its width and its bottom; None when some edge label
    finds no free place with these gaps."""
    out_name = graph.outputs[0]
    rank = _ranks(graph)
    columns: list[list[str]] = [[] for _ in range(max(rank.values()) + 1)]
    for node in graph.nodes:
        if node.name in rank:
            columns[rank[node.name]].append(node.name)
    # An edge across several columns passes through a waypoint in each column between (a slot
    # of its own, so it crosses no box): the chain src → waypoints → dst.
    route: dict[tuple[str, str], list[str]] = {}
    sources: dict[str, list[str]] = {}
    for e in graph.edges:
        chain = [e.src]
        for r in range(rank[e.src] + 1, rank[e.dst]):
            via = f"\0{e.src}\0{e.dst}\0{r}"
            columns[r].append(via)
            sources[via] = [chain[-1]]
            chain.append(via)
        sources.setdefault(e.dst, []).append(chain[-1])
        route[e.src, e.dst] = [*chain, e.dst]
    # Each column in the order of its arguments' places (their mean row), so fewer edges cross.
    place: dict[str, float] = {}
    for col in columns:
        col.sort(
            key=lambda n: (
                sum(place[s] for s in sources.get(n, [])) / max(len(sources.get(n, [])), 1)
            )
        )
        for i, n in enumerate(col):
            place[n] = i - (len(col) - 1) / 2

    texts: dict[str, tuple[Line, ...]] = {}
    for node in graph.nodes:
        if node.name not in rank:
            continue
        head = node.name if node.kind == "input" else f"{node.name} = {node.definition}"
        texts[node.name] = (
            line(head),
            line("value ", (num(node.value), f"{tag}value|{node.name}")),
            line(f"∂{out_name}/∂{node.name} = ", (num(node.adjoint), f"{tag}adjoint|{node.name}")),
        )
    probes = {n: Label(0, 0, t, SIZE) for n, t in texts.items()}
    col_w = [max(probes[n].width for n in col if n in probes) + 2 * PAD for col in columns]
    box_h = max(p.height for p in probes.values()) + 2 * PAD
    tallest = max(len(col) for col in columns)
    height = tallest * box_h + (tallest - 1) * gap_y
    boxes: dict[str, Box] = {}
    x = MARGIN
    for c, col in enumerate(columns):
        for n in col:
            cy = top + height / 2 + place[n] * (box_h + gap_y)
            boxes[n] = Box(x, cy - box_h / 2, x + col_w[c], cy + box_h / 2)
        x += col_w[c] + gap_x
    width = x - gap_x + MARGIN

    shapes: list[Label | Rect | Segment] = []
    labels: list[Label] = []
    edges = []
    for e in graph.edges:
        chain = route[e.src, e.dst]
        points = [(boxes[chain[0]].x1, _mid(boxes[chain[0]]))]
        for via in chain[1:-1]:
            b = boxes[via]
            points += [(b.x0, _mid(b)), (b.x1, _mid(b))]
        points.append((boxes[e.dst].x0, _mid(boxes[e.dst])))
        segs = [
            Segment(*p, *q, "edge", arrow=i == len(points) - 2)
            for i, (p, q) in enumerate(pairwise(points))
        ]
        shapes += segs
        edges.append((e, segs[0]))
    for n, b in boxes.items():
        if n not in texts:
            continue
        kind = "block input" if rank[n] == 0 else "block"
        shapes.append(Rect(b, kind))
        labels.append(
            Label((b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2, texts[n], SIZE, "value", boxed=False)
        )
    placer = Placer(b for n, b in boxes.items() if n in texts)
    for e, seg in edges:
        value = num(e.local)
        head = f"∂{e.dst}/∂{e.src} = {e.symbolic}"
        q = f"{tag}local|{e.src}|{e.dst}"
        if e.symbolic == value:
            lines = (line(f"∂{e.dst}/∂{e.src} = ", (value, q)),)
        else:
            lines = (line(head, " = ", (value, q)),)
        for t in _ALONG:
            lb = Label(
                seg.x1 + t * (seg.x2 - seg.x1),
                seg.y1 + t * (seg.y2 - seg.y1),
                lines,
                EDGE_SIZE,
                "partial",
            )
            if placer.free(lb.box):
                placer.add(lb.box)
                labels.append(lb)
                break
        else:
            return None
    return [*shapes, *labels], width, top + height


def _mid(b: Box) -> float:
    return (b.y0 + b.y1) / 2


def build(trace: DeriveTrace, digits: int = 6) -> Figure:
    num = Style(digits)
    from gradcalc.derivation.dot import _title, _where

    shapes: list[Label | Rect | Segment] = []
    title = Label(
        MARGIN, MARGIN, (line(_title(trace, num)),), 13, "title", boxed=False, anchor="start"
    )
    shapes.append(title)
    top = MARGIN + 24
    width = title.box.x1 + MARGIN
    for i, point in enumerate(trace.points):
        if trace.several:
            head = Label(
                MARGIN,
                top + 8,
                (line(_where(trace, point, num)),),
                SIZE,
                "head",
                boxed=False,
                anchor="start",
            )
            shapes.append(head)
            top += 24
        edge_w = max(
            (
                Label(
                    0, 0, (line(f"∂{e.dst}/∂{e.src} = {e.symbolic} = {num(e.local)}"),), EDGE_SIZE
                ).width
                for e in point.graph.edges
            ),
            default=40.0,
        )
        gap_x, gap_y = edge_w + 30, 30.0
        for _ in range(12):
            drawn = _graph(point.graph, top, num, f"{i}|" if trace.several else "", gap_x, gap_y)
            if drawn is not None:
                break
            gap_x *= 1.2
            gap_y *= 1.3
        else:  # pragma: no cover
            raise AssertionError("no room for the edge labels")
        parts, w, bottom = drawn
        shapes += parts
        width = max(width, w)
        top = bottom + 30
    out = trace.points[0].graph.outputs[0]
    note = Label(
        MARGIN,
        top,
        (
            line(
                f"each box: its definition, its value and the adjoint ∂{out}/∂node; "
                "each edge: its local partial"
            ),
        ),
        10,
        "muted",
        boxed=False,
        anchor="start",
    )
    shapes.append(note)
    width = max(width, note.box.x1 + MARGIN)
    return Figure(width, top + 24, f"gradcalc derive {trace.name}", list(shapes))
