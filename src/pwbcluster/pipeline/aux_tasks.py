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


def renew_certs(
    config: Config,
    mode: str,
    console: Console,
    confirm: Callable[[str], bool],
    dry_run: bool = False,
) -> list[str]:
    """Re-issue the generated server certificates (LDAPS front, Workbench) and re-import
    them into ACM in place (same ARNs, so the listeners follow); the CAs the nodes trust
    stay. Plan, confirm, act, verify: returns the new notAfter lines."""
    import dataclasses
    import time

    from pwbcluster.contracts import to_dict
    from pwbcluster.pipeline.state import State
    from pwbcluster.stages.services.certs import SERVER_CERT_TYPE
    from pwbcluster.stages.services.expiry import recorded_certificates

    services = orchestrate.recorded(config, mode, "services")
    network = orchestrate.recorded(config, mode, "network")
    if services is None or network is None:
        raise StageError(
            f"deployment '{config.name}' ({mode}) has no services stage recorded: "
            "nothing to renew (run `invoke up` first)"
        )
    certs = recorded_certificates(services)
    if not certs:
        raise StageError(
            "no generated certificate is recorded: the deployment brings its own "
            "(cluster.workbench.tls_certificate_arn) or has no LDAPS front, or its state "
            "predates the record (run `invoke aux.up` once)"
        )
    for cert in certs:
        console.print(
            f"would re-issue the {cert.purpose} certificate (valid until "
            f"{cert.not_after:%Y-%m-%d}) and re-import it into ACM in place",
            highlight=False,
        )
    if dry_run:
        console.print("dry run: nothing changed", highlight=False)
        return []
    if mode == "real" and not confirm(
        f"Re-issue the generated certificates of deployment '{config.name}' in {config.region}?"
    ):
        raise StageError("nothing renewed (not confirmed)")
    state = State.load(orchestrate.state_path(config), mode)
    previous = state.stages["services"]
    with orchestrate.account(config, mode, console, start_server=False) as target:
        ctx = StageContext(config, Upstream(network=network), target, console)
        started = time.time()
        renewed = services_stage.run(ctx, replace_types=(SERVER_CERT_TYPE,))
    state.record(
        "services",
        dataclasses.replace(
            previous, outputs=to_dict(renewed), started=started, finished=time.time()
        ),
    )
    before = {c.purpose: c.not_after for c in certs}
    lines = []
    for cert in recorded_certificates(renewed):
        if cert.not_after <= before.get(cert.purpose, cert.not_after):
            raise StageError(f"the {cert.purpose} certificate was not re-issued")
        lines.append(f"{cert.purpose}: valid until {cert.not_after:%Y-%m-%d}")
    return lines
