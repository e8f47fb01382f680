"""Checks of the image's supply chain that the config alone can answer.

- ``session_images_by_digest``: with ``cluster.workbench.container_sessions`` on, the head
  node builds each session image from ``docker://rstudio/r-session-complete:<os>-<release>``
  (cluster/head-node.sh), a tag Posit may move to a rebuilt image: what a session runs is
  then whatever the registry served on the day the head node first booted, with no digest
  to compare against. ``cluster.workbench.container_image_digests`` pins them (the head
  node then pulls ``name@sha256:...``). A warning, not an error: the digests cannot be
  looked up offline, and refusing would only switch container sessions off.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pwbcluster.config.checks import Finding, check
from pwbcluster.config.problems import Level

SESSION_IMAGE = "rstudio/r-session-complete"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def session_image_refs(data: dict[str, Any]) -> list[str]:
    """The registry references the head node pulls for container sessions (none when off)."""
    workbench = data.get("cluster", {}).get("workbench", {})
    if not workbench.get("container_sessions"):
        return []
    version = str(data.get("image", {}).get("workbench", {}).get("version", ""))
    release = re.split(r"[+-]", version, maxsplit=1)[0]
    digests = workbench.get("container_image_digests") or {}
    return [
        f"{SESSION_IMAGE}@{digests[os_name]}"
        if os_name in digests
        else f"{SESSION_IMAGE}:{os_name}-{release}"
        for os_name in workbench.get("container_images") or ()
    ]


@check(
    "session_images_by_digest",
    Level.WARNING,
    "container session images are referenced by digest, not by a mutable tag",
)
def _session_images(data: dict[str, Any]) -> Iterator[Finding]:
    tagged = [ref for ref in session_image_refs(data) if not DIGEST.search(ref)]
    if tagged:
        yield (
            ("cluster", "workbench", "container_images"),
            f"session images are pulled by tag only ({', '.join(tagged)}): a tag can be "
            "moved to another image, and nothing compares what was pulled with a digest",
            "cluster.workbench.container_image_digests: {<os>: sha256:...} with the digests "
            "you checked, or disable this check knowingly",
        )
