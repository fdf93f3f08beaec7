"""Nielsen's notation in the three text forms gradcalc writes: terminal, Markdown and LaTeX.

The terminal gets Unicode indices (z²₁, w²₁₀,₂); Markdown and LaTeX share TeX math (z^{2}_{1}),
and differ only in how prose is escaped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from gradcalc.doc.indices import plural as plural  # re-exported: the notation's own words
from gradcalc.doc.indices import subscript, superscript
from gradcalc.doc.numbers import Style
from gradcalc.symbols import TEX_NAMES, TEX_SYMBOLS, greek_tex

if TYPE_CHECKING:
    import numpy as np

    from gradcalc.doc.blocks import Eq
    from gradcalc.functions.registry import Written

Kind = Literal["text", "markdown", "latex"]
Index = int | str

# Where a long substituted sum may be broken across lines in TeX; the terminal drops it.
BREAK = "\u2063"


def _indices(units: Sequence[Index]) -> str:
    # w²₁₂ reads as j = 1, k = 2 only while every index is one character.
    parts = [str(u) for u in units]
    return ("," if any(len(p) > 1 for p in parts) else "").join(parts)


_LATEX_PROSE = str.maketrans(
    {
        "\\": r"\textbackslash{}",
        "{": r"\{",
        "}": r"\}",
        "$": r"\$",
        "&": r"\&",
        "#": r"\#",
        "%": r"\%",
        "_": r"\_",
        "^": r"\^{}",
        "~": r"\~{}",
        "<": r"\textless{}",
        ">": r"\textgreater{}",
        "|": r"\textbar{}",
    }
)


def latex_escape(text: str) -> str:
    """Any string as LaTeX prose: special characters escaped, the rest reduced to ASCII."""
    bare = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    ascii_text = bare.encode("ascii", "replace").decode()
    kept = "".join(c for c in ascii_text if c.isprintable())
    return kept.translate(_LATEX_PROSE)


# Prose characters that only math mode has; the rest of a sentence is escaped as text.
_PROSE_MATH = {
    **{k: v.strip() for k, v in TEX_SYMBOLS.items() if not k.isascii()},
    "→": r"\to",
    "←": r"\leftarrow",
    "¬": r"\neg",
    "∞": r"\infty",
    **{c: "_{" + d + "}" for c, d in zip("₀₁₂₃₄₅₆₇₈₉", "0123456789", strict=True)},
    **{c: "^{" + d + "}" for c, d in zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-", strict=True)},
}
_PROSE_TEXT = {"…": r"\dots{}", "—": "---", "–": "--", "’": "'", "‘": "`", "′": "'"}


def latex_text(text: str) -> str:
    """A sentence as LaTeX prose: its math symbols (−, σ, ≤, a₁ …) as inline math, so nothing
    is lost to ASCII, and every other character escaped as by `latex_escape`."""
    out: list[str] = []
    run: list[str] = []
    for c in text:
        math = _PROSE_MATH.get(c) or greek_tex(c)
        if math:
            run.append(math + (" " if math[-1].isalpha() else ""))
            continue
        if run:
            out.append("$" + "".join(run).rstrip() + "$")
            run = []
        out.append(_PROSE_TEXT.get(c) or latex_escape(c))
    if run:
        out.append("$" + "".join(run).rstrip() + "$")
    return "".join(out)


def markdown_text(text: str) -> str:
    """A sentence as Markdown prose: the characters Markdown would read as markup escaped."""
    return re.sub(r"([\\`*_\[\]<>$|~])", r"\\\1", text)


def markdown_code(text: str) -> str:
    """A code span that holds any string, backticks included."""
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def tex_width(expr: str) -> float:
    """Roughly how many digits wide a TeX expression prints (indices count half)."""
    scripts = re.findall(r"[\^_]\{([^{}]*)\}", expr)
    rest = re.sub(r"[\^_]\{[^{}]*\}", "", expr)
    rest = rest.replace(r"\times", "xxx").replace(r"\quad", "xx")
    rest = re.sub(r"[{}&" + BREAK + "]", "", re.sub(r"\\[A-Za-z]+", "x", rest))
    return len(rest) + 0.5 * sum(len(s) for s in scripts)


def tex_rows(lhs: str, rhs: Sequence[tuple[str, str]], limit: int = 80) -> list[str]:
    """Rows for align*/aligned, `lhs &= …`: a relation that does not fit starts a new row, and a
    sum too long for a row of its own continues on the next one at a BREAK."""
    rows: list[str] = []
    line, width, indent = f"{lhs} &", tex_width(lhs), tex_width(lhs)

    def new_row(start: str, extra: float) -> None:
        nonlocal line, width
        rows.append(line.rstrip())
        line, width = start, indent + extra

    for n, (rel, expr) in enumerate(rhs):
        if n and width + tex_width(f"{rel} {expr}") > limit:
            new_row("&", 0)
        for m, chunk in enumerate(expr.split(BREAK)):
            piece = f"{rel} {chunk}" if m == 0 else chunk.strip()
            if m and width + tex_width(piece) > limit:
                new_row(r"&\quad ", 2)
            line += piece if line.endswith(("&", " ")) else " " + piece
            width += tex_width(piece) + 1
    rows.append(line.rstrip())
    return rows


class Notation:
    """Symbols and numbers for one output kind; `round_to` fixes the decimals of results."""

    def __init__(self, kind: Kind = "text", round_to: int | None = None, digits: int = 3) -> None:
        self.kind: Kind = kind
        self.tex = kind != "text"
        self.round_to = round_to
        self.digits = digits  # significant digits of a result (--digits)
        # Results; values given in the config, as given (0.2, not 0.200); exact values beside
        # rounded ones, which need more digits than the results they are compared with.
        self.result = Style(digits, "sheet", decimals=round_to, tex=self.tex)
        self.given = Style(max(6, digits), "sheet", trim=True, tex=self.tex)
        self.precise = Style(max(6, digits), "sheet", tex=self.tex)
        self.times = r" \times " if self.tex else "×"  # inside a sum: 0.2×0.8
        self.ttimes = r" \times " if self.tex else " × "  # between factors of a product
        self.minus = "-" if self.tex else "−"
        self.eta = r"\eta" if self.tex else "η"
        self.dots = r"\dots" if self.tex else "…"
        self.half = r"\tfrac{1}{2}" if self.tex else "½"
        self.ln = r"\ln" if self.tex else "ln"

    # -- symbols -------------------------------------------------------------------------------
    def sym(self, name: str | Written, layer: Index | None = None, *units: Index) -> str:
        """sym('w', 2, 1, 2) → w²₁₂ or w^{2}_{12}; an index ≥ 10 separates them with commas."""
        if not isinstance(name, str):
            name = self.written(name)
        if self.tex:
            out = TEX_NAMES.get(name, name)
            if layer is not None:
                out += "^{" + str(layer).replace("−", "-") + "}"
            if units:
                out += "_{" + _indices(units).replace("−", "-") + "}"
            return out
        out = name
        if layer is not None:
            out += superscript(str(layer))
        if units:
            out += subscript(_indices(units))
        return out

    def d(self, of: str) -> str:
        """∂C/∂(of)."""
        return rf"\partial C/\partial {of}" if self.tex else f"∂C/∂{of}"

    def total_sym(self, index: str) -> str:
        return rf"\sum\nolimits_{{{index}}}" if self.tex else "Σ" + subscript(index)

    def squared(self, expr: str) -> str:
        return f"{expr}^{{2}}" if self.tex else f"{expr}²"

    def frac(self, num: int | str, den: int | str) -> str:
        return rf"\tfrac{{{num}}}{{{den}}}" if self.tex else f"({num}/{den})"

    def words(self, text: str) -> str:
        """Prose inside math: \\text{…} in TeX."""
        return rf"\text{{{text}}}" if self.tex else text

    # -- numbers -------------------------------------------------------------------------------
    def num(self, value: float, given: bool = False) -> str:
        """A result: exactly N decimals under --round N, else significant digits. Values `given`
        in the config are written as given (0.2, not 0.200)."""
        return (self.given if given else self.result)(value)

    def exact(self, value: float) -> str:
        return self.precise(value)

    def par(self, value: float, given: bool = False) -> str:
        """A number substituted after an operator: negatives (and 10-powers) in parentheses."""
        text = self.num(value, given)
        scientific = "×" in text or r"\times" in text
        return f"({text})" if scientific or text.startswith(("-", "−")) else text

    def prod(self, *factors: tuple[float, bool], lead: bool = False, tight: bool = True) -> str:
        """a×b: the first factor of an expression (`lead`) keeps its bare sign."""
        parts = [
            self.num(v, g) if lead and i == 0 else self.par(v, g)
            for i, (v, g) in enumerate(factors)
        ]
        return (self.times if tight else self.ttimes).join(parts)

    def total(self, terms: Sequence[str], hidden: int = 0) -> str:
        """t₁ + t₂ + … + (k more terms), breakable between terms in TeX."""
        shown = list(terms)
        if hidden:
            shown += [self.dots, self.words(f"({hidden} more term{'s' if hidden != 1 else ''})")]
        return f"{BREAK} + ".join(shown)

    def vec(self, values: Iterable[float], given: bool = False, limit: int = 0) -> str:
        items = list(values)
        shown = [self.num(v, given) for v in (items[:limit] if limit else items)]
        if limit and len(items) > limit:
            shown.append(self.dots)
        return "(" + ", ".join(shown) + ")"

    def matrix(
        self, rows: Sequence[Sequence[float]] | np.ndarray, given: bool = False, limit: int = 0
    ) -> str:
        """A matrix, rows and columns capped at `limit` with ⋯ and ⋮."""
        cut = (lambda seq: seq[:limit]) if limit else (lambda seq: seq)
        cells = [[self.num(v, given) for v in cut(list(row))] for row in cut(list(rows))]
        wide = bool(limit) and len(rows[0]) > limit
        tall = bool(limit) and len(rows) > limit
        if self.tex:
            lines = [" & ".join(r + ([r"\cdots"] if wide else [])) for r in cells]
            if tall:
                lines.append(" & ".join([r"\vdots"] * (len(cells[0]) + wide)))
            return "\\begin{pmatrix}\n" + " \\\\\n".join(lines) + "\n\\end{pmatrix}"
        lines = ["[" + ", ".join(r + (["…"] if wide else [])) + "]" for r in cells]
        if tall:
            lines.append("…")
        return "[" + ", ".join(lines) + "]"

    # -- prose ---------------------------------------------------------------------------------
    def math(self, expr: str) -> str:
        """Inline math inside prose."""
        return f"${expr.replace(BREAK, '')}$" if self.tex else expr.replace(BREAK, "")

    def name(self, text: str) -> str:
        """An identifier or file name inside prose (escaped; code face where there is one)."""
        if self.kind == "markdown":
            return markdown_code(text)
        if self.kind == "latex":
            return r"\texttt{" + latex_escape(text) + "}"
        return text

    def text(self, text: str) -> str:
        """Any sentence (a note, a message) as prose of this kind."""
        if self.kind == "markdown":
            return markdown_text(text)
        if self.kind == "latex":
            return latex_text(text)
        return text

    def written(self, w: Written) -> str:
        """Display math from a registry in this kind's form (TeX or Unicode)."""
        return w.tex if self.tex else w.text

    def formula(self, w: Written) -> str:
        """A registry formula as inline math."""
        return self.math(w.tex) if self.tex else w.text


