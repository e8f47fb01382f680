"""cfn-lint on the synthesised templates: 0 errors, pcluster-inherent warnings set aside.

cfn-lint is a dependency of the toolkit itself (not of the pcluster venv); it runs as
its own CLI with JSON output. Warnings that come from ParallelCluster's own templates
(nothing in our config or patch causes them) are listed in ``PCLUSTER_INHERENT`` with
the reason, counted, and not shown; anything else is reported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pwbcluster.errors import MissingDependency, PclusterError

LINT_TIMEOUT_SECONDS = 300

# Rule id -> why it is pcluster's own and not ours (measured with cfn-lint 1.58 on the
# unpatched 3.16.1 templates too).
PCLUSTER_INHERENT: dict[str, str] = {
    "W3687": "pcluster's all-traffic (IpProtocol -1) security group rules also set FromPort/ToPort",
    "W2001": "pcluster declares template parameters (ClusterUser...) that some configs do not use",
    "W3011": "pcluster sets DeletionPolicy without UpdateReplacePolicy on its storage resources",
}


@dataclass(frozen=True)
class Finding:
    level: str
    rule: str
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} {self.rule} {self.message}"


@dataclass
class LintResult:
    files: list[Path]
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        ignored = ", ".join(f"{rule} x{n}" for rule, n in sorted(self.ignored.items()))
        return (
            f"cfn-lint: {len(self.errors)} error(s), {len(self.warnings)} warning(s) on "
            f"{len(self.files)} template(s)"
            + (f"; pcluster-inherent warnings set aside: {ignored}" if ignored else "")
        )


def cfn_lint_binary() -> str:
    beside = Path(sys.executable).with_name("cfn-lint")
    found = str(beside) if beside.exists() else shutil.which("cfn-lint")
    if not found:
        raise MissingDependency(
            "cfn-lint is not installed in the toolkit's environment: run bin/setup"
        )
    return found


def bins(files: Sequence[Path], count: int) -> list[list[Path]]:
    """``files`` in at most ``count`` groups of about equal size, largest first (cfn-lint's
    time grows with a template's size)."""
    groups: list[list[Path]] = [[] for _ in range(max(1, min(count, len(files))))]
    sizes = [0] * len(groups)
    for path in sorted(files, key=lambda p: p.stat().st_size, reverse=True):
        smallest = sizes.index(min(sizes))
        groups[smallest].append(path)
        sizes[smallest] += path.stat().st_size
    return [g for g in groups if g]


def lint(files: Sequence[Path]) -> LintResult:
    """Run cfn-lint on ``files``, in one process per core; never raises for findings
    (see ``raise_for``)."""
    return merge(list(files), lint_each(files).values())


def lint_each(files: Sequence[Path]) -> dict[Path, LintResult]:
    """cfn-lint's result for each of ``files`` (cfn-lint reads each template on its own),
    the files spread over one process per core."""
    groups = bins(files, os.cpu_count() or 1)
    if len(groups) < 2:
        return _lint_one(files)
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        parts = list(pool.map(_lint_one, groups))
    return {path: part[path] for part in parts for path in part}


def merge(files: list[Path], parts: Iterable[LintResult]) -> LintResult:
    result = LintResult(files=files)
    for part in parts:
        result.errors.extend(part.errors)
        result.warnings.extend(part.warnings)
        result.ignored.update(part.ignored)
    return result


def _lint_one(files: Sequence[Path]) -> dict[Path, LintResult]:
    results = {path: LintResult(files=[path]) for path in files}
    if not files:
        return results
    by_name = {str(path): result for path, result in results.items()}
    argv = [cfn_lint_binary(), "--format", "json", "--", *map(str, files)]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=LINT_TIMEOUT_SECONDS)
    try:
        matches = json.loads(run.stdout or "[]")
    except json.JSONDecodeError as exc:
        raise PclusterError(
            f"cfn-lint failed (exit {run.returncode}): {run.stderr[-2000:]}"
        ) from exc
    for match in matches:
        finding = Finding(
            level=match["Level"],
            rule=match["Rule"]["Id"],
            file=match["Filename"],
            line=int(match.get("Location", {}).get("Start", {}).get("LineNumber", 0)),
            message=match["Message"],
        )
        result = by_name.get(finding.file)
        if result is None:
            raise PclusterError(f"cfn-lint reported on a file it was not given: {finding}")
        if finding.level == "Error":
            result.errors.append(finding)
        elif finding.rule in PCLUSTER_INHERENT:
            result.ignored[finding.rule] += 1
        elif finding.level == "Warning":
            result.warnings.append(finding)
    return results


def raise_for(result: LintResult) -> None:
    if result.errors:
        raise PclusterError(f"{result.summary()}:\n" + "\n".join(str(f) for f in result.errors))
