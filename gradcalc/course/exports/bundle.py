"""The part of the installed gradcalc package that grades a sheet, as a zip a generated file can
carry (PrairieLearn's server.py): the modules `gradcalc check` runs on a config given as data,
as source, so that any Python 3 that has numpy runs them.

The modules are the packages the grading path imports (found by running it and listing
sys.modules), whole, less the writers of output formats none of it imports: a module a grading
change adds to check/, layers/, step/ or functions/ is carried without a change here. The zip is
deterministic (sorted names, fixed timestamps), so one course gives the same bytes every time.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

# Modules of the package's top level, and its packages, that grading imports.
MODULES = ("__init__", "errors", "limits", "records", "symbols", "yamldoc")
PACKAGES = ("check", "doc", "functions", "layers", "step")
# What those packages hold that grading never imports: writers of tables, pages and documents
# (they import rich, PyYAML or orjson, which the bundle's user need not have).
WRITERS = frozenset(
    {
        "check/page",
        "check/views",
        *(f"doc/{name}" for name in ("ascii", "blocks", "fit", "html", "latex", "layout")),
        *(f"doc/{name}" for name in ("markdown", "mathml", "plain", "svg", "text")),
        *(f"layers/{name}" for name in ("attention_written", "solution", "views", "written")),
        *(f"step/{name}" for name in ("diagram", "examples", "files", "json", "pictures")),
        *(f"step/{name}" for name in ("plot", "select", "solution", "table", "writers")),
    }
)
# The grading entry a bundle's user calls, and the packages it sits in.
ENTRY = ("course/__init__", "course/exports/__init__", "course/exports/plgrade")


def module_files(root: Path | None = None) -> list[Path]:
    """The package's files the bundle holds, relative to the folder above the package."""
    package = root or Path(__file__).resolve().parents[2]
    names = [*MODULES, *ENTRY]
    for sub in PACKAGES:
        names += [f"{sub}/{p.stem}" for p in (package / sub).glob("*.py")]
    return sorted(Path("gradcalc", f"{name}.py") for name in set(names) - WRITERS)


def package_zip() -> bytes:
    """The bundle: each module's source, deflated, in sorted order with a fixed timestamp."""
    base = Path(__file__).resolve().parents[3]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in module_files():
            info = zipfile.ZipInfo(path.as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, (base / path).read_bytes(), compresslevel=9)
    return buffer.getvalue()
