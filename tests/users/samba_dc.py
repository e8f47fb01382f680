"""A real Samba AD domain controller in a network namespace, standing in for AWS SimpleAD.

The lab's harness (``pwbcluster.lab.network`` for the namespace and its ledger,
``pwbcluster.lab.samba`` for the DC), on a network of its own: the DC answers on
10.77.8.10 (namespace ``pwbad-dc``) behind the bridge ``pwbad0`` (10.77.8.1 on this
machine); only those names and the subnet 10.77.8.0/24 are touched. Like SimpleAD it has
no LDAPS and no StartTLS, and Samba's default ``ldap server require strong auth = yes``
is kept: plain simple binds are refused, so the tool's Kerberos-sealed path is what
every test exercises.

Provisioning takes about 11 s; the tests do it once per session. ``close()`` stops
Samba by its PID and removes everything the ledger lists (namespace, veth, bridge, work
directory); ``remove_leftovers()`` does the same for a run that was killed.

Also used by ``benchmarks/users``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pwbcluster.lab import samba
from pwbcluster.lab.network import Ledger, Net

NET = Net(prefix="pwbad", bridge="pwbad0", subnet="10.77.8.0/24")
NETNS = NET.netns("dc")
DC_ADDR = NET.address(10)
DOMAIN = "pwbtest.example"
REALM = DOMAIN.upper()
NETBIOS = "PWBTEST"
BASE_DN = "DC=pwbtest,DC=example"
DC_HOST = f"dc.{DOMAIN}"
ADMIN = samba.ADMIN


def unavailable_reason() -> str | None:
    """Why a Samba DC cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and a Samba AD DC); CI runs as root"
    missing = samba.missing_tools()
    if missing:
        return f"missing {'; '.join(missing)}: install requirements/apt-test.txt (bin/setup --test)"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "needs `ip netns` (iproute2) with network-namespace support"
    return None


def remove_leftovers() -> None:
    """Everything a run killed before its clean-up left (the ledger lists it)."""
    Ledger(NET).teardown()


@dataclass
class SambaDC:
    """One provisioned DC; ``start()`` provisions and starts it, ``close()`` removes all."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pwbad-")))
    admin_password: str = field(default_factory=lambda: "Adm1n-" + os.urandom(9).hex())
    dc: samba.SambaDC | None = None

    def start(self) -> SambaDC:
        remove_leftovers()
        ledger = Ledger(NET)
        try:
            ledger.directory(self.workdir, 0o700)
            ledger.namespace("dc", [DC_ADDR])
            self.dc = samba.SambaDC(
                workdir=self.workdir,
                netns=NETNS,
                address=DC_ADDR,
                domain=DOMAIN,
                admin_password=self.admin_password,
            )
            self.dc.provision()
            ledger.process("samba-dc", self.dc.start())
        except BaseException:
            self.close()
            raise
        return self

    @property
    def krb5_conf(self) -> Path:
        return self.workdir / "krb5.conf"

    def kinit(
        self, user: str, password: str, then: Sequence[str] = ()
    ) -> subprocess.CompletedProcess[str]:
        """A real kinit for ``user`` into a throw-away credential cache (then ``then``)."""
        assert self.dc is not None
        return self.dc.kinit(user, password, then)

    def samba_tool(self, *args: str, timeout: float = 60) -> str:
        """samba-tool on the DC's own database (no network)."""
        assert self.dc is not None
        return self.dc.samba_tool(*args, timeout=timeout)

    def close(self) -> None:
        if self.dc is not None:
            self.dc.stop()
        remove_leftovers()
        shutil.rmtree(self.workdir, ignore_errors=True)
