"""Fixtures for the aux programs: each variant of the deployment runs once under mocks."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pwbcluster.config import Config, load_config
from pwbcluster.contracts import NetworkOutputs, ServicesOutputs
from pwbcluster.sandbox.fakes import OfflineMocks
from pwbcluster.sandbox.mockrun import MockRun, Registered, run_with_mocks
from pwbcluster.stages.network.args import network_args
from pwbcluster.stages.network.program import network_program
from pwbcluster.stages.services.args import services_args
from pwbcluster.stages.services.program import services_program
from pwbcluster.stages.services.toolwheel import build_tool_wheel
from pwbcluster.stages.stack_outputs import to_contract

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"


@dataclass
class Deployed:
    """One deployment variant run under mocks: both programs and their contracts."""

    config: Config
    network_run: MockRun
    services_run: MockRun
    network: NetworkOutputs
    services: ServicesOutputs

    @property
    def registered(self) -> list[Registered]:
        return [*self.network_run.registered.values(), *self.services_run.registered.values()]

    def of_type(self, suffix: str) -> list[Registered]:
        return [r for r in self.registered if r.type.endswith(suffix)]

    def one(self, suffix: str) -> Registered:
        found = self.of_type(suffix)
        assert len(found) == 1, f"expected one {suffix}, found {[r.urn for r in found]}"
        return found[0]

    def secret_values(self) -> dict[str, str]:
        """Every generated secret value (passwords, private keys), by URN."""
        values: dict[str, str] = {}
        for r in self.registered:
            if r.type == "random:index/randomPassword:RandomPassword":
                values[r.urn] = r.outputs["result"]
            if r.type == "tls:index/privateKey:PrivateKey":
                for key in ("privateKeyPem", "privateKeyOpenssh"):
                    values[f"{r.urn}#{key}"] = r.outputs[key]
        return values


def _variant(base: Config, change: Callable[[dict[str, Any]], None] | None) -> Config:
    data = copy.deepcopy(base.data)
    if change is not None:
        change(data)
    return dataclasses.replace(base, data=data)


def deploy(config: Config, tool_wheel: str | None = None) -> Deployed:
    tags = config.tags()
    net_args = network_args(config.model, tags)
    net_run = run_with_mocks(
        lambda: network_program(net_args), OfflineMocks(config.region), "test", "network"
    )
    network = to_contract(NetworkOutputs, net_run.outputs)
    svc_args = services_args(config.model, tags, network, tool_wheel=tool_wheel)
    svc_run = run_with_mocks(
        lambda: services_program(svc_args), OfflineMocks(config.region), "test", "services"
    )
    services = to_contract(ServicesOutputs, svc_run.outputs)
    return Deployed(config, net_run, svc_run, network, services)


@pytest.fixture(scope="session")
def base_config() -> Config:
    return load_config(EXAMPLE)


# A licence secret the user created themselves (the toolkit never creates it).
LICENCE_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pwb-licence-AbCdEf"


def _all_databases(data: dict[str, Any]) -> None:
    data["aux"]["databases"]["audit"]["enabled"] = True
    data["aux"]["databases"]["slurm_accounting"]["enabled"] = True
    # Accounting with controller HA: the login nodes run the backup slurmdbd.
    data["cluster"]["slurm_accounting"] = True
    data["aux"]["databases"]["workbench"]["multi_az"] = True
    data["cluster"]["workbench"]["license_secret_arn"] = LICENCE_ARN
    data["cluster"]["workbench"]["audit_database"] = True


def _managed_ad(data: dict[str, Any]) -> None:
    data["aux"]["directory"]["type"] = "MicrosoftAD"
    data["aux"]["directory"]["size"] = "Standard"


def _no_ldaps(data: dict[str, Any]) -> None:
    data["aux"]["directory"]["ldaps"] = False


def _existing_vpc(data: dict[str, Any]) -> None:
    net = data["aux"]["network"]
    net["vpc_id"] = "vpc-0123456789abcdef0"
    net["public_subnet_ids"] = ["subnet-0123456789abcdef2"]
    net["private_subnet_ids"] = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]


def _no_controller_ha(data: dict[str, Any]) -> None:
    data["cluster"]["ha"]["controllers"] = False


VARIANTS: dict[str, Callable[[dict[str, Any]], None] | None] = {
    "default": None,
    "all-databases": _all_databases,
    "managed-ad": _managed_ad,
    "no-ldaps": _no_ldaps,
    "existing-vpc": _existing_vpc,
    "no-controller-ha": _no_controller_ha,
}


@pytest.fixture(scope="session")
def tool_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The jump host's pwb-users wheel, built as the services stage builds it (0.2 s)."""
    return build_tool_wheel(tmp_path_factory.mktemp("jump"))


@pytest.fixture(scope="session")
def deployments(base_config: Config, tool_wheel: Path) -> Iterator[dict[str, Deployed]]:
    """Every variant, run once per session (about 0.5 s each)."""
    yield {
        name: deploy(_variant(base_config, change), str(tool_wheel))
        for name, change in VARIANTS.items()
    }


@pytest.fixture(scope="session")
def default(deployments: dict[str, Deployed]) -> Deployed:
    return deployments["default"]


def policy_of(r: Registered) -> dict[str, Any]:
    doc = r.inputs["policy"]
    return json.loads(doc) if isinstance(doc, str) else doc
