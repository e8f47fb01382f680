"""Patch safety on a copy of the venv's files: idempotent, byte-exact revert, version check."""

from __future__ import annotations

import base64
import hashlib
import shutil
from pathlib import Path

import pytest

from pwbcluster.errors import PatchError
from pwbcluster.pcluster import patch
from pwbcluster.pcluster.venv import PCLUSTER_VERSION

pytestmark = pytest.mark.pcluster


def touched(site: Path) -> list[str]:
    return [
        line.removeprefix("+++ b/").strip()
        for p in patch.find_patches()
        for line in p.path.read_text().splitlines()
        if line.startswith("+++ b/")
    ]


def snapshot(site: Path) -> dict[str, bytes]:
    return {rel: (site / rel).read_bytes() for rel in touched(site)}


def wheel_hashes(site: Path) -> dict[str, str]:
    """sha256 of each file as pip installed it, from the dist-info RECORD."""
    (record,) = site.glob("aws_parallelcluster-*.dist-info/RECORD")
    out = {}
    for line in record.read_text().splitlines():
        path, digest, _ = line.rsplit(",", 2)
        if digest.startswith("sha256="):
            out[path] = digest.removeprefix("sha256=")
    return out


def record_digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_the_venv_is_patched(pcluster_site: Path) -> None:
    results = patch.check(pcluster_site)
    assert [r.after for r in results] == [patch.State.APPLIED] * len(results)


def test_applying_twice_changes_nothing(patched_copy: Path) -> None:
    before = snapshot(patched_copy)
    (result,) = patch.apply(patched_copy)
    assert result.before is patch.State.APPLIED and not result.changed
    assert snapshot(patched_copy) == before


def test_revert_restores_the_installed_files_byte_for_byte(patched_copy: Path) -> None:
    patched = snapshot(patched_copy)
    hashes = wheel_hashes(patched_copy)
    assert all(record_digest(data) != hashes[rel] for rel, data in patched.items())

    (result,) = patch.revert(patched_copy)
    assert result.changed and result.after is patch.State.NOT_APPLIED
    reverted = snapshot(patched_copy)
    assert {rel: record_digest(data) for rel, data in reverted.items()} == {
        rel: hashes[rel] for rel in reverted
    }
    assert not list(patched_copy.rglob("*.orig")) and not list(patched_copy.rglob("*.rej"))

    with pytest.raises(PatchError, match="not applied"):
        patch.check(patched_copy)
    (again,) = patch.revert(patched_copy)
    assert not again.changed
    patch.apply(patched_copy)
    assert snapshot(patched_copy) == patched


def test_dry_run_changes_nothing(patched_copy: Path) -> None:
    patch.revert(patched_copy)
    before = snapshot(patched_copy)
    (result,) = patch.apply(patched_copy, dry_run=True)
    assert result.after is patch.State.NOT_APPLIED and not result.changed
    assert result.would_become is patch.State.APPLIED
    assert "dry run: would apply it" in result.describe()
    assert snapshot(patched_copy) == before


def test_another_pcluster_version_is_refused_naming_both(patched_copy: Path) -> None:
    patch.revert(patched_copy)
    (metadata,) = patched_copy.glob("aws_parallelcluster-*.dist-info/METADATA")
    metadata.write_text(
        metadata.read_text().replace(f"Version: {PCLUSTER_VERSION}", "Version: 3.17.0", 1)
    )
    before = snapshot(patched_copy)
    with pytest.raises(PatchError) as raised:
        patch.apply(patched_copy)
    assert f"aws-parallelcluster {PCLUSTER_VERSION}" in str(raised.value)
    assert "aws-parallelcluster 3.17.0" in str(raised.value)
    assert snapshot(patched_copy) == before


def test_files_that_changed_underneath_are_refused(patched_copy: Path) -> None:
    patch.revert(patched_copy)
    target = patched_copy / "pcluster/templates/login_nodes_stack.py"
    target.write_text(target.read_text().replace("port=22)", "port=2222)"))
    before = snapshot(patched_copy)
    with pytest.raises(PatchError, match="does not apply"):
        patch.apply(patched_copy)
    assert snapshot(patched_copy) == before


def test_each_version_gets_its_own_patches(patched_copy: Path, tmp_path: Path) -> None:
    """A patch for another version beside this version's is left alone, not refused."""
    mine = patch.find_patches()
    directory = tmp_path / "patches"
    directory.mkdir()
    for item in mine:
        shutil.copy(item.path, directory / item.name)
        other = item.name.replace(f"+{PCLUSTER_VERSION}+", "+9.9.9+")
        (directory / other).write_text("not a patch for this version\n")
    results = patch.apply(patched_copy, directory)
    assert [r.patch.name for r in results] == [p.name for p in mine]
    assert all(r.after is patch.State.APPLIED for r in results)


def test_files_of_an_earlier_patch_version_are_reinstalled_then_patched(
    patched_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A venv patched by an earlier version of the patch matches neither the patch nor
    pcluster's own files: ensure_patched puts pcluster's files back, then patches."""
    patch.revert(patched_copy)
    pristine = snapshot(patched_copy)
    patch.apply(patched_copy)
    stale = patched_copy / "pcluster/templates/login_nodes_stack.py"
    stale.write_text(stale.read_text().replace("get_login_lb_health_path(self._config)", "None"))
    with pytest.raises(patch.PatchConflict):
        patch.apply(patched_copy)
    reinstalled: list[bool] = []

    def reinstall() -> None:  # what pip --force-reinstall does: the wheel's own files
        reinstalled.append(True)
        for rel, data in pristine.items():
            (patched_copy / rel).write_bytes(data)

    monkeypatch.setattr(patch, "ensure_venv", lambda: patched_copy)
    monkeypatch.setattr(patch, "site_packages", lambda: patched_copy)
    monkeypatch.setattr(patch, "reinstall_pcluster", reinstall)
    assert patch.ensure_patched() == patched_copy
    assert reinstalled == [True]
    assert [r.after for r in patch.check(patched_copy)] == [patch.State.APPLIED]


def test_patched_files_have_current_bytecode(patched_copy: Path) -> None:
    """With PYTHONDONTWRITEBYTECODE set, a .pyc left stale by the patch would make every
    worker start compile the file again: apply and revert write it anew."""
    import importlib.util

    def current(source: Path) -> bool:
        cached = Path(importlib.util.cache_from_source(str(source)))
        if not cached.is_file():
            return False
        header = cached.read_bytes()[:16]
        stat = source.stat()
        return (
            header[:4] == importlib.util.MAGIC_NUMBER
            and int.from_bytes(header[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
            and int.from_bytes(header[12:16], "little") == stat.st_size & 0xFFFFFFFF
        )

    sources = [patched_copy / rel for rel in touched(patched_copy) if rel.endswith(".py")]
    assert sources
    for step in (patch.revert, patch.apply):
        step(patched_copy)
        stale = [str(s) for s in sources if not current(s)]
        assert not stale, f"after {step.__name__}: stale or missing bytecode for {stale}"
