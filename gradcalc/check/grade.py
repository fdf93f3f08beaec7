"""Answers -> a verdict per cell, a score per quantity group, and the first error.

Each answered cell is judged in this order: correct (within rtol/atol of the exact value);
correct to the rounding (--decimals/--sig-figs: the `--round` trace's value, or within twice the
drift bound of bounds.py); carried (the value its own equation gives from the student's earlier
answers, see recompute.py); wrong with a known mistake named (mistakes.py); wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, cast

import numpy as np

from gradcalc.check import mistakes as mistakes_mod
from gradcalc.check.answers import Answers
from gradcalc.check.bounds import Bounds, Unit, decimals_unit, sig_figs_unit
from gradcalc.check.cells import (
    GROUPS,
    Key,
    Shape,
    expected,
    expected_final,
    indices,
    symbol,
)
from gradcalc.check.recompute import Context, carried, forward_output
from gradcalc.step.config import NetworkSpec
from gradcalc.step.trace import ForwardTrace, StepTrace

if TYPE_CHECKING:
    from gradcalc.layers.config import LayeredSpec

VERDICTS = ("correct", "rounding", "carried", "wrong", "missing")
MARKS = {"correct": "✓", "rounding": "≈", "carried": "↳", "wrong": "✗", "missing": "·"}
# How many times the first-order drift bound is accepted: its neglected terms are O(u²).
BOUND_SAFETY = 2.0


@dataclass(frozen=True)
class Options:
    rtol: float = 1e-4
    atol: float = 1e-6
    decimals: int | None = None
    sig_figs: int | None = None
    carry: bool = True
    require_all: bool = False
    points: dict[str, float] = field(default_factory=dict)  # points per cell of a group

    @property
    def rounding(self) -> bool:
        return self.decimals is not None or self.sig_figs is not None


@dataclass(frozen=True)
class Cell:
    step: int | None  # None: the final forward pass
    quantity: str
    layer: int | None
    index: tuple[int | str, ...]  # 1-based, as written: (j,), (x, j) in a batch, (j, k)
    symbol: str
    answer: float | None
    expected: float
    verdict: str
    mistake: str | None = None
    explanation: str | None = None
    carried: float | None = None  # the value its inputs as answered lead to, where it differs
    points: float = 1.0
    # Every known mistake whose value the answer matches; `mistake` is the one that explains
    # the most cells of the sheet (factor_of_two and a mean over two examples both halve C).
    matches: tuple[str, ...] = ()

    @property
    def group(self) -> str:
        if self.step is None:
            return f"final_{self.quantity}"
        return self.quantity

    @property
    def score(self) -> float:
        return self.points if self.verdict in ("correct", "rounding", "carried") else 0.0


@dataclass(frozen=True)
class FirstError:
    cell: Cell
    later_wrong: int  # ✗ after it
    follows: bool  # every later ✗ is right given the answers before it


@dataclass(frozen=True)
class Report:
    config: str
    answers: str
    cells: tuple[Cell, ...]
    first_error: FirstError | None
    options: Options
    hint: str | None = None  # e.g. the answers look rounded: try --decimals 3

    @property
    def score(self) -> float:
        return sum(c.score for c in self.cells)

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.cells)

    @property
    def passed(self) -> bool:
        return not any(c.verdict in ("wrong", "missing") for c in self.cells)

    def groups(self) -> list[tuple[str, list[Cell]]]:
        """Cells by quantity group, in the order of a hand solution (steps folded together)."""
        order: dict[str, list[Cell]] = {}
        for cell in self.cells:
            order.setdefault(cell.group, []).append(cell)
        return sorted(order.items(), key=lambda item: list(GROUPS).index(item[0]))


def grade(
    spec: NetworkSpec | LayeredSpec, answers: Answers, steps: int, options: Options
) -> Report:
    """Judge every answered cell (every cell with require_all) of the first `steps` steps."""
    if not isinstance(spec, NetworkSpec):  # layer records (gradcalc/layers/check.py)
        from gradcalc.layers.check import grade as layered

        return layered(spec, answers, steps, options)
    from gradcalc.step.engine import hand_round, run

    shape = Shape.of(spec)
    exact = run(spec, steps=steps)
    rounded: tuple[list[StepTrace], ForwardTrace] | None = None
    bounds: Bounds | None = None
    if options.rounding:
        unit: Unit
        if options.decimals is not None:
            rounded = _run_rounded(spec, steps, hand_round(options.decimals))
            unit = decimals_unit(options.decimals)
        else:
            assert options.sig_figs is not None
            rounded = _run_rounded(spec, steps, sig_figs_rounder(options.sig_figs))
            unit = sig_figs_unit(options.sig_figs)
        bounds = Bounds(spec, exact, unit)

    judge = _Judge(spec, shape, options)
    weights = [layer.weights for layer in spec.layers]
    biases = [layer.biases for layer in spec.layers]
    cells: list[Cell] = []
    scale = 1.0 / shape.examples if spec.reduction == "mean" else 1.0
    fused = spec.loss.fused.get(spec.layers[-1].activation.name)
    for s, st in enumerate(exact.steps, 1):
        given = answers.steps.get(s, {})
        ctx = Context(
            spec,
            shape,
            exact.learning_rate,
            scale,
            fused,
            weights,
            biases,
            # The activation parameters of this step's passes (a look-ahead rule's θ̃).
            [{**lt.params_before, **(lt.params_ahead or {})} for lt in st.layers],
            st,
            given,
            s,
            [dict(lt.optimizer_state) for lt in exact.steps[s - 2].layers] if s > 1 else None,
        )
        for key in shape.step_keys():
            answer = given.get(key)
            if answer is None and not options.require_all:
                continue
            cells += judge.quantity(
                s,
                key,
                answer,
                expected(st, key),
                expected(rounded[0][s - 1], key) if rounded else None,
                bounds.steps[s - 1][key] if bounds else None,
                bounds.local[s - 1][key] if bounds else None,
                ctx,
            )
        weights = [ctx.given("weights", l) for l in range(2, shape.L + 1)]
        biases = [ctx.given("biases", l) for l in range(2, shape.L + 1)]
    final_params = [dict(p.params) for p in exact.parameters]
    output, costs = forward_output(spec, weights, biases, final_params)
    penalty = spec.weight_decay / 2 * sum(float(np.sum(w * w)) for w in weights)
    final_carried: dict[tuple[str, int | None], np.ndarray] = {
        ("output", None): output,
        ("loss", None): np.asarray(scale * costs.sum() + penalty),
    }
    for key in shape.final_keys():
        answer = answers.final.get(key)
        if answer is None:  # the final pass is graded when answered, never required
            continue
        cells += judge.quantity(
            None,
            key,
            answer,
            expected_final(exact.final, key),
            expected_final(rounded[1], key) if rounded else None,
            bounds.final[key] if bounds else None,
            bounds.final[key] if bounds else None,
            None,
            final_carried[key],
        )
    cells = _resolve(cells)
    report = Report(spec.source, answers.source, tuple(cells), _first_error(cells), options)
    if not options.rounding:
        hint = _rounding_hint(spec, answers, steps, options, cells)
        if hint:
            report = replace(report, hint=hint)
    return report


def _rounding_hint(
    spec: NetworkSpec, answers: Answers, steps: int, options: Options, cells: list[Cell]
) -> str | None:
    """A sheet worked to a few places fails every rounded cell: say which option grades it,
    trying the decimals and the significant figures its answers are most often written with."""
    wrong = sum(c.verdict == "wrong" for c in cells)
    written = answers.digits_written()
    if not wrong or written is None or len(cells) > 5000:
        return None
    decimals, figures = written
    best, flag = 0, ""
    for name, option, n in (
        ("--decimals", "decimals", decimals),
        ("--sig-figs", "sig_figs", figures),
    ):
        if not 0 < n <= 8:
            continue
        again = grade(
            spec,
            answers,
            steps,
            replace(options, decimals=n) if option == "decimals" else replace(options, sig_figs=n),
        )
        fixed = wrong - sum(c.verdict == "wrong" for c in again.cells)
        if fixed > best:
            best, flag = fixed, f"{name} {n}"
    if not best:
        return None
    return (
        f"The answers look rounded: with {flag},\n{best} of the {wrong} ✗ would be right to the "
        "rounding."
    )


def _run_rounded(spec: NetworkSpec, steps: int, rounder) -> tuple[list[StepTrace], ForwardTrace]:
    """The step engine's steps and final pass with its rounding hook set to `rounder`."""
    if not isinstance(spec, NetworkSpec):
        from gradcalc.layers.check import run_rounded

        return run_rounded(spec, steps, rounder)
    from gradcalc.step.engine import Network

    net = Network(spec)
    net.r = rounder
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        traces = [net.step(s) for s in range(1, steps + 1)]
        return traces, net.forward_trace()


