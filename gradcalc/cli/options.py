"""Options shared by several commands."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gradcalc.errors import GradcalcError

COLOR_MODES = ("auto", "always", "never")


def color_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--color auto|always|never, with --no-color kept as the alias of --color never; the
    command receives one ``color`` argument."""

    @click.option(
        "--color",
        type=click.Choice(COLOR_MODES),
        default="auto",
        show_default=True,
        help="Colour and bold in the terminal output: auto (only on a terminal; NO_COLOR "
        "turns it off, FORCE_COLOR on), always or never. A file written with -o is plain.",
    )
    @click.option("--no-color", is_flag=True, help="The same as --color never.")
    @functools.wraps(fn)
    def wrapper(*args: Any, color: str, no_color: bool, **kwargs: Any) -> Any:
        if no_color:
            if color == "always":
                raise click.UsageError("--no-color and --color always contradict each other")
            color = "never"
        return fn(*args, color=color, **kwargs)

    return wrapper


def colour_wanted(color: str) -> bool:
    """Resolve --color auto against NO_COLOR (no-color.org) and FORCE_COLOR (force-color.org):
    each counts when set and not empty, NO_COLOR wins, and --color always/never beats both."""
    if color == "auto":
        if os.environ.get("NO_COLOR"):
            return False
        if os.environ.get("FORCE_COLOR"):
            return True
        return sys.stdout.isatty()
    return color == "always"


def console(color: str) -> Any:
    """A rich console for --color ``color`` (a file written with -o passes "never")."""
    from rich.console import Console

    wanted = colour_wanted(color)
    con = Console(
        force_terminal=wanted,
        no_color=not wanted,
        highlight=False,
        emoji=False,
        soft_wrap=False,
        color_system="auto" if wanted else None,
    )
    if wanted and con.color_system is None:  # TERM=dumb: colour was asked for all the same
        con = Console(
            force_terminal=True,
            highlight=False,
            emoji=False,
            soft_wrap=False,
            color_system="standard",
        )
    return con


# What a writer hands back: finished text, or a drawing on a rich console (tables, --explain).
View = str | Callable[[Any], None]


def emit(view: View, output: str | None, color: str) -> None:
    """Print a view, or write it to --output (captured without colour, atomically)."""
    if isinstance(view, str):
        text = view
    else:
        con = console("never" if output is not None else color)
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


def _mode(target: Path) -> int:
    # mkstemp makes the file private (0600); give it the mode an ordinary open() would.
    if target.exists():
        return target.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


class Sink:
    """Where a streamed output goes as it is produced: standard output, or --output through a
    temporary file beside the target that replaces it only when the run succeeds."""

    def __init__(self, output: str | None, color: str, hold: int = 0) -> None:
        self.output = output
        self.color = color
        self.fh: Any = None
        self.tmp: str | None = None
        # Standard output keeps its first `hold` bytes back, so a run that fails early (a
        # diverging step) prints nothing rather than half a JSON document.
        self.hold = hold
        self.held: list[bytes] = []
        self.held_size = 0

    def __enter__(self) -> Sink:
        if self.output is not None:
            import tempfile

            check_output(self.output)
            target = Path(self.output)
            try:
                fd, self.tmp = tempfile.mkstemp(
                    dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
                )
            except OSError as exc:
                raise GradcalcError(
                    f"--output {self.output}: cannot write ({exc.strerror or exc})"
                ) from None
            self.fh = os.fdopen(fd, "wb")
        return self

    def write(self, data: str | bytes) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        if self.fh is None:
            if self.held_size + len(data) <= self.hold:
                self.held.append(data)
                self.held_size += len(data)
                return
            self._release()
            click.echo(data, nl=False)
        else:
            try:
                self.fh.write(data)
            except OSError as exc:
                raise GradcalcError(
                    f"--output {self.output}: cannot write ({exc.strerror or exc})"
                ) from None

    def _release(self) -> None:
        if self.held:
            click.echo(b"".join(self.held), nl=False)
        self.held = []
        self.hold = 0

    def draw(self, view: View) -> None:
        if self.fh is None:
            self._release()
            emit(view, None, self.color)
            return
        if not isinstance(view, str):
            con = console("never")
            con.begin_capture()
            view(con)
            view = con.end_capture()
        self.write(view)

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if self.fh is None or self.tmp is None:
            if kind is None:
                self._release()
            return
        assert self.output is not None
        try:
            self.fh.close()
            if kind is None:
                os.chmod(self.tmp, _mode(Path(self.output)))
                os.replace(self.tmp, self.output)
        except OSError as err:
            raise GradcalcError(
                f"--output {self.output}: cannot write ({err.strerror or err})"
            ) from None
        finally:
            Path(self.tmp).unlink(missing_ok=True)


def write_atomically(output: str, text: str) -> None:
    """Write to a temporary file beside the target, then rename it over the target: a reader
    (or a failed run) never sees half a file."""
    import tempfile

    check_output(output)
    target = Path(output)
    mode = _mode(target)
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


# Shell completion (see `gradcalc completion`): each returns the candidates for `incomplete`.


def complete_path(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    from click.shell_completion import CompletionItem

    return [CompletionItem(incomplete, type="file")]  # the shell lists the files itself


def complete_example(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from gradcalc.step.examples import available

    return [name for name in available() if name.startswith(incomplete)]


def complete_function(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Every activation and loss name and alias; a formula in x is the user's to type."""
    from gradcalc.functions.activations import ACTIVATIONS
    from gradcalc.functions.losses import LOSSES

    names = [n for r in (*ACTIVATIONS, *LOSSES) for n in (r.name, *r.aliases)]
    return [n for n in names if n.startswith(incomplete)]
