"""A progress bar on standard error for runs long enough to wonder about (rich, transient).

Shown only when standard error is a terminal (never in pipes or CI logs), not with --quiet,
and not while the output itself streams onto the same terminal. It appears once a run has
gone on for PROGRESS_AFTER seconds and is not about to end, and is cleared when the run ends.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

PROGRESS_AFTER = 1.0  # seconds


def wanted(quiet: bool, streams_to_stdout: bool) -> bool:
    if quiet or not sys.stderr.isatty():
        return False
    return not (streams_to_stdout and sys.stdout.isatty())


def track(items: Iterable[T], total: int, enabled: bool, what: str = "step") -> Iterator[T]:
    """Yield the items; draw a bar once the run has lasted PROGRESS_AFTER seconds."""
    if not enabled or total < 2:
        yield from items
        return
    after = float(os.environ.get("GRADCALC_PROGRESS_AFTER", PROGRESS_AFTER))
    start = time.monotonic()
    bar: Any = None
    task: Any = None
    last = 0.0
    try:
        for done, item in enumerate(items, 1):
            yield item
            now = time.monotonic()
            if now - last < 0.1:
                continue
            last = now
            if bar is None:
                elapsed = now - start
                if elapsed < after or (elapsed / done) * (total - done) < 0.2:
                    continue
                bar = _start(total, what)
                task = bar.add_task(what, total=total)
            bar.update(task, completed=done)
    finally:
        if bar is not None:
            bar.stop()


def _start(total: int, what: str) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn(f"{what}s"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    )
    bar.start()
    return bar
