"""What the ``invoke image.*`` tasks do: dry run, status, list, logs, delete, lock.

Wiring lives in ``pwbcluster.tasks.image``; everything here takes a loaded config and a
rich console. Real AWS is reached through boto3 and the pcluster CLI; ``sandbox=True``
talks to the deployment's running moto server instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pwbcluster import contracts
from pwbcluster.aws.pcluster_images import LogFollower, PclusterImages
from pwbcluster.errors import StageError, ToolkitError
from pwbcluster.pcluster import amis
from pwbcluster.pcluster.official import official_name_prefix
from pwbcluster.pcluster.venv import PCLUSTER_VERSION
from pwbcluster.pipeline import orchestrate
from pwbcluster.stages.image import pylock, service
from pwbcluster.stages.image.envfile import unverified_downloads

DRY_RUN_PARENT = "ami-planned0000000000"


def recorded_network(config: Any, mode: str) -> contracts.NetworkOutputs | None:
    """The network outputs recorded for this mode; None when there are none (or the
    state file belongs to the other mode: a dry run then shows placeholders)."""
    try:
        network: contracts.NetworkOutputs | None = orchestrate.recorded(config, mode, "network")
    except StageError:
        return None
    return network


def recorded_image(config: Any, mode: str) -> contracts.ImageOutputs | None:
    image: contracts.ImageOutputs | None = orchestrate.recorded(config, mode, "image")
    return image


def dry_run(config: Any, console: Console, mode: str = "real") -> service.PreparedImage:
    """Fingerprint, upload list and build-image config, with no AWS call at all."""
    image = config.model.image
    network = recorded_network(config, mode) or contracts.planned_network(
        config.region, config.name
    )
    parent = image.parent_ami or DRY_RUN_PARENT
    prepared = service.prepare(config, network, str(parent))
    console.print(f"[bold]Fingerprint[/bold] {prepared.fingerprint}")
    console.print(f"Image id / AMI name: {prepared.image_id}", highlight=False)
    if not image.parent_ami:
        console.print(
            "Parent image: looked up when building (newest available "
            f"{official_name_prefix(image.os, PCLUSTER_VERSION)}*, owner amazon); "
            f"{DRY_RUN_PARENT} stands for it below. The fingerprint does not depend on it.",
            highlight=False,
        )
    for item in unverified_downloads(image):
        console.print(f"[yellow]Unverified download[/yellow]: {item}", highlight=False)
    table = Table(title=f"Upload to s3://{network.bucket_name}/ (skipped when already there)")
    table.add_column("key")
    table.add_column("bytes", justify="right")
    table.add_column("sha256", justify="left")
    for rel in sorted(prepared.bundle.files):
        body = prepared.bundle.files[rel]
        digest = hashlib.sha256(body).hexdigest()[:16]
        table.add_row(prepared.bundle.prefix + rel, str(len(body)), digest)
    console.print(table)
    console.print(f"[bold]build-image config[/bold] ({prepared.config_path}):")
    console.print(prepared.config_text, highlight=False, markup=False, soft_wrap=True)
    console.print(
        f"Would run: pcluster build-image --image-id {prepared.image_id} "
        f"--image-configuration {prepared.config_path} --region {config.region} "
        "(unless an available image already carries this fingerprint)",
        highlight=False,
    )
    return prepared


@contextlib.contextmanager
def ec2_client(config: Any, sandbox: bool) -> Iterator[Any]:
    """EC2 of the deployment's account (the running sandbox's, with ``sandbox``)."""
    mode = "sandbox" if sandbox else "real"
    with orchestrate.account(config, mode, Console(stderr=True), start_server=False) as target:
        yield target.client("ec2")


def status(config: Any, console: Console, sandbox: bool = False) -> None:
    mode = "sandbox" if sandbox else "real"
    current = service.fingerprint_for(config)
    recorded = recorded_image(config, mode)
    console.print(f"current fingerprint: {current}", highlight=False)
    if recorded is None:
        console.print("no image recorded for this deployment: `invoke image.build` builds one")
        return
    label = " (simulated)" if recorded.simulated else ""
    console.print(
        f"recorded image: {recorded.ami_id}{label} {recorded.image_name}, "
        f"fingerprint {recorded.fingerprint}",
        highlight=False,
    )
    if recorded.fingerprint == current:
        console.print("[green]up to date[/green]: inputs unchanged since it was built")
    else:
        console.print("[yellow]out of date[/yellow]: the next build makes a new image")
    if not sandbox and not recorded.simulated:
        described = PclusterImages(config.region).describe(recorded.image_name)
        console.print(
            f"pcluster: {described.get('imageBuildStatus', 'unknown to pcluster')}",
            highlight=False,
        )


def list_images(config: Any, console: Console, sandbox: bool = False) -> list[dict[str, Any]]:
    with ec2_client(config, sandbox) as ec2:
        images = amis.list_images(ec2)
    current = service.fingerprint_for(config)
    table = Table(title=f"Images with a pwbcluster fingerprint in {config.region}")
    for column in ("ami", "name", "state", "created", "fingerprint", "current"):
        table.add_column(column)
    for image in images:
        fp = amis.tags_of(image).get(amis.FINGERPRINT_TAG, "")
        simulated = " (simulated)" if amis.tags_of(image).get(amis.SIMULATED_TAG) else ""
        table.add_row(
            image["ImageId"] + simulated,
            str(image.get("Name", "")),
            str(image.get("State", "")),
            str(image.get("CreationDate", "")),
            fp[:16],
            "yes" if fp == current else "",
        )
    console.print(table)
    return images


def logs(config: Any, console: Console, image_id: str | None = None) -> int:
    target = image_id or _recorded_name(config)
    client = PclusterImages(config.region)
    printed = LogFollower(client, target, console).poll()
    if not printed:
        console.print(f"no log events for {target} (yet)")
    return printed


def _recorded_name(config: Any) -> str:
    recorded = recorded_image(config, "real")
    if recorded is None:
        raise ToolkitError("no image recorded for this deployment: pass --image-id")
    return recorded.image_name


def delete(
    config: Any,
    console: Console,
    image: str,
    sandbox: bool = False,
    dry_run: bool = False,
    yes: bool = False,
) -> bool:
    """Plan, confirm, act, verify: remove one of our images (AMI id or pcluster image id)."""
    mode = "sandbox" if sandbox else "real"
    with orchestrate.account(config, mode, console, start_server=False) as target:
        ec2 = target.client("ec2")
        found = _find(ec2, image)
        if found is None:
            raise ToolkitError(f"no image of ours matches '{image}' in {config.region}")
        ami, name = found["ImageId"], str(found.get("Name", ""))
        console.print(f"would delete {ami} ({name}) and its snapshots", highlight=False)
        if dry_run:
            return False
        if not yes and input("Delete it? Type 'yes': ").strip() != "yes":
            console.print("not deleted")
            return False
        simulated = amis.tags_of(found).get(amis.SIMULATED_TAG) == "true"
        target.delete_image(name, ami, built_by_pcluster=not simulated)
        gone = not ec2.describe_images(
            Owners=["self"], Filters=[{"Name": "image-id", "Values": [ami]}]
        )["Images"]
    console.print(f"deleted {ami}" if gone else f"{ami}: deletion in progress (pcluster)")
    return True


def _find(ec2: Any, image: str) -> dict[str, Any] | None:
    for found in amis.list_images(ec2):
        if image in (found["ImageId"], found.get("Name")):
            return dict(found)
    return None


def lock_jupyter(config: Any, console: Console, uv: str | None = None) -> None:
    """Resolve image.jupyter's pins against the index and write the hashed lock."""
    sibling = Path(sys.executable).with_name("uv")
    found = uv or shutil.which("uv") or (str(sibling) if sibling.exists() else None)
    if not found:
        raise pylock.LockError("uv is not installed (pass --uv PATH)")
    path = pylock.regenerate(config.model.image, service.image_dir(config), uv=found)
    console.print(f"wrote {path} (Python {pylock.python_of(config.model.image)}); commit it")
