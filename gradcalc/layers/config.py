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
from gradcalc.limits import MAX_ACTIVATIONS, MAX_PARAMETERS
from gradcalc.yamldoc import Doc, type_name


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
    # With a sequence input: where the loss is taken, at every step or the last (None: not a
    # sequence input).
    loss_at: str | None = None

    @property
    def sliced(self) -> bool:
        """Whether the loss reads the last step of a sequence output alone."""
        return self.loss_at == "last" and len(self.layers[-1].out_shape) == 2

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
    t = c.training(doc, data)
    raw_layers = c.layer_list(doc, data["layers"], "each a mapping with its type and keys")
    kind_of = [_kind(doc, raw, ("layers", i), REGISTRY) for i, raw in enumerate(raw_layers)]
    rank = kind_of[0].rank
    seq = any(key in data for key in c.SEQUENCE_KEYS)
    if "tokens" in data:
        from gradcalc.layers.embedding import tokens

        x, batch = tokens(doc, data, kind_of[0].name)
    elif kind_of[0].name == "embedding":
        raise doc.error(
            ("layers", 0),
            "an embedding layer takes token ids, given as 'tokens:'",
            "e.g. tokens: [2, 0, 2], or (N, T) for a batch",
        )
    elif seq:
        x, batch = _sequences(doc, data)
    else:
        x, batch = _examples(doc, data, "input", "inputs", rank)
    loss = t.loss
    y_key, y_raw = "", None
    if not seq:
        y_key = c.target_key(doc, data, loss.name, batch)
        y_raw = tensor(doc, data[y_key], (y_key,), f"'{y_key}'")

    layers: list[Layer] = []
    shape: Shape = tuple(x.shape[1:])
    last = len(raw_layers) - 1
    held = x[0].size
    positions = seq  # whether one example is (T, d), one vector per step
    parameters = 0
    for i, (raw, kind) in enumerate(zip(raw_layers, kind_of, strict=True)):
        path: KeyPath = ("layers", i)
        # Said letter by letter, lstm and rnn take "an" as the vowels do.
        article = "an" if kind.name[0] in "aeiou" or kind.name in ("lstm", "rnn") else "a"
        what = f"{article} {kind.name} layer"
        c._check_keys(doc, raw, path, ("type", *kind.keys, "residual"), what)
        outputs = None
        if i == last:
            outputs = _width(data, loss.name) if y_raw is None else _last_axis(y_raw, batch)
        if positions and kind.name == "dense" and len(shape) == 2:
            layer = _per_position(kind, doc, raw, path, shape, i, outputs)
        else:
            layer = kind.parse(doc, raw, path, shape, i, outputs)
        if "residual" in raw:
            layer = _residual(doc, raw["residual"], (*path, "residual"), layer)
        positions = (
            positions
            and len(layer.out_shape) == 2
            and (bool(layer.options.get("positions")) or kind.keeps_positions)
        )
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
        if kind.check_batch is not None:
            problem = kind.check_batch(layer, x.shape[0])
            if problem is not None:
                raise doc.error((*path, *problem[0]), problem[1])
        layers.append(layer)

    if "tokens" in data:
        from gradcalc.layers.embedding import check_ids

        check_ids(doc, x, batch, layers[0])
    loss_at = None
    if seq:
        y, y_key, loss_at = _sequence_targets(doc, data, loss.name, batch, x.shape[0], shape)
    else:
        assert y_raw is not None
        y = _given(doc, data, y_key, y_raw, batch, x.shape[0], shape)
    if loss.name != "upstream" and len(shape) != 1 and not layers[-1].activation.elementwise:
        raise doc.error(("loss",), "a vector activation needs a vector output")
    c.check_target(doc, loss, y, y_key)
    return c.make_spec(LayeredSpec, doc, t, x, y, batch, layers, loss_at=loss_at)


