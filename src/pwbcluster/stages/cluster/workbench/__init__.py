"""The Workbench configuration generator (templates + Python; no secrets).

See ``generate`` for what is rendered and how the login nodes complete it at boot.
"""

from __future__ import annotations

from pwbcluster.stages.cluster.workbench.generate import (
    RenderedFile,
    node_load_balancer,
    render_workbench,
    write_tree,
)
from pwbcluster.stages.cluster.workbench.settings import WorkbenchSettings, settings_from

__all__ = [
    "RenderedFile",
    "WorkbenchSettings",
    "node_load_balancer",
    "render_workbench",
    "settings_from",
    "write_tree",
]
