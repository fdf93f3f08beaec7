"""Answers -> a verdict per cell, a score per quantity group, and the first error.

Each answer is read to a precision: --decimals N, --sig-figs N, or, with neither, the decimals
it is written with (never fewer than most of the sheet's numbers have). Each answered cell is
then judged in this order: correct (within rtol/atol of the exact value); correct to the
rounding (within half a unit of its last place of the exact value, the `--round` trace's value,
within twice the drift bound of bounds.py, or what its own equation gives from earlier answers
that are themselves right, see recompute.py); carried (what its own equation gives from the
earlier answers, some of them wrong); wrong, with every known mistake named whose value it
matches within the same allowance (mistakes.py); wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import field, replace
from functools import cache, partial
from typing import TYPE_CHECKING, TypeVar, cast

import numpy as np

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
from gradcalc.check.recompute import Context, Form, exact_steps, forms, forward_output, step_bytes
from gradcalc.records import record
from gradcalc.step.config import NetworkSpec
from gradcalc.step.trace import ForwardTrace, StepTrace

if TYPE_CHECKING:
    from gradcalc.check.mistakes import Mistake
    from gradcalc.layers.config import LayeredSpec

VERDICTS = ("correct", "rounding", "carried", "wrong", "missing")
MARKS = {"correct": "✓", "rounding": "≈", "carried": "↳", "wrong": "✗", "missing": "·"}
# How many times the first-order drift bound is accepted: its neglected terms are O(u²).
BOUND_SAFETY = 2.0
# Written with more decimals than this, an answer is a program's full-precision number.
MAX_WRITTEN_PLACES = 12
# The traces a rounded grading may keep just to suggest --decimals/--sig-figs.
HINT_BYTES = 25_000_000


@record
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


@record
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
    # Every known mistake whose value the answer matches within its allowance, the one that
    # explains the most cells of the sheet first (factor_of_two and a mean over two examples
    # both halve C): `mistake` is that first one, and a report names them all.
    matches: tuple[str, ...] = ()

    @property
    def mistakes_text(self) -> str | None:
        """The mistakes that explain the answer: 'a', or 'a or b' when the rounding cannot
        tell them apart."""
        return " or ".join(self.matches) if self.matches else self.mistake

    @property
    def group(self) -> str:
        if self.step is None:
            return f"final_{self.quantity}"
        return self.quantity

    @property
    def score(self) -> float:
        return self.points if self.verdict in ("correct", "rounding", "carried") else 0.0


@record
class FirstError:
    cell: Cell
    later_wrong: int  # ✗ after it
    follows: bool  # every later ✗ is right given the answers before it


@record
class Report:
    config: str
    answers: str
    cells: tuple[Cell, ...]
    first_error: FirstError | None
    options: Options
    hint: str | None = None  # e.g. the answers look rounded: try --decimals 3
    # Without --decimals or --sig-figs: the decimals most answers are written with, if few.
    written_places: int | None = None

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
    shape = Shape.of(spec)
    precision = _Precision(options, answers)
    # Only the steps graded are kept; the drift bound of a rounded sheet runs through them all.
    every = precision.unit is not None or options.require_all
    exact = exact_steps(spec, steps, None if every else answers.steps.keys())
    # The rounded run and the drift bounds are worked out when an answer is first judged that is
    # neither right nor within half a unit of its last place (or when an input not answered is
    # used): a sheet rounded well never needs them.
    rounded: Rounded | None = None
    bounds: Later[Bounds] | None = None
    if (unit := precision.unit) is not None:
        rounded = cache(lambda: _run_rounded(spec, steps, precision.rounder))
        bounds = cache(lambda: Bounds(spec, exact, unit))

    judge = _Judge(spec, shape, options)
    weights = [layer.weights for layer in spec.layers]
    biases = [layer.biases for layer in spec.layers]
    # The parameters before the step from the answers judged sound (✓, ≈) only, exact elsewhere.
    sound_weights, sound_biases = list(weights), list(biases)
    w_allow = [np.zeros(w.shape) for w in weights]
    b_allow = [np.zeros(b.shape) for b in biases]
    cells: list[Cell] = []
    scale = 1.0 / shape.examples if spec.reduction == "mean" else 1.0
    fused = spec.loss.fused.get(spec.layers[-1].activation.name)
    for st in exact.steps:
        s = st.step
        if s > 1 and (s - 1) not in answers.steps:
            # The step before was not graded: its parameters are the exact ones.
            weights = [lt.weights_before for lt in st.layers]
            biases = [lt.biases_before for lt in st.layers]
            if not every:
                sound_weights, sound_biases = list(weights), list(biases)
                w_allow = [np.zeros(w.shape) for w in weights]
                b_allow = [np.zeros(b.shape) for b in biases]
        given = answers.steps.get(s, {})
        places = answers.places.get(s, {})
        allowances: dict[Key, np.ndarray] = {}
        ctx, sound = (
            Context(
                spec,
                shape,
                exact.learning_rate,
                scale,
                fused,
                w,
                b,
                # The activation parameters of this step's passes (a look-ahead rule's θ̃).
                [{**lt.params_before, **(lt.params_ahead or {})} for lt in st.layers],
                st,
                answered,
                s,
                [dict(lt.optimizer_state_before) for lt in st.layers] if s > 1 else None,
                allowances,
                _Drift(bounds, s - 1) if bounds else None,
                w_allow,
                b_allow,
                precision.unit,
            )
            for w, b, answered in ((weights, biases, given), (sound_weights, sound_biases, {}))
        )
        for key in shape.step_keys():
            answer = given.get(key)
            if answer is None and not options.require_all:
                continue
            dims = shape.array_shape(key)
            written = np.broadcast_to(places.get(key, np.nan), dims)
            values = np.full(dims, np.nan) if answer is None else answer
            u = precision.cell(values, written)
            allowances[key] = np.where(np.isnan(values), np.nan, u)
            graded, unsound = judge.quantity(
                s,
                key,
                values,
                expected(st, key),
                u,
                _rounded_step(rounded, s, key),
                _bound_step(bounds, s, key),
                partial(forms_of, ctx, sound, key),
                ctx,
            )
            cells += graded
            if answer is not None:
                sound.answers[key] = np.where(unsound, np.nan, answer)
        weights = [ctx.given("weights", l) for l in range(2, shape.L + 1)]
        biases = [ctx.given("biases", l) for l in range(2, shape.L + 1)]
        sound_weights = [sound.given("weights", l) for l in range(2, shape.L + 1)]
        sound_biases = [sound.given("biases", l) for l in range(2, shape.L + 1)]
        w_allow = [ctx.allow("weights", l) for l in range(2, shape.L + 1)]
        b_allow = [ctx.allow("biases", l) for l in range(2, shape.L + 1)]
    if not exact.steps or exact.steps[-1].step != steps:
        # The last step was not graded: the final pass runs from the exact parameters.
        weights = [p.weights for p in exact.parameters]
        biases = [p.biases for p in exact.parameters]
        sound_weights, sound_biases = list(weights), list(biases)
    final_params = [dict(p.params) for p in exact.parameters]
    final_carried = _final(spec, weights, biases, final_params, scale)
    final_sound = _final(spec, sound_weights, sound_biases, final_params, scale)
    places = answers.places.get(None, {})
    for key in shape.final_keys():
        answer = answers.final.get(key)
        if answer is None:  # the final pass is graded when answered, never required
            continue
        u = precision.cell(answer, np.broadcast_to(places.get(key, np.nan), answer.shape))
        graded, _ = judge.quantity(
            None,
            key,
            answer,
            expected_final(exact.final, key),
            u,
            _rounded_final(rounded, key),
            _bound_final(bounds, key),
            partial(_final_forms, bounds, key, final_carried[key], final_sound[key]),
        )
        cells += graded
    cells = _resolve(cells)
    report = Report(spec.source, answers.source, tuple(cells), _first_error(cells), options)
    if precision.written and precision.unit is not None:
        report = replace(report, written_places=precision.typical)
    if not options.rounding:
        hint = _rounding_hint(spec, answers, steps, options, cells)
        if hint:
            report = replace(report, hint=hint)
    return report


T = TypeVar("T")
# A value worked out when it is first asked for (functools.cache of a function of nothing).
Later = Callable[[], T]


class _Drift:
    """One step's drift bounds, for Context.allow: the bounds are worked out on the first read."""

    def __init__(self, bounds: Later[Bounds], index: int) -> None:
        self.bounds, self.index = bounds, index

    def get(self, key: Key) -> np.ndarray | None:
        return self.bounds().steps[self.index].get(key)


