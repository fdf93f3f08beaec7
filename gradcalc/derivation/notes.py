"""What a derivation should point out, as data, and the one place that writes it as a sentence.

The engine returns each note as a `Note` (kind, node, values, words); a view writes it with
`write(note, number)` in its own number style, so `--digits` reaches the notes too and JSON keeps
the sentences it always had.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from gradcalc.derivation.subjects import Built, Subject
from gradcalc.derivation.trace import (
    GraphTrace,
    KinkTrace,
    Matrix,
    Note,
    NumericTrace,
    PointTrace,
)
from gradcalc.doc.numbers import Style

Number = Callable[[float], str]

# kind -> the sentence, with {node}, {words[...]} and {values as written} filled in. A value that
# is a sequence is written comma-separated (a point of several coordinates).
TEMPLATES: dict[str, str] = {
    # the record's own remark, as the registry words it
    "record": "{text}",
    "formula": "a formula has no closed form here: the graph and finite differences are the routes",
    "param_unused": "--param {node} has no effect: no function in the formula takes it",
    # a kink in a formula, found by the branching nodes that switch there
    "formula_kink": "at x = {x}, {where}: one-sided differences give {numeric_left} (left) and "
    "{numeric_right} (right), so the formula is {state} there; the sweep reports {reported} "
    "({convention})",
    # a record's kink where both sides have the same slope (huber at |r| = δ)
    "branch": "at {where} the formula of {node} changes branch, but both one-sided derivatives "
    "are {left}, so it is differentiable there (the graph takes {convention}); one-sided "
    "differences give {numeric_left} (left) and {numeric_right} (right)",
    "kink": "{node} is not differentiable at {where}: the derivative from the left is {left} and "
    "from the right {right}; reported: {reported} ({convention}); one-sided differences give "
    "{numeric_left} (left) and {numeric_right} (right)",
    # an activation called inside a formula, at its kink
    "function_kink": "{node}({arg}) sits on its kink at {arg} = {x} and reports {reported} there "
    "({convention})",
    "graph_non_finite": "the graph leaves float64 at {point} (non-finite value or adjoint at "
    "{where}); its derivative is not usable there, so {fallback}",
    # a partial or a product of partials past float64's range, kept by the Wide sweep
    "out_of_range": "at {point} a local partial or a product of them along {edges} leaves "
    "float64's range (below about 1e-308 or above about 1e308); the sweep carries its exponent "
    "apart, so no path is lost (in plain float64 it would have vanished)",
    "numeric_floor": "at {point} the finite difference in {input} cannot resolve the derivative: "
    "rounding alone moves its quotient by up to {floor} at the step {step}, so it confirms "
    "nothing there; {trusted}",
    "numeric_outvoted": "at {point} the finite difference in {input} gives {numeric} at the "
    "step {step}, which the graph and the closed form both contradict: the function varies "
    "on a scale the step cannot follow there, or its value is rounded more than its "
    "derivative; {trusted}",
    # the graph's paths cancel below what rounding moves (a formula such as (e^x − 1)/x at 1e-9)
    "graph_rounding": "at {point} the paths from {input} to {output} cancel: terms of size "
    "{spread} sum to {adjoint}, which rounding can move by up to {rounding}, so the graph "
    "confirms nothing there; {trusted}",
    "numeric_unstable": "at {point} no finite difference in {input} is stable: the quotient "
    "keeps changing as the step shrinks (a singularity within a step, or a function that "
    "float64 cannot step across), so the finite-difference route has no number there",
    "closed_non_finite": "the closed form leaves float64 at {point}",
    "value_non_finite": "the value is not finite at {point}, so there are no finite differences",
}

# The default style: JSON's sentences, and every view's without --digits.
SHORT = Style(6)


def write(note: Note, number: Number = SHORT) -> str:
    """The note as a sentence, its numbers written by ``number`` ("n/a" where there is none)."""

    def one(v: float | None) -> str:
        return "n/a" if v is None else number(v)

    fields: dict[str, str] = {"node": note.node, **note.words}
    for key, value in note.values.items():
        fields[key] = ", ".join(one(v) for v in value) if isinstance(value, tuple) else one(value)
    return TEMPLATES[note.kind].format(**fields)


def numeric_note(
    kind: str, values: Sequence[float], name: str, numeric: NumericTrace, j: int, trusted: str = ""
) -> Note:
    """What the finite-difference route could not do in input ``name`` (see TEMPLATES), and
    (``trusted``) which routes the derivative rests on instead."""
    found: dict[str, float | tuple[float, ...] | None] = {
        "point": tuple(values),
        "floor": numeric.floor(j),
        "step": numeric.steps[j],
    }
    return Note(kind, values=found, words={"input": name, "trusted": trusted})


def outvoted_note(values: Sequence[float], name: str, numeric: NumericTrace, j: int) -> Note:
    found: dict[str, float | tuple[float, ...] | None] = {
        "point": tuple(values),
        "numeric": numeric.central[0][j],
        "step": numeric.steps[j],
    }
    trusted = "trusted: the graph and the closed form, independent routes that agree"
    return Note("numeric_outvoted", values=found, words={"input": name, "trusted": trusted})


def rounding_note(point: PointTrace, i: int, j: int, trusted: str) -> Note:
    """The graph's paths to entry (i, j) cancel below what rounding moves."""
    node = point.graph
    values: dict[str, float | tuple[float, ...] | None] = {
        "point": tuple(point.at),
        "adjoint": point.graph_jacobian[i][j],
        "rounding": point.graph_rounding[i][j],
        "spread": point.graph_spread[i][j],
    }
    words = {"input": node.inputs[j], "output": node.outputs[i], "trusted": trusted}
    return Note("graph_rounding", values=values, words=words)


def _kink(name: str, values: Sequence[float], k: KinkTrace) -> Note:
    sides: Mapping[str, float | None] = {
        "numeric_left": k.numeric_left,
        "numeric_right": k.numeric_right,
        "reported": k.reported,
    }
    words = {"where": k.where, "convention": k.convention}
    if k.left is None:
        state = "differentiable" if k.differentiable else "not differentiable"
        return Note("formula_kink", "", {"x": values[k.index], **sides}, {**words, "state": state})
    if k.differentiable:
        return Note("branch", name, {"left": k.left, **sides}, words)
    return Note("kink", name, {"left": k.left, "right": k.right, **sides}, words)


def point_notes(
    s: Subject,
    values: list[float],
    graph: GraphTrace,
    kinks: list[KinkTrace],
    closed: Matrix | None,
    built: Built,
) -> list[Note]:
    notes = [_kink(s.name, values, k) for k in kinks]
    point = {"point": tuple(values)}
    if graph.non_finite:
        fallback = (
            "the closed form and the finite differences are reported instead"
            if closed is not None
            else "only the finite differences remain"
        )
        words = {"where": ", ".join(graph.non_finite[:4]), "fallback": fallback}
        notes.append(Note("graph_non_finite", values=point, words=words))
    if graph.out_of_range and not graph.non_finite:
        edges = ", ".join(f"{src} → {dst}" for src, dst in graph.out_of_range[:4])
        notes.append(Note("out_of_range", values=point, words={"edges": edges}))
    if s.kind == "expression" and not kinks:
        notes.extend(built.remarks)
    if closed is not None and not all(math.isfinite(v) for row in closed for v in row):
        notes.append(Note("closed_non_finite", values=point))
    if not all(math.isfinite(v) for v in s.evaluate(values, s.params)):
        notes.append(Note("value_non_finite", values=point))
    return notes
