"""Parse user-typed formulas into graph nodes: a whitelisted walk over ``ast``, never eval."""

from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import TypeGuard

from gradcalc.errors import GradcalcError
from gradcalc.records import record

from .engine import Graph, Node

Function = Callable[..., Node]
_Builder = Callable[[Graph, Mapping[str, Node]], Node]


class ExpressionError(GradcalcError, ValueError):
    """The text is not an acceptable formula; the message names the offending part."""


def _max0(g: Graph, a: Node) -> Node:
    return g.max0(a)


BUILTIN_FUNCTIONS: dict[str, Function] = {
    "exp": lambda g, a: g.exp(a),
    "log": lambda g, a: g.log(a),
    "ln": lambda g, a: g.log(a),
    "abs": lambda g, a: g.abs(a),
    "sqrt": lambda g, a: g.pow(a, 0.5),
    "max": _max0,  # only max(0, expr) / max(expr, 0); checked while parsing
}

CONSTANTS: dict[str, tuple[str, float]] = {
    "e": ("e", math.e),
    "pi": ("π", math.pi),
    "π": ("π", math.pi),
}

_BINARY: dict[type[ast.operator], Callable[[Graph, Node, Node], Node]] = {
    ast.Add: Graph.add,
    ast.Sub: Graph.sub,
    ast.Mult: Graph.mul,
    ast.Div: Graph.div,
    ast.Pow: Graph.pow,
}

_OPERATOR_TEXT: dict[type[ast.AST], str] = {
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Mod: "%",
    ast.FloorDiv: "//",
    ast.MatMult: "@",
    ast.Invert: "~",
    ast.Not: "not",
}

_REFUSED: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripting",
    ast.Slice: "slicing",
    ast.Lambda: "lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.Compare: "a comparison",
    ast.BoolOp: "a boolean operator",
    ast.IfExp: "a conditional expression",
    ast.NamedExpr: "an assignment expression",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.Tuple: "a tuple",
    ast.List: "a list",
    ast.Set: "a set",
    ast.Dict: "a dict",
    ast.Starred: "a starred expression",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


@record
class Expression:
    """A parsed formula; ``build`` adds its nodes to a graph."""

    text: str
    variables: tuple[str, ...]
    _builder: _Builder = field(repr=False, compare=False)

    def build(self, g: Graph, inputs: Mapping[str, Node], *, name: str | None = None) -> Node:
        """Add the formula's nodes to ``g`` and return the output node.

        ``name`` renames the output node unless it is a leaf (the formula "x" returns x).
        """
        out = self._builder(g, inputs)
        if name is not None and not out.is_leaf:
            g.rename(out, name)
        return out

    def evaluate(self, *values: float, **named: float) -> float:
        """Value at a point; positional values follow ``variables`` (``evaluate(0.3)``)."""
        if len(values) > len(self.variables):
            raise TypeError(f"expected at most {len(self.variables)} values, got {len(values)}")
        bound = dict(zip(self.variables[: len(values)], values, strict=True)) | named
        g = Graph()
        return self.build(g, {k: g.input(k, v) for k, v in bound.items()}).value


