"""The versioned JSON contract: every JSON document gradcalc prints opens with these two keys.

FORMAT_VERSION changes only when a consumer of the documents could break: a key removed or
renamed, a value's type or meaning changed. Adding a key does not change it, so consumers ignore
keys they do not know. The schemas in schemas/ describe version 1.
"""

from __future__ import annotations

from typing import Any

from gradcalc import __version__

FORMAT_VERSION = 1


def versioned(doc: dict[str, Any]) -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION, "gradcalc_version": __version__, **doc}
