"""Each quantity recomputed from the student's own earlier answers (error carried forward).

A step's `Context` holds, for every quantity, the student's answer where one was given and the
exact value elsewhere ("given" values). `forms(ctx, key)` applies the quantity's own equation
(the same equations as the step engine, BP1–BP4 and the update) to the given values of its
inputs, once for every legitimate order of a hand computation (σ′ as a(1 − a) from the written
a, or as σ(z)(1 − σ(z)) from the written z; a cross-entropy's cost and δ^L from a or from z),
each with a bound: how far the value moves when every input moves within its allowance (an
answer: half a unit of its last place; an input not answered: its drift bound) and the
intermediate ∂C/∂a and f′ are rounded as the sheet rounds. With no answers the first form is
the exact trace. `carried(ctx, key)` is that first form; the mistakes registry reads the same
context.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import field
from itertools import pairwise
from typing import Protocol

import numpy as np

from gradcalc.check.bounds import Unit, spread
from gradcalc.check.cells import Key, Shape, expected
from gradcalc.functions.registry import ElementwiseActivation, Fused
from gradcalc.records import mutable_record
from gradcalc.step.config import LayerSpec, NetworkSpec
from gradcalc.step.trace import RunTrace, StepTrace


class Drift(Protocol):
    """The drift bound of each quantity of a step (a dict, or one worked out when first read)."""

    def get(self, key: Key, /) -> np.ndarray | None: ...


@mutable_record
class Context:
    spec: NetworkSpec
    shape: Shape
    eta: float
    scale: float  # 1/m for a mean over the batch, 1 for a sum
    fused: Fused | None
    weights: list[np.ndarray]  # w^l before the step (given), index l − 2
    biases: list[np.ndarray]
    params: list[dict[str, float]]  # the activation parameters before the step (exact)
    exact: StepTrace
    answers: dict[Key, np.ndarray]
    step: int = 1  # t, for update rules that count steps
    # What the update rule keeps for each layer before this step (exact; empty for SGD).
    kept: list[dict[str, dict[str, np.ndarray]]] | None = None
    # How far each answer may be from what its writer computed (NaN where not answered), and
    # how far an input not answered may be (the drift bounds); both absent: exact.
    allowances: dict[Key, np.ndarray] = field(default_factory=dict)
    drift: Drift | None = None
    # The allowance of the parameters before the step (their answers of the step before).
    weights_allow: list[np.ndarray] | None = None
    biases_allow: list[np.ndarray] | None = None
    unit: Unit | None = None  # the rounding of a value the sheet does not show (∂C/∂a, f′)

    def allow(self, q: str, l: int | None = None) -> np.ndarray:
        """How far the given value of (q, l) may be from what the student worked with."""
        key = (q, l)
        return allowance(key, np.shape(expected(self.exact, key)), self.allowances, self.drift)

    def rounding(self, v: np.ndarray, e: np.ndarray | float = 0.0) -> np.ndarray:
        if self.unit is None:
            return np.zeros(np.shape(v))
        return self.unit(np.asarray(v), np.broadcast_to(np.asarray(e, dtype=float), np.shape(v)))

    def a_prev_allow(self, l: int) -> np.ndarray:
        return np.zeros(self.spec.x.shape) if l == 2 else self.allow("a", l - 1)

    def w_allow(self, l: int) -> np.ndarray:
        if self.weights_allow is None:
            return np.zeros(self.weights[l - 2].shape)
        return self.weights_allow[l - 2]

    def b_allow(self, l: int) -> np.ndarray:
        if self.biases_allow is None:
            return np.zeros(self.biases[l - 2].shape)
        return self.biases_allow[l - 2]

    def given(self, q: str, l: int | None = None) -> np.ndarray:
        """The student's value where answered, the exact one elsewhere."""
        exact = expected(self.exact, (q, l))
        answer = self.answers.get((q, l))
        if answer is None:
            return exact
        return np.where(np.isnan(answer), exact, answer)

    def answered(self, q: str, l: int | None = None) -> np.ndarray | None:
        return self.answers.get((q, l))

    def layer(self, l: int) -> LayerSpec:
        return self.spec.layers[l - 2]

    def a_prev(self, l: int) -> np.ndarray:
        return self.spec.x if l == 2 else self.given("a", l - 1)

    def grad_a(self, l: int) -> np.ndarray:
        """∂C/∂a^l from the given values: the loss's gradient (l = L), or (w^(l+1))ᵀ δ^(l+1)."""
        if l == self.shape.L:
            with np.errstate(all="ignore"):
                return self.spec.loss.grad(self.given("a", l), self.spec.y, self.spec.loss_params)
        return self.given("delta", l + 1) @ self.w_pass(l + 1)

    def delta_from(self, l: int, grad_a: np.ndarray) -> np.ndarray:
        layer = self.layer(l)
        p = self.params[l - 2]
        return layer.activation.backward(self.given("z", l), self.given("a", l), grad_a, p)

    def state(self, l: int, name: str, theta: np.ndarray) -> dict[str, np.ndarray]:
        """The rule's state for a parameter before this step (exact; zeros at step 1)."""
        return (self.kept[l - 2].get(name) if self.kept else None) or {
            k: np.zeros_like(theta, dtype=float) for k in self.spec.optimizer.state
        }

    def update(self, l: int, name: str, theta: np.ndarray, g: np.ndarray) -> np.ndarray:
        """θ after the config's update rule, from the given θ and g (the rule's state exact)."""
        rule, hyper = self.spec.optimizer, self.spec.optimizer_params
        if rule.decay and name in rule.decays:  # AdamW's decoupled decay comes first
            theta = theta - self.eta * hyper[rule.decay] * theta
        kept = self.state(l, name, theta)
        new, _ = rule.update(theta, g, kept, hyper, self.eta, self.step, _same)
        return new

    def w_pass(self, l: int) -> np.ndarray:
        """w^l of this step's passes: θ, or a look-ahead rule's θ̃ (Nesterov)."""
        return self._ahead(l, "weights", self.weights[l - 2])

    def b_pass(self, l: int) -> np.ndarray:
        return self._ahead(l, "biases", self.biases[l - 2])

    def _ahead(self, l: int, name: str, theta: np.ndarray) -> np.ndarray:
        rule = self.spec.optimizer
        if rule.lookahead is None:
            return theta
        kept = self.state(l, name, theta)
        return rule.lookahead(theta, kept, self.spec.optimizer_params, self.eta, _same)

    def penalty(self) -> Form:
        """The L2 penalty (λ/2) Σ w² at the given weights before the step, with its bound."""
        return l2_penalty(self.spec.weight_decay, self.weights, self.weights_allow)

    def from_output(self) -> bool:
        """Whether the cost and δ^L are worked from the given a^L: always, except for a loss
        computed from z^L (cross-entropy after softmax) whose a^L was not answered."""
        return self.fused is None or self.answered("a", self.shape.L) is not None


