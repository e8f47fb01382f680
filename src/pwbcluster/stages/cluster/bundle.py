"""What the cluster stage uploads for the nodes: scripts, node.env, the Workbench tree.

Layout under ``s3://<bucket>/<scripts_prefix>/`` (the stage uses the bucket's root: the
node policies of the services stage read exactly its ``cluster/`` prefix)::

    cluster/node-start.sh, head-node.sh, login-node.sh, compute-node.sh, lib/, ha/
    cluster/node.env                  non-secret settings (secret ARNs, endpoints, switches)
    cluster/ldap-ca.pem               the directory's CA certificate (public), with ldaps://
    cluster/workbench/etc/rstudio/... the rendered Workbench configuration (no secrets)
    cluster/SHA256SUMS                every other object's sha256 (``sha256sum`` format,
                                      paths relative to cluster/)

A node checks the copy it fetched against SHA256SUMS (every listed file matches, no
other file is there) before it sources any of it (cluster/node-start.sh ``fetch_bundle``).
That makes a partial, stale or planted object stop the node; against a writer of the
bucket's cluster/ prefix it cannot protect (ParallelCluster fetches the entry script from
there), which is why no node role may write it. No digest is passed in the custom
actions' Args: ParallelCluster cannot update those on the head and login nodes, so every
change of a node file would need a new cluster.

A node's OnNodeStart copies the whole ``cluster/`` prefix once (one bounded call); the
head node publishes the Workbench tree from that copy.

``node.env`` is ``KEY=value`` lines that cluster/lib/common.sh reads as data (never
executed), so a value needs no quoting and cannot run anything.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pwbcluster.config.model import Deployment, WorkbenchModel, coerce
from pwbcluster.contracts import (
    HA_SCALING_SUMS_KEY,
    DatabaseEndpoint,
    NetworkOutputs,
    ServicesOutputs,
)
from pwbcluster.errors import ToolkitError
from pwbcluster.files_manifest import manifest_files
from pwbcluster.render_guard import check_value
from pwbcluster.stages.cluster.render import (
    LDAP_CA_PATH,
    WORKBENCH_SHARED_DIR,
    lb_listeners,
    s3_key,
)
from pwbcluster.stages.cluster.workbench.generate import RenderedFile

# Where the controller-HA scripts (cluster/ha) keep their shared state.
HA_SHARED_DIR = "/opt/slurm/pwb-ha"
_KEY = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:/@+=,* -]*$")
# The checksum list the nodes verify the bundle against (relative to cluster/).
SUMS_NAME = "SHA256SUMS"


@dataclass(frozen=True)
class BundleObject:
    key: str  # S3 key under the bucket
    body: bytes


def license_secret_arn(workbench: WorkbenchModel, services: ServicesOutputs) -> str | None:
    return services.license_secret_arn or workbench.license_secret_arn


def container_tag_version(workbench_version: str) -> str:
    """r-session-complete tags carry the release without the build: 2025.05.1+513.pro3 -> 2025.05.1."""
    return re.split(r"[+-]", workbench_version, maxsplit=1)[0]


def database_env(prefix: str, db: DatabaseEndpoint | None) -> dict[str, str]:
    """What the head node needs to create ``db``'s role: where, which role, which master
    (``PREFIX_HOST`` ... ``PREFIX_MASTER_PASSWORD_SECRET_ARN``; empty without ``db``)."""
    fields = {
        "HOST": db.host if db else "",
        "PORT": str(db.port) if db else "",
        "NAME": db.name if db else "",
        "USERNAME": db.username if db else "",
        "MASTER_USERNAME": (db.master_username or db.username) if db else "",
        "MASTER_PASSWORD_SECRET_ARN": (db.master_password_secret_arn or db.password_secret_arn)
        if db
        else "",
    }
    return {f"{prefix}_{key}": value for key, value in fields.items()}


def node_env(
    model: Deployment | Mapping[str, Any],
    network: NetworkOutputs,
    services: ServicesOutputs,
    cluster_name: str,
    scripts_prefix: str = "",
) -> dict[str, str]:
    model = coerce(Deployment, model)
    cluster = model.cluster
    wb = cluster.workbench
    ports, cert = lb_listeners(wb, services.workbench_certificate_arn)
    audit = services.audit_db if wb.audit_database else None
    slurmdb = services.slurm_accounting_db
    slurmdbd_backup = bool(cluster.slurm_accounting and cluster.ha.controllers and slurmdb)
    env = {
        "DEPLOYMENT": model.deployment.name,
        "REGION": model.deployment.region,
        "CLUSTER_NAME": cluster_name,
        "WORKBENCH_SHARED_DIR": WORKBENCH_SHARED_DIR,
        "WORKBENCH_PORT": str(wb.port),
        "LB_SCHEME": "https" if cert else "http",
        "LB_PORT": ports.split(":", 1)[0],
        # The name sessions call back to (with the deployment's own certificate, the one
        # it covers); empty: the balancer's AWS name, covered by the generated certificate.
        "WORKBENCH_HOSTNAME": wb.hostname or "",
        # The generated certificate's CA, shipped as workbench-ca.pem: every node trusts it.
        "WORKBENCH_CA": "true" if cert and cert == services.workbench_certificate_arn else "false",
        "DB_PASSWORD_SECRET_ARN": services.workbench_db.password_secret_arn,
        "AUDIT_DB_PASSWORD_SECRET_ARN": audit.password_secret_arn if audit else "",
        # The head node creates Workbench's roles with the master users (lib/database.sh).
        **database_env("DB", services.workbench_db),
        **database_env("AUDIT_DB", audit),
        "COOKIE_KEY_SECRET_ARN": services.cookie_key_secret_arn,
        # key: activate and deactivate; file: install it; server: lease from LICENSE_SERVER.
        "LICENSE_KIND": wb.license_kind,
        "LICENSE_SECRET_ARN": license_secret_arn(wb, services) or "",
        "LICENSE_SERVER": wb.license_server or "",
        "LDAP_TLS": "true" if services.ldap_tls else "false",
        "LDAP_CA_PATH": LDAP_CA_PATH,
        "HA_CONTROLLERS": "true" if cluster.ha.controllers else "false",
        "HA_SHARED_DIR": HA_SHARED_DIR,
        # Where the head puts the digests of the scaling files it shares (its role alone
        # may write there); login nodes install only files that match.
        "HA_SCALING_SUMS_URI": f"s3://{network.bucket_name}/{HA_SCALING_SUMS_KEY}",
        "SLURMCTLD_TIMEOUT": str(cluster.ha.slurmctld_timeout),
        # A backup slurmdbd on a login node (cluster/ha/slurmdbd-backup.sh) when accounting
        # and controller HA are both on; the secret is the one SlurmSettings.Database names.
        "SLURMDBD_BACKUP": "true" if slurmdbd_backup else "false",
        "SLURMDB_PASSWORD_SECRET_ARN": slurmdb.password_secret_arn
        if slurmdbd_backup and slurmdb
        else "",
        "CONTAINER_SESSIONS": "true" if wb.container_sessions else "false",
        "CONTAINER_IMAGES": " ".join(wb.container_images),
        # os@sha256:... for the images pinned by digest (pulled by digest on the head node).
        "CONTAINER_DIGESTS": " ".join(
            f"{os_name}@{wb.container_image_digests[os_name]}"
            for os_name in wb.container_images
            if os_name in wb.container_image_digests
        ),
        "CONTAINER_TAG_VERSION": container_tag_version(model.image.workbench.version),
    }
    return env


def format_env(env: dict[str, str]) -> str:
    lines = [
        "# Non-secret node settings written by pwbcluster; read as data by cluster/lib/common.sh."
    ]
    for key, value in env.items():
        if not _KEY.match(key):
            raise ToolkitError(f"node.env: bad key {key!r}")
        check_value("node.env", key, value)
        if not _SAFE_VALUE.match(value):
            raise ToolkitError(f"node.env: {key} has characters node scripts do not accept")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def node_scripts(cluster_dir: Path) -> dict[str, bytes]:
    """The files ``cluster/manifest.txt`` lists, keyed by their path relative to cluster/."""
    return {
        path.relative_to(cluster_dir).as_posix(): path.read_bytes()
        for path in manifest_files(cluster_dir)
    }


def bundle_objects(
    scripts_prefix: str,
    cluster_dir: Path,
    env_text: str,
    workbench: dict[str, RenderedFile],
    ldap_ca_pem: str | None,
    workbench_ca_pem: str | None = None,
) -> list[BundleObject]:
    root = s3_key(scripts_prefix, "cluster")
    objects = [
        BundleObject(s3_key(root, rel), body) for rel, body in node_scripts(cluster_dir).items()
    ]
    objects.append(BundleObject(s3_key(root, "node.env"), env_text.encode()))
    if ldap_ca_pem:
        objects.append(BundleObject(s3_key(root, "ldap-ca.pem"), ldap_ca_pem.encode()))
    if workbench_ca_pem:
        objects.append(BundleObject(s3_key(root, "workbench-ca.pem"), workbench_ca_pem.encode()))
    objects.extend(
        BundleObject(s3_key(root, "workbench", f.path), f.text.encode()) for f in workbench.values()
    )
    objects.append(BundleObject(s3_key(root, SUMS_NAME), sums_text(root, objects).encode()))
    return objects


def sums_text(root: str, objects: list[BundleObject]) -> str:
    """``sha256sum`` lines for ``objects``, paths relative to ``root``, sorted by path.

    A path sha256sum would escape (a backslash or newline in it) is refused: the node's
    check compares the listed names with the files it finds, byte for byte."""
    lines = []
    for obj in sorted(objects, key=lambda o: o.key):
        rel = obj.key.removeprefix(root + "/")
        if rel == obj.key or not rel or "\\" in rel or "\n" in rel:
            raise ToolkitError(f"bundle: {obj.key!r} cannot be listed in {SUMS_NAME}")
        lines.append(f"{hashlib.sha256(obj.body).hexdigest()}  {rel}\n")
    return "".join(lines)
