"""Each quantity recomputed from the student's own earlier answers (error carried forward).

A step's `Context` holds, for every quantity, the student's answer where one was given and the
exact value elsewhere ("given" values). `carried(ctx, key)` applies the quantity's own equation
(the same equations as the step engine, BP1–BP4 and the update) to the given values of its
inputs: with no answers it is the exact trace, and a cell that matches it while not matching the
exact value is right given an earlier error. The mistakes registry reads the same context.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from gradcalc.check.cells import Key, Shape, expected
from gradcalc.functions.registry import Fused
from gradcalc.step.config import LayerSpec, NetworkSpec
from gradcalc.step.trace import RunTrace, StepTrace


@dataclass
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

    def penalty(self) -> float:
        """The L2 penalty (λ/2) Σ w² at the given weights before the step."""
        lam = self.spec.weight_decay
        return lam / 2 * sum(float(np.sum(w * w)) for w in self.weights) if lam else 0.0

    def from_output(self) -> bool:
        """Whether the cost and δ^L are worked from the given a^L: always, except for a loss
        computed from z^L (cross-entropy after softmax) whose a^L was not answered."""
        return self.fused is None or self.answered("a", self.shape.L) is not None

    def costs(self) -> np.ndarray:
        """C_x per example from the given output (or from z^L for a fused loss)."""
        spec, L = self.spec, self.shape.L
        with np.errstate(all="ignore"):
            if self.from_output():
                costs = spec.loss.value(self.given("a", L), spec.y, spec.loss_params)
                if self.fused is None or np.all(np.isfinite(costs)):
                    return costs
            assert self.fused is not None
            return self.fused.value(self.given("z", L), spec.y, spec.loss_params)


def _same(v: np.ndarray) -> np.ndarray:
    return v


def carried(ctx: Context, key: Key) -> np.ndarray:
    """The value of `key` that the given values of its inputs lead to; NaN where that is not
    finite (an answer of 1e308 overflows what is worked from it): such a value matches no
    answer."""
    with np.errstate(all="ignore"):
        value = np.asarray(_carried(ctx, key), dtype=float)
    return np.where(np.isfinite(value), value, np.nan)


def _carried(ctx: Context, key: Key) -> np.ndarray:
    q, l = key
    spec = ctx.spec
    if q == "z":
        assert l is not None
        return ctx.a_prev(l) @ ctx.w_pass(l).T + ctx.b_pass(l)
    if q == "a":
        assert l is not None
        return ctx.layer(l).activation.forward(ctx.given("z", l), ctx.params[l - 2])
    if q in ("losses", "loss") and spec.optimizer.lookahead is not None:
        # The step's cost is at θ, its z and a at the look-ahead point: judged as exact only.
        return expected(ctx.exact, key)
    if q == "losses":
        return ctx.costs()
    if q == "loss":
        losses = ctx.costs()
        answered = ctx.answered("losses")
        if answered is not None:
            losses = np.where(np.isnan(answered), losses, answered)
        return np.asarray(ctx.scale * losses.sum() + ctx.penalty())
    if q == "delta":
        assert l is not None
        if l == ctx.shape.L and ctx.fused is not None:
            if ctx.from_output():
                with np.errstate(all="ignore"):
                    delta = ctx.delta_from(l, ctx.grad_a(l))
                if np.all(np.isfinite(delta)):
                    return delta
            return ctx.fused.delta(ctx.given("z", l), spec.y, spec.loss_params)
        return ctx.delta_from(l, ctx.grad_a(l))
    if q == "grad_biases":
        return ctx.scale * ctx.given("delta", l).sum(axis=0)
    if q == "grad_weights":
        assert l is not None
        grad = ctx.scale * (ctx.given("delta", l).T @ ctx.a_prev(l))
        return grad + spec.weight_decay * ctx.w_pass(l) if spec.weight_decay else grad
    if q == "weights":
        assert l is not None
        return ctx.update(l, "weights", ctx.weights[l - 2], ctx.given("grad_weights", l))
    if q == "biases":
        assert l is not None
        return ctx.update(l, "biases", ctx.biases[l - 2], ctx.given("grad_biases", l))
    # The activation parameters' gradients and updates are judged against the exact trace only.
    return expected(ctx.exact, key)


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
