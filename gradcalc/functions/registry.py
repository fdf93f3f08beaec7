"""The record types of the activation and loss registries.

An activation or a loss is one record: its name, its parameters, a vectorized value, a closed-form
derivative, its decomposition into graph primitives, where it has kinks, and everything written
about it — formula, derivative and symbol in Unicode and TeX (`Written`), and how it is written
with numbers substituted (a loss's cost and fused δ^L, a vector activation's Jacobian product).
Nothing else in gradcalc knows a function by name; everything looks it up here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from gradcalc.records import record

if TYPE_CHECKING:
    from gradcalc.doc.blocks import Eq
    from gradcalc.doc.notation import Notation
    from gradcalc.graph import Graph, Node
    from gradcalc.step.solution import Theta, UpdateWriter

Array = np.ndarray
Params = Mapping[str, float]
NodeParams = Mapping[str, "Node"]


@record
class Param:
    name: str
    default: float
    description: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: the bound itself is not allowed
    high_open: bool = False
    learnable: bool = False  # updated by SGD like the weights (PReLU's a)
    symbol: str = ""  # how a graph names it (α, δ); the name when empty
    # How the worked solution writes it beside the network's symbols, when not as its label
    # (PReLU's learned a is α there, apart from the activations a^l_j).
    written: Written | None = None

    @property
    def label(self) -> str:
        return self.symbol or self.name

    def problem(self, value: float) -> str | None:
        """Why `value` is not allowed, or None."""
        if not math.isfinite(value):
            return f"{self.name} must be a finite number"
        low, high = self.low, self.high
        if low is not None and (value < low or (self.low_open and value == low)):
            return f"{self.name} must be {self.range_text}, got {value:g}"
        if high is not None and (value > high or (self.high_open and value == high)):
            return f"{self.name} must be {self.range_text}, got {value:g}"
        return None

    @property
    def range_text(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '≥'} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '≤'} {self.high:g}")
        return " and ".join(parts) or "any real"


@record
class Written:
    """A piece of display math in each notation a writer needs, so no writer re-parses another's."""

    text: str  # Unicode: the terminal, tables, JSON
    tex: str  # TeX math: Markdown's $…$ and LaTeX

    def split(self, sep: str) -> tuple[Written, ...]:
        """The pieces between ``sep`` in both forms: a formula's sides (" = "), its equations."""
        texts, texs = self.text.split(sep), self.tex.split(sep)
        if len(texts) != len(texs):
            raise ValueError(f"{self.text!r} and {self.tex!r} split differently at {sep!r}")
        return tuple(Written(a.strip(), b.strip()) for a, b in zip(texts, texs, strict=True))


# A hand calculation rounds every quantity as it is produced; the identity when exact.
Rounder = Callable[[Array], Array]
OptimizerState = Mapping[str, Array]


@record
class UpdateRule:
    """How the parameters move once backpropagation has given g = ∂C/∂θ (an optimizer).

    ``update(θ, g, state, hyper, η, t, r)`` returns the new θ and the new state, for one
    trainable array θ (a layer's weights, its biases, or an activation's learnable parameter).
    ``state`` names the arrays the rule keeps per parameter (zeros before the first step);
    ``t`` counts steps from 1; ``r`` rounds each quantity the way a hand calculation would.
    """

    name: str
    title: str  # "stochastic gradient descent"
    equations: tuple[Written, ...]  # the update, written once for any θ with g = ∂C/∂θ
    update: Callable[
        [Array, Array, OptimizerState, Params, float, int, Rounder], tuple[Array, dict[str, Array]]
    ]
    # How one parameter's update is written with its numbers: (writer, θ, t) -> its equations
    # (the worked solutions' blocks; see gradcalc/step/solution.py's UpdateWriter and Theta).
    written: Callable[[UpdateWriter, Theta, int], list[Eq]]
    state: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    # Quantities the update works out on the way and returns beside the state (Adam's m̂, v̂):
    # shown in the tables and worked solutions, never carried to the next step.
    derived: tuple[str, ...] = ()
    # How each state or derived array is written (velocity -> v), in both notations.
    symbols: Mapping[str, Written] = field(default_factory=dict)
    # Where the gradient is taken, when not at θ (Nesterov's look-ahead point):
    # (θ, state, hyper, η, r) -> θ̃. The step's forward and backward passes run at θ̃.
    lookahead: Callable[[Array, OptimizerState, Params, float, Rounder], Array] | None = None
    # For a rule that keeps no state: (θ, g, hyper, η) -> the new θ written over g, the same
    # numbers as `update` (the engine's lean steps own their gradients and reuse their memory).
    update_into: Callable[[Array, Array, Params, float], Array] | None = None
    # Decoupled weight decay (AdamW): the hyperparameter that holds λ, and the kinds of
    # parameter it shrinks by θ ← θ − η λ θ before the update ("weights"; never the biases).
    decay: str = ""
    decays: tuple[str, ...] = ()
    # Plain gradient descent, θ ← θ − η g with nothing kept: the worked solutions write it as
    # Nielsen's SGD line and the tables need no Update table.
    plain: bool = False
    short: str = ""  # how headings name it ("SGD"); the name when empty


