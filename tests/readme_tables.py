"""The documentation's activation and loss tables (docs/config.md), generated from the
registries so they cannot drift.

    python tests/readme_tables.py    # rewrite the tables after a registry change

tests/test_readme.py fails while the tables differ from what this writes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from gradcalc.functions.activations import ACTIVATIONS
from gradcalc.functions.losses import LOSSES
from gradcalc.functions.registry import Param

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- registry:(\w+) -->\n)(.*?)(<!-- /registry -->)", re.S)


def _cell(text: str) -> str:
    return text.replace("|", r"\|")


def _name(record: object) -> str:
    aliases = "".join(f" (`{a}`)" for a in record.aliases)  # type: ignore[attr-defined]
    return f"`{record.name}`{aliases}"  # type: ignore[attr-defined]


def _params(params: tuple[Param, ...]) -> str:
    return "; ".join(
        f"`{p.name}` {p.range_text}, default {p.default:g}"
        + (", learned like the weights" if p.learnable else "")
        for p in params
    )


def tables() -> dict[str, str]:
    """Table name -> its Markdown, one row per registry record."""
    activations = ["| activation | a = f(z) | derivative | parameters |", "|---|---|---|---|"]
    for a in ACTIVATIONS:
        kind = "" if a.elementwise else " (couples its units: the full Jacobian)"
        activations.append(
            f"| {_name(a)} | {_cell(a.formula.text)} | {_cell(a.derivative.text)}{kind} "
            f"| {_params(a.params)} |"
        )
    losses = ["| loss | C for one example (n output units) | ∂C/∂a_j | parameters |"]
    losses.append("|---|---|---|---|")
    for loss in LOSSES:
        losses.append(
            f"| {_name(loss)} | {_cell(loss.formula.text)} | {_cell(loss.derivative.text)} "
            f"| {_params(loss.params)} |"
        )
    return {"activations": "\n".join(activations) + "\n", "losses": "\n".join(losses) + "\n"}


def rewrite(text: str) -> str:
    generated = tables()
    return BLOCK.sub(lambda m: m.group(1) + generated[m.group(2)] + m.group(4), text)


if __name__ == "__main__":
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        old = page.read_text(encoding="utf-8")
        if BLOCK.search(old):
            page.write_text(rewrite(old), encoding="utf-8")
            sys.stdout.write(f"{page.relative_to(ROOT)}: tables rewritten from the registries\n")
