"""Debian root file systems built with debootstrap, one per suite and package list, cached.

    python -m pwbcluster.lab.rootfs build trixie [--package P ...] [--cache DIR]
    python -m pwbcluster.lab.rootfs path trixie     # the cached root, or exit 1
    python -m pwbcluster.lab.rootfs list
    python -m pwbcluster.lab.rootfs resolve trixie  # "native", or the root (built if absent)

A root is ``<cache>/<suite>-<hash>``, the hash taken over the suite, the sorted package
list and ``BUILDER_VERSION`` (so a change to either builds a new root beside the old one).
It is built in a temporary directory beside it and renamed into place only once
debootstrap has finished and the root was checked, so a half-built root is never used; a
lock file serialises two runs that want the same root (the second waits, then uses what
the first built). debootstrap runs in a private mount namespace, so the /proc and /sys it
mounts in the target vanish with it even when it is killed.

The mirror is the host's own (``/etc/apt/sources.list.d/*.sources`` or ``sources.list``),
or ``PWBCLUSTER_DEBIAN_MIRROR``. Needs root and debootstrap (requirements/apt-test.txt).
Used by the controller-HA matrix (tests/ha, nox session ``ha_versions``) and, later, the
cluster lab's node roots.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pwbcluster.errors import MissingDependency, ToolkitError

log = logging.getLogger(__name__)

# Bump when the way a root is built changes: roots built by an older builder are not used.
BUILDER_VERSION = "1"
DEFAULT_CACHE = Path("/var/cache/pwbcluster/rootfs")
MARKER = ".pwbcluster-rootfs.json"
# Slurm's daemons and clients, munge, and what cluster/ha's scripts call (bash, python3's
# standard library, ip; coreutils, findutils, diffutils, mawk and util-linux's setpriv are
# in every minbase root).
SLURM_PACKAGES = (
    "slurmctld",
    "slurmd",
    "slurmdbd",
    "slurm-client",
    "munge",
    "python3",
    "iproute2",
)
# The Slurm matrix: Debian 12, 13 and testing (22.05, 24.11, 26.05 when written).
MATRIX = ("bookworm", "trixie", "forky")
SUITE_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


class RootfsError(ToolkitError):
    """A root file system could not be built or found."""


@dataclass(frozen=True)
class RootSpec:
    suite: str
    packages: tuple[str, ...] = SLURM_PACKAGES

    def __post_init__(self) -> None:
        if not SUITE_NAME.match(self.suite):
            raise RootfsError(f"suite {self.suite!r} is not a Debian suite name (e.g. trixie)")
        bad = [p for p in self.packages if not PACKAGE_NAME.match(p)]
        if bad:
            raise RootfsError(f"not Debian package names: {', '.join(bad)}")

    @property
    def key(self) -> str:
        text = "\n".join([BUILDER_VERSION, self.suite, *sorted(set(self.packages))])
        return f"{self.suite}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def cache_dir() -> Path:
    return Path(os.environ.get("PWBCLUSTER_ROOTFS_CACHE", str(DEFAULT_CACHE)))


# -- the host's mirror -------------------------------------------------------------------


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    stanza: dict[str, str] = {}
    key = ""
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if stanza:
                yield stanza
            stanza, key = {}, ""
        elif line[0] in " \t" and key:
            stanza[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            stanza[key] = value.strip()


def host_mirrors(apt_dir: Path = Path("/etc/apt")) -> list[str]:
    """The Debian archive URIs of the host's apt sources (not security, not updates),
    in the order apt reads them."""
    found: list[str] = []
    files = sorted((apt_dir / "sources.list.d").glob("*.sources"))
    for path in files:
        for stanza in _deb822_stanzas(path.read_text(errors="replace")):
            if "deb" not in stanza.get("types", "").split():
                continue
            if stanza.get("enabled", "yes").lower() == "no":
                continue
            suites = stanza.get("suites", "").split()
            if not suites or all("security" in s or "/" in s for s in suites):
                continue
            found += stanza.get("uris", "").split()
    lists = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in lists:
        with contextlib.suppress(OSError):
            for line in path.read_text(errors="replace").splitlines():
                words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb" and "security" not in words[2]:
                    found.append(words[1])
    uris = [u for u in found if u.startswith(("http://", "https://", "file:/"))]
    return [u for u in uris if "security" not in u]


def mirror() -> str:
    chosen = os.environ.get("PWBCLUSTER_DEBIAN_MIRROR") or next(iter(host_mirrors()), "")
    if not chosen:
        raise RootfsError(
            "no Debian mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list: "
            "set PWBCLUSTER_DEBIAN_MIRROR to one"
        )
    return chosen


# -- native or chroot --------------------------------------------------------------------


def host_codename(os_release: Path = Path("/etc/os-release")) -> str:
    with contextlib.suppress(OSError):
        for line in os_release.read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return ""


def package_version(package: str, root: Path | None = None) -> str:
    """The installed Debian version of a package on the host or in a root, or ''."""
    argv = ["dpkg-query", "-W", "-f=${Status} ${Version}", package]
    if root is not None:
        argv[1:1] = [f"--admindir={root / 'var/lib/dpkg'}"]
    proc = subprocess.run(argv, capture_output=True, text=True)
    words = proc.stdout.split()
    return words[-1] if proc.returncode == 0 and "installed" in words[:3] else ""


def runs_natively(suite: str) -> bool:
    """The suite is the host's own and the host has its Slurm installed: no chroot."""
    return suite == host_codename() and bool(package_version("slurmctld"))


