"""Can each node reach what it calls? A proof from the network's own resources.

The topology (subnets with their CIDR and public-address setting, the default route of
their route table, VPC endpoints, security groups) is read from EC2 (``from_ec2``: the
real account or the sandbox's moto) or from the Pulumi programs' registrations
(``from_registrations``: ``invoke plan``).

Two proofs run on it:
- ``prove``: for every role and every AWS API it calls (or ``internet``: package
  archives), a hop exists (a gateway or interface endpoint for the service, a NAT gateway
  route, or an internet gateway route with a public address on the instance), and where
  the role's security groups are known, their egress lets HTTPS out.
- ``prove_flows``: for every flow inside the VPC (a source, a target, a protocol and a
  port range), the source's groups let it out and the target's groups let it in: a rule
  naming a group of the peer, or a CIDR holding the peer's subnet. A flow to a public
  address (an internet-facing load balancer reached by its DNS name) leaves through NAT
  or a public address, so only a rule open to 0.0.0.0/0 admits it: the NAT gateway's
  address is not known before it exists, and the proof never assumes it is listed.
A missing hop names the role, the service and what is missing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pwbcluster.errors import StageError

ANYWHERE = "0.0.0.0/0"
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
    cidr: str = ""
    # The public address of the NAT gateway its default route leads to ("" unknown).
    nat_public_ip: str = ""


@dataclass(frozen=True)
class Rule:
    """One security-group rule: protocol ("tcp", "udp", "-1" for all), ports, peers."""

    protocol: str
    low: int
    high: int
    cidrs: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def carries(self, protocol: str) -> bool:
        return self.protocol in ("-1", "all", protocol)


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Topology:
    subnets: Mapping[str, Subnet]
    interface_endpoints: frozenset[str] = frozenset()
    groups: Mapping[str, Group] = field(default_factory=dict)

    def with_groups(self, groups: Mapping[str, Group]) -> Topology:
        return Topology(self.subnets, self.interface_endpoints, {**self.groups, **groups})


def topology_to_json(topology: Topology) -> dict[str, Any]:
    """A JSON form of ``topology`` (``topology_from_json`` reads it back, equal)."""

    def rule(r: Rule) -> dict[str, Any]:
        return {"protocol": r.protocol, "low": r.low, "high": r.high, "cidrs": list(r.cidrs),
                "groups": list(r.groups)}  # fmt: skip

    return {
        "subnets": [
            {
                "id": s.id,
                "name": s.name,
                "public_ip": s.public_ip,
                "default_route": s.default_route,
                "gateway_endpoints": sorted(s.gateway_endpoints),
                "cidr": s.cidr,
                "nat_public_ip": s.nat_public_ip,
            }
            for s in topology.subnets.values()
        ],
        "interface_endpoints": sorted(topology.interface_endpoints),
        "groups": [
            {
                "id": g.id,
                "name": g.name,
                "ingress": [rule(r) for r in g.ingress],
                "egress": [rule(r) for r in g.egress],
            }
            for g in topology.groups.values()
        ],
    }


def topology_from_json(data: Mapping[str, Any]) -> Topology:
    def rule(r: Mapping[str, Any]) -> Rule:
        return Rule(r["protocol"], int(r["low"]), int(r["high"]), tuple(r["cidrs"]),
                    tuple(r["groups"]))  # fmt: skip

    subnets = {
        s["id"]: Subnet(
            s["id"],
            s["name"],
            bool(s["public_ip"]),
            s["default_route"],
            frozenset(s["gateway_endpoints"]),
            s["cidr"],
            s["nat_public_ip"],
        )
        for s in data["subnets"]
    }
    groups = {
        g["id"]: Group(
            g["id"],
            g["name"],
            tuple(rule(r) for r in g["ingress"]),
            tuple(rule(r) for r in g["egress"]),
        )
        for g in data["groups"]
    }
    return Topology(subnets, frozenset(data["interface_endpoints"]), groups)


@dataclass(frozen=True)
class Placement:
    role: str
    subnet_id: str
    # None: the subnet's MapPublicIpOnLaunch decides; True/False: the launch sets it.
    public_ip: bool | None
    needs: frozenset[str]
    why: Mapping[str, str] = field(default_factory=dict)
    # The instance's security groups where known: their egress must let HTTPS out.
    groups: tuple[str, ...] = ()


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
    nats = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
        "NatGateways"
    ]
    nat_ip = {
        n["NatGatewayId"]: str((n.get("NatGatewayAddresses") or [{}])[0].get("PublicIp", ""))
        for n in nats
    }
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
        route, public_nat = None, ""
        for r in table.get("Routes", []):
            if r.get("DestinationCidrBlock") != "0.0.0.0/0":
                continue
            if r.get("NatGatewayId"):
                route, public_nat = "nat", nat_ip.get(r["NatGatewayId"], "")
            elif str(r.get("GatewayId", "")).startswith("igw-"):
                route = "igw"
        tags = {t["Key"]: t["Value"] for t in subnet.get("Tags", [])}
        out[subnet["SubnetId"]] = Subnet(
            subnet["SubnetId"],
            tags.get("Name", subnet["SubnetId"]),
            bool(subnet.get("MapPublicIpOnLaunch")),
            route,
            frozenset(gateway.get(str(table.get("RouteTableId")), set())),
            str(subnet.get("CidrBlock", "")),
            public_nat,
        )
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
        "SecurityGroups"
    ]
    return Topology(out, frozenset(interface), {g["GroupId"]: _ec2_group(g) for g in groups})


def _ec2_rules(permissions: Iterable[Mapping[str, Any]]) -> tuple[Rule, ...]:
    out = []
    for perm in permissions:
        protocol = str(perm.get("IpProtocol", "-1"))
        every = protocol in ("-1", "all")
        out.append(
            Rule(
                protocol,
                0 if every else int(perm.get("FromPort", 0)),
                65535 if every else int(perm.get("ToPort", 65535)),
                tuple(r["CidrIp"] for r in perm.get("IpRanges", []) if r.get("CidrIp")),
                tuple(p["GroupId"] for p in perm.get("UserIdGroupPairs", []) if p.get("GroupId")),
            )
        )
    return tuple(out)


def _ec2_group(group: Mapping[str, Any]) -> Group:
    tags = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
    return Group(
        str(group["GroupId"]),
        tags.get("Name") or str(group.get("GroupName", group["GroupId"])),
        _ec2_rules(group.get("IpPermissions", [])),
        _ec2_rules(group.get("IpPermissionsEgress", [])),
    )


def _pulumi_rules(rules: Any, own: str, rename: Mapping[str, str]) -> tuple[Rule, ...]:
    """Inline rules of an ``aws.ec2.SecurityGroup`` as registered (camelCase inputs).

    An absent list is no rule at all: the AWS provider removes the default allow-all
    egress of a group it creates and adds only the rules given."""
    out = []
    for rule in rules or []:
        protocol = str(rule.get("protocol", "-1"))
        every = protocol in ("-1", "all")
        groups = [rename.get(str(g), str(g)) for g in rule.get("securityGroups") or []]
        if rule.get("self"):
            groups.append(own)
        out.append(
            Rule(
                protocol,
                0 if every else int(rule.get("fromPort", 0)),
                65535 if every else int(rule.get("toPort", 65535)),
                tuple(str(c) for c in rule.get("cidrBlocks") or []),
                tuple(groups),
            )
        )
    return tuple(out)


def from_registrations(registered: Iterable[Any], rename: Mapping[str, str]) -> Topology:
    """The topology a Pulumi program declares (its mock registrations, see
    ``sandbox.mockrun``); ``rename`` maps a subnet's resource name to the id the rendered
    configs use (a plan's placeholders)."""
    resources = list(registered)

    def of(kind: str) -> list[Any]:
        return [r for r in resources if r.type.endswith(kind)]

    eip_ip = {str(e.id): str((e.outputs or {}).get("publicIp", "")) for e in of("/eip:Eip")}
    nat_ip = {
        str(n.id): eip_ip.get(str(n.inputs.get("allocationId")), "")
        for n in of("/natGateway:NatGateway")
    }
    route_of: dict[str, str] = {}
    nat_of: dict[str, str] = {}
    for route in of("/route:Route"):
        if route.inputs.get("destinationCidrBlock") != "0.0.0.0/0":
            continue
        kind = "nat" if route.inputs.get("natGatewayId") else "igw"
        route_of[str(route.inputs.get("routeTableId"))] = kind
        if kind == "nat":
            nat_of[str(route.inputs.get("routeTableId"))] = nat_ip.get(
                str(route.inputs.get("natGatewayId")), ""
            )
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
            str(subnet.inputs.get("cidrBlock", "")),
            nat_of.get(table, ""),
        )
    return Topology(out, frozenset(interface), registered_groups(resources, rename))


