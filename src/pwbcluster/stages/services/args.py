"""Typed arguments of the services stage's Pulumi components.

Pure Python (no Pulumi import): built from the ``aux`` section and the network stage's
contract (``NetworkOutputs``); the components take nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pwbcluster.config.model import Deployment, coerce
from pwbcluster.contracts import workbench_listener_port

SLURM_ACCOUNTING_ENGINE_VERSIONS = {"mariadb": "10.11", "mysql": "8.0"}
# Workbench's own roles in its databases (the master users keep their names, so an
# existing instance is not replaced).
WORKBENCH_DB_ROLE = "workbench"
AUDIT_DB_ROLE = "workbench_audit"


@dataclass(frozen=True)
class DirectoryArgs:
    deployment: str
    tags: Mapping[str, str]
    vpc_id: str
    vpc_cidr: str
    subnet_ids: tuple[str, ...]
    type: str = "SimpleAD"
    domain: str = "pwb.posit.co"
    size: str = "Small"
    ldaps: bool = True
    bind_user: str = "pcluster-ldap-ro"
    secret_recovery_days: int = 0

    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={part}" for part in self.domain.split("."))

    @property
    def short_name(self) -> str:
        return self.domain.split(".")[0].upper()[:15]

    @property
    def admin_user(self) -> str:
        return "Admin" if self.type == "MicrosoftAD" else "Administrator"

    @property
    def users_ou(self) -> str:
        if self.type == "MicrosoftAD":
            return f"OU=Users,OU={self.short_name},{self.base_dn}"
        return ""

    @property
    def bind_user_dn(self) -> str:
        # Managed AD keeps users in OU=Users,OU=<NetBIOS name>; SimpleAD in CN=Users.
        return f"CN={self.bind_user},{self.users_ou or 'CN=Users,' + self.base_dn}"


@dataclass(frozen=True)
class DatabaseArgs:
    deployment: str
    tags: Mapping[str, str]
    purpose: str  # workbench | audit | slurm-accounting
    vpc_id: str
    subnet_ids: tuple[str, ...]
    # Security groups whose members may connect (the cluster's, the jump host's).
    client_security_group_ids: tuple[Any, ...]
    engine: str = "postgres"
    engine_version: str = "16"
    instance_class: str = "db.t4g.small"
    allocated_storage_gb: int = 20
    multi_az: bool = False
    deletion_protection: bool = False
    backup_retention_days: int = 7
    db_name: str | None = "rstudio"
    # The master user: it creates the client's role and serves nothing else.
    username: str = "rstudio"
    # The dedicated role the client connects as (PostgreSQL for Workbench); None: the
    # client uses the master user (Slurm accounting: ParallelCluster's PasswordSecretArn).
    role_username: str | None = None
    # `down` keeps a final snapshot named final_snapshot_name (aux.databases.workbench.
    # final_snapshot); False deletes the data with the instance.
    final_snapshot: bool = True
    # Secrets Manager recovery window of its password secrets (aux.secrets).
    secret_recovery_days: int = 0

    @property
    def port(self) -> int:
        return 5432 if self.engine == "postgres" else 3306

    @property
    def label(self) -> str:
        return f"{self.deployment}-{self.purpose}-db"

    @property
    def final_snapshot_name(self) -> str:
        """Deterministic, so `down` can say where the data went and `up` can find it."""
        return f"{self.label}-final"


@dataclass(frozen=True)
class JumpHostArgs:
    deployment: str
    tags: Mapping[str, str]
    vpc_id: str
    subnet_id: str
    instance_type: str = "t3.medium"
    os: str = "ubuntu-24.04"
    # Local path of the pwb-users wheel to upload and install (None: no tool on the host).
    tool_wheel: str | None = None


@dataclass(frozen=True)
class WorkbenchTlsArgs:
    """A certificate for the login balancer's 443 listener, from a CA of this program.

    It names ``hostname`` (when given) and the balancer's own AWS name, ``*.elb.<region>.
    <suffix>``: sessions call back through the balancer by that name, and the nodes trust
    the CA, so the callback's certificate check passes."""

    deployment: str
    region: str
    hostname: str | None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def dns_names(self) -> tuple[str, ...]:
        suffix = "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"
        balancer = f"*.elb.{self.region}.{suffix}"
        return (self.hostname, balancer) if self.hostname else (balancer,)


