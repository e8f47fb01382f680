"""What a batch of users is (names, POSIX attributes, groups) and its checks.

Everything here is checked before the directory is touched: a count of 0, a prefix with
characters a sAMAccountName cannot hold, numbers that overflow the zero-padded width or a
uidNumber range past 2^31 are refused with every problem listed at once.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pwbcluster.config.model import UsersModel, coerce
from pwbcluster.errors import ToolkitError

PREFIX_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
GROUP_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,19}$")
SAM_MAX = 20  # sAMAccountName length limit for users
MAX_ID = 2**31 - 1
PASSWORD_LENGTH = 24
PASSWORD_ALPHABET = string.ascii_letters + string.digits
# Marks the accounts this tool made; delete and completion never touch any other.
MANAGED_MARK = "managed by pwb-users"
DEFAULT_GID_START = 10000


class BatchError(ToolkitError):
    """The requested batch is invalid; nothing was sent to the directory."""


@dataclass(frozen=True)
class UserBatch:
    """N users ``<prefix><number>`` with POSIX attributes, in a users group."""

    count: int
    prefix: str = "posit"
    digits: int = 4
    start: int = 1
    uid_start: int = 10001
    gid_start: int = DEFAULT_GID_START
    shell: str = "/bin/bash"
    home_base: str = "/home"
    users_group: str = "pwb-users"
    admins_group: str = "pwb-admins"
    admins: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_config(cls, users: UsersModel | Mapping[str, Any], **overrides: Any) -> UserBatch:
        """From ``aux.users`` of the model (plus CLI/task overrides)."""
        users = coerce(UsersModel, users)
        batch = cls(
            count=users.count,
            prefix=users.prefix,
            digits=users.digits,
            start=users.start,
            uid_start=users.uid_start,
            shell=users.shell,
            home_base=users.home_base,
            users_group=users.groups.users,
            admins_group=users.groups.admins,
            admins=users.admins,
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(batch, **clean) if clean else batch

    def problems(self, allow_empty: bool = False) -> list[str]:
        out: list[str] = []
        if self.count < 0 or (self.count == 0 and not allow_empty):
            out.append(f"count is {self.count}: ask for at least 1 user")
        if not PREFIX_RE.match(self.prefix):
            out.append(
                f"prefix {self.prefix!r} is not allowed: use a lower-case letter, then "
                "lower-case letters, digits, '-' or '_'"
            )
        if not 1 <= self.digits <= 8:
            out.append(f"digits is {self.digits}: use 1 to 8")
        elif len(self.prefix) + self.digits > SAM_MAX:
            out.append(
                f"prefix {self.prefix!r} plus {self.digits} digits is longer than the "
                f"{SAM_MAX} characters a directory user name can have"
            )
        if self.start < 0:
            out.append(f"start is {self.start}: use 0 or more")
        elif 1 <= self.digits <= 8 and self.start + max(self.count, 1) - 1 >= 10**self.digits:
            out.append(
                f"numbers {self.start}..{self.start + self.count - 1} do not fit in "
                f"{self.digits} digits: raise digits or lower start/count"
            )
        if self.uid_start < 1000 or self.uid_start + max(self.count, 1) - 1 > MAX_ID:
            out.append(f"uid_start {self.uid_start}: uids must stay within 1000..{MAX_ID}")
        if not 1000 <= self.gid_start < MAX_ID:
            out.append(f"gid_start {self.gid_start}: use 1000..{MAX_ID - 1}")
        for what, path in (("shell", self.shell), ("home_base", self.home_base)):
            if not path.startswith("/") or any(c in path for c in "\n\r\t "):
                out.append(f"{what} {path!r} must be an absolute path without spaces")
        for what, name in (("users group", self.users_group), ("admins group", self.admins_group)):
            if not GROUP_RE.match(name):
                out.append(f"{what} {name!r} is not a valid group name")
        if self.users_group == self.admins_group:
            out.append("the users and admins groups must differ")
        out.extend(
            f"admin {a!r} is not a valid user name" for a in self.admins if not USER_RE.match(a)
        )
        return out

    def check(self, allow_empty: bool = False) -> None:
        problems = self.problems(allow_empty)
        if problems:
            raise BatchError("refused before touching the directory:\n  " + "\n  ".join(problems))

    def name(self, index: int) -> str:
        return f"{self.prefix}{self.start + index:0{self.digits}d}"

    def names(self) -> list[str]:
        return [self.name(i) for i in range(self.count)]

    def uid(self, index: int) -> int:
        return self.uid_start + index

    @property
    def users_gid(self) -> int:
        return self.gid_start

    @property
    def admins_gid(self) -> int:
        return self.gid_start + 1

    def home(self, name: str) -> str:
        return f"{self.home_base.rstrip('/')}/{name}"


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    """A random password with upper, lower and digit (meets AD complexity rules)."""
    while True:
        pw = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))
        if (
            any(c.islower() for c in pw)
            and any(c.isupper() for c in pw)
            and sum(c.isdigit() for c in pw) >= 2
        ):
            return pw
