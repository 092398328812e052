"""A progress bar that appears only when the work turns out to take more than a moment."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer


@contextmanager
def progress_after(length: int, label: str, *, hidden: bool, delay: float = 1.0,
                   clock: Callable[[], float] = time.monotonic) -> Iterator[Callable[[int], None]]:
    """Yield ``report(done)``: after ``delay`` seconds a bar on stderr shows ``done`` out of ``length``.

    Quick work prints nothing; ``hidden`` (``--json``) never shows the bar.
    """
    start = clock()
    bar: Any = None
    shown = 0

    def report(done: int) -> None:
        nonlocal bar, shown
        if hidden:
            return
        if bar is None:
            if clock() - start < delay:
                return
            bar = typer.progressbar(length=length, label=label, file=sys.stderr).__enter__()
        bar.update(done - shown)
        shown = done

    try:
        yield report
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
