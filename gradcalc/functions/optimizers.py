"""The update-rule registry: how θ moves once backpropagation has given g = ∂C/∂θ.

Each rule follows PyTorch's conventions (`torch.optim`), so a trajectory can be checked against
it: ε is added outside the square root, state starts at zero, and t counts steps from 1.
"""

from __future__ import annotations

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

Result = tuple[Array, dict[str, Array]]


def _sgd(
    theta: Array, g: Array, state: OptimizerState, p: Params, eta: float, t: int, r: Rounder
) -> Result:
    # θ − η g with one network-sized array instead of two: θ + g·(−η) rounds exactly alike.
    new = np.multiply(g, -eta)
    new += theta
    return r(new), {}


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


def _unit_interval(name: str, default: float, description: str, symbol: str) -> Param:
    return Param(name, default, description, low=0.0, high=1.0, high_open=True, symbol=symbol)


_ROOT_STEP_TEX = r"\theta \leftarrow \theta - \eta\, g/(\sqrt{s} + \epsilon)"
_EPS = Param(
    "eps", 1e-8, "added to the root, outside it (PyTorch)", low=0.0, low_open=True, symbol="ε"
)
_MOMENTUM = _unit_interval("momentum", 0.9, "the velocity's decay μ", "μ")
_ADAM_PARAMS = (
    _unit_interval("beta1", 0.9, "decay of the first moment m", "β₁"),
    _unit_interval("beta2", 0.999, "decay of the second moment v", "β₂"),
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
    ),
    UpdateRule(
        name="momentum",
        title="SGD with momentum (heavy ball), as PyTorch's SGD with momentum μ",
        equations=(
            Written("v ← μ v + g", r"v \leftarrow \mu v + g"),
            Written("θ ← θ − η v", r"\theta \leftarrow \theta - \eta\, v"),
        ),
        update=_momentum,
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
        state=("square_avg",),
        params=(
            _unit_interval("beta", 0.99, "decay of the mean square s (torch's alpha)", "β"),
            _EPS,
        ),
        symbols={"square_avg": Written("s", "s")},
    ),
    UpdateRule(
        name="adam",
        title="Adam (Kingma & Ba) with bias correction, as PyTorch's Adam",
        equations=_ADAM_EQUATIONS,
        update=_adam,
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
        state=("m", "v"),
        derived=("m_hat", "v_hat"),
        params=(
            *_ADAM_PARAMS,
            Param("weight_decay", 0.01, "decoupled decay λ of the weights", low=0.0, symbol="λ"),
        ),
        symbols=_ADAM_SYMBOLS,
        decay="weight_decay",
        decays=("weights",),
    ),
]

REGISTRY: dict[str, UpdateRule] = index(OPTIMIZERS)
