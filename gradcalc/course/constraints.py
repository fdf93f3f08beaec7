"""What keeps a drawn problem a good one: each constraint is one record (its key under
`constraints:`, what it means, how its value is read and whether a variant meets it).

A variant that breaks one is drawn again (attempt 1, 2, … of the same seed: deterministic); the
template is refused when no attempt in `--max-tries` meets them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcalc.errors import KeyPath, did_you_mean
from gradcalc.yamldoc import Doc, number, type_name

if TYPE_CHECKING:
    from gradcalc.layers.config import LayeredSpec
    from gradcalc.layers.engine import LayeredRun
    from gradcalc.step.config import NetworkSpec
    from gradcalc.step.trace import RunTrace


@dataclass(frozen=True)
class Variant:
    """What a constraint looks at: the drawn network (dense, or of layer records), its run and
    the sheet's places."""

    spec: NetworkSpec | LayeredSpec
    trace: RunTrace | LayeredRun
    decimals: int

    @property
    def layered(self) -> bool:
        from gradcalc.step.config import NetworkSpec

        return not isinstance(self.spec, NetworkSpec)


@dataclass(frozen=True)
class Constraint:
    name: str
    meaning: str  # one line, for the docs and `gradcalc generate --help`
    kind: str  # "number" (a bound > 0) or "flag" (true/false)
    holds: Callable[[Variant, Any], bool]


def _unsaturated(v: Variant, bound: float) -> bool:
    return all(float(np.max(np.abs(lt.z))) <= bound for st in v.trace.steps for lt in st.layers)


def _nonzero_gradients(v: Variant, on: bool) -> bool:
    if not on:
        return True
    smallest = 0.5 * 10.0 ** (-v.decimals)  # what rounds to 0 at the sheet's places
    trace: Any = v.trace
    for st in trace.steps:
        for lt in st.layers:
            if v.layered:  # every parameter's gradient (a pooling layer has none)
                grads = (lt.delta, *_by_design_nonzero(lt))
            else:
                grads = (lt.delta, lt.grad_weights, lt.grad_biases)
            for g in grads:
                if g.size and float(np.min(np.abs(g))) < smallest:
                    return False
    return True


def _by_design_nonzero(ls: Any) -> list[np.ndarray]:
    """A layer's parameter gradients less the cells that are 0 whatever is drawn: an
    embedding's rows of tokens not in the input, and attention's ∂C/∂bk (the softmax cancels
    a constant added to a row of scores)."""
    kind = ls.layer.kind.name
    out = []
    for name, g in ls.grads.items():
        if kind == "embedding" and name == "table":
            g = g[np.unique(ls.x.astype(int))]
        elif kind == "attention" and name == "bk":
            continue
        out.append(g)
    return out


def _distinct(v: Variant, on: bool) -> bool:
    if not on:
        return True
    spec: Any = v.spec
    groups = [spec.x.ravel()]
    for layer in spec.layers:
        if v.layered:
            groups += [p.ravel() for p in layer.params.values()]
        else:
            groups += [layer.weights.ravel(), layer.biases.ravel()]
    return all(len(np.unique(g)) == g.size for g in groups)


def pool_margins(v: Variant) -> list[np.ndarray]:
    """Per max-pool layer and step: each window's largest value less its second largest."""
    from gradcalc.layers.windows import windows

    out = []
    trace: Any = v.trace
    for st in trace.steps if v.layered else ():
        for ls in st.layers:
            layer = ls.layer
            if not layer.kind.name.startswith("maxpool"):
                continue
            x = ls.x[:, :, None, :] if len(layer.in_shape) == 2 else ls.x
            win = windows(x, layer.options["size"], layer.options["stride"])
            cells = win.reshape(*win.shape[:4], -1)
            if cells.shape[-1] < 2:
                continue
            top = np.sort(cells, axis=-1)[..., -2:]
            out.append(top[..., 1] - top[..., 0])
    return out


def _no_pool_ties(v: Variant, on: bool) -> bool:
    # More than one unit of the last place apart, the two stay apart when rounded to it: a
    # hand working to the sheet's decimals picks the same maximum, and no tie rule is needed.
    if not on:
        return True
    return all(float(m.min()) > 10.0 ** (-v.decimals) for m in pool_margins(v))


def norm_variances(v: Variant) -> list[np.ndarray]:
    """Per normalisation layer and step, the variances it divides by: a batch norm's (in
    training) per feature over the batch, a layer norm's per example over its features."""
    out = []
    trace: Any = v.trace
    for st in trace.steps if v.layered else ():
        for ls in st.layers:
            layer, x = ls.layer, ls.x
            if layer.kind.name == "batchnorm" and layer.options.get("mode", "train") == "train":
                out.append(x.var(axis=(0, *range(2, x.ndim))))
            elif layer.kind.name == "layernorm":
                out.append(x.reshape(x.shape[0], -1).var(axis=1))
    return out


