"""The hashed lock of what the image installs with pip (``image/requirements-jupyter.txt``).

``install-jupyter.sh`` installs JupyterLab and Posit's extension with
``pip install --require-hashes -r requirements-jupyter.txt``: every distribution, the
dependencies included, is pinned to a version and its SHA-256, so a republished or
substituted wheel on the index fails the build instead of landing in the image. The lock is
written by ``invoke image.lock`` (uv pip compile --generate-hashes for the default Python)
and checked against ``image.jupyter`` before a build: a version bump in the config without a
new lock is refused at plan time, not an hour into the build.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pwbcluster.config.model import ImageModel, coerce
from pwbcluster.errors import ToolkitError

LOCK_FILE = "requirements-jupyter.txt"
EXTENSION = "pwb-jupyterlab"
HEADER = (
    "# requirements-jupyter.txt: what install-jupyter.sh installs into the default Python, every\n"
    "# distribution pinned with its SHA-256 (pip --require-hashes). Written by `invoke image.lock`\n"
    "# from image.jupyter's versions and image.python.default; do not edit by hand.\n"
    "# python: {python}\n"
)
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
_PYTHON = re.compile(r"^# python: ([0-9]+\.[0-9]+)$", re.MULTILINE)
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}\b")


class LockError(ToolkitError):
    """The pip lock is missing, unhashed, or pins other versions than the config."""


def normalise(name: str) -> str:
    """PEP 503 name normalisation: pwb_jupyterlab and pwb-jupyterlab are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def python_of(image: ImageModel) -> str:
    """The major.minor of the default Python, the interpreter pip installs into."""
    return ".".join(image.python.default.split(".")[:2])


def wanted(image: ImageModel | Mapping[str, Any]) -> dict[str, str]:
    """The top-level pins the config asks for, by normalised name."""
    image = coerce(ImageModel, image)
    return {
        "jupyterlab": image.jupyter.jupyterlab_version,
        EXTENSION: image.jupyter.extension_version,
    }


def parse(text: str) -> dict[str, tuple[str, int]]:
    """Each requirement of a pip-compile file: normalised name -> (version, hash count)."""
    out: dict[str, tuple[str, int]] = {}
    current: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _REQUIREMENT.match(stripped)
        if match:
            current = normalise(match.group(1))
            out[current] = (match.group(2), len(_HASH.findall(stripped)))
        elif current is not None and stripped.startswith("--hash="):
            version, count = out[current]
            out[current] = (version, count + len(_HASH.findall(stripped)))
        else:
            raise LockError(
                f"{LOCK_FILE}: unexpected line {stripped!r} (regenerate: invoke image.lock)"
            )
    return out


def problems(image: ImageModel | Mapping[str, Any], image_dir: Path) -> list[str]:
    """Why the checked-in lock cannot serve this config (empty: it can)."""
    image = coerce(ImageModel, image)
    path = image_dir / LOCK_FILE
    try:
        text = path.read_text(encoding="utf-8")
        entries = parse(text)
    except FileNotFoundError:
        return [f"{path} is missing (write it with: invoke image.lock)"]
    except LockError as exc:
        return [str(exc)]
    out = []
    resolved_for = _PYTHON.search(text)
    if resolved_for is None or resolved_for.group(1) != python_of(image):
        out.append(
            f"{LOCK_FILE} was resolved for Python "
            f"{resolved_for.group(1) if resolved_for else '(unstated)'}, "
            f"image.python.default is {image.python.default}"
        )
    for name, version in wanted(image).items():
        locked = entries.get(name)
        if locked is None:
            out.append(f"{LOCK_FILE} does not pin {name} (image.jupyter asks for {version})")
        elif locked[0] != version:
            out.append(f"{LOCK_FILE} pins {name}=={locked[0]}, image.jupyter asks for {version}")
    out += [
        f"{LOCK_FILE}: {name}=={version} has no --hash=sha256"
        for name, (version, count) in sorted(entries.items())
        if count == 0
    ]
    if out:
        out.append("regenerate the lock with: invoke image.lock")
    return out


def check(image: ImageModel | Mapping[str, Any], image_dir: Path) -> None:
    """Raise unless the lock pins exactly the config's versions, every one hashed."""
    found = problems(image, image_dir)
    if found:
        raise LockError("; ".join(found))


def compile_command(image: ImageModel | Mapping[str, Any], source: Path, output: Path) -> list[str]:
    """uv's resolve of the config's pins for the image's default Python on x86_64 Linux."""
    image = coerce(ImageModel, image)
    return [
        "uv",
        "pip",
        "compile",
        str(source),
        "--generate-hashes",
        "--no-header",
        "--python-version",
        python_of(image),
        "--python-platform",
        "x86_64-manylinux_2_28",
        "--output-file",
        str(output),
    ]


def regenerate(image: ImageModel | Mapping[str, Any], image_dir: Path, uv: str = "uv") -> Path:
    """Write ``image_dir/requirements-jupyter.txt`` from the registry; return its path."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "requirements-jupyter.in"
        source.write_text(
            "".join(f"{name}=={version}\n" for name, version in wanted(image).items()),
            encoding="utf-8",
        )
        compiled = Path(tmp) / LOCK_FILE
        argv = compile_command(image, source, compiled)
        argv[0] = uv
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LockError(f"uv pip compile failed: {result.stderr.strip()}")
        body = compiled.read_text(encoding="utf-8").replace(str(source), "requirements-jupyter.in")
    path = image_dir / LOCK_FILE
    image = coerce(ImageModel, image)
    path.write_text(HEADER.format(python=python_of(image)) + body, encoding="utf-8")
    check(image, image_dir)
    return path