@record
class Kink:
    """A point where the pieces of a piecewise function meet.

    For an activation each callable takes the parameters ``p``; for a loss, ``at`` takes the
    target component ``y_j`` and ``p`` and gives the a_j of the junction, and ``left``, ``right``
    and ``reported`` take ``y_j``, the number of units ``n`` and ``p``. ``left``/``right`` are the
    one-sided derivatives there, ``reported`` what the closed form and the graph report, and
    ``convention`` says why. Where left == right the function is differentiable and only its
    formula changes branch (huber at |r| = δ, elu with α = 1). In ``where``, "_j" stands for the
    unit's index.
    """

    where: str
    convention: str
    at: Callable[..., float]
    left: Callable[..., float]
    right: Callable[..., float]
    reported: Callable[..., float]


# How a record writes itself with its numbers substituted. The Notation (gradcalc/doc/notation.py)
# is the writer's: the same function serves the terminal's Unicode and Markdown's and LaTeX's TeX.
# (nt, a, y, shown, params) -> the stages of one example's cost, its first `shown` units written
# out; a and y are that example's output and target.
CostForm = Callable[["Notation", Array, Array, int, Params], tuple[str, ...]]
# (nt, j, a, y, a_j, y_j) -> δ^L_j from z, symbolically and with its numbers; a_j and y_j are the
# symbols of the output unit and its target.
FusedForm = Callable[["Notation", int, Array, Array, str, str], tuple[str, str]]
# (nt, l, j, a, g, shown) -> δ^l_j = (Jᵀ ∂C/∂a)_j symbolically and with its numbers, for a vector
# activation at layer l, its first `shown` units written out in sums.
VjpForm = Callable[["Notation", int, int, Array, Array, int], tuple[str, str]]


@record
class ElementwiseActivation:
    """a_j = f(z_j) for one layer: f'(z) is a vector, and BP1/BP2 take a Hadamard product."""

    name: str
    symbol: Written  # how the sheet writes it: σ, tanh, ReLU, ...
    formula: Written
    derivative: Written
    forward: Callable[[Array, Params], Array]
    prime: Callable[[Array, Array, Params], Array]  # f'(z), given z and a = f(z)
    # Its computational graph: (g, x, params) -> the output node. Parameters arrive as nodes
    # (PReLU's a as an input node, so the sweep gives ∂f/∂a too).
    graph: Callable[[Graph, Node, NodeParams], Node]
    # ∂a_j/∂p elementwise for each learnable parameter p.
    param_partials: Callable[[Array, Array, Params], dict[str, Array]] | None = None
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    kinks: tuple[Kink, ...] = ()
    notes: tuple[str, ...] = ()  # what a derivation of it should point out
    # a = z is written without the function (the identity).
    bare: bool = False

    elementwise: ClassVar[Literal[True]] = True

    def backward(self, z: Array, a: Array, grad_a: Array, params: Params) -> Array:
        """δ = ∂C/∂z from ∂C/∂a: the Hadamard product with f'(z) (BP1, BP2)."""
        return grad_a * self.prime(z, a, params)


