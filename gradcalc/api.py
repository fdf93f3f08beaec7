"""The public Python API: the command line's engine without the printing.

`gradcalc/__init__.py` loads these names on first use, so `import gradcalc` stays cheap; every
function and type here is documented in docs/api.md, which scripts/gen_api_docs.py writes from
these docstrings.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast, overload

from gradcalc.doc.display import RichDisplay, capture
from gradcalc.errors import GradcalcError

if TYPE_CHECKING:
    from gradcalc.check.grade import Cell, Report
    from gradcalc.derivation.trace import DeriveTrace
    from gradcalc.layers.config import LayeredSpec
    from gradcalc.layers.engine import LayeredRun
    from gradcalc.step.config import NetworkSpec
    from gradcalc.step.trace import RunTrace

Verdict = Literal["correct", "rounding", "carried", "wrong", "missing"]


# A config of dense layers gives a NetworkSpec; one with other layer types (conv2d, pooling,
# flatten) the LayeredSpec of gradcalc.layers.config. run() takes both; a script that needs
# the dense type's fields narrows with isinstance(net, gradcalc.NetworkSpec).


def load(path: str | os.PathLike[str]) -> NetworkSpec | LayeredSpec:
    """Read and validate a YAML config file ('-' reads standard input); files it names are
    found beside it. A network of dense layers comes as a NetworkSpec, one with other layer
    types as a LayeredSpec (`isinstance(net, gradcalc.NetworkSpec)` tells them apart).

    Raises ConfigError (with the file, the key path and the line) for a config in error."""
    from gradcalc.step import config

    return config.load(os.fspath(path))


def from_yaml(text: str, name: str = "<yaml>") -> NetworkSpec | LayeredSpec:
    """Validate a config given as YAML text; `name` is what error messages call it."""
    from gradcalc.step import config

    return config.load_text(text, name)


def from_dict(data: Mapping[str, Any], name: str = "<dict>") -> NetworkSpec | LayeredSpec:
    """Validate a config given as a mapping with the YAML file's keys (lists or numpy arrays)."""
    from gradcalc.step import config

    return config.load_data(data, name)


@overload
def run(
    net: NetworkSpec,
    *,
    steps: int | None = None,
    learning_rate: float | None = None,
    optimizer: str | Mapping[str, Any] | None = None,
    round_to: int | None = None,
) -> RunTrace: ...


@overload
def run(
    net: LayeredSpec,
    *,
    steps: int | None = None,
    learning_rate: float | None = None,
    optimizer: str | Mapping[str, Any] | None = None,
    round_to: int | None = None,
) -> LayeredRun: ...


def run(
    net: NetworkSpec | LayeredSpec,
    *,
    steps: int | None = None,
    learning_rate: float | None = None,
    optimizer: str | Mapping[str, Any] | None = None,
    round_to: int | None = None,
) -> RunTrace | LayeredRun:
    """Run the config's steps (or `steps`) and return the whole trace, as `gradcalc step` does
    (a network with layer types other than dense: its LayeredRun, without `exact`).

    `learning_rate` replaces η; `optimizer` replaces the update rule, by name ("adam") or as
    the config's mapping ({"name": "adam", "beta1": 0.8}); with `round_to`, every quantity is
    rounded to that many decimals as it is produced and `trace.exact` holds the unrounded run.
    Raises NumericError when an update makes a value non-finite (the run diverged)."""
    from gradcalc.step.engine import run as run_steps

    if learning_rate is not None and not 0 < learning_rate < math.inf:
        raise GradcalcError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    if steps is not None and not _whole(steps, 0):
        raise GradcalcError(f"steps must be a whole number ≥ 0, got {steps!r}")
    if round_to is not None and not (_whole(round_to, 0) and round_to <= 12):
        raise GradcalcError(f"round_to must be a whole number from 0 to 12, got {round_to!r}")
    if optimizer is not None:
        net = _with_optimizer(net, optimizer)
    from gradcalc.step.config import NetworkSpec

    if not isinstance(net, NetworkSpec):  # layer records (gradcalc/layers/)
        from gradcalc.layers.engine import run as run_layers

        return run_layers(net, steps=steps, learning_rate=learning_rate, round_to=round_to)
    return run_steps(net, steps=steps, learning_rate=learning_rate, round_to=round_to, exact=True)


def derive(
    name: str,
    at: float | Iterable[float],
    *,
    target: float | Iterable[float] | None = None,
    params: Mapping[str, float] | None = None,
) -> DeriveTrace:
    """Work NAME (an activation, a loss or a formula in x) at a point, as `gradcalc derive`.

    An activation or a formula is worked at each value of `at` (read `.derivative` for one,
    `.derivatives` for several); a vector activation (softmax) gives `.jacobian`, a loss at
    `at` with `target` gives `.gradient`. `params` sets the function's parameters."""
    from gradcalc.derivation.engine import derive as derive_at

    def text(values: float | Iterable[float]) -> str:
        items = [values] if isinstance(values, int | float) else list(values)
        return ",".join(repr(float(v)) for v in items)

    options = [f"{k}={float(v)!r}" for k, v in (params or {}).items()]
    return derive_at(name, text(at), None if target is None else text(target), options)


