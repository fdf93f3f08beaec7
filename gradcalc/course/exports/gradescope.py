"""Gradescope: an autograder zip. `setup.sh` installs gradcalc; `run_autograder` runs run.py,
which reads /autograder/submission_metadata.json, finds the student's variant by the roster id
(Gradescope's `sid` or user `id`) or e-mail (the id itself, or the roster's `email` column),
grades the submitted answer sheet with `gradcalc check --format gradescope` at the sheet's
decimals, and writes /autograder/results/results.json.

Reference: Gradescope's autograder specifications,
https://gradescope-autograders.readthedocs.io/en/latest/specs/ (the zip's setup.sh and
run_autograder, results.json) and /en/latest/submission_metadata/.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

from gradcalc import __version__
from gradcalc.course.files import config_text, manifest
from gradcalc.course.variants import Course

SETUP = f"""#!/usr/bin/env bash
# Gradescope runs this once, when the autograder image is built.
set -euo pipefail
python3 -m pip install --upgrade pip
python3 -m pip install "${{GRADCALC_PIP_SPEC:-gradcalc=={__version__}}}"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission.
cd "$(dirname "$0")"
exec python3 run.py
"""

RUN = '''"""Grade one Gradescope submission against the student's variant (gradcalc generate)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(os.environ.get("AUTOGRADER_ROOT", "/autograder"))
HERE = Path(__file__).resolve().parent
SUFFIXES = (".yaml", ".yml", ".json")


def find(course, users):
    """The variant of the first user whose sid, id or e-mail the roster knows."""
    for user in users:
        keys = {str(user.get(k)).strip().lower() for k in ("sid", "id", "email") if user.get(k)}
        for variant in course["variants"]:
            email = str(variant.get("columns", {}).get("email", "")).strip().lower()
            if str(variant["id"]).lower() in keys or (email and email in keys):
                return variant
    return None


def sheet(folder):
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    named = [p for p in files if p.stem == "answers"]
    return (named or files or [None])[0]


def refuse(results, text):
    results.write_text(json.dumps({"score": 0, "output": text, "tests": []}))


def main():
    course = json.loads((HERE / "course" / "course.json").read_text(encoding="utf-8"))
    meta = json.loads((ROOT / "submission_metadata.json").read_text(encoding="utf-8"))
    results = ROOT / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    variant = find(course, meta.get("users", []))
    if variant is None:
        return refuse(results, "No variant of this assignment is assigned to you: ask your "
                      "instructor (matched by student id and e-mail).")
    answers = sheet(ROOT / "submission")
    if answers is None:
        return refuse(results, "No answer sheet found: submit answers.yaml.")
    config = HERE / "course" / variant["folder"] / "config.yaml"
    command = [sys.executable, "-m", "gradcalc", "check", str(config), str(answers),
               "--decimals", str(course["decimals"]), "--format", "gradescope",
               "-o", str(results)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        refuse(results, "Your answer sheet could not be read: " + done.stderr.strip())


if __name__ == "__main__":
    main()
'''


def _entry(zf: zipfile.ZipFile, name: str, text: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # the same bytes twice
    info.compress_type = zipfile.ZIP_DEFLATED
    mode = 0o755 if executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    zf.writestr(info, text.encode("utf-8"))


def write(course: Course, out: Path) -> list[Path]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        _entry(zf, "setup.sh", SETUP, executable=True)
        _entry(zf, "run_autograder", RUN_AUTOGRADER, executable=True)
        _entry(zf, "run.py", RUN)
        _entry(
            zf,
            "course/course.json",
            json.dumps(manifest(course), indent=2, ensure_ascii=False) + "\n",
        )
        for problem in course.problems:
            _entry(zf, f"course/{problem.id}/config.yaml", config_text(course, problem))
    path = out / "gradescope-autograder.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return [path]
