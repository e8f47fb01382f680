"""Apply, check and revert the patches in ``patches/`` on the pcluster venv.

In the manner of npm's patch-package: a patch file is named for the package and the
version it fits (``aws-parallelcluster+3.16.1+001+login-lb-ports.patch``) and carries
a header saying what and why. GNU ``patch`` does the work:

- a forward dry run first, then the real run (``--no-backup-if-mismatch``, no .rej);
- "already applied" is a reverse dry run that succeeds: applying twice changes nothing;
- patches/ may hold one set per supported version; only the installed version's set
  applies, and a version with no patch is refused, naming the versions that have one;
- revert is ``patch -R`` after a reverse dry run: the files come back byte for byte.

``site_dir`` defaults to the pcluster venv's site-packages; tests pass a copy.
"""

from __future__ import annotations

import compileall
import fcntl
import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pwbcluster.errors import MissingDependency, PatchError
from pwbcluster.pcluster.venv import (
    PCLUSTER_PACKAGE,
    ensure_venv,
    project_root,
    reinstall_pcluster,
    site_packages,
)

log = logging.getLogger(__name__)

PATCH_NAME = re.compile(
    r"^(?P<package>[A-Za-z0-9_.-]+)\+(?P<version>[^+]+)\+(?P<seq>\d{3})\+.+\.patch$"
)
PATCH_TIMEOUT_SECONDS = 60


class PatchConflict(PatchError):
    """The files differ from what a patch expects (neither applied nor applicable)."""


class State(Enum):
    APPLIED = "applied"
    NOT_APPLIED = "not applied"
    CONFLICT = "does not apply (files differ from what the patch expects)"


@dataclass(frozen=True)
class PatchFile:
    path: Path
    package: str
    version: str

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class PatchResult:
    patch: PatchFile
    before: State
    after: State
    changed: bool
    would_become: State | None = None  # a dry run that found work to do

    def describe(self) -> str:
        if self.changed:
            return f"{self.patch.name}: {self.before.value} -> {self.after.value}"
        if self.would_become is not None:
            action = "apply" if self.would_become is State.APPLIED else "revert"
            return f"{self.patch.name}: {self.after.value} (dry run: would {action} it)"
        return f"{self.patch.name}: {self.after.value}"


def patches_dir() -> Path:
    return project_root() / "patches"


def find_patches(directory: Path | None = None, package: str = PCLUSTER_PACKAGE) -> list[PatchFile]:
    """The patch files for ``package`` in ``directory``, in sequence order."""
    directory = directory or patches_dir()
    found = []
    for path in sorted(directory.glob("*.patch")):
        match = PATCH_NAME.match(path.name)
        if not match:
            raise PatchError(
                f"{path}: patch file names must be <package>+<version>+<NNN>+<what>.patch"
            )
        if match["package"] == package:
            found.append(PatchFile(path, package, match["version"]))
    found.sort(key=lambda p: p.name.split("+")[2])
    return found


def installed_version(site_dir: Path, package: str = PCLUSTER_PACKAGE) -> str:
    """The version of ``package`` installed in ``site_dir``, read from its dist-info."""
    dist_name = package.replace("-", "_")
    candidates = sorted(site_dir.glob(f"{dist_name}-*.dist-info/METADATA"))
    if len(candidates) != 1:
        raise PatchError(
            f"expected one {dist_name}-*.dist-info in {site_dir}, found {len(candidates)}: "
            "is the pcluster venv complete? Run `invoke pcluster.setup`"
        )
    for line in candidates[0].read_text().splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    raise PatchError(f"{candidates[0]} has no Version line")


def _patch_binary() -> str:
    binary = shutil.which("patch")
    if binary is None:
        raise MissingDependency(
            "GNU `patch` is not installed; it applies patches/ to ParallelCluster. "
            "Install it (Debian: `apt-get install patch`; listed in requirements/apt-run.txt)"
        )
    return binary


def _run_patch(site_dir: Path, patch: PatchFile, *flags: str) -> subprocess.CompletedProcess[str]:
    argv = [
        _patch_binary(),
        "-p1",
        "--force",  # never ask; never guess that a patch is reversed
        "--fuzz=0",  # the context must match exactly: a patch fits one version
        "--no-backup-if-mismatch",
        "--reject-file=-",
        "-d",
        str(site_dir),
        "-i",
        str(patch.path),
        *flags,
    ]
    log.debug("running %s", " ".join(argv))
    run = subprocess.run(argv, capture_output=True, text=True, timeout=PATCH_TIMEOUT_SECONDS)
    if run.returncode == 0 and "--dry-run" not in flags:
        _compile_targets(site_dir, patch)
    return run


def _compile_targets(site_dir: Path, patch: PatchFile) -> None:
    """Write the bytecode of the files a patch changed.

    The venv is installed with its bytecode compiled, and Python only reads a .pyc whose
    recorded source mtime and size match. A patched file's old .pyc is therefore stale. Where
    PYTHONDONTWRITEBYTECODE is set, as on these machines, the import would not write a new
    one, so every start-up would compile the file again. compileall writes it regardless.
    The pcluster venv runs this same interpreter (venv.py creates it with sys.executable),
    so the bytecode's version matches.
    """
    for target in targets(site_dir, patch):
        if target.suffix == ".py" and target.is_file():
            compileall.compile_file(str(target), quiet=2, force=True)


def targets(site_dir: Path, patch: PatchFile) -> list[Path]:
    """The files ``patch`` changes, under ``site_dir``."""
    return [
        site_dir / line.removeprefix("+++ b/").strip()
        for line in patch.path.read_text().splitlines()
        if line.startswith("+++ b/")
    ]


