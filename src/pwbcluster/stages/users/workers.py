"""The pieces every action shares: the run's report and the pool of directory sessions."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from pwbcluster.stages.users.directory import Session, Target, with_retries
from pwbcluster.stages.users.krb5 import KerberosSession, client_config


@dataclass
class Report:
    """Counts of one run (no passwords); ``failures`` names users and reasons."""

    action: str
    requested: int = 0
    created: int = 0
    completed: int = 0
    existing: int = 0
    foreign: int = 0
    updated: int = 0
    deleted: int = 0
    absent: int = 0
    verified: int = 0
    verify_failed: int = 0
    failed: int = 0
    logins: int = 0  # Kerberos logins this run attempted (each one a write on Samba's KDC)
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def count_login(self) -> None:
        with self._lock:
            self.logins += 1

    def as_dict(self, max_failures: int = 50) -> dict[str, Any]:
        doc = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        doc["users"] = [dict(u) for u in self.users]
        doc["failures"] = [list(f) for f in self.failures[:max_failures]]
        if not self.users:
            doc.pop("users")
        return doc

    @property
    def ok(self) -> bool:
        return not self.failed and not self.verify_failed


class Workers:
    """A thread pool whose threads each keep one directory session (and a krb5 context)."""

    def __init__(self, target: Target, admin_password: str, concurrency: int) -> None:
        self.target = target
        self.admin_password = admin_password
        self.concurrency = max(1, concurrency)
        self._local = threading.local()
        self._sessions: list[Session] = []
        self._kerberos: list[KerberosSession] = []
        self._lock = threading.Lock()

    def session(self) -> Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = Session(self.target, self.admin_password)
            with self._lock:
                self._sessions.append(s)
            self._local.session = s
        return s

    def kerberos(self) -> KerberosSession:
        k = getattr(self._local, "kerberos", None)
        if k is None:
            k = KerberosSession(self.target.realm)
            with self._lock:
                self._kerberos.append(k)
            self._local.kerberos = k
        return k

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        if not items:
            return []
        with ThreadPoolExecutor(
            min(self.concurrency, len(items)), thread_name_prefix="pwb-users"
        ) as pool:
            return list(pool.map(fn, items))

    def close(self) -> None:
        for s in self._sessions:
            s.close()
        for k in self._kerberos:
            k.close()


@contextmanager
def opened(target: Target, admin_password: str, concurrency: int) -> Iterator[Workers]:
    """Check the target, point Kerberos at its KDCs, bind once (fail fast), yield workers."""
    target.check()
    with client_config(target.realm, target.servers):
        workers = Workers(target, admin_password, concurrency)
        try:
            with_retries("bind", workers.session().open, attempts=8)
            yield workers
        finally:
            workers.close()
