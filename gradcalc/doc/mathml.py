"""TeX math, as the document notation writes it, as MathML (which browsers render natively).

Only the TeX the notation writes is understood: letters, numbers, operators, ^ and _ scripts,
\\frac and \\tfrac, \\sqrt, \\hat, \\text and its kin, \\operatorname, named functions (\\tanh),
Greek letters and symbols, \\sum, spaces, \\left/\\right and the pmatrix environment. An unknown
command is written as its name in text, never dropped silently.
"""

from __future__ import annotations

import re
import unicodedata
from xml.sax.saxutils import escape

from gradcalc.symbols import TEX_SYMBOLS

_TOKEN = re.compile(
    r"\\[A-Za-z]+\s*|\\.|\d+(?:\.\d+)?|\.\d+|[A-Za-z]|\s+|.",
    re.DOTALL,
)

_SYMBOLS = {v.strip(): k for k, v in TEX_SYMBOLS.items() if v.strip().startswith("\\")}
_SYMBOLS.update(
    {
        r"\to": "→",
        r"\leftarrow": "←",
        r"\rightarrow": "→",
        r"\neg": "¬",
        r"\dots": "…",
        r"\ldots": "…",
        r"\cdots": "⋯",
        r"\infty": "∞",
        r"\nabla": "∇",
        r"\vert": "|",
        r"\Vert": "‖",
        r"\pm": "±",
        r"\approx": "≈",
        r"\in": "∈",
        r"\{": "{",
        r"\}": "}",
        r"\|": "‖",
        r"\%": "%",
        r"\#": "#",
        r"\&": "&",
        r"\$": "$",
        r"\ge": "≥",
        r"\le": "≤",
        r"\ne": "≠",
        r"\times": "×",
        r"\cdot": "·",
        r"\odot": "⊙",
        r"\partial": "∂",
        r"\epsilon": "ϵ",
        r"\varepsilon": "ε",
    }
)
_GREEK = {
    "\\" + unicodedata.name(chr(c)).split()[-1].lower(): chr(c)
    for c in range(0x3B1, 0x3CA)
    if chr(c) != "ς"
}
_GREEK.update(
    zip(
        (r"\Gamma", r"\Delta", r"\Theta", r"\Lambda", r"\Xi", r"\Pi", r"\Sigma", r"\Phi", r"\Psi"),
        "ΓΔΘΛΞΠΣΦΨ",
        strict=True,
    )
)
_GREEK[r"\Omega"] = "Ω"
_GREEK[r"\lambda"] = "λ"
_FUNCTIONS = {
    "tanh", "sinh", "cosh", "ln", "log", "exp", "max", "min", "sin", "cos", "sign", "sgn",
    "arg", "det", "lim", "sup", "inf", "erf",
}  # fmt: skip
_SPACES = {r"\quad": "1em", r"\qquad": "2em", r"\,": "0.17em", r"\;": "0.28em", r"\:": "0.22em"}
_SPACES[r"\ "] = "0.25em"
_TEXT = {r"\text", r"\texttt", r"\mathrm", r"\textrm", r"\mbox", r"\textit", r"\textbf"}
_IGNORED = {r"\nolimits", r"\limits", r"\allowbreak", r"\displaystyle", r"\!", r"\left", r"\right"}
_OPERATORS = set("+-=<>()[]{},;:!/|'") | {"−", "×", "·", "→", "≤", "≥", "≠", "…", "|", "‖", "∈"}


