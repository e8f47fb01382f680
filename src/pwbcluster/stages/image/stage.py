"""The image stage: the custom AMI, built with ``pcluster build-image`` when its inputs change.

Shared steps (``pwbcluster.stages.image.service``): fingerprint the inputs, render
``build/<deployment>/image-config.yaml`` and the upload bundle. Then:

- an available image of ours with the same fingerprint tag is returned at once (no
  upload, no pcluster call): the hour-long build happens only when something changed;
- real: look up the official ParallelCluster parent, upload the bundle to the scripts
  bucket (objects already there are skipped), run ``pcluster build-image`` (or pick up a
  build of the same id already running), stream its log while waiting;
- sandbox: the same against the moto server, with pcluster's own schema and validators
  on the rendered config, then a labelled stand-in AMI (``simulated=True``).
"""

from __future__ import annotations

import logging
from typing import Any

import boto3
from rich.console import Console

from pwbcluster.aws.pcluster_images import PclusterImages, ami_of, wait_for_build
from pwbcluster.contracts import ImageOutputs, NetworkOutputs
from pwbcluster.errors import StageError
from pwbcluster.pcluster.venv import PCLUSTER_VERSION
from pwbcluster.pipeline.registry import section_inputs
from pwbcluster.pipeline.runner import StageContext
from pwbcluster.sandbox.image_standins import (
    register_standin,
    remove_parent_standins,
    sandbox_parent,
)
from pwbcluster.stages.image import amis, bundle, cleanup, service
from pwbcluster.stages.image.envfile import unverified_downloads
from pwbcluster.stages.image.parent import resolve_parent

log = logging.getLogger(__name__)

# pcluster tags the AMIs it builds with their image id.
PCLUSTER_IMAGE_TAG = "parallelcluster:image_id"


def inputs(ctx: StageContext) -> Any:
    out = section_inputs(ctx, "image")
    # The fingerprint also covers the scripts' bytes, which the config section does not.
    out["image_fingerprint"] = service.fingerprint_for(ctx.config)
    return out


def _session(ctx: StageContext) -> tuple[Any, Any]:
    endpoint = ctx.extra.get("aws_endpoint_url") if ctx.mode == "sandbox" else None
    if ctx.mode == "sandbox" and not endpoint:
        raise StageError("sandbox mode without a moto endpoint (ctx.extra['aws_endpoint_url'])")
    session = boto3.Session(region_name=ctx.config.region)
    return session.client("ec2", endpoint_url=endpoint), session.client("s3", endpoint_url=endpoint)


def _outputs(
    ctx: StageContext, ami: str, fingerprint: str, network: NetworkOutputs, simulated: bool
) -> ImageOutputs:
    image = ctx.config.data["image"]
    return ImageOutputs(
        ami_id=ami,
        image_name=service.image_id(image, fingerprint),
        fingerprint=fingerprint,
        os=image["os"],
        scripts_prefix=bundle.scripts_prefix(fingerprint),
        simulated=simulated,
        bucket_name=network.bucket_name,
    )


def run(ctx: StageContext) -> ImageOutputs:
    network: NetworkOutputs = ctx.upstream["network"]
    console = Console(stderr=True)
    ec2, s3 = _session(ctx)
    fingerprint = service.fingerprint_for(ctx.config)
    existing = amis.find_by_fingerprint(ec2, fingerprint, ctx.config.name)
    if existing:
        simulated = amis.tags_of(existing).get(amis.SIMULATED_TAG) == "true"
        console.print(
            f"image: {existing['ImageId']} already has fingerprint {fingerprint[:16]}: "
            "nothing to build"
        )
        return _outputs(ctx, existing["ImageId"], fingerprint, network, simulated)
    if ctx.mode == "sandbox":
        return _run_sandbox(ctx, network, ec2, s3, console)
    return _run_real(ctx, network, ec2, s3, console)


