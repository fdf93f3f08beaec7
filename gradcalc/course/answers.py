"""The cells of a variant as the course-platform exports need them: a name a form field can
carry, the symbol, the exact value, the value a careful hand calculation gives, and a tolerance.

The tolerance of a cell is max(10⁻ᵈ, 2 |hand − exact|), d being the sheet's decimals and `hand`
the value of `gradcalc step --round d` (every quantity rounded to d decimals as it is produced,
each worked from the rounded ones before it): a platform that compares with one number and a
tolerance then accepts both the exact answer and the sheet worked as the sheet asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gradcalc.check.cells import Key, Shape, expected, indices, symbol
from gradcalc.course.sheet import tex

if TYPE_CHECKING:
    from gradcalc.course.variants import Problem

_SHORT = {"grad_weights": "gw", "grad_biases": "gb", "weights": "w", "biases": "b"}


@dataclass(frozen=True)
class AnswerCell:
    # z_2_1, delta_3_1, gw_3_1_2, w_2_1_3, loss; s2_… for step 2 and on (a network of layer
    # records: its indices from 0, z_2_0_1_2, grad_kernels_2_0_0_1_1)
    name: str
    step: int
    key: Key
    index: tuple[int | str, ...]  # 1-based, as written
    symbol: str
    tex: str
    value: float
    hand: float
    tolerance: float


def cell_name(step: int, key: Key, index: tuple[int | str, ...], steps: int) -> str:
    q, l = key
    parts = [_SHORT.get(q, q)]
    if l is not None:
        parts.append(str(l))
    parts += [str(i) for i in index]
    name = "_".join(parts)
    return f"s{step}_{name}" if steps > 1 else name


def answer_cells(problem: Problem, decimals: int) -> list[AnswerCell]:
    from gradcalc.course.sheet import tex_of
    from gradcalc.layers.engine import run as run_layered
    from gradcalc.step.engine import run

    spec: Any = problem.spec
    shape = Shape.of(spec)
    hand_trace: Any = (
        run_layered(spec, round_to=decimals) if problem.layered else run(spec, round_to=decimals)
    )
    out: list[AnswerCell] = []
    trace: Any = problem.trace
    steps = len(trace.steps)
    for st, hand_st in zip(trace.steps, hand_trace.steps, strict=True):
        for key in shape.step_keys():
            exact, hand = expected(st, key), expected(hand_st, key)
            for pos, index in indices(key, shape):
                value, worked = float(exact[pos]), float(hand[pos])
                tolerance = max(10.0**-decimals, 2 * abs(worked - value))
                out.append(
                    AnswerCell(
                        cell_name(st.step, key, index, steps),
                        st.step,
                        key,
                        index,
                        symbol(key, index, shape),
                        tex_of(symbol(key, index, shape))
                        if problem.layered
                        else tex(key[0], key[1], index),
                        value,
                        worked,
                        float(f"{tolerance:.3g}"),
                    )
                )
    return out
