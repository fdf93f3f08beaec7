"""`gradcalc derive --format markdown`: the worked derivation with the graph as a Mermaid chart."""

from __future__ import annotations

from gradcalc.derive import DeriveTrace
from gradcalc.render import markdown
from gradcalc.render.derive_document import DocBlock, Mermaid, build


def _block(block: DocBlock) -> str:
    if isinstance(block, Mermaid):
        return "```mermaid\n" + block.source + "\n```"
    return markdown.render_block(block)


def render(trace: DeriveTrace) -> str:
    return "\n\n".join(_block(b) for b in build(trace, "markdown")) + "\n"
