from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from gradcalc.graph import (
    PRIMITIVES,
    Edge,
    ExpressionError,
    Graph,
    Node,
    PathLimitExceeded,
    in_edges,
    parse_expression,
)
from gradcalc.graph.tex import name_tex, tidy

Point = tuple[tuple[float, ...], dict[str, object]]

# Points away from kinks and singularities; a primitive missing here still gets DEFAULT_POINTS.
SAMPLE_POINTS: dict[str, list[Point]] = {
    "div": [((1.3, 0.7), {}), ((-2.0, 3.5), {}), ((0.4, -1.1), {})],
    "pow": [((0.5, 2.0), {}), ((1.7, -1.3), {}), ((3.0, 0.5), {}), ((-1.5, 3.0), {})],
    "log": [((0.2,), {}), ((1.0,), {}), ((7.5,), {})],
    "abs": [((-1.3,), {}), ((0.4,), {})],
    "max0": [((-1.3,), {}), ((0.4,), {})],
    "exp": [((-3.0,), {}), ((0.0,), {}), ((2.0,), {})],
    "select": [
        ((0.7, -1.2), {"cond": True, "cond_text": "c", "cond_tex": "c"}),
        ((0.7, -1.2), {"cond": False, "cond_text": "c", "cond_tex": "c"}),
    ],
}
DEFAULT_POINTS: dict[int, list[Point]] = {
    1: [((-1.3,), {}), ((0.4,), {}), ((2.1,), {})],
    2: [((0.7, 1.3), {}), ((-1.3, 0.4), {}), ((2.1, -0.6), {})],
    3: [((0.7, -1.3, 2.2), {})],
}


def _cases() -> list[tuple[str, tuple[float, ...], dict[str, object]]]:
    cases = []
    for key, prim in PRIMITIVES.items():
        arity = 3 if prim.arity is None else prim.arity
        for args, params in SAMPLE_POINTS.get(key, DEFAULT_POINTS[arity]):
            cases.append((key, args, params))
    return cases


def close(actual: float, expected: float, rel: float = 1e-6, floor: float = 1e-9) -> bool:
    if math.isnan(expected):  # undefined there (e.g. ∂(a^b)/∂b for a < 0): must say so too
        return math.isnan(actual)
    return abs(actual - expected) <= rel * abs(expected) + floor


def central_difference(f: Callable[[list[float]], float], point: list[float], i: int) -> float:
    h = 1e-6 * max(1.0, abs(point[i]))
    up, down = list(point), list(point)
    up[i] += h
    down[i] -= h
    return (f(up) - f(down)) / (2 * h)


@pytest.mark.parametrize(("key", "args", "params"), _cases())
def test_local_partials_match_finite_differences(
    key: str, args: tuple[float, ...], params: dict[str, object]
) -> None:
    prim = PRIMITIVES[key]
    out = prim.value(*args, **params)
    partials = [float(d) for d in prim.partials(args, out, **params)]
    assert len(partials) == len(args)
    for i, partial in enumerate(partials):
        numeric = central_difference(lambda p: prim.value(*p, **params), list(args), i)
        assert close(partial, numeric), (key, args, i, partial, numeric)


@pytest.mark.parametrize("key", list(PRIMITIVES))
def test_every_primitive_has_text_for_each_argument(key: str) -> None:
    prim = PRIMITIVES[key]
    names = ("a", "b", "c")[: prim.arity or 3]
    params = SAMPLE_POINTS.get(key, [((), {})])[0][1]
    assert len(prim.partial_text(names, **params)) == len(names)
    definition = prim.template(names, **params)
    assert all(name in definition for name in names)


# What each primitive's parameters may be: the TeX forms are checked under every variant.
PARAM_VARIANTS: dict[str, list[dict[str, object]]] = {
    "pow": [{}, {"exponent": 2.0}, {"exponent": -0.5}, {"exponent": 1.0}, {"exponent": 0.0}],
    "select": [{"cond": True, "cond_text": "c", "cond_tex": "c"}],
}


