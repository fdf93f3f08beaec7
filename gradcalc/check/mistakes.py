"""The known mistakes: one record per mistake, each owning its id, its one-line explanation, the
quantities it affects and the function that produces the mistaken value.

`values(ctx, key)` computes what a student who made this mistake would write for the quantity
`key` = (quantity, layer), from the student's own earlier answers where given and the exact
trace elsewhere (the recompute Context); several candidates where the mistake goes two ways
(½ dropped or doubled), none where it cannot happen there (f′ of an identity, a one-example
batch). A wrong answer that matches a candidate within the cell's allowance (grade.py) gets the
mistake's name; one that several match gets all their names. Ids are stable: scripts and
gradebooks key on them.

`layered(ctx, key)` is the same mistake in a network of layer records (gradcalc/layers/check.py's
Context and cells): the one record serves both checks, and `gradcalc list layers` shows a dense
layer's own (`DENSE_LAYER`) with the dense type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcalc.functions.registry import ElementwiseActivation
from gradcalc.records import record

if TYPE_CHECKING:
    from gradcalc.check.cells import Key
    from gradcalc.check.recompute import Context
    from gradcalc.layers.record import Mistake as LayerMistake

# Quoted: `gradcalc list` loads this module with the dense layer type (its `mistakes`), and
# must not load check's cells and recompute (nor the step config they read) to do it.
Values = Callable[["Context", "Key"], list[np.ndarray]]
# The same for a network of layer records: (gradcalc/layers/check.py's Context, key) -> the
# candidates, none where the mistake cannot happen there.
LayeredValues = Callable[[Any, "Key"], list[np.ndarray]]


@record
class Mistake:
    id: str
    explanation: str
    quantities: tuple[str, ...]  # of a dense network's sheet (gradcalc/check/cells.py)
    values: Values
    # The mistake in a network of layer records: the values it gives there. None: it cannot
    # happen there. Which layers and quantities each applies to is in docs/grading.md.
    layered: LayeredValues | None = None


def _carried(ctx: Context, key: Key) -> np.ndarray:
    from gradcalc.check.recompute import carried as first_form  # see `Values`

    return first_form(ctx, key)


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
    right = _carried(ctx, key)
    return [2.0 * right, 0.5 * right]


def _target_minus_output(ctx: Context, key: Key) -> list[np.ndarray]:
    _, l = key
    if l != ctx.shape.L:
        return []
    return [-_carried(ctx, key)]


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
    w_new = _carried(ctx, ("weights", l + 1))
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
    right = _carried(ctx, key)
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
        return [factor * _carried(ctx, key)]

    return values


def _softmax_diagonal_only(ctx: Context, key: Key) -> list[np.ndarray]:
    _, l = key
    assert l is not None
    if ctx.layer(l).activation.name != "softmax":
        return []
    s = ctx.given("a", l)
    return [ctx.grad_a(l) * s * (1.0 - s)]


# ---- the same mistakes in a network of layer records ---------------------------------------------
# `ctx` is gradcalc/layers/check.py's Context: the student's answers where given, the exact
# step elsewhere; `ctx.carried(key)` is what the cell's own equation gives from them. Cells are
# those of docs/layers.md (z, a, δ, ∂C/∂x and each parameter's gradient and update, by name).


def _is_dense(ctx: Any, l: int | None) -> bool:
    return l is not None and 2 <= l <= ctx.shape.L and ctx.shape.layer(l).kind.name == "dense"


def _at_output(ctx: Any, key: Key) -> bool:
    """Whether `key` is the cost or δ^L of a loss with a target (`loss: upstream` has none)."""
    q, l = key
    if ctx.spec.loss.name == "upstream":
        return False
    return q in ("loss", "losses") or (q == "delta" and l == ctx.shape.L)


def _bp2(ctx: Any, key: Key, weights: Callable[[int], np.ndarray | None]) -> list[np.ndarray]:
    """BP2 through a dense layer with other weights (`weights(l)`, None: no candidate): its
    ∂C/∂x, or δ of the layer below it worked from that ∂C/∂x (when ∂C/∂x was not written)."""
    q, l = key
    if l is None:
        return []
    if q == "grad_input" and _is_dense(ctx, l):
        w = weights(l)
        return [] if w is None else [ctx.grad_input(l, w)]
    if q == "delta" and _is_dense(ctx, l + 1):
        w = weights(l + 1)
        return [] if w is None else [ctx.delta_from(l, ctx.grad_input(l + 1, w))]
    return []


def _layered_missing_activation_derivative(ctx: Any, key: Key) -> list[np.ndarray]:
    q, l = key
    if q != "delta":
        return []
    return [ctx.grad_a(l)]  # nothing is named where f′ = 1 (identity): it equals the right δ


def _layered_derivative_of_wrong_argument(ctx: Any, key: Key) -> list[np.ndarray]:
    q, l = key
    if q != "delta" or l is None:
        return []
    layer = ctx.shape.layer(l)
    f = layer.activation
    if not isinstance(f, ElementwiseActivation):
        return []
    p = ctx.exact.layers[l - 2].activation_params_before
    z = ctx.given("z", l)
    a = f.forward(z, p) if layer.residual else ctx.output_of(l)
    return [ctx.grad_a(l) * f.prime(a, f.forward(a, p), p)]


def _layered_softmax_diagonal_only(ctx: Any, key: Key) -> list[np.ndarray]:
    q, l = key
    if q != "delta" or ctx.shape.layer(l).activation.name != "softmax":
        return []
    s = ctx.output_of(l)
    return [ctx.grad_a(l) * s * (1.0 - s)]


def _layered_factor_of_two(ctx: Any, key: Key) -> list[np.ndarray]:
    if not _at_output(ctx, key):
        return []
    right = ctx.carried(key)
    return [2.0 * right, 0.5 * right]


def _layered_target_minus_output(ctx: Any, key: Key) -> list[np.ndarray]:
    if key[0] != "delta" or not _at_output(ctx, key):
        return []
    return [-ctx.carried(key)]


def _gradient(ctx: Any, key: Key) -> bool:
    """Whether `key` is a parameter's gradient (not ∂C/∂x, nor a quantity a layer type adds)."""
    q, l = key
    return l is not None and q.startswith("grad_") and q[5:] in ctx.shape.layer(l).params


