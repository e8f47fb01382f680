"""Mock runs are safe from worker threads: concurrent runs do not see each other."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from pwbcluster.config import Config
from pwbcluster.sandbox.fakes import OfflineMocks
from pwbcluster.sandbox.mockrun import run_with_mocks
from pwbcluster.stages.network.args import network_args
from pwbcluster.stages.network.program import network_program


@pytest.mark.timeout(60)  # without the lock, concurrent runs deadlock
def test_concurrent_runs_from_threads_stay_apart(base_config: Config) -> None:
    def run(deployment: str) -> tuple[str, set[str], str]:
        data = {**base_config.data, "deployment": {**base_config.data["deployment"]}}
        data["deployment"]["name"] = deployment
        net_args = network_args(data, {"Deployment": deployment})
        result = run_with_mocks(
            lambda: network_program(net_args), OfflineMocks(), "test", deployment
        )
        stacks = {urn.split("::")[0] for urn in result.registered}
        return deployment, stacks, result.outputs["bucket_name"]

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(run, ["alpha", "beta", "gamma"]))
    for deployment, stacks, bucket in results:
        assert stacks == {f"urn:pulumi:{deployment}"}, (deployment, stacks)
        assert bucket.startswith(f"{deployment}-scripts-"), (deployment, bucket)
