"""The worked derivation that `derive --format markdown` and `--format latex` both lay out.

`build` turns a DeriveTrace into the step documents' blocks (headings, prose, chains of
equations, tables), laid out like a page of the sheet: the function and its closed-form
derivative, the intermediate variables, the local partial on every edge, the reverse sweep, the
chain rule as a sum over paths, the derivative three ways, kinks and notes. Markdown adds the
graph as a Mermaid flowchart; `derive_latex` lays the same blocks out as a LaTeX document. Every
number comes from the trace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gradcalc.derivation.agreement import largest_gap
from gradcalc.derivation.notes import write
from gradcalc.derivation.trace import (
    DeriveTrace,
    GraphTrace,
    KinkTrace,
    NodeRow,
    PathSet,
    PointTrace,
    SweepRow,
)
from gradcalc.doc.blocks import Block, Eq, Eqs, Heading, Mermaid, Para, Table
from gradcalc.doc.notation import (
    BREAK,
    Kind,
    Notation,
    latex_escape,
    plural,
    tex_width,
)
from gradcalc.doc.numbers import Style
from gradcalc.functions.registry import VectorActivation
from gradcalc.graph.tex import name_tex, tidy

MAX_LINES = 30  # equations per section, and rows per table, before "… n more"
MAX_TERMS = 6  # terms of a sum written out (a sweep over many consumers, a long sum node)
MAX_MATRIX = 6  # rows and columns of a Jacobian, entries of a vector
MAX_SWEEP_COLUMNS = 5  # outputs whose adjoints are tabled side by side (softmax)
MAX_PATHS = 16  # paths listed per input
MAX_PATH_NODES = 7  # nodes of a path spelt out in its label before the middle is elided
MAX_POINTS = 40  # rows of the every-point table
MAX_DIAGRAM_EDGES = 120  # edges drawn in the Mermaid flowchart
MAX_TITLE_NAME = 40  # a longer formula is named in the title as "a formula"
# How many digits wide a table's numbers, or a matrix's, may run in all: a page of the LaTeX
# holds about 85 (17 cm at 11 pt); Markdown keeps the same shape.
WIDTH = 72


# ---- numbers and the engine's text as TeX --------------------------------------------------------


def derive_style(digits: int = 6, tex: bool = True) -> Style:
    """A number short when it is exact in few digits (−0.3, 1, 0.5), else to `digits`
    significant digits (0.740818, −0.0220330), `digits` decimals from 1 up (1.740818)."""
    return Style(digits, "sheet", exact_short=True, fixed_from_one=True, tex=tex)


class DeriveNotation(Notation):
    """The step documents' notation, with derive's numbers (six digits, exact values short)."""

    def __init__(self, kind: Kind, digits: int = 6) -> None:
        super().__init__(kind, digits=digits)
        self.result = self.given = self.precise = derive_style(digits, self.tex)
        self.unicode = derive_style(digits, tex=False)  # the Mermaid chart's labels


def short_sum(definition: str) -> str:
    """A sum of many names as its first terms, … and the last: u₁ + u₂ + u₃ + … + u₁₀."""
    return _short(definition, definition, "…")


def short_sum_tex(node: NodeRow) -> str:
    """`short_sum` of a node's definition, in TeX."""
    return _short(node.definition, node.definition_tex, r"\dots")


def _short(definition: str, written: str, dots: str) -> str:
    """``written`` (``definition`` in some form) cut to a short sum where ``definition`` is a
    sum of many names."""
    parts = definition.split(" + ")
    if len(parts) <= MAX_TERMS or any(" " in p for p in parts):
        return written
    terms = written.split(" + ")
    return " + ".join([*terms[:3], dots, terms[-1]])


def _bare(name: str) -> bool:
    return re.fullmatch(r"[\w‖']+", name) is not None


def var(name: str) -> str:
    """A node's name as a TeX variable, bracketed when it is itself an expression: (-x)."""
    tex = tidy(name_tex(name))
    return tex if _bare(name) else f"({tex})"


