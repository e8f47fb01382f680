"""Every mistake of every layer in one run, each with its file, line and a fix."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from pwbcluster.config import ConfigError, Problem, load_config

DEPLOYMENT = """\
deployment:
  name: dev
  region: us-esat-1
  owner_email: not-an-address
aux:
  users:
    count: 10
cluster:
  login_nodes:
    count: two
  queues:
    - name: all
      instance_type: t3.mega
      min_count: 0
      max_count: 4
    - name: all
      instance_type: t3.large
      min_count: 0
      max_count: 4
image:
  r:
    versions: [4.9.9, 4.5.3]
    default: 4.5.3
"""


def line_of(path: Path, text: str, after: int = 0) -> int:
    """1-based line of the first line containing ``text`` after line ``after``."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if number > after and text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def all_problems(path: Path) -> tuple[list[Problem], str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems, str(info.value)


def test_one_mistake_of_each_kind_all_in_one_run(project: Path) -> None:
    dep = project / "config" / "dev.yaml"
    dep.write_text(DEPLOYMENT)
    aux = project / "pulumi" / "auxiliary.yaml"
    # The team's standard is broken where this deployment overrides it (count: 10).
    aux.write_text(aux.read_text().replace("  count: 500\n", "  count: -7\n"))

    problems, text = all_problems(dep)
    errors = [p for p in problems if p.level.value == "error"]
    second_all = line_of(dep, "- name: all", after=line_of(dep, "- name: all"))
    expected = {
        # kind: (file, line, key path, words of the message)
        "schema": (dep, line_of(dep, "count: two"), "cluster.login_nodes.count", "not of type"),
        "email": (dep, 4, "deployment.owner_email", "is not an email address"),
        "duplicate queue": (dep, second_all, "cluster.queues[1].name", "already defined"),
        "region": (dep, 3, "deployment.region", "'us-esat-1' is not an AWS region"),
        "instance type": (
            dep,
            line_of(dep, "t3.mega"),
            "cluster.queues[0].instance_type",
            "'t3.mega' is not an EC2 instance type",
        ),
        "version": (dep, line_of(dep, "versions: [4.9.9"), "image.r.versions[0]", "R 4.9.9"),
        "stage file": (aux, line_of(aux, "count: -7"), "aux.users.count", "-7 is less than"),
    }
    for kind, (file, line, key, words) in expected.items():
        found = [
            p
            for p in errors
            if p.origin.file.endswith(str(file.relative_to(project)))
            and p.origin.line == line
            and format_key(p) == key
            and words in p.message
        ]
        assert len(found) == 1, f"{kind}: {file.name}:{line} {key} not reported once in\n{text}"
        assert found[0].expected, f"{kind}: no fix given for {found[0]}"
    assert len(errors) == len(expected), text
    # Each is printed as "file:line key: message; expected fix".
    for problem in errors:
        assert re.match(r"^\S+\.yaml:\d+ \S+: .+; expected .+", str(problem)), str(problem)
    # What did the fix texts say? The ones a person acts on.
    by_key = {format_key(p): p.expected or "" for p in errors}
    assert "us-east-1" in by_key["deployment.region"]
    assert "t3.medium" in by_key["cluster.queues[0].instance_type"]
    assert (
        "4.6.1" in by_key["image.r.versions[0]"]
        and "--skip-check r_version_known" in (by_key["image.r.versions[0]"])
    )
    assert "at least 0" in by_key["aux.users.count"]


def format_key(problem: Problem) -> str:
    from pwbcluster.config.problems import format_path

    return format_path(problem.path)


