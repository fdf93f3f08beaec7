"""Options shared by several commands."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gradcalc.errors import GradcalcError, shorten

if TYPE_CHECKING:
    from gradcalc.doc.plain import Drawing

COLOR_MODES = ("auto", "always", "never")


def color_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--color auto|always|never, with --no-color kept as the alias of --color never; the
    command receives one ``color`` argument."""

    import inspect

    # Only a command with -o is told about it.
    written = (
        " A file written with -o is plain." if "output" in inspect.signature(fn).parameters else ""
    )

    @click.option(
        "--color",
        type=click.Choice(COLOR_MODES),
        default="auto",
        show_default=True,
        help="Colour and bold in the terminal output: auto (only on a terminal; NO_COLOR "
        f"turns it off, FORCE_COLOR on, TERM=dumb off), always or never.{written}",
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
    """Whether output not drawn by rich gets colour and bold: the rule of console()."""
    if color != "auto":
        return color == "always"
    if _plain_by_environment():
        return False
    return _terminal() and os.environ.get("TERM", "").lower() not in ("dumb", "unknown")


def _plain_by_environment() -> bool:
    return bool(os.environ.get("NO_COLOR"))  # set and not empty (no-color.org)


def _terminal() -> bool:
    """Whether standard output counts as a terminal, as rich reads the environment:
    TTY_COMPATIBLE=0/1, else FORCE_COLOR (not empty: force-color.org), else isatty. Worked out
    here so that every rich version, and output rich does not draw, read it alike."""
    env = os.environ
    if env.get("TTY_COMPATIBLE", "") in ("0", "1"):
        return env["TTY_COMPATIBLE"] == "1"
    if "FORCE_COLOR" in env:
        return env["FORCE_COLOR"] != ""
    try:
        return sys.stdout.isatty()
    except ValueError:  # closed
        return False


def console(color: str, for_file: bool = False) -> Any:
    """A rich console for --color ``color``; ``for_file``: one whose capture becomes an -o file
    (plain, and in UTF-8 whatever the terminal's encoding).

    --color always and never beat the environment. Under auto, NO_COLOR leaves the text plain
    (bold included), and otherwise rich decides: colour on a terminal (or what FORCE_COLOR or
    TTY_COMPATIBLE=1 calls one) unless TERM is dumb or unknown.
    """
    import errno

    from rich.console import Console as RichConsole

    class Console(RichConsole):
        def on_broken_pipe(self) -> None:
            # rich would exit 1 (which means "diverged"); the CLI handles a closed pipe the same
            # way for every command.
            raise BrokenPipeError(errno.EPIPE, "the reader closed standard output")

    plain = for_file or color == "never" or (color == "auto" and _plain_by_environment())
    con = Console(
        file=io.StringIO() if for_file else None,
        force_terminal=(color == "always" or _terminal()) and not plain,
        no_color=plain,
        highlight=False,
        emoji=False,
        soft_wrap=False,
        color_system=None if plain else "auto",
    )
    if (
        color == "always" and not plain and con.color_system is None
    ):  # TERM=dumb: asked all the same
        con = Console(
            force_terminal=True,
            highlight=False,
            emoji=False,
            soft_wrap=False,
            color_system="standard",
        )
    from gradcalc.doc.ascii import ascii_hook, wants_ascii

    if wants_ascii(con):  # e.g. a Windows code page: symbols in ASCII forms
        con.push_render_hook(ascii_hook())
    from gradcalc.doc.fit import fit_hook

    con.push_render_hook(fit_hook())  # no table cuts a number or a word, whatever the width
    return con


# What a writer hands back: finished text (bytes: UTF-8 written as it is, as JSON is), or a
# drawing on a rich console (tables, --explain; a gradcalc.doc.plain.Drawing can also be drawn
# without rich).
View = str | bytes | Callable[[Any], None]


def _drawn_plain(view: Drawing, output: str | None, color: str) -> str | None:
    """The drawing's text where the console would be plain (no colour, no bold, not a dumb
    terminal's fixed width) and rich would print it as it is; else None."""
    if output is None and not (
        color == "never" or (color == "auto" and (_plain_by_environment() or not _terminal()))
    ):
        return None
    from gradcalc.doc.plain import width, writable

    columns = width()
    text = None if columns is None else view.plain(columns)
    if text is None or (output is None and not writable(text)):
        return None
    return text


def emit(view: View, output: str | None, color: str, force: bool = False) -> None:
    """Print a view, or write it to --output (captured without colour, atomically)."""
    from gradcalc.doc.plain import Drawing

    plain = _drawn_plain(view, output, color) if isinstance(view, Drawing) else None
    if isinstance(view, str | bytes):
        text = view
    elif plain is not None:
        text = plain
    else:
        con = console(color, for_file=output is not None)
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


class WholeNumber(click.IntRange):
    """The one rule for every integer option: a whole number from `low` up to `high`, refused
    (exit 2) outside it with the range in words, and the range shown in the help as
    `N ≥ 1` or `0 ≤ N ≤ 12` (N being the option's metavar). With no `high`, a larger number
    means "as many as there are": it is read as `beyond` (e.g. every row, every step) rather
    than refused, and never reaches numpy as a number past int64."""

    name = "integer"

    def __init__(
        self, low: int, high: int | None = None, *, letter: str = "N", beyond: int = sys.maxsize
    ) -> None:
        super().__init__(low, high)
        self.letter = letter
        self.beyond = beyond

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value).strip()
        shown = text if len(text) <= 24 else f"{text[:20]}… ({len(text):,} characters)"
        try:
            number = value if isinstance(value, int) else int(text)
        except ValueError:
            if text.lstrip("+-").isascii() and text.lstrip("+-").isdigit():
                # Past Python's 4,300-digit int(): far beyond any bound, on its side of zero.
                number = -(10**400) if text.startswith("-") else 10**400
            else:
                self.fail(f"expected a whole number {self._in_words()}, got '{shown}'", param, ctx)
        low, high = int(self.min or 0), self.max
        if number < low or (high is not None and number > high):
            self.fail(f"must be a whole number {self._in_words()}, got {shown}", param, ctx)
        return number if high is not None else min(number, self.beyond)

    def _in_words(self) -> str:
        if self.max is None:
            return f"≥ {self.min:,}"
        return f"from {self.min:,} to {self.max:,}"

    def _describe_range(self) -> str:  # click writes it in the help: [N ≥ 1]
        if self.max is None:
            return f"{self.letter} ≥ {self.min:,}"
        return f"{self.min:,} ≤ {self.letter} ≤ {self.max:,}"


