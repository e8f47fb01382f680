"""``invoke plan``: render and check everything a real run would use, create nothing.

Values that only exist after a stage has run (subnet ids, endpoints, the AMI id) are
well-formed placeholders containing ``planned``/``PLANNED`` (see stages.contracts), and
the plan lists them. Steps run in order; later issues add theirs to ``STEPS`` (for
example validation and synthesis with ParallelCluster's own code).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pwbcluster import contracts
from pwbcluster.config import Config
from pwbcluster.estimate import cost_step, diagram_step
from pwbcluster.files import dump_yaml, write_text
from pwbcluster.pipeline.plan_pcluster import pcluster_step
from pwbcluster.pipeline.plan_workbench import workbench_step
from pwbcluster.pipeline.registry import STAGES, stage_specs
from pwbcluster.pipeline.runner import critical_path
from pwbcluster.stages.cluster.render import RenderedCluster, render_cluster_config
from pwbcluster.stages.image.service import fingerprint_for
from pwbcluster.stages.image.service import prepare as prepare_image

log = logging.getLogger(__name__)

PLANNED_PARENT_IMAGE = "ami-planned0000000000"
HEADER = """\
Rendered by pwbcluster from {source} for deployment '{name}'. Do not edit: edit the
YAML it comes from and run `invoke plan` again.
{extra}"""


@dataclass
class PlanContext:
    config: Config
    build_dir: Path
    network: contracts.NetworkOutputs
    services: contracts.ServicesOutputs
    image: contracts.ImageOutputs
    scripts_prefix: str
    cluster: RenderedCluster | None = None
    image_config: dict[str, Any] | None = None
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def write(self, relative: str, text: str, mode: int = 0o644) -> Path:
        path = write_text(self.build_dir / relative, text, mode)
        self.files.append(path)
        return path


PlanStep = tuple[str, Callable[[PlanContext], None]]


def planned_context(config: Config) -> PlanContext:
    name, region = config.name, config.region
    network = contracts.planned_network(region, name)
    aux = config.data["aux"]
    services = contracts.planned_services(
        region, name, aux["directory"]["domain"], tls=aux["directory"]["ldaps"]
    )
    fingerprint = fingerprint_for(config)
    image = contracts.planned_image(
        config.data["image"]["os"], fingerprint, config.data["image"]["name"]
    )
    return PlanContext(
        config=config,
        build_dir=config.build_dir,
        network=network,
        services=services,
        image=image,
        # The cluster stage uploads node scripts at the bucket root (cluster/...), the
        # prefix the node IAM policies grant; the plan shows the same URIs.
        scripts_prefix="",
    )


def render_step(ctx: PlanContext) -> None:
    config = ctx.config
    rendered = render_cluster_config(
        config.data, ctx.network, ctx.services, ctx.image, ctx.scripts_prefix, config.tags()
    )
    ctx.cluster = rendered
    extra = "Placeholders (known after `invoke up`): " + ", ".join(rendered.placeholders)
    header = HEADER.format(source=config.deployment_file, name=config.name, extra=extra)
    ctx.write("cluster-config.yaml", dump_yaml(rendered.config, header))
    # The image stage's own preparation, with the placeholder parent: the same
    # fingerprint, upload prefix and build-image config as `invoke image.build`.
    prepared = prepare_image(config, ctx.network, PLANNED_PARENT_IMAGE)
    ctx.image_config = prepared.config
    ctx.files.append(prepared.config_path)


STEPS: list[PlanStep] = [
    ("render", render_step),
    ("workbench", workbench_step),
    ("pcluster", pcluster_step),
    ("diagram", diagram_step),
    ("cost", cost_step),
]


def make_plan(config: Config, steps: list[PlanStep] | None = None) -> PlanContext:
    ctx = planned_context(config)
    ctx.build_dir.mkdir(parents=True, exist_ok=True)
    for name, step in steps or STEPS:
        started = time.perf_counter()
        step(ctx)
        ctx.timings[name] = time.perf_counter() - started
    return ctx


def print_plan(ctx: PlanContext, console: Console) -> None:
    specs = stage_specs()
    path, minutes = critical_path(specs)
    table = Table(title=f"Plan for deployment '{ctx.config.name}' in {ctx.config.region}")
    table.add_column("#", justify="right")
    table.add_column("stage")
    table.add_column("after")
    table.add_column("creates")
    table.add_column("typical", justify="right")
    for index, (name, needs, typical, what) in enumerate(STAGES, start=1):
        marker = " *" if name in path else ""
        table.add_row(
            str(index), name + marker, ", ".join(needs) or "-", what, f"{typical:.0f} min"
        )
    console.print(table)
    console.print(
        f"Critical path (*): {' -> '.join(path)}, about {minutes:.0f} min; "
        "services and image run at the same time."
    )
    for warning in ctx.config.warnings:
        console.print(f"[yellow]{warning}[/yellow]", highlight=False)
    for note in ctx.notes:
        console.print(note, highlight=False)
    console.print("Files written:")
    for file in ctx.files:
        console.print(f"  {file.relative_to(ctx.config.root)}", highlight=False)
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in ctx.timings.items())
    console.print(f"Steps: {timing}", highlight=False)
