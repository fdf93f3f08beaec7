"""One step through a chain of layer records, for every network: the forward pass, the cost, a
look-ahead rule's second pass, the output error, the backward pass and the update.

A dense-only network (gradcalc/step/engine.py) and a network with other layer types
(gradcalc/layers/engine.py) both step here; each engine says only what its layers are and how
it records a step. A layer is anything with a `kind` holding its passes: a LayerType of
gradcalc/layers/, or for a dense-only network the dense record's own pass
(gradcalc.functions.training.DENSE_PASS), which needs nothing of gradcalc.layers.

Each layer maps x (N, *in) to z (N, *out), its activation z to a; backward, δ = ∂C_x/∂z from
∂C_x/∂a through the activation, and the layer's own backward gives ∂C_x/∂x (the layer below's
∂C/∂a) and ∂C/∂θ for each of its parameters θ.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from gradcalc.functions.registry import Activation
from gradcalc.functions.training import Array, Checks, Kept, Settings, Trainer
from gradcalc.records import record
from gradcalc.step.trace import ForwardTrace

if TYPE_CHECKING:
    from gradcalc.layers.record import Layer

Theta = dict[str, Array]
Cache = dict[str, Any]


class Link(Protocol):
    """What a step reads of a layer (gradcalc.layers.record.Layer has it all)."""

    @property
    def kind(self) -> Any: ...  # forward, backward, decays, symbols, update_state
    @property
    def activation(self) -> Activation: ...
    @property
    def residual(self) -> bool: ...
    @property
    def number(self) -> int: ...


@record
class LayerStep:
    """What one step computed at one layer."""

    layer: Layer  # a dense-only network's: its stand-in (gradcalc/step/engine.py)
    x: Array  # its input, (N, *in_shape)
    z: Array
    a: Array
    grad_a: Array  # ∂C_x/∂a per example
    delta: Array  # δ = ∂C_x/∂z per example
    grad_x: Array  # ∂C_x/∂x per example: the layer below's ∂C/∂a
    cache: Cache
    grads: Theta  # ∂C/∂θ of the reduced cost (with the L2 penalty's λθ)
    params_before: Theta
    params: Theta  # after the update
    activation_params_before: dict[str, float] = field(default_factory=dict)
    activation_params: dict[str, float] = field(default_factory=dict)
    grad_activation_params: dict[str, float] = field(default_factory=dict)
    optimizer_state: dict[str, dict[str, Array]] = field(default_factory=dict)
    optimizer_state_before: dict[str, dict[str, Array]] = field(default_factory=dict)
    optimizer_derived: dict[str, dict[str, Array]] = field(default_factory=dict)
    params_ahead: Theta | None = None  # a look-ahead rule's θ̃, where the passes ran
    # The layer's state (batch norm's running statistics) before and after the step.
    state_before: Theta = field(default_factory=dict)
    state: Theta = field(default_factory=dict)
    # f′(z), rounded, of an elementwise activation (None: a vector one, or not kept); ∂a/∂p of
    # each learnable activation parameter, rounded; the activation's parameters where the
    # passes ran.
    prime: Array | None = None
    param_partials: dict[str, Array] = field(default_factory=dict)
    activation_params_pass: dict[str, float] = field(default_factory=dict)


# What a step gives its engine: C at θ, C_x, each layer's record from the first, the data cost,
# the penalty, and a look-ahead rule's pass at θ̃.
Passes = tuple[float, Array, list[LayerStep], float, float, ForwardTrace | None]


class Chain(Trainer):
    """A network as a chain of layers: its parameters θ per layer (by name), its activations'
    parameters, what the update rule keeps and each layer's state, stepped in place."""

    def __init__(
        self,
        spec: Settings,
        links: Sequence[Link],
        theta: list[Theta],
        act: list[dict[str, float]],
        state: list[Theta],
        learning_rate: float | None,
        round_to: int | None,
    ) -> None:
        super().__init__(spec, learning_rate, round_to)
        self.links = links
        self.theta, self.act, self.state = theta, act, state
        self.kept: list[Kept] = [{} for _ in links]
        last = links[-1]
        self.output = (last.number, last.activation.name)
        self.sliced = False  # the loss reads a sequence's last step only
        self.keep_prime = False  # whether a record holds f′(z) (the dense tables show it)
        self.x, self.y = spec.x, spec.y.reshape(spec.x.shape[0], -1)
        self.checks: Checks = []
        self.at_theta: ForwardTrace | None = None  # a look-ahead step's pass at θ
        self._activations = [link.activation for link in links]
        # How errors name each parameter and its gradient: w^2 (fixed per layer).
        self._names = [
            {k: _named(link.kind, k, link.number) for k in t}
            for link, t in zip(links, theta, strict=True)
        ]

    def scored(self, out: Array) -> Array:
        """The output the loss reads: with loss_at: last, a sequence's last step."""
        return out[:, -1] if self.sliced else out

    def decaying(self, theta: list[Theta]) -> Iterator[Array]:
        """The parameters the L2 penalty takes: each layer type's `decays`."""
        for link, t in zip(self.links, theta, strict=True):
            for name in link.kind.decays:
                if name in t:  # an optional weight (attention's wo) may be absent
                    yield t[name]

    # -- passes ----------------------------------------------------------------------------
    def forward(
        self, theta: list[Theta], act: list[dict[str, float]]
    ) -> tuple[list[Array], list[Array], list[Array], list[Cache]]:
        """Each layer's input, z, a and cache, at θ (or a look-ahead rule's θ̃); what must be
        finite goes to `checks`, checked once at the end of the step."""
        r = self.r
        x = self.x
        xs, zs, activations, caches = [], [], [], []
        for i, link in enumerate(self.links):
            z, cache = link.kind.forward(link, theta[i], x)
            z = r(z)
            a = r(link.activation.forward(z, act[i]))
            if link.residual:
                a = r(x + a)
            at = ("layers", i)
            self.checks += ((z, f"z^{link.number}", at), (a, f"a^{link.number}", at))
            xs.append(x)
            zs.append(z)
            activations.append(a)
            caches.append(cache)
            x = a
        return xs, zs, activations, caches

    def costs(self, zs: list[Array], activations: list[Array], step: int | None) -> Array:
        """C_x for each example from a forward pass's output."""
        out = self.scored(activations[-1]).reshape(self.x.shape[0], -1)
        return self.cost(zs[-1], out, self.y, step, self.checks)

    def forward_trace(self) -> ForwardTrace:
        self.checks = []
        _, zs, activations, _ = self.forward(self.theta, self.act)
        losses = self.costs(zs, activations, None)
        self.scan(self.checks, None)
        self.checks = []
        loss, data, penalty = self.priced(losses, self.decaying(self.theta))
        return ForwardTrace(loss, losses, tuple(zs), tuple(activations), data, penalty)

    # -- one step --------------------------------------------------------------------------
    def passes(self, s: int) -> Passes:
        """Step s: the cost at θ, the gradients (at θ̃ for a look-ahead rule) and the update,
        which replaces θ, the activations' parameters and the layers' state."""
        r, links = self.r, self.links
        self.checks = []
        xs, zs, activations, caches = self.forward(self.theta, self.act)
        losses = self.costs(zs, activations, s)
        loss, data, penalty = self.priced(losses, self.decaying(self.theta))
        ahead = self.ahead(self.theta, self.act, self._activations, self.kept)
        ahead_trace = None
        theta_pass, act_pass = ahead or (self.theta, self.act)
        self.at_theta = None
        if ahead is not None:
            # The pass at θ itself, which a look-ahead rule's records (at θ̃) do not hold: step
            # 1's is the run's initial pass. θ̃ = θ at step 1, but for a rounded θ̃.
            self.at_theta = ForwardTrace(loss, losses, tuple(zs), tuple(activations), data, penalty)
            xs, zs, activations, caches = self.forward(theta_pass, act_pass)
            ahead_losses = self.costs(zs, activations, s)
            ahead_loss, ahead_data, ahead_penalty = self.priced(
                ahead_losses, self.decaying(theta_pass)
            )
            ahead_trace = ForwardTrace(
                ahead_loss, ahead_losses, tuple(zs), tuple(activations), ahead_data, ahead_penalty
            )
        out = activations[-1]
        grad_a, delta = self.output_error(
            zs[-1], self.scored(out).reshape(self.x.shape[0], -1), self.y, self.checks
        )
        if self.sliced:  # the steps before the last send no gradient from the loss
            last, grad_a = grad_a, np.zeros_like(out)
            grad_a[:, -1] = last
        grad_a = grad_a.reshape(out.shape)
        lam = self.lam
        L = len(links)
        records: list[LayerStep | None] = [None] * L
        for i in range(L - 1, -1, -1):
            link, z, a, p = links[i], zs[i], activations[i], act_pass[i]
            kind, f, l, at = link.kind, link.activation, link.number, ("layers", i)
            names = self._names[i]
            if link.residual:  # f′ from f(z) itself, not from x + f(z)
                a = r(f.forward(z, p))
            prime = self.prime(f, z, a, p)
            if i < L - 1 or delta is None:
                delta = self.through(f, z, a, grad_a, p, prime)
            self.checks.append((delta, f"δ^{l}", at))
            grad_x, grads = kind.backward(link, theta_pass[i], caches[i], delta, self.scale, xs[i])
            grad_x = r(grad_x)
            if link.residual:  # the residual path: ∂(x + f(z))/∂x adds ∂C/∂a itself
                grad_x = r(grad_x + grad_a)
            grads = {k: r(g) for k, g in grads.items()}
            if lam:
                for name in kind.decays:
                    if name in grads:
                        grads[name] = r(grads[name] + lam * theta_pass[i][name])
            for name in reversed(grads):  # BP3's ∂C/∂b before BP4's ∂C/∂w
                named = names.get(name) or _named(kind, name, l)
                self.checks.append((grads[name], f"∂C/∂{named}", at))
            partials = self.partials(f, z, a, p)
            grad_p = self.param_grads(partials, grad_a)
            kept = self.kept[i]
            new, act_new, before, derived = self.rule.layer(
                self.theta[i], grads, kind.decays, self.act[i], grad_p, kept, s
            )
            for name, value in new.items():
                self.checks.append((value, f"the updated {names[name]}", None))
            for name, number in act_new.items():
                self.checks.append((np.asarray(number), f"the updated {name} of layer {l}", None))
            state = self.state[i]
            if kind.update_state is not None:
                # From the pass the gradients came from (a look-ahead rule's θ̃ where it ran).
                state = {k: r(v) for k, v in kind.update_state(link, state, caches[i]).items()}
            records[i] = LayerStep(
                layer=cast("Layer", link),
                x=xs[i],
                z=z,
                a=activations[i],
                grad_a=grad_a,
                delta=delta,
                grad_x=grad_x,
                cache=caches[i],
                grads=grads,
                params_before=self.theta[i],
                params=new,
                activation_params_before=dict(self.act[i]),
                activation_params=act_new,
                grad_activation_params=grad_p,
                optimizer_state={k: dict(v) for k, v in kept.items() if v},
                optimizer_state_before={k: dict(v) for k, v in before.items() if v},
                optimizer_derived={k: v for k, v in derived.items() if v},
                params_ahead=None if ahead is None else theta_pass[i],
                state_before=self.state[i],
                state=state,
                prime=prime if self.keep_prime else None,
                param_partials=partials,
                activation_params_pass=p,
            )
            grad_a = grad_x
        self.scan(self.checks, s)
        self.checks = []
        self.updated = True
        done = [ls for ls in records if ls is not None]
        for i, ls in enumerate(done):
            self.theta[i], self.act[i], self.state[i] = ls.params, ls.activation_params, ls.state
        return loss, losses, done, data, penalty, ahead_trace


def _named(kind: Any, name: str, l: int) -> str:
    """A parameter as an error names it: w^2 where its layer type has a symbol for it."""
    symbol = kind.symbols.get(name)
    return f"{symbol}^{l}" if symbol else f"{name} of layer {l}"
