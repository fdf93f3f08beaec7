"""A node's name as TeX math: the primitives write their definitions and partials in TeX
themselves, and quote their arguments' names through `name_tex`."""

from __future__ import annotations

from itertools import groupby

from gradcalc.symbols import TEX_SYMBOLS, greek_tex

_FUNCTIONS = {
    "ln": r"\ln",
    "log": r"\log",
    "exp": r"\exp",
    "max": r"\max",
    "min": r"\min",
    "tanh": r"\tanh",
    "sin": r"\sin",
    "cos": r"\cos",
    "sgn": r"\operatorname{sgn}",
}
_SUBSCRIPTS = "₀₁₂₃₄₅₆₇₈₉"
_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹⁻"
_SCRIPT_DIGITS = str.maketrans(_SUBSCRIPTS + _SUPERSCRIPTS, "01234567890123456789-")
# Characters TeX math reserves or has no glyph for, as names may hold them.
_TEX_OTHER = {
    "-": "-",
    "|": r"\vert ",
    "…": r"\dots ",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "\\": r"\backslash ",
    "~": r"\sim ",
    "^": r"\hat{}",
}


def _kind(c: str) -> str:
    if c in _SUBSCRIPTS:
        return "sub"
    if c in _SUPERSCRIPTS:
        return "sup"
    if c.isascii() and c.isdigit():
        return "digits"
    if ("A" <= c <= "Z") or ("a" <= c <= "z") or "\u0370" <= c <= "\u03ff":
        return "word"
    return "other"


def _letter(c: str) -> str:
    if c.isascii():
        return c
    greek = greek_tex(c)
    return greek + " " if greek else TEX_SYMBOLS.get(c, "?")


def name_tex(name: str) -> str:
    """A node's name in TeX (u₁ → u_{1}, n2 → n_{2}, α → \\alpha, −x → -x, tanh → \\tanh,
    ReLU → \\mathrm{ReLU}, a number as it is), with the space a command needs after it; a
    whole expression's TeX goes through `tidy` once it is put together."""
    if name[:1].isdigit() or (name[:1] in "-−" and name[1:2].isdigit()):
        try:
            float(name.replace("−", "-"))
            return name.replace("−", "-")
        except ValueError:
            pass
    out: list[str] = []
    named = False  # the last run was a letter, so plain digits after it are its index (u2)
    for kind, run in ((k, "".join(g)) for k, g in groupby(name, _kind)):
        if kind == "word":
            if run in _FUNCTIONS:
                out.append(_FUNCTIONS[run] + " ")
            elif len(run) == 1 or not run.isascii():
                out.append("".join(_letter(c) for c in run))
            else:
                out.append(r"\mathrm{" + run + "}")
        elif kind == "digits":
            out.append("_{" + run + "}" if named else run)
        elif kind == "sub":
            out.append("_{" + run.translate(_SCRIPT_DIGITS) + "}")
        elif kind == "sup":
            out.append("^{" + run.translate(_SCRIPT_DIGITS) + "}")
        else:
            out.append(
                "".join(
                    _TEX_OTHER.get(c) or TEX_SYMBOLS.get(c) or (c if c.isascii() else "?")
                    for c in run
                )
            )
        named = kind == "word" or (named and kind == "sub")
    return "".join(out)


def tidy(tex: str) -> str:
    """TeX put together from pieces, its runs of spaces made one and its ends trimmed."""
    return " ".join(tex.split())


def exponent_tex(label: str) -> str:
    """An argument's TeX as an exponent's group: a bracketed label loses its brackets."""
    if label.startswith("(") and label.endswith(")"):
        label = label[1:-1]
    return "{" + tidy(label) + "}"