def registered_groups(registered: Iterable[Any], rename: Mapping[str, str]) -> dict[str, Group]:
    """The security groups a Pulumi program declares, by id (``rename``: mock id -> the id
    the rendered configs use)."""
    out = {}
    for sg in registered:
        if not sg.type.endswith("/securityGroup:SecurityGroup"):
            continue
        gid = rename.get(str(sg.id), str(sg.id))
        name = str((sg.inputs.get("tags") or {}).get("Name") or sg.name)
        out[gid] = Group(
            gid,
            name,
            _pulumi_rules(sg.inputs.get("ingress"), gid, rename),
            _pulumi_rules(sg.inputs.get("egress"), gid, rename),
        )
    return out


def script_calls(
    root: Path, script: str, seen: set[str] | None = None, prefix: str = "cluster"
) -> dict[str, str]:
    """The AWS services ``script`` calls (and the scripts it sources), each with where
    (``prefix/script:line``)."""
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
            found.setdefault(_service(match.group(2)), f"{prefix}/{script}:{number}")
        for match in SOURCE.finditer(line):
            for service, where in script_calls(root, match.group(1), seen, prefix).items():
                found.setdefault(service, where)
    return found


def _egress(topology: Topology, place: Placement) -> str | None:
    """None when the placement's groups let HTTPS (tcp/443) out anywhere; else what stops it."""
    unknown = [g for g in place.groups if g not in topology.groups]
    if unknown:
        return f"security group {', '.join(unknown)} of {place.role} is not in the VPC"
    if not place.groups:
        return None
    out = [
        r
        for g in place.groups
        for r in topology.groups[g].egress
        if r.carries("tcp") and ANYWHERE in r.cidrs and r.low <= 443 <= r.high
    ]
    if out:
        return None
    names = ", ".join(topology.groups[g].name for g in place.groups)
    return f"no egress rule of {names} lets tcp/443 out to 0.0.0.0/0"


