"""Declared file sets: ``image/manifest.txt`` and ``cluster/manifest.txt``.

What the image build ships (and what its fingerprint covers) and what the nodes receive is
the list in the folder's manifest, not "every file that happens to be there": a README or
an editor's swap file dropped into ``image/`` must not cost an hour-long rebuild, and
nothing unlisted reaches a node. A listed file that is missing is an error; a script in the
folder that the manifest does not list is a warning (it is probably meant to be listed).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pwbcluster.errors import ToolkitError

log = logging.getLogger(__name__)

MANIFEST = "manifest.txt"


class ManifestError(ToolkitError):
    """A manifest names a file that does not exist, or a path outside its folder."""


def manifest_files(folder: Path) -> list[Path]:
    """The files ``folder/manifest.txt`` lists, in its order, checked to exist."""
    manifest = folder / MANIFEST
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ManifestError(
            f"{manifest} is missing: it lists the files of {folder.name}/ that are shipped"
        ) from None
    found: list[Path] = []
    problems: list[str] = []
    root = folder.resolve()
    for number, raw in enumerate(lines, start=1):
        entry = raw.split("#", 1)[0].strip()
        if not entry:
            continue
        path = (folder / entry).resolve()
        if root not in path.parents:
            problems.append(f"{manifest}:{number} {entry}: outside {folder.name}/")
        elif not path.is_file():
            problems.append(f"{manifest}:{number} {entry}: no such file")
        elif path not in found:
            found.append(path)
    if problems:
        raise ManifestError(
            "\n".join(problems) + f"\nFix the entry or add the file (see {manifest})."
        )
    listed = set(found)
    unlisted = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.sh")
        if p.resolve() not in listed and "__pycache__" not in p.parts
    )
    if unlisted:
        log.warning(
            "%s does not list %s: not shipped (add it to the manifest if it should be)",
            manifest,
            ", ".join(unlisted),
        )
    return [folder / p.relative_to(root) for p in found]
