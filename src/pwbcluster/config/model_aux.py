"""The ``aux:`` section of the model (config/schema/aux.schema.json)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NetworkModel:
    """``aux.network``: the VPC, created or an existing one named by id."""

    vpc_id: str | None
    public_subnet_ids: tuple[str, ...]
    private_subnet_ids: tuple[str, ...]
    cidr: str
    availability_zones: int
    nat_gateway: bool


@dataclass(frozen=True)
class DirectoryModel:
    """``aux.directory``: the directory users log in with."""

    type: str
    domain: str
    size: str
    ldaps: bool
    bind_user: str


@dataclass(frozen=True)
class WorkbenchDbModel:
    """``aux.databases.workbench``: the PostgreSQL every Workbench node shares."""

    engine_version: str
    instance_class: str
    allocated_storage_gb: int
    multi_az: bool
    deletion_protection: bool
    backup_retention_days: int
    final_snapshot: bool


@dataclass(frozen=True)
class AuditDbModel:
    """``aux.databases.audit``: the optional PostgreSQL for Workbench's audit data."""

    enabled: bool
    instance_class: str
    allocated_storage_gb: int


@dataclass(frozen=True)
class SlurmAccountingDbModel:
    """``aux.databases.slurm_accounting``: the optional MariaDB/MySQL for Slurm."""

    enabled: bool
    engine: str
    instance_class: str
    allocated_storage_gb: int


@dataclass(frozen=True)
class DatabasesModel:
    workbench: WorkbenchDbModel
    audit: AuditDbModel
    slurm_accounting: SlurmAccountingDbModel


@dataclass(frozen=True)
class SecretsModel:
    """``aux.secrets``: the secrets the services stage generates."""

    recovery_window_days: int


@dataclass(frozen=True)
class JumpHostModel:
    instance_type: str
    os: str


@dataclass(frozen=True)
class UserGroupsModel:
    users: str
    admins: str


@dataclass(frozen=True)
class UsersModel:
    """``aux.users``: the batch of directory users ``invoke users.create`` makes."""

    count: int
    prefix: str
    digits: int
    start: int
    uid_start: int
    shell: str
    home_base: str
    groups: UserGroupsModel
    admins: tuple[str, ...]


@dataclass(frozen=True)
class AuxModel:
    network: NetworkModel
    directory: DirectoryModel
    databases: DatabasesModel
    jump_host: JumpHostModel
    users: UsersModel
    secrets: SecretsModel
