"""``invoke plan`` step: render the Workbench files and node.env into build/<deployment>/workbench/."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pwbcluster.stages.cluster.workbench.bundle import format_env, node_env
from pwbcluster.stages.cluster.workbench.generate import render_workbench
from pwbcluster.stages.cluster.workbench.settings import settings_from

if TYPE_CHECKING:
    from pwbcluster.pipeline.plan import PlanContext


def workbench_step(ctx: PlanContext) -> None:
    data = ctx.config.data
    files = render_workbench(settings_from(data, ctx.services), ctx.config.name)
    for rendered in files.values():
        ctx.write(f"workbench/{rendered.path}", rendered.text, rendered.mode)
    env = node_env(data, ctx.network, ctx.services, ctx.config.name, ctx.scripts_prefix)
    ctx.write("workbench/node.env", format_env(env))
    if ctx.cluster is not None:
        ctx.notes.extend(f"Warning: {w}" for w in ctx.cluster.warnings)
