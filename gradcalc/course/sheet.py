"""The problem sheet of a variant, in Markdown and in LaTeX: the network, the example, the task,
and exactly which cells to fill in and to how many decimals."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gradcalc.check.cells import Shape, indices, symbol
from gradcalc.doc.notation import superscript

if TYPE_CHECKING:
    from gradcalc.course.variants import Course, Problem

QUANTITY_NAMES = {
    "z": ("the weighted inputs", "z^l"),
    "a": ("the activations", "a^l"),
    "losses": ("the cost of each example", "C_x"),
    "loss": ("the cost before the update", "C"),
    "delta": ("the errors (BP1, BP2)", "\\delta^l"),
    "grad_weights": ("the weight gradients (BP4)", "\\partial C/\\partial w^l_{jk}"),
    "grad_biases": ("the bias gradients (BP3)", "\\partial C/\\partial b^l_j"),
    "grad_activation_params": ("the activation parameters' gradients", "\\partial C/\\partial p"),
    "weights": ("the updated weights", "w^l_{jk}"),
    "biases": ("the updated biases", "b^l_j"),
    "activation_params": ("the updated activation parameters", "p"),
    "grad_kernels": ("the kernel gradients", "\\partial C/\\partial K^l"),
    "grad_input": ("the gradients of each layer's input", "\\partial C/\\partial x^l"),
    "kernels": ("the updated kernels", "K^l"),
}
_TEX_SYMBOL = {
    "z": "z^{%s}_{%s}",
    "a": "a^{%s}_{%s}",
    "delta": "\\delta^{%s}_{%s}",
    "grad_weights": "\\partial C/\\partial w^{%s}_{%s}",
    "grad_biases": "\\partial C/\\partial b^{%s}_{%s}",
    "weights": "w^{%s}_{%s}",
    "biases": "b^{%s}_{%s}",
}


def _layered(spec: Any) -> bool:
    from gradcalc.step.config import NetworkSpec

    return not isinstance(spec, NetworkSpec)


def describe(spec: Any) -> str:
    if _layered(spec):
        from gradcalc.layers.shapes import show

        kinds = " → ".join(layer.kind.name for layer in spec.layers)
        shapes = " → ".join(show(s) for s in [spec.layers[0].in_shape, *_outs(spec)])
        m = spec.x.shape[0]
        return (
            f"a network of {kinds} layers ({shapes}), {m} example{'s' if m != 1 else ''}, "
            f"loss {spec.loss.name}, η = {spec.learning_rate:.12g}, {spec.steps} "
            f"step{'s' if spec.steps != 1 else ''}"
        )
    sizes = "-".join(str(s) for s in spec.sizes)
    acts = ", ".join(layer.activation.name for layer in spec.layers)
    m = spec.x.shape[0]
    return (
        f"a {sizes} network ({acts}), {m} example{'s' if m != 1 else ''}, loss "
        f"{spec.loss.name}, η = {spec.learning_rate:.12g}, {spec.steps} "
        f"step{'s' if spec.steps != 1 else ''}"
    )


def cells(shape: Shape) -> list[tuple[str, list[str], list[str]]]:
    """Each quantity of a step with its cells' symbols (every layer, in the order of a hand
    solution), in Unicode and in TeX."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    layered = getattr(shape, "layered", False)
    for key in shape.step_keys():
        q, l = key
        unicode_names, tex_names = out.setdefault(q, ([], []))
        for _, index in indices(key, shape):
            name = symbol(key, index, shape)
            unicode_names.append(name)
            tex_names.append(tex_of(name) if layered else tex(q, l, index))
    return [(q, names, texs) for q, (names, texs) in out.items()]


def _outs(spec: Any) -> list[tuple[int, ...]]:
    return [layer.out_shape for layer in spec.layers]


_TEX_CHARS = {"∂": "\\partial ", "×": "\\times ", "−": "-", "̃": ""}
_SUPER = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_SUB = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")


