"""Answer sheets: YAML or JSON -> arrays of answers (NaN where not answered), and the blank sheet.

Two shapes are read. The sheet form addresses each quantity by layer number:
`z: {2: [0.21, -0.24], 3: [-0.322]}`; the contract form is `gradcalc step --format json`'s own
document (or any subset of it), `steps: [{step, loss, layers: [{layer, z, a, ...}]}]`. Either
may be one step (`step: N` at the top) or `steps:` a list of step blocks. The file goes through
the config loader, so every refusal names the file, the key path and the line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import field
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from gradcalc.check.cells import (
    COST_QUANTITIES,
    FINAL_QUANTITIES,
    LAYER_QUANTITIES,
    PARAM_QUANTITIES,
    Key,
    Shape,
    symbol,
)
from gradcalc.errors import ConfigError, GradcalcError, KeyPath, did_you_mean
from gradcalc.limits import MAX_NODES
from gradcalc.records import mutable_record, record
from gradcalc.yamldoc import Doc, number, parse_yaml, read_text, type_name

if TYPE_CHECKING:
    from gradcalc.layers.config import LayeredSpec
    from gradcalc.step.config import NetworkSpec

STEP_KEYS = ("step", *COST_QUANTITIES, "layers", *LAYER_QUANTITIES, *PARAM_QUANTITIES)
LAYER_ITEM_KEYS = ("layer", "activation", *LAYER_QUANTITIES, *PARAM_QUANTITIES)
# What the contract says about the update rule, per step and per layer: read, not graded.
STEP_CONTRACT_KEYS = ("data_loss", "penalty", "lookahead")
LAYER_CONTRACT_KEYS = (
    "optimizer_state",
    "weights_lookahead",
    "biases_lookahead",
    "activation_params_lookahead",
)
# The rest of the contract's top level: read (sizes and examples must fit), not graded.
CONTRACT_KEYS = (
    "format_version",
    "gradcalc_version",
    "config",
    "loss_function",
    "loss_params",
    "learning_rate",
    "reduction",
    "examples",
    "sizes",
    "round",
    "initial",
    "final",
    "optimizer",
    "weight_decay",
    "steps_run",
    "show",
    "parameters",
)
TOP_KEYS = ("steps", *STEP_KEYS, *CONTRACT_KEYS, *STEP_CONTRACT_KEYS)

MISSING_HINT = "check the path, or write a blank sheet with 'gradcalc check CONFIG --template'"
EMPTY_HINT = "'gradcalc check CONFIG --template' writes a blank sheet to fill in"


@mutable_record
class Answers:
    source: str
    # step -> (quantity, layer) -> answers, NaN where not answered
    steps: dict[int, dict[Key, np.ndarray]] = field(default_factory=dict)
    final: dict[Key, np.ndarray] = field(default_factory=dict)
    # A contract document's `round: N`: it was written by `gradcalc step --round N`.
    round_to: int | None = None
    # The decimals each answer is written with (from its text), NaN where not answered: keyed
    # like `steps`, the final pass under step None.
    places: dict[int | None, dict[Key, np.ndarray]] = field(default_factory=dict)

    def digits_written(self) -> tuple[int, int] | None:
        """The most common count of decimals, and of significant figures, among the answers as
        written (their shortest repr); None when there are none."""
        from collections import Counter

        decimals: Counter[int] = Counter()
        figures: Counter[int] = Counter()
        for block in [*self.steps.values(), self.final]:
            for values in block.values():
                for v in np.ravel(values):
                    if np.isnan(v) or v == 0:
                        continue
                    text = f"{abs(float(v)):.12f}".rstrip("0")
                    whole, _, frac = text.partition(".")
                    decimals[len(frac)] += 1
                    figures[len((whole + frac).lstrip("0"))] += 1
        if not decimals:
            return None
        return decimals.most_common(1)[0][0], figures.most_common(1)[0][0]

    def typical_places(self) -> int | None:
        """The count of decimals most answers are written with (the larger on a tie). A zero
        does not vote: 0.0 says nothing of the places the rest was worked to (a ReLU or a
        max-pool zeroes most cells of a layer)."""
        from collections import Counter

        counts: Counter[int] = Counter()
        for step, block in self.places.items():
            values = self.final if step is None else self.steps.get(step, {})
            for key, places in block.items():
                value = values.get(key)
                nonzero = np.ones(places.shape, bool) if value is None else value != 0
                # Counted in C: np.unique costs ~0.1 ms a call, a few for each quantity.
                counts.update(places[np.isfinite(places) & nonzero].astype(int).tolist())
        if not counts:
            return None
        return max(counts, key=lambda n: (counts[n], n))

    def answered(self) -> int:
        blocks = [*self.steps.values(), self.final]
        return sum(int(np.count_nonzero(~np.isnan(v))) for block in blocks for v in block.values())


def load(source: str, shape: Shape, steps: int, run: Run | None = None) -> Answers:
    """Read an answer file ('-' for standard input) for a network of `shape` run `steps` steps;
    with `run`, a contract document's record of its own run must be that run."""
    name, text = read_text(source, MISSING_HINT)
    return load_text(text, name, shape, steps, run)


