"""A small DAG runner: stages run as soon as what they need is done, in parallel.

Each stage is a function from a ``StageContext`` (the merged config, the typed outputs
of the stages it needs, the account) to its typed outputs. The runner fingerprints each
stage's inputs; a stage recorded as done with the same fingerprint is skipped and its
recorded outputs handed on, so a re-run after a failure resumes at the first stage that
failed or whose inputs changed, and never creates anything twice.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from pwbcluster import contracts
from pwbcluster.contracts.stage import StageContext, StageSpec
from pwbcluster.errors import MissingDependency, StageError, ToolkitError
from pwbcluster.pipeline.state import StageRecord, State

log = logging.getLogger(__name__)

FAULT_ENV = "PWBCLUSTER_FAIL_STAGE"


def unknown_stages(unknown: set[str], known: Iterable[str]) -> str:
    """'unknown stage(s): clustr (did you mean cluster?); the stages are: ...'"""
    names = sorted(known)
    parts = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, names, n=1)
        parts.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return f"unknown stage(s): {', '.join(parts)}; the stages are: {', '.join(names)}"


@dataclass
class StageEvent:
    stage: str
    kind: str  # "skipped" | "started" | "done" | "failed" | "stopping"
    seconds: float = 0.0
    detail: str = ""


def fingerprint(spec: StageSpec, ctx: StageContext) -> str:
    upstream = {n: contracts.to_dict(ctx.upstream.require(n)) for n in spec.needs}
    doc = {"stage": spec.name, "inputs": spec.inputs(ctx), "upstream": upstream}
    blob = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def topological(stages: list[StageSpec]) -> list[StageSpec]:
    by_name = {s.name: s for s in stages}
    order: list[StageSpec] = []
    seen: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in seen:
            return
        if name in trail:
            raise StageError(f"stage cycle: {' -> '.join((*trail, name))}")
        if name not in by_name:
            raise StageError(f"stage '{trail[-1]}' needs unknown stage '{name}'")
        for need in by_name[name].needs:
            visit(need, (*trail, name))
        seen.add(name)
        order.append(by_name[name])

    for s in stages:
        visit(s.name, ())
    return order


def critical_path(stages: list[StageSpec]) -> tuple[list[str], float]:
    """The longest chain of typical durations: what decides the wall time."""
    best: dict[str, tuple[float, list[str]]] = {}
    for s in topological(stages):
        prior = max((best[n] for n in s.needs), key=lambda b: b[0], default=(0.0, []))
        best[s.name] = (prior[0] + s.minutes, [*prior[1], s.name])
    total, path = max(best.values(), key=lambda b: b[0])
    return path, total


class Runner:
    def __init__(
        self,
        stages: list[StageSpec],
        state: State,
        make_context: Callable[[Mapping[str, Any]], StageContext],
        on_event: Callable[[StageEvent], None] | None = None,
        max_workers: int = 4,
    ) -> None:
        self.stages = topological(stages)
        self.state = state
        self.make_context = make_context
        self.on_event = on_event or (lambda event: None)
        self.max_workers = max_workers

    def run(self, only: set[str] | None = None) -> dict[str, Any]:
        """Run every stage (or ``only`` those and what they need); return all outputs."""
        wanted = self._closure(only) if only else {s.name for s in self.stages}
        outputs: dict[str, Any] = {}
        pending = [s for s in self.stages if s.name in wanted]
        running: dict[Future[Any], tuple[StageSpec, str, float]] = {}
        failures: list[str] = []
        pool = ThreadPoolExecutor(max_workers=self.max_workers)
        try:
            while pending or running:
                progressed = True
                while progressed and not failures:
                    progressed = False
                    for spec in [s for s in pending if all(n in outputs for n in s.needs)]:
                        pending.remove(spec)
                        progressed = True
                        ctx = self.make_context({n: outputs[n] for n in spec.needs})
                        fp = fingerprint(spec, ctx)
                        rec = self.state.stages.get(spec.name)
                        if rec and rec.status == "done" and rec.fingerprint == fp and rec.outputs:
                            out_type = contracts.STAGE_OUTPUT_TYPES[spec.name]
                            outputs[spec.name] = contracts.from_dict(out_type, rec.outputs)
                            self.on_event(StageEvent(spec.name, "skipped", detail="unchanged"))
                            continue
                        started = time.time()
                        self.state.record(spec.name, StageRecord("running", fp, started=started))
                        self.on_event(StageEvent(spec.name, "started"))
                        running[pool.submit(self._call, spec, ctx)] = (spec, fp, started)
                if not running:
                    if pending and not failures:
                        blocked = ", ".join(s.name for s in pending)
                        raise StageError(f"stages cannot start (unmet needs): {blocked}")
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    spec, fp, started = running.pop(future)
                    finished = time.time()
                    try:
                        result = future.result()
                    except Exception as exc:  # recorded, reported, then re-raised below
                        detail = str(exc) if isinstance(exc, ToolkitError) else repr(exc)
                        rec = StageRecord("failed", fp, None, detail, started, finished)
                        # A missing tool or credential stops a stage before it acts: it
                        # created nothing, so the record does not bind the deployment's mode.
                        rec.created_nothing = isinstance(exc, MissingDependency)
                        self.state.record(spec.name, rec)
                        failures.append(f"{spec.name}: {detail}")
                        self.on_event(StageEvent(spec.name, "failed", finished - started, detail))
                        continue
                    outputs[spec.name] = result
                    rec = StageRecord(
                        "done", fp, contracts.to_dict(result), None, started, finished
                    )
                    self.state.record(spec.name, rec)
                    self.on_event(StageEvent(spec.name, "done", finished - started))
        except KeyboardInterrupt:
            self._stop(pool, running)
            raise
        except BaseException:
            pool.shutdown(wait=True)
            raise
        pool.shutdown(wait=True)
        if failures:
            raise StageError(
                "stage failed: " + "; ".join(failures) + "\nFix the cause and run the same "
                "command again: finished stages are kept and the run resumes there."
            )
        return outputs

    def _stop(self, pool: ThreadPoolExecutor, running: Mapping[Future[Any], Any]) -> None:
        """Ctrl-C: say so at once, record the running stages as interrupted (a re-run
        resumes there), and do not wait for them here. Their tools (pulumi, pcluster) got
        the same signal from the terminal and stop on their own; a second Ctrl-C leaves at
        once instead of waiting for them at exit."""
        now = time.time()
        for spec, fp, started in running.values():
            self.state.record(
                spec.name,
                StageRecord("interrupted", fp, None, "interrupted (Ctrl-C)", started, now),
            )
            self.on_event(
                StageEvent(
                    spec.name,
                    "stopping",
                    now - started,
                    "Ctrl-C: it stops with its tools; press Ctrl-C again to leave at once",
                )
            )
        pool.shutdown(wait=False, cancel_futures=True)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, _leave_now)

    def _closure(self, only: set[str]) -> set[str]:
        by_name = {s.name: s for s in self.stages}
        unknown = only - set(by_name)
        if unknown:
            raise StageError(unknown_stages(unknown, by_name))
        result: set[str] = set()
        todo = list(only)
        while todo:
            name = todo.pop()
            if name not in result:
                result.add(name)
                todo.extend(by_name[name].needs)
        return result

    @staticmethod
    def _call(spec: StageSpec, ctx: StageContext) -> Any:
        maybe_inject_fault(spec.name, ctx)
        return spec.run(ctx)

    def recorded(self, name: str) -> Any:
        """A stage's recorded outputs (typed), or None."""
        rec = self.state.stages.get(name)
        if rec is None or not rec.outputs:
            return None
        return contracts.from_dict(contracts.STAGE_OUTPUT_TYPES[name], rec.outputs)

    def destroy(self, only: set[str] | None = None) -> list[str]:
        """Destroy recorded stages in reverse order; returns the names destroyed.

        With ``only``, just those stages, and only when no recorded stage that needs one of
        them remains (removing the network under a running cluster is refused).
        """
        names = {s.name for s in self.stages}
        wanted = set(only) if only else names
        unknown = wanted - names
        if unknown:
            raise StageError(unknown_stages(unknown, names))
        for spec in self.stages:
            if spec.name in wanted:
                continue
            blocking = [n for n in spec.needs if n in wanted]
            if blocking and spec.name in self.state.stages:
                raise StageError(
                    f"the {spec.name} stage still exists and needs {', '.join(blocking)}: "
                    f"remove it first (`invoke down --stage {spec.name}`)"
                )
        removed: list[str] = []
        for spec in reversed(self.stages):
            if spec.name not in wanted:
                continue
            rec = self.state.stages.get(spec.name)
            if rec is None:
                continue
            if rec.created_nothing:
                # It stopped before acting: nothing to remove, only the record to drop.
                self.state.forget(spec.name)
                removed.append(spec.name)
                continue
            upstream = {n: out for n in spec.needs if (out := self.recorded(n)) is not None}
            ctx = self.make_context(upstream)
            self.on_event(StageEvent(spec.name, "started", detail="destroy"))
            spec.destroy(ctx, self.recorded(spec.name))
            self.state.forget(spec.name)
            removed.append(spec.name)
            self.on_event(StageEvent(spec.name, "done", detail="destroyed"))
        return removed

    def plan(self) -> dict[str, Any]:
        """Each stage's ``plan`` in dependency order, with planned upstream values; no state."""
        outputs: dict[str, Any] = {}
        for spec in self.stages:
            ctx = self.make_context({n: outputs[n] for n in spec.needs})
            outputs[spec.name] = spec.plan(ctx)
        return outputs


def _leave_now(signum: int, frame: Any) -> None:
    os._exit(130)


def maybe_inject_fault(stage: str, ctx: StageContext) -> None:
    """Fault injection for tests: ``PWBCLUSTER_FAIL_STAGE=<stage>`` fails it once.

    The marker file under the build directory makes it once: the next run passes.
    """
    target = os.environ.get(FAULT_ENV)
    if target != stage:
        return
    marker = ctx.config.build_dir / f".fault-injected-{stage}"
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("fault injected once by " + FAULT_ENV + "\n")
    raise StageError(f"injected fault in stage '{stage}' ({FAULT_ENV})")
