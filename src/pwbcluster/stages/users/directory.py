"""One administrator session on the directory (LDAP, plus Kerberos for kpasswd).

Two ways in, chosen by the directory:
- ``auth="sasl"`` (SimpleAD, any AD without LDAPS): a Kerberos-sealed SASL bind over
  ``ldap://``; ``unicodePwd`` goes in the same add that creates the user (one
  transaction). ``password_method="kpasswd"`` instead sets passwords over Kerberos
  (RFC 3244) and enables the account afterwards.
- ``auth="simple"`` over ``ldaps://`` (AWS Managed AD): a simple bind inside TLS.
Busy answers and dropped connections are retried with a short, jittered back-off; there
is no sleep on the normal path.
"""

from __future__ import annotations

import contextlib
import logging
import random
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ldap3
from ldap3.core import exceptions as lexc
from ldap3.utils.conv import escape_filter_chars

from pwbcluster.errors import ToolkitError
from pwbcluster.stages.users.krb5 import KerberosError, KerberosSession
from pwbcluster.stages.users.sasl import sealed_bind

log = logging.getLogger(__name__)
T = TypeVar("T")

UAC_NORMAL = 0x200
UAC_DISABLED = 0x2
UAC_DONT_EXPIRE = 0x10000
UAC_ENABLED_USER = UAC_NORMAL | UAC_DONT_EXPIRE
GLOBAL_SECURITY_GROUP = -2147483646
USER_CLASSES = ["top", "person", "organizationalPerson", "user"]
GROUP_CLASSES = ["top", "group"]
# busy, unavailable, timeLimitExceeded, adminLimitExceeded, other (ldb lock timeouts)
RETRY_RESULTS = {3, 11, 51, 52, 80}
USER_ATTRS = [
    "sAMAccountName",
    "userAccountControl",
    "pwdLastSet",
    "description",
    "uidNumber",
    "gidNumber",
    "unixHomeDirectory",
    "loginShell",
]


class DirectoryError(ToolkitError):
    """The directory refused an operation or could not be reached."""


class AuthError(DirectoryError):
    """The administrator's credentials were refused; nothing was changed."""


class Retryable(DirectoryError):
    """A transient failure: busy, unavailable, connection dropped."""


@dataclass(frozen=True)
class Target:
    """How to reach and authenticate to the directory."""

    domain: str
    servers: tuple[str, ...]
    admin_user: str = "Administrator"
    auth: str = "sasl"  # "sasl" (sealed Kerberos) | "simple" (needs ldaps)
    password_method: str = "ldap"  # "ldap" (unicodePwd) | "kpasswd" (Kerberos)
    ldaps: bool = False
    port: int | None = None
    ca_file: str | None = None
    users_ou: str | None = None
    timeout: float = 15.0

    @property
    def realm(self) -> str:
        return self.domain.upper()

    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={part}" for part in self.domain.split("."))

    @property
    def container(self) -> str:
        return self.users_ou or f"CN=Users,{self.base_dn}"

    def check(self) -> None:
        if self.auth not in ("sasl", "simple"):
            raise DirectoryError(f"auth {self.auth!r}: use sasl or simple")
        if self.password_method not in ("ldap", "kpasswd"):
            raise DirectoryError(f"password method {self.password_method!r}: use ldap or kpasswd")
        if self.auth == "simple" and not self.ldaps:
            raise DirectoryError(
                "a simple bind without LDAPS would send the administrator password in clear "
                "text: use auth=sasl (Kerberos-sealed) or LDAPS"
            )
        if not self.servers:
            raise DirectoryError("no directory server address given")


