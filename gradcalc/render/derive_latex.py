"""`gradcalc derive --format latex`: the worked derivation as a complete LaTeX document.

The blocks are derive_document's (the same page in the same order) laid out by the step
documents' LaTeX layout. The document needs the article class, amsmath and booktabs and nothing
else: A4 with 2 cm margins is set by hand rather than with a package. It is pure ASCII, so a
plain `pdflatex -interaction=nonstopmode -halt-on-error` compiles it.
"""

from __future__ import annotations

from gradcalc.derive import DeriveTrace
from gradcalc.render import latex
from gradcalc.render.derive_document import Mermaid, build

_PREAMBLE = r"""\documentclass[11pt,a4paper]{article}
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


def render(trace: DeriveTrace) -> str:
    blocks = [b for b in build(trace, "latex") if not isinstance(b, Mermaid)]  # none in LaTeX
    body = "\n\n".join(latex.render_block(b) for b in blocks)
    return _PREAMBLE + body + "\n\n\\end{document}\n"
