"""What `gradcalc derive` computed, as plain frozen records: the graph at each point (nodes,
edges, sweeps, paths), the finite differences, the kinks, the agreement of the routes, and the
notes. The views (table, JSON, DOT, the worked derivation) read these; nothing here formats."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Any

from gradcalc.doc.display import RichDisplay
from gradcalc.functions.registry import Activation, Loss
from gradcalc.records import record

if TYPE_CHECKING:
    from gradcalc.errors import GradcalcError

REL_TOL = 1e-6
# Below the smallest normal float64 a number has fewer than 53 bits: only there do the routes
# agree absolutely. Above it every comparison is relative, give or take what rounding can move
# a route (the graph's cancelling paths, the finite difference's quotient), and a route held
# back by that is named in a note.
ABS_TOL = sys.float_info.min

Row = tuple[float, ...]
Matrix = tuple[Row, ...]
OptRow = tuple[float | None, ...]
OptMatrix = tuple[OptRow, ...]


# Outputs whose sweeps (and whose adjoint on every node) are written out: softmax of 100 values
# has 100 sweeps of 200 nodes, 4 MB that the Jacobian, every output's gradient, already sums up.
JSON_SWEEPS = 10


@record
class Note:
    """Something a derivation points out, as data; `notes.write` makes it a sentence."""

    kind: str  # which sentence: a key of notes.TEMPLATES
    node: str = ""  # the function, parameter or node it is about
    values: Mapping[str, float | tuple[float, ...] | None] = field(default_factory=dict)
    words: Mapping[str, str] = field(default_factory=dict)  # a kink's place, a convention


@record
class NodeRow:
    name: str
    definition: str
    kind: str  # "input", "const" or "operation"
    value: float
    adjoints: Row  # ∂output/∂node for each output (softmax: s₁ … s_N), 0 where unused
    definition_tex: str  # the definition in TeX, as the node's primitive writes it

    @property
    def adjoint(self) -> float:
        return self.adjoints[0]


@record
class EdgeRow:
    src: str
    dst: str
    symbolic: str  # ∂dst/∂src in the names of dst's arguments
    local: float
    symbolic_tex: str  # the same in TeX


@record
class SweepTerm:
    """One consumer's share of a node's adjoint: consumer adjoint × local partial."""

    consumer: str
    consumer_adjoint: float
    symbolic: str
    local: float
    symbolic_tex: str


@record
class SweepRow:
    node: str
    adjoint: float
    terms: tuple[SweepTerm, ...]  # empty for the output itself (adjoint 1)


@record
class PathRow:
    nodes: tuple[str, ...]
    symbolic: tuple[str, ...]  # the edge partials along the path
    locals: Row
    product: float
    symbolic_tex: tuple[str, ...]


@record
class PathSet:
    """The chain rule from ``src`` to ``dst`` as a sum over paths; ``total`` is the adjoint."""

    src: str
    dst: str
    count: int
    paths: tuple[PathRow, ...]  # the first PATH_LIMIT when count is larger
    total: float

    @property
    def capped(self) -> bool:
        return len(self.paths) < self.count


@record
class GraphTrace:
    inputs: tuple[str, ...]  # differentiated inputs: x (and PReLU's a), or a₁ … a_n
    outputs: tuple[str, ...]
    nodes: tuple[NodeRow, ...]  # evaluation order
    edges: tuple[EdgeRow, ...]  # evaluation order, constant sources left out
    sweeps: tuple[tuple[SweepRow, ...], ...]  # one per output, output first
    paths: tuple[PathSet, ...]
    non_finite: tuple[str, ...]  # nodes whose value or adjoint left float64
    # Edges (src, dst) whose partial or chain product left float64's range: plain float64
    # arithmetic would have lost the paths through them; the sweep kept their exponent.
    out_of_range: tuple[tuple[str, str], ...] = ()


@record
class KinkTrace:
    index: int  # which input
    input: str
    where: str
    differentiable: bool
    left: float | None  # the stated one-sided derivatives (registry records; None for a formula)
    right: float | None
    reported: float | None  # what the closed form and the graph report there
    convention: str
    numeric_left: float | None
    numeric_right: float | None


@record
class NumericTrace:
    """Finite differences in float64, [output][input]; central is None where one-sided."""

    central: OptMatrix
    left: OptMatrix
    right: OptMatrix
    steps: Row  # per input
    params: Mapping[str, float | None] = field(default_factory=dict)
    # Per input: how far rounding alone can move its difference quotient (8·ε·|f|/h); a route
    # within that of the quotient agrees with it, whatever the relative gap.
    floors: Row = ()
    # Inputs where no step gave a stable central difference (the quotient kept changing as the
    # step shrank): the finite-difference route has no number there.
    unstable: tuple[int, ...] = ()
    # [output][input]: the same floor for each output's own quotient (softmax's s₉₈ ≈ 5e−4 next
    # to an s₁₀₀ ≈ 1 is resolved far below the column's floor); empty where one-sided.
    entry_floors: Matrix = ()

    def method(self, j: int) -> str:
        if j in self.unstable:
            return "central"
        return "central" if any(row[j] is not None for row in self.central) else "one-sided"

    def floor(self, j: int, i: int | None = None) -> float:
        """Input j's rounding floor: output i's own where known, else the column's largest."""
        if i is not None and i < len(self.entry_floors) and self.entry_floors[i][j]:
            return self.entry_floors[i][j]
        return self.floors[j] if j < len(self.floors) else 0.0


