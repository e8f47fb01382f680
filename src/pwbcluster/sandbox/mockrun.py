"""Run a Pulumi program in-process under ``pulumi.runtime.Mocks`` (no CLI, no engine).

Used by the sandbox adapter and the tests. Pulumi's runtime settings are context
variables and its mock monitor is global to the run, so each run happens in a fresh
``contextvars.Context`` with its own event loop, and runs are serialised by a lock: a
run is safe from any thread (the stage runner calls stages from worker threads).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

import pulumi

_LOCK = threading.Lock()


@dataclass
class Registered:
    """One resource as the program registered it: URN, type, inputs, which were secret."""

    urn: str
    type: str
    name: str
    id: str | None
    inputs: dict[str, Any]
    secret_inputs: frozenset[str]
    outputs: dict[str, Any] = field(default_factory=dict)
    # URNs of the resources it was declared to depend on (``depends_on`` included).
    dependencies: tuple[str, ...] = ()


def unwrap_secrets(value: Any) -> tuple[Any, bool]:
    """Strip Pulumi's secret markers; say whether any part of ``value`` was secret."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            inner, _ = unwrap_secrets(value.get("value"))
            return inner, True
        out: dict[str, Any] = {}
        any_secret = False
        for key, item in value.items():
            out[key], secret = unwrap_secrets(item)
            any_secret = any_secret or secret
        return out, any_secret
    if isinstance(value, list):
        items = [unwrap_secrets(item) for item in value]
        return [i for i, _ in items], any(s for _, s in items)
    return value, False


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, keeping every registration with its URN and inputs."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registered: dict[str, Registered] = {}
        self._records_lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        raw = rpc.deserialize_properties(request.object)
        inputs: dict[str, Any] = {}
        secret: set[str] = set()
        for key, value in raw.items():
            inputs[key], is_secret = unwrap_secrets(value)
            if is_secret:
                secret.add(key)
        state = self.resources[response.urn].state if response.urn in self.resources else {}
        outputs, _ = unwrap_secrets(dict(state or {}))
        record = Registered(
            urn=response.urn,
            type=request.type,
            name=request.name,
            id=response.id or None,
            inputs=inputs,
            secret_inputs=frozenset(secret),
            outputs=outputs,
            dependencies=tuple(request.dependencies),
        )
        with self._records_lock:
            self.registered[response.urn] = record
        return response


@dataclass
class MockRun:
    outputs: dict[str, Any]
    # Names of outputs that were secret.
    secret_outputs: frozenset[str]
    registered: dict[str, Registered]


def run_with_mocks(
    program: Callable[[], Mapping[str, Any]],
    mocks: pulumi.runtime.Mocks,
    project: str,
    stack: str,
    preview: bool = False,
) -> MockRun:
    """Run ``program`` under ``mocks``; return its resolved outputs and registrations."""
    with _LOCK:
        context = contextvars.Context()
        return context.run(_run, program, mocks, project, stack, preview)


def _run(
    program: Callable[[], Mapping[str, Any]],
    mocks: pulumi.runtime.Mocks,
    project: str,
    stack: str,
    preview: bool,
) -> MockRun:
    from pulumi.runtime.settings import SETTINGS
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    monitor = RecordingMonitor(mocks)
    resolved: dict[str, Any] = {}
    secret_names: set[str] = set()
    try:
        pulumi.runtime.set_mocks(
            mocks, project=project, stack=stack, preview=preview, monitor=monitor
        )
        SETTINGS.rpc_manager.clear()
        SETTINGS.outputs.clear()

        def body() -> None:
            outputs = program()

            async def collect() -> None:
                for key, value in outputs.items():
                    out = pulumi.Output.from_input(value)
                    resolved[key] = await out.future(with_unknowns=False)
                    if await out.is_secret():
                        secret_names.add(key)

            _sync_await(collect())

        _sync_await(run_pulumi_func(body))
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    return MockRun(resolved, frozenset(secret_names), dict(monitor.registered))