def load_text(text: str, name: str, shape: Shape, steps: int, run: Run | None = None) -> Answers:
    if getattr(shape, "layered", False):
        from gradcalc.layers.check import load_answers

        return load_answers(text, name, shape, steps, run)  # type: ignore[arg-type]
    doc = parse(text, name, EMPTY_HINT)
    return _Reader(doc, shape, steps, run).read()


def read_sheet(doc: Doc, shape: Shape, steps: int, run: Run | None = None) -> Answers:
    """The answers of a sheet already parsed (a file's Doc, or a mapping's), for a network of
    `shape` (dense, or layer records) run `steps` steps."""
    if getattr(shape, "layered", False):
        from gradcalc.layers.check import Reader

        return Reader(doc, shape, steps, run).read()  # type: ignore[arg-type]
    return _Reader(doc, shape, steps, run).read()


def parse(text: str, name: str, empty_hint: str) -> Doc:
    """A file named .json is read as strict JSON (RFC 8259), anything else as YAML."""
    if name.lower().endswith(".json") and text.strip():
        strict_json(text, name)
    return parse_yaml(text, name, empty_hint)


# The patterns below are compiled (and cached by re) when first used: only a sheet with text
# where numbers go, or a JSON error, needs them.
# Text that float() reads but that is no finite number (NaN, inf, ∞ as gradcalc prints it).
_NOT_FINITE = r"(?i)[-+−]?(?:nan|inf|infinity|∞|\\infty)"
# What a .json file may hold where JSON has no number: say what to write instead.
_NOT_JSON_NUMBER = r"(?<![\w\"])-?(?:NaN|Infinity)(?![\w\"])"


def strict_json(text: str, name: str) -> None:
    """Refuse, with its line, what is not JSON: a trailing comma, NaN, a comment, single quotes.
    YAML (which reads the data, with its lines) would take all of them."""
    try:
        import orjson

        loads: Callable[[str], Any] = orjson.loads
        decode_error: type[ValueError] = orjson.JSONDecodeError
    except ImportError:  # pragma: no cover - orjson is a dependency
        import json

        def loads(text: str) -> Any:
            return json.loads(text, parse_constant=_no_constant)

        decode_error = json.JSONDecodeError
    try:
        loads(text)
    except decode_error as exc:
        line = getattr(exc, "lineno", None)
        message = getattr(exc, "msg", str(exc))
        hint = "a .json file is read as strict JSON; another name is read as YAML"
        here = text.splitlines()[line - 1] if line and line <= text.count("\n") + 1 else ""
        bad = re.search(_NOT_JSON_NUMBER, here)
        if bad is not None:
            message = f"{bad.group()} is not a JSON number"
            hint = "write null for a cell left unanswered; a number must be finite"
        raise ConfigError(f"not valid JSON: {message}", source=name, line=line, hint=hint) from None
    except ValueError as exc:  # the standard library's NaN, which parse_constant refused
        raise ConfigError(
            f"not valid JSON: {exc}",
            source=name,
            hint="write null for a cell left unanswered; a number must be finite",
        ) from None


def _no_constant(name: str) -> Any:  # pragma: no cover - without orjson only
    raise ValueError(f"{name} is not a JSON number")


@record
class Run:
    """The run that answers are graded against. A `gradcalc step --format json` document records
    its own run (η, the update rule, the steps, the loss, the first forward pass): grading it
    against another run would mark right numbers wrong without saying why."""

    learning_rate: float
    optimizer: str
    optimizer_params: dict[str, float]
    steps: int
    loss: str
    loss_params: dict[str, float]
    reduction: str | None  # None for one example (the contract writes null)
    weight_decay: float
    # (a^L, C) of the first forward pass, to `round` decimals when given.
    initial: Callable[[int | None], tuple[np.ndarray, float]]

    @classmethod
    def of(cls, spec: NetworkSpec | LayeredSpec, steps: int) -> Run:
        def initial(round_to: int | None) -> tuple[np.ndarray, float]:
            from gradcalc.layers.engine import Network as Layered
            from gradcalc.step.config import NetworkSpec
            from gradcalc.step.engine import Network

            with np.errstate(all="ignore"):
                if isinstance(spec, NetworkSpec):
                    ft = Network(spec, round_to=round_to).forward_trace()
                else:  # layer records (gradcalc/layers/)
                    ft = Layered(spec, round_to=round_to).forward_trace()
            return np.asarray(ft.a[-1], dtype=float), float(ft.loss)

        return cls(
            learning_rate=float(spec.learning_rate),
            optimizer=spec.optimizer.name,
            optimizer_params={k: float(v) for k, v in spec.optimizer_params.items()},
            steps=steps,
            loss=spec.loss.name,
            loss_params={k: float(v) for k, v in spec.loss_params.items()},
            reduction=spec.reduction if spec.batch else None,
            weight_decay=float(spec.weight_decay),
            initial=initial,
        )


