"""The typed outputs each stage hands to the next.

These frozen dataclasses are the only thing that flows between stages: the orchestrator
passes them along, records them in ``build/<deployment>/state.json`` and reads them back
on resume. No stage reads another's internals, and no secret value ever appears here:
secrets travel as Secrets Manager ARNs, read by the nodes at boot.

``planned_*`` builders return well-formed placeholder values for ``invoke plan``. Each
placeholder contains the word ``planned`` (ids) or ``PLANNED`` (names, hosts), so it is
easy to spot, and each still matches the pattern AWS and ParallelCluster expect, so the
rendered files validate.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

# The one account id every stand-in uses: moto's default account, which the sandbox's moto
# server, the offline ParallelCluster runs and the planned placeholders all share.
STAND_IN_ACCOUNT = "123456789012"
PLANNED_ACCOUNT = STAND_IN_ACCOUNT
PLANNED_CA_PEM = "-----BEGIN CERTIFICATE-----\nPLANNED\n-----END CERTIFICATE-----\n"

# The scripts bucket's layout, shared by the stages that upload and the IAM policies that
# grant: each role reads exactly its prefix.
IMAGE_SCRIPTS_PREFIX = "image/"
CLUSTER_SCRIPTS_PREFIX = "cluster/"
# The jump host's pwb-users wheel; only the jump host reads it.
JUMP_TOOL_PREFIX = "jump/"
# The sha256 list of the scaling files the head publishes for backup controllers
# (cluster/ha/controller-ha.sh): only the head node's role may write it, the login
# nodes' read it; outside cluster/, which no node may write.
HA_SCALING_SUMS_KEY = "ha/scaling.sha256sums"

# The Pulumi project of the network and services stacks.
PROJECT = "pwbcluster-aux"
# ParallelCluster's Slurm ports (aws-parallelcluster-cookbook, slurm.conf.erb:
# SlurmctldPort=6820-6829, SlurmdPort=6818).
SLURMCTLD_PORTS = (6820, 6829)
SLURMD_PORT = 6818
# The Job Launcher's port (launcher.conf); Posit's load-balancing requirements: the
# Workbench port and this one open between the nodes
# (docs.posit.co/ide/server-pro/load_balancing/configuration.html).
LAUNCHER_PORT = 5559


def workbench_listener_port(port: int, tls: bool) -> int:
    """The login balancer's Workbench listener: 443 with a certificate, else the port."""
    return 443 if tls else port


def stack_name(deployment: str, part: str) -> str:
    """The Pulumi stack of one deployment's part: ``<deployment>-network`` or ``-services``."""
    return f"{deployment}-{part}"


@dataclass(frozen=True)
class NetworkOutputs:
    """VPC, subnets and the scripts bucket (the network stage)."""

    vpc_id: str
    vpc_cidr: str
    public_subnet_ids: tuple[str, ...]
    private_subnet_ids: tuple[str, ...]
    availability_zones: tuple[str, ...]
    bucket_name: str
    bucket_arn: str
    # Managed policy that lets build-image instances read the image scripts prefix only.
    image_build_policy_arn: str
    simulated: bool = False
    # Security group for build-image instances (egress only): pcluster requires
    # Build.SecurityGroupIds whenever Build.SubnetId is set.
    image_build_security_group_id: str | None = None
    # The NAT gateways the private subnets route 0.0.0.0/0 through (none for an existing
    # VPC, whose routing the toolkit does not know): nodes there reach AWS APIs this way.
    nat_gateway_ids: tuple[str, ...] = ()
    # The NAT gateways' public addresses: what an internet-facing balancer sees of the
    # private subnets (session callbacks); () for an existing VPC.
    nat_public_ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatabaseEndpoint:
    """A database the toolkit created; the password is only ever a secret ARN.

    ``username``/``password_secret_arn`` are what its client connects with: for
    Workbench's PostgreSQL databases a dedicated role (LOGIN, no SUPERUSER, CREATEDB or
    CREATEROLE, owner of its database only) that the head node creates at first boot
    with the master user, ``master_username``/``master_password_secret_arn``, which
    serve nothing else. Where the client is the master user (Slurm accounting) both
    pairs are the same.
    """

    engine: str
    host: str
    port: int
    name: str
    username: str
    password_secret_arn: str
    # The database's security group (the reachability proof reads its rules); "" in a
    # state recorded before it was recorded.
    security_group_id: str = ""
    master_username: str = ""
    master_password_secret_arn: str = ""