@pytest.mark.parametrize("key", list(PRIMITIVES))
def test_every_primitive_has_tex_for_its_definition_and_each_partial(key: str) -> None:
    prim = PRIMITIVES[key]
    unicode_names, tex_names = ("a₁", "−x", "α")[: prim.arity or 3], ("a_{1}", "-x", "\\alpha ")
    tex_names = tex_names[: len(unicode_names)]
    for params in PARAM_VARIANTS.get(key, [{}]):
        partials = prim.partial_tex(tex_names, **params)
        assert len(partials) == len(prim.partial_text(unicode_names, **params)) == len(tex_names)
        definition = prim.template_tex(tex_names, **params)
        assert all(tidy(name) in definition for name in tex_names), (key, definition)
        for tex in (definition, *partials):
            # TeX, not the Unicode forms: ASCII only, and every brace closed.
            assert tex.isascii(), (key, params, tex)
            assert tex.count("{") == tex.count("}"), (key, params, tex)


def test_graph_writes_definitions_and_partials_in_tex() -> None:
    g = Graph()
    x = g.input("x", 0.4)
    m = g.neg(x, name="−x")
    v = g.exp(m, name="v₁")
    r = g.pow(v, -0.5, name="r")
    t = g.sub(x, g.const(1.0, name="y₁"), name="t₁")
    h = g.select(
        True, r, t, cond_text="|t₁| ≤ δ", cond_tex=r"\vert t_{1}\vert \le \delta ", name="h₁"
    )
    n = g.mul(g.const(0.5), g.sum(h, g.const(-2.0), x, name="s"), name="n3")
    assert (m.definition_tex, v.definition_tex) == ("-x", "e^{-x}")
    assert r.definition_tex == "v_{1}^{-0.5}" and r.symbolic_partials_tex() == (
        r"-0.5\cdot v_{1}^{-1.5}",
        "0",
    )
    assert h.definition_tex == r"(\vert t_{1}\vert \le \delta ) \mathrel{?} r : t_{1}"
    assert h.symbolic_partials_tex() == (
        r"[\vert t_{1}\vert \le \delta ]",
        r"[\neg (\vert t_{1}\vert \le \delta )]",
    )
    assert g["s"].definition_tex == "h_{1} + (-2) + x"
    assert [e.symbolic_tex for e in in_edges(n)] == ["s", "0.5"]
    assert n.definition_tex == r"0.5\cdot s" and x.definition_tex == "x"


def test_names_in_tex() -> None:
    cases = {
        "u₁₀": "u_{10}",
        "n12": "n_{12}",
        "α": "\\alpha",
        "−y₁": "-y_{1}",
        "-0.3": "-0.3",
        "1e-07": "1e-07",
        "tanh": "\\tanh",
        "ReLU": "\\mathrm{ReLU}",
        "‖y‖": "\\Vert y\\Vert",
        "δ²/2": "\\delta ^{2}/2",
        "(1 − y₂)": "(1 - y_{2})",
        "½": "\\tfrac{1}{2}",
        "a_b%#&{}": "a\\_b\\%\\#\\&\\{\\}",
    }
    assert {name: tidy(name_tex(name)) for name in cases} == cases


def test_symbolic_partials_use_argument_names() -> None:
    def text(key: str, *names: str) -> tuple[str, ...]:
        return PRIMITIVES[key].partial_text(names)

    assert text("exp", "u") == ("e^u",)
    assert text("div", "a", "b") == ("1/b", "−a/b²")
    assert text("neg", "x") == ("−1",)
    assert text("max0", "v") == ("[v > 0]",)
    assert text("abs", "t") == ("sgn(t)",)
    assert text("log", "a") == ("1/a",)
    assert text("mul", "a", "b") == ("b", "a")


def sigmoid_graph(x_value: float) -> tuple[Graph, dict[str, Node]]:
    g = Graph()
    x = g.input("x", x_value)
    u = g.neg(x, name="u")
    v = g.exp(u, name="v")
    w = g.add(g.const(1.0), v, name="w")
    f = g.div(g.const(1.0), w, name="f")
    return g, {"x": x, "u": u, "v": v, "w": w, "f": f}


