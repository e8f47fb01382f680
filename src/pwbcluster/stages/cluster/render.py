"""Render the ParallelCluster cluster configuration from the deployment and stage outputs.

The result is plain data written to ``build/<deployment>/cluster-config.yaml``. Secrets
appear only as Secrets Manager ARNs; node scripts get non-secret arguments only. The
load balancer's extra listeners travel as cluster tags (``LB_PORTS_TAG``,
``LB_CERTIFICATE_TAG`` and ``LB_HEALTH_PATH_TAG``), so the patched ParallelCluster reads them from the config itself
and a later ``pcluster update-cluster`` keeps them.

``source_map`` records, for rendered keys, the deployment key that produced them, so an
error from ParallelCluster can be traced back to the line a person edits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pwbcluster.config.model import Deployment, WorkbenchModel, build, coerce, thaw
from pwbcluster.contracts import (
    ImageOutputs,
    NetworkOutputs,
    ServicesOutputs,
    workbench_listener_port,
)
from pwbcluster.files import deep_merge

log = logging.getLogger(__name__)

WORLD = "0.0.0.0/0"
LB_PORTS_TAG = "pwbcluster:login-lb-ports"
LB_CERTIFICATE_TAG = "pwbcluster:login-lb-certificate"
# The Workbench target group's health check: HTTP GET on Workbench's own health endpoint
# (rserver.conf server-health-check-enabled=1), not a TCP connect a hung server passes.
LB_HEALTH_PATH_TAG = "pwbcluster:login-lb-health-path"
WORKBENCH_HEALTH_PATH = "/health-check"
WORKBENCH_SHARED_DIR = "/opt/rstudio-shared"
LDAP_CA_PATH = "/etc/pwbcluster/ldap-ca.pem"
NODE_SCRIPTS = {
    "head": "cluster/head-node.sh",
    "login": "cluster/login-node.sh",
    "compute": "cluster/compute-node.sh",
    "start": "cluster/node-start.sh",
}

RenderedPath = tuple[str | int, ...]


@dataclass
class RenderedCluster:
    config: dict[str, Any]
    source_map: dict[RenderedPath, tuple[str | int, ...]] = field(default_factory=dict)
    placeholders: list[str] = field(default_factory=list)
    # Things a person must hear about (printed by plan and the cluster stage).
    warnings: list[str] = field(default_factory=list)


def lb_listeners(workbench: WorkbenchModel | Mapping[str, Any]) -> tuple[str, str | None]:
    """(ports tag value, certificate ARN or None) for the login load balancer.

    The one place the Workbench port becomes the listener map; a mapping is the legacy
    ``cluster`` dict of callers not yet moved to the model.
    """
    if isinstance(workbench, Mapping):
        workbench = build(WorkbenchModel, workbench["workbench"])
    cert, port = workbench.tls_certificate_arn, workbench.port
    return f"{workbench_listener_port(port, bool(cert))}:{port}", cert


def s3_key(*parts: str) -> str:
    """Join key parts, skipping empty ones (an empty prefix is the bucket's root)."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def script_uri(network: NetworkOutputs, scripts_prefix: str, key: str) -> str:
    return f"s3://{network.bucket_name}/{s3_key(scripts_prefix, NODE_SCRIPTS[key])}"


def node_env_uri(network: NetworkOutputs, scripts_prefix: str) -> str:
    """Non-secret node settings (secret ARNs, endpoints, versions) the node scripts read."""
    return f"s3://{network.bucket_name}/{s3_key(scripts_prefix, 'cluster/node.env')}"


def render_cluster_config(
    model: Deployment | Mapping[str, Any],
    network: NetworkOutputs,
    services: ServicesOutputs,
    image: ImageOutputs,
    scripts_prefix: str,
    tags: dict[str, str],
) -> RenderedCluster:
    model = coerce(Deployment, model)
    cluster = model.cluster
    smap: dict[RenderedPath, tuple[str | int, ...]] = {}
    warnings: list[str] = []
    env_uri = node_env_uri(network, scripts_prefix)

    def action(key: str) -> dict[str, Any]:
        return {"Script": script_uri(network, scripts_prefix, key), "Args": ["--env-uri", env_uri]}

    custom_actions = {"OnNodeStart": action("start")}
    sgs = [services.cluster_security_group_id]
    ports, cert = lb_listeners(cluster.workbench)
    all_tags = dict(tags)
    all_tags[LB_PORTS_TAG] = ports
    all_tags[LB_HEALTH_PATH_TAG] = WORKBENCH_HEALTH_PATH
    if cert:
        all_tags[LB_CERTIFICATE_TAG] = cert

    head = cluster.head_node
    head_node: dict[str, Any] = {
        "InstanceType": head.instance_type,
        "Networking": {"SubnetId": network.private_subnet_ids[0], "AdditionalSecurityGroups": sgs},
        "Ssh": {"KeyName": services.key_pair_name},
        "LocalStorage": {"RootVolume": {"Size": head.root_volume_gb, "Encrypted": True}},
        "SharedStorageType": "Efs",
        "Iam": {"AdditionalIamPolicies": [{"Policy": services.head_node_policy_arn}]},
        "CustomActions": {**custom_actions, "OnNodeConfigured": action("head")},
        "Imds": {"Secured": True},
    }
    smap[("HeadNode", "InstanceType")] = ("cluster", "head_node", "instance_type")
    smap[("HeadNode", "LocalStorage", "RootVolume", "Size")] = (
        "cluster",
        "head_node",
        "root_volume_gb",
    )

    queues: list[dict[str, Any]] = []
    for i, q in enumerate(cluster.queues):
        resource = f"{q.name}-{q.instance_type.replace('.', '')}"[:25].rstrip("-")
        queues.append(
            {
                "Name": q.name,
                "CapacityType": "ONDEMAND",
                "ComputeResources": [
                    {
                        "Name": resource,
                        "Instances": [{"InstanceType": q.instance_type}],
                        "MinCount": q.min_count,
                        "MaxCount": q.max_count,
                    }
                ],
                "Networking": {
                    "SubnetIds": [network.private_subnet_ids[0]],
                    "AdditionalSecurityGroups": sgs,
                },
                "Iam": {"AdditionalIamPolicies": [{"Policy": services.compute_node_policy_arn}]},
                "CustomActions": {**custom_actions, "OnNodeConfigured": action("compute")},
            }
        )
        smap[("Scheduling", "SlurmQueues", i)] = ("cluster", "queues", i)
        smap[("Scheduling", "SlurmQueues", i, "Name")] = ("cluster", "queues", i, "name")
        cr = ("Scheduling", "SlurmQueues", i, "ComputeResources", 0)
        smap[(*cr, "Instances", 0, "InstanceType")] = ("cluster", "queues", i, "instance_type")
        smap[(*cr, "MinCount")] = ("cluster", "queues", i, "min_count")
        smap[(*cr, "MaxCount")] = ("cluster", "queues", i, "max_count")

    slurm_settings: dict[str, Any] = {"ScaledownIdletime": 10, "QueueUpdateStrategy": "DRAIN"}
    if cluster.slurm_accounting and services.slurm_accounting_db:
        db = services.slurm_accounting_db
        slurm_settings["Database"] = {
            "Uri": f"{db.host}:{db.port}",
            "UserName": db.username,
            "PasswordSecretArn": db.password_secret_arn,
        }
        smap[("Scheduling", "SlurmSettings", "Database")] = ("cluster", "slurm_accounting")

    login = cluster.login_nodes
    login_pool = {
        "Name": "login",
        "Count": login.count,
        "InstanceType": login.instance_type,
        "Networking": {
            "SubnetIds": [network.public_subnet_ids[0]],
            "AdditionalSecurityGroups": sgs,
        },
        # No KeyName: pcluster 3.15+ rejects it for login pools (they use the head node's).
        "Ssh": {"AllowedIps": login.allowed_cidr or WORLD},
        "Iam": {"AdditionalIamPolicies": [{"Policy": services.login_node_policy_arn}]},
        "CustomActions": {**custom_actions, "OnNodeConfigured": action("login")},
        "GracetimePeriod": 10,
    }
    smap[("LoginNodes", "Pools", 0, "Count")] = ("cluster", "login_nodes", "count")
    smap[("LoginNodes", "Pools", 0, "InstanceType")] = ("cluster", "login_nodes", "instance_type")
    smap[("LoginNodes", "Pools", 0, "Networking")] = ("aux", "network")
    if login.allowed_cidr is None:
        warnings.append(
            "cluster.login_nodes.allowed_cidr is not set: ssh and Workbench are rendered open "
            f"to {WORLD}; a real `invoke up` refuses until your deployment file sets it"
        )
    elif login.allowed_cidr == WORLD:
        warnings.append(
            f"cluster.login_nodes.allowed_cidr is {WORLD}: ssh and Workbench are open to the "
            "whole internet"
        )
    smap[("LoginNodes", "Pools", 0, "Ssh", "AllowedIps")] = (
        "cluster",
        "login_nodes",
        "allowed_cidr",
    )

    home = cluster.storage.home
    if home.type == "FsxLustre":
        home_storage: dict[str, Any] = {
            "MountDir": "/home",
            "Name": "home",
            "StorageType": "FsxLustre",
            "FsxLustreSettings": {
                "StorageCapacity": home.capacity_gb,
                "DeploymentType": home.deployment_type,
            },
        }
        if (home.deployment_type or "").startswith("PERSISTENT"):
            home_storage["FsxLustreSettings"]["PerUnitStorageThroughput"] = 125
        smap[("SharedStorage", 0, "FsxLustreSettings", "StorageCapacity")] = (
            "cluster",
            "storage",
            "home",
            "capacity_gb",
        )
    else:
        home_storage = {
            "MountDir": "/home",
            "Name": "home",
            "StorageType": "Efs",
            "EfsSettings": {"Encrypted": True, "ThroughputMode": "bursting"},
        }
    smap[("SharedStorage", 0)] = ("cluster", "storage", "home")
    shared = {
        "MountDir": WORKBENCH_SHARED_DIR,
        "Name": "workbench",
        "StorageType": "Efs",
        "EfsSettings": {"Encrypted": True, "ThroughputMode": "bursting"},
    }

    directory: dict[str, Any] = {
        "DomainName": services.domain_name,
        "DomainAddr": services.ldap_uri,
        "PasswordSecretArn": services.bind_password_secret_arn,
        "DomainReadOnlyUser": services.bind_user_dn,
        "GenerateSshKeysForUsers": True,
    }
    if services.ldap_tls:
        directory["LdapTlsCaCert"] = LDAP_CA_PATH
        directory["LdapTlsReqCert"] = "hard"
    else:
        # Only where the deployment opted out of TLS (aux.directory.ldaps: false).
        directory["AdditionalSssdConfigs"] = {"ldap_auth_disable_tls_never_use_in_production": True}
        warnings.append(
            f"directory: plain LDAP ({services.ldap_uri}) because the deployment opted out of "
            "TLS; bind and user passwords cross the VPC unencrypted"
        )
    smap[("DirectoryService",)] = ("aux", "directory")

    config: dict[str, Any] = {
        "Region": model.deployment.region,
        "Image": {"Os": image.os, "CustomAmi": image.ami_id},
        "Imds": {"ImdsSupport": "v2.0"},
        "HeadNode": head_node,
        "Scheduling": {
            "Scheduler": "slurm",
            "SlurmSettings": slurm_settings,
            "SlurmQueues": queues,
        },
        "LoginNodes": {"Pools": [login_pool]},
        "SharedStorage": [home_storage, shared],
        "DirectoryService": directory,
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(all_tags.items())],
    }
    # Plain dicts again: the rendered config is merged into and dumped as YAML.
    overrides: dict[str, Any] = thaw(cluster.pcluster_overrides)
    if overrides:
        config = deep_merge(config, overrides)
        for key in overrides:
            smap[(key,)] = ("cluster", "pcluster_overrides", key)
    placeholders = [value for value in _strings(config) if "planned" in value or "PLANNED" in value]
    for warning in warnings:
        log.warning("%s", warning)
    return RenderedCluster(
        config=config,
        source_map=smap,
        placeholders=sorted(set(placeholders)),
        warnings=warnings,
    )


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def trace(source_map: dict[RenderedPath, tuple[str | int, ...]], path: RenderedPath) -> Any:
    """The deployment key behind a rendered key path (its nearest mapped ancestor)."""
    probe = tuple(path)
    while probe:
        if probe in source_map:
            return source_map[probe]
        probe = probe[:-1]
    return None
