"""gradcalc step: a traced forward and backward pass, one table section per SGD step."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import click

from gradcalc.cli.options import (
    WholeNumber,
    check_indent,
    check_output,
    check_weights_output,
    color_option,
    complete_example,
    complete_path,
    digits_option,
    force_option,
    format_option,
    indent_option,
    learning_rate_option,
    optimizer_option,
    steps_option,
)
from gradcalc.doc import DOCUMENTS
from gradcalc.errors import GradcalcError
from gradcalc.limits import MAX_STEPS
from gradcalc.records import record

SHOW = ("all", "summary", "final")


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
@steps_option(0, "SGD steps to run (overrides `steps:` in the config).")
@learning_rate_option
@optimizer_option
@format_option("table", "json", "jsonl", "svg", *DOCUMENTS)
@click.option(
    "--show",
    type=click.Choice(SHOW),
    default="all",
    show_default=True,
    help="all: every quantity of the steps shown; summary: one line (record) per step with "
    "the cost and the norms of the gradients and updates; final: only the final state.",
)
@click.option(
    "--every",
    type=WholeNumber(1, beyond=MAX_STEPS),
    metavar="N",
    help="Show in full every N-th step (1, 1+N, …) and the last.",
)
@click.option(
    "--last",
    type=WholeNumber(1, letter="K", beyond=MAX_STEPS),
    metavar="K",
    help="Show in full the last K steps.",
)
@click.option(
    "--explain-steps",
    metavar="LIST",
    help="Show in full these steps, e.g. 1,4 or 2-5 (with --every/--last: all of them).",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Write the worked solution in the terminal: each equation, then with its "
    "numbers, then its value.",
)
@click.option(
    "--round",
    "round_to",
    type=WholeNumber(0, 12),
    metavar="N",
    help="Round every quantity to N decimals as it is produced, like a hand "
    "calculation; the worked solutions show how far that drifts from exact.",
)
@click.option(
    "--max-terms",
    type=WholeNumber(1),
    default=6,
    show_default=True,
    metavar="N",
    help="Terms of a sum, and units of a layer, written out in a worked "
    "solution before the rest are counted.",
)
@click.option(
    "--max-rows",
    type=WholeNumber(0),
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
@click.option(
    "--save-weights",
    metavar="FILE",
    shell_complete=complete_path,
    help="Write the trained weights and biases to FILE, an .npz archive (w2, b2, w3, …); "
    "- is standard output when -o FILE takes the output.",
)
@click.option(
    "--diagram",
    metavar="FILE",
    shell_complete=complete_path,
    help="Also draw the network of one step as an SVG picture in FILE: circles with z and a "
    "(and δ), edges with w (and ∂C/∂w and the new w), biases above the units.",
)
@click.option(
    "--diagram-show",
    type=click.Choice(("forward", "backward", "update")),
    default="forward",
    show_default=True,
    help="What the diagram shows: forward: z, a, w, b; backward: and δ, ∂C/∂w, ∂C/∂b; "
    "update: and the new w and b.",
)
@click.option(
    "--diagram-step",
    type=WholeNumber(1, beyond=MAX_STEPS),
    metavar="N",
    help="The step the diagram draws (default 1).",
)
@click.option(
    "--plot",
    metavar="FILE",
    shell_complete=complete_path,
    help="Also plot the loss per step and each layer's ‖∂C/∂w‖ and ‖Δw‖ as an SVG picture "
    "in FILE (any number of steps: long runs are bucketed).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar on a long run.")
@indent_option
@digits_option("default 6 in the tables, 3 in the worked solutions")
@color_option
def command(
    config: str | None,
    example: str | None,
    steps: int | None,
    learning_rate: float | None,
    optimizer: str | None,
    fmt: str,
    show: str,
    every: int | None,
    last: int | None,
    explain_steps: str | None,
    explain: bool,
    round_to: int | None,
    max_terms: int,
    max_rows: int,
    output: str | None,
    force: bool,
    save_weights: str | None,
    diagram: str | None,
    diagram_show: str,
    diagram_step: int | None,
    plot: str | None,
    quiet: bool,
    indent: int | None,
    digits: int | None,
    color: str,
) -> None:
    """Run SGD steps on the network in CONFIG (a YAML file, or - for standard input) and show
    z, a, δ, every gradient and the updated parameters of each step (equations BP1–BP4).
    --example NAME replaces CONFIG with a config bundled with gradcalc (`gradcalc examples`).

    --format json is the machine-readable contract (jsonl: one record per step as it is
    produced); --explain, markdown and latex write the worked solution with every number
    substituted. --show, --every, --last and --explain-steps choose what is shown of a long run.
    """
    from gradcalc.step import config as config_mod
    from gradcalc.step.engine import Stream, exact_run, reuse_freed_memory
    from gradcalc.step.select import Selection, parse_steps

    if (config is None) == (example is None):
        raise click.UsageError("give a CONFIG file or --example NAME (one of them)")
    if explain and fmt != "table":
        raise click.UsageError(
            f"--explain is the worked solution as terminal text and --format {fmt} a format of "
            "its own; give one or the other"
        )
    check_indent(indent, fmt, "json")
    picked: tuple[int, ...] = ()
    if explain_steps is not None:
        try:
            picked = parse_steps(explain_steps)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--explain-steps") from None
    selection = Selection(every, last, picked)
    if selection.given and show != "all":
        raise click.UsageError(
            f"--every, --last and --explain-steps pick the steps shown in full; --show {show} "
            "shows none in full: give one or the other"
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
        check_output(output, force, reads=[("the config", source)])
    if save_weights is not None:
        check_weights_output(save_weights, force, output, reads=[("the config", source)])
    pictures = [
        (option, file) for option, file in (("--diagram", diagram), ("--plot", plot)) if file
    ]
    if diagram is None and fmt != "svg" and (diagram_step is not None or diagram_show != "forward"):
        raise click.UsageError(
            "--diagram-show and --diagram-step choose what --diagram FILE (or --format svg) "
            "draws: give --diagram FILE too"
        )
    for option, file in pictures:
        check_output(
            file, force, option, reads=[("the config", source), ("the --output file", output)]
        )

    if example is not None:
        from gradcalc.step import examples

        spec = examples.load(example)
    else:
        assert config is not None
        spec = config_mod.load(config)
    if spec.files:  # the array files it names are inputs too: no output may replace one
        from gradcalc.errors import format_path

        data = [(f"the file of {format_path(key)}", file) for key, file in spec.files]
        if output is not None:
            check_output(output, force, reads=data)
        if save_weights is not None:
            check_output(save_weights, force, "--save-weights", reads=data)
        for option, file in pictures:
            check_output(file, force, option, reads=data)
    if learning_rate is not None:
        spec = dataclasses.replace(spec, learning_rate=learning_rate)
    if optimizer is not None:
        spec = config_mod.with_optimizer(spec, optimizer)
    n = spec.steps if steps is None else steps
    beyond = [k for k in picked if k > n]
    if beyond:
        raise click.BadParameter(
            f"step {beyond[0]} asked for, but the run has {n} step{'s' if n != 1 else ''}",
            param_hint="--explain-steps",
        )
    drawn = [f"{option} {file}" for option, file in pictures]
    for what in drawn + (["--format svg"] if fmt == "svg" else []):
        if n == 0:
            raise GradcalcError(
                f"{what}: the run has no step to draw (--steps 0); give --steps 1 or more"
            )
    if diagram_step is not None and diagram_step > n:
        raise click.BadParameter(
            f"step {diagram_step} asked for, but the run has {n} step{'s' if n != 1 else ''}",
            param_hint="--diagram-step",
        )
    name = "explain" if explain else fmt
    shown_mask = selection.mask(n, HEAD[name]) if show == "all" else None
    _check_size(spec, n, name, show, shown_mask, max_rows)
    if not isinstance(spec, config_mod.NetworkSpec):
        layout = _Layout(
            show,
            lambda s: shown_mask is not None and bool(shown_mask[s]),
            max_terms,
            max_rows,
            digits,
            diagram_show,
            diagram_step or 1,
        )
        asked = None
        if pictures:
            from gradcalc.step.pictures import Asked

            asked = Asked(diagram, diagram_show, diagram_step or 1, plot, digits or 3)
        _layered(
            spec,
            n,
            name,
            layout,
            output,
            color,
            force,
            quiet,
            round_to,
            save_weights,
            indent,
            asked,
        )
        return

    # The drift tables of the worked solutions compare with the exact run; JSON has no use for it.
    exact = None
    if round_to is not None and name not in ("json", "jsonl"):
        exact = exact_run(spec, n, None)
    if max(layer.weights.size for layer in spec.layers) >= 16_384:
        reuse_freed_memory()  # arrays past malloc's 128 kB mmap threshold, every step

    def shown(step: int) -> bool:
        return shown_mask is not None and bool(shown_mask[step])

    from gradcalc.cli.options import Sink
    from gradcalc.cli.progress import track, wanted

    streams = name in ("json", "jsonl") or (name == "table" and show == "summary")
    # A JSON document to standard output is held back while small, so an early failure (a
    # diverging step) leaves nothing half-written; JSON lines go out as they are produced.
    with Sink(output, color, 8_000_000 if name == "json" else 0, force) as sink:
        from gradcalc.cli.options import Reindented

        target = sink if indent is None else Reindented(sink, indent)
        layout = _Layout(show, shown, max_terms, max_rows, digits, diagram_show, diagram_step or 1)
        writer = WRITERS[name](target, layout)
        if pictures:
            from gradcalc.step.pictures import Asked, Pictures

            asked = Asked(diagram, diagram_show, diagram_step or 1, plot, digits or 3)
            writer = Pictures(writer, asked)
        # The writer says which steps it needs in full; the others run lean.
        stream = Stream(spec, steps=n, round_to=round_to, full=writer.full, norms=writer.norms)
        writer.start(stream.head())
        for st in track(stream, n, wanted(quiet, streams and output is None)):
            writer.step(st)
        trace = dataclasses.replace(stream.finish(), exact=exact)
        view = writer.finish(trace)
        if isinstance(target, Reindented):
            target.close()
        if view is not None:
            sink.draw(view)
    if pictures:
        from gradcalc.cli.options import write_atomically

        for file, text, option in writer.files(trace):
            write_atomically(file, text, force, option=option)
    if save_weights is not None:
        from gradcalc.cli.options import write_atomically
        from gradcalc.step.files import weights_npz

        if save_weights == "-":
            import sys

            sys.stdout.flush()
            sys.stdout.buffer.write(weights_npz(trace))
            sys.stdout.buffer.flush()
        else:
            write_atomically(save_weights, weights_npz(trace), force, option="--save-weights")


def _layered(
    spec: Any,
    n: int,
    name: str,
    layout: _Layout,
    output: str | None,
    color: str,
    force: bool,
    quiet: bool,
    round_to: int | None,
    save_weights: str | None,
    indent: int | None,
    asked: Any = None,
) -> None:
    """A network with layer types other than dense (gradcalc.layers): its own engine and views."""
    from gradcalc.cli.options import Reindented, Sink
    from gradcalc.cli.progress import track, wanted
    from gradcalc.layers import views
    from gradcalc.layers.engine import Stream

    streams = name in ("json", "jsonl") or (name == "table" and layout.show == "summary")
    with Sink(output, color, 8_000_000 if name == "json" else 0, force) as sink:
        target = sink if indent is None else Reindented(sink, indent)
        if name in ("svg", "html"):  # the pictures' writers take a layered run as a dense one
            writer = WRITERS[name](target, layout)
            if name == "html":
                from gradcalc.step.pictures import LayeredHtmlWriter

                writer = LayeredHtmlWriter(
                    layout.shown, layout.max_terms, layout.max_rows, layout.digits or 3
                )
        else:
            writer = views.writer(name, target.write, layout)
        if asked is not None:
            from gradcalc.step.pictures import Pictures

            writer = Pictures(writer, asked)
        stream = Stream(spec, steps=n, round_to=round_to, full=writer.full)
        writer.start(stream.head())
        for st in track(stream, n, wanted(quiet, streams and output is None)):
            writer.step(st)
        trace = stream.finish()
        view = writer.finish(trace)
        if isinstance(target, Reindented):
            target.close()
        if view is not None:
            sink.draw(view)
    if asked is not None:
        from gradcalc.cli.options import write_atomically

        for file, text, option in writer.files(trace):
            write_atomically(file, text, force, option=option)
    if save_weights is not None:
        from gradcalc.cli.options import write_atomically

        write_atomically(save_weights, views.params_npz(trace), force, option="--save-weights")


# The steps a view shows in full when no --every/--last/--explain-steps is given: the first
# HEAD and the last (None: every step).
HEAD: dict[str, int | None] = {
    "table": 19,
    "json": None,
    "jsonl": None,
    "svg": 0,  # the one step drawn is the diagram's own (--diagram-step)
    "explain": 3,
    **dict.fromkeys(DOCUMENTS, 3),
}


def _check_size(spec: Any, n: int, name: str, show: str, shown: Any, max_rows: int) -> None:
    """Refuse, before any step, a run whose output (or what a view must keep to write it) would
    be enormous: say how large and how to ask for less."""
    from gradcalc.limits import MAX_HELD_BYTES, MAX_OUTPUT_BYTES

    sizes = spec.sizes
    m = spec.x.shape[0]
    units = sum(sizes[1:])
    params = sum(a * b for a, b in pairwise(sizes))
    from gradcalc.step.config import NetworkSpec

    if not isinstance(spec, NetworkSpec):  # layer records: their own parameter arrays
        params = sum(v.size for layer in spec.layers for v in layer.params.values())
        units += sum(sizes[:-1])  # each layer's ∂C/∂x besides its z, a and δ
    drawn = 0 if shown is None else int(shown.sum())
    if name == "svg":
        return  # one step's picture
    if name in ("json", "jsonl"):
        # ≈ 20 bytes a number at full precision.
        per_step = 20 * (3 * m * units + 2 * params + 2 * units + m) if show == "all" else 0
        what = f"--format {name} would write"
    elif name == "table":
        rows = m * sum(sizes) + m * units + params + units
        per_step = 60 * (min(rows, 5 * max_rows) if max_rows else rows)
        what = "the tables would be"
    else:
        # A worked solution keeps the steps it writes out: their arrays.
        per_step = 8 * (5 * m * units + 3 * params + 3 * units)
        what = "the worked solution would hold"
    total = per_step * drawn
    if total > (MAX_OUTPUT_BYTES if name in ("json", "jsonl") else MAX_HELD_BYTES):
        raise GradcalcError(
            f"{what} about {_bytes(total)} ({drawn:,} steps shown in full × "
            f"{_bytes(per_step)}); refusing. Ask for less: --show summary, --every N, "
            "--last K or --explain-steps LIST"
        )


def _bytes(size: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError


@record
class _Layout:
    show: str  # --show
    shown: Callable[[int], bool]  # the steps shown in full
    max_terms: int
    max_rows: int
    digits: int | None  # significant digits; None: each view's own (6 tables, 3 solutions)
    diagram_show: str = "forward"  # what --format svg draws (--diagram-show, --diagram-step)
    diagram_step: int = 1


# What each --format (and --explain) writes with: a writer takes the run's head, each step as
# it is produced and the finished trace (gradcalc/step/writers.py, gradcalc/step/json.py).
Writer = Callable[[Any, _Layout], Any]


def _json(lines: bool) -> Writer:
    def make(sink: Any, layout: _Layout) -> Any:
        from gradcalc.step.json import Writer

        return Writer(sink.write, lines=lines, show=layout.show, shown=layout.shown)

    return make


def _table(sink: Any, layout: _Layout) -> Any:
    from gradcalc.step import writers

    if layout.show == "summary":
        return writers.SummaryLines(sink.write, layout.digits or 6)
    return writers.TableWriter(layout.shown, layout.max_rows, layout.digits or 6)


def _solution(fmt: str) -> Writer:
    """The worked solution: in the terminal ("explain") or as a document of DOCUMENTS."""

    def make(sink: Any, layout: _Layout) -> Any:
        from gradcalc.step import writers

        return writers.SolutionWriter(
            layout.shown, fmt, layout.max_terms, layout.max_rows, layout.digits or 3
        )

    return make


def _svg(sink: Any, layout: _Layout) -> Any:
    """The network of one step, drawn (--diagram-show, --diagram-step)."""
    from gradcalc.step.pictures import SvgWriter

    return SvgWriter(layout.diagram_show, layout.diagram_step, layout.digits or 3)


def _html(sink: Any, layout: _Layout) -> Any:
    """The worked solution as a page, with the network drawn, the curves and the tables."""
    from gradcalc.step.pictures import HtmlWriter

    return HtmlWriter(layout.shown, layout.max_terms, layout.max_rows, layout.digits or 3)


WRITERS: dict[str, Writer] = {
    "table": _table,
    "json": _json(lines=False),
    "jsonl": _json(lines=True),
    "svg": _svg,
    "explain": _solution("explain"),
    **{fmt: _solution(fmt) for fmt in DOCUMENTS},
    "html": _html,
}
