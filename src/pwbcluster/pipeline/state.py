"""The state file: each stage's outputs and the fingerprint of the inputs that made them.

``build/<deployment>/state.json`` is written atomically after every stage transition, so
a crash leaves either the old or the new state, never half of one. It holds no secret:
contracts carry secret ARNs only.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pwbcluster.errors import StageError

STATE_VERSION = 1


@dataclass
class StageRecord:
    status: str  # "running" | "done" | "failed" | "interrupted"
    fingerprint: str
    outputs: dict[str, Any] | None = None
    error: str | None = None
    started: float = 0.0
    finished: float = 0.0
    # Failed before it acted (a missing tool or credential): nothing exists because of it.
    created_nothing: bool = False

    @property
    def seconds(self) -> float:
        return max(0.0, self.finished - self.started) if self.finished else 0.0


@dataclass
class State:
    path: Path
    mode: str
    stages: dict[str, StageRecord] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, path: Path, mode: str) -> State:
        if not path.exists():
            return cls(path=path, mode=mode)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StageError(
                f"{path}: unreadable state file ({exc}); move it aside to start over"
            ) from exc
        stored_mode = raw.get("mode", mode)
        records = raw.get("stages", {})
        if stored_mode != mode and all(r.get("created_nothing") for r in records.values()):
            # Only stages that stopped before acting: nothing of that mode exists, so the
            # other mode may start afresh (the old records mean nothing to it).
            return cls(path=path, mode=mode)
        if stored_mode != mode and records:
            flag = " --sandbox" if stored_mode == "sandbox" else ""
            raise StageError(
                f"{path} records a {stored_mode} deployment; this run is {mode}. "
                f"Remove it first with `invoke down{flag}`."
            )
        stages = {name: StageRecord(**rec) for name, rec in raw.get("stages", {}).items()}
        return cls(path=path, mode=mode, stages=stages)

    def record(self, name: str, rec: StageRecord) -> None:
        with self._lock:
            self.stages[name] = rec
            self._write()

    def forget(self, name: str) -> None:
        """Drop a destroyed stage; the file goes when no stage is left (nothing deployed)."""
        with self._lock:
            self.stages.pop(name, None)
            if self.stages:
                self._write()
            else:
                self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "version": STATE_VERSION,
            "mode": self.mode,
            "updated": time.time(),
            "stages": {n: vars(r) for n, r in sorted(self.stages.items())},
        }
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state.", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, self.path)
