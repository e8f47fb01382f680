"""One run at a time per deployment: an exclusive lock on ``build/<deployment>/.lock``.

``invoke up`` and ``invoke down`` (and the stage tasks built on them) take the lock before
they start anything: no moto server, no Pulumi stack, no state write happens without it.
A second run on the same deployment is refused at once with who holds the lock (pid,
command, since) instead of racing the first one over the state file and the stacks.

The lock is ``fcntl.flock`` on an open file: the kernel releases it when the holder's
process ends, however it ends, so a lock file left by a dead (killed, crashed) run
blocks nobody; the holder's details in the file are only a description.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from pwbcluster.errors import ToolkitError

LOCK_NAME = ".lock"


class DeploymentLocked(ToolkitError):
    """Another run holds the deployment's lock."""


def lock_path(build_dir: Path) -> Path:
    return build_dir / LOCK_NAME


def _holder(handle: int) -> str:
    os.lseek(handle, 0, os.SEEK_SET)
    raw = os.read(handle, 4096)
    try:
        info = json.loads(raw)
        since = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(float(info["since"])))
        return f"pid {info['pid']} ({info['command']}), since {since}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not written its details yet"


def _command() -> str:
    argv = list(sys.orig_argv) or ["python"]
    return " ".join([Path(argv[0]).name, *argv[1:]])[:300]


@contextlib.contextmanager
def deployment_lock(build_dir: Path, action: str) -> Iterator[Path]:
    """Hold the deployment's lock for ``action`` ("up", "down"); refuse if another run does."""
    build_dir.mkdir(parents=True, exist_ok=True)
    path = lock_path(build_dir)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DeploymentLocked(
                f"deployment '{build_dir.name}' is busy: {_holder(handle)} holds {path}. "
                f"Not starting `{action}`; wait for that run to finish, or stop it "
                "(a lock of a process that ended is released on its own)."
            ) from None
        record = {"pid": os.getpid(), "command": _command(), "action": action, "since": time.time()}
        os.ftruncate(handle, 0)
        os.lseek(handle, 0, os.SEEK_SET)
        os.write(handle, json.dumps(record).encode())
        try:
            yield path
        finally:
            os.ftruncate(handle, 0)
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


def held_by(build_dir: Path) -> str | None:
    """Who holds the deployment's lock now ("pid N (command), since ..."), or None."""
    path = lock_path(build_dir)
    if not path.exists():
        return None
    handle = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(handle)
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None
    finally:
        os.close(handle)
