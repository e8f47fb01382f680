"""Progress for long waits: a line every few seconds with the time so far and the tool's
last words, then how long it took; nothing at all for a wait shorter than one tick."""

from __future__ import annotations

import io
import time

from rich.console import Console

from pwbcluster.progress import ticking


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200), out


def test_a_long_wait_says_it_is_still_working_and_what_the_tool_said_last() -> None:
    console, out = _console()
    with ticking("services: pulumi up", console, every=0.01) as tick:
        tick.note("+ aws:rds:Instance workbench-db creating (30s)\n")
        deadline = time.monotonic() + 30
        while tick.ticks < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    text = out.getvalue()
    assert tick.ticks >= 2
    assert "services: pulumi up: still working (" in text
    assert "workbench-db creating" in text.splitlines()[-2]
    assert "services: pulumi up: took" in text.splitlines()[-1]


def test_a_short_wait_prints_nothing() -> None:
    console, out = _console()
    with ticking("quick", console, every=60):
        pass
    assert out.getvalue() == ""
