"""Load YAML with ruamel.yaml, keeping the file and line of every value, and merge files.

The merged document is plain dicts and lists (what jsonschema and the stages read); the
origins map every key path to the file and line it was last set in, so any later
problem, from the schema, a semantic check or ParallelCluster itself, can name them.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from pwbcluster.config.problems import Origin, Path, Problem

Origins = dict[Path, Origin]


def display_name(path: FsPath) -> str:
    """A path as a person would type it: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def load_file(path: FsPath, prefix: Path = ()) -> tuple[Any, Origins, list[Problem]]:
    """Parse one YAML file; returns (plain data, origins, problems)."""
    name = display_name(path)
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, {}, [Problem(Origin(name, 0), prefix, f"cannot read file: {exc.strerror}")]
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        what = exc.problem or exc.context or "invalid YAML"
        return None, {}, [Problem(Origin(name, line), prefix, f"YAML syntax: {what}", check="yaml")]
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. duplicate keys)
        return None, {}, [Problem(Origin(name, 0), prefix, f"YAML: {exc}", check="yaml")]
    origins: Origins = {prefix: Origin(name, 1)}
    data = _walk(doc, prefix, name, origins, 1)
    return data, origins, []


def _walk(node: Any, path: Path, name: str, origins: Origins, line: int) -> Any:
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            key_line = node.lc.key(key)[0] + 1 if node.lc.data else line
            child = (*path, str(key))
            origins[child] = Origin(name, key_line)
            out[str(key)] = _walk(value, child, name, origins, key_line)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            item_line = node.lc.item(index)[0] + 1 if node.lc.data else line
            child = (*path, index)
            origins[child] = Origin(name, item_line)
            items.append(_walk(value, child, name, origins, item_line))
        return items
    return node


def merge(
    base: Any, base_origins: Origins, override: Any, override_origins: Origins, path: Path = ()
) -> Any:
    """Deep-merge ``override`` onto ``base``: mappings merge, anything else replaces.

    ``base_origins`` is updated in place so every path points at the file that set it last.
    """
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            child = (*path, key)
            if key in merged:
                merged[key] = merge(merged[key], base_origins, value, override_origins, child)
            else:
                merged[key] = copy.deepcopy(value)
                _adopt(base_origins, override_origins, child)
            if child in override_origins:
                base_origins[child] = override_origins[child]
        return merged
    _adopt(base_origins, override_origins, path)
    return copy.deepcopy(override)


def _adopt(target: Origins, source: Origins, path: Path) -> None:
    """Replace every origin at or below ``path`` in ``target`` by those of ``source``."""
    depth = len(path)
    for key in [k for k in target if k[:depth] == path and len(k) > depth]:
        del target[key]
    for key, origin in source.items():
        if key[:depth] == path:
            target[key] = origin


def origin_of(origins: Origins, path: Path) -> Origin:
    """The origin of ``path``, or of its nearest ancestor that has one."""
    probe = tuple(path)
    while probe:
        if probe in origins:
            return origins[probe]
        probe = probe[:-1]
    return origins.get((), Origin("<config>", 0))
