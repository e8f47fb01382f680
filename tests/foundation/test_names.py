"""Names derived from the deployment name are checked against each service's rules up front."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from pwbcluster.config import ConfigError, load_config
from pwbcluster.config.checks_names import _rds, derived_names

ROOT = Path(__file__).resolve().parents[2]


def deployment(project: Path, name: str, body: str = "") -> Path:
    path = project / "config" / "names.yaml"
    head = f"""
    deployment:
      name: '{name}'
      region: eu-west-1
      owner_email: team@example.com
    """
    path.write_text(textwrap.dedent(head).lstrip() + textwrap.dedent(body), encoding="utf-8")
    return path


def refusals(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a-", "two consecutive hyphens"),
        ("a--b", "two consecutive hyphens"),
        ("internal-lb", "must not begin with 'internal-'"),
        ("xn--abc", "must not begin with 'xn--'"),
        ("sthree-x", "must not begin with 'sthree-'"),
    ],
)
def test_bad_names_are_refused_with_the_reason(project: Path, name: str, reason: str) -> None:
    found = refusals(deployment(project, name))
    mine = [p for p in found if "[resource_names_fit]" in p or "resource_names_fit" in p]
    assert mine, found
    assert any(reason in p for p in mine), mine
    assert all(re.search(r"config/names\.yaml:2 deployment\.name: ", p) for p in mine), mine
    assert all(re.search(r"built in src/pwbcluster/\S+\.py", p) for p in mine), mine


def test_a_trailing_hyphen_names_the_rds_rule(project: Path) -> None:
    found = "\n".join(refusals(deployment(project, "a-")))
    assert "RDS DB instance identifier (prefix) 'a--workbench-'" in found
    assert "RDS DB parameter group 'a--workbench-params'" in found


def test_good_names_pass(project: Path) -> None:
    for name in ("a", "prod", "team-a-1", "a" * 24):
        load_config(deployment(project, name))


def test_slurm_accounting_tightens_the_cluster_name_limit() -> None:
    data = {
        "deployment": {"name": "a" * 41},
        "aux": {"databases": {"slurm_accounting": {"enabled": True}}},
    }
    cluster = next(d for d in derived_names(data) if d.service.startswith("ParallelCluster"))
    assert cluster.rule(cluster.name) and "at most 40" in cluster.rule(cluster.name)[0]
    data["aux"] = {"databases": {"slurm_accounting": {"enabled": False}}}
    cluster = next(d for d in derived_names(data) if d.service.startswith("ParallelCluster"))
    assert cluster.rule(cluster.name) == []


def test_rds_rules() -> None:
    rule = _rds(63)
    assert rule("db-1") == []
    assert "must not end with a hyphen" in rule("db-")
    assert any("start with a letter" in w for w in rule("1db"))
    assert any("more than 63" in w for w in rule("a" * 64))
    assert _rds(37, prefix=True)("db-") == []


def test_each_name_is_built_where_it_says() -> None:
    """The file:line a refusal names holds the template the check derives the name from."""
    data = {
        "deployment": {"name": "zz"},
        "aux": {
            "databases": {"audit": {"enabled": True}, "slurm_accounting": {"enabled": True}},
            "directory": {"ldaps": True},
        },
    }
    templates = {
        "ParallelCluster cluster name": "config.name",
        "Pulumi stack": 'f"{deployment}-{part}"',
        "S3 bucket (prefix)": '"{args.deployment}-scripts-"',
        "IAM policy": 'name=f"pwbcluster-{args.deployment}-',
        "IAM role (prefix)": 'f"{args.deployment}-jump-"[:32]',
        "Network Load Balancer": 'f"{args.deployment}-ldaps"[:32]',
        "target group": 'f"{args.deployment}-ldap"[:32]',
        "RDS DB instance identifier (prefix)": 'identifier_prefix=f"{args.deployment}-',
        "RDS DB parameter group": 'f"{name}-params"',
        "RDS final snapshot identifier": 'f"{self.label}-final"',
    }
    for item in derived_names(data):
        text = (ROOT / item.source).read_text(encoding="utf-8")
        assert templates[item.service] in text, (item.service, item.source)


def test_plan_refuses_a_bad_name_before_rendering(project: Path) -> None:
    from invoke import Context, Exit

    from pwbcluster.tasks import top

    path = deployment(project, "a--b")
    with pytest.raises(Exit) as refused:
        top.plan(Context(), config=str(path))
    assert refused.value.code == 1
    assert "resource_names_fit" in str(refused.value.message)
    assert not (project / "build" / "a--b").exists(), "nothing may be rendered"
