"""The generated certificates' expiry: recorded by the services program, warned about
ahead of time (``certificate_expiry``), and re-issued by ``aux.renew-certs``."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from pwbcluster.aws import pulumi_driver
from pwbcluster.contracts.account import StackRequest
from pwbcluster.errors import StageError
from pwbcluster.stages.services.certs import SERVER_CERT_TYPE, SERVER_VALIDITY_HOURS
from pwbcluster.stages.services.expiry import (
    EXPIRY_WARNING_DAYS,
    expiry_warnings,
    parse_not_after,
)

from .conftest import Deployed


def test_the_program_records_each_generated_certificates_not_after(default: Deployed) -> None:
    s = default.services
    now = dt.datetime.now(dt.UTC)
    for name in ("ldap_certificate_not_after", "workbench_certificate_not_after"):
        value = getattr(s, name)
        assert value, f"{name} not recorded"
        left = parse_not_after(value) - now
        # Two years from issue, as the provider's validity_end_time says.
        assert abs(left - dt.timedelta(hours=SERVER_VALIDITY_HOURS)) < dt.timedelta(hours=1)
    certs = [r for r in default.registered if r.type == SERVER_CERT_TYPE]
    assert len(certs) == 2, [r.urn for r in certs]


def test_no_ldaps_records_no_ldap_certificate(deployments: dict[str, Deployed]) -> None:
    assert deployments["no-ldaps"].services.ldap_certificate_not_after == ""


def _with(outputs: Any, days: float) -> Any:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return dataclasses.replace(
        outputs, ldap_certificate_not_after=stamp, workbench_certificate_not_after=""
    )


def test_a_warning_comes_within_the_window_and_not_before(default: Deployed) -> None:
    s = default.services
    assert expiry_warnings(_with(s, EXPIRY_WARNING_DAYS + 5)) == []
    (soon,) = expiry_warnings(_with(s, 20.5))
    assert soon.startswith("certificate_expiry: the generated LDAPS front certificate expires")
    assert "(20 days)" in soon and "invoke aux.renew-certs" in soon
    (gone,) = expiry_warnings(_with(s, -3))
    assert "expired on" in gone
    # Fresh certificates (two years) warn of nothing.
    assert expiry_warnings(s) == []


class _FakeStack:
    def __init__(self, resources: list[dict[str, str]]) -> None:
        self.resources = resources
        self.replaced: list[str] | None = None

    def export_stack(self) -> Any:
        return type("Deployment", (), {"deployment": {"resources": self.resources}})()

    def up(self, on_output: Any = None, replace: list[str] | None = None) -> None:
        self.replaced = replace


def test_renewal_replaces_exactly_the_server_certificates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert = "urn:pulumi:example-services::pwbcluster-aux::tls:index/locallySignedCert:LocallySignedCert::x"
    stack = _FakeStack(
        [
            {"urn": cert, "type": SERVER_CERT_TYPE},
            {
                "urn": "urn:...::aws:acm/certificate:Certificate::x",
                "type": "aws:acm/certificate:Certificate",
            },
            {
                "urn": "urn:...::tls:index/selfSignedCert:SelfSignedCert::ca",
                "type": "tls:index/selfSignedCert:SelfSignedCert",
            },
        ]
    )
    monkeypatch.setattr(pulumi_driver, "_stack", lambda *a, **k: stack)
    monkeypatch.setattr(pulumi_driver, "outputs", lambda *a, **k: {"ok": True})
    request = StackRequest("services", "p", "s", dict, replace_types=(SERVER_CERT_TYPE,))
    assert pulumi_driver.up(request, "file:///x", "eu-west-1") == {"ok": True}
    assert stack.replaced == [cert]  # the CA (which nodes trust) and ACM's entry stay
    plain = StackRequest("services", "p", "s", dict)
    pulumi_driver.up(plain, "file:///x", "eu-west-1")
    assert stack.replaced is None
    stack.resources = []
    with pytest.raises(StageError, match="holds no tls:index/locallySignedCert"):
        pulumi_driver.up(request, "file:///x", "eu-west-1")


def test_renewal_of_a_real_deployment_asks_first_and_touches_nothing_unconfirmed(
    default: Deployed, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    from pwbcluster.contracts import to_dict
    from pwbcluster.pipeline import aux_tasks, orchestrate
    from pwbcluster.pipeline.state import StageRecord, State

    config = dataclasses.replace(default.config, root=tmp_path)
    with pytest.raises(StageError, match="no services stage recorded"):
        aux_tasks.renew_certs(config, "real", Console(), lambda q: True)
    state = State.load(orchestrate.state_path(config), "real")
    for name, outputs in (("network", default.network), ("services", default.services)):
        state.record(name, StageRecord("done", "f" * 8, to_dict(outputs), None, 1.0, 2.0))

    def no_account(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the account was reached before confirmation")

    monkeypatch.setattr(orchestrate, "account", no_account)
    asked: list[str] = []
    with pytest.raises(StageError, match="not confirmed"):
        aux_tasks.renew_certs(config, "real", Console(), lambda q: asked.append(q) or False)
    assert asked and "example" in asked[0]
    assert aux_tasks.renew_certs(config, "real", Console(), lambda q: True, dry_run=True) == []
