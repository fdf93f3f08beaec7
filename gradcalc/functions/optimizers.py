"""The update-rule registry: how θ moves once backpropagation has given g = ∂C/∂θ.

Each rule follows PyTorch's conventions (`torch.optim`), so a trajectory can be checked against
it: ε is added outside the square root, state starts at zero, and t counts steps from 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradcalc.functions.registry import (
    Array,
    OptimizerState,
    Param,
    Params,
    Rounder,
    UpdateRule,
    Written,
    index,
)

if TYPE_CHECKING:
    from gradcalc.doc.blocks import Eq
    from gradcalc.step.solution import Theta, UpdateWriter

Result = tuple[Array, dict[str, Array]]


def _sgd(
    theta: Array, g: Array, state: OptimizerState, p: Params, eta: float, t: int, r: Rounder
) -> Result:
    # θ − η g with one network-sized array instead of two: θ + g·(−η) rounds exactly alike.
    new = np.multiply(g, -eta)
    new += theta
    return r(new), {}


def _sgd_into(theta: Array, g: Array, p: Params, eta: float) -> Array:
    # _sgd's operations, in g's memory.
    new = np.multiply(g, -eta, out=g)
    new += theta
    return new


def _momentum(
    theta: Array, g: Array, state: OptimizerState, p: Params, eta: float, t: int, r: Rounder
) -> Result:
    v = r(p["momentum"] * state["velocity"] + g)
    return r(theta - eta * v), {"velocity": v}


def _nesterov_ahead(
    theta: Array, state: OptimizerState, p: Params, eta: float, r: Rounder
) -> Array:
    return r(theta - eta * p["momentum"] * state["velocity"])


def _adagrad(
    theta: Array, g: Array, state: OptimizerState, p: Params, eta: float, t: int, r: Rounder
) -> Result:
    s = r(state["sum_sq"] + g * g)
    return r(theta - eta * g / (np.sqrt(s) + p["eps"])), {"sum_sq": s}


def _rmsprop(
    theta: Array, g: Array, state: OptimizerState, p: Params, eta: float, t: int, r: Rounder
) -> Result:
    beta = p["beta"]
    s = r(beta * state["square_avg"] + (1 - beta) * g * g)
    return r(theta - eta * g / (np.sqrt(s) + p["eps"])), {"square_avg": s}


def _adam(
    theta: Array, g: Array, state: OptimizerState, p: Params, eta: float, t: int, r: Rounder
) -> Result:
    b1, b2 = p["beta1"], p["beta2"]
    m = r(b1 * state["m"] + (1 - b1) * g)
    v = r(b2 * state["v"] + (1 - b2) * g * g)
    m_hat = r(m / (1 - b1**t))
    v_hat = r(v / (1 - b2**t))
    theta_new = r(theta - eta * m_hat / (np.sqrt(v_hat) + p["eps"]))
    return theta_new, {"m": m, "v": v, "m_hat": m_hat, "v_hat": v_hat}


# How each rule writes one parameter's update with its numbers, for the worked solutions: the
# writer (gradcalc/step/solution.py) supplies the notation, the hyperparameters' symbols and
# values, and the shapes every rule shares (a state's new value, the move of θ).


def _eq(lhs: str, *rhs: str) -> Eq:
    # Imported here: only a worked solution writes equations, and the blocks' records cost a
    # few milliseconds to build at import, which the tables and JSON would pay for nothing.
    from gradcalc.doc.blocks import Eq

    return Eq(lhs, tuple(("=", r) for r in rhs))


def _velocity_written(w: UpdateWriter, th: Theta, t: int) -> list[Eq]:
    nt = w.nt
    mu_sym, mu = w.hyper("momentum")
    v, v_new = th.state("velocity"), th.state_after["velocity"]
    return [
        w.state_eq(
            th,
            "velocity",
            f"{mu_sym} {v} + {w.grad_sym(th)}",
            nt.prod((mu, True), (th.state_before["velocity"], False), lead=True)
            + f" + {nt.par(th.grad)}",
        ),
        w.move(
            th,
            f"{nt.eta} {v}",
            nt.prod((w.t.learning_rate, True), (v_new, False), lead=True, tight=False),
        ),
    ]


def _root_step(w: UpdateWriter, th: Theta, s_name: str) -> Eq:
    """θ → θ − η g/(√s + ε), AdaGrad's and RMSProp's step."""
    nt = w.nt
    eps_sym, eps = w.hyper("eps")
    s = th.state(s_name)
    return w.move(
        th,
        f"{nt.eta} {w.grad_sym(th)}/({w.sqrt(s)} + {eps_sym})",
        nt.prod((w.t.learning_rate, True), (th.grad, False), lead=True, tight=False)
        + f"/({w.sqrt(nt.num(th.state_after[s_name]))} + {nt.num(eps, True)})",
    )


def _adagrad_written(w: UpdateWriter, th: Theta, t: int) -> list[Eq]:
    nt = w.nt
    s = th.state("sum_sq")
    return [
        w.state_eq(
            th,
            "sum_sq",
            f"{s} + " + nt.squared(f"({w.grad_sym(th)})"),
            f"{nt.num(th.state_before['sum_sq'])} + " + nt.squared(f"({nt.num(th.grad)})"),
        ),
        _root_step(w, th, "sum_sq"),
    ]


def _rmsprop_written(w: UpdateWriter, th: Theta, t: int) -> list[Eq]:
    nt = w.nt
    beta_sym, beta = w.hyper("beta")
    s = th.state("square_avg")
    return [
        w.state_eq(
            th,
            "square_avg",
            f"{beta_sym} {s} + (1 {nt.minus} {beta_sym})" + nt.squared(f"({w.grad_sym(th)})"),
            nt.prod((beta, True), (th.state_before["square_avg"], False), lead=True)
            + f" + {nt.num(1 - beta, True)}{nt.times}"
            + nt.squared(f"({nt.num(th.grad)})"),
        ),
        _root_step(w, th, "square_avg"),
    ]


def _adam_written(w: UpdateWriter, th: Theta, t: int) -> list[Eq]:
    nt = w.nt
    (b1_sym, b1), (b2_sym, b2) = w.hyper("beta1"), w.hyper("beta2")
    eps_sym, eps = w.hyper("eps")
    m, v = th.state("m"), th.state("v")
    m_hat, v_hat = th.state("m_hat"), th.state("v_hat")
    g = w.grad_sym(th)
    after, derived = th.state_after, th.derived

    def corrected(sym: str, of: str, beta_sym: str, beta: float, name: str) -> Eq:
        return _eq(
            sym,
            f"{of}/(1 {nt.minus} {w.power(beta_sym, 't')})",
            f"{nt.par(after[of_name[name]])}/(1 {nt.minus} {w.power(nt.num(beta, True), t)})",
            nt.num(derived[name]),
        )

    of_name = {"m_hat": "m", "v_hat": "v"}
    return [
        w.state_eq(
            th,
            "m",
            f"{b1_sym} {m} + (1 {nt.minus} {b1_sym}) {g}",
            nt.prod((b1, True), (th.state_before["m"], False), lead=True)
            + f" + {nt.prod((1 - b1, True), (th.grad, False))}",
        ),
        w.state_eq(
            th,
            "v",
            f"{b2_sym} {v} + (1 {nt.minus} {b2_sym})" + nt.squared(f"({g})"),
            nt.prod((b2, True), (th.state_before["v"], False), lead=True)
            + f" + {nt.num(1 - b2, True)}{nt.times}"
            + nt.squared(f"({nt.num(th.grad)})"),
        ),
        corrected(m_hat, m, b1_sym, b1, "m_hat"),
        corrected(v_hat, v, b2_sym, b2, "v_hat"),
        w.move(
            th,
            f"{nt.eta} {m_hat}/({w.sqrt(v_hat)} + {eps_sym})",
            nt.prod((w.t.learning_rate, True), (derived["m_hat"], False), lead=True, tight=False)
            + f"/({w.sqrt(nt.num(derived['v_hat']))} + {nt.num(eps, True)})",
        ),
    ]


def _sgd_written(w: UpdateWriter, th: Theta, t: int) -> list[Eq]:
    nt = w.nt
    return [
        w.move(
            th,
            f"{nt.eta} {w.grad_sym(th)}",
            nt.prod((w.t.learning_rate, True), (th.grad, False), lead=True, tight=False),
        )
    ]


def _unit_interval(name: str, default: float, description: str, symbol: Written) -> Param:
    return Param(
        name,
        default,
        description,
        low=0.0,
        high=1.0,
        high_open=True,
        symbol=symbol.text,
        written=symbol,
    )


_ROOT_STEP_TEX = r"\theta \leftarrow \theta - \eta\, g/(\sqrt{s} + \epsilon)"
_EPS = Param(
    "eps",
    1e-8,
    "added to the root, outside it (PyTorch)",
    low=0.0,
    low_open=True,
    symbol="ε",
    written=Written("ε", r"\epsilon"),
)
_MOMENTUM = _unit_interval("momentum", 0.9, "the velocity's decay μ", Written("μ", r"\mu"))
_ADAM_PARAMS = (
    _unit_interval("beta1", 0.9, "decay of the first moment m", Written("β₁", r"\beta_{1}")),
    _unit_interval("beta2", 0.999, "decay of the second moment v", Written("β₂", r"\beta_{2}")),
    _EPS,
)
_ADAM_EQUATIONS = (
    Written("m ← β₁ m + (1 − β₁) g", r"m \leftarrow \beta_1 m + (1 - \beta_1)\, g"),
    Written("v ← β₂ v + (1 − β₂) g²", r"v \leftarrow \beta_2 v + (1 - \beta_2)\, g^{2}"),
    Written("m̂ = m/(1 − β₁ᵗ)", r"\hat m = m/(1 - \beta_1^{t})"),
    Written("v̂ = v/(1 − β₂ᵗ)", r"\hat v = v/(1 - \beta_2^{t})"),
    Written(
        "θ ← θ − η m̂/(√v̂ + ε)",
        (r"\theta \leftarrow \theta - \eta\, \hat m/(\sqrt{\hat v} + \epsilon)"),
    ),
)
_ADAM_SYMBOLS = {
    "m": Written("m", "m"),
    "v": Written("v", "v"),
    "m_hat": Written("m̂", r"\hat{m}"),
    "v_hat": Written("v̂", r"\hat{v}"),
}
_VELOCITY = {"velocity": Written("v", "v")}

OPTIMIZERS: list[UpdateRule] = [
    UpdateRule(
        name="sgd",
        title="stochastic gradient descent",
        equations=(Written("θ ← θ − η g", r"\theta \leftarrow \theta - \eta\, g"),),
        update=_sgd,
        update_into=_sgd_into,
        written=_sgd_written,
        plain=True,
        short="SGD",
    ),
    UpdateRule(
        name="momentum",
        title="SGD with momentum (heavy ball), as PyTorch's SGD with momentum μ",
        equations=(
            Written("v ← μ v + g", r"v \leftarrow \mu v + g"),
            Written("θ ← θ − η v", r"\theta \leftarrow \theta - \eta\, v"),
        ),
        update=_momentum,
        written=_velocity_written,
        state=("velocity",),
        params=(_MOMENTUM,),
        symbols=_VELOCITY,
    ),
    UpdateRule(
        name="nesterov",
        title="Nesterov accelerated gradient, gradient at the look-ahead point θ̃",
        equations=(
            Written("θ̃ = θ − η μ v", r"\tilde\theta = \theta - \eta \mu v"),
            Written("v ← μ v + g(θ̃)", r"v \leftarrow \mu v + g(\tilde\theta)"),
            Written("θ ← θ − η v", r"\theta \leftarrow \theta - \eta\, v"),
        ),
        update=_momentum,
        written=_velocity_written,
        state=("velocity",),
        params=(_MOMENTUM,),
        aliases=("nag",),
        symbols=_VELOCITY,
        lookahead=_nesterov_ahead,
    ),
    UpdateRule(
        name="adagrad",
        title="AdaGrad, as PyTorch's Adagrad (no learning-rate decay)",
        equations=(
            Written("s ← s + g²", r"s \leftarrow s + g^{2}"),
            Written("θ ← θ − η g/(√s + ε)", _ROOT_STEP_TEX),
        ),
        update=_adagrad,
        written=_adagrad_written,
        state=("sum_sq",),
        params=(_EPS,),
        symbols={"sum_sq": Written("s", "s")},
    ),
    UpdateRule(
        name="rmsprop",
        title="RMSProp, as PyTorch's RMSprop (no momentum, not centred)",
        equations=(
            Written("s ← β s + (1 − β) g²", r"s \leftarrow \beta s + (1 - \beta)\, g^{2}"),
            Written("θ ← θ − η g/(√s + ε)", _ROOT_STEP_TEX),
        ),
        update=_rmsprop,
        written=_rmsprop_written,
        state=("square_avg",),
        params=(
            _unit_interval(
                "beta", 0.99, "decay of the mean square s (torch's alpha)", Written("β", r"\beta")
            ),
            _EPS,
        ),
        symbols={"square_avg": Written("s", "s")},
    ),
    UpdateRule(
        name="adam",
        title="Adam (Kingma & Ba) with bias correction, as PyTorch's Adam",
        equations=_ADAM_EQUATIONS,
        update=_adam,
        written=_adam_written,
        state=("m", "v"),
        derived=("m_hat", "v_hat"),
        params=_ADAM_PARAMS,
        symbols=_ADAM_SYMBOLS,
    ),
    UpdateRule(
        name="adamw",
        title="AdamW: Adam with decoupled weight decay on the weights, as PyTorch's AdamW",
        equations=(
            Written(
                "w ← w − η λ w  (weights only)",
                (r"w \leftarrow w - \eta \lambda w \quad \text{(weights only)}"),
            ),
            *_ADAM_EQUATIONS,
        ),
        update=_adam,
        written=_adam_written,
        state=("m", "v"),
        derived=("m_hat", "v_hat"),
        params=(
            *_ADAM_PARAMS,
            Param(
                "weight_decay",
                0.01,
                "decoupled decay λ of the weights",
                low=0.0,
                symbol="λ",
                written=Written("λ", r"\lambda"),
            ),
        ),
        symbols=_ADAM_SYMBOLS,
        decay="weight_decay",
        decays=("weights",),
    ),
]

REGISTRY: dict[str, UpdateRule] = index(OPTIMIZERS)