def test_sigmoid_graph_values_adjoints_and_definitions() -> None:
    g, n = sigmoid_graph(0.3)
    g.backward(n["f"])
    values = {"u": -0.3, "v": 0.740818, "w": 1.740818, "f": 0.574443}
    adjoints = {"f": 1.0, "w": -0.329984, "v": -0.329984, "u": -0.244458, "x": 0.244458}
    for name, value in values.items():
        assert n[name].value == pytest.approx(value, rel=1e-6, abs=1e-6)
    for name, adjoint in adjoints.items():
        assert n[name].adjoint == pytest.approx(adjoint, rel=1e-5)
    sigma = 1 / (1 + math.exp(-0.3))
    assert n["x"].adjoint == pytest.approx(sigma * (1 - sigma), rel=1e-12)
    assert [n[k].definition for k in "uvwf"] == ["−x", "e^u", "1 + v", "1/w"]
    assert g["1"].is_const and [node.name for node in g.nodes].count("1") == 1


def test_sigmoid_edges_and_sweep_order() -> None:
    g, n = sigmoid_graph(0.3)
    edges = g.edges()
    assert all(isinstance(e, Edge) for e in edges)
    assert [(e.src.name, e.dst.name) for e in edges if not e.src.is_const] == [
        ("x", "u"),
        ("u", "v"),
        ("v", "w"),
        ("w", "f"),
    ]
    w_to_f = next(e for e in edges if e.dst is n["f"] and e.arg_index == 1)
    assert w_to_f.symbolic == "−1/w²"
    assert w_to_f.local == pytest.approx(-1 / n["w"].value ** 2)
    assert any(e.src.is_const for e in edges)
    assert [node.name for node in g.sweep_order(n["f"])] == ["f", "w", "v", "u", "x"]
    assert "1" in [node.name for node in g.sweep_order(n["f"], include_consts=True)]


def tanh_graph(x_value: float) -> tuple[Graph, Node, Node]:
    g = Graph()
    x = g.input("x", x_value)
    u = g.exp(x, name="u")
    v = g.exp(g.neg(x, name="n"), name="v")
    w = g.add(u, v, name="w")
    z = g.sub(u, v, name="z")
    y = g.div(z, w, name="y")
    return g, x, y


def test_tanh_paths_sum_to_derivative() -> None:
    g, x, y = tanh_graph(0.5)
    paths = g.paths(x, y)
    assert len(paths) == 4 == g.count_paths(x, y)
    assert all(path[0].src is x and path[-1].dst is y for path in paths)
    total = sum(math.prod(e.local for e in path) for path in paths)
    assert total == pytest.approx(0.786448, rel=1e-6)
    assert total == pytest.approx(1 - math.tanh(0.5) ** 2, rel=1e-12)
    g.backward(y)
    assert x.adjoint == pytest.approx(total, rel=1e-12)


def test_path_enumeration_is_capped() -> None:
    g = Graph()
    x = g.input("x", 1.0)
    a = x
    for _ in range(40):
        a = g.add(a, a)  # doubles the number of paths each time
    with pytest.raises(PathLimitExceeded) as info:
        g.paths(x, a, limit=64)
    assert info.value.count == 2**40
    assert len(info.value.paths) == 64
    assert g.paths(a, a) == [[]]
    assert g.paths(g.const(2.0), a) == []


def composite(g: Graph, x: Node | float, y: Node | float) -> Node:
    s = g.mul(x, y)
    t = g.exp(g.neg(g.pow(x, 2.0)))
    r = g.div(g.log(g.add(g.pow(y, 2.0), 1.5)), g.add(g.abs(x), 0.5))
    m = g.max0(g.sub(y, 0.1))
    q = g.pow(g.add(g.mul(x, x), 1.0), y)
    return g.sum(s, t, r, g.mul(m, x), q)


def test_backward_matches_finite_differences_of_the_whole_graph() -> None:
    rng = random.Random(7)
    for _ in range(20):
        point = [rng.uniform(-2, 2), rng.uniform(-2, 2)]
        g = Graph()
        x, y = g.input("x", point[0]), g.input("y", point[1])
        out = composite(g, x, y)
        assert not g.kinks()
        g.backward(out)

        def f(p: list[float]) -> float:
            return composite(Graph(), p[0], p[1]).value

        for i, node in enumerate((x, y)):
            assert close(node.adjoint, central_difference(f, point, i), rel=1e-5, floor=1e-8)


def test_adjoints_accumulate_over_repeated_use() -> None:
    g = Graph()
    x = g.input("x", 1.5)
    sq = g.mul(x, x)
    y = g.add(sq, x)
    g.backward(sq)
    assert x.adjoint == pytest.approx(3.0)
    assert y.adjoint == 0.0  # not upstream of sq
    g.backward(y)  # a second sweep starts from zero again
    assert x.adjoint == pytest.approx(4.0)
    assert len(g.paths(x, y)) == 3


