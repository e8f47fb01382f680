"""checkov over the CloudFormation that ``invoke plan`` synthesises: the security gate.

Every finding is either on a setting this project controls (the gate fails on it) or
inherent to ParallelCluster's own templates, listed once in ``security/checkov-inherent.yaml``
with a reason. A listed entry that no longer fires on any scanned template is stale and
fails the gate too, so the list never hides more than it says. checkov runs offline
(``--skip-download``, no update check): nothing leaves the machine.

    python -m pwbcluster.pcluster.findings --inherent security/checkov-inherent.yaml \\
        build/example/cloudformation build/example-tls/cloudformation
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from pwbcluster.errors import ToolkitError

OFFLINE_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE"}


@dataclass(frozen=True)
class Finding:
    check: str
    template: str  # file name, e.g. example-LoginNodes.json
    resource: str  # Type.LogicalId, as checkov names it
    title: str


@dataclass(frozen=True)
class Inherent:
    check: str
    template: str  # fnmatch pattern on the file name
    resource: str  # fnmatch pattern on Type.LogicalId
    reason: str

    def matches(self, finding: Finding) -> bool:
        return (
            finding.check == self.check
            and fnmatch.fnmatchcase(finding.template, self.template)
            and fnmatch.fnmatchcase(finding.resource, self.resource)
        )


@dataclass
class Verdict:
    project: list[Finding]
    inherent: dict[Inherent, list[Finding]]
    stale: list[Inherent]

    @property
    def ok(self) -> bool:
        return not self.project and not self.stale


def load_inherent(path: Path) -> list[Inherent]:
    data = yaml.safe_load(path.read_text()) or {}
    entries = data.get("inherent")
    if not isinstance(entries, list) or not entries:
        raise ToolkitError(f"{path}: expected a non-empty list under 'inherent'")
    out: list[Inherent] = []
    for i, entry in enumerate(entries):
        keys = ("check", "template", "resource", "reason")
        if not isinstance(entry, dict) or set(entry) != set(keys):
            raise ToolkitError(f"{path}: inherent[{i}] must have exactly the keys {keys}")
        if not all(isinstance(entry[k], str) and entry[k].strip() for k in keys):
            raise ToolkitError(f"{path}: inherent[{i}]: every key needs a non-empty string")
        item = Inherent(**{k: entry[k] for k in keys})
        if any(
            (o.check, o.template, o.resource) == (item.check, item.template, item.resource)
            for o in out
        ):
            raise ToolkitError(f"{path}: inherent[{i}] repeats an earlier entry")
        out.append(item)
    return out


def parse_report(text: str, directory: Path) -> list[Finding]:
    """checkov's JSON (one report, or a list of them) as findings; a scan that parsed
    nothing, or failed to parse a template, is an error, never a clean result."""
    reports = json.loads(text) if text.strip() else []
    reports = reports if isinstance(reports, list) else [reports]
    reports = [r for r in reports if r.get("check_type") == "cloudformation"]
    if not reports or not reports[0]["summary"].get("resource_count"):
        raise ToolkitError(f"checkov found no CloudFormation resources in {directory}")
    out = []
    for report in reports:
        if report["summary"].get("parsing_errors"):
            raise ToolkitError(
                f"checkov could not parse {report['summary']['parsing_errors']} template(s) "
                f"in {directory}: {report['results'].get('parsing_errors')}"
            )
        for f in report["results"]["failed_checks"]:
            out.append(
                Finding(f["check_id"], Path(f["file_path"]).name, f["resource"], f["check_name"])
            )
    return out


def scan(directory: Path, checkov: str = "checkov") -> list[Finding]:
    if not directory.is_dir() or not any(directory.glob("*.json")):
        raise ToolkitError(f"no templates in {directory}: run `invoke plan` for it first")
    exe = shutil.which(checkov)
    if exe is None:
        raise ToolkitError(
            "checkov is not installed: `pip install --group security` or `nox -s security`"
        )
    cmd = [exe, "-d", str(directory), "--framework", "cloudformation", "-o", "json"]
    cmd += ["--quiet", "--compact", "--skip-download"]
    result = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, **OFFLINE_ENV}, check=False
    )
    # checkov exits 1 when a check failed; anything else is checkov failing.
    if result.returncode not in (0, 1):
        raise ToolkitError(f"checkov failed ({result.returncode}): {result.stderr[-2000:]}")
    return parse_report(result.stdout, directory)


def classify(findings: Sequence[Finding], inherent: Sequence[Inherent]) -> Verdict:
    hits: dict[Inherent, list[Finding]] = {entry: [] for entry in inherent}
    project = []
    for finding in findings:
        entry = next((e for e in inherent if e.matches(finding)), None)
        if entry is None:
            project.append(finding)
        else:
            hits[entry].append(finding)
    stale = [entry for entry, found in hits.items() if not found]
    return Verdict(project, {e: f for e, f in hits.items() if f}, stale)


def report(verdict: Verdict, per_directory: dict[str, int]) -> str:
    lines = [f"checkov: {n} failed check(s) in {d}" for d, n in per_directory.items()]
    inherent = sum(len(f) for f in verdict.inherent.values())
    lines.append(
        f"project-controlled: {len(verdict.project)}; inherent to ParallelCluster: "
        f"{inherent} (in {len(verdict.inherent)} listed entries)"
    )
    for entry, found in verdict.inherent.items():
        lines.append(f"  inherent {entry.check} x{len(found)} {entry.resource}: {entry.reason}")
    for f in verdict.project:
        lines.append(f"PROJECT {f.check} {f.template} {f.resource}: {f.title}")
    for entry in verdict.stale:
        lines.append(
            f"STALE inherent entry no longer fires: {entry.check} {entry.template} "
            f"{entry.resource} (remove it from the list)"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inherent", type=Path, required=True)
    parser.add_argument("directories", type=Path, nargs="+")
    args = parser.parse_args(argv)
    try:
        inherent = load_inherent(args.inherent)
        findings: list[Finding] = []
        per_directory: dict[str, int] = {}
        for directory in args.directories:
            found = scan(directory)
            per_directory[str(directory)] = len(found)
            findings += found
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verdict = classify(findings, inherent)
    print(report(verdict, per_directory))
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