def check(
    config: NetworkSpec | LayeredSpec | str | os.PathLike[str],
    answers: str | os.PathLike[str] | Mapping[str, Any],
    *,
    steps: int | None = None,
    decimals: int | None = None,
    sig_figs: int | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-6,
    carry: bool = True,
    require_all: bool = False,
    points: Mapping[str, float] | None = None,
) -> Grade:
    """Grade answers to the config's SGD steps cell by cell, as `gradcalc check` does.

    `config` is a loaded network or a config file; `answers` an answer file (YAML or JSON, or a
    `gradcalc step --format json` document) or the same keys as a mapping. `decimals` or
    `sig_figs`: the answers were worked rounding every quantity so (a document written with
    `--round N` says so itself); `carry=False` refuses a cell right only given an earlier wrong
    answer; `require_all` counts an unanswered cell as missing; `points` gives the points per
    cell of a quantity group (e.g. {"delta": 2})."""
    from gradcalc.check import answers as answers_mod
    from gradcalc.check.cells import Shape
    from gradcalc.check.grade import Options, grade

    for label, tol in (("rtol", rtol), ("atol", atol)):
        if not (isinstance(tol, int | float) and math.isfinite(tol) and tol >= 0):
            raise GradcalcError(f"{label} must be a finite number ≥ 0, got {tol!r}")
    if decimals is not None and sig_figs is not None:
        raise GradcalcError("give decimals or sig_figs, not both")
    if decimals is not None and not (_whole(decimals, 0) and decimals <= 12):
        raise GradcalcError(f"decimals must be a whole number from 0 to 12, got {decimals!r}")
    if sig_figs is not None and not (_whole(sig_figs, 1) and sig_figs <= 15):
        raise GradcalcError(f"sig_figs must be a whole number from 1 to 15, got {sig_figs!r}")
    if steps is not None and not _whole(steps, 1):
        raise GradcalcError(f"steps must be a whole number ≥ 1, got {steps!r}")
    spec = load(config) if isinstance(config, str | os.PathLike) else config
    n = spec.steps if steps is None else steps
    if n < 1:
        raise GradcalcError(f"{spec.source}: steps: 0 runs no step to check; pass steps=1")
    shape = Shape.of(spec)
    if isinstance(answers, Mapping):
        from gradcalc.yamldoc import Doc

        # The answer file's reader, on the data as YAML would give it: key paths, no lines.
        doc = Doc("<dict>", _plain(answers), {})
        sheet = answers_mod.read_sheet(doc, shape, n)
    else:
        sheet = answers_mod.load(os.fspath(answers), shape, n)
    if decimals is None and sig_figs is None and sheet.round_to is not None:
        decimals = sheet.round_to
    options = Options(
        rtol=float(rtol),
        atol=float(atol),
        decimals=decimals,
        sig_figs=sig_figs,
        carry=carry,
        require_all=require_all,
        points=dict(points or {}),
    )
    return Grade.of(grade(spec, sheet, n, options))


@dataclass(frozen=True)
class CellGrade:
    """One graded cell: where it is, the answer, the expected value and the verdict."""

    step: int | None  # None: the final forward pass
    quantity: str  # the answer file's key: z, a, delta, grad_weights, …
    layer: int | None  # l, counting the input layer as 1
    index: tuple[int | str, ...]  # 1-based, as written: (j,), (x, j) in a batch, (j, k)
    symbol: str  # as the table writes it, e.g. δ^3_1
    answer: float | None  # None: not answered
    expected: float
    verdict: Verdict
    mistake: str | None  # the known mistake the answer matches, if any
    mistakes: tuple[str, ...]  # every known mistake that fits within the rounding; mistake first
    explanation: str | None
    carried: float | None  # the value the cell's own earlier answers lead to, where it differs
    points: float
    score: float


