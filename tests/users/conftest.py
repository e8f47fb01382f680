"""A Samba AD DC (standing in for SimpleAD: no LDAPS) provisioned once per session."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pwbcluster.stages.users.directory import Target

from .samba_dc import DC_ADDR, DOMAIN, SambaDC, unavailable_reason


@pytest.fixture(scope="session")
def samba_dc() -> Iterator[SambaDC]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    # The DC's database on disk, as a real directory keeps it (not tmpfs, which would be
    # kinder): provisioning took 11.2 s on disk here, the same as on tmpfs, and the tests
    # write a few dozen users only.
    dc = SambaDC(workdir=Path(tempfile.mkdtemp(prefix="pwbad-", dir="/var/tmp")))
    dc.start()
    try:
        yield dc
    finally:
        dc.close()


@pytest.fixture
def target(samba_dc: SambaDC) -> Target:
    return Target(domain=DOMAIN, servers=(DC_ADDR,))
