"""gradcalc schema: the JSON Schema of a command's --format json document."""

from __future__ import annotations

import click

from gradcalc.cli.options import check_output, complete_path, emit, force_option
from gradcalc.contract import SCHEMAS


@click.command(
    "schema",
    short_help="Print the JSON Schema of a command's JSON output.",
    epilog=("\b\nExample:\n  gradcalc schema step -o step.schema.json"),
)
@click.argument("name", metavar="COMMAND", type=click.Choice(SCHEMAS))
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    shell_complete=complete_path,
    help="Write the schema to FILE instead (atomically); - is standard output.",
)
@force_option
def command(name: str, output: str | None, force: bool) -> None:
    """Print the JSON Schema (draft 2020-12) that COMMAND's `--format json` document follows:
    step, derive, check or list, and gradebook (check COURSE --class … --format json).
    Consumers should ignore keys a schema does not list: adding a
    key does not change format_version.
    """
    from gradcalc.contract import schema_path

    if output == "-":
        output = None
    if output is not None:
        check_output(output, force)
    emit(schema_path(name).read_text(encoding="utf-8"), output, "never", force)
