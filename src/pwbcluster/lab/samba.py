"""A real Samba AD domain controller in a network namespace, standing in for AWS SimpleAD.

Like SimpleAD it has no LDAPS and no StartTLS (``tls enabled = no``): the services
stage puts a TLS front on 636 before it (``pwbcluster.lab.tlsfront`` stands in for that
load balancer), and passwords can otherwise only be set over Kerberos (kpasswd) or a
sealed SASL session. ``strong_auth`` (Samba's ``ldap server require strong auth``) says
whether a simple bind on plain 389 is refused (the users tests) or accepted (behind the
cluster lab's TLS front, which forwards plain LDAP to 389 as the stage's NLB does).

The caller makes the namespace (``pwbcluster.lab.network``); this module provisions the
domain into ``workdir`` and starts ``samba`` in that namespace with a known pid file.
Provisioning takes about 11 s here. Used by the cluster lab and by tests/users.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pwbcluster.errors import ToolkitError
from pwbcluster.lab.network import run, stop_pid

ADMIN = "Administrator"
TOOLS = {
    "samba": "samba (apt-get install samba)",
    "samba-tool": "samba-tool (apt-get install samba)",
    "kinit": "kinit (apt-get install krb5-user)",
    "kvno": "kvno (apt-get install krb5-user)",
    "ip": "ip (apt-get install iproute2)",
    "nsenter": "nsenter (apt-get install util-linux)",
}


# samba-tool's interpreter, the one with Samba's Python bindings.
SAMBA_PYTHON = "/usr/bin/python3"
_ENSURE_USER = """
import sys
from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB
name, conf, url = sys.argv[1:4]
password = sys.stdin.readline().rstrip("\\n")
lp = LoadParm()
lp.load(conf)
db = SamDB(url=url, session_info=system_session(), lp=lp)
found = db.search(expression="(sAMAccountName=%s)" % name, attrs=["dn"])
if found:
    db.setpassword("(sAMAccountName=%s)" % name, password)
    print("updated")
else:
    db.newuser(name, password)
    print("created")
"""


def missing_tools() -> list[str]:
    """The DC's tools that are not installed, each with the package that brings it."""
    return [hint for tool, hint in TOOLS.items() if shutil.which(tool) is None]