def with_retries(what: str, action: Callable[[], T], attempts: int = 6) -> T:
    """Run ``action``; on ``Retryable`` back off (50 ms doubling, jittered) and retry."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Retryable as exc:
            if attempt == attempts:
                raise DirectoryError(
                    f"{what}: still failing after {attempts} tries: {exc}"
                ) from None
            delay = min(2.0, 0.05 * 2 ** (attempt - 1)) * (0.5 + random.random())
            log.info("%s: %s; retry %d in %.2f s", what, exc, attempt, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


@dataclass
class Session:
    """One LDAP connection (one thread) and, for kpasswd, one Kerberos context."""

    target: Target
    admin_password: str = field(repr=False)
    conn: ldap3.Connection | None = None
    kerberos: KerberosSession | None = None
    dc_host: str = ""

    def open(self) -> Session:
        self.close()
        t = self.target
        tls = None
        if t.ldaps:
            tls = ldap3.Tls(
                validate=ssl.CERT_REQUIRED, ca_certs_file=t.ca_file, version=ssl.PROTOCOL_TLS_CLIENT
            )
        server = ldap3.Server(
            t.servers[0],
            port=t.port or (636 if t.ldaps else 389),
            use_ssl=t.ldaps,
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=t.timeout,
        )
        try:
            if t.auth == "simple":
                conn = ldap3.Connection(
                    server,
                    user=f"{t.admin_user}@{t.domain}",
                    password=self.admin_password,
                    receive_timeout=int(t.timeout),
                    raise_exceptions=False,
                )
                conn.open()
                if not conn.bind():
                    raise self._bind_error(conn.result)
            else:
                conn = ldap3.Connection(
                    server,
                    authentication=ldap3.SASL,
                    sasl_mechanism="GSSAPI",
                    receive_timeout=int(t.timeout),
                )
                conn.open()
                self.dc_host = self.dc_host or self._dns_host_name(conn)
                try:
                    sealed_bind(
                        conn, f"{t.admin_user}@{t.realm}", self.admin_password, self.dc_host
                    )
                except KerberosError as exc:
                    conn.unbind()
                    text = str(exc)
                    if "Preauthentication failed" in text or "Password incorrect" in text:
                        raise AuthError(
                            f"the directory refused the password of {t.admin_user}@{t.realm}; "
                            "nothing was changed"
                        ) from None
                    if "Server not found" in text or "Cannot contact" in text:
                        raise Retryable(text) from None
                    raise DirectoryError(
                        f"Kerberos-sealed bind to {t.servers[0]} failed: {text}"
                    ) from None
        except lexc.LDAPSocketOpenError as exc:
            raise Retryable(f"cannot reach {t.servers[0]}: {exc}") from None
        self.conn = conn
        if t.password_method == "kpasswd":
            self.kerberos = KerberosSession(t.realm)
            try:
                self.kerberos.login_admin(t.admin_user, self.admin_password)
            except KerberosError as exc:
                raise (Retryable if exc.retryable else AuthError)(str(exc)) from None
        return self

    def _bind_error(self, result: dict[str, Any]) -> DirectoryError:
        if result.get("result") == 49:
            return AuthError(
                f"the directory refused the password of {self.target.admin_user}; nothing was changed"
            )
        return DirectoryError(f"bind failed: {result.get('description')} {result.get('message')}")

    def _dns_host_name(self, conn: ldap3.Connection) -> str:
        """The DC's own host name (root DSE): its LDAP service principal is ldap/<it>."""
        conn.search("", "(objectClass=*)", ldap3.BASE, attributes=["dnsHostName"])
        if conn.entries and conn.entries[0]["dnsHostName"].value:
            return str(conn.entries[0]["dnsHostName"].value).lower()
        raise DirectoryError(f"{self.target.servers[0]} did not say its dnsHostName (root DSE)")

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):  # a dead connection is closed either way
                self.conn.unbind()
            self.conn = None
        if self.kerberos is not None:
            self.kerberos.close()
            self.kerberos = None

    def _call(self, what: str, op: Callable[[ldap3.Connection], Any]) -> dict[str, Any]:
        if self.conn is None:
            self.open()
        assert self.conn is not None
        try:
            op(self.conn)
        except (
            lexc.LDAPSocketReceiveError,
            lexc.LDAPSocketSendError,
            lexc.LDAPSessionTerminatedByServerError,
            lexc.LDAPSocketOpenError,
        ) as exc:
            self.close()
            raise Retryable(f"{what}: connection lost ({exc})") from None
        result: dict[str, Any] = self.conn.result
        if result.get("result") in RETRY_RESULTS:
            raise Retryable(f"{what}: {result.get('description')} {result.get('message', '')}")
        return result

    def search(self, flt: str, attrs: list[str], base: str | None = None) -> list[dict[str, Any]]:
        def op(conn: ldap3.Connection) -> None:
            conn.search(
                base or self.target.base_dn,
                flt,
                ldap3.SUBTREE,
                attributes=attrs,
                paged_size=1000,
            )

        found: list[dict[str, Any]] = []
        result = with_retries(f"search {flt}", lambda: self._call("search", op))
        assert self.conn is not None
        found.extend({"dn": e.entry_dn, **e.entry_attributes_as_dict} for e in self.conn.entries)
        cookie = (
            result.get("controls", {})
            .get("1.2.840.113556.1.4.319", {})
            .get("value", {})
            .get("cookie")
        )
        while cookie:

            def page(conn: ldap3.Connection, c: Any = cookie) -> None:
                conn.search(
                    base or self.target.base_dn,
                    flt,
                    ldap3.SUBTREE,
                    attributes=attrs,
                    paged_size=1000,
                    paged_cookie=c,
                )

            result = with_retries(f"search {flt}", lambda: self._call("search", page))
            found.extend(
                {"dn": e.entry_dn, **e.entry_attributes_as_dict} for e in self.conn.entries
            )
            cookie = (
                result.get("controls", {})
                .get("1.2.840.113556.1.4.319", {})
                .get("value", {})
                .get("cookie")
            )
        return found

    def add(self, dn: str, classes: list[str], attrs: dict[str, Any]) -> int:
        """Add an entry; returns the LDAP result code (0, or 68 when it already exists)."""
        result = self._call(f"add {dn}", lambda c: c.add(dn, classes, attrs))
        code = int(result.get("result", -1))
        if code not in (0, 68):
            raise DirectoryError(
                f"add {dn}: {result.get('description')}: {result.get('message', '').strip()}"
            )
        return code

    def modify(self, dn: str, changes: dict[str, Any], tolerate: Iterable[int] = ()) -> int:
        result = self._call(f"modify {dn}", lambda c: c.modify(dn, changes))
        code = int(result.get("result", -1))
        if code != 0 and code not in set(tolerate):
            raise DirectoryError(
                f"modify {dn}: {result.get('description')}: {result.get('message', '').strip()}"
            )
        return code

    def delete(self, dn: str) -> int:
        result = self._call(f"delete {dn}", lambda c: c.delete(dn))
        code = int(result.get("result", -1))
        if code not in (0, 32):
            raise DirectoryError(
                f"delete {dn}: {result.get('description')}: {result.get('message', '').strip()}"
            )
        return code

    def set_password(self, name: str, dn: str, password: str) -> None:
        """Replace a user's password: over Kerberos (kpasswd) or in a sealed/TLS modify."""
        if self.target.password_method == "kpasswd":
            if self.kerberos is None:
                self.open()
            assert self.kerberos is not None
            try:
                self.kerberos.set_password(name, password)
            except KerberosError as exc:
                if exc.retryable:
                    self.close()
                    raise Retryable(str(exc)) from None
                raise DirectoryError(str(exc)) from None
            return
        self.modify(dn, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [encode_password(password)])]})


def encode_password(password: str) -> bytes:
    return f'"{password}"'.encode("utf-16-le")


def escape(value: str) -> str:
    return str(escape_filter_chars(value))
