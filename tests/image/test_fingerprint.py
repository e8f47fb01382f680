"""The image fingerprint: stable for the same inputs, sensitive to every real change."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pwbcluster
from pwbcluster.config import load_config
from pwbcluster.files_manifest import ManifestError
from pwbcluster.stages.image.fingerprint import image_files, image_fingerprint
from pwbcluster.stages.image.service import fingerprint_for


def _fp(project: Path) -> str:
    return fingerprint_for(load_config(project / "config" / "example.yaml"))


def test_stable_across_runs_and_checkout_paths(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "another" / "checkout"
    shutil.copytree(project, elsewhere, ignore=shutil.ignore_patterns("another"))
    first = _fp(project)
    assert first == _fp(project)
    assert first == _fp(elsewhere)


def test_same_in_a_fresh_process_with_another_cwd_and_hash_seed(
    project: Path, tmp_path: Path
) -> None:
    code = (
        "import sys; from pwbcluster.config import load_config; "
        "from pwbcluster.stages.image.service import fingerprint_for; "
        "print(fingerprint_for(load_config(sys.argv[1])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(project / "config" / "example.yaml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            "PYTHONHASHSEED": "12345",
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            # The child must import the same pwbcluster as this process, not an install.
            "PYTHONPATH": str(Path(pwbcluster.__file__).resolve().parents[1]),
        },
        check=True,
    )
    assert out.stdout.strip() == _fp(project)


def test_comment_only_and_layout_edits_do_not_change_it(project: Path) -> None:
    before = _fp(project)
    path = project / "image" / "image.yaml"
    text = path.read_text()
    edited = text.replace("quarto:\n", "# a comment about Quarto\nquarto:   # trailing\n")
    edited = edited.replace("gpu:\n", "\n\n# spacing and a comment\ngpu:\n")
    assert edited != text
    path.write_text(edited + "# last line comment\n")
    assert _fp(project) == before


def test_a_version_change_changes_it(project: Path) -> None:
    before = _fp(project)
    path = project / "image" / "image.yaml"
    text = path.read_text()
    config = load_config(project / "config" / "example.yaml")
    old = str(config.data["image"]["apptainer"]["version"])
    path.write_text(text.replace(f"version: {old}", "version: 9.9.9"))
    assert _fp(project) != before


def test_a_script_change_changes_it_and_editor_droppings_do_not(project: Path) -> None:
    before = _fp(project)
    (project / "image" / ".install-r.sh.swp").write_bytes(b"swap")
    (project / "image" / "install-r.sh~").write_bytes(b"backup")
    assert _fp(project) == before
    script = project / "image" / "install-r.sh"
    script.write_bytes(script.read_bytes() + b"\n# one more line\n")
    assert _fp(project) != before


def test_parent_and_key_order(project: Path) -> None:
    image_dir = project / "image"
    section = dict(load_config(project / "config" / "example.yaml").data["image"])
    reordered = dict(reversed(list(section.items())))
    assert image_fingerprint(section, image_dir, "p") == image_fingerprint(
        reordered, image_dir, "p"
    )
    assert image_fingerprint(section, image_dir, "p") != image_fingerprint(section, image_dir, "q")
    names = [p.name for p in image_files(image_dir)]
    assert "image.yaml" not in names and "install-image.sh" in names


def test_only_the_manifest_counts_and_ships(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = _fp(project)
    (project / "image" / "README.md").write_text("notes for the team\n")
    (project / "image" / "docs").mkdir()
    (project / "image" / "docs" / "howto.txt").write_text("x\n")
    (project / "image" / "scratch.sh").write_text("#!/bin/bash\n")
    with caplog.at_level(logging.WARNING):
        assert _fp(project) == before
    assert "scratch.sh" in caplog.text  # an unlisted script is named, not shipped
    names = {p.name for p in image_files(project / "image")}
    assert "README.md" not in names and "scratch.sh" not in names and "howto.txt" not in names
    assert "install-image.sh" in names


def test_a_listed_file_that_is_missing_fails_clearly(project: Path) -> None:
    (project / "image" / "install-quarto.sh").unlink()
    with pytest.raises(ManifestError, match=r"manifest\.txt:\d+ install-quarto\.sh: no such file"):
        _fp(project)


def test_a_manifest_entry_outside_the_folder_is_refused(project: Path) -> None:
    manifest = project / "image" / "manifest.txt"
    manifest.write_text(manifest.read_text() + "../config/example.yaml\n")
    with pytest.raises(ManifestError, match="outside image/"):
        _fp(project)
