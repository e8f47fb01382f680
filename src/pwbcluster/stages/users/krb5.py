"""Kerberos through MIT's libkrb5 (ctypes): set a user's password, check a password.

Why Kerberos: AWS SimpleAD offers no LDAPS, and a Samba-based directory refuses to set
``unicodePwd`` over an unencrypted LDAP connection. The Kerberos set-password protocol
(RFC 3244, the ``kpasswd`` service on port 464) carries the new password encrypted with a
session key, works on SimpleAD and on Managed AD alike, and needs nothing but libkrb5,
which every Debian/Ubuntu host with ``krb5-user`` (the jump host) already has.

Calling the library in-process (rather than ``kinit``/``kpasswd`` per user) costs no
process start per user, and ctypes drops the GIL during each call, so a few threads run
exchanges in parallel. A ``krb5_context`` is not thread-safe: each ``KerberosSession`` is
used by one thread only. Passwords only ever pass through memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from pwbcluster.errors import MissingDependency, ToolkitError

# Error codes (krb5.h / kerberos error table) the callers act on.
KDC_ERR_C_PRINCIPAL_UNKNOWN = -1765328378
KDC_ERR_PREAUTH_FAILED = -1765328360
KDC_ERR_CLIENT_REVOKED = -1765328366  # account disabled or locked out
KRB_AP_ERR_BAD_INTEGRITY = -1765328353
KRB_AP_ERR_TKT_EXPIRED = -1765328352
KRB5_KDC_UNREACH = -1765328228
KRB5_REALM_CANT_RESOLVE = -1765328164
KRB5_KPASSWD_SOFTERROR = 4
KRB5_KPASSWD_HARDERROR = 2
BAD_PASSWORD_CODES = (KDC_ERR_PREAUTH_FAILED, KRB_AP_ERR_BAD_INTEGRITY)
KPASSWD_RESULTS = {
    1: "malformed request",
    2: "server error",
    3: "authentication error",
    4: "password refused by the directory's policy",
    5: "access denied",
    6: "bad protocol version",
    7: "initial ticket required",
}
# MIT krb5_creds is about 120 bytes on 64-bit; a zeroed, larger buffer is always enough.
CREDS_SIZE = 512


class KerberosError(ToolkitError):
    """A Kerberos exchange failed; ``code`` is the library's error code."""

    def __init__(self, message: str, code: int = 0, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class _Data(ctypes.Structure):
    _fields_ = [
        ("magic", ctypes.c_int32),
        ("length", ctypes.c_uint),
        ("data", ctypes.c_void_p),
    ]

    def text(self) -> str:
        if not self.data or not self.length:
            return ""
        raw = ctypes.string_at(self.data, self.length)
        return raw.decode("utf-8", "replace").strip("\x00").strip()


_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()


def library() -> ctypes.CDLL:
    """MIT libkrb5, loaded once, with the signatures this module uses."""
    global _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        name = ctypes.util.find_library("krb5") or "libkrb5.so.3"
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise MissingDependency(
                f"MIT Kerberos library not found ({exc}); install libkrb5-3 (apt-get install krb5-user)"
            ) from None
        vp, cp, i32 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32
        lib.krb5_init_context.argtypes = [ctypes.POINTER(vp)]
        lib.krb5_free_context.argtypes = [vp]
        lib.krb5_free_context.restype = None
        lib.krb5_parse_name.argtypes = [vp, cp, ctypes.POINTER(vp)]
        lib.krb5_free_principal.argtypes = [vp, vp]
        lib.krb5_free_principal.restype = None
        lib.krb5_get_init_creds_password.argtypes = [vp, vp, vp, cp, vp, vp, i32, cp, vp]
        lib.krb5_free_cred_contents.argtypes = [vp, vp]
        lib.krb5_free_cred_contents.restype = None
        lib.krb5_set_password.argtypes = [
            vp,
            vp,
            cp,
            vp,
            ctypes.POINTER(ctypes.c_int),
            ctypes.POINTER(_Data),
            ctypes.POINTER(_Data),
        ]
        lib.krb5_free_data_contents.argtypes = [vp, ctypes.POINTER(_Data)]
        lib.krb5_free_data_contents.restype = None
        lib.krb5_get_error_message.argtypes = [vp, i32]
        lib.krb5_get_error_message.restype = ctypes.c_void_p
        lib.krb5_free_error_message.argtypes = [vp, ctypes.c_void_p]
        lib.krb5_free_error_message.restype = None
        for fn in ("krb5_init_context", "krb5_parse_name", "krb5_get_init_creds_password"):
            getattr(lib, fn).restype = i32
        lib.krb5_set_password.restype = i32
        _lib = lib
        return lib


def krb5_conf_text(realm: str, kdcs: Sequence[str]) -> str:
    """A client configuration naming the directory's KDCs (no DNS lookups needed).

    Host names are not canonicalised through DNS: the LDAP service principal is built from
    the DC's own ``dnsHostName`` (read from its root DSE), which is what its key is under.
    """
    servers = "".join(
        f"    kdc = {k}\n    kpasswd_server = {k}\n    admin_server = {k}\n" for k in kdcs
    )
    return (
        "[libdefaults]\n"
        f"  default_realm = {realm}\n"
        "  dns_lookup_kdc = false\n  dns_lookup_realm = false\n  rdns = false\n"
        "  dns_canonicalize_hostname = false\n  udp_preference_limit = 0\n"
        f"[realms]\n  {realm} = {{\n{servers}  }}\n"
        f"[domain_realm]\n  .{realm.lower()} = {realm}\n  {realm.lower()} = {realm}\n"
    )


_config_lock = threading.Lock()


@contextlib.contextmanager
def client_config(realm: str, kdcs: Sequence[str]) -> Iterator[Path]:
    """Point libkrb5 at a private krb5.conf for the duration (read at context creation)."""
    with tempfile.TemporaryDirectory(prefix="pwb-users-krb5-") as tmp:
        path = Path(tmp) / "krb5.conf"
        path.write_text(krb5_conf_text(realm, kdcs), encoding="utf-8")
        old = os.environ.get("KRB5_CONFIG")
        os.environ["KRB5_CONFIG"] = str(path)
        try:
            yield path
        finally:
            if old is None:
                os.environ.pop("KRB5_CONFIG", None)
            else:
                os.environ["KRB5_CONFIG"] = old


class KerberosSession:
    """One krb5 context, used by one thread: verify passwords and set other users' ones."""

    def __init__(self, realm: str) -> None:
        self.realm = realm
        self.lib = library()
        self.ctx = ctypes.c_void_p()
        code = self.lib.krb5_init_context(ctypes.byref(self.ctx))
        if code:
            raise KerberosError(f"krb5_init_context failed ({code})", code)
        self._admin_creds: ctypes.Array[ctypes.c_char] | None = None

    def close(self) -> None:
        self._drop_admin()
        if self.ctx:
            self.lib.krb5_free_context(self.ctx)
            self.ctx = ctypes.c_void_p()

    def __enter__(self) -> KerberosSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def message(self, code: int) -> str:
        ptr = self.lib.krb5_get_error_message(self.ctx, code)
        if not ptr:
            return f"Kerberos error {code}"
        try:
            return ctypes.string_at(ptr).decode("utf-8", "replace")
        finally:
            self.lib.krb5_free_error_message(self.ctx, ptr)

    @contextlib.contextmanager
    def _principal(self, name: str) -> Iterator[ctypes.c_void_p]:
        princ = ctypes.c_void_p()
        full = name if "@" in name else f"{name}@{self.realm}"
        code = self.lib.krb5_parse_name(self.ctx, full.encode(), ctypes.byref(princ))
        if code:
            raise KerberosError(f"bad principal {full!r}: {self.message(code)}", code)
        try:
            yield princ
        finally:
            self.lib.krb5_free_principal(self.ctx, princ)

    def _initial_creds(
        self, user: str, password: str, service: str | None
    ) -> tuple[int, ctypes.Array[ctypes.c_char]]:
        creds = ctypes.create_string_buffer(CREDS_SIZE)
        with self._principal(user) as princ:
            code = self.lib.krb5_get_init_creds_password(
                self.ctx,
                creds,
                princ,
                password.encode("utf-8"),
                None,
                None,
                0,
                service.encode() if service else None,
                None,
            )
        return code, creds

    def check_password(self, user: str, password: str) -> tuple[bool, str]:
        """An AS exchange (what ``kinit`` does) with ``user``'s password: (ok, reason)."""
        code, creds = self._initial_creds(user, password, None)
        if code == 0:
            self.lib.krb5_free_cred_contents(self.ctx, creds)
            return True, ""
        reason = self.message(code)
        if code in (KRB5_KDC_UNREACH,) or code > 0:
            raise KerberosError(f"{user}: {reason}", code, retryable=True)
        return False, reason

    def login_admin(self, admin: str, password: str) -> None:
        """A ticket for the password-change service (``kadmin/changepw``) as ``admin``."""
        self._drop_admin()
        code, creds = self._initial_creds(admin, password, "kadmin/changepw")
        if code:
            reason = self.message(code)
            if code in BAD_PASSWORD_CODES or code == KDC_ERR_C_PRINCIPAL_UNKNOWN:
                raise KerberosError(
                    f"the directory's KDC rejected {admin}'s password ({reason})", code
                )
            raise KerberosError(
                f"Kerberos login as {admin} failed: {reason}",
                code,
                retryable=code == KRB5_KDC_UNREACH or code > 0,
            )
        self._admin_creds = creds

    def _drop_admin(self) -> None:
        if self._admin_creds is not None:
            self.lib.krb5_free_cred_contents(self.ctx, self._admin_creds)
            self._admin_creds = None

    def set_password(self, user: str, new_password: str) -> None:
        """Set ``user``'s password with the administrator ticket (RFC 3244 set-password)."""
        if self._admin_creds is None:
            raise KerberosError("set_password before login_admin")
        result = ctypes.c_int(0)
        code_string, result_string = _Data(), _Data()
        with self._principal(user) as target:
            code = self.lib.krb5_set_password(
                self.ctx,
                self._admin_creds,
                new_password.encode("utf-8"),
                target,
                ctypes.byref(result),
                ctypes.byref(code_string),
                ctypes.byref(result_string),
            )
        detail = " ".join(t for t in (code_string.text(), result_string.text()) if t.isprintable())
        self.lib.krb5_free_data_contents(self.ctx, ctypes.byref(code_string))
        self.lib.krb5_free_data_contents(self.ctx, ctypes.byref(result_string))
        if code:
            raise KerberosError(
                f"setting {user}'s password: {self.message(code)}",
                code,
                retryable=code != KDC_ERR_C_PRINCIPAL_UNKNOWN,
            )
        if result.value:
            what = KPASSWD_RESULTS.get(result.value, f"result {result.value}")
            raise KerberosError(
                f"setting {user}'s password: {what}" + (f" ({detail})" if detail else ""),
                result.value,
                retryable=result.value in (KRB5_KPASSWD_HARDERROR, 3),
            )