class _Reader:
    def __init__(self, doc: Doc, shape: Shape, steps: int, run: Run | None = None) -> None:
        self.doc, self.shape, self.steps, self.run = doc, shape, steps, run
        self.out = Answers(doc.source)
        self._places: list[float] = []  # the written decimals of each number read, in order

    def read(self) -> Answers:
        doc, data = self.doc, self.doc.data
        if not isinstance(data, dict):
            raise doc.error(
                (),
                f"an answer sheet is a mapping of quantities (z, a, loss, delta, ...), "
                f"got {type_name(data)}",
                EMPTY_HINT,
            )
        self._keys(data, (), TOP_KEYS, "an answer sheet")
        self._contract(data)
        if "steps" in data:
            clash = [k for k in STEP_KEYS if k in data]
            if clash:
                raise doc.error(
                    (clash[0],),
                    "give the quantities of one step at the top, or 'steps:' a list of step "
                    "blocks, not both",
                )
            blocks = data["steps"]
            if not isinstance(blocks, list):
                raise doc.error(
                    ("steps",), f"expected a list of step blocks, got {type_name(blocks)}"
                )
            for i, block in enumerate(blocks):
                if not isinstance(block, dict):
                    raise doc.error(
                        ("steps", i),
                        f"expected a step block (step: N and its quantities), "
                        f"got {type_name(block)}",
                    )
                self._block(block, ("steps", i), default_step=i + 1)
        else:
            self._block(data, (), default_step=1)
        return self.out

    # -- the structure -----------------------------------------------------------------------
    def _keys(self, mapping: dict[str, Any], path: KeyPath, allowed: tuple[str, ...], what: str):
        for key in mapping:
            if key not in allowed:
                raise self.doc.error(
                    (*path, key), f"unknown key in {what}", did_you_mean(key, allowed)
                )

    def _contract(self, data: dict[str, Any]) -> None:
        shape = self.shape
        if "sizes" in data and data["sizes"] != list(shape.sizes):
            raise self.doc.error(
                ("sizes",),
                f"the answers are for a {_dashed(data['sizes'])} network, the config's is "
                f"{_dashed(shape.sizes)}",
            )
        if "examples" in data and data["examples"] != shape.examples:
            raise self.doc.error(
                ("examples",),
                f"the answers are for {data['examples']} examples, the config has {shape.examples}",
            )
        rounded = data.get("round")
        if rounded is not None:
            if isinstance(rounded, bool) or not isinstance(rounded, int) or not 0 <= rounded <= 12:
                raise self.doc.error(
                    ("round",), f"expected null or decimals 0..12, got {type_name(rounded)}"
                )
            self.out.round_to = rounded
        if self.run is not None:
            self._run(data, self.run)
        final = data.get("final")
        if final is None:
            return
        if not isinstance(final, dict):
            raise self.doc.error(
                ("final",), f"expected a mapping with loss and output, got {type_name(final)}"
            )
        # The contract's final pass also splits its cost into data_loss and penalty: not graded.
        self._keys(final, ("final",), (*FINAL_QUANTITIES, "data_loss", "penalty"), "'final'")
        for q in FINAL_QUANTITIES:
            if final.get(q) is not None:
                key: Key = (q, None)
                self.out.final[key] = self._cells(final[q], ("final", q), key)
                self.out.places.setdefault(None, {})[key] = self._taken(self.out.final[key])

    def _run(self, data: dict[str, Any], run: Run) -> None:
        """Refuse a document made by another run than the one graded (see Run)."""
        doc = self.doc
        eta = data.get("learning_rate")
        if _is_number(eta) and not _same(eta, run.learning_rate):
            raise doc.error(
                ("learning_rate",),
                f"the answers were made with η = {eta:g}, the run graded has η = "
                f"{run.learning_rate:g}",
                f"grade them with --learning-rate {float(eta)!r}",
            )
        rule = data.get("optimizer")
        if isinstance(rule, dict) and isinstance(rule.get("name"), str):
            self._optimizer(rule, run)
        steps_run = data.get("steps_run")
        if _is_number(steps_run) and steps_run != run.steps:
            k = int(steps_run)
            raise doc.error(
                ("steps_run",),
                f"the answers are of a run of {k} step{'s' if k != 1 else ''}, the run graded "
                f"has {run.steps}",
                f"grade them with --steps {k}" if k >= 1 else None,
            )
        loss = data.get("loss_function")
        if isinstance(loss, str) and loss != run.loss:
            raise doc.error(
                ("loss_function",),
                f"the answers were made with the loss '{loss}', the config's is '{run.loss}'",
            )
        loss_params = data.get("loss_params")
        if isinstance(loss_params, dict):
            for name, value in loss_params.items():
                mine = run.loss_params.get(name)
                if _is_number(value) and mine is not None and not _same(value, mine):
                    raise doc.error(
                        ("loss_params", name),
                        f"the answers were made with {name} = {value:g}, the config's is {mine:g}",
                    )
        reduction = data.get("reduction")
        if isinstance(reduction, str) and run.reduction and reduction != run.reduction:
            raise doc.error(
                ("reduction",),
                f"the answers were made with the batch cost's {reduction}, the config's "
                f"reduction is {run.reduction}",
            )
        decay = data.get("weight_decay")
        if _is_number(decay) and not _same(decay, run.weight_decay):
            raise doc.error(
                ("weight_decay",),
                f"the answers were made with weight_decay {decay:g}, the config's is "
                f"{run.weight_decay:g}",
            )
        initial = data.get("initial")
        if isinstance(initial, dict):
            self._initial(initial, run)

    def _optimizer(self, rule: dict[str, Any], run: Run) -> None:
        name = rule["name"]
        if name != run.optimizer:
            from gradcalc.functions.optimizers import REGISTRY
            from gradcalc.functions.registry import defaults

            params = {k: v for k, v in rule.items() if k != "name"}
            known = REGISTRY.get(name)
            flag = known is not None and all(
                _is_number(v) and _same(v, defaults(known.params).get(k, math.nan))
                for k, v in params.items()
            )
            hint = (
                f"grade them with --optimizer {name}"
                if flag
                else f"set the config's optimizer to {name} with the document's parameters"
            )
            raise self.doc.error(
                ("optimizer", "name"),
                f"the answers were made with the update rule '{name}', the run graded uses "
                f"'{run.optimizer}'",
                hint,
            )
        for key, value in rule.items():
            mine = run.optimizer_params.get(key)
            if key != "name" and _is_number(value) and mine is not None and not _same(value, mine):
                raise self.doc.error(
                    ("optimizer", key),
                    f"the answers were made with {name}'s {key} = {value:g}, the config's is "
                    f"{mine:g}",
                )

    def _initial(self, initial: dict[str, Any], run: Run) -> None:
        """The document's first forward pass must be the config's: else it was made from other
        inputs, targets or initial weights, and every cell would be marked wrong."""
        output, loss = run.initial(self.out.round_to)
        said = (
            "they were made from other inputs, targets or initial weights than the config's, "
            "or rounded without saying so (round: N)"
        )
        if initial.get("output") is not None:
            key: Key = ("output", None)
            theirs = self._cells(initial["output"], ("initial", "output"), key)
            self._places.clear()  # read to be compared, not graded
            if not np.allclose(theirs, output, rtol=1e-9, atol=1e-12, equal_nan=True):
                at = np.unravel_index(np.argmax(np.abs(theirs - output)), output.shape)
                raise self.doc.error(
                    ("initial", "output"),
                    f"the answers' first forward pass gives a^L = {theirs[at]:.6g} where the "
                    f"config gives {output[at]:.6g}: {said}",
                )
        value = initial.get("loss")
        if _is_number(value) and not _same(value, loss, 1e-9):
            raise self.doc.error(
                ("initial", "loss"),
                f"the answers' first forward pass has C = {value:.6g}, the config's "
                f"{loss:.6g}: {said}",
            )

    def _block(self, block: dict[str, Any], path: KeyPath, default_step: int) -> None:
        doc = self.doc
        self._keys(block, path, (*STEP_KEYS, *STEP_CONTRACT_KEYS), "a step block")
        step = block.get("step", default_step)
        if isinstance(step, float) and step.is_integer():
            step = int(step)
        if isinstance(step, bool) or not isinstance(step, int):
            raise doc.error((*path, "step"), f"expected a step number, got {type_name(step)}")
        if not 1 <= step <= self.steps:
            runs = f"{self.steps} step{'s' if self.steps != 1 else ''}"
            raise doc.error(
                (*path, "step"),
                f"there is no step {step}: the config runs {runs}",
                f"pass --steps {step}" if step > self.steps else None,
            )
        if step in self.out.steps:
            raise doc.error((*path, "step"), f"step {step} is answered twice")
        answers: dict[Key, np.ndarray] = {}
        self.out.steps[step] = answers
        self._step = step
        for q in COST_QUANTITIES:
            if q == "losses" and not self.shape.batch and q in block:
                raise doc.error(
                    (*path, q),
                    "'losses' (one cost per example) is for a batch; one example has only 'loss'",
                )
            if block.get(q) is not None:
                key: Key = (q, None)
                answers[key] = self._cells(block[q], (*path, q), key)
                self.out.places.setdefault(step, {})[key] = self._taken(answers[key])
        for q in (*LAYER_QUANTITIES, *PARAM_QUANTITIES):
            by_layer = block.get(q)
            if by_layer is None:
                continue
            if not isinstance(by_layer, dict):
                raise doc.error(
                    (*path, q),
                    f"expected a mapping from layer number to values, e.g. {{2: [...]}}, "
                    f"got {type_name(by_layer)}",
                )
            for name, value in by_layer.items():
                l = self._layer(name, (*path, q, name))
                if value is not None:
                    self._put(answers, (q, l), value, (*path, q, name))
        layers = block.get("layers")
        if layers is None:
            return
        if not isinstance(layers, list):
            raise doc.error(
                (*path, "layers"),
                f"expected a list of layer records (layer: l, z: ..., a: ...), "
                f"got {type_name(layers)}",
            )
        for i, item in enumerate(layers):
            where = (*path, "layers", i)
            if not isinstance(item, dict):
                raise doc.error(where, f"expected a layer record, got {type_name(item)}")
            self._keys(item, where, (*LAYER_ITEM_KEYS, *LAYER_CONTRACT_KEYS), "a layer record")
            if "layer" not in item:
                raise doc.error(where, "missing key 'layer' (the layer number l = 2..L)")
            l = self._layer(item["layer"], (*where, "layer"))
            for q in (*LAYER_QUANTITIES, *PARAM_QUANTITIES):
                if item.get(q) is not None:
                    self._put(answers, (q, l), item[q], (*where, q))

    def _put(self, answers: dict[Key, np.ndarray], key: Key, value: Any, path: KeyPath) -> None:
        if key in answers:
            raise self.doc.error(path, f"layer {key[1]}'s {key[0]} is answered twice")
        answers[key] = self._cells(value, path, key)
        self.out.places.setdefault(self._step, {})[key] = self._taken(answers[key])

    def _taken(self, values: np.ndarray) -> np.ndarray:
        """The written decimals of the numbers just read into `values`, in its shape."""
        n = values.size
        places = np.array(self._places[-n:] if n else [], dtype=float).reshape(values.shape)
        self._places.clear()
        return places

    def _layer(self, name: Any, path: KeyPath) -> int:
        L = self.shape.L
        text = str(name)
        digits = text.lstrip("-")
        # ASCII digits only ("²".isdigit() is true, int("²") fails), and few of them.
        if isinstance(name, bool) or not (digits.isascii() and digits.isdigit()) or len(text) > 9:
            raise self.doc.error(
                path, f"expected a layer number 2..{L}, got {type_name(name)}", "e.g. 2"
            )
        l = int(text)
        if l == 1:
            raise self.doc.error(path, "layer 1 is the input; answers start at layer 2")
        if not 2 <= l <= L:
            raise self.doc.error(path, f"there is no layer {l}: the network has layers 2..{L}")
        return l

    # -- the numbers -------------------------------------------------------------------------
    def _cells(self, value: Any, path: KeyPath, key: Key) -> np.ndarray:
        shape = self.shape
        q, l = key
        dims = shape.array_shape(key)
        if q in PARAM_QUANTITIES:
            names = shape.param_names(key)
            return self._params(value, path, names, l)
        if not dims:
            return np.asarray(self.number(value, path))
        if len(dims) == 1:
            what = {
                "losses": "one cost per example",
                "grad_biases": f"one per unit of layer {l}",
                "biases": f"one per unit of layer {l}",
            }[q]
            return self._vector(value, path, dims[0], what)
        rows, width = dims
        if q in ("z", "a", "delta", "output"):
            unit = f"one per unit of layer {l if l else shape.L}"
            if not shape.batch:
                return self._vector(value, path, width, unit)[None, :]
            if (
                isinstance(value, list)
                and width == 1
                and all(not isinstance(v, list) for v in value)
            ):
                value = [[v] for v in value]  # a batch of one-unit layers may be written flat
            return self._matrix(value, path, rows, width, "example", unit)
        if isinstance(value, list) and rows == 1 and all(not isinstance(v, list) for v in value):
            value = [value]  # one row may be written flat
        return self._matrix(
            value, path, rows, width, "unit j", f"w^{l}_jk for k = 1..{width}", transpose_hint=True
        )

    def number(self, value: Any, path: KeyPath, text: str | None = None) -> float:
        if value is None:
            self._places.append(np.nan)
            return float("nan")
        if isinstance(value, str):
            written = ascii_number(value)  # a number as gradcalc prints it: −0.240, 1.2×10⁻⁵
            if written is not None:
                value, text = float(written), written
            elif re.fullmatch(_NOT_FINITE, value.strip()):
                # float() reads "NaN": the YAML layer's hint would be "remove the quotes".
                raise self.doc.error(
                    path,
                    f"expected a finite number, got {value.strip()!r}",
                    "write null for a cell left unanswered",
                )
        out = number(self.doc, value, path)
        if text is None:
            text = value if isinstance(value, str) else self.doc.texts.get(path, repr(value))
        self._places.append(written_decimals(text))
        return out

    def _vector(self, value: Any, path: KeyPath, n: int, what: str) -> np.ndarray:
        if not isinstance(value, list):
            if n == 1 and not isinstance(value, dict):
                return np.array([self.number(value, path)])
            raise self.doc.error(
                path, f"expected a list of {n} numbers ({what}), got {type_name(value)}"
            )
        if len(value) != n:
            raise self.doc.error(path, f"expected {n} numbers ({what}), got {len(value)}")
        texts: list[str | None] = getattr(value, "texts", None) or [None] * n
        return np.array(
            [self.number(v, (*path, i), texts[i]) for i, v in enumerate(value)], dtype=float
        )

    def _matrix(
        self,
        value: Any,
        path: KeyPath,
        rows: int,
        width: int,
        row_name: str,
        what: str,
        transpose_hint: bool = False,
    ) -> np.ndarray:
        if not isinstance(value, list):
            raise self.doc.error(
                path,
                f"expected {rows} rows (one per {row_name}) of {width} numbers, "
                f"got {type_name(value)}",
            )
        hint = None
        if (
            transpose_hint
            and rows != width
            and len(value) == width
            and all(isinstance(r, list) and len(r) == rows for r in value)
        ):
            hint = "that is the transpose: row j holds the unit's weights w_jk, k = 1..n_(l−1)"
        if len(value) != rows:
            raise self.doc.error(
                path,
                f"expected {rows} rows (one per {row_name}) of {width} numbers, got "
                f"{len(value)} rows",
                hint,
            )
        out = np.empty((rows, width))
        for i, row in enumerate(value):
            if row is None:
                out[i] = np.nan
                self._places += [np.nan] * width
                continue
            out[i] = self._vector(row, (*path, i), width, what)
        return out

    def _params(self, value: Any, path: KeyPath, names: tuple[str, ...], l: int | None):
        if not names:
            raise self.doc.error(path, f"layer {l}'s activation has no such parameters")
        if not isinstance(value, dict):
            raise self.doc.error(
                path,
                f"expected a mapping of parameter values, e.g. {{{names[0]}: 0.25}}, "
                f"got {type_name(value)}",
            )
        self._keys(value, path, names, f"layer {l}'s parameters")
        return np.array([self.number(value.get(n), (*path, n)) for n in names], dtype=float)