def _layered_reduction(wrong: str) -> LayeredValues:
    def values(ctx: Any, key: Key) -> list[np.ndarray]:
        m = ctx.shape.examples
        if m == 1 or ctx.spec.reduction == wrong:
            return []
        if key[0] != "loss" and not _gradient(ctx, key):
            return []
        factor = float(m) if wrong == "sum" else 1.0 / m
        return [factor * ctx.carried(key)]

    return values


def _updated(ctx: Any, key: Key) -> tuple[np.ndarray, np.ndarray] | None:
    """(θ before the step, the given ∂C/∂θ) of a parameter's update by plain SGD, else None."""
    q, l = key
    if l is None or q not in ctx.shape.layer(l).params or not ctx.spec.optimizer.plain:
        return None
    return ctx.theta[l - 2][q], ctx.given(f"grad_{q}", l)


def _layered_update_sign(ctx: Any, key: Key) -> list[np.ndarray]:
    update = _updated(ctx, key)
    if update is None:
        return []
    before, grad = update
    return [before + ctx.net.eta * grad]


def _layered_learning_rate_not_applied(ctx: Any, key: Key) -> list[np.ndarray]:
    update = _updated(ctx, key)
    if update is None:
        return []
    before, grad = update
    return [before - grad]


def _biases(layer: Any) -> tuple[str, ...]:
    """A layer's biases: the parameters its type does not decay (b, b_ih, attention's bq…),
    and a normalisation's shift β (PyTorch's `bias`)."""
    return tuple(
        name
        for name in layer.params
        if (layer.kind.decays and name not in layer.kind.decays) or name == "beta"
    )


def _layered_biases_not_updated(ctx: Any, key: Key) -> list[np.ndarray]:
    q, l = key
    if l is None or q not in _biases(ctx.shape.layer(l)):
        return []
    return [ctx.theta[l - 2][q]]


def _layered_updated_weights_in_backprop(ctx: Any, key: Key) -> list[np.ndarray]:
    def updated(l: int) -> np.ndarray:
        w_new = ctx.carried(("weights", l))
        answered = ctx.answers.get(("weights", l))
        return w_new if answered is None else np.where(np.isnan(answered), w_new, answered)

    return _bp2(ctx, key, updated)


def _layered_transposed_weights(ctx: Any, key: Key) -> list[np.ndarray]:
    q, l = key
    if not _is_dense(ctx, l) and q != "delta":
        return []
    assert l is not None

    def transposed(at: int) -> np.ndarray | None:
        w = ctx.theta_pass(at)["weights"]
        return w.T if w.shape[0] == w.shape[1] else None

    if q == "z":
        w = transposed(l)
        return [] if w is None else [ctx.forward(l, {"weights": w})]
    if q == "grad_weights":
        right = ctx.carried(key)
        return [right.T] if right.shape[0] == right.shape[1] else []
    return _bp2(ctx, key, transposed)


def _layered_bias_omitted(ctx: Any, key: Key) -> list[np.ndarray]:
    q, l = key
    if q != "z" or not _is_dense(ctx, l):
        return []
    assert l is not None
    return [ctx.forward(l, {"biases": np.zeros_like(ctx.theta_pass(l)["biases"])})]