def test_conventions_at_kinks_and_kink_reporting() -> None:
    g = Graph()
    x = g.input("x", 0.0)
    m = g.max0(x, name="m")
    a = g.abs(x, name="a")
    s = g.select(abs(x.value) <= 1.0, m, 0.0, cond_text="|x| ≤ δ", name="s")
    out = g.sum(s, a, g.max0(g.add(x, 1.0)), name="o")
    g.backward(out)
    assert m.local_partials() == (0.0,)
    assert a.local_partials() == (0.0,)
    assert x.adjoint == pytest.approx(1.0)  # only the max0(x + 1) branch is active
    assert s.definition == "(|x| ≤ δ) ? m : 0"
    assert s.local_partials() == (1.0, 0.0)
    assert s.symbolic_partials() == ("[|x| ≤ δ]", "[¬(|x| ≤ δ)]")
    assert g.kinks() == [m, a]
    assert out.definition == "s + a + n2"

    h = Graph()
    t = h.input("t", 2.0)
    off = h.select(False, t, h.mul(t, 3.0), "t < 0")
    h.backward(off)
    assert off.value == 6.0 and t.adjoint == 3.0
    assert h.kinks() == []


def test_numerical_robustness_gives_ieee_values() -> None:
    g = Graph()
    zero, one = g.const(0.0), g.const(1.0)
    assert g.exp(1000.0).value == math.inf
    assert g.log(zero).value == -math.inf
    assert math.isnan(g.log(-1.0).value)
    assert g.div(one, zero).value == math.inf
    assert g.div(-1.0, zero).value == -math.inf
    assert math.isnan(g.div(zero, zero).value)
    assert g.pow(zero, -1.0).value == math.inf
    assert math.isnan(g.pow(-8.0, 1 / 3).value)
    assert g.pow(10.0, 400.0).value == math.inf
    x = g.input("x", 0.0)
    root = g.pow(x, 0.5)
    g.backward(root)
    assert x.adjoint == math.inf


def test_pow_with_constant_exponent() -> None:
    g = Graph()
    t = g.input("t", -1.5)
    p = g.pow(t, 2.0)
    assert p.definition == "t^2" and p.extra == {"exponent": 2.0}
    assert p.symbolic_partials() == ("2·t", "0")
    assert p.local_partials() == (-3.0, 0.0)
    assert g.pow(t, 3.0).symbolic_partials()[0] == "3·t^2"
    assert g.pow(t, 0.5).symbolic_partials()[0] == "0.5·t^(-0.5)"
    b = g.input("b", 2.0)
    assert g.pow(t, b).symbolic_partials() == ("b·t^(b − 1)", "t^b·ln t")


def test_naming_rules() -> None:
    g = Graph()
    x = g.input("x", 2.0)
    a = g.mul(x, 3.0)
    b = g.sub(a, -0.3)
    assert (a.name, b.name) == ("n1", "n2")
    assert g["3"].is_const and g["-0.3"].value == -0.3
    assert b.definition == "n1 − (-0.3)"
    assert g.const(3.0) is g["3"]
    assert g.const(0.5, name="δ").definition == "0.5"
    with pytest.raises(ValueError, match="already exists"):
        g.input("x", 1.0)
    with pytest.raises(ValueError, match="already exists"):
        g.exp(x, name="n1")
    with pytest.raises(ValueError, match="does not belong"):
        Graph().exp(x)
    with pytest.raises(TypeError):
        g.apply("add", x)
    assert "n1" in g and a in g and x.is_input and not x.is_const


def test_sum_definition() -> None:
    g = Graph()
    us = [g.input(f"u{sub}", float(i)) for i, sub in enumerate("₁₂₃")]
    total = g.sum(*us)
    assert total.definition == "u₁ + u₂ + u₃"
    assert total.value == 3.0
    assert total.local_partials() == (1.0, 1.0, 1.0)


# Expression parser


def tanh_entry(g: Graph, a: Node) -> Node:
    u, v = g.exp(a), g.exp(g.neg(a))
    return g.div(g.sub(u, v), g.add(u, v))