# ---- numbers as gradcalc writes them ---------------------------------------------------------

# gradcalc's writers (gradcalc/doc/numbers.py) print −0.240 with a Unicode minus, 1.23×10⁻⁵ on the
# terminal and 1.23 \times 10^{-5} in TeX (Markdown, LaTeX), a negative operand in parentheses,
# and Python's 1e-05 in the tables. A number copied from any of them is read back; so are thin,
# narrow no-break and no-break spaces (and TeX's \,) between digit groups.
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻", "0123456789+-")
_GROUP_SPACE = r"(?a)(?<=\d)(?:[\u2009\u202f\u00a0]|\\,)(?=\d)"
_WRITTEN = r"""(?xa)(?P<mantissa>[-+]?(?:\d+(?:\.\d*)?|\.\d+))
    (?:[eE](?P<e>[-+]?\d+)
      |\s*(?:×|·|\\times|\\cdot)\s*10
       (?:\^\{(?P<tex>[-+]?\d+)\}|\^(?P<caret>[-+]?\d+)|(?P<sup>[⁺⁻]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+))
    )?"""
# Marks that only a written-out number has: a plain decimal in quotes is still refused (it is
# text in YAML: "remove the quotes").
_WRITTEN_MARKS = r"[−×·⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻$()\u2009\u202f\u00a0]|\\times|\\cdot|\\,"


