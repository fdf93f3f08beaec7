"""gradcalc derive: a derivative worked through its computational graph, checked three ways."""

from __future__ import annotations

import click

from gradcalc.cli.options import console, format_option, no_color_option


@click.command(
    "derive",
    epilog=(
        "\b\nExample:\n"
        "  gradcalc derive sigmoid --at 0.3\n"
        "  gradcalc derive softmax --at 1,2,3 --format json\n"
        "  gradcalc derive hinge --at 0.5,-2 --target 1,-1\n"
        '  gradcalc derive "x*tanh(x)" --at 0.7 --format dot | dot -Tsvg > graph.svg'
    ),
)
@click.argument("name", metavar="NAME")
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
    help="A parameter of the function (e.g. alpha=0.1 for leaky_relu, delta=0.5 for "
    "huber); repeat for several. `gradcalc list` shows them.",
)
@format_option("table", "json", "dot")
@no_color_option
def command(
    name: str, at: str | None, target: str | None, params: tuple[str, ...], fmt: str, no_color: bool
) -> None:
    """Differentiate NAME at a point the way the sheet does by hand: decompose it into a graph
    of primitives, put the local partial derivative on every edge, sweep backwards, and check
    the result against the closed form and a finite difference.

    NAME is an activation or a loss (see `gradcalc list`), or a formula in x such as
    "log(1 + exp(x))" that may call the activations (tanh(x), sigmoid(x), relu(x), ...).
    At a kink the output says so, gives both one-sided derivatives and the convention used.
    """
    from gradcalc.derive import derive

    trace = derive(name, at, target, params)
    if fmt == "json":
        from gradcalc.render import derive_json

        click.echo(derive_json.render(trace), nl=False)
    elif fmt == "dot":
        from gradcalc.render import derive_dot

        click.echo(derive_dot.render(trace), nl=False)
    else:
        from gradcalc.render import derive_table

        derive_table.render(trace, console(no_color))