def sig_figs_rounder(n: int):
    """Round half away from zero to n significant figures, like hand_round does to decimals."""

    def rounder(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        with np.errstate(divide="ignore"):
            exponent = np.floor(np.log10(np.where(v == 0, 1.0, np.abs(v))))
        scale = 10.0 ** (n - 1 - exponent)
        return np.sign(v) * np.floor(np.abs(v) * scale + 0.5 + 1e-9) / scale + 0.0

    return rounder


class _Judge:
    def __init__(self, spec: NetworkSpec, shape: Shape, options: Options) -> None:
        self.spec, self.shape, self.o = spec, shape, options

    def close(self, answer: np.ndarray, ref: np.ndarray, extra: np.ndarray | float = 0.0):
        o = self.o
        with np.errstate(invalid="ignore"):
            return np.abs(answer - ref) <= o.atol + o.rtol * np.abs(ref) + extra

    def quantity(
        self,
        step: int | None,
        key: Key,
        answer: np.ndarray | None,
        exact: np.ndarray,
        rounded: np.ndarray | None,
        bound: np.ndarray | None,
        local: np.ndarray | None,
        ctx: Context | None,
        final_carried: np.ndarray | None = None,
    ) -> list[Cell]:
        o = self.o
        dims = self.shape.array_shape(key)
        if answer is None:
            answer = np.full(dims, np.nan)
        answered = ~np.isnan(answer)
        verdict = np.where(answered, "wrong", "missing").astype(object)
        right = answered & self.close(answer, exact)
        verdict[right] = "correct"
        if rounded is not None and bound is not None:
            near = self.close(answer, rounded) | (np.abs(answer - exact) <= BOUND_SAFETY * bound)
            verdict[answered & ~right & near] = "rounding"
        slack = BOUND_SAFETY * local if local is not None else 0.0
        if ctx is not None:
            own = (
                carried(ctx, key)
                if key[0] not in ("activation_params", "grad_activation_params")
                else exact
            )
        else:
            own = final_carried if final_carried is not None else exact
        own = np.broadcast_to(own, dims)
        consistent = answered & self.close(answer, own, slack) & ~self.close(own, exact, slack)
        if o.carry:
            verdict[(verdict == "wrong") & consistent] = "carried"
        names = np.empty(dims, dtype=object)
        for pos in np.ndindex(*dims):
            names[pos] = []
        if ctx is not None and step is not None:
            for mistake, candidates in mistakes_mod.named(ctx, key):
                hit = np.zeros(dims, dtype=bool)
                for value in candidates:
                    value = np.broadcast_to(value, dims)
                    hit |= self.close(answer, value, slack) & ~self.close(value, own, slack)
                hit &= verdict == "wrong"
                for pos in np.ndindex(*dims):
                    if hit[pos]:
                        cast(list[str], names[pos]).append(mistake.id)
        points = o.points.get(key[0] if step is not None else f"final_{key[0]}", 1.0)
        out = []
        for pos, index in indices(key, self.shape):
            v = str(verdict[pos])
            if v == "missing" and not o.require_all:
                continue
            matches = tuple(names[pos])
            m = matches[0] if matches else None
            record = mistakes_mod.REGISTRY[m] if m else None
            out.append(
                Cell(
                    step=step,
                    quantity=key[0],
                    layer=key[1],
                    index=index,
                    symbol=symbol(key, index, self.shape, final=step is None),
                    answer=float(answer[pos]) if answered[pos] else None,
                    expected=float(exact[pos]),
                    verdict=v,
                    mistake=m,
                    explanation=record.explanation if record else None,
                    carried=float(own[pos]) if bool(consistent[pos]) else None,
                    points=points,
                    matches=matches,
                )
            )
        return out


def _resolve(cells: list[Cell]) -> list[Cell]:
    """Name, on a cell that several mistakes explain, the one that explains the most cells."""
    from collections import Counter

    counts = Counter(m for c in cells for m in c.matches)
    order = list(mistakes_mod.REGISTRY)
    out = []
    for c in cells:
        if len(c.matches) > 1:
            best = max(c.matches, key=lambda m: (counts[m], -order.index(m)))
            c = replace(c, mistake=best, explanation=mistakes_mod.REGISTRY[best].explanation)
        out.append(c)
    return out


def _first_error(cells: Sequence[Cell]) -> FirstError | None:
    wrong = [i for i, c in enumerate(cells) if c.verdict == "wrong"]
    if not wrong:
        return None
    first = cells[wrong[0]]
    later = [cells[i] for i in wrong[1:]]
    return FirstError(first, len(later), all(c.carried is not None for c in later))
