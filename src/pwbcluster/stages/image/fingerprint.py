"""Fingerprint of everything that goes into the image.

The image is rebuilt only when this changes. It covers:

- the ``image:`` section of the merged config as parsed values (comments, key order
  and YAML spelling do not count);
- the env file rendered from it (so a change of a vendor download location counts);
- the bytes of the files ``image/manifest.txt`` lists, which are exactly the ones
  uploaded (``image.yaml`` is covered by its parsed values; nothing unlisted counts);
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

from pwbcluster.files_manifest import manifest_files
from pwbcluster.stages.image.envfile import image_env, render_env

# v2: the files are those image/manifest.txt lists, no longer every file in image/.
FORMAT = "pwbcluster-image-fingerprint-v2"


def image_files(image_dir: Path) -> list[Path]:
    """The files ``image/manifest.txt`` lists (uploaded for build-image), sorted."""
    return sorted(manifest_files(image_dir), key=lambda p: p.relative_to(image_dir).as_posix())


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