def allowance(
    key: Key, shape: tuple[int, ...], allowances: dict[Key, np.ndarray], drift: Drift | None
) -> np.ndarray:
    """How far the given value of `key` may be from what the student worked with: half a unit
    of its last place where answered, its drift bound (or nothing) where not."""
    written = allowances.get(key)
    if written is not None and np.shape(written) == shape and not np.isnan(written).any():
        return np.array(written, dtype=float)  # every value answered: no drift to read
    bound = drift.get(key) if drift is not None else None
    base = np.zeros(shape) if bound is None else np.broadcast_to(bound, shape)
    if written is None:
        return base
    return np.where(np.isnan(written), base, written)


def _same(v: np.ndarray) -> np.ndarray:
    return v


Form = tuple[np.ndarray, np.ndarray]  # (value, how far it moves with its inputs' allowances)


def forms(ctx: Context, key: Key) -> list[Form]:
    """Every value of `key` a legitimate hand computation reaches from the given values of its
    inputs, each with its bound (see the module); the first is `carried`'s."""
    with np.errstate(all="ignore"):
        out = _forms(ctx, key)
    # An input moved outside the function's domain (a written a = 0.001 less its half unit under
    # a logarithm) bounds nothing: the value must then follow from the written numbers as they are.
    # A value that is not finite (worked from an answer of 1e308) is no value: NaN matches none.
    return [(_finite_or_nan(v), np.where(np.isfinite(e), e, 0.0).astype(float)) for v, e in out]