@dataclass(frozen=True)
class ServicesOutputs:
    """Directory, databases, secrets, IAM policies, key pair and jump host."""

    directory_type: str
    directory_id: str
    domain_name: str
    directory_dns_addresses: tuple[str, ...]
    # ldaps://... unless the user opted out of TLS (then ldap://..., with a warning).
    ldap_uri: str
    ldap_tls: bool
    # PEM of the CA that signed the directory's TLS front; public, not a secret.
    ldap_ca_cert_pem: str
    bind_user_dn: str
    bind_password_secret_arn: str
    admin_password_secret_arn: str
    workbench_db: DatabaseEndpoint
    audit_db: DatabaseEndpoint | None
    slurm_accounting_db: DatabaseEndpoint | None
    cookie_key_secret_arn: str
    license_secret_arn: str | None
    users_password_secret_arn: str
    head_node_policy_arn: str
    login_node_policy_arn: str
    compute_node_policy_arn: str
    cluster_security_group_id: str
    key_pair_name: str
    ssh_private_key_secret_arn: str
    jump_host_instance_id: str
    simulated: bool = False
    # The LDAPS front's and the jump host's security groups, for the reachability proof.
    directory_security_group_id: str = ""
    jump_host_security_group_id: str = ""
    # Workbench's TLS certificate where the deployment brings none: generated by the
    # services stage from its own CA, imported into ACM; the CA (public) for the nodes.
    workbench_certificate_arn: str = ""
    workbench_ca_cert_pem: str = ""
    # notAfter (RFC 3339) of the generated server certificates ("" where none was
    # generated, or in a state recorded before): `status` and `plan` warn ahead of it.
    workbench_certificate_not_after: str = ""
    ldap_certificate_not_after: str = ""


@dataclass(frozen=True)
class ImageOutputs:
    """The custom AMI (built, found by fingerprint, or simulated)."""

    ami_id: str
    image_name: str
    fingerprint: str
    os: str
    scripts_prefix: str
    simulated: bool = False
    # Bucket holding scripts_prefix, so destroy can remove the uploaded objects.
    bucket_name: str = ""


@dataclass(frozen=True)
class ClusterOutputs:
    """The ParallelCluster cluster and the Workbench address it serves."""

    cluster_name: str
    region: str
    workbench_url: str
    login_load_balancer_dns: str
    scripts_prefix: str
    simulated: bool = False


@dataclass(frozen=True)
class UsersOutputs:
    """Directory users created and verified."""

    requested: int
    created: int
    existing: int
    verified: int
    failed: int
    password_secret_arn: str
    skipped_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


STAGE_OUTPUT_TYPES: dict[str, type] = {
    "network": NetworkOutputs,
    "services": ServicesOutputs,
    "image": ImageOutputs,
    "cluster": ClusterOutputs,
    "users": UsersOutputs,
}


def to_dict(value: Any) -> dict[str, Any]:
    """Serialise a contract for the state file (tuples become lists)."""
    return dataclasses.asdict(value)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a contract from the state file, restoring tuples and nested contracts."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        kwargs[f.name] = _coerce(hints[f.name], data[f.name])
    return cls(**kwargs)


