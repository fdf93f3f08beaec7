"""Plain records of what a run computed: the renderers' only input.

Arrays keep the batch axis first: z, a and δ are (examples, units) even for one example; a
renderer that shows a single example drops that axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field
from typing import Any, Protocol

import numpy as np

from gradcalc.doc.display import RichDisplay
from gradcalc.records import record


@record
class LayerTrace:
    """One layer in one step: the forward values, δ, the gradients and the update."""

    layer: int  # l, counting the input layer as l = 1
    activation: str
    a_prev: np.ndarray  # a^{l−1}, (examples, n_{l−1})
    z: np.ndarray  # (examples, n_l)
    a: np.ndarray
    prime: np.ndarray | None  # f'(z^l) for an elementwise activation
    grad_a: np.ndarray  # ∂C_x/∂a^l per example
    delta: np.ndarray  # δ^l = ∂C_x/∂z^l per example
    grad_weights: np.ndarray  # ∂C/∂w^l of the reduced batch cost, (n_l, n_{l−1})
    grad_biases: np.ndarray
    weights_before: np.ndarray
    biases_before: np.ndarray
    weights: np.ndarray  # after the update
    biases: np.ndarray
    params_before: dict[str, float] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)  # after the update
    grad_params: dict[str, float] = field(default_factory=dict)  # learnable ones only
    # ∂a^l_j/∂p per example and unit, for each learnable parameter p (BP4's analogue for PReLU).
    param_partials: dict[str, np.ndarray] = field(default_factory=dict)
    # What the update rule keeps, after this step: "weights", "biases" or a learnable
    # parameter's name -> the rule's state arrays by name (empty for plain SGD).
    optimizer_state: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    # The same before this step (zeros at step 1), and what the rule worked out on the way
    # (Adam's m_hat, v_hat; "decayed": the weights after AdamW's decoupled decay).
    optimizer_state_before: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    optimizer_derived: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    # A look-ahead rule (Nesterov) ran this step's passes at θ̃: z, a, δ and the gradients above
    # are those of θ̃; *_before are θ, which the update moves.
    weights_ahead: np.ndarray | None = None
    biases_ahead: np.ndarray | None = None
    params_ahead: dict[str, float] | None = None


@record
class LayerState:
    """One layer's activation and parameters at a moment of the run."""

    layer: int
    activation: str
    elementwise: bool
    weights: np.ndarray
    biases: np.ndarray
    params: dict[str, float] = field(default_factory=dict)


@record
class StepTrace:
    """One SGD step: the cost before its update and each layer's record (l = 2, 3, …)."""

    step: int
    loss: float  # the reduced cost before this step's update (at θ, with the penalty)
    losses: np.ndarray  # C_x per example
    layers: tuple[LayerTrace, ...]
    data_loss: float | None = None  # the reduced data cost; None: the same as loss
    penalty: float = 0.0  # (λ/2) Σ_l Σ_jk (w^l_jk)² at θ
    # A look-ahead rule's pass at θ̃, whose z and a the layers hold (None for other rules).
    ahead: ForwardTrace | None = None


@record
class StepSummary:
    """A step run for what a summary shows (--show summary, final, or a step not shown in full):
    its cost and, when asked for, four norms per layer — no arrays of z, a, δ or parameters."""

    step: int
    loss: float
    # (layers, 4): ‖∂C/∂w^l‖, ‖∂C/∂b^l‖, ‖Δw^l‖, ‖Δb^l‖, rows for l = 2, 3, …; None: not asked for.
    norms: np.ndarray | None
    data_loss: float | None = None
    penalty: float = 0.0


