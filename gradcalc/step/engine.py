"""Feedforward, backpropagation (BP1–BP4) and the update rule on a NetworkSpec, in Nielsen's names.

A dense-only network steps through the dense layer record's pass like any other network
(gradcalc/step/chain.py) and records each step as a StepTrace; a step only a summary shows
runs `lean_step`, the same passes without the records. Everything is vectorized over the batch:
a^l is (examples, n_l) and z^l = a^{l−1} wᵀ + b.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from gradcalc.errors import ConfigError, NumericError
from gradcalc.functions.registry import Activation
from gradcalc.functions.training import (
    DENSE_FIRST_PASS,
    DENSE_PASS,
    Checks,
    Pass,
    norm,
    update_norm,
)
from gradcalc.records import record
from gradcalc.step.chain import Chain, LayerStep
from gradcalc.step.config import NetworkSpec, check_work
from gradcalc.step.trace import (
    ForwardTrace,
    LayerState,
    LayerTrace,
    RunTrace,
    StepSummary,
    StepTrace,
)


@record
class Dense:
    """A dense-only network's layer as a step reads it: the dense record's pass and the
    layer's activation (gradcalc.layers.record.Layer would load every layer type). The first
    layer's pass computes no ∂C/∂x: its input is the data."""

    kind: Pass
    activation: Activation
    index: int
    residual: bool = False

    @property
    def number(self) -> int:
        return self.index + 2


# What a lean step made of one layer: δ^l, w^l and b^l updated, the activation's parameters
# and the rule's state after the step.
Moved = tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float], dict[str, Any]]


def summarize(st: StepTrace | StepSummary, norms: bool = True) -> StepSummary:
    """The summary of a step, from its full record if need be (the same numbers as the lean
    path computes: the same functions on the same arrays)."""
    if isinstance(st, StepSummary):
        return st
    table = None
    if norms:
        with np.errstate(over="ignore"):  # a square past float64 is an infinite norm, not a warning
            table = np.array(
                [
                    (
                        norm(lt.grad_weights),
                        norm(lt.grad_biases),
                        update_norm(lt.weights, lt.weights_before),
                        update_norm(lt.biases, lt.biases_before),
                    )
                    for lt in st.layers
                ]
            ).reshape(len(st.layers), 4)
    return StepSummary(st.step, st.loss, table, st.data_loss, st.penalty)


