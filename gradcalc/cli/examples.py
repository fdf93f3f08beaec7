"""gradcalc examples: the bundled configs."""

from __future__ import annotations

import click

from gradcalc.cli.options import (
    check_indent,
    color_option,
    colour_wanted,
    format_option,
    indent_option,
    json_bytes,
)


@click.command(
    "examples",
    short_help="List the bundled example configs.",
    epilog="Example: gradcalc examples && gradcalc step --example worked-example",
)
@format_option("table", "json")
@indent_option
@color_option
def command(fmt: str, indent: int | None, color: str) -> None:
    """List the example configs bundled with gradcalc, each with a one-line description.

    Run one with `gradcalc step --example NAME`; copy one with
    `gradcalc examples --format json | jq -r '.[0].path'`.
    """
    check_indent(indent, fmt, "json")
    from gradcalc.step.examples import available, describe

    rows = [
        {"name": name, "description": describe(path), "path": str(path)}
        for name, path in available().items()
    ]
    if fmt == "json":
        click.echo(json_bytes(rows, indent), nl=False)
        return
    width = max((len(r["name"]) for r in rows), default=0)
    bold = colour_wanted(color)
    for r in rows:
        name = click.style(r["name"], bold=True) if bold else r["name"]
        padding = " " * (width - len(r["name"]))
        click.echo(f"{name}{padding}  {r['description']}", color=bold)
