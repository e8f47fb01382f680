"""The supply-chain check on session container images (config/checks_supply.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pwbcluster.config import load_config
from pwbcluster.config.checks import REGISTRY
from pwbcluster.config.checks_supply import session_image_refs
from pwbcluster.errors import ConfigError


def _deployment(project: Path, body: str) -> Path:
    path = project / "config" / "dev.yaml"
    path.write_text(
        "deployment:\n  name: dev\n  region: eu-west-1\n  owner_email: team@example.com\n" + body,
        encoding="utf-8",
    )
    return path


def test_tag_only_session_images_warn_by_name(project: Path) -> None:
    body = "cluster:\n  workbench:\n    container_sessions: true\n    container_images: [jammy, noble]\n"
    cfg = load_config(_deployment(project, body))
    [warning] = [w for w in cfg.warnings if w.check == "session_images_by_digest"]
    text = str(warning)
    assert "rstudio/r-session-complete:jammy-2026.09.0" in text
    assert "rstudio/r-session-complete:noble-2026.09.0" in text
    assert "container_images" in text


def test_no_container_sessions_no_warning(project: Path) -> None:
    cfg = load_config(_deployment(project, ""))
    assert cfg.data["cluster"]["workbench"]["container_sessions"] is False
    assert not [w for w in cfg.warnings if w.check == "session_images_by_digest"]


def test_the_refs_are_what_the_head_node_pulls() -> None:
    """The check names the same references cluster/head-node.sh builds from."""
    head = (Path(__file__).resolve().parents[2] / "cluster" / "head-node.sh").read_text()
    assert "docker://rstudio/r-session-complete:${os}-${CONTAINER_TAG_VERSION}" in head
    data = {
        "image": {"workbench": {"version": "2026.10.0+233.pro1"}},
        "cluster": {"workbench": {"container_sessions": True, "container_images": ["rhel9"]}},
    }
    assert session_image_refs(data) == ["rstudio/r-session-complete:rhel9-2026.10.0"]
    assert REGISTRY["session_images_by_digest"].level.value == "warning"


def test_a_pinned_session_image_is_pulled_by_digest_and_not_warned_about(project: Path) -> None:
    digest = "sha256:" + "ab" * 32
    body = (
        "cluster:\n  workbench:\n    container_sessions: true\n    container_images: [jammy, noble]\n"
        f"    container_image_digests: {{jammy: '{digest}'}}\n"
    )
    cfg = load_config(_deployment(project, body))
    [warning] = [w for w in cfg.warnings if w.check == "session_images_by_digest"]
    assert "noble-2026.09.0" in str(warning) and "jammy" not in str(warning).split("(")[1]
    assert session_image_refs(cfg.data)[0] == f"rstudio/r-session-complete@{digest}"
    bad = body.replace(digest, "sha256:short")
    with pytest.raises(ConfigError, match="container_image_digests"):
        load_config(_deployment(project, bad))