Lazy = Callable[[], np.ndarray] | None
Rounded = Later[tuple[list[StepTrace], ForwardTrace]]  # the steps and the final pass


def _rounded_step(rounded: Rounded | None, s: int, key: Key) -> Lazy:
    return None if rounded is None else lambda: expected(rounded()[0][s - 1], key)


def _bound_step(bounds: Later[Bounds] | None, s: int, key: Key) -> Lazy:
    return None if bounds is None else lambda: bounds().steps[s - 1][key]


def _rounded_final(rounded: Rounded | None, key: Key) -> Lazy:
    return None if rounded is None else lambda: expected_final(rounded()[1], key)


def _bound_final(bounds: Later[Bounds] | None, key: Key) -> Lazy:
    return None if bounds is None else lambda: bounds().final[key]


def _final_forms(
    bounds: Later[Bounds] | None, key: Key, carried: np.ndarray, sound: np.ndarray
) -> tuple[list[Form], list[Form]]:
    local = bounds().final[key] if bounds else np.zeros(np.shape(carried))
    return [(carried, local)], [(sound, local)]


def read_rounded(options: Options, answers: Answers) -> bool:
    """Whether the answers are read to a rounding (--decimals, --sig-figs, or as written): then
    grading keeps every step up to the last one graded, which the drift bound runs through."""
    return _Precision(options, answers).unit is not None


