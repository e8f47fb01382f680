"""LDAP over a Kerberos-sealed SASL session (RFC 4752 GSSAPI with confidentiality).

AWS SimpleAD offers no LDAPS, and a Samba-based directory sets ``unicodePwd`` only over
an encrypted connection. A SASL GSSAPI bind that negotiates the confidentiality layer
makes the plain ``ldap://`` connection encrypted: each LDAP message then travels as a
4-byte length and a ``gss_wrap`` token. With it a user is created, password included, in
ONE add (one directory transaction), and the administrator's password never crosses the
network at all.

ldap3 2.9 has no security layers of its own, so the bind exchange is driven here through
MIT's libgssapi_krb5 (ctypes) and the connection's socket is swapped for ``SealedSocket``,
which ldap3's synchronous strategy reads and writes like any socket.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import socket
import struct
import threading
from typing import Any

import ldap3
from ldap3.protocol.sasl.sasl import send_sasl_negotiation

from pwbcluster.errors import MissingDependency
from pwbcluster.stages.users.krb5 import KerberosError

GSS_C_MUTUAL_FLAG = 2
GSS_C_SEQUENCE_FLAG = 8
GSS_C_CONF_FLAG = 16
GSS_C_INTEG_FLAG = 32
GSS_C_INITIATE = 1
GSS_S_CONTINUE_NEEDED = 1
GSS_C_GSS_CODE = 1
GSS_C_MECH_CODE = 2
SASL_CONFIDENTIALITY = 4
SASL_BIND_IN_PROGRESS = 14
MAX_BUFFER = 0xFFFFFF


class _Buffer(ctypes.Structure):
    _fields_ = [("length", ctypes.c_size_t), ("value", ctypes.c_void_p)]

    @classmethod
    def of(cls, data: bytes) -> tuple[_Buffer, ctypes.Array[ctypes.c_char]]:
        keep = ctypes.create_string_buffer(data, len(data))
        return cls(len(data), ctypes.cast(keep, ctypes.c_void_p)), keep

    def take(self) -> bytes:
        return ctypes.string_at(self.value, self.length) if self.value and self.length else b""


_lib: ctypes.CDLL | None = None
_lock = threading.Lock()


def gss() -> ctypes.CDLL:
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        name = ctypes.util.find_library("gssapi_krb5") or "libgssapi_krb5.so.2"
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise MissingDependency(
                f"MIT GSSAPI library not found ({exc}); install libgssapi-krb5-2 (apt-get install krb5-user)"
            ) from None
        u32p = ctypes.POINTER(ctypes.c_uint32)
        vp, bp = ctypes.c_void_p, ctypes.POINTER(_Buffer)
        signatures: dict[str, list[Any]] = {
            "gss_import_name": [u32p, bp, vp, ctypes.POINTER(vp)],
            "gss_release_name": [u32p, ctypes.POINTER(vp)],
            "gss_acquire_cred_with_password": [
                u32p,
                vp,
                bp,
                ctypes.c_uint32,
                vp,
                ctypes.c_int,
                ctypes.POINTER(vp),
                vp,
                vp,
            ],
            "gss_release_cred": [u32p, ctypes.POINTER(vp)],
            "gss_init_sec_context": [
                u32p,
                vp,
                ctypes.POINTER(vp),
                vp,
                vp,
                ctypes.c_uint32,
                ctypes.c_uint32,
                vp,
                bp,
                vp,
                bp,
                u32p,
                vp,
            ],
            "gss_delete_sec_context": [u32p, ctypes.POINTER(vp), vp],
            "gss_wrap": [
                u32p,
                vp,
                ctypes.c_int,
                ctypes.c_uint32,
                bp,
                ctypes.POINTER(ctypes.c_int),
                bp,
            ],
            "gss_unwrap": [u32p, vp, bp, bp, ctypes.POINTER(ctypes.c_int), u32p],
            "gss_release_buffer": [u32p, bp],
            "gss_display_status": [u32p, ctypes.c_uint32, ctypes.c_int, vp, u32p, bp],
        }
        for fn, args in signatures.items():
            func = getattr(lib, fn)
            func.argtypes = args
            func.restype = ctypes.c_uint32
        _lib = lib
        return lib


def _oid(name: str) -> ctypes.c_void_p:
    return ctypes.c_void_p.in_dll(gss(), name)


def _status_text(major: int, minor: int) -> str:
    lib = gss()
    parts = []
    for code, kind in ((major, GSS_C_GSS_CODE), (minor, GSS_C_MECH_CODE)):
        if not code:
            continue
        ctx = ctypes.c_uint32(0)
        for _ in range(4):
            out, m = _Buffer(), ctypes.c_uint32()
            lib.gss_display_status(
                ctypes.byref(m), code, kind, None, ctypes.byref(ctx), ctypes.byref(out)
            )
            parts.append(out.take().decode("utf-8", "replace"))
            lib.gss_release_buffer(ctypes.byref(m), ctypes.byref(out))
            if not ctx.value:
                break
    return "; ".join(p for p in parts if p) or f"GSSAPI error {major}/{minor}"


def _failed(major: int) -> bool:
    return (major & 0xFFFF0000) != 0


class GssContext:
    """A Kerberos security context as ``principal`` (password login) toward ``service@host``."""

    def __init__(self, principal: str, password: str, target: str) -> None:
        self.lib = gss()
        self.cred = ctypes.c_void_p()
        self.ctx = ctypes.c_void_p()
        self.target = ctypes.c_void_p()
        minor = ctypes.c_uint32()
        user = ctypes.c_void_p()
        buf, keep = _Buffer.of(principal.encode())
        major = self.lib.gss_import_name(
            ctypes.byref(minor),
            ctypes.byref(buf),
            _oid("GSS_KRB5_NT_PRINCIPAL_NAME"),
            ctypes.byref(user),
        )
        self._check(major, minor.value, f"principal {principal!r}")
        try:
            pw, keep_pw = _Buffer.of(password.encode("utf-8"))
            major = self.lib.gss_acquire_cred_with_password(
                ctypes.byref(minor),
                user,
                ctypes.byref(pw),
                0,
                None,
                GSS_C_INITIATE,
                ctypes.byref(self.cred),
                None,
                None,
            )
            ctypes.memset(keep_pw, 0, len(password))
            if _failed(major):
                raise KerberosError(
                    f"the directory's KDC rejected {principal}'s password or could not be reached "
                    f"({_status_text(major, minor.value)})",
                    minor.value,
                )
        finally:
            self.lib.gss_release_name(ctypes.byref(minor), ctypes.byref(user))
        del keep
        tbuf, _keep_t = _Buffer.of(target.encode())
        major = self.lib.gss_import_name(
            ctypes.byref(minor),
            ctypes.byref(tbuf),
            _oid("GSS_C_NT_HOSTBASED_SERVICE"),
            ctypes.byref(self.target),
        )
        self._check(major, minor.value, f"service {target!r}")

    def _check(self, major: int, minor: int, what: str) -> None:
        if _failed(major):
            raise KerberosError(f"GSSAPI {what}: {_status_text(major, minor)}", minor)

    def step(self, token: bytes) -> tuple[bytes, bool]:
        """One gss_init_sec_context round: (token to send, established?)."""
        minor, flags = ctypes.c_uint32(), ctypes.c_uint32()
        out = _Buffer()
        inp, keep = _Buffer.of(token)
        major = self.lib.gss_init_sec_context(
            ctypes.byref(minor),
            self.cred,
            ctypes.byref(self.ctx),
            self.target,
            _oid("gss_mech_krb5"),
            GSS_C_MUTUAL_FLAG | GSS_C_SEQUENCE_FLAG | GSS_C_INTEG_FLAG | GSS_C_CONF_FLAG,
            0,
            None,
            ctypes.byref(inp) if token else None,
            None,
            ctypes.byref(out),
            ctypes.byref(flags),
            None,
        )
        del keep
        data = out.take()
        self.lib.gss_release_buffer(ctypes.byref(ctypes.c_uint32()), ctypes.byref(out))
        self._check(major, minor.value, "security context")
        established = not (major & GSS_S_CONTINUE_NEEDED)
        if established and not flags.value & GSS_C_CONF_FLAG:
            raise KerberosError("the directory offered no confidentiality (sealing)")
        return data, established

    def wrap(self, data: bytes) -> bytes:
        minor, conf = ctypes.c_uint32(), ctypes.c_int()
        inp, keep = _Buffer.of(data)
        out = _Buffer()
        major = self.lib.gss_wrap(
            ctypes.byref(minor),
            self.ctx,
            1,
            0,
            ctypes.byref(inp),
            ctypes.byref(conf),
            ctypes.byref(out),
        )
        del keep
        self._check(major, minor.value, "wrap")
        if not conf.value:
            raise KerberosError("GSSAPI wrap did not encrypt")
        token = out.take()
        self.lib.gss_release_buffer(ctypes.byref(minor), ctypes.byref(out))
        return token

    def unwrap(self, token: bytes) -> bytes:
        minor, conf, qop = ctypes.c_uint32(), ctypes.c_int(), ctypes.c_uint32()
        inp, keep = _Buffer.of(token)
        out = _Buffer()
        major = self.lib.gss_unwrap(
            ctypes.byref(minor),
            self.ctx,
            ctypes.byref(inp),
            ctypes.byref(out),
            ctypes.byref(conf),
            ctypes.byref(qop),
        )
        del keep
        self._check(major, minor.value, "unwrap")
        data = out.take()
        self.lib.gss_release_buffer(ctypes.byref(minor), ctypes.byref(out))
        return data

    def close(self) -> None:
        minor = ctypes.c_uint32()
        if self.ctx:
            self.lib.gss_delete_sec_context(ctypes.byref(minor), ctypes.byref(self.ctx), None)
        if self.target:
            self.lib.gss_release_name(ctypes.byref(minor), ctypes.byref(self.target))
        if self.cred:
            self.lib.gss_release_cred(ctypes.byref(minor), ctypes.byref(self.cred))


class SealedSocket:
    """A socket whose bytes are SASL-framed GSSAPI wrap tokens; looks plain to ldap3."""

    def __init__(self, raw: socket.socket, context: GssContext) -> None:
        self._raw = raw
        self._ctx = context
        self._plain = bytearray()

    def sendall(self, data: bytes) -> None:
        token = self._ctx.wrap(bytes(data))
        self._raw.sendall(struct.pack(">I", len(token)) + token)

    def _read_exact(self, size: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < size:
            chunk = self._raw.recv(size - len(chunks))
            if not chunk:
                return b""
            chunks += chunk
        return bytes(chunks)

    def recv(self, size: int) -> bytes:
        if not self._plain:
            head = self._read_exact(4)
            if not head:
                return b""
            (length,) = struct.unpack(">I", head)
            body = self._read_exact(length)
            if len(body) != length:
                return b""
            self._plain += self._ctx.unwrap(body)
        out = bytes(self._plain[:size])
        del self._plain[:size]
        return out

    def close(self) -> None:
        self._raw.close()
        self._ctx.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def sealed_bind(conn: ldap3.Connection, principal: str, password: str, host: str) -> None:
    """SASL GSSAPI bind with confidentiality on an opened, unbound ``conn``."""
    ctx = GssContext(principal, password, f"ldap@{host}")
    try:
        token, established = ctx.step(b"")
        while True:
            result = send_sasl_negotiation(conn, None, token)
            code = result["result"]
            server_token = result.get("saslCreds") or b""
            if code not in (0, SASL_BIND_IN_PROGRESS):
                raise KerberosError(
                    f"SASL GSSAPI bind refused: {result.get('description')} {result.get('message', '')}".strip()
                )
            if not established:
                token, established = ctx.step(server_token)
                continue
            if code == 0:
                raise KerberosError(
                    "the directory ended the SASL bind before agreeing a security layer"
                )
            # Security-layer negotiation (RFC 4752 3.1): demand confidentiality.
            offer = ctx.unwrap(server_token)
            if len(offer) != 4 or not offer[0] & SASL_CONFIDENTIALITY:
                raise KerberosError(
                    "the directory does not offer a sealed (confidential) SASL layer"
                )
            server_max = int.from_bytes(offer[1:4], "big")
            reply = bytes([SASL_CONFIDENTIALITY]) + min(server_max, MAX_BUFFER).to_bytes(3, "big")
            final = send_sasl_negotiation(conn, None, ctx.wrap(reply))
            if final["result"] != 0:
                raise KerberosError(f"SASL GSSAPI bind refused: {final.get('description')}")
            break
    except BaseException:
        ctx.close()
        raise
    conn.socket = SealedSocket(conn.socket, ctx)
    conn.bound = True
