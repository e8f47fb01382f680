"""pcluster's own validation of a rendered config, traced back to the deployment key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pwbcluster.config import load_config
from pwbcluster.errors import PclusterError
from pwbcluster.pcluster.plan_step import override_key, pcluster_step
from pwbcluster.plan import make_plan, render_step

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
    assert not (config.build_dir / "cloudformation" / "pwbbroken.json").exists()


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