_WORDS = re.compile(r" (new|via|direct|from)(?![A-Za-z])( ?)")
_NAME = re.compile(r"(?<![A-Za-z])([A-Za-z]+)_([A-Za-z]+)")
_ACCENTS = {"\u0302": "hat", "\u0303": "tilde"}


def _tex_name(m: re.Match[str]) -> str:
    head, tail = m.group(1), m.group(2)
    if len(head) == 1:  # W_ih, b_hh, C_x: a symbol with a subscript
        return f"{head}_{{\\mathrm{{{tail}}}}}"
    return f"\\text{{{head}\\_{tail}}}"  # running_mean: a name


def tex_of(text: str) -> str:
    """A cell's Unicode symbol (∂C/∂K²[0,0,1,0] new, δ⁵[1], z²[0,2,1], x̂²[0], ∂C/∂W_ih²[0,0],
    ∂C/∂h²[1,0] from t+1) as TeX math."""
    import unicodedata

    text = re.sub(
        "(.)([\u0302\u0303])", lambda m: f"\\{_ACCENTS[m.group(2)]}{{{m.group(1)}}}", text
    )
    text = _NAME.sub(_tex_name, text)
    text = _WORDS.sub(lambda m: f"\\ \\text{{{m.group(1)}}}" + ("\\ " if m.group(2) else ""), text)
    text = re.sub("[⁰¹²³⁴⁵⁶⁷⁸⁹]+", lambda m: "^{" + m.group().translate(_SUPER) + "}", text)
    text = re.sub("[₀₁₂₃₄₅₆₇₈₉]+", lambda m: "_{" + m.group().translate(_SUB) + "}", text)
    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
        elif ch in _TEX_CHARS:
            out.append(_TEX_CHARS[ch])
        elif unicodedata.name(ch, "").startswith("GREEK "):
            name = unicodedata.name(ch).split()[-1].lower()
            out.append(f"\\{name.capitalize() if ch.isupper() else name} ")
        else:
            out.append("?")
    return "".join(out)


def tex(q: str, l: int | None, index: tuple[int | str, ...]) -> str:
    if q == "loss":
        return "C"
    if q == "losses":
        return f"C_{{{index[0]}}}"
    if q in _TEX_SYMBOL:
        sub = "".join(str(i) for i in index[-2:]) if q in ("grad_weights", "weights") else ""
        if not sub:
            sub = str(index[-1])
        text = _TEX_SYMBOL[q] % (l, sub)
        if q in ("weights", "biases"):
            text += "\\ \\text{new}"
        if len(index) > 1 and q in ("z", "a", "delta"):
            text += f"\\ (x = {index[0]})"
        return text
    if q in ("activation_params", "grad_activation_params"):
        name = str(index[-1])  # the parameter's name: α of a PReLU is `alpha`
        sym = f"\\{name}" if name in _GREEK else f"\\text{{{_tex_escape(name)}}}"
        sub = f"_{{{index[0]}}}" if len(index) > 1 else ""
        if q == "activation_params":
            return f"{sym}^{{{l}}}{sub}\\ \\text{{new}}"
        return f"\\partial C/\\partial {sym}^{{{l}}}{sub}"
    return f"\\text{{{_tex_escape(q)}}}^{{{l}}}_{{{_tex_escape(str(index[-1]))}}}"


_GREEK = frozenset(
    [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
        "lambda",
        "mu",
        "nu",
        "xi",
        "pi",
        "rho",
        "sigma",
        "tau",
        "upsilon",
        "phi",
        "chi",
        "psi",
        "omega",
    ]
)


def _vec(values: Iterable[float]) -> str:
    return "(" + ", ".join(f"{v:.12g}" for v in values) + ")"


def _mat(rows) -> str:
    return "[" + ", ".join(_vec(r)[1:-1].join("[]") for r in rows) + "]"


def _steps_text(spec) -> str:
    n = spec.steps
    rule = "gradient descent" if spec.optimizer.name == "sgd" else f"{spec.optimizer.name}"
    return f"one step of {rule}" if n == 1 else f"{n} steps of {rule}"


def _num(v: float) -> str:
    return f"{v:.12g}"


