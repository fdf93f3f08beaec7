"""A template: a config in which any number or name may be a rule drawn per student.

Rules (a mapping in place of a value):
  {uniform: [lo, hi], decimals: 2}     a number drawn uniformly, rounded to `decimals`
  {int: [lo, hi]}                      a whole number lo..hi, both included
  {choice: [a, b, …]}                  one of the items (numbers, names or lists)
  {normal: {mean: 0, std: 1}, decimals: 2}
`uniform`, `int` and `normal` take `shape: N` or `shape: [rows, cols]` to fill a vector or a
matrix, or up to four sizes for a layer record's arrays (an input (C, H, W), conv kernels
(C_out, C_in, kH, kW)), filled in row-major order. Besides the config's keys a template has
`constraints:` (see CONSTRAINTS) and `sheet:` (`decimals`, the places answers are worked to, and
`title`).

Every draw is a pure function of (variant seed, attempt, key path, item): a uniform number u in
[0, 1) is the first 8 bytes of SHA-256 of the text "{seed}/{attempt}/{key path}/{item}", read
big-endian and divided by 2⁶⁴. It depends on no library's random stream, so a variant is the
same on every machine and in every version that keeps FORMAT_VERSION.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradcalc.errors import KeyPath, did_you_mean, format_path
from gradcalc.yamldoc import Doc, number, parse_yaml, read_text, type_name

# The version of the draw and seed rules: a variant's numbers change only when it changes.
FORMAT_VERSION = 1
RULES = ("uniform", "int", "choice", "normal")
RULE_KEYS = {
    "uniform": ("uniform", "decimals", "shape"),
    "int": ("int", "shape"),
    "choice": ("choice",),
    "normal": ("normal", "decimals", "shape"),
}
DEFAULT_DECIMALS = 2
MAX_CELLS = 10_000
TEMPLATE_KEYS = ("constraints", "sheet")
SHEET_KEYS = ("decimals", "title")
DEFAULT_SHEET_DECIMALS = 3


def variant_seed(seed: int, student: str) -> int:
    """The seed of one student's variant: the first 8 bytes (big-endian) of SHA-256 of
    "gradcalc-variant/{FORMAT_VERSION}/{seed}/{student id}" in UTF-8."""
    text = f"gradcalc-variant/{FORMAT_VERSION}/{seed}/{student}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def uniform01(seed: int, attempt: int, path: KeyPath, item: int) -> float:
    text = f"{seed}/{attempt}/{format_path(path)}/{item}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0**64


@dataclass(frozen=True)
class Rule:
    kind: str
    path: KeyPath
    args: tuple[Any, ...]  # uniform (lo, hi), int (lo, hi), choice items, normal (mean, std)
    decimals: int = DEFAULT_DECIMALS
    shape: tuple[int, ...] = ()


@dataclass
class Template:
    doc: Doc  # the template as read, with the line of every key path
    rules: list[Rule]
    constraints: dict[str, Any]
    decimals: int  # the places the answers are worked to
    title: str | None
    name: str = field(default="")

    def draw(self, seed: int, attempt: int) -> dict[str, Any]:
        """The config of one variant (plain data; every rule replaced by its draw)."""
        drawn = {rule.path: _draw(rule, seed, attempt) for rule in self.rules}
        return _replace(self.doc.data, (), drawn)

    def check_choices(self) -> None:
        """Build the config with each item of each choice in turn, so that an item no config
        takes (a misspelt activation) is refused now, not when some student draws it."""
        from gradcalc.step.config import build_spec

        first = {rule.path: _draw(rule, 0, 0) for rule in self.rules}
        for rule in self.rules:
            if rule.kind != "choice":
                continue
            for item in rule.args:
                build_spec(
                    self.variant_doc(_replace(self.doc.data, (), {**first, rule.path: item}))
                )

    def variant_doc(self, data: dict[str, Any]) -> Doc:
        """A drawn config as a Doc that names the template's file and lines in its errors."""
        return Doc(self.doc.source, data, self.doc.lines, base=self.doc.base)


