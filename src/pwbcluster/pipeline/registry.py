"""The deployment's stages and what each needs: network -> (services || image) -> cluster -> users.

Each stage package exports its ``SPEC`` (``pwbcluster.contracts.stage.StageSpec``); this is
the one list of them.
"""

from __future__ import annotations

from pwbcluster.contracts.stage import StageSpec
from pwbcluster.stages.cluster.stage import SPEC as CLUSTER
from pwbcluster.stages.image.stage import SPEC as IMAGE
from pwbcluster.stages.network.stage import SPEC as NETWORK
from pwbcluster.stages.services.stage import SPEC as SERVICES
from pwbcluster.stages.users.stage import SPEC as USERS

SPECS: tuple[StageSpec, ...] = (NETWORK, SERVICES, IMAGE, CLUSTER, USERS)
NAMES = tuple(spec.name for spec in SPECS)


def stage_specs() -> list[StageSpec]:
    return list(SPECS)
