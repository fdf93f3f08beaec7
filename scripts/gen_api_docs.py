"""Write docs/api.md, the Python API reference, from the docstrings of the names gradcalc exports.

    python scripts/gen_api_docs.py           # rewrite docs/api.md
    python scripts/gen_api_docs.py --check   # exit 1 if docs/api.md is not what it would write

Every name of `gradcalc.__all__` gets a section: a function its signature and docstring; a class
its docstring, its fields (with the comment the source gives each) and its public properties and
methods. tests/test_api.py runs the check, so the page cannot drift from the code.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gradcalc  # noqa: E402

TARGET = ROOT / "docs" / "api.md"

# The page's sections, in reading order; every name of __all__ is in exactly one.
SECTIONS: dict[str, tuple[str, ...]] = {
    "Functions": ("load", "from_yaml", "from_dict", "run", "derive", "check"),
    "A network": ("NetworkSpec", "LayerSpec"),
    "A run (`run`)": ("RunTrace", "StepTrace", "LayerTrace", "ForwardTrace", "LayerState"),
    "A derivation (`derive`)": ("DeriveTrace", "PointTrace", "Agreement"),
    "A grading (`check`)": ("Grade", "CellGrade", "Verdict"),
    "Errors": ("GradcalcError", "ConfigError", "NumericError"),
    "Version": ("__version__",),
}

INTRO = """\
# The Python API

<!-- Written by scripts/gen_api_docs.py from the docstrings; do not edit by hand.
     tests/test_api.py fails when this page is not what the script writes. -->

`import gradcalc` gives the command line's engine without the printing: build a network from a
file, a YAML string or a dict, run it, work a derivative, grade answers, and get the same data and
the same text the commands write. Every name below is in `gradcalc.__all__`; the package ships
`py.typed`, and a script that uses only these names passes `mypy --strict`. The functions and
types are loaded on first use, so `import gradcalc` does not import numpy, PyYAML or rich.

In IPython and Jupyter, a `RunTrace` (and a layered run), a `DeriveTrace` and a `Grade` display
themselves: as the command's tables in a terminal (they follow rich's console protocol, so
`rich.print(trace)` works too) and, in a notebook, as the command's `--format html` page (the
network and the curves drawn, the mathematics as MathML, the graded cells), its stylesheet
scoped to its own cell and with no script; front ends that show no HTML get Markdown.

```python
import gradcalc

net = gradcalc.load("configs/worked-example.yaml")
trace = gradcalc.run(net, steps=2, optimizer="momentum")
print(trace.final.loss)              # a float
print(trace.explain())               # the worked solution of `gradcalc step --explain`
d = gradcalc.derive("sigmoid", at=0.3)
print(2.0 * d.derivative)            # a float: .derivatives holds one per point
grade = gradcalc.check(net, "configs/answers/worked-example.yaml", steps=1, decimals=3)
print(grade.score, grade.max_score, [c.verdict for c in grade.cells if c.verdict == "wrong"])
```
"""


def _doc(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    name = getattr(obj, "__name__", "")
    if dataclasses.is_dataclass(obj) and doc.startswith(f"{name}("):
        return ""  # the signature dataclasses write when a class has no docstring
    return doc


def _params(fn: Any, skip_self: bool = False) -> tuple[list[str], str]:
    """The parameters as written in the source (annotations unquoted) and the return type."""
    sig = inspect.signature(fn)
    out: list[str] = []
    star = False
    for p in sig.parameters.values():
        if skip_self and p.name == "self":
            continue
        if p.kind is p.KEYWORD_ONLY and not star:
            out.append("*")
            star = True
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        star = star or p.kind is p.VAR_POSITIONAL
        if p.annotation is not p.empty:
            text += f": {p.annotation}"
        if p.default is not p.empty:
            text += f" = {p.default!r}" if p.annotation is not p.empty else f"={p.default!r}"
        out.append(text)
    returns = sig.return_annotation
    return out, "" if returns is sig.empty else f" -> {returns}"


def _signature(name: str, fn: Any) -> str:
    params, returns = _params(fn)
    text = f"{name}({', '.join(params)}){returns}"
    if len(text) <= 96:
        return text
    return f"{name}(\n" + "".join(f"    {p},\n" for p in params) + f"){returns}"


def _field_comments(cls: type) -> dict[str, str]:
    """`name: type  # comment` in the class body -> {name: comment}."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    comments = {}
    for line in source.splitlines():
        match = re.match(r"\s+(\w+): [^#]*?#\s*(.+)$", line)
        if match:
            comments[match.group(1)] = match.group(2).strip()
    return comments


def _annotation(field: dataclasses.Field[Any]) -> str:
    kind = field.type
    return kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))


def _members(cls: type) -> list[str]:
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_") or not _doc(value):
            continue
        if isinstance(value, property):
            head = f"`.{name}` → `{_params(value.fget)[1].removeprefix(' -> ')}`"
        elif isinstance(value, classmethod):
            continue  # constructors the library uses; not for scripts
        elif inspect.isfunction(value):
            params, returns = _params(value, skip_self=True)
            head = f"`.{name}({', '.join(params)}){returns}`"
        else:
            continue
        out.append(f"- {head}: {' '.join(_doc(value).split())}")
    return out


def _class(name: str, cls: type) -> list[str]:
    lines = [f"### `gradcalc.{name}`", ""]
    doc = _doc(cls)
    if doc:
        lines += [doc, ""]
    if issubclass(cls, BaseException):
        return lines
    if dataclasses.is_dataclass(cls):
        comments = _field_comments(cls)
        lines += ["| field | type | |", "|---|---|---|"]
        for field in dataclasses.fields(cls):
            if not field.repr:
                continue
            note = comments.get(field.name, "").replace("|", "\\|")
            kind = _annotation(field).replace("|", "\\|")
            lines.append(f"| `{field.name}` | `{kind}` | {note} |")
        lines.append("")
    members = _members(cls)
    if members:
        lines += [*members, ""]
    return lines


def _entry(name: str) -> list[str]:
    obj = getattr(gradcalc, name)
    if name == "__version__":
        return ["### `gradcalc.__version__`", "", "The version string, as `gradcalc --version` prints it.", ""]
    if name == "Verdict":
        choices = ", ".join(f'`"{c}"`' for c in obj.__args__)
        return [
            "### `gradcalc.Verdict`",
            "",
            f"A cell's verdict, a `typing.Literal`: one of {choices}.",
            "",
        ]
    if inspect.isclass(obj):
        return _class(name, obj)
    lines = [f"### `gradcalc.{name}`", "", "```python", _signature(name, obj), "```", ""]
    doc = _doc(obj)
    return [*lines, doc, ""] if doc else lines


def render() -> str:
    listed = [n for names in SECTIONS.values() for n in names]
    missing = sorted(set(gradcalc.__all__) - set(listed))
    extra = sorted(set(listed) - set(gradcalc.__all__))
    if missing or extra:
        raise SystemExit(
            f"SECTIONS out of step with gradcalc.__all__: missing {missing}, extra {extra}"
        )
    lines = [INTRO]
    for title, names in SECTIONS.items():
        lines += [f"## {title}", ""]
        for name in names:
            lines += _entry(name)
    text = "\n".join(lines)
    return textwrap.dedent(text).rstrip("\n") + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            sys.exit(
                f"{TARGET.relative_to(ROOT)} is out of date: run python scripts/gen_api_docs.py"
            )
        return
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
