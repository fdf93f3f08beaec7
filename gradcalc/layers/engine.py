"""A network of layer records: its step (gradcalc/step/chain.py, which dense-only networks
step through too), its run, and the records its writers read.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcalc.functions.training import norm, update_norm
from gradcalc.layers.config import LayeredSpec
from gradcalc.layers.record import Array, Layer, Shape
from gradcalc.step.chain import Chain
from gradcalc.step.chain import LayerStep as LayerStep  # re-exported: the writers' record
from gradcalc.step.chain import Theta as Theta
from gradcalc.step.trace import ForwardTrace


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
        from gradcalc.step.json import render

        return json.loads(render(self, writer_class=JsonWriter))

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


class Network(Chain):
    def __init__(
        self, spec: LayeredSpec, learning_rate: float | None = None, round_to: int | None = None
    ) -> None:
        super().__init__(
            spec,
            spec.layers,
            [{k: v.copy() for k, v in layer.params.items()} for layer in spec.layers],
            [dict(layer.activation_params) for layer in spec.layers],
            [
                {k: np.asarray(v, dtype=float) for k, v in layer.state.items()}
                for layer in spec.layers
            ],
            learning_rate,
            round_to,
        )
        self.spec = spec
        self.sliced = spec.sliced
        last = spec.layers[-1]
        if len(last.out_shape) == 1 and not last.residual:
            self.fused = spec.loss.fused.get(last.activation.name)
        self.fused_name = last.activation.name if self.fused else None
        if any(layer.kind.name != "dense" for layer in spec.layers):
            self.given = "the inputs and parameters"

    def step(self, s: int) -> LayeredStepTrace:
        loss, losses, records, data, penalty, ahead = self.passes(s)
        return LayeredStepTrace(
            s, loss, losses, tuple(records), data_loss=data, penalty=penalty, ahead=ahead
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
                self.initial = ForwardTrace.of_step(st) if net.at_theta is None else net.at_theta
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
