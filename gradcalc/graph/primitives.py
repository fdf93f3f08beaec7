"""The one registry of scalar primitives: forward rule, local partials and display text (Unicode
and TeX)."""

from __future__ import annotations

import math
from collections.abc import Callable

from gradcalc.records import record

from .tex import exponent_tex, tidy
from .wide import Wide

Floats = tuple[float, ...]
Names = tuple[str, ...]


@record
class Primitive:
    """One differentiable scalar operation.

    ``value(*args, **params)`` is the forward rule on floats; ``partials(args, out, **params)``
    gives the local partial derivative with respect to each argument (a float, or a Wide where
    the partial can leave float64's range while the node's value does not); ``partial_text(names,
    **params)`` gives the same symbolically and ``template(names, **params)`` the node's
    definition, both in terms of the argument names; ``partial_tex`` and ``template_tex`` write
    the same in TeX, given the names in TeX. ``params`` lists the node ``extra`` keys
    these callables receive (only those present are passed). ``arity`` None means n-ary.
    ``kink(args)`` is True at a point where the primitive is not differentiable.
    """

    key: str
    arity: int | None
    value: Callable[..., float]
    partials: Callable[..., tuple[float | Wide, ...]]
    partial_text: Callable[..., Names]
    template: Callable[..., str]
    partial_tex: Callable[..., Names]
    template_tex: Callable[..., str]
    kink: Callable[[Floats], bool] | None = None
    params: tuple[str, ...] = ()


