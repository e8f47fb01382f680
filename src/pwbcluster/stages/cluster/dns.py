"""The name users type, written in the deployment's Route 53 zone.

With ``cluster.workbench.route53_zone_id`` and ``hostname``, the cluster stage writes an
alias A record for the hostname to the login pool's network load balancer once the
cluster exists, and removes that record on ``down``. An alias record (not a CNAME) so
the name can sit at a zone's apex and follows the balancer's addresses; its target is
the balancer's DNS name and canonical hosted zone id, both from Elastic Load Balancing
(``DescribeLoadBalancers``), never guessed from the region.

The zone is the user's: it is checked before the cluster is touched (it exists and the
hostname lies inside it), and only the one record this stage wrote is ever removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pwbcluster.errors import StageError

log = logging.getLogger(__name__)

# A record this stage writes carries no ownership tag (Route 53 records cannot be
# tagged); it is recognised by name, type and alias target when removed.
RECORD_TYPE = "A"


@dataclass(frozen=True)
class Zone:
    zone_id: str
    name: str  # without the trailing dot
    private: bool


def _bare(zone_id: str) -> str:
    return zone_id.rsplit("/", 1)[-1]


def _fqdn(name: str) -> str:
    return name.rstrip(".").lower() + "."


def zone_for(route53: Any, zone_id: str, hostname: str) -> Zone:
    """The hosted zone, checked to exist and to hold ``hostname``."""
    try:
        found = route53.get_hosted_zone(Id=_bare(zone_id))["HostedZone"]
    except route53.exceptions.NoSuchHostedZone as exc:
        raise StageError(
            f"cluster.workbench.route53_zone_id: no hosted zone {zone_id} in this account"
        ) from exc
    zone = Zone(
        zone_id=_bare(found["Id"]),
        name=found["Name"].rstrip(".").lower(),
        private=bool(found.get("Config", {}).get("PrivateZone")),
    )
    host = hostname.rstrip(".").lower()
    if host != zone.name and not host.endswith("." + zone.name):
        raise StageError(
            f"cluster.workbench.hostname {hostname} is not inside the hosted zone "
            f"{zone.zone_id} ({zone.name}): Route 53 would refuse the record; use a "
            f"hostname ending in .{zone.name}, or the zone that holds {hostname}"
        )
    return zone


def balancer_target(elbv2: Any, dns_name: str) -> dict[str, Any]:
    """The alias target of the load balancer whose DNS name is ``dns_name``."""
    want = dns_name.rstrip(".").lower()
    for page in elbv2.get_paginator("describe_load_balancers").paginate():
        for lb in page["LoadBalancers"]:
            if lb["DNSName"].lower() == want:
                return {
                    "HostedZoneId": lb["CanonicalHostedZoneId"],
                    "DNSName": _fqdn(lb["DNSName"]),
                    "EvaluateTargetHealth": True,
                }
    raise StageError(
        f"no load balancer named {dns_name} in this region: the login pool's balancer "
        "was expected there (the hostname's record is not written)"
    )


def point_at_balancer(
    route53: Any, elbv2: Any, zone_id: str, hostname: str, dns_name: str
) -> dict[str, Any]:
    """UPSERT ``hostname`` as an alias of the balancer; returns the record written."""
    zone = zone_for(route53, zone_id, hostname)
    record = {
        "Name": _fqdn(hostname),
        "Type": RECORD_TYPE,
        "AliasTarget": balancer_target(elbv2, dns_name),
    }
    route53.change_resource_record_sets(
        HostedZoneId=zone.zone_id,
        ChangeBatch={
            "Comment": "pwbcluster: Workbench's hostname -> the login load balancer",
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}],
        },
    )
    log.info("cluster: %s now points at %s", hostname, dns_name)
    return record


def find_record(route53: Any, zone_id: str, hostname: str) -> dict[str, Any] | None:
    name = _fqdn(hostname)
    page = route53.list_resource_record_sets(
        HostedZoneId=_bare(zone_id), StartRecordName=name, StartRecordType=RECORD_TYPE
    )
    for record in page["ResourceRecordSets"]:
        if _fqdn(record["Name"]) == name and record["Type"] == RECORD_TYPE:
            return dict(record)
    return None


def remove_record(route53: Any, zone_id: str, hostname: str, dns_name: str) -> bool:
    """Delete the alias this stage wrote; a record pointing elsewhere is left alone."""
    try:
        record = find_record(route53, zone_id, hostname)
    except route53.exceptions.NoSuchHostedZone:
        return False
    if record is None:
        return False
    target = record.get("AliasTarget", {}).get("DNSName", "")
    if _fqdn(target) != _fqdn(dns_name):
        log.warning(
            "cluster: %s points at %s, not this deployment's balancer: left alone",
            hostname,
            target or "something else",
        )
        return False
    route53.change_resource_record_sets(
        HostedZoneId=_bare(zone_id),
        ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]},
    )
    log.info("cluster: removed %s from zone %s", hostname, zone_id)
    return True
