"""The record every layer type is: what a network's `layers:` entry of that type means.

A network is a sequence of `Layer`s (one per config entry), each pointing at its `LayerType`.
The type owns its config keys, its forward and backward passes, how its tables and worked
solution show it, and its named mistakes; the one step every network runs (gradcalc/step/chain.py,
dense-only networks too, through the dense record's pass) only chains them and applies the
update rule to every parameter array a layer holds.

Arrays keep the batch axis first: a layer maps x of shape (N, *in_shape) to z and a of shape
(N, *out_shape). Parameters are a dict by name (dense: weights, biases; conv: kernels, biases),
so a layer with other parameters (batch norm's gamma and beta, an LSTM's four weight blocks)
needs no change here. A layer's STATE (batch norm's running mean and variance) is carried by
the engine from step to step outside the update rule: `Layer.state` holds it at the start of the
run, `LayerType.update_state` gives it after each step from that step's forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from gradcalc.errors import KeyPath
    from gradcalc.functions.registry import Activation, Written
    from gradcalc.yamldoc import Doc

Array = np.ndarray
Shape = tuple[int, ...]


@dataclass(frozen=True)
class Layer:
    """One layer as the config gave it, its shapes known."""

    kind: LayerType
    index: int  # its place in `layers:`, from 0 (the key path layers[index])
    in_shape: Shape  # one example's input
    out_shape: Shape  # one example's z and a
    params: Mapping[str, Array]  # the trainable arrays, by name, at the start of the run
    activation: Activation
    activation_params: Mapping[str, float] = field(default_factory=dict)
    # Fixed settings (stride, padding, pool size, ties): never trained.
    options: Mapping[str, Any] = field(default_factory=dict)
    # Arrays carried from step to step but never trained (running statistics), at the start.
    state: Mapping[str, Array] = field(default_factory=dict)
    # `residual: true`: a = x + f(z), the input added to the layer's output (in_shape ==
    # out_shape); ∂C/∂x gains ∂C/∂a, the residual path.
    residual: bool = False

    @property
    def number(self) -> int:
        """l in Nielsen's numbering: the input is layer 1, layers[0] is layer 2."""
        return self.index + 2


# What a forward pass keeps for its backward pass and its tables (im2col columns, the padded
# input, each max-pool window's argmax).
Cache = dict[str, Any]
# (layer, its parameters now, x) -> (z, cache): z is the layer's output before its activation.
Forward = Callable[[Layer, Mapping[str, Array], Array], tuple[Array, Cache]]
# (layer, parameters, cache, δ = ∂C_x/∂z per example, scale of the reduction, x) ->
# (∂C_x/∂x per example, {name: ∂C/∂θ of the reduced cost}).
Backward = Callable[
    [Layer, Mapping[str, Array], Cache, Array, float, Array], tuple[Array, dict[str, Array]]
]
# (doc, the raw mapping, its key path, the input shape of one example, the index, the network's
# output width when this is the last layer and the config leaves it open) -> the Layer.
Parse = Callable[["Doc", dict[str, Any], "KeyPath", Shape, int, int | None], Layer]


@dataclass(frozen=True)
class Mistake:
    """A known wrong way to compute a layer's pass: `check` names it when a wrong answer
    matches the value it gives. `values(ctx, l)` computes, from the student's given values
    (gradcalc/layers/check.py's Context), the mistaken value of each quantity it changes;
    nothing where it cannot happen (a stride of 1, no padding)."""

    name: str
    description: str  # what the student did, as docs/layers.md defines it
    values: Callable[[Any, int], dict[str, Array]] | None = None


@dataclass(frozen=True)
class Quantity:
    """A quantity a layer type adds to check's cells beside z, a, δ, ∂C/∂x and its parameters
    (batch norm's μ, σ², x̂, ∂C/∂x̂, ∂C/∂σ², ∂C/∂μ, ∂C/∂x's paths, the running statistics; a
    recurrent layer's ∂C/∂h_t, its part from t+1, an LSTM's ∂C/∂c_t).
    `compute(layer, θ, x, δ, state before the step)` gives it from the pass's values: check's
    exact value, its value carried from a student's given x and δ, and its drift bound all
    come from it."""

    name: str  # its key in an answer sheet and in the layer's JSON record
    symbol: str  # as a cell is written: "μ", "∂C/∂x̂"
    stage: str  # "forward" (after z and a), "backward" (after δ) or "state" (with the update)
    per_example: bool  # its first axis is the batch
    shape: Callable[[Layer, int], Shape]  # (layer, examples) -> its shape
    compute: Callable[[Layer, Mapping[str, Array], Array, Array, Mapping[str, Array]], Array]
    applies: Callable[[Layer], bool] = lambda layer: True  # batch norm's paths: train mode
    # Written after the cell's index: ∂C/∂h²[t,j] from t+1.
    suffix: str = ""


