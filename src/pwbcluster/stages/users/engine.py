"""create / delete / list / verify a batch of directory users.

``create`` is idempotent and resumable:
1. the batch is checked (nothing sent to the directory if it is wrong);
2. the administrator binds (a refused password stops here: nothing created);
3. the groups exist (created with gidNumbers if not);
4. the directory is read once: which users exist, which of them this tool made
   (``description`` marker), which are complete (enabled, password set);
5. passwords for the users still to make are drawn and written to the store first;
6. users are created by a bounded pool of workers, each with its own connection,
   retrying busy answers; existing users are left alone (``update=True`` refreshes their
   POSIX attributes); half-made ones of ours are completed;
7. memberships are added in a few large modifies;
8. every user this run gave a password (created, or completed) is verified with a
   Kerberos login of its own, overlapping with the writes of the next users.

Users that were already complete are not logged in again unless ``verify_existing`` is
asked for: an unchanged re-run costs the bind and a few (paged) searches, no login per
user. A login is not free on the directory: Samba's KDC (source4/auth/sam.c,
``authsam_logon_success_accounting``) writes ``lastLogon`` and ``logonCount`` on every
successful Kerberos login, and ``lastLogonTimestamp`` on a user's first one, each in its
own transaction (one flush of the database to disk). Measured on the disk-backed test
DC: 8 fdatasync calls for an add, 8 for a new user's first login, 4 for each later
login; a refused login left ``badPwdCount`` and ``badPasswordTime`` unchanged (the test
domain has no lockout threshold; a directory with one counts bad passwords). A new user's first successful login writes by
any method (an NTLM logon writes ``logonCount`` and ``lastLogonTimestamp`` then), so
verifying a new user cannot be free; re-verifying an old one is what the default avoids.
"""

from __future__ import annotations

import functools
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import ldap3

from pwbcluster.stages.users.directory import (
    GLOBAL_SECURITY_GROUP,
    GROUP_CLASSES,
    UAC_DISABLED,
    UAC_DONT_EXPIRE,
    UAC_ENABLED_USER,
    UAC_NORMAL,
    USER_ATTRS,
    USER_CLASSES,
    DirectoryError,
    Retryable,
    Session,
    Target,
    encode_password,
    escape,
    with_retries,
)
from pwbcluster.stages.users.krb5 import KerberosError
from pwbcluster.stages.users.spec import MANAGED_MARK, UserBatch, generate_password
from pwbcluster.stages.users.store import PasswordStore
from pwbcluster.stages.users.workers import Report, Workers, opened

log = logging.getLogger(__name__)
DEFAULT_CONCURRENCY = 4
MEMBER_CHUNK = 500


def _user_dn(target: Target, name: str) -> str:
    return f"CN={name},{target.container}"


def _existing(session: Session, batch: UserBatch) -> dict[str, dict[str, Any]]:
    flt = f"(&(objectCategory=person)(objectClass=user)(sAMAccountName={escape(batch.prefix)}*))"
    found = session.search(flt, USER_ATTRS)
    return {str(_one(e.get("sAMAccountName"))).lower(): e for e in found}


