"""gradcalc step: a traced forward and backward pass, one table section per SGD step."""

from __future__ import annotations

import dataclasses

import click

from gradcalc.cli.options import console, format_option, no_color_option


@click.command(
    "step",
    epilog="Example: gradcalc step configs/worked-example.yaml --format json | jq '.final.loss'",
)
@click.argument("config", required=False, metavar="CONFIG")
@click.option("--example", "example", metavar="NAME",
              help="Run a bundled example config instead (see `gradcalc examples`).")
@click.option("--steps", type=click.IntRange(min=0), metavar="N",
              help="SGD steps to run (overrides `steps:` in the config).")
@click.option("--learning-rate", "--eta", "learning_rate", type=float, metavar="η",
              help="Learning rate η > 0 (overrides `learning_rate:`).")
@format_option("table", "json")
@click.option("--max-rows", type=click.IntRange(min=0), default=40, show_default=True,
              help="Rows per table before the rest is summarised; 0 shows all.")
@no_color_option
def command(config: str | None, example: str | None, steps: int | None,
            learning_rate: float | None, fmt: str, max_rows: int, no_color: bool) -> None:
    """Run SGD steps on the network in CONFIG (a YAML file, or - for standard input) and show
    z, a, δ, every gradient and the updated parameters of each step (equations BP1–BP4).
    """
    from gradcalc import config as config_mod
    from gradcalc.network import run

    if (config is None) == (example is None):
        raise click.UsageError("give a CONFIG file or --example NAME (one of them)")
    if learning_rate is not None and not learning_rate > 0:
        raise click.BadParameter(f"must be > 0, got {learning_rate:g}", param_hint="--learning-rate")
    if example is not None:
        from gradcalc.examples import find

        path = find(example)
        spec = config_mod.load_text(path.read_text(encoding="utf-8"), f"{path.stem}.yaml")
    else:
        assert config is not None
        spec = config_mod.load(config)
    if learning_rate is not None:
        spec = dataclasses.replace(spec, learning_rate=learning_rate)
    trace = run(spec, steps=steps)

    if fmt == "json":
        from gradcalc.render import json as json_render

        click.echo(json_render.render(trace), nl=False)
        return
    from gradcalc.render import table

    table.render(trace, console(no_color), max_rows=max_rows)


