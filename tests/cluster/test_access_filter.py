"""Directory access: only Workbench's users and admins log in to any node; the bind user
and every other directory account are refused by sssd's ldap_access_filter."""

from __future__ import annotations

import dataclasses
from typing import Any

import ldap3
import pytest

from pwbcluster.config.model import model_of
from pwbcluster.render_guard import UnsafeValueError
from pwbcluster.stages.cluster.render import (
    group_container_dn,
    ldap_access_filter,
    render_cluster_config,
)
from pwbcluster.stages.users.run import target_for

from .fixtures import PREFIX, upstream


def rendered_filter(data: dict[str, Any]) -> str:
    network, services, image = upstream()
    config = render_cluster_config(model_of(data), network, services, image, PREFIX, {}).config
    return str(config["DirectoryService"]["LdapAccessFilter"])


def test_filter_names_the_workbench_groups_in_the_rendered_config(data: dict[str, Any]) -> None:
    base = "DC=corp,DC=example,DC=com"
    assert rendered_filter(data) == (
        f"(|(memberOf=CN=pwb-users,CN=Users,{base})(memberOf=CN=pwb-admins,CN=Users,{base}))"
    )


@pytest.mark.parametrize("directory_type", ["SimpleAD", "MicrosoftAD"])
def test_filter_uses_the_container_pwb_users_creates_groups_in(directory_type: str) -> None:
    _, services, _ = upstream()
    services = dataclasses.replace(services, directory_type=directory_type)
    assert group_container_dn(services) == target_for(services).container


def test_the_filter_admits_members_and_refuses_the_bind_user(data: dict[str, Any]) -> None:
    """Evaluated by ldap3's in-memory server, the way sssd applies it to a user's entry."""
    _, services, _ = upstream()
    base = "DC=corp,DC=example,DC=com"
    users = f"CN=pwb-users,CN=Users,{base}"
    admins = f"CN=pwb-admins,CN=Users,{base}"
    server = ldap3.Server("mock")
    conn = ldap3.Connection(server, client_strategy=ldap3.MOCK_SYNC)
    conn.bind()
    entries = {
        "posit0001": [users],
        "admin0001": [admins, users],
        "pcluster-bind": [],  # the bind user is in neither group
        "other": [f"CN=Domain Users,CN=Users,{base}"],
    }
    for name, groups in entries.items():
        attrs: dict[str, Any] = {"objectClass": ["user"], "sAMAccountName": name}
        if groups:
            attrs["memberOf"] = groups
        conn.strategy.add_entry(f"CN={name},CN=Users,{base}", attrs)
    conn.search(base, rendered_filter(data), attributes=["sAMAccountName"])
    admitted = sorted(str(e.sAMAccountName) for e in conn.entries)
    assert admitted == ["admin0001", "posit0001"]
    assert services.bind_user_dn.split(",")[0].lower() == "cn=pcluster-bind"


@pytest.mark.parametrize("group", ["", "a)(uid=*", "pwb,x", "pwb\nx"])
def test_filter_refuses_a_group_that_would_change_it(group: str) -> None:
    _, services, _ = upstream()
    with pytest.raises(UnsafeValueError, match="LdapAccessFilter"):
        ldap_access_filter(services, group, "pwb-admins")
