"""Structural checks: the merged configuration against the JSON Schemas in config/schema/."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
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


def validate(data: Any, origins: Origins, schema_dir: FsPath) -> list[Problem]:
    validator = Draft202012Validator(merged_schema(), registry=registry(schema_dir))
    problems: list[Problem] = []
    for error in validator.iter_errors(data):
        problems.extend(_explain(error, origins))
    return problems


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """For anyOf/oneOf, report the most specific sub-errors rather than the umbrella."""
    if error.context:
        best = min(error.context, key=lambda e: len(e.context or []))
        yield from _leaves(best)
    else:
        yield error


def _explain(error: ValidationError, origins: Origins) -> Iterator[Problem]:
    for leaf in _leaves(error):
        path: Path = tuple(leaf.absolute_path)
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
            yield Problem(origin_of(origins, path), path, leaf.message)
        elif leaf.validator == "enum":
            choices = ", ".join(repr(c) for c in leaf.validator_value)
            yield Problem(
                origin_of(origins, path),
                path,
                f"{leaf.instance!r} is not allowed",
                f"one of {choices}",
            )
        elif leaf.validator in ("pattern", "type", "format", "maxLength", "minLength"):
            yield Problem(origin_of(origins, path), path, leaf.message, description)
        else:
            yield Problem(origin_of(origins, path), path, leaf.message)
