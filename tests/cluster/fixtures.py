"""Test inputs for the cluster stage: upstream outputs with real-looking ARNs, and a
local "bucket" laid out exactly as the cluster stage uploads it.

Run as a script it writes that bucket for the bats tests:

    python tests/cluster/fixtures.py OUT_DIR [--audit] [--license] [--no-tls]

OUT_DIR/s3/<bucket>/<key> holds every object (node scripts, node.env, Workbench tree),
OUT_DIR/secrets/<arn with / and : replaced by _> each secret's value (what the aws stub
serves from "Secrets Manager"), OUT_DIR/env-uri the --env-uri to pass and
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import string
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from pwbcluster import contracts  # noqa: E402
from pwbcluster.config import load_config  # noqa: E402
from pwbcluster.config.model import model_of  # noqa: E402
from pwbcluster.stages.cluster.bundle import (  # noqa: E402
    SUMS_NAME,
    BundleObject,
    bundle_objects,
    format_env,
    node_env,
    sums_text,
)
from pwbcluster.stages.cluster.workbench.generate import render_workbench  # noqa: E402
from pwbcluster.stages.cluster.workbench.settings import settings_from  # noqa: E402

REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = "example-scripts-test"
PREFIX = ""  # the stage uploads at the bucket root: cluster/...
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBtestcertificate\n-----END CERTIFICATE-----\n"


def secret_arn(name: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:pwbcluster/example/{name}-AbCdEf"


def random_secret(length: int = 24) -> str:
    # The same alphabet the services stage uses, '$' and quotes added to catch quoting bugs.
    alphabet = string.ascii_letters + string.digits + "!#%^*-_=+$'\""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def example_data(**cluster_overrides: Any) -> dict[str, Any]:
    data = load_config(ROOT / "config" / "example.yaml").data
    wb = data["cluster"]["workbench"]
    wb.update(cluster_overrides.pop("workbench", {}))
    data["cluster"].update(cluster_overrides)
    return data


def upstream(
    audit: bool = False,
    license_arn: str | None = None,
    tls: bool = True,
    db_host: str = "workbench-db.abc123.eu-west-1.rds.amazonaws.com",
    db_port: int = 5432,
) -> tuple[contracts.NetworkOutputs, contracts.ServicesOutputs, contracts.ImageOutputs]:
    network = dataclasses.replace(
        contracts.planned_network(REGION, "example"),
        bucket_name=BUCKET,
        bucket_arn=f"arn:aws:s3:::{BUCKET}",
        simulated=False,
    )
    planned = contracts.planned_services(
        REGION, "example", "corp.example.com", tls=tls, workbench_tls=True
    )
    # Workbench connects as its own role; the master user only creates it.
    db = contracts.DatabaseEndpoint(
        "postgres",
        db_host,
        db_port,
        "rstudio",
        "workbench",
        secret_arn("workbench-db-role-password"),
        planned.workbench_db.security_group_id,
        master_username="rstudio",
        master_password_secret_arn=secret_arn("workbench-db-password"),
    )
    audit_db = (
        contracts.DatabaseEndpoint(
            "postgres",
            db_host,
            db_port,
            "rstudio_audit",
            "workbench_audit",
            secret_arn("audit-db-role-password"),
            master_username="rstudio_audit",
            master_password_secret_arn=secret_arn("audit-db-password"),
        )
        if audit
        else None
    )
    services = dataclasses.replace(
        planned,
        workbench_db=db,
        audit_db=audit_db,
        cookie_key_secret_arn=secret_arn("workbench-secure-cookie-key"),
        bind_password_secret_arn=secret_arn("directory-bind-password"),
        license_secret_arn=license_arn,
        ldap_ca_cert_pem=CA_PEM if tls else "",
        workbench_certificate_arn=(
            f"arn:aws:acm:{REGION}:123456789012:certificate/0a1b2c3d-1111-4000-8000-000000000001"
        ),
        workbench_ca_cert_pem=CA_PEM,
        simulated=False,
    )
    image = contracts.planned_image("ubuntu2204", "f" * 64, "pwb")
    return network, services, image


def write_bucket(out: Path, audit: bool, license_key: bool, tls: bool) -> None:
    license_arn = secret_arn("workbench-license") if license_key else None
    data = example_data(workbench={"audit_database": audit})
    network, services, _ = upstream(audit=audit, license_arn=license_arn, tls=tls)
    files = render_workbench(settings_from(model_of(data), services), "example")
    env = node_env(model_of(data), network, services, "example", PREFIX)
    objects = bundle_objects(
        PREFIX,
        ROOT / "cluster",
        format_env(env),
        files,
        services.ldap_ca_cert_pem or None,
        services.workbench_ca_cert_pem if env["WORKBENCH_CA"] == "true" else None,
    )
    for obj in objects:
        path = out / "s3" / BUCKET / obj.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(obj.body)
    arns = [
        services.workbench_db.password_secret_arn,
        services.workbench_db.master_password_secret_arn,
        services.cookie_key_secret_arn,
    ]
    if services.audit_db:
        arns += [
            services.audit_db.password_secret_arn,
            services.audit_db.master_password_secret_arn,
        ]
    if license_arn:
        arns.append(license_arn)
    secret_dir = out / "secrets"
    secret_dir.mkdir(parents=True, exist_ok=True)
    for arn in arns:
        (secret_dir / arn.replace("/", "_").replace(":", "_")).write_text(random_secret())
    (out / "env-uri").write_text(f"s3://{BUCKET}/cluster/node.env\n")


def reseal(out: Path) -> str:
    """The bucket under ``out`` edited by a test made whole again, as the stage would have
    uploaded it: SHA256SUMS lists every object; returns SHA256SUMS' digest."""
    root = out / "s3" / BUCKET / "cluster"
    objects = [
        BundleObject(f"cluster/{path.relative_to(root).as_posix()}", path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.relative_to(root).as_posix() != SUMS_NAME
    ]
    (root / SUMS_NAME).write_text(sums_text("cluster", objects))
    return hashlib.sha256((root / SUMS_NAME).read_bytes()).hexdigest()


if __name__ == "__main__":
    args = sys.argv[1:]
    write_bucket(Path(args[0]), "--audit" in args, "--license" in args, "--no-tls" not in args)
