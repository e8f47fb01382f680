"""What ``invoke aux.*`` does: the network and services stages alone, through the pipeline.

``aux.up`` is ``invoke up --stage services`` (network first, as it needs it), with the
same state file and resume; ``aux.down`` removes those two stages when nothing above them
remains; ``aux.outputs`` prints their recorded contracts; ``aux.preview`` asks Pulumi what
``aux.up`` would change (real account only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console

from pwbcluster.config import Config
from pwbcluster.contracts.stage import StageContext, Upstream
from pwbcluster.errors import StageError
from pwbcluster.pipeline import orchestrate
from pwbcluster.stages.network import stage as network_stage
from pwbcluster.stages.services import stage as services_stage

log = logging.getLogger(__name__)

PARTS = ("network", "services")


def check_parts(parts: Sequence[str] | None) -> list[str]:
    chosen = list(parts or PARTS)
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        raise StageError(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    return [p for p in PARTS if p in chosen]


def preview(config: Config, console: Console, parts: Sequence[str] | None = None) -> None:
    from pwbcluster.aws.account import AwsAccount

    deployment = config.model.deployment
    account = AwsAccount(
        config.region,
        deployment.pulumi_backend,
        pulumi_secrets_provider=deployment.pulumi_secrets_provider,
    )
    for part in check_parts(parts):
        network = orchestrate.recorded(config, "real", "network")
        if part == "services" and network is None:
            log.warning(
                "the network stage has no outputs yet: previewing services against "
                "placeholder network ids (run `invoke aux.up --part network` first)"
            )
            network = network_stage.plan(StageContext(config, Upstream(), account))
        ctx = StageContext(config, Upstream(network=network), account, console)
        module = network_stage if part == "network" else services_stage
        console.print(f"{part}: {account.stack_preview(module.request(ctx))}", highlight=False)


def up(
    config: Config, mode: str, console: Console, parts: Sequence[str] | None = None
) -> dict[str, Any]:
    chosen = set(check_parts(parts))
    outputs = orchestrate.up(config, mode, console, chosen)
    return {k: v for k, v in outputs.items() if k in chosen}


def down(
    config: Config,
    mode: str,
    console: Console,
    confirm: Callable[[str], bool],
    parts: Sequence[str] | None = None,
) -> list[str]:
    order = list(reversed(check_parts(parts)))
    question = (
        f"Destroy the {' and '.join(order)} stage(s) of deployment '{config.name}' "
        f"in {config.region} ({mode})? Everything in them is deleted."
    )
    if not confirm(question):
        raise StageError("nothing destroyed (not confirmed)")
    removed, _ = orchestrate.down(config, mode, console, set(order))
    return removed


def outputs(config: Config, mode: str, parts: Sequence[str] | None = None) -> dict[str, Any]:
    found = {part: orchestrate.recorded(config, mode, part) for part in check_parts(parts)}
    missing = [p for p, v in found.items() if v is None]
    if missing:
        raise StageError(
            f"no finished {', '.join(missing)} stage recorded in {orchestrate.state_path(config)}: "
            "run `invoke aux.up` first"
        )
    return found
