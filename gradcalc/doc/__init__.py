"""The document layer shared by every command: blocks, notation, and one writer per format.

`DOCUMENTS` is the list of document formats both `step` and `derive` offer with `--format`: a
new format is its writer module here (`write(blocks, compact=False) -> str`) and its line below;
the commands take their choices and writers from it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gradcalc.doc.blocks import Block
    from gradcalc.doc.notation import Kind

# --format NAME -> (the writer's module, the notation its blocks are written in)
DOCUMENTS: dict[str, tuple[str, Kind]] = {
    "markdown": ("gradcalc.doc.markdown", "markdown"),
    "latex": ("gradcalc.doc.latex", "latex"),
    "html": ("gradcalc.doc.html", "markdown"),
}


def write_document(fmt: str, blocks: Sequence[Block], compact: bool = False) -> str:
    """The blocks as a standalone document in format `fmt`; `compact` for a one-page derivation."""
    module, _ = DOCUMENTS[fmt]
    writer = importlib.import_module(module)
    text: str = writer.write(blocks, compact=compact)
    return text
