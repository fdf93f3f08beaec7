"""Reverse-mode automatic differentiation over the scalar primitives in ``PRIMITIVES``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gradcalc.records import record

from .primitives import PRIMITIVES, Primitive, format_number
from .tex import name_tex, tidy
from .wide import ONE, ZERO, Wide

LEAVES = ("input", "const")


@dataclass(eq=False)
class Node:
    """One value in the graph; ``prim`` is a key of PRIMITIVES, or "input" / "const"."""

    name: str
    prim: str
    args: tuple[Node, ...]
    value: float
    definition: str
    adjoint: float = 0.0
    definition_tex: str = ""  # ``definition`` in TeX
    extra: dict[str, Any] = field(default_factory=dict)
    # The adjoint with its exponent kept apart; ``adjoint`` is it rounded to float64.
    wide_adjoint: Wide = ZERO
    # A node's value never changes once added, so neither do its partials: computed once.
    _partials: tuple[Wide, ...] | None = field(default=None, repr=False, compare=False)

    @property
    def is_const(self) -> bool:
        return self.prim == "const"

    @property
    def is_input(self) -> bool:
        return self.prim == "input"

    @property
    def is_leaf(self) -> bool:
        return self.prim in LEAVES

    @property
    def primitive(self) -> Primitive | None:
        return PRIMITIVES.get(self.prim)

    @property
    def label(self) -> str:
        """The name as written inside other nodes' definitions."""
        return f"({self.name})" if self.is_const and self.name.startswith("-") else self.name

    @property
    def tex(self) -> str:
        """The name in TeX, with the space a command needs after it (see `tex.name_tex`)."""
        return name_tex(self.name)

    @property
    def label_tex(self) -> str:
        """``label`` in TeX, as ``tex`` is the name."""
        return f"({self.tex})" if self.label != self.name else self.tex

    def local_partials(self) -> tuple[float, ...]:
        """∂self/∂arg for each argument, at the current values (rounded to float64)."""
        return tuple(float(d) for d in self.wide_partials())

    def wide_partials(self) -> tuple[Wide, ...]:
        """∂self/∂arg for each argument, with the exponent kept apart (see Wide)."""
        if self._partials is None:
            prim = self.primitive
            values = tuple(a.value for a in self.args)
            self._partials = (
                ()
                if prim is None
                else tuple(
                    Wide.of(d) for d in prim.partials(values, self.value, **self._params(prim))
                )
            )
        return self._partials

    def symbolic_partials(self) -> tuple[str, ...]:
        prim = self.primitive
        if prim is None:
            return ()
        return prim.partial_text(tuple(a.label for a in self.args), **self._params(prim))

    def symbolic_partials_tex(self) -> tuple[str, ...]:
        prim = self.primitive
        if prim is None:
            return ()
        names = tuple(a.label_tex for a in self.args)
        return tuple(tidy(t) for t in prim.partial_tex(names, **self._params(prim)))

    def _params(self, prim: Primitive) -> dict[str, Any]:
        return {k: self.extra[k] for k in prim.params if k in self.extra}

    def __repr__(self) -> str:
        return (
            f"Node(name={self.name!r}, prim={self.prim!r}, definition={self.definition!r}, "
            f"value={self.value!r}, adjoint={self.adjoint!r})"
        )


@record
class Edge:
    """``src`` is argument ``arg_index`` of ``dst``; ``local`` is ∂dst/∂src."""

    src: Node
    dst: Node
    arg_index: int
    local: float
    symbolic: str
    symbolic_tex: str


class PathLimitExceeded(Exception):
    """More paths than the limit; ``paths`` holds the first ``limit`` of ``count``."""

    def __init__(self, count: int, limit: int, paths: list[list[Edge]]) -> None:
        super().__init__(f"{count} paths exceed the limit of {limit}")
        self.count = count
        self.limit = limit
        self.paths = paths


Operand = Node | float