def _hop(topology: Topology, place: Placement, service: str) -> Hop:
    subnet = topology.subnets.get(place.subnet_id)
    if subnet is None:
        return Hop(place.role, service, None, f"subnet {place.subnet_id} is not in the VPC")
    stopped = _egress(topology, place)
    if stopped:
        return Hop(place.role, service, None, stopped)
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


def checked(
    hops: Sequence[Hop],
    headline: str,
    render: Callable[[Sequence[Hop]], list[str]] | None = None,
) -> list[str]:
    """The proof's table (``render``, by default ``table``), or a StageError naming every
    missing hop under ``headline``."""
    missing = failures(hops)
    if missing:
        raise StageError(f"{headline}:\n" + "\n".join(missing))
    return (render or table)(hops)


def table(hops: Sequence[Hop]) -> list[str]:
    lines = [f"  {h.role:18} {h.service:22} {h.via or 'NO PATH: ' + h.missing}" for h in hops]
    return ["Reachability (role, AWS API, hop):", *lines]


@dataclass(frozen=True)
class Member:
    """Something with an address in the VPC and security groups: a node role, a load
    balancer, a database, a file system's mount target."""

    label: str
    subnet_id: str
    groups: tuple[str, ...]
    public: bool = False  # reached by a public address (an internet-facing balancer)


@dataclass(frozen=True)
class Flow:
    source: str
    target: str
    protocol: str
    low: int
    high: int
    service: str

    @property
    def ports(self) -> str:
        span = str(self.low) if self.low == self.high else f"{self.low}-{self.high}"
        return f"{self.protocol}/{span}"


