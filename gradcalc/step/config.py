"""YAML -> a validated, typed network specification.

The YAML is composed into nodes with a safe loader and converted here, node by node, so that every
value keeps its line and every refusal can name the key path, the line and a likely fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from gradcalc.errors import ConfigError, KeyPath, did_you_mean
from gradcalc.functions.activations import REGISTRY as ACTIVATIONS
from gradcalc.functions.losses import REGISTRY as LOSSES
from gradcalc.functions.optimizers import REGISTRY as OPTIMIZERS
from gradcalc.functions.registry import Activation, Loss, Param, UpdateRule
from gradcalc.records import record
from gradcalc.yamldoc import (
    Doc,
    Numbers,
    number,
    number_hint,
    parse_yaml,
    read_text,
    type_name,
    whole,
)

if TYPE_CHECKING:
    from gradcalc.functions.initializers import Initializer
    from gradcalc.layers.config import LayeredSpec
import itertools

from gradcalc.limits import (
    MAX_ACTIVATIONS,
    MAX_DEPTH,
    MAX_LAYERS,
    MAX_PARAMETERS,
    MAX_STEPS,
    MAX_WORK,
)

TOP_KEYS = (
    "input",
    "inputs",
    "target",
    "targets",
    "loss",
    "learning_rate",
    "steps",
    "reduction",
    "layers",
    "optimizer",
    "weight_decay",
    "upstream",
    "sequence",
    "sequences",
    "loss_at",
    "tokens",
)
LAYER_KEYS = ("type", "weights", "biases", "activation")
REDUCTIONS = ("mean", "sum")


@record
class LayerSpec:
    """One layer of a validated config: l = 2, 3, … in order."""

    weights: np.ndarray  # (n_l, n_{l-1}); row j holds w^l_jk
    biases: np.ndarray  # (n_l,)
    activation: Activation
    params: dict[str, float] = field(default_factory=dict)


@record
class NetworkSpec:
    """A validated config: what load(), from_yaml() and from_dict() return and run() takes."""

    source: str
    x: np.ndarray  # (examples, n_1): a^1 for each example
    y: np.ndarray  # (examples, n_L)
    batch: bool  # `inputs:` was given (rows stay rows in the output)
    loss: Loss
    loss_params: dict[str, float]
    learning_rate: float
    steps: int
    reduction: str
    layers: tuple[LayerSpec, ...]
    optimizer: UpdateRule = field(default_factory=lambda: OPTIMIZERS["sgd"])
    optimizer_params: dict[str, float] = field(default_factory=dict)
    weight_decay: float = 0.0  # λ of the L2 penalty (λ/2) Σ w² added to the cost
    # The array files the config reads, with the key path naming each: no output may replace
    # one of them.
    files: tuple[tuple[KeyPath, Path], ...] = ()

    @property
    def sizes(self) -> list[int]:
        return [self.x.shape[1]] + [layer.weights.shape[0] for layer in self.layers]


# ---- validation ------------------------------------------------------------------------------


def _vector(doc: Doc, value: Any, path: KeyPath, what: str) -> np.ndarray:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.array([number(doc, value, path)])
    if not isinstance(value, list):
        raise doc.error(path, f"expected {what}: a list of numbers, got {type_name(value)}")
    if not value:
        raise doc.error(path, f"expected {what}: a list of numbers, got an empty list")
    if type(value) is Numbers:
        array = np.array(value, dtype=float)
        if np.isfinite(array).all():
            return array
    return np.array([number(doc, v, (*path, i)) for i, v in enumerate(value)], dtype=float)


def _matrix(doc: Doc, value: Any, path: KeyPath, what: str) -> np.ndarray:
    if not isinstance(value, list) or not value:
        got = "an empty list" if value == [] else type_name(value)
        raise doc.error(path, f"expected {what}: a list of rows (lists of numbers), got {got}")
    rows = []
    for i, row in enumerate(value):
        if not isinstance(row, list):
            raise doc.error(
                (*path, i),
                f"expected a row (a list of numbers), got {type_name(row)}",
                "write each row in brackets, e.g. [[0.2, 0.3]]",
            )
        rows.append(_vector(doc, row, (*path, i), "a row"))
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise doc.error(
                (*path, i), f"ragged matrix: row {i} has {len(row)} numbers, row 0 has {width}"
            )
    return np.array(rows, dtype=float)


def _check_keys(
    doc: Doc, mapping: dict[str, Any], path: KeyPath, allowed: tuple[str, ...], what: str
) -> None:
    for key in mapping:
        if key not in allowed:
            raise doc.error((*path, key), f"unknown key in {what}", did_you_mean(key, allowed))


def _named(
    doc: Doc, value: Any, path: KeyPath, table: dict[str, Any], kind: str
) -> tuple[Any, dict[str, float]]:
    """A registry name, or a mapping {name: ..., param: value}: the record and its parameters."""
    given: dict[str, Any] = {}
    name_path = path
    article = "an" if kind[0] in "aeiou" else "a"
    if isinstance(value, dict):
        if "name" not in value:
            raise doc.error(
                path,
                f"{article} {kind} given as a mapping needs a 'name' key",
                f"e.g. {{name: {next(iter(table))}}}",
            )
        given = {k: v for k, v in value.items() if k != "name"}
        name_path = (*path, "name")
        value = value["name"]
    if not isinstance(value, str):
        raise doc.error(name_path, f"expected a {kind} name, got {type_name(value)}")
    if value not in table:
        raise doc.error(name_path, f"unknown {kind} '{value}'", did_you_mean(value, table))
    record = table[value]
    params = resolve_params(doc, record.params, given, path, f"{kind} '{record.name}'")
    return record, params


def resolve_params(
    doc: Doc, declared: tuple[Param, ...], given: dict[str, Any], path: KeyPath, owner: str
) -> dict[str, float]:
    by_name = {p.name: p for p in declared}
    params = {p.name: p.default for p in declared}
    for key, raw in given.items():
        if key not in by_name:
            if not by_name:
                raise doc.error((*path, key), f"{owner} takes no parameters")
            raise doc.error(
                (*path, key), f"unknown parameter of {owner}", did_you_mean(key, by_name)
            )
        value = number(doc, raw, (*path, key))
        problem = by_name[key].problem(value)
        if problem:
            raise doc.error((*path, key), problem)
        params[key] = value
    return params


def _examples(doc: Doc, data: dict[str, Any], one: str, many: str) -> tuple[np.ndarray, bool]:
    key, batch = example_key(doc, data, one, many)
    return _rows(doc, data[key], key, batch, many if not batch else one), batch


def _rows(doc: Doc, value: Any, key: str, batch: bool, other: str | None) -> np.ndarray:
    """One example (a vector) or a batch (a matrix, one row per example) given as `key`, as
    (examples, values); `other`: the key of the other kind, which a hint may suggest."""
    if not batch:
        if isinstance(value, dict):
            array = _from_file(doc, value, (key,))
            if array.ndim == 0:
                array = array[None]  # one value, as a number written in the config
            if array.ndim != 1:
                raise doc.error(
                    (key, "file"),
                    f"'{key}' is one example (a 1-D array); the file holds shape "
                    f"{list(array.shape)}",
                    f"use '{other}' for a batch" if other else None,
                )
            return array[None, :]
        return _vector(doc, value, (key,), "one example")[None, :]
    if isinstance(value, dict):
        array = _from_file(doc, value, (key,))
        if array.ndim == 1:
            array = array[:, None]  # one value per example
        if array.ndim != 2:
            raise doc.error(
                (key, "file"),
                f"'{key}' needs one row per example (a 2-D array); the file holds shape "
                f"{list(array.shape)}",
            )
        if array.size > MAX_ACTIVATIONS:
            raise doc.error((key, "file"), f"more than {MAX_ACTIVATIONS:,} numbers")
        return array
    if isinstance(value, list) and value and not isinstance(value[0], list):
        # A batch of single-unit examples may be written flat: [0.1, 0.5, 0.9].
        return _matrix(doc, [[v] for v in value], (key,), f"'{key}'")
    return _matrix(doc, value, (key,), f"'{key}', one row per example")


def _loss(doc: Doc, value: Any) -> tuple[Loss, dict[str, float]]:
    """A loss of the registry, or `upstream` (the given ∂C/∂a)."""
    if value == "upstream":
        from gradcalc.functions.losses import UPSTREAM

        return UPSTREAM, {}
    return _named(doc, value, ("loss",), LOSSES, "loss")


SEQUENCE_KEYS = ("sequence", "sequences", "tokens")


def _layered(data: dict[str, Any]) -> bool:
    """Whether the network has a layer other than dense (gradcalc.layers runs it)."""
    if any(key in data for key in SEQUENCE_KEYS):
        return True
    layers = data.get("layers")
    return isinstance(layers, list) and (
        any(
            isinstance(raw, dict) and (raw.get("type", "dense") != "dense" or "residual" in raw)
            for raw in layers
        )
    )


# ---- the network-level keys: read here for dense and layered networks alike ----------------


@record
class Training:
    """The keys of a config that belong to no one layer: the cost and how a step is taken."""

    loss: Loss
    loss_params: dict[str, float]
    learning_rate: float
    steps: int
    reduction: str
    optimizer: UpdateRule
    optimizer_params: dict[str, float]
    weight_decay: float


def training(doc: Doc, data: dict[str, Any]) -> Training:
    """The required keys, then loss, learning_rate, steps, reduction, optimizer and
    weight_decay; and `loss_at`, which only a sequence input takes."""
    for key in ("loss", "learning_rate", "layers"):
        if key not in data:
            raise doc.error((), f"missing key '{key}'")
    if "loss_at" in data and not any(key in data for key in SEQUENCE_KEYS):
        raise doc.error(
            ("loss_at",),
            "'loss_at' is for a sequence input ('sequence:', 'sequences:' or 'tokens:')",
        )
    loss, loss_params = _loss(doc, data["loss"])

    learning_rate = number(doc, data["learning_rate"], ("learning_rate",))
    if learning_rate <= 0:
        raise doc.error(("learning_rate",), f"must be > 0, got {learning_rate:g}")

    steps = data.get("steps", 1)
    if isinstance(steps, float) and steps.is_integer():
        steps = int(steps)  # 2E1 is a whole number however it is written
    if isinstance(steps, bool) or not isinstance(steps, int):
        hint = number_hint(steps) if isinstance(steps, str) else None
        raise doc.error(
            ("steps",), f"expected a whole number of steps, got {type_name(steps)}", hint
        )
    if steps < 0 or steps > MAX_STEPS:
        raise doc.error(("steps",), f"must be between 0 and {MAX_STEPS:,}, got {steps}")

    reduction = data.get("reduction", "sum" if loss.name == "upstream" else "mean")
    if reduction not in REDUCTIONS:
        raise doc.error(
            ("reduction",),
            f"expected 'mean' or 'sum', got {type_name(reduction)}",
            did_you_mean(str(reduction), REDUCTIONS),
        )

    optimizer, optimizer_params = _named(
        doc, data.get("optimizer", "sgd"), ("optimizer",), OPTIMIZERS, "optimizer"
    )
    weight_decay = number(doc, data.get("weight_decay", 0.0), ("weight_decay",))
    if weight_decay < 0:
        raise doc.error(("weight_decay",), f"must be ≥ 0, got {weight_decay:g}")
    return Training(
        loss,
        loss_params,
        learning_rate,
        steps,
        reduction,
        optimizer,
        optimizer_params,
        weight_decay,
    )


Spec = TypeVar("Spec")


def make_spec(
    kind: Callable[..., Spec],
    doc: Doc,
    t: Training,
    x: np.ndarray,
    y: np.ndarray,
    batch: bool,
    layers: Sequence[Any],
    **more: Any,
) -> Spec:
    """A NetworkSpec or a LayeredSpec: the examples and the layers, with the settings every
    network takes from `training` and the files the config read; `more`: what only one kind
    has (a sequence's loss_at)."""
    settings = {f.name: getattr(t, f.name) for f in fields(t)}
    return kind(
        source=doc.source,
        x=x,
        y=y,
        batch=batch,
        layers=tuple(layers),
        files=tuple(doc.files),
        **settings,
        **more,
    )


def layer_list(doc: Doc, raw: Any, what: str, hint: str | None = None) -> list[Any]:
    """`layers:` as a non-empty list within the depth limit; `what`: what each layer holds."""
    if not isinstance(raw, list) or not raw:
        got = "an empty list" if raw == [] else type_name(raw)
        raise doc.error(("layers",), f"expected a list of layers ({what}), got {got}", hint)
    _check_depth(doc, ("layers",), len(raw))
    return raw


def example_key(doc: Doc, data: dict[str, Any], one: str, many: str) -> tuple[str, bool]:
    """Which of `one` (one example) and `many` (a batch) the config gives, and whether it is
    the batch."""
    if one in data and many in data:
        raise doc.error(
            (many,), f"give either '{one}' (one example) or '{many}' (a batch), not both"
        )
    if one not in data and many not in data:
        raise doc.error((), f"missing key '{one}' (or '{many}' for a batch)")
    return (many, True) if many in data else (one, False)


def upstream_given(doc: Doc, data: dict[str, Any], loss: str) -> bool:
    """Whether the config gives ∂C/∂a as 'upstream' (loss: upstream) rather than targets; a
    key of the other kind is refused."""
    if loss == "upstream":
        for key in ("target", "targets"):
            if key in data:
                raise doc.error(
                    (key,), "'loss: upstream' takes the given gradient as 'upstream', not a target"
                )
        if "upstream" not in data:
            raise doc.error((), "missing key 'upstream' (∂C/∂a of the last layer's output)")
        return True
    if "upstream" in data:
        raise doc.error(("upstream",), "'upstream' is the given ∂C/∂a of 'loss: upstream'")
    return False


def target_key(doc: Doc, data: dict[str, Any], loss: str, batch: bool) -> str:
    """The key that holds y: 'upstream' with loss: upstream, else 'target' after 'input' and
    'targets' after 'inputs' (not for a sequence input, whose targets follow other rules)."""
    if upstream_given(doc, data, loss):
        return "upstream"
    key, other = ("targets", "target") if batch else ("target", "targets")
    if key in data and other in data:
        raise doc.error(
            ("targets",), "give either 'target' (one example) or 'targets' (a batch), not both"
        )
    if other in data:
        raise doc.error(
            (other,), f"'{'inputs' if batch else 'input'}' goes with '{key}'", f"rename '{other}'"
        )
    if key not in data:
        raise doc.error((), f"missing key '{key}'")
    return key


def check_target(doc: Doc, loss: Loss, y: np.ndarray, key: str) -> None:
    """The loss's own condition on its targets (hinge's ±1, cross-entropy's y ≥ 0, …)."""
    if loss.check_target is not None:
        problem = loss.check_target(y.reshape(y.shape[0], -1))
        if problem:
            raise doc.error((key,), f"loss '{loss.name}': {problem}")


def build_spec(doc: Doc) -> NetworkSpec | LayeredSpec:
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error(
            (),
            f"the top level must be a mapping of keys (input, target, loss, ...), "
            f"got {type_name(data)}",
        )
    _check_keys(doc, data, (), TOP_KEYS, "the config")

    if _layered(data):
        from gradcalc.layers.config import build

        return build(doc)
    t = training(doc, data)
    x, batch = _examples(doc, data, "input", "inputs")
    y_key = target_key(doc, data, t.loss.name, batch)
    y = _rows(doc, data[y_key], y_key, batch, None if y_key == "upstream" else "targets")
    if x.shape[0] != y.shape[0]:
        raise doc.error(
            (y_key,),
            f"{y.shape[0]} target rows for {x.shape[0]} input rows",
            "give one target row per example",
        )

    raw_layers = data["layers"]
    if isinstance(raw_layers, dict):
        layers = _shorthand(doc, raw_layers, x.shape[1])
    else:
        layers = _layer_list(doc, raw_layers, x.shape[1], y.shape[1])
    width = layers[-1].weights.shape[0]
    weights = sum(layer.weights.size for layer in layers)
    if weights > MAX_PARAMETERS:
        raise doc.error(
            ("layers",), f"{weights:,} weights; gradcalc takes at most {MAX_PARAMETERS:,}"
        )
    held = x.shape[0] * (x.shape[1] + sum(layer.weights.shape[0] for layer in layers))
    if held > MAX_ACTIVATIONS:
        raise doc.error(
            ("inputs",),
            f"{x.shape[0]:,} examples × the network's units is {held:,} numbers per pass; "
            f"at most {MAX_ACTIVATIONS:,}",
            "use fewer examples",
        )
    if y.shape[1] != width:
        raise doc.error(
            (y_key,), f"{y.shape[1]} target values but the output layer has {width} units"
        )
    check_target(doc, t.loss, y, y_key)
    return make_spec(NetworkSpec, doc, t, x, y, batch, layers)


DENSE_KEYS = ("weights", "biases", "activation")


def dense_arrays(
    doc: Doc,
    raw: dict[str, Any],
    path: KeyPath,
    width: int,
    outputs: int | None,
    number: int,
    flat: bool = False,
) -> tuple[np.ndarray, np.ndarray, Activation, dict[str, float]]:
    """w^l, b^l and the activation of one dense layer taking `width` values; `outputs`: the
    width of the network's output when this is its last layer (what an initializer without
    units: draws), `number`: l (the initializers' stream). `flat`: the layer follows a flatten
    (the message says the layer before gives `width` values)."""
    for key in DENSE_KEYS:
        if key not in raw:
            raise doc.error(path, f"missing key '{key}'")
    w_raw, b_raw = raw["weights"], raw["biases"]
    w_path, b_path = (*path, "weights"), (*path, "biases")
    weights = biases = None
    if not _is_init(w_raw):
        weights = _weights(doc, w_raw, w_path)
    if not _is_init(b_raw):
        biases = _biases(doc, b_raw, b_path)
    if weights is None:
        units = _units(doc, w_raw, w_path)
        if units is None and biases is not None:
            units = biases.shape[0]
        if units is None:
            units = outputs
        if units is None:
            raise doc.error(
                w_path,
                "initialized weights need the layer's width",
                "add units: N, e.g. {init: he_normal, seed: 0, units: 64}",
            )
        weights = _initialized(doc, w_raw, w_path, (units, width), number, 0)
    if weights.shape[1] != width:
        from gradcalc.layers.shapes import feeding

        before = feeding(path[-1])  # type: ignore[arg-type]
        has = f"gives {width} values" if flat else f"has {width} units"
        raise doc.error(
            w_path,
            f"rows have {weights.shape[1]} weights but {before} {has}",
            f"each row needs {width} numbers",
        )
    if biases is None:
        biases = _initialized(doc, b_raw, b_path, (weights.shape[0],), number, 1, width)
    if biases.shape[0] != weights.shape[0]:
        raise doc.error(
            b_path,
            f"{biases.shape[0]} biases for {weights.shape[0]} rows of weights",
            "give one bias per unit, i.e. per weight row",
        )
    activation, params = _named(
        doc, raw["activation"], (*path, "activation"), ACTIVATIONS, "activation"
    )
    return weights, biases, activation, params


def _layer_list(doc: Doc, raw_layers: Any, width: int, outputs: int) -> list[LayerSpec]:
    layer_list(
        doc,
        raw_layers,
        "each with weights, biases and activation",
        "or the shorthand {sizes: [...], activation: ..., init: ...}",
    )
    layers = []
    last = len(raw_layers) - 1
    for i, raw in enumerate(raw_layers):
        path: KeyPath = ("layers", i)
        if not isinstance(raw, dict):
            raise doc.error(
                path,
                f"expected a mapping with weights, biases and activation, got {type_name(raw)}",
            )
        _check_keys(doc, raw, path, LAYER_KEYS, "a layer")
        weights, biases, activation, params = dense_arrays(
            doc, raw, path, width, outputs if i == last else None, i + 2
        )
        layers.append(LayerSpec(weights, biases, activation, params))
        width = weights.shape[0]
    return layers


SHORTHAND_KEYS = ("sizes", "activation", "output", "init", "seed", "bias_init")


def _shorthand(doc: Doc, raw: dict[str, Any], inputs: int) -> list[LayerSpec]:
    """layers: {sizes: [784, 128, 10], activation: sigmoid, output: softmax, init: he_normal,
    seed: 0, bias_init: zeros}: every layer drawn from one seed."""
    path: KeyPath = ("layers",)
    _check_keys(doc, raw, path, SHORTHAND_KEYS, "the layers shorthand")
    for key in ("sizes", "activation", "init"):
        if key not in raw:
            raise doc.error(path, f"missing key '{key}' in the layers shorthand")
    sizes = raw["sizes"]
    if not isinstance(sizes, list) or len(sizes) < 2:
        raise doc.error(
            (*path, "sizes"),
            f"expected the layer widths, input first (e.g. [784, 128, 10]), got {type_name(sizes)}",
        )
    sizes = [whole(doc, n, (*path, "sizes", k), 1) for k, n in enumerate(sizes)]
    if sizes[0] != inputs:
        raise doc.error(
            (*path, "sizes", 0),
            f"the input has {inputs} values but sizes starts with {sizes[0]}",
            "sizes includes the input width first",
        )
    _check_depth(doc, (*path, "sizes"), len(sizes) - 1)
    _check_parameters(doc, path, sizes)
    hidden = _named(doc, raw["activation"], (*path, "activation"), ACTIVATIONS, "activation")
    output = hidden
    if "output" in raw:
        output = _named(doc, raw["output"], (*path, "output"), ACTIVATIONS, "activation")
    seed = _seed(doc, raw.get("seed", 0), (*path, "seed"))
    w_init = _init_record(doc, raw["init"], (*path, "init"))
    b_init = _init_record(doc, raw.get("bias_init", "zeros"), (*path, "bias_init"))
    layers = []
    for l, (n_in, n_out) in enumerate(itertools.pairwise(sizes), 2):
        activation, params = output if l == len(sizes) else hidden
        weights = _draw(w_init, seed, l, 0, (n_out, n_in), n_in, n_out)
        biases = _draw(b_init, seed, l, 1, (n_out,), n_in, n_out)
        layers.append(LayerSpec(weights, biases, activation, dict(params)))
    return layers


def _check_depth(doc: Doc, path: KeyPath, layers: int) -> None:
    if layers > MAX_LAYERS:
        raise doc.error(path, f"{layers:,} layers; gradcalc takes at most {MAX_LAYERS:,}")


def check_work(spec: NetworkSpec, steps: int) -> None:
    """Refuse, before the first step, a run too long to finish in minutes: its work is
    steps × (examples + 8) × (parameters + 500 per layer) (see gradcalc/limits.py)."""
    params = sum(layer.weights.size + layer.biases.size for layer in spec.layers)
    refuse_work(spec.source, steps, spec.x.shape[0], params, "parameters", len(spec.layers))


def refuse_work(
    source: str, steps: int, m: int, per_example: int, unit: str, layers: int, fewer: str = ""
) -> None:
    """The refusal of a dense or a layered network's run whose work, steps × (m + 8) ×
    (`per_example` `unit` + 500 × layers), is over MAX_WORK; `fewer`: the last thing to
    reduce (`unit` by default)."""
    work = steps * (m + 8) * (per_example + 500 * layers)
    if work > MAX_WORK:
        from gradcalc.errors import GradcalcError

        raise GradcalcError(
            f"{source}: {steps:,} steps × ({m:,} example{'s' if m != 1 else ''} + 8) × "
            f"({per_example:,} {unit} + 500 × {layers:,} layer{'s' if layers != 1 else ''}) is "
            f"about {_power(work)} operations; a run may take at most {_power(MAX_WORK)} (a few "
            f"minutes): use fewer steps, examples, layers or {fewer or unit}"
        )


def _power(value: float) -> str:
    """2.3×10¹¹."""
    exponent = math.floor(math.log10(value))
    mantissa = value / 10**exponent
    digits = str(exponent).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"{mantissa:.1f}×10{digits}".replace(".0×", "×")


def _check_parameters(doc: Doc, path: KeyPath, sizes: list[int]) -> None:
    count = sum(a * b for a, b in itertools.pairwise(sizes))
    if count > MAX_PARAMETERS:
        raise doc.error(
            path, f"{count:,} weights; gradcalc takes at most {MAX_PARAMETERS:,} in one network"
        )


def _is_init(value: Any) -> bool:
    return isinstance(value, dict) and "init" in value


def _weights(doc: Doc, value: Any, path: KeyPath) -> np.ndarray:
    if isinstance(value, dict):
        array = _from_file(doc, value, path)
        if array.ndim != 2:
            raise doc.error(
                (*path, "file"),
                f"weights need a 2-D array (n_l rows of n_(l-1)), the file holds shape "
                f"{list(array.shape)}",
            )
        return array
    return _matrix(doc, value, path, "weights")


def _biases(doc: Doc, value: Any, path: KeyPath) -> np.ndarray:
    if isinstance(value, dict):
        array = _from_file(doc, value, path)
        if array.ndim == 2 and 1 in array.shape:
            array = array.ravel()
        if array.ndim != 1:
            raise doc.error(
                (*path, "file"),
                f"biases need a 1-D array, the file holds shape {list(array.shape)}",
            )
        return array
    return _vector(doc, value, path, "biases")


FILE_KEYS = ("file", "key")
INIT_KEYS = ("init", "seed", "units")


def _from_file(doc: Doc, value: dict[str, Any], path: KeyPath) -> np.ndarray:
    from gradcalc.step.files import load_array

    if "file" not in value:
        raise doc.error(
            path,
            "a mapping here needs 'file' (an array file) or 'init' (an initializer)",
            "e.g. {file: w2.npy} or {init: he_normal, seed: 0}",
        )
    _check_keys(doc, value, path, FILE_KEYS, "a file reference")
    name = value["file"]
    if not isinstance(name, str):
        raise doc.error((*path, "file"), f"expected a file name, got {type_name(name)}")
    key = value.get("key")
    if key is not None and not isinstance(key, str):
        raise doc.error((*path, "key"), f"expected an array name, got {type_name(key)}")
    array = load_array(name, key, doc.base, path, lambda p, m, h: doc.error(p, m, h))
    doc.files.append((path, doc.base / name))
    return array


def _units(doc: Doc, value: dict[str, Any], path: KeyPath) -> int | None:
    _check_keys(doc, value, path, INIT_KEYS, "an initializer")
    units = value.get("units")
    if units is None:
        return None
    return whole(doc, units, (*path, "units"), 1)


def _initialized(
    doc: Doc,
    value: dict[str, Any],
    path: KeyPath,
    shape: tuple[int, ...],
    layer: int,
    which: int,
    fan_in: int | None = None,
) -> np.ndarray:
    _check_keys(doc, value, path, INIT_KEYS if which == 0 else ("init", "seed"), "an initializer")
    if math.prod(shape) > MAX_PARAMETERS:
        raise doc.error(path, f"{math.prod(shape):,} numbers; at most {MAX_PARAMETERS:,}")
    record = _init_record(doc, value["init"], (*path, "init"))
    seed = _seed(doc, value.get("seed", 0), (*path, "seed"))
    n_in = shape[1] if len(shape) == 2 else (fan_in or 1)
    return _draw(record, seed, layer, which, shape, n_in, shape[0])


def _draw(
    record: tuple[Initializer, tuple[float, ...]],
    seed: int,
    layer: int,
    which: int,
    shape: tuple[int, ...],
    fan_in: int,
    fan_out: int,
) -> np.ndarray:
    from gradcalc.functions.initializers import generator

    init, params = record
    return init.draw(generator(seed, layer, which), shape, fan_in, fan_out, params)


def _seed(doc: Doc, value: Any, path: KeyPath) -> int:
    return whole(doc, value, path, 0)


def _init_record(doc: Doc, value: Any, path: KeyPath) -> tuple[Initializer, tuple[float, ...]]:
    """'he_normal', {uniform: [lo, hi]} or {normal: {mean: 0, std: 0.1}}."""
    from gradcalc.functions.initializers import REGISTRY as INITIALIZERS

    given: Any = None
    name_path = path
    if isinstance(value, dict):
        if len(value) != 1:
            raise doc.error(
                path,
                "expected one initializer, e.g. {uniform: [-0.1, 0.1]} or "
                "{normal: {mean: 0, std: 0.1}}",
            )
        value, given = next(iter(value.items()))
        name_path = (*path, value)
    if not isinstance(value, str):
        raise doc.error(path, f"expected an initializer name, got {type_name(value)}")
    if value not in INITIALIZERS:
        raise doc.error(
            name_path, f"unknown initializer '{value}'", did_you_mean(value, INITIALIZERS)
        )
    record = INITIALIZERS[value]
    if not record.params:
        if given is not None:
            raise doc.error(name_path, f"initializer '{value}' takes no parameters")
        return record, ()
    example = {"uniform": "uniform: [-0.1, 0.1]", "normal": "normal: {mean: 0, std: 0.1}"}
    if given is None:
        raise doc.error(
            path,
            f"initializer '{value}' needs {' and '.join(record.params)}",
            f"e.g. {{{example.get(value, value)}}}",
        )
    if isinstance(given, list) and len(given) == len(record.params):
        numbers = tuple(number(doc, v, (*name_path, k)) for k, v in enumerate(given))
    elif isinstance(given, dict):
        _check_keys(doc, given, name_path, record.params, f"initializer '{value}'")
        for key in record.params:
            if key not in given:
                raise doc.error(name_path, f"missing key '{key}'")
        numbers = tuple(number(doc, given[k], (*name_path, k)) for k in record.params)
    else:
        raise doc.error(
            name_path,
            f"expected {' and '.join(record.params)}, got {type_name(given)}",
            f"e.g. {{{example.get(value, value)}}}",
        )
    if value == "uniform" and not numbers[0] < numbers[1]:
        raise doc.error(name_path, f"expected lo < hi, got [{numbers[0]:g}, {numbers[1]:g}]")
    if value == "normal" and numbers[1] < 0:
        raise doc.error((*name_path, "std"), f"must be ≥ 0, got {numbers[1]:g}")
    return record, numbers


def with_optimizer(spec: NetworkSpec | LayeredSpec, name: str) -> NetworkSpec | LayeredSpec:
    """The spec with another update rule (--optimizer): the file's parameters when it names the
    same rule, the rule's defaults otherwise."""
    from dataclasses import replace

    from gradcalc.errors import GradcalcError
    from gradcalc.functions.registry import defaults

    if name not in OPTIMIZERS:
        raise GradcalcError(
            f"--optimizer: unknown update rule '{name}' ({did_you_mean(name, OPTIMIZERS)})"
        )
    rule = OPTIMIZERS[name]
    if rule is spec.optimizer:
        return spec
    return replace(spec, optimizer=rule, optimizer_params=defaults(rule.params))


def load(source: str) -> NetworkSpec | LayeredSpec:
    """Read, parse and validate a config file ('-' for standard input); files it names are
    relative to its folder (the working directory for standard input)."""
    name, text = read_text(source)
    doc = parse_yaml(text, name)
    if source != "-":
        doc.base = Path(source).parent
    return build_spec(doc)


def load_text(text: str, name: str, base: Path | None = None) -> NetworkSpec | LayeredSpec:
    doc = parse_yaml(text, name)
    if base is not None:
        doc.base = base
    return build_spec(doc)


def load_data(data: Any, name: str) -> NetworkSpec | LayeredSpec:
    """Validate a config given as Python data (the Python API's from_dict): the same checks as
    a file, with key paths but no line numbers. numpy arrays and tuples count as lists."""
    return build_spec(Doc(name, _plain(data, (), name), {}))


def _plain(value: Any, path: KeyPath, source: str, depth: int = 0) -> Any:
    """Python data in the shapes the YAML loader produces, refusing what YAML cannot hold."""
    if depth > MAX_DEPTH:
        raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", source=source, path=path)
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"a key must be a name, got {key!r}", source=source, path=path)
            out[key] = _plain(item, (*path, key), source, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, (*path, i), source, depth + 1) for i, item in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ConfigError(
        f"expected numbers, names, lists and mappings, got {type(value).__name__}",
        source=source,
        path=path,
    )
