"""Forward and backward passes through a sequence of layer records, and the update rule applied
to every parameter of every layer.

Each layer maps x (N, *in) to z (N, *out), its activation z to a; backward, δ = ∂C_x/∂z from
∂C_x/∂a through the activation, and the layer's own backward gives ∂C_x/∂x (the layer below's
∂C/∂a) and ∂C/∂θ for each of its parameters θ.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcalc.functions.training import (
    Checks,
    Trainer,
    norm,
    update_norm,
)
from gradcalc.layers.config import LayeredSpec
from gradcalc.layers.record import Array, Cache, Layer, Shape
from gradcalc.step.trace import ForwardTrace

Theta = dict[str, Array]


@dataclass(frozen=True)
class LayerStep:
    """What one step computed at one layer."""

    layer: Layer
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


@dataclass(frozen=True)
class LayeredStepTrace:
    step: int
    loss: float
    losses: Array
    layers: tuple[LayerStep, ...]
    data_loss: float | None = None
    penalty: float = 0.0
    ahead: ForwardTrace | None = None


@dataclass(frozen=True)
class LayeredRun:
    """A whole run of a layered network: what its writers render."""

    source: str
    loss: str
    loss_formula: str
    loss_params: dict[str, float]
    learning_rate: float
    reduction: str
    batch: bool
    x: Array
    y: Array
    layers: tuple[Layer, ...]
    initial: ForwardTrace
    steps: tuple[LayeredStepTrace, ...]
    final: ForwardTrace
    initial_parameters: tuple[Theta, ...]
    parameters: tuple[Theta, ...]
    activation_params: tuple[dict[str, float], ...]
    fused: str | None = None
    round_to: int | None = None
    optimizer: str = "sgd"
    optimizer_params: dict[str, float] = field(default_factory=dict)
    weight_decay: float = 0.0
    total_steps: int | None = None
    step_losses: Array | None = None
    states: tuple[Theta, ...] = ()  # each layer's state after the last step
    loss_at: str | None = None  # a sequence input's: "every" or "last"

    @property
    def sliced(self) -> bool:
        return self.loss_at == "last" and len(self.layers[-1].out_shape) == 2

    @property
    def shapes(self) -> list[Shape]:
        return [tuple(self.x.shape[1:])] + [layer.out_shape for layer in self.layers]

    @property
    def sizes(self) -> list[int]:
        return [math.prod(s) for s in self.shapes]

    @property
    def n_steps(self) -> int:
        return len(self.steps) if self.total_steps is None else self.total_steps

    @property
    def losses(self) -> Array:
        if self.step_losses is not None:
            return self.step_losses
        return np.array([st.loss for st in self.steps])

    def to_dict(self) -> dict[str, Any]:
        """The `--format json` document, as Python data."""
        import json

        from gradcalc.layers.views import JsonWriter

        chunks: list[bytes] = []
        writer = JsonWriter(chunks.append, lines=False, show="all", shown=lambda s: True)
        writer.start(self)
        for st in self.steps:
            writer.step(st)
        writer.finish(self)
        return json.loads(b"".join(chunks))

    def explain(self, *, digits: int = 3, width: int = 100) -> str:
        """The worked solution `gradcalc step --explain` prints (the first three steps and the
        last), as plain text `width` columns wide."""
        return self._solution("explain", digits, width)

    def to_markdown(self, *, digits: int = 3) -> str:
        """The worked solution as the Markdown document `--format markdown` writes."""
        return self._solution("markdown", digits)

    def to_latex(self, *, digits: int = 3) -> str:
        """The worked solution as the LaTeX document `--format latex` writes."""
        return self._solution("latex", digits)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        """`--format html`'s page as a notebook shows it (gradcalc/step/pictures.py)."""
        from gradcalc.step.pictures import notebook

        return notebook(self)

    def _solution(self, fmt: str, digits: int, width: int = 100) -> str:
        from gradcalc.doc.display import capture
        from gradcalc.layers.solution import SolutionWriter
        from gradcalc.step.select import Selection

        shown = Selection().mask(self.n_steps, 3)
        writer = SolutionWriter(fmt, lambda step: bool(shown[step]), 6, 40, digits)
        for st in self.steps:
            writer.step(st)
        view = writer.finish(self)
        return view if isinstance(view, str) else capture(view, width)


@dataclass(frozen=True)
class LayeredSummary:
    """A step in a line: its cost and, per layer, ‖∂C/∂θ‖ and ‖Δθ‖ over all its parameters."""

    step: int
    loss: float
    norms: Array  # (layers, 2)
    data_loss: float | None = None
    penalty: float = 0.0


