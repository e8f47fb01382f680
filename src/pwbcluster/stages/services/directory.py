"""The directory (AWS SimpleAD or Managed Microsoft AD) and its TLS front.

Neither directory type hands ParallelCluster an LDAPS endpoint it can reach without more
work: SimpleAD has no LDAPS at all, and Managed AD serves LDAPS only once an enterprise CA
runs inside the domain. ``LdapTlsFront`` is the approach of ParallelCluster's own AD
tutorial: an internal network load balancer with a TLS listener on 636 forwarding to the
domain controllers' 389, here with a certificate from a CA this program generates and
imports into ACM. The CA certificate is public and handed on so nodes trust it
(``LdapTlsCaCert``). The certificate names the load balancer's DNS name, which is the
address in ``ldap_uri``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi_aws as aws

import pulumi
from pwbcluster.stages.services.args import DirectoryArgs
from pwbcluster.stages.services.certs import private_ca, server_certificate
from pwbcluster.stages.services.secrets import GeneratedSecret, GeneratedSecretArgs

log = logging.getLogger(__name__)

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class LdapTlsFrontArgs:
    deployment: str
    domain: str
    vpc_id: str
    vpc_cidr: str
    subnet_ids: tuple[str, ...]
    # The domain controllers' addresses (two for either directory type).
    dns_ip_addresses: Any
    tags: dict[str, str] = field(default_factory=dict)


def _nth_address(index: int) -> Callable[[list[str]], str]:
    return lambda ips: sorted(ips)[index]


class LdapTlsFront(pulumi.ComponentResource):
    dns_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    ca_cert_pem: pulumi.Output[str]
    certificate_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: LdapTlsFrontArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pwbcluster:aux:LdapTlsFront", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {**args.tags, "Name": f"{args.deployment}-ldaps"}
        ca = private_ca(name, f"{args.deployment} directory CA", child)
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="LDAPS front of the directory: 636 from the VPC only",
            ingress=[
                {
                    "protocol": "tcp",
                    "from_port": 636,
                    "to_port": 636,
                    "cidr_blocks": [args.vpc_cidr],
                    "description": "LDAPS from the VPC",
                }
            ],
            egress=[
                {
                    "protocol": "tcp",
                    "from_port": 389,
                    "to_port": 389,
                    "cidr_blocks": [args.vpc_cidr],
                    "description": "LDAP to the domain controllers",
                }
            ],
            tags=tags,
            opts=child,
        )
        nlb = aws.lb.LoadBalancer(
            f"{name}-nlb",
            name=f"{args.deployment}-ldaps"[:32],
            internal=True,
            load_balancer_type="network",
            subnets=list(args.subnet_ids),
            security_groups=[sg.id],
            enable_cross_zone_load_balancing=True,
            tags=tags,
            opts=child,
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-ldap",
            name=f"{args.deployment}-ldap"[:32],
            port=389,
            protocol="TCP",
            target_type="ip",
            vpc_id=args.vpc_id,
            health_check={"protocol": "TCP", "port": "389"},
            tags=tags,
            opts=child,
        )
        addresses: pulumi.Output[list[str]] = pulumi.Output.from_input(args.dns_ip_addresses)
        for i in range(2):
            aws.lb.TargetGroupAttachment(
                f"{name}-dc-{i + 1}",
                target_group_arn=target_group.arn,
                target_id=addresses.apply(_nth_address(i)),
                port=389,
                opts=pulumi.ResourceOptions(parent=target_group),
            )
        certificate = server_certificate(
            name,
            ca,
            f"ldap.{args.domain}",
            [nlb.dns_name, f"ldap.{args.domain}"],
            tags,
            child,
        )
        aws.lb.Listener(
            f"{name}-ldaps",
            load_balancer_arn=nlb.arn,
            port=636,
            protocol="TLS",
            certificate_arn=certificate.certificate_arn,
            ssl_policy=TLS_POLICY,
            default_actions=[{"type": "forward", "target_group_arn": target_group.arn}],
            tags=tags,
            opts=pulumi.ResourceOptions(parent=nlb),
        )
        self.dns_name = nlb.dns_name
        self.security_group_id = sg.id
        self.ca_cert_pem = certificate.ca_cert_pem
        self.certificate_arn = certificate.certificate_arn
        self.certificate_not_after = certificate.not_after
        self.register_outputs({"dns_name": self.dns_name, "ca_cert_pem": self.ca_cert_pem})


class Directory(pulumi.ComponentResource):
    directory_id: pulumi.Output[str]
    dns_ip_addresses: pulumi.Output[list[str]]
    ldap_uri: pulumi.Output[str]
    ldap_ca_cert_pem: pulumi.Output[str]
    admin_secret: GeneratedSecret
    bind_secret: GeneratedSecret

    def __init__(
        self, name: str, args: DirectoryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pwbcluster:aux:Directory", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.admin_secret = GeneratedSecret(
            f"{name}-admin-password",
            GeneratedSecretArgs(
                deployment=args.deployment,
                purpose="directory-admin-password",
                description=f"{args.type} administrator ({args.domain}): jump host and users",
                tags=dict(args.tags),
                recovery_window_days=args.secret_recovery_days,
            ),
            opts=child,
        )
        self.bind_secret = GeneratedSecret(
            f"{name}-bind-password",
            GeneratedSecretArgs(
                deployment=args.deployment,
                purpose="directory-bind-password",
                description=f"Read-only bind user {args.bind_user} for ParallelCluster",
                tags=dict(args.tags),
                recovery_window_days=args.secret_recovery_days,
            ),
            opts=child,
        )
        if args.type == "MicrosoftAD":
            edition = "Enterprise" if args.size == "Enterprise" else "Standard"
            extra: dict[str, Any] = {"edition": edition}
        else:
            extra = {"size": "Large" if args.size == "Large" else "Small"}
        # Reaching the domain controllers: Directory Service gives them a security group
        # of its own ("AWS created security group for <id> directory controllers") whose
        # inbound rules admit Active Directory's ports (DNS 53, Kerberos 88, LDAP 389,
        # kpasswd 464, SMB 445, LDAPS 636, GC 3268...) from any source (newer directories:
        # from the VPC's CIDR), so every host in the VPC reaches them: the jump host
        # (realm join, adcli, pwb-users: Kerberos, LDAP with SASL sealing, kpasswd) and the
        # TLS front below (389). This program neither creates nor narrows that group; the
        # clients' side is their egress (the jump host's is open, see jumphost.py).
        directory = aws.directoryservice.Directory(
            f"{name}-directory",
            name=args.domain,
            short_name=args.short_name,
            type=args.type,
            password=self.admin_secret.value,
            description=f"pwbcluster {args.deployment} users",
            vpc_settings={"vpc_id": args.vpc_id, "subnet_ids": list(args.subnet_ids[:2])},
            tags={**dict(args.tags), "Name": f"{args.deployment}-directory"},
            opts=child,
            **extra,
        )
        self.directory_id = directory.id
        self.dns_ip_addresses = directory.dns_ip_addresses.apply(sorted)
        if args.ldaps:
            front = LdapTlsFront(
                f"{name}-tls",
                LdapTlsFrontArgs(
                    deployment=args.deployment,
                    domain=args.domain,
                    vpc_id=args.vpc_id,
                    vpc_cidr=args.vpc_cidr,
                    subnet_ids=tuple(args.subnet_ids[:2]),
                    dns_ip_addresses=directory.dns_ip_addresses,
                    tags=dict(args.tags),
                ),
                opts=child,
            )
            self.ldap_uri = front.dns_name.apply(lambda host: f"ldaps://{host}")
            self.ldap_ca_cert_pem = front.ca_cert_pem
            self.ldap_certificate_not_after: pulumi.Output[str] = front.certificate_not_after
            self.front_security_group_id: pulumi.Output[str] = front.security_group_id
        else:
            log.warning(
                "aux.directory.ldaps is false: directory traffic, bind password included, "
                "crosses the VPC in clear text"
            )
            self.ldap_uri = self.dns_ip_addresses.apply(
                lambda ips: ",".join(f"ldap://{ip}" for ip in ips)
            )
            self.ldap_ca_cert_pem = pulumi.Output.from_input("")
            self.ldap_certificate_not_after = pulumi.Output.from_input("")
            self.front_security_group_id = pulumi.Output.from_input("")
        self.register_outputs(
            {
                "directory_id": self.directory_id,
                "dns_ip_addresses": self.dns_ip_addresses,
                "ldap_uri": self.ldap_uri,
            }
        )
