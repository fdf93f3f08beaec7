"""The config of a network with layer types other than dense: a sequence of layer records, each
parsed by its own type, its input shape the output shape of the one before."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradcalc.errors import KeyPath, did_you_mean
from gradcalc.functions.registry import Loss, UpdateRule
from gradcalc.layers.record import Layer, Shape
from gradcalc.layers.shapes import show, tensor
from gradcalc.limits import MAX_ACTIVATIONS, MAX_PARAMETERS, MAX_STEPS
from gradcalc.yamldoc import Doc, number, number_hint, type_name


@dataclass(frozen=True)
class LayeredSpec:
    source: str
    x: np.ndarray  # (examples, *input shape)
    y: np.ndarray  # (examples, *output shape): the targets, or ∂C/∂a with loss: upstream
    batch: bool
    loss: Loss
    loss_params: dict[str, float]
    learning_rate: float
    steps: int
    reduction: str
    layers: tuple[Layer, ...]
    optimizer: UpdateRule
    optimizer_params: dict[str, float] = field(default_factory=dict)
    weight_decay: float = 0.0
    # The array files the config reads, with the key path naming each (as NetworkSpec.files).
    files: tuple[tuple[KeyPath, Path], ...] = ()

    @property
    def shapes(self) -> list[Shape]:
        """One example's shape at each layer, the input first."""
        return [tuple(self.x.shape[1:])] + [layer.out_shape for layer in self.layers]

    @property
    def sizes(self) -> list[int]:
        return [math.prod(s) for s in self.shapes]


def build(doc: Doc) -> LayeredSpec:
    from gradcalc.layers import REGISTRY
    from gradcalc.step import config as c

    data = doc.data
    c._check_keys(doc, data, (), c.TOP_KEYS, "the config")
    for key in ("loss", "learning_rate", "layers"):
        if key not in data:
            raise doc.error((), f"missing key '{key}'")
    raw_layers = data["layers"]
    kind_of = [_kind(doc, raw, ("layers", i), REGISTRY) for i, raw in enumerate(raw_layers)]
    rank = kind_of[0].rank
    if "tokens" in data:
        from gradcalc.layers.embedding import tokens

        x, batch = tokens(doc, data, kind_of[0].name)
    elif kind_of[0].name == "embedding":
        raise doc.error(
            ("layers", 0),
            "an embedding layer takes token ids, given as 'tokens:'",
            "e.g. tokens: [2, 0, 2], or (N, T) for a batch",
        )
    else:
        x, batch = _examples(doc, data, "input", "inputs", rank)

    loss, loss_params = c._loss(doc, data["loss"])
    learning_rate = number(doc, data["learning_rate"], ("learning_rate",))
    if learning_rate <= 0:
        raise doc.error(("learning_rate",), f"must be > 0, got {learning_rate:g}")
    steps = data.get("steps", 1)
    if isinstance(steps, float) and steps.is_integer():
        steps = int(steps)
    if isinstance(steps, bool) or not isinstance(steps, int):
        hint = number_hint(steps) if isinstance(steps, str) else None
        raise doc.error(
            ("steps",), f"expected a whole number of steps, got {type_name(steps)}", hint
        )
    if steps < 0 or steps > MAX_STEPS:
        raise doc.error(("steps",), f"must be between 0 and {MAX_STEPS:,}, got {steps}")
    reduction = data.get("reduction", "sum" if loss.name == "upstream" else "mean")
    if reduction not in c.REDUCTIONS:
        raise doc.error(
            ("reduction",),
            f"expected 'mean' or 'sum', got {type_name(reduction)}",
            did_you_mean(str(reduction), c.REDUCTIONS),
        )
    optimizer, optimizer_params = c._named(
        doc, data.get("optimizer", "sgd"), ("optimizer",), c.OPTIMIZERS, "optimizer"
    )
    weight_decay = number(doc, data.get("weight_decay", 0.0), ("weight_decay",))
    if weight_decay < 0:
        raise doc.error(("weight_decay",), f"must be ≥ 0, got {weight_decay:g}")

    c._check_depth(doc, ("layers",), len(raw_layers))
    layers: list[Layer] = []
    shape: Shape = tuple(x.shape[1:])
    last = len(raw_layers) - 1
    held = x[0].size
    parameters = 0
    for i, (raw, kind) in enumerate(zip(raw_layers, kind_of, strict=True)):
        path: KeyPath = ("layers", i)
        c._check_keys(doc, raw, path, ("type", *kind.keys, "residual"), f"a {kind.name} layer")
        outputs = None
        if i == last and loss.name != "upstream":
            outputs = _width(data)
        layer = kind.parse(doc, raw, path, shape, i, outputs)
        if "residual" in raw:
            layer = _residual(doc, raw["residual"], (*path, "residual"), layer)
        shape = layer.out_shape
        held += math.prod(shape) + _columns(layer)
        parameters += sum(v.size for v in layer.params.values())
        if parameters > MAX_PARAMETERS:
            raise doc.error(
                path, f"{parameters:,} parameters; gradcalc takes at most {MAX_PARAMETERS:,}"
            )
        if held * x.shape[0] > MAX_ACTIVATIONS:
            raise doc.error(
                path,
                f"{x.shape[0]:,} examples through layers up to this one ({kind.name}, output "
                f"shape {show(shape)}) hold about {held * x.shape[0]:,} numbers per pass; at most "
                f"{MAX_ACTIVATIONS:,}",
                "use fewer examples or smaller layers",
            )
        layers.append(layer)

    if "tokens" in data:
        from gradcalc.layers.embedding import check_ids

        check_ids(doc, x, batch, layers[0])
    key = target_key(batch, shape, "tokens" in data)
    y_key = "upstream" if loss.name == "upstream" else key
    y = _given(doc, data, loss.name, batch, x.shape[0], shape, key)
    if loss.name != "upstream" and len(shape) != 1 and not layers[-1].activation.elementwise:
        raise doc.error(("loss",), "a vector activation needs a vector output")
    if loss.check_target is not None:
        problem = loss.check_target(y.reshape(y.shape[0], -1))
        if problem:
            raise doc.error((y_key,), f"loss '{loss.name}': {problem}")
    return LayeredSpec(
        source=doc.source,
        x=x,
        y=y,
        batch=batch,
        loss=loss,
        loss_params=loss_params,
        learning_rate=learning_rate,
        steps=steps,
        reduction=reduction,
        layers=tuple(layers),
        optimizer=optimizer,
        optimizer_params=optimizer_params,
        weight_decay=weight_decay,
        files=tuple(doc.files),
    )


