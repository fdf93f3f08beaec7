"""`gradcalc check` for a network of layer records: its cells, answer sheets, the value each
cell's own equation gives from the student's earlier answers (carried), the drift bound of a
hand calculation that rounds, and the named mistakes: each layer type's own, and the known
mistakes of dense networks (gradcalc/check/mistakes.py) where they can happen in these layers.

A cell of these layers is indexed from 0 as in PyTorch ([channel, row, column]; a kernel
[out, in, row, column]); in a batch the example is written apart, (x = 1) for the first.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from gradcalc.check.answers import CONTRACT_KEYS as DENSE_CONTRACT_KEYS
from gradcalc.check.answers import Answers
from gradcalc.check.cells import Key
from gradcalc.check.recompute import Form, allowance, l2_penalty, total_cost
from gradcalc.doc.notation import superscript
from gradcalc.errors import KeyPath, did_you_mean
from gradcalc.functions.training import Update
from gradcalc.layers.config import LayeredSpec
from gradcalc.layers.engine import LayeredRun, LayeredStepTrace, Network, Theta, run
from gradcalc.layers.record import Layer, Mistake, Quantity
from gradcalc.step.trace import ForwardTrace
from gradcalc.yamldoc import Doc, number, type_name

EXAMPLE_QUANTITIES = ("z", "a", "delta", "grad_input", "output")


@dataclass(frozen=True)
class LayeredShape:
    """Where the answers of a layered network go (the interface of gradcalc.check.cells.Shape)."""

    spec: LayeredSpec
    layered: ClassVar[bool] = True

    @classmethod
    def of(cls, spec: LayeredSpec) -> LayeredShape:
        return cls(spec)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(self.spec.sizes)

    @property
    def examples(self) -> int:
        return int(self.spec.x.shape[0])

    @property
    def batch(self) -> bool:
        return self.spec.batch

    @property
    def L(self) -> int:
        return len(self.spec.layers) + 1

    def layer(self, l: int) -> Layer:
        return self.spec.layers[l - 2]

    def has_a(self, l: int) -> bool:
        """Whether a^l is a quantity of its own: not for f = identity on a layer without
        parameters (pooling, flatten), whose a is its z."""
        layer = self.layer(l)
        return bool(layer.params) or not getattr(layer.activation, "bare", False) or layer.residual

    def quantities(self, l: int) -> list[str]:
        return list(self.layer(l).params)

    def added(self, l: int, stage: str | None = None) -> list[Quantity]:
        """The quantities layer l's type adds to its cells (batch norm's μ, σ², …)."""
        layer = self.layer(l)
        return [
            q
            for q in layer.kind.quantities
            if q.applies(layer) and (stage is None or q.stage == stage)
        ]

    def quantity(self, key: Key) -> Quantity | None:
        q, l = key
        if l is None:
            return None
        return next((a for a in self.added(l) if a.name == q), None)

    def per_example(self, key: Key) -> bool:
        """Whether the key's first axis is the batch."""
        if key[0] in EXAMPLE_QUANTITIES:
            return True
        added = self.quantity(key)
        return added is not None and added.per_example

    def array_shape(self, key: Key) -> tuple[int, ...]:
        q, l = key
        m = self.examples
        if q == "loss":
            return ()
        if q == "losses":
            return (m,)
        if q == "output":
            return (m, *self.spec.layers[-1].out_shape)
        assert l is not None
        layer = self.layer(l)
        added = self.quantity(key)
        if added is not None:
            return tuple(added.shape(layer, m))
        if q in ("z", "a", "delta"):
            return (m, *layer.out_shape)
        if q == "grad_input":
            return (m, *layer.in_shape)
        name = q.removeprefix("grad_")
        return tuple(layer.params[name].shape)

    def param_names(self, key: Key) -> tuple[str, ...]:
        return ()

    def step_keys(self) -> list[Key]:
        """Forward layer by layer, the cost, then backward from the top: δ, each parameter's
        gradient and ∂C/∂x of each layer; then the updated parameters."""
        L = self.L
        keys: list[Key] = []
        for l in range(2, L + 1):
            keys.append(("z", l))
            if self.has_a(l):
                keys.append(("a", l))
            keys += [(q.name, l) for q in self.added(l, "forward")]
        if self.batch:
            keys.append(("losses", None))
        keys.append(("loss", None))
        for l in range(L, 1, -1):
            keys.append(("delta", l))
            keys += [(q.name, l) for q in self.added(l, "backward")]
            keys += [(f"grad_{name}", l) for name in self.quantities(l)]
            if self.layer(l).kind.name != "embedding":  # its input is token ids: no gradient
                keys.append(("grad_input", l))
        for l in range(L, 1, -1):
            keys += [(name, l) for name in self.quantities(l)]
            keys += [(q.name, l) for q in self.added(l, "state")]
        return keys

    def final_keys(self) -> list[Key]:
        return [("output", None), ("loss", None)]

    def indices(self, key: Key) -> Iterator[tuple[tuple[int, ...], tuple[int | str, ...]]]:
        for pos in np.ndindex(*self.array_shape(key)):
            if self.per_example(key) and not self.batch:
                yield pos, pos[1:]
            elif self.per_example(key) or (key[0] == "losses" and self.batch):
                yield pos, (pos[0] + 1, *pos[1:])  # examples are numbered from 1, as in dense
            else:
                yield pos, pos

    def symbol(self, key: Key, index: tuple[int | str, ...], final: bool = False) -> str:
        q, l = key
        units = list(index)
        example = ""
        if (q == "losses" or self.per_example(key)) and self.batch and units:
            example = f" (x = {units[0]})"
            units = units[1:]
        cell = "[" + ",".join(str(u) for u in units) + "]" if units else ""
        if final:
            return (f"a{superscript(str(self.L))}{cell}" if q == "output" else "C") + example
        if q == "loss":
            return "C"
        if q == "losses":
            return "C_x" + example
        sup = superscript(str(l))
        if q in ("z", "a"):
            return f"{q}{sup}{cell}{example}"
        if q == "delta":
            return f"δ{sup}{cell}{example}"
        if q == "grad_input":
            return f"∂C/∂x{sup}{cell}{example}"
        added = self.quantity(key)
        if added is not None:  # (σ²)² for layer 2's σ²
            symbol = f"({added.symbol})" if added.symbol.endswith("²") else added.symbol
            return f"{symbol}{sup}{cell}{added.suffix}{example}"
        name = q.removeprefix("grad_")
        symbol = self.layer(l or 2).kind.symbols.get(name, name)
        if q.startswith("grad_"):
            return f"∂C/∂{symbol}{sup}{cell}"
        return f"{symbol}{sup}{cell} new"