def partial(of: str, wrt: str, frac: bool = True) -> str:
    if frac:
        return rf"\frac{{\partial {var(of)}}}{{\partial {var(wrt)}}}"
    return rf"\partial {var(of)}/\partial {var(wrt)}"


def _factor(symbolic: str, tex: str) -> str:
    """A partial (``tex``, written ``symbolic`` in Unicode) as a factor of a product: bracketed
    unless it is a name, a number or a power."""
    return (
        tex if re.fullmatch(r"[\w.‖]+(\^[\w.]+)?", symbolic) or _enclosed(symbolic) else f"({tex})"
    )


def _enclosed(text: str) -> bool:
    """True for "[x > 0]" or "(1 − y₁)": one bracketed group, nothing outside it."""
    if text[:1] not in "([" or text[-1:] not in ")]":
        return False
    depth = 0
    for i, c in enumerate(text):
        depth += (c in "([") - (c in ")]")
        if depth == 0 and i < len(text) - 1:
            return False
    return True


def _with_input(formula: str, name: str) -> str:
    """A registry formula, written in z, in the graph's input name instead (x, or a for a
    vector)."""
    return re.sub(r"(?<![A-Za-z])z(?![A-Za-z])", name, formula)


def _split(equation: str) -> tuple[str, str] | None:
    lhs, sep, rhs = equation.partition(" = ")
    return (lhs.strip(), rhs.strip()) if sep else None


# ---- the document --------------------------------------------------------------------------------


def _eq(lhs: str, *rhs: str) -> Eq:
    """lhs = rhs₁ = rhs₂ …, a step that repeats the one before it left out."""
    chain: list[str] = []
    for expr in rhs:
        if expr and (not chain or expr.replace(BREAK, "") != chain[-1].replace(BREAK, "")):
            chain.append(expr)
    return Eq(lhs, tuple(("=", e) for e in chain))


