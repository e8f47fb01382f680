"""The typed model: built from the example, frozen, and in step with the JSON Schemas."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import pytest

from pwbcluster.config import ConfigError, load_config
from pwbcluster.config.model import (
    AuxModel,
    ClusterModel,
    Deployment,
    DeploymentModel,
    ImageModel,
    build,
    model_of,
    thaw,
)
from pwbcluster.config.schema import SCHEMA_FILES

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "config" / "schema"
EXAMPLE = ROOT / "config" / "example.yaml"


def test_example_builds() -> None:
    config = load_config(EXAMPLE)
    model = config.model
    assert isinstance(model, Deployment)
    assert model.deployment.name == "example"
    assert model.cluster.workbench.port == config.data["cluster"]["workbench"]["port"]
    assert model.cluster.ha.slurmctld_timeout == config.data["cluster"]["ha"]["slurmctld_timeout"]
    assert model.cluster.queues[1].gpu is True and model.cluster.queues[0].gpu is False
    assert config.tags() == {
        "Project": "posit-workbench-hpc",
        "Owner": "owner@example.com",
        "Deployment": "example",
        "ManagedBy": "pwbcluster",
    }
    # Built once: the same object every time.
    assert config.model is model


def test_model_is_frozen() -> None:
    model = load_config(EXAMPLE).model
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.cluster.workbench.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.deployment = model.deployment  # type: ignore[misc]
    with pytest.raises(TypeError):
        model.deployment.tags["Project"] = "x"  # type: ignore[index]


def test_lists_become_tuples_and_mappings_read_only() -> None:
    model = load_config(EXAMPLE).model
    assert isinstance(model.cluster.queues, tuple)
    assert isinstance(model.image.r.versions, tuple)
    assert isinstance(model.cluster.workbench.container_images, tuple)
    assert isinstance(model.aux.users.admins, tuple)
    assert isinstance(model.deployment.disable_checks, tuple)
    assert isinstance(model.deployment.tags, Mapping)


def test_free_form_overrides_are_frozen_deeply_and_thaw_back(project: Path) -> None:
    path = project / "config" / "dev.yaml"
    path.write_text(
        textwrap.dedent(
            """
            deployment: {name: dev, region: eu-west-1, owner_email: team@example.com}
            cluster:
              pcluster_overrides:
                Scheduling: {SlurmSettings: {ScaledownIdletime: 30}}
                Tags: [{Key: a, Value: b}]
            """
        ),
        encoding="utf-8",
    )
    overrides = load_config(path).model.cluster.pcluster_overrides
    assert overrides["Scheduling"]["SlurmSettings"]["ScaledownIdletime"] == 30
    assert isinstance(overrides["Tags"], tuple)
    with pytest.raises(TypeError):
        overrides["Scheduling"]["x"] = 1
    assert thaw(overrides) == {
        "Scheduling": {"SlurmSettings": {"ScaledownIdletime": 30}},
        "Tags": [{"Key": "a", "Value": "b"}],
    }


def test_a_deployment_override_reaches_the_model(project: Path) -> None:
    path = project / "config" / "dev.yaml"
    path.write_text(
        textwrap.dedent(
            """
            deployment: {name: dev, region: eu-west-1, owner_email: team@example.com}
            cluster:
              workbench: {port: 8443}
              ha: {slurmctld_timeout: 42}
            image:
              r: {versions: [4.5.3], default: 4.5.3}
            """
        ),
        encoding="utf-8",
    )
    model = load_config(path).model
    assert model.cluster.workbench.port == 8443
    assert model.cluster.ha.slurmctld_timeout == 42
    assert model.image.r.versions == ("4.5.3",)
    # Keys the deployment did not override keep the stage file's value.
    assert model.cluster.workbench.admin_group == "pwb-admins"


def test_an_unknown_key_fails_loudly() -> None:
    data = load_config(EXAMPLE).data
    broken = {**data, "cluster": {**data["cluster"], "no_such_key": 1}}
    with pytest.raises(ConfigError, match=r"cluster: no model field for no_such_key"):
        model_of(broken)


def test_build_takes_a_section_on_its_own() -> None:
    data = load_config(EXAMPLE).data
    assert build(ClusterModel, data["cluster"]) == load_config(EXAMPLE).model.cluster


# --- the model against the schemas ------------------------------------------------------

SECTIONS: dict[str, tuple[type, str]] = {
    "deployment": (DeploymentModel, "deployment.schema.json#/$defs/deployment"),
    "aux": (AuxModel, "auxiliary.schema.json"),
    "image": (ImageModel, "image.schema.json"),
    "cluster": (ClusterModel, "cluster.schema.json"),
}


def _schemas() -> dict[str, dict[str, Any]]:
    return {
        file: json.loads((SCHEMA_DIR / file).read_text(encoding="utf-8"))
        for file in SCHEMA_FILES.values()
    }


def _resolve(node: dict[str, Any], file: str, schemas: dict[str, Any]) -> tuple[dict, str]:
    """Follow ``$ref`` (local or to another schema file) until a schema with content."""
    while "$ref" in node:
        ref = node["$ref"]
        target, _, pointer = ref.partition("#")
        file = target or file
        node = schemas[file]
        for part in [p for p in pointer.split("/") if p]:
            node = node[part]
    return node, file


def _unwrap(tp: Any) -> Any:
    """The class inside ``X | None`` and ``tuple[X, ...]``."""
    args = [a for a in get_args(tp) if a is not type(None) and a is not Ellipsis]
    if get_origin(tp) is not None and len(args) == 1:
        return _unwrap(args[0])
    return tp


def _walk(cls: type, node: dict[str, Any], file: str, path: str, schemas: dict) -> list[str]:
    node, file = _resolve(node, file, schemas)
    if node.get("type") == "array":
        node, file = _resolve(node["items"], file, schemas)
    props = node.get("properties")
    if props is None:
        return []
    if not dataclasses.is_dataclass(cls):
        return [f"{path}: the schema has properties {sorted(props)}, the model has {cls!r}"]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = get_type_hints(cls)
    missing = [f"{path}.{key}: in the schema, no field in {cls.__name__}" for key in props]
    out = [m for m, key in zip(missing, props, strict=True) if key not in fields]
    out += [
        f"{path}.{name}: a field of {cls.__name__}, not in the schema"
        for name in fields
        if name not in props
    ]
    required = set(node.get("required", []))
    for key, sub in props.items():
        if key not in fields:
            continue
        f = fields[key]
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        if (key in required) == has_default:
            out.append(f"{path}.{key}: required is {key in required}, default is {has_default}")
        default = _resolve(sub, file, schemas)[0].get("default", dataclasses.MISSING)
        if default is not dataclasses.MISSING and f.default != default:
            out.append(f"{path}.{key}: schema default {default!r}, model {f.default!r}")
        out += _walk(_unwrap(hints[key]), sub, file, f"{path}.{key}", schemas)
    return out


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_schema_property_is_a_model_field(section: str) -> None:
    cls, ref = SECTIONS[section]
    schemas = _schemas()
    assert _walk(cls, {"$ref": ref}, "deployment.schema.json", section, schemas) == []


def test_the_top_level_has_one_field_per_section() -> None:
    assert [f.name for f in dataclasses.fields(Deployment)] == list(SECTIONS)
    hints = get_type_hints(Deployment)
    assert {name: hints[name] for name in SECTIONS} == {k: v[0] for k, v in SECTIONS.items()}
