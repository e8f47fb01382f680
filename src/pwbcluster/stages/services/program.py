"""The services stage's Pulumi program: directory + TLS front, databases, secrets, IAM,
key pair and jump host.

It only builds components from its Args and returns its outputs under the names of
``ServicesOutputs``; the account adapter runs it (Automation API, or mocks).
"""

from __future__ import annotations

from typing import Any

import pulumi
from pwbcluster.stages.services.access import (
    ClusterAccess,
    ClusterAccessArgs,
    NodePolicies,
    NodePoliciesArgs,
    SshKey,
    SshKeyArgs,
    login_scaling_statements,
)
from pwbcluster.stages.services.args import ServicesArgs, WorkbenchTlsArgs
from pwbcluster.stages.services.certs import ImportedCertificate, private_ca, server_certificate
from pwbcluster.stages.services.databases import Database
from pwbcluster.stages.services.directory import Directory
from pwbcluster.stages.services.jumphost import JumpHost, JumpHostSetup
from pwbcluster.stages.services.secrets import GeneratedSecret, GeneratedSecretArgs

# Stack outputs that hold secret values (never part of a stage contract).
SECRET_OUTPUTS = ("ssh_private_key",)


def _endpoint(db: Database, engine: str, name: str, master: str, role: str | None) -> Any:
    return pulumi.Output.all(
        db.host, db.client_secret.arn, db.security_group_id, db.password_secret.arn
    ).apply(
        lambda v: {
            "engine": engine,
            "host": v[0],
            "port": db.port,
            "name": name,
            "username": role or master,
            "password_secret_arn": v[1],
            "security_group_id": v[2],
            "master_username": master,
            "master_password_secret_arn": v[3],
        }
    )


def node_secret_arns(
    cookie: Any,
    license_arn: str | None,
    databases: list[Database],
    slurmdb: Database | None = None,
) -> dict[str, list[Any]]:
    """The secrets each node role's scripts read (tests/stacks derive them from the
    scripts and compare): the head node creates each database's role with its master
    password (cluster/lib/database.sh) and needs nothing else; login nodes connect as
    those roles, share the cookie key and activate the licence; compute nodes read none.
    """
    return {
        "head-node": [
            arn
            for db in databases
            if db.role_secret is not None
            for arn in (db.password_secret.arn, db.role_secret.arn)
        ],
        "login-node": [
            cookie.arn,
            *(db.client_secret.arn for db in databases),
            *([license_arn] if license_arn else []),
            *([slurmdb.client_secret.arn] if slurmdb is not None else []),
        ],
        "compute-node": [],
    }


def workbench_certificate(args: WorkbenchTlsArgs | None) -> ImportedCertificate | None:
    """Workbench's certificate, from a CA of its own (not the directory's: the nodes trust
    each for its one purpose), or None where the deployment brings its own or opts out."""
    if args is None:
        return None
    name = f"{args.deployment}-workbench-tls"
    opts = pulumi.ResourceOptions()
    ca = private_ca(name, f"{args.deployment} Workbench CA", opts)
    tags = {**dict(args.tags), "Name": f"{args.deployment}-workbench"}
    return server_certificate(name, ca, args.dns_names[0], args.dns_names, tags, opts)


