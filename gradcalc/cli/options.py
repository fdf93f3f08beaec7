"""Options shared by several commands."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

no_color_option = click.option(
    "--no-color", is_flag=True, help="Plain text even on a terminal (NO_COLOR=1 does the same)."
)


def console(no_color: bool) -> Any:
    from rich.console import Console

    plain = no_color or bool(os.environ.get("NO_COLOR"))
    return Console(
        no_color=plain,
        highlight=False,
        emoji=False,
        soft_wrap=False,
        color_system=None if plain else "auto",
    )


def format_option(*choices: str, default: str = "table") -> Callable[[Any], Any]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=default,
        show_default=True,
        help="Output format. JSON is the machine-readable contract.",
    )