@record
class VectorActivation:
    """a = f(z) for a whole layer (softmax): each a_j depends on every z_k, so BP1/BP2 apply the
    Jacobian through its vector-Jacobian product."""

    name: str
    symbol: Written
    formula: Written
    derivative: Written  # the Jacobian's entries ∂s_i/∂z_j
    forward: Callable[[Array, Params], Array]
    # The vector-Jacobian product (z, a, ∂C/∂a) -> ∂C/∂z, row-wise.
    vjp: Callable[[Array, Array, Array, Params], Array]
    vjp_written: VjpForm  # the same product, written with its numbers
    # Its computational graph: (g, xs, params) -> the output nodes, named output₁, output₂ …
    graph: Callable[[Graph, list[Node], NodeParams], list[Node]]
    output: str  # the name of its outputs in formulas and graphs (s for softmax)
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    elementwise: ClassVar[Literal[False]] = False
    kinks: ClassVar[tuple[Kink, ...]] = ()
    param_partials: ClassVar[None] = None  # no learnable parameters

    def backward(self, z: Array, a: Array, grad_a: Array, params: Params) -> Array:
        """δ = ∂C/∂z from ∂C/∂a: the Jacobian's transpose applied to ∂C/∂a (BP1, BP2)."""
        return self.vjp(z, a, grad_a, params)


Activation = ElementwiseActivation | VectorActivation


@record
class Fused:
    """A loss computed straight from the output layer's z, where composing would lose precision."""

    value: Callable[[Array, Array, Params], Array]  # (z, y) -> per-example cost
    delta: Callable[[Array, Array, Params], Array]  # (z, y) -> δ^L = ∂C_x/∂z^L
    written: FusedForm  # δ^L_j as the worked solution writes it
    # (a, y) -> δ^L from a = f(z^L), when delta is that function of f(z): how a hand
    # calculation works it from a written a (check). The engine takes δ^L from z, where an a
    # that rounded to 1 loses nothing.
    from_output: Callable[[Array, Array, Params], Array] | None = None
    # (z, y) -> (value, f(z)) when the two share their work: the same numbers as value and the
    # activation's forward, in one pass.
    with_output: Callable[[Array, Array, Params], tuple[Array, Array]] | None = None


@record
class Loss:
    """C_x(a, y) for one example; arrays are (examples, units) and the value is per example."""

    name: str
    formula: Written
    derivative: Written
    value: Callable[[Array, Array, Params], Array]
    grad: Callable[[Array, Array, Params], Array]  # ∂C_x/∂a
    # Its computational graph: (g, a, y, params) -> the node of C; y_j are constant nodes.
    graph: Callable[[Graph, list[Node], list[Node], NodeParams], Node]
    cost_written: CostForm  # one example's cost with its numbers
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    # What the target must satisfy, checked when the config is loaded: y -> problem or None.
    check_target: Callable[[Array], str | None] | None = None
    # What the output must satisfy for the loss to be defined: (a, y) -> problem or None.
    check_output: Callable[[Array, Array], str | None] | None = None
    fused: Mapping[str, Fused] = field(default_factory=dict)  # keyed by output activation
    # ∂C/∂a_j = scale·(a_j − y_j): (nt, n) -> the scale as written ("" for 1), so BP1 is written
    # as scale(a_j − y_j) f'(z_j) in one line; None for a derivative of another shape.
    residual_scale: Callable[[Notation, int], str] | None = None
    kinks: tuple[Kink, ...] = ()
    notes: tuple[str, ...] = ()


def index(records: list[Any]) -> dict[str, Any]:
    """Name and alias -> record, refusing a name used twice."""
    table: dict[str, Any] = {}
    for entry in records:
        for key in (entry.name, *entry.aliases):
            if key in table:
                raise ValueError(f"duplicate registry name {key!r}")
            table[key] = entry
    return table


def defaults(params: tuple[Param, ...]) -> dict[str, float]:
    return {p.name: p.default for p in params}


_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def subscript(j: int) -> str:
    """1 -> "₁": how the graphs index units, as the sheet writes u₁, a₂."""
    return str(j).translate(_SUBSCRIPTS)


def fresh(g: Graph, base: str) -> str:
    """``base``, or base2, base3 … when a graph already has it (a formula calling σ twice)."""
    name, k = base, 1
    while name in g:
        k += 1
        name = f"{base}{k}"
    return name
