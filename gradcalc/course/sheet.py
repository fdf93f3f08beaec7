"""The problem sheet of a variant, in Markdown and in LaTeX: the network, the example, the task,
and exactly which cells to fill in and to how many decimals."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from gradcalc.check.cells import Shape, indices, symbol

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


def describe(spec) -> str:
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
    for key in shape.step_keys():
        q, l = key
        unicode_names, tex_names = out.setdefault(q, ([], []))
        for _, index in indices(key, shape):
            unicode_names.append(symbol(key, index, shape))
            tex_names.append(tex(q, l, index))
    return [(q, names, texs) for q, (names, texs) in out.items()]


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
    return f"\\text{{{q}}}^{{{l}}}_{{{index[-1]}}}"


def _vec(values: Iterable[float]) -> str:
    return "(" + ", ".join(f"{v:.12g}" for v in values) + ")"


def _mat(rows) -> str:
    return "[" + ", ".join(_vec(r)[1:-1].join("[]") for r in rows) + "]"


def _steps_text(spec) -> str:
    n = spec.steps
    rule = "gradient descent" if spec.optimizer.name == "sgd" else f"{spec.optimizer.name}"
    return f"one step of {rule}" if n == 1 else f"{n} steps of {rule}"


def markdown(course: Course, problem: Problem) -> str:
    spec, d = problem.spec, course.decimals
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
        f"η = {spec.learning_rate:.12g}.",
        "",
        f"Work {_steps_text(spec)} by hand: the forward pass, the cost, the errors δ^l, every "
        "gradient and every updated parameter.",
        "",
        f"**Write every number rounded to {d} decimal{'s' if d != 1 else ''}**, and work each "
        "quantity from your rounded numbers before it. Fill in `answers.yaml`: replace each "
        "`null` with your number. The cells to fill in:",
        "",
        "| quantity | cells |",
        "|---|---|",
    ]
    for q, names, _ in cells(Shape.of(spec)):
        what, _sym = QUANTITY_NAMES.get(q, (q, q))
        lines.append(f"| {what} (`{q}`) | {', '.join(names)} |")
    total = sum(len(names) for _, names, _ in cells(Shape.of(spec)))
    steps = spec.steps
    lines += [
        "",
        f"{total} cells{' per step' if steps != 1 else ''}"
        + (f", for each of the {steps} steps" if steps != 1 else "")
        + ".",
        "",
    ]
    return "\n".join(lines)


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
    spec, d = problem.spec, course.decimals
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
        f"rate is $\\eta = {spec.learning_rate:.12g}$.",
        "",
        f"Work {_steps_text(spec)} by hand: the forward pass, the cost, the errors "
        "$\\delta^l$, every gradient and every updated parameter.",
        "",
        f"\\textbf{{Write every number rounded to {d} decimal{'s' if d != 1 else ''}}}, and "
        "work each quantity from your rounded numbers before it. Fill in "
        "\\texttt{answers.yaml}: replace each \\texttt{null} with your number. The cells to "
        "fill in:",
        "\\begin{itemize}",
    ]
    for q, _, texs in cells(Shape.of(spec)):
        what, _sym = QUANTITY_NAMES.get(q, (q, q))
        out.append(
            f"\\item {what} (\\texttt{{{_tex_escape(q)}}}): " + ", ".join(f"${t}$" for t in texs)
        )
    out += ["\\end{itemize}", "\\end{document}", ""]
    return "\n".join(out)