def _values(params: Any, values: Any, tex: bool) -> str:
    """`α = 0.01, β = 2` for a record's parameters (its symbols), in order."""
    parts = []
    for p in params:
        if p.name in values:
            if p.written:
                sym = p.written.tex if tex else p.written.text
            else:
                sym = tex_of(p.label) if tex else p.label
            parts.append(f"{sym} = {_num(values[p.name])}")
    return ", ".join(parts)


def conditions(spec: Any, tex: bool = False, html: bool = False) -> list[str]:
    """Every setting besides the parameters, the cost and η that a hand calculation needs, in
    sentences: the cost's and the activations' own parameters, how a batch's costs combine, the
    update rule with its hyperparameters, and weight decay. (Without these a sheet whose rule is
    Adam, or whose batch sums, cannot be worked from the sheet alone.)"""

    # HTML (PrairieLearn's MathJax) writes the formulas as TeX between $…$ and the words escaped.
    tex = tex or html

    def m(text: str) -> str:  # a formula: inline math in LaTeX, as it is in Markdown
        return f"${text}$" if tex else text

    def w(text: str) -> str:
        if html:
            from html import escape

            return escape(text)
        return _tex_escape(text) if tex else text

    out = []
    if spec.loss_params:
        out.append(
            f"The cost's parameters are {m(_values(spec.loss.params, spec.loss_params, tex))}."
        )
    acts = []
    for l, layer in enumerate(spec.layers, start=2):
        values = getattr(layer, "activation_params", None) or getattr(layer, "params", {})
        number = getattr(layer, "number", l)
        given = _values(getattr(layer.activation, "params", ()), values, tex)
        if given:
            acts.append(f"layer {number}'s {w(layer.activation.name)}: {m(given)}")
    if acts:
        out.append("The activations' parameters: " + "; ".join(acts) + ".")
    n = spec.x.shape[0]
    if n > 1:
        how = "mean" if spec.reduction == "mean" else "sum"
        out.append(
            f"The cost of the batch is the {how} of the {n} examples' costs "
            f"({w('reduction: ' + spec.reduction)}), and so is every gradient."
        )
    rule = spec.optimizer
    if rule.name != "sgd":
        eqs = "; ".join(m(e.tex if tex else e.text) for e in rule.equations)
        hyper = _values(rule.params, spec.optimizer_params, tex)
        named = (
            f"<code>{rule.name}</code>"
            if html
            else f"\\texttt{{{_tex_escape(rule.name)}}}"
            if tex
            else f"`{rule.name}`"
        )
        state = [rule.symbols.get(k) for k in rule.state]
        held = ", ".join(m(x.tex if tex else x.text) for x in state if x is not None)
        counts = any("ᵗ" in e.text for e in rule.equations)
        out.append(
            f"The update rule is {named}: {eqs}"
            + (f", with {m(hyper)}" if hyper else "")
            + "."
            + (f" Its state {held} starts at zero" if held else "")
            + (f", and {m('t')} counts the steps from 1." if counts else "." if held else "")
        )
    if spec.weight_decay:
        names = (
            sorted({_symbol(layer, k) for layer in spec.layers for k in layer.kind.decays})
            if _layered(spec)
            else ["w"]
        )
        which = ", ".join(m(tex_of(n)) if tex else n for n in names)
        lam, pen, gain, theta = (
            (r"\lambda", r"(\lambda/2) \sum \theta^2", r"\lambda\theta", r"\theta")
            if tex
            else ("λ", "(λ/2) Σ θ²", "λθ", "θ")
        )
        out.append(
            f"Weight decay {m(f'{lam} = {_num(spec.weight_decay)}')}: the cost gains the penalty "
            f"{m(pen)} over the weights {m(theta)} ({which}; not the biases), so each of their "
            f"gradients gains {m(gain)}."
        )
    return out


