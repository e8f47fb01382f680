"""The cluster stage: ParallelCluster with Workbench on the login nodes.

Render the cluster config from the upstream outputs, render the Workbench files and
node.env, write them under ``build/<deployment>/``, have the account check the config,
upload node scripts + node.env + the Workbench tree to the scripts bucket, and have the
account deploy it. The account decides what check and deploy mean: ``pcluster
create-cluster``/``update-cluster`` on AWS (progress and stack events streamed), pcluster's
own schema, validators and template synthesis offline in the sandbox (what would be
created recorded in ``build/<deployment>/cluster-plan.json``), a recorded job in a plan.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pwbcluster import netpaths
from pwbcluster.config import Config
from pwbcluster.config.model import build
from pwbcluster.config.model_cluster import WorkbenchModel
from pwbcluster.contracts import (
    HA_SCALING_SUMS_KEY,
    ClusterOutputs,
    ImageOutputs,
    NetworkOutputs,
    ServicesOutputs,
)
from pwbcluster.contracts.account import ClusterDeploy
from pwbcluster.contracts.stage import StageContext, StageSpec, Upstream, section_inputs
from pwbcluster.errors import StageError
from pwbcluster.files import TEMPLATES, dump_yaml, write_text
from pwbcluster.files_manifest import manifest_files
from pwbcluster.pcluster import offline
from pwbcluster.stages.cluster import dns, reachability
from pwbcluster.stages.cluster.bundle import (
    BundleObject,
    bundle_objects,
    format_env,
    node_env,
)
from pwbcluster.stages.cluster.render import (
    RenderedCluster,
    lb_listeners,
    render_cluster_config,
    s3_key,
    trace,
)
from pwbcluster.stages.cluster.workbench.generate import (
    RenderedFile,
    render_workbench,
    write_tree,
)
from pwbcluster.stages.cluster.workbench.settings import settings_from

log = logging.getLogger(__name__)

CONFIG_FILE = "cluster-config.yaml"
UPLOAD_ROOT = "cluster"
OVERRIDES = ("cluster", "pcluster_overrides")
HEADER = """\
Rendered by pwbcluster's cluster stage for deployment '{name}'. Do not edit: edit the
YAML it comes from and run `invoke plan` again.
{extra}"""


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
    files: list[Path]


def cluster_name(config: Any) -> str:
    return str(config.name)


def scripts_prefix(config: Any) -> str:
    """The bucket's root: the node policies (services stage) read exactly ``cluster/``."""
    return ""


def cluster_dir(config: Any) -> Path:
    return Path(config.root) / "cluster"