def format_option(*choices: str, default: str = "table") -> Callable[[Any], Any]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=default,
        show_default=True,
        help="Output format. JSON is the machine-readable contract.",
    )


def indent_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--indent N: JSON is one compact line by default (every command alike); N pretty-prints."""
    return click.option(
        "--indent",
        type=WholeNumber(0, 16),
        metavar="N",
        help="Pretty-print JSON with N spaces of indentation (default: one compact line).",
    )(fn)


def check_indent(indent: int | None, fmt: str, *json_formats: str) -> None:
    """Refuse --indent with a format that is not JSON (it would be silently ignored)."""
    if indent is not None and fmt not in json_formats:
        raise click.UsageError(f"--indent pretty-prints JSON; --format {fmt} has no use for it")


def json_bytes(doc: Any, indent: int | None = None) -> bytes:
    """A JSON document as gradcalc writes every one: UTF-8 (whatever the terminal's encoding),
    one compact line, or indented by `indent`; a newline at the end."""
    import json

    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(
        doc, ensure_ascii=False, allow_nan=False, indent=indent, separators=separators
    )
    return (text + "\n").encode("utf-8")


def reindent(text: str | bytes, indent: int | None) -> bytes:
    """A JSON document written by another writer, in the form of json_bytes."""
    import json

    return json_bytes(json.loads(text), indent)


class Reindented:
    """Stands in for a Sink while a streamed JSON document is written, and writes it to the
    sink re-indented when it is whole (close)."""

    def __init__(self, sink: Any, indent: int) -> None:
        self.sink = sink
        self.indent = indent
        self.parts: list[bytes] = []

    def write(self, data: str | bytes) -> None:
        self.parts.append(data.encode("utf-8") if isinstance(data, str) else data)

    def close(self) -> None:
        self.sink.write(reindent(b"".join(self.parts), self.indent))
        self.parts = []


def digits_option(defaults: str) -> Callable[[Any], Any]:
    return click.option(
        "--digits",
        type=WholeNumber(1, 17),
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
    try:
        _check_output(output, force, option, reads)
    except OSError as exc:  # a name too long for the file system, a loop of symlinks, …
        raise GradcalcError(
            f"{option} {shorten(output)}: cannot write ({exc.strerror or exc})"
        ) from None


def _check_output(
    output: str, force: bool, option: str, reads: Sequence[tuple[str, str | Path | None]]
) -> None:
    shown = shorten(output)
    for what, source in reads:
        if source is None or str(source) == "-":
            continue
        read, written = Path(source), Path(output)
        if written.exists() and read.exists() and written.samefile(read):
            raise GradcalcError(
                f"{option} {shown}: is {what} being read; "
                f"choose another file so {what} is not overwritten"
            )
    if _written_in_place(output):
        return
    target = Path(os.path.realpath(output))  # through symlinks: the file that gets replaced
    if target.is_dir():
        raise GradcalcError(f"{option} {shown}: is a directory; give a file name")
    if not target.parent.is_dir():
        raise GradcalcError(f"{option} {shown}: directory {target.parent} does not exist")
    if not force and _read_only(target):
        raise GradcalcError(
            f"{option} {shown}: is read-only; give --force to replace it, or another name"
        )


def check_weights_output(
    name: str,
    force: bool,
    output: str | None,
    reads: Sequence[tuple[str, str | Path | None]] = (),
) -> None:
    """Refuse, before any work, a --save-weights target that would hold something else than
    its name says: an .npz archive goes to a name ending in .npz (or to a FIFO or device), or
    to standard output (-) when -o FILE has taken the output and standard output is not a
    terminal; never onto the --output file."""
    option = "--save-weights"
    if name == "-":
        if output is None:
            raise GradcalcError(
                f"{option} -: standard output already carries the output; give -o FILE for "
                "it, or a file name ending in .npz for the weights"
            )
        if sys.stdout.isatty():
            raise GradcalcError(
                f"{option} -: the weights are binary (.npz) and standard output is a "
                "terminal; redirect it (> weights.npz) or give a file name"
            )
        return
    check_output(name, force, option, reads)
    if _written_in_place(name):
        return
    if not name.lower().endswith(".npz"):
        raise GradcalcError(
            f"{option} {shorten(name)}: the weights are written as an .npz archive (w2, b2, …); "
            "give a name ending in .npz so that numpy.load and a config's {file: …} read it "
            "as one"
        )
    if output is not None and os.path.realpath(output) == os.path.realpath(name):
        raise GradcalcError(
            f"{option} {shorten(name)}: is also the --output file; give each its own name"
        )


def _mode(target: Path) -> int:
    # mkstemp makes the file private (0600); give it the mode an ordinary open() would.
    if target.exists():
        return target.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _temp_beside(
    output: str, target: Path, mode: str, names: list[str], option: str = "--output"
) -> Any:
    """An open temporary file in the target's directory, with a short name of its own (a
    legal 255-byte target name must work). Signals wait until its name is in `names`: a
    SIGTERM let through as they are released raises here, and whoever removes the file on
    failure must already know its name."""
    import tempfile

    try:
        with _signals_held():
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".gradcalc-", suffix=".tmp")
            names.append(tmp)
    except OSError as exc:
        raise GradcalcError(f"{option} {output}: cannot write ({exc.strerror or exc})") from None
    return os.fdopen(fd, mode)


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
        self.held: list[str | bytes] = []
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
                names: list[str] = []
                try:
                    self.fh = _temp_beside(self.output, self.target, "wb", names)
                except BaseException:  # __exit__ does not run when __enter__ raises
                    for name in names:
                        Path(name).unlink(missing_ok=True)
                    raise
                self.tmp = names[0]
        return self

    def write(self, data: str | bytes) -> None:
        # Text for standard output stays text, so a terminal that cannot write a symbol gets its
        # ASCII form (see gradcalc.cli._fit_streams); bytes (JSON) are UTF-8 already.
        if self.fh is None:
            if self.held_size + len(data) <= self.hold:
                self.held.append(data)
                self.held_size += len(data)
                return
            self._release()
            click.echo(data, nl=False)
        else:
            if isinstance(data, str):
                data = data.encode("utf-8")
            try:
                self.fh.write(data)
            except OSError as exc:
                raise GradcalcError(
                    f"--output {self.output}: cannot write ({exc.strerror or exc})"
                ) from None

    def _release(self) -> None:
        if all(isinstance(data, bytes) for data in self.held):
            self.held = [b"".join(self.held)]  # type: ignore[arg-type]
        for data in self.held:
            click.echo(data, nl=False)
        self.held = []
        self.hold = 0

    def draw(self, view: View) -> None:
        if self.fh is None:
            self._release()
            emit(view, None, self.color)
            return
        if isinstance(view, str | bytes):
            self.write(view)
            return
        from gradcalc.doc.plain import Drawing

        plain = _drawn_plain(view, self.output, "never") if isinstance(view, Drawing) else None
        if plain is not None:
            self.write(plain)
            return
        con = console("never", for_file=True)
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
    names: list[str] = []
    try:
        fh = _temp_beside(output, target, "wb", names, option)
        with fh:
            fh.write(data)
        os.chmod(names[0], mode)
        os.replace(names[0], target)
    except OSError as exc:
        raise GradcalcError(f"{option} {output}: cannot write ({exc.strerror or exc})") from None
    finally:
        # Also on Ctrl-C and SIGTERM (the CLI turns it into an exception): no temp file left.
        for name in names:
            Path(name).unlink(missing_ok=True)  # a no-op once the rename has happened


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block ends, then act as they would have. The
    mask alone is not enough: a signal sent to the process can reach another thread (a BLAS
    worker), and Python then runs its handler in this one at once; so the handlers, too, only
    note the signal while the block runs."""
    import signal
    import threading

    held = [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)]
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be set from the main thread
        return
    pending: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, frame: pending.append(signum)) for sig in held
    }
    masked = hasattr(signal, "pthread_sigmask")  # not on Windows
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, held) if masked else None
    try:
        yield
    finally:
        if mask is not None:
            # A signal held by the mask reaches the noting handler here.
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if pending:
            sig = pending[0]
            handler = previous[sig]
            if callable(handler):
                handler(sig, None)  # raises (Terminated, KeyboardInterrupt) as it would have
            elif handler == signal.SIG_DFL:
                signal.raise_signal(sig)


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

    return click.option("--steps", type=WholeNumber(minimum, MAX_STEPS), metavar="N", help=help)


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