def ascii_number(text: str) -> str | None:
    """The number `text` writes, as ASCII that float() reads ("−0.240" -> "-0.240", "1.2×10⁻⁵"
    -> "1.2e-5"), or None when it is no number gradcalc writes. The digits are kept as written,
    so the precision a number is written to can be read from the result."""
    if len(text) > 500 or not re.search(_WRITTEN_MARKS, text):
        return None
    body = text.strip()
    if len(body) > 1 and body[0] == body[-1] == "$":
        body = body[1:-1].strip()
    if len(body) > 1 and body[0] == "(" and body[-1] == ")":
        body = body[1:-1].strip()
    body = re.sub(_GROUP_SPACE, "", body.replace("−", "-"))
    match = re.fullmatch(_WRITTEN, body)
    if match is None:
        return None
    mantissa = match["mantissa"]
    exponent = match["e"] or match["tex"] or match["caret"]
    if match["sup"]:
        exponent = match["sup"].translate(_SUPERSCRIPTS)
    return mantissa if exponent is None else f"{mantissa}e{exponent}"


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(a: float, b: float, rtol: float = 1e-12) -> bool:
    return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=1e-300)


def written_decimals(text: str) -> float:
    """How many decimals a number is written with: 0.550 → 3, 12 → 0, 2.5e-3 → 4, 1.2×10⁻⁵ → 6
    (negative for a coarser last place: 3e2 → −2); NaN for text that is not a number."""
    text = text.strip().replace("_", "").replace("\u2212", "-").replace("\u2009", "")
    mantissa, times, power = text.partition("×10")
    if times:
        power = power.translate(_SUPERSCRIPTS)
    else:
        mantissa, _, power = text.lower().partition("e")
    digits = mantissa.lstrip("+-")
    whole, _, frac = digits.partition(".")
    if not (whole + frac).isdigit() or not (whole + frac).isascii():
        return float("nan")
    try:
        exponent = int(power) if power else 0
    except ValueError:
        return float("nan")
    return float(len(frac) - exponent)


