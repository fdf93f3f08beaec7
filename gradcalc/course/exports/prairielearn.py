"""PrairieLearn: one v3 question directory holding every variant.

Reference: PrairieLearn's question documentation, https://prairielearn.readthedocs.io (the
question directory, info.json's `uuid`, `title`, `topic`, `tags` and `type: "v3"`, the
`pl-number-input` element, and server.py's `generate(data)` / `grade(data)` with
`data["variant_seed"]`, `params`, `correct_answers`, `submitted_answers`, `partial_scores` and
`score`).

server.py is self-contained (only the standard library): it embeds each variant's network, its
exact answers and tolerances, and works the carried values of a dense network's step itself, so
`grade(data)` gives error-carried-forward credit as `gradcalc check` does: a cell earns its point
when it is the exact value (within its tolerance), or when it is what the student's own earlier
answers lead to (within 10⁻ᵈ, one rounding of the last figure). It covers one SGD step of one
example with the quadratic cost and the sigmoid, tanh, relu or identity activations; the export
refuses other variants (a network of layer records, conv or pooling, among them: export those as
gradescope, moodle-xml or canvas-qti).
"""

from __future__ import annotations

import html
import json
import re
import uuid
from pathlib import Path
from typing import Any

from gradcalc.course.answers import answer_cells
from gradcalc.course.variants import Course, Problem
from gradcalc.errors import GradcalcError

ACTIVATIONS = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu", "identity": "identity"}
ACTIVATIONS["linear"] = "identity"

SERVER = '''"""A gradcalc course question: one variant per student, chosen by PrairieLearn's
variant seed; grade() gives error-carried-forward partial credit by the rules of `gradcalc check`.
Written by `gradcalc generate --format prairielearn`; needs only the standard library."""

import json
import math

VARIANTS = json.loads(_DATA)


def _f(name, z):
    if name == "sigmoid":
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    if name == "tanh":
        return math.tanh(z)
    if name == "relu":
        return max(z, 0.0)
    return z


def _f_prime(name, z):
    if name == "sigmoid":
        s = _f(name, z)
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 - math.tanh(z) ** 2
    if name == "relu":
        return 1.0 if z > 0 else 0.0
    return 1.0


def generate(data):
    index = data["variant_seed"] % len(VARIANTS)
    variant = VARIANTS[index]
    data["params"]["variant"] = index
    data["params"]["id"] = variant["id"]
    data["params"]["problem"] = variant["problem"]
    for cell in variant["cells"]:
        data["correct_answers"][cell["name"]] = cell["value"]


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def carried(variant, submitted):
    """Each cell's value worked from the student's own earlier answers (the exact value stands
    in for one not answered)."""
    exact = {cell["name"]: cell["value"] for cell in variant["cells"]}

    def got(name):
        value = _number(submitted.get(name))
        return exact[name] if value is None else value

    layers, x, y, eta = variant["layers"], variant["x"], variant["y"], variant["eta"]
    L = len(layers) + 1
    out = {}
    a_prev = x
    for l, layer in enumerate(layers, start=2):
        for j, row in enumerate(layer["w"], start=1):
            out[f"z_{l}_{j}"] = sum(w * a for w, a in zip(row, a_prev)) + layer["b"][j - 1]
            out[f"a_{l}_{j}"] = _f(layer["f"], got(f"z_{l}_{j}"))
        a_prev = [got(f"a_{l}_{j}") for j in range(1, len(layer["b"]) + 1)]
    out["loss"] = 0.5 * sum((yj - aj) ** 2 for yj, aj in zip(y, a_prev))
    delta_next = None
    for l in range(L, 1, -1):
        layer = layers[l - 2]
        n = len(layer["b"])
        for j in range(1, n + 1):
            if l == L:
                g = got(f"a_{l}_{j}") - y[j - 1]
            else:
                above = layers[l - 1]["w"]
                g = sum(above[k][j - 1] * delta_next[k] for k in range(len(above)))
            out[f"delta_{l}_{j}"] = g * _f_prime(layer["f"], got(f"z_{l}_{j}"))
        delta = [got(f"delta_{l}_{j}") for j in range(1, n + 1)]
        a_in = x if l == 2 else [got(f"a_{l - 1}_{k}") for k in range(1, len(layer["w"][0]) + 1)]
        for j in range(1, n + 1):
            for k in range(1, len(a_in) + 1):
                out[f"gw_{l}_{j}_{k}"] = a_in[k - 1] * delta[j - 1]
                out[f"w_{l}_{j}_{k}"] = layer["w"][j - 1][k - 1] - eta * got(f"gw_{l}_{j}_{k}")
            out[f"gb_{l}_{j}"] = delta[j - 1]
            out[f"b_{l}_{j}"] = layer["b"][j - 1] - eta * got(f"gb_{l}_{j}")
        delta_next = delta
    return out


def grade(data):
    variant = VARIANTS[data["params"]["variant"]]
    submitted = data.get("submitted_answers", {})
    carry = carried(variant, submitted)
    step = 10.0 ** -variant["decimals"]
    total = 0.0
    for cell in variant["cells"]:
        name = cell["name"]
        answer = _number(submitted.get(name))
        if answer is None:
            score, feedback = 0.0, "not answered"
        elif abs(answer - cell["value"]) <= cell["tol"]:
            score, feedback = 1.0, "correct"
        elif abs(answer - carry[name]) <= step + 1e-9 * abs(carry[name]):
            score, feedback = 1.0, "right given your earlier answers (error carried forward)"
        else:
            score, feedback = 0.0, "wrong"
        data["partial_scores"][name] = {"score": score, "weight": 1, "feedback": feedback}
        total += score
    data["score"] = total / len(variant["cells"])
'''