def test_a_check_skips_only_the_key_the_schema_refused(project: Path) -> None:
    dep = project / "config" / "dev.yaml"
    dep.write_text(
        textwrap.dedent(
            """\
            deployment:
              name: dev
              region: eu-west-1
              owner_email: team@example.com
            cluster:
              queues:
                - {name: a, instance_type: t3.large, min_count: 0, max_count: ten}
                - {name: b, instance_type: t3.large, min_count: 5, max_count: 2}
            """
        )
    )
    problems, text = all_problems(dep)
    shown = [str(p) for p in problems]
    assert any("cluster.queues[0].max_count: 'ten' is not of type 'integer'" in p for p in shown)
    # queue_min_le_max could not look at queues[0], and still checked queues[1] ...
    assert any(
        "cluster.queues[1].min_count: min_count 5 is above max_count 2" in p for p in shown
    ), text
    assert not any("queues[0].min_count" in p for p in shown), text
    # ... and the summary says what was not checked, and why.
    first_line = text.splitlines()[0]
    assert "queue_min_le_max (cluster.queues[0].max_count)" in first_line, first_line


def test_a_broken_standard_is_reported_once_at_its_own_line(project: Path) -> None:
    """A required key missing from a stage file: the stage file's line, not the deployment's."""
    image = project / "image" / "image.yaml"
    image.write_text(image.read_text().replace("root_volume_gb: 100\n", ""))
    dep = project / "config" / "dev.yaml"
    dep.write_text(
        "deployment:\n  name: dev\n  region: eu-west-1\n  owner_email: team@example.com\n"
        "image:\n  name: pwbdev\n"
    )
    problems, text = all_problems(dep)
    missing = [p for p in problems if "'root_volume_gb' is a required property" in p.message]
    assert len(missing) == 1, text
    assert missing[0].origin.file.endswith("image/image.yaml"), text
    assert missing[0].expected and "root_volume_gb" in missing[0].expected


def test_a_valid_override_does_not_hide_a_broken_standard(project: Path) -> None:
    cluster = project / "cluster" / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace("slurmctld_timeout: 5", "slurmctld_timeout: 1"))
    dep = project / "config" / "dev.yaml"
    dep.write_text(
        "deployment:\n  name: dev\n  region: eu-west-1\n  owner_email: team@example.com\n"
        "cluster:\n  ha:\n    slurmctld_timeout: 10\n"
    )
    problems, text = all_problems(dep)
    assert [str(p.origin).split("/")[-1] for p in problems if p.level.value == "error"] == [
        f"cluster.yaml:{line_of(cluster, 'slurmctld_timeout: 1')}"
    ], text


def test_the_example_still_validates(project: Path) -> None:
    assert load_config(project / "config" / "example.yaml").name == "example"


def test_a_version_newer_than_the_catalogue_passes_when_its_check_is_off(project: Path) -> None:
    dep = project / "config" / "dev.yaml"
    head = "deployment:\n  name: dev\n  region: eu-west-1\n  owner_email: team@example.com\n"
    body = "image:\n  r:\n    versions: [4.9.9]\n    default: 4.9.9\n"
    dep.write_text(head + body)
    problems, _ = all_problems(dep)
    assert [p.check for p in problems if p.level.value == "error"] == ["r_version_known"]
    assert load_config(dep, skip_checks=("r_version_known",)).data["image"]["r"]["default"] == (
        "4.9.9"
    )
    dep.write_text(head + "  disable_checks: [r_version_known]\n" + body)
    assert load_config(dep).name == "dev"


def test_a_syntax_error_still_lets_the_stage_files_be_checked(project: Path) -> None:
    aux = project / "pulumi" / "auxiliary.yaml"
    aux.write_text(aux.read_text().replace("  count: 500\n", "  count: -7\n"))
    dep = project / "config" / "dev.yaml"
    dep.write_text("deployment:\n  name: [unclosed\n")
    problems, text = all_problems(dep)
    assert sorted(p.check for p in problems) == ["schema", "yaml"], text
    assert any("dev.yaml:" in str(p) and "YAML syntax" in p.message for p in problems), text
    assert any("auxiliary.yaml:" in str(p) and "-7 is less than" in p.message for p in problems)
