#!/usr/bin/python3
"""workbench-standin: the cluster lab's stand-in for Posit Workbench on a login node.

Workbench itself is not here (no registry serves it). The lab installs this as the
rstudio-server and rstudio-launcher units' ExecStart (``workbench_standin.py rserver`` or
``launcher``). It refuses to start, as a misconfigured Workbench would not serve, unless
what the real one reads at start is in place:

- rserver.conf, launcher.conf, load-balancer: present, root-owned, not writable by
  group or others; rserver.conf names www-port, the launcher's address and port,
  launcher-sessions-callback-address and secure-cookie-key-file; load-balancer names
  this node (www-host-name) among its own addresses;
- the secure-cookie-key file, database.conf and launcher.pem: root-owned, mode 600,
  not empty; launcher.pub present; the shared storage path a directory;
- database.conf: provider=postgresql with a password= line, and PostgreSQL accepts that
  password over the connection-uri (sslmode and sslrootcert as written there), checked
  with psql at start and at every /health-check.

rserver then answers GET /health-check on www-port (200 only while the database check
passes, 503 otherwise); every response names the stand-in. It cannot check what only
Workbench knows: the licence, sessions, the launcher's Slurm plugin.
Stdlib only: it runs with the node's /usr/bin/python3.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ETC = Path(os.environ.get("RSTUDIO_ETC", "/etc/rstudio"))


def say(role: str, msg: str) -> None:
    print(f"[{role}-standin] {msg}", file=sys.stderr, flush=True)


def conf(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def owned_by_root(path: Path, mode: int | None = None) -> str | None:
    if not path.is_file():
        return f"{path} is missing"
    st = path.stat()
    if st.st_uid != 0:
        return f"{path} is not owned by root"
    if mode is not None and (st.st_mode & 0o777) != mode:
        return f"{path} has mode {st.st_mode & 0o777:o}, not {mode:o}"
    if mode is None and st.st_mode & 0o022:
        return f"{path} is writable by group or others"
    if path.stat().st_size == 0:
        return f"{path} is empty"
    return None


def database_problem() -> str | None:
    path = ETC / "database.conf"
    problem = owned_by_root(path, 0o600)
    if problem:
        return problem
    db = conf(path)
    if db.get("provider") != "postgresql":
        return f"{path}: provider is {db.get('provider')!r}, not postgresql"
    if not db.get("password"):
        return f"{path} has no password= line"
    uri = db.get("connection-uri") or (
        f"postgresql://{db.get('username')}@{db.get('host')}:{db.get('port', '5432')}/{db.get('database')}"
    )
    query = parse_qs(urlsplit(uri).query)
    if query.get("sslmode", [""])[0] not in ("verify-full", "verify-ca", "require"):
        return f"{path}: the connection-uri does not require TLS"
    done = subprocess.run(
        ["psql", uri, "-X", "-q", "-tA", "-c", "SELECT 1"],
        env={**os.environ, "PGPASSWORD": db["password"], "PGCONNECT_TIMEOUT": "5"},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if done.returncode != 0 or done.stdout.strip() != "1":
        return f"PostgreSQL refused the credentials in {path}: {done.stderr.strip()[-200:]}"
    return None


def local_addresses() -> set[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
    return {part.split("/")[0] for line in out.splitlines() for part in line.split()[3:4]}


def rserver_problems() -> list[str]:
    problems = [
        p
        for p in (
            owned_by_root(ETC / n) for n in ("rserver.conf", "load-balancer", "launcher.conf")
        )
        if p
    ]
    if problems:
        return problems
    rserver = conf(ETC / "rserver.conf")
    for key in (
        "www-port",
        "launcher-address",
        "launcher-port",
        "launcher-sessions-callback-address",
        "secure-cookie-key-file",
    ):
        if not rserver.get(key):
            problems.append(f"rserver.conf has no {key}")
    cookie = Path(rserver.get("secure-cookie-key-file", ETC / "secure-cookie-key"))
    problems += [
        p
        for p in (
            owned_by_root(cookie, 0o600),
            owned_by_root(ETC / "launcher.pem", 0o600),
            owned_by_root(ETC / "launcher.pub"),
        )
        if p
    ]
    storage = rserver.get("server-shared-storage-path")
    if storage and not Path(storage).is_dir():
        problems.append(f"server-shared-storage-path {storage} is not a directory")
    host = conf(ETC / "load-balancer").get("www-host-name")
    if not host or host not in local_addresses():
        problems.append(f"load-balancer's www-host-name {host!r} is not an address of this node")
    db = database_problem()
    if db:
        problems.append(db)
    return problems


class Health(http.server.BaseHTTPRequestHandler):
    server_version = "workbench-standin"

    def do_GET(self) -> None:
        if self.path != "/health-check":
            self.send_error(404, "workbench-standin serves /health-check only")
            return
        problem = database_problem()
        body = (
            f"standin: {problem}\n" if problem else "standin: ok (not Posit Workbench)\n"
        ).encode()
        self.send_response(503 if problem else 200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        say("rserver", fmt % args)


def main(role: str) -> int:
    if role == "launcher":
        problems = [
            p
            for p in (
                owned_by_root(ETC / "launcher.conf"),
                owned_by_root(ETC / "launcher.pem", 0o600),
                owned_by_root(ETC / "launcher.pub"),
            )
            if p
        ]
        if problems:
            for p in problems:
                say(role, f"refusing to start: {p}")
            return 1
        say(role, "started (a stand-in: it launches no sessions)")
        while True:
            time.sleep(3600)
    problems = rserver_problems()
    if problems:
        for p in problems:
            say(role, f"refusing to start: {p}")
        return 1
    port = int(conf(ETC / "rserver.conf")["www-port"])
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Health)
    server.address_family = socket.AF_INET
    say(role, f"serving /health-check on :{port} (a stand-in, not Posit Workbench)")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "rserver"))
