"""`gradcalc derive` and `gradcalc list` through the real command line."""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gradcalc.cli import cli
from gradcalc.functions.activations import ACTIVATIONS
from gradcalc.functions.losses import LOSSES


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="gradcalc")


def derive_json(*args: str) -> dict[str, Any]:
    result = run("derive", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def table(*args: str) -> str:
    result = run("derive", *args, "--no-color")
    assert result.exit_code == 0, result.stderr
    return result.stdout


def row(text: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is ``first``."""
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{text}")


# ---- the Done-when -------------------------------------------------------------------


def test_sigmoid_at_the_sheets_point_table() -> None:
    text = table("sigmoid", "--at", "0.3")
    for name, definition, value in [
        ("u", "−x", "-0.3"),
        ("v", "e^u", "0.740818"),
        ("w", "1 + v", "1.740818"),
        ("f", "1/w", "0.574443"),
    ]:
        assert row(text, name)[1:3] == [definition, value]
    sweep = text.split("Reverse sweep")[1].split("Chain rule")[0]
    assert row(sweep, "w")[-1] == row(sweep, "v")[-1] == "-0.329984"  # exactly −1/w²
    assert row(sweep, "u")[-1] == "-0.244458"
    assert row(sweep, "x")[-1] == "0.244458"
    three = text.split("three ways")[1]
    for route in ("graph (reverse sweep)", "closed form"):
        assert row(three, route)[1] == "0.244458"
    assert row(three, "central difference (h = 6.06e-06)")[1] == "0.244458"
    assert "graph, closed form and finite differences agree" in three


def test_sigmoid_at_the_sheets_point_json() -> None:
    doc = derive_json("sigmoid", "--at", "0.3")
    nodes = {n["name"]: n for n in doc["graph"]["nodes"]}
    assert [n["name"] for n in doc["graph"]["nodes"] if n["kind"] != "const"] == list("xuvwf")
    assert nodes["w"]["expression"] == "1 + v"
    w = nodes["w"]["value"]
    assert nodes["w"]["adjoint"] == nodes["v"]["adjoint"] == -1 / w**2
    assert round(nodes["u"]["adjoint"], 6) == -0.244458
    for value in (doc["derivative"], doc["closed_form"], doc["numeric"]["derivative"]):
        assert round(value, 6) == 0.244458
    assert doc["agreement"]["ok"] is True
    assert {(e["from"], e["to"], e["partial"]) for e in doc["edges"]} == {
        ("x", "u", "−1"),
        ("u", "v", "e^u"),
        ("v", "w", "1"),
        ("w", "f", "−1/w²"),
    }


def test_softmax_jacobian_json() -> None:
    doc = derive_json("softmax", "--at", "1,2,3")
    expected = [0.0819251, -0.0220330, -0.0598920]
    assert doc["jacobian"][0] == pytest.approx(expected, abs=5e-8)
    assert len(doc["jacobian"]) == 3 and all(len(r) == 3 for r in doc["jacobian"])
    assert doc["closed_form"]["jacobian"][0] == pytest.approx(expected, abs=5e-8)
    assert doc["numeric"]["jacobian"][0] == pytest.approx(expected, abs=5e-8)
    assert doc["value"] == pytest.approx([0.0900306, 0.2447285, 0.6652410], abs=5e-8)
    assert set(doc["graph"]["nodes"][0]["adjoints"]) == {"s₁", "s₂", "s₃"}


def test_tanh_lists_four_paths() -> None:
    text = table("tanh", "--at", "0.5")
    chain = text.split("Chain rule")[1].split("three ways")[0]
    assert "4 paths from x" in chain
    paths = [line for line in chain.splitlines() if line.startswith("x →")]
    assert len(paths) == 4
    assert row(chain, "sum = ∂y/∂x")[-1] == "0.786448"
    doc = derive_json("tanh", "--at", "0.5")
    (paths_doc,) = doc["paths"]
    assert paths_doc["count"] == 4 and len(paths_doc["paths"]) == 4
    assert round(paths_doc["sum"], 6) == 0.786448
    assert sum(p["product"] for p in paths_doc["paths"]) == pytest.approx(paths_doc["sum"])


def test_relu_at_zero_explains_the_kink() -> None:
    text = " ".join(table("relu", "--at", "0").split())  # notes wrap at the terminal's width
    assert "not differentiable at x = 0" in text
    assert "from the left is 0 and from the right 1" in text
    assert "reported: 0" in text and "max gate passes no gradient" in text
    doc = derive_json("relu", "--at", "0")
    assert doc["derivative"] == 0.0
    (kink,) = doc["kinks"]
    assert (kink["left"], kink["right"], kink["reported"]) == (0.0, 1.0, 0.0)
    assert kink["differentiable"] is False
    assert doc["numeric"] == {
        "method": "one-sided",
        "left": pytest.approx(0.0, abs=1e-9),
        "right": pytest.approx(1.0),
        "step": pytest.approx(6.055e-6, rel=1e-3),
    }


# ---- more of the contract --------------------------------------------------------------------


def test_several_points_give_one_derivative_each() -> None:
    doc = derive_json("sigmoid", "--at", "0.3,-50,50")
    assert isinstance(doc["derivative"], list) and len(doc["derivative"]) == 3
    assert doc["derivative"][0] == pytest.approx(0.2444583117)
    assert doc["derivative"][1] == pytest.approx(1.9287498e-22, rel=1e-6)
    assert len(doc["points"]) == 3 and doc["points"][2]["at"] == 50.0
    assert doc["at"] == [0.3, -50.0, 50.0]
    text = table("sigmoid", "--at", "0.3,-50,50")
    assert "Every point" in text and "graph at the first point" in text


def test_prelu_gives_the_parameter_gradient() -> None:
    doc = derive_json("prelu", "--at", "-0.5", "--param", "a=0.1")
    assert doc["derivative"] == pytest.approx(0.1)
    assert doc["parameter_gradients"] == {"a": -0.5}
    assert doc["graph"]["inputs"] == ["x", "a"]
    assert doc["numeric"]["parameter_gradients"]["a"] == pytest.approx(-0.5)


def test_loss_value_and_gradient() -> None:
    doc = derive_json("cross_entropy", "--at", "0.2,0.7,0.1", "--target", "0,1,0")
    assert doc["value"] == pytest.approx(0.35667494)
    assert doc["gradient"] == pytest.approx([0.0, -1 / 0.7, 0.0])
    assert "derivative" not in doc and doc["target"] == [0.0, 1.0, 0.0]
    names = [n["name"] for n in doc["graph"]["nodes"]]
    assert {"u₂", "v₂", "C"} <= set(names) and "u₁" not in names  # y₁ = 0 terms drop out

    hinge = derive_json("hinge", "--at", "1,0.5,-2", "--target", "1,-1,1")
    assert hinge["gradient"] == [0.0, 1.0, -1.0]
    assert hinge["kinks"][0]["where"] == "y₁ a₁ = 1"
    assert hinge["numeric"]["one_sided"][0]["index"] == 1


def test_huber_delta_and_its_smooth_junction() -> None:
    doc = derive_json("huber", "--at", "0.5,3", "--target", "0,1", "--param", "delta=0.5")
    assert doc["gradient"] == pytest.approx([0.25, 0.25])
    assert doc["params"] == {"delta": 0.5}
    (kink,) = doc["kinks"]
    assert kink["differentiable"] is True and kink["left"] == kink["right"] == 0.25
    assert any("differentiable there" in note for note in doc["notes"])


@pytest.mark.parametrize(
    ("formula", "x", "value", "slope"),
    [
        ("x*tanh(x)", 0.7, 0.4230574440, 1.0486854901),
        ("log(1 + exp(x))", 0.3, 0.8543552445, 0.5744425168),
        ("max(0, x)**2", 1.5, 2.25, 3.0),
        ("max(0, x)**2", -1.0, 0.0, 0.0),
        ("sigmoid(x) * relu(x)", 2.0, 1.7615941560, 1.0907842488),
    ],
)
def test_expressions(formula: str, x: float, value: float, slope: float) -> None:
    doc = derive_json(formula, "--at", repr(x))
    assert doc["kind"] == "expression"
    assert doc["value"] == pytest.approx(value)
    assert doc["derivative"] == pytest.approx(slope)
    assert doc["numeric"]["derivative"] == pytest.approx(slope, rel=1e-6, abs=1e-9)
    assert doc["closed_form"] is None and doc["agreement"]["ok"] is True


def test_expression_calls_build_the_registry_decompositions() -> None:
    doc = derive_json("x*tanh(x)", "--at", "0.7")
    names = [n["name"] for n in doc["graph"]["nodes"]]
    assert names == ["x", "u", "−x", "v", "w", "z", "tanh", "f"]
    twice = derive_json("sigmoid(x) + sigmoid(2*x)", "--at", "0.1")
    assert {"σ", "σ2", "u2"} <= {n["name"] for n in twice["graph"]["nodes"]}


def test_expression_at_a_kink_uses_one_sided_differences() -> None:
    doc = derive_json("max(0, x)**2", "--at", "0")
    assert doc["derivative"] == 0.0
    assert doc["numeric"]["method"] == "one-sided"
    assert doc["kinks"][0]["differentiable"] is True
    absolute = derive_json("abs(x)", "--at", "0")
    assert absolute["kinks"][0]["differentiable"] is False
    assert absolute["numeric"]["left"] == pytest.approx(-1) and absolute["agreement"]["ok"]


@pytest.mark.parametrize("name", [a.name for a in ACTIVATIONS])
def test_large_inputs_never_warn_or_fail(name: str) -> None:
    at = "-1000,-50,50,1000" if name != "softmax" else "1000,-50,50"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        doc = derive_json(name, "--at", at)
    if name == "softmax":
        assert all(v is not None for r in doc["jacobian"] for v in r)
    else:
        assert all(d is not None for d in doc["derivative"])
    assert doc["agreement"]["ok"] is True


def test_graph_overflow_is_said_and_the_closed_form_reported() -> None:
    doc = derive_json("sigmoid", "--at", "-1000")
    assert doc["derivative"] == 0.0  # e^−1000 underflows; the closed form stands in
    assert any("leaves float64" in note for note in doc["notes"])
    assert doc["non_finite_nodes"]


def test_no_color_has_no_escape_codes() -> None:
    assert "\x1b[" not in table("hinge", "--at", "1", "--target", "1")


# ---- dot -------------------------------------------------------------------------------------


def _unquoted(text: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)


@pytest.mark.parametrize(
    "args",
    [
        ("tanh", "--at", "0.5"),
        ("relu", "--at", "0,1"),
        ("softmax", "--at", "1,2,3"),
        ("huber", "--at", "0.5,3", "--target", "0,1"),
        ("x*tanh(x)", "--at", "0.7"),
    ],
)
def test_dot_is_a_digraph_with_one_line_per_edge(args: tuple[str, ...]) -> None:
    result = run("derive", *args, "--format", "dot")
    assert result.exit_code == 0
    dot = result.stdout
    assert dot.startswith("digraph ")
    bare = _unquoted(dot)
    assert bare.count("{") == bare.count("}") >= 1
    doc = derive_json(*args)
    points = doc.get("points") or [doc]
    edges = sum(len(p["edges"]) for p in points)
    assert len([line for line in dot.splitlines() if "->" in _unquoted(line)]) == edges
    assert all(line.rstrip().endswith(("{", "}", ";")) for line in dot.splitlines() if line)


def test_dot_escapes_quotes_and_backslashes() -> None:
    from gradcalc.derivation.dot import _quote

    assert _quote('say "hi" \\ bye\nnext') == '"say \\"hi\\" \\\\ bye\\nnext"'


# ---- list ------------------------------------------------------------------------------------


def test_list_json_has_every_entry() -> None:
    result = run("list", "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert [a["name"] for a in doc["activations"]] == [a.name for a in ACTIVATIONS]
    assert [x["name"] for x in doc["losses"]] == [x.name for x in LOSSES]
    for entry in doc["activations"] + doc["losses"]:
        assert entry["formula"] and entry["derivative"]
        assert isinstance(entry["params"], list)
    leaky = next(a for a in doc["activations"] if a["name"] == "leaky_relu")
    assert leaky["params"][0]["name"] == "alpha" and leaky["params"][0]["default"] == 0.01
    assert leaky["kinks"][0]["where"] == "z = 0"


def test_list_table_shows_every_entry() -> None:
    result = run("list", "--no-color")
    assert result.exit_code == 0
    text = result.stdout
    for record in [*ACTIVATIONS, *LOSSES]:
        assert re.search(rf"\b{record.name}\b", text), record.name
    assert "alpha = 0.01" in text and "delta = 1" in text


@pytest.mark.parametrize("command", ["derive", "list"])
def test_help_ends_with_an_example(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout.split("Options:")[1]


# ---- bad input -------------------------------------------------------------------------------


BAD = [
    (["sigmod", "--at", "1"], "unknown function 'sigmod' (did you mean 'sigmoid'?)"),
    (["hinj", "--at", "1"], "did you mean 'hinge'?"),
    (["sigmoid"], "give the point with --at"),
    (["sigmoid", "--at", "1,x"], "--at: 'x' is not a number"),
    (["sigmoid", "--at", ""], "--at needs a number"),
    (["sigmoid", "--at", "1,,2"], "an empty value"),
    (["sigmoid", "--at", "inf"], "'inf' is not a finite number"),
    (["sigmoid", "--at", "nan"], "'nan' is not a finite number"),
    (["sigmoid", "--at", "1e999"], "not a finite number"),
    (["mse", "--at", "1,2"], "mse is a loss: give the target with --target"),
    (["mse", "--at", "1,2", "--target", "1"], "--at has 2 values but --target has 1"),
    (["mse", "--at", "1", "--target", "inf"], "--target: 'inf' is not a finite number"),
    (["sigmoid", "--at", "1", "--target", "1"], "--target is only for losses"),
    (["hinge", "--at", "1", "--target", "0.5"], "--target: hinge: needs targets"),
    (["cross_entropy", "--at", "0", "--target", "1"], "--at: cross_entropy: needs a_j > 0"),
    (["leaky_relu", "--at", "1", "--param", "alpa=1"], "did you mean 'alpha'?"),
    (["leaky_relu", "--at", "1", "--param", "alpha=-1"], "alpha must be ≥ 0, got -1"),
    (["elu", "--at", "1", "--param", "alpha=0"], "alpha must be > 0, got 0"),
    (["leaky_relu", "--at", "1", "--param", "alpha"], "--param expects KEY=VALUE"),
    (["leaky_relu", "--at", "1", "--param", "alpha=big"], "'big' is not a number"),
    (["leaky_relu", "--at", "1", "--param", "alpha=inf"], "alpha must be a finite number"),
    (["sigmoid", "--at", "1", "--param", "a=1"], "sigmoid takes no parameters"),
    (["huber", "--at", "1", "--target", "1", "--param", "delta=1", "--param", "delta=2"], "twice"),
    (["relu(x)", "--at", "1", "--param", "alpah=2"], "did you mean 'alpha'?"),
    (["elu(x)", "--at", "1", "--param", "alpha=-1"], "alpha must be > 0"),
    (["log(x)", "--at", "-1"], "log(x) is nan at x = -1"),
    (["1/x", "--at", "0"], "1/x is inf at x = 0"),
    (["mse", "--at", ",".join(["1"] * 101), "--target", "1"], "over the limit of 100"),
]

REFUSED = [
    ("__import__('os').system('x')", "attribute access is not allowed"),
    ("__import__('os')", "unknown function '__import__'"),
    ("x.real", "'x.real'"),
    ("lambda: x", "lambda"),
    ("[x for x in y]", "a comprehension is not allowed: '[x for x in y]'"),
    ("(x for x in y)", "a generator expression"),
    ("open('f')", "unknown function 'open'"),
    ("softmax(x)", "unknown function 'softmax'"),
    ("x ^ 2", "use ** for powers"),
    ("x" * 600, "over the limit of 500"),
    ("(" * 60 + "x" + ")" * 60, "over the limit of 40"),
    ("exp(x, x)", "wrong number of arguments"),
    ("y + x", "unknown variable 'y'"),
]


def _one_line_error(result: Result, mentions: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert mentions in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(("args", "mentions"), BAD, ids=[" ".join(a)[:50] for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(args: list[str], mentions: str) -> None:
    _one_line_error(run("derive", *args), mentions)


@pytest.mark.parametrize(("formula", "mentions"), REFUSED, ids=[f[:30] for f, _ in REFUSED])
def test_refused_expressions_name_the_offending_part(formula: str, mentions: str) -> None:
    _one_line_error(run("derive", formula, "--at", "1"), mentions)


def test_a_param_a_formula_does_not_use_is_noted() -> None:
    doc = derive_json("x", "--at", "1", "--param", "alpha=2")
    assert any("--param alpha has no effect" in note for note in doc["notes"])
