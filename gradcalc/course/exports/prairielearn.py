"""PrairieLearn: one v3 question directory holding every variant.

Reference: PrairieLearn's question documentation, https://prairielearn.readthedocs.io (the
question directory, info.json's `uuid`, `title`, `topic`, `tags` and `type: "v3"`, the
`pl-number-input` element, and server.py's `generate(data)` / `grade(data)` with
`data["variant_seed"]`, `params`, `correct_answers`, `submitted_answers`, `partial_scores` and
`score`). Its server.py page (/en/latest/question/server/) names numpy among what server.py
uses (`np.random` is seeded with the variant seed): numpy is in PrairieLearn's Python image.

server.py grades with gradcalc itself, so there is one engine: it carries a zip of the part of
the installed package that grades (exports/bundle.py: check, layers, step, functions and the
notation they use, as source), imported from memory (nothing is written to disk), and each
variant's config (as `from_dict` takes it) and cells. `grade(data)` fills the variant's sheet
with the submitted numbers and grades it as `gradcalc check --class` grades a returned sheet
(exports/plgrade.py): the course's decimals, error-carried-forward credit, the named mistakes.
It needs the standard library and numpy only. Every variant of every layer type is exported;
the one refusal is of variants whose cells differ (question.html holds one set of inputs).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import uuid
from pathlib import Path
from typing import Any

from gradcalc.course.answers import AnswerCell, answer_cells
from gradcalc.course.variants import Course, Problem

SERVER = '''"""A gradcalc course question: one variant per student, chosen by PrairieLearn's
variant seed; grade() gives error-carried-forward partial credit by `gradcalc check`'s own grader.

Written by `gradcalc generate --format prairielearn` (gradcalc @VERSION@). It needs the standard
library and numpy: gradcalc's grading modules travel in _BUNDLE (a zip, as source), imported
from memory."""

import base64
import importlib.abc
import importlib.util
import io
import json
import sys
import zipfile

VARIANTS = json.loads(_DATA)
_KEY = "@KEY@"  # the bundle's hash: two exports of different gradcalc versions do not mix
_BUNDLE = """
@BUNDLE@"""


class _Bundle(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds gradcalc's modules in the zip, and only there."""

    def __init__(self, data):
        self.zip = zipfile.ZipFile(io.BytesIO(data))
        self.names = set(self.zip.namelist())
        self.gradcalc_bundle = _KEY

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] != "gradcalc":
            return None
        stem = name.replace(".", "/")
        for file, package in ((stem + "/__init__.py", True), (stem + ".py", False)):
            if file in self.names:
                origin = "<gradcalc bundle>/" + file
                make = importlib.util.spec_from_loader
                return make(name, self, origin=origin, is_package=package)
        return None

    def create_module(self, spec):
        return None

    def get_source(self, name):  # for tracebacks (linecache)
        spec = self.find_spec(name)
        return None if spec is None else self.zip.read(spec.origin.partition("/")[2]).decode()

    def exec_module(self, module):
        origin = module.__spec__.origin
        code = compile(self.zip.read(origin.partition("/")[2]), origin, "exec", dont_inherit=True)
        exec(code, module.__dict__)


def _install():
    """Put the bundle first on sys.meta_path, once per process; a gradcalc loaded from anywhere
    else (another export's bundle, an installed one) is unloaded first."""
    if any(getattr(f, "gradcalc_bundle", None) == _KEY for f in sys.meta_path):
        return
    for name in [m for m in sys.modules if m == "gradcalc" or m.startswith("gradcalc.")]:
        del sys.modules[name]
    sys.meta_path[:] = [f for f in sys.meta_path if not hasattr(f, "gradcalc_bundle")]
    sys.meta_path.insert(0, _Bundle(base64.b64decode(_BUNDLE)))


def generate(data):
    index = data["variant_seed"] % len(VARIANTS)
    variant = VARIANTS[index]
    data["params"]["variant"] = index
    data["params"]["id"] = variant["id"]
    data["params"]["problem"] = variant["problem"]
    data["params"]["cells"] = {cell["name"]: True for cell in variant["cells"]}
    for cell in variant["cells"]:
        data["correct_answers"][cell["name"]] = cell["value"]


def grade(data):
    _install()
    from gradcalc.course.exports.plgrade import grade as grade_variant

    variant = VARIANTS[data["params"]["variant"]]
    partial, score = grade_variant(variant, data.get("submitted_answers") or {})
    data["partial_scores"].update(partial)
    data["score"] = score
