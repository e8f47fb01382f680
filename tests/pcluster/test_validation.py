"""pcluster's own validation of a rendered config, traced back to the deployment key."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path

import boto3
import pytest

from pwbcluster.config import Config, load_config
from pwbcluster.errors import PclusterError
from pwbcluster.pcluster import offline
from pwbcluster.pipeline.plan import PlanContext, make_plan, planned_context, render_step
from pwbcluster.pipeline.plan_pcluster import pcluster_step
from pwbcluster.stages.cluster.render import render_cluster_config, trace
from pwbcluster.stages.cluster.stage import override_key

from .conftest import render

pytestmark = pytest.mark.pcluster

BROKEN = """\
# yaml-language-server: $schema=schema/deployment.schema.json
deployment:
  name: pwbbroken
  region: eu-west-1
  owner_email: owner@example.com
cluster:
  pcluster_overrides:
    LoginNodes:
      Pools:
        - Name: login
          Count: 2
          InstanceType: t3.xlarge
          Networking:
            SubnetIds: [subnet-planned0000000001, subnet-planned0000000002]
          Ssh:
            AllowedIps: 0.0.0.0/0
"""


def test_two_subnets_in_a_login_pool_are_reported_at_the_deployment_key(
    pcluster_site: Path, project_root: Path
) -> None:
    deployment = project_root / "config" / "broken.yaml"
    deployment.write_text(BROKEN)
    config = load_config(deployment, root=project_root)
    with pytest.raises(PclusterError) as raised:
        make_plan(config, steps=[("render", render_step), ("pcluster", pcluster_step)])
    message = str(raised.value)
    line = BROKEN.splitlines().index(
        "            SubnetIds: [subnet-planned0000000001, subnet-planned0000000002]"
    )
    key = "cluster.pcluster_overrides.LoginNodes.Pools[0].Networking.SubnetIds"
    assert f"broken.yaml:{line + 1} {key}: " in message, message
    assert "LoginNodes.Pools[0].Networking.SubnetIds" in message
    assert not (config.for_plan().build_dir / "cloudformation" / "pwbbroken.json").exists()


def test_override_key_follows_the_deepest_overridden_key() -> None:
    data = {"cluster": {"pcluster_overrides": {"LoginNodes": {"Pools": [{"Count": 3}]}}}}
    path = ("LoginNodes", "Pools", 0, "Count")
    assert override_key(data, path) == ("cluster", "pcluster_overrides", *path)
    assert override_key(data, ("LoginNodes", "Pools", 0, "Name")) == (
        "cluster",
        "pcluster_overrides",
        "LoginNodes",
        "Pools",
        0,
    )
    assert override_key(data, ("HeadNode", "InstanceType")) is None


def test_the_plan_step_writes_linted_templates_and_reuses_them(
    planned: PlanContext, example: Config
) -> None:
    out = example.for_plan().build_dir / "cloudformation"
    names = {p.name for p in out.glob("*.json")}
    assert {"example.json", "example-LoginNodes.json", "build-image.json"} <= names
    assert any(n.startswith("cfn-lint: 0 error(s)") for n in planned.notes), planned.notes
    image = json.loads((out / "build-image.json").read_text())
    assert "AWS::ImageBuilder::Image" in {r["Type"] for r in image["Resources"].values()}
    shown = json.loads((out / "placeholders.json").read_text())
    assert "subnet-planned0000000001" in shown.values()
    assert "subnet-planned0000000001" not in (out / "example-LoginNodes.json").read_text()
    assert {"pcluster.validate+synthesise", "pcluster.cfn-lint"} <= set(planned.timings)

    again = make_plan(example, steps=[("render", render_step), ("pcluster", pcluster_step)])
    assert any("inputs unchanged" in n for n in again.notes)
    assert "pcluster.validate+synthesise" not in again.timings


def test_validation_against_a_moto_server_with_its_own_ids(
    pcluster_site: Path, example: Config
) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        ec2 = boto3.client(
            "ec2",
            region_name=example.region,
            endpoint_url=f"http://{host}:{port}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        # the sandbox's own network: every subnet and the security group exist already
        created = {
            "subnet-planned0000000001": ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24"),
            "subnet-planned0000000003": ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.2.0/24"),
        }
        real = {k: v["Subnet"]["SubnetId"] for k, v in created.items()}
        real["sg-planned0000000001"] = ec2.create_security_group(
            GroupName="cluster", Description="cluster", VpcId=vpc
        )["GroupId"]
        # a policy by a planned name exists already (a server shared by several tests)
        iam = boto3.client(
            "iam",
            region_name=example.region,
            endpoint_url=f"http://{host}:{port}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        # moto's servers in one process share their state: another test may have made it.
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_policy(
                PolicyName="example-compute-node-PLANNED",
                PolicyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}
                        ],
                    }
                ),
            )
        text = json.dumps(render(example))
        for planned, actual in real.items():
            text = text.replace(planned, actual)
        result = offline.validate_cluster(
            json.loads(text), "pwbserver", example.region, endpoint_url=f"http://{host}:{port}"
        )
    finally:
        server.stop()
    assert result.errors == []
    # ids that exist are used as they are; only what is missing gets a stand-in
    assert not set(real.values()) & set(result.mapping)
    assert "ami-planned0000000001" in result.mapping


def test_a_validator_finding_is_traced_to_the_resource_and_the_deployment_key(
    pcluster_site: Path, example: Config
) -> None:
    ctx = planned_context(example)
    rendered = render_cluster_config(
        example.model,
        ctx.network,
        ctx.services,
        ctx.image,
        ctx.scripts_prefix,
        example.tags(),
    )
    config = copy.deepcopy(rendered.config)
    resource = config["Scheduling"]["SlurmQueues"][1]["ComputeResources"][0]
    resource["MinCount"], resource["MaxCount"] = 3, 1
    result = offline.validate_cluster(
        config, "pwbtrace", example.region, public_subnets=ctx.network.public_subnet_ids
    )
    (failure,) = [f for f in result.errors if f.validator == "ComputeResourceSizeValidator"]
    assert failure.path == ("Scheduling", "SlurmQueues", 1)  # pcluster checks it per queue
    key = trace(rendered.source_map, failure.path)
    assert key == ("cluster", "queues", 1)
    assert example.describe(key).endswith(" cluster.queues[1]")


@pytest.mark.parametrize("region", ["us-east-1", "ap-southeast-2"])
def test_the_example_plans_in_other_regions(
    pcluster_site: Path, project_root: Path, region: str
) -> None:
    # us-east-1 is the one region where S3 refuses a LocationConstraint; pcluster's own
    # synthesis creates a bucket there too.
    example = (project_root / "config" / "example.yaml").read_text()
    name = "r" + region.replace("-", "")
    deployment = project_root / "config" / f"{name}.yaml"
    deployment.write_text(
        example.replace("name: example", f"name: {name}").replace(
            "region: eu-west-1", f"region: {region}"
        )
    )
    config = load_config(deployment, root=project_root)
    assert config.region == region
    ctx = make_plan(config, steps=[("render", render_step), ("pcluster", pcluster_step)])
    assert (config.for_plan().build_dir / "cloudformation" / f"{name}.json").is_file(), ctx.files
