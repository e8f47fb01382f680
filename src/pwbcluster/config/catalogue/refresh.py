"""Rewrite the catalogues: instance types from installed packages, versions from vendors.

``instance_types_catalogue()`` needs no network: botocore's EC2 service model (bundled,
``botocore/data/ec2/<api>/service-2.json``, shape ``InstanceType``) and the Pulumi AWS
provider's RDS instance class enum (``pulumi_aws/rds/_enums.py``, read as text: importing
the provider takes seconds).

``refresh_versions()`` fetches each kind's vendor list. R and Python: Posit's own lists of
its builds (``{"r_versions": [...]}``, ``{"python_versions": [...]}``), which replace the
catalogue's. Quarto: GitHub's releases of quarto-dev/quarto-cli (newest first, one page;
drafts and pre-releases left out), and Workbench: Posit's downloads feed, which names the
current release only: both are added to what the catalogue already has. Nothing is
written unless every kind was fetched and parsed.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pwbcluster.config.catalogue import (
    INSTANCE_TYPES_FILE,
    VERSION_KINDS,
    VERSIONS_FILE,
    version_key,
)
from pwbcluster.errors import ToolkitError

Fetch = Callable[[str], bytes]
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
WORKBENCH = re.compile(r"(20\d\d\.\d\d\.\d+)[+-](\d+)\.pro(\d+)")
TIMEOUT_S = 20


class CatalogueError(ToolkitError):
    """A vendor list could not be fetched or read; the catalogue file is left as it was."""


# --- instance types (offline) ----------------------------------------------------------


def _ec2_enum() -> tuple[list[str], str]:
    import botocore
    import botocore.session

    model = botocore.session.get_session().get_service_model("ec2")
    enum = list(getattr(model.shape_for("InstanceType"), "enum", None) or [])
    if not enum:
        raise CatalogueError("botocore's EC2 model has no InstanceType enum: catalogue unchanged")
    source = (
        f"botocore {botocore.__version__}: botocore/data/ec2/{model.api_version}/"
        "service-2.json, shape InstanceType (enum)"
    )
    return enum, source


def _rds_enum() -> tuple[list[str], str]:
    spec = importlib.util.find_spec("pulumi_aws")
    if spec is None or not spec.submodule_search_locations:
        raise CatalogueError("pulumi_aws is not installed: cannot read its RDS instance classes")
    root = Path(next(iter(spec.submodule_search_locations)))
    text = (root / "rds" / "_enums.py").read_text(encoding="utf-8")
    block = text.split("class InstanceType(", 1)[1].split("\nclass ", 1)[0]
    classes = sorted(set(re.findall(r'"(db\.[a-z0-9]+\.[a-z0-9]+)"', block)))
    from importlib.metadata import version

    return classes, f"pulumi_aws {version('pulumi_aws')}: pulumi_aws/rds/_enums.py InstanceType"


def instance_types_catalogue() -> dict[str, Any]:
    ec2, ec2_source = _ec2_enum()
    rds, rds_source = _rds_enum()
    return {
        "generated": dt.date.today().isoformat(),
        "generated_by": "invoke config.catalogue --instance-types",
        "ec2_source": ec2_source,
        "rds_source": rds_source,
        "rds_note": (
            "botocore's RDS model has no instance class enum; this list is the Pulumi AWS "
            "provider's and is not complete (newer classes such as db.m7g are missing), so "
            "a class outside it passes when its EC2 part is a known EC2 type"
        ),
        "ec2": sorted(set(ec2)),
        "rds": rds,
    }


def write_instance_types(path: Path | None = None) -> dict[str, Any]:
    catalogue = instance_types_catalogue()
    path = path or INSTANCE_TYPES_FILE
    path.write_text(json.dumps(catalogue, indent=1) + "\n", encoding="utf-8")
    return catalogue


# --- versions (vendors' lists) -----------------------------------------------------------


def fetch_url(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "pwbcluster-catalogue"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        raise CatalogueError(f"cannot fetch {url}: HTTP {exc.code}; catalogue unchanged") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise CatalogueError(f"cannot fetch {url}: {reason}; catalogue unchanged") from None


def _json(url: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise CatalogueError(f"{url} did not answer JSON ({exc}); catalogue unchanged") from None


def _listed(url: str, payload: Any, key: str) -> list[str]:
    if not isinstance(payload, dict) or not isinstance(payload.get(key), list):
        raise CatalogueError(f"{url}: no '{key}' list in the answer; catalogue unchanged")
    found = [str(v) for v in payload[key] if SEMVER.match(str(v))]  # not 'devel', 'next'
    if not found:
        raise CatalogueError(f"{url}: '{key}' lists no x.y.z version; catalogue unchanged")
    return found


def parse_r(url: str, body: bytes) -> list[str]:
    return _listed(url, _json(url, body), "r_versions")


def parse_python(url: str, body: bytes) -> list[str]:
    return _listed(url, _json(url, body), "python_versions")


def parse_quarto(url: str, body: bytes) -> list[str]:
    payload = _json(url, body)
    if not isinstance(payload, list):
        raise CatalogueError(f"{url}: expected a list of releases; catalogue unchanged")
    found = []
    for release in payload:
        if not isinstance(release, dict) or release.get("draft") or release.get("prerelease"):
            continue
        tag = str(release.get("tag_name", "")).removeprefix("v")
        if SEMVER.match(tag):
            found.append(tag)
    if not found:
        raise CatalogueError(f"{url}: no released version found; catalogue unchanged")
    return found


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def parse_workbench(url: str, body: bytes) -> list[str]:
    """Every Workbench version the feed names (as versions or in package URLs), as 'x+n.proN'."""
    payload = _json(url, body)
    try:
        pro = payload["rstudio"]["pro"]
    except (KeyError, TypeError):
        raise CatalogueError(f"{url}: no rstudio.pro section; catalogue unchanged") from None
    found = {
        f"{m.group(1)}+{m.group(2)}.pro{m.group(3)}"
        for text in _strings(pro)
        for m in WORKBENCH.finditer(text)
    }
    if not found:
        raise CatalogueError(f"{url}: no Workbench version found; catalogue unchanged")
    return sorted(found, key=version_key)


PARSERS: dict[str, tuple[Callable[[str, bytes], list[str]], bool]] = {
    # kind: (parser, the vendor's list is complete, so it replaces the catalogue's)
    "r": (parse_r, True),
    "python": (parse_python, True),
    "quarto": (parse_quarto, False),
    "workbench": (parse_workbench, False),
}


def refresh_versions(
    path: Path | None = None, fetch: Fetch | None = None, today: dt.date | None = None
) -> dict[str, tuple[int, int]]:
    """Fetch every kind's list and rewrite ``path``; returns (before, after) counts by kind."""
    path = path or VERSIONS_FILE
    fetch = fetch or fetch_url
    catalogue = json.loads(path.read_text(encoding="utf-8"))
    date = (today or dt.date.today()).isoformat()
    fresh: dict[str, list[str]] = {}
    for kind in VERSION_KINDS:
        spec = catalogue["kinds"][kind]
        url = str(spec["source"])
        parse, complete = PARSERS[kind]
        found = parse(url, fetch(url))
        merged = set(found) if complete else set(found) | set(spec["versions"])
        fresh[kind] = sorted(merged, key=version_key)
    counts = {}
    for kind, listed in fresh.items():
        spec = catalogue["kinds"][kind]
        counts[kind] = (len(spec["versions"]), len(listed))
        how = "replaced by" if PARSERS[kind][1] else "merged with"
        spec["versions"] = listed
        spec["provenance"] = [
            {"versions": "all", "confirmed": f"{how} {spec['source']} on {date}"},
            *[p for p in spec.get("provenance", []) if not PARSERS[kind][1]],
        ]
    catalogue["retrieved"] = date
    path.write_text(json.dumps(catalogue, indent=1) + "\n", encoding="utf-8")
    return counts


__all__ = [
    "CatalogueError",
    "fetch_url",
    "instance_types_catalogue",
    "parse_python",
    "parse_quarto",
    "parse_r",
    "parse_workbench",
    "refresh_versions",
    "write_instance_types",
]
