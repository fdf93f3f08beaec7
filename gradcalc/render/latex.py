"""`gradcalc step --format latex`: the worked solution as a complete LaTeX document.

It needs nothing beyond amsmath, booktabs and geometry, and is pure ASCII, so a plain
`pdflatex -interaction=nonstopmode -halt-on-error` compiles it. Long chains of equations break
into rows of an align* at the relations, and long sums between their terms.
"""

from __future__ import annotations

from gradcalc.render.explain import Block, Eqs, Heading, Para, Table, build
from gradcalc.render.notation import Notation, tex_rows
from gradcalc.trace import RunTrace

_PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[a4paper,margin=2cm]{geometry}
\usepackage{amsmath}
\usepackage{booktabs}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.6\baselineskip}
\begin{document}
"""

# A tabular cannot break across pages, so long tables are split into pieces of this many rows.
_ROWS_PER_TABLE = 40


def _equations(block: Eqs) -> str:
    rows: list[str] = []
    for eq in block.items:
        lines = tex_rows(eq.lhs, eq.rhs)
        if eq.tag:
            lines[-1] += rf" \qquad \text{{({eq.tag})}}"
        rows.extend(lines)
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
    return _table(block)


def render(
    trace: RunTrace, *, exact: RunTrace | None = None, max_terms: int = 6, max_rows: int = 40
) -> str:
    blocks = build(
        trace,
        Notation("latex", trace.round_to),
        exact=exact,
        max_terms=max_terms,
        max_rows=max_rows,
        document=True,
    )
    return _PREAMBLE + "\n\n".join(render_block(b) for b in blocks) + "\n\n\\end{document}\n"