def check_work(spec: LayeredSpec, steps: int) -> None:
    """Refuse, before the first step, a run too long to finish in minutes, as the dense
    networks' check (gradcalc/step/config.py) does: steps × (examples + 8) × (each layer's
    multiply-adds for one example + 500 per layer)."""
    from gradcalc.errors import GradcalcError
    from gradcalc.limits import MAX_WORK
    from gradcalc.step.config import _power

    per_example = sum(_operations(layer) for layer in spec.layers)
    layers, m = len(spec.layers), spec.x.shape[0]
    work = steps * (m + 8) * (per_example + 500 * layers)
    if work > MAX_WORK:
        raise GradcalcError(
            f"{spec.source}: {steps:,} steps × ({m:,} example{'s' if m != 1 else ''} + 8) × "
            f"({per_example:,} multiply-adds per example + 500 × {layers:,} layer"
            f"{'s' if layers != 1 else ''}) is about {_power(work)} operations; a run may take at "
            f"most {_power(MAX_WORK)} (a few minutes): use fewer steps, examples, layers or "
            "channels"
        )


def _operations(layer: Layer) -> int:
    """One example's multiply-adds through a layer: its weights, or its im2col product, or a
    pass over its input."""
    params = sum(int(v.size) for v in layer.params.values())
    kernels = layer.params.get("kernels")
    product = _columns(layer) * kernels.shape[0] if kernels is not None else 0
    return max(params, product, math.prod(layer.in_shape))


def _columns(layer: Layer) -> int:
    """The numbers one example's im2col matrix holds: every window's cells, for each output
    position (what a convolution's forward pass builds, and its backward reads)."""
    kernels = layer.params.get("kernels")
    if kernels is None:
        return 0
    return math.prod(layer.out_shape[1:]) * math.prod(kernels.shape[1:])


def _kind(doc: Doc, raw: Any, path: KeyPath, registry: dict[str, Any]) -> Any:
    if not isinstance(raw, dict):
        raise doc.error(path, f"expected a mapping (a layer), got {type_name(raw)}")
    name = raw.get("type", "dense")
    if not isinstance(name, str) or name not in registry:
        raise doc.error(
            (*path, "type"),
            f"unknown layer type {name!r}" if isinstance(name, str) else "expected a layer type",
            did_you_mean(str(name), registry),
        )
    return registry[name]


def activation(doc: Doc, raw: dict[str, Any], path: KeyPath) -> tuple[Any, dict[str, float]]:
    """An elementwise activation (`activation:`, linear by default) for a layer whose output
    is not a vector of units."""
    from gradcalc.step import config as c

    record, params = c._named(
        doc, raw.get("activation", "linear"), (*path, "activation"), c.ACTIVATIONS, "activation"
    )
    if not record.elementwise:
        raise doc.error(
            (*path, "activation"),
            f"'{record.name}' acts on a vector; this layer's output takes an elementwise "
            "activation",
            "flatten, then apply it in a dense layer",
        )
    return record, params


