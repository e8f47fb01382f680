"""Can each node reach the AWS APIs it calls? A proof from the network's own resources.

The topology (subnets, their public-address setting, the default route of their route
table, VPC endpoints) is read from EC2 (``from_ec2``: the real account or the sandbox's
moto) or from the network program's registrations (``from_registrations``: ``invoke plan``).
``prove`` then checks, for every role and every API it calls, that a hop exists: a gateway
or interface endpoint for the service, a NAT gateway route, or an internet gateway route
with a public address on the instance. A missing hop names the role, the service and what
is missing. Security-group egress is not part of the proof: every group the toolkit and
ParallelCluster create allows all egress, and the proof says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SG_NOTE = (
    "security-group egress is open in every group the toolkit and ParallelCluster create; "
    "it is not part of this proof"
)
# The CLI's service names that differ from the endpoint's.
CLI_TO_ENDPOINT = {"elbv2": "elasticloadbalancing", "s3api": "s3"}
CALL = re.compile(r"\baws(?:_cli)?((?:\s+--[\w-]+\s+\d+)*)\s+([a-z][a-z0-9]+)\s+[a-z][a-z-]+")
SOURCE = re.compile(r"source\s+\"\$\{PWB_HOME\}/cluster/([\w/.-]+\.sh)\"")


@dataclass(frozen=True)
class Subnet:
    id: str
    name: str
    public_ip: bool  # MapPublicIpOnLaunch
    default_route: str | None  # "nat", "igw" or None (no 0.0.0.0/0 route)
    gateway_endpoints: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Topology:
    subnets: Mapping[str, Subnet]
    interface_endpoints: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Placement:
    role: str
    subnet_id: str
    # None: the subnet's MapPublicIpOnLaunch decides; True/False: the launch sets it.
    public_ip: bool | None
    needs: frozenset[str]
    why: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hop:
    role: str
    service: str
    via: str | None  # None: no path
    missing: str = ""


def _service(name: str) -> str:
    tail = name.rsplit(".", 1)[-1]
    return CLI_TO_ENDPOINT.get(tail, tail)


def from_ec2(ec2: Any, vpc_id: str) -> Topology:
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
        "RouteTables"
    ]
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
        "VpcEndpoints"
    ]
    gateway: dict[str, set[str]] = {}
    interface: set[str] = set()
    for endpoint in endpoints:
        service = _service(str(endpoint.get("ServiceName", "")))
        if endpoint.get("VpcEndpointType") == "Interface":
            interface.add(service)
        for table in endpoint.get("RouteTableIds", []):
            gateway.setdefault(table, set()).add(service)
    by_subnet: dict[str, dict[str, Any]] = {}
    main: dict[str, Any] | None = None
    for table in tables:
        for assoc in table.get("Associations", []):
            if assoc.get("Main"):
                main = table
            if assoc.get("SubnetId"):
                by_subnet[assoc["SubnetId"]] = table
    out = {}
    for subnet in subnets:
        table = by_subnet.get(subnet["SubnetId"]) or main or {}
        route = None
        for r in table.get("Routes", []):
            if r.get("DestinationCidrBlock") != "0.0.0.0/0":
                continue
            if r.get("NatGatewayId"):
                route = "nat"
            elif str(r.get("GatewayId", "")).startswith("igw-"):
                route = "igw"
        tags = {t["Key"]: t["Value"] for t in subnet.get("Tags", [])}
        out[subnet["SubnetId"]] = Subnet(
            subnet["SubnetId"],
            tags.get("Name", subnet["SubnetId"]),
            bool(subnet.get("MapPublicIpOnLaunch")),
            route,
            frozenset(gateway.get(str(table.get("RouteTableId")), set())),
        )
    return Topology(out, frozenset(interface))


def from_registrations(registered: Iterable[Any], rename: Mapping[str, str]) -> Topology:
    """The topology a Pulumi program declares (its mock registrations, see
    ``sandbox.mockrun``); ``rename`` maps a subnet's resource name to the id the rendered
    configs use (a plan's placeholders)."""
    resources = list(registered)

    def of(kind: str) -> list[Any]:
        return [r for r in resources if r.type.endswith(kind)]

    route_of: dict[str, str] = {}
    for route in of("/route:Route"):
        if route.inputs.get("destinationCidrBlock") != "0.0.0.0/0":
            continue
        kind = "nat" if route.inputs.get("natGatewayId") else "igw"
        route_of[str(route.inputs.get("routeTableId"))] = kind
    gateway: dict[str, set[str]] = {}
    interface: set[str] = set()
    for endpoint in of("/vpcEndpoint:VpcEndpoint"):
        service = _service(str(endpoint.inputs.get("serviceName", "")))
        if endpoint.inputs.get("vpcEndpointType") == "Interface":
            interface.add(service)
        for table in endpoint.inputs.get("routeTableIds") or []:
            gateway.setdefault(str(table), set()).add(service)
    table_of = {
        str(a.inputs.get("subnetId")): str(a.inputs.get("routeTableId"))
        for a in of("/routeTableAssociation:RouteTableAssociation")
    }
    out = {}
    for subnet in of("/subnet:Subnet"):
        table = table_of.get(str(subnet.id), "")
        sid = rename.get(subnet.name, str(subnet.id))
        out[sid] = Subnet(
            sid,
            subnet.name,
            bool(subnet.inputs.get("mapPublicIpOnLaunch")),
            route_of.get(table),
            frozenset(gateway.get(table, set())),
        )
    return Topology(out, frozenset(interface))


def script_calls(root: Path, script: str, seen: set[str] | None = None) -> dict[str, str]:
    """The AWS services ``script`` calls (and the scripts it sources), each with where."""
    seen = seen if seen is not None else set()
    if script in seen or not (root / script).is_file():
        return {}
    seen.add(script)
    text = (root / script).read_text(encoding="utf-8")
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("#"):
            continue
        for match in CALL.finditer(line):
            found.setdefault(_service(match.group(2)), f"cluster/{script}:{number}")
        for match in SOURCE.finditer(line):
            for service, where in script_calls(root, match.group(1), seen).items():
                found.setdefault(service, where)
    return found


def _hop(topology: Topology, place: Placement, service: str) -> Hop:
    subnet = topology.subnets.get(place.subnet_id)
    if subnet is None:
        return Hop(place.role, service, None, f"subnet {place.subnet_id} is not in the VPC")
    public = subnet.public_ip if place.public_ip is None else place.public_ip
    if service in subnet.gateway_endpoints:
        return Hop(place.role, service, f"gateway endpoint ({subnet.name})")
    if service in topology.interface_endpoints:
        return Hop(place.role, service, "interface endpoint")
    if subnet.default_route == "nat":
        return Hop(place.role, service, f"NAT gateway ({subnet.name})")
    if subnet.default_route == "igw" and public:
        return Hop(place.role, service, f"internet gateway, public address ({subnet.name})")
    if subnet.default_route == "igw":
        missing = (
            f"{subnet.name} routes to the internet gateway but its instances get no public "
            f"address, and there is no NAT route or {service} endpoint"
        )
    else:
        missing = f"{subnet.name} has no default route and no {service} endpoint"
    return Hop(place.role, service, None, missing)


def prove(topology: Topology, placements: Sequence[Placement]) -> list[Hop]:
    return [_hop(topology, p, s) for p in placements for s in sorted(p.needs)]


def failures(hops: Sequence[Hop]) -> list[str]:
    return [f"{h.role} -> {h.service}: no path: {h.missing}" for h in hops if h.via is None]


def table(hops: Sequence[Hop]) -> list[str]:
    lines = [f"  {h.role:18} {h.service:22} {h.via or 'NO PATH: ' + h.missing}" for h in hops]
    return ["Reachability (role, AWS API, hop):", *lines, f"  ({SG_NOTE})"]
