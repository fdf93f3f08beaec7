"""The record types of the activation and loss registries.

An activation or a loss is one record: its name, its parameters, a vectorized value, a closed-form
derivative, the formula text shown to the user, its decomposition into graph primitives and where
it has kinks. Nothing else in gradcalc knows a function by name; everything looks it up here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcalc.errors import did_you_mean

if TYPE_CHECKING:
    from gradcalc.graph import Graph, Node

Array = np.ndarray
Params = Mapping[str, float]
NodeParams = Mapping[str, "Node"]


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Written:
    """A piece of display math in each notation a writer needs, so no writer re-parses another's."""

    text: str  # Unicode: the terminal, tables, JSON
    tex: str  # TeX math: Markdown's $…$ and LaTeX


# A hand calculation rounds every quantity as it is produced; the identity when exact.
Rounder = Callable[[Array], Array]
OptimizerState = Mapping[str, Array]


@dataclass(frozen=True)
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
    # Decoupled weight decay (AdamW): the hyperparameter that holds λ, and the kinds of
    # parameter it shrinks by θ ← θ − η λ θ before the update ("weights"; never the biases).
    decay: str = ""
    decays: tuple[str, ...] = ()


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Activation:
    """a = f(z) for one layer. Elementwise unless `jacobian` is given (softmax)."""

    name: str
    symbol: str  # how the sheet writes it: σ, tanh, ReLU, ...
    formula: str
    derivative: str
    forward: Callable[[Array, Params], Array]
    # f'(z) elementwise, given z and a = f(z); None for a non-elementwise activation.
    prime: Callable[[Array, Array, Params], Array] | None = None
    # For non-elementwise activations: the vector-Jacobian product (z, a, ∂C/∂a) -> ∂C/∂z, row-wise.
    vjp: Callable[[Array, Array, Array, Params], Array] | None = None
    # ∂a_j/∂p elementwise for each learnable parameter p.
    param_partials: Callable[[Array, Array, Params], dict[str, Array]] | None = None
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Its computational graph: (g, x, params) -> output node for an elementwise activation,
    # (g, xs, params) -> output nodes otherwise. Parameters arrive as nodes (PReLU's a as an
    # input node, so the sweep gives ∂f/∂a too).
    graph: Callable[..., Any] | None = None
    kinks: tuple[Kink, ...] = ()
    notes: tuple[str, ...] = ()  # what a derivation of it should point out

    @property
    def elementwise(self) -> bool:
        return self.prime is not None

    def backward(self, z: Array, a: Array, grad_a: Array, params: Params) -> Array:
        """δ = ∂C/∂z from ∂C/∂a: Hadamard product with f'(z) for elementwise f (BP1, BP2)."""
        if self.prime is not None:
            return grad_a * self.prime(z, a, params)
        assert self.vjp is not None
        return self.vjp(z, a, grad_a, params)


@dataclass(frozen=True)
class Fused:
    """A loss computed straight from the output layer's z, where composing would lose precision."""

    value: Callable[[Array, Array, Params], Array]  # (z, y) -> per-example cost
    delta: Callable[[Array, Array, Params], Array]  # (z, y) -> δ^L = ∂C_x/∂z^L


@dataclass(frozen=True)
class Loss:
    """C_x(a, y) for one example; arrays are (examples, units) and the value is per example."""

    name: str
    formula: str
    derivative: str
    value: Callable[[Array, Array, Params], Array]
    grad: Callable[[Array, Array, Params], Array]  # ∂C_x/∂a
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    # What the target must satisfy, checked when the config is loaded: y -> problem or None.
    check_target: Callable[[Array], str | None] | None = None
    # What the output must satisfy for the loss to be defined: (a, y) -> problem or None.
    check_output: Callable[[Array, Array], str | None] | None = None
    fused: Mapping[str, Fused] = field(default_factory=dict)  # keyed by output activation
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Its computational graph: (g, a, y, params) -> the node of C; y_j are constant nodes.
    graph: Callable[[Graph, list[Node], list[Node], NodeParams], Node] | None = None
    kinks: tuple[Kink, ...] = ()
    notes: tuple[str, ...] = ()


def index(records: list[Any]) -> dict[str, Any]:
    """Name and alias -> record, refusing a name used twice."""
    table: dict[str, Any] = {}
    for record in records:
        for key in (record.name, *record.aliases):
            if key in table:
                raise ValueError(f"duplicate registry name {key!r}")
            table[key] = record
    return table


def lookup(table: Mapping[str, Any], name: str, kind: str) -> Any:
    try:
        return table[name]
    except KeyError:
        raise KeyError(f"unknown {kind} '{name}' ({did_you_mean(name, table)})") from None


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