def forms_of(ctx: Context, sound: Context, key: Key) -> tuple[list[Form], list[Form]]:
    """The legitimate values of a cell from the given answers, and from the sound ones only."""
    if key[0] in ("activation_params", "grad_activation_params"):
        exact = expected(ctx.exact, key)
        return [(exact, np.zeros(exact.shape))], [(exact, np.zeros(exact.shape))]
    return forms(ctx, key), forms(sound, key)


def _final(spec: NetworkSpec, weights, biases, params, scale: float) -> dict[Key, np.ndarray]:
    output, costs = forward_output(spec, weights, biases, params)
    penalty = spec.weight_decay / 2 * sum(float(np.sum(w * w)) for w in weights)
    return {
        ("output", None): output,
        ("loss", None): np.asarray(scale * costs.sum() + penalty),
    }


class _Precision:
    """How precisely each answer is read: to --decimals N, to --sig-figs N, or (neither given)
    as written — 0.552 is 0.552 ± 0.0005 — never coarser than the decimals most of the sheet's
    numbers are written with (a 0.5 among 0.552s has lost its trailing zeros)."""

    def __init__(self, options: Options, answers: Answers) -> None:
        from gradcalc.functions.training import hand_round

        self.written = not options.rounding
        self.typical: int | None = None
        self.unit: Unit | None = None
        self.rounder = None
        self.decimals, self.sig_figs = options.decimals, options.sig_figs
        if options.decimals is not None:
            self.unit, self.rounder = (
                decimals_unit(options.decimals),
                hand_round(options.decimals),
            )
        elif options.sig_figs is not None:
            self.unit = sig_figs_unit(options.sig_figs)
            self.rounder = sig_figs_rounder(options.sig_figs)
        else:
            self.typical = answers.typical_places()
            if self.typical is not None and 0 <= self.typical <= MAX_WRITTEN_PLACES:
                self.unit = decimals_unit(self.typical)
                self.rounder = hand_round(self.typical)

    def cell(self, answer: np.ndarray, places: np.ndarray) -> np.ndarray:
        """Half a unit of each answer's last place (0 where it cannot be told)."""
        if self.decimals is not None:
            return np.full(answer.shape, 0.5 * 10.0**-self.decimals)
        if self.sig_figs is not None:
            assert self.unit is not None
            return self.unit(answer, np.zeros(answer.shape))
        floor = -np.inf if self.typical is None else float(self.typical)
        with np.errstate(invalid="ignore"):
            kept = np.fmax(np.asarray(places, dtype=float), floor)
        kept = np.where(np.isfinite(kept), np.clip(kept, -300, 300), np.inf)
        return np.where(np.isfinite(kept), 0.5 * 10.0**-kept, 0.0)


