"""Writing rendered files (YAML for ParallelCluster, Workbench configuration) and where
the package's templates live."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

# Jinja2 templates and the jump host's boot script, shipped as package data.
TEMPLATES = Path(__file__).resolve().parent / "templates"


def dump_yaml(data: Any, header: str = "") -> str:
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    # Shared sub-structures must be written out in full: anchors confuse readers.
    yaml.representer.ignore_aliases = lambda *args: True
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    lines = [f"# {line}".rstrip() for line in header.strip().splitlines()] if header else []
    return ("\n".join(lines) + "\n" if lines else "") + buffer.getvalue()


def write_text(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into a copy of ``base``: mappings merge, anything else replaces."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