@dataclass(frozen=True)
class ServicesArgs:
    """Everything the services program needs: config plus the network contract."""

    deployment: str
    region: str
    tags: Mapping[str, str]
    vpc_id: str
    vpc_cidr: str
    private_subnet_ids: tuple[str, ...]
    bucket_name: str
    bucket_arn: str
    directory: DirectoryArgs
    workbench_db: DatabaseArgs
    audit_db: DatabaseArgs | None = None
    slurm_accounting_db: DatabaseArgs | None = None
    jump_host: JumpHostArgs | None = None
    # The user's Workbench licence secret (cluster.workbench.license_secret_arn): the
    # toolkit never creates it, but login and head nodes must be allowed to read it.
    license_secret_arn: str | None = None
    # Backup slurmctlds on the login nodes (cluster.ha.controllers): the login nodes then
    # need what ParallelCluster's resume and suspend programs call.
    login_node_scaling: bool = False
    # The login nodes run the backup slurmdbd (accounting and controller HA both on).
    login_node_slurmdb: bool = False
    # cluster.workbench.port: the cluster group admits it between its members.
    workbench_port: int = 8787
    # The balancer's Workbench listener and the NAT addresses the callbacks come from.
    callback_port: int = 8787
    nat_public_ips: tuple[str, ...] = ()
    # Workbench's certificate, generated where TLS is on and the deployment brings none.
    workbench_tls: WorkbenchTlsArgs | None = None
    # Secrets Manager recovery window (days) of every secret the program creates: 0
    # deletes at once (a `down` then `up` may reuse the names), 7-30 keep a deleted secret
    # recoverable that long (aux.secrets.recovery_window_days).
    secret_recovery_days: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)


def services_args(
    model: Deployment | Mapping[str, Any],
    tags: Mapping[str, str],
    network: Any,
    tool_wheel: str | None = None,
) -> ServicesArgs:
    """ServicesArgs from the model (``config.model``) and the network stage's ``NetworkOutputs``.

    ``tool_wheel`` is the pwb-users wheel the jump host installs (``aux.toolwheel``).
    """
    model = coerce(Deployment, model)
    aux = model.aux
    name = model.deployment.name
    tags = dict(tags)
    private = tuple(network.private_subnet_ids)
    directory = aux.directory
    dbs = aux.databases
    wb = dbs.workbench
    # Every database of the deployment shares the Workbench database's durability.
    recovery = aux.secrets.recovery_window_days
    durability: dict[str, Any] = {
        "multi_az": wb.multi_az,
        "deletion_protection": wb.deletion_protection,
        "backup_retention_days": wb.backup_retention_days,
        "final_snapshot": wb.final_snapshot,
        "secret_recovery_days": recovery,
    }

    def db(purpose: str, **kw: Any) -> DatabaseArgs:
        return DatabaseArgs(
            deployment=name,
            tags=tags,
            purpose=purpose,
            vpc_id=network.vpc_id,
            subnet_ids=private,
            client_security_group_ids=(),
            **kw,
        )

    audit = dbs.audit
    slurm = dbs.slurm_accounting
    wb_cfg = model.cluster.workbench
    return ServicesArgs(
        deployment=name,
        region=model.deployment.region,
        tags=tags,
        secret_recovery_days=recovery,
        license_secret_arn=model.cluster.workbench.license_secret_arn or None,
        login_node_scaling=bool(model.cluster.ha.controllers),
        login_node_slurmdb=bool(model.cluster.ha.controllers and model.cluster.slurm_accounting),
        workbench_port=int(model.cluster.workbench.port),
        callback_port=workbench_listener_port(int(wb_cfg.port), wb_cfg.serves_tls),
        nat_public_ips=tuple(getattr(network, "nat_public_ips", ()) or ()),
        workbench_tls=WorkbenchTlsArgs(name, model.deployment.region, wb_cfg.hostname, tags)
        if wb_cfg.tls and not wb_cfg.tls_certificate_arn
        else None,
        vpc_id=network.vpc_id,
        vpc_cidr=network.vpc_cidr,
        private_subnet_ids=private,
        bucket_name=network.bucket_name,
        bucket_arn=network.bucket_arn,
        directory=DirectoryArgs(
            deployment=name,
            tags=tags,
            vpc_id=network.vpc_id,
            vpc_cidr=network.vpc_cidr,
            subnet_ids=private[:2],
            type=directory.type,
            domain=directory.domain,
            size=directory.size,
            ldaps=directory.ldaps,
            bind_user=directory.bind_user,
            secret_recovery_days=recovery,
        ),
        workbench_db=db(
            "workbench",
            engine_version=wb.engine_version,
            instance_class=wb.instance_class,
            allocated_storage_gb=wb.allocated_storage_gb,
            role_username=WORKBENCH_DB_ROLE,
            **durability,
        ),
        audit_db=db(
            "audit",
            engine_version=wb.engine_version,
            instance_class=audit.instance_class,
            allocated_storage_gb=audit.allocated_storage_gb,
            db_name="rstudio_audit",
            username="rstudio_audit",
            role_username=AUDIT_DB_ROLE,
            **durability,
        )
        if audit.enabled
        else None,
        slurm_accounting_db=db(
            "slurm-accounting",
            engine=slurm.engine,
            engine_version=SLURM_ACCOUNTING_ENGINE_VERSIONS[slurm.engine],
            instance_class=slurm.instance_class,
            allocated_storage_gb=slurm.allocated_storage_gb,
            **durability,
            # slurmdbd creates its own schema (slurm_acct_db) on first start.
            db_name=None,
            username="slurm",
        )
        if slurm.enabled
        else None,
        jump_host=JumpHostArgs(
            deployment=name,
            tags=tags,
            vpc_id=network.vpc_id,
            subnet_id=private[0],
            instance_type=aux.jump_host.instance_type,
            os=aux.jump_host.os,
            tool_wheel=tool_wheel,
        ),
    )
