"""The cluster stage: ParallelCluster with Workbench on the login nodes.

Shared by both modes: render the cluster config from the upstream outputs, render the
Workbench files and node.env, write them under ``build/<deployment>/``, check that no
secret value could have leaked into them, and upload node scripts + node.env + the
Workbench tree to the scripts bucket.

- real: ``pcluster create-cluster`` (or ``update-cluster`` when it exists) with the
  pinned, patched pcluster; progress and the stack's events streamed
  (``cluster_pcluster``); the output is the Workbench URL on the login load balancer.
- sandbox: the uploads go to the moto server; pcluster's own schema, validators and
  template synthesis run offline against it; what would be created is recorded in
  ``build/<deployment>/cluster-plan.json`` and the outputs are marked simulated.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pwbcluster.contracts import ClusterOutputs, ImageOutputs, NetworkOutputs, ServicesOutputs
from pwbcluster.errors import StageError
from pwbcluster.files import TEMPLATES, dump_yaml, write_text
from pwbcluster.pipeline.registry import section_inputs
from pwbcluster.pipeline.runner import StageContext
from pwbcluster.stages.cluster.render import RenderedCluster, lb_listeners, render_cluster_config
from pwbcluster.stages.cluster.workbench.bundle import (
    BundleObject,
    bundle_objects,
    format_env,
    node_env,
)
from pwbcluster.stages.cluster.workbench.generate import RenderedFile, render_workbench, write_tree
from pwbcluster.stages.cluster.workbench.settings import settings_from

log = logging.getLogger(__name__)

PLAN_FILE = "cluster-plan.json"
CONFIG_FILE = "cluster-config.yaml"


@dataclass
class Prepared:
    name: str
    region: str
    scripts_prefix: str
    rendered: RenderedCluster
    workbench: dict[str, RenderedFile]
    env: dict[str, str]
    objects: list[BundleObject]
    config_path: Path


def cluster_name(config: Any) -> str:
    return str(config.name)


def scripts_prefix(config: Any) -> str:
    """The bucket's root: the node policies (services stage) read exactly ``cluster/``."""
    return ""


UPLOAD_ROOT = "cluster"


def cluster_dir(config: Any) -> Path:
    return Path(config.root) / "cluster"


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def inputs(ctx: StageContext) -> Any:
    out = section_inputs(ctx, "cluster", "image")
    out["node_scripts"] = _tree_digest(cluster_dir(ctx.config))
    out["templates"] = _tree_digest(TEMPLATES / "workbench")
    return out


def workbench_url(cluster: dict[str, Any], host: str) -> str:
    ports, cert = lb_listeners(cluster)
    port = int(ports.split(":", 1)[0])
    scheme = "https" if cert else "http"
    default = 443 if cert else 80
    return f"{scheme}://{host}" + ("" if port == default else f":{port}")


def prepare(ctx: StageContext) -> Prepared:
    """Render everything, write it under build/<deployment>/ and build the upload set."""
    config = ctx.config
    data = config.data
    network: NetworkOutputs = ctx.upstream["network"]
    services: ServicesOutputs = ctx.upstream["services"]
    image: ImageOutputs = ctx.upstream["image"]
    name, prefix = cluster_name(config), scripts_prefix(config)
    rendered = render_cluster_config(data, network, services, image, prefix, config.tags())
    files = render_workbench(settings_from(data, services), config.name)
    env = node_env(data, network, services, name, prefix)
    env_text = format_env(env)
    ca = services.ldap_ca_cert_pem if services.ldap_tls else None
    if services.ldap_tls and not ca:
        message = "services gave no directory CA certificate, but the cluster uses ldaps://"
        if ctx.mode == "real":
            raise StageError(message + "; re-run the services stage")
        log.warning("%s (sandbox: the nodes would fail at OnNodeStart)", message)
    objects = bundle_objects(prefix, cluster_dir(config), env_text, files, ca)
    build = Path(config.build_dir)
    header = f"Rendered by pwbcluster for deployment '{name}' by the cluster stage ({ctx.mode})."
    config_path = write_text(build / CONFIG_FILE, dump_yaml(rendered.config, header))
    write_tree(files, build / "workbench")
    write_text(build / "workbench" / "node.env", env_text)
    return Prepared(name, config.region, prefix, rendered, files, env, objects, config_path)


def upload(objects: list[BundleObject], bucket: str, endpoint_url: str | None) -> list[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint_url)
    keys = []
    for obj in objects:
        s3.put_object(Bucket=bucket, Key=obj.key, Body=obj.body, ServerSideEncryption="AES256")
        keys.append(obj.key)
    log.info("uploaded %d objects to s3://%s/", len(keys), bucket)
    return keys


def remove_uploads(bucket: str, prefix: str, endpoint_url: str | None) -> int:
    import boto3
    from botocore.exceptions import ClientError

    s3 = boto3.client("s3", endpoint_url=endpoint_url)
    removed = 0
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
        for page in pages:
            keys: list[Any] = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
                removed += len(keys)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise
    return removed


