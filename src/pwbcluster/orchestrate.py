"""``invoke up``/``down``/``status``: run the stage graph, resume, tear down, report."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from .config import Config
from .stages import contracts
from .stages.pipeline import stage_specs
from .stages.runner import Runner, StageContext, StageEvent
from .stages.state import State

log = logging.getLogger(__name__)


def state_path(config: Config) -> Any:
    return config.build_dir / "state.json"


def _runner(
    config: Config,
    mode: str,
    console: Console,
    dry_run: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> Runner:
    state = State.load(state_path(config), mode)

    def make_context(upstream: Mapping[str, Any]) -> StageContext:
        return StageContext(config, upstream, mode, dry_run, extra or {})

    def on_event(event: StageEvent) -> None:
        style = {"failed": "red", "done": "green", "skipped": "cyan"}.get(event.kind, "")
        took = f" ({event.seconds:.1f} s)" if event.seconds else ""
        detail = f": {event.detail}" if event.detail else ""
        console.print(
            f"[{style}]{event.stage}: {event.kind}{took}{detail}[/{style}]"
            if style
            else f"{event.stage}: {event.kind}{detail}",
            highlight=False,
        )

    return Runner(stage_specs(), state, make_context, on_event)


def up(
    config: Config,
    mode: str,
    console: Console,
    only: set[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return _runner(config, mode, console, extra=extra).run(only)


def down(config: Config, mode: str, console: Console) -> list[str]:
    return _runner(config, mode, console).destroy()


def status_table(config: Config) -> Table:
    path = state_path(config)
    table = Table(title=f"Deployment '{config.name}' ({path.relative_to(config.root)})")
    for column in ("stage", "status", "took", "outputs"):
        table.add_column(column)
    if not path.exists():
        table.caption = "nothing deployed yet (no state file)"
        return table
    import json

    raw = json.loads(path.read_text(encoding="utf-8"))
    table.caption = f"mode: {raw.get('mode', '?')}"
    for spec in stage_specs():
        rec = raw.get("stages", {}).get(spec.name)
        if rec is None:
            table.add_row(spec.name, "not run", "", "")
            continue
        took = rec["finished"] - rec["started"] if rec.get("finished") else 0
        outputs = rec.get("outputs") or {}
        summary = _summarise(spec.name, outputs) if rec["status"] == "done" else rec.get("error")
        table.add_row(spec.name, rec["status"], f"{took:.1f} s" if took else "", summary or "")
    return table


def _summarise(stage: str, outputs: dict[str, Any]) -> str:
    keys = {
        "network": ("vpc_id", "bucket_name"),
        "services": ("directory_id", "ldap_uri"),
        "image": ("ami_id", "fingerprint"),
        "cluster": ("cluster_name", "workbench_url"),
        "users": ("created", "verified"),
    }.get(stage, ())
    return ", ".join(f"{k}={str(outputs.get(k))[:24]}" for k in keys)


__all__ = ["contracts", "down", "status_table", "up"]
