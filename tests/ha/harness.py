"""Test hosts in network namespaces running real Slurm, for the controller-HA tests.

Used by tests/ha and benchmarks/controller_failover.py. Only subnet 10.77.7.0/24, the
bridge `pwbha0` and namespaces named `pwbha-*` are touched. Every process is started with
a known PID and stopped by PID; `Cluster.close()` removes namespaces, veths and the bridge
and is safe to call after any partial start.

A host is a network namespace plus a holder process that owns the host's UTS (hostname)
and mount namespace; a per-host directory is bind-mounted on /run/pwbha (pid files, logs,
local state: the host's "local disk"). One munged serves every host through its socket
(filesystem sockets are not isolated by network namespaces).

Another Slurm than the host's: with ``PWBHA_SLURM_ROOT`` set to a Debian root (built by
``pwbcluster.lab.rootfs``; the nox session ``ha_versions`` does it), every Slurm-side
process and command (munged, slurmctld, slurmd, the clients, controller-ha.sh and
reconcile.py) runs chrooted in that root, still in the host's namespaces. Each host's
holder mounts, in its own mount namespace only, a tmpfs on the root's /run and /tmp,
/proc, /dev, /sys (read-only), the host's local directory on /run/pwbha, its hosts file on /etc/hosts and
the cluster's base directory (slurm.conf, the shared directory, the munge socket, the
copied HA scripts) at the same path as outside; munged gets the same in a mount namespace
of its own. Nothing is mounted in the host's namespace, so the mounts go with the
processes. The cached root is not written: the mount points are made under its /run and
/tmp, which are tmpfs (only a base directory outside /tmp, from TMPDIR, gets an empty
mount point created in the root itself).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
HA_SCRIPTS = REPO / "cluster" / "ha"
SLURM_ROOT_ENV = "PWBHA_SLURM_ROOT"
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BRIDGE = "pwbha0"
SUBNET = "10.77.7"
LOCAL_MOUNT = Path("/run/pwbha")
# rds: the accounting database (tests/ha/accounting.py), MariaDB standing in for RDS.
ADDRESSES = {"head": 10, "login1": 11, "login2": 12, "login3": 13, "compute1": 20, "rds": 30}


def _run(argv: Sequence[str], check: bool = True, timeout: float = 30) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} -> {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def slurm_root() -> Path | None:
    """The Debian root Slurm runs in (PWBHA_SLURM_ROOT), or None for the host's own."""
    value = os.environ.get(SLURM_ROOT_ENV, "").strip()
    return Path(value) if value else None


def slurm_version(root: Path | None = None) -> str:
    """`slurmctld -V` of the host's Slurm or of the root's."""
    argv = ["slurmctld", "-V"]
    return _run(["chroot", str(root), *argv] if root is not None else argv).strip()


def version_tuple(version: str) -> tuple[int, ...]:
    """(24, 11, 5) from "slurm 24.11.5" or "slurm-wlm 24.11.5"."""
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if not match:
        raise RuntimeError(f"cannot read a Slurm version from {version!r}")
    return tuple(int(g or 0) for g in match.groups())


