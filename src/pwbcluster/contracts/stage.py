"""How the orchestrator calls a stage: its context and its spec.

Every stage package (``pwbcluster.stages.<name>``) exports ``SPEC``, a ``StageSpec`` whose
``run`` returns the stage's typed outputs, ``destroy`` removes what it made, ``plan``
returns planned outputs for ``invoke plan`` (rendering and checking what ``run`` would
use) and ``inputs`` describes what the stage's fingerprint covers. A stage reads only its
own configuration section and the upstream outputs it declares in ``needs``; the context
carries the recorded upstream outputs on destroy too, so no stage reads the state file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pwbcluster.contracts import (
    ClusterOutputs,
    ImageOutputs,
    NetworkOutputs,
    ServicesOutputs,
    UsersOutputs,
)
from pwbcluster.errors import StageError

if TYPE_CHECKING:
    from rich.console import Console

    from pwbcluster.config import Config
    from pwbcluster.contracts.account import Account


@dataclass(frozen=True)
class Upstream:
    """The outputs of the stages a stage needs, by name; asking for another one fails."""

    network: NetworkOutputs | None = None
    services: ServicesOutputs | None = None
    image: ImageOutputs | None = None
    cluster: ClusterOutputs | None = None
    users: UsersOutputs | None = None

    def get(self, name: str) -> Any:
        return getattr(self, name, None)

    def require(self, name: str) -> Any:
        value = self.get(name)
        if value is None:
            raise StageError(
                f"the {name} stage's outputs are not available here: run it first "
                f"(`invoke up --stage {name}`)"
            )
        return value

    def as_dict(self) -> dict[str, Any]:
        return {
            name: value
            for name in ("network", "services", "image", "cluster", "users")
            if (value := getattr(self, name)) is not None
        }


@dataclass(frozen=True)
class StageContext:
    """What a stage gets: the deployment, its upstream outputs, the account, a console."""

    config: Config
    upstream: Upstream
    account: Account
    console: Console | None = None

    @property
    def build_dir(self) -> Path:
        return self.config.build_dir

    def say(self, message: str) -> None:
        """Progress a person should see (and the run log keeps)."""
        if self.console is not None:
            self.console.print(message, highlight=False)


@dataclass(frozen=True)
class StageSpec:
    name: str
    needs: tuple[str, ...]
    run: Callable[[StageContext], Any]
    # JSON-able description of the stage's own inputs (config sections, script hashes...).
    inputs: Callable[[StageContext], Any]
    destroy: Callable[[StageContext, Any], None]
    plan: Callable[[StageContext], Any]
    # Typical duration in minutes on AWS, for the plan's critical path.
    minutes: float = 1.0
    description: str = ""
    # Upstream stages whose recorded outputs destroy needs (a subset of ``needs``).
    destroy_needs: tuple[str, ...] = field(default=())


def section_inputs(ctx: StageContext, *sections: str) -> dict[str, Any]:
    """The parts of the merged config a stage depends on, plus the deployment identity."""
    data = ctx.config.data
    out: dict[str, Any] = {"deployment": {k: data["deployment"][k] for k in ("name", "region")}}
    out["tags"] = ctx.config.tags()
    for dotted in sections:
        node: Any = data
        for part in dotted.split("."):
            node = node[part]
        out[dotted] = node
    return out
