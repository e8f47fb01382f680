"""What the semantic checks read when some values failed the schema.

The schema and the semantic checks run in the same pass, so one run reports every
mistake. A check must not then reason about a value the schema already refused (a
``max_count`` of ``"ten"``, a queue without a name): ``guarded`` wraps the merged data so
that reading such a value raises ``InvalidInput``. ``run_checks`` skips a check that hits
one; checks that look at several independent keys or list items catch it around each
(``with skipped_if_invalid():``), so one bad queue does not hide the others' problems.

Subtrees without an invalid value are handed out as they are (plain dicts and lists),
so a configuration that passes the schema is checked exactly as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pwbcluster.config.problems import Path, format_path

_MISSING = object()


class InvalidInput(Exception):
    """A check read a value the schema refused (or a required key that is missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(format_path(path))


def skipped_if_invalid() -> contextlib.suppress:
    """``with skipped_if_invalid():`` around one key's or one item's part of a check."""
    return contextlib.suppress(InvalidInput)


def guarded(
    data: Any, invalid: frozenset[Path], path: Path = (), seen: set[Path] | None = None
) -> Any:
    """``data`` as checks should see it, given the key paths the schema refused.

    Every refused path a check tried to read is added to ``seen``, so the runner can say
    which checks did not see everything.
    """
    seen = set() if seen is None else seen
    if path in invalid:
        seen.add(path)
        raise InvalidInput(path)
    if not any(p[: len(path)] == path and len(p) > len(path) for p in invalid):
        return data
    if isinstance(data, Mapping):
        return GuardedMapping(data, invalid, path, seen)
    if isinstance(data, list | tuple):
        return GuardedList(data, invalid, path, seen)
    return data


class GuardedMapping(Mapping[str, Any]):
    """A read-only mapping whose refused values raise ``InvalidInput`` when read."""

    def __init__(
        self, data: Mapping[str, Any], invalid: frozenset[Path], path: Path, seen: set[Path]
    ) -> None:
        self._data, self._invalid, self._path, self._seen = data, invalid, path, seen

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        # Not Mapping.get: a refused value must raise, not read as unset.
        child = (*self._path, key)
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            if child in self._invalid:  # a required key that is missing
                self._seen.add(child)
                raise InvalidInput(child)
            return default
        return guarded(value, self._invalid, child, self._seen)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class GuardedList(Sequence[Any]):
    """A read-only list whose refused items raise ``InvalidInput`` when read."""

    def __init__(
        self, data: Sequence[Any], invalid: frozenset[Path], path: Path, seen: set[Path]
    ) -> None:
        self._data, self._invalid, self._path, self._seen = data, invalid, path, seen

    def __getitem__(self, index: int) -> Any:  # type: ignore[override]
        value = self._data[index]  # IndexError ends iteration, as for a list
        position = index + len(self._data) if index < 0 else index
        return guarded(value, self._invalid, (*self._path, position), self._seen)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(list(self))


__all__ = ["InvalidInput", "guarded", "skipped_if_invalid"]