def _dashed(sizes: Any) -> str:
    if isinstance(sizes, list | tuple):
        return "-".join(str(s) for s in sizes)
    return str(sizes)


# ---- the blank sheet -------------------------------------------------------------------------


def sheet_cells(shape: Shape) -> int:
    """The cells of one step's answer sheet."""
    return sum(math.prod(shape.array_shape(key)) for key in shape.step_keys())


def check_template_size(shape: Shape, steps: int) -> None:
    """Refuse, before writing it, a blank sheet that no answer file could hold (the YAML layer
    reads at most MAX_NODES values): it could never be graded."""
    per_step = sheet_cells(shape)
    total = per_step * steps
    if total <= MAX_NODES:
        return
    many = f"{steps:,} steps × {per_step:,} cells" if steps > 1 else f"{per_step:,} cells"
    hint = (
        "ask for fewer steps with --steps N"
        if per_step <= MAX_NODES
        else "write a sheet by hand with the quantities to grade: any may be left out"
    )
    raise GradcalcError(
        f"--template: a blank sheet of {total:,} cells ({many}) is more than the "
        f"{MAX_NODES:,} values an answer file may hold, so it could not be graded; {hint}"
    )


def template(shape: Shape, steps: int, source: str, describe: str, graded: str) -> str:
    """A blank answer sheet for every quantity of `steps` steps, with comments in Nielsen's
    notation; it loads back as an empty set of answers."""
    if getattr(shape, "layered", False):
        from gradcalc.layers.check import template as layered

        return layered(shape, steps, source, describe, graded)  # type: ignore[arg-type]
    lines = [
        f"# Answers for {source}: {describe}.",
        "# Replace each null with your number; leave null what you do not answer.",
        f"# Grade with: gradcalc check {graded} ANSWERS.yaml",
    ]
    if steps == 1:
        lines.append("step: 1")
        lines += _block(shape, "")
        return "\n".join(lines) + "\n"
    lines.append("steps:")
    block = "\n".join(_block(shape, "    ")) + "\n"  # the same for every step
    return "\n".join(lines) + "\n" + "".join(f"  - step: {s}\n{block}" for s in range(1, steps + 1))


