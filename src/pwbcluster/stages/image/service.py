"""The image stage's shared steps: fingerprint, render, bundle (no AWS calls here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pwbcluster.contracts import NetworkOutputs
from pwbcluster.files import dump_yaml, write_text
from pwbcluster.pcluster.amis import PARENT_TAG
from pwbcluster.pcluster.venv import PCLUSTER_VERSION
from pwbcluster.stages.image.bundle import Bundle, make_bundle, scripts_prefix
from pwbcluster.stages.image.fingerprint import image_fingerprint
from pwbcluster.stages.image.parent import parent_spec
from pwbcluster.stages.image.pylock import check as check_pip_lock
from pwbcluster.stages.image.render import image_id, render_image_config

CONFIG_FILE = "image-config.yaml"
HEADER = """\
Rendered by pwbcluster's image stage for deployment '{name}'. Do not edit: edit
image/image.yaml or the deployment file. Fingerprint: {fingerprint}
Parent image: {parent} ({spec})"""


def image_dir(config: Any) -> Path:
    return Path(config.root) / "image"


def fingerprint_for(config: Any) -> str:
    """The image fingerprint of a loaded config: known offline, same as the real run's."""
    # The fingerprint hashes the plain section, so it is independent of the model's shape.
    spec = parent_spec(config.model.image, PCLUSTER_VERSION)
    return image_fingerprint(config.data["image"], image_dir(config), spec)


@dataclass(frozen=True)
class PreparedImage:
    fingerprint: str
    image_id: str
    parent_spec: str
    parent_image: str
    bundle: Bundle
    config: dict[str, Any]
    config_text: str
    config_path: Path

    @property
    def scripts_prefix(self) -> str:
        return self.bundle.prefix


def prepare(config: Any, network: NetworkOutputs, parent_image: str) -> PreparedImage:
    """Fingerprint, upload bundle and build-image config, written to build/<deployment>/."""
    image = config.model.image
    # The hashed pip lock must pin image.jupyter's versions: refused here, not mid-build.
    check_pip_lock(image, image_dir(config))
    spec = parent_spec(image, PCLUSTER_VERSION)
    fingerprint = image_fingerprint(config.data["image"], image_dir(config), spec)
    name = image_id(image, fingerprint)
    # image/bundle.py still takes the plain section.
    bundle = make_bundle(
        config.data["image"],
        image_dir(config),
        fingerprint,
        network.bucket_name,
        config.region,
        name,
    )
    tags = {**config.tags(), PARENT_TAG: parent_image}
    rendered = render_image_config(
        config.model, network, scripts_prefix(fingerprint), fingerprint, parent_image, tags
    )
    header = HEADER.format(
        name=config.name, fingerprint=fingerprint, parent=parent_image, spec=spec
    )
    text = dump_yaml(rendered, header)
    path = write_text(Path(config.build_dir) / CONFIG_FILE, text)
    return PreparedImage(fingerprint, name, spec, parent_image, bundle, rendered, text, path)
