"""What to ask the AWS Price List API for each kind of resource the deployment creates.

A ``PriceQuery`` names one unit price: the service code, the exact-match (``TERM_MATCH``)
filters sent to ``GetProducts``, and a client-side check applied to the products that come
back (a usage type, or attribute values that must appear), because usage types carry a
regional prefix (``EU-NatGateway-Hours``, ``USE1-PublicIPv4:InUseAddress``, or none) that
an exact filter cannot express. The region is added when the query is sent
(``regionCode``).

Filter values follow the public Price List attribute names (the same ones infracost and
the AWS CLI examples use). Where a value could not be checked against the live API from
here, a query that matches nothing yields an *unknown* price with the reason, never a
guessed number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Basis of a unit price: per hour, per GB-month, or per item-month.
HOUR = "hour"
GB_MONTH = "gb-month"
MONTH = "month"

RDS_ENGINES = {"postgres": "PostgreSQL", "mariadb": "MariaDB", "mysql": "MySQL"}


@dataclass(frozen=True)
class PriceQuery:
    key: str
    label: str
    service: str
    basis: str
    filters: tuple[tuple[str, str], ...]
    # Client-side: the usage type, after an optional regional prefix such as "EU-".
    usagetype: str | None = None
    # Client-side: (attribute, text) pairs; the text (compared without case, spaces, '-'
    # or '_') must occur in that attribute's value, or in any value for attribute "*".
    needles: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def api_filters(self, region: str) -> list[dict[str, str]]:
        pairs = [("regionCode", region), *self.filters]
        return [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in pairs]


def ec2_instance(instance_type: str) -> PriceQuery:
    """On-demand Linux, shared tenancy, no pre-installed software."""
    return PriceQuery(
        key=f"ec2:{instance_type}",
        label=f"EC2 {instance_type} (Linux, on demand)",
        service="AmazonEC2",
        basis=HOUR,
        filters=(
            ("productFamily", "Compute Instance"),
            ("instanceType", instance_type),
            ("operatingSystem", "Linux"),
            ("tenancy", "Shared"),
            ("preInstalledSw", "NA"),
            ("capacitystatus", "Used"),
            ("operation", "RunInstances"),
        ),
    )


def ebs_gp3() -> PriceQuery:
    return PriceQuery(
        key="ebs:gp3",
        label="EBS gp3 storage",
        service="AmazonEC2",
        basis=GB_MONTH,
        filters=(("productFamily", "Storage"), ("volumeApiName", "gp3")),
    )


def nat_gateway() -> PriceQuery:
    return PriceQuery(
        key="vpc:nat-gateway",
        label="NAT gateway hour",
        service="AmazonEC2",
        basis=HOUR,
        filters=(("productFamily", "NAT Gateway"),),
        usagetype="NatGateway-Hours",
    )


def public_ipv4() -> PriceQuery:
    return PriceQuery(
        key="vpc:public-ipv4",
        label="public IPv4 address hour",
        service="AmazonVPC",
        basis=HOUR,
        # These products carry no productFamily: the usage type alone picks them.
        filters=(),
        usagetype="PublicIPv4:InUseAddress",
    )


def network_load_balancer() -> PriceQuery:
    return PriceQuery(
        key="elb:network",
        label="network load balancer hour",
        service="AWSELB",
        basis=HOUR,
        filters=(("productFamily", "Load Balancer-Network"),),
        usagetype="LoadBalancerUsage",
    )


def _deployment(multi_az: bool) -> str:
    return "Multi-AZ" if multi_az else "Single-AZ"


def rds_instance(engine: str, instance_class: str, multi_az: bool) -> PriceQuery:
    name = RDS_ENGINES[engine]
    return PriceQuery(
        key=f"rds:{engine}:{instance_class}:{_deployment(multi_az)}",
        label=f"RDS {name} {instance_class} {_deployment(multi_az)}",
        service="AmazonRDS",
        basis=HOUR,
        filters=(
            ("productFamily", "Database Instance"),
            ("instanceType", instance_class),
            ("databaseEngine", name),
            ("deploymentOption", _deployment(multi_az)),
        ),
    )


def rds_storage_gp3(multi_az: bool) -> PriceQuery:
    usage = "RDS:Multi-AZ-GP3-Storage" if multi_az else "RDS:GP3-Storage"
    return PriceQuery(
        key=f"rds-storage:gp3:{_deployment(multi_az)}",
        label=f"RDS gp3 storage {_deployment(multi_az)}",
        service="AmazonRDS",
        basis=GB_MONTH,
        filters=(
            ("productFamily", "Database Storage"),
            ("volumeType", "General Purpose-GP3"),
            ("deploymentOption", _deployment(multi_az)),
        ),
        usagetype=usage,
    )


def directory(directory_type: str, size: str) -> PriceQuery:
    """Priced per domain controller; a directory has two."""
    filters: tuple[tuple[str, str], ...] = (
        ("productFamily", "AWS Directory Service"),
        ("directorySize", size),
    )
    needles: tuple[tuple[str, str], ...] = ()
    if directory_type == "SimpleAD":
        kind = "Simple AD"  # its directoryType also names AD Connector, same price
        needles = (("directoryType", kind),)
    else:
        kind = "Microsoft AD"
        filters = (*filters, ("directoryType", kind))
    return PriceQuery(
        key=f"ds:{directory_type}:{size}",
        label=f"{kind} {size} domain controller hour",
        service="AWSDirectoryService",
        basis=HOUR,
        filters=filters,
        needles=needles,
    )


def fsx_lustre(deployment_type: str, throughput: int | None) -> PriceQuery:
    """Persistent SSD storage is priced per throughput tier (``throughputCapacity`` 125,
    250, ...); scratch storage is told apart by "scratch" in one of its attributes (which
    one was not checked against the live API, so any is accepted)."""
    needles: tuple[tuple[str, str], ...]
    if deployment_type.startswith("PERSISTENT") and throughput:
        needles = (("storageType", "SSD"), ("throughputCapacity", str(throughput)))
    else:
        needles = (("*", "scratch"),)
    suffix = f":{throughput}" if throughput else ""
    return PriceQuery(
        key=f"fsx:lustre:{deployment_type}{suffix}",
        label=f"FSx for Lustre {deployment_type} storage",
        service="AmazonFSx",
        basis=GB_MONTH,
        filters=(("productFamily", "Storage"), ("fileSystemType", "Lustre")),
        needles=needles,
    )


def efs_standard() -> PriceQuery:
    return PriceQuery(
        key="efs:standard",
        label="EFS Standard storage",
        service="AmazonEFS",
        basis=GB_MONTH,
        filters=(("productFamily", "Storage"),),
        usagetype="TimedStorage-ByteHrs",
    )


def secret() -> PriceQuery:
    return PriceQuery(
        key="secretsmanager:secret",
        label="Secrets Manager secret month",
        service="AWSSecretsManager",
        basis=MONTH,
        filters=(("productFamily", "Secret"),),
        usagetype="AWSSecretsManager-Secrets",
    )
