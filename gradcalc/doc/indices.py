"""Unicode indices, as the terminal writes Nielsen's notation (z²₁, w²₁₀,₂), and counted nouns.

Kept apart from gradcalc.doc.notation, which re-exports them, so that what only names cells
(check's table) does not load the notation's TeX tables and number styles.
"""

from __future__ import annotations

_SUP = dict(zip("0123456789+-−=()lLjkn", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ˡᴸʲᵏⁿ", strict=True))
# Unicode has no subscript comma; w²₁₀,₂ keeps a plain one.
_SUB = dict(zip("0123456789+-−=(),ijklmnx", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎,ᵢⱼₖₗₘₙₓ", strict=True))


def superscript(text: str) -> str:
    if all(c in _SUP for c in text):
        return "".join(_SUP[c] for c in text)
    return f"^({text})"


def subscript(text: str) -> str:
    if all(c in _SUB for c in text):
        return "".join(_SUB[c] for c in text)
    return f"_({text})"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}{'es' if word.endswith(('s', 'x')) else 's'}"
