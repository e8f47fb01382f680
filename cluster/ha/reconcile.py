#!/usr/bin/env python3
"""pwb-ha reconciler: keep Slurm's SlurmctldHost list equal to the live controllers.

Runs on the head node and on every login node (a systemd timer, plus a path unit on the
head that fires when ParallelCluster rewrites slurm_parallelcluster.conf). One run:

  1. takes the lock on shared storage (POSIX lock: works on EFS/NFSv4, so two nodes
     running at once are serialised; a second run changes nothing: idempotent);
  2. writes this node's heartbeat to <shared>/controllers/<host>.json;
  3. computes the backup list: login nodes whose heartbeat is fresher than stale_after,
     in registration order (a newcomer goes last, so the others keep their index);
     the head stays first because ParallelCluster's slurm_parallelcluster.conf names it;
  4. rewrites pwb_ha.conf (StateSaveLocation on shared storage, SlurmctldTimeout) and
     pwb_ha_controllers.conf (backup SlurmctldHost lines) when they differ, and makes the
     include of pwb_ha.conf the last line of slurm.conf (re-added if slurm.conf was
     re-rendered), so these values win over ParallelCluster's ("latest value used");
  5. releases the lock and applies the result on this node only: starts slurmctld when it
     is not running; when the configuration changed since it started, restarts it
     (standby controllers do not re-index on `scontrol reconfigure`), or, if this node is
     the controller in charge and keeps its index, runs `scontrol reconfigure` instead.

Python (standard library only) rather than bash: it parses slurm.conf includes and
`scontrol ping`, writes files atomically, takes a POSIX lock with a timeout and bounds
every subprocess, which in bash would need flock, sed and more error-prone quoting.
Configuration: a JSON file written by controller-ha.sh (--config). Exit 0 when done.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("pwb-ha-reconcile")

MARKER = "# pwb-ha: controller HA (cluster/ha); keep this include last"
MANAGED = "# Managed by pwb-ha (cluster/ha/reconcile.py): rewritten on every run, do not edit."
PING_LINE = re.compile(r"Slurmctld\((?P<kind>[^)]*)\) at (?P<host>\S+) is (?P<state>UP|DOWN)")
HOST_LINE = re.compile(r"^\s*SlurmctldHost\s*=\s*(?P<value>\S+)", re.IGNORECASE)
INCLUDE_LINE = re.compile(r"^\s*include\s+(?P<path>\S+)", re.IGNORECASE)
KEY_LINE = re.compile(r"^\s*(?P<key>[A-Za-z]+)\s*=\s*(?P<value>\S+)")


class ReconcileError(Exception):
    """A failure with a message for the operator (no traceback)."""


@dataclass(frozen=True)
class Settings:
    role: str
    hostname: str
    address: str
    shared_dir: Path
    slurm_etc: Path
    slurm_prefix: Path
    slurmctld_timeout: int
    stale_after: float
    init: str
    slurmctld_unit: str
    local_dir: Path

    @classmethod
    def load(cls, path: Path, stale_after: float | None) -> Settings:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ReconcileError(f"cannot read config {path}: {exc}") from exc
        try:
            return cls(
                role=raw["role"],
                hostname=raw["hostname"],
                address=raw["address"],
                shared_dir=Path(raw["shared_dir"]),
                slurm_etc=Path(raw["slurm_etc"]),
                slurm_prefix=Path(raw["slurm_prefix"]),
                slurmctld_timeout=int(raw["slurmctld_timeout"]),
                stale_after=float(stale_after if stale_after is not None else raw["stale_after"]),
                init=raw["init"],
                slurmctld_unit=raw["slurmctld_unit"],
                local_dir=Path(raw["local_dir"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ReconcileError(f"config {path} is incomplete or invalid: {exc}") from exc

    @property
    def slurm_conf(self) -> Path:
        return self.slurm_etc / "slurm.conf"

    @property
    def ha_conf(self) -> Path:
        return self.slurm_etc / "pwb_ha.conf"

    @property
    def controllers_conf(self) -> Path:
        return self.slurm_etc / "pwb_ha_controllers.conf"

    @property
    def accounting_conf(self) -> Path:
        """AccountingStorageBackupHost, written by slurmdbd-backup.sh when it runs."""
        return self.slurm_etc / "pwb_ha_accounting.conf"

    @property
    def state_dir(self) -> Path:
        return self.shared_dir / "state"

    @property
    def heartbeats(self) -> Path:
        return self.shared_dir / "controllers"

    def tool(self, name: str) -> str:
        sub = "sbin" if name == "slurmctld" else "bin"
        return str(self.slurm_prefix / sub / name)


# -- shared-storage lock and atomic files ------------------------------------------------


@contextlib.contextmanager
def shared_lock(path: Path, wait: float = 60.0) -> Iterator[None]:
    """A POSIX record lock: NFSv4 (EFS) honours it across hosts, unlike flock on old NFS."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    raise
                if time.monotonic() > deadline:
                    raise ReconcileError(
                        f"lock {path} held by another run for {wait:.0f} s"
                    ) from exc
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_if_changed(path: Path, content: str, mode: int = 0o644) -> bool:
    """Atomic replace (temp file, fsync, rename) only when the content differs."""
    with contextlib.suppress(OSError):
        if path.read_text() == content:
            return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.chmod(mode)
    tmp.replace(path)
    log.info("wrote %s", path)
    return True


