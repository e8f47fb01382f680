"""Fingerprint of everything that goes into the image.

The image is rebuilt only when this changes. It covers:

- the ``image:`` section of the merged config as parsed values (comments, key order
  and YAML spelling do not count);
- the env file rendered from it (so a change of a vendor download location counts);
- the bytes of every file under ``image/`` that is uploaded (``image.yaml`` is covered
  by its parsed values; editor droppings and caches are ignored);
- the parent image: an explicit AMI id, or the official ParallelCluster image named by
  pcluster version, OS and architecture (see ``parent.parent_spec``), so the fingerprint
  is known offline and ``--dry-run`` shows the real one.

Paths are relative and sorted and the hash uses no file metadata, so the fingerprint is
the same on every machine and in every checkout location.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pwbcluster.stages.image.envfile import image_env, render_env

FORMAT = "pwbcluster-image-fingerprint-v1"
EXCLUDED_NAMES = {"image.yaml"}
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache"}


def _shipped(path: Path, image_dir: Path) -> bool:
    rel = path.relative_to(image_dir)
    if path.name in EXCLUDED_NAMES or set(rel.parts) & EXCLUDED_PARTS:
        return False
    if any(part.startswith(".") for part in rel.parts):
        return False
    return not path.name.endswith(("~", ".swp", ".orig", ".rej"))


def image_files(image_dir: Path) -> list[Path]:
    """The files under ``image/`` that are uploaded for build-image, sorted."""
    return sorted(
        (p for p in image_dir.rglob("*") if p.is_file() and _shipped(p, image_dir)),
        key=lambda p: p.relative_to(image_dir).as_posix(),
    )


def image_fingerprint(image_section: dict[str, Any], image_dir: Path, parent_image: str) -> str:
    digest = hashlib.sha256(FORMAT.encode())
    digest.update(b"\0config\0" + json.dumps(image_section, sort_keys=True, default=str).encode())
    digest.update(b"\0env\0" + render_env(image_env(image_section)).encode())
    digest.update(b"\0parent\0" + parent_image.encode())
    for path in image_files(image_dir):
        rel = path.relative_to(image_dir).as_posix()
        digest.update(b"\0file\0" + rel.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
