"""Names the sandbox gives load balancers and target groups are names AWS accepts."""

from __future__ import annotations

import re

import pytest

from pwbcluster.sandbox.moto_handlers import _elb_name

VALID = re.compile(r"^(?!.*--)(?!-)(?!.*-$)[A-Za-z0-9-]{1,32}$")


@pytest.mark.parametrize(
    "wanted",
    [
        "chain-directory-tls--34022d",
        "a-very-long-deployment-name-directory-tls-front-ldap",
        "-leading-and-trailing-",
        "under_score.and.dots",
        "x" * 31 + "-y",
    ],
)
def test_elb_names_follow_the_aws_rules(wanted: str) -> None:
    name = _elb_name(wanted)
    assert VALID.match(name), (wanted, name)


def test_a_valid_name_is_kept() -> None:
    assert _elb_name("example-ldap") == "example-ldap"
