"""Run a generated PrairieLearn server.py as PrairieLearn runs it, in a fresh interpreter that
can import numpy and the standard library only: not the installed gradcalc, PyYAML, click, rich
or orjson (python -I -S, and a folder holding only numpy on sys.path). A stale `gradcalc` module
is left in sys.modules first, as another question's server.py could leave one in a worker: the
bundle must replace it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy

# What server.py must do without: it carries gradcalc, and grading needs none of the others.
ABSENT = ("gradcalc", "yaml", "click", "rich", "orjson")

RUNNER = r"""
import importlib.util, json, sys

job = json.loads(sys.stdin.read())
sys.path.append(job["numpy"])
reachable = [n for n in job["absent"] if importlib.util.find_spec(n) is not None]
# What another question's server.py may leave in a long-lived worker: a gradcalc of its own.
stale = type(sys)("gradcalc")
sys.modules["gradcalc"] = sys.modules["gradcalc.check"] = stale
spec = importlib.util.spec_from_file_location("server", job["server"])
server = importlib.util.module_from_spec(spec)
spec.loader.exec_module(server)
results = []
for case in job["cases"]:
    data = dict(job["data"], variant_seed=case["seed"])
    data = json.loads(json.dumps(data))  # a fresh dict each time, as PrairieLearn's JSON
    server.generate(data)
    generated = json.loads(json.dumps(data))
    data["submitted_answers"] = case.get("submitted", {})
    server.grade(data)
    results.append({"generated": generated, "graded": data})
top = job["absent"]
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in top)
outside = [
    m for m in loaded
    if m.partition(".")[0] != "gradcalc"
    or type(getattr(sys.modules[m], "__loader__", None)).__name__ != "_Bundle"
]
print(json.dumps({"reachable": reachable, "loaded": loaded, "outside": outside,
                  "results": results}))
"""


def pl_data(seed: int) -> dict[str, Any]:
    """The data dict PrairieLearn hands server.py's generate() and grade(): its keys as
    documented (https://prairielearn.readthedocs.io/en/latest/question/server/)."""
    return {
        "params": {},
        "correct_answers": {},
        "submitted_answers": {},
        "format_errors": {},
        "partial_scores": {},
        "score": 0,
        "feedback": {},
        "variant_seed": seed,
        "options": {},
        "raw_submitted_answers": {},
        "editable": True,
        "panel": "question",
        "extensions": {},
        "num_valid_submissions": 0,
    }


@cache
def numpy_only(root: str) -> str:
    """A folder holding numpy (and the libraries its wheel ships beside it), and nothing else."""
    folder = Path(root) / "numpy-only"
    folder.mkdir(parents=True, exist_ok=True)
    package = Path(numpy.__file__).resolve().parent
    for source in (package, package.with_name("numpy.libs")):
        link = folder / source.name
        if source.exists() and not link.exists():
            link.symlink_to(source, target_is_directory=True)
    return str(folder)


def run(server: Path, cases: list[dict[str, Any]], tmp: Path) -> dict[str, Any]:
    """Each case ({seed, submitted}) generated then graded by `server` in one fresh
    interpreter; returns what it reports (its results, what it could import and loaded)."""
    job = {
        "server": str(server),
        "numpy": numpy_only(str(tmp)),
        "absent": list(ABSENT),
        "data": pl_data(0),
        "cases": cases,
    }
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=tmp,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def load_variants(server: Path) -> list[dict[str, Any]]:
    """server.py's VARIANTS, read without running its grading (which would put its bundled
    gradcalc in place of the installed one)."""
    spec = importlib.util.spec_from_file_location("pl_server_variants", server)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.VARIANTS
