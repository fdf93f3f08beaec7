"""The command line: the only place that prints errors and chooses exit statuses.

Commands live in sibling modules and are imported only when called, so `gradcalc --version` or a
script's hundredth call does not pay for numpy and rich it does not use.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from gradcalc import __version__
from gradcalc.errors import GradcalcError

COMMANDS = {
    "step": "gradcalc.cli.step",
    "derive": "gradcalc.cli.derive",
    "list": "gradcalc.cli.listing",
    "examples": "gradcalc.cli.examples",
    "check": "gradcalc.cli.check",
    "completion": "gradcalc.cli.completion",
}


class UserError(click.ClickException):
    """A GradcalcError on its way out: one line on stderr, its own exit status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        return importlib.import_module(module).command

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            from gradcalc.errors import did_you_mean

            ctx.fail(f"no such command '{name}' ({did_you_mean(name, self.list_commands(ctx))})")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GradcalcError as exc:
            raise UserError(str(exc), exc.exit_code) from None


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Example: gradcalc step --example worked-example",
)
@click.version_option(__version__, "-V", "--version", prog_name="gradcalc")
def cli() -> None:
    """Gradient calculator: trace backpropagation through a network defined in YAML, and work
    derivatives through their computational graphs, in Nielsen's notation.

    Exit status: 0 success, 1 the computation diverged (a non-finite value),
    2 bad input (config, options or names).
    """


def main() -> None:
    try:
        cli.main(prog_name="gradcalc")
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); that is not an error of ours.
        sys.stderr.close()
        sys.exit(0)
