"""Which steps a view writes out in full (--every, --last, --explain-steps), decided before the
run so a streamed run keeps only those."""

from __future__ import annotations

import numpy as np

from gradcalc.records import record


@record
class Selection:
    every: int | None = None
    last: int | None = None
    steps: tuple[int, ...] = ()  # --explain-steps, 1-based

    @property
    def given(self) -> bool:
        return self.every is not None or self.last is not None or bool(self.steps)

    def mask(self, n: int, head: int | None) -> np.ndarray:
        """shown[s] for s = 0..n+1 (0 and n+1 are never shown): the union of the selectors, or,
        when none is given, the first `head` steps and the last (None: every step). A single
        step between two shown ones is shown too: skipping it would save nothing."""
        s = np.arange(n + 2)
        inside = (s >= 1) & (s <= n)
        if self.given:
            shown = np.zeros(n + 2, dtype=bool)
            if self.every is not None:
                shown |= (s - 1) % self.every == 0
                shown[n] = True
            if self.last is not None:
                shown |= s > n - self.last
            if self.steps:
                shown[[k for k in self.steps if k <= n]] = True
        elif head is None:
            shown = np.ones(n + 2, dtype=bool)
        else:
            shown = (s <= head) | (s == n)
        shown &= inside
        single_gap = np.zeros(n + 2, dtype=bool)
        single_gap[1:-1] = ~shown[1:-1] & shown[:-2] & shown[2:]
        return (shown | single_gap) & inside


def parse_steps(text: str) -> tuple[int, ...]:
    """'1,4' or '2-5,9' -> (1, 4) or (2, 3, 4, 5, 9); ValueError with the reason."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if dash else a
        except ValueError:
            raise ValueError(f"'{part}' is not a step number or a range like 2-5") from None
        if a < 1 or b < a:
            raise ValueError(f"'{part}': steps count from 1, ranges go up (2-5)")
        if b - a > 1_000_000:
            raise ValueError(f"'{part}' is a range of more than 1,000,000 steps")
        out.extend(range(a, b + 1))
    if not out:
        raise ValueError("give step numbers, e.g. 1,4 or 2-5")
    return tuple(sorted(set(out)))


def gaps(shown: list[int], n: int) -> list[tuple[int, int, int]]:
    """(index in `shown` before which the gap goes, first hidden step, last hidden step) for
    each run of steps not shown; index len(shown) is a gap after the last shown step."""
    out = []
    previous = 0
    for i, s in enumerate(shown):
        if s > previous + 1:
            out.append((i, previous + 1, s - 1))
        previous = s
    if n > previous:
        out.append((len(shown), previous + 1, n))
    return out


def hidden(lo: int, hi: int) -> str:
    return f"Step {lo}" if lo == hi else f"Steps {lo} to {hi}"