def format_number(value: float) -> str:
    """Shortest text that reads back as ``value`` ("1", "-0.3", "1e-07", "inf")."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _text(fmt: str) -> Callable[..., str]:
    return lambda names, **params: fmt.format(*names, **params)


def _texts(*fmts: str) -> Callable[..., Names]:
    return lambda names, **params: tuple(fmt.format(*names, **params) for fmt in fmts)


# The callers check math.isfinite, so singular points give IEEE inf/nan instead of raising.
def _div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _exp(a: float) -> float:
    try:
        return math.exp(a)
    except OverflowError:
        return math.inf


def _log(a: float) -> float:
    if a > 0:
        return math.log(a)
    return -math.inf if a == 0 else math.nan


def _is_odd_integer(b: float) -> bool:
    return b.is_integer() and b % 2 == 1


def _pow(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except OverflowError:
        return -math.inf if a < 0 and _is_odd_integer(b) else math.inf
    except ValueError:
        if a == 0:
            return math.copysign(math.inf, a) if _is_odd_integer(b) else math.inf
        return math.nan


def _div_partials(args: Floats, out: float) -> tuple[Wide, Wide]:
    # −a/b² with b² formed in float64 overflows (b = 1e173) and drops the path through b.
    # −(a/b)/b never forms b², and where a/b rounds to 1 (tanh at 400) the two paths through
    # b cancel exactly, as they should; Wide keeps a partial below 1e-308 (σ at −400).
    a, b = (Wide.of(v) for v in args)
    return 1.0 / b, -(a / b) / b


def _pow_partials(args: Floats, out: float, exponent: float | None = None) -> tuple[Wide, float]:
    a, b = args
    d_base = Wide.of(0.0 if b == 0 else b * _pow(a, b - 1.0))
    if a != 0 and math.isfinite(out) and out != 0 and (d_base.m == 0 or math.isinf(d_base.m)):
        d_base = Wide.of(b) * Wide.of(out) / Wide.of(a)  # b·a^(b−1) = b·aᵇ/a, past float64
    # A constant exponent never needs ∂/∂b, and ln a would be nan for a negative base.
    if exponent is not None or out == 0:
        return d_base, 0.0
    return d_base, out * _log(a)


def _pow_partial_text(names: Names, exponent: float | None = None) -> Names:
    a, b = names
    if exponent is None:
        return f"{b}·{a}^({b} − 1)", f"{a}^{b}·ln {a}"
    lower = exponent - 1.0
    if exponent == 0:
        d_base = "0"
    elif lower == 0:
        d_base = "1"
    elif lower == 1:
        d_base = f"{format_number(exponent)}·{a}"
    else:
        power = format_number(lower)
        d_base = f"{format_number(exponent)}·{a}^{f'({power})' if lower < 0 else power}"
    return d_base, "0"


def _pow_partial_tex(names: Names, exponent: float | None = None) -> Names:
    a, b = names
    if exponent is None:
        return rf"{b}\cdot {a}^{{{tidy(b + ' - 1')}}}", rf"{a}^{exponent_tex(b)}\cdot \ln {a}"
    lower = exponent - 1.0
    if exponent == 0:
        d_base = "0"
    elif lower == 0:
        d_base = "1"
    elif lower == 1:
        d_base = rf"{format_number(exponent)}\cdot {a}"
    else:
        d_base = rf"{format_number(exponent)}\cdot {a}^{{{format_number(lower)}}}"
    return d_base, "0"


def _max0(a: float) -> float:
    return 0.0 if a <= 0 else a  # nan falls through and propagates


def _sign(a: float) -> float:
    return float((a > 0) - (a < 0))


def _at_zero(args: Floats) -> bool:
    return args[0] == 0


def _select(a: float, b: float, *, cond: bool, **_: object) -> float:
    return a if cond else b


def _select_partials(args: Floats, out: float, *, cond: bool, **_: object) -> Floats:
    return (1.0, 0.0) if cond else (0.0, 1.0)


PRIMITIVES: dict[str, Primitive] = {
    p.key: p
    for p in (
        Primitive(
            key="neg",
            arity=1,
            value=lambda a: -a,
            partials=lambda args, out: (-1.0,),
            partial_text=_texts("−1"),
            template=_text("−{0}"),
            partial_tex=_texts("-1"),
            template_tex=_text("-{0}"),
        ),
        Primitive(
            key="add",
            arity=2,
            value=lambda a, b: a + b,
            partials=lambda args, out: (1.0, 1.0),
            partial_text=_texts("1", "1"),
            template=_text("{0} + {1}"),
            partial_tex=_texts("1", "1"),
            template_tex=_text("{0} + {1}"),
        ),
        Primitive(
            key="sub",
            arity=2,
            value=lambda a, b: a - b,
            partials=lambda args, out: (1.0, -1.0),
            partial_text=_texts("1", "−1"),
            template=_text("{0} − {1}"),
            partial_tex=_texts("1", "-1"),
            template_tex=_text("{0} - {1}"),
        ),
        Primitive(
            key="mul",
            arity=2,
            value=lambda a, b: a * b,
            partials=lambda args, out: (args[1], args[0]),
            partial_text=_texts("{1}", "{0}"),
            template=_text("{0}·{1}"),
            partial_tex=_texts("{1}", "{0}"),
            template_tex=_text(r"{0}\cdot {1}"),
        ),
        Primitive(
            key="div",
            arity=2,
            value=_div,
            partials=_div_partials,
            partial_text=_texts("1/{1}", "−{0}/{1}²"),
            template=_text("{0}/{1}"),
            partial_tex=_texts("1/{1}", "-{0}/{1}^{{2}}"),
            template_tex=_text("{0}/{1}"),
        ),
        Primitive(
            key="pow",
            arity=2,
            value=lambda a, b, **_: _pow(a, b),
            partials=_pow_partials,
            partial_text=_pow_partial_text,
            template=_text("{0}^{1}"),
            partial_tex=_pow_partial_tex,
            template_tex=lambda names, **_: f"{names[0]}^{exponent_tex(names[1])}",
            params=("exponent",),
        ),
        Primitive(
            key="exp",
            arity=1,
            value=_exp,
            partials=lambda args, out: (out,),
            partial_text=_texts("e^{0}"),
            template=_text("e^{0}"),
            partial_tex=lambda names: (f"e^{exponent_tex(names[0])}",),
            template_tex=lambda names: f"e^{exponent_tex(names[0])}",
        ),
        Primitive(
            key="log",
            arity=1,
            value=_log,
            partials=lambda args, out: (1.0 / Wide.of(args[0]),),
            partial_text=_texts("1/{0}"),
            template=_text("ln {0}"),
            partial_tex=_texts("1/{0}"),
            template_tex=_text(r"\ln {0}"),
        ),
        Primitive(
            key="abs",
            arity=1,
            value=lambda a: abs(a),
            partials=lambda args, out: (_sign(args[0]),),
            partial_text=_texts("sgn({0})"),
            template=_text("|{0}|"),
            partial_tex=_texts(r"\operatorname{{sgn}} ({0})"),
            template_tex=_text(r"\vert {0}\vert "),
            kink=_at_zero,
        ),
        Primitive(
            key="max0",
            arity=1,
            value=_max0,
            partials=lambda args, out: (1.0 if args[0] > 0 else 0.0,),
            partial_text=_texts("[{0} > 0]"),
            template=_text("max(0, {0})"),
            partial_tex=_texts("[{0} > 0]"),
            template_tex=_text(r"\max (0, {0})"),
            kink=_at_zero,
        ),
        Primitive(
            key="select",
            arity=2,
            value=_select,
            partials=_select_partials,
            partial_text=_texts("[{cond_text}]", "[¬({cond_text})]"),
            template=_text("({cond_text}) ? {0} : {1}"),
            partial_tex=_texts("[{cond_tex}]", r"[\neg ({cond_tex})]"),
            template_tex=_text(r"({cond_tex}) \mathrel{{?}} {0} : {1}"),
            params=("cond", "cond_text", "cond_tex"),
        ),
        Primitive(
            key="sum",
            arity=None,
            value=lambda *args: sum(args, 0.0),
            partials=lambda args, out: (1.0,) * len(args),
            partial_text=lambda names: ("1",) * len(names),
            template=lambda names: " + ".join(names),
            partial_tex=lambda names: ("1",) * len(names),
            template_tex=lambda names: " + ".join(names),
        ),
    )
}
