"""pwb-users against a real Samba AD DC without LDAPS (the SimpleAD path).

Passwords travel in a Kerberos-sealed SASL session (or over kpasswd); every created user
is then checked with a Kerberos login of its own (and a sample with the real ``kinit``).
The DC's own ``logonCount`` (Samba's KDC adds 1 per successful Kerberos login) shows that
an unchanged re-run logs nobody in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pwbcluster.stages.users import engine
from pwbcluster.stages.users.directory import (
    UAC_DISABLED,
    UAC_NORMAL,
    USER_CLASSES,
    AuthError,
    Target,
)
from pwbcluster.stages.users.spec import MANAGED_MARK, UserBatch
from pwbcluster.stages.users.store import FileStore

from .samba_dc import DC_ADDR, DOMAIN, SambaDC

pytestmark = [
    pytest.mark.root,
    pytest.mark.samba,
    pytest.mark.allow_hosts([DC_ADDR]),
]


def users_with_prefix(target: Target, password: str, prefix: str) -> dict[str, dict]:
    report = engine.list_users(target, password, UserBatch(count=99, prefix=prefix, digits=2))
    return {u["name"]: u for u in report.users}


def test_create_verify_rerun_delete(samba_dc: SambaDC, target: Target, tmp_path: Path) -> None:
    store = FileStore(tmp_path / "passwords.json")
    batch = UserBatch(
        count=6,
        prefix="cr",
        digits=3,
        start=7,
        uid_start=30007,
        gid_start=30000,
        admins=("cr007",),
        users_group="cr-users",
        admins_group="cr-admins",
    )

    first = engine.create(target, samba_dc.admin_password, batch, store)
    assert (first.created, first.verified, first.failed, first.verify_failed) == (6, 6, 0, 0), (
        first.failures
    )
    passwords = store.load()
    assert sorted(passwords) == [f"cr{n:03d}" for n in range(7, 13)]
    assert len(set(passwords.values())) == 6, "every user has its own password"
    assert (store.path.stat().st_mode & 0o777) == 0o600
    for name, password in passwords.items():
        proc = samba_dc.kinit(name, password)
        assert proc.returncode == 0, f"kinit {name}: {proc.stderr}"
    assert samba_dc.kinit("cr007", "not-the-password").returncode != 0

    listed = engine.list_users(target, samba_dc.admin_password, batch)
    assert [u["uid"] for u in listed.users] == list(range(30007, 30013))
    assert {u["gid"] for u in listed.users} == {30000}
    with engine.opened(target, samba_dc.admin_password, 1) as workers:
        session = workers.session()
        entry = session.search(
            "(sAMAccountName=cr009)", ["unixHomeDirectory", "loginShell", "memberOf"]
        )[0]
        groups = session.search("(sAMAccountName=cr-admins)", ["member", "gidNumber"])[0]
    assert entry["unixHomeDirectory"] == ["/home/cr009"] and entry["loginShell"] == ["/bin/bash"]
    assert any(str(g).startswith("CN=cr-users,") for g in entry["memberOf"])
    assert [str(m).split(",")[0] for m in groups["member"]] == ["CN=cr007"]
    assert [str(g) for g in groups["gidNumber"]] == ["30001"]

    again = engine.create(target, samba_dc.admin_password, batch, store)
    assert (again.created, again.completed, again.existing, again.verified) == (0, 0, 6, 0)
    assert again.logins == 0, "an unchanged re-run logs nobody in"
    assert store.load() == passwords, "a re-run changes no password"

    gone = engine.delete(target, samba_dc.admin_password, batch, store)
    assert (gone.deleted, gone.failed) == (6, 0)
    assert users_with_prefix(target, samba_dc.admin_password, "cr") == {}
    assert store.load() == {}


def logon_counts(target: Target, admin_password: str, prefix: str) -> dict[str, int]:
    """The DC's own record of Kerberos logins: Samba's KDC adds 1 to logonCount on each."""
    with engine.opened(target, admin_password, 1) as workers:
        found = workers.session().search(
            f"(&(objectClass=user)(sAMAccountName={prefix}*))", ["sAMAccountName", "logonCount"]
        )
    return {str(e["sAMAccountName"][0]): int((e.get("logonCount") or [0])[0]) for e in found}


def test_rerun_logs_nobody_in_and_verifies_existing_users_on_request(
    samba_dc: SambaDC, target: Target, tmp_path: Path
) -> None:
    store = FileStore(tmp_path / "passwords.json")
    batch = UserBatch(count=4, prefix="rv", digits=2)
    first = engine.create(target, samba_dc.admin_password, batch, store)
    assert (first.created, first.verified, first.logins, first.verify_failed) == (4, 4, 4, 0)
    after_create = logon_counts(target, samba_dc.admin_password, "rv")
    assert after_create == {f"rv{n:02d}": 1 for n in range(1, 5)}, "one login each, seen by the DC"

    again = engine.create(target, samba_dc.admin_password, batch, store)
    assert (again.existing, again.created, again.logins, again.verified) == (4, 0, 0, 0)
    assert logon_counts(target, samba_dc.admin_password, "rv") == after_create, (
        "the DC saw no login during the unchanged re-run"
    )

    checked = engine.create(target, samba_dc.admin_password, batch, store, verify_existing=True)
    assert (checked.existing, checked.logins, checked.verified, checked.verify_failed) == (
        4,
        4,
        4,
        0,
    )
    assert logon_counts(target, samba_dc.admin_password, "rv") == {
        f"rv{n:02d}": 2 for n in range(1, 5)
    }

    # Someone changes a password behind the tool's back: the stored one no longer works.
    samba_dc.samba_tool("user", "setpassword", "rv03", "--newpassword=Changed-Elsewhere-9")
    blind = engine.create(target, samba_dc.admin_password, batch, store)
    assert (blind.logins, blind.verify_failed) == (0, 0), "the default re-run only searches"
    caught = engine.create(target, samba_dc.admin_password, batch, store, verify_existing=True)
    assert (caught.verified, caught.verify_failed, caught.ok) == (3, 1, False)
    assert [name for name, _ in caught.failures] == ["rv03"]
    assert "login with its own password failed" in caught.failures[0][1]
    verified = engine.verify(target, samba_dc.admin_password, batch, store)
    assert (verified.verified, verified.verify_failed) == (3, 1)
    engine.delete(target, samba_dc.admin_password, batch, store)


def test_a_new_user_whose_password_does_not_work_is_caught(
    samba_dc: SambaDC, target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directory is given another password than the stored one for one new user."""
    real = engine.encode_password
    sent: list[str] = []

    def wrong_for_the_second(password: str) -> bytes:
        sent.append(password)
        return real(password + "-not-stored" if len(sent) == 2 else password)

    monkeypatch.setattr(engine, "encode_password", wrong_for_the_second)
    store = FileStore(tmp_path / "passwords.json")
    batch = UserBatch(count=3, prefix="np", digits=2)
    report = engine.create(target, samba_dc.admin_password, batch, store, concurrency=1)
    assert (report.created, report.verified, report.verify_failed, report.ok) == (3, 2, 1, False)
    broken = [name for name, pw in store.load().items() if pw == sent[1]]
    assert [name for name, _ in report.failures] == broken
    monkeypatch.undo()
    engine.delete(target, samba_dc.admin_password, batch, store)


