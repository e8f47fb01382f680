"""A wheel of this project for the jump host, where ``pwb-users`` runs.

``invoke users.create`` runs ``pwb-users`` on the jump host through SSM, so the services
stage builds a wheel of the ``pwbcluster`` package, uploads it under the scripts bucket's
``jump/`` prefix and the jump host installs it at first boot.

The wheel is written here with ``zipfile`` rather than by a build backend: the package is
pure Python, and a hand-made wheel is byte-for-byte deterministic (sorted entries, fixed
timestamps and modes), takes a fraction of a second, writes nothing into the source tree
and needs neither network nor a newer setuptools than the toolkit's environment has. It
holds what setuptools would put in it (``[tool.setuptools]`` in pyproject.toml): every
module of every package under ``src/pwbcluster`` plus the package data (templates,
``py.typed``), and the ``[project.scripts]`` console scripts. Its metadata declares no
dependencies: the jump host installs it with ``--no-deps`` beside exactly the pinned
runtime of ``pwb-users`` (``TOOL_REQUIREMENTS``), not the toolkit's whole stack.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tomllib
import zipfile
from pathlib import Path
from typing import Any

from pwbcluster.errors import StageError

log = logging.getLogger(__name__)

PACKAGE = "pwbcluster"
# The runtime of pwb-users on the jump host, pinned to the versions the toolkit is tested
# with. A change here changes the jump host's user-data, which replaces the instance.
TOOL_REQUIREMENTS = ("ldap3==2.9.1", "boto3==1.44.8")
# Package data outside the modules, relative to the package (pyproject's package-data).
PACKAGE_DATA = ("templates", "py.typed")
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644 << 16


def project_root() -> Path:
    """The source tree this package runs from (``src/`` layout: three levels up)."""
    root = Path(__file__).resolve().parents[4]
    if not (root / "pyproject.toml").is_file() or not (root / "src" / PACKAGE).is_dir():
        raise StageError(
            f"the jump host's pwb-users wheel is built from the project's source tree, but "
            f"{root} has no pyproject.toml and src/{PACKAGE}: run the toolkit from its "
            "checkout (pip install -e .)"
        )
    return root


def _project(root: Path) -> dict[str, Any]:
    with (root / "pyproject.toml").open("rb") as handle:
        return dict(tomllib.load(handle)["project"])


def _in_a_package(src: Path, path: Path) -> bool:
    """A module counts when each directory from the package root down is a package."""
    directory = path.parent
    while directory != src:
        if not (directory / "__init__.py").is_file():
            return False
        directory = directory.parent
    return True


def package_files(src: Path) -> list[tuple[str, Path]]:
    """(archive name, file) for every module and data file of the package, sorted."""
    package = src / PACKAGE
    files: list[tuple[str, Path]] = []
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(src)
        if not path.is_file() or any(p == "__pycache__" or p.startswith(".") for p in rel.parts):
            continue
        module = path.suffix == ".py" and _in_a_package(src, path)
        data = path.relative_to(package).parts[0] in PACKAGE_DATA and path.suffix != ".pyc"
        if module or data:
            files.append((rel.as_posix(), path))
    return files


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def wheel_name(project: dict[str, Any]) -> str:
    return f"{project['name'].replace('-', '_')}-{project['version']}-py3-none-any.whl"


def wheel_bytes(root: Path) -> tuple[str, bytes]:
    """The wheel's file name and content (deterministic for a given source tree)."""
    import io

    project = _project(root)
    name, version = project["name"].replace("-", "_"), str(project["version"])
    dist_info = f"{name}-{version}.dist-info"
    entries: list[tuple[str, bytes]] = [
        (arcname, path.read_bytes()) for arcname, path in package_files(root / "src")
    ]
    if not any(arcname == f"{PACKAGE}/stages/users/cli.py" for arcname, _ in entries):
        raise StageError(f"src/{PACKAGE}/stages/users/cli.py is missing: no pwb-users to install")
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {version}",
        f"Summary: {project.get('description', '')} (jump-host build: pwb-users)",
    ]
    if project.get("requires-python"):
        metadata.append(f"Requires-Python: {project['requires-python']}")
    scripts = project.get("scripts") or {}
    entry_points = "[console_scripts]\n" + "".join(
        f"{script} = {target}\n" for script, target in sorted(scripts.items())
    )
    wheel = (
        "Wheel-Version: 1.0\n"
        "Generator: pwbcluster (aux/toolwheel.py)\n"
        "Root-Is-Purelib: true\n"
        "Tag: py3-none-any\n"
    )
    entries += [
        (f"{dist_info}/METADATA", ("\n".join(metadata) + "\n").encode()),
        (f"{dist_info}/WHEEL", wheel.encode()),
        (f"{dist_info}/entry_points.txt", entry_points.encode()),
        (f"{dist_info}/top_level.txt", f"{PACKAGE}\n".encode()),
    ]
    record = "".join(f"{arc},{_record_hash(data)},{len(data)}\n" for arc, data in entries)
    entries.append((f"{dist_info}/RECORD", (record + f"{dist_info}/RECORD,,\n").encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for arcname, data in entries:
            info = zipfile.ZipInfo(arcname, date_time=ZIP_EPOCH)
            info.external_attr = FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=9)
    return wheel_name(project), buffer.getvalue()


def build_tool_wheel(out_dir: Path, root: Path | None = None) -> Path:
    """Write the wheel into ``out_dir`` (only when its bytes changed); return its path."""
    root = root or project_root()
    name, data = wheel_bytes(root)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / name
    if target.is_file() and target.read_bytes() == data:
        log.debug("%s is up to date", target)
        return target
    scratch = out_dir / f".{name}.{os.getpid()}.tmp"
    scratch.write_bytes(data)
    scratch.replace(target)
    log.info("built %s (%d bytes) for the jump host", target, len(data))
    return target


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