def summarize(st: LayeredStepTrace) -> LayeredSummary:
    rows = []
    for ls in st.layers:
        grad = math.sqrt(sum(norm(g) ** 2 for g in ls.grads.values()))
        moved = math.sqrt(
            sum(update_norm(ls.params[k], ls.params_before[k]) ** 2 for k in ls.params)
        )
        rows.append((grad, moved))
    return LayeredSummary(
        st.step, st.loss, np.array(rows).reshape(len(rows), 2), st.data_loss, st.penalty
    )


class Network(Trainer):
    def __init__(
        self, spec: LayeredSpec, learning_rate: float | None = None, round_to: int | None = None
    ) -> None:
        super().__init__(spec, learning_rate, round_to)
        self.spec = spec
        self.theta: list[Theta] = [
            {k: v.copy() for k, v in layer.params.items()} for layer in spec.layers
        ]
        self.act: list[dict[str, float]] = [dict(layer.activation_params) for layer in spec.layers]
        self.kept: list[dict[str, dict[str, Array]]] = [{} for _ in spec.layers]
        self.state: list[Theta] = [
            {k: np.asarray(v, dtype=float) for k, v in layer.state.items()} for layer in spec.layers
        ]
        last = spec.layers[-1]
        self.fused = None
        if len(last.out_shape) == 1 and not last.residual:
            self.fused = spec.loss.fused.get(last.activation.name)
        self.fused_name = last.activation.name if self.fused else None
        self.output = (last.number, last.activation.name)
        if any(layer.kind.name != "dense" for layer in spec.layers):
            self.given = "the inputs and parameters"
        self.checks: Checks = []

    # -- passes ----------------------------------------------------------------------------
    def forward(
        self, theta: list[Theta], act: list[dict[str, float]]
    ) -> tuple[list[Array], list[Array], list[Array], list[Cache]]:
        r = self.r
        x = self.spec.x
        xs, zs, activations, caches = [], [], [], []
        for i, layer in enumerate(self.spec.layers):
            z, cache = layer.kind.forward(layer, theta[i], x)
            z = r(z)
            a = r(layer.activation.forward(z, act[i]))
            if layer.residual:
                a = r(x + a)
            at = ("layers", i)
            self.checks += ((z, f"z^{layer.number}", at), (a, f"a^{layer.number}", at))
            xs.append(x)
            zs.append(z)
            activations.append(a)
            caches.append(cache)
            x = a
        return xs, zs, activations, caches

    def priced_pass(self, zs: list[Array], activations: list[Array], step: int | None) -> Array:
        """C_x for each example from a forward pass's output."""
        n = self.spec.x.shape[0]
        y = self.spec.y.reshape(n, -1)
        out = self.scored(activations[-1]).reshape(n, -1)
        return self.cost(zs[-1], out, y, step, self.checks)

    def scored(self, out: Array) -> Array:
        """The output the loss reads: with loss_at: last, a sequence's last step."""
        return out[:, -1] if self.spec.sliced else out

    def decaying(self, theta: list[Theta]) -> Iterator[Array]:
        """The parameters the L2 penalty takes: each layer type's `decays`."""
        for layer, t in zip(self.spec.layers, theta, strict=True):
            for name in layer.kind.decays:
                if name in t:  # an optional weight (attention's wo) may be absent
                    yield t[name]

    def forward_trace(self) -> ForwardTrace:
        self.checks = []
        _, zs, activations, _ = self.forward(self.theta, self.act)
        losses = self.priced_pass(zs, activations, None)
        self.scan(self.checks, None)
        loss, data, penalty = self.priced(losses, self.decaying(self.theta))
        return ForwardTrace(loss, losses, tuple(zs), tuple(activations), data, penalty)

    # -- one step --------------------------------------------------------------------------
    def step(self, s: int) -> LayeredStepTrace:
        spec, r = self.spec, self.r
        self.checks = []
        xs, zs, activations, caches = self.forward(self.theta, self.act)
        losses = self.priced_pass(zs, activations, s)
        loss, data, penalty = self.priced(losses, self.decaying(self.theta))
        ahead = self.ahead(
            self.theta, self.act, [layer.activation for layer in spec.layers], self.kept
        )
        ahead_trace = None
        theta_pass, act_pass = ahead or (self.theta, self.act)
        if ahead is not None:
            xs, zs, activations, caches = self.forward(theta_pass, act_pass)
            ahead_losses = self.priced_pass(zs, activations, s)
            ahead_loss, ahead_data, ahead_penalty = self.priced(
                ahead_losses, self.decaying(theta_pass)
            )
            ahead_trace = ForwardTrace(
                ahead_loss, ahead_losses, tuple(zs), tuple(activations), ahead_data, ahead_penalty
            )
        n = spec.x.shape[0]
        out = activations[-1]
        grad_a, delta = self.output_error(
            zs[-1], self.scored(out).reshape(n, -1), spec.y.reshape(n, -1), self.checks
        )
        if spec.sliced:  # the steps before the last send no gradient from the loss
            last, grad_a = grad_a, np.zeros_like(out)
            grad_a[:, -1] = last
        grad_a = grad_a.reshape(out.shape)
        lam = spec.weight_decay
        L = len(spec.layers)
        records: list[LayerStep | None] = [None] * L
        for i in range(L - 1, -1, -1):
            layer, z, a, p = spec.layers[i], zs[i], activations[i], act_pass[i]
            if layer.residual:  # f′ from f(z) itself, not from x + f(z)
                a = r(layer.activation.forward(z, p))
            f = layer.activation
            if i < L - 1 or delta is None:
                delta = self.through(f, z, a, grad_a, p, self.prime(f, z, a, p))
            self.checks.append((delta, f"δ^{layer.number}", ("layers", i)))
            grad_x, grads = layer.kind.backward(
                layer, theta_pass[i], caches[i], delta, self.scale, xs[i]
            )
            grad_x = r(grad_x)
            if layer.residual:  # the residual path: ∂(x + f(z))/∂x adds ∂C/∂a itself
                grad_x = r(grad_x + grad_a)
            grads = {k: r(g) for k, g in grads.items()}
            if lam:
                for name in layer.kind.decays:
                    if name not in grads:
                        continue
                    grads[name] = r(grads[name] + lam * theta_pass[i][name])
            grad_p = self.param_grads(self.partials(f, z, a, p), grad_a)
            kept = self.kept[i]
            new, act_new, before, derived = self.rule.layer(
                self.theta[i], grads, layer.kind.decays, self.act[i], grad_p, kept, s
            )
            for name, value in new.items():
                self.checks.append((value, f"the updated {name} of layer {layer.number}", None))
            state = self.state[i]
            if layer.kind.update_state is not None:
                # From the pass the gradients came from (a look-ahead rule's θ̃ where it ran).
                state = {
                    k: r(v) for k, v in layer.kind.update_state(layer, state, caches[i]).items()
                }
            records[i] = LayerStep(
                layer=layer,
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
            )
            grad_a = grad_x
        self.scan(self.checks, s)
        self.checks = []
        self.updated = True
        for i, record in enumerate(records):
            assert record is not None
            self.theta[i] = record.params
            self.act[i] = record.activation_params
            self.state[i] = record.state
        return LayeredStepTrace(
            s,
            loss,
            losses,
            tuple(r for r in records if r is not None),
            data_loss=data,
            penalty=penalty,
            ahead=ahead_trace,
        )


