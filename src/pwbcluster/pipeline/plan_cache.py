"""Input fingerprints for the expensive steps of ``invoke plan``, so a re-plan redoes only
the steps whose own inputs changed.

Each step names exactly what it reads and hashes it into a key (``digest``): its rendered
input (a pcluster job's request, a template's bytes, a Pulumi program's arguments, the
diagram's Graphviz source), the toolkit's own code (every file under ``src/pwbcluster``,
``code_digest``: any code change redoes every step) and the versions of the tools it runs
(the pcluster venv's requirements and patch files, cfn-lint's, Pulumi's, Graphviz's). The
step's previous result is kept in ``build/<deployment>/.plan-cache/<step>.json`` with its
key; a different key, a missing output file or an unreadable entry redoes the step.

``PWBCLUSTER_PLAN_NO_CACHE=1`` (or the older ``PWBCLUSTER_PCLUSTER_NO_CACHE=1``) redoes
every step.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, is_dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

CACHE_DIR = ".plan-cache"
ENV_NO_CACHE = "PWBCLUSTER_PLAN_NO_CACHE"
ENV_NO_CACHE_OLD = "PWBCLUSTER_PCLUSTER_NO_CACHE"
# Bump when the layout of an entry changes: old entries then miss.
FORMAT = "pwbcluster-plan-cache-v1"

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def disabled() -> bool:
    return any(
        os.environ.get(name, "") not in ("", "0") for name in (ENV_NO_CACHE, ENV_NO_CACHE_OLD)
    )


def _plain(value: Any) -> Any:
    """A JSON-able form of ``value``: dataclasses as dicts, sets sorted, paths as text."""
    if is_dataclass(value) and not isinstance(value, type):
        return {"__dataclass__": type(value).__qualname__, **_plain(asdict(value))}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=repr)
    if isinstance(value, bytes):
        return {"__bytes__": hashlib.sha256(value).hexdigest()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    # Anything else by its repr: a repr that differs between equal values makes a miss
    # (a step redone), never a stale hit.
    return repr(value)


def digest(*parts: Any) -> str:
    """sha256 of the parts in a canonical JSON form."""
    text = json.dumps([FORMAT, *map(_plain, parts)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def files_digest(paths: Iterable[Path], root: Path | None = None) -> str:
    """sha256 over the files' names (relative to ``root`` when given) and bytes."""
    out = hashlib.sha256()
    for path in paths:
        name = str(path.relative_to(root)) if root else str(path)
        data = path.read_bytes()
        out.update(f"{name}\0{len(data)}\0".encode())
        out.update(data)
    return out.hexdigest()


@cache
def code_digest() -> str:
    """Every file of the toolkit's package (code, templates, the pcluster worker)."""
    files = sorted(
        p
        for p in PACKAGE_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )
    return files_digest(files, PACKAGE_DIR)


@cache
def versions(*distributions: str) -> dict[str, str]:
    """The installed version of each distribution ("absent" when it is not installed)."""
    out = {}
    for name in distributions:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


class StepCache:
    """One JSON entry a step: ``{"key": ..., "value": ...}`` under the build directory."""

    def __init__(self, build_dir: Path) -> None:
        self.dir = build_dir / CACHE_DIR

    def path(self, step: str) -> Path:
        return self.dir / f"{step}.json"

    def get(self, step: str, key: str, files: Sequence[str] = ()) -> Any | None:
        """The value stored under ``key``, or None (a miss) when the key differs, the entry
        is unreadable, caching is off, or an output file recorded with it (and each of
        ``files``) is gone or no longer holds the bytes the step wrote."""
        if disabled():
            return None
        try:
            entry = json.loads(self.path(step).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        outputs = entry.get("files")
        if not isinstance(outputs, dict) or any(f not in outputs for f in files):
            return None
        for name, sha in outputs.items():
            # An output changed or removed since (by hand, or by another step) is redone.
            try:
                if hashlib.sha256(Path(name).read_bytes()).hexdigest() != sha:
                    return None
            except OSError:
                return None
        return entry.get("value")

    def put(self, step: str, key: str, value: Any, files: Sequence[str | Path] = ()) -> None:
        """Store ``value``; ``files`` are outputs that must still hold these bytes for a hit."""
        self.dir.mkdir(parents=True, exist_ok=True)
        outputs = {str(f): hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files}
        entry = {"key": key, "files": outputs, "value": value}
        tmp = self.path(step).with_suffix(".tmp")
        tmp.write_text(json.dumps(entry, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(self.path(step))

    def drop(self, step: str) -> None:
        self.path(step).unlink(missing_ok=True)


def note_reused(ctx: Any, step: str) -> None:
    """Record that ``step`` kept its previous result (printed once, at the end)."""
    ctx.extra.setdefault("reused", []).append(step)
