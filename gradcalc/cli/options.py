"""Options shared by several commands."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gradcalc.errors import GradcalcError

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


# What a writer hands back: finished text, or a drawing on a rich console (tables, --explain).
View = str | Callable[[Any], None]


def emit(view: View, output: str | None, no_color: bool) -> None:
    """Print a view, or write it to --output (captured without colour, atomically)."""
    if isinstance(view, str):
        text = view
    else:
        con = console(no_color or output is not None)
        if output is None:
            view(con)
            return
        con.begin_capture()
        view(con)
        text = con.end_capture()
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomically(output, text)


def format_option(*choices: str, default: str = "table") -> Callable[[Any], Any]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=default,
        show_default=True,
        help="Output format. JSON is the machine-readable contract.",
    )


def digits_option(defaults: str) -> Callable[[Any], Any]:
    return click.option(
        "--digits",
        type=click.IntRange(1, 17),
        metavar="N",
        help=f"Significant digits of the numbers written ({defaults}); JSON always has "
        "every digit.",
    )


def check_output(output: str) -> None:
    """Refuse, before any work, an --output that cannot become a file: a directory, or a name in
    a directory that does not exist."""
    target = Path(output)
    if target.is_dir():
        raise GradcalcError(f"--output {output}: is a directory; give a file name")
    if not target.parent.is_dir():
        raise GradcalcError(f"--output {output}: directory {target.parent} does not exist")


def write_atomically(output: str, text: str) -> None:
    """Write to a temporary file beside the target, then rename it over the target: a reader
    (or a failed run) never sees half a file."""
    import tempfile

    check_output(output)
    target = Path(output)
    # mkstemp makes the file private (0600); give it the mode an ordinary open() would.
    if target.exists():
        mode = target.stat().st_mode & 0o777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise GradcalcError(f"--output {output}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        raise GradcalcError(f"--output {output}: cannot write ({exc.strerror or exc})") from None
    finally:
        Path(tmp).unlink(missing_ok=True)  # a no-op once the rename has happened