def markdown(course: Course, problem: Problem) -> str:
    if problem.layered:
        return _layered_markdown(course, problem)
    spec: Any = problem.spec
    d = course.decimals
    title = course.template.title or "Backpropagation by hand"
    lines = [
        f"# {title}: variant {problem.id}",
        "",
        f"A {'-'.join(map(str, spec.sizes))} network sees "
        f"{'one training example' if spec.x.shape[0] == 1 else f'{spec.x.shape[0]} examples'}:",
        "",
    ]
    for x, y in zip(spec.x, spec.y, strict=True):
        lines.append(f"- the input a¹ = {_vec(x)} with the target y = {_vec(y)}")
    lines += [
        "",
        "It starts from these parameters (row j of w^l holds the weights into unit j of layer l):",
        "",
        "| layer l | weights w^l | biases b^l | activation |",
        "|---|---|---|---|",
    ]
    for l, layer in enumerate(spec.layers, start=2):
        act = f"{layer.activation.name} ({layer.activation.formula.text})"
        lines.append(f"| {l} | {_mat(layer.weights)} | {_vec(layer.biases)} | {act} |")
    lines += [
        "",
        f"The cost is {spec.loss.name}, {spec.loss.formula.text}; the learning rate is "
        f"η = {spec.learning_rate:.12g}." + "".join(" " + c for c in conditions(spec)),
        "",
        f"Work {_steps_text(spec)} by hand: the forward pass, the cost, the errors δ^l, every "
        "gradient and every updated parameter.",
        "",
    ]
    return "\n".join(lines + _cells_to_fill(spec, d))


def _cells_to_fill(spec: Any, d: int) -> list[str]:
    """The sheet's closing part, dense or layered: how to round, and the table of the cells
    to fill in with their count."""
    lines = [
        f"**Write every number rounded to {d} decimal{'s' if d != 1 else ''}**, and work each "
        "quantity from your rounded numbers before it. Fill in `answers.yaml`: replace each "
        "`null` with your number. The cells to fill in:",
        "",
        "| quantity | cells |",
        "|---|---|",
    ]
    table = cells(Shape.of(spec))
    for q, names, _ in table:
        lines.append(f"| {quantity_name(q, spec)} (`{q}`) | {', '.join(names)} |")
    total = sum(len(names) for _, names, _ in table)
    steps = spec.steps
    lines += [
        "",
        f"{total} cells{' per step' if steps != 1 else ''}"
        + (f", for each of the {steps} steps" if steps != 1 else "")
        + ".",
        "",
    ]
    return lines


_TEX_SPECIAL = {
    "\\": "\\textbackslash{}",
    "_": "\\_",
    "%": "\\%",
    "&": "\\&",
    "#": "\\#",
    "$": "\\$",
    "{": "\\{",
    "}": "\\}",
    "^": "\\^{}",
    "~": "\\~{}",
}


def _tex_escape(text: str) -> str:
    return re.sub(r"[\\_%&#$^{}~]", lambda m: _TEX_SPECIAL[m.group()], text)


def _tvec(values: Iterable[float]) -> str:
    return "(" + ", ".join(f"{v:.12g}" for v in values) + ")"


def _tmat(rows) -> str:
    body = " \\\\ ".join(" & ".join(f"{v:.12g}" for v in row) for row in rows)
    return f"\\begin{{pmatrix}} {body} \\end{{pmatrix}}"


