"""The versioned JSON contract: every JSON document gradcalc prints opens with these two keys.

FORMAT_VERSION changes only when a consumer of the documents could break: a key removed or
renamed, a value's type or meaning changed. Adding a key does not change it, so consumers ignore
keys they do not know. The schemas in schemas/ describe version 1; `gradcalc schema NAME`
prints them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gradcalc import __version__

FORMAT_VERSION = 1


def versioned(doc: dict[str, Any]) -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION, "gradcalc_version": __version__, **doc}


# The documents that have a published schema: schemas/NAME.schema.json in a checkout,
# gradcalc/schemas/ in an installed wheel.
SCHEMAS = ("step", "derive", "check", "list", "gradebook")  # gradebook: check --class


def schema_path(name: str) -> Path:
    from gradcalc.errors import GradcalcError

    package = Path(__file__).resolve().parent
    for folder in (package / "schemas", package.parent / "schemas"):
        path = folder / f"{name}.schema.json"
        if path.is_file():
            return path
    raise GradcalcError(f"the JSON Schema of '{name}' is missing from this installation")
