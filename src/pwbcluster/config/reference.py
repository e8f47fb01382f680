"""Generated artefacts kept in sync with the schemas.

- ``docs/configuration.md``: the configuration reference, one table per file.
- ``config/schema/*.overrides.schema.json``: the stage schemas with ``required`` removed
  outside list items, so an editor checks a deployment file's partial overrides without
  demanding every key (the merged result is still checked against the full schemas).

``invoke config.docs`` writes them; ``--check`` (and a test) fails when they are stale.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from pwbcluster.config.schema import SCHEMA_FILES, load_schemas
from pwbcluster.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
STAGE_SOURCES = {
    "aux": "pulumi/auxiliary.yaml",
    "image": "image/image.yaml",
    "cluster": "cluster/cluster.yaml",
}


def _relax(node: Any, in_items: bool = False) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "required" and not in_items:
                continue
            if key == "$ref" and isinstance(value, str) and value.endswith(".schema.json"):
                value = value.replace(".schema.json", ".overrides.schema.json")
            out[key] = _relax(value, in_items or key == "items")
        return out
    if isinstance(node, list):
        return [_relax(v, in_items) for v in node]
    return node


def overrides_schemas(schema_dir: Path) -> dict[str, str]:
    out = {}
    for name in ("aux", "image", "cluster"):
        schema = copy.deepcopy(load_schemas(schema_dir)[name])
        relaxed = _relax(schema)
        relaxed["$id"] = schema["$id"].replace(".schema.json", ".overrides.schema.json")
        relaxed["title"] = f"{schema['title']} (overrides in a deployment file)"
        file = SCHEMA_FILES[name].replace(".schema.json", ".overrides.schema.json")
        out[file] = json.dumps(relaxed, indent=2) + "\n"
    return out


def _type_of(node: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in node:
        ref = node["$ref"].split("#/$defs/")[-1]
        target = defs.get(ref, {})
        return _type_of(target, defs) if target else "see schema"
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type", "object")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array" and isinstance(node.get("items"), dict):
        return f"list of {_type_of(node['items'], defs)}"
    return str(kind)


def _rows(node: dict[str, Any], prefix: str, defs: dict[str, Any]) -> list[str]:
    rows = []
    for key, child in node.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        if "$ref" in child and "#/$defs/" in child["$ref"] and "properties" not in child:
            resolved = defs.get(child["$ref"].split("#/$defs/")[-1], {})
            child = {**resolved, **{k: v for k, v in child.items() if k != "$ref"}}
        desc = (child.get("description") or "").replace("|", "\\|")
        limits = [f"{k} {child[k]}" for k in ("minimum", "maximum", "maxLength") if k in child]
        if limits:
            desc += f" ({', '.join(limits)})"
        rows.append(f"| `{path}` | {_type_of(child, defs)} | {desc} |")
        if child.get("type") == "object" and "properties" in child:
            rows.extend(_rows(child, path, defs))
        items = child.get("items")
        if isinstance(items, dict) and "properties" in items:
            rows.extend(_rows(items, f"{path}[]", defs))
    return rows


def reference_markdown(schema_dir: Path) -> str:
    schemas = load_schemas(schema_dir)
    all_defs: dict[str, Any] = {}
    for schema in schemas.values():
        all_defs.update(schema.get("$defs", {}))
    parts = [
        "# Configuration reference",
        "",
        "Generated from `config/schema/` by `invoke config.docs`; do not edit by hand.",
        "",
        "A deployment file (`config/<name>.yaml`) holds `deployment:` and may override any key",
        "of the stage files under `aux:`, `image:` or `cluster:`. Mappings merge key by key;",
        "lists (for example `cluster.queues`) are replaced whole.",
        "",
    ]
    sections = [("deployment", "config/<name>.yaml", schemas["deployment"]["$defs"]["deployment"])]
    sections += [(name, STAGE_SOURCES[name], schemas[name]) for name in ("aux", "image", "cluster")]
    for name, source, schema in sections:
        parts += [
            f"## `{name}` ({source})",
            "",
            schema.get("description", ""),
            "",
            "| key | type | meaning |",
            "| --- | --- | --- |",
        ]
        parts += _rows(schema, name, all_defs)
        parts.append("")
    return "\n".join(parts)


def write_reference(root: Path = ROOT, check: bool = False) -> list[Path]:
    schema_dir = root / "config" / "schema"
    wanted = {root / "docs" / "configuration.md": reference_markdown(schema_dir)}
    for file, text in overrides_schemas(schema_dir).items():
        wanted[schema_dir / file] = text
    stale = [
        p for p, text in wanted.items() if not p.exists() or p.read_text(encoding="utf-8") != text
    ]
    if check:
        if stale:
            names = ", ".join(str(p.relative_to(root)) for p in stale)
            raise ConfigError([], summary=f"out of date: {names}; run `invoke config.docs`")
        return []
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path], encoding="utf-8")
    return stale


__all__ = ["SCHEMA_FILES", "write_reference"]