def latex(course: Course, problem: Problem) -> str:
    if problem.layered:
        return _layered_latex(course, problem)
    spec: Any = problem.spec
    d = course.decimals
    title = _tex_escape(course.template.title or "Backpropagation by hand")
    pid = _tex_escape(problem.id)
    from gradcalc.doc.latex import PREAMBLE  # the worked solution's: the same packages

    out = [
        *PREAMBLE.rstrip("\n").split("\n"),
        f"\\section*{{{title}: variant {pid}}}",
        f"A {'-'.join(map(str, spec.sizes))} network sees "
        + ("one training example" if spec.x.shape[0] == 1 else f"{spec.x.shape[0]} examples")
        + ":",
        "\\begin{itemize}",
    ]
    for x, y in zip(spec.x, spec.y, strict=True):
        out.append(f"\\item the input $a^{{1}} = {_tvec(x)}$ with the target $y = {_tvec(y)}$")
    out += [
        "\\end{itemize}",
        "It starts from these parameters (row $j$ of $w^l$ holds the weights into unit $j$ "
        "of layer $l$):",
        "\\[",
        "\\begin{aligned}",
    ]
    for l, layer in enumerate(spec.layers, start=2):
        out.append(
            f"w^{{{l}}} &= {_tmat(layer.weights)}, & b^{{{l}}} &= {_tvec(layer.biases)}, & "
            f"&\\text{{{_tex_escape(layer.activation.name)}: }} {layer.activation.formula.tex} \\\\"
        )
    out += [
        "\\end{aligned}",
        "\\]",
        f"The cost is {_tex_escape(spec.loss.name)}, ${spec.loss.formula.tex}$; the learning "
        f"rate is $\\eta = {spec.learning_rate:.12g}$."
        + "".join(" " + c for c in conditions(spec, tex=True)),
        "",
        f"Work {_steps_text(spec)} by hand: the forward pass, the cost, the errors "
        "$\\delta^l$, every gradient and every updated parameter.",
        "",
    ]
    return "\n".join(out + _tex_cells_to_fill(spec, d))


def _tex_cells_to_fill(spec: Any, d: int) -> list[str]:
    """The LaTeX sheet's closing part, dense or layered: how to round, and the cells to fill in
    (a dense quantity's name is words alone, which escaping leaves as they are)."""
    out = [
        f"\\textbf{{Write every number rounded to {d} decimal{'s' if d != 1 else ''}}}, and "
        "work each quantity from your rounded numbers before it. Fill in "
        "\\texttt{answers.yaml}: replace each \\texttt{null} with your number. The cells to "
        "fill in:",
        "\\begin{itemize}",
    ]
    for q, _, texs in cells(Shape.of(spec)):
        what = quantity_name(q, spec, tex=True)
        out.append(
            f"\\item {what} (\\texttt{{{_tex_escape(q)}}}): " + ", ".join(f"${t}$" for t in texs)
        )
    return [*out, "\\end{itemize}", "\\end{document}", ""]


# ---- networks of layer records (gradcalc/layers/: conv, pooling, flatten, dense…) ------------

_INDICES = (
    "Arrays are written as PyTorch holds them, every index from 0: an input (C, H, W) one "
    "matrix per channel (in 1-D, (C, L) one matrix, a row per channel), a sequence (T, input) "
    "a row per step t, kernels (C_out, C_in, kH, kW) one matrix per kernel and input channel "
    "(in 1-D, (C_in, k) one per kernel), a dense layer's w^l with row j holding the weights "
    "into unit j. A cell is named as in `answers.yaml`: z²[c,i,j] is channel c, row i, column "
    "j of layer 2's z."
)


_TOKENS = (
    "The input is token ids, one per position t: the embedding's z[t] is row id_t of its "
    "table E. An attention layer's Q, K, V and H hold a row per position; its S and P are "
    "written [h,i,j]: head h, query position i (the row), key position j (the column)."
)


def _tokens(spec: Any) -> bool:
    return spec.layers[0].kind.name == "embedding"


def _inputs(spec: Any, n: int) -> list[tuple[str, Any]]:
    """Example n's input as labelled arrays: token ids as one vector, an image by channel."""
    if _tokens(spec):
        return [("token ids x", spec.x[n].astype(int))]
    return _slices(spec.x[n], "x")


def _target(spec: Any, n: int) -> tuple[Any, str]:
    """Example n's target, with a row per position when the network answers one per position."""
    m = spec.x.shape[0]
    y = spec.y.reshape(m, *spec.layers[-1].out_shape)[n] if spec.y.size else spec.y
    if y.ndim == 2 and _tokens(spec):
        return y, " (a row per position)"
    return spec.y.reshape(m, -1)[n], ""


def _slices(values: Any, name: str) -> list[tuple[str, Any]]:
    """An array as its matrices (or vectors): (label, 2-D or 1-D array) in row-major order."""
    import numpy as np

    if values.ndim <= 2:
        return [(name, values)]
    return [
        (f"{name}[{','.join(map(str, index))}]", values[index])
        for index in np.ndindex(*values.shape[:-2])
    ]