def expected(st: LayeredStepTrace, key: Key) -> np.ndarray:
    q, l = key
    if q == "loss":
        return np.asarray(st.loss, dtype=float)
    if q == "losses":
        return np.asarray(st.losses, dtype=float)
    assert l is not None
    ls = st.layers[l - 2]
    added = next((a for a in ls.layer.kind.quantities if a.name == q), None)
    if added is not None:
        theta = ls.params_ahead if ls.params_ahead is not None else ls.params_before
        with np.errstate(all="ignore"):
            return np.asarray(added.compute(ls.layer, theta, ls.x, ls.delta, ls.state_before))
    if q in ("z", "a", "delta"):
        return np.asarray(getattr(ls, q), dtype=float)
    if q == "grad_input":
        return ls.grad_x
    if q.startswith("grad_"):
        return ls.grads[q.removeprefix("grad_")]
    return ls.params[q]


# ---- reading answers -----------------------------------------------------------------------------

LAYER_RECORD_KEYS = (
    "layer",
    "type",
    "activation",
    "input_shape",
    "output_shape",
    "options",
    "residual",
    "z",
    "a",
    "delta",
    "grad_input",
    "grads",
    "params",
    "shapes",
    "source",
    "padded_input",
    "activation_params",
    "grad_activation_params",
    "optimizer_state",
    "params_lookahead",
    "activation_params_lookahead",
    "state_before",
    "state",
)
# The dense contract's top level, and what a layered document adds to it.
CONTRACT_KEYS = (*DENSE_CONTRACT_KEYS, "shapes", "layer_types", "loss_at")
STEP_CONTRACT_KEYS = ("step", "loss", "losses", "data_loss", "penalty", "lookahead", "layers")


def quantity_names(shape: LayeredShape) -> tuple[str, ...]:
    names = ["z", "a", "delta", "grad_input"]
    for l, layer in enumerate(shape.spec.layers, 2):
        for p in layer.params:
            for q in (f"grad_{p}", p):
                if q not in names:
                    names.append(q)
        for added in shape.added(l):
            if added.name not in names:
                names.append(added.name)
    return tuple(names)


def _record_keys() -> tuple[str, ...]:
    """The keys of a layer record: every type's, and what each type adds (its extras)."""
    from gradcalc.layers import REGISTRY

    added = [k for t in REGISTRY.values() for k in t.record_keys if k not in LAYER_RECORD_KEYS]
    return (*LAYER_RECORD_KEYS, *dict.fromkeys(added))