class Stream:
    """A layered run one step at a time, as gradcalc.step.engine.Stream."""

    def __init__(
        self,
        spec: LayeredSpec,
        *,
        steps: int | None = None,
        learning_rate: float | None = None,
        round_to: int | None = None,
        full: Any = None,
        norms: bool = True,
    ) -> None:
        from gradcalc.layers.config import check_work

        self.spec = spec
        self.n = spec.steps if steps is None else steps
        check_work(spec, self.n)
        self.net = Network(spec, learning_rate, round_to)
        self.full = full
        self.round_to = round_to
        self.step_losses = np.empty(self.n)
        self.initial_parameters = tuple(dict(t) for t in self.net.theta)
        self.initial: ForwardTrace | None = None

    def __iter__(self) -> Iterator[LayeredStepTrace | LayeredSummary]:
        net, full = self.net, self.full
        for s in range(1, self.n + 1):
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                st = net.step(s)
            self.step_losses[s - 1] = st.loss
            if s == 1:
                self.initial = ForwardTrace.of_step(st)
            yield st if full is None or full(s) else summarize(st)

    def head(self) -> LayeredRun:
        nothing = ForwardTrace(math.nan, np.empty(0), (), ())
        return self._trace((), nothing, nothing)

    def finish(self, kept: tuple[LayeredStepTrace, ...] = ()) -> LayeredRun:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            final = self.net.forward_trace()
        return self._trace(tuple(kept), self.initial or final, final)

    def _trace(
        self, steps: tuple[LayeredStepTrace, ...], initial: ForwardTrace, final: ForwardTrace
    ) -> LayeredRun:
        spec, net = self.spec, self.net
        return LayeredRun(
            **net.run_fields(spec),
            layers=spec.layers,
            initial=initial,
            steps=steps,
            final=final,
            initial_parameters=self.initial_parameters,
            parameters=tuple(dict(t) for t in net.theta),
            activation_params=tuple(dict(p) for p in net.act),
            total_steps=self.n,
            step_losses=self.step_losses,
            states=tuple(dict(t) for t in net.state),
            loss_at=spec.loss_at,
        )


def run(
    spec: LayeredSpec,
    *,
    steps: int | None = None,
    learning_rate: float | None = None,
    round_to: int | None = None,
) -> LayeredRun:
    stream = Stream(spec, steps=steps, learning_rate=learning_rate, round_to=round_to)
    kept = tuple(st for st in stream if isinstance(st, LayeredStepTrace))
    return stream.finish(kept)
