"""The generated Workbench files: one launcher cluster per queue, every R version,
profiles sized from the instance types, modes, no password anywhere."""

from __future__ import annotations

import configparser
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pwbcluster.config.model import model_of
from pwbcluster.errors import ToolkitError
from pwbcluster.stages.cluster.bundle import container_tag_version, format_env, node_env
from pwbcluster.stages.cluster.workbench import (
    node_load_balancer,
    render_workbench,
    settings_from,
    write_tree,
)
from pwbcluster.stages.cluster.workbench.sizing import instance_size

from .fixtures import PREFIX, upstream

ROOT = Path(__file__).resolve().parents[2]
ETC = "etc/rstudio"


def render(data: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    _, services, _ = upstream(**kwargs)
    files = render_workbench(settings_from(model_of(data), services), "example")
    return {path.removeprefix(ETC + "/"): f.text for path, f in files.items()}


def kv(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def launcher_clusters(text: str) -> list[dict[str, str]]:
    clusters, current = [], None
    for line in text.splitlines():
        if line.strip() == "[cluster]":
            current = {}
            clusters.append(current)
        elif line.startswith("["):
            current = None
        elif current is not None and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            current[key] = value
    return clusters


def test_every_queue_has_a_launcher_cluster(data: dict[str, Any]) -> None:
    data["cluster"]["queues"].append(
        {"name": "big", "instance_type": "m5.4xlarge", "min_count": 0, "max_count": 2}
    )
    files = render(data)
    clusters = launcher_clusters(files["launcher.conf"])
    assert [c["name"] for c in clusters] == ["Slurm-all", "Slurm-gpu", "Slurm-big"]
    for queue, cluster in zip(data["cluster"]["queues"], clusters, strict=True):
        assert cluster["type"] == "Slurm"
        own = cluster["config-file"].removeprefix("/etc/rstudio/")
        conf = kv(files[own])
        assert (
            conf["profile-config"] == f"/etc/rstudio/launcher.slurm.{queue['name']}.profiles.conf"
        )
        assert conf["slurm-bin-path"] == "/opt/slurm/bin"
        assert Path(conf["profile-config"]).name in files
        assert Path(conf["resource-profile-config"]).name in files
    assert kv(files["rserver.conf"])["launcher-default-cluster"] == "Slurm-all"


def test_profiles_are_sized_from_the_instance_types(data: dict[str, Any]) -> None:
    files = render(data)
    for queue in data["cluster"]["queues"]:
        size = instance_size(queue["instance_type"])
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(files[f"launcher.slurm.{queue['name']}.profiles.conf"])
        assert int(parser["*"]["max-cpus"]) == size.vcpus
        assert int(parser["*"]["max-mem-mb"]) < size.memory_mib
        assert int(parser["*"].get("max-gpus", 0)) == size.gpus
        resources = configparser.ConfigParser(interpolation=None)
        resources.read_string(files[f"launcher.slurm.{queue['name']}.resources.conf"])
        biggest = max(int(resources[s]["cpus"]) for s in resources.sections())
        assert biggest == size.vcpus
    gpu = kv(files["launcher.slurm.gpu.conf"])
    assert gpu["enable-gpus"] == "1" and gpu["gpu-types"] == "t4"
    assert "enable-gpus" not in kv(files["launcher.slurm.all.conf"])


def test_every_r_version_is_listed(data: dict[str, Any]) -> None:
    data["image"]["r"]["versions"] = ["4.5.1", "4.4.3", "4.1.0"]
    data["image"]["r"]["default"] = "4.1.0"
    files = render(data)
    entries = [block for block in files["r-versions"].strip().split("\n\n")]
    paths = [kv(b.replace(": ", "=")).get("Path") for b in entries]
    assert paths == ["/opt/R/4.5.1", "/opt/R/4.4.3", "/opt/R/4.1.0"]
    assert kv(files["rserver.conf"])["rsession-which-r"] == "/opt/R/4.1.0/bin/R"


def test_rserver_load_balancing_and_groups(data: dict[str, Any]) -> None:
    conf = kv(render(data)["rserver.conf"])
    assert conf["load-balancing-enabled"] == "1"
    assert conf["server-shared-storage-path"] == "/opt/rstudio-shared/shared-storage"
    assert conf["server-health-check-enabled"] == "1"
    assert conf["admin-group"] == data["cluster"]["workbench"]["admin_group"]
    assert conf["www-port"] == str(data["cluster"]["workbench"]["port"])
    assert conf["audit-r-sessions"] == "1"
    # Added per node at boot, from the load balancer: never rendered with a guess.
    assert "launcher-sessions-callback-address" not in conf


def test_database_conf_has_no_password_and_audit_database_follows_the_switch(
    data: dict[str, Any],
) -> None:
    files = render(data, audit=True)
    assert "audit-database.conf" not in files  # the switch is off in the example
    data["cluster"]["workbench"]["audit_database"] = True
    files = render(data, audit=True)
    for name, database in (("database.conf", "rstudio"), ("audit-database.conf", "rstudio_audit")):
        conf = kv(files[name])
        assert conf["provider"] == "postgresql"
        assert conf["database"] == database
        assert "password" not in conf


def test_container_sessions(data: dict[str, Any]) -> None:
    files = render(data)
    assert "singularity-image-directory" not in files["launcher.slurm.all.profiles.conf"]
    assert "APPTAINER_BIND" not in files["launcher-env"]
    data["cluster"]["workbench"].update(
        container_sessions=True, container_images=["jammy", "noble"]
    )
    files = render(data)
    for queue in ("all", "gpu"):
        profile = kv(files[f"launcher.slurm.{queue}.profiles.conf"])
        assert profile["singularity-image-directory"] == "/opt/rstudio-shared/containers"
        assert profile["default-singularity-image"] == "r-session-complete-jammy.sif"
    (record,) = launcher_env_records(files["launcher-env"])
    assert "/opt/slurm" in record["Environment"]["APPTAINER_BIND"].split(",")  # type: ignore[index]
    assert kv(files["rserver.conf"])["launcher-sessions-create-container-user"] == "0"
    assert container_tag_version("2025.05.1+513.pro3") == "2025.05.1"


def test_each_launcher_cluster_submits_to_its_own_queue(data: dict[str, Any]) -> None:
    files = render(data)
    for queue in data["cluster"]["queues"]:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(files[f"launcher.slurm.{queue['name']}.profiles.conf"])
        assert parser["*"]["allowed-partitions"] == queue["name"]


def test_modes_in_a_temporary_root(data: dict[str, Any], tmp_path: Path) -> None:
    _, services, _ = upstream()
    files = render_workbench(settings_from(model_of(data), services), "example")
    written = write_tree(files, tmp_path)
    assert len(written) == len(files) > 15
    for path in written:
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = 0o600 if path.name.endswith("database.conf") else 0o644
        assert mode == expected, path
        assert path.stat().st_uid == os.getuid()


def test_bash_and_python_agree_on_the_per_node_entry(data: dict[str, Any], tmp_path: Path) -> None:
    _, services, _ = upstream()
    files = render_workbench(settings_from(model_of(data), services), "example")
    shared = tmp_path / "shared"
    write_tree(files, shared)
    script = (
        f"source {ROOT}/cluster/lib/common.sh; source {ROOT}/cluster/lib/workbench.sh; "
        "write_load_balancer 10.1.2.3"
    )
    env = {
        **os.environ,
        "WORKBENCH_SHARED_DIR": str(shared),
        "RSTUDIO_ETC": str(tmp_path / "etc"),
        "ROOT_OWNER": f"{os.getuid()}:{os.getgid()}",
    }
    subprocess.run(["bash", "-c", script], env=env, check=True, capture_output=True)
    expected = node_load_balancer(files[f"{ETC}/load-balancer"].text, "10.1.2.3")
    assert (tmp_path / "etc" / "load-balancer").read_text() == expected


def test_node_env_carries_arns_and_refuses_odd_values(data: dict[str, Any]) -> None:
    network, services, _ = upstream(license_arn=None)
    env = node_env(model_of(data), network, services, "example", PREFIX)
    assert env["DB_PASSWORD_SECRET_ARN"] == services.workbench_db.password_secret_arn
    assert env["LICENSE_SECRET_ARN"] == ""
    assert env["WORKBENCH_SHARED_DIR"] == "/opt/rstudio-shared"
    # HTTPS by default, with the generated certificate whose CA every node trusts.
    assert env["LB_SCHEME"] == "https" and env["LB_PORT"] == "443"
    assert env["WORKBENCH_CA"] == "true" and env["WORKBENCH_HOSTNAME"] == ""
    data["cluster"]["workbench"]["tls"] = False
    env = node_env(model_of(data), network, services, "example", PREFIX)
    assert env["LB_SCHEME"] == "http" and env["LB_PORT"] == "8787"
    assert env["WORKBENCH_CA"] == "false"
    with pytest.raises(ToolkitError, match="characters"):
        format_env({"KEY": "two\nlines"})
    with pytest.raises(ToolkitError, match="bad key"):
        format_env({"lower": "x"})


def launcher_env_records(text: str) -> list[dict[str, dict[str, str] | str]]:
    """The launcher-env record format: ``Field: value`` lines, a record per JobType, the
    Environment field's NAME=VALUE pairs continued on indented lines."""
    records: list[dict[str, Any]] = []
    field = ""
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line[0].isspace():
            assert field == "Environment", f"continuation outside Environment: {line!r}"
            name, _, value = line.strip().partition("=")
            records[-1]["Environment"][name] = value
            continue
        field, sep, value = line.partition(":")
        assert sep, f"not a Field: value line: {line!r}"
        if field == "JobType":
            records.append({"JobType": value.strip(), "Environment": {}})
        elif field == "Environment":
            name, _, val = value.strip().partition("=")
            records[-1]["Environment"][name] = val
        else:
            records[-1][field] = value.strip()
    return records


def test_launcher_env_is_in_its_record_format(data: dict[str, Any]) -> None:
    (record,) = launcher_env_records(render(data)["launcher-env"])
    assert record["JobType"] == "any"
    assert record["Environment"] == {"SLURM_CONF": "/opt/slurm/etc/slurm.conf"}
    data["cluster"]["workbench"]["container_sessions"] = True
    (record,) = launcher_env_records(render(data)["launcher-env"])
    env = record["Environment"]
    assert isinstance(env, dict)
    assert env["APPTAINER_BIND"] == env["SINGULARITY_BIND"]
    assert "/opt/slurm" in env["APPTAINER_BIND"].split(",")
    # No plain K=V line: the Launcher would not read it as an environment variable.
    text = render(data)["launcher-env"]
    assert not [ln for ln in text.splitlines() if ln and ln[0].isalpha() and ":" not in ln]


def test_load_balancer_forgets_a_node_that_exits(data: dict[str, Any]) -> None:
    text = render(data)["load-balancer"]
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(node_load_balancer(text, "10.0.1.5"))
    assert parser["config"]["delete-node-on-exit"] == "1"
    assert parser["config"]["balancer"] == "sessions"
    assert parser["config"]["www-host-name"] == "10.0.1.5"


def test_cookies_are_secure_only_behind_tls(data: dict[str, Any]) -> None:
    assert kv(render(data)["rserver.conf"])["auth-cookies-force-secure"] == "1"
    data["cluster"]["workbench"]["tls"] = False
    assert "auth-cookies-force-secure" not in kv(render(data)["rserver.conf"])


def test_database_conf_verifies_the_server_against_the_bundle_the_image_installs(
    data: dict[str, Any],
) -> None:
    script = (ROOT / "image" / "install-rds-ca.sh").read_text()
    (installed,) = [
        line.split("=", 1)[1].strip('"')
        for line in script.splitlines()
        if line.startswith("readonly BUNDLE_PATH=")
    ]
    data["cluster"]["workbench"]["audit_database"] = True
    files = render(data, audit=True)
    for name in ("database.conf", "audit-database.conf"):
        conf = kv(files[name])
        uri = conf["connection-uri"]
        host, port, db = conf["host"], conf["port"], conf["database"]
        assert uri.startswith(f"postgresql://{conf['username']}@{host}:{port}/{db}?"), uri
        query = dict(part.split("=", 1) for part in uri.split("?", 1)[1].split("&"))
        assert query == {"sslmode": "verify-full", "sslrootcert": installed}, uri
        assert "password" not in uri


def test_floating_licensing_asks_rserver_for_a_remote_licence(data: dict[str, Any]) -> None:
    assert "server-license-type" not in kv(render(data)["rserver.conf"])
    data["cluster"]["workbench"].update(license_kind="server", license_server="10.1.2.3:8989")
    assert kv(render(data)["rserver.conf"])["server-license-type"] == "remote"
    network, services, _ = upstream()
    env = node_env(data, network, services, "example")
    assert (env["LICENSE_KIND"], env["LICENSE_SERVER"]) == ("server", "10.1.2.3:8989")
