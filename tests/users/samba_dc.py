"""A real Samba AD domain controller in a network namespace, standing in for AWS SimpleAD.

The DC answers on 10.77.8.10 (namespace ``pwbad-dc``) behind the bridge ``pwbad0``
(10.77.8.1 on this machine); only those names and the subnet 10.77.8.0/24 are touched.
Like SimpleAD it has no LDAPS and no StartTLS (``tls enabled = no``), so passwords can
only be set over Kerberos (kpasswd) or a sealed SASL session. Samba's default
``ldap server require strong auth = yes`` is kept: plain simple binds are refused, so
the tool's Kerberos-sealed path is what every test exercises.

Provisioning takes about 11 s; the tests do it once per session. Samba is started with a
known pid file and stopped by that PID; ``close()`` removes the namespace, veths and the
bridge, and ``remove_leftovers()`` cleans what a killed run left behind.

Also used by ``benchmarks/users``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

BRIDGE = "pwbad0"
NETNS = "pwbad-dc"
VETH_HOST = "pwbad-dc-h"
VETH_NS = "pwbad-dc-n"
HOST_ADDR = "10.77.8.1"
DC_ADDR = "10.77.8.10"
DC_HOST = "dc.pwbtest.example"
PREFIX_LEN = 24
DOMAIN = "pwbtest.example"
REALM = DOMAIN.upper()
NETBIOS = "PWBTEST"
BASE_DN = "DC=pwbtest,DC=example"
ADMIN = "Administrator"
TOOLS = ("samba", "samba-tool", "kinit", "ip", "nsenter")


def _run(argv: Sequence[str], check: bool = True, timeout: float = 60, **kw: object) -> str:
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, **kw
    )  # type: ignore[call-overload]
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return str(proc.stdout)


def unavailable_reason() -> str | None:
    """Why a Samba DC cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and a Samba AD DC); CI runs as root"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing {', '.join(missing)}: install requirements/apt-test.txt (bin/setup --test)"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "needs `ip netns` (iproute2) with network-namespace support"
    return None


