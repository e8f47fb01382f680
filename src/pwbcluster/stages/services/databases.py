"""RDS databases: PostgreSQL for Workbench (and its audit), MariaDB/MySQL for Slurm.

Private (never publicly accessible), encrypted at rest, TLS enforced by a parameter
group, backups on; Multi-AZ and deletion protection as options; a final snapshot with a
deterministic name when the instance is deleted, unless the deployment says otherwise.
The security group lets in the database port only from the client security groups (the
cluster's and the jump host's), nothing else. The master password is generated and kept
in Secrets Manager; where the client has a role of its own (Workbench's PostgreSQL), that
role's password is a second secret, and the head node creates the role at first boot
(cluster/lib/database.sh) with the master password, which serves nothing else.
"""

from __future__ import annotations

import pulumi_aws as aws

import pulumi
from pwbcluster.stages.services.args import DatabaseArgs
from pwbcluster.stages.services.secrets import GeneratedSecret, GeneratedSecretArgs

IDENTIFIER_LABELS = {"workbench": "workbench", "audit": "audit", "slurm-accounting": "slurmdb"}
_TLS_PARAMETERS = {
    "postgres": ("rds.force_ssl", "1"),
    "mysql": ("require_secure_transport", "1"),
    "mariadb": ("require_secure_transport", "ON"),
}


def parameter_group_family(engine: str, version: str) -> str:
    if engine == "postgres":
        return f"postgres{version.split('.')[0]}"
    return f"{engine}{version}"


class Database(pulumi.ComponentResource):
    host: pulumi.Output[str]
    port: int
    # The master user's password (RDS's master_password).
    password_secret: GeneratedSecret
    # The client role's password (None: the client connects as the master user).
    role_secret: GeneratedSecret | None
    security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pwbcluster:aux:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        label = args.label
        tags = {**dict(args.tags), "Name": label}
        self.port = args.port
        self.password_secret = GeneratedSecret(
            f"{name}-password",
            GeneratedSecretArgs(
                deployment=args.deployment,
                purpose=f"{args.purpose}-db-password",
                description=f"Master password of the {args.purpose} database ({args.engine})",
                tags=dict(args.tags),
                recovery_window_days=args.secret_recovery_days,
            ),
            opts=child,
        )
        self.role_secret = None
        if args.role_username:
            self.role_secret = GeneratedSecret(
                f"{name}-role-password",
                GeneratedSecretArgs(
                    deployment=args.deployment,
                    purpose=f"{args.purpose}-db-role-password",
                    description=f"Password of role {args.role_username} in the {args.purpose} "
                    "database (the head node creates the role with the master user)",
                    tags=dict(args.tags),
                    recovery_window_days=args.secret_recovery_days,
                ),
                opts=child,
            )
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description=f"{args.purpose} database: port {args.port} from cluster and jump host",
            ingress=[
                {
                    "protocol": "tcp",
                    "from_port": args.port,
                    "to_port": args.port,
                    "security_groups": list(args.client_security_group_ids),
                    "description": "database clients",
                }
            ],
            tags=tags,
            opts=child,
        )
        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=list(args.subnet_ids),
            description=f"Private subnets of the {args.purpose} database",
            tags=tags,
            opts=child,
        )
        param, value = _TLS_PARAMETERS[args.engine]
        params = aws.rds.ParameterGroup(
            f"{name}-params",
            family=parameter_group_family(args.engine, args.engine_version),
            description=f"{args.purpose} database: TLS required",
            parameters=[{"name": param, "value": value, "apply_method": "pending-reboot"}],
            tags=tags,
            opts=child,
        )
        instance = aws.rds.Instance(
            f"{name}-instance",
            # The provider caps identifier prefixes; "slurm-accounting" would not fit.
            identifier_prefix=f"{args.deployment}-{IDENTIFIER_LABELS.get(args.purpose, 'db')}-",
            engine=args.engine,
            engine_version=args.engine_version,
            instance_class=args.instance_class,
            allocated_storage=args.allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            db_name=args.db_name,
            username=args.username,
            password=self.password_secret.value,
            port=args.port,
            db_subnet_group_name=subnets.name,
            parameter_group_name=params.name,
            vpc_security_group_ids=[sg.id],
            publicly_accessible=False,
            multi_az=args.multi_az,
            deletion_protection=args.deletion_protection,
            backup_retention_period=args.backup_retention_days,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            # Deleting the instance (`down`) keeps its data in this snapshot unless the
            # deployment switched it off (aux.databases.workbench.final_snapshot).
            skip_final_snapshot=not args.final_snapshot,
            final_snapshot_identifier=args.final_snapshot_name if args.final_snapshot else None,
            apply_immediately=True,
            tags=tags,
            opts=child,
        )
        self.host = instance.address
        self.security_group_id = sg.id
        self.register_outputs({"host": self.host, "password_secret_arn": self.password_secret.arn})

    @property
    def client_secret(self) -> GeneratedSecret:
        """The secret of the user the client connects as."""
        return self.role_secret or self.password_secret