@dataclass(frozen=True)
class LayerType:
    name: str
    title: str  # "2-D convolution (cross-correlation)"
    equations: tuple[Written, ...]  # forward and backward, written once (gradcalc list)
    keys: tuple[str, ...]  # its config keys besides `type`
    # The rank of one example's input it takes (dense 1, conv1d 2, conv2d 3); None: any.
    rank: int | None
    parse: Parse
    forward: Forward
    backward: Backward
    # The parameters the L2 penalty and a decoupled decay (AdamW) shrink: the weights, never
    # the biases.
    decays: tuple[str, ...] = ()
    # How each parameter is written in tables and JSON (kernels -> K).
    symbols: Mapping[str, str] = field(default_factory=dict)
    mistakes: tuple[Mistake, ...] = ()
    # Arrays its tables and JSON record show beside z, a, δ and the gradients, from one step's
    # record: (label, JSON key, array, per example). A conv layer's padded input, a max-pool's
    # routing of each output to its input cell.
    extra: Callable[[Any], list[Extra]] | None = None
    # How its cells are written out with their numbers (gradcalc/layers/written.py's Sheet).
    written: WrittenCells | None = None
    # For check's drift bound: what rounding can add to ∂C/∂x by flipping a choice the layer
    # makes (a max-pool's maximum): (step record, bound of x, bound of δ) -> a bound of ∂C/∂x.
    flips: Callable[[Any, Array, Array], Array] | None = None
    # (layer, its state before the step, the step's forward cache) -> its state after the step
    # (batch norm's running statistics); None: a layer without state.
    update_state: Callable[[Layer, Mapping[str, Array], Cache], dict[str, Array]] | None = None
    # (layer, the number of examples) -> (the key under the layer's path, why the batch cannot
    # go through it) (batch norm in training with one value per channel), or None.
    check_batch: Callable[[Layer, int], tuple[tuple[str, ...], str] | None] | None = None
    # Whether forward and backward are linear in each argument (check's drift bound applies the
    # record to absolute values); False (a normalisation, a recurrent cell, attention's
    # softmax, an embedding's lookup): the bound moves
    # each number of x, δ and θ on its own.
    linear: bool = True
    # Keys its JSON layer record adds (its extras and state), which an answer sheet may hold.
    record_keys: tuple[str, ...] = ()
    # The quantities it adds to check's cells (batch norm's μ, a recurrent layer's ∂C/∂h_t).
    quantities: tuple[Quantity, ...] = ()
    # How `step --diagram` draws a layer of this type as a block (a dense layer is drawn as
    # its units): the block's title and its lines of key numbers, from the layer. None: its
    # name, and the shape change every block shows (gradcalc/step/diagram.py).
    block: Callable[[Layer], tuple[str, tuple[str, ...]]] | None = None
    # Arrays of its backward pass, as `extra`: its tables show one per example with that
    # example's δ, the others after them, and its JSON record holds them (batch norm's ∂C/∂x̂
    # and paths, a recurrent layer's ∂C/∂h_t per step). `extra` is the forward pass's.
    backward_extra: Callable[[Any], list[Extra]] | None = None
    # Sentences its tables write after its backward pass: (step record, the number formatter).
    notes: Callable[[Any, Any], list[str]] | None = None
    # Whether row t of its (T, d) output comes from row t of its input alone (layer norm over
    # the last axis, dropout): after a sequence's layers it keeps one vector per position, so a
    # dense after it still acts on each (a layer that makes positions sets
    # options["positions"], as attention and a recurrent layer returning its sequence do).
    keeps_positions: bool = False
    # How `step --diagram` draws it unrolled in time, its cell repeated over t = 1..T (a
    # recurrent layer), rather than as a block (`block` still gives its title lines): from one
    # step's record, its arrays by name, the batch first and t second: "x" (N, T, input) and
    # "h" (N, T + 1, H) from h_0; where it has them "c" (N, T + 1, H) (an LSTM's cells, from
    # c_0) and "grad_h" ∂C/∂h_t (N, T, H) after the backward pass; "cuts" the t (1-based) whose
    # h_t → h_(t+1) carries no gradient back (truncation). None: drawn as a block.
    unrolled: Callable[[Any], Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class WrittenCells:
    """A layer type's worked solution: forward(sheet, step record, example) and
    backward(sheet, step record), each a list of doc blocks."""

    forward: Callable[[Any, Any, int], list[Any]]
    backward: Callable[[Any, Any], list[Any]]


# (the label in tables, the key in JSON, the array, whether its first axis is the batch)
Extra = tuple[str, str, Any, bool]
