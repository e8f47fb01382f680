"""The stage runner: services and image concurrently, skip when unchanged, resume after failure.

Stages are faked: concurrency is proven with a barrier both stages must reach while the
other is still running (no sleeps, no timing assertions).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pwbcluster import contracts
from pwbcluster.contracts.stage import StageContext, StageSpec, Upstream
from pwbcluster.errors import StageError
from pwbcluster.pipeline.registry import stage_specs
from pwbcluster.pipeline.runner import FAULT_ENV, Runner, critical_path, fingerprint
from pwbcluster.pipeline.state import State


@dataclass
class FakeConfig:
    build_dir: Path
    data: dict[str, Any] = field(default_factory=dict)


def outputs_for(name: str) -> Any:
    net = contracts.planned_network("eu-west-1", "t")
    return {
        "network": net,
        "services": contracts.planned_services("eu-west-1", "t", "example.com"),
        "image": contracts.planned_image("ubuntu2204", "f" * 64, "pwb"),
        "cluster": contracts.ClusterOutputs("t", "eu-west-1", "https://x", "lb", "p"),
        "users": contracts.UsersOutputs(1, 1, 0, 1, 0, "arn:x"),
    }[name]


class Fakes:
    """Fake stages that count their calls and can be told to fail or to wait."""

    def __init__(self, inputs: dict[str, Any] | None = None) -> None:
        self.calls: dict[str, int] = {}
        self.fail: set[str] = set()
        self.inputs = inputs or {}
        self.hooks: dict[str, Callable[[], None]] = {}
        self.lock = threading.Lock()

    def specs(self) -> list[StageSpec]:
        return [
            StageSpec(
                s.name,
                s.needs,
                self._run(s.name),
                self._inputs(s.name),
                destroy=lambda ctx, out: None,
                plan=self._run(s.name),
                minutes=s.minutes,
            )
            for s in stage_specs()
        ]

    def _run(self, name: str) -> Callable[[StageContext], Any]:
        def run(ctx: StageContext) -> Any:
            with self.lock:
                self.calls[name] = self.calls.get(name, 0) + 1
            for need, value in ctx.upstream.as_dict().items():
                assert value == outputs_for(need)
            if name in self.hooks:
                self.hooks[name]()
            if name in self.fail:
                raise StageError(f"{name} broke")
            return outputs_for(name)

        return run

    def _inputs(self, name: str) -> Callable[[StageContext], Any]:
        return lambda ctx: self.inputs.get(name, name)


def runner(tmp_path: Path, fakes: Fakes) -> Runner:
    cfg = FakeConfig(tmp_path)
    state = State.load(tmp_path / "state.json", "sandbox")

    def make(upstream: Mapping[str, Any]) -> StageContext:
        return StageContext(cfg, Upstream(**dict(upstream)), account=None)  # type: ignore[arg-type]

    return Runner(fakes.specs(), state, make)


def test_services_and_image_run_at_the_same_time(tmp_path: Path) -> None:
    fakes = Fakes()
    barrier = threading.Barrier(2, timeout=20)
    # Each stage waits for the other inside its body: only possible if both run at once.
    fakes.hooks = {"services": barrier.wait, "image": barrier.wait}
    runner(tmp_path, fakes).run()
    assert not barrier.broken
    assert fakes.calls == {n: 1 for n in ("network", "services", "image", "cluster", "users")}


def test_cluster_waits_for_both_services_and_image(tmp_path: Path) -> None:
    fakes = Fakes()
    finished: list[str] = []
    fakes.hooks = {n: (lambda n=n: finished.append(n)) for n in ("services", "image")}
    fakes.hooks["cluster"] = lambda: finished.append(
        "cluster" if {"services", "image"} <= set(finished) else "cluster-too-early"
    )
    runner(tmp_path, fakes).run()
    assert "cluster" in finished and "cluster-too-early" not in finished


def test_rerun_skips_finished_unchanged_stages(tmp_path: Path) -> None:
    fakes = Fakes()
    runner(tmp_path, fakes).run()
    runner(tmp_path, fakes).run()
    assert set(fakes.calls.values()) == {1}
    state = json.loads((tmp_path / "state.json").read_text())
    assert {r["status"] for r in state["stages"].values()} == {"done"}


def test_changed_inputs_rerun_the_stage_and_what_follows(tmp_path: Path) -> None:
    fakes = Fakes()
    runner(tmp_path, fakes).run()
    fakes.inputs["image"] = "new R version"
    runner(tmp_path, fakes).run()
    assert fakes.calls["image"] == 2
    assert fakes.calls["network"] == 1 and fakes.calls["services"] == 1
    # outputs of image are unchanged in this fake, so cluster's fingerprint is unchanged too
    assert fakes.calls["cluster"] == 1


def test_failure_is_recorded_and_the_next_run_resumes_there(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.fail = {"cluster"}
    with pytest.raises(StageError, match="cluster broke"):
        runner(tmp_path, fakes).run()
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["stages"]["cluster"]["status"] == "failed"
    assert "users" not in state["stages"]
    fakes.fail = set()
    runner(tmp_path, fakes).run()
    assert fakes.calls == {"network": 1, "services": 1, "image": 1, "cluster": 2, "users": 1}


def test_a_failing_branch_lets_the_running_sibling_finish(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.fail = {"services"}
    with pytest.raises(StageError):
        runner(tmp_path, fakes).run()
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["stages"]["image"]["status"] == "done"
    assert "cluster" not in state["stages"]


def test_fault_injection_fails_a_stage_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAULT_ENV, "image")
    fakes = Fakes()
    with pytest.raises(StageError, match="injected fault in stage 'image'"):
        runner(tmp_path, fakes).run()
    assert "image" not in fakes.calls
    runner(tmp_path, fakes).run()
    assert fakes.calls == {n: 1 for n in ("network", "services", "image", "cluster", "users")}


def test_state_from_another_mode_is_refused(tmp_path: Path) -> None:
    fakes = Fakes()
    runner(tmp_path, fakes).run()
    with pytest.raises(StageError, match="records a sandbox deployment"):
        State.load(tmp_path / "state.json", "real")


def test_only_runs_the_stage_and_what_it_needs(tmp_path: Path) -> None:
    fakes = Fakes()
    runner(tmp_path, fakes).run(only={"image"})
    assert fakes.calls == {"network": 1, "image": 1}


def test_contracts_round_trip_through_the_state_file() -> None:
    for name, cls in contracts.STAGE_OUTPUT_TYPES.items():
        value = outputs_for(name)
        assert isinstance(value, cls)
        again = contracts.from_dict(cls, json.loads(json.dumps(contracts.to_dict(value))))
        assert again == value


def test_fingerprint_depends_on_inputs_and_upstream(tmp_path: Path) -> None:
    spec = Fakes().specs()[2]
    cfg = FakeConfig(tmp_path)
    a = fingerprint(spec, StageContext(cfg, Upstream(network=outputs_for("network")), account=None))  # type: ignore[arg-type]
    b = fingerprint(spec, StageContext(cfg, Upstream(network=outputs_for("network")), account=None))  # type: ignore[arg-type]
    other = contracts.planned_network("us-east-1", "t")
    c = fingerprint(spec, StageContext(cfg, Upstream(network=other), account=None))  # type: ignore[arg-type]
    assert a == b != c


def test_critical_path_is_network_image_cluster_users() -> None:
    path, minutes = critical_path(stage_specs())
    assert path == ["network", "image", "cluster", "users"]
    assert minutes > 60


def test_a_stage_that_stopped_before_acting_does_not_bind_the_mode(tmp_path: Path) -> None:
    """A real run refused for a missing tool created nothing: the sandbox may start there
    (no dead end), while a real stage that failed after acting still binds the mode."""
    from pwbcluster.errors import MissingDependency

    fakes = Fakes()

    def missing() -> None:
        raise MissingDependency("the `pulumi` CLI is not installed")

    fakes.hooks = {"network": missing}
    cfg = FakeConfig(tmp_path)
    real = State.load(tmp_path / "state.json", "real")
    make = lambda up: StageContext(cfg, Upstream(**dict(up)), account=None)  # type: ignore[arg-type]  # noqa: E731
    with pytest.raises(StageError, match="pulumi"):
        Runner(fakes.specs(), real, make).run()
    recorded = json.loads((tmp_path / "state.json").read_text())
    assert recorded["mode"] == "real"
    assert recorded["stages"]["network"]["created_nothing"] is True
    assert State.load(tmp_path / "state.json", "sandbox").stages == {}
    # down of the real record removes nothing and drops the record.
    assert Runner(fakes.specs(), State.load(tmp_path / "state.json", "real"), make).destroy() == [
        "network"
    ]
    assert not (tmp_path / "state.json").exists()
    # A stage that failed after acting keeps the deployment real.
    fakes.hooks = {}
    fakes.fail = {"network"}
    with pytest.raises(StageError, match="network broke"):
        Runner(fakes.specs(), State.load(tmp_path / "state.json", "real"), make).run()
    with pytest.raises(StageError, match="records a real deployment"):
        State.load(tmp_path / "state.json", "sandbox")


def test_ctrl_c_answers_at_once_and_records_the_running_stage_as_interrupted(
    tmp_path: Path,
) -> None:
    """Ctrl-C while a stage runs: run() raises straight away (the stage is still running),
    the stage is told as "stopping" and recorded "interrupted", and a re-run redoes it."""
    import _thread
    import signal

    fakes = Fakes()
    release = threading.Event()

    def interrupted_mid_stage() -> None:
        _thread.interrupt_main()  # what the terminal's Ctrl-C does to the main thread
        release.wait(30)

    fakes.hooks = {"image": interrupted_mid_stage}
    events: list[tuple[str, str]] = []
    r = runner(tmp_path, fakes)
    r.on_event = lambda e: events.append((e.stage, e.kind))
    handler = signal.getsignal(signal.SIGINT)
    # Python's own Ctrl-C handler, as in a terminal: a process started in the background
    # by a non-interactive shell inherits SIGINT ignored, and interrupt_main() then does
    # nothing.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            r.run()
        assert not release.is_set()  # run() did not wait for the stage
        assert ("image", "stopping") in events
        state = json.loads((tmp_path / "state.json").read_text())
        assert state["stages"]["image"]["status"] == "interrupted"
        assert "cluster" not in state["stages"]  # nothing started after the interrupt
        # A second Ctrl-C would now leave at once.
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, handler)
        release.set()
    fakes.hooks = {}
    runner(tmp_path, fakes).run()
    assert fakes.calls["image"] == 2 and fakes.calls["network"] == 1


def test_status_shows_drift_between_the_config_and_what_a_stage_ran_with(
    project: Path,
) -> None:
    """A done stage whose inputs the config no longer gives is shown as changed (an up
    would redo it); unchanged otherwise; a stage whose upstream has no outputs: unknown."""
    from ruamel.yaml import YAML

    from pwbcluster.config import load_config
    from pwbcluster.pipeline import orchestrate

    path = project / "config" / "example.yaml"
    cfg = load_config(path)
    network = next(s for s in stage_specs() if s.name == "network")
    ctx = StageContext(cfg, Upstream(), account=None)  # type: ignore[arg-type]
    state = State.load(orchestrate.state_path(cfg), "sandbox")
    from pwbcluster.pipeline.state import StageRecord

    net_out = contracts.planned_network(cfg.region, cfg.name)
    state.record(
        "network", StageRecord("done", fingerprint(network, ctx), contracts.to_dict(net_out))
    )
    state.record("services", StageRecord("done", "whatever", {"x": 1}))
    rows = {r["stage"]: r for r in orchestrate.status_rows(cfg)["stages"]}
    assert rows["network"]["drift"] == "unchanged", rows["network"]
    assert rows["services"]["drift"] == "changed"  # its recorded fingerprint is not today's

    yaml = YAML()
    data = yaml.load(path.read_text())
    data.setdefault("aux", {}).setdefault("network", {})["cidr"] = "10.99.0.0/16"
    with path.open("w") as handle:
        yaml.dump(data, handle)
    edited = load_config(path)
    rows = {r["stage"]: r for r in orchestrate.status_rows(edited)["stages"]}
    assert rows["network"]["drift"] == "changed"
    table = orchestrate.status_table(edited)
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(table)
    assert "config changed since" in console.export_text()