def run(ctx: StageContext) -> ClusterOutputs:
    prepared = prepare(ctx)
    network: NetworkOutputs = ctx.upstream["network"]
    if ctx.mode == "sandbox":
        return _run_sandbox(ctx, prepared, network)
    from pwbcluster.aws import pcluster_cluster as cluster_pcluster

    if ctx.dry_run:
        raise StageError(
            f"dry run: would upload {len(prepared.objects)} objects to s3://{network.bucket_name}/"
            f"{UPLOAD_ROOT}/ and create or update cluster '{prepared.name}' "
            f"from {prepared.config_path}"
        )
    upload(prepared.objects, network.bucket_name, None)
    host = cluster_pcluster.create_or_update(prepared.name, prepared.region, prepared.config_path)
    return ClusterOutputs(
        cluster_name=prepared.name,
        region=prepared.region,
        workbench_url=workbench_url(ctx.config.data["cluster"], host),
        login_load_balancer_dns=host,
        scripts_prefix=UPLOAD_ROOT + "/",
        simulated=False,
    )


def _run_sandbox(ctx: StageContext, prepared: Prepared, network: NetworkOutputs) -> ClusterOutputs:
    from pwbcluster.pcluster import offline

    endpoint = ctx.extra.get("aws_endpoint_url")
    build = Path(ctx.config.build_dir)
    result = offline.synthesise_cluster(
        prepared.rendered.config,
        prepared.name,
        prepared.region,
        build / "cluster-cloudformation",
        endpoint_url=endpoint,
        public_subnets=network.public_subnet_ids,
        suppress=(*offline.SUPPRESSED_VALIDATORS, *offline.SANDBOX_SUPPRESSED_VALIDATORS),
    )
    offline.raise_for([result])
    keys = upload(prepared.objects, network.bucket_name, endpoint)
    host = f"{prepared.name}-login.sandbox.invalid"
    url = workbench_url(ctx.config.data["cluster"], host)
    record = {
        "cluster_name": prepared.name,
        "region": prepared.region,
        "mode": "sandbox: rehearsal of wiring and configuration, not evidence AWS accepts it",
        "config": str(prepared.config_path),
        "would_run": ["pcluster", "create-cluster", "-n", prepared.name, "-c", CONFIG_FILE],
        "would_create": _would_create(prepared.rendered.config),
        "templates": [str(p) for p in result.files],
        "validator_warnings": [f"{w.validator}: {w.message}" for w in result.warnings],
        "uploaded": [f"s3://{network.bucket_name}/{k}" for k in keys],
        "workbench_url": url,
        "warnings": prepared.rendered.warnings,
    }
    write_text(build / PLAN_FILE, json.dumps(record, indent=2) + "\n")
    return ClusterOutputs(
        cluster_name=prepared.name,
        region=prepared.region,
        workbench_url=url,
        login_load_balancer_dns=host,
        scripts_prefix=UPLOAD_ROOT + "/",
        simulated=True,
    )


def _would_create(config: dict[str, Any]) -> list[str]:
    head = config["HeadNode"]
    out = [f"head node {head['InstanceType']} (SharedStorageType {head['SharedStorageType']})"]
    for pool in config.get("LoginNodes", {}).get("Pools", []):
        out.append(f"login pool '{pool['Name']}': {pool['Count']} x {pool['InstanceType']} + NLB")
    for q in config["Scheduling"]["SlurmQueues"]:
        cr = q["ComputeResources"][0]
        kind = cr["Instances"][0]["InstanceType"]
        out.append(f"queue '{q['Name']}': {cr['MinCount']}-{cr['MaxCount']} x {kind}")
    for storage in config.get("SharedStorage", []):
        out.append(f"{storage['StorageType']} '{storage['Name']}' at {storage['MountDir']}")
    return out


def destroy(ctx: StageContext, outputs: ClusterOutputs | None) -> None:
    config = ctx.config
    prefix = (outputs.scripts_prefix if outputs else UPLOAD_ROOT).strip("/") or UPLOAD_ROOT
    bucket = _bucket_of(config, ctx.mode)
    if ctx.mode == "sandbox":
        endpoint = ctx.extra.get("aws_endpoint_url")
        if bucket and endpoint:
            removed = remove_uploads(bucket, prefix, endpoint)
            log.info("sandbox: removed %d uploaded objects", removed)
        if endpoint:
            _remove_synthesis_buckets(config.region, endpoint)
        (Path(config.build_dir) / PLAN_FILE).unlink(missing_ok=True)
        return
    from pwbcluster.aws import pcluster_cluster as cluster_pcluster

    name = outputs.cluster_name if outputs else cluster_name(config)
    if ctx.dry_run:
        raise StageError(f"dry run: would delete cluster '{name}' and s3://{bucket}/{prefix}/")
    cluster_pcluster.delete(name, config.region)
    if bucket:
        remove_uploads(bucket, prefix, None)


def _remove_synthesis_buckets(region: str, endpoint: str) -> None:
    """The scratch bucket pcluster's offline synthesis made in this sandbox's moto."""
    import boto3

    from pwbcluster.sandbox.pulumi_moto import empty_and_delete_bucket

    s3 = boto3.client("s3", endpoint_url=endpoint)
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        if not (name.startswith("parallelcluster-") and name.endswith(f"-offline-{region}")):
            continue
        empty_and_delete_bucket(s3, name)
        log.info("sandbox: removed pcluster's synthesis bucket %s", name)


def _bucket_of(config: Any, mode: str) -> str | None:
    """The scripts bucket recorded by the network stage, if it is still in the state."""
    from pwbcluster.pipeline.state import State

    rec = State.load(Path(config.build_dir) / "state.json", mode).stages.get("network")
    return str(rec.outputs["bucket_name"]) if rec and rec.outputs else None
