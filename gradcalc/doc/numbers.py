"""The one number formatter: every view of every command writes its numbers through `number`.

A view asks for an explicit number of significant digits (`--digits N` sets it for all views of a
command) and names the rule it writes by, in `Style`. The rules are the ones the views have always
used, kept so that their output does not change:

- the tables, DOT labels and sentences: Python's general format (`0.000867027`, `1e-07`);
- the derive table: also `digits` decimals from 1 up to 10⁶ (`1.740818`, trailing zeros dropped);
- the worked solutions: significant digits kept (`0.210`), ``×10ⁿ`` outside 10⁻⁵…10⁶, a Unicode
  minus on the terminal, or exactly N decimals under `--round N`;
- the derive documents: short when exact in `digits` digits (`−0.3`), else as the worked
  solutions, but `digits` decimals from 1 up (`1.740818`).

So the same value can still print as 1.74082 in the step table and 1.740818 in the derive table:
unifying the rules would change the golden files, which this layer must not do by itself.
"""

from __future__ import annotations

import math
from typing import Literal

from gradcalc.records import record

Rule = Literal["general", "sheet"]

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


@record
class Style:
    """How one view writes a number; `digits` is the significant digits."""

    digits: int = 6
    rule: Rule = "general"  # Python's general format, or the sheet's (see the module doc)
    decimals: int | None = None  # exactly this many decimals instead (--round N; sheet rule)
    trim: bool = False  # trailing zeros dropped: 0.2 as given, not 0.200000 (sheet rule)
    fixed_from_one: bool = False  # from 1 up to 10⁶, `digits` decimals: 1.740818
    exact_short: bool = False  # a value exact in `digits` digits written short (sheet rule)
    tex: bool = False  # TeX math (sheet rule): an ASCII minus, 10^{n}, \infty

    def __call__(self, value: float) -> str:
        return number(value, self)


def number(value: float, style: Style) -> str:
    """``value`` written by ``style``'s rule to ``style.digits`` significant digits."""
    if style.rule == "general":
        return _general(float(value), style)
    return _sheet(float(value), style)


def _general(v: float, style: Style) -> str:
    d = style.digits
    if v == 0:
        return "0"  # not −0
    if style.fixed_from_one and math.isfinite(v) and 1 <= abs(float(f"{v:.{d}g}")) < 1e6:
        return f"{v:.{d}f}".rstrip("0").rstrip(".")
    return f"{v:.{d}g}"


def _sheet(v: float, style: Style) -> str:
    tex, d = style.tex, style.digits
    if math.isnan(v):
        return r"\mathrm{nan}" if tex and style.exact_short else "nan"
    if math.isinf(v):
        return ("-" if v < 0 else "") + (r"\infty" if tex else "∞")
    v = v + 0.0  # turns −0.0 into 0.0
    if style.decimals is not None:
        text = f"{v:.{style.decimals}f}"
        if float(text) == 0:
            text = text.lstrip("-")
        return _minus(text, tex)
    if v == 0:
        return "0"
    trim = style.trim
    if style.exact_short:
        if float(f"{v:.{d}g}") == v:
            trim = True
        elif style.fixed_from_one and 1 <= abs(float(f"{v:.{d}g}")) < 1e6:
            # 0.9999999 too: it is written 1.000000.
            return _minus(f"{v:.{d}f}", tex)
    mantissa, exponent = f"{v:.{d - 1}e}".split("e")
    e = int(exponent)
    if -5 <= e < 6:
        text = f"{v:.{max(d - 1 - e, 0)}f}"
        if trim and "." in text:
            text = text.rstrip("0").rstrip(".")
        return _minus(text, tex)
    if trim and "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    if tex:
        return f"{mantissa} \\times 10^{{{e}}}"
    return f"{_minus(mantissa, tex)}×10{str(e).translate(_SUPERSCRIPT)}"


def _minus(text: str, tex: bool) -> str:
    return text if tex else text.replace("-", "−")