def services_program(args: ServicesArgs) -> dict[str, Any]:
    name = args.deployment
    tags = dict(args.tags)
    cluster = ClusterAccess(
        f"{name}-cluster",
        ClusterAccessArgs(
            deployment=name,
            vpc_id=args.vpc_id,
            tags=tags,
            workbench_port=args.workbench_port,
            nat_public_ips=args.nat_public_ips,
            callback_port=args.callback_port,
        ),
    )
    directory = Directory(f"{name}-directory", args.directory)
    workbench_cert = workbench_certificate(args.workbench_tls)

    def secret(purpose: str, description: str, length: int = 64) -> GeneratedSecret:
        return GeneratedSecret(
            f"{name}-{purpose}",
            GeneratedSecretArgs(
                deployment=name,
                purpose=purpose,
                description=description,
                tags=tags,
                length=length,
                special=False,
                recovery_window_days=args.secret_recovery_days,
            ),
        )

    cookie = secret(
        "workbench-secure-cookie-key", "Workbench secure-cookie-key shared by every node"
    )
    users = secret(
        "directory-user-passwords",
        "Initial passwords of the directory users, written by the users stage",
        length=0,
    )
    ssh = SshKey(
        f"{name}-ssh",
        SshKeyArgs(deployment=name, tags=tags, recovery_window_days=args.secret_recovery_days),
    )
    jump = None
    if args.jump_host is not None:
        jump = JumpHost(
            f"{name}-jump",
            args.jump_host,
            JumpHostSetup(
                domain=args.directory.domain,
                dns_ip_addresses=directory.dns_ip_addresses,
                region=args.region,
                bind_user=args.directory.bind_user,
                admin_user=args.directory.admin_user,
                users_ou=args.directory.users_ou,
                admin_secret_arn=directory.admin_secret.arn,
                bind_secret_arn=directory.bind_secret.arn,
                # pwb-users reads the batch (a re-run completes it) and writes it back.
                extra_secret_arns=[users.arn],
                writable_secret_arns=[users.arn],
                key_name=ssh.key_name,
                bucket_name=args.bucket_name,
                bucket_arn=args.bucket_arn,
                tags=tags,
            ),
        )
    clients = [cluster.security_group_id]
    if jump is not None:
        clients.append(jump.security_group_id)

    def database(db_args: Any) -> Database:
        from dataclasses import replace

        return Database(
            f"{name}-{db_args.purpose}",
            replace(db_args, client_security_group_ids=tuple(clients)),
        )

    workbench = database(args.workbench_db)
    audit = database(args.audit_db) if args.audit_db else None
    slurm = database(args.slurm_accounting_db) if args.slurm_accounting_db else None
    workbench_dbs = [workbench] if audit is None else [workbench, audit]
    policies = NodePolicies(
        f"{name}-nodes",
        NodePoliciesArgs(
            deployment=name,
            bucket_arn=args.bucket_arn,
            secrets=node_secret_arns(
                cookie,
                args.license_secret_arn,
                workbench_dbs,
                # The backup slurmdbd on a login node reads the accounting password.
                slurmdb=slurm if args.login_node_slurmdb else None,
            ),
            tags=tags,
            login_extra=login_scaling_statements(args.region, name, args.private_subnet_ids)
            if args.login_node_scaling
            else (),
            ha_scaling_sums=args.login_node_scaling,
        ),
    )

    def endpoint(db: Database | None, db_args: Any) -> Any:
        if db is None:
            return None
        return _endpoint(
            db,
            db_args.engine,
            db_args.db_name or "slurm_acct_db",
            db_args.username,
            db_args.role_username,
        )

    return {
        "directory_type": args.directory.type,
        "directory_id": directory.directory_id,
        "domain_name": args.directory.domain,
        "directory_dns_addresses": directory.dns_ip_addresses,
        "ldap_uri": directory.ldap_uri,
        "ldap_tls": args.directory.ldaps,
        "ldap_ca_cert_pem": directory.ldap_ca_cert_pem,
        "bind_user_dn": args.directory.bind_user_dn,
        "bind_password_secret_arn": directory.bind_secret.arn,
        "admin_password_secret_arn": directory.admin_secret.arn,
        "workbench_db": endpoint(workbench, args.workbench_db),
        "audit_db": endpoint(audit, args.audit_db),
        "slurm_accounting_db": endpoint(slurm, args.slurm_accounting_db),
        "cookie_key_secret_arn": cookie.arn,
        "license_secret_arn": args.license_secret_arn,
        "users_password_secret_arn": users.arn,
        "head_node_policy_arn": policies.arns["head-node"],
        "login_node_policy_arn": policies.arns["login-node"],
        "compute_node_policy_arn": policies.arns["compute-node"],
        "cluster_security_group_id": cluster.security_group_id,
        "key_pair_name": ssh.key_name,
        "ssh_private_key_secret_arn": ssh.private_key_secret_arn,
        "jump_host_instance_id": jump.instance_id if jump is not None else "",
        "directory_security_group_id": directory.front_security_group_id,
        "workbench_certificate_arn": workbench_cert.certificate_arn if workbench_cert else "",
        "workbench_ca_cert_pem": workbench_cert.ca_cert_pem if workbench_cert else "",
        "workbench_certificate_not_after": workbench_cert.not_after if workbench_cert else "",
        "ldap_certificate_not_after": directory.ldap_certificate_not_after,
        "jump_host_security_group_id": jump.security_group_id if jump is not None else "",
        "ssh_private_key": ssh.private_key,
    }