def state(site_dir: Path, patch: PatchFile) -> State:
    """Applied (a reverse dry run succeeds), not applied (a forward one does), or conflict."""
    if _run_patch(site_dir, patch, "--dry-run", "--reverse").returncode == 0:
        return State.APPLIED
    if _run_patch(site_dir, patch, "--dry-run").returncode == 0:
        return State.NOT_APPLIED
    return State.CONFLICT


def _check_version(site_dir: Path, patch: PatchFile) -> None:
    installed = installed_version(site_dir, patch.package)
    if installed != patch.version:
        raise PatchError(
            f"{patch.name} fits {patch.package} {patch.version}, but {site_dir} has "
            f"{patch.package} {installed}. Refusing to patch another version: port the patch "
            f"to {installed} (new file named for it) or pin {patch.package}=={patch.version} "
            "in pwbcluster.pcluster.venv"
        )


def _conflict(site_dir: Path, patch: PatchFile, action: str) -> PatchConflict:
    detail = _run_patch(site_dir, patch, "--dry-run").stdout.strip()
    return PatchConflict(
        f"cannot {action} {patch.name} in {site_dir}: {State.CONFLICT.value}.\n{detail}\n"
        "Recreate the venv (delete it and run `invoke pcluster.setup`) to start from clean files"
    )


@contextmanager
def _locked(site_dir: Path) -> Iterator[None]:
    with (site_dir / ".pwbcluster-patch.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _resolve(site_dir: Path | None, directory: Path | None) -> tuple[Path, list[PatchFile]]:
    if site_dir is None:
        ensure_venv(require_node=False)
        site_dir = site_packages()
    every = find_patches(directory)
    if not every:
        raise PatchError(f"no {PCLUSTER_PACKAGE} patches found in {directory or patches_dir()}")
    # patches/ may hold a set per supported version: only the installed version's applies.
    installed = installed_version(site_dir)
    patches = [p for p in every if p.version == installed]
    if not patches:
        versions = ", ".join(sorted({p.version for p in every}))
        raise PatchError(
            f"no patch in {directory or patches_dir()} fits {PCLUSTER_PACKAGE} {installed} "
            f"(installed in {site_dir}); there are patches for {PCLUSTER_PACKAGE} {versions}. "
            f"Refusing to run an unpatched or mispatched ParallelCluster: port them to "
            f"{installed} (new files named {PCLUSTER_PACKAGE}+{installed}+NNN+<what>.patch) or "
            "pin a version that has them in pwbcluster.pcluster.venv"
        )
    return site_dir, patches


def apply(
    site_dir: Path | None = None, directory: Path | None = None, dry_run: bool = False
) -> list[PatchResult]:
    """Apply every patch not yet applied; a no-op for those already applied."""
    site_dir, patches = _resolve(site_dir, directory)
    results = []
    with _locked(site_dir):
        for patch in patches:
            _check_version(site_dir, patch)
            before = state(site_dir, patch)
            if before is State.CONFLICT:
                raise _conflict(site_dir, patch, "apply")
            if before is State.APPLIED:
                results.append(PatchResult(patch, before, before, changed=False))
                continue
            if dry_run:
                results.append(PatchResult(patch, before, before, False, State.APPLIED))
                continue
            run = _run_patch(site_dir, patch)
            if run.returncode != 0:
                raise PatchError(f"applying {patch.name} failed:\n{run.stdout}{run.stderr}")
            log.info("applied %s to %s", patch.name, site_dir)
            results.append(PatchResult(patch, before, state(site_dir, patch), changed=True))
    return results


def revert(
    site_dir: Path | None = None, directory: Path | None = None, dry_run: bool = False
) -> list[PatchResult]:
    """Revert applied patches, last first; the files come back byte for byte."""
    site_dir, patches = _resolve(site_dir, directory)
    results = []
    with _locked(site_dir):
        for patch in reversed(patches):
            _check_version(site_dir, patch)
            before = state(site_dir, patch)
            if before is State.CONFLICT:
                raise _conflict(site_dir, patch, "revert")
            if before is State.NOT_APPLIED:
                results.append(PatchResult(patch, before, before, changed=False))
                continue
            if dry_run:
                results.append(PatchResult(patch, before, before, False, State.NOT_APPLIED))
                continue
            run = _run_patch(site_dir, patch, "--reverse")
            if run.returncode != 0:
                raise PatchError(f"reverting {patch.name} failed:\n{run.stdout}{run.stderr}")
            log.info("reverted %s in %s", patch.name, site_dir)
            results.append(PatchResult(patch, before, state(site_dir, patch), changed=True))
    return results


def check(site_dir: Path | None = None, directory: Path | None = None) -> list[PatchResult]:
    """Report each patch's state; PatchError when any is not applied or conflicts."""
    site_dir, patches = _resolve(site_dir, directory)
    results = []
    for patch in patches:
        _check_version(site_dir, patch)
        now = state(site_dir, patch)
        results.append(PatchResult(patch, now, now, changed=False))
    bad = [r for r in results if r.after is not State.APPLIED]
    if bad:
        raise PatchError(
            "\n".join(r.describe() for r in results) + "\nRun `invoke patch.apply` to apply them."
        )
    return results


def ensure_patched() -> Path:
    """Create the venv if needed and apply the patches (idempotent); return site-packages.

    Files that match neither a patch nor ParallelCluster's own (a venv patched by an
    earlier version of a patch) are put back by reinstalling the package, once."""
    ensure_venv()
    site_dir = site_packages()
    try:
        results = apply(site_dir)
    except PatchConflict as conflict:
        log.warning("%s", str(conflict).splitlines()[0])
        reinstall_pcluster()
        results = apply(site_dir)
    for result in results:
        if result.changed:
            log.info("%s", result.describe())
    return site_dir