class _Builder:
    def __init__(self, trace: DeriveTrace, kind: Kind, digits: int) -> None:
        self.t = trace
        self.nt = DeriveNotation(kind, digits)
        self.plain = Style(digits)  # numbers inside the notes' sentences, as the table has them
        self.point = trace.points[0]
        self.graph = self.point.graph
        self.out_name = self.graph.outputs[0]
        self.latex = kind == "latex"
        self.ellipsis = r"\dots{}" if self.latex else "…"
        self.missing = "---" if self.latex else "—"
        self.blocks: list[Block] = []

    # -- small pieces ----------------------------------------------------------------------------
    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    def m(self, expr: str) -> str:
        return self.nt.math(expr)

    def n(self, value: float | None) -> str:
        return self.nt.num(value) if value is not None else r"\text{n/a}"

    def code(self, text: str) -> str:
        """A name or formula as typed, in code face; in LaTeX it may break after an operator."""
        if not self.latex:
            return self.nt.name(text)
        return r"\texttt{" + re.sub(r"([-+*/,])", r"\1\\allowbreak{}", latex_escape(text)) + "}"

    def cell(self, value: float | None) -> str:
        return self.missing if value is None else self.m(self.n(value))

    def eqs(self, items: Sequence[Eq], what: str) -> None:
        """Up to MAX_LINES equations, then how many more there are."""
        shown = list(items[:MAX_LINES])
        if shown:
            self.add(Eqs(tuple(shown)))
        self.more(len(items) - len(shown), what)

    def more(self, hidden: int, what: str, left: str = "not written out") -> None:
        if hidden > 0:
            self.add(
                Para(
                    f"{self.ellipsis} {plural(hidden, 'more ' + what)} {left} "
                    f"({self.nt.name('--format json')} lists them all)."
                )
            )

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]], what: str) -> None:
        shown = rows[:MAX_LINES]
        note = ""
        if len(rows) > len(shown):
            note = (
                f"{self.ellipsis} {plural(len(rows) - len(shown), 'more ' + what)} "
                f"({self.nt.name('--format json')} lists them all)."
            )
        self.add(Table(tuple(header), tuple(tuple(r) for r in shown), note))

    def vec(self, values: Sequence[float]) -> str:
        """A vector, its entries capped at MAX_MATRIX and at what fits on a line."""
        shown = _fitting([tex_width(self.n(v)) for v in values[:MAX_MATRIX]], WIDTH - 8)
        return self.nt.vec(values, limit=shown if shown < len(values) else 0)

    def where(self, point: PointTrace) -> str:
        """The point as math: x = 0.3, or a = (1, 2, 3)."""
        if self.t.elementwise:
            return f"{var(self.graph.inputs[0])} = {self.n(point.at[0])}"
        return f"a = {self.vec(point.at)}"

    def input_name(self) -> str:
        first = self.graph.inputs[0]
        return first if self.t.elementwise else first.rstrip("₀₁₂₃₄₅₆₇₈₉")

    # -- the whole document ----------------------------------------------------------------------
    def build(self) -> list[Block]:
        self.title()
        self.function()
        self.variables()
        self.diagram()
        self.edges()
        self.sweep()
        for i, path_set in enumerate(self.graph.paths):
            self.paths(path_set, first=i == 0)
        if self.t.elementwise:
            self.three_ways_scalar()
        elif self.t.kind == "vector_activation":
            self.three_ways_jacobian()
        else:
            self.three_ways_gradient()
        self.kinks()
        if self.t.several:
            self.every_point()
        self.notes()
        return self.blocks

    def title(self) -> None:
        t = self.t
        what = {"vector_activation": "Jacobian", "loss": "gradient"}.get(t.kind, "derivative")
        if t.several:
            at = f"{len(t.points)} points"
        elif t.target is not None:
            at = f"{self.m(self.where(self.point))}, {self.m('y = ' + self.vec(t.target))}"
        else:
            at = self.m(self.where(self.point))
        name = self.code(t.name)
        if t.kind == "expression" and len(t.name) > MAX_TITLE_NAME:
            name = "a formula"
        self.add(Heading(1, f"The {what} of {name} at {at}"))
        self.add(
            Para(
                "Worked through the computational graph, as by hand: the function and its "
                "closed-form derivative, the decomposition into intermediate variables, the local "
                "partial derivative on every edge, the reverse sweep from the output back to the "
                "input, and the result checked three ways."
            )
        )

    def function(self) -> None:
        t, nt = self.t, self.nt
        self.add(Heading(2, "The function"))
        lhs = "f(x)"
        if t.kind == "expression":
            text = (
                f"The formula {self.code(t.name)}, in {self.m('x')}. It has no closed-form "
                "derivative here: the graph's derivative is checked against a finite difference."
            )
            self.add(Para(r"{\raggedright " + text + r"\par}" if self.latex else text))
        else:
            assert t.record is not None  # a registry entry owns its written forms
            formula = _with_input(t.record.formula.tex, self.input_name())
            items = []
            for text in [
                formula,
                *_with_input(t.record.derivative.tex, self.input_name()).split(";"),
            ]:
                parts = _split(text.strip())
                if parts:
                    items.append(_eq(*parts))
            split = _split(formula)
            lhs = split[0] if split else lhs
            self.add(Para("The function and, for the check, its derivative in closed form:"))
            self.add(Eqs(tuple(items)))
        if t.params:
            given = ", ".join(f"{nt.name(k)} = {self.m(self.n(v))}" for k, v in t.params.items())
            self.add(Para(f"Parameters: {given}."))
        point = self.point
        items = []
        if t.elementwise:
            items.append(_eq(var(self.graph.inputs[0]), self.n(point.at[0])))
            if not t.several:
                items.append(_eq(lhs, self.n(point.value[0])))
        else:
            items.append(_eq("a", self.vec(point.at)))
            if t.target is not None:
                items.append(_eq("y", self.vec(t.target)))
                items.append(_eq("C", self.n(point.value[0])))
            else:
                assert isinstance(t.record, VectorActivation)
                items.append(_eq(t.record.output, self.vec(point.value)))
        lead = "The point and the value there:" if not t.several else "The first point:"
        if t.target is not None:
            lead = f"The output {self.m('a')}, the target {self.m('y')} and the loss there:"
        self.add(Para(lead))
        self.add(Eqs(tuple(items)))
        if t.several:
            others = ", ".join(self.n(p.at[0]) for p in t.points[1 : MAX_MATRIX + 1])
            extra = ", …" if len(t.points) > MAX_MATRIX + 1 else ""
            self.add(
                Para(
                    f"Its graph is worked in full below; the other points "
                    f"({self.m(others + extra)}) go the same way and are summarised at the end."
                )
            )

    def variables(self) -> None:
        self.add(Heading(2, "Intermediate variables"))
        self.add(
            Para(
                "Each node of the graph applies one primitive to nodes before it. In evaluation "
                "order, each with its definition and its value at "
                f"{self.m(self.where(self.point))}:"
            )
        )
        items = []
        for node in self.graph.nodes:
            if node.kind == "const" and node.name == node.definition:
                continue  # a bare number: read inside the definitions
            if node.kind == "operation":
                items.append(_eq(var(node.name), short_sum_tex(node), self.n(node.value)))
            else:
                items.append(_eq(var(node.name), self.n(node.value)))
        self.eqs(items, "node")

    def diagram(self) -> None:
        if self.latex:
            self.add(
                Para(
                    "(The Markdown form of this document draws the graph as a Mermaid flowchart, "
                    f"and {self.nt.name('--format dot')} draws it with Graphviz.)"
                )
            )
            return
        out = self.out_name
        several = len(self.graph.outputs) > 1
        self.add(Heading(3, "The computational graph"))
        adjoint = f"the adjoint ∂{out}/∂node" + (
            f" (of the first output, {out})" if several else ""
        )
        self.add(
            Para(
                self.nt.text(
                    f"Each box holds a node's definition, its value and {adjoint}; each edge its "
                    "local partial derivative."
                )
            )
        )
        self.add(Mermaid(mermaid(self.graph, self.nt.unicode)))
        self.more(len(self.graph.edges) - MAX_DIAGRAM_EDGES, "edge", "not drawn")

    def edges(self) -> None:
        self.add(Heading(2, "Local partial derivatives"))
        self.add(
            Para(
                "On each edge, the partial derivative of the node it enters with respect to the "
                "node it leaves, symbolically and at the point (edges from constants left out):"
            )
        )
        items = [
            _eq(partial(e.dst, e.src), e.symbolic_tex, self.n(e.local)) for e in self.graph.edges
        ]
        self.eqs(items, "edge")

    def sweep(self) -> None:
        graph, out = self.graph, self.out_name
        names = [self.m(var(x)) for x in graph.inputs]
        inputs = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
        if len(names) > 3:
            inputs = "the inputs"
        self.add(Heading(2, "Reverse sweep"))
        self.add(
            Para(
                f"Start from {self.m(partial(out, out, frac=False) + ' = 1')} at the output. "
                "Going back, each node's adjoint is the sum, over the nodes that use it, of their "
                "adjoint times the local partial on the edge between; from "
                f"{self.m(var(out))} back to {inputs}:"
            )
        )
        self.eqs([self.sweep_eq(row) for row in graph.sweeps[0]], "node")
        if len(graph.outputs) > 1:
            self.sweep_table()

    def sweep_eq(self, row: SweepRow) -> Eq:
        out, nt = self.out_name, self.nt
        lhs = partial(out, row.node)
        if not row.terms:
            return _eq(lhs, "1")
        terms = row.terms[:MAX_TERMS]
        hidden = len(row.terms) - len(terms)
        chain, locals_, numbers = [], [], []
        for term in terms:
            if term.consumer == out:
                local = (
                    term.symbolic_tex
                    if len(terms) == 1
                    else _factor(term.symbolic, term.symbolic_tex)
                )
                chain.append(local)
                locals_.append(local)
                numbers.append(nt.num(term.local) if len(terms) == 1 else nt.par(term.local))
            else:
                upstream = partial(out, term.consumer)
                chain.append(upstream + partial(term.consumer, row.node))
                locals_.append(upstream + r" \cdot " + _factor(term.symbolic, term.symbolic_tex))
                numbers.append(nt.prod((term.consumer_adjoint, False), (term.local, False)))
        return _eq(
            lhs,
            nt.total(chain, hidden),
            nt.total(locals_, hidden),
            nt.total(numbers, hidden),
            self.n(row.adjoint),
        )

    def sweep_table(self) -> None:
        graph = self.graph
        nodes = [node for node in reversed(graph.nodes) if node.kind != "const"]
        widths = [
            max(tex_width(self.n(node.adjoints[i])) for node in nodes[:MAX_LINES])
            for i in range(min(len(graph.outputs), MAX_SWEEP_COLUMNS))
        ]
        shown = graph.outputs[: _fitting(widths, WIDTH)]
        first = self.m(var(graph.outputs[0]))
        rest = len(graph.outputs) - len(shown)
        self.add(
            Para(
                f"That is the sweep from {first}. Each output has a sweep of its own; the adjoints "
                "of every node in each"
                + (f" (the first {len(shown)} outputs of {len(graph.outputs)})" if rest else "")
                + ":"
            )
        )
        header = ["node", *(self.m(rf"\partial {var(o)}/\partial\cdot") for o in shown)]
        rows = [
            [self.m(var(node.name)), *(self.cell(a) for a in node.adjoints[: len(shown)])]
            for node in nodes
        ]
        self.table(header, rows, "node")

    def paths(self, ps: PathSet, first: bool) -> None:
        nt = self.nt
        if first:
            self.add(Heading(2, "The chain rule as a sum over paths"))
        src, dst = self.m(var(ps.src)), self.m(var(ps.dst))
        if ps.count == 0:
            self.add(
                Para(
                    f"No path leads from {src} to {dst}, so "
                    f"{self.m(partial(ps.dst, ps.src, frac=False) + ' = 0')}."
                )
            )
            return
        d = self.m(partial(ps.dst, ps.src, frac=False))
        if ps.count == 1:
            text = (
                f"From {src} to {dst} there is 1 path; {d} is the product of the partials on its "
                "edges:"
            )
        else:
            text = (
                f"From {src} to {dst} there are {ps.count} paths. Each contributes the product of "
                f"the partials on its edges, and {d} is their sum:"
            )
        self.add(Para(text))
        items = []
        for path in ps.paths[:MAX_PATHS]:
            # Written from the output back, as the chain rule reads: ∂y/∂w · ∂w/∂u · ∂u/∂x.
            steps = list(zip(path.nodes[1:], path.nodes[:-1], strict=True))[::-1]
            chain = [partial(dst, src) for dst, src in steps]
            if len(chain) > MAX_PATH_NODES:
                chain = [*chain[:2], r"\cdots", *chain[-2:]]
            symbolic = (BREAK + r" \cdot ").join(
                _factor(s, tex)
                for s, tex in zip(path.symbolic[::-1], path.symbolic_tex[::-1], strict=True)
            )
            numbers = (BREAK + nt.times).join(nt.par(v) for v in path.locals[::-1])
            lhs = "".join(chain) or partial(ps.dst, ps.src)
            items.append(_eq(lhs, symbolic or "1", numbers, self.n(path.product)))
        self.add(Eqs(tuple(items)))
        listed = min(len(ps.paths), MAX_PATHS)
        if ps.count > listed:
            self.add(
                Para(
                    f"{self.ellipsis} {plural(ps.count - listed, 'more path')} not listed; the "
                    "sum below is the sweep's adjoint, which counts them all."
                )
            )
        products = [nt.par(p.product) if i else nt.num(p.product) for i, p in enumerate(ps.paths)]
        shown = products[:MAX_TERMS]
        self.add(
            Eqs(
                (
                    _eq(
                        partial(ps.dst, ps.src),
                        nt.total(shown, ps.count - len(shown)),
                        self.n(ps.total),
                    ),
                )
            )
        )

    # -- the result three ways -------------------------------------------------------------------
    def numeric(self, point: PointTrace, i: int, j: int) -> tuple[str, str]:
        """(the method, the value) of the finite difference for entry [i][j]."""
        numeric = point.numeric
        # The step of a difference quotient, a setting of the method: three digits always.
        h = Style(3)(numeric.steps[j])
        step = self.m(
            "h = " + (Style(3, "sheet", trim=True, tex=True)(float(h)) if "e" in h else h)
        )
        central = numeric.central[i][j]
        if central is not None:
            return f"central difference ({step})", self.cell(central)
        left, right = numeric.left[i][j], numeric.right[i][j]
        return (
            f"one-sided differences ({step})",
            f"{self.cell(left)} (left), {self.cell(right)} (right)",
        )

    def three_ways_scalar(self) -> None:
        point, out = self.point, self.out_name
        x = self.graph.inputs[0]
        self.add(Heading(2, "The derivative three ways"))
        d = self.m(partial(out, x, frac=False))
        closed = point.closed_jacobian
        rows = [
            [f"{d} from the graph (the reverse sweep)", self.cell(point.graph_jacobian[0][0])],
            [
                f"{d} from the closed form",
                self.cell(closed[0][0]) if closed else "none (a formula)",
            ],
            list(self.numeric(point, 0, 0)),
        ]
        rows[2][0] = f"{d} by {rows[2][0]}"
        closed_params = point.param_closed or {}
        for key, value in point.param_graph.items():
            dp = self.m(partial(out, key, frac=False))
            rows.append([f"{dp} from the graph", self.cell(value)])
            rows.append([f"{dp} from the closed form", self.cell(closed_params.get(key))])
            rows.append([f"{dp} by central difference", self.cell(point.numeric.params.get(key))])
        self.add(Table(("route", "value"), tuple(tuple(r) for r in rows)))
        self.agreement(point)

    def three_ways_jacobian(self) -> None:
        point, graph, t = self.point, self.graph, self.t
        assert isinstance(t.record, VectorActivation)
        s = t.record.output
        n = len(point.at)
        self.add(Heading(2, "The Jacobian three ways"))
        entry = self.m(rf"J_{{ij}} = \partial {s}_i/\partial a_j")
        self.add(
            Para(
                f"Row {self.m('i')} holds the adjoints of the inputs in the sweep from output "
                f"{self.m(s + '_i')}, so the graph gives the Jacobian {entry}:"
            )
        )
        rows = point.graph_jacobian
        widths = [max(tex_width(self.n(r[j])) for r in rows[:MAX_MATRIX]) for j in range(n)]
        shown = _fitting(widths[:MAX_MATRIX], WIDTH)
        limit = 0 if shown == n else shown
        self.add(Eqs((_eq("J", self.nt.matrix(rows, limit=limit)),)))
        closed = self.m(_with_input(t.record.derivative.tex, self.input_name()))
        self.add(Para(f"The closed form is {closed}."))
        closed_j, central = point.closed_jacobian, point.numeric.central
        if n <= 4:
            entries = [
                [
                    self.m(partial(o, x, frac=False)),
                    self.cell(point.graph_jacobian[i][j]),
                    self.cell(closed_j[i][j] if closed_j else None),
                    self.cell(central[i][j]),
                ]
                for i, o in enumerate(graph.outputs)
                for j, x in enumerate(graph.inputs)
            ]
            self.table(("entry", "graph", "closed form", "central difference"), entries, "entry")
        else:
            gap_closed = self.cell(largest_gap(point.graph_jacobian, closed_j))
            gap_numeric = self.cell(largest_gap(point.graph_jacobian, central))
            self.add(
                Para(
                    f"The largest difference between the graph and the closed form is "
                    f"{gap_closed}, between the graph and central differences {gap_numeric}."
                )
            )
        self.agreement(point)

    def three_ways_gradient(self) -> None:
        point, t, out = self.point, self.t, self.out_name
        assert t.target is not None
        self.add(Heading(2, "The gradient three ways"))
        gradient = self.m(rf"\partial {var(out)}/\partial a_j")
        self.add(
            Para(f"The adjoints of the inputs at the end of the sweep are the gradient {gradient}:")
        )
        graph_row = point.graph_jacobian[0]
        self.add(Eqs((_eq(r"\nabla_{a} " + var(out), self.vec(graph_row)),)))
        closed = point.closed_jacobian
        rows = [
            [
                str(j + 1),
                self.cell(a),
                self.cell(t.target[j]),
                self.cell(graph_row[j]),
                self.cell(closed[0][j] if closed else None),
                self.numeric(point, 0, j)[1],
            ]
            for j, a in enumerate(point.at)
        ]
        header = ["j", self.m("a_j"), self.m("y_j"), "graph", "closed form", "finite difference"]
        if max(_width(row) for row in rows[:MAX_LINES]) > WIDTH + 12:
            # Too wide for a page: a and y are in the vectors above already.
            header, rows = [header[0], *header[3:]], [[r[0], *r[3:]] for r in rows]
        self.table(header, rows, "component")
        self.agreement(point)

    def agreement(self, point: PointTrace) -> None:
        agreement, rel = point.agreement, self.t.tolerance[0]
        usable = not point.graph.non_finite
        routes = ["the graph"] if usable else []
        if agreement.closed_form is not None or (not usable and point.closed_jacobian):
            routes.append("the closed form")
        if agreement.numeric is not None:
            routes.append("the finite differences")
        tolerance = Style(1, "sheet", trim=True, tex=True)
        within = (
            f"within {self.m(tolerance(rel))} relative, give or take what rounding moves a route"
        )
        if len(routes) < 2:
            text = "There is no second route to compare with here (see the notes)."
        elif agreement.ok and agreement.numeric is False:
            text = (
                f"The graph and the closed form agree, {within}; the finite difference "
                "disagrees with both and is outvoted (see the notes)."
            )
        elif agreement.ok:
            listed = ", ".join(routes[:-1])
            text = f"{listed[0].upper()}{listed[1:]} and {routes[-1]} agree, {within}."
            if not usable:
                text += " The graph left float64, so the closed form stands in for it."
        else:
            failed = []
            if agreement.closed_form is False:
                failed.append("the graph and the closed form disagree")
            if agreement.numeric is False:
                failed.append("the finite differences disagree")
            if agreement.trusted is False:
                failed.append("no route resolves the derivative (see the notes)")
            text = f"**Check failed**: {' and '.join(failed)} ({within})."
            if self.latex:
                text = text.replace("**Check failed**", r"\textbf{Check failed}")
        self.add(Para(text))

    # -- kinks, several points, notes ------------------------------------------------------------
    def kinks(self) -> None:
        kinks = self.point.kinks
        if not kinks:
            return
        self.add(Heading(2, "Kinks" if len(kinks) > 1 else "Kink"))
        nt = self.nt
        for k in kinks:
            state = "differentiable" if k.differentiable else "not differentiable"
            d = self.m(partial(self.out_name, k.input, frac=False))
            self.add(
                Para(
                    f"At {nt.text(k.where)} the function is {state}: {d} from each side, as "
                    "stated by the function's record and as one-sided finite differences give it:"
                )
            )
            rows = [
                ("from the left", self.cell(k.left), self.cell(k.numeric_left)),
                ("from the right", self.cell(k.right), self.cell(k.numeric_right)),
            ]
            self.add(Table(("", "stated", "one-sided difference"), tuple(rows)))
            self.add(Para(self.convention(k)))

    def convention(self, k: KinkTrace) -> str:
        convention = self.nt.text(k.convention)
        return f"Reported there: {self.cell(k.reported)}, by convention ({convention})."

    def every_point(self) -> None:
        t, out, x = self.t, self.out_name, self.graph.inputs[0]
        self.add(Heading(2, "Every point"))
        params = list(self.point.param_graph)
        header = [
            self.m(var(x)),
            self.m(var(out)),
            "graph",
            "closed form",
            "finite difference",
            *(self.m(partial(out, key, frac=False)) for key in params),
            "agree",
        ]
        rows = []
        for point in t.points[:MAX_POINTS]:
            closed = point.closed_jacobian
            rows.append(
                [
                    self.cell(point.at[0]),
                    self.cell(point.value[0]),
                    self.cell(point.graph_jacobian[0][0]),
                    self.cell(closed[0][0]) if closed else self.missing,
                    self.numeric(point, 0, 0)[1],
                    *(self.cell(point.param_graph[key]) for key in params),
                    "yes" if point.agreement.ok else "NO",
                ]
            )
        self.add(
            Para(
                f"The value of {self.m(var(out))} and its derivative "
                f"{self.m(partial(out, x, frac=False))} at each point:"
            )
        )
        note = ""
        if len(t.points) > MAX_POINTS:
            note = (
                f"{self.ellipsis} {plural(len(t.points) - MAX_POINTS, 'more point')} "
                f"({self.nt.name('--format json')} lists them all)."
            )
        self.add(Table(tuple(header), tuple(tuple(r) for r in rows), note))

    def notes(self) -> None:
        if not self.t.notes:
            return
        self.add(Heading(2, "Notes"))
        items = [self.nt.text(write(note, self.plain)) for note in self.t.notes]
        if self.latex:
            body = "\n".join(r"\item " + item for item in items)
            self.add(Para("\\begin{itemize}\n" + body + "\n\\end{itemize}"))
        else:
            self.add(Para("\n".join("- " + item for item in items)))