def _finite_or_nan(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return np.where(np.isfinite(v), v, np.nan)


def _forms(ctx: Context, key: Key) -> list[Form]:
    q, l = key
    spec = ctx.spec
    if q == "z":
        assert l is not None
        a, e_a = ctx.a_prev(l), ctx.a_prev_allow(l)
        w, e_w = ctx.w_pass(l), ctx.w_allow(l)
        e = e_a @ np.abs(w).T + np.abs(a) @ e_w.T + e_a @ e_w.T + ctx.b_allow(l)
        return [(a @ w.T + ctx.b_pass(l), e)]
    if q == "a":
        assert l is not None
        f, p = ctx.layer(l).activation, ctx.params[l - 2]
        z = ctx.given("z", l)

        def forward(zz: np.ndarray) -> np.ndarray:
            return f.forward(zz, p)

        return [(forward(z), spread(forward, [z], [ctx.allow("z", l)], not f.elementwise))]
    if q in ("losses", "loss") and spec.optimizer.lookahead is not None:
        # The step's cost is at θ, its z and a at the look-ahead point: judged as exact only.
        return [(expected(ctx.exact, key), np.zeros(np.shape(expected(ctx.exact, key))))]
    if q == "losses":
        return _cost_forms(ctx)
    if q == "loss":
        out = []
        answered = ctx.answered("losses")
        allowed = ctx.allow("losses") if answered is not None else None
        for costs, e in _cost_forms(ctx):
            if ctx.shape.batch:
                e = e + ctx.rounding(costs, e)  # each C_x written before they are added
            out.append(total_cost(ctx.scale, (costs, e), answered, allowed, ctx.penalty()))
        return out
    if q == "delta":
        assert l is not None
        return _delta_forms(ctx, l)
    if q == "grad_biases":
        d = ctx.given("delta", l)
        return [(ctx.scale * d.sum(axis=0), ctx.scale * ctx.allow("delta", l).sum(axis=0))]
    if q == "grad_weights":
        assert l is not None
        d, e_d = ctx.given("delta", l), ctx.allow("delta", l)
        a, e_a = ctx.a_prev(l), ctx.a_prev_allow(l)
        grad = ctx.scale * (d.T @ a)
        e = ctx.scale * (e_d.T @ np.abs(a) + np.abs(d).T @ e_a + e_d.T @ e_a)
        if spec.weight_decay:
            grad = grad + spec.weight_decay * ctx.w_pass(l)
            e = e + spec.weight_decay * ctx.w_allow(l)
        return [(grad, e)]
    if q in ("weights", "biases"):
        assert l is not None
        grads = "grad_" + q
        theta = ctx.weights[l - 2] if q == "weights" else ctx.biases[l - 2]
        e_theta = ctx.w_allow(l) if q == "weights" else ctx.b_allow(l)
        g, e_g = ctx.given(grads, l), ctx.allow(grads, l)
        new = ctx.update(l, q, theta, g)
        if spec.optimizer.plain and not spec.optimizer.decay:
            return [(new, e_theta + ctx.eta * e_g)]

        def step(th: np.ndarray, gg: np.ndarray) -> np.ndarray:
            return ctx.update(l, q, th, gg)

        return [(new, spread(step, [theta, g], [e_theta, e_g], False))]
    # The activation parameters' gradients and updates are judged against the exact trace only.
    exact = expected(ctx.exact, key)
    return [(exact, np.zeros(np.shape(exact)))]


def total_cost(
    scale: float,
    costs: Form,
    answered: np.ndarray | None,
    allowed: np.ndarray | None,
    penalty: Form,
) -> Form:
    """C = scale · Σ_x C_x + the penalty, from each example's cost as answered (within its
    allowance) where it is, else from `costs` (within its bound): a wrong C_x carries into C.
    The dense and the layered check both work C this way."""
    value, e = costs
    if answered is not None:
        value = np.where(np.isnan(answered), value, answered)
        e = np.where(np.isnan(answered), e, np.nan if allowed is None else allowed)
    return (
        np.asarray(scale * value.sum() + penalty[0]),
        np.asarray(scale * e.sum() + penalty[1]),
    )


def l2_penalty(
    lam: float, params: Sequence[np.ndarray], allowances: Sequence[np.ndarray] | None
) -> Form:
    """(λ/2) Σ θ² over the decayed parameters as given, and how far it moves when each θ
    moves within its allowance."""
    if not lam:
        return np.asarray(0.0), np.asarray(0.0)
    value = lam / 2 * sum(float(np.sum(w * w)) for w in params)
    bound = lam * sum(
        float(np.sum(np.abs(w) * e + e * e / 2))
        for w, e in zip(params, allowances or [], strict=False)
    )
    return np.asarray(value), np.asarray(bound)


def _cost_forms(ctx: Context) -> list[Form]:
    """C_x from the given a^L, and, for a loss computed from z^L, from the given z^L."""
    spec, L = ctx.spec, ctx.shape.L
    y, lp = spec.y, spec.loss_params
    out: list[Form] = []
    if ctx.from_output():
        a = ctx.given("a", L)

        def value(aa: np.ndarray) -> np.ndarray:
            return spec.loss.value(aa, y, lp)

        costs = value(a)
        if ctx.fused is None or np.all(np.isfinite(costs)):
            out.append((costs, spread(value, [a], [ctx.allow("a", L)], True)))
    if ctx.fused is not None:
        fused = ctx.fused

        def fused_value(zz: np.ndarray) -> np.ndarray:
            return fused.value(zz, y, lp)

        z = ctx.given("z", L)
        out.append((fused_value(z), spread(fused_value, [z], [ctx.allow("z", L)], True)))
    return out


def _delta_forms(ctx: Context, l: int) -> list[Form]:
    spec, L = ctx.spec, ctx.shape.L
    y, lp = spec.y, spec.loss_params
    f, p = ctx.layer(l).activation, ctx.params[l - 2]
    z, e_z = ctx.given("z", l), ctx.allow("z", l)
    a, e_a = ctx.given("a", l), ctx.allow("a", l)
    out: list[Form] = []
    if l == L:
        if ctx.fused is not None:
            fused = ctx.fused
            if ctx.from_output():
                delta = ctx.delta_from(l, ctx.grad_a(l))
                if np.all(np.isfinite(delta)):

                    def through(aa: np.ndarray) -> np.ndarray:
                        return f.backward(z, aa, spec.loss.grad(aa, y, lp), p)

                    out.append((delta, spread(through, [a], [e_a], True)))
            if fused.from_output is not None:
                from_a = fused.from_output

                def direct(aa: np.ndarray) -> np.ndarray:
                    return from_a(aa, y, lp)

                out.append((direct(a), spread(direct, [a], [e_a], True)))

            def from_z(zz: np.ndarray) -> np.ndarray:
                return fused.delta(zz, y, lp)

            out.append((from_z(z), spread(from_z, [z], [e_z], True)))
            return out

        def loss_grad(aa: np.ndarray) -> np.ndarray:
            return spec.loss.grad(aa, y, lp)

        ga = loss_grad(a)
        e_ga = spread(loss_grad, [a], [e_a], True)
    else:
        d, e_d = ctx.given("delta", l + 1), ctx.allow("delta", l + 1)
        w, e_w = ctx.w_pass(l + 1), ctx.w_allow(l + 1)
        ga = d @ w
        e_ga = e_d @ np.abs(w) + np.abs(d) @ e_w + e_d @ e_w
    e_ga = e_ga + ctx.rounding(ga, e_ga)
    if not isinstance(f, ElementwiseActivation):

        def backward(zz: np.ndarray, aa: np.ndarray, gg: np.ndarray) -> np.ndarray:
            return f.backward(zz, aa, gg, p)

        return [(backward(z, a, ga), spread(backward, [z, a, ga], [e_z, e_a, e_ga], True))]
    prime = f.prime

    def from_written(zz: np.ndarray, aa: np.ndarray) -> np.ndarray:
        return prime(zz, aa, p)

    def from_z_only(zz: np.ndarray) -> np.ndarray:
        return prime(zz, f.forward(zz, p), p)

    # f′ from the written a (σ′ = a(1 − a)), or from the written z alone (σ′(z)).
    primes = [
        (from_written(z, a), spread(from_written, [z, a], [e_z, e_a], False)),
        (from_z_only(z), spread(from_z_only, [z], [e_z], False)),
    ]
    for f_prime, e_f in primes:
        e_f = e_f + ctx.rounding(f_prime, e_f)
        e = np.abs(f_prime) * e_ga + np.abs(ga) * e_f + e_ga * e_f
        out.append((ga * f_prime, e))
    return out


def carried(ctx: Context, key: Key) -> np.ndarray:
    """The value of `key` that the given values of its inputs lead to (the first form)."""
    return forms(ctx, key)[0][0]


def forward_output(
    spec: NetworkSpec, weights: list[np.ndarray], biases: list[np.ndarray], params: list[dict]
) -> tuple[np.ndarray, np.ndarray]:
    """The output a^L and the per-example costs of a forward pass with the given parameters."""
    a, z = spec.x, spec.x
    for layer, w, b, p in zip(spec.layers, weights, biases, params, strict=True):
        z = a @ w.T + b
        a = layer.activation.forward(z, p)
    last = spec.layers[-1].activation.name
    fused = spec.loss.fused.get(last)
    with np.errstate(all="ignore"):
        if fused is not None:
            costs = fused.value(z, spec.y, spec.loss_params)
        else:
            costs = spec.loss.value(a, spec.y, spec.loss_params)
    return a, costs


# ---- the steps graded, streamed ----------------------------------------------------------------


def exact_steps(spec: NetworkSpec, steps: int, graded: Collection[int] | None) -> RunTrace:
    """The exact run to step `steps` (the last one graded), keeping only the steps in `graded`
    (every step when None): the others run lean and are dropped as they go, so memory is that
    of the steps graded, however many steps run before them."""
    from gradcalc.step.engine import run

    keep = None if graded is None else frozenset(graded).__contains__
    return run(spec, steps=steps, keep=keep)


def step_bytes(spec: NetworkSpec) -> int:
    """About what one step's trace holds (measured within 20% on networks of 10² to 10⁵
    parameters): per example z, a, f′, ∂C/∂a, δ and a^(l−1) of each unit; per parameter the
    gradient, the values before and after, and the update rule's state before and after."""
    m = int(spec.x.shape[0])
    units = sum(spec.sizes[1:])
    params = sum(a * b for a, b in pairwise(spec.sizes))
    state = len(spec.optimizer.state)
    return 8 * (6 * m * units + (3 + 2 * state) * (params + units)) + 3000 * len(spec.layers)
