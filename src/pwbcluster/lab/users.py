"""Directory users in the cluster lab, made by ``pwb-users`` on the jump host's path.

The jump host is not stood up: ``pwb-users`` runs in the lab's ``pwblab-ops`` namespace
(the jump host's place on the network: it reaches the DC directly, not through the LDAPS
front), with the administrator secret the services stage made, as the users stage runs
it there. Its passwords go to a file store in the lab's work directory (the stage's
default store is Secrets Manager; moto would do, the file is simpler to read back).

Then, on a node: ``getent passwd`` (sssd, ldap_id_mapping), ``kinit`` against the DC
(with a krb5.conf the lab writes: ParallelCluster configures no Kerberos client, so this
is the lab's file, not the cluster's), and PAM through pam_sss (``pamtester``):
authenticate with the stored password, and acct_mgmt, where sssd's access_provider = ldap
applies LdapAccessFilter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pwbcluster.errors import ToolkitError

if TYPE_CHECKING:
    from pwbcluster.lab.nodes import Node
    from pwbcluster.lab.services import Lab

ALLOWED_PREFIX = "labu"
OUTSIDER_PREFIX = "labx"
# A group LdapAccessFilter does not name (the filter allows pwb-users and pwb-admins).
OUTSIDER_GROUP = "lab-outsiders"
KRB5_CONF = "/etc/pwblab-krb5.conf"


@dataclass
class Users:
    allowed: list[str]
    outsiders: list[str]
    passwords: dict[str, str]


def store(lab: Lab) -> Path:
    return lab.workdir / "users-passwords.json"


def pwb_users(lab: Lab, prefix: str, count: int, *extra: str) -> dict[str, object]:
    """``pwb-users create`` in the ops namespace; its JSON report."""
    from pwbcluster.lab.services import OPS
    from pwbcluster.pipeline import orchestrate

    services = orchestrate.recorded(lab.config, "sandbox", "services")
    if services is None:
        raise ToolkitError("the lab's sandbox run recorded no services stage outputs")
    argv = [sys.executable, "-m", "pwbcluster.stages.users.cli", "create"]
    argv += ["--domain", services.domain_name, "--server", lab.addr("dc")]
    argv += ["--admin-secret-arn", services.admin_password_secret_arn]
    argv += ["--prefix", prefix, "--count", str(count), "--json"]
    argv += ["--password-store", f"file:{store(lab)}", *extra]
    done = subprocess.run(
        lab.ledger.exec(lab.net.netns(OPS), argv),
        env={**os.environ, **lab.aws_env()},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise ToolkitError(f"pwb-users create failed ({done.returncode}): {done.stderr[-800:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def make(lab: Lab, count: int = 2) -> Users:
    lab.ledger.record("path", str(store(lab)))
    pwb_users(lab, ALLOWED_PREFIX, count)
    pwb_users(lab, OUTSIDER_PREFIX, 1, "--users-group", OUTSIDER_GROUP)
    passwords = dict(json.loads(store(lab).read_text())["users"])
    allowed = sorted(u for u in passwords if u.startswith(ALLOWED_PREFIX))
    outsiders = sorted(u for u in passwords if u.startswith(OUTSIDER_PREFIX))
    return Users(allowed, outsiders, passwords)


def krb5_conf(lab: Lab, node: Node) -> None:
    realm = str(lab.ledger.meta["domain"]).upper()
    node.write(
        KRB5_CONF,
        "# The cluster lab's Kerberos client settings (ParallelCluster writes none)\n"
        f"[libdefaults]\n  default_realm = {realm}\n  dns_lookup_kdc = false\n"
        f"  dns_lookup_realm = false\n\n[realms]\n  {realm} = {{\n"
        f"    kdc = {lab.addr('dc')}\n  }}\n",
    )


def getent(node: Node, user: str) -> subprocess.CompletedProcess[str]:
    return node.run(["getent", "passwd", user], timeout=60)


def kinit(lab: Lab, node: Node, user: str, password: str) -> subprocess.CompletedProcess[str]:
    krb5_conf(lab, node)
    script = f'printf "%s\\n" "$1" | kinit -c MEMORY: "$2@{str(lab.ledger.meta["domain"]).upper()}"'
    return node.run(
        ["bash", "-c", script, "kinit", password, user], timeout=60, env={"KRB5_CONFIG": KRB5_CONF}
    )


def pam(node: Node, user: str, password: str, *operations: str) -> subprocess.CompletedProcess[str]:
    """pamtester with the node's "login" PAM stack (common-auth/-account: pam_sss)."""
    script = 'printf "%s\\n" "$1" | pamtester login "$2" "${@:3}"'
    return node.run(["bash", "-c", script, "pam", password, user, *operations], timeout=60)