class _Parser:
    def __init__(self, tex: str) -> None:
        self.tokens = [t for t in _TOKEN.findall(tex)]
        self.i = 0

    def peek(self) -> str | None:
        while self.i < len(self.tokens) and self.tokens[self.i].isspace():
            self.i += 1
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        assert tok is not None
        self.i += 1
        return tok.strip() if tok.startswith("\\") and tok.strip() != "\\" else tok

    def group(self) -> str:
        """A {…} argument (or a single token) as MathML."""
        if self.peek() == "{":
            self.take()
            inner = self.row(stop="}")
            if self.peek() == "}":
                self.take()
            return inner
        return self.atom() or "<mrow/>"

    def raw_group(self) -> str:
        """A {…} argument's source text, unparsed (the text of \\text{…})."""
        if self.peek() != "{":
            return self.take() if self.peek() else ""
        self.take()
        depth, out = 1, []
        while self.i < len(self.tokens):
            tok = self.tokens[self.i]
            self.i += 1
            if tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1
                if depth == 0:
                    break
            out.append(tok)
        return "".join(out)

    def row(self, stop: str | None = None) -> str:
        items: list[str] = []
        while True:
            tok = self.peek()
            if tok is None or tok == stop or (stop == "}" and tok == "}"):
                break
            if stop == "&" and tok in ("&", "\\\\", r"\end"):
                break
            if tok in ("&", "\\\\") and stop != "&":
                self.take()  # an alignment point or a line break outside an environment
                continue
            if tok.strip() == r"\end":
                break
            if tok == "-" and (not items or items[-1].startswith("<mo")):
                # A sign, not a subtraction: −0.2 is one number, −z a prefix operator.
                self.take()
                nxt = self.peek()
                if nxt is not None and (nxt[0].isdigit() or nxt.startswith(".")):
                    items.append(self.scripts(f"<mn>−{self.take()}</mn>"))
                else:
                    items.append('<mo form="prefix">−</mo>')
                continue
            atom = self.atom()
            if atom is None:
                continue
            items.append(self.scripts(atom))
        if len(items) == 1:
            return items[0]
        return "<mrow>" + "".join(items) + "</mrow>"

    def scripts(self, base: str) -> str:
        sub = sup = None
        while self.peek() in ("^", "_"):
            mark = self.take()
            arg = self.group()
            if mark == "^":
                sup = arg
            else:
                sub = arg
        if sub is not None and sup is not None:
            return f"<msubsup>{base}{sub}{sup}</msubsup>"
        if sub is not None:
            return f"<msub>{base}{sub}</msub>"
        if sup is not None:
            return f"<msup>{base}{sup}</msup>"
        return base

    def atom(self) -> str | None:
        tok = self.take()
        if tok == "{":
            inner = self.row(stop="}")
            if self.peek() == "}":
                self.take()
            return f"<mrow>{inner}</mrow>"
        if tok in ("^", "_"):  # a script with no base
            self.i -= 1
            return self.scripts("<mrow/>")
        if tok.startswith("\\") and len(tok) > 1:
            return self.command(tok)
        if tok[0].isdigit() or (tok.startswith(".") and len(tok) > 1):
            return f"<mn>{tok}</mn>"
        if tok.isalpha():
            return f"<mi>{escape(tok)}</mi>"
        if tok == "-":
            return "<mo>−</mo>"
        if tok == "'":
            return "<mo>′</mo>"
        if tok in _OPERATORS:
            stretch = ' stretchy="false"' if tok in "()[]{}|" else ""
            return f"<mo{stretch}>{escape(tok)}</mo>"
        if tok == "~":
            return '<mspace width="0.25em"/>'
        return f"<mi>{escape(tok)}</mi>"

    def command(self, name: str) -> str | None:
        if name in _IGNORED:
            if name in (r"\left", r"\right") and self.peek() is not None:
                delim = self.take()
                if delim == ".":
                    return None
                return f"<mo>{escape(_SYMBOLS.get(delim, delim))}</mo>"
            return None
        if name in (r"\frac", r"\tfrac", r"\dfrac"):
            num, den = self.group(), self.group()
            style = ' displaystyle="false"' if name == r"\tfrac" else ""
            return f"<mfrac{style}>{num}{den}</mfrac>"
        if name == r"\sqrt":
            return f"<msqrt>{self.group()}</msqrt>"
        if name in (r"\hat", r"\bar", r"\tilde"):
            accent = {r"\hat": "^", r"\bar": "¯", r"\tilde": "~"}[name]
            return f'<mover accent="true">{self.group()}<mo>{accent}</mo></mover>'
        if name in _TEXT:
            text = self.raw_group()
            variant = ' mathvariant="monospace"' if name == r"\texttt" else ""
            return f"<mtext{variant}>{escape(_plain(text))}</mtext>"
        if name in (r"\operatorname", r"\mathrel", r"\mathbin", r"\mathop"):
            if name == r"\operatorname":
                return f'<mi mathvariant="normal">{escape(_plain(self.raw_group()))}</mi>'
            return self.group()
        if name in (r"\sum", r"\prod"):
            return "<mo>∑</mo>" if name == r"\sum" else "<mo>∏</mo>"
        if name in _SPACES:
            return f'<mspace width="{_SPACES[name]}"/>'
        if name[1:] in _FUNCTIONS:
            return f"<mi>{name[1:]}</mi>"
        if name in _GREEK:
            return f"<mi>{_GREEK[name]}</mi>"
        if name in _SYMBOLS:
            c = _SYMBOLS[name]
            return f"<mi>{c}</mi>" if c in "∂∇∞" else f"<mo>{escape(c)}</mo>"
        if name == r"\begin":
            return self.environment(self.raw_group())
        if name == "\\\\":
            return None
        return f"<mtext>{escape(name)}</mtext>"

    def environment(self, env: str) -> str:
        rows: list[list[str]] = [[]]
        while self.peek() is not None:
            tok = self.peek()
            if tok is not None and tok.strip() == r"\end":
                self.take()
                self.raw_group()
                break
            if tok == "&":
                self.take()
                continue
            if tok == "\\\\":
                self.take()
                rows.append([])
                continue
            rows[-1].append(self.row(stop="&"))
        body = "".join(
            "<mtr>" + "".join(f"<mtd>{c}</mtd>" for c in r) + "</mtr>" for r in rows if r
        )
        table = f"<mtable>{body}</mtable>"
        fences = {"pmatrix": "()", "bmatrix": "[]", "vmatrix": "||", "Bmatrix": "{}"}.get(env)
        if fences:
            return f"<mrow><mo>{fences[0]}</mo>{table}<mo>{fences[1]}</mo></mrow>"
        return table


def _plain(text: str) -> str:
    """The text of \\text{…}: TeX's escapes undone."""
    return re.sub(r"\\([{}$&#%_ ])", r"\1", text).replace("~", " ")


def mathml(tex: str, display: bool = False) -> str:
    """`tex` as a <math> element (block when `display`)."""
    body = _Parser(tex).row()
    mode = ' display="block"' if display else ""
    return f"<math{mode}>{body}</math>"


def row(tex: str) -> str:
    """`tex` as MathML content, without the <math> element."""
    return _Parser(tex).row()
