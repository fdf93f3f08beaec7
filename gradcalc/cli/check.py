"""gradcalc check: grade answers to a step — a hand-worked sheet or another program's numbers."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from gradcalc.cli.options import (
    View,
    WholeNumber,
    check_indent,
    check_output,
    color_option,
    complete_example,
    complete_path,
    emit,
    force_option,
    indent_option,
    learning_rate_option,
    optimizer_option,
    reindent,
    steps_option,
)
from gradcalc.errors import GradcalcError

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
@steps_option(1, "SGD steps of the run graded (overrides `steps:` in the config).")
@learning_rate_option
@optimizer_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "gradescope", "html"]),
    default="table",
    show_default=True,
    help="Output format: a table, the JSON contract, Gradescope's results.json, or a "
    "self-contained web page (html); with --template, json writes the blank sheet as JSON.",
)
@click.option(
    "--decimals",
    type=WholeNumber(0, 12),
    metavar="N",
    help="The answers were worked rounding every quantity to N decimals: accept what such a "
    "hand calculation can produce.",
)
@click.option(
    "--sig-figs",
    "sig_figs",
    type=WholeNumber(1, 15),
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
@click.option(
    "--class",
    "class_paths",
    multiple=True,
    metavar="PATH",
    shell_complete=complete_path,
    help="Grade a class: every answer file in PATH (a folder or a file; repeatable) against its "
    "own variant of the course folder CONFIG (`gradcalc generate`); writes a gradebook CSV.",
)
@click.option(
    "--summary",
    metavar="FILE",
    shell_complete=complete_path,
    help="With --class: write the per-cell summary of the class (CSV) to FILE.",
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
    learning_rate: float | None,
    optimizer: str | None,
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
    class_paths: tuple[str, ...] = (),
    summary: str | None = None,
) -> None:
    """Grade ANSWERS (YAML or JSON; - for standard input) to the SGD steps of the network in
    CONFIG, cell by cell: ✓ correct, ≈ correct to the rounding, ↳ right given an earlier error,
    ✗ wrong (with the known mistake named when one matches). A whole `gradcalc step --format
    json` document is accepted as answers. --example NAME replaces CONFIG with a config
    bundled with gradcalc.

    Exit status: 0 every answered cell is right, 1 at least one is wrong (or, with
    --require-all, missing), 2 bad input.
    """
    import numpy as np

    from gradcalc.check import answers as answers_mod
    from gradcalc.check.cells import Shape
    from gradcalc.step import config as config_mod

    if class_paths:  # a whole class: gradcalc/cli/check_class.py
        from gradcalc.cli import check_class

        if template or example is not None:
            raise click.UsageError("--class grades against a course folder (CONFIG) only")
        paths = (*class_paths, *([answers] if answers else []))
        grading = dict(rtol=rtol, atol=atol, decimals=decimals, sig_figs=sig_figs)
        grading.update(carry=not no_carry, require_all=require_all)
        check_class.run(config, paths, fmt, output, summary, indent, force, points_file, grading)
        return
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
    if template and fmt in ("gradescope", "html"):
        raise click.UsageError(
            "--template writes a blank answer sheet (YAML, or JSON with --format json) and "
            f"--format {fmt} a grading report: give one or the other"
        )
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
    if learning_rate is not None:
        spec = dataclasses.replace(spec, learning_rate=learning_rate)
    if optimizer is not None:
        spec = config_mod.with_optimizer(spec, optimizer)
    n_steps = spec.steps if steps is None else steps
    shape = Shape.of(spec)
    if template:
        n = max(n_steps, 1)
        answers_mod.check_template_size(shape, n)
        # A .json name is read back as strict JSON: the sheet written to it is JSON.
        as_json = fmt == "json" or (output is not None and output.lower().endswith(".json"))
        if as_json:
            text = answers_mod.template_json(shape, n)
        else:
            graded = f"--example {example}" if example is not None else config
            text = answers_mod.template(shape, n, config, _describe(spec, n), graded)
        emit(text, output, color, force)
        return
    if n_steps < 1:
        raise GradcalcError(f"{config}: steps: 0 runs no step to check; pass --steps 1")
    points = answers_mod.load_points(points_file) if points_file else {}
    assert answers is not None
    run = answers_mod.Run.of(spec, n_steps)
    if bundled_sheet is not None:
        text = bundled_sheet.read_text(encoding="utf-8")
        name = f"answers/{bundled_sheet.name}"
        sheet = answers_mod.load_text(text, name, shape, n_steps, run)
    else:
        sheet = answers_mod.load(answers, shape, n_steps, run)

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
    # The run goes as far as the last step graded, and keeps only the steps graded.
    last = n_steps if require_all or sheet.final else max(sheet.steps, default=0)
    _check_size(spec, shape, sheet, n_steps, last, options)
    # Answers far off (1e308) overflow what is worked from them: such values match nothing
    # (grade.py), and numpy's warnings about them are not the user's business.
    from gradcalc.errors import NumericError

    try:
        with np.errstate(all="ignore"):
            report = grade(spec, sheet, last, options)
    except NumericError as exc:
        # For check, status 1 says an answer is wrong: a run that diverges is bad input.
        raise GradcalcError(f"{exc}; no answer can be graded against it") from None

    from gradcalc.check import views
    from gradcalc.doc.plain import Drawing

    writers: dict[str, Callable[[Report], View]] = {
        "table": lambda r: Drawing(
            lambda con: views.render_table(r, con), lambda width: views.render_plain(r, width)
        ),
        "json": lambda r: reindent(views.render_json(r), indent),
        "gradescope": lambda r: reindent(views.render_gradescope(r), indent),
        "html": _html,
    }
    emit(writers[fmt](report), output, color, force)
    if not report.passed:
        ctx.exit(1)


def _html(report: Report) -> View:
    from gradcalc.check import page

    return page.render_html(report)


# What one graded cell holds until the report is written (its record, symbol and verdict).
CELL_BYTES = 600


def _check_size(spec, shape, sheet, n_steps: int, last: int, options) -> None:
    """Refuse, before any step, a grading that would hold more than MAX_HELD_BYTES: the cells
    of --require-all over many steps, or the traces of the steps graded (every step up to the
    last one graded when the sheet was rounded: the drift bound runs through all of them)."""
    from gradcalc.check.answers import sheet_cells
    from gradcalc.check.grade import read_rounded
    from gradcalc.check.recompute import step_bytes
    from gradcalc.limits import MAX_HELD_BYTES

    def _bytes(size: float) -> str:  # only a refusal needs step's module (~1 ms to import)
        from gradcalc.cli.step import _bytes

        return _bytes(size)

    if options.require_all:
        cells = n_steps * sheet_cells(shape)
        if cells * CELL_BYTES > MAX_HELD_BYTES:
            raise GradcalcError(
                f"--require-all: grading every cell of {n_steps:,} steps is {cells:,} cells, "
                f"about {_bytes(cells * CELL_BYTES)} to hold; refusing. Grade fewer steps "
                "(--steps N), or only the cells answered (without --require-all)"
            )
    per_step = step_bytes(spec)
    rounded = read_rounded(options, sheet)
    kept = last if rounded or options.require_all else len(sheet.steps)
    factor = 4 if rounded else 1  # the exact and the rounded traces and two drift bounds
    held = kept * per_step * factor
    if held > MAX_HELD_BYTES:
        what = "every step up to the last one answered" if kept == last else "the steps answered"
        raise GradcalcError(
            f"grading {what} would hold about {_bytes(held)} ({kept:,} steps × "
            f"{_bytes(per_step * factor)}); refusing. Grade fewer steps at a time"
            + (
                ", or answers at full precision (a rounded sheet is bounded step by step)"
                if rounded
                else ""
            )
        )


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