# -- slurm.conf -------------------------------------------------------------------------


def conf_lines(path: Path, skip: set[Path], seen: set[Path] | None = None) -> Iterator[str]:
    """Lines of a slurm.conf with includes expanded (relative to the file's directory)."""
    seen = set() if seen is None else seen
    if path in seen or path in skip:
        return
    seen.add(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ReconcileError(f"cannot read {path}: {exc}") from exc
    for line in text.splitlines():
        match = INCLUDE_LINE.match(line)
        if match:
            target = Path(match["path"])
            target = target if target.is_absolute() else path.parent / target
            yield from conf_lines(target, skip, seen)
        else:
            yield line.split("#", 1)[0]


def pcluster_controllers(settings: Settings) -> list[str]:
    """SlurmctldHost values not written by us: ParallelCluster's head (and anything else)."""
    skip = {settings.ha_conf, settings.controllers_conf}
    return [
        m["value"] for line in conf_lines(settings.slurm_conf, skip) if (m := HOST_LINE.match(line))
    ]


def host_name(value: str) -> str:
    return value.split("(", 1)[0]


def ensure_include_last(settings: Settings) -> bool:
    """Our include must be the last directive so our values override pcluster's."""
    include = f"include {settings.ha_conf}"
    lines = settings.slurm_conf.read_text().splitlines()
    kept = [ln for ln in lines if ln.strip() not in (include, MARKER)]
    while kept and not kept[-1].strip():
        kept.pop()
    return write_if_changed(settings.slurm_conf, "\n".join([*kept, "", MARKER, include]) + "\n")


def render_ha_conf(settings: Settings) -> str:
    accounting = ""
    if settings.accounting_conf.exists():
        accounting = (
            "# The backup slurmdbd (cluster/ha/slurmdbd-backup.sh).\n"
            f"include {settings.accounting_conf}\n"
        )
    return (
        f"{MANAGED}\n"
        "# Shared state, so a backup controller recovers what the primary saved.\n"
        f"StateSaveLocation={settings.state_dir}\n"
        "# Measured with benchmarks/controller_failover.py (cluster.ha.slurmctld_timeout).\n"
        f"SlurmctldTimeout={settings.slurmctld_timeout}\n"
        f"include {settings.controllers_conf}\n"
        f"{accounting}"
    )


def render_controllers(backups: list[dict[str, str]]) -> str:
    lines = [f"SlurmctldHost={b['name']}({b['address']})" for b in backups]
    return "\n".join([MANAGED, "# Backup controllers, in order of takeover.", *lines]) + "\n"


# -- heartbeats --------------------------------------------------------------------------


def write_heartbeat(settings: Settings, now: float) -> None:
    settings.heartbeats.mkdir(parents=True, exist_ok=True)
    path = settings.heartbeats / f"{settings.hostname}.json"
    registered = now
    with contextlib.suppress(OSError, ValueError, KeyError):
        old = json.loads(path.read_text())
        if old["address"] == settings.address:
            registered = float(old["registered"])
    beat = {
        "name": settings.hostname,
        "address": settings.address,
        "role": settings.role,
        "registered": registered,
        "updated": now,
    }
    write_if_changed(path, json.dumps(beat, sort_keys=True) + "\n")


def live_backups(settings: Settings, head_names: set[str], now: float) -> list[dict[str, str]]:
    """Fresh login-node heartbeats in registration order; stale ones are deleted."""
    beats = []
    for path in sorted(settings.heartbeats.glob("*.json")):
        try:
            beat = json.loads(path.read_text())
            updated = float(beat["updated"])
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable heartbeat %s: %s", path, exc)
            continue
        if beat.get("role") != "login" or beat["name"] in head_names:
            continue
        if now - updated > settings.stale_after:
            log.info("controller %s silent for %.0f s: removing it", beat["name"], now - updated)
            path.unlink(missing_ok=True)
            continue
        beats.append(beat)
    beats.sort(key=lambda b: (float(b["registered"]), b["name"]))
    return [{"name": b["name"], "address": b["address"]} for b in beats]


def update_shared_config(settings: Settings) -> bool:
    """Steps 2 to 4 under the shared lock. Returns True when the controller list changed."""
    now = time.time()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    write_heartbeat(settings, now)
    heads = pcluster_controllers(settings)
    if not heads:
        raise ReconcileError(f"no SlurmctldHost in {settings.slurm_conf} or its includes")
    backups = live_backups(settings, {host_name(h) for h in heads}, now)
    changed = write_if_changed(settings.controllers_conf, render_controllers(backups))
    changed |= write_if_changed(settings.ha_conf, render_ha_conf(settings))
    changed |= ensure_include_last(settings)
    names = [host_name(h) for h in heads] + [b["name"] for b in backups]
    log.info("controllers: %s%s", ", ".join(names), " (changed)" if changed else "")
    return changed


# -- local slurmctld ---------------------------------------------------------------------


def run(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    log.debug("running %s", " ".join(argv))
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ReconcileError(f"{' '.join(argv)} did not finish in {timeout:.0f} s") from exc


def generation(settings: Settings) -> str:
    """Fingerprint of everything that defines the controllers, as slurmctld reads it."""
    digest = hashlib.sha256()
    for line in conf_lines(settings.slurm_conf, skip=set()):
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()[:16]


def configured_index(settings: Settings) -> int:
    names = [host_name(h) for h in pcluster_controllers(settings)]
    names += [
        host_name(m["value"])
        for line in conf_lines(settings.controllers_conf, skip=set())
        if (m := HOST_LINE.match(line))
    ]
    return names.index(settings.hostname) if settings.hostname in names else -1


def slurmctld_pid(settings: Settings) -> int | None:
    pidfile = None
    for line in conf_lines(settings.slurm_conf, skip=set()):
        match = KEY_LINE.match(line)
        if match and match["key"].lower() == "slurmctldpidfile":
            pidfile = Path(match["value"])
    pidfile = pidfile or Path("/var/run/slurmctld.pid")
    try:
        pid = int(pidfile.read_text().split()[0])
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError, IndexError):
        return None
    return pid if comm == "slurmctld" else None


def ping(settings: Settings) -> list[tuple[str, str]]:
    """(host, UP|DOWN) for every configured controller, in list order."""
    result = run([settings.tool("scontrol"), "ping"], timeout=30)
    return [(m["host"], m["state"]) for m in PING_LINE.finditer(result.stdout)]


def in_control(settings: Settings) -> bool:
    """The first controller that answers, in list order, is the one in charge."""
    for host, state in ping(settings):
        if state == "UP":
            return host == settings.hostname
    return False


def process_age(pid: int) -> float:
    """Seconds since the process started (from /proc, boot-relative: no clock skew)."""
    try:
        start_ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def hung(settings: Settings, pid: int) -> bool:
    """The process lives but its controller does not answer, twice, SlurmctldTimeout apart.

    Seen with Slurm 22.05: a backup that hands control back to the returning primary can
    stay stuck in "Saving all slurm state"; it then never takes over again. (The code
    paths are the same in 24.11, 25.11 and 26.05: proc_req.c, backup.c.)
    """
    if process_age(pid) < 2 * settings.slurmctld_timeout:
        return False
    for attempt in range(2):
        if (settings.hostname, "DOWN") not in ping(settings):
            return False
        if attempt == 0:
            time.sleep(settings.slurmctld_timeout)
    return True


# -- hand-back watch ---------------------------------------------------------------------
#
# When the head's slurmctld returns, it sends REQUEST_CONTROL to the backup in charge and
# waits for the reply before it reads the saved state and runs as primary (Slurm's
# controller.c, _shutdown_backup_controller, reply timeout CONTROL_TIMEOUT). The backup
# answers once it has stopped its primary threads and saved its state (proc_req.c,
# _slurm_rpc_shutdown_controller). A backup that hangs there (seen with 22.05 in "Saving
# all slurm state") keeps the head waiting: no controller answers. Since the conmgr
# rework (24.11, 25.11 and 26.05 alike) every hand-back hangs so: the REQUEST_CONTROL
# handler waits (up to CONTROL_TIMEOUT - 1, 29 s) for backup_finish_cond, which run_backup
# signals only after the main thread's shutdown, and that shutdown first waits in
# conmgr_quiesce for every RPC in flight, this one included (proc_req.c,
# _slurm_rpc_request_control; controller.c, _slurmctld_background). In the lab the reply
# came after 29 s with "REQUEST_CONTROL reply but backup not completely done relinquishing
# control" on 24.11, so on those versions this watcher ends every failback. The watcher runs
# beside the backup slurmctld and kills it once it has been silent for a few seconds
# while it was, or was becoming, the controller in charge. Killing loses nothing the
# state files do not already hold: Slurm writes each one to a temporary file and renames
# it, so a kill leaves the last complete save (at most SAVE_MAX_WAIT, 5 s, old: the same
# window as a kill -9 of the head), and the head reads that once the connection drops.

# Control events a backup writes to its log, the last one tells its role: the same
# strings in Slurm 22.05, 24.11, 25.11 and 26.05 (backup.c, controller.c, proc_req.c).
STANDBY_EVENTS = ("running in background mode",)
CHARGE_EVENTS = ("taking over", "Running as primary controller", "REQUEST_CONTROL")


def log_path(settings: Settings) -> Path:
    path = None
    for line in conf_lines(settings.slurm_conf, skip=set()):
        match = KEY_LINE.match(line)
        if match and match["key"].lower() == "slurmctldlogfile":
            path = Path(match["value"])
    return path or Path("/var/log/slurmctld.log")


def was_in_charge(settings: Settings, tail_bytes: int = 262144) -> bool:
    """The local slurmctld's last control event put it in charge (or asked it to hand
    back). Without a readable log: True (a silent live process is then judged alone)."""
    try:
        with open(log_path(settings), "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - tail_bytes))
            text = handle.read().decode(errors="replace")
    except OSError:
        return True
    last_standby = max(text.rfind(e) for e in STANDBY_EVENTS)
    last_charge = max(text.rfind(e) for e in CHARGE_EVENTS)
    return last_charge > last_standby


def answers(settings: Settings, probe_timeout: float) -> bool:
    """The local slurmctld answered a ping within probe_timeout seconds.

    `scontrol ping` asks every controller in turn; one that accepts the connection but
    never replies holds it up to MessageTimeout, so a probe that does not finish in time
    counts as silence too (then the log decides whose: see was_in_charge)."""
    try:
        result = subprocess.run(
            [settings.tool("scontrol"), "ping"],
            capture_output=True,
            text=True,
            timeout=probe_timeout,
        )
    except subprocess.TimeoutExpired:
        return False
    states = {m["host"]: m["state"] for m in PING_LINE.finditer(result.stdout)}
    return states.get(settings.hostname) == "UP"


@dataclass
class HandbackWatch:
    """One check per call; the state between calls is when silence began."""

    settings: Settings
    grace: float
    probe_timeout: float = 2.0
    silent_since: float | None = None
    watched_pid: int | None = None

    def check(self, now: float | None = None) -> str:
        pid = slurmctld_pid(self.settings)
        if pid != self.watched_pid:
            self.watched_pid, self.silent_since = pid, None
        if pid is None:
            return "absent"
        if process_age(pid) < 2 * self.settings.slurmctld_timeout:
            return "young"
        # A probe that times out was silent from its start: the clock is read before it.
        began = time.monotonic() if now is None else now
        if answers(self.settings, self.probe_timeout):
            self.silent_since = None
            return "answers"
        now = time.monotonic() if now is None else now
        if self.silent_since is None:
            self.silent_since = began
        if now - self.silent_since < self.grace or not was_in_charge(self.settings):
            return "silent"
        log.warning(
            "slurmctld %d in charge (or handing back) silent for %.1f s: killing it",
            pid,
            now - self.silent_since,
        )
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.watched_pid, self.silent_since = None, None
        start_local(self.settings, restart=False)
        return "killed-hung"


def watch(settings: Settings, grace: float, every: float, rounds: int | None = None) -> int:
    """The watcher loop (pwb-ha-handback.service on login nodes)."""
    watcher = HandbackWatch(settings, grace)
    done = 0
    while rounds is None or done < rounds:
        started = time.monotonic()
        try:
            state = watcher.check()
            if state == "killed-hung":
                log.info("slurmctld on %s restarted after a hung hand-back", settings.hostname)
        except ReconcileError as exc:
            log.error("%s", exc)
        done += 1
        time.sleep(max(0.0, every - (time.monotonic() - started)))
    return 0


def stop_local(settings: Settings, pid: int, grace: float = 20.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists():
        log.warning("slurmctld %d ignored SIGTERM for %.0f s: killing it", pid, grace)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def start_local(settings: Settings, restart: bool, grace: float = 20.0) -> None:
    pid = slurmctld_pid(settings)
    if restart and pid is not None and grace < 20.0:
        stop_local(settings, pid, grace)  # hung: do not wait for systemd's long stop
    if settings.init == "systemd":
        verb = "restart" if restart else "start"
        result = run(["systemctl", verb, settings.slurmctld_unit], timeout=120)
    else:
        pid = slurmctld_pid(settings)
        if restart and pid is not None:
            stop_local(settings, pid, grace)
        result = run([settings.tool("slurmctld")], timeout=60)
    if result.returncode != 0:
        raise ReconcileError(f"slurmctld did not start on {settings.hostname}: {result.stderr}")
    for _ in range(50):
        if slurmctld_pid(settings) is not None:
            return
        time.sleep(0.1)
    raise ReconcileError(f"slurmctld on {settings.hostname} exited at once: see its log")


# How long a controller may take to answer again after `scontrol reconfigure`: longer than
# Slurm's CONTROL_TIMEOUT (30 s), the most its REQUEST_CONTROL to a silent backup waits.
RECONFIGURE_SETTLE = 45.0


def tell_first(settings: Settings) -> bool:
    """`scontrol reconfigure` to the controller in charge before this node's slurmctld
    starts with a changed list, then wait until a controller answers again. Returns True
    when it was told (False: no other controller answers, there is nobody to tell).

    Since Slurm 23.11 a reconfigured slurmctld restarts (controller.c, _try_to_reconfig)
    and, as primary, first sends REQUEST_CONTROL to every listed backup and waits up to
    CONTROL_TIMEOUT (30 s) for each reply (_shutdown_backup_controller), answering nothing
    meanwhile. A backup that has just started keeps its listeners quiesced until the
    primary's heartbeat file exists in StateSaveLocation, and 5 s more (backup.c,
    run_backup; 23.11+). The primary writes that file only after the REQUEST_CONTROL
    round, and only when it started with a backup listed (heartbeat.c): so the first
    backup started before the primary's restart left no controller answering for 30 s
    (seen with 24.11 and 26.05 in the lab). Told first, the primary's REQUEST_CONTROL to
    this node is refused at once (nothing listens yet) and the backup starts after it.
    On 22.05 the reconfigure is in place and the wait ends at the first answer."""
    others = [host for host, state in ping(settings) if state == "UP"]
    if not [host for host in others if host != settings.hostname]:
        return False
    result = run([settings.tool("scontrol"), "reconfigure"], timeout=60)
    if result.returncode != 0:
        log.warning("scontrol reconfigure: %s", result.stderr.strip())
        return True
    deadline = time.monotonic() + RECONFIGURE_SETTLE
    while time.monotonic() < deadline:
        if any(h != settings.hostname and st == "UP" for h, st in ping(settings)):
            return True
        time.sleep(0.5)
    log.warning("no controller answered within %.0f s of scontrol reconfigure", RECONFIGURE_SETTLE)
    return True


def apply_locally(settings: Settings, list_changed: bool) -> str:
    """Step 5. Returns what was done (for the log and the tests)."""
    gen = generation(settings)
    index = configured_index(settings)
    applied_file = settings.local_dir / "applied"
    applied = applied_file.read_text().split() if applied_file.exists() else []
    pid = slurmctld_pid(settings)
    if index < 0:
        action = "not-listed"
    elif pid is None:
        action = "started"
    elif hung(settings, pid):
        log.warning("slurmctld %d runs but does not answer: restarting it", pid)
        action = "restarted-hung"
    elif applied[:1] == [gen] or (not applied and not list_changed):
        action = "unchanged"
    elif applied[2:3] == [str(index)] and in_control(settings):
        action = "reconfigured"
    else:
        action = "restarted"
    # A slurmctld about to start with a new list: the controller in charge learns it
    # first (tell_first says why).
    told = list_changed and action in {"started", "restarted"} and tell_first(settings)
    if action == "started":
        start_local(settings, restart=False)
    elif action == "restarted-hung":
        start_local(settings, restart=True, grace=5.0)
    elif action == "reconfigured":
        result = run([settings.tool("scontrol"), "reconfigure"], timeout=60)
        if result.returncode != 0:
            raise ReconcileError(f"scontrol reconfigure failed: {result.stderr.strip()}")
    elif action == "restarted":
        start_local(settings, restart=True)
    if list_changed and action != "reconfigured" and not told:
        # Tell the controller in charge (and through it every slurmd) at once rather than
        # on its own next run; failure is not fatal, its own reconciler will do it.
        result = run([settings.tool("scontrol"), "reconfigure"], timeout=60)
        if result.returncode != 0:
            log.warning("scontrol reconfigure: %s", result.stderr.strip())
    new_pid = slurmctld_pid(settings)
    settings.local_dir.mkdir(parents=True, exist_ok=True)
    write_if_changed(applied_file, f"{gen} {new_pid} {index}\n")
    log.info("slurmctld on %s: %s", settings.hostname, action)
    return action


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("/var/lib/pwb-ha/reconcile.json"),
        help="settings written by controller-ha.sh",
    )
    parser.add_argument(
        "--stale-after",
        type=float,
        default=None,
        help="override: seconds after which a silent controller is removed",
    )
    parser.add_argument(
        "--no-apply",
        action="store_true",
        help="update the shared configuration only; leave slurmctld alone",
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="run the hand-back watcher (login nodes): kill the local slurmctld when it "
        "was in charge and stays silent for --watch-grace seconds",
    )
    parser.add_argument(
        "--watch-grace",
        type=float,
        default=4.0,
        help="seconds of silence before the watcher kills a hung slurmctld [4]",
    )
    parser.add_argument(
        "--watch-every", type=float, default=0.5, help="seconds between watcher checks [0.5]"
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=f"[pwb-ha-reconcile] {socket.gethostname()}: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = Settings.load(args.config, args.stale_after)
        if args.watch:
            if args.watch_grace <= 0 or args.watch_every <= 0:
                raise ReconcileError("--watch-grace and --watch-every must be positive")
            return watch(settings, args.watch_grace, args.watch_every)
        with shared_lock(settings.shared_dir / "reconcile.lock"):
            changed = update_shared_config(settings)
        if not args.no_apply:
            print(apply_locally(settings, changed))
    except ReconcileError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