def _md_array(values: Any) -> str:
    return _mat(values) if values.ndim == 2 else _vec(values)


def _tex_array(values: Any) -> str:
    return _tmat(values) if values.ndim == 2 else _tvec(values)


def _settings(layer: Any) -> list[str]:
    """What a layer is besides its parameters: its block's lines in the diagram (stride,
    padding, window, ties, the shape change)."""
    from gradcalc.step.diagram import block_lines

    lines = ["".join(t for t, _ in ln) for ln in block_lines(layer)]
    out = [ln for ln in lines[1:] if not ln.startswith("activation ")]
    if layer.kind.unrolled is not None:
        out = []  # a recurrent layer's block lines say in words what its settings below say
    if layer.kind.block is None or layer.kind.unrolled is not None:
        # Its block draws no settings (batch norm, dropout), or is drawn unrolled (a recurrent
        # layer): the config's own (eps, momentum, mode, p, return, truncate…) and the state it
        # starts from.
        out += [
            f"{key} {_setting(value)}"
            for key, value in layer.options.items()
            if (key in layer.kind.keys or key == "activation") and value is not None
        ]
        out += [f"{key} {_md_array(value)}" for key, value in layer.state.items()]
    return out


def _setting(value: Any) -> str:
    import numpy as np

    if isinstance(value, np.ndarray):
        return _md_array(value)
    if isinstance(value, (list, tuple)):
        return _vec(value)
    if isinstance(value, float):
        return f"{value:.12g}"
    return str(value)


def quantity_name(q: str, spec: Any, tex: bool = False) -> str:
    """What a cell's quantity is, for the sheet's list: the dense ones by name, a layer's own
    (μ, ∂C/∂h from t+1) and its parameters' (∂C/∂W_ih, W_ih new) by their symbols; in TeX
    (the words escaped, the symbol in math) for the LaTeX sheet."""
    words, sym = _quantity_name(q, spec)
    if not tex:
        return words + sym
    return _tex_escape(words) + (f"${tex_of(sym)}$" if sym else "")


def _quantity_name(q: str, spec: Any) -> tuple[str, str]:
    if q in QUANTITY_NAMES:
        return QUANTITY_NAMES[q][0], ""
    for layer in getattr(spec, "layers", ()):
        kind = getattr(layer, "kind", None)
        if kind is None:
            continue
        for quantity in kind.quantities:
            if quantity.name == q:
                return "", f"{quantity.symbol}{quantity.suffix}"
        for name in layer.params:
            if q == f"grad_{name}":
                return "the gradients ", f"∂C/∂{_symbol(layer, name)}"
            if q == name:
                return "the updated ", _symbol(layer, name)
    return q, ""


def _symbol(layer: Any, name: str) -> str:
    return layer.kind.symbols.get(name, name)


def _task(spec: Any) -> str:
    return (
        f"Work {_steps_text(spec)} by hand: the forward pass, the cost, the errors δ^l, the "
        "gradient of every parameter and of each layer's input (∂C/∂x^l), and every updated "
        "parameter."
    )