def test_existing_foreign_user_is_left_alone(
    samba_dc: SambaDC, target: Target, tmp_path: Path
) -> None:
    samba_dc.samba_tool("user", "create", "ex0002", "Their-Own-Pw-42")
    store = FileStore(tmp_path / "passwords.json")
    report = engine.create(target, samba_dc.admin_password, UserBatch(count=3, prefix="ex"), store)
    assert (report.created, report.foreign, report.verified, report.failed) == (2, 1, 2, 0)
    assert "ex0002" not in store.load()
    assert samba_dc.kinit("ex0002", "Their-Own-Pw-42").returncode == 0, "its password is untouched"
    removed = engine.delete(target, samba_dc.admin_password, UserBatch(count=3, prefix="ex"), store)
    assert (removed.deleted, removed.foreign) == (2, 1), "delete spares what it did not make"


def test_rerun_completes_a_half_made_user_over_kpasswd(
    samba_dc: SambaDC, target: Target, tmp_path: Path
) -> None:
    """A run that died after the add: a disabled account of ours with no password."""
    kpasswd = Target(domain=DOMAIN, servers=(DC_ADDR,), password_method="kpasswd")
    with engine.opened(target, samba_dc.admin_password, 1) as workers:
        workers.session().add(
            f"CN=hm0001,CN=Users,{target.base_dn}",
            USER_CLASSES,
            {
                "sAMAccountName": "hm0001",
                "description": MANAGED_MARK,
                "userAccountControl": UAC_NORMAL | UAC_DISABLED,
            },
        )
    store = FileStore(tmp_path / "passwords.json")
    report = engine.create(kpasswd, samba_dc.admin_password, UserBatch(count=3, prefix="hm"), store)
    assert (report.completed, report.created, report.verified, report.failed) == (1, 2, 3, 0), (
        report.failures
    )
    for name, password in store.load().items():
        assert samba_dc.kinit(name, password).returncode == 0, name