class Network(Chain):
    def __init__(
        self, spec: NetworkSpec, learning_rate: float | None = None, round_to: int | None = None
    ) -> None:
        super().__init__(
            spec,
            [
                Dense(DENSE_PASS if i else DENSE_FIRST_PASS, layer.activation, i)
                for i, layer in enumerate(spec.layers)
            ],
            [
                {"weights": layer.weights.copy(), "biases": layer.biases.copy()}
                for layer in spec.layers
            ],
            [dict(layer.params) for layer in spec.layers],
            [{} for _ in spec.layers],
            learning_rate,
            round_to,
        )
        self.spec = spec
        self.keep_prime = True
        last = spec.layers[-1].activation.name
        self.fused = spec.loss.fused.get(last)
        self.fused_name = last if self.fused else None
        self._ones = np.ones(0)
        # Per layer, the w and b that lean steps made and no one else holds (None: not so).
        self._own: list[list[np.ndarray | None]] = [[None, None] for _ in spec.layers]

    def parameters(self) -> tuple[LayerState, ...]:
        self._own = [[None, None] for _ in self.spec.layers]  # handed out now
        return tuple(
            LayerState(
                layer=i + 2,
                activation=layer.activation.name,
                elementwise=layer.activation.elementwise,
                weights=self.theta[i]["weights"],
                biases=self.theta[i]["biases"],
                params=dict(self.act[i]),
            )
            for i, layer in enumerate(self.spec.layers)
        )

    # -- one step ------------------------------------------------------------------------------
    def step(self, step: int) -> StepTrace:
        self._own = [[None, None] for _ in self.spec.layers]  # the trace holds θ before and after
        loss, losses, records, data, penalty, ahead = self.passes(step)
        return StepTrace(
            step,
            loss,
            losses,
            tuple(_traced(ls, ahead is not None) for ls in records),
            data_loss=data,
            penalty=penalty,
            ahead=ahead,
        )

    # -- one step, for a summary --------------------------------------------------------------
    @property
    def lean(self) -> bool:
        """Whether `lean_step` can stand in for `step`: not when rounding (each quantity is
        rounded as it is recorded) nor for a look-ahead rule (its second pass is recorded)."""
        return self.round_to is None and self.spec.optimizer.lookahead is None

    def _sum(self, v: np.ndarray) -> float:
        """Σ v through BLAS (a dot with ones), faster than a ufunc reduction on small arrays."""
        ones = self._ones
        if ones.size < v.size:
            ones = self._ones = np.ones(v.size)
        return float(v.ravel() @ ones[: v.size])

    def lean_step(self, step: int, norms: bool) -> StepSummary:
        """`step` computing only what a summary shows: the same operations on the same arrays,
        so the same numbers and the same errors, without the arrays' records. With `norms`,
        the four norms per layer of StepSummary.

        Finiteness is checked once, on one sum (inf and nan survive a sum): of z^l, whose f may
        hide it, the output and the cost; a non-finite a^l reaches z^(l+1), δ^l reaches ∂C/∂b^l,
        and θ_new reaches ‖Δθ‖ (θ_old was checked the step before). Only when that sum is not
        finite are the quantities scanned, in `step`'s order, for the first that is not (a sum
        that merely overflowed finds none, and the step goes on). After a NumericError the
        network's parameters are not meaningful (θ_old may hold θ_new − θ_old by then)."""
        spec, scale, total_of, eta = self.spec, self.scale, self._sum, self.eta
        update, links, thetas, params = self.rule, self.links, self.theta, self.act
        layers, y, lp = spec.layers, spec.y, spec.loss_params
        rule, hyper = spec.optimizer, spec.optimizer_params
        L = len(layers)
        total = 0.0
        a = spec.x
        zs, activations = [], [a]
        pair = self.fused.with_output if self.fused else None
        losses = None
        for i, link in enumerate(links):
            z, _ = link.kind.forward(link, thetas[i], a)
            if pair is not None and i == L - 1:
                losses, a = pair(z, y, lp)
            else:
                a = link.activation.forward(z, params[i])
            total += total_of(z)
            zs.append(z)
            activations.append(a)
        total += total_of(a)
        check = spec.loss.check_output
        if self.fused:
            if losses is None:
                losses = self.fused.value(zs[-1], y, lp)
            if not np.isfinite(total) and not np.all(np.isfinite(losses)):
                self.scan(self._checks(zs, activations), step)
            self.fused_domain(losses, a, y, step)
        else:
            if check is not None:
                if not np.isfinite(total):  # a non-finite output is not the loss's domain error
                    self.scan(self._checks(zs, activations), step)
                problem = check(a, y)
                if problem:
                    self.out_of_domain(problem, a, step)
            losses = spec.loss.value(a, y, lp)
        data = float(losses.sum() * scale)  # reduce(), which rounds nothing here
        loss, penalty = self.regularized(data, self.decaying(thetas))
        total += data

        grad_a = out_grad = np.empty(0)
        if not self.fused or layers[-1].activation.param_partials is not None:
            with np.errstate(all="ignore"):
                grad_a = out_grad = spec.loss.grad(a, y, lp)
        if self.fused:
            delta = self.fused.delta(zs[-1], y, lp)
        lam = spec.weight_decay
        table = np.empty((L, 4)) if norms else None
        # A rule that keeps nothing holds none of this step's gradients nor the parameters it
        # replaces: their memory can take θ_new and θ_new − θ_old (in cache, and no allocation).
        spent = not (rule.state or rule.derived or rule.decay)
        into = rule.update_into if spent else None
        own = self._own
        moved: list[Moved] = []
        for i in range(L - 1, -1, -1):
            link, z, a, p = links[i], zs[i], activations[i + 1], params[i]
            act = link.activation
            if i < L - 1 or not self.fused:
                if act.elementwise:
                    delta = grad_a * act.prime(z, a, p)
                else:
                    delta = act.backward(z, a, grad_a, p)
            theta = thetas[i]
            # ∂C/∂x: BP2 through the weights before the update (none below the first layer).
            grad_x, grads = link.kind.backward(link, theta, {}, delta, scale, activations[i])
            grad_w, grad_b = grads["weights"], grads["biases"]
            w_old, b_old, kept, mine = theta["weights"], theta["biases"], self.kept[i], own[i]
            if lam:
                grad_w = grad_w + lam * w_old
            grad_p: dict[str, np.ndarray] = {}
            if act.param_partials is not None:
                for name, partial in act.param_partials(z, a, p).items():
                    grad_p[name] = np.asarray(float(np.asarray(scale * np.sum(grad_a * partial))))
            grad_a = grad_x
            new_kept: dict[str, Any] = {}
            if table is not None:
                row = table[i]
                row[0], row[1] = norm(grad_w), norm(grad_b)
            else:
                total += total_of(grad_b)
            if into is not None:
                w_new, b_new = into(w_old, grad_w, hyper, eta), into(b_old, grad_b, hyper, eta)
                new_kept["weights"] = new_kept["biases"] = {}
            else:
                w_new, new_kept["weights"], _ = update(
                    "weights", w_old, grad_w, update.kept(kept.get("weights"), w_old), step
                )
                b_new, new_kept["biases"], _ = update(
                    "biases", b_old, grad_b, update.kept(kept.get("biases"), b_old), step
                )
            if table is not None:
                # θ_new − θ_old over θ_old when no one else holds it, else over the spent g.
                spare = into is None and spent
                row[2] = update_norm(
                    w_new, w_old, w_old if w_old is mine[0] else grad_w if spare else None
                )
                row[3] = update_norm(
                    b_new, b_old, b_old if b_old is mine[1] else grad_b if spare else None
                )
                total += row[2] + row[3]
            else:
                total += total_of(w_new) + total_of(b_new)
            p_new = p
            if grad_p:
                p_new = dict(p)
                for name, g in grad_p.items():
                    value = np.asarray(p[name])
                    value, new_kept[name], _ = update(
                        name, value, g, update.kept(kept.get(name), value), step
                    )
                    p_new[name] = float(value)
            for number in p_new.values():
                total += number
            moved.append((delta, w_new, b_new, p_new, new_kept))

        if not np.isfinite(total):
            extra: Checks = [] if self.fused else [(out_grad, f"∂C/∂a^{L + 1}", ("loss",))]
            self.scan(self._checks(zs, activations, losses, extra, moved), step)
        self.updated = True
        for i, (_, w_new, b_new, p_new, new_kept) in enumerate(reversed(moved)):
            thetas[i], params[i] = {"weights": w_new, "biases": b_new}, p_new
            self.kept[i].update(new_kept)
            # Made here and handed to no one: the next step may overwrite them.
            own[i] = [w_new, b_new] if spent else [None, None]
        return StepSummary(step, loss, table, data_loss=data, penalty=penalty)

    def _checks(
        self,
        zs: list[np.ndarray],
        activations: list[np.ndarray],
        losses: np.ndarray | None = None,
        extra: Checks | None = None,
        moved: Sequence[Moved] = (),
    ) -> Checks:
        """What `step` checks, in its order, from what a lean step computed (moved: per layer
        from the top, δ^l, w^l and b^l updated, the parameters after the step)."""
        checks: Checks = []
        for l, (z, a) in enumerate(zip(zs, activations[1:], strict=True), 2):
            checks += ((z, f"z^{l}", ("layers", l - 2)), (a, f"a^{l}", ("layers", l - 2)))
        if losses is not None:
            checks.append((losses, "the loss", ("loss",)))
        checks += extra or []
        L = len(zs)
        for i, (delta, w_new, b_new, p_new, _) in zip(range(L - 1, -1, -1), moved, strict=False):
            l = i + 2
            checks += (
                (delta, f"δ^{l}", ("layers", i)),
                (w_new, f"the updated w^{l}", None),
                (b_new, f"the updated b^{l}", None),
            )
            for name, value in p_new.items():
                checks.append((np.asarray(value), f"the updated {name} of layer {l}", None))
        return checks


