"""How far a hand calculation that rounds as it goes can drift from the exact values.

The model is the `--round N` trace's: every quantity the step engine rounds (z, a, the costs,
∂C/∂a, f′(z), δ, the gradients, the updated parameters) may be written with any value within
half a unit of its last kept place, u = ½·10^(−N) (for N significant figures, half a unit of the
N-th digit of the value). Each such error is pushed through the equations that use the value,
step by step, as a bound per cell (running error analysis):

    e(z) = |a^(l−1)| e(w)ᵀ + e(a^(l−1)) |w|ᵀ + e(a^(l−1)) e(w)ᵀ + e(b) + u

and, for a function g of the rounded values (f, f′, the cost, ∂C/∂a, the softmax's Jacobian
product), the largest change of g when each input moves by its bound: for elementwise functions
g is evaluated at ±e and ±e/2 around the exact value, for row-wise ones at ±e one unit at a time,
and the changes are added. That is first-order in u: the terms of order u² it leaves out are
covered by accepting up to twice the bound (see grade.py). A kink (ReLU's f′ at 0) inside the
interval shows as its full jump, since g is evaluated on both sides.

A value recomputed from the student's own written numbers is bounded by recompute.py instead,
from the allowances of those numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from gradcalc.check.cells import Key, Shape
from gradcalc.functions.registry import Activation, ElementwiseActivation
from gradcalc.step.config import NetworkSpec
from gradcalc.step.trace import RunTrace

Unit = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (value, its bound) -> u


def decimals_unit(n: int) -> Unit:
    half = 0.5 * 10.0**-n

    def unit(v: np.ndarray, e: np.ndarray) -> np.ndarray:
        return np.full(np.shape(v), half)

    return unit


def sig_figs_unit(n: int) -> Unit:
    def unit(v: np.ndarray, e: np.ndarray) -> np.ndarray:
        big = np.abs(v) + e  # the largest magnitude the written value can have
        with np.errstate(divide="ignore"):
            exponent = np.floor(np.log10(np.where(big > 0, big, 1.0)))
        return np.where(big > 0, 0.5 * 10.0 ** (exponent - n + 1), 0.0)

    return unit


def spread(f: Callable[..., np.ndarray], args: Sequence[np.ndarray], errs: Sequence, rowwise: bool):
    """A bound on |f(args + d) − f(args)| for |d| ≤ errs, per output element (see the module)."""
    with np.errstate(all="ignore"):
        base = np.asarray(f(*args))
        total = np.zeros(base.shape)
        for i, (v, e) in enumerate(zip(args, errs, strict=True)):
            e = np.broadcast_to(np.asarray(e, dtype=float), np.shape(v))
            if not np.any(e):
                continue
            if rowwise and np.ndim(v) == 2:
                for j in range(v.shape[1]):
                    worst = np.zeros(base.shape)
                    for t in (-1.0, 1.0):
                        moved = np.array(v, dtype=float)
                        moved[:, j] += t * e[:, j]
                        call = list(args)
                        call[i] = moved
                        change = np.abs(np.asarray(f(*call)) - base)
                        worst = np.maximum(worst, np.where(np.isfinite(change), change, np.inf))
                    total = total + worst
            else:
                worst = np.zeros(base.shape)
                for t in (-1.0, -0.5, 0.5, 1.0):
                    call = list(args)
                    call[i] = v + t * e
                    change = np.abs(np.asarray(f(*call)) - base)
                    worst = np.maximum(worst, np.where(np.isfinite(change), change, np.inf))
                total = total + worst
    return total


def _either(e_z: np.ndarray, e_a: np.ndarray) -> np.ndarray:
    """The bound of a value worked either from z or from a (the second where it is finite)."""
    return np.where(np.isfinite(e_a), np.maximum(e_z, e_a), e_z)


def _param_spread(g: Callable[[dict], np.ndarray], p: dict[str, float], e_p: dict[str, float]):
    """The change of g(params) when each learned parameter moves by its bound."""
    total = 0.0
    for name, e in e_p.items():
        if e > 0:
            total = total + spread(
                lambda v, n=name: g({**p, n: float(v)}), [np.array(p[name])], [e], False
            )
    return total


class Bounds:
    """The drift bound of every cell of a run, for one rounding rule."""

    def __init__(self, spec: NetworkSpec, exact: RunTrace, unit: Unit) -> None:
        self.spec, self.exact, self.u = spec, exact, unit
        self.shape = Shape.of(spec)
        self.steps: list[dict[Key, np.ndarray]] = []
        self.final: dict[Key, np.ndarray] = {}
        self._run()

    def _run(self) -> None:
        if not isinstance(self.spec, NetworkSpec):  # layer records (gradcalc/layers/check.py)
            from gradcalc.layers.check import bounds

            self.steps, self.local, self.final = bounds(self.spec, self.exact, self.u)
            return
        spec, exact = self.spec, self.exact
        L = self.shape.L
        e_w = [np.zeros(layer.weights.shape) for layer in spec.layers]
        e_b = [np.zeros(layer.biases.shape) for layer in spec.layers]
        e_p: list[dict[str, float]] = [
            {p.name: 0.0 for p in layer.activation.params if p.learnable} for layer in spec.layers
        ]
        scale = 1.0 / spec.x.shape[0] if spec.reduction == "mean" else 1.0
        eta = exact.learning_rate
        for st in exact.steps:
            glob: dict[Key, np.ndarray] = {}
            e_z, e_a = self._forward(
                [lt.weights_before for lt in st.layers],
                [lt.params_before for lt in st.layers],
                [lt.z for lt in st.layers],
                [lt.a for lt in st.layers],
                e_w,
                e_b,
                e_p,
            )
            for l in range(2, L + 1):
                lt = st.layers[l - 2]
                glob[("z", l)], glob[("a", l)] = e_z[l - 2], e_a[l - 2]
            last_layer = st.layers[-1]
            e_losses, e_loss = self._cost(
                st.losses, last_layer.z, last_layer.a, e_z[-1], e_a[-1], scale
            )
            glob[("losses", None)], glob[("loss", None)] = e_losses, e_loss

            e_ga = spread(self._loss_grad, [last_layer.a], [e_a[-1]], True)
            e_ga = e_ga + self.u(last_layer.grad_a, e_ga)
            new_w, new_b = list(e_w), list(e_b)
            new_p = [dict(d) for d in e_p]
            for l in range(L, 1, -1):
                lt, i = st.layers[l - 2], l - 2
                f = spec.layers[i].activation
                e_d = self._delta(lt, f, l == L, e_z[i], e_a[i], e_ga, e_p[i])
                glob[("delta", l)] = e_d

                a_prev = spec.x if l == 2 else st.layers[l - 3].a
                e_prev = np.zeros(a_prev.shape) if l == 2 else e_a[l - 3]
                e_gb = scale * e_d.sum(axis=0)
                e_gb = e_gb + self.u(lt.grad_biases, e_gb)
                e_gw = scale * (
                    e_d.T @ np.abs(a_prev) + np.abs(lt.delta).T @ e_prev + e_d.T @ e_prev
                )
                e_gw = e_gw + spec.weight_decay * e_w[i]  # the L2 term λw
                e_gw = e_gw + self.u(lt.grad_weights, e_gw)
                glob[("grad_biases", l)], glob[("grad_weights", l)] = e_gb, e_gw

                if lt.grad_params:
                    e_gp = self._param_grads(lt, f, scale, e_z[i], e_a[i], e_ga)
                    glob[("grad_activation_params", l)] = e_gp
                    for name, e_g in zip(lt.grad_params, e_gp, strict=True):
                        e_new = e_p[i][name] + eta * float(e_g)
                        u_new = self.u(np.asarray(lt.params[name]), np.asarray(e_new))
                        new_p[i][name] = e_new + float(u_new)
                if lt.params:
                    values = [new_p[i].get(name, 0.0) for name in lt.params]
                    glob[("activation_params", l)] = np.array(values)

                e_wn = self._update(lt.weights_before, lt.grad_weights, e_w[i], e_gw)
                new_w[i] = e_wn + self.u(lt.weights, e_wn)
                e_bn = self._update(lt.biases_before, lt.grad_biases, e_b[i], e_gb)
                new_b[i] = e_bn + self.u(lt.biases, e_bn)
                glob[("weights", l)], glob[("biases", l)] = new_w[i], new_b[i]

                # BP2 into the layer below, through the weights before the update.
                w = lt.weights_before
                e_ga = e_d @ np.abs(w) + np.abs(lt.delta) @ e_w[i] + e_d @ e_w[i]
                if l > 2:
                    below = st.layers[l - 3]
                    e_ga = e_ga + self.u(below.grad_a, e_ga)
            e_w, e_b, e_p = new_w, new_b, new_p
            self.steps.append(glob)

        final = exact.final
        e_z, e_a = self._forward(
            [p.weights for p in exact.parameters],
            [p.params for p in exact.parameters],
            list(final.z),
            list(final.a),
            e_w,
            e_b,
            e_p,
        )
        _, e_loss = self._cost(final.losses, final.z[-1], final.a[-1], e_z[-1], e_a[-1], scale)
        self.final = {("output", None): e_a[-1], ("loss", None): e_loss}

    def _update(self, theta, g, e_theta, e_g) -> np.ndarray:
        """The change of the update rule's θ when θ and g move by their bounds. For SGD that is
        e(θ) + η e(g) exactly; a rule with state (momentum, …) is bounded with its state exact."""
        spec, eta = self.spec, self.exact.learning_rate
        if spec.optimizer.plain:
            return e_theta + eta * e_g
        rule = spec.optimizer
        zeros = {k: np.zeros_like(theta, dtype=float) for k in rule.state}

        def step(th: np.ndarray, gg: np.ndarray) -> np.ndarray:
            return rule.update(th, gg, zeros, spec.optimizer_params, eta, 1, lambda v: v)[0]

        return spread(step, [theta, g], [e_theta, e_g], False)

    def _loss_grad(self, a: np.ndarray) -> np.ndarray:
        return self.spec.loss.grad(a, self.spec.y, self.spec.loss_params)

    def _delta(self, lt, f, output: bool, e_z, e_a, e_ga, e_p) -> np.ndarray:
        """The bound of δ^l: BP1 or BP2's Hadamard product, or a Jacobian product."""
        spec, p = self.spec, lt.params_before
        z, a, ga = lt.z, lt.a, lt.grad_a
        fused = spec.loss.fused.get(spec.layers[-1].activation.name) if output else None
        if fused is not None:
            e_d = spread(lambda zz: fused.delta(zz, spec.y, spec.loss_params), [z], [e_z], True)
            if fused.from_output is not None:  # δ^L = a − y from the rounded a
                from_a = fused.from_output
                e_d = _either(
                    e_d, spread(lambda aa: from_a(aa, spec.y, spec.loss_params), [a], [e_a], True)
                )
            return e_d + self.u(lt.delta, e_d)
        if isinstance(f, ElementwiseActivation):
            prime = f.prime
            e_f = spread(lambda zz, aa: prime(zz, aa, p), [z, a], [e_z, e_a], False)
            e_f = e_f + _param_spread(lambda q: prime(z, a, q), p, e_p)
            e_f = e_f + self.u(lt.prime, e_f)
            e_d = np.abs(lt.prime) * e_ga + np.abs(ga) * e_f + e_ga * e_f
            return e_d + self.u(lt.delta, e_d)
        e_d = spread(
            lambda zz, aa, gg: f.backward(zz, aa, gg, p), [z, a, ga], [e_z, e_a, e_ga], True
        )
        return e_d + self.u(lt.delta, e_d)

    def _param_grads(self, lt, f, scale: float, e_z, e_a, e_ga) -> np.ndarray:
        """Bounds of ∂C/∂p = Σ ∂C/∂a ⊙ ∂a/∂p for each learned parameter (PReLU's a)."""
        p, ga, out = lt.params_before, lt.grad_a, []
        for name, partial in lt.param_partials.items():
            e_part = spread(
                lambda zz, aa, n=name: f.param_partials(zz, aa, p)[n],
                [lt.z, lt.a],
                [e_z, e_a],
                False,
            )
            e_part = e_part + self.u(partial, e_part)
            e_g = scale * np.sum(np.abs(ga) * e_part + np.abs(partial) * e_ga + e_ga * e_part)
            out.append(e_g + float(self.u(np.asarray(lt.grad_params[name]), np.asarray(e_g))))
        return np.array(out)

    def _forward(self, weights, params, zs, activations, e_w, e_b, e_p):
        spec = self.spec
        a_prev, e_prev = spec.x, np.zeros(spec.x.shape)
        out_z, out_a = [], []
        for i, layer in enumerate(spec.layers):
            w, p, z, a = weights[i], params[i], zs[i], activations[i]
            e_z = (np.abs(a_prev) + e_prev) @ e_w[i].T + e_prev @ np.abs(w).T + e_b[i]
            e_z = e_z + self.u(z, e_z)
            f = layer.activation

            def forward(zz: np.ndarray, f: Activation = f, p: dict[str, float] = p) -> np.ndarray:
                return f.forward(zz, p)

            e_a = spread(forward, [z], [e_z], not f.elementwise)

            def with_params(
                q: dict[str, float], f: Activation = f, z: np.ndarray = z
            ) -> np.ndarray:
                return f.forward(z, q)

            e_a = e_a + _param_spread(with_params, p, e_p[i])
            e_a = e_a + self.u(a, e_a)
            out_z.append(e_z)
            out_a.append(e_a)
            a_prev, e_prev = a, e_a
        return out_z, out_a

    def _cost(self, losses, z, a, e_z, e_a, scale):
        spec = self.spec
        y, lp = spec.y, spec.loss_params
        fused = spec.loss.fused.get(spec.layers[-1].activation.name)
        if fused is not None:
            # From z, or, as by hand, from the rounded a: −Σ y ln a.
            e = _either(
                spread(lambda zz: fused.value(zz, y, lp), [z], [e_z], True),
                spread(lambda aa: spec.loss.value(aa, y, lp), [a], [e_a], True),
            )
        else:
            e = spread(lambda aa: spec.loss.value(aa, y, lp), [a], [e_a], True)
        e = e + self.u(losses, e)
        total = np.asarray(scale * e.sum())
        loss = np.asarray(scale * losses.sum())
        e_loss = total + self.u(loss, total)
        return e, e_loss
