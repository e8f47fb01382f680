"""``pwb-users``: create, delete, list and verify directory users (runs on the jump host).

Examples (on the jump host, which may read the two secrets through its instance role):

    pwb-users create --domain pwb.posit.co --server 10.0.128.10 --count 500 \\
        --admin-secret-arn arn:...:directory-admin-password \\
        --password-store secretsmanager:arn:...:directory-user-passwords
    pwb-users verify ...same flags...
    pwb-users list --domain pwb.posit.co --server 10.0.128.10 --prefix posit --count 500

The administrator password comes from Secrets Manager (``--admin-secret-arn``), a file
(``--admin-password-file``) or ``PWB_USERS_ADMIN_PASSWORD``; never from the command
line. Passwords of the users are never printed or logged. ``--json`` prints the report
as one JSON line (what ``invoke users.*`` reads back through SSM).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from pwbcluster.errors import ToolkitError
from pwbcluster.stages.users import engine
from pwbcluster.stages.users.directory import Target
from pwbcluster.stages.users.spec import UserBatch
from pwbcluster.stages.users.store import PasswordStore, open_store, read_admin_password

EXIT_FAILURES = 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pwb-users", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="action", required=True)
    for action, text in (
        ("create", "create the users (idempotent; completes a failed run), then verify them"),
        ("delete", "delete the users this tool made"),
        ("list", "list the users as the directory has them"),
        ("verify", "log every user in with its stored password (Kerberos)"),
    ):
        a = sub.add_parser(action, help=text, description=text)
        d = a.add_argument_group("directory")
        d.add_argument("--domain", required=True, help="directory DNS domain, e.g. pwb.posit.co")
        d.add_argument(
            "--server", action="append", required=True, help="directory server address (repeatable)"
        )
        d.add_argument(
            "--type",
            choices=("SimpleAD", "MicrosoftAD"),
            default="SimpleAD",
            help="directory type (default SimpleAD)",
        )
        d.add_argument(
            "--admin-user", help="administrator (default Administrator; Admin for MicrosoftAD)"
        )
        d.add_argument(
            "--admin-secret-arn", help="Secrets Manager secret with the administrator password"
        )
        d.add_argument("--admin-password-file", help="file holding the administrator password")
        d.add_argument(
            "--auth",
            choices=("sasl", "simple"),
            help="sasl: Kerberos-sealed LDAP (default for SimpleAD); simple: bind over LDAPS (default for MicrosoftAD)",
        )
        d.add_argument(
            "--password-method",
            choices=("ldap", "kpasswd"),
            default="ldap",
            help="ldap: unicodePwd in the sealed/TLS add (one operation); kpasswd: Kerberos set-password",
        )
        d.add_argument("--ca-file", help="CA bundle for LDAPS")
        d.add_argument(
            "--users-ou",
            help="container for users and groups (default CN=Users or the Managed AD OU)",
        )
        d.add_argument("--region", help="AWS region of the secrets (default: from the ARN)")
        b = a.add_argument_group("batch")
        b.add_argument("--count", type=int, required=True, help="number of users")
        b.add_argument("--prefix", default="posit", help="user name prefix (default posit)")
        b.add_argument("--digits", type=int, default=4, help="zero-padded width (default 4)")
        b.add_argument("--start", type=int, default=1, help="first number (default 1)")
        b.add_argument("--uid-start", type=int, default=10001, help="uidNumber of the first user")
        b.add_argument(
            "--gid-start", type=int, default=10000, help="gidNumber of the users group (admins: +1)"
        )
        b.add_argument("--shell", default="/bin/bash", help="login shell")
        b.add_argument("--home-base", default="/home", help="parent of home directories")
        b.add_argument("--users-group", default="pwb-users", help="group of every user")
        b.add_argument(
            "--admins-group", default="pwb-admins", help="Workbench administrators' group"
        )
        b.add_argument(
            "--admin",
            action="append",
            default=[],
            help="user also put in the admins group (repeatable)",
        )
        a.add_argument(
            "--password-store", default=None, help="secretsmanager:ARN (default) or file:PATH"
        )
        a.add_argument(
            "--concurrency",
            type=int,
            default=engine.DEFAULT_CONCURRENCY,
            help="parallel directory sessions",
        )
        a.add_argument("--json", action="store_true", help="print the report as one JSON line")
        a.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
        if action == "create":
            a.add_argument(
                "--update",
                action="store_true",
                help="also refresh POSIX attributes of existing users",
            )
            a.add_argument(
                "--no-verify",
                action="store_true",
                help="skip the login check of the users this run creates",
            )
            a.add_argument(
                "--verify-existing",
                action="store_true",
                help="also log in every user that already existed (a write on the directory "
                "per user; by default a re-run only searches)",
            )
        if action == "delete":
            a.add_argument(
                "--force",
                action="store_true",
                help="also delete matching users this tool did not make",
            )
    return p


def target_from_args(args: argparse.Namespace) -> Target:
    managed = args.type == "MicrosoftAD"
    auth = args.auth or ("simple" if managed else "sasl")
    netbios = args.domain.split(".")[0].upper()
    base = ",".join(f"DC={p}" for p in args.domain.split("."))
    return Target(
        domain=args.domain,
        servers=tuple(args.server),
        admin_user=args.admin_user or ("Admin" if managed else "Administrator"),
        auth=auth,
        password_method=args.password_method,
        ldaps=auth == "simple",
        ca_file=args.ca_file,
        users_ou=args.users_ou or (f"OU=Users,OU={netbios},{base}" if managed else None),
    )


def batch_from_args(args: argparse.Namespace) -> UserBatch:
    return UserBatch(
        count=args.count,
        prefix=args.prefix,
        digits=args.digits,
        start=args.start,
        uid_start=args.uid_start,
        gid_start=args.gid_start,
        shell=args.shell,
        home_base=args.home_base,
        users_group=args.users_group,
        admins_group=args.admins_group,
        admins=tuple(args.admin),
    )


def _store(args: argparse.Namespace) -> PasswordStore:
    if args.password_store:
        return open_store(args.password_store, args.region)
    raise ToolkitError("--password-store is required (secretsmanager:ARN or file:PATH)")


def run(argv: Sequence[str] | None = None) -> engine.Report:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="[pwb-users] %(message)s",
    )
    batch = batch_from_args(args)
    # Refused before anything else: no secret read, no connection.
    batch.check(allow_empty=False)
    target = target_from_args(args)
    admin = read_admin_password(args.admin_secret_arn, args.admin_password_file, args.region)
    if args.action == "list":
        return engine.list_users(target, admin, batch)
    store = _store(args)
    if args.action == "create":
        return engine.create(
            target,
            admin,
            batch,
            store,
            args.concurrency,
            update=args.update,
            verify_after=not args.no_verify,
            verify_existing=args.verify_existing,
        )
    if args.action == "delete":
        return engine.delete(target, admin, batch, store, args.concurrency, force=args.force)
    return engine.verify(target, admin, batch, store, args.concurrency)


def describe(report: engine.Report) -> str:
    fields = [
        ("requested", report.requested),
        ("created", report.created),
        ("completed", report.completed),
        ("existing", report.existing),
        ("foreign", report.foreign),
        ("updated", report.updated),
        ("deleted", report.deleted),
        ("absent", report.absent),
        ("verified", report.verified),
        ("verify failed", report.verify_failed),
        ("logins", report.logins),
        ("failed", report.failed),
    ]
    shown = ", ".join(f"{k} {v}" for k, v in fields if v or k in ("requested", "failed"))
    lines = [f"{report.action}: {shown} in {report.seconds:.1f} s"]
    lines.extend(f"  {name}: {why}" for name, why in report.failures[:20])
    for user in report.users:
        lines.append(
            f"  {user['name']} uid={user['uid']} gid={user['gid']} enabled={user['enabled']} managed={user['managed']}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args_json = "--json" in (argv if argv is not None else sys.argv[1:])
        report = run(argv)
    except ToolkitError as exc:
        if args_json:
            print(json.dumps({"error": str(exc)}))
        print(f"pwb-users: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict()) if args_json else describe(report))
    return 0 if report.ok else EXIT_FAILURES


if __name__ == "__main__":
    sys.exit(main())
