"""The wait for the jump host's first boot: polls through SSM, bounded, explains a timeout."""

from __future__ import annotations

from typing import Any

import pytest

from pwbcluster.errors import StageError
from pwbcluster.stages.services.readiness import DONE_MARKER, wait_for_jump_host


class FakeSsm:
    """Answers send_command/get_command_invocation from a script of outcomes."""

    class exceptions:
        class InvalidInstanceId(Exception):
            pass

        class InvocationDoesNotExist(Exception):
            pass

    def __init__(self, outcomes: list[str]) -> None:
        self.outcomes = outcomes
        self.commands: list[dict[str, Any]] = []

    def send_command(self, **kwargs: Any) -> dict[str, Any]:
        self.commands.append(kwargs)
        outcome = self.outcomes.pop(0) if self.outcomes else "Failed"
        if outcome == "unregistered":
            raise self.exceptions.InvalidInstanceId()
        self.current = outcome
        return {"Command": {"CommandId": f"c{len(self.commands)}"}}

    def get_command_invocation(self, **kwargs: Any) -> dict[str, Any]:
        return {"Status": self.current}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def test_waits_until_the_marker_exists() -> None:
    ssm, clock = FakeSsm(["unregistered", "Failed", "Success"]), Clock()
    checks = wait_for_jump_host(ssm, "i-0abc", sleep=clock.sleep, clock=clock)
    assert checks == 3
    assert ssm.commands[-1]["InstanceIds"] == ["i-0abc"]
    assert ssm.commands[-1]["Parameters"]["commands"] == [f"test -f {DONE_MARKER}"]


def test_gives_up_with_a_hint() -> None:
    ssm, clock = FakeSsm([]), Clock()
    with pytest.raises(StageError, match="aws ssm start-session --target i-0abc"):
        wait_for_jump_host(ssm, "i-0abc", timeout=120, sleep=clock.sleep, clock=clock)
    assert len(ssm.commands) == 6  # one check every 25 s (5 s answer + 20 s pause) for 120 s
