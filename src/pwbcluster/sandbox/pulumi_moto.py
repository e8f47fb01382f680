"""The sandbox adapter: the real programs, run with mocks that create resources in moto.

``MotoMocks`` answers each resource registration by creating the resource in a local moto
server (``ctx.extra["aws_endpoint_url"]``) with boto3 and returning moto's real ids and
attributes, so later stages find them there. What moto cannot create (NAT gateway
attributes aside: pulumi_random and pulumi_tls values, ACM-less corners) is answered by
``fakes.plausible`` and listed as simulated. Every creation records how to undo it, and
``destroy_ledger`` replays those in reverse.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

import pulumi
from pwbcluster.sandbox.fakes import ACCOUNT, plausible, plausible_call
from pwbcluster.sandbox.mockrun import unwrap_secrets
from pwbcluster.sandbox.server import fake_session

log = logging.getLogger(__name__)

# Error codes that mean the resource is no longer there (a moto server restarted, a
# resource removed by hand): for an undo, the goal already reached.
_GONE = re.compile(r"NotFound|NoSuch|DoesNotExist")


@dataclass
class Ledger:
    """What a sandbox run created in moto (ids only, no secret), and what it only simulated."""

    created: list[dict[str, Any]] = field(default_factory=list)
    simulated: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"created": self.created, "simulated": sorted(self.simulated)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ledger:
        return cls(list(data.get("created", [])), list(data.get("simulated", [])))


class MotoMocks(pulumi.runtime.Mocks):
    def __init__(self, endpoint_url: str, region: str) -> None:
        self.region = region
        self.ledger = Ledger()
        self._lock = threading.Lock()
        session = fake_session(region)
        self.clients = {
            name: session.client(name, endpoint_url=endpoint_url)
            for name in ("ec2", "s3", "iam", "secretsmanager", "ds", "elbv2", "acm", "rds")
        }

    def c(self, name: str) -> Any:
        return self.clients[name]

    def simulate(self, what: str) -> None:
        """Record something moto cannot create (listed as simulated, never hidden)."""
        with self._lock:
            self.ledger.simulated.append(what)

    def undo(self, urn_name: str, service: str, method: str, **kwargs: Any) -> None:
        with self._lock:
            self.ledger.created.append(
                {"name": urn_name, "service": service, "method": method, "args": kwargs}
            )

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        inputs, _ = unwrap_secrets(dict(args.inputs))
        rid, state = plausible(args.typ, args.name, inputs, self.region, self.account)
        from pwbcluster.sandbox.moto_handlers import HANDLERS

        handler = HANDLERS.get(args.typ)
        if handler is None:
            if args.custom and not args.typ.startswith(("random:", "tls:")):
                with self._lock:
                    self.ledger.simulated.append(f"{args.typ} {args.name}")
            return rid, state
        # ``state`` carries the names plausible() chose for auto-named resources.
        real_id, real_state = handler(self, args.name, state)
        state.update(real_state)
        return real_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        inputs = dict(args.args)
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            zones = self.c("ec2").describe_availability_zones()["AvailabilityZones"]
            names = sorted(z["ZoneName"] for z in zones)
            return {"names": names, "zoneIds": [z["ZoneId"] for z in zones]}, []
        if args.token == "aws:ec2/getAmi:getAmi":
            images = self.c("ec2").describe_images(Owners=["amazon"])["Images"] or []
            ubuntu = [i for i in images if "ubuntu" in i.get("Name", "").lower()] or images
            return {"id": ubuntu[0]["ImageId"], "name": ubuntu[0].get("Name", "")}, []
        if args.token == "aws:ec2/getVpc:getVpc":
            vpc = self.c("ec2").describe_vpcs(VpcIds=[inputs["id"]])["Vpcs"][0]
            return {"id": vpc["VpcId"], "cidrBlock": vpc["CidrBlock"]}, []
        if args.token == "aws:ec2/getSubnet:getSubnet":
            sub = self.c("ec2").describe_subnets(SubnetIds=[inputs["id"]])["Subnets"][0]
            return {"id": sub["SubnetId"], "availabilityZone": sub["AvailabilityZone"]}, []
        return plausible_call(args.token, inputs, self.region), []

    @property
    def account(self) -> str:
        return ACCOUNT  # moto's default account


def _as_replacement(method: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The undo of a re-run's predecessor. On AWS an update keeps a secret or a database in
    place; the sandbox replaces them, so it must not leave what a `down` leaves (a secret in
    its recovery window, its name taken; a final snapshot)."""
    if method == "delete_secret":
        return {"SecretId": kwargs["SecretId"], "ForceDeleteWithoutRecovery": True}
    if method == "delete_db_instance":
        return {"DBInstanceIdentifier": kwargs["DBInstanceIdentifier"], "SkipFinalSnapshot": True}
    return kwargs


def destroy_ledger(
    ledger: Ledger, endpoint_url: str, region: str, replacing: bool = False
) -> list[str]:
    """Undo a sandbox run in reverse order; return what could not be removed.

    ``replacing``: a re-run replaces this run (see ``_as_replacement``), not a `down`.
    """
    session = fake_session(region)
    clients: dict[str, Any] = {}
    failures: list[str] = []
    for entry in reversed(ledger.created):
        service, method, kwargs = entry["service"], entry["method"], entry["args"]
        if replacing:
            kwargs = _as_replacement(method, kwargs)
        client = clients.setdefault(
            service,
            session.client(service, endpoint_url=endpoint_url),
        )
        try:
            if method == "_empty_and_delete_bucket":
                empty_and_delete_bucket(client, kwargs["Bucket"])
            else:
                getattr(client, method)(**kwargs)
        except ClientError as exc:
            if _GONE.search(exc.response.get("Error", {}).get("Code", "")):
                log.debug("sandbox clean-up: already gone: %s.%s %s", service, method, kwargs)
                continue
            failures.append(f"{service}.{method}({json.dumps(kwargs, default=str)}): {exc}")
        except Exception as exc:  # one failure must not stop the rest of the clean-up
            failures.append(f"{service}.{method}({json.dumps(kwargs, default=str)}): {exc}")
    for failure in failures:
        log.warning("sandbox clean-up: %s", failure)
    return failures


def empty_and_delete_bucket(s3: Any, bucket: str) -> None:
    """Delete every object version and delete marker of a (versioned) bucket, then it."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
    s3.delete_bucket(Bucket=bucket)
