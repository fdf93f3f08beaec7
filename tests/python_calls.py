"""A deterministic stand-in for a time budget: count the Python function calls a piece of code
makes, and stop it with CallBudgetExceeded the moment it passes its budget.

The team keeps speed goals in benchmarks/, never in timed tests (the machine is shared and
noisy). What a guard test proves is that hostile input is refused before the work is done: a
refusal up front makes a few hundred thousand calls, while doing the work (a million steps, a
100,000-layer network, an alias bomb's 10⁸ values) makes tens of millions. The count is the
same on a busy machine and a quiet one, and a guard that stops guarding fails at once rather
than after the work."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


class CallBudgetExceeded(Exception):
    """Raised inside the code under test when it makes more calls than its budget."""


@dataclass
class Calls:
    limit: int
    count: int = 0


@contextmanager
def python_calls(limit: int) -> Iterator[Calls]:
    """Count the Python-level calls in this thread (numpy's C loops make none); raise
    CallBudgetExceeded from the call that passes `limit`."""
    calls = Calls(limit)

    def count(frame: object, event: str, arg: object) -> None:
        if event == "call":
            calls.count += 1
            if calls.count > limit:
                sys.setprofile(None)
                raise CallBudgetExceeded(f"more than {limit:,} Python calls")

    previous = sys.getprofile()
    sys.setprofile(count)
    try:
        yield calls
    finally:
        sys.setprofile(previous)


def within(limit: int, run: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """run(*args, **kwargs) under a budget of `limit` Python calls; fails the test, naming the
    budget, when the code passed it (whatever it then did with the exception)."""
    with python_calls(limit) as calls:
        result = run(*args, **kwargs)
    assert calls.count <= limit, f"more than {limit:,} Python calls: the work was done"
    return result
