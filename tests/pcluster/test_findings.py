"""The security gate's verdict: project findings fail, inherent ones are listed, stale
entries fail, an empty or unparsable scan is an error (never a clean result)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pwbcluster.errors import ToolkitError
from pwbcluster.pcluster.findings import Finding, Inherent, classify, load_inherent, parse_report

ROOT = Path(__file__).resolve().parents[2]
LAMBDA = Inherent("CKV_AWS_116", "*.json", "AWS::Lambda::Function.*", "no DLQ setting")
SSH = Finding("CKV_AWS_24", "example.json", "AWS::EC2::SecurityGroup.HeadNodeSecurityGroup", "22")


def report(failed: list[dict[str, str]], resources: int = 3, parsing_errors: int = 0) -> str:
    return json.dumps(
        {
            "check_type": "cloudformation",
            "results": {"failed_checks": failed, "parsing_errors": []},
            "summary": {"resource_count": resources, "parsing_errors": parsing_errors},
        }
    )


def test_project_findings_fail_and_inherent_ones_are_grouped() -> None:
    fn = Finding("CKV_AWS_116", "build-image.json", "AWS::Lambda::Function.DeleteStack", "dlq")
    verdict = classify([fn, SSH], [LAMBDA])
    assert verdict.project == [SSH]
    assert verdict.inherent == {LAMBDA: [fn]}
    assert not verdict.ok


def test_an_entry_that_no_longer_fires_is_stale_and_fails() -> None:
    verdict = classify([], [LAMBDA])
    assert verdict.stale == [LAMBDA] and not verdict.ok
    fn = Finding("CKV_AWS_116", "x.json", "AWS::Lambda::Function.F", "dlq")
    assert classify([fn], [LAMBDA]).ok


def test_a_pattern_matches_the_check_and_the_resource_not_only_one() -> None:
    other = Finding("CKV_AWS_117", "x.json", "AWS::Lambda::Function.F", "vpc")
    assert classify([other], [LAMBDA]).project == [other]


def test_parse_report_reads_findings_and_refuses_an_empty_or_broken_scan(tmp_path: Path) -> None:
    failed = [
        {
            "check_id": "CKV_AWS_24",
            "file_path": "/example.json",
            "resource": "AWS::EC2::SecurityGroup.HeadNodeSecurityGroup",
            "check_name": "22",
        }
    ]
    assert parse_report(report(failed), tmp_path) == [SSH]
    with pytest.raises(ToolkitError, match="no CloudFormation resources"):
        parse_report(report([], resources=0), tmp_path)
    with pytest.raises(ToolkitError, match="no CloudFormation resources"):
        parse_report("", tmp_path)
    with pytest.raises(ToolkitError, match="could not parse"):
        parse_report(report([], parsing_errors=1), tmp_path)


def test_the_checked_in_list_loads_and_gives_every_entry_a_reason() -> None:
    entries = load_inherent(ROOT / "security" / "checkov-inherent.yaml")
    assert entries and all(len(e.reason) > 20 for e in entries)
    # The project-controlled checks of issue 17 are never excused.
    assert not {"CKV_AWS_24", "CKV_AWS_42"} & {e.check for e in entries}


def test_a_malformed_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("inherent:\n  - {check: CKV_AWS_1, template: '*', resource: '*'}\n")
    with pytest.raises(ToolkitError, match="exactly the keys"):
        load_inherent(path)
    path.write_text("inherent: []\n")
    with pytest.raises(ToolkitError, match="non-empty list"):
        load_inherent(path)


def test_the_tls_variant_is_a_valid_deployment_with_its_own_name_certificate_and_cidr() -> None:
    from pwbcluster.config import load_config

    config = load_config(ROOT / "security" / "tls-hostname.yaml")
    workbench = config.data["cluster"]["workbench"]
    assert config.data["deployment"]["name"] == "example-tls"
    assert workbench["hostname"] and workbench["tls_certificate_arn"].startswith("arn:aws:acm:")
    assert config.data["cluster"]["login_nodes"]["allowed_cidr"] == "203.0.113.0/24"
    noxfile = (ROOT / "noxfile.py").read_text()
    assert '"security/tls-hostname.yaml": "build/example-tls/plan/cloudformation"' in noxfile
