"""What every network's step shares, dense-only or layered: hand rounding, the norms a summary
shows, the cost with its checks and the output error, the L2 penalty, the update rule applied to
a layer's parameters, and the dense layer record's pass.

Below gradcalc/step/chain.py (the step itself) and both engines: a dense step loads nothing of
gradcalc.layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn, Protocol

import numpy as np

from gradcalc.errors import ConfigError, KeyPath, NumericError
from gradcalc.functions.registry import Activation, Fused, Loss, Rounder, UpdateRule
from gradcalc.records import record

Array = np.ndarray
# Per parameter ("weights", "biases", an activation parameter's name…): the rule's state arrays.
Kept = dict[str, dict[str, Array]]
# What a step must find finite, in the order it computed it: (value, its name, the config key it
# comes from; None for what the update made, which no config value can be blamed for).
Checks = list[tuple[Array, str, KeyPath | None]]


def hand_round(decimals: int) -> Rounder:
    """Round half away from zero, as on paper (numpy's round goes half to even)."""
    scale = 10.0**decimals
    # From 2⁵² on a float64 has no fractional digits left: it is its own rounding, and
    # multiplying it by 10^N first could overflow (1e307 at N = 2) where the exact run does not.
    whole = 2.0**52 / scale

    def rounder(v: np.ndarray) -> np.ndarray:
        # The 1e-9 nudge keeps 0.0045 (stored as 0.00449999…) rounding up like a person would.
        # + 0.0 turns the −0.0 of a small negative value into 0.0.
        with np.errstate(over="ignore", invalid="ignore"):
            rounded = np.sign(v) * np.floor(np.abs(v) * scale + 0.5 + 1e-9) / scale + 0.0
        return np.where(np.abs(v) >= whole, v, rounded)

    return rounder


def exact(v: np.ndarray) -> np.ndarray:
    return v


def rounder(round_to: int | None) -> Rounder:
    """No rounding, or by hand to `round_to` decimals."""
    return exact if round_to is None else hand_round(round_to)


def shown_values(value: np.ndarray | float, limit: int = 4) -> str:
    """The first few values of an array, for an error message."""
    flat = np.ravel(np.asarray(value, dtype=float))
    shown = ", ".join(f"{v:.6g}" for v in flat[:limit])
    return f"[{shown}{', …' if flat.size > limit else ''}]" if flat.size > 1 else shown


def norm(v: np.ndarray) -> float:
    flat = v.ravel()
    return math.sqrt(flat @ flat)  # correctly rounded, as np.sqrt; never negative


# One scratch array per shape for the updates θ_new − θ_old: a long run does not allocate
# (and fault in) a network-sized array per layer and step just to take a norm.
_scratch: dict[tuple[int, ...], np.ndarray] = {}


def update_norm(new: np.ndarray, old: np.ndarray, out: np.ndarray | None = None) -> float:
    """‖θ_new − θ_old‖ of the update as made, not η‖g‖, which differs in the last bits; `out`:
    an array of the shape that may be overwritten."""
    buffer = _scratch.get(new.shape) if out is None else out
    if buffer is None:
        if len(_scratch) > 64:
            _scratch.clear()
        buffer = _scratch[new.shape] = np.empty(new.shape)
    return norm(np.subtract(new, old, out=buffer))


def dense_z(x: Array, w: Array, b: Array) -> Array:
    """z = w a + b of a dense layer, a row per example: x (…, n_in) @ wᵀ + b."""
    z = x @ w.T
    z += b
    return z


def dense_grads(delta: Array, x: Array, scale: float) -> tuple[Array, Array]:
    """∂C/∂w (BP4) and ∂C/∂b (BP3) of a dense layer from δ and its input, both (rows, n),
    scaling the (rows × n_l) δ rather than the (n_l × n_{l−1}) product."""
    return (scale * delta).T @ x, scale * delta.sum(axis=0)


# -- the dense layer's pass ------------------------------------------------------------------
# The dense layer record's forward and backward (gradcalc/layers/dense.py), here so that a
# dense-only network steps through them without loading gradcalc.layers.


def dense_forward(layer: Any, theta: Mapping[str, Array], x: Array) -> tuple[Array, dict[str, Any]]:
    """z from the layer's input; a dense layer keeps nothing for its backward pass."""
    return dense_z(x, theta["weights"], theta["biases"]), {}


def _dense_param_grads(delta: Array, x: Array, scale: float) -> dict[str, Array]:
    if delta.ndim > 2:  # at every position of a sequence: each (example, position) is a row
        delta, x = delta.reshape(-1, delta.shape[-1]), x.reshape(-1, x.shape[-1])
    grad_w, grad_b = dense_grads(delta, x, scale)  # BP4, BP3
    return {"weights": grad_w, "biases": grad_b}


def dense_backward(
    layer: Any,
    theta: Mapping[str, Array],
    cache: dict[str, Any],
    delta: Array,
    scale: float,
    x: Array,
) -> tuple[Array, dict[str, Array]]:
    """∂C_x/∂x (BP2's wᵀδ, before the activation's f′) and ∂C/∂w, ∂C/∂b."""
    return delta @ theta["weights"], _dense_param_grads(delta, x, scale)


NO_GRADIENT = np.zeros(0)


def dense_backward_first(
    layer: Any,
    theta: Mapping[str, Array],
    cache: dict[str, Any],
    delta: Array,
    scale: float,
    x: Array,
) -> tuple[Array, dict[str, Array]]:
    """dense_backward without ∂C/∂x, for the first layer of a dense-only network: its input
    is the data, whose gradient nothing shows (a network with other layer types shows it)."""
    return NO_GRADIENT, _dense_param_grads(delta, x, scale)


@record
class Pass:
    """A layer type's passes as a step reads them (gradcalc.layers.record.LayerType has these
    fields among its others)."""

    forward: Callable[[Any, Mapping[str, Array], Array], tuple[Array, dict[str, Any]]]
    backward: Callable[
        [Any, Mapping[str, Array], dict[str, Any], Array, float, Array],
        tuple[Array, dict[str, Array]],
    ]
    decays: tuple[str, ...]
    symbols: Mapping[str, str]
    update_state: None = None


DENSE_PASS = Pass(dense_forward, dense_backward, ("weights",), {"weights": "w", "biases": "b"})
DENSE_FIRST_PASS = Pass(dense_forward, dense_backward_first, DENSE_PASS.decays, DENSE_PASS.symbols)


class Update:
    """The update rule with its settings: θ from ∂C/∂θ for any parameter of any layer."""

    def __init__(
        self, rule: UpdateRule, hyper: Mapping[str, float], eta: float, r: Rounder
    ) -> None:
        self.rule, self.hyper, self.eta, self.r = rule, hyper, eta, r

    def kept(self, kept: dict[str, Array] | None, theta: Array) -> dict[str, Array]:
        """The rule's state for θ: zeros before the first step."""
        if kept is None:
            return {name: np.zeros_like(theta, dtype=float) for name in self.rule.state}
        return kept

    def __call__(
        self, kind: str, theta: Array, g: Array, kept: dict[str, Array], t: int
    ) -> tuple[Array, dict[str, Array], dict[str, Array]]:
        """θ after step t from g = ∂C/∂θ, the rule's state after it, and what the rule worked
        out on the way (m̂, v̂; "decayed": θ after a decoupled decay). `kind` is "weights" for
        a parameter that decays, else the parameter's name."""
        rule, hyper, r = self.rule, self.hyper, self.r
        derived: dict[str, Array] = {}
        if rule.decay and kind in rule.decays and hyper[rule.decay]:
            theta = r(theta - self.eta * hyper[rule.decay] * theta)
            derived["decayed"] = theta
        theta_new, out = rule.update(theta, g, kept, hyper, self.eta, t, r)
        state = {name: r(out[name]) for name in rule.state}
        derived.update({name: r(out[name]) for name in rule.derived})
        return theta_new, state, derived

    def layer(
        self,
        theta: Mapping[str, Array],
        grads: Mapping[str, Array],
        decays: Iterable[str],
        params: Mapping[str, float],
        grad_params: Mapping[str, float],
        kept: Kept,
        t: int,
    ) -> tuple[dict[str, Array], dict[str, float], Kept, Kept]:
        """One layer's step: each parameter θ (those named in `decays` decay as weights), then
        each learnable activation parameter with a gradient. Returns θ and the activation's
        parameters after it, and per parameter the rule's state before the step and what it
        worked out; `kept` is updated in place to the state after it."""
        before = {k: self.kept(kept.get(k), v) for k, v in theta.items()}
        before.update({k: self.kept(kept.get(k), np.asarray(params[k])) for k in grad_params})
        decaying = set(decays)
        new: dict[str, Array] = {}
        derived: Kept = {}
        for name, value in theta.items():
            kind = "weights" if name in decaying else name
            new[name], kept[name], derived[name] = self(kind, value, grads[name], before[name], t)
        params_new = dict(params)
        for name, g in grad_params.items():
            number, kept[name], derived[name] = self(
                name, np.asarray(params[name]), np.asarray(g), before[name], t
            )
            params_new[name] = float(number)
        return new, params_new, before, derived

    def ahead(
        self,
        theta: Mapping[str, Array],
        params: Mapping[str, float],
        learnable: Iterable[str],
        kept: Kept,
    ) -> tuple[dict[str, Array], dict[str, float]]:
        """A look-ahead rule's θ̃ of one layer's parameters and learnable activation parameters
        (the rule must have a look-ahead)."""
        look, hyper, eta, r = self.rule.lookahead, self.hyper, self.eta, self.r
        assert look is not None
        names = set(learnable)
        theta_ahead = {
            k: look(v, self.kept(kept.get(k), v), hyper, eta, r) for k, v in theta.items()
        }
        params_ahead = {
            k: float(look(np.asarray(v), self.kept(kept.get(k), np.asarray(v)), hyper, eta, r))
            if k in names
            else v
            for k, v in params.items()
        }
        return theta_ahead, params_ahead


def l2_penalty(lam: float, weights: Iterable[Array], r: Rounder) -> float:
    """The L2 penalty (λ/2) Σ w² over every decaying parameter, rounded as a hand would."""
    return float(r(np.asarray(lam / 2 * sum(float(np.sum(w * w)) for w in weights))))


class Settings(Protocol):
    """What a step reads of a network's config, dense-only or layered."""

    @property
    def learning_rate(self) -> float: ...
    @property
    def optimizer(self) -> UpdateRule: ...
    @property
    def optimizer_params(self) -> dict[str, float]: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def reduction(self) -> str: ...
    @property
    def x(self) -> Array: ...
    @property
    def y(self) -> Array: ...
    @property
    def source(self) -> str: ...
    @property
    def loss(self) -> Loss: ...
    @property
    def loss_params(self) -> dict[str, float]: ...


def _where(step: int | None) -> str:
    return f"step {step}" if step else "the final forward pass"


class Trainer:
    """What both engines' networks share: η, the rounding, the update rule, and the cost
    reduced over the batch with its L2 penalty."""

    def __init__(
        self, settings: Settings, learning_rate: float | None, round_to: int | None
    ) -> None:
        self.eta = settings.learning_rate if learning_rate is None else learning_rate
        self.round_to = round_to
        self.rule = Update(
            settings.optimizer, settings.optimizer_params, self.eta, rounder(round_to)
        )
        self.lam = settings.weight_decay
        self.scale = 1.0 / settings.x.shape[0] if settings.reduction == "mean" else 1.0
        self.updated = False  # until the first update, every value comes from the config
        self.source = settings.source
        self.loss, self.loss_params = settings.loss, settings.loss_params
        # Set by each engine: the loss fused with the output activation (δ^L from z^L), that
        # activation's name, the output layer's l, and what a config overflowing should check.
        self.fused: Fused | None = None
        self.fused_name: str | None = None
        self.output = (0, "")  # (l of the output layer, its activation's name)
        self.given = "the inputs, weights and biases"

    @property
    def r(self) -> Rounder:
        return self.rule.r

    @r.setter
    def r(self, r: Rounder) -> None:
        """Round every quantity with `r` (check grades a rounded trace this way)."""
        self.rule.r = r

    # -- the cost checks -------------------------------------------------------------------
    def not_finite(
        self, value: Array | float, what: str, path: KeyPath | None, step: int | None
    ) -> NoReturn:
        """A quantity that is not finite: bad input (exit 2, at its key path) before any
        update, divergence (exit 1) after it or when the update made it."""
        if self.updated or path is None:
            raise NumericError(
                f"{_where(step)}: {what} is not finite (overflow or division by zero); "
                f"the run diverged — try a smaller learning rate than {self.eta:g}"
            )
        raise ConfigError(
            f"{what} = {shown_values(value)} from the config's own values, before any update "
            f"(no learning rate used yet): overflow or division by zero; check {self.given}",
            source=self.source,
            path=path,
        )

    def scan(self, checks: Checks, step: int | None) -> None:
        """Name the first quantity that is not finite, in the order they were computed. One sum
        first: inf and nan survive a sum, and a finite sum that overflowed only sends us to the
        exact scan, which then finds nothing."""
        total = 0.0
        for value, _, _ in checks:
            total += value.sum()
        if np.isfinite(total):
            return
        for value, what, path in checks:
            if not np.all(np.isfinite(value)):
                self.not_finite(value, what, path, step)

    def out_of_domain(self, problem: str, a: Array, step: int | None) -> NoReturn:
        """The output a^L is outside the loss's domain: bad input before any update (exit 2),
        divergence after (exit 1)."""
        l, activation = self.output
        if not self.updated:
            raise ConfigError(
                f"{self.loss.name}: {problem}, but the config's own values give a^{l} = "
                f"{shown_values(a)} (output activation '{activation}'), before any update",
                source=self.source,
                path=("loss",),
            )
        raise NumericError(
            f"{_where(step)}: loss '{self.loss.name}' {problem}; the updates took a^{l} to "
            f"{shown_values(a)}: the run diverged — try a smaller learning rate than {self.eta:g}"
        )

    def fused_domain(self, losses: Array, a: Array, y: Array, step: int | None) -> None:
        """A fused cost is finite wherever the exact cost is (BCE on a softmax output that
        rounds to 1 with y = 1); where it is not, say which values the loss needs."""
        check = self.loss.check_output
        if check is None or np.all(np.isfinite(losses)):
            return
        problem = check(a, y)
        if problem:
            self.out_of_domain(problem, a, step)

    def cost(self, z: Array, a: Array, y: Array, step: int | None, checks: Checks) -> Array:
        """C_x for each example from the output layer's z^L and a^L (rows), rounded, and added
        to `checks`. The loss's domain is checked first, after what `checks` holds: a
        non-finite output is not the loss's domain error."""
        loss, lp = self.loss, self.loss_params
        if self.fused:
            losses = self.fused.value(z, y, lp)
            if not np.all(np.isfinite(losses)):
                self.scan(checks, step)
                self.fused_domain(losses, a, y, step)
        else:
            if loss.check_output is not None:
                self.scan(checks, step)
                problem = loss.check_output(a, y)
                if problem:
                    self.out_of_domain(problem, a, step)
            losses = loss.value(a, y, lp)
        losses = self.r(np.asarray(losses, dtype=float))
        checks.append((losses, "the loss", ("loss",)))
        return losses

    def output_error(
        self, z: Array, a: Array, y: Array, checks: Checks
    ) -> tuple[Array, Array | None]:
        """∂C_x/∂a^L from the output a^L (rows), and with a fused loss δ^L straight from z^L
        (BP1 without cancellation: a^L = f(z^L) may have rounded to 1, or been rounded by
        hand); None without one, whose ∂C/∂a^L is added to `checks`."""
        with np.errstate(all="ignore"):
            grad_a = self.r(self.loss.grad(a, y, self.loss_params))
        if self.fused:
            return grad_a, self.r(self.fused.delta(z, y, self.loss_params))
        checks.append((grad_a, f"∂C/∂a^{self.output[0]}", ("loss",)))
        return grad_a, None

    # -- the look-ahead pass ---------------------------------------------------------------
    def ahead(
        self,
        thetas: Sequence[Mapping[str, Array]],
        params: Sequence[Mapping[str, float]],
        activations: Sequence[Activation],
        kept: Sequence[Kept],
    ) -> tuple[list[dict[str, Array]], list[dict[str, float]]] | None:
        """The look-ahead point θ̃ of every parameter of every layer (its arrays, its
        activation's learnable parameters), for a rule that takes its gradient there; None
        for any other rule."""
        if self.rule.rule.lookahead is None:
            return None
        theta_ahead, params_ahead = [], []
        for theta, p, f, k in zip(thetas, params, activations, kept, strict=True):
            t, q = self.rule.ahead(theta, p, (q.name for q in f.params if q.learnable), k)
            theta_ahead.append(t)
            params_ahead.append(q)
        return theta_ahead, params_ahead

    def priced(self, losses: Array, decaying: Iterable[Array]) -> tuple[float, float, float]:
        """A pass's cost: (C with the L2 penalty, the data cost, the penalty)."""
        data = self.reduce(losses)
        loss, penalty = self.regularized(data, decaying)
        return loss, data, penalty

    def prime(self, f: Activation, z: Array, a: Array, p: Mapping[str, float]) -> Array | None:
        """f′(z) of an elementwise activation, rounded on its own as a hand does; None for a
        vector one (softmax), which has a Jacobian instead."""
        return self.r(f.prime(z, a, p)) if f.elementwise else None

    def through(
        self,
        f: Activation,
        z: Array,
        a: Array,
        grad_a: Array,
        p: Mapping[str, float],
        prime: Array | None,
    ) -> Array:
        """δ = ∂C/∂z from ∂C/∂a through the activation (BP1, BP2's ⊙ f′(z)); `prime` from
        `self.prime`."""
        if prime is not None:
            return self.r(grad_a * prime)
        return self.r(f.backward(z, a, grad_a, p))

    def partials(
        self, f: Activation, z: Array, a: Array, p: Mapping[str, float]
    ) -> dict[str, Array]:
        """∂a/∂p of each learnable activation parameter, rounded on its own as a hand writes
        it down before summing ∂C/∂a ⊙ ∂a/∂p (check's drift bound of ∂C/∂p assumes it)."""
        if f.param_partials is None:
            return {}
        return {name: self.r(v) for name, v in f.param_partials(z, a, p).items()}

    def param_grads(self, partials: Mapping[str, Array], grad_a: Array) -> dict[str, float]:
        """∂C/∂p of each learnable activation parameter from ∂a/∂p and ∂C/∂a."""
        r, scale = self.r, self.scale
        return {
            name: float(r(np.asarray(scale * np.sum(grad_a * partial))))
            for name, partial in partials.items()
        }

    def run_fields(self, spec: Any) -> dict[str, Any]:
        """What a run's record (RunTrace, LayeredRun) says of its settings, dense or layered."""
        return {
            "source": spec.source,
            "loss": spec.loss.name,
            "loss_formula": spec.loss.formula.text,
            "loss_params": dict(spec.loss_params),
            "learning_rate": self.eta,
            "reduction": spec.reduction,
            "batch": spec.batch,
            "x": spec.x,
            "y": spec.y,
            "fused": self.fused_name,
            "round_to": self.round_to,
            "optimizer": spec.optimizer.name,
            "optimizer_params": dict(spec.optimizer_params),
            "weight_decay": spec.weight_decay,
        }

    def reduce(self, losses: Array) -> float:
        return float(self.r(np.asarray(losses.sum() * self.scale)))

    def regularized(self, data: float, weights: Iterable[Array]) -> tuple[float, float]:
        """The cost with the L2 penalty (λ/2) Σ w² over the decaying parameters, and the
        penalty itself."""
        if not self.lam:
            return data, 0.0
        penalty = l2_penalty(self.lam, weights, self.r)
        return float(self.r(np.asarray(data + penalty))), penalty
