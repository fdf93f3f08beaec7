"""gradcalc generate: a different problem for every student, from a template config."""

from __future__ import annotations

from pathlib import Path

import click

from gradcalc.cli.options import WholeNumber, complete_path

FORMATS = ("prairielearn", "moodle-xml", "canvas-qti", "gradescope")


@click.command(
    "generate",
    short_help="Draw per-student variants of a template: sheets, keys, exports.",
    epilog=(
        "\b\nExample:\n"
        "  gradcalc generate --example worked-example --count 30 --seed 7 -o hw3\n"
        "  gradcalc generate --example worked-example --count 3 -o hw3 --format moodle-xml"
    ),
)
@click.argument("template", required=False, metavar="[TEMPLATE]", shell_complete=complete_path)
@click.option(
    "--example",
    metavar="NAME",
    help=(
        "Use the bundled template NAME instead of TEMPLATE (worked-example, "
        "conv-worked-example, batchnorm-worked-example, rnn-bptt, "
        "attention-worked-example)."
    ),
)
@click.option("--count", type=WholeNumber(1, 100_000), metavar="N", help="N variants, ids 1..N.")
@click.option(
    "--roster",
    metavar="CSV",
    shell_complete=complete_path,
    help="One variant per row of CSV (an id column; the other columns are kept).",
)
@click.option(
    "--id-column", default="id", show_default=True, metavar="NAME", help="The roster's id column."
)
@click.option(
    "--seed",
    type=WholeNumber(0, 10**12 - 1, letter="S"),
    default=0,
    show_default=True,
    metavar="S",
    help="The course's seed: each variant's seed is SHA-256 of (S, id).",
)
@click.option(
    "--max-tries",
    type=WholeNumber(1, 100_000),
    default=200,
    show_default=True,
    metavar="N",
    help="Draws per variant before a template's constraints count as unmet.",
)
@click.option(
    "--format",
    "formats",
    type=click.Choice(FORMATS),
    multiple=True,
    help="Also write a course-platform export into DIR/exports (repeatable).",
)
@click.option(
    "--pdf/--no-pdf",
    default=None,
    help="Compile each LaTeX sheet to PDF (default: when pdflatex is found).",
)
@click.option(
    "--output", "-o", "output", required=True, metavar="DIR", help="The folder to write into."
)
def command(
    template: str | None,
    example: str | None,
    count: int | None,
    roster: str | None,
    id_column: str,
    seed: int,
    max_tries: int,
    formats: tuple[str, ...],
    pdf: bool | None,
    output: str,
) -> None:
    """Draw one variant of TEMPLATE per student — a config in which numbers and names may be
    rules such as {uniform: [-0.5, 0.5], decimals: 1} — redrawing any that breaks the
    template's constraints, and write each variant's config, problem sheet (Markdown, LaTeX),
    blank answer sheet and key (the step's JSON and its worked solution) into DIR/ID/.

    The same template, seed and roster write the same bytes on every machine. Exit status: 0
    written, 2 bad input (a template whose constraints no draw meets among them).
    """
    from gradcalc.course import files, variants
    from gradcalc.course import template as template_mod
    from gradcalc.errors import GradcalcError

    if (template is None) == (example is None):
        raise click.UsageError("give a TEMPLATE file or --example NAME (one of them)")
    if (count is None) == (roster is None):
        raise click.UsageError("give --count N or --roster CSV (one of them)")
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise GradcalcError(f"{output}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / files.MANIFEST).exists():
        # Only a course folder is written over: never the files of some other folder.
        raise GradcalcError(
            f"{output}: a folder that is not empty and holds no {files.MANIFEST}; give a new "
            "folder, or the one an earlier `gradcalc generate` wrote"
        )
    if example is not None:
        path = _bundled(example)
        tmpl = template_mod.load_text(path.read_text(encoding="utf-8"), path.name)
    else:
        assert template is not None
        tmpl = template_mod.load(template)
    if roster is not None:
        students, columns = variants.read_roster(roster, id_column)
    else:
        assert count is not None
        students, columns = variants.numbered(count), ()
    if pdf is None:
        pdf = files.pdflatex() is not None
    elif pdf and files.pdflatex() is None:
        raise GradcalcError(
            "--pdf: pdflatex was not found on PATH (install TeX Live, or drop --pdf)"
        )
    course = variants.make_course(tmpl, students, seed, max_tries, columns)
    import importlib

    from gradcalc.course.exports import EXPORTS

    exporters = [importlib.import_module(EXPORTS[fmt]) for fmt in formats]
    for exporter in exporters:  # refused before anything is written
        if hasattr(exporter, "check"):
            exporter.check(course)
    files.write(course, out, pdf)
    for exporter in exporters:
        exporter.write(course, out / "exports")


def _bundled(name: str) -> Path:
    from gradcalc.errors import GradcalcError, did_you_mean
    from gradcalc.step.examples import config_dir

    folder = config_dir() / "templates"
    table = {p.name.removesuffix(".template.yaml"): p for p in sorted(folder.glob("*.yaml"))}
    if name not in table:
        raise GradcalcError(f"no bundled template named '{name}' ({did_you_mean(name, table)})")
    return table[name]
