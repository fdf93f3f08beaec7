"""The worked solution of `gradcalc step`, in the order of a hand calculation.

`build` turns a trace into blocks (headings, prose, chains of equations, tables) written in one
Notation: each quantity as its equation in Nielsen's notation, then with the numbers substituted,
then its value. The terminal (`--explain`), Markdown and LaTeX renderers only lay the blocks out.
Every number comes from the trace; nothing here recomputes the network (the cosine cost's dot
product and norms are worked out from the trace's y and a, as a student would).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np

from gradcalc.doc.blocks import Block, Eq, Eqs, Heading, Para, Table
from gradcalc.doc.notation import (
    BREAK,
    Notation,
    plural,
    sparkline,
    superscript,
)
from gradcalc.functions.activations import REGISTRY as ACTIVATIONS
from gradcalc.functions.losses import REGISTRY as LOSSES
from gradcalc.functions.optimizers import REGISTRY as OPTIMIZERS
from gradcalc.functions.registry import UpdateRule, VectorActivation, Written
from gradcalc.step.select import gaps, hidden
from gradcalc.step.trace import ForwardTrace, LayerTrace, RunTrace, StepTrace

# The function of a layer whose activation the trace does not name.
_ANY = Written("f", r"\operatorname{f}")


@dataclass(frozen=True)
class _Theta:
    """One trainable number of a step, as the update writes it: w³₁₁, b³₁ or PReLU's α²."""

    sym: str  # w³₁₁
    state: Callable[[str], str]  # a state or derived name -> its symbol for this θ (m³₁₁)
    ahead_sym: str  # w̃³₁₁, the look-ahead point
    before: float
    grad: float
    after: float
    state_before: dict[str, float]
    state_after: dict[str, float]
    derived: dict[str, float]
    ahead: float | None
    given: bool  # `before` is the config's own number


@dataclass(frozen=True)
class _Forward:
    """One layer of a forward pass, for the example that is written out."""

    layer: int
    activation: str
    elementwise: bool
    a_prev: np.ndarray  # a^{l−1}
    z: np.ndarray
    a: np.ndarray
    weights: np.ndarray | None
    biases: np.ndarray | None
    given: bool  # the parameters are the config's own numbers


def _eq(lhs: str, *rhs: str, tag: str = "") -> Eq:
    return Eq(lhs, tuple(("=", r) for r in rhs), tag)


