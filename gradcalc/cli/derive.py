"""gradcalc derive: a derivative worked through its computational graph, checked three ways."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from gradcalc.cli.options import (
    View,
    check_indent,
    check_output,
    color_option,
    complete_function,
    complete_path,
    digits_option,
    emit,
    force_option,
    format_option,
    indent_option,
    json_bytes,
)
from gradcalc.doc import DOCUMENTS, write_document

if TYPE_CHECKING:
    from gradcalc.derivation.engine import DeriveTrace


def _complete_param(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """KEY= for each parameter of the activation or loss NAME (none for a formula in x)."""
    from gradcalc.functions.activations import REGISTRY as ACTIVATIONS
    from gradcalc.functions.losses import REGISTRY as LOSSES

    # Completing an option's value, click may leave NAME unparsed in ctx.args.
    name = ctx.params.get("name") or next(iter(ctx.args), "")
    record = ACTIVATIONS.get(name) or LOSSES.get(name)
    keys = [f"{p.name}=" for p in record.params] if record is not None else []
    return [key for key in keys if key.startswith(incomplete)]


@click.command(
    "derive",
    short_help="Work a derivative through its computational graph.",
    epilog=(
        "\b\nExample:\n"
        "  gradcalc derive sigmoid --at 0.3\n"
        "  gradcalc derive softmax --at 1,2,3 --format json\n"
        "  gradcalc derive hinge --at 0.5,-2 --target 1,-1\n"
        '  gradcalc derive "x*tanh(x)" --at 0.7 --format dot | dot -Tsvg > graph.svg\n'
        "  gradcalc derive tanh --at 0.5 --format latex -o tanh.tex && pdflatex tanh.tex"
    ),
)
@click.argument("name", metavar="NAME", shell_complete=complete_function)
@click.option(
    "--at",
    "at",
    metavar="X[,X...]",
    help="The point: one or more x for an activation or a formula (one derivative "
    "each), the vector a for softmax or a loss.",
)
@click.option("--target", metavar="Y[,Y...]", help="A loss's target y, as many values as --at.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    shell_complete=_complete_param,
    help="A parameter of the function (e.g. alpha=0.1 for leaky_relu, delta=0.5 for "
    "huber); repeat for several. `gradcalc list` shows them.",
)
@format_option("table", "json", "dot", "svg", *DOCUMENTS)
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    shell_complete=complete_path,
    help="Write the output to FILE instead, atomically (any format), e.g. -o sigmoid.md; "
    "- is standard output.",
)
@force_option
@indent_option
@digits_option("default 6")
@color_option
def command(
    name: str,
    at: str | None,
    target: str | None,
    params: tuple[str, ...],
    fmt: str,
    output: str | None,
    force: bool,
    indent: int | None,
    digits: int | None,
    color: str,
) -> None:
    """Differentiate NAME at a point the way the sheet does by hand: decompose it into a graph
    of primitives, put the local partial derivative on every edge, sweep backwards, and check
    the result against the closed form and a finite difference.

    NAME is an activation or a loss (see `gradcalc list`), or a formula in x such as
    "log(1 + exp(x))" that may call the activations (tanh(x), sigmoid(x), relu(x), ...).
    At a kink the output says so, gives both one-sided derivatives and the convention used.
    Markdown (with the graph as a Mermaid diagram) and LaTeX write the same page as a
    standalone worked derivation.
    """
    from gradcalc.derivation.engine import derive

    check_indent(indent, fmt, "json")
    if output == "-":
        output = None
    if output is not None:
        check_output(output, force)
    trace = derive(name, at, target, params)
    view = _json(trace, indent) if fmt == "json" else WRITERS[fmt](trace, digits or 6)
    emit(view, output, color, force)
    _exit_if_suspect(trace)


def _exit_if_suspect(trace: DeriveTrace) -> None:
    """A calculator that knows its answer is suspect must not exit 0 (exit status 3)."""
    from gradcalc.derivation.agreement import disagreement
    from gradcalc.errors import SuspectResult

    problem = disagreement(trace)
    if problem is not None:
        raise SuspectResult(problem)


def _json(trace: DeriveTrace, indent: int | None = None) -> View:
    from gradcalc.derivation import json

    return json_bytes(json.document(trace), indent)


def _dot(trace: DeriveTrace, digits: int) -> View:
    from gradcalc.derivation import dot

    return dot.render(trace, digits)


def _svg(trace: DeriveTrace, digits: int) -> View:
    from gradcalc.derivation import picture
    from gradcalc.doc import svg

    return svg.write(picture.build(trace, digits))


def _html(trace: DeriveTrace, digits: int) -> View:
    """The worked derivation's page, with its graph drawn."""
    from gradcalc.derivation import picture
    from gradcalc.derivation.solution import build
    from gradcalc.doc import html, svg

    blocks: list[Any] = list(build(trace, "markdown", digits))
    graph = html.Picture(
        svg.write(picture.build(trace, digits), standalone=False),
        "The computational graph: each node's value and adjoint, each edge's partial.",
    )
    return html.write([*blocks[:1], graph, *blocks[1:]])


def _document(fmt: str) -> Callable[[DeriveTrace, int], View]:
    """A document format of gradcalc.doc.DOCUMENTS: the derivation as one compact page."""

    def write(trace: DeriveTrace, digits: int) -> View:
        from gradcalc.derivation.solution import build

        return write_document(fmt, build(trace, DOCUMENTS[fmt][1], digits), compact=True)

    return write


def _table(trace: DeriveTrace, digits: int) -> View:
    from gradcalc.derivation import table
    from gradcalc.doc.plain import Drawing

    return Drawing(
        lambda con: table.render(trace, con, digits),
        lambda width: table.render_plain(trace, width, digits),
    )


# --format -> the writer; every writer takes the trace and the significant digits to write.
WRITERS: dict[str, Callable[[DeriveTrace, int], View]] = {
    "table": _table,
    "json": lambda trace, digits: _json(trace),
    "dot": _dot,
    "svg": _svg,
    **{fmt: _document(fmt) for fmt in DOCUMENTS},
    "html": _html,
}
