"""Options shared by several commands."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
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
    import errno

    from rich.console import Console as RichConsole

    class Console(RichConsole):
        def on_broken_pipe(self) -> None:
            # rich would exit 1 (which means "diverged"); the CLI handles a closed pipe the same
            # way for every command.
            raise BrokenPipeError(errno.EPIPE, "the reader closed standard output")

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


def emit(view: View, output: str | None, color: str, force: bool = False) -> None:
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
        write_atomically(output, text, force)


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


force_option = click.option(
    "--force",
    is_flag=True,
    help="Replace an --output file even if it is read-only.",
)


def _written_in_place(output: str) -> bool:
    """True for a target that is not a regular file to be replaced: a FIFO, a terminal, a
    device (/dev/null, /dev/full), or standard output named as /dev/stdout or /proc/self/fd/1.
    Renaming a file over those would replace the device node, or write to a file the shell
    has already opened and lose it."""
    import stat

    if output.startswith(("/dev/", "/proc/")) or os.path.realpath(output).startswith("/proc/"):
        return True
    try:
        mode = os.stat(output).st_mode
        return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))
    except OSError:
        return False  # does not exist yet (or a dangling symlink): a new regular file


def _read_only(path: Path) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return not (st.st_mode & 0o222) or not os.access(path, os.W_OK)


def check_output(
    output: str,
    force: bool = False,
    option: str = "--output",
    reads: Sequence[tuple[str, str | Path | None]] = (),
) -> None:
    """Refuse, before any work, an --output that cannot become a file (a directory, or a name
    in a directory that does not exist), that is read-only (unless --force), or that is one of
    the files the command reads: `reads` pairs what each is ("the config") with its path."""
    for what, source in reads:
        if source is None or str(source) == "-":
            continue
        read, written = Path(source), Path(output)
        if written.exists() and read.exists() and written.samefile(read):
            raise GradcalcError(
                f"{option} {output}: is {what} being read; "
                f"choose another file so {what} is not overwritten"
            )
    if _written_in_place(output):
        return
    target = Path(os.path.realpath(output))  # through symlinks: the file that gets replaced
    if target.is_dir():
        raise GradcalcError(f"{option} {output}: is a directory; give a file name")
    if not target.parent.is_dir():
        raise GradcalcError(f"{option} {output}: directory {target.parent} does not exist")
    if not force and _read_only(target):
        raise GradcalcError(
            f"{option} {output}: is read-only; give --force to replace it, or another name"
        )


def _mode(target: Path) -> int:
    # mkstemp makes the file private (0600); give it the mode an ordinary open() would.
    if target.exists():
        return target.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _temp_beside(output: str, target: Path, mode: str, option: str = "--output") -> tuple[Any, str]:
    """An open temporary file in the target's directory, with a short name of its own (a
    legal 255-byte target name must work). Signals wait while it is created and its name
    returned, so whoever removes it on failure always knows its name."""
    import tempfile

    try:
        with _signals_held():
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".gradcalc-", suffix=".tmp")
    except OSError as exc:
        raise GradcalcError(f"{option} {output}: cannot write ({exc.strerror or exc})") from None
    return os.fdopen(fd, mode), tmp


class Sink:
    """Where a streamed output goes as it is produced: standard output, or --output through a
    temporary file beside the target that replaces it only when the run succeeds (a FIFO or
    a device is written in place; a symlink's target is the file replaced)."""

    def __init__(self, output: str | None, color: str, hold: int = 0, force: bool = False) -> None:
        self.output = output
        self.color = color
        self.force = force
        self.fh: Any = None
        self.tmp: str | None = None
        self.target: Path | None = None
        # Standard output keeps its first `hold` bytes back, so a run that fails early (a
        # diverging step) prints nothing rather than half a JSON document.
        self.hold = hold
        self.held: list[bytes] = []
        self.held_size = 0

    def __enter__(self) -> Sink:
        if self.output is not None:
            check_output(self.output, self.force)
            if _written_in_place(self.output):
                try:
                    self.fh = open(self.output, "wb")  # closed in __exit__
                except OSError as exc:
                    raise GradcalcError(
                        f"--output {self.output}: cannot write ({exc.strerror or exc})"
                    ) from None
            else:
                self.target = Path(os.path.realpath(self.output))
                self.fh, self.tmp = _temp_beside(self.output, self.target, "wb")
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
        if isinstance(view, str):
            self.write(view)
            return
        con = console("never")
        con.begin_capture()
        view(con)
        self.write(con.end_capture())

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if self.fh is None:
            if kind is None:
                self._release()
            return
        assert self.output is not None
        try:
            self.fh.close()
            if kind is None and self.tmp is not None and self.target is not None:
                os.chmod(self.tmp, _mode(self.target))
                os.replace(self.tmp, self.target)
        except OSError as err:
            raise GradcalcError(
                f"--output {self.output}: cannot write ({err.strerror or err})"
            ) from None
        finally:
            if self.tmp is not None:
                Path(self.tmp).unlink(missing_ok=True)


def write_atomically(
    output: str, text: str | bytes, force: bool = False, option: str = "--output"
) -> None:
    """Write ``text`` to ``output`` so that a reader (or a failed, interrupted or killed run)
    never sees half a file: a temporary file beside the target, renamed over it.

    A symlink is written through: its target is replaced, atomically, and the link stays.
    A FIFO, a terminal or a device is written directly (there is nothing to replace).
    """
    check_output(output, force, option)
    data = text.encode("utf-8") if isinstance(text, str) else text
    if _written_in_place(output):
        try:
            with open(output, "wb") as fh:
                fh.write(data)
        except OSError as exc:  # /dev/full: ENOSPC
            raise GradcalcError(
                f"{option} {output}: cannot write ({exc.strerror or exc})"
            ) from None
        return
    target = Path(os.path.realpath(output))
    mode = _mode(target)
    tmp: str | None = None
    try:
        fh, tmp = _temp_beside(output, target, "wb", option)
        with fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        raise GradcalcError(f"{option} {output}: cannot write ({exc.strerror or exc})") from None
    finally:
        # Also on Ctrl-C and SIGTERM (the CLI turns it into an exception): no temp file left.
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)  # a no-op once the rename has happened


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    import signal

    if not hasattr(signal, "pthread_sigmask"):  # not on Windows
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


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


# The run's settings that a command line may override: step runs with them, check grades with
# them (one declaration each, so both commands read them alike).


def _learning_rate(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not 0 < value < float("inf"):
        raise click.BadParameter(f"must be a finite number > 0, got {value:g}")
    return value


def complete_optimizer(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from gradcalc.functions.optimizers import REGISTRY

    return [name for name in REGISTRY if name.startswith(incomplete)]


def steps_option(minimum: int, help: str) -> Callable[[Any], Any]:
    """--steps N, from `minimum` up to the limit every command shares (gradcalc/limits.py)."""
    from gradcalc.limits import MAX_STEPS

    return click.option("--steps", type=click.IntRange(minimum, MAX_STEPS), metavar="N", help=help)


learning_rate_option = click.option(
    "--learning-rate",
    "--eta",
    "learning_rate",
    type=float,
    metavar="η",
    callback=_learning_rate,
    help="Learning rate η > 0 (overrides `learning_rate:`).",
)

optimizer_option = click.option(
    "--optimizer",
    metavar="NAME",
    shell_complete=complete_optimizer,
    help="Update rule (overrides `optimizer:`): sgd, momentum, nesterov, adagrad, rmsprop, "
    "adam or adamw, with its default parameters (see `gradcalc list`).",
)