def user_ids(user: str, root: Path | None = None) -> tuple[int, int]:
    """uid and gid of a user on the host or in the root (their munge uids differ)."""
    for line in ((root or Path("/")) / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if len(fields) > 3 and fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise RuntimeError(f"no user {user} in {(root or Path('/')) / 'etc' / 'passwd'}")


def root_mounts(root: Path, binds: Sequence[tuple[Path, Path]]) -> str:
    """Shell commands, run in a private mount namespace, that make `root` usable by a
    chrooted Slurm: tmpfs on /run and /tmp, /proc, /dev, /sys (read-only), then each
    (source, target)."""
    q = shlex.quote
    lines = [
        f"mount -t tmpfs -o mode=0755 pwbha-run {q(f'{root}/run')}",
        f"mount -t tmpfs -o mode=1777 pwbha-tmp {q(f'{root}/tmp')}",
        f"mount -t proc proc {q(f'{root}/proc')}",
        f"mount --bind /dev {q(f'{root}/dev')}",
        # hwloc's CPU topology and 22.05's cgroup plugin (/sys/fs/cgroup), as natively.
        f"mount --rbind /sys {q(f'{root}/sys')}",
        f"mount -o remount,bind,ro {q(f'{root}/sys')}",
    ]
    for source, target in binds:
        inside = q(f"{root}{target}")
        if source.is_dir():
            lines.append(f"mkdir -p {inside}")
        lines.append(f"mount --bind {q(str(source))} {inside}")
    return " && ".join(lines)


def unavailable_reason() -> str | None:
    """Why these tests cannot run here, or None when they can."""
    root = slurm_root()
    if root is not None:
        for tool in ("usr/sbin/slurmctld", "usr/sbin/slurmd", "usr/bin/sbatch", "usr/sbin/munged"):
            if not (root / tool).exists():
                return f"{SLURM_ROOT_ENV}={root} has no /{tool} (build it: nox -s ha_versions)"
        for tool in ("nsenter", "unshare", "chroot", "mount"):
            if shutil.which(tool) is None:
                return f"needs {tool} on the host (util-linux, coreutils)"
    if os.geteuid() != 0:
        return "needs root (network namespaces, bind mounts, daemons as other users)"
    if (
        shutil.which("ip") is None
        or subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0
    ):
        return "needs `ip netns` (iproute2) with network-namespace support"
    for tool in ("slurmctld", "slurmd", "sbatch", "scontrol", "munged", "nsenter", "unshare"):
        if root is None and shutil.which(tool) is None:
            return f"needs {tool} (requirements/apt-test.txt: slurmctld slurmd slurm-client munge)"
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        if "State:\tZ" in Path(f"/proc/{pid}/status").read_text():
            return False
    return True


def stop_pid(pid: int, grace: float = 10.0) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL (a primary can hang on SIGTERM)."""
    if not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def remove_leftovers() -> None:
    """Namespaces and the bridge left by a run that was killed before its clean-up."""
    for line in _run(["ip", "netns", "list"], check=False).splitlines():
        netns = line.split()[0] if line.split() else ""
        if not netns.startswith("pwbha-"):
            continue
        for pid in _run(["ip", "netns", "pids", netns], check=False).split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        _run(["ip", "netns", "del", netns], check=False)
    for line in _run(["ip", "-br", "link"], check=False).splitlines():
        link = line.split()[0].split("@")[0] if line.split() else ""
        if link.startswith("vpwbha-") or link == BRIDGE:
            _run(["ip", "link", "del", link], check=False)


class AnswerProbe:
    """Polls a client round trip (`sinfo`, answered only by the controller in charge) from
    one host in a thread and records when it succeeded; `longest_silence()` is the longest
    interval in the watched window with no successful round trip (a probe that does not
    finish within `probe_timeout` counts as no answer)."""

    def __init__(self, host: Host, every: float = 0.2, probe_timeout: float = 2.0) -> None:
        self.host, self.every, self.probe_timeout = host, every, probe_timeout
        self.answered: list[float] = []
        self.started = self.stopped = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                proc = subprocess.run(
                    self.host.argv(["sinfo", "-h", "-o", "%P"]),
                    capture_output=True,
                    timeout=self.probe_timeout,
                )
                if proc.returncode == 0:
                    self.answered.append(time.monotonic())
            except subprocess.TimeoutExpired:
                pass
            self._stop.wait(max(0.0, self.every - (time.monotonic() - began)))

    def __enter__(self) -> AnswerProbe:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.probe_timeout + 5)
        self.stopped = time.monotonic()

    def longest_silence(self) -> float:
        marks = [self.started, *self.answered, self.stopped]
        return max(b - a for a, b in itertools.pairwise(marks))


@dataclass
class Host:
    name: str
    address: str
    local_dir: Path
    env: dict[str, str]
    holder: subprocess.Popen[str] | None = None
    root: Path | None = None  # the Debian root its Slurm runs in (None: the host's)

    @property
    def netns(self) -> str:
        return f"pwbha-{self.name}"

    @property
    def veth(self) -> str:
        return f"vpwbha-{self.name}"

    def argv(self, argv: Sequence[str]) -> list[str]:
        assert self.holder is not None, f"{self.name} is not up"
        pid = str(self.holder.pid)
        env = [f"{k}={v}" for k, v in self.env.items()]
        chroot = ["chroot", str(self.root)] if self.root is not None else []
        return ["nsenter", "-t", pid, "-n", "-u", "-m", "--", *chroot, "env", *env, *argv]

    def run(self, argv: Sequence[str], check: bool = True, timeout: float = 60) -> str:
        return _run(self.argv(argv), check=check, timeout=timeout)

    def pidfile(self, daemon: str) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.local_dir / f"{daemon}.pid").read_text().split()[0])
        return None

    def daemon_pid(self, daemon: str) -> int | None:
        pid = self.pidfile(daemon)
        return pid if pid is not None and pid_alive(pid) else None

    def namespace_pids(self) -> list[int]:
        out = _run(["ip", "netns", "pids", self.netns], check=False)
        return [int(p) for p in out.split()]


@dataclass
class Cluster:
    """head, login nodes and compute1 on a bridge, with the pcluster-shaped slurm.conf."""

    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pwbha-")))
    hosts: dict[str, Host] = field(default_factory=dict)
    munged: subprocess.Popen[str] | None = None
    notes: dict[str, str] = field(default_factory=dict)  # test scratch: job ids and such
    watchers: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    root: Path | None = field(default_factory=slurm_root)  # PWBHA_SLURM_ROOT
    # Scheduling.SlurmSettings.Database set: pcluster's accounting lines in its include.
    accounting: bool = False

    @property
    def scripts(self) -> Path:
        """cluster/ha copied under base: reachable inside a root at the same path."""
        return self.base / "cluster-ha"

    @property
    def controller_ha_script(self) -> Path:
        return self.scripts / "controller-ha.sh"

    @property
    def etc(self) -> Path:
        """Stands in for /opt/slurm/etc on the cluster's internal EFS."""
        return self.base / "etc"

    @property
    def shared(self) -> Path:
        """Stands in for the HA directory on EFS (StateSaveLocation lives under it)."""
        return self.base / "efs" / "pwb-ha"

    @property
    def munge_socket(self) -> Path:
        return self.base / "munge" / "munge.socket"

    def start(self, names: Sequence[str] = ("head", "login1", "login2", "compute1")) -> None:
        remove_leftovers()
        self.base.chmod(0o755)
        for sub in ("etc", "efs", "munge", "hosts"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        shutil.copytree(HA_SCRIPTS, self.scripts, dirs_exist_ok=True)
        if self.root is not None and Path("/etc/localtime").is_file():
            shutil.copy("/etc/localtime", self.base / "localtime")
        LOCAL_MOUNT.mkdir(parents=True, exist_ok=True)
        self._start_munge()
        self._write_slurm_conf()
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=False)
        _run(["ip", "link", "set", BRIDGE, "up"])
        for name in names:
            self.add_host(name)

    def _start_munge(self) -> None:
        mdir = self.base / "munge"
        shutil.copy((self.root or Path("/")) / "etc" / "munge" / "munge.key", mdir / "munge.key")
        uid, gid = user_ids("munge", self.root)
        os.chown(mdir, uid, gid)
        os.chown(mdir / "munge.key", uid, gid)
        (mdir / "munge.key").chmod(0o600)
        mdir.chmod(0o755)
        prefix: list[str] = []
        if self.root is not None:
            # munged from the root, in a mount namespace of its own that holds the binds.
            mounts = root_mounts(self.root, [(self.base, self.base)])
            prefix = ["unshare", "--mount", "--propagation", "private", "--"]
            chroot = f'exec chroot {shlex.quote(str(self.root))} "$@"'
            prefix += ["sh", "-c", f"{mounts} && {chroot}", "munged"]
        self.munged = subprocess.Popen(
            [
                *prefix,
                "setpriv",
                "--reuid=munge",
                "--regid=munge",
                "--init-groups",
                "munged",
                "--foreground",
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={mdir / 'munge.key'}",
                f"--pid-file={mdir / 'munged.pid'}",
                f"--log-file={mdir / 'munged.log'}",
                f"--seed-file={mdir / 'munged.seed'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.monotonic() + 10
        while not self.munge_socket.exists():
            if time.monotonic() > deadline or self.munged.poll() is not None:
                raise RuntimeError(f"munged did not start; see {mdir / 'munged.log'}")
            time.sleep(0.05)

    def _write_slurm_conf(self) -> None:
        """What ParallelCluster writes, reduced to what runs here (plugins per
        REAL-COMPONENTS.md); no HA setting: those come from the project's scripts."""
        local = LOCAL_MOUNT
        (self.etc / "slurm.conf").write_text(
            "# Shaped like ParallelCluster's /opt/slurm/etc/slurm.conf\n"
            "ClusterName=pwbha\nSlurmUser=slurm\n"
            "SlurmctldPort=6820-6829\nSlurmdPort=6818\n"
            f"AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={self.munge_socket}\n"
            f"StateSaveLocation={local}/slurm.state\n"
            f"SlurmctldPidFile={local}/slurmctld.pid\nSlurmdPidFile={local}/slurmd.pid\n"
            f"SlurmdSpoolDir={local}/slurmd\n"
            f"SlurmctldLogFile={local}/slurmctld.log\nSlurmdLogFile={local}/slurmd.log\n"
            "SlurmctldTimeout=300\nSlurmdTimeout=300\nReturnToService=2\nMpiDefault=none\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
            "JobAcctGatherType=jobacct_gather/none\nSelectType=select/cons_tres\n"
            "include slurm_parallelcluster.conf\n"
        )
        (self.etc / "slurm_parallelcluster.conf").write_text(self.pcluster_include())
        if version_tuple(slurm_version(self.root)) >= (24, 5):
            # Nothing here uses cgroups (proctrack/linuxproc, no task plugin), but slurmd
            # 24.05+ initialises the cgroup plugin anyway and fails where /sys/fs/cgroup is
            # not mounted (a root's chroot). "disabled" exists from 24.05 (cgroup.conf(5)).
            (self.etc / "cgroup.conf").write_text("CgroupPlugin=disabled\n")

    def pcluster_include(self) -> str:
        """slurm_parallelcluster.conf as pcluster (re)writes it: the one head controller."""
        return (
            f"SlurmctldHost=head({SUBNET}.{ADDRESSES['head']})\n"
            f"NodeName=compute1 NodeAddr={SUBNET}.{ADDRESSES['compute1']} CPUs=1 "
            "State=UNKNOWN\n"
            "PartitionName=q Nodes=compute1 Default=YES MaxTime=INFINITE State=UP "
            "OverSubscribe=FORCE:8\n"
            + (
                # slurm_parallelcluster.conf with Database (cookbook's template).
                "AccountingStorageType=accounting_storage/slurmdbd\n"
                "AccountingStorageHost=head\nAccountingStoragePort=6819\n"
                "AccountingStorageUser=slurm\n"
                # Lab only, like AuthInfo above: for slurmdbd connections Slurm takes the
                # munge socket from AccountingStoragePass (slurm.conf(5)).
                f"AccountingStoragePass={self.munge_socket}\n"
                if self.accounting
                else ""
            )
        )

    def add_host(self, name: str) -> Host:
        address = f"{SUBNET}.{ADDRESSES[name]}"
        local = self.base / "hosts" / name
        local.mkdir(parents=True, exist_ok=True)
        (local / "slurmd").mkdir(exist_ok=True)
        os.chown(local, *user_ids("slurm", self.root))
        hosts_file = local / "hosts"
        hosts_file.write_text(
            "127.0.0.1 localhost\n" + "".join(f"{SUBNET}.{n} {h}\n" for h, n in ADDRESSES.items())
        )
        path = ROOT_PATH if self.root is not None else os.environ["PATH"]
        env = {"SLURM_CONF": str(self.etc / "slurm.conf"), "PATH": path}
        if self.root is not None and (self.base / "localtime").is_file():
            # Logs in the host's time zone (a minbase root has none: UTC), as the
            # benchmark reads their time stamps as local time.
            env["TZ"] = f":{self.base / 'localtime'}"
        host = Host(name, address, local, env, root=self.root)
        self.hosts[name] = host
        _run(["ip", "netns", "add", host.netns])
        _run(
            [
                "ip",
                "link",
                "add",
                host.veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                host.netns,
            ]
        )
        _run(["ip", "link", "set", host.veth, "master", BRIDGE, "up"])
        ns = ["ip", "-n", host.netns]
        _run([*ns, "addr", "add", f"{address}/24", "dev", "eth0"])
        _run([*ns, "link", "set", "eth0", "up"])
        _run([*ns, "link", "set", "lo", "up"])
        chroot = ""
        if self.root is not None:
            binds = [(local, LOCAL_MOUNT), (hosts_file, Path("/etc/hosts")), (self.base, self.base)]
            chroot = root_mounts(self.root, binds) + " && "
        script = (
            f"hostname {name} && mount --bind {local} {LOCAL_MOUNT} && "
            f"mount --bind {hosts_file} /etc/hosts && {chroot}echo ready && exec sleep infinity"
        )
        host.holder = subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{host.netns}",
                "unshare",
                "--uts",
                "--mount",
                "--propagation",
                "slave",
                "--",
                "sh",
                "-c",
                script,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert host.holder.stdout is not None
        if host.holder.stdout.readline().strip() != "ready":
            raise RuntimeError(f"host {name} did not come up: {host.holder.stderr}")
        return host

    def remove_host(self, name: str) -> None:
        """The host disappears: every process in it killed by PID, its namespace deleted."""
        self.stop_watcher(name)
        host = self.hosts.pop(name)
        for pid in host.namespace_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if host.holder is not None:
            host.holder.kill()
            host.holder.wait(timeout=10)
        _run(["ip", "link", "del", host.veth], check=False)
        _run(["ip", "netns", "del", host.netns], check=False)

    def controller_ha(self, name: str, role: str, *extra: str, slurmctld_timeout: int = 5) -> str:
        """Run the project's entry script on a host, as the node scripts will."""
        host = self.hosts[name]
        return host.run(
            [
                "bash",
                str(self.controller_ha_script),
                "--role",
                role,
                "--shared-dir",
                str(self.shared),
                "--slurmctld-timeout",
                str(slurmctld_timeout),
                "--slurm-etc",
                str(self.etc),
                "--slurm-prefix",
                "/usr",
                "--hostname",
                name,
                "--address",
                host.address,
                "--init",
                "none",
                "--munge-key-src",
                "none",
                "--local-dir",
                str(LOCAL_MOUNT / "ha"),
                "--install-dir",
                str(LOCAL_MOUNT / "ha" / "bin"),
                "--systemd-dir",
                str(LOCAL_MOUNT / "ha" / "systemd"),
                "--wait",
                "10",
                *extra,
            ],
            timeout=120,
        )

    def reconcile(self, name: str, *extra: str) -> str:
        host = self.hosts[name]
        return host.run(
            [
                "python3",
                str(LOCAL_MOUNT / "ha" / "bin" / "reconcile.py"),
                "--config",
                str(LOCAL_MOUNT / "ha" / "reconcile.json"),
                *extra,
            ],
            timeout=120,
        )

    def start_watcher(self, name: str, grace: float = 4.0) -> subprocess.Popen[str]:
        """The hand-back watcher (pwb-ha-handback.service), as its unit runs it; stopped by
        PID in close() (and with its host by remove_host)."""
        host = self.hosts[name]
        argv = host.argv(
            [
                "python3",
                str(LOCAL_MOUNT / "ha" / "bin" / "reconcile.py"),
                "--config",
                str(LOCAL_MOUNT / "ha" / "reconcile.json"),
                "--watch",
                "--watch-grace",
                str(grace),
            ]
        )
        log_file = open(host.local_dir / "handback-watch.log", "a")  # noqa: SIM115
        proc = subprocess.Popen(argv, stdout=log_file, stderr=log_file, text=True)
        log_file.close()
        self.watchers[name] = proc
        return proc

    def stop_watcher(self, name: str) -> None:
        proc = self.watchers.pop(name, None)
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def start_slurmctld(self, name: str) -> None:
        self.hosts[name].run(["slurmctld"])

    def start_slurmd(self, name: str) -> None:
        self.hosts[name].run(["slurmd"])

    def kill9(self, name: str, daemon: str = "slurmctld") -> None:
        pid = self.hosts[name].daemon_pid(daemon)
        if pid is None:
            raise RuntimeError(f"no {daemon} running on {name}")
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.01)

    def close(self) -> None:
        """Stop everything by PID and remove namespaces, veths and the bridge."""
        for name in list(self.watchers):
            with contextlib.suppress(Exception):
                self.stop_watcher(name)
        for host in list(self.hosts.values()):
            for daemon in ("slurmctld", "slurmd", "slurmdbd"):
                pid = host.daemon_pid(daemon)
                if pid is not None:
                    stop_pid(pid, grace=5)
        for name in list(self.hosts):
            with contextlib.suppress(Exception):
                self.remove_host(name)
        if self.munged is not None:
            self.munged.terminate()
            try:
                self.munged.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.munged.kill()
                self.munged.wait(timeout=5)
        _run(["ip", "link", "del", BRIDGE], check=False)
        shutil.rmtree(self.base, ignore_errors=True)
