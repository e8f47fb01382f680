"""The env file the image stage writes for ``image/install-image.sh``.

Versions come from the ``image:`` section of the config; download locations are the
vendors' own, kept here in one table. The file is ``KEY=VALUE`` lines that the entry
script parses (never sources), so a value cannot run as code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pwbcluster.config.model import ImageModel, coerce
from pwbcluster.render_guard import check_value

# Where each vendor publishes what the scripts download (the scripts add the
# version-specific path below these).
VENDOR_URLS: dict[str, str] = {
    "WORKBENCH_URL_BASE": "https://download2.rstudio.org/server",
    "R_URL_BASE": "https://cdn.posit.co/r",
    "PYTHON_URL_BASE": "https://cdn.posit.co/python",
    "QUARTO_URL_BASE": "https://github.com/quarto-dev/quarto-cli/releases/download",
    "APPTAINER_URL_BASE": "https://github.com/apptainer/apptainer/releases/download",
    "CUDA_REPO_BASE": "https://developer.download.nvidia.com/compute/cuda/repos",
    # One bundle for every commercial region (docs.aws.amazon.com/AmazonRDS/latest/UserGuide/
    # UsingWithRDS.SSL.html); GovCloud and China publish their own.
    "RDS_CA_URL": "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem",
}

# The config's OS name -> (Posit's platform name, Ubuntu codename, NVIDIA repo name).
OS_NAMES: dict[str, tuple[str, str, str]] = {
    "ubuntu2204": ("ubuntu-2204", "jammy", "ubuntu2204"),
    "ubuntu2404": ("ubuntu-2404", "noble", "ubuntu2404"),
}

ENV_FILE = "image.env"
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9 ._:/+=-]*$")


def image_env(image: ImageModel | Mapping[str, Any]) -> dict[str, str]:
    """The env file's keys and values for one ``image:`` config section."""
    image = coerce(ImageModel, image)
    _unlisted_pins(image)
    try:
        posit_os, codename, nvidia_os = OS_NAMES[image.os]
    except KeyError as exc:
        raise ValueError(f"image.os '{image.os}' has no download mapping") from exc
    env = {
        "POSIT_OS": posit_os,
        "UBUNTU_CODENAME": codename,
        "NVIDIA_REPO_OS": nvidia_os,
        "WORKBENCH_VERSION": image.workbench.version,
        "R_VERSIONS": " ".join(image.r.versions),
        "R_DEFAULT": image.r.default,
        "PYTHON_VERSIONS": " ".join(image.python.versions),
        "PYTHON_DEFAULT": image.python.default,
        "JUPYTERLAB_VERSION": image.jupyter.jupyterlab_version,
        "PWB_JUPYTERLAB_VERSION": image.jupyter.extension_version,
        "QUARTO_VERSION": image.quarto.version,
        "APPTAINER_VERSION": image.apptainer.version,
        "GPU_ENABLED": "true" if image.gpu.enabled else "false",
        "CUDA_VERSION": image.gpu.cuda_version,
        **VENDOR_URLS,
        **_checksums(image),
    }
    for key, value in env.items():
        if not _SAFE_VALUE.match(value):
            raise ValueError(f"image env value for {key} has unexpected characters: {value!r}")
    return env


def _checksums(image: ImageModel) -> dict[str, str]:
    """The checksum keys that are set (the scripts treat a missing key as unset)."""
    values = {
        "WORKBENCH_SHA256": image.workbench.sha256.for_os(image.os),
        "APPTAINER_SHA256": image.apptainer.sha256,
        "QUARTO_SHA256": image.quarto.sha256,
        "CUDA_KEYRING_SHA256": image.gpu.keyring_sha256,
        "CUDA_REPO_KEY_FINGERPRINT": image.gpu.repo_key_fingerprint,
        "RDS_CA_SHA256": image.rds_ca.sha256,
    }
    out = {
        key: str(value).lower() if key.endswith("SHA256") else str(value)
        for key, value in values.items()
        if value
    }
    for key, builds in (("R_SHA256", image.r), ("PYTHON_SHA256", image.python)):
        pins = [f"{v}={builds.pin(v)}" for v in builds.versions if builds.pin(v)]
        if pins:
            out[key] = " ".join(pins)
    return out


def _unlisted_pins(image: ImageModel) -> None:
    """A pin for a version that is not installed is a mistake (a typo pins nothing)."""
    for section, builds in (("r", image.r), ("python", image.python)):
        extra = sorted(set(builds.sha256) - set(builds.versions))
        if extra:
            raise ValueError(
                f"image.{section}.sha256 pins {', '.join(extra)}, "
                f"not in image.{section}.versions ({', '.join(builds.versions)})"
            )


def unverified_downloads(image: ImageModel | Mapping[str, Any]) -> list[str]:
    """What the build would trust on TLS alone, each with what to set in the config."""
    image = coerce(ImageModel, image)
    out = []
    if not image.workbench.sha256.for_os(image.os):
        out.append(
            f"Workbench {image.workbench.version} ({image.os}): set "
            f"image.workbench.sha256.{image.os} to the SHA-256 Posit's download page lists"
        )
    for label, section, builds in (("R", "r", image.r), ("Python", "python", image.python)):
        unpinned = [v for v in builds.versions if not builds.pin(v)]
        if unpinned:
            out.append(
                f"{label} {', '.join(unpinned)} ({image.os}, Posit's builds): set "
                f"image.{section}.sha256 to pin them (Posit publishes no checksums)"
            )
    if not image.rds_ca.sha256:
        out.append("RDS CA bundle: set image.rds_ca.sha256 to pin it (AWS publishes no checksum)")
    if image.gpu.enabled and not image.gpu.repo_key_fingerprint:
        out.append(
            "NVIDIA repository key: set image.gpu.repo_key_fingerprint "
            "(the keyring package is still checked against the repository's index)"
        )
    return out


_ENV_KEY = re.compile(r"^[A-Z][A-Z0-9_]*$")


def render_env(env: dict[str, str]) -> str:
    """``KEY=VALUE`` lines; a key or value that would add a line or a setting is refused."""
    lines = ["# Written by pwbcluster's image stage; read by image/install-image.sh."]
    for key, value in sorted(env.items()):
        check_value(ENV_FILE, "key", key, allow_empty=False, allow_equals=False, pattern=_ENV_KEY)
        lines.append(f"{key}={check_value(ENV_FILE, key, value)}")
    return "\n".join(lines) + "\n"