def equation_rows(items: Iterable[Eq]) -> list[str]:
    """The rows of a chain of equations for align*/aligned, each tag set after its last row."""
    rows: list[str] = []
    for eq in items:
        lines = tex_rows(eq.lhs, eq.rhs)
        if eq.tag:
            lines[-1] += rf" \qquad \text{{({eq.tag})}}"
        rows.extend(lines)
    return rows


def sparkline(values: Sequence[float] | np.ndarray, width: int | None = None) -> str:
    """A loss curve in one line: one bar per value, or, past `width` values, one bar per bucket
    of consecutive values (their mean); on a log scale when the values are positive and span
    more than two decades, so the descent after the first steps stays visible."""
    import numpy as np

    ticks = "▁▂▃▄▅▆▇█"
    v = np.asarray(values, dtype=float)
    if width is not None and len(v) > width > 0:
        edges = np.linspace(0, len(v), width + 1).astype(int)
        v = np.add.reduceat(v, edges[:-1]) / np.diff(edges)
    low, high = float(v.min()), float(v.max())
    if low > 0 and high / low > 100:
        v, low, high = np.log10(v), float(np.log10(low)), float(np.log10(high))
    if high == low:
        return ticks[0] * len(v)
    return "".join(ticks[i] for i in np.rint((v - low) / (high - low) * 7).astype(int))
