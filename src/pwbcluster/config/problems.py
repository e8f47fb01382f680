"""Problems found in a configuration, each pinned to a file, a line and a key path."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

Path = tuple[str | int, ...]


class Level(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


def format_path(path: Sequence[str | int]) -> str:
    """``("cluster", "queues", 1, "max_count")`` -> ``cluster.queues[1].max_count``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


@dataclass(frozen=True)
class Origin:
    """Where a value came from: the file and the 1-based line of its key or list item."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration."""

    origin: Origin
    path: Path
    message: str
    expected: str | None = None
    level: Level = Level.ERROR
    check: str = "schema"

    def __str__(self) -> str:
        text = f"{self.origin} {format_path(self.path)}: {self.message}"
        if self.expected:
            text += f"; expected {self.expected}"
        if self.level is Level.WARNING:
            text = f"warning: {text} [{self.check}]"
        elif self.check not in ("schema", "yaml"):
            text += f" [{self.check}]"
        return text

    def sort_key(self) -> tuple[str, int, str]:
        return (self.origin.file, self.origin.line, format_path(self.path))
