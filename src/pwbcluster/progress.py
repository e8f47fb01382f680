"""Progress for a wait longer than a few seconds: one line every few seconds with the time
so far and the last thing the tool said, then how long it took.

    with ticking("cluster: ParallelCluster validates and synthesises") as tick:
        run(on_output=tick.note)

Lines go to standard error, so a task's own output (tables, JSON) stays clean.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

EVERY_SECONDS = 10.0


class Ticker:
    def __init__(self, label: str, console: Console, every: float) -> None:
        self.label = label
        self.console = console
        self.every = every
        self.started = time.monotonic()
        self.last = ""
        self.ticks = 0
        self._stop = threading.Event()

    def note(self, line: str) -> None:
        """What the tool said last (shown with the next tick)."""
        line = line.strip()
        if line:
            self.last = line[:120]

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.ticks += 1
            said = f": {self.last}" if self.last else ""
            self.console.print(
                f"  {self.label}: still working ({self.elapsed():.0f} s){said}",
                highlight=False,
                markup=False,
            )


@contextmanager
def ticking(
    label: str, console: Console | None = None, every: float = EVERY_SECONDS
) -> Iterator[Ticker]:
    ticker = Ticker(label, console or Console(stderr=True), every)
    thread = threading.Thread(target=ticker._loop, name=f"progress {label}", daemon=True)
    thread.start()
    try:
        yield ticker
    finally:
        ticker._stop.set()
        thread.join()
        if ticker.ticks:
            ticker.console.print(
                f"  {ticker.label}: took {ticker.elapsed():.0f} s", highlight=False, markup=False
            )