@record
class Agreement:
    """Whether the graph's derivative agrees with the closed form and finite differences."""

    closed_form: bool | None  # graph vs closed form (None: no closed form, or graph unusable)
    numeric: bool | None  # graph (closed form if the graph is unusable) vs finite differences
    # Every derivative rests on a route that resolves it (False: on none; None: not judged).
    trusted: bool | None = None
    # Where the finite difference disagrees, the graph and the closed form agree against it.
    outvoted: bool = False

    @property
    def ok(self) -> bool:
        numeric = self.numeric is not False or self.outvoted
        return self.closed_form is not False and numeric and self.trusted is not False


@record
class PointTrace:
    """One point of a derivation: its graph, the three routes to the derivative and the kinks."""

    at: Row
    value: Row  # the outputs: closed-form value (a formula's graph value)
    graph: GraphTrace
    graph_jacobian: Matrix  # [output][input] from the sweeps
    closed_jacobian: Matrix | None
    numeric: NumericTrace
    jacobian: OptMatrix  # reported: the graph's, or the closed form's where the graph overflowed
    param_graph: Mapping[str, float]
    param_closed: Mapping[str, float] | None
    kinks: tuple[KinkTrace, ...]
    agreement: Agreement
    notes: tuple[Note, ...]
    # [output][input]: Σ over the paths of |product of partials|, and how far rounding can move
    # the graph's sum of those paths (far more than REL_TOL of it where the paths cancel).
    graph_spread: Matrix = ()
    graph_rounding: Matrix = ()

    @property
    def parameter_gradients(self) -> dict[str, float | None]:
        closed = self.param_closed or {}
        return {
            k: v if math.isfinite(v) else finite_or_none(closed.get(k))
            for k, v in self.param_graph.items()
        }