def wait_port(addr: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((addr, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise ToolkitError(f"{addr}:{port} did not answer within {timeout:.0f} s") from None
            time.sleep(0.1)


@dataclass
class SambaDC:
    """One DC of ``domain`` answering on ``address`` inside namespace ``netns``."""

    workdir: Path
    netns: str
    address: str
    domain: str
    admin_password: str
    host_name: str = "dc"
    # Samba's ``ldap server require strong auth``. "yes" (Samba's default) refuses a
    # simple bind on plain 389, which the users tests rely on. The cluster lab says "no":
    # the services stage's TLS front (as ParallelCluster's AD tutorial's NLB) forwards the
    # decrypted stream to 389, so the design presumes the AWS directory accepts simple
    # binds there; the lab cannot confirm that AWS's SimpleAD does.
    strong_auth: str = "yes"
    pid: int | None = None

    @property
    def realm(self) -> str:
        return self.domain.upper()

    @property
    def netbios(self) -> str:
        return self.domain.split(".")[0].upper()[:15]

    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={part}" for part in self.domain.split("."))

    @property
    def fqdn(self) -> str:
        return f"{self.host_name}.{self.domain}"

    @property
    def target(self) -> Path:
        return self.workdir / "dc"

    @property
    def smb_conf(self) -> Path:
        return self.target / "etc" / "smb.conf"

    @property
    def pidfile(self) -> Path:
        return self.target / "run" / "samba.pid"

    @property
    def krb5_conf(self) -> Path:
        return self.workdir / "krb5.conf"

    @property
    def sam(self) -> str:
        return f"-H{self.target / 'private' / 'sam.ldb'}"

    def provisioned(self) -> bool:
        # Written last: a provisioning cut short is redone, not taken for a DC.
        return (self.target / "provisioned").exists()

    def provision(self) -> None:
        """``samba-tool domain provision`` (once: a provisioned target is kept)."""
        if self.provisioned():
            return
        shutil.rmtree(self.target, ignore_errors=True)
        # provision takes the administrator's password on its command line only, where
        # `ps` shows it: it gets a throw-away one, and the real one is set over stdin.
        throwaway = "Pr0v-" + os.urandom(12).hex()
        # In the namespace, like everything of the DC's: a clean-up finds it there.
        run(
            self.ns(
                [
                    "samba-tool",
                    "domain",
                    "provision",
                    f"--realm={self.realm}",
                    f"--domain={self.netbios}",
                    "--server-role=dc",
                    "--dns-backend=SAMBA_INTERNAL",
                    "--use-rfc2307",
                    f"--host-ip={self.address}",
                    f"--host-name={self.host_name}",
                    f"--targetdir={self.target}",
                    f"--adminpass={throwaway}",
                    f"--option=interfaces = lo {self.address}",
                    "--option=bind interfaces only = yes",
                    f"--option=pid directory = {self.target / 'run'}",
                ]
            ),
            timeout=180,
        )
        self._configure()
        # Tests must not trip over password expiry or history.
        self.samba_tool(
            "domain",
            "passwordsettings",
            "set",
            "--max-pwd-age=0",
            "--history-length=0",
            "--min-pwd-age=0",
        )
        self.ensure_user(ADMIN, self.admin_password)
        (self.target / "provisioned").write_text("")

    def _configure(self) -> None:
        """Settings provision does not keep: they go into [global] of the DC's smb.conf."""
        settings = [
            # Stand for SimpleAD: no LDAPS, no StartTLS.
            "tls enabled = no",
            f"ldap server require strong auth = {self.strong_auth}",
            f"log file = {self.target / 'log'}/%m.log",
            "log level = 1",
            # Nothing to forward to: the lab has no way out.
            "dns forwarder = 127.0.0.1",
        ]
        (self.target / "log").mkdir(exist_ok=True)
        text = self.smb_conf.read_text(encoding="utf-8")
        lines = "".join(f"\t{line}\n" for line in settings)
        self.smb_conf.write_text(text.replace("[global]\n", "[global]\n" + lines, 1))

    def ns(self, argv: Sequence[str]) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.netns}", *argv]

    def start(self) -> int:
        """Start samba in the namespace (or find the one running); its PID."""
        running = self.running_pid()
        if running is None:
            self.pidfile.unlink(missing_ok=True)
            run(self.ns(["samba", "-s", str(self.smb_conf), "-D"]), timeout=60)
            deadline = time.monotonic() + 20
            while (running := self.running_pid()) is None:
                if time.monotonic() > deadline:
                    raise ToolkitError(f"samba wrote no {self.pidfile}; see {self.target / 'log'}")
                time.sleep(0.1)
        self.pid = running
        for port in (389, 88, 464):
            wait_port(self.address, port, 30)
        self._wait_kdc()
        return running

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        # samba rewrites its command line ("samba: root process"): it is ours when it
        # runs the samba binary in our namespace.
        try:
            exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
            same_ns = (
                os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{self.netns}").st_ino
            )
        except OSError:
            return None
        return pid if exe == "samba" and same_ns else None

    def _wait_kdc(self) -> None:
        """The ports open before the KDC answers, and samba_spnupdate registers the
        ``ldap/`` service principal a few seconds after start: wait for both."""
        self.write_krb5_conf()
        deadline = time.monotonic() + 60
        while True:
            proc = self.kinit(ADMIN, self.admin_password, then=["kvno", f"ldap/{self.fqdn}"])
            if proc.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise ToolkitError(f"KDC not ready: {proc.stderr.strip()}")
            time.sleep(0.3)

    def write_krb5_conf(self) -> None:
        self.krb5_conf.write_text(
            "[libdefaults]\n"
            f"  default_realm = {self.realm}\n"
            "  dns_lookup_kdc = false\n  dns_lookup_realm = false\n  rdns = false\n"
            f"[realms]\n  {self.realm} = {{\n    kdc = {self.address}\n"
            f"    admin_server = {self.address}\n    kpasswd_server = {self.address}\n  }}\n",
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
            ["sh", "-c", script, "kinit", f"{user}@{self.realm}", *then],
            input=password + "\n",
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )

    def samba_tool(self, *args: str, timeout: float = 60) -> str:
        """samba-tool on the DC's own database (no network)."""
        return run(["samba-tool", *args, self.sam], timeout=timeout)

    def ensure_user(self, name: str, password: str) -> bool:
        """A user with ``password`` (created, or its password set); True when created.

        Through Samba's own Python bindings (samba-tool's interpreter), with the password
        on stdin: never on a command line, where ``ps`` would show it."""
        proc = subprocess.run(
            [SAMBA_PYTHON, "-c", _ENSURE_USER, name, str(self.smb_conf), self.sam[2:]],
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise ToolkitError(f"cannot create directory user {name}: {proc.stderr.strip()[-300:]}")
        return proc.stdout.strip() == "created"

    def stop(self) -> None:
        pid = self.pid or self.running_pid()
        if pid is not None:
            stop_pid(pid)
        self.pid = None