def _one(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _is_ours(entry: dict[str, Any]) -> bool:
    return MANAGED_MARK in [str(d) for d in (entry.get("description") or [])]


def _is_complete(entry: dict[str, Any]) -> bool:
    uac = int(_one(entry.get("userAccountControl")) or 0)
    pwd_last_set = _one(entry.get("pwdLastSet"))
    never = pwd_last_set in (None, 0, "0") or (
        hasattr(pwd_last_set, "year") and pwd_last_set.year <= 1601
    )
    return not (uac & UAC_DISABLED) and not never


def _posix(batch: UserBatch, index: int, name: str) -> dict[str, Any]:
    return {
        "uidNumber": batch.uid(index),
        "gidNumber": batch.users_gid,
        "unixHomeDirectory": batch.home(name),
        "loginShell": batch.shell,
    }


def ensure_groups(session: Session, batch: UserBatch) -> dict[str, str]:
    """The users and admins groups (with gidNumbers): their DNs, created if missing."""
    dns: dict[str, str] = {}
    for name, gid in ((batch.users_group, batch.users_gid), (batch.admins_group, batch.admins_gid)):
        found = session.search(
            f"(&(objectClass=group)(sAMAccountName={escape(name)}))", ["gidNumber"]
        )
        if found:
            dns[name] = found[0]["dn"]
            continue
        dn = f"CN={name},{session.target.container}"
        attrs = {
            "sAMAccountName": name,
            "groupType": GLOBAL_SECURITY_GROUP,
            "gidNumber": gid,
            "description": MANAGED_MARK,
        }
        with_retries(f"add group {name}", functools.partial(session.add, dn, GROUP_CLASSES, attrs))
        dns[name] = dn
        log.info("created group %s (gid %d)", name, gid)
    return dns


def _add_members(session: Session, group_dn: str, member_dns: list[str]) -> None:
    current = session.search(f"(distinguishedName={escape(group_dn)})", ["member"])
    have = {str(m).lower() for m in (current[0].get("member") or [])} if current else set()
    missing = [dn for dn in member_dns if dn.lower() not in have]
    for i in range(0, len(missing), MEMBER_CHUNK):
        chunk = missing[i : i + MEMBER_CHUNK]
        change = {"member": [(ldap3.MODIFY_ADD, chunk)]}
        with_retries(
            f"members of {group_dn}",
            functools.partial(session.modify, group_dn, change, tolerate=(68,)),
        )


def create(
    target: Target,
    admin_password: str,
    batch: UserBatch,
    store: PasswordStore,
    concurrency: int = DEFAULT_CONCURRENCY,
    update: bool = False,
    verify_after: bool = True,
    verify_existing: bool = False,
) -> Report:
    batch.check()
    report = Report("create", requested=batch.count)
    began = time.monotonic()
    with opened(target, admin_password, concurrency) as workers:
        main = workers.session()
        groups = ensure_groups(main, batch)
        existing = _existing(main, batch)
        passwords = store.load()
        wanted = passwords.copy()
        todo: list[tuple[int, str, str]] = []  # (index, name, kind) kind: create|complete|update
        for index, name in enumerate(batch.names()):
            entry = existing.get(name)
            if entry is None or (_is_ours(entry) and not _is_complete(entry)):
                wanted.setdefault(name, generate_password())
                todo.append((index, name, "create" if entry is None else "complete"))
            elif not _is_ours(entry):
                report.foreign += 1
            else:
                report.existing += 1
                if update:
                    todo.append((index, name, "update"))
        if wanted != passwords:
            store.save(wanted)  # before the directory changes: no password is ever lost
            log.info("stored %d passwords in %s", len(wanted), store.describe())

        # Writers and verifiers run side by side: the directory serialises its writes (one
        # transaction at a time), so Kerberos logins of the users already made overlap
        # with the writes of the next ones instead of stalling them.
        verifier = ThreadPoolExecutor(workers.concurrency, thread_name_prefix="pwb-verify")
        pending: list[tuple[str, Future[tuple[bool, str]]]] = []

        def make(item: tuple[int, str, str]) -> tuple[str, str, str | None]:
            index, name, kind = item
            try:
                with_retries(
                    name, lambda: _make_one(workers.session(), batch, index, name, kind, wanted)
                )
            except DirectoryError as exc:
                return name, kind, str(exc)
            if verify_after and kind != "update" and name in wanted:
                pending.append(
                    (name, verifier.submit(_check_login, workers, report, name, wanted[name]))
                )
            return name, kind, None

        phase = time.monotonic()
        try:
            for name, kind, error in workers.map(make, todo):
                if error:
                    report.failed += 1
                    report.failures.append((name, error))
                    continue
                attr = {"create": "created", "complete": "completed", "update": "updated"}[kind]
                setattr(report, attr, getattr(report, attr) + 1)
            checks = [(name, future.result()) for name, future in pending]
        finally:
            verifier.shutdown(wait=True, cancel_futures=True)
        log.info("%d users written in %.1f s", len(todo), time.monotonic() - phase)
        phase = time.monotonic()
        failed = {n for n, _ in report.failures}
        members = [_user_dn(target, n) for n in batch.names() if n not in failed and (n in wanted)]
        _add_members(main, groups[batch.users_group], members)
        admin_dns = _admin_dns(main, batch)
        if admin_dns:
            _add_members(main, groups[batch.admins_group], admin_dns)
        log.info("memberships in %.1f s", time.monotonic() - phase)
        if verify_after:
            phase = time.monotonic()
            done = {n for n, _ in checks}
            rest = []
            if verify_existing:
                rest = [
                    n for n in batch.names() if n in wanted and n not in failed and n not in done
                ]
            rest = [n for n in rest if _known_complete(existing.get(n))]
            checks.extend(
                workers.map(lambda n: (n, _check_login(workers, report, n, wanted[n])), rest)
            )
            _count_checks(report, checks)
            if rest:
                log.info(
                    "%d existing users verified in %.1f s", len(rest), time.monotonic() - phase
                )
            unchecked = report.existing - len(rest)
            if unchecked and not verify_existing:
                log.info(
                    "%d existing users not logged in again (ask with verify_existing)", unchecked
                )
    report.seconds = round(time.monotonic() - began, 3)
    return report


def _admin_dns(session: Session, batch: UserBatch) -> list[str]:
    dns = []
    for admin in batch.admins:
        found = session.search(f"(&(objectClass=user)(sAMAccountName={escape(admin)}))", [])
        if not found:
            raise DirectoryError(f"admin {admin!r} (aux.users.admins) is not a directory user")
        dns.append(found[0]["dn"])
    return dns


def _make_one(
    session: Session, batch: UserBatch, index: int, name: str, kind: str, passwords: dict[str, str]
) -> None:
    dn = _user_dn(session.target, name)
    posix = _posix(batch, index, name)
    if kind == "update":
        session.modify(dn, {k: [(ldap3.MODIFY_REPLACE, [v])] for k, v in posix.items()})
        return
    password = passwords[name]
    if kind == "create":
        attrs: dict[str, Any] = {
            "sAMAccountName": name,
            "userPrincipalName": f"{name}@{session.target.domain}",
            "displayName": name,
            "description": MANAGED_MARK,
            **posix,
        }
        if session.target.password_method == "ldap":
            # One add, password included, enabled: the account never exists half-made.
            attrs["unicodePwd"] = encode_password(password)
            attrs["userAccountControl"] = UAC_ENABLED_USER
            if session.add(dn, USER_CLASSES, attrs) == 0:
                return
        else:
            attrs["userAccountControl"] = UAC_NORMAL | UAC_DISABLED | UAC_DONT_EXPIRE
            if session.add(dn, USER_CLASSES, attrs) == 0:
                attrs = {}
        if attrs:
            # 68: it exists already (our add whose answer was lost, or someone else's).
            found = session.search(f"(sAMAccountName={escape(name)})", ["description"])
            if not found or not _is_ours(found[0]):
                raise DirectoryError(
                    f"{name} appeared meanwhile, not made by pwb-users: left alone"
                )
        # Made disabled (kpasswd), half-made earlier, or ours already: finish it.
    session.set_password(name, dn, password)
    session.modify(dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [UAC_ENABLED_USER])]})


