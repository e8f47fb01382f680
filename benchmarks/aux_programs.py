"""Time the aux Pulumi programs: under offline mocks, and as the sandbox runs them (moto).

    .venv/bin/python benchmarks/aux_programs.py [config/example.yaml] [--rounds 3]

Prints the figures; asserts nothing (timings depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from moto.server import ThreadedMotoServer

from pwbcluster.config import load_config
from pwbcluster.contracts import NetworkOutputs
from pwbcluster.pipeline.runner import StageContext
from pwbcluster.sandbox.fakes import OfflineMocks
from pwbcluster.sandbox.mockrun import run_with_mocks
from pwbcluster.stages.network import stage as network
from pwbcluster.stages.network.args import network_args
from pwbcluster.stages.network.program import network_program
from pwbcluster.stages.services import stage as services
from pwbcluster.stages.services.args import services_args
from pwbcluster.stages.services.program import services_program
from pwbcluster.stages.stack_outputs import to_contract


def timed(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", nargs="?", default="config/example.yaml")
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    config = load_config(opts.config)
    tags = config.tags()
    net_args = network_args(config.model, tags)
    net_run = run_with_mocks(lambda: network_program(net_args), OfflineMocks(), "b", "n")
    contract = to_contract(NetworkOutputs, net_run.outputs)
    svc_args = services_args(config.model, tags, contract)
    for label, program, count in (
        ("network", lambda: network_program(net_args), len(net_run.registered)),
        ("services", lambda: services_program(svc_args), None),
    ):
        times = [
            timed(lambda p=program, s=label: run_with_mocks(p, OfflineMocks(), "b", s))
            for _ in range(opts.rounds)
        ]
        extra = f", {count} registrations" if count else ""
        print(f"offline mocks, {label}: median {statistics.median(times):.2f} s{extra}")

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    extra = {"aws_endpoint_url": f"http://{host}:{port}"}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(config, root=Path(tmp))
        ctx = StageContext(cfg, {}, "sandbox", extra=extra)
        started = time.perf_counter()
        net = network.run(ctx)
        t_net = time.perf_counter() - started
        svc_ctx = StageContext(cfg, {"network": net}, "sandbox", extra=extra)
        started = time.perf_counter()
        svc = services.run(svc_ctx)
        t_svc = time.perf_counter() - started
        started = time.perf_counter()
        services.destroy(ctx, svc)
        network.destroy(ctx, net)
        t_down = time.perf_counter() - started
    server.stop()
    print(
        f"sandbox (moto), network: {t_net:.2f} s, services: {t_svc:.2f} s, destroy: {t_down:.2f} s"
    )


if __name__ == "__main__":
    main()