def _run_real(
    ctx: StageContext, network: NetworkOutputs, ec2: Any, s3: Any, console: Console
) -> ImageOutputs:
    image = ctx.config.data["image"]
    parent = resolve_parent(ec2, image, PCLUSTER_VERSION)
    prepared = service.prepare(ctx.config, network, parent)
    for item in unverified_downloads(image):
        console.print(f"image: [yellow]unverified download[/yellow]: {item}", highlight=False)
    report = bundle.upload_bundle(s3, prepared.bundle)
    console.print(
        f"image: scripts at s3://{network.bucket_name}/{prepared.scripts_prefix} "
        f"({len(report.uploaded)} uploaded, {len(report.skipped)} already there)"
    )
    client = PclusterImages(ctx.config.region)
    described = client.describe(prepared.image_id)
    state = described.get("imageBuildStatus")
    if state == "BUILD_COMPLETE":  # built earlier, found by id rather than by tag
        return _outputs(ctx, ami_of(described), prepared.fingerprint, network, simulated=False)
    if state == "BUILD_IN_PROGRESS":
        console.print(f"image: build {prepared.image_id} already running: following it")
    elif state:
        raise StageError(
            f"pcluster already has an image {prepared.image_id} in state {state}; remove it "
            f"with `invoke image.delete --image-id {prepared.image_id}` and re-run"
        )
    else:
        client.build(prepared.image_id, prepared.config_path)
        console.print(f"image: build {prepared.image_id} started from {parent}")
    ami = wait_for_build(client, prepared.image_id, console)
    return _outputs(ctx, ami, prepared.fingerprint, network, simulated=False)


def _run_sandbox(
    ctx: StageContext, network: NetworkOutputs, ec2: Any, s3: Any, console: Console
) -> ImageOutputs:
    from pwbcluster.pcluster import offline

    image = ctx.config.data["image"]
    parent = image.get("parent_ami") or sandbox_parent(ec2, image["os"], PCLUSTER_VERSION)
    prepared = service.prepare(ctx.config, network, str(parent))
    result = offline.validate_image(
        prepared.config,
        prepared.image_id,
        ctx.config.region,
        endpoint_url=ctx.extra["aws_endpoint_url"],
        standins=False,
        suppress=(*offline.SUPPRESSED_VALIDATORS, *offline.SANDBOX_SUPPRESSED_VALIDATORS),
    )
    offline.raise_for([result])
    report = bundle.upload_bundle(s3, prepared.bundle)
    tags = {t["Key"]: t["Value"] for t in prepared.config["Image"]["Tags"]}
    ami = register_standin(
        ec2,
        prepared.image_id,
        "Sandbox stand-in for a pcluster build-image result (simulated): no software installed",
        tags,
        size_gb=int(image["root_volume_gb"]),
    )
    console.print(
        f"image (sandbox): config validated by pcluster, {len(report.uploaded)} script(s) "
        f"uploaded, stand-in AMI {ami} registered (simulated: nothing was built)"
    )
    return _outputs(ctx, ami, prepared.fingerprint, network, simulated=True)


def destroy(ctx: StageContext, outputs: ImageOutputs | None) -> None:
    """Remove the image and its uploads; with no outputs (the stage failed part-way),
    whatever the stage may have made for this deployment, found by tag and by id.
    Safe to run again: what is already gone is skipped."""
    ec2, s3 = _session(ctx)
    sandbox = ctx.mode == "sandbox"
    client = None if sandbox else PclusterImages(ctx.config.region)
    removed: set[str] = set()  # pcluster deletes asynchronously: ask it once per image
    if outputs is not None:
        _remove_image(
            ec2, None if outputs.simulated else client, outputs.image_name, outputs.ami_id
        )
        removed.update((outputs.image_name, outputs.ami_id))
    for image in cleanup.deployment_images(ec2, ctx.config.name):
        tags = amis.tags_of(image)
        name = tags.get(PCLUSTER_IMAGE_TAG) or str(image.get("Name", ""))
        if image["ImageId"] in removed or name in removed:
            continue
        simulated = tags.get(amis.SIMULATED_TAG) == "true"
        _remove_image(ec2, None if simulated else client, name, image["ImageId"])
        removed.update((name, image["ImageId"]))
    pending = service.image_id(ctx.config.data["image"], service.fingerprint_for(ctx.config))
    if client is not None and pending not in removed and client.describe(pending):
        # a build that failed or was cut off before it made an AMI
        client.delete(pending, force=True)
        log.info("deleted pcluster image %s", pending)
    if sandbox or (outputs is not None and outputs.simulated):
        remove_parent_standins(ec2)
    if outputs is not None and outputs.bucket_name:
        buckets = [outputs.bucket_name]
    else:
        state_path = ctx.config.build_dir / "state.json"
        buckets = cleanup.scripts_buckets(s3, state_path, ctx.mode, ctx.config.name)
    for bucket in buckets:
        cleanup.remove_uploads(s3, bucket)


def _remove_image(ec2: Any, client: PclusterImages | None, name: str, ami_id: str) -> None:
    """Through pcluster when it knows the image (its stack goes too), else from EC2."""
    if client is not None and name and client.describe(name):
        client.delete(name, force=True)
        log.info("deleted pcluster image %s", name)
    else:
        amis.deregister(ec2, ami_id)
