"""The image stage: the custom AMI, built with ``pcluster build-image`` when its inputs change.

Shared steps (``stages.image.service``): fingerprint the inputs, render
``build/<deployment>/image-config.yaml`` and the upload bundle. Then:

- an available image of ours with the same fingerprint tag is returned at once (no
  upload, no build): the hour-long build happens only when something changed;
- otherwise the parent image (``image.parent_ami`` or the official ParallelCluster AMI, as
  the account finds it), the account's check of the build-image config, the upload
  (objects already there are skipped) and the account's build, whose AMI is the output.

The account decides what "check" and "build" mean: pcluster build-image on AWS, pcluster's
own validators and a labelled stand-in AMI in the sandbox, a recorded job in a plan.
"""

from __future__ import annotations

import logging
from typing import Any

from pwbcluster import netpaths
from pwbcluster.contracts import ImageOutputs, NetworkOutputs, planned_image
from pwbcluster.contracts.account import ImageBuild
from pwbcluster.contracts.stage import StageContext, StageSpec, section_inputs
from pwbcluster.pcluster import amis
from pwbcluster.pcluster.venv import PCLUSTER_VERSION
from pwbcluster.stages.image import bundle, cleanup, service
from pwbcluster.stages.image.envfile import unverified_downloads

log = logging.getLogger(__name__)

# pcluster tags the AMIs it builds with their image id.
PCLUSTER_IMAGE_TAG = "parallelcluster:image_id"


def inputs(ctx: StageContext) -> Any:
    out = section_inputs(ctx, "image")
    # The fingerprint also covers the scripts' bytes, which the config section does not.
    out["image_fingerprint"] = service.fingerprint_for(ctx.config)
    return out


def _outputs(
    ctx: StageContext, ami: str, fingerprint: str, network: NetworkOutputs, simulated: bool
) -> ImageOutputs:
    image = ctx.config.model.image
    return ImageOutputs(
        ami_id=ami,
        image_name=service.image_id(image, fingerprint),
        fingerprint=fingerprint,
        os=image.os,
        scripts_prefix=bundle.scripts_prefix(fingerprint),
        simulated=simulated,
        bucket_name=network.bucket_name,
    )


def _build(ctx: StageContext, network: NetworkOutputs) -> tuple[service.PreparedImage, ImageBuild]:
    """Parent, rendered config and bundle, checked by the account (no upload yet)."""
    image = ctx.config.model.image
    parent = image.parent_ami or ctx.account.official_parent_image(image.os, PCLUSTER_VERSION)
    prepared = service.prepare(ctx.config, network, str(parent))
    builder_paths(ctx, prepared.config)
    for item in unverified_downloads(image):
        ctx.say(f"image: [yellow]unverified download[/yellow]: {item}")
    build = ImageBuild(
        image_id=prepared.image_id,
        os=image.os,
        config=prepared.config,
        config_path=prepared.config_path,
        fingerprint=prepared.fingerprint,
        parent_image=str(parent),
        root_volume_gb=image.root_volume_gb,
        tags={t["Key"]: t["Value"] for t in prepared.config["Image"]["Tags"]},
    )
    ctx.account.check_image(build)
    return prepared, build


# What the build instance calls besides the image scripts' own aws calls: ParallelCluster
# gives it AmazonSSMManagedInstanceCore and EC2InstanceProfileForImageBuilder (pcluster
# 3.16.1 templates/imagebuilder_stack.py): Image Builder drives it through SSM and reads
# its components and writes its logs; the install scripts download packages.
BUILDER = "EC2 Image Builder through ParallelCluster (templates/imagebuilder_stack.py)"
BUILDER_NEEDS = ("ec2messages", "imagebuilder", "logs", "s3", "ssm", "ssmmessages")
PACKAGES = "image/install-*.sh (package archives, CRAN, Posit, GitHub releases)"