def _traced(ls: LayerStep, ahead: bool) -> LayerTrace:
    """A dense layer's record of a step, as the dense writers read it."""
    theta, before, pass_ = ls.params, ls.params_before, ls.params_ahead
    return LayerTrace(
        layer=ls.layer.number,
        activation=ls.layer.activation.name,
        a_prev=ls.x,
        z=ls.z,
        a=ls.a,
        prime=ls.prime,
        grad_a=ls.grad_a,
        delta=ls.delta,
        grad_weights=ls.grads["weights"],
        grad_biases=ls.grads["biases"],
        weights_before=before["weights"],
        biases_before=before["biases"],
        weights=theta["weights"],
        biases=theta["biases"],
        params_before=ls.activation_params_before,
        params=ls.activation_params,
        grad_params=ls.grad_activation_params,
        param_partials=ls.param_partials,
        optimizer_state=ls.optimizer_state,
        optimizer_state_before=ls.optimizer_state_before,
        optimizer_derived=ls.optimizer_derived,
        weights_ahead=None if pass_ is None else pass_["weights"],
        biases_ahead=None if pass_ is None else pass_["biases"],
        params_ahead=(
            {k: ls.activation_params_pass[k] for k in ls.grad_activation_params} if ahead else None
        ),
    )


class Stream:
    """A run produced one step at a time: iterate for the StepTraces, or the StepSummary of a
    step the caller does not need in full (each is dropped once the caller lets go of it), then
    `finish` with the steps worth keeping. Memory stays that of one step plus 8 bytes of cost
    per step, however many steps run."""

    def __init__(
        self,
        spec: NetworkSpec,
        *,
        steps: int | None = None,
        learning_rate: float | None = None,
        round_to: int | None = None,
        full: Callable[[int], bool] | None = None,
        norms: bool = True,
    ) -> None:
        """`full`: the steps to produce as StepTraces, every one when None; the others come
        as StepSummary, with their norms when `norms`, computed without the arrays a summary
        does not show (what the writer asks for: `--show summary` needs no StepTrace)."""
        self.spec = spec
        self.n = spec.steps if steps is None else steps
        check_work(spec, self.n)
        self.net = Network(spec, learning_rate, round_to)
        self.full = full
        self.norms = norms
        self.round_to = round_to
        self.step_losses = np.empty(self.n)  # C before each step's update, for the loss curve
        self.initial_parameters = self.net.parameters()  # steps replace arrays, never write
        self.initial: ForwardTrace | None = None

    def __iter__(self) -> Iterator[StepTrace | StepSummary]:
        net, full, norms = self.net, self.full, self.norms
        lean = net.lean and full is not None
        for s in range(1, self.n + 1):
            st: StepTrace | StepSummary
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                # Step 1 runs in full: its forward pass is the run's initial one.
                wanted = full is None or full(s)
                st = net.lean_step(s, norms) if lean and s > 1 and not wanted else net.step(s)
            self.step_losses[s - 1] = st.loss
            if s == 1:
                assert isinstance(st, StepTrace)
                self.initial = ForwardTrace.of_step(st) if net.at_theta is None else net.at_theta
            yield st if wanted else summarize(st, norms)

    def head(self) -> RunTrace:
        """What a writer needs before the first step: the run's settings. No pass has run yet,
        so its initial and final passes are empty (a diverging first step must report itself,
        not a pass run here ahead of it)."""
        nothing = ForwardTrace(math.nan, np.empty(0), (), ())
        return self._trace((), nothing, nothing)

    def finish(self, kept: Iterable[StepTrace] = ()) -> RunTrace:
        """The run after its last step, with the steps a writer kept."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            final = self.net.forward_trace()
        return self._trace(tuple(kept), self.initial or final, final)

    def _trace(
        self, steps: tuple[StepTrace, ...], initial: ForwardTrace, final: ForwardTrace
    ) -> RunTrace:
        spec, net = self.spec, self.net
        return RunTrace(
            **net.run_fields(spec),
            sizes=tuple(spec.sizes),
            initial=initial,
            steps=steps,
            final=final,
            initial_parameters=self.initial_parameters,
            parameters=net.parameters(),
            total_steps=self.n,
            step_losses=self.step_losses,
        )


def run(
    spec: NetworkSpec,
    *,
    steps: int | None = None,
    learning_rate: float | None = None,
    round_to: int | None = None,
    exact: bool = False,
    keep: Callable[[int], bool] | None = None,
) -> RunTrace:
    """Train for `steps` SGD steps and return the trace, with every step or those `keep`
    accepts; with `round_to` and `exact`, the trace also carries the same run without rounding
    (its final state only)."""
    if not isinstance(spec, NetworkSpec):  # layer records: gradcalc/layers/engine.py
        from gradcalc.layers.engine import run as layered

        return layered(spec, steps=steps, learning_rate=learning_rate, round_to=round_to)
    if round_to is not None and exact:
        rounded = run(spec, steps=steps, learning_rate=learning_rate, round_to=round_to, keep=keep)
        return dataclasses.replace(rounded, exact=exact_run(spec, steps, learning_rate))
    stream = Stream(
        spec, steps=steps, learning_rate=learning_rate, round_to=round_to, full=keep, norms=False
    )
    if keep is None:
        return stream.finish(tuple(stream))  # type: ignore[arg-type]
    return stream.finish(tuple(st for st in stream if isinstance(st, StepTrace)))


def exact_run(spec: NetworkSpec, steps: int | None, learning_rate: float | None) -> RunTrace | None:
    """The run without rounding, keeping no step: what the drift tables compare with (None when
    it diverged where the rounded run may not: no drift to show)."""
    stream = Stream(
        spec, steps=steps, learning_rate=learning_rate, full=lambda s: False, norms=False
    )
    try:
        for _ in stream:
            pass
        return stream.finish()
    except (NumericError, ConfigError):
        return None


def reuse_freed_memory() -> None:
    """Ask glibc's malloc to keep freed large blocks for reuse instead of returning each to
    the kernel at once. A step allocates and frees arrays of the network's size (w^l, ∂C/∂w^l,
    the updated w^l); by default each comes from a fresh mmap and is paid for again in page
    faults (measured: 0.8 ms instead of 0.08 ms for `w − η g` at 128×784). Peak memory is the
    same; it is only not handed back before the process ends. A no-op off glibc."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 256 * 1024 * 1024)
    mallopt(m_trim_threshold, 512 * 1024 * 1024)