def template_json(shape: Shape, steps: int) -> str:
    """The blank sheet as JSON (the sheet form, no comments): it loads back as no answers."""
    import json

    if getattr(shape, "layered", False):
        from gradcalc.layers.check import template_json as layered

        return layered(shape, steps)  # type: ignore[arg-type]

    def dump(value: Any) -> str:
        return json.dumps(value, separators=(", ", ": "))

    fields: list[str] = []
    by_quantity: dict[str, dict[str, Any]] = {}
    for key in shape.step_keys():
        q, l = key
        dims = shape.array_shape(key)
        blank: Any
        if q in PARAM_QUANTITIES:
            blank = dict.fromkeys(shape.param_names(key))
        elif q in ("z", "a", "delta") and not shape.batch:
            blank = [None] * dims[-1]
        elif len(dims) == 2:
            blank = [[None] * dims[1] for _ in range(dims[0])]
        else:
            blank = [None] * dims[0] if dims else None
        if l is None:
            fields.append(f'"{q}": {dump(blank)}')
        else:
            by_quantity.setdefault(q, {})[str(l)] = blank
    for q, layers in by_quantity.items():
        inner = ",\n".join(f'        "{l}": {dump(v)}' for l, v in layers.items())
        fields.append(f'"{q}": {{\n{inner}\n      }}')
    body = ",\n".join(f"      {f}" for f in fields)
    blocks = ",\n".join(f'    {{\n      "step": {s},\n{body}\n    }}' for s in range(1, steps + 1))
    return f'{{\n  "steps": [\n{blocks}\n  ]\n}}\n'


