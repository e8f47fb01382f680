"""pulumi/__main__.py (the program for the plain CLI) builds the same stacks."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from pwbcluster.sandbox.fakes import OfflineMocks
from pwbcluster.sandbox.mockrun import run_with_mocks

MAIN = Path(__file__).resolve().parents[2] / "pulumi" / "__main__.py"


def test_network_stack_from_the_cli_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PWBCLUSTER_CONFIG", "config/example.yaml")

    def program() -> dict[str, object]:
        runpy.run_path(str(MAIN))
        return {}

    run = run_with_mocks(program, OfflineMocks(), "pwbcluster-aux", "example-network")
    types = {r.type for r in run.registered.values()}
    assert {"aws:ec2/vpc:Vpc", "aws:s3/bucket:Bucket", "aws:iam/policy:Policy"} <= types


def test_unknown_stack_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PWBCLUSTER_CONFIG", "config/example.yaml")
    with pytest.raises(SystemExit, match="expected example-network"):
        run_with_mocks(lambda: runpy.run_path(str(MAIN)) and {}, OfflineMocks(), "p", "prod")
