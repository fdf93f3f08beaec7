"""Reverse-mode automatic differentiation over scalar primitives, and a safe formula parser."""

from .engine import Edge, Graph, Node, PathLimitExceeded, in_edges
from .expression import (
    BUILTIN_FUNCTIONS,
    CONSTANTS,
    Expression,
    ExpressionError,
    Function,
    parse_expression,
)
from .primitives import PRIMITIVES, Primitive, format_number

__all__ = [
    "BUILTIN_FUNCTIONS",
    "CONSTANTS",
    "PRIMITIVES",
    "Edge",
    "Expression",
    "ExpressionError",
    "Function",
    "Graph",
    "Node",
    "PathLimitExceeded",
    "Primitive",
    "format_number",
    "in_edges",
    "parse_expression",
]