_COMMENTS = {
    "z": "z^l = w^l a^(l−1) + b^l",
    "a": "a^l = f(z^l)",
    "losses": "C_x, the cost of each example",
    "loss": "C, the cost before the update",
    "delta": "δ^l = ∂C/∂z^l (BP1 for l = L, BP2 below it)",
    "grad_weights": "∂C/∂w^l_jk = a^(l−1)_k δ^l_j (BP4); row j, column k",
    "grad_biases": "∂C/∂b^l_j = δ^l_j (BP3)",
    "grad_activation_params": "∂C/∂p for the learned activation parameters",
    "weights": "w^l_jk after the update w → w − η ∂C/∂w; row j, column k",
    "biases": "b^l_j after the update b → b − η ∂C/∂b",
    "activation_params": "the activation's parameters after the update",
}


def _block(shape: Shape, pad: str) -> list[str]:
    out: list[str] = []
    by_quantity: dict[str, list[Key]] = {}
    for key in shape.step_keys():
        by_quantity.setdefault(key[0], []).append(key)
    for q, keys in by_quantity.items():
        if keys[0][1] is None:
            key = keys[0]
            if q == "losses":
                nulls = "[" + ", ".join("null" for _ in range(shape.examples)) + "]"
                out.append(f"{pad}{q}: {nulls}  # {_COMMENTS[q]}, x = 1..{shape.examples}")
            else:
                out.append(f"{pad}{q}: null  # {_COMMENTS[q]}")
            continue
        out.append(f"{pad}{q}:  # {_COMMENTS[q]}")
        for key in keys:
            out += _layer_lines(shape, key, pad + "  ")
    return out


# Cells of a row named one by one in a comment of the blank sheet; a longer row names its first
# two and its last, so that a sheet for a wide layer stays small and quick to write.
_NAMED = 6


def _names(key: Key, shape: Shape, row: int | None, n: int) -> str:
    """The symbols of a row's n cells (row None: a vector), for the sheet's comment."""
    shown = range(n) if n <= _NAMED else (0, 1, n - 1)
    index = [(i + 1,) if row is None else (row + 1, i + 1) for i in shown]
    names = [symbol(key, at, shape).split(" (x = ")[0] for at in index]
    return ", ".join(names) if n <= _NAMED else f"{names[0]}, {names[1]}, …, {names[2]}"


def _layer_lines(shape: Shape, key: Key, pad: str) -> list[str]:
    q, l = key
    dims = shape.array_shape(key)
    if q in PARAM_QUANTITIES:
        labels = [symbol(key, (n,), shape) for n in shape.param_names(key)]
        body = ", ".join(f"{n}: null" for n in shape.param_names(key))
        return [f"{pad}{l}: {{{body}}}  # " + ", ".join(labels)]
    batch_rows = q in ("z", "a", "delta") and shape.batch
    if len(dims) == 1 or (q in ("z", "a", "delta") and not batch_rows):
        n = dims[-1]
        nulls = ", ".join(["null"] * n)
        return [f"{pad}{l}: [{nulls}]  # " + _names(key, shape, None, n)]
    rows, width = dims
    out = [f"{pad}{l}:"]
    nulls = ", ".join(["null"] * width)
    for r in range(rows):
        lead = f"x = {r + 1}: " if batch_rows else ""
        names = _names(key, shape, r, width)
        out.append(f"{pad}  - [{nulls}]  # {lead}{names}")
    return out


# ---- points per group ------------------------------------------------------------------------


MAX_POINTS = 1_000_000


def load_points(source: str) -> dict[str, float]:
    """A YAML mapping of quantity group -> points per cell (`delta: 2`); others count 1."""
    from gradcalc.check.cells import GROUPS

    name, text = read_text(source, "check the path of the --points file")
    doc = parse(text, name, "write e.g. 'delta: 2' for two points per δ cell")
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error(
            (), f"expected a mapping of quantity groups to points, got {type_name(data)}"
        )
    out: dict[str, float] = {}
    for key, value in data.items():
        if key not in GROUPS:
            raise doc.error((key,), "unknown quantity group", did_you_mean(key, GROUPS))
        points = number(doc, value, (key,))
        if not 0 <= points <= MAX_POINTS:
            # A score is a sum of points: a bound keeps every total finite.
            raise doc.error(
                (key,), f"points per cell must be between 0 and {MAX_POINTS:,}, got {points:g}"
            )
        out[key] = points
    return out
