"""The warm pcluster worker, from the toolkit's side: find it, start it, hand it a request.

A fresh worker process spends about 10 s before its first template (pcluster's and
CDK's imports, jsii's node kernel, moto's EC2 data); a re-plan after a queue edit spent
most of its time there. The warm worker (in-venv/worker_serve.py) pays that once and then
serves the same requests as the one-shot worker, each from a clean slate (moto reset,
pcluster's caches and clients dropped). ``offline.run_jobs`` uses it when it can and
falls back to a fresh process, with a warning, when it cannot.

One worker per key: the venv's interpreter, the worker's code, the patched files as they
are on disk, and the environment the worker would see (so a change to any of them starts
a new worker; the old one exits when idle). Sockets live in a directory of this user's
only (mode 0700, checked), ``$PWBCLUSTER_WORKER_DIR`` or under ``$XDG_RUNTIME_DIR`` or
/tmp. ``PWBCLUSTER_WARM_WORKER=0`` turns the warm worker off;
``PWBCLUSTER_WORKER_IDLE_SECONDS`` (default 900) is how long an unused one stays.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import stat
import struct
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pwbcluster.errors import PclusterError, ToolkitError

log = logging.getLogger(__name__)

ENV_SWITCH = "PWBCLUSTER_WARM_WORKER"
ENV_DIR = "PWBCLUSTER_WORKER_DIR"
ENV_IDLE = "PWBCLUSTER_WORKER_IDLE_SECONDS"
DEFAULT_IDLE_SECONDS = 900
MAX_REQUESTS = 200
START_SECONDS = 30.0
# The environment a worker's results can depend on; anything else is not read by it.
ENV_PREFIXES = ("AWS_", "PCLUSTER_", "MOTO_", "JSII_", "CDK_", "NODE_", "PYTHON", "BOTO_")
ENV_NAMES = ("PATH", "HOME", "TMPDIR", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY")


class Unavailable(ToolkitError):
    """The warm worker could not serve this request; a fresh worker process can."""


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "no", "false", "off")


def idle_seconds(environ: Mapping[str, str] = os.environ) -> int:
    raw = environ.get(ENV_IDLE, "")
    try:
        value = int(raw) if raw else DEFAULT_IDLE_SECONDS
    except ValueError:
        raise PclusterError(f"{ENV_IDLE}={raw!r}: give a whole number of seconds") from None
    return max(value, 1)


def socket_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """This user's directory for the workers' sockets and logs, made 0700 if absent;
    Unavailable if it exists but another user could reach into it."""
    uid = os.getuid()
    if environ.get(ENV_DIR):
        path = Path(environ[ENV_DIR])
    elif environ.get("XDG_RUNTIME_DIR"):
        path = Path(environ["XDG_RUNTIME_DIR"]) / "pwbcluster-workers"
    else:
        path = Path("/tmp") / f"pwbcluster-workers-{uid}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
        raise Unavailable(f"{path} is not a directory of this user's alone (mode 0700)")
    return path


def worker_key(
    python: Path, worker_files: Sequence[Path], patched: Sequence[Path], env: Mapping[str, str]
) -> str:
    """What a warm worker's answers depend on besides the request itself."""
    digest = hashlib.sha256()
    digest.update(str(python).encode())
    for path in sorted(worker_files):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for path in sorted(patched):
        with contextlib.suppress(OSError):
            info = path.stat()
            digest.update(f"{path}\0{info.st_mtime_ns}\0{info.st_size}".encode())
    for name in sorted(env):
        if name.startswith(ENV_PREFIXES) or name in ENV_NAMES:
            digest.update(f"{name}={env[name]}\0".encode())
    return digest.hexdigest()[:24]


def _connect(path: Path) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        conn.close()
        return None
    except OSError as exc:
        conn.close()
        raise Unavailable(f"cannot reach the warm worker at {path}: {exc}") from exc
    return conn


def _peer_pid(conn: socket.socket) -> int:
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", raw)[0])


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _start(sock: Path, argv: Sequence[str], env: Mapping[str, str]) -> socket.socket:
    """Start a worker for ``sock`` (under a lock, so two plans start one) and connect."""
    with _locked(sock.with_suffix(".lock")):
        conn = _connect(sock)
        if conn is not None:
            return conn
        sock.unlink(missing_ok=True)  # a worker that died without removing it
        logfile = sock.with_suffix(".log")
        with logfile.open("wb") as out:
            proc = subprocess.Popen(
                [*argv, "--serve", str(sock), str(idle_seconds(env)), str(MAX_REQUESTS)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=sock.parent,
                env=dict(env),
                start_new_session=True,  # outlives this plan; holds none of its pipes
            )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            conn = _connect(sock)
            if conn is not None:
                return conn
            if proc.poll() is not None:
                tail = logfile.read_text(errors="replace")[-800:]
                raise Unavailable(f"the warm worker exited at start ({proc.returncode}): {tail}")
            time.sleep(0.05)
        proc.kill()
        raise Unavailable(f"the warm worker did not open {sock} in {START_SECONDS:.0f} s")


def start(argv: Sequence[str], env: Mapping[str, str], key: str) -> None:
    """Have the worker for ``key`` running (importing, if just started), answer nothing."""
    sock = socket_dir(env) / f"{key}.sock"
    conn = _connect(sock) or _start(sock, argv, env)
    conn.close()


def run(
    argv: Sequence[str],
    request_file: Path,
    response_file: Path,
    cwd: Path,
    env: Mapping[str, str],
    key: str,
    timeout: float,
) -> int:
    """Have the warm worker for ``key`` answer ``request_file`` into ``response_file``,
    starting it if needed; its PID. PclusterError on a timeout (the worker is killed),
    Unavailable when a fresh worker process should be tried instead."""
    sock = socket_dir(env) / f"{key}.sock"
    conn = _connect(sock) or _start(sock, argv, env)
    with conn:
        pid = _peer_pid(conn)
        message = {"request": str(request_file), "response": str(response_file), "cwd": str(cwd)}
        conn.settimeout(timeout)
        try:
            conn.sendall((json.dumps(message) + "\n").encode())
            reply = _read_reply(conn)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
            raise PclusterError(f"pcluster offline run did not finish in {timeout:.0f} s") from None
        except OSError as exc:
            raise Unavailable(f"the warm worker {pid} broke off: {exc}") from exc
    if not reply:
        raise Unavailable(f"the warm worker {pid} exited before it answered")
    if not reply.get("ok"):
        log.debug("warm worker traceback:\n%s", reply.get("traceback", ""))
        raise Unavailable(f"the warm worker {pid} failed: {reply.get('error')}")
    return pid


def _read_reply(conn: socket.socket) -> dict[str, Any]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    if not data.strip():
        return {}
    try:
        reply = json.loads(data)
    except ValueError:
        return {}
    return reply if isinstance(reply, dict) else {}


def stop_all(directory: Path | None = None) -> list[int]:
    """Ask every warm worker in ``directory`` (this user's by default) to exit; their PIDs."""
    directory = directory or socket_dir()
    stopped = []
    for sock in sorted(directory.glob("*.sock")):
        conn = _connect(sock)
        if conn is None:
            sock.unlink(missing_ok=True)
            continue
        with conn:
            conn.settimeout(10)
            pid = _peer_pid(conn)
            with contextlib.suppress(OSError):
                conn.sendall(b'{"stop": true}\n')
                _read_reply(conn)
            stopped.append(pid)
    return stopped


__all__ = ["Unavailable", "enabled", "run", "socket_dir", "start", "stop_all", "worker_key"]
