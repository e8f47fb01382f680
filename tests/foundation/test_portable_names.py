"""Every tracked path can be checked out on Windows and macOS too."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Windows refuses these as a file or folder name, with any extension.
RESERVED = re.compile(r"^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$", re.IGNORECASE)


def tracked() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return [p for p in out.decode().split("\0") if p]


def test_no_reserved_or_case_clashing_names() -> None:
    paths = tracked()
    assert paths, "git ls-files listed nothing"
    reserved = [p for p in paths if any(RESERVED.match(part) for part in p.split("/"))]
    assert reserved == []
    lowered: dict[str, str] = {}
    clashes = []
    for path in paths:
        other = lowered.setdefault(path.lower(), path)
        if other != path:
            clashes.append((other, path))
    assert clashes == []


def test_the_pattern_catches_what_windows_refuses() -> None:
    assert RESERVED.match("aux.yaml") and RESERVED.match("AUX") and RESERVED.match("com1.txt")
    assert not RESERVED.match("auxiliary.yaml") and not RESERVED.match("aux_tasks.py")
