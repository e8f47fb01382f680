"""The loader: merged values with origins, every problem at once with file:line key.path."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from pwbcluster.config import ConfigError, load_config
from pwbcluster.config.checks import REGISTRY


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def deployment(project: Path, body: str = "", name: str = "dev") -> Path:
    head = f"""
    deployment:
      name: {name}
      region: eu-west-1
      owner_email: team@example.com
    """
    if body.startswith("\n"):
        body = textwrap.dedent(body)
    path = project / "config" / f"{name}.yaml"
    path.write_text(textwrap.dedent(head).lstrip() + body, encoding="utf-8")
    return path


def problems(path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in info.value.problems]


def test_example_is_valid_and_carries_the_seed_defaults(project: Path) -> None:
    cfg = load_config(project / "config" / "example.yaml")
    data = cfg.data
    assert cfg.name == "example" and cfg.region == "eu-west-1"
    assert data["aux"]["users"] | {} == data["aux"]["users"]
    assert (data["aux"]["users"]["count"], data["aux"]["users"]["prefix"]) == (500, "posit")
    assert data["aux"]["users"]["digits"] == 4
    assert data["aux"]["jump_host"]["instance_type"] == "t3.medium"
    assert data["cluster"]["head_node"] == {"instance_type": "t3.xlarge", "root_volume_gb": 100}
    queues = {q["name"]: q for q in data["cluster"]["queues"]}
    assert (
        queues["all"]["instance_type"],
        queues["all"]["min_count"],
        queues["all"]["max_count"],
    ) == ("t3.xlarge", 1, 10)
    assert (queues["gpu"]["instance_type"], queues["gpu"]["max_count"]) == ("g4dn.xlarge", 1)
    assert data["cluster"]["login_nodes"]["count"] == 2
    assert data["cluster"]["storage"]["home"] == {
        "type": "FsxLustre",
        "capacity_gb": 1200,
        "deployment_type": "PERSISTENT_2",
    }
    assert data["image"]["r"]["default"] in data["image"]["r"]["versions"]
    assert len(data["image"]["r"]["versions"]) >= 4
    assert data["cluster"]["workbench"]["container_sessions"] is False


def test_values_remember_their_file_and_line(project: Path) -> None:
    dep = deployment(
        project,
        """
    cluster:
      login_nodes:
        count: 3
    """,
    )
    cfg = load_config(dep)
    assert cfg.data["cluster"]["login_nodes"]["count"] == 3
    origin = cfg.where(("cluster", "login_nodes", "count"))
    assert origin.file.endswith("config/dev.yaml") and origin.line == 8, origin
    # A key the deployment did not override still points into the stage file.
    origin = cfg.where(("cluster", "login_nodes", "instance_type"))
    assert origin.file.endswith("cluster/cluster.yaml")
    lines = (project / "cluster" / "cluster.yaml").read_text().splitlines()
    assert "instance_type" in lines[origin.line - 1]


def test_every_problem_is_reported_at_once_with_file_line_and_path(project: Path) -> None:
    dep = deployment(
        project,
        """
    cluster:
      queues:
        - name: all
          instance_type: t3.xlarge
          min_count: 0
          max_count: -3
      login_nodes:
        count: two
      wrkbench: {}
    """,
    )
    found = problems(dep)
    assert any(
        ":11 cluster.queues[0].max_count: -3 is less than the minimum of 0" in p for p in found
    ), found
    assert any(
        ":13 cluster.login_nodes.count: 'two' is not of type 'integer'" in p for p in found
    ), found
    assert any(
        ":14 cluster.wrkbench: unknown key 'wrkbench' (did you mean 'workbench'?)" in p
        for p in found
    ), found
    # The semantic checks ran too (their warnings are listed); none of them reasoned
    # about the refused values.
    errors = [p for p in found if not p.startswith("warning:")]
    assert len(errors) == 3, errors


def test_unknown_keys_in_stage_files_name_the_stage_file(project: Path) -> None:
    text = (project / "image" / "image.yaml").read_text().replace("quarto:", "quatro:")
    (project / "image" / "image.yaml").write_text(text)
    found = problems(project / "config" / "example.yaml")
    assert any(
        "image/image.yaml:" in p
        and "image.quatro: unknown key 'quatro' (did you mean 'quarto'?)" in p
        for p in found
    ), found
    assert any("'quarto' is a required property" in p for p in found), found


def test_yaml_syntax_error_names_the_line(project: Path) -> None:
    dep = write(project / "config" / "broken.yaml", "deployment:\n  name: [unclosed\n")
    found = problems(dep)
    assert len(found) == 1 and "config/broken.yaml:" in found[0] and "YAML syntax" in found[0]


def test_duplicate_keys_are_refused(project: Path) -> None:
    dep = deployment(project, "cluster:\n  slurm_accounting: false\n  slurm_accounting: true\n")
    found = problems(dep)
    assert any("duplicate" in p.lower() for p in found), found


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "cluster:\n  queues:\n    - {name: a, instance_type: t3.large, min_count: 5, max_count: 2}\n",
            "cluster.queues[0].min_count: min_count 5 is above max_count 2",
        ),
        (
            "image:\n  r: {versions: [4.4.3], default: 4.3.1}\n",
            "image.r.default: default 4.3.1 is not among versions",
        ),
        (
            "image:\n  python: {versions: [3.12.11], default: 3.11.6}\n",
            "image.python.default: default 3.11.6 is not among versions",
        ),
        (
            "cluster:\n  queues:\n    - {name: a, instance_type: t3.large, min_count: 0, max_count: 2}\n"
            "    - {name: a, instance_type: t3.large, min_count: 0, max_count: 2}\n",
            "cluster.queues[1].name: queue 'a' is already defined",
        ),
        (
            "cluster:\n  queues:\n    - {name: g, instance_type: c5.large, min_count: 0, max_count: 1,"
            " gpu: true}\n",
            "cluster.queues[0].instance_type: queue 'g' is a GPU queue but c5.large",
        ),
        (
            "cluster:\n  storage:\n    home: {type: FsxLustre, capacity_gb: 1300,"
            " deployment_type: SCRATCH_2}\n",
            "1300 GB is not a valid SCRATCH_2 capacity",
        ),
        (
            "aux:\n  network:\n    cidr: 10.20.0.0/33\n",
            "aux.network.cidr: '10.20.0.0/33' is not a valid",
        ),
        ("aux:\n  network:\n    cidr: 8.8.0.0/16\n", "cannot hold the VPC's subnets"),
        (
            "cluster:\n  workbench:\n    port: 6817\n",
            "cluster.workbench.port: port 6817 is used by slurmctld",
        ),
        (
            "aux:\n  network:\n    vpc_id: vpc-0123456789abcdef0\n",
            "aux.network.private_subnet_ids: an existing VPC needs private subnets",
        ),
        ("cluster:\n  slurm_accounting: true\n", "Slurm accounting needs its database"),
        ("aux:\n  users:\n    prefix: abcdefghijklmno\n    digits: 6\n", "over 20 characters"),
        ("aux:\n  users:\n    count: 20000\n", "does not fit in 4 digits"),
        ("aux:\n  directory:\n    size: Enterprise\n", "SimpleAD has no size 'Enterprise'"),
        (
            "cluster:\n  workbench:\n    tls_certificate_arn: arn:aws:acm:us-east-1:123456789012:"
            "certificate/abc\n",
            "certificate is in us-east-1",
        ),
    ],
)
def test_semantic_checks(project: Path, body: str, expected: str) -> None:
    found = problems(deployment(project, body))
    assert any(expected in p for p in found), found
    assert all(re.match(r"^(warning: )?\S+\.yaml:\d+ \S+: ", p) for p in found), found


def test_owner_email_is_checked(project: Path) -> None:
    dep = write(
        project / "config" / "mail.yaml",
        """
    deployment:
      name: mail
      region: eu-west-1
      owner_email: not-an-address
    """,
    )
    found = problems(dep)
    assert any(
        ":4 deployment.owner_email: 'not-an-address' is not an email address" in p for p in found
    ), found


def test_checks_can_be_switched_off_by_name(project: Path) -> None:
    body = "cluster:\n  queues:\n    - {name: a, instance_type: t3.large, min_count: 5, max_count: 2}\n"
    dep = deployment(project, body)
    problems(dep)
    cfg = load_config(dep, skip_checks=("queue_min_le_max",))
    assert cfg.data["cluster"]["queues"][0]["min_count"] == 5
    dep = deployment(project, "  disable_checks: [queue_min_le_max]\n" + body)
    # disable_checks sits under deployment:, appended right after owner_email
    assert load_config(dep).data["deployment"]["disable_checks"] == ["queue_min_le_max"]


def test_unknown_check_name_is_an_error_with_a_suggestion(project: Path) -> None:
    dep = deployment(project, "  disable_checks: [queue_min_le_mx]\n")
    found = problems(dep)
    assert any(
        "no check named 'queue_min_le_mx'; expected 'queue_min_le_max'" in p for p in found
    ), found


def test_warnings_pass_unless_strict(project: Path) -> None:
    dep = deployment(project, "cluster:\n  login_nodes:\n    count: 1\n")
    cfg = load_config(dep)
    assert any(w.check == "login_nodes_ha" for w in cfg.warnings)
    found = problems(dep, strict=True)
    assert any("login_nodes_ha" in p for p in found)


def test_every_check_has_a_name_level_and_summary() -> None:
    assert len(REGISTRY) >= 15
    for name, item in REGISTRY.items():
        assert name == item.name and item.summary and item.level.value in ("error", "warning")


def test_no_password_like_values_in_shipped_yaml() -> None:
    root = Path(__file__).resolve().parents[2]
    for rel in (
        "pulumi/auxiliary.yaml",
        "image/image.yaml",
        "cluster/cluster.yaml",
        "config/example.yaml",
    ):
        text = (root / rel).read_text().lower()
        for word in ("password:", "passwd", "secret:", "testme"):
            assert word not in text, f"{rel} contains {word!r}"


def test_a_region_typo_is_an_error_with_the_region_meant(project: Path) -> None:
    path = deployment(project)
    path.write_text(path.read_text().replace("region: eu-west-1", "region: us-esat-1"))
    found = problems(path)
    assert any(
        "deployment.region: 'us-esat-1' is not an AWS region; expected 'us-east-1'" in p
        and "[region_known]" in p
        for p in found
    ), found


def test_every_region_pcluster_serves_is_known(project: Path) -> None:
    for region in ("us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1"):
        path = deployment(project)
        path.write_text(path.read_text().replace("region: eu-west-1", f"region: {region}"))
        assert load_config(path).region == region


def test_a_volta_gpu_queue_is_refused_before_any_aws_call(project: Path) -> None:
    path = deployment(
        project,
        """
        cluster:
          queues:
            - name: gpu
              instance_type: p3.2xlarge
              min_count: 0
              max_count: 1
              gpu: true
        """,
    )
    found = problems(path)
    assert any(
        "cluster.queues[0].instance_type: p3.2xlarge: ParallelCluster 3.16 refuses it" in p
        and "[gpu_driver_supported]" in p
        for p in found
    ), found


def test_a_callback_whose_certificate_check_would_fail_is_refused(project: Path) -> None:
    """With the deployment's own certificate, sessions would call back to the balancer's
    AWS name, which that certificate does not cover: refused before anything runs."""
    path = deployment(project)
    own = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-2222-4000-8000-000000000002"
    path.write_text(path.read_text() + f"cluster:\n  workbench:\n    tls_certificate_arn: {own}\n")
    found = problems(path)
    assert any(
        "cluster.workbench.hostname: your certificate is set but hostname is not" in p
        and "[workbench_callback_certificate]" in p
        for p in found
    ), found
    path.write_text(path.read_text() + "    hostname: workbench.example.com\n")
    config = load_config(path)  # no error left
    assert not [w for w in config.warnings if "workbench_callback" in str(w)]
    path.write_text(path.read_text() + "    tls: false\n")
    assert any("tls is false but tls_certificate_arn is set" in p for p in problems(path))


def test_plain_http_is_a_warning(project: Path) -> None:
    path = deployment(project)
    path.write_text(path.read_text() + "cluster:\n  workbench:\n    tls: false\n")
    warnings = [str(w) for w in load_config(path).warnings]
    assert any("[workbench_plain_http]" in w and "plain HTTP" in w for w in warnings), warnings


def test_a_licence_tier_that_cannot_carry_the_design_is_refused(project: Path) -> None:
    path = deployment(project)
    base = path.read_text()
    path.write_text(base + "cluster:\n  workbench:\n    license_tier: standard\n")
    assert any(
        "the Standard tier has neither the Job Launcher" in p and "[workbench_license_tier]" in p
        for p in problems(path)
    )
    path.write_text(
        base + "cluster:\n  login_nodes:\n    count: 3\n  workbench:\n    license_tier: enhanced\n"
    )
    assert any("3 login nodes load-balanced need the Advanced tier" in p for p in problems(path))
    for ok in (
        "count: 2\n  workbench:\n    license_tier: enhanced",
        "count: 3\n  workbench:\n    license_tier: advanced",
    ):
        path.write_text(base + "cluster:\n  login_nodes:\n    " + ok + "\n")
        load_config(path)  # no error


def test_the_licence_settings_name_exactly_one_source(project: Path) -> None:
    path = deployment(project)
    base = path.read_text()
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wb-licence-AbCdEf"
    path.write_text(base + "cluster:\n  workbench:\n    license_kind: server\n")
    assert any(
        "license_kind is server but no license_server is named" in p
        and "[workbench_license_source]" in p
        for p in problems(path)
    )
    path.write_text(
        base + "cluster:\n  workbench:\n    license_kind: server\n"
        f"    license_server: 10.1.2.3:8989\n    license_secret_arn: {secret}\n"
    )
    assert any(
        "a floating licence server and a licence secret are both set" in p for p in problems(path)
    )
    path.write_text(base + "cluster:\n  workbench:\n    license_server: licence.example.com\n")
    assert any("license_server is set but license_kind is key" in p for p in problems(path))
    path.write_text(
        base
        + "cluster:\n  workbench:\n    license_server: 'bad host\\nx'\n    license_kind: server\n"
    )
    assert any("license_server" in p for p in problems(path))
    path.write_text(
        base
        + "cluster:\n  workbench:\n    license_kind: server\n    license_server: 10.1.2.3:8989\n"
    )
    config = load_config(path)  # no error, and no "no licence" warning
    assert not [w for w in config.warnings if "[workbench_license]" in str(w)]
    path.write_text(
        base + f"cluster:\n  workbench:\n    license_kind: file\n    license_secret_arn: {secret}\n"
    )
    load_config(path)


def test_a_route53_zone_needs_a_hostname(project: Path) -> None:
    path = deployment(project)
    base = path.read_text()
    path.write_text(base + "cluster:\n  workbench:\n    route53_zone_id: Z0123456789ABCDEFGHIJ\n")
    assert any(
        "route53_zone_id is set but hostname is not" in p and "[workbench_dns_record]" in p
        for p in problems(path)
    )
    path.write_text(base + "cluster:\n  workbench:\n    route53_zone_id: not-a-zone\n")
    assert any("route53_zone_id" in p for p in problems(path))
    path.write_text(
        base + "cluster:\n  workbench:\n    route53_zone_id: Z0123456789ABCDEFGHIJ\n"
        "    hostname: workbench.example.com\n"
    )
    load_config(path)