def test_bad_admin_password_changes_nothing(
    samba_dc: SambaDC, target: Target, tmp_path: Path
) -> None:
    store = FileStore(tmp_path / "passwords.json")
    with pytest.raises(AuthError, match="refused the password"):
        engine.create(target, "Wrong-Password-1", UserBatch(count=3, prefix="bad"), store)
    assert not store.path.exists(), "no password stored"
    assert users_with_prefix(target, samba_dc.admin_password, "bad") == {}


def test_cli_create_list_delete_json(samba_dc: SambaDC, tmp_path: Path) -> None:
    env = {**os.environ, "PWB_USERS_ADMIN_PASSWORD": samba_dc.admin_password}
    common = ["--domain", DOMAIN, "--server", DC_ADDR, "--prefix", "cli", "--count", "3", "--json"]
    store = ["--password-store", f"file:{tmp_path / 'pw.json'}"]

    def tool(*args: str) -> tuple[int, dict, str]:
        proc = subprocess.run(
            [sys.executable, "-m", "pwbcluster.stages.users.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return (
            proc.returncode,
            json.loads(proc.stdout.strip().splitlines()[-1]),
            proc.stdout + proc.stderr,
        )

    rc, doc, out = tool("create", *common, *store)
    assert (rc, doc["created"], doc["verified"]) == (0, 3, 3), out
    passwords = json.loads((tmp_path / "pw.json").read_text())["users"]
    assert not any(p in out for p in passwords.values()), "no password printed"
    rc, doc, out = tool("create", *common, *store)
    assert (rc, doc["existing"], doc["logins"], doc["verified"]) == (0, 3, 0, 0), out
    rc, doc, out = tool("create", "--verify-existing", *common, *store)
    assert (rc, doc["existing"], doc["logins"], doc["verified"]) == (0, 3, 3, 3), out
    rc, doc, out = tool("list", *common)
    assert (rc, doc["existing"]) == (0, 3), out
    rc, doc, out = tool("verify", *common, *store)
    assert (rc, doc["verified"]) == (0, 3), out
    rc, doc, out = tool("delete", *common, *store)
    assert (rc, doc["deleted"]) == (0, 3), out


def test_stage_direct_path_returns_the_contract(
    samba_dc: SambaDC, target: Target, tmp_path: Path
) -> None:
    from pwbcluster.config import load_config
    from pwbcluster.stages.users import run as stage

    example = Path(__file__).resolve().parents[2] / "config" / "example.yaml"
    users_cfg = {
        **load_config(example).data["aux"]["users"],
        "count": 2,
        "prefix": "st",
        "digits": 2,
        "groups": {"users": "st-u", "admins": "st-a"},
    }
    out = stage.run_users_direct(
        target,
        users_cfg,
        samba_dc.admin_password,
        FileStore(tmp_path / "pw.json"),
        password_secret_arn="arn:aws:secretsmanager:eu-west-1:000000000000:secret:x",
    )
    assert (out.requested, out.created, out.verified, out.failed) == (2, 2, 2, 0)
    assert out.password_secret_arn.endswith(":secret:x")


def test_the_dc_stands_for_simplead_no_ldaps_no_plain_binds(samba_dc: SambaDC) -> None:
    import socket

    import ldap3

    with pytest.raises(OSError), socket.create_connection((DC_ADDR, 636), timeout=2):
        pass
    conn = ldap3.Connection(
        ldap3.Server(DC_ADDR, get_info=ldap3.NONE),
        user=f"Administrator@{DOMAIN}",
        password=samba_dc.admin_password,
    )
    conn.open()
    assert not conn.bind()
    assert conn.result["description"] == "strongerAuthRequired"
    conn.unbind()
