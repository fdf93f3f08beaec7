"""gradcalc check: grade answers to a step — a hand-worked sheet or another program's numbers."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from gradcalc.cli.options import (
    View,
    check_indent,
    check_output,
    color_option,
    complete_example,
    complete_path,
    emit,
    force_option,
    indent_option,
    reindent,
)
from gradcalc.errors import GradcalcError
from gradcalc.limits import MAX_STEPS

if TYPE_CHECKING:
    from gradcalc.check.grade import Report


def _tolerance(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise click.BadParameter(f"must be a finite number ≥ 0, got {value:g}")
    return value


@click.command(
    "check",
    short_help="Grade answers to a step cell by cell, naming known mistakes.",
    epilog=("\b\nExample:\n  gradcalc check --example worked-example --template > answers.yaml"),
)
@click.argument("config", required=False, metavar="[CONFIG]", shell_complete=complete_path)
@click.argument("answers", required=False, metavar="[ANSWERS]", shell_complete=complete_path)
@click.option(
    "--example",
    "example",
    metavar="NAME",
    shell_complete=complete_example,
    help="Grade answers to a bundled example config instead of CONFIG (`gradcalc examples`); "
    "with no ANSWERS, grade the bundled answer sheet NAME against its config.",
)
@click.option(
    "--template",
    is_flag=True,
    help="Print a blank answer sheet for CONFIG (every quantity, null values) instead.",
)
@click.option(
    "--steps",
    type=click.IntRange(1, MAX_STEPS),
    metavar="N",
    help="SGD steps the answers cover (overrides `steps:` in the config).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "gradescope"]),
    default="table",
    show_default=True,
    help="Output format: a table, the JSON contract, or Gradescope's results.json.",
)
@click.option(
    "--decimals",
    type=click.IntRange(0, 12),
    metavar="N",
    help="The answers were worked rounding every quantity to N decimals: accept what such a "
    "hand calculation can produce.",
)
@click.option(
    "--sig-figs",
    "sig_figs",
    type=click.IntRange(1, 15),
    metavar="N",
    help="As --decimals, for N significant figures.",
)
@click.option(
    "--rtol",
    type=float,
    default=1e-4,
    show_default=True,
    callback=_tolerance,
    help="Relative tolerance of a correct cell.",
)
@click.option(
    "--atol",
    type=float,
    default=1e-6,
    show_default=True,
    callback=_tolerance,
    help="Absolute tolerance of a correct cell.",
)
@click.option(
    "--no-carry",
    is_flag=True,
    help="Do not accept a cell that is right only given an earlier wrong answer.",
)
@click.option(
    "--require-all",
    is_flag=True,
    help="Every cell of the steps must be answered; a missing one fails (status 1).",
)
@click.option(
    "--points",
    "points_file",
    metavar="FILE",
    shell_complete=complete_path,
    help="YAML: points per cell of each quantity group (e.g. delta: 2); others count 1.",
)
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    shell_complete=complete_path,
    help="Write the output to FILE instead (atomically; any format); - is standard output.",
)
@force_option
@indent_option
@color_option
@click.pass_context
def command(
    ctx: click.Context,
    config: str | None,
    answers: str | None,
    example: str | None,
    template: bool,
    steps: int | None,
    fmt: str,
    decimals: int | None,
    sig_figs: int | None,
    rtol: float,
    atol: float,
    no_carry: bool,
    require_all: bool,
    points_file: str | None,
    output: str | None,
    force: bool,
    indent: int | None,
    color: str,
) -> None:
    """Grade ANSWERS (YAML or JSON; - for standard input) to the SGD steps of the network in
    CONFIG, cell by cell: ✓ correct, ≈ correct to the rounding, ↳ right given an earlier error,
    ✗ wrong (with the known mistake named when one matches). A whole `gradcalc step --format
    json` document is accepted as answers. --example NAME replaces CONFIG with a config
    bundled with gradcalc.

    Exit status: 0 every answered cell is right, 1 at least one is wrong (or, with
    --require-all, missing), 2 bad input.
    """
    from gradcalc.check import answers as answers_mod
    from gradcalc.check.cells import Shape
    from gradcalc.step import config as config_mod

    if example is not None and answers is None:
        config, answers = None, config  # the one positional argument is the answers
    bundled_sheet = None
    if example is not None and answers is None and not template:
        from gradcalc.step import examples

        example, bundled_sheet = examples.find_answers(example)  # a bundled answer sheet
        answers = str(bundled_sheet)
    if (config is None) == (example is None):
        raise click.UsageError("give a CONFIG file or --example NAME (one of them)")
    if template == (answers is not None):
        raise click.UsageError("give an ANSWERS file to grade, or --template (one of them)")
    if config == "-" and answers == "-":
        raise click.UsageError("CONFIG and ANSWERS cannot both be standard input (-)")
    check_indent(indent, fmt, "json", "gradescope")
    if decimals is not None and sig_figs is not None:
        raise click.UsageError("give --decimals or --sig-figs, not both")
    if output == "-":
        output = None
    if output is not None:
        inputs = (config, answers, points_file)
        check_output(output, force, reads=[("an input", source) for source in inputs])

    if example is not None:
        from gradcalc.step import examples

        spec = examples.load(example)
        config = spec.source
    else:
        assert config is not None
        spec = config_mod.load(config)
    n_steps = spec.steps if steps is None else steps
    shape = Shape.of(spec)
    if template:
        graded = f"--example {example}" if example is not None else config
        text = answers_mod.template(
            shape, max(n_steps, 1), config, _describe(spec, n_steps), graded
        )
        emit(text, output, color, force)
        return
    if n_steps < 1:
        raise GradcalcError(f"{config}: steps: 0 runs no step to check; pass --steps 1")
    points = answers_mod.load_points(points_file) if points_file else {}
    assert answers is not None
    if bundled_sheet is not None:
        text = bundled_sheet.read_text(encoding="utf-8")
        sheet = answers_mod.load_text(text, f"answers/{bundled_sheet.name}", shape, n_steps)
    else:
        sheet = answers_mod.load(answers, shape, n_steps)

    from gradcalc.check.grade import Options, grade

    if decimals is None and sig_figs is None and sheet.round_to is not None:
        decimals = sheet.round_to  # a `gradcalc step --round N` document says how it was worked
    options = Options(
        rtol=rtol,
        atol=atol,
        decimals=decimals,
        sig_figs=sig_figs,
        carry=not no_carry,
        require_all=require_all,
        points=points,
    )
    report = grade(spec, sheet, n_steps, options)

    from gradcalc.check import views

    writers: dict[str, Callable[[Report], View]] = {
        "table": lambda r: lambda con: views.render_table(r, con),
        "json": lambda r: reindent(views.render_json(r), indent),
        "gradescope": lambda r: reindent(views.render_gradescope(r), indent),
    }
    emit(writers[fmt](report), output, color, force)
    if not report.passed:
        ctx.exit(1)


def _describe(spec, steps: int) -> str:
    if not hasattr(spec.layers[0], "weights"):  # layer records
        from gradcalc.layers.check import describe

        return describe(spec, steps)
    sizes = "-".join(str(s) for s in spec.sizes)
    acts = ", ".join(layer.activation.name for layer in spec.layers)
    m = spec.x.shape[0]
    return (
        f"a {sizes} network ({acts}), {m} example{'s' if m != 1 else ''}, loss "
        f"{spec.loss.name}, η = {spec.learning_rate:g}, {steps} step{'s' if steps != 1 else ''}"
    )