def _draw(rule: Rule, seed: int, attempt: int) -> Any:
    def one(item: int) -> Any:
        u = uniform01(seed, attempt, rule.path, item)
        if rule.kind == "uniform":
            lo, hi = rule.args
            return _rounded(lo + u * (hi - lo), rule.decimals)
        if rule.kind == "int":
            lo, hi = rule.args
            return int(lo + min(math.floor(u * (hi - lo + 1)), hi - lo))
        if rule.kind == "choice":
            return _plain(rule.args[min(math.floor(u * len(rule.args)), len(rule.args) - 1)])
        # normal: Box–Muller from two uniforms of this item
        mean, std = rule.args
        v = uniform01(seed, attempt, rule.path, item + 1_000_000)
        g = math.sqrt(-2.0 * math.log(1.0 - u)) * math.cos(2.0 * math.pi * v)
        return _rounded(mean + std * g, rule.decimals)

    if not rule.shape:
        return one(0)
    if len(rule.shape) == 1:
        return [one(i) for i in range(rule.shape[0])]
    if len(rule.shape) == 2:
        rows, cols = rule.shape
        return [[one(r * cols + c) for c in range(cols)] for r in range(rows)]
    # More axes: item i is the i-th cell in row-major order, as for a matrix.
    flat = [one(i) for i in range(math.prod(rule.shape))]
    for size in reversed(rule.shape[1:]):
        flat = [flat[i : i + size] for i in range(0, len(flat), size)]
    return flat