def builder_paths(ctx: StageContext, config: Any) -> None:
    """The build instance reaches what it calls, or the stage stops before any build."""
    network: NetworkOutputs = ctx.upstream.require("network")
    topology = ctx.account.network_topology(network.vpc_id)
    build = config.get("Build", {})
    if topology is None or not build.get("SubnetId"):
        ctx.account.notes.add(
            "reachability of the image builder: not proven here (the VPC's routing is unknown)"
        )
        return
    why: dict[str, str] = {}
    root = service.image_dir(ctx.config)
    for script in sorted(root.glob("*.sh")):
        for name, where in netpaths.script_calls(root, script.name, prefix="image").items():
            why.setdefault(name, where)
    why.update({name: BUILDER for name in BUILDER_NEEDS if name not in why})
    why["internet"] = PACKAGES
    place = netpaths.Placement(
        "image builder",
        str(build["SubnetId"]),
        None,
        frozenset(why),
        why,
        tuple(build.get("SecurityGroupIds") or ()),
    )
    for line in netpaths.checked(
        netpaths.prove(topology, [place]), "the image build instance cannot reach what it calls"
    ):
        ctx.account.notes.add(line)


def run(ctx: StageContext) -> ImageOutputs:
    network: NetworkOutputs = ctx.upstream.require("network")
    fingerprint = service.fingerprint_for(ctx.config)
    existing = amis.find_by_fingerprint(ctx.account.client("ec2"), fingerprint, ctx.config.name)
    if existing:
        simulated = amis.tags_of(existing).get(amis.SIMULATED_TAG) == "true"
        ctx.say(
            f"image: {existing['ImageId']} already has fingerprint {fingerprint[:16]}: "
            "nothing to build"
        )
        return _outputs(ctx, existing["ImageId"], fingerprint, network, simulated)
    prepared, build = _build(ctx, network)
    report = bundle.upload_bundle(ctx.account.client("s3"), prepared.bundle)
    ctx.say(
        f"image: scripts at s3://{network.bucket_name}/{prepared.scripts_prefix} "
        f"({len(report.uploaded)} uploaded, {len(report.skipped)} already there)"
    )
    ami = ctx.account.build_image(build)
    return _outputs(ctx, ami, prepared.fingerprint, network, ctx.account.simulated)


def plan(ctx: StageContext) -> ImageOutputs:
    network: NetworkOutputs = ctx.upstream.require("network")
    prepared, _ = _build(ctx, network)
    return planned_image(ctx.config.model.image.os, prepared.fingerprint, prepared.image_id)


def planned_outputs(config: Any) -> ImageOutputs:
    """The image stage's planned outputs, without rendering anything."""
    image = config.model.image
    fingerprint = service.fingerprint_for(config)
    return planned_image(image.os, fingerprint, service.image_id(image, fingerprint))


def destroy(ctx: StageContext, outputs: ImageOutputs | None) -> None:
    """Remove the image and its uploads; with no outputs (the stage failed part-way),
    whatever the stage may have made for this deployment, found by tag and by id.
    Safe to run again: what is already gone is skipped."""
    ec2, s3 = ctx.account.client("ec2"), ctx.account.client("s3")
    removed: set[str] = set()  # pcluster deletes asynchronously: ask it once per image
    if outputs is not None:
        ctx.account.delete_image(outputs.image_name, outputs.ami_id, not outputs.simulated)
        removed.update((outputs.image_name, outputs.ami_id))
    for image in cleanup.deployment_images(ec2, ctx.config.name):
        tags = amis.tags_of(image)
        name = tags.get(PCLUSTER_IMAGE_TAG) or str(image.get("Name", ""))
        if image["ImageId"] in removed or name in removed:
            continue
        simulated = tags.get(amis.SIMULATED_TAG) == "true"
        ctx.account.delete_image(name, image["ImageId"], not simulated)
        removed.update((name, image["ImageId"]))
    pending = service.image_id(ctx.config.model.image, service.fingerprint_for(ctx.config))
    if pending not in removed:
        # a build that failed or was cut off before it made an AMI
        ctx.account.delete_pending_image(pending)
    ctx.account.forget_image_standins()
    network: NetworkOutputs | None = ctx.upstream.get("network")
    if outputs is not None and outputs.bucket_name:
        buckets = [outputs.bucket_name]
    elif network is not None:
        buckets = [network.bucket_name]
    else:
        buckets = cleanup.tagged_buckets(s3, ctx.config.name)
    for bucket_name in buckets:
        cleanup.remove_uploads(s3, bucket_name)


SPEC = StageSpec(
    name="image",
    needs=("network",),
    run=run,
    inputs=inputs,
    destroy=destroy,
    plan=plan,
    minutes=60.0,
    description="custom AMI via pcluster build-image (skipped if unchanged)",
    destroy_needs=("network",),
)