def _width(data: dict[str, Any]) -> int | None:
    for key in ("target", "targets"):
        value = data.get(key)
        if isinstance(value, list) and value:
            inner = value[0] if key == "targets" else value
            return len(inner) if isinstance(inner, list) else 1
    return None


def _examples(
    doc: Doc, data: dict[str, Any], one: str, many: str, rank: int | None
) -> tuple[np.ndarray, bool]:
    if one in data and many in data:
        raise doc.error(
            (many,), f"give either '{one}' (one example) or '{many}' (a batch), not both"
        )
    if one not in data and many not in data:
        raise doc.error((), f"missing key '{one}' (or '{many}' for a batch)")
    batch = many in data
    key = many if batch else one
    want = None if rank is None else rank + batch
    array = tensor(doc, data[key], (key,), f"'{key}'")
    if want is not None and array.ndim != want:
        layout = {1: "(n)", 2: "(C, L)", 3: "(C, H, W)"}.get(rank or 0, "")
        what = f"one example {layout}" if not batch else f"a batch (N, {layout[1:-1]})"
        raise doc.error(
            (key,),
            f"the first layer takes {what}: {want} axes, but '{key}' has shape {show(array.shape)}",
            f"use '{one if batch else many}'"
            if array.ndim == want + (-1 if batch else 1)
            else None,
        )
    if not batch:
        array = array[None]
    elif array.ndim < 2:
        raise doc.error(
            (key,), f"'{key}' needs one entry per example, got shape {show(array.shape)}"
        )
    if array.size > MAX_ACTIVATIONS:
        raise doc.error((key,), f"more than {MAX_ACTIVATIONS:,} numbers")
    return array, batch


def target_key(batch: bool, shape: Shape, sequence: bool) -> str:
    """The key that holds the targets: `targets` for a batch; for one sequence (a 1-D
    `tokens:`), `targets` when the output has one row per position, `target` for one vector
    (a pooled output); `target` for one example otherwise."""
    if batch or (sequence and len(shape) == 2):
        return "targets"
    return "target"


def _residual(doc: Doc, value: Any, path: KeyPath, layer: Layer) -> Layer:
    """`residual: true`: the layer's output becomes x + f(z), for any layer whose output has
    its input's shape."""
    from dataclasses import replace

    if not isinstance(value, bool):
        raise doc.error(path, f"expected true or false, got {type_name(value)}")
    if value and layer.in_shape != layer.out_shape:
        raise doc.error(
            path,
            f"a residual adds the input to the output, but this {layer.kind.name} layer maps "
            f"shape {show(layer.in_shape)} to {show(layer.out_shape)}",
            "a residual needs the output shape equal to the input shape",
        )
    return replace(layer, residual=value)


def _given(
    doc: Doc,
    data: dict[str, Any],
    loss: str,
    batch: bool,
    n: int,
    shape: Shape,
    key: str | None = None,
) -> np.ndarray:
    """The targets, or with loss: upstream the given ∂C/∂a, as (examples, *output shape)."""
    if loss == "upstream":
        for key in ("target", "targets"):
            if key in data:
                raise doc.error(
                    (key,), "'loss: upstream' takes the given gradient as 'upstream', not a target"
                )
        if "upstream" not in data:
            raise doc.error((), "missing key 'upstream' (∂C/∂a of the last layer's output)")
        key = "upstream"
    else:
        if "upstream" in data:
            raise doc.error(("upstream",), "'upstream' is the given ∂C/∂a of 'loss: upstream'")
        given = "tokens" if "tokens" in data else "inputs" if batch else "input"
        key = key or ("targets" if batch else "target")
        other = "target" if key == "targets" else "targets"
        if other in data:
            raise doc.error(
                (other,),
                f"'{given}' with an output of shape {show(shape)} goes with '{key}'"
                if given == "tokens"
                else f"'{given}' goes with '{key}'",
                f"rename '{other}'",
            )
        if key not in data:
            raise doc.error((), f"missing key '{key}'")
    array = tensor(doc, data[key], (key,), f"'{key}'")
    want = (n, *shape) if batch else shape
    if batch and len(shape) == 1 and shape[0] == 1 and array.shape == (n,):
        array = array[:, None]  # a batch of single outputs may be written flat
    if array.shape != want:
        raise doc.error(
            (key,),
            f"shape {show(array.shape)}, but the last layer's output is {show(want)}"
            + (" per batch" if batch else ""),
            f"give one value per output{' per example' if batch else ''}",
        )
    return array if batch else array[None]
