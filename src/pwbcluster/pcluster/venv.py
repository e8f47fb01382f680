"""ParallelCluster in its own virtual environment, at one pinned version.

pcluster pins its own boto3, CDK v1 and jsii; Pulumi pins others. They never meet:
the toolkit creates ``.venvs/pcluster-<version>/`` under the project root on first use
(``invoke pcluster.setup``, or any task that needs pcluster) and talks to it only
through subprocesses. ``moto`` is installed beside pcluster so that validation and
template synthesis can run offline (see ``pwbcluster.pcluster.offline``).

Creating the venv takes about 40 s (182 MB); afterwards ``ensure_venv`` returns at
once. A marker file records exactly what was installed: change ``REQUIREMENTS`` and
the next call reinstalls. A file lock keeps two processes from building it at once.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pwbcluster.errors import MissingDependency, PclusterError

log = logging.getLogger(__name__)

# The one place the ParallelCluster version is named. The patch files in patches/ are
# named for it too (aws-parallelcluster+<version>+NNN+<what>.patch).
PCLUSTER_VERSION = "3.16.1"
PCLUSTER_PACKAGE = "aws-parallelcluster"

# What the pcluster venv holds: pcluster itself, and moto to stand in for AWS when
# validating and synthesising offline.
REQUIREMENTS: tuple[str, ...] = (
    f"{PCLUSTER_PACKAGE}=={PCLUSTER_VERSION}",
    "moto==5.2.5",
)

# jsii 1.85 (used by pcluster's CDK v1) supports these Node majors and up.
MIN_NODE_MAJOR = 14
PIP_TIMEOUT_SECONDS = 900

MARKER = ".pwbcluster-ready"
ENV_VENVS_DIR = "PWBCLUSTER_VENVS_DIR"


def project_root() -> Path:
    """The checkout this package is installed from (editable install), else the cwd."""
    here = Path(__file__).resolve()
    for candidate in here.parents:
        if (candidate / "pyproject.toml").is_file() and (candidate / "src").is_dir():
            return candidate
    return Path.cwd()


def venvs_dir() -> Path:
    override = os.environ.get(ENV_VENVS_DIR)
    return Path(override) if override else project_root() / ".venvs"


def venv_path(version: str = PCLUSTER_VERSION) -> Path:
    return venvs_dir() / f"pcluster-{version}"


def pcluster_python() -> Path:
    """The Python interpreter of the pcluster venv (not created here: see ensure_venv)."""
    return venv_path() / "bin" / "python"


def pcluster_cli() -> list[str]:
    """The argv prefix that runs the ``pcluster`` CLI from the pinned venv."""
    return [str(venv_path() / "bin" / "pcluster")]


def _requirements_digest() -> str:
    text = "\n".join((sys.version.split()[0], *REQUIREMENTS))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_ready() -> bool:
    marker = venv_path() / MARKER
    return marker.is_file() and marker.read_text().strip() == _requirements_digest()


def node_version() -> tuple[int, str]:
    """(major, full version) of the ``node`` on PATH; MissingDependency if absent/too old."""
    node = shutil.which("node") or shutil.which("nodejs")
    hint = (
        "Node.js is needed to synthesise CloudFormation with pcluster's AWS CDK: "
        "install it (Debian: `apt-get install nodejs`) and run again"
    )
    if node is None:
        raise MissingDependency(f"`node` not found on PATH. {hint}")
    try:
        out = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise MissingDependency(f"`{node} --version` failed ({exc}). {hint}") from exc
    match = re.match(r"v?(\d+)\.", out)
    if not match:
        raise MissingDependency(f"cannot read the Node.js version from {out!r}. {hint}")
    major = int(match.group(1))
    if major < MIN_NODE_MAJOR:
        raise MissingDependency(f"Node.js {out} is too old (need >= {MIN_NODE_MAJOR}). {hint}")
    return major, out


def _run_logged(argv: list[str], logfile: Path, what: str) -> None:
    log.info("%s (log: %s)", what, logfile)
    with logfile.open("a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        try:
            subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, check=True, timeout=PIP_TIMEOUT_SECONDS
            )
        except subprocess.CalledProcessError as exc:
            tail = "".join(logfile.read_text().splitlines(keepends=True)[-15:])
            raise PclusterError(
                f"{what} failed (exit {exc.returncode}); last lines of {logfile}:\n{tail}"
                "Check network access to PyPI and run `invoke pcluster.setup` again."
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise PclusterError(
                f"{what} did not finish in {PIP_TIMEOUT_SECONDS} s; see {logfile}"
            ) from exc


def ensure_venv(require_node: bool = True) -> Path:
    """Create (once) and return the pcluster venv; idempotent and safe to call concurrently.

    With ``require_node`` (the default) a missing Node.js is a ``MissingDependency``:
    schema validation works without it, template synthesis does not.
    """
    if require_node:
        node_version()
    venv = venv_path()
    if is_ready():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv.parent / f".pcluster-{PCLUSTER_VERSION}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_ready():  # another process finished it while we waited
            return venv
        started = time.perf_counter()
        logfile = venv.parent / f"pcluster-{PCLUSTER_VERSION}.log"
        logfile.write_text("")
        if venv.exists():
            log.info("pcluster venv at %s is incomplete or outdated: recreating it", venv)
            shutil.rmtree(venv)
        say(
            f"pcluster: building ParallelCluster {PCLUSTER_VERSION}'s environment (first use, "
            f"once; log: {logfile})"
        )
        python = str(venv / "bin" / "python")
        if (uv := uv_command()) is not None:
            # The same fast installer as the toolkit's own venv (bin/setup): seconds, not a
            # minute. pip stays inside the venv for what runs there later.
            _run_logged(
                [*uv, "venv", "--seed", "--python", sys.executable, str(venv)],
                logfile,
                f"creating venv {venv.name} (uv)",
            )
            _run_logged(
                # Bytecode written now: with PYTHONDONTWRITEBYTECODE set (as here) every
                # worker start would compile ParallelCluster's imports again (seconds each).
                [*uv, "pip", "install", "--compile-bytecode", "--python", python, *REQUIREMENTS],
                logfile,
                f"installing {', '.join(REQUIREMENTS)} (uv)",
            )
        else:
            _run_logged(
                [sys.executable, "-m", "venv", str(venv)], logfile, f"creating venv {venv.name}"
            )
            _run_logged(
                [python, "-m", "pip", "install", "--disable-pip-version-check", "-q", "pip>=25.1"],
                logfile,
                "upgrading pip",
            )
            _run_logged(
                [python, "-m", "pip", "install", "--disable-pip-version-check", *REQUIREMENTS],
                logfile,
                f"installing {', '.join(REQUIREMENTS)} (about a minute, once)",
            )
        (venv / MARKER).write_text(_requirements_digest() + "\n")
        log.info("pcluster venv ready in %.0f s: %s", time.perf_counter() - started, venv)
        say(f"pcluster: environment ready in {time.perf_counter() - started:.0f} s")
    return venv


def uv_command() -> list[str] | None:
    """uv, as the toolkit's venv has it (bin/setup installs it), or None (pip then)."""
    if os.environ.get("PWBCLUSTER_NO_UV"):
        return None
    beside = Path(sys.executable).with_name("uv")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("uv")
    return [found] if found else None


def say(message: str) -> None:
    """Progress a person waiting should see (the log gets it too)."""
    log.info("%s", message)
    print(message, file=sys.stderr, flush=True)


def reinstall_pcluster() -> None:
    """Put ParallelCluster's own files back (e.g. patched by an earlier patch version)."""
    venv = ensure_venv(require_node=False)
    logfile = venv.parent / f"pcluster-{PCLUSTER_VERSION}.log"
    _run_logged(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "--force-reinstall",
            "--no-deps",
            f"{PCLUSTER_PACKAGE}=={PCLUSTER_VERSION}",
        ],
        logfile,
        f"reinstalling {PCLUSTER_PACKAGE} {PCLUSTER_VERSION} to start from its own files",
    )


def site_packages() -> Path:
    """The venv's site-packages directory (where the pcluster package is patched)."""
    python = pcluster_python()
    if not python.exists():
        raise MissingDependency(
            f"the pcluster venv {venv_path()} does not exist: run `invoke pcluster.setup`"
        )
    return _purelib(str(python))


@functools.cache
def _purelib(python: str) -> Path:
    """An interpreter's purelib directory (asked once per process: a plan needs it three
    times, and each ask starts that interpreter)."""
    out = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    return Path(out)
