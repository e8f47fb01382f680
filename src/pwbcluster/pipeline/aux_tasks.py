"""What ``invoke aux.*`` does: preview, create, remove and read the two real stacks.

These talk to AWS through the Pulumi CLI (Automation API); ``invoke up`` runs the same
stages through the stage runner, with its state file and resume. Services need the
network's contract, which is read back from the network stack's outputs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from pwbcluster import contracts
from pwbcluster.aws import pulumi_driver as driver
from pwbcluster.errors import StageError
from pwbcluster.stages.stack import PARTS, part_args

log = logging.getLogger(__name__)


def check_parts(parts: Sequence[str] | None) -> list[str]:
    chosen = list(parts or PARTS)
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        raise StageError(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    return [p for p in PARTS if p in chosen]


def _network_contract(config: Any, allow_planned: bool) -> Any:
    try:
        return driver.outputs(config, "network", None)
    except StageError:
        if not allow_planned:
            raise
        log.warning(
            "the network stack has no outputs yet: previewing services against placeholder "
            "network ids (run `invoke aux.up --part network` first for a faithful preview)"
        )
        return contracts.planned_network(config.region, config.name)


def preview(config: Any, parts: Sequence[str] | None = None) -> None:
    for part in check_parts(parts):
        upstream = {} if part == "network" else {"network": _network_contract(config, True)}
        driver.up(config, part, part_args(config, part, upstream), preview=True)


def up(config: Any, parts: Sequence[str] | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for part in check_parts(parts):
        if part == "network":
            results[part] = driver.up(config, part, part_args(config, part, {}))
            continue
        network = results.get("network") or _network_contract(config, False)
        results[part] = driver.up(config, part, part_args(config, part, {"network": network}))
    return results


def down(config: Any, confirm: Callable[[str], bool], parts: Sequence[str] | None = None) -> None:
    order = list(reversed(check_parts(parts)))
    question = (
        f"Destroy the {' and '.join(order)} stack(s) of deployment '{config.name}' "
        f"in {config.region}? Everything in them is deleted."
    )
    if not confirm(question):
        raise StageError("nothing destroyed (not confirmed)")
    for part in order:
        driver.destroy(config, part)


def outputs(config: Any, parts: Sequence[str] | None = None) -> dict[str, Any]:
    return {part: driver.outputs(config, part, None) for part in check_parts(parts)}
