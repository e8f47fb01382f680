"""Values that reach a file a node reads or runs as root cannot change its meaning: the
schema refuses them with file:line, and each renderer refuses them again whatever the
schema said (a loosened schema, a stage output, a default)."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pwbcluster.config import ConfigError, load_config
from pwbcluster.config.model import model_of
from pwbcluster.render_guard import UnsafeValueError
from pwbcluster.stages.cluster.bundle import format_env, node_env
from pwbcluster.stages.cluster.workbench import render_workbench, settings_from
from pwbcluster.stages.image.envfile import render_env

from .fixtures import PREFIX, upstream

ROOT = Path(__file__).resolve().parents[2]
INJECTION = "pwb-admins\nauth-none=1\nserver-user=root"
BAD_GROUPS = [INJECTION, "pwb-admins=x", "", "a,b", "admins)(uid=*", " pwb"]


def settings(data: dict[str, Any]) -> Any:
    _, services, _ = upstream()
    return settings_from(model_of(data), services)


@pytest.mark.parametrize("key", ["admin_group", "user_group"])
@pytest.mark.parametrize("value", BAD_GROUPS)
def test_config_validate_refuses_group_injection_with_file_and_line(
    project: Path, key: str, value: str
) -> None:
    dep = project / "config" / "dev.yaml"
    # A YAML double-quoted scalar: the line break stays an escape in the file.
    quoted = '"' + value.replace("\n", "\\n") + '"'
    head = textwrap.dedent(
        """\
        deployment:
          name: dev
          region: eu-west-1
          owner_email: team@example.com
        cluster:
          workbench:
        """
    )
    dep.write_text(f"{head}    {key}: {quoted}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(dep)
    found = [str(p) for p in info.value.problems]
    assert any(re.search(rf"config/dev\.yaml:7 cluster\.workbench\.{key}\b", p) for p in found), (
        found
    )


@pytest.mark.parametrize("key", ["admin_group", "user_group"])
@pytest.mark.parametrize("value", BAD_GROUPS)
def test_workbench_renderer_refuses_group_injection_whatever_the_schema(
    data: dict[str, Any], key: str, value: str
) -> None:
    bad = dataclasses.replace(settings(data), **{key: value})
    with pytest.raises(UnsafeValueError, match=rf"cluster\.workbench\.{key}"):
        render_workbench(bad, "example")


def test_workbench_renderer_accepts_the_example_groups(data: dict[str, Any]) -> None:
    files = render_workbench(settings(data), "example")
    rserver = files["etc/rstudio/rserver.conf"].text
    assert "admin-group=pwb-admins\n" in rserver
    assert "auth-none" not in rserver and "server-user" not in rserver


@pytest.mark.parametrize(
    "field, value",
    [
        ("r_default", "4.4.1\nauth-none=1"),
        ("workbench_version", "2025.05.1\r"),
        ("shared_dir", "/opt/rstudio-shared\nserver-user=root"),
    ],
)
def test_workbench_renderer_refuses_a_line_break_in_any_value(
    data: dict[str, Any], field: str, value: str
) -> None:
    bad = dataclasses.replace(settings(data), **{field: value})
    with pytest.raises(UnsafeValueError, match=field):
        render_workbench(bad, "example")


def test_workbench_renderer_refuses_a_line_break_in_a_queue_value(data: dict[str, Any]) -> None:
    s = settings(data)
    queue = dataclasses.replace(s.queues[0], cluster="all\nauth-none=1")
    bad = dataclasses.replace(s, queues=(queue, *s.queues[1:]))
    with pytest.raises(UnsafeValueError, match=r"queues\[0\]\.cluster"):
        render_workbench(bad, "example")


def test_workbench_renderer_refuses_a_bad_deployment_name(data: dict[str, Any]) -> None:
    with pytest.raises(UnsafeValueError, match="deployment"):
        render_workbench(settings(data), "example\nauth-none=1")


@pytest.mark.parametrize("value", ["two\nlines", "cr\rhere", "nul\x00"])
def test_node_env_writer_refuses_a_line_break_naming_the_key(value: str) -> None:
    with pytest.raises(UnsafeValueError, match=r"node\.env: REGION"):
        format_env({"REGION": value})


def node_env_keys_of_reader() -> list[str]:
    text = (ROOT / "cluster" / "lib" / "common.sh").read_text(encoding="utf-8")
    block = re.search(r"^NODE_ENV_KEYS=\((.*?)^\)", text, re.S | re.M)
    assert block, "cluster/lib/common.sh has no NODE_ENV_KEYS=( ... ) list"
    return block.group(1).split()


def test_node_env_writer_and_reader_agree_on_the_keys(data: dict[str, Any]) -> None:
    network, services, _ = upstream()
    written = list(node_env(model_of(data), network, services, "example", PREFIX))
    allowed = node_env_keys_of_reader()
    assert sorted(written) == sorted(allowed), (
        f"written but refused by nodes: {sorted(set(written) - set(allowed))}; "
        f"allowed but never written: {sorted(set(allowed) - set(written))}"
    )
    assert not {"PATH", "LD_PRELOAD", "BASH_ENV", "IFS"} & set(allowed)


@pytest.mark.parametrize(
    "env, key",
    [
        ({"R_VERSIONS": "4.4.1\nWORKBENCH_URL_BASE=https://evil.example"}, "R_VERSIONS"),
        ({"R_VERSIONS": "4.4.1\r"}, "R_VERSIONS"),
        ({"PATH=/tmp/x\nR": "1"}, "key"),
        ({"": "1"}, "key"),
    ],
)
def test_image_env_renderer_refuses_injection(env: dict[str, str], key: str) -> None:
    with pytest.raises(UnsafeValueError, match=rf"image\.env: {key}"):
        render_env(env)


def test_image_env_renderer_keeps_equals_in_a_value() -> None:
    # install-image.sh splits at the first '=': a URL query stays one value.
    assert render_env({"R_URL_BASE": "https://x/?a=b"}).endswith("R_URL_BASE=https://x/?a=b\n")