@record
class DeriveTrace(RichDisplay):
    """What derive() returns and `gradcalc derive` renders: a function worked at each point."""

    name: str  # the registry name, or the formula as typed
    kind: str  # "activation", "vector_activation", "loss" or "expression"
    formula: str
    derivative_text: str | None  # the closed form's text; None for a formula
    symbol: str
    params: Mapping[str, float]
    target: Row | None
    points: tuple[PointTrace, ...]
    notes: tuple[Note, ...]
    tolerance: tuple[float, float] = (REL_TOL, ABS_TOL)
    # The registry record derived, which owns its written forms; None for a formula.
    record: Activation | Loss | None = None

    @property
    def elementwise(self) -> bool:
        return self.kind in ("activation", "expression")

    def to_dict(self) -> dict[str, Any]:
        """The `--format json` document, as Python data."""
        from gradcalc.derivation.json import document

        return document(self)

    def renderables(self) -> list[Any]:
        from gradcalc.derivation.table import renderables

        return renderables(self)

    def explain(self, *, digits: int = 6, width: int = 100) -> str:
        """The tables `gradcalc derive` prints, as plain text `width` columns wide."""
        from gradcalc.derivation.table import render
        from gradcalc.doc.display import capture

        return capture(lambda con: render(self, con, digits), width)

    def to_markdown(self, *, digits: int = 6) -> str:
        """The worked derivation as the Markdown page `--format markdown` writes."""
        return self._document("markdown", digits)

    def to_latex(self, *, digits: int = 6) -> str:
        """The worked derivation as the LaTeX document `--format latex` writes."""
        return self._document("latex", digits)

    def _document(self, fmt: str, digits: int) -> str:
        from gradcalc.derivation.solution import build
        from gradcalc.doc import DOCUMENTS, write_document

        return write_document(fmt, build(self, DOCUMENTS[fmt][1], digits), compact=True)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        """`--format html`'s page as a notebook shows it: the graph drawn, the derivation."""
        from gradcalc.derivation import picture
        from gradcalc.derivation.solution import build
        from gradcalc.doc import html, svg

        blocks: list[Any] = list(build(self, "markdown", 6))
        graph = html.Picture(
            svg.write(picture.build(self, 6), standalone=False),
            "The computational graph: each node's value and adjoint, each edge's partial.",
        )
        return html.fragment([*blocks[:1], graph, *blocks[1:]])

    @property
    def several(self) -> bool:
        return len(self.points) > 1

    # The results as Python numbers: a property for one scalar and one for a list, so that a
    # type checker knows which it holds; nan where no finite value exists (JSON writes null).

    @property
    def values(self) -> list[float]:
        """f(x) at each point of an elementwise function; a vector function's outputs; [C]."""
        if self.elementwise:
            return [p.value[0] for p in self.points]
        return list(self.points[0].value)

    @property
    def value(self) -> float:
        """f(x) at the one point (the cost C for a loss)."""
        if self.kind == "vector_activation":
            raise self._misread("value", "its value is a vector: read .values")
        return self._one("value", "values")[0].value[0]

    @property
    def derivatives(self) -> list[float]:
        """f'(x) at each point of an elementwise function (an activation or a formula)."""
        if not self.elementwise:
            raise self._misread("derivatives", "read .gradient or .jacobian")
        return [_number(p.jacobian[0][0]) for p in self.points]

    @property
    def derivative(self) -> float:
        """f'(x) at the one point of an elementwise function (an activation or a formula)."""
        if not self.elementwise:
            raise self._misread("derivative", "read .gradient or .jacobian")
        return _number(self._one("derivative", "derivatives")[0].jacobian[0][0])

    @property
    def jacobian(self) -> list[list[float]]:
        """∂f_i/∂x_j at the (first) point: one row per output."""
        return [[_number(v) for v in row] for row in self.points[0].jacobian]

    @property
    def gradient(self) -> list[float]:
        """∂C/∂a_j of a loss (the first row of the Jacobian) at the (first) point."""
        return [_number(v) for v in self.points[0].jacobian[0]]

    @property
    def parameter_gradients(self) -> dict[str, float]:
        """The derivative in each learnable parameter (PReLU's a, …) at the one point."""
        point = self._one("parameter_gradients", "parameter_gradients_per_point")[0]
        return {k: _number(v) for k, v in point.parameter_gradients.items()}

    @property
    def parameter_gradients_per_point(self) -> list[dict[str, float]]:
        return [{k: _number(v) for k, v in p.parameter_gradients.items()} for p in self.points]

    def _one(self, name: str, plural: str) -> tuple[PointTrace]:
        if self.several:
            raise self._misread(name, f"it was worked at {len(self.points)} points: read .{plural}")
        return (self.points[0],)

    def _misread(self, name: str, hint: str) -> GradcalcError:
        from gradcalc.errors import GradcalcError

        return GradcalcError(f"{self.name} ({self.kind.replace('_', ' ')}) has no .{name}: {hint}")

    @property
    def agreement(self) -> Agreement:
        def combine(values: list[bool | None]) -> bool | None:
            known = [v for v in values if v is not None]
            return all(known) if known else None

        return Agreement(
            combine([p.agreement.closed_form for p in self.points]),
            combine([p.agreement.numeric for p in self.points]),
            combine([p.agreement.trusted for p in self.points]),
            all(p.agreement.numeric is not False or p.agreement.outvoted for p in self.points)
            and any(p.agreement.outvoted for p in self.points),
        )


def _number(v: float | None) -> float:
    return math.nan if v is None else v


def finite_or_none(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None