@record
class ForwardTrace:
    """A forward pass: z and a of each layer and the cost (a run's initial and final pass)."""

    loss: float  # the reduced cost, with the L2 penalty when there is one
    losses: np.ndarray  # C_x per example (the data cost, no penalty)
    z: tuple[np.ndarray, ...]
    a: tuple[np.ndarray, ...]  # a^2 .. a^L
    data_loss: float | None = None  # the reduced data cost; None: the same as loss
    penalty: float = 0.0  # (λ/2) Σ w²

    @property
    def output(self) -> np.ndarray:
        return self.a[-1]

    @classmethod
    def of_step(cls, st: _Step) -> ForwardTrace:
        """The forward pass a step ran (step 1's is a run's initial pass)."""
        return cls(
            st.loss,
            st.losses,
            tuple(lt.z for lt in st.layers),
            tuple(lt.a for lt in st.layers),
            st.data_loss,
            st.penalty,
        )


class _Layer(Protocol):
    """What a step recorded at a layer: a LayerTrace, or a layered network's LayerStep."""

    @property
    def z(self) -> np.ndarray: ...
    @property
    def a(self) -> np.ndarray: ...


class _Step(Protocol):
    @property
    def loss(self) -> float: ...
    @property
    def losses(self) -> np.ndarray: ...
    @property
    def layers(self) -> Sequence[_Layer]: ...
    @property
    def data_loss(self) -> float | None: ...
    @property
    def penalty(self) -> float: ...


@record
class RunTrace(RichDisplay):
    """A whole run: what `gradcalc step` renders, and what the Python API's run() returns."""

    source: str
    loss: str
    loss_formula: str
    loss_params: dict[str, float]
    learning_rate: float
    reduction: str
    batch: bool
    x: np.ndarray
    y: np.ndarray
    sizes: tuple[int, ...]
    initial: ForwardTrace
    steps: tuple[StepTrace, ...]
    final: ForwardTrace
    initial_parameters: tuple[LayerState, ...]
    # The parameters after the last step (the initial ones when no step ran): the final
    # forward pass used these.
    parameters: tuple[LayerState, ...]
    fused: str | None = None  # the output activation the loss was computed from z with
    round_to: int | None = None
    # With round_to: the same run without rounding, for the drift tables (None when not asked
    # for, or when the exact run diverged where the rounded one did not).
    exact: RunTrace | None = None
    optimizer: str = "sgd"  # the update rule's registry name
    optimizer_params: dict[str, float] = field(default_factory=dict)
    weight_decay: float = 0.0  # λ of the L2 penalty in the cost
    # A streamed run keeps only the steps its writer shows: `steps` holds those, `total_steps`
    # counts every step run and `step_losses` holds C before each of them (None: all kept).
    total_steps: int | None = None
    step_losses: np.ndarray | None = None

    @property
    def n_steps(self) -> int:
        return len(self.steps) if self.total_steps is None else self.total_steps

    @property
    def losses(self) -> np.ndarray:
        """C before each step's update, for every step run."""
        if self.step_losses is not None:
            return self.step_losses
        return np.array([st.loss for st in self.steps])

    def to_dict(self) -> dict[str, Any]:
        """The `--format json` document, as Python data."""
        from gradcalc.step.json import document

        return document(self)

    def renderables(self) -> list[Any]:
        from gradcalc.step.table import renderables

        return renderables(self, exact=self.exact)

    def explain(self, *, digits: int = 3, width: int = 100) -> str:
        """The worked solution `gradcalc step --explain` prints (the first three steps and the
        last), as plain text `width` columns wide, numbers to `digits` significant digits."""
        from gradcalc.step.writers import solution

        return solution(self, "explain", digits=digits, width=width)

    def to_markdown(self, *, digits: int = 3) -> str:
        """The worked solution as the Markdown document `--format markdown` writes."""
        from gradcalc.step.writers import solution

        return solution(self, "markdown", digits=digits)

    def to_latex(self, *, digits: int = 3) -> str:
        """The worked solution as the LaTeX document `--format latex` writes."""
        from gradcalc.step.writers import solution

        return solution(self, "latex", digits=digits)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        """`--format html`'s page as a notebook shows it: the network, the curves, the tables
        and the worked solution (gradcalc/step/pictures.py)."""
        from gradcalc.step.pictures import notebook

        return notebook(self)