def _coerce(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(inner[0], value) if len(inner) == 1 else value
    if origin is tuple:
        return tuple(value)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return from_dict(hint, value)  # type: ignore[arg-type]
    return value


def _arn(region: str, service: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{PLANNED_ACCOUNT}:{resource}"


# The plan's placeholder ids of the groups the services program creates.
PLANNED_GROUPS = {
    "cluster": "sg-planned0000000001",
    "workbench database": "sg-planned0000000003",
    "directory": "sg-planned0000000004",
    "jump host": "sg-planned0000000005",
}


def planned_network(region: str, deployment: str) -> NetworkOutputs:
    """Placeholders for the network stage's outputs, for ``invoke plan``."""
    return NetworkOutputs(
        vpc_id="vpc-planned0000000001",
        vpc_cidr="10.0.0.0/16",
        public_subnet_ids=("subnet-planned0000000001", "subnet-planned0000000002"),
        private_subnet_ids=("subnet-planned0000000003", "subnet-planned0000000004"),
        availability_zones=(f"{region}a", f"{region}b"),
        bucket_name=f"{deployment}-scripts-planned",
        bucket_arn=f"arn:aws:s3:::{deployment}-scripts-planned",
        image_build_policy_arn=f"arn:aws:iam::{PLANNED_ACCOUNT}:policy/{deployment}-image-build-PLANNED",
        simulated=True,
        image_build_security_group_id="sg-planned0000000002",
    )


def planned_services(
    region: str, deployment: str, domain: str, tls: bool = True, workbench_tls: bool = False
) -> ServicesOutputs:
    """Placeholders for the services stage's outputs, for ``invoke plan``."""

    def secret(name: str) -> str:
        return _arn(region, "secretsmanager", f"secret:{deployment}/{name}-PLANNED")

    def policy(name: str) -> str:
        return f"arn:aws:iam::{PLANNED_ACCOUNT}:policy/{deployment}-{name}-PLANNED"

    base_dn = ",".join(f"dc={part}" for part in domain.split("."))
    host = f"ldap.PLANNED.{domain}"
    return ServicesOutputs(
        directory_type="SimpleAD",
        directory_id="d-planned001",
        domain_name=domain,
        directory_dns_addresses=("10.0.128.10", "10.0.144.10"),
        ldap_uri=f"ldaps://{host}" if tls else f"ldap://{host}",
        ldap_tls=tls,
        # A placeholder in the shape of a PEM: the real CA exists once the stage ran.
        ldap_ca_cert_pem=PLANNED_CA_PEM if tls else "",
        bind_user_dn=f"cn=pcluster-bind,cn=Users,{base_dn}",
        bind_password_secret_arn=secret("directory-bind-password"),
        admin_password_secret_arn=secret("directory-admin-password"),
        workbench_db=DatabaseEndpoint(
            engine="postgres",
            host=f"workbench-db.PLANNED.{region}.rds.amazonaws.com",
            port=5432,
            name="rstudio",
            username="workbench",
            password_secret_arn=secret("workbench-db-role-password"),
            security_group_id=PLANNED_GROUPS["workbench database"],
            master_username="rstudio",
            master_password_secret_arn=secret("workbench-db-password"),
        ),
        audit_db=None,
        slurm_accounting_db=None,
        cookie_key_secret_arn=secret("workbench-secure-cookie-key"),
        license_secret_arn=None,
        users_password_secret_arn=secret("directory-user-passwords"),
        head_node_policy_arn=policy("head-node"),
        login_node_policy_arn=policy("login-node"),
        compute_node_policy_arn=policy("compute-node"),
        cluster_security_group_id=PLANNED_GROUPS["cluster"],
        key_pair_name=f"{deployment}-PLANNED",
        ssh_private_key_secret_arn=secret("ssh-private-key"),
        jump_host_instance_id="i-planned0000000001",
        simulated=True,
        directory_security_group_id=PLANNED_GROUPS["directory"] if tls else "",
        workbench_certificate_arn=_arn(region, "acm", "certificate/workbench-PLANNED")
        if workbench_tls
        else "",
        workbench_ca_cert_pem=PLANNED_CA_PEM if workbench_tls else "",
        jump_host_security_group_id=PLANNED_GROUPS["jump host"],
    )


def planned_image(os_name: str, fingerprint: str, image_name: str) -> ImageOutputs:
    """Placeholders for the image stage's outputs, for ``invoke plan``."""
    return ImageOutputs(
        ami_id="ami-planned0000000001",
        image_name=image_name,
        fingerprint=fingerprint,
        os=os_name,
        scripts_prefix=f"image/{fingerprint[:16]}/",
        simulated=True,
    )