class Reader:
    def __init__(self, doc: Doc, shape: LayeredShape, steps: int, run: Any = None) -> None:
        self.doc, self.shape, self.steps, self.run = doc, shape, steps, run
        self.out = Answers(doc.source)
        self.names = quantity_names(shape)
        self._places: list[float] = []  # the written decimals of each number read, in order
        self._step: int | None = None

    def read(self) -> Answers:
        doc, data = self.doc, self.doc.data
        if not isinstance(data, dict):
            raise doc.error(
                (), f"an answer sheet is a mapping of quantities, got {type_name(data)}"
            )
        step_keys = (*STEP_CONTRACT_KEYS, *self.names)
        self._keys(data, (), ("steps", *step_keys, *CONTRACT_KEYS), "an answer sheet")
        if "sizes" in data and data["sizes"] != list(self.shape.sizes):
            raise doc.error(
                ("sizes",),
                f"the answers are for sizes {data['sizes']}, the config's are "
                f"{list(self.shape.sizes)}",
            )
        if "examples" in data and data["examples"] != self.shape.examples:
            raise doc.error(
                ("examples",),
                f"the answers are for {data['examples']} examples, the config has "
                f"{self.shape.examples}",
            )
        loss_at = data.get("loss_at")
        if isinstance(loss_at, str) and loss_at != self.shape.spec.loss_at:
            raise doc.error(
                ("loss_at",),
                f"the answers were made with loss_at: {loss_at}, the config's is "
                f"{self.shape.spec.loss_at or 'none (its input is not a sequence)'}",
            )
        rounded = data.get("round")
        if rounded is not None:
            if isinstance(rounded, bool) or not isinstance(rounded, int) or not 0 <= rounded <= 12:
                raise doc.error(
                    ("round",), f"expected null or decimals 0..12, got {type_name(rounded)}"
                )
            self.out.round_to = rounded
        if self.run is not None:
            self._recorded(data)
        final = data.get("final")
        if isinstance(final, dict):
            for q in ("output", "loss"):
                if final.get(q) is not None:
                    key: Key = (q, None)
                    self.out.final[key] = self._cells(final[q], ("final", q), key)
                    self.out.places.setdefault(None, {})[key] = self._taken(self.out.final[key])
        elif final is not None:
            raise doc.error(
                ("final",), f"expected a mapping with loss and output, got {type_name(final)}"
            )
        if "steps" in data:
            blocks = data["steps"]
            if not isinstance(blocks, list):
                raise doc.error(
                    ("steps",), f"expected a list of step blocks, got {type_name(blocks)}"
                )
            for i, block in enumerate(blocks):
                if not isinstance(block, dict):
                    raise doc.error(("steps", i), f"expected a step block, got {type_name(block)}")
                self._keys(block, ("steps", i), step_keys, "a step block")
                self._block(block, ("steps", i), i + 1)
        else:
            self._block(data, (), 1)
        return self.out

    def _recorded(self, data: dict[str, Any]) -> None:
        """A `gradcalc step` document's record of its own run (η, the update rule, the steps,
        the loss, the first forward pass) must be the run graded: the dense reader's check,
        reading the arrays this reader's way."""
        from gradcalc.check.answers import _Reader

        dense = _Reader(self.doc, self.shape, self.steps, self.run)  # type: ignore[arg-type]
        dense.out = self.out
        dense._cells = self._cells  # type: ignore[method-assign]
        dense._run(data, self.run)
        self._places.clear()  # read to be compared, not graded

    def _keys(
        self, mapping: dict[str, Any], path: KeyPath, allowed: tuple[str, ...], what: str
    ) -> None:
        for key in mapping:
            if key not in allowed:
                raise self.doc.error(
                    (*path, key), f"unknown key in {what}", did_you_mean(key, allowed)
                )

    def _block(self, block: dict[str, Any], path: KeyPath, default: int) -> None:
        doc = self.doc
        step = block.get("step", default)
        if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= self.steps:
            raise doc.error(
                (*path, "step"),
                f"expected a step number 1..{self.steps}, got {type_name(step)}",
            )
        if step in self.out.steps:
            raise doc.error((*path, "step"), f"step {step} is answered twice")
        answers: dict[Key, np.ndarray] = {}
        self.out.steps[step] = answers
        self._step = step
        for q in ("loss", "losses"):
            if block.get(q) is not None:
                if q == "losses" and not self.shape.batch:
                    raise doc.error((*path, q), "'losses' (one cost per example) is for a batch")
                key: Key = (q, None)
                answers[key] = self._cells(block[q], (*path, q), key)
                self.out.places.setdefault(step, {})[key] = self._taken(answers[key])
        for q in self.names:
            by_layer = block.get(q)
            if by_layer is None:
                continue
            if not isinstance(by_layer, dict):
                raise doc.error(
                    (*path, q),
                    f"expected a mapping from layer number to values, got {type_name(by_layer)}",
                )
            for name, value in by_layer.items():
                l = self._layer(name, (*path, q, name))
                self._put(answers, (q, l), value, (*path, q, name))
        records = block.get("layers")
        if records is None:
            return
        if not isinstance(records, list):
            raise doc.error(
                (*path, "layers"), f"expected a list of layer records, got {type_name(records)}"
            )
        for i, item in enumerate(records):
            where = (*path, "layers", i)
            if not isinstance(item, dict):
                raise doc.error(where, f"expected a layer record, got {type_name(item)}")
            self._keys(item, where, _record_keys(), "a layer record")
            if "layer" not in item:
                raise doc.error(where, "missing key 'layer' (the layer number l = 2..L)")
            l = self._layer(item["layer"], (*where, "layer"))
            for q in ("z", "a", "delta", "grad_input"):
                if item.get(q) is not None and (q != "a" or self.shape.has_a(l)):
                    self._put(answers, (q, l), item[q], (*where, q))
            for added in self.shape.added(l):
                group = item.get("state") if added.stage == "state" else item
                if isinstance(group, dict) and group.get(added.name) is not None:
                    inner = ("state",) if added.stage == "state" else ()
                    at = (*where, *inner, added.name)
                    self._put(answers, (added.name, l), group[added.name], at)
            for group, prefix in (("grads", "grad_"), ("params", "")):
                values = item.get(group)
                if values is None:
                    continue
                if not isinstance(values, dict):
                    raise doc.error(
                        (*where, group), f"expected a mapping by parameter, got {type_name(values)}"
                    )
                names = tuple(self.shape.layer(l).params)
                self._keys(values, (*where, group), names, f"layer {l}'s {group}")
                for name, value in values.items():
                    if value is not None:
                        self._put(answers, (prefix + name, l), value, (*where, group, name))

    def _layer(self, name: Any, path: KeyPath) -> int:
        L = self.shape.L
        text = str(name)
        if isinstance(name, bool) or not (text.isascii() and text.isdigit()) or len(text) > 9:
            raise self.doc.error(
                path, f"expected a layer number 2..{L}, got {type_name(name)}", "e.g. 2"
            )
        l = int(text)
        if not 2 <= l <= L:
            raise self.doc.error(path, f"there is no layer {l}: the network has layers 2..{L}")
        return l

    def _put(self, answers: dict[Key, np.ndarray], key: Key, value: Any, path: KeyPath) -> None:
        q, l = key
        assert l is not None
        if q == "a" and not self.shape.has_a(l):
            raise self.doc.error(path, f"layer {l} has no a of its own (its a is its z)")
        if (
            q not in ("z", "a", "delta", "grad_input")
            and q.removeprefix("grad_") not in self.shape.layer(l).params
            and self.shape.quantity(key) is None
        ):
            raise self.doc.error(path, f"layer {l} ({self.shape.layer(l).kind.name}) has no {q}")
        if key in answers:
            raise self.doc.error(path, f"layer {l}'s {q} is answered twice")
        if value is not None:
            answers[key] = self._cells(value, path, key)
            self.out.places.setdefault(self._step, {})[key] = self._taken(answers[key])

    def _taken(self, values: np.ndarray) -> np.ndarray:
        """The written decimals of the numbers just read into `values`, in its shape."""
        places = np.array(self._places, dtype=float).reshape(values.shape)
        self._places.clear()
        return places

    def number(self, value: Any, path: KeyPath, text: str | None = None) -> float:
        from gradcalc.check.answers import written_decimals

        if value is None:
            self._places.append(np.nan)
            return float("nan")
        out = number(self.doc, value, path)
        if text is None:
            text = value if isinstance(value, str) else self.doc.texts.get(path, repr(value))
        self._places.append(written_decimals(text))
        return out

    def _cells(self, value: Any, path: KeyPath, key: Key) -> np.ndarray:
        dims = self.shape.array_shape(key)
        per_example = self.shape.per_example(key) and not self.shape.batch
        want = dims[1:] if per_example else dims
        array = self._nested(value, path, want)
        return array[None] if per_example else array

    def _nested(
        self, value: Any, path: KeyPath, want: tuple[int, ...], text: str | None = None
    ) -> np.ndarray:
        if not want:
            if isinstance(value, list | dict):
                raise self.doc.error(path, f"expected a number, got {type_name(value)}")
            return np.asarray(self.number(value, path, text))
        if value is None:
            self._places += [np.nan] * math.prod(want)
            return np.full(want, np.nan)
        if not isinstance(value, list) or len(value) != want[0]:
            got = f"{len(value)} items" if isinstance(value, list) else type_name(value)
            shape = "×".join(str(n) for n in want)
            raise self.doc.error(
                path, f"expected an array of shape {shape}: {want[0]} items, got {got}"
            )
        texts: list[str | None] = getattr(value, "texts", None) or [None] * len(value)
        return np.stack(
            [self._nested(v, (*path, i), want[1:], texts[i]) for i, v in enumerate(value)]
        )


def template(shape: LayeredShape, steps: int, source: str, describe: str, graded: str) -> str:
    lines = [
        f"# Answers for {source}: {describe}.",
        "# Replace each null with your number; leave null what you do not answer.",
        "# Cells are indexed from 0 as in PyTorch: [channel, row, column].",
        f"# Grade with: gradcalc check {graded} ANSWERS.yaml",
    ]
    pad = ""
    if steps == 1:
        lines.append("step: 1")
    else:
        lines.append("steps:")
    for s in range(1, steps + 1):
        if steps > 1:
            lines.append(f"  - step: {s}")
            pad = "    "
        seen: list[str] = []
        for q, _ in shape.step_keys():
            if q not in seen:
                seen.append(q)
        for q in seen:
            if q in ("loss", "losses"):
                value = "null" if q == "loss" else "[" + ", ".join(["null"] * shape.examples) + "]"
                lines.append(f"{pad}{q}: {value}")
                continue
            lines.append(f"{pad}{q}:")
            for key in [k for k in shape.step_keys() if k[0] == q]:
                dims = shape.array_shape(key)
                if shape.per_example(key) and not shape.batch:
                    dims = dims[1:]
                lines.append(f"{pad}  {key[1]}: {_nulls(dims)}  # {shape.symbol(key, ())}")
    return "\n".join(lines) + "\n"


