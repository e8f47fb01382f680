"""The warm worker: worker.py's requests served one after another over a Unix socket.

Usage: <pcluster venv>/bin/python worker.py --serve SOCKET IDLE_SECONDS MAX_REQUESTS

A fresh worker pays about 10 s before its first template (importing pcluster and CDK,
starting jsii's node kernel, loading moto's EC2 data); this process pays it once, then
answers each request in the time the request itself takes. The toolkit starts it on
first use (pwbcluster.pcluster.warm) and talks to it in JSON lines:

  -> {"request": PATH, "response": PATH, "cwd": DIR}   <- {"ok": true, "pid": N}
  -> {"stop": true}                                      <- {"ok": true, "pid": N}
  (a connection closed without a line is a probe, and is not answered)

The socket is bound before the imports, so a client's first request waits for them
rather than failing to connect. Only processes of this user are served (SO_PEERCRED).
The process exits after IDLE_SECONDS without a request, after MAX_REQUESTS requests
(pcluster and CDK were not written for a long-lived process; a bounded life bounds what
can build up), after a request that raised outside the per-job handling (its state is
then unknown), or when told to stop. It removes its socket file on the way out, unless
another worker has replaced it there.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_LINE = 1 << 20


def warm_up() -> float:
    """Import what every request needs; the first synthesis still builds its own App."""
    started = time.perf_counter()
    import boto3
    import pcluster.schemas.cluster_schema
    import pcluster.schemas.imagebuilder_schema
    import pcluster.templates.cdk_builder
    import pcluster.templates.cluster_stack  # noqa: F401
    from moto import mock_aws

    # moto loads its EC2 data on a backend's first use (~2 s); each request then only
    # resets the backends (~0.4 s). In-process, whatever endpoint the environment names
    # (a sandbox's moto server must not see this).
    endpoints = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_ENDPOINT_URL")}
    try:
        with mock_aws():
            boto3.client("ec2", region_name="us-east-1").create_vpc(CidrBlock="10.0.0.0/16")
    finally:
        os.environ.update(endpoints)
    return time.perf_counter() - started


def _peer_uid(conn: socket.socket) -> int:
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", raw)[1])


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_LINE:
            raise ValueError("request line too long")
    return data


def _reply(conn: socket.socket, body: dict[str, Any]) -> None:
    # OSError: the client gave up (its timeout), and stops this process itself.
    with contextlib.suppress(OSError):
        conn.sendall((json.dumps({**body, "pid": os.getpid()}) + "\n").encode())


def _owned(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino == inode
    except OSError:
        return False


def serve(args: list[str], handle: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    path, idle, max_requests = Path(args[0]), float(args[1]), int(args[2])
    old_umask = os.umask(0o077)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
    except OSError as exc:
        print(f"warm worker: cannot bind {path}: {exc}", file=sys.stderr)
        return 1
    finally:
        os.umask(old_umask)
    inode = path.stat().st_ino
    listener.listen(16)
    print(f"warm worker {os.getpid()}: imports took {warm_up():.1f} s", file=sys.stderr)
    listener.settimeout(idle)
    served = 0
    home = os.getcwd()
    # Each request sees the environment this process started with, as a fresh worker
    # started by the same client would (the key of this worker includes it).
    environment = dict(os.environ)
    try:
        while served < max_requests:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                print(f"warm worker {os.getpid()}: idle for {idle:.0f} s, exiting", file=sys.stderr)
                break
            with conn:
                conn.settimeout(None)
                if _peer_uid(conn) != os.getuid():
                    continue
                try:
                    message = json.loads(_read_line(conn) or b"{}")
                except ValueError:
                    continue
                if message.get("stop"):
                    _reply(conn, {"ok": True})
                    print(f"warm worker {os.getpid()}: stopped on request", file=sys.stderr)
                    break
                if "request" not in message:
                    continue  # a probe (the toolkit starting this worker ahead of need)
                served += 1
                started = time.perf_counter()
                try:
                    os.environ.clear()
                    os.environ.update(environment)
                    os.chdir(message["cwd"])
                    request = json.loads(Path(message["request"]).read_text())
                    response = handle(request)
                    Path(message["response"]).write_text(json.dumps(response, default=str))
                except Exception as exc:
                    _reply(conn, {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                                  "traceback": traceback.format_exc()})  # fmt: skip
                    break
                finally:
                    os.chdir(home)
                took = time.perf_counter() - started
                print(
                    f"warm worker {os.getpid()}: request {served} in {took:.1f} s", file=sys.stderr
                )
                _reply(conn, {"ok": True, "served": served})
    finally:
        listener.close()
        if _owned(path, inode):
            path.unlink()
    return 0