'''


def cell_sets(course: Course) -> list[list[AnswerCell]]:
    """Every variant's cells, in the order of a hand solution."""
    return [answer_cells(p, course.decimals) for p in course.problems]


def union(sets: list[list[AnswerCell]]) -> list[AnswerCell]:
    """Every cell any variant asks for, once, in the order of a hand solution: a cell only some
    variants have (a 3×3 feature map where others have 2×2) goes after the cell before it in
    its own variant."""
    out: list[AnswerCell] = []
    names: list[str] = []  # out's names, in its order
    for cells in sets:
        at = 0
        for cell in cells:
            if cell.name in names:
                at = names.index(cell.name) + 1
                continue
            out.insert(at, cell)
            names.insert(at, cell.name)
            at += 1
    return out


def _vec(values: Any) -> str:
    return "(" + ", ".join(f"{v:.12g}" for v in values) + ")"


def _matrix(rows: Any) -> str:
    return "[" + ", ".join("[" + ", ".join(f"{v:.12g}" for v in row) + "]" for row in rows) + "]"


def problem_html(course: Course, problem: Problem) -> str:
    if problem.layered:
        return _layered_html(course, problem)
    from gradcalc.course.sheet import _steps_text

    spec: Any = problem.spec
    d = course.decimals
    rows = "".join(
        f"<tr><td>{l}</td><td>{html.escape(_matrix(layer.weights))}</td>"
        f"<td>{_vec(layer.biases)}</td><td>{html.escape(layer.activation.name)}</td></tr>"
        for l, layer in enumerate(spec.layers, start=2)
    )
    examples = [
        f"the input $a^1 = {_vec(x)}$ with the target $y = {_vec(y)}$"
        for x, y in zip(spec.x, spec.y, strict=True)
    ]
    sees = (
        f"sees {examples[0]}."
        if len(examples) == 1
        else f"sees {len(examples)} examples:</p><ul>"
        + "".join(f"<li>{e}</li>" for e in examples)
        + "</ul><p>"
    )
    return (
        f"<p>A {'-'.join(map(str, spec.sizes))} network {sees} Its parameters "
        "(row $j$ of $w^l$ holds the weights into unit $j$ of layer $l$):</p>"
        '<table class="table table-sm"><tr><th>$l$</th><th>$w^l$</th><th>$b^l$</th>'
        f"<th>activation</th></tr>{rows}</table>"
        f"<p>The cost is ${spec.loss.formula.tex}$ and the learning rate "
        f"$\\eta = {spec.learning_rate:.12g}$.{_conditions(spec)} Work "
        f"{html.escape(_steps_text(spec))} by hand, "
        f"writing every number rounded to {d} decimals and working each from your rounded "
        "numbers.</p>"
    )


def _array_html(values: Any) -> str:
    return html.escape(_matrix(values) if values.ndim == 2 else _vec(values))


def _activation_html(layer: Any) -> str:
    # A layer with no activation of its own (batch norm, a recurrent layer: its tanh is among
    # its settings) shows none rather than "identity".
    return "—" if getattr(layer.activation, "bare", False) else html.escape(layer.activation.name)


def _conditions(spec: Any) -> str:
    """The settings besides the cost and η (the update rule, a batch's reduction, weight
    decay, parameters), as the problem sheet states them."""
    from gradcalc.course.sheet import conditions

    return "".join(" " + c for c in conditions(spec, html=True))


def _layered_html(course: Course, problem: Problem) -> str:
    """The problem of a network of layer records (conv, pooling, flatten, dense), as its sheet
    states it: the input's matrices, each layer's parameters and settings, indices from 0."""
    from gradcalc.course.sheet import (
        _TOKENS,
        _inputs,
        _settings,
        _slices,
        _steps_text,
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
        f"$\\eta = {spec.learning_rate:.12g}$.{_conditions(spec)} Work "
        f"{html.escape(_steps_text(spec))} by hand, writing every number rounded to {d} decimals "
        "and working each from your rounded numbers.</p>"
    )


def _variant(course: Course, problem: Problem, cells: list[AnswerCell]) -> dict[str, Any]:
    """What server.py holds of a variant: its config (as from_dict takes it) and its cells,
    for grade(); the problem as HTML and the exact values, for generate()."""
    return {
        "id": problem.id,
        "seed": problem.seed,
        "decimals": course.decimals,
        "config": problem.config,
        "cells": [
            {
                "name": c.name,
                "step": c.step,
                "quantity": c.key[0],
                "layer": c.key[1],
                "index": list(c.index),
                "value": c.value,
            }
            for c in cells
        ],
        "problem": problem_html(course, problem),
    }


def question_id(course: Course) -> str:
    stem = Path(course.template.name).name.removesuffix(".yaml").removesuffix(".template")
    return "gradcalc-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-") or "course")


def server_py(variants: list[dict[str, Any]]) -> str:
    from gradcalc import __version__
    from gradcalc.course.exports.bundle import package_zip

    bundle = package_zip()
    data = json.dumps(variants, separators=(",", ":"), ensure_ascii=False)
    return (
        SERVER.replace("@VERSION@", __version__)
        .replace("@KEY@", hashlib.sha256(bundle).hexdigest()[:16])
        .replace("@BUNDLE@", base64.encodebytes(bundle).decode("ascii"))
        .replace("json.loads(_DATA)", f"json.loads({json.dumps(data, ensure_ascii=False)})")
    )


def write(course: Course, out: Path) -> list[Path]:
    sets = cell_sets(course)
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
    atol = f"{10.0**-course.decimals:g}"
    # Variants whose cells differ (other layer sizes, a stride of 1 or 2) share one
    # question.html: a cell not every variant has is a Mustache section that generate() opens
    # for the variants that have it (PrairieLearn renders question.html with Mustache first).
    everywhere = set.intersection(*({c.name for c in cells} for cells in sets))

    def number_input(c: AnswerCell) -> str:
        element = (
            f'<pl-number-input answers-name="{c.name}" label="${c.tex} =$" comparison="relabs" '
            f'rtol="0" atol="{atol}"></pl-number-input>'
        )
        if c.name in everywhere:
            return element
        return f"{{{{#params.cells.{c.name}}}}}{element}{{{{/params.cells.{c.name}}}}}"

    inputs = "\n".join(number_input(c) for c in union(sets))
    question = "<pl-question-panel>\n{{{params.problem}}}\n</pl-question-panel>\n\n" + inputs + "\n"
    variants = [_variant(course, p, cells) for p, cells in zip(course.problems, sets, strict=True)]
    files = {
        "info.json": json.dumps(info, indent=2) + "\n",
        "question.html": question,
        "server.py": server_py(variants),
    }
    written = []
    for name, text in files.items():
        path = folder / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written
