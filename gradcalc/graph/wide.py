"""Numbers with float64's 53-bit precision and an unbounded exponent, for the reverse sweep.

A chain of local partials can leave float64's range in the middle and come back at the end
(σ'(−400): ∂f/∂w ≈ −4e−348 underflows, then ∂v/∂u ≈ 5e173 would bring it back to 2e−174).
Multiplying in float64 silently drops such a path; carrying the exponent apart keeps it.
"""

from __future__ import annotations

import math

from gradcalc.records import record


@record
class Wide:
    """``m · 2**e`` with ``0.5 ≤ |m| < 1`` (or m 0, inf or nan, and e 0)."""

    m: float
    e: int = 0

    @staticmethod
    def of(x: float | Wide) -> Wide:
        if isinstance(x, Wide):
            return x
        m, e = math.frexp(float(x))
        return Wide(m, e)

    def _norm(self, m: float, e: int) -> Wide:
        if m == 0 or not math.isfinite(m):
            return Wide(m, 0)
        m2, e2 = math.frexp(m)
        return Wide(m2, e + e2)

    def __mul__(self, other: Wide | float) -> Wide:
        o = Wide.of(other)
        return self._norm(self.m * o.m, self.e + o.e)

    __rmul__ = __mul__

    def __truediv__(self, other: Wide | float) -> Wide:
        o = Wide.of(other)
        if o.m == 0 or not (math.isfinite(o.m) and math.isfinite(self.m)):
            return Wide.of(_ieee_div(float(self), float(o)))
        return self._norm(self.m / o.m, self.e - o.e)

    def __rtruediv__(self, other: float) -> Wide:
        return Wide.of(other) / self

    def __neg__(self) -> Wide:
        return Wide(-self.m, self.e)

    def __add__(self, other: Wide | float) -> Wide:
        a, b = self, Wide.of(other)
        if b.m == 0:
            return a if a.m != 0 else Wide(a.m + b.m)
        if a.m == 0:
            return b
        if not (math.isfinite(a.m) and math.isfinite(b.m)):
            return Wide(a.m + b.m)
        if b.e > a.e:
            a, b = b, a
        gap = a.e - b.e
        if gap > 60:  # b is below a's last bit
            return a
        return self._norm(a.m + math.ldexp(b.m, -gap), a.e)

    __radd__ = __add__

    def __float__(self) -> float:
        try:
            return math.ldexp(self.m, self.e)
        except OverflowError:
            return math.copysign(math.inf, self.m)

    def __bool__(self) -> bool:
        return self.m != 0

    def leaves_float64(self) -> bool:
        """True when this finite, non-zero number is 0 or infinite as a float64."""
        if self.m == 0 or not math.isfinite(self.m):
            return False
        value = float(self)
        return value == 0 or math.isinf(value)


def _ieee_div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


ONE = Wide(0.5, 1)
ZERO = Wide(0.0)
