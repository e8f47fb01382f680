"""Render the Workbench configuration files (no secrets) into a tree, from templates.

``render_workbench`` returns every file the login nodes share, keyed by its path under
``etc/rstudio/``, with its mode. ``write_tree`` writes them under any root (a temporary
directory in tests, ``build/<deployment>/workbench/`` for ``invoke plan``). The cluster
stage uploads the same tree to the scripts bucket; the head node copies it onto shared
storage, and each login node installs it and adds only what is secret or per node:
the database password, the secure-cookie-key, the licence, its own load-balancer
address and the callback address (cluster/login-node.sh).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import jinja2

from pwbcluster import files
from pwbcluster.render_guard import GROUP_NAME, check_value, check_values
from pwbcluster.stages.cluster.workbench.settings import WorkbenchSettings

log = logging.getLogger(__name__)

TEMPLATES = files.TEMPLATES / "workbench"
PREFIX = "etc/rstudio"
HEADER = "# Rendered by pwbcluster for deployment '{name}'. Do not edit on a node: edit the YAML and re-run."
# Files holding a secret once the login node has completed them: root only.
PRIVATE = {"database.conf", "audit-database.conf"}


@dataclass(frozen=True)
class RenderedFile:
    path: str  # relative to the tree root, e.g. etc/rstudio/rserver.conf
    text: str
    mode: int


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def guard_settings(settings: WorkbenchSettings, deployment: str) -> None:
    """Refuse a value that would add or change a setting in a rendered file.

    Every string the templates can reach is single-line; the group names (written into
    comma-separated ``key=value`` options) must be non-empty group names.
    """
    where = "Workbench configuration"
    check_value(where, "deployment", deployment)
    for key in ("admin_group", "user_group"):
        check_value(
            where,
            f"cluster.workbench.{key}",
            getattr(settings, key),
            allow_empty=False,
            allow_equals=False,
            pattern=GROUP_NAME,
        )
    check_values(where, settings)


def render_workbench(settings: WorkbenchSettings, deployment: str) -> dict[str, RenderedFile]:
    guard_settings(settings, deployment)
    env = _environment()
    header = HEADER.format(name=deployment)
    files: dict[str, RenderedFile] = {}

    def add(name: str, template: str, **values: object) -> None:
        text = env.get_template(template).render(s=settings, header=header, **values)
        mode = 0o600 if name in PRIVATE else 0o644
        path = f"{PREFIX}/{name}"
        files[path] = RenderedFile(path, text.rstrip("\n") + "\n", mode)

    add("rserver.conf", "rserver.conf.j2")
    add("launcher.conf", "launcher.conf.j2")
    add("launcher.slurm.conf", "launcher.slurm.conf.j2", q=None)
    for q in settings.queues:
        add(f"launcher.slurm.{q.name}.conf", "launcher.slurm.conf.j2", q=q)
        add(f"launcher.slurm.{q.name}.profiles.conf", "launcher.slurm.profiles.conf.j2", q=q)
        add(f"launcher.slurm.{q.name}.resources.conf", "launcher.slurm.resources.conf.j2", q=q)
    add("jupyter.conf", "jupyter.conf.j2")
    add("vscode.conf", "vscode.conf.j2")
    add("positron.conf", "positron.conf.j2")
    add("r-versions", "r-versions.j2")
    add("logging.conf", "logging.conf.j2")
    add("launcher-env", "launcher-env.j2")
    add("database.conf", "database.conf.j2", db=settings.db)
    if settings.audit_db is not None:
        add("audit-database.conf", "database.conf.j2", db=settings.audit_db)
    add("load-balancer", "load-balancer.j2")
    return files


def write_tree(files: dict[str, RenderedFile], root: Path) -> list[Path]:
    """Write the files under ``root`` with their modes; returns the paths written."""
    written = []
    for rendered in files.values():
        path = root / rendered.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered.text, encoding="utf-8")
        path.chmod(rendered.mode)
        written.append(path)
    return written


def node_load_balancer(common: str, address: str) -> str:
    """The per-node load-balancer file: the shared part plus this node's address.

    cluster/lib/workbench.sh (``write_load_balancer``) does the same on a login node.
    """
    return common.rstrip("\n") + f"\nwww-host-name={address}\n"
