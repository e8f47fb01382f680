"""Fingerprint of everything that goes into the image.

The image is rebuilt only when this changes. It covers the image section of the merged
config (parsed values, so comments and key order do not count), the bytes of every
script under ``image/`` (except image.yaml itself, already covered by its parsed
values) and the parent image. Paths are relative and sorted, so the fingerprint is the
same on every machine.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

EXCLUDED = {"image.yaml"}


def image_files(image_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in image_dir.rglob("*")
        if p.is_file() and p.name not in EXCLUDED and "__pycache__" not in p.parts
    )


def image_fingerprint(image_section: dict[str, Any], image_dir: Path, parent_image: str) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(image_section, sort_keys=True, default=str).encode())
    digest.update(b"\0parent\0" + parent_image.encode())
    for path in image_files(image_dir):
        rel = path.relative_to(image_dir).as_posix()
        digest.update(b"\0file\0" + rel.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