def _covered(rules: Iterable[Rule], low: int, high: int) -> bool:
    """Do the rules' port ranges, together, cover low..high?"""
    reach = low
    for rule in sorted(rules, key=lambda r: r.low):
        if rule.low > reach:
            break
        reach = max(reach, rule.high + 1)
        if reach > high:
            return True
    return reach > high


def _admits(rule: Rule, peer: Member, cidr: str, public: bool) -> bool:
    """Does ``rule`` name ``peer``: one of its groups (not across a public address), or a
    CIDR holding ``cidr`` (its subnet's, or for a public path the NAT's /32)?"""
    if set(rule.groups) & set(peer.groups) and not public:
        return True
    for block in rule.cidrs:
        if block == ANYWHERE:
            return True
        if not cidr:
            continue  # an address not known here: only 0.0.0.0/0 is sure
        try:
            if ipaddress.ip_network(cidr).subnet_of(ipaddress.ip_network(block)):  # type: ignore[arg-type]
                return True
        except (TypeError, ValueError):
            continue
    return False


def _side(
    topology: Topology, member: Member, peer: Member, flow: Flow, outbound: bool
) -> tuple[str | None, str]:
    """(None, the groups whose rules let ``flow`` out (outbound) or in) or (what is
    missing, "")."""
    unknown = [g for g in member.groups if g not in topology.groups]
    if unknown:
        return f"security group {', '.join(unknown)} of {member.label} is not in the VPC", ""
    subnet = topology.subnets.get(peer.subnet_id)
    # Leaving for a public address, or arriving from one, only a CIDR rule can match.
    public = peer.public if outbound else member.public
    cidr = subnet.cidr if subnet else ""
    if public and not outbound:
        # The peer's traffic reaches a public address from its NAT gateway's address.
        nat = subnet.nat_public_ip if subnet and subnet.default_route == "nat" else ""
        cidr = f"{nat}/32" if nat else ""
    matched = [
        (g, r)
        for g in member.groups
        for r in (topology.groups[g].egress if outbound else topology.groups[g].ingress)
        if r.carries(flow.protocol)
        and r.low <= flow.high
        and r.high >= flow.low
        and _admits(r, peer, cidr, public)
    ]
    if _covered([r for _, r in matched], flow.low, flow.high):
        return None, ", ".join(sorted({topology.groups[g].name for g, _ in matched}))
    names = ", ".join(topology.groups[g].name for g in member.groups) or "no group"
    way = f"out to {peer.label}" if outbound else f"in from {peer.label}"
    if public and not outbound:
        way += (
            f" (its traffic arrives from its NAT gateway's address {cidr})"
            if cidr
            else " (its traffic arrives from an address not known here: only 0.0.0.0/0 is sure)"
        )
    return f"no rule of {names} lets {flow.ports} {way}", ""


def prove_flows(
    topology: Topology, members: Mapping[str, Member], flows: Sequence[Flow]
) -> list[Hop]:
    out = []
    for flow in flows:
        label = f"{flow.service} -> {flow.target} {flow.ports}"
        source, target = members.get(flow.source), members.get(flow.target)
        if source is None or target is None:
            gone = flow.source if source is None else flow.target
            out.append(
                Hop(flow.source, label, None, f"no subnet and security groups known for {gone}")
            )
            continue
        missing, _ = _side(topology, source, target, flow, True)
        admitted = ""
        if missing is None:
            missing, admitted = _side(topology, target, source, flow, False)
        if target.public and missing is None:
            # A public address is reached through the internet: NAT or a public address.
            place = Placement(source.label, source.subnet_id, None, frozenset({"internet"}))
            hop = _hop(topology, place, "internet")
            if hop.via is None:
                missing = hop.missing
        via = f"admitted by {admitted}" + (" (through the internet)" if target.public else "")
        out.append(Hop(flow.source, label, None if missing else via, missing or ""))
    return out


def flow_table(hops: Sequence[Hop]) -> list[str]:
    lines = [f"  {h.role:18} {h.service:56} {h.via or 'NO PATH: ' + h.missing}" for h in hops]
    return ["Flows (role, service -> target protocol/ports, proof):", *lines]
