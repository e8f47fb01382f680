"""The rendered ParallelCluster config: login pool actions, Args, directory, no secrets."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pwbcluster.config.model import model_of
from pwbcluster.errors import ToolkitError
from pwbcluster.stages.cluster.bundle import format_env, node_env
from pwbcluster.stages.cluster.render import (
    LB_CERTIFICATE_TAG,
    LB_PORTS_TAG,
    LB_SSH_TAG,
    render_cluster_config,
    trace,
)
from pwbcluster.stages.cluster.workbench import render_workbench, settings_from

from .fixtures import PREFIX, REGION, random_secret, upstream


def actions(config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = [("HeadNode", config["HeadNode"]["CustomActions"])]
    out += [(f"queue {q['Name']}", q["CustomActions"]) for q in config["Scheduling"]["SlurmQueues"]]
    out += [(f"login {p['Name']}", p["CustomActions"]) for p in config["LoginNodes"]["Pools"]]
    return out


def test_login_pool_runs_the_login_script_on_node_configured(data: dict[str, Any]) -> None:
    network, services, image = upstream()
    config = render_cluster_config(model_of(data), network, services, image, PREFIX, {}).config
    pool = config["LoginNodes"]["Pools"][0]
    assert pool["Count"] == data["cluster"]["login_nodes"]["count"]
    login_script = pool["CustomActions"]["OnNodeConfigured"]["Script"]
    assert login_script == f"s3://{network.bucket_name}/cluster/login-node.sh"
    assert pool["CustomActions"]["OnNodeStart"]["Script"].endswith("/cluster/node-start.sh")
    assert config["HeadNode"]["SharedStorageType"] == "Efs"
    assert config["Imds"]["ImdsSupport"] == "v2.0"
    # HTTPS by default: 443 with the certificate the services stage generated.
    assert {"Key": LB_PORTS_TAG, "Value": "443:8787"} in config["Tags"]
    assert {
        "Key": LB_CERTIFICATE_TAG,
        "Value": services.workbench_certificate_arn,
    } in config["Tags"]
    assert trace(
        {("LoginNodes", "Pools", 0, "Count"): ("cluster", "login_nodes", "count")},
        ("LoginNodes", "Pools", 0, "Count"),
    ) == ("cluster", "login_nodes", "count")


def test_args_carry_only_the_env_uri_and_the_bundle_digest(data: dict[str, Any]) -> None:
    network, services, image = upstream()
    config = render_cluster_config(model_of(data), network, services, image, PREFIX, {}).config
    for where, acts in actions(config):
        for event, action in acts.items():
            assert action["Args"] == [
                "--env-uri",
                f"s3://{network.bucket_name}/cluster/node.env",
            ], (where, event)


def test_directory_uses_ldaps_with_the_ca_and_warns_on_opt_out(data: dict[str, Any]) -> None:
    network, services, image = upstream(tls=True)
    rendered = render_cluster_config(model_of(data), network, services, image, PREFIX, {})
    directory = rendered.config["DirectoryService"]
    assert directory["DomainAddr"].startswith("ldaps://")
    assert directory["LdapTlsReqCert"] == "hard"
    assert directory["LdapTlsCaCert"] == "/etc/pwbcluster/ldap-ca.pem"
    assert not [w for w in rendered.warnings if "ldap" in w.lower()]
    network, services, image = upstream(tls=False)
    rendered = render_cluster_config(model_of(data), network, services, image, PREFIX, {})
    assert "LdapTlsCaCert" not in rendered.config["DirectoryService"]
    assert any("plain LDAP" in w for w in rendered.warnings)


@mock_aws
def test_no_secret_value_in_anything_rendered_or_uploaded(data: dict[str, Any]) -> None:
    data["cluster"]["workbench"]["audit_database"] = True
    data["cluster"]["slurm_accounting"] = True
    client = boto3.client("secretsmanager", region_name=REGION)
    values = {}
    arns = {}
    for name in ("db", "audit", "cookie", "bind", "licence", "slurmdb"):
        values[name] = random_secret(32)
        arns[name] = client.create_secret(Name=f"t/{name}", SecretString=values[name])["ARN"]
    network, services, image = upstream(audit=True, license_arn=arns["licence"])
    import dataclasses

    services = dataclasses.replace(
        services,
        workbench_db=dataclasses.replace(services.workbench_db, password_secret_arn=arns["db"]),
        audit_db=dataclasses.replace(services.audit_db, password_secret_arn=arns["audit"]),  # type: ignore[arg-type]
        slurm_accounting_db=dataclasses.replace(
            services.workbench_db, engine="mysql", password_secret_arn=arns["slurmdb"]
        ),
        cookie_key_secret_arn=arns["cookie"],
        bind_password_secret_arn=arns["bind"],
    )
    rendered = render_cluster_config(model_of(data), network, services, image, PREFIX, {})
    files = render_workbench(settings_from(model_of(data), services), "example")
    env = node_env(model_of(data), network, services, "example", PREFIX)
    everything = (
        json.dumps(rendered.config) + "".join(f.text for f in files.values()) + format_env(env)
    )
    for name, value in values.items():
        assert value not in everything, name
    assert arns["db"] in everything and arns["cookie"] in env.values()
    assert (
        rendered.config["Scheduling"]["SlurmSettings"]["Database"]["PasswordSecretArn"]
        == arns["slurmdb"]
    )


@pytest.mark.pcluster
def test_rendered_config_passes_pclusters_schema_and_validators(data: dict[str, Any]) -> None:
    from pwbcluster.pcluster import offline

    network, services, image = upstream()
    rendered = render_cluster_config(
        model_of(data),
        network,
        services,
        image,
        PREFIX,
        {"Project": "t"},
    )
    result = offline.validate_cluster(rendered.config, "example", REGION)
    assert not result.errors, [f"{e.validator}: {e.message} at {e.path}" for e in result.errors]


def test_plain_http_only_by_explicit_choice_and_with_a_warning(data: dict[str, Any]) -> None:
    network, services, image = upstream()
    data["cluster"]["workbench"]["tls"] = False
    rendered = render_cluster_config(model_of(data), network, services, image, PREFIX, {})
    assert {"Key": LB_PORTS_TAG, "Value": "8787:8787"} in rendered.config["Tags"]
    assert all(t["Key"] != LB_CERTIFICATE_TAG for t in rendered.config["Tags"])
    assert any("plain HTTP" in w for w in rendered.warnings)


def test_your_own_certificate_replaces_the_generated_one(data: dict[str, Any]) -> None:
    network, services, image = upstream()
    own = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-2222-4000-8000-000000000002"
    data["cluster"]["workbench"].update(tls_certificate_arn=own, hostname="wb.example.com")
    tags = render_cluster_config(model_of(data), network, services, image, PREFIX, {}).config[
        "Tags"
    ]
    assert {"Key": LB_CERTIFICATE_TAG, "Value": own} in tags


def test_tls_without_a_recorded_certificate_says_what_to_run(data: dict[str, Any]) -> None:
    network, services, image = upstream()
    old = dataclasses.replace(services, workbench_certificate_arn="")
    with pytest.raises(ToolkitError, match="run `invoke up --stage services` again"):
        render_cluster_config(model_of(data), network, old, image, PREFIX, {})


def test_ssh_off_the_balancer_is_a_tag_the_patch_reads(data: dict[str, Any]) -> None:
    network, services, image = upstream()
    tags = render_cluster_config(model_of(data), network, services, image, PREFIX, {}).config[
        "Tags"
    ]
    assert all(t["Key"] != LB_SSH_TAG for t in tags)
    data["cluster"]["login_nodes"]["ssh_on_balancer"] = False
    tags = render_cluster_config(model_of(data), network, services, image, PREFIX, {}).config[
        "Tags"
    ]
    assert {"Key": LB_SSH_TAG, "Value": "off"} in tags


@pytest.mark.parametrize("ha", [True, False])
def test_login_nodes_run_a_backup_slurmdbd_only_with_accounting_and_controller_ha(
    data: dict[str, Any], ha: bool
) -> None:
    data["cluster"]["slurm_accounting"] = True
    data["cluster"]["ha"]["controllers"] = ha
    network, services, image = upstream()
    import dataclasses

    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t/slurmdb-AbCdEf"
    services = dataclasses.replace(
        services,
        slurm_accounting_db=dataclasses.replace(
            services.workbench_db, engine="mariadb", password_secret_arn=arn
        ),
    )
    env = node_env(model_of(data), network, services, "example", PREFIX)
    rendered = render_cluster_config(model_of(data), network, services, image, PREFIX, {})
    database = rendered.config["Scheduling"]["SlurmSettings"]["Database"]
    assert database["PasswordSecretArn"] == arn  # ParallelCluster's slurmdbd reads the same
    assert env["SLURMDBD_BACKUP"] == ("true" if ha else "false")
    assert env["SLURMDB_PASSWORD_SECRET_ARN"] == (arn if ha else "")
