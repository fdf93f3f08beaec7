"""gradcalc step: a traced forward and backward pass, one table section per SGD step."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gradcalc.cli.options import (
    View,
    check_output,
    color_option,
    complete_example,
    complete_path,
    digits_option,
    emit,
    force_option,
    format_option,
)
from gradcalc.doc import DOCUMENTS, write_document
from gradcalc.errors import GradcalcError
from gradcalc.limits import MAX_STEPS

if TYPE_CHECKING:
    from gradcalc.doc.blocks import Block
    from gradcalc.doc.notation import Kind
    from gradcalc.step.trace import RunTrace


def _check_output(output: str, config: Path | None, force: bool) -> None:
    """Refuse, before any work, an --output that cannot be written or is the config being read."""
    check_output(output, force)
    target = Path(output)
    if config is not None and target.exists() and config.exists() and target.samefile(config):
        raise GradcalcError(
            f"--output {output}: is the config being read; "
            "choose another file so the config is not overwritten"
        )


def _complete_optimizer(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from gradcalc.functions.optimizers import REGISTRY

    return [name for name in REGISTRY if name.startswith(incomplete)]


@click.command(
    "step",
    short_help="Trace SGD steps of a YAML network: z, a, δ, gradients, updates.",
    epilog=(
        "\b\nExample:\n"
        "  gradcalc step --example worked-example --explain --round 3\n"
        "  gradcalc step --example tanh-mse --format json -o trace.json"
    ),
)
@click.argument("config", required=False, metavar="[CONFIG]", shell_complete=complete_path)
@click.option(
    "--example",
    "example",
    metavar="NAME",
    shell_complete=complete_example,
    help="Run a bundled example config instead of CONFIG (see `gradcalc examples`).",
)
@click.option(
    "--steps",
    type=click.IntRange(0, MAX_STEPS),
    metavar="N",
    help="SGD steps to run (overrides `steps:` in the config).",
)
@click.option(
    "--learning-rate",
    "--eta",
    "learning_rate",
    type=float,
    metavar="η",
    help="Learning rate η > 0 (overrides `learning_rate:`).",
)
@click.option(
    "--optimizer",
    metavar="NAME",
    shell_complete=_complete_optimizer,
    help="Update rule (overrides `optimizer:`): sgd, momentum, nesterov, adagrad, rmsprop, "
    "adam or adamw, with its default parameters (see `gradcalc list`).",
)
@format_option("table", "json", *DOCUMENTS)
@click.option(
    "--explain",
    is_flag=True,
    help="Write the worked solution in the terminal: each equation, then with its "
    "numbers, then its value.",
)
@click.option(
    "--round",
    "round_to",
    type=click.IntRange(0, 12),
    metavar="N",
    help="Round every quantity to N decimals as it is produced, like a hand "
    "calculation; the worked solutions show how far that drifts from exact.",
)
@click.option(
    "--max-terms",
    type=click.IntRange(min=1, max=sys.maxsize, clamp=True),
    default=6,
    show_default=True,
    metavar="N",
    help="Terms of a sum, and units of a layer, written out in a worked "
    "solution before the rest are counted.",
)
@click.option(
    "--max-rows",
    type=click.IntRange(min=0, max=sys.maxsize, clamp=True),
    default=40,
    show_default=True,
    metavar="N",
    help="Rows per table before the rest is summarised; 0 shows all.",
)
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    shell_complete=complete_path,
    help="Write the output to FILE instead (atomically; any format); - is standard output. "
    "A symlink is written through, a FIFO or device directly.",
)
@force_option
@digits_option("default 6 in the tables, 3 in the worked solutions")
@color_option
def command(
    config: str | None,
    example: str | None,
    steps: int | None,
    learning_rate: float | None,
    optimizer: str | None,
    fmt: str,
    explain: bool,
    round_to: int | None,
    max_terms: int,
    max_rows: int,
    output: str | None,
    force: bool,
    digits: int | None,
    color: str,
) -> None:
    """Run SGD steps on the network in CONFIG (a YAML file, or - for standard input) and show
    z, a, δ, every gradient and the updated parameters of each step (equations BP1–BP4).
    --example NAME replaces CONFIG with a config bundled with gradcalc (`gradcalc examples`).

    --format json is the machine-readable contract; --explain, markdown and latex write the
    worked solution with every number substituted.
    """
    from gradcalc.step import config as config_mod
    from gradcalc.step.engine import run

    if (config is None) == (example is None):
        raise click.UsageError("give a CONFIG file or --example NAME (one of them)")
    if learning_rate is not None and not 0 < learning_rate < float("inf"):
        raise click.BadParameter(
            f"must be a finite number > 0, got {learning_rate:g}", param_hint="--learning-rate"
        )
    if explain and fmt != "table":
        raise click.UsageError(
            f"--explain is the worked solution as terminal text and --format {fmt} a format of "
            "its own; give one or the other"
        )
    source: Path | None = None
    if example is not None:
        from gradcalc.step.examples import find

        source = find(example)
    elif config != "-":
        source = Path(str(config))
    if output == "-":
        output = None
    if output is not None:
        _check_output(output, source, force)

    if example is not None:
        assert source is not None
        spec = config_mod.load_text(source.read_text(encoding="utf-8"), f"{source.stem}.yaml")
    else:
        assert config is not None
        spec = config_mod.load(config)
    if learning_rate is not None:
        spec = dataclasses.replace(spec, learning_rate=learning_rate)
    if optimizer is not None:
        spec = config_mod.with_optimizer(spec, optimizer)
    # The drift tables of the worked solutions compare with the exact run; JSON has no use for it.
    trace = run(spec, steps=steps, round_to=round_to, exact=fmt != "json")
    writer = WRITERS["explain" if explain else fmt]
    emit(writer(trace, _Layout(max_terms, max_rows, digits)), output, color, force)


@dataclasses.dataclass(frozen=True)
class _Layout:
    max_terms: int
    max_rows: int
    digits: int | None  # significant digits; None: each view's own (6 tables, 3 solutions)


def _solution(trace: RunTrace, kind: Kind, layout: _Layout) -> list[Block]:
    from gradcalc.doc.notation import Notation
    from gradcalc.step.solution import build

    return build(
        trace,
        Notation(kind, trace.round_to, layout.digits or 3),
        exact=trace.exact,
        max_terms=layout.max_terms,
        max_rows=layout.max_rows,
        document=kind != "text",
    )


def _json(trace: RunTrace, layout: _Layout) -> View:
    from gradcalc.step import json

    return json.render(trace)


def _table(trace: RunTrace, layout: _Layout) -> View:
    from gradcalc.step import table

    return lambda con: table.render(
        trace, con, max_rows=layout.max_rows, exact=trace.exact, digits=layout.digits or 6
    )


def _explain(trace: RunTrace, layout: _Layout) -> View:
    from gradcalc.doc import text

    blocks = _solution(trace, "text", layout)
    return lambda con: text.write(blocks, con)


def _document(fmt: str) -> Callable[[RunTrace, _Layout], View]:
    """A document format of gradcalc.doc.DOCUMENTS: the worked solution in its notation."""

    def write(trace: RunTrace, layout: _Layout) -> View:
        return write_document(fmt, _solution(trace, DOCUMENTS[fmt][1], layout))

    return write


WRITERS: dict[str, Callable[[RunTrace, _Layout], View]] = {
    "table": _table,
    "json": _json,
    "explain": _explain,
    **{fmt: _document(fmt) for fmt in DOCUMENTS},
}
