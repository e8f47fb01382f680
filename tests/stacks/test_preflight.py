"""invoke preflight: every prerequisite at once, never "ok" for what the account cannot tell,
and a deployer policy that names an IAM action for every resource the programs make."""

from __future__ import annotations

import dataclasses
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from pwbcluster.config import Config
from pwbcluster.errors import ToolkitError
from pwbcluster.pipeline import deployer_policy
from pwbcluster.pipeline import preflight as pf

from .conftest import Deployed

REGION = "eu-west-1"


@pytest.mark.parametrize(
    ("instance_type", "code"),
    [
        ("m5.large", "L-1216C47A"),
        ("c7gn.16xlarge", "L-1216C47A"),
        ("im4gn.large", "L-1216C47A"),
        ("t3.medium", "L-1216C47A"),
        ("g4dn.xlarge", "L-DB2E81BA"),
        ("vt1.3xlarge", "L-DB2E81BA"),
        ("p4d.24xlarge", "L-417A185B"),
        ("inf2.xlarge", "L-1945791B"),
        ("dl1.24xlarge", "L-6E869C2A"),
        ("trn1.2xlarge", "L-2C3B7624"),
        ("hpc7g.16xlarge", "L-F7808C92"),
        ("x2iedn.xlarge", "L-7295265B"),
        ("f1.2xlarge", "L-74FC7D96"),
        ("u-6tb1.metal", None),
        ("mac2.metal", None),
    ],
)
def test_each_family_counts_against_its_own_vcpu_quota(
    instance_type: str, code: str | None
) -> None:
    group = pf.vcpu_group(instance_type)
    assert (group[0] if group else None) == code


class Quotas:
    """Service Quotas answering fixed values for the codes given, NoSuchResource otherwise
    (as AWS does for a code the service does not have)."""

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values

    def _answer(self, ServiceCode: str, QuotaCode: str) -> dict[str, Any]:
        if QuotaCode not in self.values:
            raise ClientError(
                {"Error": {"Code": "NoSuchResourceException", "Message": "no"}}, "GetServiceQuota"
            )
        return {"Quota": {"Value": self.values[QuotaCode]}}

    get_service_quota = _answer
    get_aws_default_service_quota = _answer


def _clients(quotas: Quotas | None = None) -> Any:
    def client(service: str) -> Any:
        if service == "service-quotas" and quotas is not None:
            return quotas
        return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]

    return client


def moto_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "x")


