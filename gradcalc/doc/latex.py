"""The LaTeX writer: a worked solution (of `step` or `derive`) as a complete document.

It needs nothing beyond amsmath, booktabs and (for `step`) geometry, and is pure ASCII, so a plain
`pdflatex -interaction=nonstopmode -halt-on-error` compiles it. Long chains of equations break
into rows of an align* at the relations, and long sums between their terms.
"""

from __future__ import annotations

from collections.abc import Sequence

from gradcalc.doc.blocks import Block, Eqs, Heading, Mermaid, Para, Table
from gradcalc.doc.notation import equation_rows

PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[a4paper,margin=2cm]{geometry}
\usepackage{amsmath}
\usepackage{booktabs}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.6\baselineskip}
\begin{document}
"""

# The derivation page sets A4 with 2 cm margins by hand instead of loading geometry.
COMPACT_PREAMBLE = r"""\documentclass[11pt,a4paper]{article}
\usepackage{amsmath}
\usepackage{booktabs}
\setlength{\textwidth}{17cm}
\setlength{\textheight}{24.5cm}
\setlength{\oddsidemargin}{-0.54cm}
\setlength{\evensidemargin}{-0.54cm}
\setlength{\topmargin}{-0.54cm}
\setlength{\headheight}{0pt}
\setlength{\headsep}{0pt}
\allowdisplaybreaks
\setlength{\jot}{6pt}
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.6\baselineskip}
\begin{document}
"""


# A tabular cannot break across pages, so long tables are split into pieces of this many rows.
_ROWS_PER_TABLE = 40


def _equations(block: Eqs) -> str:
    rows = equation_rows(block.items)
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


def _table(block: Table) -> str:
    spec = "l" + "r" * (len(block.header) - 1)
    pieces = []
    for start in range(0, max(len(block.rows), 1), _ROWS_PER_TABLE):
        rows = block.rows[start : start + _ROWS_PER_TABLE]
        body = "".join(" & ".join(r) + " \\\\\n" for r in rows)
        pieces.append(
            f"\\begin{{tabular}}{{{spec}}}\n\\toprule\n"
            + " & ".join(block.header)
            + " \\\\\n\\midrule\n"
            + body
            + "\\bottomrule\n\\end{tabular}"
        )
    out = "\\begin{center}\n" + "\n\n\\medskip\n".join(pieces) + "\n\\end{center}"
    if block.note:
        out += "\n\n" + block.note
    return out


def render_block(block: Block) -> str:
    if isinstance(block, Heading):
        if block.level == 1:
            return "\\begin{center}\n{\\Large\\bfseries " + block.text + "}\n\\end{center}"
        return ("\\section*{" if block.level == 2 else "\\subsection*{") + block.text + "}"
    if isinstance(block, Para):
        return block.text
    if isinstance(block, Eqs):
        return _equations(block)
    assert isinstance(block, Table)
    return _table(block)


def write(blocks: Sequence[Block], compact: bool = False) -> str:
    """A complete document; `compact` sets the derivation's page (no geometry package). A Mermaid
    chart has no LaTeX form and is left out."""
    preamble = COMPACT_PREAMBLE if compact else PREAMBLE
    body = "\n\n".join(render_block(b) for b in blocks if not isinstance(b, Mermaid))
    return preamble + body + "\n\n\\end{document}\n"