def _width(row: Sequence[str]) -> float:
    """Roughly how many digits wide a table row prints."""
    return sum(tex_width(cell.replace("$", "")) + 3 for cell in row)


def _fitting(widths: Sequence[float], budget: float) -> int:
    """How many columns, of these widths in digits, fit side by side in ``budget`` (one at
    least)."""
    used = 0.0
    for k, width in enumerate(widths):
        used += width + 3  # the column's separation
        if used > budget:
            return max(k, 1)
    return len(widths)


# ---- Mermaid -------------------------------------------------------------------------------------

# Characters a Mermaid label must not hold literally, as Mermaid's own #code; entities.
_MERMAID = str.maketrans({c: f"#{ord(c)};" for c in '#"<>|&`'})


def _label(*lines: str) -> str:
    return '"' + "<br/>".join(line.translate(_MERMAID) for line in lines) + '"'


def _unicode_var(name: str) -> str:
    return name if _bare(name) else f"({name})"


def mermaid(graph: GraphTrace, number: Style) -> str:
    """The graph as a flowchart: nodes labelled with definition, value and adjoint (of the first
    output), edges with their local partial."""
    out = graph.outputs[0]
    ids: dict[str, str] = {}
    lines = ["flowchart LR"]
    for node in graph.nodes:
        if node.kind == "const":
            continue
        ids[node.name] = f"n{len(ids)}"
        head = node.name if node.kind == "input" else f"{node.name} = {short_sum(node.definition)}"
        label = _label(
            head,
            f"= {number(node.value)}",
            f"∂{_unicode_var(out)}/∂{_unicode_var(node.name)} = {number(node.adjoint)}",
        )
        shape = "([{}])" if node.kind == "input" else "[{}]"
        lines.append(f"  {ids[node.name]}{shape.format(label)}")
    for e in graph.edges[:MAX_DIAGRAM_EDGES]:
        value = number(e.local)
        text = f"∂{_unicode_var(e.dst)}/∂{_unicode_var(e.src)} = {e.symbolic}"
        if e.symbolic != value:
            text += f" = {value}"
        lines.append(f"  {ids[e.src]} -->|{_label(text)}| {ids[e.dst]}")
    return "\n".join(lines)


def build(trace: DeriveTrace, kind: Kind, digits: int = 6) -> list[Block]:
    """The worked derivation as blocks in ``kind``'s notation ("markdown" or "latex")."""
    return _Builder(trace, kind, digits).build()