def parse_expression(
    text: str,
    functions: Mapping[str, Function] | None = None,
    *,
    variables: tuple[str, ...] | list[str] = ("x",),
    max_length: int = 500,
    max_depth: int = 40,
    max_nodes: int = 500,
) -> Expression:
    """Parse ``text`` into an Expression, refusing anything outside arithmetic on numbers,
    ``variables``, e/pi and calls of ``functions`` (merged over BUILTIN_FUNCTIONS).

    Each function is called as ``fn(g, *arg_nodes)`` and returns the node it adds.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be a string, got {type(text).__name__}")
    if len(text) > max_length:
        raise ExpressionError(
            f"expression is {len(text)} characters long, over the limit of {max_length}"
        )
    depth = _bracket_depth(text)
    if depth > max_depth:
        raise ExpressionError(
            f"expression nests brackets {depth} levels deep, over the limit of {max_depth}"
        )
    source = text.strip()
    if not source:
        raise ExpressionError("expression is empty")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        where = f" (column {exc.offset})" if exc.offset else ""
        raise ExpressionError(f"cannot parse expression: {exc.msg}{where}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"cannot parse expression: {exc}") from None
    count = sum(isinstance(node, ast.expr) for node in ast.walk(tree))
    if count > max_nodes:
        raise ExpressionError(f"expression has {count} parts, over the limit of {max_nodes}")
    variables = tuple(variables)
    table = {**BUILTIN_FUNCTIONS, **(functions or {})}
    compiler = _Compiler(source, table, variables, max_depth)
    try:
        builder = compiler.compile(tree.body, 1)
    except RecursionError:
        raise ExpressionError(f"expression nests too deeply (limit {max_depth})") from None
    return Expression(text=text, variables=variables, _builder=builder)


def _bracket_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


class _Compiler:
    """Turns a whitelisted AST into a builder closure, refusing everything else."""

    def __init__(
        self,
        source: str,
        functions: Mapping[str, Function],
        variables: tuple[str, ...],
        max_depth: int,
    ) -> None:
        self.source = source
        self.functions = functions
        self.variables = variables
        self.max_depth = max_depth

    def compile(self, node: ast.AST, depth: int) -> _Builder:
        if depth > self.max_depth:
            raise ExpressionError(
                f"expression nests deeper than the limit of {self.max_depth} levels "
                f"at {self._quote(node)}"
            )
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
            return self.compile(node.operand, depth + 1)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            if _is_number(node.operand):
                value = -self._number(node.operand)
                return lambda g, env: g.const(value)
            operand = self.compile(node.operand, depth + 1)
            return lambda g, env: g.neg(operand(g, env))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            method = _BINARY[type(node.op)]
            # Left-associative chains such as a + b + c are long, not deep.
            left = self.compile(node.left, depth)
            right = self.compile(node.right, depth + 1)
            return lambda g, env: method(g, left(g, env), right(g, env))
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        if isinstance(node, ast.BinOp | ast.UnaryOp):
            symbol = _OPERATOR_TEXT.get(type(node.op), type(node.op).__name__)
            hint = " (use ** for powers)" if isinstance(node.op, ast.BitXor) else ""
            raise self._refuse(f"the operator '{symbol}'", node, hint)
        raise self._refuse(_REFUSED.get(type(node), type(node).__name__), node)

    def _constant(self, node: ast.Constant) -> _Builder:
        if not _is_number(node):
            kind = {str: "a string", bytes: "bytes", complex: "a complex number"}.get(
                type(node.value), f"the constant {node.value!r}"
            )
            raise self._refuse(kind, node)
        value = self._number(node)
        return lambda g, env: g.const(value)

    def _number(self, node: ast.Constant) -> float:
        value = node.value
        assert isinstance(value, int | float)  # _is_number let it through
        try:
            return float(value)
        except OverflowError:
            raise ExpressionError(f"number too large: {self._quote(node)}") from None

    def _name(self, node: ast.Name) -> _Builder:
        name = node.id
        if name in self.variables:
            return lambda g, env: _lookup(env, name)
        if name in CONSTANTS:
            label, value = CONSTANTS[name]
            return lambda g, env: g.const(value, name=label)
        if name in self.functions:
            raise ExpressionError(f"function '{name}' must be called, as in {name}(x)")
        known = ", ".join(self.variables + tuple(CONSTANTS))
        raise ExpressionError(f"unknown variable '{name}' (known: {known})")

    def _call(self, node: ast.Call, depth: int) -> _Builder:
        if not isinstance(node.func, ast.Name):
            what = _REFUSED.get(type(node.func), "calling anything but a function name")
            raise self._refuse(what, node.func)
        name = node.func.id
        fn = self.functions.get(name)
        if fn is None:
            known = ", ".join(sorted(self.functions))
            raise ExpressionError(f"unknown function '{name}' (known: {known})")
        if node.keywords:
            raise self._refuse("a keyword argument", node.keywords[0])
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self._refuse("a starred argument", arg)
        if fn is _max0:
            return self._max(node, depth)
        if not _accepts(fn, len(node.args)):
            raise ExpressionError(
                f"wrong number of arguments ({len(node.args)}) for {name}: {self._quote(node)}"
            )
        args = [self.compile(arg, depth + 1) for arg in node.args]
        return lambda g, env: fn(g, *(arg(g, env) for arg in args))

    def _max(self, node: ast.Call, depth: int) -> _Builder:
        if len(node.args) == 2:
            for zero, other in (node.args, node.args[::-1]):
                if _is_number(zero) and zero.value == 0:
                    inner = self.compile(other, depth + 1)
                    return lambda g, env: g.max0(inner(g, env))
        raise ExpressionError(
            f"max is only supported as max(0, expr) or max(expr, 0), not {self._quote(node)}"
        )

    def _quote(self, node: ast.AST) -> str:
        segment = ast.get_source_segment(self.source, node) or ast.unparse(node)
        return repr(segment if len(segment) <= 60 else segment[:57] + "...")

    def _refuse(self, what: str, node: ast.AST, hint: str = "") -> ExpressionError:
        return ExpressionError(f"{what} is not allowed: {self._quote(node)}{hint}")


def _is_number(node: ast.AST) -> TypeGuard[ast.Constant]:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _accepts(fn: Function, count: int) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return True  # cannot tell; let the call itself complain
    try:
        signature.bind(None, *([None] * count))
    except TypeError:
        return False
    return True


def _lookup(env: Mapping[str, Node], name: str) -> Node:
    try:
        return env[name]
    except KeyError:
        raise ExpressionError(f"no input node was given for variable '{name}'") from None