def _plain(value: Any) -> Any:
    """A chosen item as plain lists and dicts: the YAML reader's list type (yamldoc.Numbers)
    is no type the variant's config.yaml can be written with."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _rounded(value: float, decimals: int) -> float:
    return round(value, decimals) + 0.0  # + 0.0: never −0.0


def _replace(value: Any, path: KeyPath, drawn: dict[KeyPath, Any]) -> Any:
    if path in drawn:
        return drawn[path]
    if isinstance(value, dict):
        return {k: _replace(v, (*path, k), drawn) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, (*path, i), drawn) for i, v in enumerate(value)]
    return value


# ---- reading ---------------------------------------------------------------------------------


def load(source: str) -> Template:
    name, text = read_text(source)
    doc = parse_yaml(text, name)
    if source != "-":
        doc.base = Path(source).parent
    return from_doc(doc)


def load_text(text: str, name: str) -> Template:
    return from_doc(parse_yaml(text, name))


def from_doc(doc: Doc) -> Template:
    from gradcalc.course.constraints import read_constraints

    data = doc.data
    if not isinstance(data, dict):
        raise doc.error((), f"a template is a config mapping, got {type_name(data)}")
    constraints = read_constraints(doc, data.get("constraints", {}))
    decimals, title = _sheet(doc, data.get("sheet", {}))
    body = {k: v for k, v in data.items() if k not in TEMPLATE_KEYS}
    rules: list[Rule] = []
    _find_rules(doc, body, (), rules)
    if not rules:
        raise doc.error(
            (),
            "the template has no rule, so every variant would be the same",
            "write e.g. {uniform: [-0.5, 0.5], decimals: 1} where a number may vary",
        )
    template_doc = Doc(doc.source, body, doc.lines, base=doc.base)
    return Template(template_doc, rules, constraints, decimals, title, name=doc.source)


def _sheet(doc: Doc, value: Any) -> tuple[int, str | None]:
    if not isinstance(value, dict):
        raise doc.error(("sheet",), f"expected a mapping (decimals, title), got {type_name(value)}")
    for key in value:
        if key not in SHEET_KEYS:
            raise doc.error(("sheet", key), "unknown key in sheet", did_you_mean(key, SHEET_KEYS))
    decimals = _whole(doc, value.get("decimals", DEFAULT_SHEET_DECIMALS), ("sheet", "decimals"))
    if not 0 <= decimals <= 12:
        raise doc.error(("sheet", "decimals"), f"expected 0..12 places, got {decimals}")
    title = value.get("title")
    if title is not None and not isinstance(title, str):
        raise doc.error(("sheet", "title"), f"expected a string, got {type_name(title)}")
    return decimals, title


def _whole(doc: Doc, value: Any, path: KeyPath) -> int:
    x = number(doc, value, path)
    if x != int(x):
        raise doc.error(path, f"expected a whole number, got {value}")
    return int(x)


def _find_rules(doc: Doc, value: Any, path: KeyPath, out: list[Rule]) -> None:
    if isinstance(value, dict):
        kinds = [k for k in RULES if k in value]
        if len(kinds) > 1:
            raise doc.error(path, f"a rule has one kind, got {' and '.join(kinds)}")
        if kinds:
            out.append(_rule(doc, kinds[0], value, path))
            return
        for key, item in value.items():
            _find_rules(doc, item, (*path, key), out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _find_rules(doc, item, (*path, i), out)


def _rule(doc: Doc, kind: str, value: dict[str, Any], path: KeyPath) -> Rule:
    for key in value:
        if key not in RULE_KEYS[kind]:
            raise doc.error(
                (*path, key), f"unknown key in a {kind} rule", did_you_mean(key, RULE_KEYS[kind])
            )
    here = (*path, kind)
    decimals = DEFAULT_DECIMALS
    if "decimals" in value:
        decimals = _whole(doc, value["decimals"], (*path, "decimals"))
        if not 0 <= decimals <= 12:
            raise doc.error((*path, "decimals"), f"expected 0..12 places, got {decimals}")
    shape = _shape(doc, value.get("shape"), (*path, "shape"))
    args: tuple[Any, ...]
    if kind in ("uniform", "int"):
        bounds = value[kind]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise doc.error(here, f"expected [lo, hi], got {type_name(bounds)}")
        lo, hi = (number(doc, b, (*here, i)) for i, b in enumerate(bounds))
        if kind == "int" and (lo != int(lo) or hi != int(hi)):
            raise doc.error(here, f"expected whole numbers [lo, hi], got [{lo:g}, {hi:g}]")
        if lo > hi:
            raise doc.error(here, f"lo > hi: [{lo:g}, {hi:g}]", "write the smaller bound first")
        args = (int(lo), int(hi)) if kind == "int" else (lo, hi)
    elif kind == "choice":
        items = value[kind]
        if not isinstance(items, list) or not items:
            got = "an empty list" if items == [] else type_name(items)
            raise doc.error(here, f"expected a list of items to choose from, got {got}")
        args = tuple(items)
    else:
        spec = value[kind]
        if not isinstance(spec, dict) or set(spec) != {"mean", "std"}:
            raise doc.error(here, "expected {mean: M, std: S}")
        mean = number(doc, spec["mean"], (*here, "mean"))
        std = number(doc, spec["std"], (*here, "std"))
        if std <= 0:
            raise doc.error((*here, "std"), f"expected a number > 0, got {std:g}")
        args = (mean, std)
    return Rule(kind, path, args, decimals, shape)


def _shape(doc: Doc, value: Any, path: KeyPath) -> tuple[int, ...]:
    if value is None:
        return ()
    dims = value if isinstance(value, list) else [value]
    if not 1 <= len(dims) <= 4:
        raise doc.error(
            path,
            "expected N (a vector), [rows, cols] (a matrix) or up to four sizes (conv kernels "
            "[C_out, C_in, kH, kW])",
        )
    out = tuple(_whole(doc, d, path) for d in dims)
    if any(d < 1 for d in out) or math.prod(out) > MAX_CELLS:
        raise doc.error(path, f"expected sizes ≥ 1 and at most {MAX_CELLS:,} cells in all")
    return out