def check_work(spec: LayeredSpec, steps: int) -> None:
    """Refuse, before the first step, a run too long to finish in minutes, as the dense
    networks' check (gradcalc/step/config.py) does: steps × (examples + 8) × (each layer's
    multiply-adds for one example + 500 per layer)."""
    from gradcalc.step.config import refuse_work

    per_example = sum(_operations(layer) for layer in spec.layers)
    refuse_work(
        spec.source,
        steps,
        spec.x.shape[0],
        per_example,
        "multiply-adds per example",
        len(spec.layers),
        "channels",
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


def _width(data: dict[str, Any], loss: str) -> int | None:
    """The width of a sequence network's output, from its targets or given ∂C/∂a as written:
    what a last dense layer initialized without units: draws."""
    for key in ("upstream",) if loss == "upstream" else ("target", "targets"):
        value = data.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return 1
        if isinstance(value, list) and value:
            inner = value[0] if key == "targets" else value
            while isinstance(inner, list) and inner and isinstance(inner[0], list):
                inner = inner[0]
            return len(inner) if isinstance(inner, list) else 1
    return None


def _last_axis(y: np.ndarray, batch: bool) -> int | None:
    """The width of the output that targets (or ∂C/∂a) y stand for, when it is a vector: what a
    last dense layer initialized without units: draws (as the dense networks' y.shape[1])."""
    if y.ndim == batch:
        return 1  # single outputs written flat
    return y.shape[-1] if y.ndim == 1 + batch else None


def _per_position(
    kind: Any,
    doc: Doc,
    raw: dict[str, Any],
    path: KeyPath,
    shape: Shape,
    index: int,
    outputs: int | None,
) -> Layer:
    """A layer taking a vector, given a sequence (T, d): the same layer at every step, on the
    last axis (as nn.Linear)."""
    import dataclasses

    inner = kind.parse(doc, raw, path, (shape[-1],), index, outputs)
    return dataclasses.replace(
        inner,
        in_shape=shape,
        out_shape=(shape[0], *inner.out_shape),
        options={**inner.options, "positions": True},
    )


def _sequences(doc: Doc, data: dict[str, Any]) -> tuple[np.ndarray, bool]:
    """`sequence:` (T, input) or `sequences:` (N, T, input), as (N, T, input); a list of
    numbers is a sequence of single values."""
    for key in ("input", "inputs"):
        if key in data:
            raise doc.error(
                (key,), f"give either '{key}' or a sequence ('sequence:'/'sequences:'), not both"
            )
    if "sequence" in data and "sequences" in data:
        raise doc.error(
            ("sequences",),
            "give either 'sequence' (one example) or 'sequences' (a batch), not both",
        )
    batch = "sequences" in data
    key = "sequences" if batch else "sequence"
    raw = data[key]
    if batch and isinstance(raw, list):
        lengths = [len(v) if isinstance(v, list) else None for v in raw]
        for i, length in enumerate(lengths):
            if length is not None and lengths[0] is not None and length != lengths[0]:
                raise doc.error(
                    (key, i),
                    f"a sequence of {length} step{'s' if length != 1 else ''}, but "
                    f"sequences[0] has {lengths[0]}: the "
                    "sequences of a batch must have one length",
                    "pad the shorter ones, or run them as separate configs",
                )
    array = tensor(doc, raw, (key,), f"'{key}'")
    want = 3 if batch else 2
    if array.ndim == want - 1:
        array = array[..., None]
    if array.ndim != want:
        layout = "(N, T, input)" if batch else "(T, input)"
        raise doc.error(
            (key,),
            f"'{key}' is {layout}, but has shape {show(array.shape)}",
            ("use 'sequences'" if array.ndim == 3 else "use 'sequence'")
            if array.ndim == (3 if not batch else 2)
            else None,
        )
    if array.size > MAX_ACTIVATIONS:
        raise doc.error((key,), f"more than {MAX_ACTIVATIONS:,} numbers")
    return (array if batch else array[None]), batch


LOSS_AT = ("every", "last")


def _sequence_targets(
    doc: Doc, data: dict[str, Any], loss: str, batch: bool, n: int, shape: Shape
) -> tuple[np.ndarray, str, str]:
    """The targets of a sequence input, (examples, *what each is compared with), their key,
    and where the loss is taken: per step `targets:` (T, out) with loss_at: every, one
    `target:` (out,) for the last step with loss_at: last (a batch: `targets:` with N first)."""
    from gradcalc.step import config as c

    given = data.get("loss_at")
    if given is not None and given not in LOSS_AT:
        raise doc.error(
            ("loss_at",),
            "expected 'every' or 'last', got "
            + (repr(given) if isinstance(given, str) else type_name(given)),
            did_you_mean(str(given), LOSS_AT),
        )
    sequence_out = len(shape) == 2
    if not sequence_out and given == "every":
        raise doc.error(
            ("loss_at",),
            f"the network's output is one vector ({show(shape)}), not a sequence: nothing to "
            "take at every step",
            "set 'return: sequence' on the recurrent layer, or use 'loss_at: last'",
        )
    if c.upstream_given(doc, data, loss):
        key = "upstream"
    else:
        if batch and "target" in data:
            raise doc.error(
                ("target",),
                "'sequences' goes with 'targets' (per example: (T, out) per step or (out,) for "
                "the last step)",
                "rename 'target'",
            )
        if "target" in data and "targets" in data:
            raise doc.error(
                ("targets",),
                "give either 'targets' (one per step) or 'target' (the last step's), not both",
            )
        if "target" not in data and "targets" not in data:
            raise doc.error((), "missing key 'targets' (one per step) or 'target' (the last step)")
        key = "targets" if "targets" in data else "target"
    array = tensor(doc, data[key], (key,), f"'{key}'")
    every = (n, *shape) if batch else shape
    last = ((n, shape[-1]) if batch else (shape[-1],)) if sequence_out else every
    if given is not None:
        at = given
    elif not sequence_out:
        at = "last"
    elif batch or key == "upstream":
        at = "last" if array.ndim == len(last) and array.ndim != len(every) else "every"
    else:
        at = "every" if key == "targets" else "last"
    want = every if at == "every" else last
    if given is None and key == "target" and sequence_out and array.shape == every != want:
        source = "tokens" if "tokens" in data else "sequence"
        raise doc.error(
            (key,),
            f"'{source}' with an output of shape {show(shape)} goes with 'targets' (one per "
            f"step); 'target:' is the last step's {show(last)}",
            "rename 'target'",
        )
    if want and want[-1] == 1 and array.shape == want[:-1]:
        array = array[..., None]  # single outputs may be written flat
    if array.shape != want:
        steps = f"T = {shape[0]} steps" if sequence_out else ""
        if not sequence_out:
            what = f"the network's output, the last step's, is {show(want)}"
        elif at == "every":
            what = f"with loss_at: every the output is {show(want)} ({steps} of {shape[-1]})"
        else:
            what = f"with loss_at: last the last step's output is {show(want)}"
        hint = None
        if sequence_out and not batch and key != "upstream":
            hint = (
                f"'targets:' holds one per step {show(every)}, 'target:' the last step's "
                f"{show(last)}"
            )
        elif sequence_out:
            hint = f"one per step is {show(every)}, the last step's {show(last)}"
        raise doc.error((key,), f"shape {show(array.shape)}, but {what}", hint)
    if not batch and key != "upstream" and sequence_out:
        expected = "targets" if at == "every" else "target"
        if key != expected:
            raise doc.error(
                (key,),
                f"with loss_at: {at}, "
                + ("one target per step is" if at == "every" else "the last step takes one")
                + f" '{expected}'",
                f"rename '{key}'",
            )
    return (array if batch else array[None]), key, at


def _examples(
    doc: Doc, data: dict[str, Any], one: str, many: str, rank: int | None
) -> tuple[np.ndarray, bool]:
    from gradcalc.step.config import example_key

    key, batch = example_key(doc, data, one, many)
    want = None if rank is None else rank + batch
    array = tensor(doc, data[key], (key,), f"'{key}'")
    where: KeyPath = (key, "file") if isinstance(data[key], dict) else (key,)
    if rank in (1, None) and array.ndim == batch:
        # As a dense network's: one number is a one-value example, and a batch of them may be
        # written flat.
        array = array[..., None]
    if want is not None and array.ndim != want:
        layout = {1: "(n)", 2: "(C, L)", 3: "(C, H, W)"}.get(rank or 0, "")
        what = f"one example {layout}" if not batch else f"a batch (N, {layout[1:-1]})"
        raise doc.error(
            where,
            f"the first layer takes {what}: {want} axes, but '{key}' has shape {show(array.shape)}",
            f"use '{one if batch else many}'"
            if array.ndim == want + (-1 if batch else 1)
            else None,
        )
    if not batch:
        array = array[None]
    elif array.ndim < 2:
        raise doc.error(
            where, f"'{key}' needs one entry per example, got shape {show(array.shape)}"
        )
    if array.size > MAX_ACTIVATIONS:
        raise doc.error(where, f"more than {MAX_ACTIVATIONS:,} numbers")
    return array, batch


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
    key: str,
    array: np.ndarray,
    batch: bool,
    n: int,
    shape: Shape,
) -> np.ndarray:
    """The targets, or with loss: upstream the given ∂C/∂a, read from `key`, as (examples,
    *output shape)."""
    want = (n, *shape) if batch else shape
    if len(shape) == 1 and shape[0] == 1 and array.shape == want[:-1]:
        array = array[..., None]  # single outputs may be written flat (one of them as a number)
    if array.shape != want:
        raise doc.error(
            (key, "file") if isinstance(data[key], dict) else (key,),
            f"shape {show(array.shape)}, but the last layer's output is {show(want)}"
            + (" per batch" if batch else ""),
            f"give one value per output{' per example' if batch else ''}",
        )
    return array if batch else array[None]
