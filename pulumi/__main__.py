"""The aux Pulumi program, for the plain `pulumi` CLI (the toolkit runs it inline).

The stack name says which part runs: ``<deployment>-network`` or ``<deployment>-services``.
``PWBCLUSTER_CONFIG`` names the deployment file. The services part needs the network
stage's contract, read from ``build/<deployment>/state.json`` as ``invoke up`` records
it. The components and programs live in ``pwbcluster.aux`` so the stage code, the
sandbox and the tests import the very same code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pulumi
from pwbcluster.config import load_config
from pwbcluster.contracts import NetworkOutputs, from_dict
from pwbcluster.stages.network.args import network_args
from pwbcluster.stages.network.program import network_program
from pwbcluster.stages.services.args import services_args
from pwbcluster.stages.services.program import SECRET_OUTPUTS, services_program


def main() -> None:
    config_path = os.environ.get("PWBCLUSTER_CONFIG")
    if not config_path:
        raise SystemExit("set PWBCLUSTER_CONFIG to the deployment file (config/<name>.yaml)")
    root = Path(__file__).resolve().parent.parent
    config = load_config(root / config_path if not Path(config_path).is_absolute() else config_path)
    stack = pulumi.get_stack()
    if stack == f"{config.name}-network":
        outputs = network_program(network_args(config.data, config.tags()))
    elif stack == f"{config.name}-services":
        state_file = config.build_dir / "state.json"
        recorded = json.loads(state_file.read_text()) if state_file.exists() else {}
        network = recorded.get("stages", {}).get("network", {}).get("outputs")
        if not network:
            raise SystemExit(f"{state_file}: no network outputs; run `invoke up --stage network`")
        contract = from_dict(NetworkOutputs, network)
        outputs = services_program(services_args(config.data, config.tags(), contract))
    else:
        raise SystemExit(f"stack {stack!r}: expected {config.name}-network or -services")
    for key, value in outputs.items():
        if value is not None:
            pulumi.export(key, pulumi.Output.secret(value) if key in SECRET_OUTPUTS else value)


main()
