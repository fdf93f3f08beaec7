"""The known mistakes: one record per mistake, each owning its id, its one-line explanation, the
quantities it affects and the function that produces the mistaken value.

`values(ctx, key)` computes what a student who made this mistake would write for the quantity
`key` = (quantity, layer), from the student's own earlier answers where given and the exact
trace elsewhere (the recompute Context); several candidates where the mistake goes two ways
(½ dropped or doubled), none where it cannot happen there (f′ of an identity, a one-example
batch). A wrong answer that matches a candidate within the cell's allowance (grade.py) gets the
mistake's name; one that several match gets all their names. Ids are stable: scripts and
gradebooks key on them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gradcalc.check.cells import Key
from gradcalc.check.recompute import Context, carried
from gradcalc.functions.registry import ElementwiseActivation
from gradcalc.records import record

Values = Callable[[Context, Key], list[np.ndarray]]


@record
class Mistake:
    id: str
    explanation: str
    quantities: tuple[str, ...]
    values: Values


def _missing_activation_derivative(ctx: Context, key: Key) -> list[np.ndarray]:
    _, l = key
    assert l is not None
    # The output layer of a fused loss has no f′ to forget in its formula, but the error of
    # writing ∂C/∂a for δ is the same one.
    return [ctx.grad_a(l)]


def _derivative_of_wrong_argument(ctx: Context, key: Key) -> list[np.ndarray]:
    _, l = key
    assert l is not None
    f = ctx.layer(l).activation
    if not isinstance(f, ElementwiseActivation):
        return []
    p = ctx.params[l - 2]
    a = ctx.given("a", l)
    with np.errstate(all="ignore"):
        return [ctx.grad_a(l) * f.prime(a, f.forward(a, p), p)]


def _factor_of_two(ctx: Context, key: Key) -> list[np.ndarray]:
    q, l = key
    if q == "delta" and l != ctx.shape.L:
        return []
    right = carried(ctx, key)
    return [2.0 * right, 0.5 * right]


def _target_minus_output(ctx: Context, key: Key) -> list[np.ndarray]:
    _, l = key
    if l != ctx.shape.L:
        return []
    return [-carried(ctx, key)]


def _gradient_of(ctx: Context, key: Key) -> tuple[np.ndarray, np.ndarray]:
    """(the parameter before the step, the given gradient) of an update."""
    q, l = key
    assert l is not None
    if q == "weights":
        return ctx.weights[l - 2], ctx.given("grad_weights", l)
    return ctx.biases[l - 2], ctx.given("grad_biases", l)


def _update_sign(ctx: Context, key: Key) -> list[np.ndarray]:
    if not ctx.spec.optimizer.plain:  # the two update mistakes are written for plain SGD
        return []
    before, grad = _gradient_of(ctx, key)
    return [before + ctx.eta * grad]


def _learning_rate_not_applied(ctx: Context, key: Key) -> list[np.ndarray]:
    if not ctx.spec.optimizer.plain:
        return []
    before, grad = _gradient_of(ctx, key)
    return [before - grad]


def _updated_weights_in_backprop(ctx: Context, key: Key) -> list[np.ndarray]:
    _, l = key
    assert l is not None
    if l == ctx.shape.L:
        return []
    # The updated w^(l+1) as answered, or as the answered gradient makes it.
    w_new = carried(ctx, ("weights", l + 1))
    answered = ctx.answered("weights", l + 1)
    if answered is not None:
        w_new = np.where(np.isnan(answered), w_new, answered)
    return [ctx.delta_from(l, ctx.given("delta", l + 1) @ w_new)]


def _transposed_weights(ctx: Context, key: Key) -> list[np.ndarray]:
    # Reading w_jk as w_kj only gives numbers (rather than a shape error) for a square matrix.
    q, l = key
    assert l is not None
    if q == "z":
        w = ctx.weights[l - 2]
        if w.shape[0] != w.shape[1]:
            return []
        return [ctx.a_prev(l) @ w + ctx.biases[l - 2]]
    if q == "delta":
        if l == ctx.shape.L:
            return []
        w = ctx.weights[l - 1]
        if w.shape[0] != w.shape[1]:
            return []
        return [ctx.delta_from(l, ctx.given("delta", l + 1) @ w.T)]
    right = carried(ctx, key)
    if right.shape[0] != right.shape[1]:
        return []
    return [right.T]


def _bias_omitted(ctx: Context, key: Key) -> list[np.ndarray]:
    _, l = key
    assert l is not None
    return [ctx.a_prev(l) @ ctx.weights[l - 2].T]


def _z_instead_of_a(ctx: Context, key: Key) -> list[np.ndarray]:
    _, l = key
    assert l is not None
    if l == 2:  # a¹ is the input; there is no z¹ to confuse it with
        return []
    return [ctx.scale * (ctx.given("delta", l).T @ ctx.given("z", l - 1))]


def _biases_not_updated(ctx: Context, key: Key) -> list[np.ndarray]:
    _, l = key
    assert l is not None
    return [ctx.biases[l - 2]]


def _reduction(wrong: str) -> Values:
    def values(ctx: Context, key: Key) -> list[np.ndarray]:
        m = ctx.shape.examples
        if m == 1 or ctx.spec.reduction == wrong:
            return []
        factor = float(m) if wrong == "sum" else 1.0 / m
        return [factor * carried(ctx, key)]

    return values


def _softmax_diagonal_only(ctx: Context, key: Key) -> list[np.ndarray]:
    _, l = key
    assert l is not None
    if ctx.layer(l).activation.name != "softmax":
        return []
    s = ctx.given("a", l)
    return [ctx.grad_a(l) * s * (1.0 - s)]


# Where several records explain a cell within its allowance (a mean over two examples halves C
# as a dropped ½ would), all are named: first the one the sheet's other cells name most, then
# in this order, the more specific records first.
MISTAKES: list[Mistake] = [
    Mistake(
        "softmax_diagonal_only",
        "δ through the diagonal s_j(1 − s_j) of the softmax Jacobian only, without −s_i s_j",
        ("delta",),
        _softmax_diagonal_only,
    ),
    Mistake(
        "sum_instead_of_mean",
        "the batch's costs and gradients summed where the config averages them (reduction: mean)",
        ("loss", "grad_weights", "grad_biases"),
        _reduction("sum"),
    ),
    Mistake(
        "mean_instead_of_sum",
        "the batch's costs and gradients averaged where the config sums them (reduction: sum)",
        ("loss", "grad_weights", "grad_biases"),
        _reduction("mean"),
    ),
    Mistake(
        "missing_activation_derivative",
        "δ^l without the factor f′(z^l): ∂C/∂a^l (or (w^(l+1))ᵀδ^(l+1)) was taken for δ^l",
        ("delta",),
        _missing_activation_derivative,
    ),
    Mistake(
        "derivative_of_wrong_argument",
        "f′ evaluated at a^l instead of z^l, e.g. σ(a)(1 − σ(a)) for σ′(z)",
        ("delta",),
        _derivative_of_wrong_argument,
    ),
    Mistake(
        "factor_of_two",
        "the ½ of the quadratic cost dropped or doubled (mse's (y − a)² against ½(y − a)²)",
        ("loss", "losses", "delta"),
        _factor_of_two,
    ),
    Mistake(
        "target_minus_output",
        "the output error taken as y − a instead of a − y: δ^L has the wrong sign",
        ("delta",),
        _target_minus_output,
    ),
    Mistake(
        "update_sign",
        "the update went uphill: θ + η ∂C/∂θ instead of θ − η ∂C/∂θ",
        ("weights", "biases"),
        _update_sign,
    ),
    Mistake(
        "learning_rate_not_applied",
        "the update subtracted the gradient without multiplying it by η",
        ("weights", "biases"),
        _learning_rate_not_applied,
    ),
    Mistake(
        "updated_weights_in_backprop",
        "BP2 used the weights w^(l+1) after this step's update instead of before it",
        ("delta",),
        _updated_weights_in_backprop,
    ),
    Mistake(
        "transposed_weights",
        "w^l_kj used for w^l_jk: the weight matrix (or its gradient) transposed",
        ("z", "delta", "grad_weights"),
        _transposed_weights,
    ),
    Mistake(
        "bias_omitted",
        "z^l computed without the bias: w^l a^(l−1) instead of w^l a^(l−1) + b^l",
        ("z",),
        _bias_omitted,
    ),
    Mistake(
        "z_instead_of_a",
        "∂C/∂w^l_jk computed from z^(l−1)_k instead of a^(l−1)_k (BP4)",
        ("grad_weights",),
        _z_instead_of_a,
    ),
    Mistake(
        "biases_not_updated",
        "the biases were left as they were: b^l was not updated",
        ("biases",),
        _biases_not_updated,
    ),
]

REGISTRY: dict[str, Mistake] = {m.id: m for m in MISTAKES}
assert len(REGISTRY) == len(MISTAKES), "duplicate mistake id"


def named(ctx: Context, key: Key) -> list[tuple[Mistake, list[np.ndarray]]]:
    """The candidates of every mistake that can affect `key`, in registry order."""
    out = []
    with np.errstate(all="ignore"):
        for mistake in MISTAKES:
            if key[0] in mistake.quantities:
                values = mistake.values(ctx, key)
                if values:
                    out.append((mistake, values))
    return out
