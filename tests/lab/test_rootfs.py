"""The root builder without the network: the host's mirror from its apt sources, the cache
key, and ensure() with a stand-in debootstrap that builds, fails or is raced."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from pwbcluster.errors import MissingDependency
from pwbcluster.lab import rootfs

MIRROR = "http://mirror.invalid/debian"


def test_mirror_from_deb822_sources_skips_security_and_disabled(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "a.sources").write_text(
        "Types: deb-src\nURIs: http://src.invalid/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://off.invalid/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb\n# a comment\nURIs: http://sec.invalid/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        f"Types: deb\nURIs: {MIRROR}\nSuites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert rootfs.host_mirrors(tmp_path) == [MIRROR]


def test_mirror_from_one_line_sources_list(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.invalid/debian bookworm main\n"
        "deb http://sec.invalid/debian-security bookworm-security main\n"
        f"deb [signed-by=/usr/share/keyrings/k.gpg arch=amd64] {MIRROR} trixie main\n"
    )
    assert rootfs.host_mirrors(tmp_path) == [MIRROR]


def test_no_mirror_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PWBCLUSTER_DEBIAN_MIRROR", raising=False)
    monkeypatch.setattr(rootfs, "host_mirrors", lambda: [])
    with pytest.raises(rootfs.RootfsError, match="PWBCLUSTER_DEBIAN_MIRROR"):
        rootfs.mirror()


def test_key_changes_with_packages_and_builder_not_with_their_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = rootfs.RootSpec("trixie", ("munge", "python3"))
    before = a.key
    assert a.key == rootfs.RootSpec("trixie", ("python3", "munge", "munge")).key
    assert a.key.startswith("trixie-")
    assert a.key != rootfs.RootSpec("trixie", ("munge",)).key
    assert a.key != rootfs.RootSpec("forky", ("munge", "python3")).key
    monkeypatch.setattr(rootfs, "BUILDER_VERSION", "999")
    assert rootfs.RootSpec("trixie", ("munge", "python3")).key != before


@pytest.mark.parametrize("suite", ["Trixie", "../etc", "tri xie", ""])
def test_bad_suite_names_are_refused(suite: str) -> None:
    with pytest.raises(rootfs.RootfsError, match="not a Debian suite"):
        rootfs.RootSpec(suite)


def test_a_suite_newer_than_debootstrap_uses_sids_script() -> None:
    assert rootfs._debootstrap_script("no-such-suite-yet") == ["/usr/share/debootstrap/scripts/sid"]


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="ensure() builds as root only")

FAKE_DEBOOTSTRAP = """#!/bin/sh
# Stand-in for debootstrap: writes a dpkg status naming the --include'd packages.
set -e
for arg; do
  case "$arg" in --include=*) pkgs=$(echo "${arg#--include=}" | tr , ' ');; esac
done
target=$4
[ -n "$FAIL" ] && { echo "E: stand-in failure"; mkdir -p "$target/half"; exit 1; }
[ -n "$SLOW" ] && sleep "$SLOW"
mkdir -p "$target/var/lib/dpkg" "$target/etc"
for p in $pkgs slurmctld; do
  printf 'Package: %s\\nStatus: install ok installed\\nVersion: 9.9-1\\nArchitecture: all\\n\\n' "$p"
done > "$target/var/lib/dpkg/status"
echo "$*" >> "$LOG"
echo "I: Base system installed successfully."
"""


@pytest.fixture
def fake_debootstrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "debootstrap"
    tool.write_text(FAKE_DEBOOTSTRAP)
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("PWBCLUSTER_DEBIAN_MIRROR", MIRROR)
    monkeypatch.setenv("LOG", str(tmp_path / "calls.log"))
    return tmp_path / "calls.log"


@needs_root
def test_ensure_builds_once_then_uses_the_cache(tmp_path: Path, fake_debootstrap: Path) -> None:
    spec = rootfs.RootSpec("forky", ("munge", "python3"))
    said: list[str] = []
    root = rootfs.ensure(spec, tmp_path / "cache", said.append)
    assert root == tmp_path / "cache" / spec.key
    data = json.loads((root / rootfs.MARKER).read_text())
    assert data["suite"] == "forky" and data["slurm"] == "9.9-1"
    assert (root / "etc" / "hosts").is_file()
    call = fake_debootstrap.read_text().split()
    assert call[:2] == ["--variant=minbase", "--include=munge,python3"]
    assert call[4] == MIRROR
    assert any("built in" in line for line in said)
    assert rootfs.ensure(spec, tmp_path / "cache", said.append) == root
    assert len(fake_debootstrap.read_text().splitlines()) == 1  # not built again
    assert [p.name for p in (tmp_path / "cache").iterdir() if ".build-" in p.name] == []


@needs_root
def test_failed_build_leaves_nothing_usable(
    tmp_path: Path, fake_debootstrap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIL", "1")
    spec = rootfs.RootSpec("trixie", ("munge",))
    with pytest.raises(rootfs.RootfsError, match="stand-in failure"):
        rootfs.ensure(spec, tmp_path / "cache", lambda _: None)
    assert rootfs.built(spec, tmp_path / "cache") is None
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


@needs_root
def test_missing_package_after_debootstrap_is_not_cached(
    tmp_path: Path, fake_debootstrap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = rootfs.RootSpec("trixie", ("munge",))
    monkeypatch.setattr(rootfs, "package_version", lambda p, root=None: "" if p == "munge" else "1")
    with pytest.raises(rootfs.RootfsError, match="lacks munge"):
        rootfs.ensure(spec, tmp_path / "cache", lambda _: None)
    assert rootfs.built(spec, tmp_path / "cache") is None


@needs_root
def test_two_runs_at_once_build_once(
    tmp_path: Path, fake_debootstrap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLOW", "1")
    spec = rootfs.RootSpec("trixie", ("munge",))
    said: list[str] = []
    results: list[Path] = []
    runs = [
        threading.Thread(target=lambda: results.append(rootfs.ensure(spec, tmp_path, said.append)))
        for _ in range(2)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=60)
    assert len(results) == 2 and results[0] == results[1]
    assert len(fake_debootstrap.read_text().splitlines()) == 1
    assert any("waiting for it" in line for line in said)


def test_missing_debootstrap_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rootfs.os, "geteuid", lambda: 0)
    monkeypatch.setattr(rootfs.shutil, "which", lambda _: None)
    with pytest.raises(MissingDependency, match="bin/setup --test"):
        rootfs.ensure(rootfs.RootSpec("trixie"), tmp_path, lambda _: None)