def _rounding_hint(
    spec: NetworkSpec, answers: Answers, steps: int, options: Options, cells: list[Cell]
) -> str | None:
    """A sheet worked to a few places fails every rounded cell: say which option grades it,
    trying the decimals and the significant figures its answers are most often written with."""
    wrong = sum(c.verdict == "wrong" for c in cells)
    if not wrong or len(cells) > 5000:
        return None
    written = answers.digits_written()
    if written is None:
        return None
    if steps * step_bytes(spec) > HINT_BYTES:
        return None  # grading again with rounding would keep every step up to the last one
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
        with np.errstate(all="ignore"):
            # A reference that is not finite (worked from an answer of 1e308) matches nothing.
            near = np.abs(answer - ref) <= o.atol + o.rtol * np.abs(ref) + extra
            return near & np.isfinite(ref)

    def quantity(
        self,
        step: int | None,
        key: Key,
        answer: np.ndarray,
        exact: np.ndarray,
        u: np.ndarray,
        rounded: Lazy,
        bound: Lazy,
        legitimate: Callable[[], tuple[list[Form], list[Form]]],
        ctx: Context | None = None,
    ) -> tuple[list[Cell], np.ndarray]:
        """The cells of one quantity, and which of them are unsound (✗ or ↳) for what follows.

        `legitimate` gives the values the cell's own equation gives from the given answers
        (one per legitimate order of working), each with its bound, and the same from the
        answers judged sound alone: a cell that follows from its inputs is ≈ where the wrong
        answers among them do not move it, ↳ where they do. It is asked for (as are the rounded
        run's value and the drift bound, `rounded` and `bound`) only while some answer is
        neither right nor near: a quantity answered well costs none of them.
        """
        o = self.o
        dims = self.shape.array_shape(key)
        answered = ~np.isnan(answer)
        verdict = np.where(answered, "wrong", "missing").astype(object)
        right = answered & self.close(answer, exact)
        verdict[right] = "correct"
        # Half a unit of the last place, with room for the binary representation of 0.0005.
        last = u * (1 + 1e-9)
        with np.errstate(invalid="ignore"):
            near = np.abs(answer - exact) <= last
            if rounded is not None and np.any(answered & ~right & ~near):
                near |= self.close(answer, rounded())
            if bound is not None and np.any(answered & ~right & ~near):
                near |= np.abs(answer - exact) <= BOUND_SAFETY * bound()
        # Every answer right or near: none is wrong, so none is carried and no mistake named.
        given, sound = legitimate() if np.any(answered & ~right & ~near) else ([], [])
        consistent = np.zeros(dims, dtype=bool)
        clean = np.zeros(dims, dtype=bool)
        own = np.full(dims, np.nan)
        tolerances = []
        for value, bound_of in given:
            value = np.broadcast_to(value, dims)
            tol = o.atol + o.rtol * np.abs(value) + BOUND_SAFETY * bound_of + last
            tolerances.append((value, tol))
            with np.errstate(invalid="ignore"):
                ok = answered & (np.abs(answer - value) <= tol)
                unmoved = np.zeros(dims, dtype=bool)
                for other, _ in sound:
                    unmoved |= np.abs(value - np.broadcast_to(other, dims)) <= tol
            own = np.where(np.isnan(own) & ok & ~unmoved, value, own)
            consistent |= ok
            clean |= ok & unmoved
        verdict[answered & ~right & (near | clean)] = "rounding"
        carried = (verdict == "wrong") & consistent
        if o.carry:
            verdict[carried] = "carried"
        names = np.empty(dims, dtype=object)
        for pos in np.ndindex(*dims):
            names[pos] = []
        if ctx is not None and step is not None and tolerances and np.any(verdict == "wrong"):
            tol = tolerances[0][1]
            from gradcalc.check.mistakes import named

            for mistake, candidates in named(ctx, key):
                hit = np.zeros(dims, dtype=bool)
                for value in candidates:
                    value = np.broadcast_to(value, dims)
                    with np.errstate(invalid="ignore"):
                        fits = np.abs(answer - value) <= tol
                        for right_value, right_tol in tolerances:
                            fits &= np.abs(value - right_value) > right_tol
                    hit |= fits
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
            record = _mistake(m) if m else None
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
                    carried=float(own[pos]) if bool(carried[pos]) else None,
                    points=points,
                    matches=matches,
                )
            )
        return out, (verdict == "wrong") | (verdict == "carried")


def _resolve(cells: list[Cell]) -> list[Cell]:
    """Order the mistakes that fit a cell within its allowance by how many cells of the sheet
    each explains, then by the registry's order; the first is named first, and all are said."""
    if all(len(c.matches) < 2 for c in cells):
        return cells
    from collections import Counter

    from gradcalc.check.mistakes import REGISTRY

    counts = Counter(m for c in cells for m in c.matches)
    order = list(REGISTRY)
    out = []
    for c in cells:
        if len(c.matches) > 1:
            ranked = tuple(sorted(c.matches, key=lambda m: (-counts[m], order.index(m))))
            best = ranked[0]
            c = replace(
                c,
                mistake=best,
                explanation=REGISTRY[best].explanation,
                matches=ranked,
            )
        out.append(c)
    return out


def _mistake(name: str) -> Mistake:
    from gradcalc.check.mistakes import REGISTRY  # loaded when a cell is wrong

    return REGISTRY[name]


def _first_error(cells: Sequence[Cell]) -> FirstError | None:
    wrong = [i for i, c in enumerate(cells) if c.verdict == "wrong"]
    if not wrong:
        return None
    first = cells[wrong[0]]
    later = [cells[i] for i in wrong[1:]]
    return FirstError(first, len(later), all(c.carried is not None for c in later))
