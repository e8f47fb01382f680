"""The ``image:`` section of the model (config/schema/image.schema.json)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WorkbenchSha256Model:
    """SHA-256 of the Workbench .deb per OS; None: trusted on TLS alone."""

    ubuntu2204: str | None = None
    ubuntu2404: str | None = None

    def for_os(self, os_name: str) -> str | None:
        value = getattr(self, os_name, None)
        return str(value) if value else None


@dataclass(frozen=True)
class ImageWorkbenchModel:
    version: str
    sha256: WorkbenchSha256Model = field(default_factory=WorkbenchSha256Model)


@dataclass(frozen=True)
class VersionsModel:
    """``image.r`` and ``image.python``: versions to install and the one on the PATH."""

    versions: tuple[str, ...]
    default: str
    # Optional SHA-256 pins of Posit's .deb (for the image's OS), by version.
    sha256: Mapping[str, str] = field(default_factory=dict)

    def pin(self, version: str) -> str | None:
        value = self.sha256.get(version)
        return str(value).lower() if value else None


@dataclass(frozen=True)
class JupyterModel:
    jupyterlab_version: str
    extension_version: str


@dataclass(frozen=True)
class QuartoModel:
    version: str
    sha256: str | None = None


@dataclass(frozen=True)
class ApptainerModel:
    version: str
    sha256: str | None = None


@dataclass(frozen=True)
class RdsCaModel:
    sha256: str | None


@dataclass(frozen=True)
class GpuModel:
    enabled: bool
    cuda_version: str
    repo_key_fingerprint: str | None = None
    keyring_sha256: str | None = None


@dataclass(frozen=True)
class ImageModel:
    """``image:``: what ``pcluster build-image`` bakes into the one AMI."""

    name: str
    os: str
    parent_ami: str | None
    build_instance_type: str
    root_volume_gb: int
    workbench: ImageWorkbenchModel
    r: VersionsModel
    python: VersionsModel
    jupyter: JupyterModel
    quarto: QuartoModel
    apptainer: ApptainerModel
    gpu: GpuModel
    rds_ca: RdsCaModel
