"""pcluster validation with each finding traced to its config key (runs in the pcluster venv).

pcluster's ``ValidationResult`` carries no location. ``traced_validate`` wraps
``Resource._validate_self`` for the duration of one ``validate()`` call, so each failure
is attributed to the resource that raised it, and ``resource_paths`` walks the resource
tree beside the config dict to name that resource's key path. Standalone: imported by
worker.py, never by pwbcluster.
"""

from __future__ import annotations

from typing import Any


def flatten_schema_errors(
    messages: Any, path: tuple[Any, ...] = ()
) -> list[tuple[tuple[Any, ...], str]]:
    """marshmallow's nested error dict as (key path, message) pairs."""
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            sub = path if key == "_schema" else (*path, key)
            out.extend(flatten_schema_errors(value, sub))
        return out
    if isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            return [(path, m) for m in messages]
        return [pair for m in messages for pair in flatten_schema_errors(m, path)]
    return [(path, str(messages))]


def _match_key(attribute: str, data: Any) -> str | None:
    """The config key an attribute was loaded from: ``head_node`` -> ``HeadNode``.

    A few attributes are shorter than their key (``queues`` for ``SlurmQueues``): then the
    one key that ends with the attribute's name.
    """
    if not isinstance(data, dict):
        return None
    wanted = attribute.lstrip("_").replace("_", "").lower()
    keys = {key.replace("_", "").lower(): key for key in data if isinstance(key, str)}
    if wanted in keys:
        return keys[wanted]
    endings = [key for norm, key in keys.items() if norm.endswith(wanted)]
    return endings[0] if len(endings) == 1 else None


def resource_paths(
    resource: Any, data: Any, path: tuple[Any, ...], out: dict[int, tuple[Any, ...]]
) -> None:
    """Map id(resource) -> the config key path it was loaded from (nearest known path)."""
    from pcluster.config.common import Resource

    if id(resource) in out:
        return
    out[id(resource)] = path
    for attribute, value in vars(resource).items():
        if attribute.startswith("_Resource__"):
            continue
        key = _match_key(attribute, data)
        sub = data.get(key) if key is not None else None
        sub_path = (*path, key) if key is not None else path
        if isinstance(value, Resource):
            resource_paths(value, sub, sub_path, out)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Resource):
                    item_data = sub[i] if isinstance(sub, list) and i < len(sub) else None
                    item_path = (*sub_path, i) if key is not None else sub_path
                    resource_paths(item, item_data, item_path, out)


def traced_validate(
    config: Any, data: dict[str, Any], suppressors: list[Any]
) -> list[dict[str, Any]]:
    """Run config.validate() and attach to each failure the path of the resource that raised it."""
    from pcluster.config.common import Resource

    origin: dict[int, Any] = {}
    original = Resource._validate_self

    async def tag(coroutine: Any, resource: Any) -> Any:
        results = await coroutine
        for result in results or []:
            origin[id(result)] = resource
        return results

    def validate_self(self: Any, context: Any, suppress: Any) -> None:
        failures, futures = len(self._validation_failures), len(self._validation_futures)
        original(self, context, suppress)
        for result in self._validation_failures[failures:]:
            origin[id(result)] = self
        for i in range(futures, len(self._validation_futures)):
            self._validation_futures[i] = tag(self._validation_futures[i], self)

    paths: dict[int, tuple[Any, ...]] = {}
    resource_paths(config, data, (), paths)
    Resource._validate_self = validate_self
    try:
        results = config.validate(suppressors)
    finally:
        Resource._validate_self = original
    out = []
    for result in results:
        resource = origin.get(id(result))
        out.append(
            {
                "level": result.level.name,
                "validator": result.validator_type,
                "message": result.message,
                "path": list(paths.get(id(resource), ())) if resource is not None else None,
            }
        )
    return out


class Suppressor:
    """Suppress validators by class name (pcluster's async-timed wrappers by the same name)."""

    def __init__(self, names: list[str]):
        self.names = set(names)

    def suppress_validator(self, validator: Any) -> bool:
        name = validator.type
        return name in self.names or name.removeprefix("AsyncTimed") in self.names