def template_json(shape: LayeredShape, steps: int) -> str:
    """The blank sheet as JSON (the sheet form): it loads back as no answers."""
    import json

    def blank(dims: tuple[int, ...]) -> Any:
        return None if not dims else [blank(dims[1:]) for _ in range(dims[0])]

    block: dict[str, Any] = {}
    for key in shape.step_keys():
        q, l = key
        dims = shape.array_shape(key)
        if shape.per_example(key) and not shape.batch:
            dims = dims[1:]
        if l is None:
            block[q] = blank(dims)
        else:
            block.setdefault(q, {})[str(l)] = blank(dims)
    sheet = {"steps": [{"step": s, **block} for s in range(1, steps + 1)]}
    return json.dumps(sheet, indent=2) + "\n"


def _nulls(dims: tuple[int, ...]) -> str:
    if not dims:
        return "null"
    inner = _nulls(dims[1:])
    return "[" + ", ".join([inner] * dims[0]) + "]"


# ---- carried values and mistakes -----------------------------------------------------------------


@dataclass
class Context:
    """One step's given values: the student's answer where given, the exact value elsewhere."""

    spec: LayeredSpec
    shape: LayeredShape
    net: Network  # the exact run's settings: η, the scale, the fused loss
    exact: LayeredStepTrace
    answers: dict[Key, np.ndarray]
    theta: list[Theta]  # the parameters before the step (given)
    step: int
    # Half a unit of each answer's last place (NaN where not answered), the drift bound of
    # each quantity of the step (None: exact) and the allowance of the parameters before it.
    allowances: dict[Key, np.ndarray] = field(default_factory=dict)
    drift: dict[Key, np.ndarray] | None = None
    theta_allow: list[Theta] | None = None

    def given(self, q: str, l: int | None = None) -> np.ndarray:
        exact = expected(self.exact, (q, l))
        answer = self.answers.get((q, l))
        if answer is None:
            return exact
        return np.where(np.isnan(answer), exact, answer)

    def allow(self, q: str, l: int | None = None) -> np.ndarray:
        key = (q, l)
        return allowance(key, np.shape(expected(self.exact, key)), self.allowances, self.drift)

    def cost(self) -> Form:
        """C from each example's cost as answered, else as its given output gives it (the
        dense check's rule), with its bound."""
        decaying = self.net.decaying
        penalty = l2_penalty(
            self.spec.weight_decay,
            list(decaying(self.theta)),
            list(decaying(self.theta_allow)) if self.theta_allow is not None else None,
        )
        losses = (self.costs(), self.allow("losses"))
        answered = self.answers.get(("losses", None))
        return total_cost(self.net.scale, losses, answered, self.allow("losses"), penalty)

    def costs(self) -> np.ndarray:
        """C_x from the given output a^L (the last step's with loss_at: last), or, for a loss
        computed from z^L (cross-entropy after softmax) whose a^L is not answered, from z^L."""
        spec, L = self.spec, self.shape.L
        n = spec.x.shape[0]
        y = spec.y.reshape(n, -1)
        fused = self.net.fused
        with np.errstate(all="ignore"):
            if fused is not None and self.answers.get(("a", L)) is None:
                return np.asarray(fused.value(self.given("z", L), y, spec.loss_params))
            out = self.output_of(L)
            scored = out[:, -1] if spec.sliced else out
            return np.asarray(spec.loss.value(scored.reshape(n, -1), y, spec.loss_params))

    def output_of(self, l: int) -> np.ndarray:
        return self.given("a", l) if self.shape.has_a(l) else self.given("z", l)

    def x(self, l: int) -> np.ndarray:
        return self.spec.x if l == 2 else self.output_of(l - 1)

    def theta_pass(self, l: int) -> Theta:
        ahead = self.exact.layers[l - 2].params_ahead
        return ahead if ahead is not None else self.theta[l - 2]

    def cache(self, l: int, x: np.ndarray | None = None) -> dict[str, Any]:
        layer = self.shape.layer(l)
        return layer.kind.forward(layer, self.theta_pass(l), self.x(l) if x is None else x)[1]

    def grad_a(self, l: int) -> np.ndarray:
        spec = self.spec
        if l == self.shape.L:
            out = self.output_of(l)
            n = out.shape[0]
            scored = out[:, -1] if spec.sliced else out
            with np.errstate(all="ignore"):
                g = spec.loss.grad(scored.reshape(n, -1), spec.y.reshape(n, -1), spec.loss_params)
            if spec.sliced:
                full = np.zeros_like(out)
                full[:, -1] = g
                return full
            return g.reshape(out.shape)
        return self.given("grad_input", l + 1)

    def backward(
        self,
        l: int,
        delta: np.ndarray | None = None,
        theta: Theta | None = None,
        x: np.ndarray | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(∂C/∂x, {name: ∂C/∂θ}) of layer l from the given δ, or with δ, θ or x replaced."""
        layer = self.shape.layer(l)
        d = self.given("delta", l) if delta is None else delta
        th = self.theta_pass(l) if theta is None else theta
        xx = self.x(l) if x is None else x
        cache = layer.kind.forward(layer, th, xx)[1]
        return layer.kind.backward(layer, th, cache, d, self.net.scale, xx)

    def forward(self, l: int, replaced: Theta) -> np.ndarray:
        """z of layer l from the given x with some of its parameters replaced."""
        layer = self.shape.layer(l)
        return layer.kind.forward(layer, {**self.theta_pass(l), **replaced}, self.x(l))[0]

    def grad_input(self, l: int, weights: np.ndarray) -> np.ndarray:
        """∂C/∂x of layer l from the given δ with its weights replaced (and the residual path)."""
        layer = self.shape.layer(l)
        grad_x = self.backward(l, theta={**self.theta_pass(l), "weights": weights})[0]
        return grad_x + self.grad_a(l) if layer.residual else grad_x

    def delta_from(self, l: int, grad_a: np.ndarray) -> np.ndarray:
        """δ^l from the given z^l and a^l and this ∂C/∂a^l (the layer's f′ applied)."""
        layer = self.shape.layer(l)
        act = self.exact.layers[l - 2].activation_params_before
        z = self.given("z", l)
        # f′ from f(z): with a residual, a is x + f(z)
        a = layer.activation.forward(z, act) if layer.residual else self.output_of(l)
        return layer.activation.backward(z, a, grad_a, act)

    def carried(self, key: Key) -> np.ndarray:
        return carried(self, key)


def carried(ctx: Context, key: Key) -> np.ndarray:
    """The value of `key` that the given values of its inputs lead to."""
    return carried_form(ctx, key, None)[0]


def carried_form(ctx: Context, key: Key, local: np.ndarray | None) -> Form:
    """What `key`'s own equation gives from the given values, and how far that may move: C's
    bound from its C_x's allowances (as the dense check's), else `local` (one equation's own
    rounding)."""
    if key == ("loss", None) and ctx.spec.optimizer.lookahead is None:
        return ctx.cost()
    value = _carried(ctx, key)
    return value, np.zeros(np.shape(value)) if local is None else local


def _carried(ctx: Context, key: Key) -> np.ndarray:
    q, l = key
    spec, net = ctx.spec, ctx.net
    if q in ("loss", "losses") or (spec.optimizer.lookahead is not None and q in ("z", "a")):
        if q == "losses" and spec.optimizer.lookahead is None:
            return ctx.costs()
        # With a look-ahead rule the step's cost is at θ, its z and a at θ̃: judged as exact.
        return expected(ctx.exact, key)
    assert l is not None
    layer = ctx.shape.layer(l)
    act = ctx.exact.layers[l - 2].activation_params_before
    added = ctx.shape.quantity(key)
    if added is not None:  # from the given x and δ
        with np.errstate(all="ignore"):
            return np.asarray(
                added.compute(
                    layer,
                    ctx.theta_pass(l),
                    ctx.x(l),
                    ctx.given("delta", l),
                    ctx.exact.layers[l - 2].state_before,
                )
            )
    with np.errstate(all="ignore"):
        if q == "z":
            return layer.kind.forward(layer, ctx.theta_pass(l), ctx.x(l))[0]
        if q == "a":
            a = layer.activation.forward(ctx.given("z", l), act)
            return ctx.x(l) + a if layer.residual else a
        if q == "delta":
            if l == ctx.shape.L and net.fused is not None:
                n = spec.x.shape[0]
                return net.fused.delta(ctx.given("z", l), spec.y.reshape(n, -1), spec.loss_params)
            return ctx.delta_from(l, ctx.grad_a(l))
        grad_x, grads = ctx.backward(l)
        if q == "grad_input":
            return grad_x + ctx.grad_a(l) if layer.residual else grad_x
        if q.startswith("grad_"):
            name = q.removeprefix("grad_")
            g = grads[name]
            if spec.weight_decay and name in layer.kind.decays:
                g = g + spec.weight_decay * ctx.theta_pass(l)[name]
            return g
        theta = ctx.theta[l - 2][q]
        kind = "weights" if q in layer.kind.decays else q
        update = Update(spec.optimizer, spec.optimizer_params, net.eta, lambda v: v)
        kept = ctx.exact.layers[l - 2].optimizer_state_before.get(q) or update.kept(None, theta)
        new, _, _ = update(kind, theta, ctx.given(f"grad_{q}", l), kept, ctx.step)
        return new


def _residual_missing(ctx: Context, l: int) -> dict[str, np.ndarray]:
    """∂C/∂x of a layer with `residual: true` without the residual path's ∂C/∂a."""
    return {"grad_input": ctx.backward(l)[0]}


RESIDUAL_MISSING = Mistake(
    "residual_path_missing",
    "∂C/∂x of a layer with a residual (a = x + f(z)) without the residual path: ∂C/∂a itself "
    "left out, only the path through the layer kept",
    _residual_missing,
)


# A mistake named on a cell: (its id, its explanation, the values it gives there).
Named = tuple[str, str, list[np.ndarray]]


def named(ctx: Context, key: Key) -> list[Named]:
    """The known mistakes that change this quantity, with the values each gives: those of the
    key's layer type, then the registry's (gradcalc/check/mistakes.py) that apply to layer
    records (a dense layer's own, f′ of any layer, the cost and δ^L, any parameter's update)."""
    from gradcalc.check.mistakes import MISTAKES as SHARED

    q, l = key
    out: list[Named] = []
    if l is not None:
        layer = ctx.shape.layer(l)
        mistakes = layer.kind.mistakes + ((RESIDUAL_MISSING,) if layer.residual else ())
        for mistake in mistakes:
            if mistake.values is None:  # listed with its type, its values in the registry
                continue
            with np.errstate(all="ignore"):
                values = mistake.values(ctx, l)
            if q in values:
                out.append((mistake.name, mistake.description, [values[q]]))
    for shared in SHARED:
        if shared.layered is None:
            continue
        with np.errstate(all="ignore"):
            candidates = shared.layered(ctx, key)
        if candidates:
            out.append((shared.id, shared.explanation, candidates))
    return out


# ---- the drift bound -----------------------------------------------------------------------------


def bounds(spec: LayeredSpec, exact: LayeredRun, unit: Any) -> tuple[list[dict], list[dict], dict]:
    """Per cell, how far a hand calculation that rounds each quantity as the `--round` trace
    does can drift (first order, as gradcalc/check/bounds.py for dense networks), and the local
    bound of one equation's own rounding. Each layer record's forward and backward are linear
    in each of their arguments, so each bound is the record applied to absolute values."""
    from gradcalc.check.bounds import spread as _spread

    u = unit
    net = Network(spec)
    shape = LayeredShape(spec)
    n = spec.x.shape[0]
    y = spec.y.reshape(n, -1)
    e_theta = [{k: np.zeros(v.shape) for k, v in layer.params.items()} for layer in spec.layers]
    steps: list[dict] = []
    local: list[dict] = []
    eta = exact.learning_rate

    def scored(v: np.ndarray) -> np.ndarray:
        """What the loss reads: with loss_at: last, a sequence's last step."""
        return v[:, -1] if spec.sliced else v

    def forward_bounds(
        thetas: list[Theta],
        e_params: list[Theta],
        zs: list[np.ndarray],
        acts: list[np.ndarray],
        act_params: list[dict],
    ) -> tuple[list, list]:
        x, e_x = spec.x, np.zeros(spec.x.shape)
        out_z, out_a = [], []
        for i, layer in enumerate(spec.layers):
            theta, e_t = thetas[i], e_params[i]
            kind = layer.kind
            if not kind.linear:
                e_z = _moved(layer, theta, e_t, x, e_x)
            elif layer.params:
                magnitude = {
                    k: np.abs(v) if k in kind.decays else np.zeros(v.shape)
                    for k, v in theta.items()
                }
                e_z = (
                    kind.forward(layer, magnitude, e_x)[0]
                    + kind.forward(layer, e_t, np.abs(x) + e_x)[0]
                )
            else:
                e_z = kind.forward(layer, {}, e_x)[0]
            e_z = e_z + u(zs[i], e_z)
            f, p = layer.activation, act_params[i]
            e_a = _spread(lambda zz, f=f, p=p: f.forward(zz, p), [zs[i]], [e_z], not f.elementwise)
            if layer.residual:
                e_a = e_a + e_x
            e_a = e_a + u(acts[i], e_a)
            out_z.append(e_z)
            out_a.append(e_a)
            x, e_x = acts[i], e_a
        return out_z, out_a

    def cost_bounds(
        losses: np.ndarray, z: np.ndarray, a: np.ndarray, e_z: np.ndarray, e_a: np.ndarray
    ):
        lp = spec.loss_params
        fused = net.fused
        if fused is not None:
            e = _spread(lambda zz: fused.value(zz, y, lp), [z], [e_z], True)
        else:
            e = _spread(
                lambda aa: spec.loss.value(aa, y, lp),
                [a.reshape(n, -1)],
                [e_a.reshape(n, -1)],
                True,
            )
        e = e + u(losses, e)
        total = np.asarray(net.scale * e.sum())
        loss = np.asarray(net.scale * losses.sum())
        return (
            e,
            total + u(loss, total),
            np.asarray(net.scale * u(losses, 0 * losses).sum() + u(loss, 0 * loss)),
        )

    for st in exact.steps:
        glob: dict[Key, np.ndarray] = {}
        loc: dict[Key, np.ndarray] = {}
        thetas = [
            ls.params_ahead if ls.params_ahead is not None else ls.params_before for ls in st.layers
        ]
        # A look-ahead rule's θ̃ is itself rounded: its bound is θ's plus half a unit.
        e_pass = [
            {
                k: e + (u(thetas[i][k], e) if spec.optimizer.lookahead is not None else 0.0)
                for k, e in e_theta[i].items()
            }
            for i in range(len(st.layers))
        ]
        e_z, e_a = forward_bounds(
            thetas,
            e_pass,
            [ls.z for ls in st.layers],
            [ls.a for ls in st.layers],
            [ls.activation_params_before for ls in st.layers],
        )
        for i, ls in enumerate(st.layers):
            l = i + 2
            glob[("z", l)], loc[("z", l)] = e_z[i], u(ls.z, 0 * ls.z)
            if shape.has_a(l):
                glob[("a", l)], loc[("a", l)] = e_a[i], u(ls.a, 0 * ls.a)
        last = st.layers[-1]
        e_losses, e_loss, local_loss = cost_bounds(
            st.losses, scored(last.z), scored(last.a), scored(e_z[-1]), scored(e_a[-1])
        )
        glob[("losses", None)], glob[("loss", None)] = e_losses, e_loss
        loc[("losses", None)], loc[("loss", None)] = u(st.losses, 0 * st.losses), local_loss
        e_scored = _spread(
            lambda aa: spec.loss.grad(aa, y, spec.loss_params),
            [scored(last.a).reshape(n, -1)],
            [scored(e_a[-1]).reshape(n, -1)],
            True,
        )
        e_ga = np.zeros(last.a.shape)
        if spec.sliced:  # the loss reads the last step alone: the others get no gradient
            e_ga[:, -1] = e_scored.reshape(e_ga[:, -1].shape)
        else:
            e_ga = e_scored.reshape(last.a.shape)
        e_ga = e_ga + u(last.grad_a, e_ga)
        new_theta = [dict(t) for t in e_theta]
        for i in range(len(st.layers) - 1, -1, -1):
            ls, l = st.layers[i], i + 2
            layer, kind = ls.layer, ls.layer.kind
            f, p = layer.activation, ls.activation_params_before
            fused = net.fused
            if i == len(st.layers) - 1 and fused is not None:
                e_d = _spread(
                    lambda zz, fused=fused: fused.delta(zz, y, spec.loss_params),
                    [ls.z],
                    [e_z[i]],
                    True,
                )
            elif f.elementwise:
                fz = f.forward(ls.z, p) if layer.residual else ls.a
                prime = f.prime(ls.z, fz, p)
                e_f = _spread(
                    lambda zz, aa, f=f, p=p: f.prime(zz, aa, p),
                    [ls.z, fz],
                    [e_z[i], e_a[i]],
                    False,
                )
                e_f = e_f + u(prime, e_f)
                e_d = np.abs(prime) * e_ga + np.abs(ls.grad_a) * e_f + e_ga * e_f
            else:
                e_d = _spread(
                    lambda zz, aa, gg, f=f, p=p: f.backward(zz, aa, gg, p),
                    [ls.z, ls.a, ls.grad_a],
                    [e_z[i], e_a[i], e_ga],
                    True,
                )
            e_d = e_d + u(ls.delta, e_d)
            glob[("delta", l)], loc[("delta", l)] = e_d, u(ls.delta, 0 * e_d)
            theta = thetas[i]
            e_x = np.zeros(ls.x.shape) if i == 0 else e_a[i - 1]
            added = shape.added(l)
            moved: dict[str, np.ndarray] = {}
            if added or not kind.linear:
                moved = _moved_backward(ls, theta, e_pass[i], e_x, e_d, net.scale, added)
                for q in added:
                    e_q, value = moved[q.name], _added_value(q, ls, theta)
                    glob[(q.name, l)], loc[(q.name, l)] = e_q + u(value, e_q), u(value, 0 * e_q)
            if not kind.linear:
                e_gx = moved["grad_input"]
            else:
                cache_abs = (
                    kind.forward(layer, theta, np.abs(ls.x) + e_x)[1] if layer.params else ls.cache
                )
                magnitude = {k: np.abs(v) for k, v in theta.items()}
                # ∂C/∂x: through |θ| from e(δ), and through e(θ) from |δ| + e(δ).
                e_gx = kind.backward(
                    layer, magnitude, cache_abs, e_d, net.scale, np.abs(ls.x) + e_x
                )[0]
            if layer.params and kind.linear:
                e_gx = (
                    e_gx
                    + kind.backward(
                        layer, e_pass[i], cache_abs, np.abs(ls.delta) + e_d, net.scale, ls.x
                    )[0]
                )
                g_from_d = kind.backward(
                    layer, magnitude, cache_abs, e_d, net.scale, np.abs(ls.x) + e_x
                )[1]
                cache_e = kind.forward(layer, theta, e_x)[1]
                g_from_x = kind.backward(
                    layer, magnitude, cache_e, np.abs(ls.delta), net.scale, e_x
                )[1]
            if layer.params:
                for name in layer.params:
                    if not kind.linear:
                        e_g = moved[f"grad_{name}"]
                    else:
                        e_g = g_from_d[name] + (g_from_x[name] if name in kind.decays else 0.0)
                    if spec.weight_decay and name in kind.decays:
                        # the engine rounds ∂C/∂θ, then ∂C/∂θ + λθ: two roundings
                        data = ls.grads[name] - spec.weight_decay * theta[name]
                        e_g = e_g + u(data, e_g) + spec.weight_decay * e_pass[i][name]
                    e_g = e_g + u(ls.grads[name], e_g)
                    glob[(f"grad_{name}", l)], loc[(f"grad_{name}", l)] = (
                        e_g,
                        u(ls.grads[name], 0 * e_g),
                    )
                    e_new = _update_bound(
                        spec, eta, ls.params_before[name], ls.grads[name], e_theta[i][name], e_g
                    )
                    new_theta[i][name] = e_new + u(ls.params[name], e_new)
                    glob[(name, l)], loc[(name, l)] = (
                        new_theta[i][name],
                        u(ls.params[name], 0 * e_new),
                    )
            if kind.flips is not None:
                e_gx = e_gx + kind.flips(ls, e_x, e_d)
            if layer.residual:
                e_gx = e_gx + e_ga
            e_gx = e_gx + u(ls.grad_x, e_gx)
            glob[("grad_input", l)], loc[("grad_input", l)] = e_gx, u(ls.grad_x, 0 * e_gx)
            e_ga = e_gx
        e_theta = new_theta
        steps.append(glob)
        local.append(loc)
    final = exact.final
    e_z, e_a = forward_bounds(
        list(exact.parameters),
        e_theta,
        list(final.z),
        list(final.a),
        list(exact.activation_params),
    )
    _, e_loss, _ = cost_bounds(
        final.losses, scored(final.z[-1]), scored(final.a[-1]), scored(e_z[-1]), scored(e_a[-1])
    )
    return steps, local, {("output", None): e_a[-1], ("loss", None): e_loss}


def _each(
    args: list[tuple[np.ndarray, np.ndarray]], fn: Any, base: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Σ over every input number of the most its ±error moves each output: a first-order
    bound for a function that is not linear in its arguments (a normalisation's output does not
    move when all its inputs move together, so moving them at once would miss it). Each number
    is moved on its own, however many there are: grouping them can cancel, and a bound that
    falls short marks a rightly rounded answer wrong. `fn(k, moved)` recomputes every output
    with argument k replaced, in one pass."""
    total = {q: np.zeros(v.shape) for q, v in base.items()}
    with np.errstate(all="ignore"):
        for k, (value, err) in enumerate(args):
            err = np.broadcast_to(np.asarray(err, dtype=float), value.shape)
            for index in zip(*np.nonzero(err), strict=True):
                worst = {q: np.zeros(v.shape) for q, v in base.items()}
                for sign in (-1.0, 1.0):
                    moved = np.array(value, dtype=float)
                    moved[index] += sign * err[index]
                    for q, v in fn(k, moved).items():
                        change = np.abs(np.asarray(v, dtype=float) - base[q])
                        worst[q] = np.maximum(
                            worst[q], np.where(np.isfinite(change), change, np.inf)
                        )
                for q in total:
                    total[q] += worst[q]
    return total


def _moved(
    layer: Layer, theta: Theta, e_theta: Theta, x: np.ndarray, e_x: np.ndarray
) -> np.ndarray:
    """The drift bound of z of a layer that is not linear in its arguments."""
    names = list(theta)
    args = [(x, e_x), *[(theta[n], e_theta[n]) for n in names]]

    def fn(k: int, moved: np.ndarray) -> dict[str, np.ndarray]:
        if k == 0:
            return {"z": layer.kind.forward(layer, theta, moved)[0]}
        return {"z": layer.kind.forward(layer, {**theta, names[k - 1]: moved}, x)[0]}

    with np.errstate(all="ignore"):
        base = {"z": layer.kind.forward(layer, theta, x)[0]}
    return _each(args, fn, base)["z"]


def _added_value(q: Quantity, ls: Any, theta: Theta) -> np.ndarray:
    """An added quantity's value in the pass (θ̃ where a look-ahead rule ran it)."""
    with np.errstate(all="ignore"):
        return np.asarray(q.compute(ls.layer, theta, ls.x, ls.delta, ls.state_before), dtype=float)


def _moved_backward(
    ls: Any,
    theta: Theta,
    e_theta: Theta,
    e_x: np.ndarray,
    e_delta: np.ndarray,
    scale: float,
    added: list[Quantity],
) -> dict[str, np.ndarray]:
    """The drift bounds of the quantities the layer's type adds (batch norm's μ, a recurrent
    layer's ∂C/∂h_t) and, for a layer that is not linear in its arguments, of ∂C/∂x and each
    ∂C/∂θ: from the bounds of its input, δ and parameters, each number moved on its own."""
    layer, kind = ls.layer, ls.layer.kind
    names = list(theta)

    def run(x: np.ndarray, th: Theta, d: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if not kind.linear:
            cache = kind.forward(layer, th, x)[1]
            grad_x, grads = kind.backward(layer, th, cache, d, scale, x)
            out = {"grad_input": grad_x, **{f"grad_{k}": g for k, g in grads.items()}}
        for q in added:
            out[q.name] = np.asarray(q.compute(layer, th, x, d, ls.state_before))
        return out

    args = [(ls.x, e_x), (ls.delta, e_delta), *[(theta[n], e_theta[n]) for n in names]]

    def fn(k: int, moved: np.ndarray) -> dict[str, np.ndarray]:
        if k == 0:
            return run(moved, theta, ls.delta)
        if k == 1:
            return run(ls.x, theta, moved)
        return run(ls.x, {**theta, names[k - 2]: moved}, ls.delta)

    with np.errstate(all="ignore"):
        base = run(ls.x, theta, ls.delta)
    return _each(args, fn, base)


def _update_bound(
    spec: LayeredSpec,
    eta: float,
    theta: np.ndarray,
    g: np.ndarray,
    e_theta: np.ndarray,
    e_g: np.ndarray,
) -> np.ndarray:
    from gradcalc.check.bounds import spread as _spread

    rule = spec.optimizer
    if rule.plain:
        return e_theta + eta * e_g
    zeros = {k: np.zeros_like(theta, dtype=float) for k in rule.state}

    def step(th: np.ndarray, gg: np.ndarray) -> np.ndarray:
        return rule.update(th, gg, zeros, spec.optimizer_params, eta, 1, lambda v: v)[0]

    return _spread(step, [theta, g], [e_theta, e_g], False)


# ---- grading -------------------------------------------------------------------------------------


def run_rounded(
    spec: LayeredSpec, steps: int, rounder: Any
) -> tuple[list[LayeredStepTrace], ForwardTrace]:
    net = Network(spec)
    net.r = rounder
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        traces = [net.step(s) for s in range(1, steps + 1)]
        return traces, net.forward_trace()


def grade(spec: LayeredSpec, answers: Answers, steps: int, options: Any) -> Any:
    from gradcalc.check.grade import Report, _first_error, _Precision, _rounding_hint

    shape = LayeredShape(spec)
    exact = run(spec, steps=steps)
    # Each answer read to a precision (--decimals, --sig-figs, or as written), as for dense
    # networks (gradcalc/check/grade.py).
    precision = _Precision(options, answers)
    rounded = None
    glob = loc = None
    final_bound: dict = {}
    if precision.unit is not None:
        rounded = run_rounded(spec, steps, precision.rounder)
        glob, loc, final_bound = bounds(spec, exact, precision.unit)
    net = Network(spec)
    cells: list[Any] = []
    theta = [dict(layer.params) for layer in spec.layers]
    theta_allow: list[Theta] | None = None
    for s, st in enumerate(exact.steps, 1):
        given = answers.steps.get(s, {})
        places = answers.places.get(s, {})
        ctx = Context(
            spec, shape, net, st, given, theta, s, {}, glob[s - 1] if glob else None, theta_allow
        )
        for key in shape.step_keys():
            answer = given.get(key)
            if answer is None and not options.require_all:
                continue
            dims = shape.array_shape(key)
            values = np.full(dims, np.nan) if answer is None else answer
            u = precision.cell(values, np.broadcast_to(places.get(key, np.nan), dims))
            ctx.allowances[key] = np.where(np.isnan(values), np.nan, u)
            cells += _judge(
                shape,
                options,
                s,
                key,
                values,
                u,
                expected(st, key),
                expected(rounded[0][s - 1], key) if rounded else None,
                glob[s - 1][key] if glob else None,
                loc[s - 1][key] if loc else None,
                ctx,
            )
        theta = [
            {name: ctx.given(name, l) for name in layer.params}
            for l, layer in enumerate(spec.layers, 2)
        ]
        theta_allow = [
            {name: ctx.allow(name, l) for name in layer.params}
            for l, layer in enumerate(spec.layers, 2)
        ]
    for key in shape.final_keys():
        answer = answers.final.get(key)
        if answer is None:
            continue
        value = exact.final.loss if key[0] == "loss" else exact.final.output
        written = answers.places.get(None, {}).get(key, np.nan)
        cells += _judge(
            shape,
            options,
            None,
            key,
            answer,
            precision.cell(answer, np.broadcast_to(written, answer.shape)),
            np.asarray(value, dtype=float),
            (
                np.asarray(rounded[1].loss if key[0] == "loss" else rounded[1].output)
                if rounded
                else None
            ),
            final_bound.get(key),
            final_bound.get(key),
            None,
        )
    cells = _resolve(cells, shape)
    report = Report(spec.source, answers.source, tuple(cells), _first_error(cells), options)
    if precision.written and precision.unit is not None:
        report = replace(report, written_places=precision.typical)
    if not options.rounding:
        hint = _rounding_hint(spec, answers, steps, options, cells)  # type: ignore[arg-type]
        if hint:
            report = replace(report, hint=hint)
    return report


def _judge(
    shape: LayeredShape,
    o: Any,
    step: int | None,
    key: Key,
    answer: np.ndarray,
    u: np.ndarray,
    exact: np.ndarray,
    rounded: np.ndarray | None,
    bound: np.ndarray | None,
    local: np.ndarray | None,
    ctx: Context | None,
) -> list[Any]:
    """The cells of one quantity: ✓ within rtol/atol; ≈ within half a unit of the answer's last
    place (u), or the rounded run's value, or twice the drift bound; ↳ what its own equation
    gives from the given answers; ✗ with the layer type's named mistakes that fit."""
    from gradcalc.check.grade import BOUND_SAFETY, Cell

    def close(a: np.ndarray, ref: np.ndarray, extra: Any = 0.0) -> np.ndarray:
        # An infinite value (worked from answers near the float limit) is close to nothing.
        with np.errstate(invalid="ignore", over="ignore"):
            return np.isfinite(ref) & (np.abs(a - ref) <= o.atol + o.rtol * np.abs(ref) + extra)

    dims = shape.array_shape(key)
    answered = ~np.isnan(answer)
    verdict = np.where(answered, "wrong", "missing").astype(object)
    right = answered & close(answer, exact)
    verdict[right] = "correct"
    last = u * (1 + 1e-9)  # half a unit of the last place, with room for 0.0005 in binary
    with np.errstate(invalid="ignore"):
        near = np.abs(answer - exact) <= last
        if rounded is not None:
            near |= close(answer, rounded)
        if bound is not None:
            near |= np.abs(answer - exact) <= BOUND_SAFETY * bound
    verdict[answered & ~right & near] = "rounding"
    slack = (BOUND_SAFETY * local if local is not None else 0.0) + last
    if ctx is not None:
        own, e_own = carried_form(ctx, key, local)
        within = BOUND_SAFETY * e_own + last
    else:
        own, within = exact, slack
    own = np.broadcast_to(own, dims)
    consistent = answered & close(answer, own, within) & ~close(own, exact, within)
    if o.carry:
        verdict[(verdict == "wrong") & consistent] = "carried"
    matches: dict[tuple[int, ...], list[tuple[str, str]]] = {}
    if ctx is not None and np.any(verdict == "wrong"):
        for name, text, candidates in named(ctx, key):
            hit = np.zeros(dims, dtype=bool)
            for value in candidates:
                value = np.broadcast_to(value, dims)
                hit |= close(answer, value, slack) & ~close(value, own, slack)
            hit &= verdict == "wrong"
            for at in np.argwhere(hit):  # the cost is a 0-d array
                matches.setdefault(tuple(int(i) for i in at), []).append((name, text))
    points = o.points.get(key[0] if step is not None else f"final_{key[0]}", 1.0)
    out = []
    for pos, index in shape.indices(key):
        v = str(verdict[pos])
        if v == "missing" and not o.require_all:
            continue
        found = matches.get(pos, [])
        out.append(
            Cell(
                step=step,
                quantity=key[0],
                layer=key[1],
                index=index,
                symbol=shape.symbol(key, index, final=step is None),
                answer=float(answer[pos]) if answered[pos] else None,
                expected=float(exact[pos]),
                verdict=v,
                mistake=found[0][0] if found else None,
                explanation=found[0][1] if found else None,
                carried=float(own[pos]) if bool(consistent[pos]) else None,
                points=points,
                matches=tuple(name for name, _ in found),
            )
        )
    return out


def _resolve(cells: list[Any], shape: LayeredShape) -> list[Any]:
    """Name, on a cell that several mistakes explain, the one that explains the most cells."""
    from collections import Counter

    counts = Counter(m for c in cells for m in c.matches)
    out = []
    for c in cells:
        if len(c.matches) > 1:
            best = max(c.matches, key=lambda m: counts[m])
            c = replace(c, mistake=best, explanation=_explanation(shape, c.layer, best))
        out.append(c)
    return out


def _explanation(shape: LayeredShape, l: int | None, name: str) -> str:
    """A mistake's text on layer l's cells: its layer type's record's, else the registry's."""
    from gradcalc.check.mistakes import REGISTRY as SHARED

    if l is not None:
        layer = shape.layer(l)
        for mistake in (*layer.kind.mistakes, RESIDUAL_MISSING):
            if mistake.name == name:
                return mistake.description
    return SHARED[name].explanation


def describe(spec: LayeredSpec, steps: int) -> str:
    chain = " → ".join(layer.kind.name for layer in spec.layers)
    m = spec.x.shape[0]
    return (
        f"a network {chain}, {m} example{'s' if m != 1 else ''}, loss {spec.loss.name}, "
        f"η = {spec.learning_rate:g}, {steps} step{'s' if steps != 1 else ''}"
    )


def load_answers(text: str, name: str, shape: LayeredShape, steps: int, run: Any = None) -> Answers:
    """An answer file for a layered network: .json as strict JSON, else YAML, as for dense
    networks; with `run`, a contract document's record of its run must be that run."""
    from gradcalc.check.answers import EMPTY_HINT, parse

    return Reader(parse(text, name, EMPTY_HINT), shape, steps, run).read()
