"""The quantities a step has, in the order a hand solution works them, with their shapes, their
names in the `step` JSON contract and their symbols in the step tables' notation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from gradcalc.doc.indices import subscript, superscript
from gradcalc.records import record
from gradcalc.step.config import NetworkSpec
from gradcalc.step.trace import ForwardTrace, StepTrace

if TYPE_CHECKING:
    from gradcalc.layers.config import LayeredSpec

# (quantity, layer): layer is None for the cost.
Key = tuple[str, int | None]

LAYER_QUANTITIES = ("z", "a", "delta", "grad_weights", "grad_biases", "weights", "biases")
PARAM_QUANTITIES = ("activation_params", "grad_activation_params")
COST_QUANTITIES = ("loss", "losses")
FINAL_QUANTITIES = ("output", "loss")

# What each group is called in the score table and in a points file.
GROUPS = {
    "z": "z^l",
    "a": "a^l",
    "mean": "μ",
    "var": "σ²",
    "x_hat": "x̂",
    "loss": "C",
    "losses": "C_x",
    "delta": "δ^l",
    "grad_x_hat": "∂C/∂x̂",
    "grad_var": "∂C/∂σ²",
    "grad_mean": "∂C/∂μ",
    "grad_weights": "∂C/∂w",
    "grad_kernels": "∂C/∂K",
    "grad_biases": "∂C/∂b",
    "grad_gamma": "∂C/∂γ",
    "grad_beta": "∂C/∂β",
    "grad_input_direct": "∂C/∂x direct",
    "grad_input_via_var": "∂C/∂x via σ²",
    "grad_input_via_mean": "∂C/∂x via μ",
    "grad_table": "∂C/∂E",
    **{f"grad_{p}": f"∂C/∂{p}" for p in ("wq", "wk", "wv", "bq", "bk", "bv", "wo", "bo")},
    "grad_input": "∂C/∂x",
    # attention's stages
    "q": "Q",
    "k": "K",
    "v": "V",
    "scores": "S",
    "attention_weights": "P",
    "head_outputs": "H",
    "grad_attention_weights": "∂C/∂P",
    "grad_scores": "∂C/∂S",
    "grad_q": "∂C/∂Q",
    "grad_k": "∂C/∂K",
    "grad_v": "∂C/∂V",
    "weights": "w new",
    "kernels": "K new",
    "biases": "b new",
    "gamma": "γ new",
    "beta": "β new",
    "running_mean": "running_mean new",
    "running_var": "running_var new",
    "grad_weight_ih": "∂C/∂W_ih",
    "grad_weight_hh": "∂C/∂W_hh",
    "grad_bias_ih": "∂C/∂b_ih",
    "grad_bias_hh": "∂C/∂b_hh",
    "weight_ih": "W_ih new",
    "weight_hh": "W_hh new",
    "bias_ih": "b_ih new",
    "bias_hh": "b_hh new",
    "grad_h": "∂C/∂h_t",
    "grad_h_from_next": "∂C/∂h_t from t+1",
    "grad_c": "∂C/∂c_t",
    "table": "E new",
    **{p: f"{p} new" for p in ("wq", "wk", "wv", "bq", "bk", "bv", "wo", "bo")},
    "activation_params": "p new",
    "grad_activation_params": "∂C/∂p",
    "final_output": "final a^L",
    "final_loss": "final C",
}


@record
class Shape:
    """Where the answers of one network go: sizes, examples and the activation parameters."""

    sizes: tuple[int, ...]
    examples: int
    batch: bool
    params: tuple[tuple[str, ...], ...]  # every parameter of each layer l = 2..L
    learnable: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, spec: NetworkSpec | LayeredSpec) -> Shape:
        if not isinstance(spec, NetworkSpec):  # layer records (gradcalc/layers/check.py)
            from gradcalc.layers.check import LayeredShape

            return LayeredShape.of(spec)  # type: ignore[return-value]
        return cls(
            tuple(spec.sizes),
            int(spec.x.shape[0]),
            spec.batch,
            tuple(tuple(layer.params) for layer in spec.layers),
            tuple(
                tuple(p.name for p in layer.activation.params if p.learnable)
                for layer in spec.layers
            ),
        )

    @property
    def L(self) -> int:
        return len(self.sizes)

    def array_shape(self, key: Key) -> tuple[int, ...]:
        q, l = key
        m = self.examples
        if q == "loss":
            return ()
        if q in ("losses",):
            return (m,)
        if q == "output":
            return (m, self.sizes[-1])
        assert l is not None
        n, n_prev = self.sizes[l - 1], self.sizes[l - 2]
        if q in ("z", "a", "delta"):
            return (m, n)
        if q in ("grad_weights", "weights"):
            return (n, n_prev)
        if q in ("grad_biases", "biases"):
            return (n,)
        if q == "activation_params":
            return (len(self.params[l - 2]),)
        if q == "grad_activation_params":
            return (len(self.learnable[l - 2]),)
        raise ValueError(q)

    def param_names(self, key: Key) -> tuple[str, ...]:
        q, l = key
        assert l is not None
        return self.params[l - 2] if q == "activation_params" else self.learnable[l - 2]

    def step_keys(self) -> list[Key]:
        """Every quantity of a step, in the order of a hand solution."""
        L = self.L
        keys: list[Key] = []
        for l in range(2, L + 1):
            keys += [("z", l), ("a", l)]
        if self.batch:
            keys.append(("losses", None))
        keys.append(("loss", None))
        keys += [("delta", l) for l in range(L, 1, -1)]
        for l in range(L, 1, -1):
            keys += [("grad_weights", l), ("grad_biases", l)]
            if self.learnable[l - 2]:
                keys.append(("grad_activation_params", l))
        for l in range(L, 1, -1):
            keys += [("weights", l), ("biases", l)]
            # Only a learned parameter moves: a fixed one (leaky ReLU's α) is the config's.
            if self.learnable[l - 2]:
                keys.append(("activation_params", l))
        return keys

    def final_keys(self) -> list[Key]:
        return [("output", None), ("loss", None)]


def expected(st: StepTrace, key: Key) -> np.ndarray:
    """The value of one quantity in a step trace, shaped as in Shape.array_shape."""
    if not isinstance(st, StepTrace):
        from gradcalc.layers.check import expected as layered

        return layered(st, key)
    q, l = key
    if q == "loss":
        return np.asarray(st.loss, dtype=float)
    if q == "losses":
        return np.asarray(st.losses, dtype=float)
    assert l is not None
    lt = st.layers[l - 2]
    if q == "activation_params":
        return np.array(list(lt.params.values()), dtype=float)
    if q == "grad_activation_params":
        return np.array(list(lt.grad_params.values()), dtype=float)
    return np.asarray(getattr(lt, q), dtype=float)


def expected_final(final: ForwardTrace, key: Key) -> np.ndarray:
    q, _ = key
    if q == "loss":
        return np.asarray(final.loss, dtype=float)
    return np.asarray(final.output, dtype=float)


def symbol(key: Key, index: Sequence[int | str], shape: Shape, final: bool = False) -> str:
    """The cell's name in the step tables' notation: z²₁, δ³₁, ∂C/∂w³₁₂, w³₁₂ (new), C."""
    if getattr(shape, "layered", False):
        return shape.symbol(key, tuple(index), final)  # type: ignore[attr-defined]
    q, l = key
    example = ""
    units = list(index)
    if q in ("z", "a", "delta", "output", "losses") and shape.batch:
        example = f" (x = {units[0]})"
        units = units[1:]
    sub = subscript("".join(str(u) for u in units)) if all(len(str(u)) == 1 for u in units) else ""
    if not sub and units:
        sub = "_" + ",".join(str(u) for u in units)
    if final:
        return ("a" + superscript(str(shape.L)) + sub if q == "output" else "C") + example
    if q == "loss":
        return "C"
    if q == "losses":
        return "C_x" + example
    sup = superscript(str(l))
    if q == "z":
        return f"z{sup}{sub}{example}"
    if q == "a":
        return f"a{sup}{sub}{example}"
    if q == "delta":
        return f"δ{sup}{sub}{example}"
    if q == "grad_weights":
        return f"∂C/∂w{sup}{sub}"
    if q == "grad_biases":
        return f"∂C/∂b{sup}{sub}"
    if q == "weights":
        return f"w{sup}{sub} new"
    if q == "biases":
        return f"b{sup}{sub} new"
    name = str(index[0])
    if q == "activation_params":
        return f"{name}{sup} new"
    return f"∂C/∂{name}{sup}"


def indices(key: Key, shape: Shape) -> Iterator[tuple[tuple[int, ...], tuple[int | str, ...]]]:
    """(array index, the 1-based index a person writes) for every cell of a quantity."""
    if getattr(shape, "layered", False):
        yield from shape.indices(key)  # type: ignore[attr-defined]
        return
    dims = shape.array_shape(key)
    q = key[0]
    names = shape.param_names(key) if q in PARAM_QUANTITIES else ()
    for pos in np.ndindex(*dims):
        if q in PARAM_QUANTITIES:
            yield pos, (names[pos[0]],)
        elif q in ("z", "a", "delta", "output") and not shape.batch:
            yield pos, (pos[1] + 1,)
        else:
            yield pos, tuple(i + 1 for i in pos)