def stop_pid(pid: int, grace: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: one process, by its PID."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def remove_leftovers() -> None:
    """The namespace and bridge of a run that was killed before its clean-up."""
    if NETNS in _run(["ip", "netns", "list"], check=False).split():
        for pid in _run(["ip", "netns", "pids", NETNS], check=False).split():
            stop_pid(int(pid), grace=3)
        _run(["ip", "netns", "del", NETNS], check=False)
    _run(["ip", "link", "del", VETH_HOST], check=False)
    _run(["ip", "link", "del", BRIDGE], check=False)


def wait_port(addr: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((addr, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{addr}:{port} did not answer within {timeout:.0f} s") from None
            time.sleep(0.1)


@dataclass
class SambaDC:
    """One provisioned DC; ``start()`` provisions and starts it, ``close()`` removes all."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pwbad-")))
    admin_password: str = field(default_factory=lambda: "Adm1n-" + os.urandom(9).hex())
    pid: int | None = None

    @property
    def target(self) -> Path:
        return self.workdir / "dc"

    @property
    def smb_conf(self) -> Path:
        return self.target / "etc" / "smb.conf"

    @property
    def krb5_conf(self) -> Path:
        return self.workdir / "krb5.conf"

    def ns(self, argv: Sequence[str]) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{NETNS}", *argv]

    def start(self) -> SambaDC:
        remove_leftovers()
        try:
            self._network()
            self._provision()
            self._start_samba()
            self._write_krb5_conf()
        except BaseException:
            self.close()
            raise
        return self

    def _network(self) -> None:
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        _run(["ip", "addr", "add", f"{HOST_ADDR}/{PREFIX_LEN}", "dev", BRIDGE])
        _run(["ip", "link", "set", BRIDGE, "up"])
        _run(["ip", "netns", "add", NETNS])
        _run(["ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS])
        _run(["ip", "link", "set", VETH_NS, "netns", NETNS])
        _run(["ip", "link", "set", VETH_HOST, "master", BRIDGE])
        _run(["ip", "link", "set", VETH_HOST, "up"])
        ns = ["ip", "-n", NETNS]
        _run([*ns, "addr", "add", f"{DC_ADDR}/{PREFIX_LEN}", "dev", VETH_NS])
        _run([*ns, "link", "set", VETH_NS, "up"])
        _run([*ns, "link", "set", "lo", "up"])

    def _provision(self) -> None:
        _run(
            [
                "samba-tool",
                "domain",
                "provision",
                f"--realm={REALM}",
                f"--domain={NETBIOS}",
                "--server-role=dc",
                "--dns-backend=SAMBA_INTERNAL",
                "--use-rfc2307",
                f"--host-ip={DC_ADDR}",
                "--host-name=dc",
                f"--targetdir={self.target}",
                f"--adminpass={self.admin_password}",
                f"--option=interfaces = lo {DC_ADDR}",
                "--option=bind interfaces only = yes",
                f"--option=pid directory = {self.target / 'run'}",
            ],
            timeout=180,
        )
        self._configure()
        # Tests must not trip over password expiry or history.
        _run(
            [
                "samba-tool",
                "domain",
                "passwordsettings",
                "set",
                "--max-pwd-age=0",
                "--history-length=0",
                "--min-pwd-age=0",
                f"-H{self.target / 'private' / 'sam.ldb'}",
            ],
            timeout=60,
        )

    def _configure(self) -> None:
        """Settings provision does not keep: they go into [global] of the DC's smb.conf."""
        settings = [
            # Stand for SimpleAD: no LDAPS, no StartTLS.
            "tls enabled = no",
            f"log file = {self.target / 'log'}/%m.log",
            "log level = 1",
            # Nothing to forward to: the tests stay inside the namespace.
            "dns forwarder = 127.0.0.1",
        ]
        (self.target / "log").mkdir(exist_ok=True)
        text = self.smb_conf.read_text(encoding="utf-8")
        lines = "".join(f"\t{line}\n" for line in settings)
        self.smb_conf.write_text(text.replace("[global]\n", "[global]\n" + lines, 1))

    def _start_samba(self) -> None:
        _run(self.ns(["samba", "-s", str(self.smb_conf), "-D"]), timeout=60)
        pidfile = self.target / "run" / "samba.pid"
        deadline = time.monotonic() + 20
        while not pidfile.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"samba wrote no {pidfile}")
            time.sleep(0.1)
        self.pid = int(pidfile.read_text().split()[0])
        wait_port(DC_ADDR, 389, 30)
        wait_port(DC_ADDR, 88, 30)
        wait_port(DC_ADDR, 464, 30)
        self._wait_kdc()

    def _wait_kdc(self) -> None:
        """The ports open before the KDC answers, and samba_spnupdate registers the
        ``ldap/`` service principal a few seconds after start: wait for both."""
        self._write_krb5_conf()
        deadline = time.monotonic() + 60
        while True:
            proc = self.kinit(ADMIN, self.admin_password, then=["kvno", f"ldap/{DC_HOST}"])
            if proc.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"KDC not ready: {proc.stderr.strip()}")
            time.sleep(0.3)

    def _write_krb5_conf(self) -> None:
        self.krb5_conf.write_text(
            "[libdefaults]\n"
            f"  default_realm = {REALM}\n"
            "  dns_lookup_kdc = false\n  dns_lookup_realm = false\n  rdns = false\n"
            f"[realms]\n  {REALM} = {{\n    kdc = {DC_ADDR}\n"
            f"    admin_server = {DC_ADDR}\n    kpasswd_server = {DC_ADDR}\n  }}\n",
            encoding="utf-8",
        )

    def kinit(
        self, user: str, password: str, then: Sequence[str] = ()
    ) -> subprocess.CompletedProcess[str]:
        """A real kinit for ``user`` into a throw-away credential cache (then ``then``)."""
        cache = self.workdir / f"ccache-{user}-{os.getpid()}"
        env = {**os.environ, "KRB5_CONFIG": str(self.krb5_conf), "KRB5CCNAME": f"FILE:{cache}"}
        script = 'kinit "$1" >/dev/null && shift && { [ $# -eq 0 ] || "$@"; }; rc=$?; kdestroy 2>/dev/null; exit $rc'
        return subprocess.run(
            ["sh", "-c", script, "kinit", f"{user}@{REALM}", *then],
            input=password + "\n",
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )

    def samba_tool(self, *args: str, timeout: float = 60) -> str:
        """samba-tool on the DC's own database (no network)."""
        return _run(
            ["samba-tool", *args, f"-H{self.target / 'private' / 'sam.ldb'}"], timeout=timeout
        )

    def close(self) -> None:
        if self.pid is not None:
            stop_pid(self.pid)
            self.pid = None
        remove_leftovers()
        shutil.rmtree(self.workdir, ignore_errors=True)