def _layered_markdown(course: Course, problem: Problem) -> str:
    spec: Any = problem.spec
    d = course.decimals
    title = course.template.title or "Backpropagation by hand"
    kinds = " → ".join(layer.kind.name for layer in spec.layers)
    m = spec.x.shape[0]
    lines = [
        f"# {title}: variant {problem.id}",
        "",
        f"A network of {kinds} layers sees "
        f"{'one training example' if m == 1 else f'{m} examples'}. {_INDICES}",
        "",
    ]
    if _tokens(spec):
        lines += [_TOKENS, ""]
    for n in range(m):
        target, label = _target(spec, n)
        lines.append(f"Example {n + 1}: the target y = {_md_array(target)}{label}; the input")
        lines.append("")
        lines += [f"- {label}: {_md_array(v)}" for label, v in _inputs(spec, n)]
        lines.append("")
    lines += [
        "It starts from these parameters:",
        "",
        "| layer l | type | parameters | settings | activation |",
        "|---|---|---|---|---|",
    ]
    for layer in spec.layers:
        params = "; ".join(
            f"{label} = {_md_array(v)}"
            for name, value in layer.params.items()
            for label, v in _slices(
                value, f"{_symbol(layer, name)}{superscript(str(layer.number))}"
            )
        )
        act = layer.activation
        shown = "—" if getattr(act, "bare", False) else f"{act.name} ({act.formula.text})"
        lines.append(
            f"| {layer.number} | {layer.kind.name} | {params or '—'} | "
            f"{', '.join(_settings(layer))} | {shown} |"
        )
    lines += [
        "",
        f"The cost is {spec.loss.name}, {spec.loss.formula.text}; the learning rate is "
        f"η = {spec.learning_rate:.12g}." + "".join(" " + c for c in conditions(spec)),
        "",
        _task(spec),
        "",
    ]
    return "\n".join(lines + _cells_to_fill(spec, d))


def _tex_text(text: str) -> str:
    """A line of the diagram's block (1×4×4 → 1×3×3, window 2×2) for a LaTeX paragraph."""
    return _tex_escape(text).replace("×", "$\\times$").replace("→", "$\\to$")


def _layered_latex(course: Course, problem: Problem) -> str:
    spec: Any = problem.spec
    d = course.decimals
    title = _tex_escape(course.template.title or "Backpropagation by hand")
    pid = _tex_escape(problem.id)
    from gradcalc.doc.latex import PREAMBLE

    kinds = " $\\to$ ".join(_tex_escape(layer.kind.name) for layer in spec.layers)
    m = spec.x.shape[0]
    out = [
        *PREAMBLE.rstrip("\n").split("\n"),
        f"\\section*{{{title}: variant {pid}}}",
        f"A network of {kinds} layers sees "
        + ("one training example" if m == 1 else f"{m} examples")
        + ". "
        + _tex_escape(_INDICES.replace("`", "")).replace("²", "$^2$").replace("w\\^{}l", "$w^l$"),
        "\\begin{itemize}",
    ]
    if _tokens(spec):
        out.insert(-1, _tex_escape(_TOKENS))
    for n in range(m):
        arrays = ", ".join(
            f"{_tex_escape(label.rsplit(' ', 1)[0]) + ' ' if ' ' in label else ''}"
            f"${label.rsplit(' ', 1)[-1]} = {_tex_array(v)}$"
            for label, v in _inputs(spec, n)
        )
        target, label = _target(spec, n)
        out.append(
            f"\\item example {n + 1}: the target $y = {_tex_array(target)}${label}, "
            f"the input {arrays}"
        )
    out += ["\\end{itemize}", "It starts from these parameters:", "\\begin{itemize}"]
    for layer in spec.layers:
        params = ", ".join(
            f"${label} = {_tex_array(v)}$"
            for name, value in layer.params.items()
            for label, v in _slices(value, f"{tex_of(_symbol(layer, name))}^{{{layer.number}}}")
        )
        act = layer.activation
        shown = (
            "" if getattr(act, "bare", False) else f"; {_tex_escape(act.name)}: ${act.formula.tex}$"
        )
        settings = "; ".join(_tex_text(t) for t in _settings(layer))
        out.append(
            f"\\item layer {layer.number}, {_tex_escape(layer.kind.name)} ({settings})"
            + (f": {params}" if params else "")
            + shown
        )
    out += [
        "\\end{itemize}",
        f"The cost is {_tex_escape(spec.loss.name)}, ${spec.loss.formula.tex}$; the learning "
        f"rate is $\\eta = {spec.learning_rate:.12g}$."
        + "".join(" " + c for c in conditions(spec, tex=True)),
        "",
        f"Work {_steps_text(spec)} by hand: the forward pass, the cost, the errors "
        "$\\delta^l$, the gradient of every parameter and of each layer's input "
        "($\\partial C/\\partial x^l$), and every updated parameter.",
        "",
    ]
    return "\n".join(out + _tex_cells_to_fill(spec, d))
