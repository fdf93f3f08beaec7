"""`gradcalc derive --format markdown|latex`: the worked derivation as a document, and --output.

The golden files tests/golden/derive-*.md and derive-*.tex are the real command's output. After an
intended change of that output, regenerate them and review the diff:

    python tests/regen_golden.py

The LaTeX compile test runs only where pdflatex is installed (it is skipped otherwise).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gradcalc.cli import cli
from gradcalc.derivation.solution import derive_style
from gradcalc.doc.notation import latex_text, markdown_text
from gradcalc.graph.tex import name_tex, tidy

HERE = Path(__file__).resolve().parent

_spec = importlib.util.spec_from_file_location("regen_golden", HERE / "regen_golden.py")
assert _spec is not None and _spec.loader is not None
regen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regen)

LOSS = ["cross_entropy", "--at", "0.2,0.7,0.1", "--target", "0,1,0"]
FORMULA = ["x*tanh(x)", "--at", "0.7"]
# Special characters a formula may hold, and a constant (pi) and a kink (abs at 0) besides.
ODD_FORMULA = ["x**2/(1 + abs(x)) - 3e-2*x + e**x - pi*x", "--at", "0"]
# About 40 nodes: the graph of a formula that calls several activations.
BIG_FORMULA = [
    "x*tanh(x) + sigmoid(x)**2 - log(1 + exp(x))/(1 + x**2) + relu(x)*x + exp(-x*x)/3"
    " + tanh(sigmoid(x))",
    "--at",
    "0.4",
]
SOFTMAX_10 = ["softmax", "--at", "1,2,3,4,5,6,7,8,9,10"]


def gradcalc(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"NO_COLOR": "1", "COLUMNS": "100"})


def document(fmt: str, *args: str) -> str:
    result = gradcalc("derive", *args, "--format", fmt)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.stdout


def derive_json(*args: str) -> dict[str, Any]:
    return json.loads(document("json", *args))


def mermaid(markdown: str) -> str:
    blocks = re.findall(r"```mermaid\n(.*?)\n```", markdown, flags=re.S)
    assert len(blocks) == 1, markdown
    return blocks[0]


def section(text: str, title: str) -> str:
    """From the Markdown heading `title` to the next heading of level two or one."""
    start = text.index(title + "\n")
    rest = text[start + len(title) :]
    end = re.search(r"\n#{1,2} ", rest)
    return rest[: end.start()] if end else rest


# -- golden files --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(regen.DERIVE_CASES))
def test_golden(name: str) -> None:
    expected = (HERE / "golden" / name).read_text(encoding="utf-8")
    assert regen.produce(regen.DERIVE_CASES[name]) == expected, (
        f"{name} differs from the command's output; if the change is intended, run "
        "`python tests/regen_golden.py` and review the diff"
    )


# -- what the sheet's pages hold -----------------------------------------------------------------
SIGMOID_LINES = [
    r"u &= -x = -0.3",
    r"v &= e^{u} = 0.740818",
    r"w &= 1 + v = 1.740818",
    r"f &= 1/w = 0.574443",
    # the edge partials
    r"\frac{\partial u}{\partial x} &= -1",
    r"\frac{\partial v}{\partial u} &= e^{u} = 0.740818",
    r"\frac{\partial f}{\partial w} &= -1/w^{2} = -0.329984",
    # the reverse sweep, output to input
    r"\frac{\partial f}{\partial w} &= -1/w^{2} = -0.329984",
    r"\frac{\partial f}{\partial v} &= \frac{\partial f}{\partial w}\frac{\partial w}{\partial v}"
    r" = \frac{\partial f}{\partial w} \cdot 1 = (-0.329984) \times 1 = -0.329984",
    r"\frac{\partial f}{\partial u} &= \frac{\partial f}{\partial v}\frac{\partial v}{\partial u}"
    r" = \frac{\partial f}{\partial v} \cdot e^{u} = (-0.329984) \times 0.740818 = -0.244458",
    r"\frac{\partial f}{\partial x} &= \frac{\partial f}{\partial u}\frac{\partial u}{\partial x}"
    r" = \frac{\partial f}{\partial u} \cdot (-1) = (-0.244458) \times (-1) = 0.244458",
]


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
def test_sigmoid_shows_the_sheets_numbers(fmt: str) -> None:
    text = document(fmt, "sigmoid", "--at", "0.3")
    lines = text.splitlines()
    for line in SIGMOID_LINES:
        assert line in lines or line + r" \\" in lines, line
    assert r"\sigma '(x) &= \sigma (x)(1 - \sigma (x))" in text  # the closed form
    sweep = text[text.index("Reverse sweep") :]
    assert sweep.index(r"\partial w} &=") < sweep.index(r"\partial v} &=")  # output first
    assert sweep.index(r"\partial v} &=") < sweep.index(r"\partial u} &=")
    for route in (
        "from the graph (the reverse sweep)",
        "from the closed form",
        "central difference",
    ):
        assert re.search(re.escape(route) + r".*\$0\.244458\$", text), route
    assert "the closed form and the finite differences agree" in text


def test_sigmoid_markdown_draws_the_sheets_graph() -> None:
    graph = mermaid(document("markdown", "sigmoid", "--at", "0.3"))
    assert graph.startswith("flowchart LR\n")
    assert 'n1["u = −x<br/>= −0.3<br/>∂f/∂u = −0.244458"]' in graph
    assert 'n3["w = 1 + v<br/>= 1.740818<br/>∂f/∂w = −0.329984"]' in graph
    assert 'n2 -->|"∂w/∂v = 1"| n3' in graph
    assert 'n3 -->|"∂f/∂w = −1/w² = −0.329984"| n4' in graph


def test_tanh_lists_the_four_paths_and_their_sum() -> None:
    doc = derive_json("tanh", "--at", "0.5")
    products = [derive_style()(p["product"]) for p in doc["paths"][0]["paths"]]
    for fmt in ("markdown", "latex"):
        text = document(fmt, "tanh", "--at", "0.5")
        assert "there are 4 paths" in text
        paths = text[text.index("sum over paths") :]
        # one product of edge partials per path, written as ∂y/∂w ∂w/∂u ∂u/∂x
        chains = re.findall(r"^(?:\\frac\{[^}]*\}\{[^}]*\}){2,} &= ", paths, flags=re.M)
        assert len(chains) == 4, chains
        for product in products:
            assert re.search(r"= " + re.escape(product) + r"( \\\\)?$", paths, flags=re.M)
        total = r"\frac{\partial y}{\partial x} &= " + " + ".join(products) + " = 0.786448"
        assert total in paths
    assert round(sum(p["product"] for p in doc["paths"][0]["paths"]), 6) == 0.786448


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
def test_relu_at_its_kink(fmt: str) -> None:
    text = document(fmt, "relu", "--at", "0")
    kink = text[text.index("Kink") :]
    assert "At x = 0 the function is not differentiable" in kink
    sep = " | " if fmt == "markdown" else " & "
    assert sep.join(["from the left", "$0$", "$0$"]) in kink
    assert sep.join(["from the right", "$1$", "$1$"]) in kink
    assert "Reported there: $0$, by convention" in kink
    assert "max gate passes no gradient at 0" in kink


@pytest.mark.parametrize(
    "args",
    [
        ["sigmoid", "--at", "0.3"],
        ["tanh", "--at", "0.5"],
        ["prelu", "--at", "-0.5"],
        ["softmax", "--at", "1,2,3"],
        ["huber", "--at", "0.5,2", "--target", "0,0"],
        LOSS,
        FORMULA,
        ODD_FORMULA,
    ],
    ids=lambda args: args[0],
)
def test_mermaid_draws_every_edge_and_node(args: list[str]) -> None:
    doc = derive_json(*args)
    graph = mermaid(document("markdown", *args))
    edges = re.findall(r"^  n\d+ -->\|\"[^\n]*\"\| n\d+$", graph, flags=re.M)
    assert len(edges) == len(doc["edges"])
    nodes = re.findall(r"^  n\d+(?:\(\[|\[)\"", graph, flags=re.M)
    assert len(nodes) == sum(n["kind"] != "const" for n in doc["graph"]["nodes"])
    # Quotes hold each label; what Mermaid would read as syntax inside it is an entity code.
    for line in graph.splitlines()[1:]:
        inside = "".join(re.findall(r"\"([^\"]*)\"", line)).replace("<br/>", "")
        assert inside and not set(inside) & set('|<>`"'), line


def test_mermaid_escapes_what_it_dislikes() -> None:
    graph = mermaid(document("markdown", "prelu", "--at", "-0.5"))
    assert '"∂y/∂x = [x #62; 0] = 0"' in graph  # > as its entity code, [ ] inside quotes
    huber = mermaid(document("markdown", "huber", "--at", "0.5", "--target", "0"))
    assert "#124;t₁#124;" in huber  # |t₁|


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
def test_softmax_has_the_jacobian_as_a_matrix(fmt: str) -> None:
    text = document(fmt, "softmax", "--at", "1,2,3")
    assert "0.0819251 & -0.0220330 & -0.0598920 \\\\\n" in text
    assert "-0.0220330 & 0.184836 & -0.162803 \\\\\n" in text
    assert "J &= \\begin{pmatrix}" in text
    assert "s_i(1 - s_j)" in text  # the closed form it is checked against
    first = document("json", "softmax", "--at", "1,2,3")
    assert json.loads(first)["jacobian"][0][0] == pytest.approx(0.0819251, abs=1e-7)


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
@pytest.mark.parametrize(
    "args",
    [
        LOSS,
        FORMULA,
        ["prelu", "--at", "-0.5,0,1", "--param", "a=0.1"],
        ["log(1 + exp(x))", "--at", "0.3"],
    ],
    ids=["loss", "formula", "prelu-several", "softplus-formula"],
)
def test_losses_formulas_and_several_points_render(fmt: str, args: list[str]) -> None:
    text = document(fmt, *args)
    if fmt == "latex":
        assert text.startswith("\\documentclass") and text.endswith("\\end{document}\n")
        assert text.isascii()
        packages = re.findall(r"\\usepackage(?:\[[^]]*\])?\{([^}]*)\}", text)
        assert packages == ["amsmath", "booktabs"]
    else:
        assert text.startswith("# The ") and "```mermaid\n" in text and "| --- |" in text


def test_a_loss_gives_its_gradient_vector() -> None:
    text = document("markdown", *LOSS)
    assert text.startswith("# The gradient of `cross_entropy` at $a = (0.2, 0.7, 0.1)$")
    assert r"\nabla_{a} C &= (0, -1.428571, 0)" in text
    assert "| 2 | $0.7$ | $1$ | $-1.428571$ | $-1.428571$ | $-1.428571$ |" in text
    assert "No path leads from $a_{1}$ to $C$" in text  # y₁ = 0 drops the term


def test_a_formula_says_it_has_no_closed_form() -> None:
    text = document("markdown", *FORMULA)
    assert "The formula `x*tanh(x)`, in $x$. It has no closed-form derivative here" in text
    assert "from the closed form | none (a formula) |" in text
    assert r"f &= x\cdot \tanh = 0.423057" in text


def test_prelu_gives_the_derivative_in_its_parameter() -> None:
    text = document("markdown", "prelu", "--at", "-0.5")
    assert r"\frac{\partial y}{\partial a} &= " in text
    assert "| $\\partial y/\\partial a$ from the graph | $-0.5$ |" in text
    assert "From $a$ to $y$ there is 1 path" in text


def test_several_points_work_the_first_and_table_the_rest() -> None:
    text = document("markdown", "sigmoid", "--at", "-1,0,0.3,2")
    assert text.startswith("# The derivative of `sigmoid` at 4 points")
    assert "$x = -1$" in text and "the other points ($0, 0.3, 2$)" in text
    every = section(text, "## Every point")
    rows = [line for line in every.splitlines() if line.startswith("| $") and "graph" not in line]
    assert len(rows) == 4
    assert rows[2].startswith("| $0.3$ | $0.574443$ | $0.244458$ | $0.244458$ | $0.244458$")


def test_big_graphs_stay_readable() -> None:
    doc = derive_json(*BIG_FORMULA)
    assert len(doc["graph"]["nodes"]) >= 40
    text = document("markdown", *BIG_FORMULA)
    assert text.startswith("# The derivative of a formula at $x = 0.4$")  # too long for a title
    assert re.search(r"… \d+ more nodes not written out", text)
    soft = document("markdown", *SOFTMAX_10)
    assert re.search(r"t &= u_\{1\} \+ u_\{2\} \+ u_\{3\} \+ \\dots \+ u_\{10\} = ", soft)
    assert "\\cdots \\\\\n" in soft and "\\vdots" in soft  # the Jacobian is capped
    assert re.search(r"\(the first \d outputs of 10\):", soft)  # as many as fit a page
    # 10 inputs, 10 exponentials, t and 10 outputs, and s₁₀ (above ½) through r, q and w: 34
    # nodes; edges a → u (10), into t (10), into s₁ … s₉ (18), into r (9), r → q, u₁₀ → q,
    # q → w and w → s₁₀.
    assert len(mermaid(soft).splitlines()) == 1 + 34 + 51


# -- escaping ------------------------------------------------------------------------------------
def test_user_strings_are_escaped() -> None:
    assert latex_text("a_b 100% #1 & \\ y₁ ≤ δ") == (
        r"a\_b 100\% \#1 \& \textbackslash{} y$_{1}$ $\le$ $\delta$"
    )
    assert markdown_text("a_b *c* [d] `e` $f$ |g|") == (r"a\_b \*c\* \[d\] \`e\` \$f\$ \|g\|")
    huber = document("latex", "huber", "--at", "0.5,-2", "--target", "1,-1")
    assert r"h_{1} &= (\vert t_{1}\vert \le \delta ) \mathrel{?} u_{1} : w_{1} = " in huber
    assert r"&= e^{-x} = " in document("latex", "tanh", "--at", "0.5")
    assert r"&= 0.5\cdot n_{2}^{-0.5} = " in document("latex", "sqrt(1 + x**2)", "--at", "0.7")
    assert tidy(name_tex("a_b%#&{}")) == r"a\_b\%\#\&\{\}"
    tex = document("latex", "leaky_relu", "--at", "0")
    assert r"\texttt{leaky\_relu}" in tex and "leaky_relu" not in tex
    odd = document("latex", *ODD_FORMULA)
    assert r"\texttt{x*\allowbreak{}*\allowbreak{}2/\allowbreak{}(1 +\allowbreak{} abs(x))" in odd
    assert r"\pi \cdot x" in odd and "?" not in odd.replace(r"\mathrel{?}", "")
    assert "`x**2/(1 + abs(x)) - 3e-2*x + e**x - pi*x`" in document("markdown", *ODD_FORMULA)


# -- LaTeX compiles ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["sigmoid", "--at", "0.3"],
        ["tanh", "--at", "0.5"],
        ["softmax", "--at", "1,2,3"],
        ["hinge", "--at", "0.5,-2,1", "--target", "1,-1,1"],
        ODD_FORMULA,
        ["relu", "--at", "-1,0,2"],
        LOSS,
        SOFTMAX_10,
        BIG_FORMULA,
    ],
    ids=["sigmoid", "tanh", "softmax", "hinge", "odd-formula", "relu", "loss", "softmax10", "big"],
)
def test_latex_compiles(tmp_path: Path, args: list[str], pdflatex: Callable[[Path], str]) -> None:
    result = gradcalc("derive", *args, "--format", "latex", "-o", str(tmp_path / "d.tex"))
    assert result.exit_code == 0, result.output
    log = pdflatex(tmp_path / "d.tex")
    assert "Overfull \\hbox" not in log  # nothing runs off the page


# -- --output ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["table", "json", "dot", "markdown", "latex"])
def test_output_writes_the_same_bytes_as_stdout(tmp_path: Path, fmt: str) -> None:
    args = ["derive", "tanh", "--at", "0.5", "--format", fmt]
    stdout = gradcalc(*args).stdout
    target = tmp_path / "out.txt"
    result = gradcalc(*args, "--output", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert target.read_bytes() == stdout.encode("utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary file left
    again = gradcalc(*args, "-o", str(target))  # -o, over an existing file
    assert again.exit_code == 0 and target.read_bytes() == stdout.encode("utf-8")


def test_a_failed_run_leaves_no_file_and_keeps_an_old_one(tmp_path: Path) -> None:
    new, old = tmp_path / "new.md", tmp_path / "old.md"
    result = gradcalc("derive", "sigmod", "--at", "0.3", "--format", "markdown", "-o", str(new))
    assert result.exit_code == 2 and "did you mean 'sigmoid'?" in result.output
    assert not new.exists()
    old.write_text("keep me", encoding="utf-8")
    result = gradcalc("derive", "sigmod", "--at", "0.3", "--format", "latex", "-o", str(old))
    assert result.exit_code == 2
    assert old.read_text(encoding="utf-8") == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["old.md"]


def test_output_refuses_a_directory(tmp_path: Path) -> None:
    result = gradcalc("derive", "sigmoid", "--at", "0.3", "--output", str(tmp_path))
    assert result.exit_code == 2 and "is a directory" in result.output
    result = gradcalc("derive", "sigmoid", "--at", "0.3", "-o", str(tmp_path / "no" / "x.md"))
    assert result.exit_code == 2 and "does not exist" in result.output
    assert list(tmp_path.iterdir()) == []


def test_help_lists_the_formats_and_output() -> None:
    text = gradcalc("derive", "--help").stdout
    assert "markdown" in text and "latex" in text and "-o, --output FILE" in text
    assert text.rstrip().splitlines()[-1].strip().startswith("gradcalc derive")
