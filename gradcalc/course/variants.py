"""One problem per student: the roster, each student's variant seed, and the redraws that keep
every variant within the template's constraints."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gradcalc.course.constraints import Variant, broken
from gradcalc.course.template import Template, variant_seed
from gradcalc.errors import ConfigError, NumericError
from gradcalc.yamldoc import read_text

if TYPE_CHECKING:
    from gradcalc.layers.config import LayeredSpec
    from gradcalc.layers.engine import LayeredRun
    from gradcalc.step.config import NetworkSpec
    from gradcalc.step.trace import RunTrace

# An id names a folder and a file: letters, digits and . _ @ + - (an e-mail address fits).
ID_PATTERN = re.compile(r"[A-Za-z0-9_@+\-][A-Za-z0-9._@+\-]{0,99}")
DEFAULT_TRIES = 200


@dataclass(frozen=True)
class Student:
    id: str
    columns: dict[str, str]  # the roster's other columns, kept as they are


@dataclass(frozen=True)
class Problem:
    student: Student
    seed: int  # the variant seed, from (--seed, id)
    attempt: int  # the draw that met the constraints (0: the first)
    config: dict[str, Any]  # the drawn config, as plain data
    # Named "config.yaml", as its folder holds it: a dense network, or one of layer records
    # (gradcalc/layers/: conv, pooling, flatten…) with its own engine's run.
    spec: NetworkSpec | LayeredSpec
    trace: RunTrace | LayeredRun

    @property
    def layered(self) -> bool:
        from gradcalc.step.config import NetworkSpec

        return not isinstance(self.spec, NetworkSpec)

    @property
    def id(self) -> str:
        return self.student.id


@dataclass(frozen=True)
class Course:
    template: Template
    seed: int
    problems: tuple[Problem, ...]
    columns: tuple[str, ...] = ()  # the roster's columns besides the id, in order

    @property
    def decimals(self) -> int:
        return self.template.decimals


def numbered(count: int) -> list[Student]:
    """--count N: ids 1..N, zero-padded to one width so they sort."""
    width = len(str(count))
    return [Student(f"{i:0{width}d}", {}) for i in range(1, count + 1)]


def read_roster(source: str, id_column: str = "id") -> tuple[list[Student], tuple[str, ...]]:
    name, text = read_text(source, "check the path of the roster")
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    fields = tuple(reader.fieldnames or ())
    if id_column not in fields:
        from gradcalc.errors import did_you_mean

        raise ConfigError(
            f"no '{id_column}' column ({did_you_mean(id_column, fields) if fields else 'empty'})",
            source=name,
            line=1,
            hint="name the column with --id-column",
        )
    students: list[Student] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        sid = (row.get(id_column) or "").strip()
        if not ID_PATTERN.fullmatch(sid):
            raise ConfigError(
                f"{id_column}: '{sid[:40]}' is not an id (letters, digits and . _ @ + -, "
                "at most 100)",
                source=name,
                line=line,
            )
        if sid.lower() in seen:  # Alice and alice would share a folder on macOS and Windows
            raise ConfigError(
                f"{id_column}: '{sid}' again (first on line {seen[sid.lower()]}; ids differ in "
                "more than case)",
                source=name,
                line=line,
            )
        seen[sid.lower()] = line
        extra = {k: (v or "") for k, v in row.items() if k != id_column and k is not None}
        students.append(Student(sid, extra))
    if not students:
        raise ConfigError("the roster has no students", source=name)
    return students, tuple(f for f in fields if f != id_column)


def make_course(
    template: Template,
    students: list[Student],
    seed: int,
    max_tries: int = DEFAULT_TRIES,
    columns: tuple[str, ...] = (),
) -> Course:
    template.check_choices()
    return Course(
        template,
        seed,
        tuple(make_problem(template, s, seed, max_tries) for s in students),
        columns,
    )


def make_problem(template: Template, student: Student, seed: int, max_tries: int) -> Problem:
    from gradcalc.layers.engine import run as run_layered
    from gradcalc.step.config import NetworkSpec, build_spec
    from gradcalc.step.engine import run

    vseed = variant_seed(seed, student.id)
    failed: Counter[str] = Counter()
    for attempt in range(max_tries):
        data = template.draw(vseed, attempt)
        built = build_spec(template.variant_doc(data))
        spec = dataclasses.replace(built, source="config.yaml")
        try:
            # Layer records (gradcalc/layers/) have their own engine.
            trace = run(spec) if isinstance(spec, NetworkSpec) else run_layered(spec)
        except NumericError as exc:
            raise template.doc.error((), f"variant '{student.id}' diverged: {exc}") from None
        name = broken(Variant(spec, trace, template.decimals), template.constraints)
        if name is None:
            return Problem(student, vseed, attempt, data, spec, trace)
        failed[name] += 1
    worst, times = failed.most_common(1)[0]
    raise template.doc.error(
        ("constraints", worst),
        f"no variant met it in {max_tries} draws (for id '{student.id}'; it failed {times} of "
        "them)",
        "widen the ranges, relax the constraint or raise --max-tries",
    )
