"""One guard for every value that reaches a rendered file a node reads or runs as root.

The schemas already constrain each key, but a renderer must not rely on them: a value
from a stage output, a default, or a schema that someone loosened reaches the file all
the same. ``check_value`` refuses what would change a file's meaning whatever the schema
said: a line break (a second line is a second setting: ``"pwb-admins\\nauth-none=1"``),
another control character, an empty value where one is required, and in ``key=value``
files an ``=`` or ``,`` where the target reads it as syntax. ``check_values`` walks a
dataclass (or mapping, sequence) and names the offending field.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from pwbcluster.errors import ToolkitError

# A directory group name as rserver.conf's group options and an LDAP filter take it:
# no separator (",", "="), no filter syntax ("()*\\"), no whitespace at its ends.
GROUP_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnsafeValueError(ToolkitError):
    """A value would change the meaning of the file it is rendered into."""


def check_value(
    where: str,
    key: str,
    value: str,
    *,
    allow_empty: bool = True,
    allow_equals: bool = True,
    pattern: re.Pattern[str] | None = None,
) -> str:
    """Return ``value`` unchanged, or raise naming ``where`` (the file) and ``key``."""
    if _CONTROL.search(value):
        raise UnsafeValueError(
            f"{where}: {key} contains a line break or other control characters ({value!r}); "
            "it would add lines to the file. Use a single-line value."
        )
    if not value and not allow_empty:
        raise UnsafeValueError(f"{where}: {key} is empty; a value is required.")
    if not allow_equals and "=" in value:
        raise UnsafeValueError(
            f"{where}: {key} contains '=' ({value!r}), which this file reads as syntax."
        )
    if pattern is not None and value and not pattern.match(value):
        raise UnsafeValueError(
            f"{where}: {key} is {value!r}; expected a value matching {pattern.pattern}."
        )
    return value


def check_values(where: str, obj: Any, path: str = "") -> None:
    """Apply ``check_value`` (control characters) to every string inside ``obj``."""
    if isinstance(obj, str):
        check_value(where, path or "value", obj)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            check_values(where, getattr(obj, f.name), f"{path}.{f.name}" if path else f.name)
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            check_values(where, v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_values(where, v, f"{path}[{i}]")