def _check(problem: Problem) -> None:
    if problem.layered:
        layers: Any = problem.spec.layers
        kinds = sorted({layer.kind.name for layer in layers} - {"dense"})
        raise GradcalcError(
            f"--format prairielearn: variant {problem.id} has {', '.join(kinds)} layers, and "
            "server.py works a dense step itself; export it as gradescope (which runs gradcalc "
            "check), moodle-xml or canvas-qti"
        )
    spec: Any = problem.spec
    problems = []
    if spec.x.shape[0] != 1 or spec.batch:
        problems.append("one example")
    if spec.steps != 1:
        problems.append("one step")
    if spec.loss.name != "quadratic":
        problems.append("the quadratic cost")
    if spec.optimizer.name != "sgd" or spec.weight_decay:
        problems.append("plain SGD")
    for layer in spec.layers:
        if layer.activation.name not in ACTIVATIONS:
            problems.append("sigmoid, tanh, relu or identity units")
            break
    if problems:
        raise GradcalcError(
            f"--format prairielearn: variant {problem.id} needs {', '.join(problems)} (the "
            "server.py works a dense step of those itself)"
        )


def _vec(values: Any) -> str:
    return "(" + ", ".join(f"{v:.12g}" for v in values) + ")"


def _matrix(rows: Any) -> str:
    return "[" + ", ".join("[" + ", ".join(f"{v:.12g}" for v in row) + "]" for row in rows) + "]"


def problem_html(course: Course, problem: Problem) -> str:
    if problem.layered:
        return _layered_html(course, problem)
    spec: Any = problem.spec
    d = course.decimals
    rows = "".join(
        f"<tr><td>{l}</td><td>{html.escape(_matrix(layer.weights))}</td>"
        f"<td>{_vec(layer.biases)}</td><td>{html.escape(layer.activation.name)}</td></tr>"
        for l, layer in enumerate(spec.layers, start=2)
    )
    return (
        f"<p>A {'-'.join(map(str, spec.sizes))} network sees the input "
        f"$a^1 = {_vec(spec.x[0])}$ with the target $y = {_vec(spec.y[0])}$. Its parameters "
        "(row $j$ of $w^l$ holds the weights into unit $j$ of layer $l$):</p>"
        '<table class="table table-sm"><tr><th>$l$</th><th>$w^l$</th><th>$b^l$</th>'
        f"<th>activation</th></tr>{rows}</table>"
        f"<p>The cost is ${spec.loss.formula.tex}$ and the learning rate "
        f"$\\eta = {spec.learning_rate:.12g}$. Work one step of gradient descent by hand, writing "
        f"every number rounded to {d} decimals and working each from your rounded numbers.</p>"
    )


def _array_html(values: Any) -> str:
    return html.escape(_matrix(values) if values.ndim == 2 else _vec(values))


def _activation_html(layer: Any) -> str:
    # A layer with no activation of its own (batch norm, a recurrent layer: its tanh is among
    # its settings) shows none rather than "identity".
    return "—" if getattr(layer.activation, "bare", False) else html.escape(layer.activation.name)


