"""The warm pcluster worker answers as a fresh worker process does, and steps aside
when it cannot answer."""

from __future__ import annotations

import copy
import json
import logging
import re
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pwbcluster.config import Config
from pwbcluster.pcluster import offline, warm

from .conftest import render


def synthesise(
    config: dict[str, Any], out_dir: Path, clock: str | None = offline.PLAN_CLOCK
) -> offline.JobResult:
    job = offline.cluster_job(config, "warmcheck", out_dir=out_dir, clock=clock)
    (result,) = offline.run_jobs([job], "eu-west-1")
    return result


def served_requests(directory: Path) -> list[str]:
    return [
        line
        for log in directory.glob("*.log")
        for line in log.read_text().splitlines()
        if re.match(r"warm worker \d+: request \d+ in", line)
    ]


@pytest.fixture
def worker_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    directory = tmp_path / "workers"
    monkeypatch.setenv(warm.ENV_DIR, str(directory))
    yield directory
    if directory.is_dir():
        warm.stop_all(directory)


def test_a_warm_worker_writes_what_a_fresh_one_writes(
    pcluster_site: Path,
    example: Config,
    tmp_path: Path,
    worker_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = render(example)
    second = copy.deepcopy(first)
    queue = second["Scheduling"]["SlurmQueues"][0]
    queue.setdefault("ComputeSettings", {})["LocalStorage"] = {"RootVolume": {"Size": 77}}

    # The warm worker serves one config, then another: the second must not carry anything
    # of the first (moto's resources, pcluster's caches).
    warm_first = synthesise(first, tmp_path / "warm1")
    warm_second = synthesise(second, tmp_path / "warm2")
    assert len(served_requests(worker_dir)) == 2, "one warm worker served both requests"
    assert len(list(worker_dir.glob("*.sock"))) == 1

    monkeypatch.setenv(warm.ENV_SWITCH, "0")
    fresh_second = synthesise(second, tmp_path / "fresh2")
    assert len(served_requests(worker_dir)) == 2, "the switch is off: no request went warm"

    names = sorted(p.name for p in (tmp_path / "fresh2").glob("*.json"))
    assert names and names == sorted(p.name for p in (tmp_path / "warm2").glob("*.json"))
    for name in names:  # byte for byte: pcluster's clock is pinned (offline.PLAN_CLOCK)
        assert (tmp_path / "warm2" / name).read_bytes() == (
            tmp_path / "fresh2" / name
        ).read_bytes(), name
    assert warm_second.failures == fresh_second.failures
    assert warm_second.placeholders == fresh_second.placeholders
    # The edit shows in the templates: the second request did not answer from the first.
    assert volume_sizes(tmp_path / "warm1") != volume_sizes(tmp_path / "warm2")
    assert 77 in volume_sizes(tmp_path / "warm2")
    assert warm_first.files and warm_second.files


def stamps(out_dir: Path) -> tuple[set[str], set[str]]:
    """The log group suffixes and wait condition stamps in a synthesised cluster's templates."""
    text = "".join(p.read_text() for p in out_dir.glob("*.json"))
    groups = set(re.findall(r"/aws/parallelcluster/warmcheck-(\d{12})\b", text))
    waits = set(re.findall(r"HeadNodeWaitCondition(?:Handle)?(\d{14})", text))
    return groups, waits


def test_the_plan_pins_pclusters_clock_and_only_the_plan(
    pcluster_site: Path, example: Config, tmp_path: Path, worker_dir: Path
) -> None:
    config = render(example)
    before = datetime.now(UTC)
    synthesise(config, tmp_path / "real", clock=None)
    after = datetime.now(UTC)
    synthesise(config, tmp_path / "pinned")
    synthesise(config, tmp_path / "pinned-again")

    # Unpinned, the stamps are the time of the synthesis, as create-cluster's are.
    groups, waits = stamps(tmp_path / "real")
    assert len(groups) == 1 and len(waits) == 1, (groups, waits)
    wait = datetime.strptime(waits.pop(), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    assert before.replace(microsecond=0) <= wait <= after
    assert groups.pop() == wait.strftime("%Y%m%d%H%M")
    # Pinned: the plan's instant, same width, and the same bytes every time.
    assert stamps(tmp_path / "pinned") == ({"200001010000"}, {"20000101000000"})
    names = sorted(p.name for p in (tmp_path / "pinned").glob("*.json"))
    assert len(names) == 3
    for name in names:
        pinned = (tmp_path / "pinned" / name).read_bytes()
        assert pinned == (tmp_path / "pinned-again" / name).read_bytes(), name
    assert (tmp_path / "real" / names[0]).read_bytes() != (
        tmp_path / "pinned" / names[0]
    ).read_bytes()


def volume_sizes(out_dir: Path) -> set[int]:
    found = re.findall(
        r'"VolumeSize": (\d+)', (out_dir / "warmcheck-ComputeFleetQueues.json").read_text()
    )
    return {int(n) for n in found}


def test_an_unsafe_worker_directory_means_a_fresh_worker(
    pcluster_site: Path,
    example: Config,
    tmp_path: Path,
    worker_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker_dir.mkdir(mode=0o755)
    worker_dir.chmod(0o755)  # another user could plant a socket here
    with caplog.at_level(logging.WARNING, logger="pwbcluster.pcluster.offline"):
        result = synthesise(render(example), tmp_path / "out")
    assert result.files and not result.errors
    assert any("warm worker could not answer" in r.getMessage() for r in caplog.records)
    assert not list(worker_dir.iterdir()), "nothing was started in the unsafe directory"


def test_a_dead_workers_socket_is_replaced(
    pcluster_site: Path, example: Config, tmp_path: Path, worker_dir: Path
) -> None:
    config = render(example)
    synthesise(config, tmp_path / "one")
    (sock,) = worker_dir.glob("*.sock")
    assert warm.stop_all(worker_dir)
    # A worker killed without cleaning up leaves its socket file behind: bind one.
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.unlink(missing_ok=True)
    left.bind(str(sock))
    left.close()
    result = synthesise(config, tmp_path / "two")
    assert result.files
    assert len(served_requests(worker_dir)) == 1, "a new worker (new log) served it"


def test_the_key_follows_code_patches_and_environment(tmp_path: Path) -> None:
    code = tmp_path / "worker.py"
    code.write_text("one")
    patched = tmp_path / "patched.py"
    patched.write_text("x")
    python = Path("/venv/bin/python")
    base = warm.worker_key(python, [code], [patched], {"AWS_REGION": "eu-west-1", "TERM": "x"})
    assert base == warm.worker_key(python, [code], [patched], {"AWS_REGION": "eu-west-1"})
    assert base != warm.worker_key(python, [code], [patched], {"AWS_REGION": "us-east-1"})
    code.write_text("two")
    changed_code = warm.worker_key(python, [code], [patched], {"AWS_REGION": "eu-west-1"})
    assert changed_code != base
    patched.write_text("xy")
    assert changed_code != warm.worker_key(python, [code], [patched], {"AWS_REGION": "eu-west-1"})
    assert json.dumps(base).isascii() and len(base) == 24
