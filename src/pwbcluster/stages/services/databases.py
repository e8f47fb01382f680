"""RDS databases: PostgreSQL for Workbench (and its audit), MariaDB/MySQL for Slurm.

Private (never publicly accessible), encrypted at rest, TLS enforced by a parameter
group, backups on; Multi-AZ and deletion protection as options. The security group lets
in the database port only from the client security groups (the cluster's and the jump
host's), nothing else. The master password is generated and kept in Secrets Manager.
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
    password_secret: GeneratedSecret
    security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pwbcluster:aux:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        label = f"{args.deployment}-{args.purpose}-db"
        tags = {**dict(args.tags), "Name": label}
        self.port = args.port
        self.password_secret = GeneratedSecret(
            f"{name}-password",
            GeneratedSecretArgs(
                deployment=args.deployment,
                purpose=f"{args.purpose}-db-password",
                description=f"Master password of the {args.purpose} database ({args.engine})",
                tags=dict(args.tags),
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
            # With deletion protection on, keep a final snapshot; otherwise `down` is clean.
            skip_final_snapshot=not args.deletion_protection,
            final_snapshot_identifier=f"{label}-final" if args.deletion_protection else None,
            apply_immediately=True,
            tags=tags,
            opts=child,
        )
        self.host = instance.address
        self.security_group_id = sg.id
        self.register_outputs({"host": self.host, "password_secret_arn": self.password_secret.arn})
