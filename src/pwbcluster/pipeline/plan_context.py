"""What ``invoke plan`` gathers as its steps run: the planned upstream outputs, what the
stages handed the plan account, the files written, notes and timings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pwbcluster import contracts
from pwbcluster.config import Config
from pwbcluster.contracts.account import ClusterDeploy
from pwbcluster.files import write_text
from pwbcluster.sandbox.plan import PlanAccount


@dataclass
class PlanContext:
    config: Config
    build_dir: Path
    network: contracts.NetworkOutputs
    services: contracts.ServicesOutputs
    image: contracts.ImageOutputs
    scripts_prefix: str
    # What the cluster stage handed the account to check (rendered config, warnings...).
    cluster: ClusterDeploy | None = None
    image_config: dict[str, Any] | None = None
    account: PlanAccount | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def write(self, relative: str, text: str, mode: int = 0o644) -> Path:
        path = write_text(self.build_dir / relative, text, mode)
        self.files.append(path)
        return path


PlanStep = tuple[str, Callable[[PlanContext], None]]