def _min_variance(v: Variant, bound: float) -> bool:
    # x̂ = (x − μ)/√(σ² + ε): with σ² near 0 the x̂ are huge and hang on ε, and a hand's
    # rounded σ² moves every one of them; a spread batch keeps the sheet workable.
    return all(float(var.min()) >= bound for var in norm_variances(v))


def attention_rows(v: Variant) -> list[np.ndarray]:
    """Per attention layer and step, its softmax rows that attend to two or more positions
    (a causal mask's first row has one, weight 1 by force), as (rows, T)."""
    from gradcalc.layers.check import expected

    out = []
    trace: Any = v.trace
    for st in trace.steps if v.layered else ():
        for l, ls in enumerate(st.layers, start=2):
            if ls.layer.kind.name != "attention":
                continue
            p = np.asarray(expected(st, ("attention_weights", l)))
            rows = p.reshape(-1, p.shape[-1])
            T = p.shape[-1]
            open_ = np.tril(np.ones((T, T))) if ls.layer.options.get("causal") else np.ones((T, T))
            wide = np.broadcast_to(open_.sum(axis=1) >= 2, p.shape[:-1]).reshape(-1)
            out.append(rows[wide])
    return out


def _max_attention_weight(v: Variant, bound: float) -> bool:
    # A nearly one-hot softmax row passes almost nothing back to its scores: ∂C/∂S, ∂C/∂Q and
    # ∂C/∂K round to 0 at the sheet's places, and a mistake in them would not show.
    return all(rows.size == 0 or float(rows.max()) <= bound for rows in attention_rows(v))


def _loss_decreases(v: Variant, on: bool) -> bool:
    return not on or v.trace.final.loss < v.trace.steps[0].loss


CONSTRAINTS: dict[str, Constraint] = {
    c.name: c
    for c in (
        Constraint(
            "max_abs_z",
            "no saturated unit: every z^l_j of every step has |z| ≤ the bound (e.g. 4)",
            "number",
            _unsaturated,
        ),
        Constraint(
            "nonzero_gradients",
            "no δ, ∂C/∂w or ∂C/∂b rounds to 0 at the sheet's decimals",
            "flag",
            _nonzero_gradients,
        ),
        Constraint(
            "distinct",
            "the numbers a student could confuse differ: the inputs, and within each layer "
            "its weights and its biases, are pairwise distinct (a swapped index shows)",
            "flag",
            _distinct,
        ),
        Constraint(
            "no_pool_ties",
            "no max-pool window has a tie: its largest input exceeds the next by more than "
            "one unit of the sheet's last decimal, at every step (a hand picks the same cell)",
            "flag",
            _no_pool_ties,
        ),
        Constraint(
            "min_variance",
            "no normalisation divides by a variance near 0: every batch norm's batch variance "
            "(per feature) and every layer norm's (per example) is at least the bound (e.g. "
            "0.1), at every step",
            "number",
            _min_variance,
        ),
        Constraint(
            "max_attention_weight",
            "no attention softmax row is nearly one-hot: every weight of a row that attends "
            "to two or more positions is at most the bound (e.g. 0.9), at every step",
            "number",
            _max_attention_weight,
        ),
        Constraint(
            "loss_decreases",
            "the cost after the step is lower than before it",
            "flag",
            _loss_decreases,
        ),
    )
}


def read_constraints(doc: Doc, value: Any) -> dict[str, Any]:
    path: KeyPath = ("constraints",)
    if not isinstance(value, dict):
        raise doc.error(path, f"expected a mapping of constraints, got {type_name(value)}")
    out: dict[str, Any] = {}
    for name, setting in value.items():
        here = (*path, name)
        if name not in CONSTRAINTS:
            raise doc.error(here, "unknown constraint", did_you_mean(name, CONSTRAINTS))
        if CONSTRAINTS[name].kind == "flag":
            if not isinstance(setting, bool):
                raise doc.error(here, f"expected true or false, got {type_name(setting)}")
            out[name] = setting
        else:
            bound = number(doc, setting, here)
            if bound <= 0:
                raise doc.error(here, f"expected a number > 0, got {bound:g}")
            out[name] = bound
    return out


def broken(variant: Variant, constraints: dict[str, Any]) -> str | None:
    """The first constraint the variant breaks, or None."""
    for name, setting in constraints.items():
        if not CONSTRAINTS[name].holds(variant, setting):
            return name
    return None
