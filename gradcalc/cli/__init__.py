"""The command line: the only place that prints errors and chooses exit statuses.

Commands live in sibling modules and are imported only when called, so `gradcalc --version` or a
script's hundredth call does not pay for numpy and rich it does not use.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from gradcalc import __version__
from gradcalc.cli.options import WholeNumber
from gradcalc.errors import GradcalcError

COMMANDS = {
    "step": "gradcalc.cli.step",
    "derive": "gradcalc.cli.derive",
    "list": "gradcalc.cli.listing",
    "examples": "gradcalc.cli.examples",
    "check": "gradcalc.cli.check",
    "generate": "gradcalc.cli.generate",
    "schema": "gradcalc.cli.schema",
    "completion": "gradcalc.cli.completion",
}


# Every exit status of every command: the --help epilog and the README's table are made from
# (and tested against) this one table.
EXIT_STATUSES: tuple[tuple[str, str, str], ...] = (
    ("0", "every command", "success, also when a pipe's reader quits early"),
    ("1", "step", "diverged: an SGD update made a value non-finite"),
    ("1", "check", "a wrong or required-missing cell"),
    ("2", "every command", "bad input (config, values before any update, options)"),
    ("3", "derive", "the routes disagree; stderr names the trusted one"),
    ("130", "every command", "interrupted (Ctrl-C); no --output file is left"),
    ("128+N", "every command", "killed by signal N (TERM 143, HUP 129); no temp file"),
)


def _epilog() -> str:
    rows = [
        f"  {status:<6} {commands:<14} {meaning}" for status, commands, meaning in EXIT_STATUSES
    ]
    return (
        "\b\nExit status:\n"
        + "\n".join(rows)
        + "\n\nExample: gradcalc step --example worked-example"
    )


class UserError(click.ClickException):
    """A GradcalcError on its way out: one line on stderr, its own exit status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        # click declares exit_code a class variable; each error carries its own status here.
        self.exit_code = exit_code  # type: ignore[misc]


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

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Bare `gradcalc`: the help, laid out as --help lays it out, on stderr with status 2 (no
        # command is a usage error). click 8.1 printed it with status 0; click 8.2 raises it as a
        # usage error whose message is the whole help, which main would put on one line.
        if not args and not ctx.resilient_parsing:
            _fail(ctx.get_help(), 2)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GradcalcError as exc:
            raise UserError(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise Interrupted from None  # click would print a blank line first
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise ReaderGone from None  # click would exit 1, which means "diverged"
            raise

    def make_context(self, info_name: str | None, args: list[str], *a: Any, **kw: Any) -> Any:
        try:
            return super().make_context(info_name, args, *a, **kw)
        except OSError as exc:  # --help into a closed pipe
            if exc.errno == errno.EPIPE:
                raise ReaderGone from None
            raise

    def main(  # always exits: every caller is standalone
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> NoReturn:
        """Run a command; every way out is decided here, the same for every command and for
        click's test runner: one line on stderr and the exit status of EXIT_STATUSES."""
        extra["complete_var"] = complete_var
        _fit_streams()
        caught = {sig: signal.getsignal(sig) for sig in _CAUGHT if _in_main_thread()}
        for sig in caught:
            signal.signal(sig, _raise_terminated)
        try:
            result = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.NoSuchOption as exc:
            # Worded as an unknown command is, with click's suggestion kept.
            guess = " or ".join(f"'{p}'" for p in exc.possibilities or ())
            hint = f" (did you mean {guess}?)" if guess else ""
            helper = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _fail(f"Error: no such option '{exc.option_name}'{hint}{helper}", exc.exit_code)
        except click.UsageError as exc:
            helper = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _fail(f"Error: {_one_line(exc.format_message())}{helper}", exc.exit_code)
        except click.ClickException as exc:
            _fail(f"Error: {_one_line(exc.format_message())}", exc.exit_code)
        except (Interrupted, KeyboardInterrupt, click.Abort):
            _fail("gradcalc: interrupted; no output file was written", 130)
        except Terminated as exc:
            _fail(f"gradcalc: {exc}; no output file was written", 128 + exc.signum)
        except ReaderGone:
            _reader_gone()
        finally:
            for sig, handler in caught.items():
                signal.signal(sig, handler)
            _ascii_note()
        try:
            sys.stdout.flush()  # here, not at interpreter exit, where EPIPE would be status 120
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            _reader_gone()
        sys.exit(result if isinstance(result, int) else 0)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=_epilog(),
)
@click.version_option(__version__, "-V", "--version", prog_name="gradcalc")
@click.option(
    "--threads",
    type=WholeNumber(1, 4096),
    metavar="N",
    expose_value=False,
    callback=lambda ctx, param, n: _use_threads(n),
    help="Threads numpy's BLAS may use (default 1, or what OMP_NUM_THREADS, "
    "OPENBLAS_NUM_THREADS, MKL_NUM_THREADS... say).",
)
def cli() -> None:
    """Gradient calculator: trace backpropagation through a network defined in YAML, and work
    derivatives through their computational graphs, in Nielsen's notation.

    """


def _use_threads(n: int | None) -> None:
    if n is not None:
        from gradcalc.threads import use

        use(n)


class Interrupted(Exception):
    """Ctrl-C during a command."""


class ReaderGone(Exception):
    """Standard output's reader closed the pipe."""


class Terminated(Exception):
    """SIGTERM or SIGHUP arrived: unwind (so the --output temp file is removed), then exit."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


_CAUGHT = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _fit_streams() -> None:
    """On a stream whose encoding cannot write gradcalc's symbols (a Windows code page, or
    PYTHONIOENCODING=ascii), write ASCII forms of them (σ′ as sigma', δ as d) instead of failing
    with a traceback. Standard output notes what it replaced (see _ascii_note); JSON, written as
    bytes, stays UTF-8."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        buffer = getattr(stream, "buffer", None)
        if buffer is None or getattr(stream, "ascii_forms", False):
            continue
        encoding = getattr(stream, "encoding", None)
        if not _cannot_write(encoding):
            continue
        from gradcalc.doc.ascii import AsciiStream

        with contextlib.suppress(OSError, ValueError):
            stream.flush()
        _REPLACED.append((name, str(encoding), stream))  # kept: it would close the buffer
        setattr(sys, name, AsciiStream(buffer, stream, note=name == "stdout"))


# (stream name, its encoding, the stream itself) for each stream written in ASCII forms.
_REPLACED: list[tuple[str, str, Any]] = []


def _cannot_write(encoding: str | None) -> bool:
    if encoding is None or encoding.lower().replace("-", "").replace("_", "") == "utf8":
        return False
    from gradcalc.doc.ascii import cannot_write

    return cannot_write(encoding)


def _ascii_note() -> None:
    """Once, after the output: say that symbols were written in ASCII, and how to get them."""
    encodings = [encoding for name, encoding, _ in _REPLACED if name == "stdout"]
    if not encodings:
        return
    from gradcalc.doc.ascii import NOTE

    if not NOTE.rewritten:
        return
    NOTE.rewritten = False
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(
            f"gradcalc: note: the output's encoding ({encodings[0]}) cannot write gradcalc's "
            "symbols, so they were written in ASCII (sigma' for sigma prime, d for delta, - "
            "for minus); PYTHONIOENCODING=utf-8 writes them as they are\n"
        )
        sys.stderr.flush()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fail(message: str, status: int) -> NoReturn:
    with contextlib.suppress(OSError):  # stderr gone too: the status still says what happened
        click.echo(message, err=True)
    sys.exit(status)


def _reader_gone() -> NoReturn:
    """The reader of standard output went away (`| head`): not an error of ours, and not a
    divergence (status 1); stop quietly with status 0, as for every command."""
    try:
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    sys.exit(0)


def main() -> None:
    cli.main(prog_name="gradcalc")