@dataclass(frozen=True)
class Grade(RichDisplay):
    """What `gradcalc check` reports: a verdict per cell, the score and the first error.

    Displays as the command's table in a terminal (rich) and as its HTML page in Jupyter."""

    config: str
    answers: str
    cells: tuple[CellGrade, ...]
    score: float
    max_score: float
    passed: bool  # no cell wrong (nor missing, with require_all)
    first_error: CellGrade | None
    hint: str | None
    report: Report = field(repr=False, compare=False)

    @classmethod
    def of(cls, report: Report) -> Grade:
        """The public form of the grader's report."""
        cells = {id(c): _cell(c) for c in report.cells}
        first = report.first_error
        return cls(
            config=report.config,
            answers=report.answers,
            cells=tuple(cells.values()),
            score=report.score,
            max_score=report.max_score,
            passed=report.passed,
            first_error=None if first is None else cells.get(id(first.cell), _cell(first.cell)),
            hint=report.hint,
            report=report,
        )

    def to_dict(self) -> dict[str, Any]:
        """The `--format json` document, as Python data."""
        from gradcalc.check.views import document
        from gradcalc.contract import versioned

        return versioned(document(self.report))

    def to_gradescope(self) -> dict[str, Any]:
        """Gradescope's results.json (`--format gradescope`), as Python data."""
        from gradcalc.check.views import gradescope

        return gradescope(self.report)

    def explain(self, width: int = 100) -> str:
        """The table `gradcalc check` prints, as plain text `width` columns wide."""
        from gradcalc.check.views import render_table

        return capture(lambda con: render_table(self.report, con), width)

    def to_markdown(self) -> str:
        """The grading as Markdown: a table per step, the score by quantity, the first error."""
        from gradcalc.check.grade import MARKS
        from gradcalc.check.views import _note, document, first_error_lines, num, points

        out = [f"**{_md(self.answers)}** graded against `{self.config}`"]
        steps: dict[int | None, list[Cell]] = {}
        for cell in self.report.cells:
            steps.setdefault(cell.step, []).append(cell)
        for step, cells in steps.items():
            out += ["", f"#### {'Final forward pass' if step is None else f'Step {step}'}", ""]
            out += ["| quantity | answer | expected | | note |", "|---|--:|--:|:-:|---|"]
            for c in cells:
                row = [c.symbol, num(c.answer), num(c.expected), MARKS[c.verdict], _note(c)]
                out.append("| " + " | ".join(_md(v) for v in row) + " |")
        if self.report.cells:
            out += ["", "#### Score", "", "| group | ✓ | ≈ | ↳ | ✗ | score |"]
            out.append("|---|--:|--:|--:|--:|--:|")
            for g in document(self.report)["groups"]:
                tally = [str(int(g[v])) for v in ("correct", "rounding", "carried", "wrong")]
                score = f"{points(g['score'])}/{points(g['max_score'])}"
                out.append(f"| {_md(g['name'])} | {' | '.join(tally)} | {score} |")
            out.append(f"| **total** | | | | | **{points(self.score)}/{points(self.max_score)}** |")
        else:
            out += ["", "No answered cells: nothing to grade."]
        pointer = first_error_lines(self.report)
        if pointer:
            out += ["", _md(" ".join(pointer))]
        if self.hint:
            out += ["", _md(self.hint)]
        return "\n".join(out) + "\n"

    def renderables(self) -> list[Any]:
        from rich.text import Text

        return [Text(self.explain().rstrip("\n"))]

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        """`check --format html`'s page as a notebook shows it: each cell's verdict."""
        from gradcalc.check.page import blocks
        from gradcalc.doc import html

        return html.fragment(blocks(self.report))


def _cell(c: Cell) -> CellGrade:
    return CellGrade(
        step=c.step,
        quantity=c.quantity,
        layer=c.layer,
        index=c.index,
        symbol=c.symbol,
        answer=c.answer,
        expected=c.expected,
        verdict=cast(Verdict, c.verdict),
        mistake=c.mistake,
        mistakes=c.matches,
        explanation=c.explanation,
        carried=c.carried,
        points=c.points,
        score=c.score,
    )


def _md(text: str) -> str:
    """A table cell's text: pipes escaped, lines joined."""
    return " ".join(text.replace("|", "\\|").split())


def _whole(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _plain(value: Any) -> Any:
    """An answers mapping as plain YAML data: numpy arrays and numbers become lists and floats;
    anything else becomes its repr, for the answer reader to refuse with its key path."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return repr(value)


def _with_optimizer(
    net: NetworkSpec | LayeredSpec, optimizer: str | Mapping[str, Any]
) -> NetworkSpec | LayeredSpec:
    """The network with the update rule `optimizer`: a name, or {"name": ..., param: value}."""
    import dataclasses

    from gradcalc.errors import did_you_mean
    from gradcalc.functions.optimizers import REGISTRY
    from gradcalc.functions.registry import defaults

    given = {"name": optimizer} if isinstance(optimizer, str) else dict(optimizer)
    name = given.pop("name", None)
    if not isinstance(name, str):
        raise GradcalcError("optimizer: give a name, or a mapping with a 'name' key")
    if name not in REGISTRY:
        raise GradcalcError(
            f"optimizer: unknown update rule '{name}' ({did_you_mean(name, REGISTRY)})"
        )
    rule = REGISTRY[name]
    declared = {p.name: p for p in rule.params}
    params = dict(net.optimizer_params) if rule is net.optimizer else defaults(rule.params)
    for key, value in given.items():
        if key not in declared:
            raise GradcalcError(
                f"optimizer: unknown parameter '{key}' of '{name}' ({did_you_mean(key, declared)})"
                if declared
                else f"optimizer: '{name}' takes no parameters"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise GradcalcError(f"optimizer: {key} must be a number, got {value!r}")
        problem = declared[key].problem(float(value))
        if problem:
            raise GradcalcError(f"optimizer: {problem}")
        params[key] = float(value)
    return dataclasses.replace(net, optimizer=rule, optimizer_params=params)