# -- building ----------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path, say: Callable[[str], None]) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another run is building this root ({path}): waiting for it")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _debootstrap_script(suite: str) -> list[str]:
    """debootstrap knows a suite by its script; a suite newer than the host's debootstrap
    (forky on Debian 12) is built with sid's, which every Debian suite since 2005 shares."""
    scripts = Path("/usr/share/debootstrap/scripts")
    if (scripts / suite).exists():
        return []
    return [str(scripts / "sid")]


def built(spec: RootSpec, cache: Path | None = None) -> Path | None:
    root = (cache or cache_dir()) / spec.key
    return root if (root / MARKER).is_file() else None


def info(root: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((root / MARKER).read_text())
    return data


def ensure(
    spec: RootSpec,
    cache: Path | None = None,
    say: Callable[[str], None] | None = None,
) -> Path:
    """The cached root for `spec`, built first when absent. Returns its path."""
    say = say or (lambda line: print(f"[rootfs] {line}", file=sys.stderr, flush=True))
    cache = cache or cache_dir()
    done = built(spec, cache)
    if done is not None:
        return done
    if os.geteuid() != 0:
        raise RootfsError(f"building the {spec.suite} root needs root (debootstrap, chroot)")
    if shutil.which("debootstrap") is None:
        raise MissingDependency(
            "debootstrap is not installed: run `bin/setup --test` (Debian package debootstrap)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / f".{spec.key}.lock", say):
        done = built(spec, cache)
        if done is not None:
            say(f"{spec.suite}: built by the other run: {done}")
            return done
        for stale in cache.glob(f".{spec.key}.build-*"):
            say(f"removing an unfinished build: {stale}")
            _remove_tree(stale)
        return _build(spec, cache, say)


def _remove_tree(path: Path) -> None:
    """Never through a mount: builds run in their own mount namespace, but check anyway."""
    with open("/proc/self/mountinfo") as handle:
        mounted = [line.split()[4] for line in handle]
    inside = [m for m in mounted if m == str(path) or m.startswith(f"{path}/")]
    if inside:
        raise RootfsError(f"{path} has file systems mounted in it ({inside[0]}): unmount them")
    shutil.rmtree(path, ignore_errors=True)


def _build(spec: RootSpec, cache: Path, say: Callable[[str], None]) -> Path:
    source = mirror()
    work = Path(tempfile.mkdtemp(prefix=f".{spec.key}.build-", dir=cache))
    work.chmod(0o755)
    argv = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(sorted(set(spec.packages)))}",
        spec.suite,
        str(work),
        source,
        *_debootstrap_script(spec.suite),
    ]
    say(f"{spec.suite}: debootstrap into {work} (takes minutes; progress every 15 s)")
    started = time.monotonic()
    last_said = started
    tail: list[str] = []
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail = [*tail[-19:], line]
            now = time.monotonic()
            if line.startswith(("E:", "W:")) or now - last_said >= 15:
                say(f"{spec.suite}: {now - started:4.0f} s  {line}")
                last_said = now
        if proc.wait() != 0:
            raise RootfsError(
                f"debootstrap {spec.suite} failed ({proc.returncode}); its last lines:\n"
                + "\n".join(tail)
                + f"\n(full log: {work}/debootstrap/debootstrap.log, removed)"
            )
        seconds = time.monotonic() - started
        _finish(work, spec, seconds)
    except BaseException:
        _remove_tree(work)
        raise
    root = cache / spec.key
    work.rename(root)
    say(f"{spec.suite}: built in {seconds:.0f} s: {root} (Slurm {info(root)['slurm']})")
    return root


def _finish(work: Path, spec: RootSpec, seconds: float) -> None:
    """Check the root holds what was asked, and make the files a lab host binds over."""
    missing = [p for p in spec.packages if not package_version(p, work)]
    if missing:
        raise RootfsError(f"the {spec.suite} root lacks {', '.join(missing)} after debootstrap")
    for name in ("etc/hosts", "etc/hostname"):
        (work / name).touch(exist_ok=True)
    data = {
        "suite": spec.suite,
        "packages": sorted(set(spec.packages)),
        "builder": BUILDER_VERSION,
        "slurm": package_version("slurmctld", work),
        "build_seconds": round(seconds, 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (work / MARKER).write_text(json.dumps(data, indent=2) + "\n")


# -- command line ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pwbcluster.lab.rootfs",
        description="Debian root file systems (debootstrap, minbase), cached per suite "
        "and package list.",
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help=f"cache directory [{DEFAULT_CACHE}]"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("build", "build the root when absent, print its path"),
        ("path", "print the cached root's path; exit 1 when it is not built"),
        (
            "resolve",
            "print 'native' when the host's own Slurm is the suite's, else build the root "
            "when absent and print its path",
        ),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("suite", help="Debian suite, e.g. bookworm, trixie, forky")
        cmd.add_argument(
            "--package",
            action="append",
            default=None,
            help=f"package to include (repeatable) [{' '.join(SLURM_PACKAGES)}]",
        )
    sub.add_parser("list", help="list the cached roots")
    args = parser.parse_args(argv)
    cache = args.cache or cache_dir()
    try:
        if args.command == "list":
            for marker in sorted(cache.glob(f"*/{MARKER}")):
                data = info(marker.parent)
                print(
                    f"{marker.parent}  {data['suite']}  Slurm {data['slurm']}  "
                    f"built in {data['build_seconds']} s"
                )
            return 0
        spec = RootSpec(args.suite, tuple(args.package or SLURM_PACKAGES))
        if args.command == "resolve" and runs_natively(spec.suite):
            print("native")
            return 0
        root = ensure(spec, cache) if args.command != "path" else built(spec, cache)
        if root is None:
            print(f"no {spec.suite} root in {cache} (build it with `build {spec.suite}`)")
            return 1
        print(root)
        return 0
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