class _Builder:
    def __init__(
        self,
        trace: RunTrace,
        nt: Notation,
        exact: RunTrace | None,
        max_terms: int,
        max_rows: int,
        document: bool,
    ) -> None:
        self.t = trace
        self.nt = nt
        self.exact = exact
        self.mt = max(max_terms, 1)
        self.max_rows = max_rows
        self.document = document
        self.m = trace.x.shape[0]
        self.out: list[Block] = []
        self.ellipsis = r"\dots{}" if nt.kind == "latex" else "…"
        self.listed = (
            "the tables list them" if document else (nt.name("--format json") + " lists them")
        )
        self.rule: UpdateRule = OPTIMIZERS[trace.optimizer]
        self.sgd = self.rule.plain

    # -- small pieces --------------------------------------------------------------------------
    def add(self, *blocks: Block) -> None:
        self.out.extend(blocks)

    def eqs(self, items: Sequence[Eq]) -> None:
        if items:
            self.out.append(Eqs(tuple(items)))

    def cut(self, n: int) -> tuple[int, int]:
        """How many of n items to write out, and how many that leaves."""
        shown = min(n, self.mt)
        return shown, n - shown

    def more(self, hidden: int, what: str, where: str = "") -> None:
        if hidden > 0:
            where = f" {where}" if where else ""
            self.add(
                Para(
                    f"{self.ellipsis} {plural(hidden, 'more ' + what)}{where} not written "
                    f"out ({self.listed})."
                )
            )

    def reduction(self) -> str:
        """The factor in front of a batch sum: 1/m for the mean, nothing for the sum."""
        return self.nt.frac(1, self.m) if self.t.reduction == "mean" else ""

    def batch_sum(self, body: str) -> str:
        return f"{self.reduction()} {self.nt.total_sym('x')} {body}".strip()

    def act_formula(self, name: str | None, derivative: bool = False) -> str:
        record = ACTIVATIONS.get(name or "")
        if record is None:
            return ""
        return self.nt.formula(record.derivative if derivative else record.formula)

    def fn(self, activation: str | None) -> str:
        """The activation's symbol as a function name: σ, tanh, ReLU …"""
        record = ACTIVATIONS.get(activation or "")
        return self.nt.written(record.symbol if record else _ANY)

    def bare(self, activation: str | None) -> bool:
        """a = z is written without the function (the identity)."""
        record = ACTIVATIONS.get(activation or "")
        return record is not None and record.elementwise and record.bare

    def param_letter(self, activation: str, name: str) -> str:
        """A learnable parameter's symbol as its record writes it (PReLU's a is α here)."""
        record = ACTIVATIONS.get(activation)
        param = next((p for p in record.params if p.name == name), None) if record else None
        return self.nt.written(param.written) if param and param.written else name

    def param_sym(self, activation: str, name: str, layer: int) -> str:
        return self.nt.sym(self.param_letter(activation, name), layer)

    # -- the whole document --------------------------------------------------------------------
    def build(self) -> list[Block]:
        t, nt = self.t, self.nt
        n = t.n_steps
        kind = self.rule.short or self.rule.name
        count = f"one {kind} step" if n == 1 else f"{n} {kind} steps"
        title = "Worked solution: " + (f"{count} of backpropagation" if n else "a forward pass")
        self.add(Heading(1, title))
        self.intro()
        self.notation()
        steps = list(t.steps)
        notes = {i: (lo, hi) for i, lo, hi in gaps([st.step for st in steps], n)}
        for i, st in enumerate([*steps, None]):
            if i in notes:
                self.add(
                    Para(
                        f"{hidden(*notes[i])} {'is' if notes[i][0] == notes[i][1] else 'are'} "
                        f"not written out ({nt.name('--format json')} has every step; "
                        f"{nt.name('--explain-steps')} picks the ones written out)."
                    )
                )
            if st is not None:
                self.step(st, n)
        if n:
            self.add(Heading(2, "Forward pass with the updated parameters"))
        else:
            self.add(Heading(2, "Forward pass"))
            self.add(Para("No SGD step was run: the forward pass with the initial parameters."))
        self.forward(self.final_layers())
        self.cost(t.final.output, t.final.losses, self.data(t.final))
        self.penalty(t.final, [p.weights for p in t.parameters])
        self.summary()
        return self.out

    def intro(self) -> None:
        t, nt = self.t, self.nt
        sizes = "-".join(str(s) for s in t.sizes)
        examples = plural(self.m, "example")
        text = f"Config {nt.name(t.source)}: a {sizes} network (layer 1 is the input), {examples}"
        if t.batch:
            text += (
                f" in one batch whose cost is the {t.reduction} of the per-example costs "
                f"{nt.math(nt.sym('C', None, 'x'))}"
            )
        text += f", learning rate {nt.math(nt.eta + ' = ' + nt.num(t.learning_rate, True))}."
        self.add(Para(text))
        if not self.sgd:
            hyper = ", ".join(
                nt.math(f"{self.hyper_sym(p.name)} = {nt.num(t.optimizer_params[p.name], True)}")
                for p in self.rule.params
            )
            self.add(
                Para(
                    f"Update rule: {nt.name(self.rule.name)}, {nt.text(self.rule.title)}"
                    + (f" ({hyper})" if hyper else "")
                    + "; its state starts at zero and t counts the steps from 1."
                )
            )
        if t.weight_decay:
            lam = nt.math(self.lam + " = " + nt.num(t.weight_decay, True))
            self.add(
                Para(
                    f"L2 regularization {lam}: the cost gains "
                    f"{nt.math(self.penalty_sym())}, so each weight's gradient gains "
                    f"{nt.math(self.lam + ' ' + nt.sym('w', 'l', 'j', 'k'))} "
                    "(biases and activation parameters are not regularized)."
                )
            )
        if t.round_to is not None:
            self.add(
                Para(
                    f"Every quantity is rounded to {plural(t.round_to, 'decimal')} as it is "
                    "produced and used rounded from then on, as in a hand calculation."
                )
            )
        first = t.initial_parameters
        for p in first:
            params = ", ".join(
                f"{nt.name(k)} = {nt.math(nt.num(v, True))}" for k, v in p.params.items()
            )
            self.add(
                Para(
                    f"Layer {p.layer}: {plural(p.weights.shape[0], 'unit')}, activation "
                    f"{nt.name(p.activation)}, {self.act_formula(p.activation)}"
                    + (f" ({params})" if params else "")
                    + "."
                )
            )
        loss = f"Cost: {nt.name(t.loss)}, {nt.formula(LOSSES[t.loss].formula)}"
        if t.loss_params:
            loss += (
                " ("
                + ", ".join(
                    f"{nt.name(k)} = {nt.math(nt.num(v, True))}" for k, v in t.loss_params.items()
                )
                + ")"
            )
        self.add(Para(loss + "."))
        if t.batch:
            self.add(Para("The inputs and targets, one row per example:"))
            self.eqs(
                [
                    _eq(nt.sym("a", 1), nt.matrix(t.x, True, self.mt)),
                    _eq(nt.sym("y"), nt.matrix(t.y, True, self.mt)),
                ]
            )
        else:
            self.add(Para("The input and the target:"))
            self.eqs(
                [
                    _eq(nt.sym("a", 1), nt.vec(t.x[0], True, self.mt)),
                    _eq(nt.sym("y"), nt.vec(t.y[0], True, self.mt)),
                ]
            )
        if first:
            self.add(
                Para(
                    "The initial parameters (row j of a weight matrix holds "
                    f"{nt.math(nt.sym('w', 'l', 'j', 'k'))} for each k):"
                )
            )
        self.eqs(
            [
                eq
                for p in first
                for eq in (
                    _eq(nt.sym("w", p.layer), nt.matrix(p.weights, True, self.mt)),
                    _eq(nt.sym("b", p.layer), nt.vec(p.biases, True, self.mt)),
                )
            ]
        )

    def notation(self) -> None:
        nt = self.nt
        s = nt.sym
        wsum = f"{nt.total_sym('k')} {s('w', 'l', 'j', 'k')}{s('a', 'l-1', 'k')}"
        bp2 = f"{nt.total_sym('k')} {s('w', 'l+1', 'k', 'j')}{s('δ', 'l+1', 'k')}"
        f = "f"
        self.add(Heading(2, "Notation"))
        below = nt.math("l" + nt.minus + "1")
        self.add(
            Para(
                f"In Nielsen's notation {nt.math(s('w', 'l', 'j', 'k'))} weights the connection "
                f"from unit k of layer {below} to unit j of layer l, "
                f"{nt.math(s('b', 'l', 'j'))} is the bias of unit j, "
                f"{nt.math(s('z', 'l', 'j'))} its weighted input, "
                f"{nt.math(s('a', 'l', 'j'))} its activation and "
                f"{nt.math(s('δ', 'l', 'j') + ' = ' + nt.d(s('z', 'l', 'j')))} its error. "
                f"L is the output layer and f' the derivative of the layer's activation f."
            )
        )
        self.eqs(
            [
                _eq(s("z", "l", "j"), f"{wsum} + {s('b', 'l', 'j')}"),
                _eq(s("a", "l", "j"), f"{f}({s('z', 'l', 'j')})"),
                _eq(
                    s("δ", "L", "j"),
                    f"{nt.d(s('a', 'L', 'j'))} {f}'({s('z', 'L', 'j')})",
                    tag="BP1",
                ),
                _eq(s("δ", "l", "j"), f"({bp2}) {f}'({s('z', 'l', 'j')})", tag="BP2"),
                _eq(nt.d(s("b", "l", "j")), s("δ", "l", "j"), tag="BP3"),
                _eq(
                    nt.d(s("w", "l", "j", "k")),
                    f"{s('a', 'l-1', 'k')} {s('δ', 'l', 'j')}",
                    tag="BP4",
                ),
                *(
                    [
                        Eq(
                            s("w", "l", "j", "k"),
                            (
                                (
                                    self.to(),
                                    f"{s('w', 'l', 'j', 'k')} {nt.minus} {nt.eta} "
                                    f"{nt.d(s('w', 'l', 'j', 'k'))}",
                                ),
                            ),
                            tag="SGD",
                        )
                    ]
                    if self.sgd
                    else []
                ),
            ]
        )
        if not self.sgd:
            self.add(
                Para(
                    f"The update ({nt.name(self.rule.name)}), for every parameter "
                    f"{nt.math(self.theta)} with {nt.math('g = ' + nt.d(self.theta))}:"
                )
            )
            self.add(Para(", ".join(nt.math(self.written(e)) for e in self.rule.equations) + "."))

    def to(self) -> str:
        return r"\to" if self.nt.tex else "→"

    # -- one SGD step --------------------------------------------------------------------------
    def step(self, st: StepTrace, n: int) -> None:
        t = self.t
        single = f"The {self.rule.short or self.rule.name} step"
        self.add(Heading(2, f"Step {st.step} of {n}" if n > 1 else single))
        if t.batch:
            self.add(
                Para(
                    f"Example 1 of {self.m} is written out; the others go the same way "
                    + (
                        "(the tables list them all)."
                        if self.document
                        else f"({self.nt.name('--format json')} lists them all)."
                    )
                )
            )
        if st.ahead is not None:
            self.lookahead(st)
        self.add(Heading(3, "Feedforward"))
        self.forward(self.step_layers(st))
        self.add(Heading(3, "Cost"))
        cost = st.ahead or st
        self.cost(st.layers[-1].a, cost.losses, self.data(cost))
        self.penalty(
            cost,
            [
                lt.weights_before if lt.weights_ahead is None else lt.weights_ahead
                for lt in st.layers
            ],
        )
        if st.ahead is not None:
            self.add(
                Para(
                    "That is the cost at the look-ahead point; the step's cost, at the "
                    f"parameters before the step, is {self.nt.math('C = ' + self.nt.num(st.loss))}."
                )
            )
        self.add(Heading(3, "Output error (BP1)"))
        self.output_error(st)
        if len(st.layers) > 1:
            self.add(Heading(3, "Backpropagated errors (BP2)"))
            for i in range(len(st.layers) - 2, -1, -1):
                self.hidden_error(st, i)
        self.add(Heading(3, "Gradients (BP3, BP4)"))
        if st.ahead is not None:
            self.add(Para("At the look-ahead point, so these are the g of the update below."))
        for lt in reversed(st.layers):
            self.gradients(lt)
        if self.sgd:
            self.add(Heading(3, "Gradient descent"))
            for lt in reversed(st.layers):
                self.updates(lt, st.step == 1)
        else:
            self.add(Heading(3, f"Update ({self.rule.name}, t = {st.step})"))
            for lt in reversed(st.layers):
                self.rule_updates(lt, st.step == 1, st.step)
            self.lost_state(st)
        if self.document:
            self.tables(st)

    def step_layers(self, st: StepTrace) -> list[_Forward]:
        return [
            _Forward(
                layer=lt.layer,
                activation=lt.activation,
                elementwise=lt.prime is not None,
                a_prev=lt.a_prev[0],
                z=lt.z[0],
                a=lt.a[0],
                weights=lt.weights_before if lt.weights_ahead is None else lt.weights_ahead,
                biases=lt.biases_before if lt.biases_ahead is None else lt.biases_ahead,
                given=st.step == 1,
            )
            for lt in st.layers
        ]

    def final_layers(self) -> list[_Forward]:
        """The last forward pass: the final z and a, with the parameters after the last step."""
        t = self.t
        a_prev = [t.x[0]] + [a[0] for a in t.final.a[:-1]]
        return [
            _Forward(
                layer=p.layer,
                activation=p.activation,
                elementwise=p.elementwise,
                a_prev=a_prev[i],
                z=t.final.z[i][0],
                a=t.final.a[i][0],
                weights=p.weights,
                biases=p.biases,
                given=not t.n_steps,
            )
            for i, p in enumerate(t.parameters)
        ]

    def forward(self, layers: Sequence[_Forward]) -> None:
        nt = self.nt
        for f in layers:
            l = f.layer
            units, hidden = self.cut(f.z.shape[0])
            items = []
            for j in range(units):
                items.append(self.z_eq(f, j))
                if f.elementwise:
                    items.append(self.a_eq(f, j))
            if not f.elementwise:
                fn = self.fn(f.activation)
                items.append(
                    _eq(
                        nt.sym("a", l),
                        f"{fn}({nt.sym('z', l)})",
                        f"{fn}{nt.vec(f.z, limit=self.mt)}",
                        nt.vec(f.a, limit=self.mt),
                    )
                )
            self.eqs(items)
            self.more(hidden, "unit", f"in layer {l}")

    def z_eq(self, f: _Forward, j: int) -> Eq:
        nt, l = self.nt, f.layer
        lhs = nt.sym("z", l, j + 1)
        if f.weights is None or f.biases is None:
            return _eq(lhs, nt.num(f.z[j]))
        shown, hidden = self.cut(f.a_prev.shape[0])
        bias = nt.sym("b", l, j + 1)
        if hidden:
            symbolic = (
                f"{nt.total_sym('k')} {nt.sym('w', l, j + 1, 'k')}"
                f"{nt.sym('a', l - 1, 'k')} + {bias}"
            )
        else:
            symbolic = " + ".join(
                [nt.sym("w", l, j + 1, k + 1) + nt.sym("a", l - 1, k + 1) for k in range(shown)]
                + [bias]
            )
        terms = [
            nt.prod((f.weights[j, k], f.given), (f.a_prev[k], l == 2), lead=k == 0)
            for k in range(shown)
        ]
        substituted = nt.total(terms, hidden) + f"{BREAK} + " + nt.par(f.biases[j], f.given)
        return _eq(lhs, symbolic, substituted, nt.num(f.z[j]))

    def a_eq(self, f: _Forward, j: int) -> Eq:
        nt, l = self.nt, f.layer
        lhs, z = nt.sym("a", l, j + 1), nt.sym("z", l, j + 1)
        if self.bare(f.activation):
            return _eq(lhs, z, nt.num(f.a[j]))
        fn = self.fn(f.activation)
        return _eq(lhs, f"{fn}({z})", f"{fn}({nt.num(f.z[j])})", nt.num(f.a[j]))

    # -- cost ----------------------------------------------------------------------------------
    def cost(self, output: np.ndarray, losses: np.ndarray, total: float) -> None:
        nt, t = self.nt, self.t
        record = LOSSES[t.loss]
        whole = self.data_sym()
        lhs = nt.sym("C", None, 1) if t.batch else whole
        shown, _ = self.cut(output.shape[1])
        written = record.cost_written(nt, output[0], t.y[0], shown, t.loss_params)
        rhs = [self.cost_symbolic(record.formula), *written]
        items = [_eq(lhs, *[r for r in rhs if r], nt.num(losses[0]))]
        if t.batch:
            shown, hidden = self.cut(losses.shape[0])
            terms = nt.total(
                [nt.par(c) if x else nt.num(c) for x, c in enumerate(losses[:shown])], hidden
            )
            items.append(
                _eq(
                    whole,
                    self.batch_sum(nt.sym("C", None, "x")),
                    f"{self.reduction()}({terms})",
                    nt.num(total),
                )
            )
        self.eqs(items)

    def cost_symbolic(self, formula: Written) -> str:
        """The registry's formula as the middle of a chain (only when it is a single expression)."""
        sides = formula.split(" = ")
        if len(sides) != 2 or "," in sides[1].text:
            return ""
        return self.nt.written(sides[1])

    # -- BP1 -----------------------------------------------------------------------------------
    def output_error(self, st: StepTrace) -> None:
        nt, t = self.nt, self.t
        lt = st.layers[-1]
        l = lt.layer
        units, hidden = self.cut(lt.z.shape[1])
        y, a = t.y[0], lt.a[0]
        items: list[Eq] = []
        if t.fused:
            self.add(
                Para(
                    f"The {nt.name(t.loss)} cost is computed from "
                    f"{nt.math(nt.sym('z', l))} through {nt.name(t.fused)}, so "
                    f"{nt.math(nt.sym('δ', l))} comes from {nt.math(nt.sym('z', l))} "
                    "directly rather than through the derivative of the cost:"
                )
            )
            fused = LOSSES[t.loss].fused[t.fused]
            for j in range(units):
                form = fused.written(nt, j, a, y, *self.output_unit(j))
                items.append(_eq(nt.sym("δ", l, j + 1), *form, nt.num(lt.delta[0, j])))
        elif lt.prime is not None:
            record = LOSSES[t.loss]
            derivative = nt.formula(record.derivative)
            fn = self.fn(lt.activation)
            self.add(
                Para(
                    f"BP1 with the derivative of the {nt.name(t.loss)} cost, "
                    f"{derivative}, and {self.act_formula(lt.activation, True)}:"
                )
            )
            n = lt.z.shape[1]
            for j in range(units):
                aj, yj, zj = nt.sym("a", l, j + 1), nt.sym("y", None, j + 1), nt.sym("z", l, j + 1)
                prime = nt.par(lt.prime[0, j])
                lhs = nt.sym("δ", l, j + 1)
                if record.residual_scale is not None:
                    scale = record.residual_scale(nt, n)
                    error = f"{nt.num(a[j])} {nt.minus} {nt.par(y[j], True)}"
                    items.append(
                        _eq(
                            lhs,
                            f"{scale}({aj} {nt.minus} {yj}) {fn}'({zj})",
                            f"{scale}({error}){nt.ttimes}{prime}",
                            nt.num(lt.delta[0, j]),
                        )
                    )
                else:
                    items.append(_eq(nt.d(aj), nt.num(lt.grad_a[0, j])))
                    items.append(
                        _eq(
                            lhs,
                            f"{nt.d(aj)} {fn}'({zj})",
                            f"{nt.par(lt.grad_a[0, j])}{nt.ttimes}{prime}",
                            nt.num(lt.delta[0, j]),
                        )
                    )
        else:
            derivative = nt.formula(LOSSES[t.loss].derivative)
            self.add(Para(f"The derivative of the {nt.name(t.loss)} cost, {derivative}:"))
            items = [
                _eq(nt.d(nt.sym("a", l, j + 1)), nt.num(lt.grad_a[0, j])) for j in range(units)
            ]
            self.eqs(items)
            items = self.jacobian(lt, l)
        self.eqs(items)
        self.more(hidden, "unit", f"in layer {l}")

    def output_unit(self, j: int) -> tuple[str, str]:
        """a^L_j and y_j as symbols."""
        return self.nt.sym("a", len(self.t.sizes), j + 1), self.nt.sym("y", None, j + 1)

    def jacobian(self, lt: LayerTrace, l: int) -> list[Eq]:
        """δ^l = Jᵀ ∂C/∂a^l for an activation that couples its units, as its record writes it."""
        nt = self.nt
        record = ACTIVATIONS[lt.activation]
        assert isinstance(record, VectorActivation)  # only a vector activation has no f'(z)
        self.add(
            Para(
                f"{nt.name(lt.activation)} couples its units "
                f"({self.act_formula(lt.activation, True)}), so its error takes the "
                "Jacobian-vector product:"
            )
        )
        shown, _ = self.cut(lt.z.shape[1])
        a, g = lt.a[0], lt.grad_a[0]
        return [
            _eq(
                nt.sym("δ", l, j + 1),
                *record.vjp_written(nt, l, j, a, g, shown),
                nt.num(lt.delta[0, j]),
            )
            for j in range(shown)
        ]

    # -- BP2 -----------------------------------------------------------------------------------
    def hidden_error(self, st: StepTrace, i: int) -> None:
        nt = self.nt
        lt, nxt = st.layers[i], st.layers[i + 1]
        l = lt.layer
        given = st.step == 1
        units, hidden = self.cut(lt.z.shape[1])
        shown_k, hidden_k = self.cut(nxt.z.shape[1])
        # The weights of this step's pass: Nesterov's look-ahead ones when it has them.
        w_next = nxt.weights_before if nxt.weights_ahead is None else nxt.weights_ahead
        if lt.prime is not None:
            self.add(
                Para(
                    f"Layer {l} ({nt.name(lt.activation)}), with "
                    f"{self.act_formula(lt.activation, True)}:"
                )
            )
        items = []
        for j in range(units):
            if hidden_k:
                symbolic = (
                    f"{nt.total_sym('k')} {nt.sym('w', l + 1, 'k', j + 1)}{nt.sym('δ', l + 1, 'k')}"
                )
            else:
                symbolic = " + ".join(
                    nt.sym("w", l + 1, k + 1, j + 1) + nt.sym("δ", l + 1, k + 1)
                    for k in range(shown_k)
                )
            terms = nt.total(
                [
                    nt.prod((w_next[k, j], given), (nxt.delta[0, k], False), lead=k == 0)
                    for k in range(shown_k)
                ],
                hidden_k,
            )
            g = lt.grad_a[0, j]
            if lt.prime is None:
                items.append(_eq(nt.d(nt.sym("a", l, j + 1)), symbolic, terms, nt.num(g)))
                continue
            prime = nt.par(lt.prime[0, j])
            fn = self.fn(lt.activation)
            rhs = [f"({symbolic}) {fn}'({nt.sym('z', l, j + 1)})", f"({terms}){nt.ttimes}{prime}"]
            if nxt.z.shape[1] > 1:
                rhs.append(f"{nt.num(g)}{nt.ttimes}{prime}")
            items.append(_eq(nt.sym("δ", l, j + 1), *rhs, nt.num(lt.delta[0, j])))
        self.eqs(items)
        if lt.prime is None:
            self.eqs(self.jacobian(lt, l))
        self.more(hidden, "unit", f"in layer {l}")

    # -- BP3, BP4 ------------------------------------------------------------------------------
    def gradients(self, lt: LayerTrace) -> None:
        nt, t = self.nt, self.t
        l = lt.layer
        units, hidden = self.cut(lt.z.shape[1])
        inputs, _ = self.cut(lt.a_prev.shape[1])
        examples, hidden_x = self.cut(self.m)
        items = []
        for j in range(units):
            d = nt.sym("δ", l, j + 1)
            if t.batch:
                terms = nt.total(
                    [nt.par(v) if x else nt.num(v) for x, v in enumerate(lt.delta[:examples, j])],
                    hidden_x,
                )
                items.append(
                    _eq(
                        nt.d(nt.sym("b", l, j + 1)),
                        self.batch_sum(d),
                        f"{self.reduction()}({terms})",
                        nt.num(lt.grad_biases[j]),
                    )
                )
            else:
                items.append(_eq(nt.d(nt.sym("b", l, j + 1)), d, nt.num(lt.grad_biases[j])))
        for j in range(units):
            d = nt.sym("δ", l, j + 1)
            for k in range(inputs):
                product = f"{nt.sym('a', l - 1, k + 1)} {d}"
                if t.batch:
                    terms = nt.total(
                        [
                            nt.prod((lt.a_prev[x, k], l == 2), (lt.delta[x, j], False), lead=x == 0)
                            for x in range(examples)
                        ],
                        hidden_x,
                    )
                    rhs = (self.batch_sum(product), f"{self.reduction()}({terms})")
                else:
                    rhs = (
                        product,
                        nt.prod(
                            (lt.a_prev[0, k], l == 2),
                            (lt.delta[0, j], False),
                            lead=True,
                            tight=False,
                        ),
                    )
                if t.weight_decay:
                    w = lt.weights_before if lt.weights_ahead is None else lt.weights_ahead
                    decay = nt.prod((t.weight_decay, True), (w[j, k], lt.weights_ahead is None))
                    rhs = (
                        f"{rhs[0]} + {self.lam} {nt.sym('w', l, j + 1, k + 1)}",
                        f"{rhs[1]} + {decay}",
                    )
                items.append(
                    _eq(nt.d(nt.sym("w", l, j + 1, k + 1)), *rhs, nt.num(lt.grad_weights[j, k]))
                )
        for name, g in lt.grad_params.items():
            p = self.param_sym(lt.activation, name, l)
            aj = nt.sym("a", l, "j")
            partial = rf"\partial {aj}/\partial {p}" if nt.tex else f"∂{aj}/∂{p}"
            dot = r" \cdot " if nt.tex else " · "
            chain = f"{nt.total_sym('j')} {nt.d(aj)}{dot}{partial}"
            if t.batch:
                items.append(_eq(nt.d(p), self.batch_sum(chain), nt.num(g)))
                continue
            shown, hidden_p = self.cut(lt.z.shape[1])
            partials = lt.param_partials[name][0]
            terms = nt.total(
                [
                    nt.prod((lt.grad_a[0, j], False), (partials[j], False), lead=j == 0)
                    for j in range(shown)
                ],
                hidden_p,
            )
            items.append(_eq(nt.d(p), chain, terms, nt.num(g)))
        self.eqs(items)
        self.more(hidden, "bias", f"of layer {l}")
        self.more(lt.weights.size - units * inputs, "weight", f"of layer {l}")
        if lt.grad_params:
            self.add(
                Para(f"For {nt.name(lt.activation)}, {self.act_formula(lt.activation, True)}.")
            )

    def updates(self, lt: LayerTrace, given: bool) -> None:
        nt, t = self.nt, self.t
        l = lt.layer
        units, hidden = self.cut(lt.z.shape[1])
        inputs, _ = self.cut(lt.a_prev.shape[1])
        items = []

        def update(sym: str, old: float, grad: float, new: float, old_given: bool) -> Eq:
            step = nt.prod((t.learning_rate, True), (grad, False), lead=True, tight=False)
            return Eq(
                sym,
                (
                    (self.to(), f"{sym} {nt.minus} {nt.eta} {nt.d(sym)}"),
                    ("=", f"{nt.num(old, old_given)} {nt.minus} {step}"),
                    ("=", nt.num(new)),
                ),
            )

        for j in range(units):
            for k in range(inputs):
                items.append(
                    update(
                        nt.sym("w", l, j + 1, k + 1),
                        lt.weights_before[j, k],
                        lt.grad_weights[j, k],
                        lt.weights[j, k],
                        given,
                    )
                )
        for j in range(units):
            items.append(
                update(
                    nt.sym("b", l, j + 1),
                    lt.biases_before[j],
                    lt.grad_biases[j],
                    lt.biases[j],
                    given,
                )
            )
        for name, g in lt.grad_params.items():
            items.append(
                update(
                    self.param_sym(lt.activation, name, l),
                    lt.params_before[name],
                    g,
                    lt.params[name],
                    given,
                )
            )
        self.eqs(items)
        self.more(lt.weights.size - units * inputs, "weight", f"of layer {l}")
        self.more(hidden, "bias", f"of layer {l}")

    # -- other update rules, the L2 penalty --------------------------------------------------
    @property
    def lam(self) -> str:
        return r"\lambda" if self.nt.tex else "λ"

    @property
    def theta(self) -> str:
        return r"\theta" if self.nt.tex else "θ"

    def written(self, w: Written) -> str:
        return w.tex if self.nt.tex else w.text

    def hyper_sym(self, name: str) -> str:
        """A hyperparameter's symbol (μ, β₁, ε) as its record writes it."""
        param = next(p for p in self.rule.params if p.name == name)
        return self.written(param.written) if param.written else param.label

    def hyper(self, name: str) -> tuple[str, float]:
        """A hyperparameter's symbol and value."""
        return self.hyper_sym(name), self.t.optimizer_params[name]

    def sqrt(self, x: str) -> str:
        if self.nt.tex:
            return rf"\sqrt{{{x}}}"
        return f"√({x})" if "×" in x else f"√{x}"

    def power(self, base: str, t: int | str) -> str:
        return (
            f"{base}^{{{t}}}" if self.nt.tex else base + ("ᵗ" if t == "t" else superscript(str(t)))
        )

    def data(self, cost: StepTrace | ForwardTrace) -> float:
        return cost.loss if cost.data_loss is None else cost.data_loss

    def data_sym(self) -> str:
        """The data cost's symbol: C, or C₀ when the L2 penalty makes C their sum."""
        return self.nt.sym("C", None, 0) if self.t.weight_decay else "C"

    def penalty_sym(self) -> str:
        nt = self.nt
        w = nt.squared("(" + nt.sym("w", "l", "j", "k") + ")")
        return f"{nt.frac(self.lam, 2)} {nt.total_sym('l')} {nt.total_sym('jk')} {w}"

    def penalty(self, cost: StepTrace | ForwardTrace, weights: Sequence[np.ndarray]) -> None:
        """C = C₀ + (λ/2) Σ w², with its numbers."""
        nt, lam = self.nt, self.t.weight_decay
        if not lam:
            return
        squares = float(sum(float(np.sum(w * w)) for w in weights))
        self.eqs(
            [
                _eq(
                    "C",
                    f"{self.data_sym()} + {self.penalty_sym()}",
                    f"{nt.num(self.data(cost))} + {nt.frac(nt.num(lam, True), 2)}"
                    f"{nt.times}{nt.num(squares)}",
                    f"{nt.num(self.data(cost))} + {nt.num(cost.penalty)}",
                    nt.num(cost.loss),
                )
            ]
        )

    def thetas(self, lt: LayerTrace, given: bool) -> tuple[list[_Theta], int, int]:
        """The parameters of a layer written out under --max-terms, and the weights and biases
        that leaves."""
        nt, l = self.nt, lt.layer
        units, hidden = self.cut(lt.z.shape[1])
        inputs, _ = self.cut(lt.a_prev.shape[1])
        tilde = (lambda c: rf"\tilde{{{c}}}") if nt.tex else (lambda c: c + "\u0303")

        def values(kind: str, n: int, arrays: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
            return {k: float(np.ravel(v)[n]) for k, v in arrays.get(kind, {}).items()}

        def make(
            kind: str,
            n: int,
            sym: str,
            state: Callable[[str], str],
            ahead_sym: str,
            before: float,
            grad: float,
            after: float,
            ahead: float | None,
        ) -> _Theta:
            return _Theta(
                sym,
                state,
                ahead_sym,
                before,
                grad,
                after,
                values(kind, n, lt.optimizer_state_before),
                values(kind, n, lt.optimizer_state),
                values(kind, n, lt.optimizer_derived),
                ahead,
                given,
            )

        def indexed(*units: int) -> Callable[[str], str]:
            return lambda name: nt.sym(self.state_name(name), l, *units)

        out = []
        n_in = lt.weights.shape[1]
        for j in range(units):
            for k in range(inputs):
                n = j * n_in + k
                ahead = None if lt.weights_ahead is None else float(lt.weights_ahead[j, k])
                out.append(
                    make(
                        "weights",
                        n,
                        nt.sym("w", l, j + 1, k + 1),
                        indexed(j + 1, k + 1),
                        nt.sym(tilde("w"), l, j + 1, k + 1),
                        lt.weights_before[j, k],
                        lt.grad_weights[j, k],
                        lt.weights[j, k],
                        ahead,
                    )
                )
        for j in range(units):
            ahead = None if lt.biases_ahead is None else float(lt.biases_ahead[j])
            out.append(
                make(
                    "biases",
                    j,
                    nt.sym("b", l, j + 1),
                    indexed(j + 1),
                    nt.sym(tilde("b"), l, j + 1),
                    lt.biases_before[j],
                    lt.grad_biases[j],
                    lt.biases[j],
                    ahead,
                )
            )
        for name, g in lt.grad_params.items():
            sym = self.param_sym(lt.activation, name, l)
            ahead = None if lt.params_ahead is None else lt.params_ahead[name]
            out.append(
                make(
                    name,
                    0,
                    sym,
                    lambda s, sym=sym: f"{self.state_name(s)}({sym})",  # type: ignore[misc]
                    nt.sym(tilde(self.param_letter(lt.activation, name)), l),
                    lt.params_before[name],
                    g,
                    lt.params[name],
                    ahead,
                )
            )
        return out, lt.weights.size - units * inputs, hidden

    def state_name(self, name: str) -> str:
        return self.written(self.rule.symbols[name])

    def lookahead(self, st: StepTrace) -> None:
        nt = self.nt
        self.add(Heading(3, "Look-ahead point"))
        mu_sym, mu = self.hyper("momentum")
        self.add(
            Para(
                "Nesterov's gradient is taken at the look-ahead point "
                f"{nt.math(self.written(self.rule.equations[0]))}: the feedforward, the cost, "
                "the errors and the gradients below are those of the look-ahead parameters."
            )
        )
        for lt in reversed(st.layers):
            thetas, hidden_w, hidden_b = self.thetas(lt, st.step == 1)
            items = []
            for th in thetas:
                v = th.state_before["velocity"]
                items.append(
                    _eq(
                        th.ahead_sym,
                        f"{th.sym} {nt.minus} {nt.eta} {mu_sym} {th.state('velocity')}",
                        f"{nt.num(th.before, th.given)} {nt.minus} "
                        + nt.prod((self.t.learning_rate, True), (mu, True), (v, False)),
                        nt.num(th.ahead if th.ahead is not None else th.before),
                    )
                )
            self.eqs(items)
            self.more(hidden_w, "weight", f"of layer {lt.layer}")
            self.more(hidden_b, "bias", f"of layer {lt.layer}")

    def rule_updates(self, lt: LayerTrace, given: bool, t: int) -> None:
        form = self.rule.written
        thetas, hidden_w, hidden_b = self.thetas(lt, given)
        items: list[Eq] = []
        for th in thetas:
            if "decayed" in th.derived:
                items.append(self.decay_eq(th))
            items.extend(form(self, th, t))
        self.eqs(items)
        self.more(hidden_w, "weight", f"of layer {lt.layer}")
        self.more(hidden_b, "bias", f"of layer {lt.layer}")

    def lost_state(self, st: StepTrace) -> None:
        """Say so when hand rounding wiped out a state the gradient fed (Adam's v ~ (1 − β₂)g²):
        the step then divides by ε alone."""
        if self.t.round_to is None:
            return
        lost = [
            name
            for lt in st.layers
            for kind, arrays in lt.optimizer_state.items()
            for name, after in arrays.items()
            if np.any((after == 0) & (np.asarray(self.grad_of(lt, kind)) != 0))
        ]
        if lost:
            names = ", ".join(sorted({self.state_name(n) for n in lost}))
            self.add(
                Para(
                    f"Rounded to {plural(self.t.round_to, 'decimal')}, some values of the "
                    f"state ({self.nt.math(names)}) became 0 although their gradients are not: "
                    "the step then divides by a bare ε or forgets the gradient. Round to more "
                    f"decimals ({self.nt.name('--round')}) to follow this rule by hand."
                )
            )

    @staticmethod
    def grad_of(lt: LayerTrace, kind: str) -> np.ndarray | float:
        if kind == "weights":
            return lt.grad_weights
        if kind == "biases":
            return lt.grad_biases
        return lt.grad_params[kind]

    def decay_eq(self, th: _Theta) -> Eq:
        """AdamW's decoupled decay, before the update."""
        nt = self.nt
        lam_sym, lam = self.hyper(self.rule.decay)
        factors = nt.prod((self.t.learning_rate, True), (lam, True), (th.before, th.given))
        return Eq(
            th.sym,
            (
                (self.to(), f"{th.sym} {nt.minus} {nt.eta} {lam_sym} {th.sym}"),
                ("=", f"{nt.num(th.before, th.given)} {nt.minus} {factors}"),
                ("=", nt.num(th.derived["decayed"])),
            ),
        )

    def grad_sym(self, th: _Theta) -> str:
        """g: ∂C/∂θ, at the look-ahead point when the rule takes it there."""
        return self.nt.d(th.ahead_sym if th.ahead is not None else th.sym)

    def move(self, th: _Theta, symbolic: str, substituted: str) -> Eq:
        """θ → θ − (symbolic) = old − (substituted) = new."""
        nt = self.nt
        old = th.derived.get("decayed", th.before)
        given = th.given and "decayed" not in th.derived
        return Eq(
            th.sym,
            (
                (self.to(), f"{th.sym} {nt.minus} {symbolic}"),
                ("=", f"{nt.num(old, given)} {nt.minus} {substituted}"),
                ("=", nt.num(th.after)),
            ),
        )

    def state_eq(self, th: _Theta, name: str, symbolic: str, substituted: str) -> Eq:
        return Eq(
            th.state(name),
            (
                (self.to(), symbolic),
                ("=", substituted),
                ("=", self.nt.num(th.state_after[name])),
            ),
        )

    # -- tables (documents) --------------------------------------------------------------------
    def table(self, header: Sequence[str], rows: Iterable[Sequence[str]], total: int) -> None:
        """A table of `total` rows, of which only the first --max-rows are built."""
        limit = self.max_rows
        kept = list(islice(rows, limit) if limit else rows)
        note = ""
        if limit and total > limit:
            note = (
                f"{self.ellipsis} and {plural(total - limit, 'more row')} "
                f"({self.nt.name('--max-rows 0')} shows all; {self.nt.name('--format json')} "
                "has every number)."
            )
        self.add(Table(tuple(header), tuple(tuple(r) for r in kept), note))

    def cell(self, value: float, given: bool = False) -> str:
        return self.nt.math(self.nt.num(value, given))

    def tables(self, st: StepTrace) -> None:
        nt, t = self.nt, self.t
        m = nt.math
        s = nt.sym
        self.add(Heading(3, "Tables"))
        lead = ["example"] if t.batch else []
        header = [
            *lead,
            "layer",
            "unit",
            m(s("z", "l", "j")),
            m(s("a", "l", "j")),
            m(nt.d(s("a", "l", "j"))),
            m("f'(" + s("z", "l", "j") + ")"),
            m(s("δ", "l", "j")),
        ]

        def units() -> Iterator[list[str]]:
            for x in range(self.m):
                for lt in st.layers:
                    fused = t.fused is not None and lt is st.layers[-1]
                    for j in range(lt.z.shape[1]):
                        ga = "" if fused else self.cell(lt.grad_a[x, j])
                        prime = "" if fused or lt.prime is None else self.cell(lt.prime[x, j])
                        yield [
                            *([str(x + 1)] if t.batch else []),
                            str(lt.layer),
                            str(j + 1),
                            self.cell(lt.z[x, j]),
                            self.cell(lt.a[x, j]),
                            ga,
                            prime,
                            self.cell(lt.delta[x, j]),
                        ]

        self.add(Para("Weighted inputs, activations and errors:"))
        self.table(header, units(), self.m * sum(t.sizes[1:]))
        given = st.step == 1
        biases = (
            [
                str(lt.layer),
                str(j + 1),
                self.cell(lt.biases_before[j], given),
                self.cell(lt.grad_biases[j]),
                self.cell(lt.biases[j]),
            ]
            for lt in reversed(st.layers)
            for j in range(lt.z.shape[1])
        )
        self.add(Para("Biases before the update, their gradients, and after:"))
        self.table(
            [
                "layer",
                "unit",
                m(s("b", "l", "j")),
                m(nt.d(s("b", "l", "j"))),
                "new " + m(s("b", "l", "j")),
            ],
            biases,
            sum(t.sizes[1:]),
        )
        weights = (
            [
                str(lt.layer),
                str(j + 1),
                str(k + 1),
                self.cell(lt.weights_before[j, k], given),
                self.cell(lt.grad_weights[j, k]),
                self.cell(lt.weights[j, k]),
            ]
            for lt in reversed(st.layers)
            for j in range(lt.weights.shape[0])
            for k in range(lt.weights.shape[1])
        )
        self.add(Para("Weights before the update, their gradients, and after:"))
        self.table(
            [
                "l",
                "j",
                "k",
                m(s("w", "l", "j", "k")),
                m(nt.d(s("w", "l", "j", "k"))),
                "new " + m(s("w", "l", "j", "k")),
            ],
            weights,
            sum(lt.weights.size for lt in st.layers),
        )
        params = [
            [
                str(lt.layer),
                nt.name(lt.activation),
                m(self.param_sym(lt.activation, name, lt.layer)),
                self.cell(lt.params_before[name], given),
                self.cell(g),
                self.cell(lt.params[name]),
            ]
            for lt in reversed(st.layers)
            for name, g in lt.grad_params.items()
        ]
        if params:
            self.add(Para("Learned activation parameters:"))
            self.table(
                ["layer", "activation", "parameter", "before", "gradient", "after"],
                params,
                len(params),
            )
        if not self.sgd:
            self.update_table(st)

    def update_table(self, st: StepTrace) -> None:
        """Every parameter's update, one row per quantity: the rule's state before and after,
        what it works out on the way, and the parameter itself."""
        nt, rule = self.nt, self.rule
        m = nt.math
        names = [*rule.state, *rule.derived]
        per = len(names) + 1 + (rule.lookahead is not None)

        def rows() -> Iterator[list[str]]:
            for lt in reversed(st.layers):
                # --max-terms does not apply to a table: every parameter, --max-rows caps it.
                saved, self.mt = self.mt, max(lt.weights.shape) + 1
                thetas, _, _ = self.thetas(lt, st.step == 1)
                self.mt = saved
                for th in thetas:
                    lead = [str(lt.layer), m(th.sym), self.cell(th.grad)]
                    if th.ahead is not None:
                        yield [*lead, m(th.ahead_sym), "", self.cell(th.ahead)]
                        lead = ["", "", ""]
                    if "decayed" in th.derived:
                        yield [
                            *lead,
                            m(f"{th.sym} {nt.minus} {nt.eta} {self.lam} {th.sym}"),
                            "",
                            self.cell(th.derived["decayed"]),
                        ]
                        lead = ["", "", ""]
                    for name in names:
                        old = th.state_before.get(name)
                        new = th.state_after.get(name, th.derived.get(name, 0.0))
                        yield [
                            *lead,
                            m(th.state(name)),
                            "" if old is None else self.cell(old),
                            self.cell(new),
                        ]
                        lead = ["", "", ""]
                    yield [*lead, m(th.sym), self.cell(th.before, th.given), self.cell(th.after)]

        total = sum((lt.weights.size + lt.biases.size + len(lt.grad_params)) for lt in st.layers)
        self.add(Para(f"The update ({nt.name(rule.name)}), quantity by quantity:"))
        self.table(
            ["layer", m(self.theta), m(nt.d(self.theta)), "quantity", "before", "after"],
            rows(),
            total * per,
        )

    # -- summary -------------------------------------------------------------------------------
    def summary(self) -> None:
        nt, t = self.nt, self.t
        m = nt.math
        n = t.n_steps
        L = len(t.sizes)
        self.add(Heading(2, "Summary"))
        after = f"after step {n}" if n else "forward pass"
        header = ["", "before training", after, "target"] if n else ["", after, "target"]
        rows = []
        examples, hidden_x = self.cut(self.m)
        units, hidden = self.cut(t.sizes[-1])
        for x in range(examples):
            for j in range(units):
                label = m(nt.sym("a", L, j + 1)) + (f", example {x + 1}" if t.batch else "")
                cells = [self.cell(t.initial.output[x, j])] if n else []
                rows.append(
                    [label, *cells, self.cell(t.final.output[x, j]), self.cell(t.y[x, j], True)]
                )
        cost = [self.cell(t.initial.loss)] if n else []
        rows.append([m("C") + f" ({nt.name(t.loss)})", *cost, self.cell(t.final.loss), ""])
        self.add(Table(tuple(header), tuple(tuple(r) for r in rows)))
        self.more(hidden_x, "example")
        self.more(hidden, "output unit")
        if n > 1:
            self.loss_per_step()
        if self.exact is not None and t.round_to is not None:
            self.drift(self.exact)

    def loss_per_step(self) -> None:
        nt, t = self.nt, self.t
        n = t.n_steps
        if not self.document:
            first, last = float(t.losses[0]), t.final.loss
            self.add(
                Para(
                    f"Cost per step: {sparkline(np.append(t.losses, last), 60)}  "
                    f"{nt.num(first)} → {nt.num(last)}"
                )
            )
            return
        # Only the rows the table shows are formatted: a long run has a million costs.
        shown = max(self.max_rows - 2, 0) if self.max_rows and n + 1 > self.max_rows else n
        rows = [[str(s + 1), self.cell(float(t.losses[s]))] for s in range(shown)]
        if shown < n:
            rows.append([f"{self.ellipsis} step {n}", self.cell(float(t.losses[n - 1]))])
        rows.append([f"after step {n}", self.cell(t.final.loss)])
        self.add(Para("The cost before each step's update:"))
        self.table(["step", nt.math("C")], rows, len(rows))

    def drift(self, exact: RunTrace) -> None:
        nt, t = self.nt, self.t
        m = nt.math
        L = len(t.sizes)
        n = t.n_steps
        self.add(
            Para(
                f"How far the hand rounding ({plural(t.round_to or 0, 'decimal')}) "
                "drifted from the exact computation:"
            )
        )

        def row(label: str, rounded: float, exact_value: float) -> list[str]:
            return [
                label,
                self.cell(rounded),
                m(nt.exact(exact_value)),
                m(fmt_drift(nt, rounded - exact_value)),
            ]

        rows = [row(m("C") + (" before training" if n else ""), t.initial.loss, exact.initial.loss)]
        if n:
            rows.append(row(m("C") + f" after step {n}", t.final.loss, exact.final.loss))
        units, _ = self.cut(t.sizes[-1])
        for j in range(units):
            label = m(nt.sym("a", L, j + 1)) + (", example 1" if t.batch else "")
            rows.append(
                row(label + (" after" if n else ""), t.final.output[0, j], exact.final.output[0, j])
            )
        if n:
            for what, get in (("w", lambda p: p.weights), ("b", lambda p: p.biases)):
                worst = max(
                    float(np.max(np.abs(get(a) - get(b))))
                    for a, b in zip(t.parameters, exact.parameters, strict=True)
                )
                rows.append(
                    [
                        f"largest drift in the updated {m(nt.sym(what))}",
                        "",
                        "",
                        m(fmt_drift(nt, worst)),
                    ]
                )
        self.add(Table(("", "rounded", "exact", "difference"), tuple(tuple(r) for r in rows)))


def fmt_drift(nt: Notation, value: float) -> str:
    """A difference keeps three significant digits even under --round."""
    return Notation(nt.kind, digits=nt.digits).num(value)


def build(
    trace: RunTrace,
    nt: Notation,
    *,
    exact: RunTrace | None = None,
    max_terms: int = 6,
    max_rows: int = 40,
    document: bool = False,
) -> list[Block]:
    """The worked solution as blocks; `document` adds the tables Markdown and LaTeX carry."""
    return _Builder(trace, nt, exact, max_terms, max_rows, document).build()


# What an update rule's `written` form receives (gradcalc/functions/optimizers.py).
UpdateWriter = _Builder
Theta = _Theta
