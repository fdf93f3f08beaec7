"""The folder `gradcalc generate -o DIR` writes:

  DIR/course.json          the manifest: seed, decimals, and each variant's id, seed and folder
  DIR/variants.csv         the roster's rows with each variant's seed and folder
  DIR/ID/config.yaml       the drawn config (`gradcalc step config.yaml` works it)
  DIR/ID/sheet.md, .tex    the problem sheet (sheet.pdf too when pdflatex is found)
  DIR/ID/answers.yaml      the blank answer sheet (`gradcalc check --template`)
  DIR/ID/key.json          the answers: `gradcalc step config.yaml --format json`
  DIR/ID/solution.md, .tex the worked solution (`gradcalc step --format markdown|latex`)

Everything is a function of the template, the seed and the roster: a second run writes the same
bytes.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from gradcalc.course.variants import Course, Problem

MANIFEST = "course.json"


def config_text(course: Course, problem: Problem) -> str:
    import yaml

    head = (
        f"# Variant {problem.id} of {course.template.name} (gradcalc generate --seed "
        f"{course.seed}; variant seed {problem.seed}, draw {problem.attempt})\n"
    )
    body = yaml.safe_dump(
        problem.config, sort_keys=False, default_flow_style=None, allow_unicode=True, width=100
    )
    return head + body


def answer_template(course: Course, problem: Problem) -> str:
    from gradcalc.check import answers
    from gradcalc.check.cells import Shape
    from gradcalc.course.sheet import describe

    spec = problem.spec
    return answers.template(
        Shape.of(spec),
        max(spec.steps, 1),
        "config.yaml",
        describe(spec),
        f"config.yaml --decimals {course.decimals}",
    )


def key_json(problem: Problem) -> str:
    """What `gradcalc step config.yaml --format json` writes."""
    from gradcalc.step.json import render

    if problem.layered:
        from gradcalc.layers.views import JsonWriter

        return render(problem.trace, writer_class=JsonWriter)
    return render(problem.trace)


def solution(problem: Problem, fmt: str) -> str:
    """What `gradcalc step config.yaml --format FMT` writes."""
    if problem.layered:
        trace: Any = problem.trace
        return str(trace.to_markdown() if fmt == "markdown" else trace.to_latex())
    from gradcalc.step.writers import solution as write

    return write(problem.trace, fmt)  # type: ignore[arg-type]


def manifest(course: Course) -> dict[str, Any]:
    from gradcalc.contract import versioned
    from gradcalc.course.template import FORMAT_VERSION

    return versioned(
        {
            "template": course.template.name,
            "variant_format": FORMAT_VERSION,
            "seed": course.seed,
            "decimals": course.decimals,
            "columns": list(course.columns),
            "variants": [
                {
                    "id": p.id,
                    "seed": p.seed,
                    "draw": p.attempt,
                    "folder": p.id,
                    "columns": p.student.columns,
                }
                for p in course.problems
            ],
        }
    )


def variants_csv(course: Course) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", *course.columns, "variant_seed", "folder"])
    for p in course.problems:
        extra = [p.student.columns.get(c, "") for c in course.columns]
        writer.writerow([p.id, *extra, p.seed, p.id])
    return out.getvalue()


def files(course: Course, problem: Problem) -> dict[str, str]:
    """The files of one variant's folder, by name."""
    from gradcalc.course import sheet

    return {
        "config.yaml": config_text(course, problem),
        "sheet.md": sheet.markdown(course, problem),
        "sheet.tex": sheet.latex(course, problem),
        "answers.yaml": answer_template(course, problem),
        "key.json": key_json(problem),
        "solution.md": solution(problem, "markdown"),
        "solution.tex": solution(problem, "latex"),
    }


def pdflatex() -> str | None:
    return shutil.which("pdflatex")


def compile_pdf(tex: Path) -> str | None:
    """Compile tex beside itself; None, or the reason it failed."""
    exe = pdflatex()
    if exe is None:
        return "pdflatex was not found"
    with tempfile.TemporaryDirectory() as tmp:
        import os

        # A fixed date: the same sheet gives the same PDF bytes on a second run.
        env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1"}
        done = subprocess.run(
            [exe, "-interaction=nonstopmode", "-halt-on-error", "-output-directory", tmp, tex.name],
            cwd=tex.parent,
            capture_output=True,
            env=env,
            timeout=120,
            check=False,
        )
        pdf = Path(tmp) / (tex.stem + ".pdf")
        if done.returncode != 0 or not pdf.exists():
            return f"pdflatex failed on {tex} (status {done.returncode})"
        shutil.copyfile(pdf, tex.with_suffix(".pdf"))
    return None


def write(course: Course, out: Path, pdf: bool) -> list[Path]:
    """Write the course folder; returns the files written. With `pdf`, each sheet.tex is also
    compiled (the caller checks that pdflatex exists)."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def put(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)

    put(out / MANIFEST, json.dumps(manifest(course), indent=2, ensure_ascii=False) + "\n")
    put(out / "variants.csv", variants_csv(course))
    for problem in course.problems:
        folder = out / problem.id
        for name, text in files(course, problem).items():
            put(folder / name, text)
        if pdf:
            from gradcalc.errors import GradcalcError

            failure = compile_pdf(folder / "sheet.tex")
            if failure is not None:
                raise GradcalcError(failure)
            written.append(folder / "sheet.pdf")
    return written


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a generated course folder (for check --class and the exports)."""
    from gradcalc.errors import ConfigError

    path = folder / MANIFEST
    if not path.is_file():
        raise ConfigError(
            f"not a course folder: no {MANIFEST}",
            source=str(folder),
            hint="give the folder `gradcalc generate -o DIR` wrote",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read it: {exc}", source=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("variants"), list):
        raise ConfigError("not a course manifest (no variants list)", source=str(path))
    return data
