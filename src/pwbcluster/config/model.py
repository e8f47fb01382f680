"""The merged configuration as frozen dataclasses, built once by ``load_config``.

Every field is named exactly as its YAML key, so a value keeps one name from the file to
the node (``cluster.ha.slurmctld_timeout`` is ``model.cluster.ha.slurmctld_timeout``).
The classes follow the JSON Schemas in ``config/schema/``: a required key is a field
without a default, an optional one defaults to the schema's default or None. Lists
become tuples and free-form mappings (``deployment.tags``, ``cluster.pcluster_overrides``)
read-only ``Mapping``s, so nothing downstream can change the configuration it was given.

One generic ``build`` turns the validated dict into the model (the schema check has
already run, so it converts rather than validates; an unknown key still fails loudly,
because it means the schema and the model have drifted apart).
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from pwbcluster.config.model_aux import (
    AuditDbModel,
    AuxModel,
    DatabasesModel,
    DirectoryModel,
    JumpHostModel,
    NetworkModel,
    SlurmAccountingDbModel,
    UserGroupsModel,
    UsersModel,
    WorkbenchDbModel,
)
from pwbcluster.config.model_cluster import (
    ClusterModel,
    HaModel,
    HeadNodeModel,
    HomeStorageModel,
    LoginNodesModel,
    QueueModel,
    StorageModel,
    WorkbenchModel,
    WorkbenchSharedStorageModel,
)
from pwbcluster.config.model_image import (
    ApptainerModel,
    GpuModel,
    ImageModel,
    ImageWorkbenchModel,
    JupyterModel,
    QuartoModel,
    RdsCaModel,
    VersionsModel,
    WorkbenchSha256Model,
)
from pwbcluster.errors import ConfigError

__all__ = [
    "ApptainerModel",
    "AuditDbModel",
    "AuxModel",
    "ClusterModel",
    "DatabasesModel",
    "Deployment",
    "DeploymentModel",
    "DirectoryModel",
    "GpuModel",
    "HaModel",
    "HeadNodeModel",
    "HomeStorageModel",
    "ImageModel",
    "ImageWorkbenchModel",
    "JumpHostModel",
    "JupyterModel",
    "LoginNodesModel",
    "NetworkModel",
    "QuartoModel",
    "QueueModel",
    "RdsCaModel",
    "SlurmAccountingDbModel",
    "StorageModel",
    "UserGroupsModel",
    "UsersModel",
    "VersionsModel",
    "WorkbenchDbModel",
    "WorkbenchModel",
    "WorkbenchSha256Model",
    "WorkbenchSharedStorageModel",
    "build",
    "coerce",
    "freeze",
    "model_of",
    "thaw",
]

T = TypeVar("T")


@dataclass(frozen=True)
class DeploymentModel:
    """``deployment:``: who owns the deployment and where it runs."""

    name: str
    region: str
    owner_email: str
    tags: Mapping[str, str] = field(default_factory=lambda: types.MappingProxyType({}))
    disable_checks: tuple[str, ...] = ()
    pulumi_backend: str | None = None
    pulumi_secrets_provider: str | None = None


@dataclass(frozen=True)
class Deployment:
    """The whole merged configuration: the deployment file over the three stage files."""

    deployment: DeploymentModel
    aux: AuxModel
    image: ImageModel
    cluster: ClusterModel

    def tags(self) -> dict[str, str]:
        """Tags for every taggable resource: the user's, plus owner and deployment."""
        tags = {str(k): str(v) for k, v in self.deployment.tags.items()}
        tags["Owner"] = self.deployment.owner_email
        tags["Deployment"] = self.deployment.name
        tags["ManagedBy"] = "pwbcluster"
        return tags


def freeze(value: Any) -> Any:
    """A read-only copy of free-form YAML data: mappings become proxies, lists tuples."""
    if isinstance(value, Mapping):
        return types.MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again, for code that merges or dumps YAML (``freeze`` undone)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def build(cls: type[T], data: Mapping[str, Any], path: tuple[str, ...] = ()) -> T:
    """An instance of the dataclass ``cls`` from validated YAML data, nested ones included."""
    if not isinstance(data, Mapping):
        raise ConfigError([], summary=f"{_where(path)}: expected a mapping, got {data!r}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            [], summary=f"{_where(path)}: no model field for {', '.join(map(str, unknown))}"
        )
    kwargs = {
        f.name: _convert(hints[f.name], data[f.name], (*path, f.name))
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name in data
    }
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required key is missing
        raise ConfigError([], summary=f"{_where(path)}: {exc}") from exc


def model_of(data: Mapping[str, Any]) -> Deployment:
    """The model of a merged configuration dict (``Config.data``)."""
    return build(Deployment, data)


def coerce(cls: type[T], value: T | Mapping[str, Any]) -> T:
    """``value`` as a ``cls``: the model as it is, a plain dict built into one.

    Only for functions that callers outside the config package still call with
    ``Config.data`` (or a section of it); once they pass the model, drop the call.
    """
    return value if isinstance(value, cls) else build(cls, value)  # type: ignore[arg-type]


def _convert(tp: Any, value: Any, path: tuple[str, ...]) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in get_args(tp) if a is not type(None)]
        return _convert(inner, value, path)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return build(tp, value, path)
    if origin is tuple:
        inner = get_args(tp)[0]
        return tuple(_convert(inner, v, (*path, str(i))) for i, v in enumerate(value or ()))
    if origin is Mapping or tp is Mapping:
        return freeze(value or {})
    return freeze(value) if tp is Any else value


def _where(path: tuple[str, ...]) -> str:
    return ".".join(path) or "configuration"