class Graph:
    """A DAG of scalar nodes, kept in evaluation order in ``nodes``."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self._by_name: dict[str, Node] = {}
        self._position: dict[Node, int] = {}
        self._counter = 0

    def __getitem__(self, name: str) -> Node:
        return self._by_name[name]

    def __contains__(self, item: object) -> bool:
        return item in self._by_name if isinstance(item, str) else item in self._position

    # construction

    def input(self, name: str, value: float) -> Node:
        return self._add(Node(name, "input", (), float(value), name, definition_tex=_tex(name)))

    def const(self, value: float, name: str | None = None) -> Node:
        value = float(value)
        name = format_number(value) if name is None else name
        existing = self._by_name.get(name)
        # Constants are values: the same one asked for twice is the same node.
        if existing is not None and existing.is_const and _same(existing.value, value):
            return existing
        number = format_number(value)
        return self._add(Node(name, "const", (), value, number, definition_tex=_tex(number)))

    def apply(self, key: str, *args: Operand, name: str | None = None, **extra: Any) -> Node:
        """Add a node computing primitive ``key``; ``extra`` is stored on the node."""
        prim = PRIMITIVES.get(key)
        if prim is None:
            raise ValueError(f"unknown primitive {key!r}")
        nodes = tuple(self._operand(a) for a in args)
        if (prim.arity is None and not nodes) or prim.arity not in (None, len(nodes)):
            raise TypeError(f"{key} takes {prim.arity or 'at least 1'} arguments, got {len(nodes)}")
        node = Node(name or self._fresh_name(), key, nodes, math.nan, "", extra=dict(extra))
        params = node._params(prim)
        node.value = float(prim.value(*(a.value for a in nodes), **params))
        node.definition = prim.template(tuple(a.label for a in nodes), **params)
        node.definition_tex = tidy(prim.template_tex(tuple(a.label_tex for a in nodes), **params))
        return self._add(node)

    def neg(self, a: Operand, name: str | None = None) -> Node:
        return self.apply("neg", a, name=name)

    def add(self, a: Operand, b: Operand, name: str | None = None) -> Node:
        return self.apply("add", a, b, name=name)

    def sub(self, a: Operand, b: Operand, name: str | None = None) -> Node:
        return self.apply("sub", a, b, name=name)

    def mul(self, a: Operand, b: Operand, name: str | None = None) -> Node:
        return self.apply("mul", a, b, name=name)

    def div(self, a: Operand, b: Operand, name: str | None = None) -> Node:
        return self.apply("div", a, b, name=name)

    def pow(self, a: Operand, b: Operand, name: str | None = None) -> Node:
        b = self._operand(b)
        extra = {"exponent": b.value} if b.is_const else {}
        return self.apply("pow", a, b, name=name, **extra)

    def exp(self, a: Operand, name: str | None = None) -> Node:
        return self.apply("exp", a, name=name)

    def log(self, a: Operand, name: str | None = None) -> Node:
        return self.apply("log", a, name=name)

    def abs(self, a: Operand, name: str | None = None) -> Node:
        return self.apply("abs", a, name=name)

    def max0(self, a: Operand, name: str | None = None) -> Node:
        return self.apply("max0", a, name=name)

    def select(
        self,
        cond: bool,
        if_true: Operand,
        if_false: Operand,
        cond_text: str = "cond",
        name: str | None = None,
        cond_tex: str = r"\mathrm{cond}",
    ) -> Node:
        """``if_true`` where ``cond`` holds, else ``if_false``; the condition is written
        ``cond_text`` (and ``cond_tex`` in TeX)."""
        return self.apply(
            "select",
            if_true,
            if_false,
            name=name,
            cond=bool(cond),
            cond_text=cond_text,
            cond_tex=cond_tex,
        )

    def sum(self, *args: Operand, name: str | None = None) -> Node:
        return self.apply("sum", *args, name=name)

    def rename(self, node: Node, name: str) -> None:
        """Rename a node that nothing uses yet (later definitions quote the name)."""
        self._check(node)
        if any(node in n.args for n in self.nodes):
            raise ValueError(f"cannot rename {node.name!r}: other nodes already refer to it")
        self._check_name(name)
        del self._by_name[node.name]
        node.name = name
        if node.is_input:
            node.definition, node.definition_tex = name, _tex(name)
        self._by_name[name] = node

    # differentiation

    def edges(self) -> list[Edge]:
        """Every argument edge in evaluation order, constant sources included."""
        return [edge for node in self.nodes for edge in in_edges(node)]

    def backward(self, output: Node) -> list[tuple[Node, Node]]:
        """Set every node's adjoint to ∂output/∂node (0 for nodes output does not use).

        The sweep multiplies in Wide, so a path whose partial or product leaves float64 on the
        way is still counted. Returns those edges (src, dst): in plain float64 arithmetic the
        paths through them would have vanished (0) or blown up (inf).
        """
        self._check(output)
        for node in self.nodes:
            node.wide_adjoint = ZERO
        output.wide_adjoint = ONE
        lost: list[tuple[Node, Node]] = []
        for node in self.sweep_order(output, include_consts=True):
            for arg, local in zip(node.args, node.wide_partials(), strict=True):
                term = local * node.wide_adjoint
                if not arg.is_const and (local.leaves_float64() or term.leaves_float64()):
                    lost.append((arg, node))
                arg.wide_adjoint = arg.wide_adjoint + term
        for node in self.nodes:
            node.adjoint = float(node.wide_adjoint)
        return lost

    def sweep_order(self, output: Node, include_consts: bool = False) -> list[Node]:
        """Nodes that ``output`` depends on (and output itself), output first."""
        self._check(output)
        upstream = {output}
        order = []
        for node in reversed(self.nodes[: self._position[output] + 1]):
            if node in upstream:
                upstream.update(node.args)
                if include_consts or not node.is_const:
                    order.append(node)
        return order

    def count_paths(self, src: Node, dst: Node) -> int:
        self._check(src)
        self._check(dst)
        counts = {src: 1}
        for node in self.nodes[self._position[src] + 1 : self._position[dst] + 1]:
            counts[node] = sum(counts.get(arg, 0) for arg in node.args)
        return counts.get(dst, 0)

    def paths(self, src: Node, dst: Node, limit: int = 64) -> list[list[Edge]]:
        """All distinct edge paths from src to dst; the product of a path's ``local`` values
        is its contribution to ∂dst/∂src. Raises PathLimitExceeded past ``limit`` paths."""
        if src.is_const:
            return []
        count = self.count_paths(src, dst)
        upstream = set(self.sweep_order(dst, include_consts=True))
        consumers: dict[Node, list[Edge]] = {}
        for node in self.nodes[self._position[src] + 1 : self._position[dst] + 1]:
            if node in upstream:
                for edge in in_edges(node):
                    consumers.setdefault(edge.src, []).append(edge)
        found: list[list[Edge]] = []
        stack: list[tuple[Node, list[Edge]]] = [(src, [])]
        while stack and len(found) < min(count, limit):
            node, trail = stack.pop()
            if node is dst:
                found.append(trail)
                continue
            for edge in reversed(consumers.get(node, [])):
                stack.append((edge.dst, [*trail, edge]))
        if count > limit:
            raise PathLimitExceeded(count, limit, found)
        return found

    def kinks(self) -> list[Node]:
        """Nodes sitting exactly on a non-differentiable point of their primitive."""
        return [
            node
            for node in self.nodes
            if (prim := node.primitive) is not None
            and prim.kink is not None
            and prim.kink(tuple(a.value for a in node.args))
        ]

    # bookkeeping

    def _add(self, node: Node) -> Node:
        self._check_name(node.name)
        self._by_name[node.name] = node
        self._position[node] = len(self.nodes)
        self.nodes.append(node)
        return node

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"node names must be non-empty strings, got {name!r}")
        if name in self._by_name:
            raise ValueError(f"a node named {name!r} already exists")

    def _fresh_name(self) -> str:
        while True:
            self._counter += 1
            if (name := f"n{self._counter}") not in self._by_name:
                return name

    def _operand(self, a: Operand) -> Node:
        if isinstance(a, Node):
            self._check(a)
            return a
        if isinstance(a, bool) or not isinstance(a, int | float):
            raise TypeError(f"expected a Node or a number, got {a!r}")
        return self.const(a)

    def _check(self, node: Node) -> None:
        if node not in self._position:
            raise ValueError(f"node {node.name!r} does not belong to this graph")


def in_edges(node: Node) -> list[Edge]:
    """The edges into ``node``, one per argument."""
    return [
        Edge(arg, node, i, local, symbolic, tex)
        for i, (arg, local, symbolic, tex) in enumerate(
            zip(
                node.args,
                node.local_partials(),
                node.symbolic_partials(),
                node.symbolic_partials_tex(),
                strict=True,
            )
        )
    ]


def _tex(name: str) -> str:
    return tidy(name_tex(name))


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))
