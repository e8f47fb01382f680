"""The lab's network: one bridge, named network namespaces on it, and a ledger of both.

Every object the lab makes (bridge, namespace, veth, process, directory, hosts file) is
written to the ledger *before* it is made, so ``teardown`` removes all of it after a
crash or a half-finished ``up`` as well as after a clean one. The ledger lives in
``/run/pwbcluster-lab/`` (root's tmpfs: it goes at reboot, with the namespaces it
describes). Making and removing are idempotent: an object already there is left as it
is, one already gone counts as removed.

A ``Net`` names a lab: its prefix (every namespace and link is ``<prefix>-...``), its
bridge and its subnet. The cluster lab is ``LAB`` (pwblab-*, pwblab0, 10.78.8.0/24);
other harnesses (the users tests' Samba DC) use their own ``Net`` and ledger file.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pwbcluster.errors import ToolkitError

RUN_DIR = Path("/run/pwbcluster-lab")
NETNS_ETC = Path("/etc/netns")
# Linux caps interface names at 15 characters; "<prefix>-<name>-h" must fit.
IFNAMSIZ = 15
_NAME = re.compile(r"^[a-z][a-z0-9]*$")


@dataclass(frozen=True)
class Net:
    prefix: str
    bridge: str
    subnet: str

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def prefix_len(self) -> int:
        return self.network.prefixlen

    def address(self, host: int) -> str:
        """The subnet's ``host``-th address (1 is the bridge's)."""
        return str(self.network.network_address + host)

    @property
    def host_address(self) -> str:
        return self.address(1)

    def netns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def veth(self, name: str) -> str:
        return f"{self.prefix}-{name}-h"

    @property
    def ledger_path(self) -> Path:
        return RUN_DIR / f"{self.prefix}.json"


LAB = Net(prefix="pwblab", bridge="pwblab0", subnet="10.78.8.0/24")


def run(argv: Sequence[str], check: bool = True, timeout: float = 60, **kw: Any) -> str:
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, **kw
    )
    if check and proc.returncode != 0:
        raise ToolkitError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return str(proc.stdout)


def _starttime(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat), None when gone: a
    recorded PID is signalled only while it still names the process the lab started."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def alive(pid: int, starttime: str | None = None) -> bool:
    now = _starttime(pid)
    if now is None or (starttime is not None and now != starttime):
        return False
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def stop_pid(pid: int, starttime: str | None = None, grace: float = 10.0, sig: int = 15) -> None:
    """``sig`` (SIGTERM), wait, then SIGKILL: one process, by its PID, if it is still ours."""
    if not alive(pid, starttime):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not alive(pid, starttime):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def netns_list() -> list[str]:
    return [line.split()[0] for line in run(["ip", "netns", "list"], check=False).splitlines()]


def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


class Ledger:
    """What a lab made, in the order it made it; persisted after every change."""

    KINDS = ("bridge", "netns", "link", "process", "path")

    def __init__(self, net: Net, path: Path | None = None) -> None:
        self.net = net
        self.path = path or net.ledger_path
        # The nodes boot in threads: one writer of the ledger at a time.
        self.lock = threading.RLock()
        self.data: dict[str, Any] = {"net": net.__dict__, "meta": {}, "objects": []}
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text(encoding="utf-8"))
            except PermissionError:
                raise ToolkitError(f"{self.path} is root's: run with sudo") from None
            except ValueError as exc:
                raise ToolkitError(
                    f"{self.path} is not a lab ledger ({exc}); remove the lab's objects by "
                    f"hand (`ip netns list`, `ip link show {net.bridge}`) and delete the file"
                ) from None

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self.data.setdefault("meta", {}))

    def set_meta(self, **values: Any) -> None:
        with self.lock:
            self.data.setdefault("meta", {}).update(values)
            self.save()

    @property
    def objects(self) -> list[dict[str, Any]]:
        return list(self.data.get("objects", []))

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        """The recorded object of that kind and name, or None."""
        return next((o for o in self.objects if o["kind"] == kind and o["name"] == name), None)

    def has(self, kind: str, name: str) -> bool:
        return self.find(kind, name) is not None

    def record(self, kind: str, name: str, **extra: Any) -> None:
        if kind not in self.KINDS:
            raise ValueError(kind)
        with self.lock:
            objects = self.data.setdefault("objects", [])
            for obj in objects:
                if obj["kind"] == kind and obj["name"] == name:
                    obj.update(extra)
                    break
            else:
                objects.append({"kind": kind, "name": name, **extra})
            self.save()

    def forget(self, kind: str, name: str) -> None:
        with self.lock:
            self.data["objects"] = [
                o for o in self.objects if not (o["kind"] == kind and o["name"] == name)
            ]
            self.save()

    def save(self) -> None:
        with self.lock:
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(self.data, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(tmp, self.path)

    # -- making ---------------------------------------------------------------------

    def bridge(self) -> None:
        net = self.net
        self.record("bridge", net.bridge)
        if not link_exists(net.bridge):
            run(["ip", "link", "add", net.bridge, "type", "bridge"])
        addr = f"{net.host_address}/{net.prefix_len}"
        if addr not in run(["ip", "-o", "addr", "show", "dev", net.bridge]):
            run(["ip", "addr", "add", addr, "dev", net.bridge])
        run(["ip", "link", "set", net.bridge, "up"])

    def namespace(self, name: str, addresses: Sequence[str], hosts: str | None = None) -> str:
        """Namespace ``<prefix>-<name>`` on the bridge with ``addresses`` on its eth0 (and
        ``hosts`` as its /etc/hosts under `ip netns exec`); returns the namespace's name."""
        net = self.net
        if not _NAME.match(name) or len(net.veth(name)) > IFNAMSIZ:
            raise ToolkitError(f"lab namespace name {name!r}: [a-z0-9], {net.veth(name)} > 15")
        netns, veth = net.netns(name), net.veth(name)
        self.bridge()
        self.record("netns", netns)
        if netns not in netns_list():
            run(["ip", "netns", "add", netns])
        self.record("link", veth)
        inside = ["ip", "-n", netns]
        if not link_exists(veth):
            if "eth0" in run([*inside, "-o", "link", "show"]):
                run([*inside, "link", "del", "eth0"], check=False)
            run(["ip", "link", "add", veth, "type", "veth", "peer", "name", f"{veth[:-2]}-n"])
            run(["ip", "link", "set", f"{veth[:-2]}-n", "netns", netns, "name", "eth0"])
        run(["ip", "link", "set", veth, "master", net.bridge])
        run(["ip", "link", "set", veth, "up"])
        present = run([*inside, "-o", "addr", "show", "dev", "eth0"])
        for addr in addresses:
            if f" {addr}/" not in present:
                run([*inside, "addr", "add", f"{addr}/{net.prefix_len}", "dev", "eth0"])
        run([*inside, "link", "set", "eth0", "up"])
        run([*inside, "link", "set", "lo", "up"])
        if hosts is not None:
            self.hosts_file(netns, hosts)
        return netns

    def hosts_file(self, netns: str, text: str) -> None:
        """/etc/netns/<netns>/hosts: `ip netns exec` binds it over /etc/hosts."""
        directory = NETNS_ETC / netns
        self.record("path", str(directory))
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "hosts").write_text(
            "127.0.0.1 localhost\n::1 localhost\n" + text, encoding="utf-8"
        )

    def directory(self, path: Path, mode: int = 0o755) -> Path:
        self.record("path", str(path))
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        return path

    def process(self, what: str, pid: int, stop_signal: int = signal.SIGTERM) -> None:
        """A process the lab started (recorded with its start time, so a reused PID is
        never signalled)."""
        self.record("process", what, pid=pid, starttime=_starttime(pid), signal=stop_signal)

    def process_alive(self, what: str) -> bool:
        obj = self.find("process", what)
        return obj is not None and alive(int(obj["pid"]), obj.get("starttime"))

    def exec(self, netns: str, argv: Sequence[str]) -> list[str]:
        """``argv`` in ``netns`` (its /etc/hosts from /etc/netns/<netns>/ when written)."""
        return ["ip", "netns", "exec", netns, *argv]

    # -- removing -------------------------------------------------------------------

    def teardown(self) -> list[str]:
        """Remove everything recorded, newest first; return what was removed."""
        removed: list[str] = []
        objects = self.objects
        for obj in reversed(objects):
            if obj["kind"] == "process":
                pid, start = int(obj["pid"]), obj.get("starttime")
                if alive(pid, start):
                    stop_pid(pid, start, sig=int(obj.get("signal") or signal.SIGTERM))
                    removed.append(f"process {obj['name']} ({pid})")
                self.forget("process", obj["name"])
        # A child the lab's process had started when it died (samba-tool provision, a
        # pcluster call) is orphaned, not in a namespace: found by the lab's own
        # directories on its command line.
        owned = [Path(p) for p in (self.meta.get("workdir"), self.meta.get("build_dir")) if p]
        for orphan in processes_in(owned) if owned else []:
            stop_pid(orphan, _starttime(orphan), grace=3)
            removed.append(f"process {orphan} (orphan naming {', '.join(map(str, owned))})")
        present = netns_list()
        for obj in reversed(objects):
            if obj["kind"] == "netns" and obj["name"] in present:
                # Whatever still runs in a lab namespace was started there by the lab.
                for stray in run(["ip", "netns", "pids", obj["name"]], check=False).split():
                    stop_pid(int(stray), grace=3)
                    removed.append(f"process {stray} in {obj['name']}")
                run(["ip", "netns", "del", obj["name"]], check=False)
                removed.append(f"netns {obj['name']}")
            if obj["kind"] == "netns":
                self.forget("netns", obj["name"])
        for kind in ("link", "bridge"):
            for obj in reversed(objects):
                if obj["kind"] == kind:
                    if link_exists(obj["name"]):
                        run(["ip", "link", "del", obj["name"]], check=False)
                        removed.append(f"{kind} {obj['name']}")
                    self.forget(kind, obj["name"])
        for obj in reversed(objects):
            if obj["kind"] == "path":
                path = Path(obj["name"])
                if path.exists() or path.is_symlink():
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
                    removed.append(f"path {path}")
                self.forget("path", obj["name"])
        self.path.unlink(missing_ok=True)
        return removed


def leftovers(net: Net) -> list[str]:
    """What of ``net`` exists on this machine now (namespaces, links, the ledger)."""
    found = [f"netns {n}" for n in netns_list() if n.startswith(f"{net.prefix}-")]
    with contextlib.suppress(OSError):
        found += [
            f"link {n}"
            for n in sorted(os.listdir("/sys/class/net"))
            if n == net.bridge or n.startswith(f"{net.prefix}-")
        ]
    found += [f"path {p}" for p in sorted(NETNS_ETC.glob(f"{net.prefix}-*"))]
    if net.ledger_path.exists():
        found.append(f"ledger {net.ledger_path}")
    return found


def processes_in(paths: Sequence[Path]) -> list[int]:
    """PIDs whose command line names one of ``paths`` (a lab's work directories)."""
    needles = [str(p).encode() for p in paths]
    found = []
    mine = {os.getpid(), os.getppid()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if any(n in cmdline for n in needles):
            found.append(int(entry.name))
    return found