def _layered_html(course: Course, problem: Problem) -> str:
    """The problem of a network of layer records (conv, pooling, flatten, dense), as its sheet
    states it: the input's matrices, each layer's parameters and settings, indices from 0."""
    from gradcalc.course.sheet import (
        _TOKENS,
        _inputs,
        _settings,
        _slices,
        _symbol,
        _target,
        _tokens,
    )

    spec: Any = problem.spec
    d = course.decimals
    m = spec.x.shape[0]
    inputs = "".join(
        f"<li>example {n + 1}: target $y = {_array_html(_target(spec, n)[0])}$"
        f"{html.escape(_target(spec, n)[1])}; "
        + ", ".join(f"{html.escape(lb)} = {_array_html(v)}" for lb, v in _inputs(spec, n))
        + "</li>"
        for n in range(m)
    )
    if _tokens(spec):
        inputs += f"</ul><p>{html.escape(_TOKENS)}</p><ul>"
    rows = "".join(
        f"<tr><td>{layer.number}</td><td>{html.escape(layer.kind.name)}</td><td>"
        + "; ".join(
            f"{html.escape(lb)} = {_array_html(v)}"
            for name, value in layer.params.items()
            for lb, v in _slices(value, f"{_symbol(layer, name)}{layer.number}")
        )
        + f"</td><td>{html.escape(', '.join(_settings(layer)))}</td>"
        f"<td>{_activation_html(layer)}</td></tr>"
        for layer in spec.layers
    )
    return (
        "<p>A network of layer records sees these inputs (arrays as PyTorch holds them, every "
        f"index from 0: x[c] is channel c, Kl[o,c] kernel o on input channel c):</p><ul>{inputs}"
        '</ul><table class="table table-sm"><tr><th>$l$</th><th>type</th><th>parameters</th>'
        f"<th>settings</th><th>activation</th></tr>{rows}</table>"
        f"<p>The cost is ${spec.loss.formula.tex}$ and the learning rate "
        f"$\\eta = {spec.learning_rate:.12g}$. Work one step of gradient descent by hand, writing "
        f"every number rounded to {d} decimals and working each from your rounded numbers.</p>"
    )


def _variant(course: Course, problem: Problem) -> dict[str, Any]:
    spec: Any = problem.spec
    return {
        "id": problem.id,
        "seed": problem.seed,
        "x": [float(v) for v in spec.x[0]],
        "y": [float(v) for v in spec.y[0]],
        "eta": spec.learning_rate,
        "decimals": course.decimals,
        "layers": [
            {
                "w": layer.weights.tolist(),
                "b": layer.biases.tolist(),
                "f": ACTIVATIONS[layer.activation.name],
            }
            for layer in spec.layers
        ],
        "cells": [
            {"name": c.name, "value": c.value, "tol": c.tolerance}
            for c in answer_cells(problem, course.decimals)
        ],
        "problem": problem_html(course, problem),
    }


def question_id(course: Course) -> str:
    stem = Path(course.template.name).name.removesuffix(".yaml").removesuffix(".template")
    return "gradcalc-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-") or "course")


def check(course: Course) -> None:
    """Refuse, before anything is written, variants server.py cannot grade."""
    for problem in course.problems:
        _check(problem)
    sizes = {tuple(p.spec.sizes) for p in course.problems}  # (dense networks, from here)
    if len(sizes) > 1:
        raise GradcalcError(
            "--format prairielearn: the variants have different layer sizes; one question.html "
            "needs one shape"
        )


def write(course: Course, out: Path) -> list[Path]:
    check(course)
    qid = question_id(course)
    folder = out / "prairielearn" / qid
    folder.mkdir(parents=True, exist_ok=True)
    title = course.template.title or "Backpropagation by hand"
    info = {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"gradcalc:{qid}:{course.seed}")),
        "title": title,
        "topic": "Backpropagation",
        "tags": ["gradcalc", "backpropagation", f"seed-{course.seed}"],
        "type": "v3",
    }
    first = course.problems[0]
    cells = answer_cells(first, course.decimals)
    atol = f"{10.0**-course.decimals:g}"
    inputs = "\n".join(
        f'<pl-number-input answers-name="{c.name}" label="${c.tex} =$" comparison="relabs" '
        f'rtol="0" atol="{atol}"></pl-number-input>'
        for c in cells
    )
    question = "<pl-question-panel>\n{{{params.problem}}}\n</pl-question-panel>\n\n" + inputs + "\n"
    data = json.dumps([_variant(course, p) for p in course.problems], separators=(",", ":"))
    server = SERVER.replace("json.loads(_DATA)", f"json.loads({json.dumps(data)})")
    files = {
        "info.json": json.dumps(info, indent=2) + "\n",
        "question.html": question,
        "server.py": server,
    }
    written = []
    for name, text in files.items():
        path = folder / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written
