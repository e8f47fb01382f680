"""Structural checks: the merged configuration against the JSON Schemas in config/schema/."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path as FsPath
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from pwbcluster.config.problems import Path, Problem
from pwbcluster.config.source import Origins, origin_of

SCHEMA_FILES = {
    "deployment": "deployment.schema.json",
    "aux": "auxiliary.schema.json",
    "image": "image.schema.json",
    "cluster": "cluster.schema.json",
}
BASE_URI = "https://pwbcluster.invalid/schema/"


@cache
def load_schemas(schema_dir: FsPath) -> dict[str, dict[str, Any]]:
    return {
        name: json.loads((schema_dir / file).read_text(encoding="utf-8"))
        for name, file in SCHEMA_FILES.items()
    }


def registry(schema_dir: FsPath) -> Registry:
    schemas = load_schemas(schema_dir)
    resources = [(s["$id"], Resource.from_contents(s)) for s in schemas.values()]
    return Registry().with_resources(resources)


def merged_schema() -> dict[str, Any]:
    """The schema of the merged document: every section complete, nothing else allowed."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": BASE_URI + "merged.schema.json",
        "type": "object",
        "additionalProperties": False,
        "required": ["deployment", "aux", "image", "cluster"],
        "properties": {
            "deployment": {"$ref": "deployment.schema.json#/$defs/deployment"},
            "aux": {"$ref": "auxiliary.schema.json"},
            "image": {"$ref": "image.schema.json"},
            "cluster": {"$ref": "cluster.schema.json"},
        },
    }


@dataclass
class SchemaResult:
    """The schema's problems and the key paths it refused (which the semantic checks skip)."""

    problems: list[Problem] = field(default_factory=list)
    refused: set[Path] = field(default_factory=set)


def validate(data: Any, origins: Origins, schema_dir: FsPath) -> list[Problem]:
    return check_merged(data, origins, schema_dir).problems


def check_merged(data: Any, origins: Origins, schema_dir: FsPath) -> SchemaResult:
    """The merged document against the schema of every section."""
    validator = Draft202012Validator(merged_schema(), registry=registry(schema_dir))
    return _run(validator, data, origins, prefix=())


def check_stage(section: str, data: Any, origins: Origins, schema_dir: FsPath) -> SchemaResult:
    """One stage file on its own against its section's schema (``data`` is that file's).

    The team's standard must be valid by itself: a deployment that overrides a broken key
    would otherwise hide it from every other deployment that does not.
    """
    schema = load_schemas(schema_dir)[section]
    validator = Draft202012Validator(schema, registry=registry(schema_dir))
    return _run(validator, data, origins, prefix=(section,))


def _run(
    validator: Draft202012Validator, data: Any, origins: Origins, prefix: Path
) -> SchemaResult:
    result = SchemaResult()
    for error in validator.iter_errors(data):
        path: Path = (*prefix, *error.absolute_path)
        if error.validator == "required":
            result.refused.add((*path, _missing_key(error)))
        elif error.validator != "additionalProperties":
            # An unknown key leaves its mapping's known keys valid; anything else refuses
            # the value (for anyOf/oneOf, the value as a whole, not one branch's guess).
            result.refused.add(path)
        result.problems.extend(_explain(error, origins, prefix))
    return result


def _missing_key(error: ValidationError) -> str:
    instance = error.instance if isinstance(error.instance, dict) else {}
    for key in error.validator_value:
        if key not in instance and error.message == f"{key!r} is a required property":
            return str(key)
    return str(error.message.split("'")[1] if "'" in error.message else "")


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """For anyOf/oneOf, report the most specific sub-errors rather than the umbrella."""
    if error.context:
        best = min(error.context, key=lambda e: len(e.context or []))
        yield from _leaves(best)
    else:
        yield error


def _fix(leaf: ValidationError, description: str | None) -> str | None:
    """What to write instead, for the validators whose own message does not say it."""
    value = leaf.validator_value
    fixes = {
        "minimum": f"a value of at least {value}",
        "maximum": f"a value of at most {value}",
        "exclusiveMinimum": f"a value above {value}",
        "exclusiveMaximum": f"a value below {value}",
        "minItems": f"at least {value} item(s)",
        "maxItems": f"at most {value} item(s)",
        "maxProperties": f"at most {value} entries",
        "uniqueItems": "each item once",
        "const": f"{value!r}",
        "type": f"a value of type {value}" if isinstance(value, str) else None,
    }
    fix = fixes.get(str(leaf.validator))
    if description and fix:
        return f"{fix} ({description.rstrip('.')})"
    return fix or description


def _explain(error: ValidationError, origins: Origins, prefix: Path = ()) -> Iterator[Problem]:
    for leaf in _leaves(error):
        path: Path = (*prefix, *leaf.absolute_path)
        schema = leaf.schema if isinstance(leaf.schema, dict) else {}
        description = schema.get("description")
        if leaf.validator == "additionalProperties" and isinstance(leaf.instance, dict):
            known = sorted(schema.get("properties", {}))
            for key in sorted(set(leaf.instance) - set(known)):
                child = (*path, key)
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                message = f"unknown key '{key}'"
                if close:
                    message += f" (did you mean '{close[0]}'?)"
                expected = "one of: " + ", ".join(known) if known else "no keys here"
                yield Problem(origin_of(origins, child), child, message, expected)
        elif leaf.validator == "required":
            key = _missing_key(leaf)
            child = (*path, key) if key else path
            child_schema = schema.get("properties", {}).get(key, {})
            what = child_schema.get("description") if isinstance(child_schema, dict) else None
            expected = f"the key '{key}' here" + (f" ({what.rstrip('.')})" if what else "")
            yield Problem(origin_of(origins, child), child, leaf.message, expected)
        elif leaf.validator == "enum":
            choices = ", ".join(repr(c) for c in leaf.validator_value)
            yield Problem(
                origin_of(origins, path),
                path,
                f"{leaf.instance!r} is not allowed",
                f"one of {choices}",
            )
        else:
            expected = _fix(leaf, description) or "a value as docs/configuration.md describes"
            yield Problem(origin_of(origins, path), path, leaf.message, expected)