def _known_complete(entry: dict[str, Any] | None) -> bool:
    """An existing, complete user of ours (the ones a re-run may re-verify on request)."""
    return entry is not None and _is_ours(entry) and _is_complete(entry)


def _check_login(workers: Workers, report: Report, name: str, password: str) -> tuple[bool, str]:
    """A Kerberos login as ``name`` with its own password: (ok, reason)."""

    def attempt() -> tuple[bool, str]:
        report.count_login()
        try:
            return workers.kerberos().check_password(name, password)
        except KerberosError as exc:
            raise Retryable(str(exc)) from None

    try:
        return with_retries(f"verify {name}", attempt)
    except DirectoryError as exc:
        return False, str(exc)


def _count_checks(report: Report, checks: list[tuple[str, tuple[bool, str]]]) -> None:
    for name, (ok, reason) in checks:
        if ok:
            report.verified += 1
        else:
            report.verify_failed += 1
            report.failures.append((name, f"login with its own password failed: {reason}"))


def _verify(workers: Workers, names: list[str], passwords: dict[str, str], report: Report) -> None:
    checks = workers.map(lambda n: (n, _check_login(workers, report, n, passwords[n])), names)
    _count_checks(report, checks)


def verify(
    target: Target,
    admin_password: str,
    batch: UserBatch,
    store: PasswordStore,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> Report:
    """A Kerberos login per user with the stored password."""
    batch.check()
    report = Report("verify", requested=batch.count)
    began = time.monotonic()
    passwords = store.load()
    names = [n for n in batch.names() if n in passwords]
    report.absent = batch.count - len(names)
    with opened(target, admin_password, concurrency) as workers:
        _verify(workers, names, passwords, report)
    report.seconds = round(time.monotonic() - began, 3)
    return report


def delete(
    target: Target,
    admin_password: str,
    batch: UserBatch,
    store: PasswordStore,
    concurrency: int = DEFAULT_CONCURRENCY,
    force: bool = False,
) -> Report:
    """Delete the batch's users that this tool made (all of them with ``force``)."""
    batch.check()
    report = Report("delete", requested=batch.count)
    began = time.monotonic()
    with opened(target, admin_password, concurrency) as workers:
        existing = _existing(workers.session(), batch)
        doomed = []
        for name in batch.names():
            entry = existing.get(name)
            if entry is None:
                report.absent += 1
            elif _is_ours(entry) or force:
                doomed.append((name, entry["dn"]))
            else:
                report.foreign += 1

        def remove(item: tuple[str, str]) -> tuple[str, str | None]:
            name, dn = item
            try:
                with_retries(f"delete {name}", lambda: workers.session().delete(dn))
                return name, None
            except DirectoryError as exc:
                return name, str(exc)

        for name, error in workers.map(remove, doomed):
            if error:
                report.failed += 1
                report.failures.append((name, error))
            else:
                report.deleted += 1
    passwords = store.load()
    gone = {n for n, _ in doomed} - {n for n, _ in report.failures}
    if gone & passwords.keys():
        store.save({k: v for k, v in passwords.items() if k not in gone})
    report.seconds = round(time.monotonic() - began, 3)
    return report


def list_users(target: Target, admin_password: str, batch: UserBatch) -> Report:
    """The batch's users as the directory has them (no passwords)."""
    batch.check()
    report = Report("list", requested=batch.count)
    began = time.monotonic()
    with opened(target, admin_password, 1) as workers:
        existing = _existing(workers.session(), batch)
    for name in batch.names():
        entry = existing.get(name)
        if entry is None:
            report.absent += 1
            continue
        ours = _is_ours(entry)
        report.existing += ours
        report.foreign += not ours
        report.users.append(
            {
                "name": name,
                "uid": _int(_one(entry.get("uidNumber"))),
                "gid": _int(_one(entry.get("gidNumber"))),
                "enabled": _is_complete(entry),
                "managed": ours,
            }
        )
    report.seconds = round(time.monotonic() - began, 3)
    return report