def _layered_z_instead_of_a(ctx: Any, key: Key) -> list[np.ndarray]:
    q, l = key
    if q != "grad_weights" or not _is_dense(ctx, l):
        return []
    assert l is not None
    if l == 2 or not ctx.shape.has_a(l - 1):  # the input, or a layer whose a is its z
        return []
    z = ctx.given("z", l - 1)
    # The right gradient with δ aᵀ replaced by δ zᵀ (an L2 term, where there is one, kept).
    right, from_a = ctx.carried(key), ctx.backward(l)[1]["weights"]
    return [right - from_a + ctx.backward(l, x=z)[1]["weights"]]


# Where several records explain a cell within its allowance (a mean over two examples halves C
# as a dropped ½ would), all are named: first the one the sheet's other cells name most, then
# in this order, the more specific records first.
MISTAKES: list[Mistake] = [
    Mistake(
        "softmax_diagonal_only",
        "the softmax's Jacobian kept to its diagonal s_j(1 − s_j), the −s_i s_j terms left out "
        "(in δ of a softmax layer, or in each row of attention's P)",
        ("delta",),
        _softmax_diagonal_only,
        _layered_softmax_diagonal_only,
    ),
    Mistake(
        "sum_instead_of_mean",
        "the batch's costs and gradients summed where the config averages them (reduction: mean)",
        ("loss", "grad_weights", "grad_biases"),
        _reduction("sum"),
        _layered_reduction("sum"),
    ),
    Mistake(
        "mean_instead_of_sum",
        "the batch's costs and gradients averaged where the config sums them (reduction: sum)",
        ("loss", "grad_weights", "grad_biases"),
        _reduction("mean"),
        _layered_reduction("mean"),
    ),
    Mistake(
        "missing_activation_derivative",
        "δ^l without the factor f′(z^l): ∂C/∂a^l (or (w^(l+1))ᵀδ^(l+1)) was taken for δ^l",
        ("delta",),
        _missing_activation_derivative,
        _layered_missing_activation_derivative,
    ),
    Mistake(
        "derivative_of_wrong_argument",
        "f′ evaluated at a^l instead of z^l, e.g. σ(a)(1 − σ(a)) for σ′(z)",
        ("delta",),
        _derivative_of_wrong_argument,
        _layered_derivative_of_wrong_argument,
    ),
    Mistake(
        "factor_of_two",
        "the ½ of the quadratic cost dropped or doubled (mse's (y − a)² against ½(y − a)²)",
        ("loss", "losses", "delta"),
        _factor_of_two,
        _layered_factor_of_two,
    ),
    Mistake(
        "target_minus_output",
        "the output error taken as y − a instead of a − y: δ^L has the wrong sign",
        ("delta",),
        _target_minus_output,
        _layered_target_minus_output,
    ),
    Mistake(
        "update_sign",
        "the update went uphill: θ + η ∂C/∂θ instead of θ − η ∂C/∂θ",
        ("weights", "biases"),
        _update_sign,
        _layered_update_sign,
    ),
    Mistake(
        "learning_rate_not_applied",
        "the update subtracted the gradient without multiplying it by η",
        ("weights", "biases"),
        _learning_rate_not_applied,
        _layered_learning_rate_not_applied,
    ),
    Mistake(
        "updated_weights_in_backprop",
        "BP2 used the weights w^(l+1) after this step's update instead of before it",
        ("delta",),
        _updated_weights_in_backprop,
        _layered_updated_weights_in_backprop,
    ),
    Mistake(
        "transposed_weights",
        "w^l_kj used for w^l_jk: the weight matrix (or its gradient) transposed",
        ("z", "delta", "grad_weights"),
        _transposed_weights,
        _layered_transposed_weights,
    ),
    Mistake(
        "bias_omitted",
        "z^l computed without the bias: w^l a^(l−1) instead of w^l a^(l−1) + b^l",
        ("z",),
        _bias_omitted,
        _layered_bias_omitted,
    ),
    Mistake(
        "z_instead_of_a",
        "∂C/∂w^l_jk computed from z^(l−1)_k instead of a^(l−1)_k (BP4)",
        ("grad_weights",),
        _z_instead_of_a,
        _layered_z_instead_of_a,
    ),
    Mistake(
        "biases_not_updated",
        "the biases were left as they were: b^l was not updated",
        ("biases",),
        _biases_not_updated,
        _layered_biases_not_updated,
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


# A dense layer record's own mistakes in a network of layer records; the others apply to any
# layer with an elementwise f, to the cost and δ^L, or to the update of any parameter.
DENSE_LAYER = (
    "updated_weights_in_backprop",
    "transposed_weights",
    "bias_omitted",
    "z_instead_of_a",
)


def listed(ids: tuple[str, ...]) -> tuple[LayerMistake, ...]:
    """The records `ids` as a layer type lists them (`gradcalc list layers`): each its one id
    and explanation. Their values are the records' `layered`, which check reads here."""
    from gradcalc.layers.record import Mistake as LayerMistake

    return tuple(LayerMistake(REGISTRY[i].id, REGISTRY[i].explanation) for i in ids)
