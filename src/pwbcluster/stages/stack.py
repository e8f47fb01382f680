"""The network and services stages above their adapters (real AWS or the sandbox).

``run_part(ctx, "network")`` builds the part's Args from the config (and the network
contract, for services), then either drives the real stack through the Automation API or
runs the same program with ``MotoMocks`` against the sandbox's moto server. Either way
the result is the typed contract. Sandbox runs write a ledger of what they created (ids
only) under ``build/<deployment>/`` so ``destroy_part`` can remove it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pwbcluster.contracts import PROJECT, NetworkOutputs, ServicesOutputs, stack_name
from pwbcluster.errors import StageError
from pwbcluster.stages.network.args import NetworkArgs, network_args
from pwbcluster.stages.services.args import ServicesArgs, services_args

log = logging.getLogger(__name__)

PARTS = ("network", "services")
CONTRACTS: dict[str, type] = {"network": NetworkOutputs, "services": ServicesOutputs}


def part_args(config: Any, part: str, upstream: Mapping[str, Any]) -> NetworkArgs | ServicesArgs:
    if part == "network":
        return network_args(config.data, config.tags())
    network = upstream.get("network")
    if network is None:
        raise StageError("the services stage needs the network stage's outputs")
    from pwbcluster.stages.services.toolwheel import build_tool_wheel

    # The jump host installs pwb-users from this wheel (uploaded by the services program).
    wheel = build_tool_wheel(Path(config.build_dir) / "jump")
    return services_args(config.data, config.tags(), network, tool_wheel=str(wheel))


def program_for(part: str, args: Any) -> Callable[[], dict[str, Any]]:
    from pwbcluster.stages.network.program import network_program
    from pwbcluster.stages.services.program import services_program

    build = network_program if part == "network" else services_program
    return lambda: build(args)


def ledger_path(config: Any, part: str) -> Path:
    return Path(config.build_dir) / f"sandbox-{part}-resources.json"


def run_part(ctx: Any, part: str) -> Any:
    args = part_args(ctx.config, part, ctx.upstream)
    if ctx.mode == "sandbox":
        return _run_sandbox(ctx, part, args)
    from pwbcluster.aws import pulumi_driver as driver

    if ctx.dry_run:
        driver.up(ctx.config, part, args, preview=True)
        return _planned(ctx.config, part)
    return driver.up(ctx.config, part, args)


def _planned(config: Any, part: str) -> Any:
    from pwbcluster import contracts

    if part == "network":
        return contracts.planned_network(config.region, config.name)
    directory = config.data["aux"]["directory"]
    return contracts.planned_services(
        config.region, config.name, directory["domain"], bool(directory["ldaps"])
    )


def _run_sandbox(ctx: Any, part: str, args: Any) -> Any:
    from pwbcluster.sandbox.fakes import OfflineMocks
    from pwbcluster.sandbox.mockrun import run_with_mocks
    from pwbcluster.sandbox.pulumi_moto import MotoMocks
    from pwbcluster.stages.stack_outputs import to_contract

    cls = CONTRACTS[part]
    stack = stack_name(ctx.config.name, part)
    if ctx.dry_run:
        run = run_with_mocks(
            program_for(part, args), OfflineMocks(ctx.config.region), PROJECT, stack, preview=True
        )
        return to_contract(cls, run.outputs, simulated=True)
    endpoint = (ctx.extra or {}).get("aws_endpoint_url")
    if not endpoint:
        raise StageError(
            f"the sandbox {part} stage needs a moto server: run it through "
            "`invoke up --sandbox`, which starts one (extra['aws_endpoint_url'])"
        )
    _replace_previous(ctx.config, part, endpoint)
    mocks = MotoMocks(endpoint, ctx.config.region)
    try:
        run = run_with_mocks(program_for(part, args), mocks, PROJECT, stack)
    finally:
        _write_ledger(ctx.config, part, mocks.ledger.to_json())
    if mocks.ledger.simulated:
        log.info(
            "sandbox %s: simulated (moto cannot create them): %s",
            part,
            ", ".join(sorted(mocks.ledger.simulated)),
        )
    return to_contract(cls, run.outputs, simulated=True)


def _replace_previous(config: Any, part: str, endpoint: str) -> None:
    """A re-run replaces what the previous sandbox run of this part created (no duplicates)."""
    from pwbcluster.sandbox.pulumi_moto import Ledger, destroy_ledger

    path = ledger_path(config, part)
    if not path.exists():
        return
    log.info("sandbox %s: removing the previous run's resources first", part)
    ledger = Ledger.from_json(json.loads(path.read_text(encoding="utf-8")))
    destroy_ledger(ledger, endpoint, config.region)  # failures are logged as warnings
    path.unlink()


def _write_ledger(config: Any, part: str, data: dict[str, Any]) -> None:
    path = ledger_path(config, part)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def destroy_part(ctx: Any, part: str, outputs: Any) -> None:
    if ctx.mode == "sandbox":
        from pwbcluster.sandbox.pulumi_moto import Ledger, destroy_ledger

        path = ledger_path(ctx.config, part)
        if not path.exists():
            log.info("sandbox %s: nothing recorded, nothing to remove", part)
            return
        endpoint = (ctx.extra or {}).get("aws_endpoint_url")
        if not endpoint:
            raise StageError(f"removing the sandbox {part} stage needs the moto server's URL")
        ledger = Ledger.from_json(json.loads(path.read_text(encoding="utf-8")))
        failures = destroy_ledger(ledger, endpoint, ctx.config.region)
        if failures:
            raise StageError(
                f"sandbox {part}: {len(failures)} resource(s) could not be removed:\n"
                + "\n".join(failures)
            )
        path.unlink()
        return
    from pwbcluster.aws import pulumi_driver as driver

    driver.destroy(ctx.config, part)