def _digest(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def inputs(ctx: StageContext) -> Any:
    out = section_inputs(ctx, "cluster", "image")
    # Exactly what is shipped: the manifest's node files and the Workbench templates.
    nodes = cluster_dir(ctx.config)
    out["node_scripts"] = _digest(manifest_files(nodes), nodes)
    templates = TEMPLATES / "workbench"
    out["templates"] = _digest([p for p in templates.rglob("*.j2") if p.is_file()], templates)
    return out


def workbench_url(
    workbench: WorkbenchModel | Mapping[str, Any], host: str, generated: str | None = None
) -> str:
    """The address users type: the deployment's hostname, else the balancer's name."""
    if isinstance(workbench, Mapping):
        workbench = build(WorkbenchModel, workbench["workbench"])
    ports, cert = lb_listeners(workbench, generated)
    host = workbench.hostname or host
    port = int(ports.split(":", 1)[0])
    scheme = "https" if cert else "http"
    default = 443 if cert else 80
    return f"{scheme}://{host}" + ("" if port == default else f":{port}")


def override_key(data: dict[str, Any], path: Sequence[str | int]) -> tuple[str | int, ...] | None:
    """The deepest ``cluster.pcluster_overrides`` key along a rendered path, if any."""
    node: Any = data.get("cluster", {}).get("pcluster_overrides") or {}
    depth = 0
    for part in path:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if not (in_dict or in_list):
            break
        node = node[part]
        depth += 1
    return (*OVERRIDES, *path[:depth]) if depth else None


def locator(config: Any, rendered: RenderedCluster) -> Any:
    """``locate(kind, path)``: the deployment key (file:line key) behind a rendered key."""

    def locate(kind: str, path: Sequence[str | int]) -> str | None:
        if kind != "cluster" or not path:
            return None
        key = override_key(config.data, path) or trace(rendered.source_map, tuple(path))
        return config.describe(tuple(key)) if key else None

    return locate


def prepare(ctx: StageContext) -> Prepared:
    """Render everything, write it under build/<deployment>/ and build the upload set."""
    config = ctx.config
    model = config.model
    network: NetworkOutputs = ctx.upstream.require("network")
    services: ServicesOutputs = ctx.upstream.require("services")
    image: ImageOutputs = ctx.upstream.require("image")
    name, prefix = cluster_name(config), scripts_prefix(config)
    files = render_workbench(settings_from(model, services), config.name)
    env = node_env(model, network, services, name, prefix)
    env_text = format_env(env)
    ca = services.ldap_ca_cert_pem if services.ldap_tls else None
    if services.ldap_tls and not ca:
        # The nodes would fail at OnNodeStart: no account, real or not, lets that pass.
        raise StageError(
            "services gave no directory CA certificate, but the cluster uses ldaps://; "
            "re-run the services stage"
        )
    generated = env.get("WORKBENCH_CA") == "true"
    workbench_ca = services.workbench_ca_cert_pem if generated else None
    if generated and not workbench_ca:
        raise StageError(
            "services gave no Workbench CA certificate for the generated certificate; "
            "re-run the services stage"
        )
    objects = bundle_objects(prefix, cluster_dir(config), env_text, files, ca, workbench_ca)
    rendered = render_cluster_config(model, network, services, image, prefix, config.tags())
    build = Path(config.build_dir)
    extra = (
        "Placeholders (known after `invoke up`): " + ", ".join(rendered.placeholders)
        if rendered.placeholders
        else ""
    )
    header = HEADER.format(name=name, extra=extra)
    config_path = write_text(build / CONFIG_FILE, dump_yaml(rendered.config, header))
    written = [config_path, *write_tree(files, build / "workbench")]
    written.append(write_text(build / "workbench" / "node.env", env_text))
    return Prepared(
        name, config.region, prefix, rendered, files, env, objects, config_path, written
    )


def deploy_request(ctx: StageContext, prepared: Prepared, uploaded: Sequence[str]) -> ClusterDeploy:
    network: NetworkOutputs = ctx.upstream.require("network")
    return ClusterDeploy(
        name=prepared.name,
        config=prepared.rendered.config,
        config_path=prepared.config_path,
        public_subnet_ids=tuple(network.public_subnet_ids),
        summary=tuple(would_create(prepared.rendered.config)),
        uploaded=tuple(uploaded),
        warnings=tuple(prepared.rendered.warnings),
        placeholders=tuple(prepared.rendered.placeholders),
        locate=locator(ctx.config, prepared.rendered),
    )


def upload(s3: Any, objects: list[BundleObject], bucket: str) -> list[str]:
    keys = []
    for obj in objects:
        s3.put_object(Bucket=bucket, Key=obj.key, Body=obj.body, ServerSideEncryption="AES256")
        keys.append(obj.key)
    log.info("uploaded %d objects to s3://%s/", len(keys), bucket)
    return keys


def prune_uploads(s3: Any, bucket: str, prefix: str, keep: Sequence[str]) -> int:
    """Delete the objects under ``prefix/`` that this upload did not write: a node refuses
    a bundle holding a file its SHA256SUMS does not list (an earlier run's leftover too)."""
    kept = set(keep)
    stale: list[Any] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        stale += [{"Key": o["Key"]} for o in page.get("Contents", []) if o["Key"] not in kept]
    for start in range(0, len(stale), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": stale[start : start + 1000]})
    return len(stale)


def remove_uploads(s3: Any, bucket: str, prefix: str) -> int:
    from botocore.exceptions import ClientError

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


def _outputs(ctx: StageContext, prepared: Prepared, host: str) -> ClusterOutputs:
    return ClusterOutputs(
        cluster_name=prepared.name,
        region=prepared.region,
        workbench_url=workbench_url(
            ctx.config.model.cluster.workbench,
            host,
            ctx.upstream.require("services").workbench_certificate_arn,
        ),
        login_load_balancer_dns=host,
        scripts_prefix=UPLOAD_ROOT + "/",
        simulated=ctx.account.simulated,
    )


def check_paths(ctx: StageContext, prepared: Prepared) -> None:
    """Every role reaches every AWS API it calls, or the stage stops naming the hop."""
    network: NetworkOutputs = ctx.upstream.require("network")
    topology = ctx.account.network_topology(network.vpc_id)
    if topology is None:
        ctx.account.notes.add(
            "reachability: not proven: the VPC's routing is unknown here (an existing VPC "
            "in a plan); `invoke up` proves it against the account before creating the cluster"
        )
        return
    hops = netpaths.prove(
        topology, reachability.placements(prepared.rendered.config, cluster_dir(ctx.config))
    )
    headline = (
        "a node role cannot reach an AWS API it calls (ParallelCluster would replace "
        "such nodes in a loop)"
    )
    for line in netpaths.checked(hops, headline):
        ctx.account.notes.add(line)


def flow_lines(
    topology: netpaths.Topology,
    templates: Sequence[Path],
    rename: Mapping[str, str],
    config: Config,
    rendered: Mapping[str, Any],
    upstream: Upstream,
) -> list[str]:
    """Each flow between the nodes and services, proven on the security groups of the
    VPC (``topology``) and of pcluster's synthesised ``templates``, as table lines;
    raises naming every flow with no path."""
    network: NetworkOutputs = upstream.require("network")
    services: ServicesOutputs = upstream.require("services")
    hops = reachability.prove_cluster(
        topology, templates, rename, rendered, config.model, services, network
    )
    headline = "a flow the deployment needs has no path through the security groups"
    return netpaths.checked(hops, headline, netpaths.flow_table)


def check_flows(ctx: StageContext, prepared: Prepared, templates: Sequence[Path]) -> None:
    network: NetworkOutputs = ctx.upstream.require("network")
    topology = ctx.account.network_topology(network.vpc_id) if templates else None
    if topology is None:
        ctx.account.notes.add(
            "flows: not proven here: ParallelCluster synthesises its security groups in the "
            "account (`invoke plan` proves the same templates offline before `up`)"
        )
        return
    names = templates[0].parent / offline.PLACEHOLDERS_FILE
    rename = json.loads(names.read_text(encoding="utf-8")) if names.is_file() else {}
    for line in flow_lines(
        topology, templates, rename, ctx.config, prepared.rendered.config, ctx.upstream
    ):
        ctx.account.notes.add(line)


def note_outside(ctx: StageContext) -> None:
    """Say what the deployment depends on that lies outside it and is not proven."""
    wb = ctx.config.model.cluster.workbench
    if wb.license_kind == "server":
        ctx.account.notes.add(
            f"licence: not proven: the login nodes reach your licence server {wb.license_server} "
            "(outside this deployment: allow it from the cluster's security group and "
            "subnets; TCP 8989 unless you changed it)"
        )


def check_zone(ctx: StageContext) -> bool:
    """Check the Route 53 zone before the cluster is touched; False when not used."""
    wb = ctx.config.model.cluster.workbench
    if not (wb.route53_zone_id and wb.hostname):
        return False
    if ctx.account.simulated:
        ctx.account.notes.add(
            f"dns: not rehearsed here: a real `invoke up` writes {wb.hostname} in your zone "
            f"{wb.route53_zone_id} once the login balancer exists (checking first that the "
            "zone holds the name)"
        )
        return False
    dns.zone_for(ctx.account.client("route53"), wb.route53_zone_id, wb.hostname)
    return True


def run(ctx: StageContext) -> ClusterOutputs:
    prepared = prepare(ctx)
    check_paths(ctx, prepared)
    note_outside(ctx)
    write_dns = check_zone(ctx)
    for warning in prepared.rendered.warnings:
        ctx.say(f"cluster: [yellow]warning[/yellow]: {warning}")
    network: NetworkOutputs = ctx.upstream.require("network")
    check_flows(ctx, prepared, ctx.account.check_cluster(deploy_request(ctx, prepared, ())))
    s3 = ctx.account.client("s3")
    keys = upload(s3, prepared.objects, network.bucket_name)
    prune_uploads(s3, network.bucket_name, s3_key(prepared.scripts_prefix, "cluster"), keys)
    uploaded = [f"s3://{network.bucket_name}/{k}" for k in keys]
    host = ctx.account.deploy_cluster(deploy_request(ctx, prepared, uploaded))
    if write_dns:
        wb = ctx.config.model.cluster.workbench
        assert wb.route53_zone_id and wb.hostname
        dns.point_at_balancer(
            ctx.account.client("route53"),
            ctx.account.client("elbv2"),
            wb.route53_zone_id,
            wb.hostname,
            host,
        )
        ctx.say(f"cluster: {wb.hostname} points at the login load balancer ({host})")
    return _outputs(ctx, prepared, host)


def plan(ctx: StageContext) -> ClusterOutputs:
    prepared = prepare(ctx)
    check_paths(ctx, prepared)
    note_outside(ctx)
    check_zone(ctx)
    deploy = deploy_request(ctx, prepared, ())
    ctx.account.check_cluster(deploy)
    return _outputs(ctx, prepared, ctx.account.deploy_cluster(deploy))


def would_create(config: dict[str, Any]) -> list[str]:
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
    name = outputs.cluster_name if outputs else cluster_name(ctx.config)
    wb = ctx.config.model.cluster.workbench
    if wb.route53_zone_id and wb.hostname and outputs and not ctx.account.simulated:
        dns.remove_record(
            ctx.account.client("route53"),
            wb.route53_zone_id,
            wb.hostname,
            outputs.login_load_balancer_dns,
        )
    ctx.account.delete_cluster(name)
    prefix = (outputs.scripts_prefix if outputs else UPLOAD_ROOT).strip("/") or UPLOAD_ROOT
    network: NetworkOutputs | None = ctx.upstream.get("network")
    if network is not None:
        s3 = ctx.account.client("s3")
        removed = remove_uploads(s3, network.bucket_name, prefix)
        # What the head node wrote there (the HA scaling files' digests).
        removed += remove_uploads(s3, network.bucket_name, HA_SCALING_SUMS_KEY.rsplit("/", 1)[0])
        log.info("cluster: removed %d uploaded objects", removed)


SPEC = StageSpec(
    name="cluster",
    needs=("network", "services", "image"),
    run=run,
    inputs=inputs,
    destroy=destroy,
    plan=plan,
    minutes=30.0,
    description="ParallelCluster: head node, login pool + load balancer, queues, shared storage",
    destroy_needs=("network",),
)