def derivative(text: str, x_value: float, **kwargs: object) -> tuple[float, float]:
    expression = parse_expression(text, **kwargs)  # type: ignore[arg-type]
    g = Graph()
    x = g.input("x", x_value)
    out = expression.build(g, {"x": x})
    g.backward(out)
    return out.value, x.adjoint


def test_expression_with_a_caller_supplied_function() -> None:
    value, slope = derivative("x*tanh(x)", 0.7, functions={"tanh": tanh_entry})
    t = math.tanh(0.7)
    assert value == pytest.approx(0.7 * t)
    assert slope == pytest.approx(t + 0.7 * (1 - t * t))


def test_softplus_derivative_is_sigmoid() -> None:
    for x in (-2.0, 0.0, 0.3, 4.0):
        value, slope = derivative("log(1 + exp(x))", x)
        assert value == pytest.approx(math.log1p(math.exp(x)))
        assert slope == pytest.approx(1 / (1 + math.exp(-x)))


def test_squared_max_gate() -> None:
    assert derivative("max(0, x)**2", 1.5) == pytest.approx((2.25, 3.0))
    assert derivative("max(x, 0.0)**2", -1.0) == (0.0, 0.0)


def test_expression_forms() -> None:
    assert derivative("2*x", 3.0) == (6.0, 2.0)
    assert derivative("-x**2 + +x", 3.0) == (-6.0, -5.0)
    assert derivative("sqrt(x) / ln(x)", 4.0)[0] == pytest.approx(2 / math.log(4.0))
    assert derivative("abs(x) - e*pi", -2.0) == pytest.approx((2 - math.e * math.pi, -1.0))
    assert derivative("x", 1.25) == (1.25, 1.0)
    expression = parse_expression("x*y - 3", variables=("x", "y"))
    assert expression.evaluate(2.0, 5.0) == 7.0
    assert expression.evaluate(x=1.0, y=1.0) == -2.0
    assert parse_expression("exp(x)").evaluate(1.0) == pytest.approx(math.e)


def test_expression_build_names_nodes_deterministically() -> None:
    expression = parse_expression("x*exp(-x)")

    def names() -> list[str]:
        g = Graph()
        expression.build(g, {"x": g.input("x", 0.5)}, name="f")
        return [node.name for node in g.nodes]

    assert names() == names() == ["x", "n1", "n2", "f"]


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("__import__('os')", "__import__"),
        ("x.real", "attribute access is not allowed: 'x.real'"),
        ("os.system('ls')", "'os.system'"),
        ("().__class__", "().__class__"),
        ("lambda: 1", "lambda: 1"),
        ("[x for x in y]", "[x for x in y]"),
        ("open('f')", "unknown function 'open'"),
        ("x if x else 1", "x if x else 1"),
        ('"1" + x', '"1"'),
        ("x ^ 2", "use ** for powers"),
        ("x" * 10_000, "500"),
        ("(" * 200 + "x" + ")" * 200, "40"),
        ("foo(x)", "unknown function 'foo' (known: abs, exp, ln, log, max, sqrt)"),
        ("y + 1", "unknown variable 'y'"),
        ("exp(x=1)", "keyword"),
        ("exp(*x)", "starred"),
        ("exp(x, x)", "exp"),
        ("max(1, x)", "max(0, expr)"),
        ("x < 1", "comparison"),
        ("x and 1", "boolean"),
        ("(y := 2)", "assignment"),
        ("f'{x}'", "f-string"),
        ("x[0]", "x[0]"),
        ("1j * x", "complex"),
        ("True + x", "True"),
        ("x % 2", "'%'"),
        ("exp", "must be called"),
        ("x +", "cannot parse expression"),
        ("", "empty"),
    ],
)
def test_refusals_name_the_offending_part(text: str, mentions: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert mentions in str(info.value)


def test_deep_nesting_without_brackets_is_refused() -> None:
    with pytest.raises(ExpressionError, match="limit of 40"):
        parse_expression("-" * 100 + "x")
    with pytest.raises(ExpressionError, match="over the limit of 10"):
        parse_expression("x" + "+x" * 10, max_nodes=10)
    parse_expression("+".join(["x"] * 100))  # long, but not deep


def test_missing_input_node_is_reported() -> None:
    expression = parse_expression("x + y", variables=("x", "y"))
    g = Graph()
    with pytest.raises(ExpressionError, match="'y'"):
        expression.build(g, {"x": g.input("x", 1.0)})
