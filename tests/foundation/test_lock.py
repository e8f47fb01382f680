"""One run at a time per deployment: a second up/down is refused, a dead holder blocks nobody."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from pwbcluster.pipeline import orchestrate
from pwbcluster.pipeline.lock import DeploymentLocked, deployment_lock, lock_path
from pwbcluster.sandbox import server as sandbox

SRC = Path(__file__).resolve().parents[2] / "src"
HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from pwbcluster.pipeline.lock import deployment_lock
    with deployment_lock(Path(sys.argv[1]), "up"):
        print("held", flush=True)
        time.sleep(120)
    """
)


def _holder(build: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(build)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    build = tmp_path / "build" / "demo"
    proc = _holder(build)
    try:
        yield build, proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_second_process_is_refused_with_the_holder(
    held: tuple[Path, subprocess.Popen[str]],
) -> None:
    build, proc = held
    with pytest.raises(DeploymentLocked) as refused, deployment_lock(build, "down"):
        pytest.fail("acquired a lock another process holds")
    message = str(refused.value)
    assert f"pid {proc.pid}" in message and "python" in message and "since" in message
    assert "Not starting `down`" in message and str(lock_path(build)) in message


def test_a_dead_holder_does_not_block(held: tuple[Path, subprocess.Popen[str]]) -> None:
    build, proc = held
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert lock_path(build).read_text(), "the dead holder's details stay in the file"
    with deployment_lock(build, "up") as path:
        assert f'"pid": {os.getpid()}' in path.read_text()


def test_the_lock_is_released_after_a_run(tmp_path: Path) -> None:
    with deployment_lock(tmp_path, "up"):
        pass
    other = _holder(tmp_path)  # another process gets it at once
    other.kill()
    other.wait(timeout=10)


def test_up_and_down_refuse_before_starting_anything(project: Path) -> None:
    from pwbcluster.config import load_config

    cfg = load_config(project / "config" / "example.yaml")
    assert cfg.build_dir.is_relative_to(project)
    holder = _holder(cfg.build_dir)
    try:
        started = time.time()
        for action in (orchestrate.up, orchestrate.down):
            with pytest.raises(DeploymentLocked, match=f"pid {holder.pid}"):
                action(cfg, "sandbox", Console(quiet=True))
        assert time.time() - started < 10
        assert sandbox.running(cfg.build_dir) is None, "a refused run started a moto server"
        assert not sandbox.record_path(cfg.build_dir).exists()
        assert not orchestrate.state_path(cfg).exists()
        assert not (cfg.build_dir / "logs").exists(), "a refused run wrote a run log"
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_plan_refuses_to_run_beside_an_up(project: Path) -> None:
    from invoke import Context, Exit

    from pwbcluster.config import load_config
    from pwbcluster.tasks import top

    config = project / "config" / "example.yaml"
    cfg = load_config(config)
    holder = _holder(cfg.build_dir)
    try:
        with pytest.raises(Exit) as refused:
            top.plan(Context(), config=str(config))
        assert refused.value.code == 1 and f"pid {holder.pid}" in str(refused.value.message)
        assert not (cfg.build_dir / "cluster-config.yaml").exists()
    finally:
        holder.kill()
        holder.wait(timeout=10)