@mock_aws
def test_moto_has_no_ec2_quotas_so_they_are_unknown_never_ok(
    base_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto_credentials(monkeypatch)
    found = pf.account_findings(base_config.model, _clients())
    statuses = {f.what: f.status for f in found}
    assert statuses["AWS credentials"] == pf.OK
    assert statuses[f"region {REGION}"] == pf.OK
    vcpu = [f for f in found if f.what.startswith("vCPUs")]
    assert vcpu and all(f.status == pf.UNKNOWN for f in vcpu), vcpu
    assert statuses["Network Load Balancers"] == pf.UNKNOWN
    # moto does carry the VPC quotas: that one is answered.
    assert statuses["VPCs"] == pf.OK


@mock_aws
def test_demand_at_full_scale_against_quota_minus_what_runs(
    base_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto_credentials(monkeypatch)
    ec2 = boto3.client("ec2", region_name=REGION)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, InstanceType="m5.xlarge", MinCount=3, MaxCount=3)  # 12 vCPUs
    model = base_config.model
    demand = pf.vcpu_demand(model)
    types = {t for t, _, _ in demand}
    vcpus = pf._vcpus(ec2, types)
    standard = sum(
        n * vcpus[t] for t, n, _ in demand if (pf.vcpu_group(t) or ("",))[0] == "L-1216C47A"
    )
    assert standard > 0
    # Exactly enough once the running 12 are counted: ok; one fewer: missing, with a fix.
    enough = pf.account_findings(model, _clients(Quotas({"L-1216C47A": standard + 12})))
    short = pf.account_findings(model, _clients(Quotas({"L-1216C47A": standard + 11})))
    (ok,) = [f for f in enough if "Standard" in f.what]
    (bad,) = [f for f in short if "Standard" in f.what]
    assert ok.status == pf.OK and "in use 12" in ok.detail, ok
    assert bad.status == pf.MISSING and "increase" in bad.fix, bad
    assert "head node: 1 x" in bad.detail and "at max_count" in bad.detail


@mock_aws
def test_an_instance_type_the_region_does_not_offer_is_named(
    base_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto_credentials(monkeypatch)
    data = {**base_config.data, "cluster": {**base_config.data["cluster"]}}
    data["cluster"]["head_node"] = {**data["cluster"]["head_node"], "instance_type": "t3.mega"}
    config = dataclasses.replace(base_config, data=data)
    found = pf.account_findings(config.model, _clients())
    missing = {f.what: f for f in found if f.status == pf.MISSING}
    assert "instance type t3.mega" in missing, found
    # The other types were still asked for: their quotas are listed.
    assert any(f.what.startswith("vCPUs") for f in found)


@mock_aws
def test_a_region_not_opted_in_is_missing_with_how_to_enable_it(
    base_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto_credentials(monkeypatch)
    regions = boto3.client("ec2", region_name=REGION).describe_regions(AllRegions=True)["Regions"]
    opt_in = next(r["RegionName"] for r in regions if r["OptInStatus"] == "not-opted-in")
    data = {**base_config.data, "deployment": {**base_config.data["deployment"], "region": opt_in}}
    config = dataclasses.replace(base_config, data=data)
    found = {f.what: f for f in pf.account_findings(config.model, _clients())}
    region = found[f"region {opt_in}"]
    assert region.status == pf.MISSING and "enable-region" in region.fix


def test_without_credentials_every_account_check_is_listed_as_not_checked(
    base_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    found = pf.account_findings(base_config.model, _clients())
    assert found[0].what == "AWS credentials" and found[0].status == pf.MISSING
    assert len(found) > 1 and all(f.status == pf.UNKNOWN for f in found[1:]), found


def test_the_policy_names_actions_for_every_type_every_variant_registers(
    deployments: dict[str, Deployed],
) -> None:
    for name, deployed in deployments.items():
        types = {
            r.type
            for run in (deployed.network_run, deployed.services_run)
            for r in run.registered.values()
        }
        document = deployer_policy.policy_document(types)  # raises on an unmapped type
        for t in types:
            for action in deployer_policy.PULUMI_TYPE_ACTIONS.get(t, ()):
                assert deployer_policy.allows(document, action), (name, t, action)


def test_an_unmapped_resource_type_stops_the_policy() -> None:
    with pytest.raises(ToolkitError, match="aws:efs/fileSystem:FileSystem"):
        deployer_policy.policy_document(["aws:ec2/vpc:Vpc", "aws:efs/fileSystem:FileSystem"])


def test_allows_reads_wildcards_as_iam_does() -> None:
    document = deployer_policy.policy_document(["aws:ec2/vpc:Vpc"])
    assert deployer_policy.allows(document, "ec2:DescribeVpcs")
    assert deployer_policy.allows(document, "EC2:createvpc")
    assert not deployer_policy.allows(document, "ec2:RunInstances")


@mock_aws
def test_usage_that_cannot_be_read_is_unknown_not_zero(
    base_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quota known but the balancers in use unreadable (no elasticloadbalancing:Describe*):
    unknown, never counted as none in use."""
    moto_credentials(monkeypatch)

    class Refusing:
        def describe_load_balancers(self) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "Describe")

    base = _clients(Quotas({"L-69A177A2": 50}))
    found = pf.account_findings(
        base_config.model, lambda service: Refusing() if service == "elbv2" else base(service)
    )
    (nlb,) = [f for f in found if f.what == "Network Load Balancers"]
    assert nlb.status == pf.UNKNOWN and "not readable" in nlb.detail, nlb
