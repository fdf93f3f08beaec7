"""Unicode characters as TeX math: the one table that the graph's TeX and the document
layer's notation both read, so neither layer reaches into the other for it."""

from __future__ import annotations

import unicodedata

TEX_NAMES = {
    "δ": r"\delta",
    "α": r"\alpha",
    "σ": r"\sigma",
    "η": r"\eta",
    "∂": r"\partial",
    "γ": r"\gamma",  # batch and layer norm's scale and shift
    "β": r"\beta",
}


# The Unicode of the graphs' names and of prose as TeX math (and the characters TeX math reserves).
TEX_SYMBOLS = {
    "½": r"\tfrac{1}{2}",
    "Σ": r"\sum ",
    "−": "-",
    "·": r"\cdot ",
    "≤": r"\le ",
    "≥": r"\ge ",
    "‖": r"\Vert ",
    "²": "^{2}",
    "³": "^{3}",
    "⊙": r"\odot ",
    "×": r"\times ",
    "≠": r"\ne ",
    "%": r"\%",
    "#": r"\#",
    "&": r"\&",
    "$": r"\$",
    **{k: v + " " for k, v in TEX_NAMES.items()},
}


_TEX_CAPITALS = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Phi", "Psi", "Omega"}


def greek_tex(c: str) -> str | None:
    """A Greek letter as its TeX command (π → \\pi), None for anything else."""
    parts = unicodedata.name(c, "").split()
    if len(parts) != 4 or parts[:2] != ["GREEK", "SMALL" if c.islower() else "CAPITAL"]:
        return None
    word = parts[3].lower().replace("lamda", "lambda")
    if c.islower():
        return "\\" + word
    return "\\" + word.capitalize() if word.capitalize() in _TEX_CAPITALS else None
