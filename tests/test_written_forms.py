"""Every registry record owns everything written about it, in Unicode and in TeX.

Parametrized over the registries, so an activation, a loss, a fused pair, a learnable parameter or
an update rule added without one of its written forms fails here, and no writer has to learn its
name. The forms are also run through the writers' notation with numbers, as the worked solution
uses them.
"""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest

from gradcalc.doc.notation import BREAK, Notation
from gradcalc.functions.activations import ACTIVATIONS
from gradcalc.functions.losses import LOSSES
from gradcalc.functions.optimizers import OPTIMIZERS
from gradcalc.functions.registry import (
    ElementwiseActivation,
    Loss,
    VectorActivation,
    Written,
    defaults,
)

RECORDS = [*ACTIVATIONS, *LOSSES]
NOTATIONS = [Notation("text"), Notation("latex"), Notation("markdown", round_to=3)]


def assert_written(w: Written) -> None:
    assert isinstance(w, Written)
    assert w.text.strip() and w.tex.strip(), w
    assert "\\" not in w.text, w.text  # Unicode for the terminal: no TeX commands
    assert w.tex.isascii(), w.tex  # TeX math as pdflatex reads it
    depth = 0
    for c in re.sub(r"\\[{}]", "", w.tex):
        depth += {"{": 1, "}": -1}.get(c, 0)
        assert depth >= 0, w.tex
    assert depth == 0, w.tex


def assert_numbers_written(text: str, nt: Notation) -> None:
    assert text.strip(), text
    if nt.tex:
        assert text.replace(BREAK, "").isascii(), text


@pytest.mark.parametrize("rec", RECORDS, ids=[r.name for r in RECORDS])
def test_formula_derivative_and_symbol_are_written_both_ways(rec: object) -> None:
    assert_written(rec.formula)  # type: ignore[attr-defined]
    assert_written(rec.derivative)  # type: ignore[attr-defined]
    # The documents split a formula into its sides and a derivative into its equations.
    for part in rec.derivative.split(";"):  # type: ignore[attr-defined]
        assert len(part.split(" = ")) >= 2, part
    assert len(rec.formula.split(" = ")) >= 2  # type: ignore[attr-defined]
    if not isinstance(rec, Loss):
        assert_written(rec.symbol)  # type: ignore[attr-defined]


@pytest.mark.parametrize("rec", [a for a in ACTIVATIONS if a.params], ids=lambda r: r.name)
def test_a_learnable_parameter_carries_its_symbol(rec: ElementwiseActivation) -> None:
    for p in rec.params:
        if p.learnable:
            assert p.written is not None, f"{rec.name}.{p.name} has no written symbol"
            assert_written(p.written)


VECTOR = [a for a in ACTIVATIONS if isinstance(a, VectorActivation)]


@pytest.mark.parametrize("rec", VECTOR, ids=[r.name for r in VECTOR])
@pytest.mark.parametrize("nt", NOTATIONS, ids=lambda nt: nt.kind)
def test_vector_activation_writes_its_jacobian_product(rec: VectorActivation, nt: Notation) -> None:
    z = np.array([[0.5, -1.0, 2.0]])
    a = rec.forward(z, defaults(rec.params))[0]
    g = np.array([0.25, -0.5, 0.125])
    for shown in (3, 2):
        symbolic, numbers = rec.vjp_written(nt, 3, 0, a, g, shown)
        assert_numbers_written(symbolic, nt)
        assert_numbers_written(numbers, nt)
        assert nt.num(a[0]) in numbers and nt.num(g[0]) in numbers
    assert rec.output.isidentifier()


@pytest.mark.parametrize("loss", LOSSES, ids=[r.name for r in LOSSES])
@pytest.mark.parametrize("nt", NOTATIONS, ids=lambda nt: nt.kind)
def test_loss_writes_its_cost_with_numbers(loss: Loss, nt: Notation) -> None:
    a = np.array([0.6, 0.3, 0.15])
    y = np.array([1.0, -1.0, 1.0]) if loss.name == "hinge" else np.array([0.7, 0.2, 0.1])
    for shown in (3, 1):
        stages = loss.cost_written(nt, a, y, shown, defaults(loss.params))
        assert stages, loss.name
        for stage in stages:
            assert_numbers_written(stage, nt)
        assert nt.num(a[0]) in stages[0] or nt.par(a[0]) in stages[0], stages
    if loss.residual_scale is not None:
        # ∂C/∂a_j = scale·(a_j − y_j): the scale written must be the registry's gradient's.
        scale = loss.grad(a[None, :], y[None, :], defaults(loss.params))[0] / (a - y)
        assert np.allclose(scale, scale[0])
        written = loss.residual_scale(Notation("text"), a.shape[0]) or "1"
        assert float(Fraction(written.strip("()"))) == pytest.approx(scale[0])


FUSED = [(loss, name) for loss in LOSSES for name in loss.fused]


@pytest.mark.parametrize(("loss", "activation"), FUSED, ids=[f"{lo.name}+{a}" for lo, a in FUSED])
@pytest.mark.parametrize("nt", NOTATIONS, ids=lambda nt: nt.kind)
def test_fused_pair_writes_its_output_error(loss: Loss, activation: str, nt: Notation) -> None:
    a, y = np.array([0.6, 0.4]), np.array([1.0, 0.0])
    symbolic, numbers = loss.fused[activation].written(nt, 0, a, y, "a_1", "y_1")
    assert_numbers_written(symbolic, nt)
    assert_numbers_written(numbers, nt)
    assert nt.num(a[0]) in numbers


@pytest.mark.parametrize("rule", OPTIMIZERS, ids=[r.name for r in OPTIMIZERS])
def test_update_rule_equations_are_written_both_ways(rule: object) -> None:
    assert rule.equations  # type: ignore[attr-defined]
    for w in rule.equations:  # type: ignore[attr-defined]
        assert_written(w)
    for w in rule.symbols.values():  # type: ignore[attr-defined]
        assert_written(w)
    for p in rule.params:  # type: ignore[attr-defined]
        assert p.written is not None, f"{rule.name}.{p.name} has no written symbol"  # type: ignore[attr-defined]
        assert_written(p.written)
    assert callable(rule.written)  # type: ignore[attr-defined]
