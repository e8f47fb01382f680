"""Checks of names and versions against the offline catalogues (``config/catalogue``).

- ``instance_type_known``: every EC2 instance type the configuration names (head node,
  login pool, each queue's compute resource, the image build instance, the jump host) is
  one botocore's EC2 model lists, with a "did you mean" from the same family.
- ``db_instance_class_known``: every RDS class is ``db.<type>`` for a known EC2 type or a
  class the Pulumi AWS provider lists. Weaker than the EC2 check, and said so: RDS offers
  a subset of EC2's types (``db.c5.large`` passes here and RDS refuses it), and no offline
  list of RDS classes is complete (botocore's RDS model has no enum).
- ``r_version_known``, ``python_version_known``, ``quarto_version_known``,
  ``workbench_version_known``: each version the image installs is a build its vendor
  publishes, as of the catalogue's date. A build newer than the catalogue: refresh it
  (``invoke config.catalogue --versions``) or switch the one check off
  (``--skip-check`` or ``deployment.disable_checks``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pwbcluster.config.catalogue import (
    VERSIONS_FILE,
    family_sizes,
    instance_types,
    suggest,
    suggest_version,
    versions,
)
from pwbcluster.config.checks import Finding, check
from pwbcluster.config.inputs import InvalidInput
from pwbcluster.config.problems import Level, Path


def instance_type_paths(data: Any) -> Iterator[Path]:
    """The key path of every EC2 instance type in the configuration."""
    yield ("cluster", "head_node", "instance_type")
    yield ("cluster", "login_nodes", "instance_type")
    try:
        queues = data["cluster"]["queues"]
        count = len(queues)
    except (InvalidInput, KeyError, TypeError):
        count = 0
    for index in range(count):
        yield ("cluster", "queues", index, "instance_type")
    yield ("image", "build_instance_type")
    yield ("aux", "jump_host", "instance_type")


def _read(data: Any, path: Path) -> Any:
    """The value at ``path``; ``InvalidInput`` if the schema refused it (or a parent)."""
    node = data
    for part in path:
        node = node[part]
    return node


def _values(data: Any, paths: Iterator[Path]) -> Iterator[tuple[Path, str]]:
    for path in paths:
        try:
            value = _read(data, path)
        except (InvalidInput, KeyError, IndexError):
            continue  # refused by the schema (reported there) or absent
        if isinstance(value, str):
            yield path, value


def _instance_fix(name: str) -> str:
    known = instance_types().ec2
    close = suggest(name, known)
    fix = " or ".join(f"'{c}'" for c in close) if close else "an EC2 instance type"
    sizes = family_sizes(name, known)
    if sizes:
        fix += f" ({name.split('.', 1)[0]} comes in {', '.join(sizes)})"
    origin = instance_types().source.split(":", 1)[0]
    return f"{fix}; a type newer than {origin}'s list: --skip-check instance_type_known"


@check("instance_type_known", Level.ERROR, "every EC2 instance type is one EC2 has")
def _instance_types(data: dict[str, Any]) -> Iterator[Finding]:
    known = instance_types().ec2
    for path, name in _values(data, instance_type_paths(data)):
        if name not in known:
            yield (path, f"'{name}' is not an EC2 instance type", _instance_fix(name))


DB_PATHS: tuple[Path, ...] = (
    ("aux", "databases", "workbench", "instance_class"),
    ("aux", "databases", "audit", "instance_class"),
    ("aux", "databases", "slurm_accounting", "instance_class"),
)


@check("db_instance_class_known", Level.ERROR, "every RDS instance class names a known type")
def _db_classes(data: dict[str, Any]) -> Iterator[Finding]:
    catalogue = instance_types()
    for path, name in _values(data, iter(DB_PATHS)):
        ec2_part = name.removeprefix("db.")
        if name in catalogue.rds or ec2_part in catalogue.ec2:
            continue
        known = catalogue.rds | {f"db.{t}" for t in catalogue.ec2}
        close = suggest(name, frozenset(known))
        fix = " or ".join(f"'{c}'" for c in close) if close else "an RDS class such as db.t4g.small"
        yield (
            path,
            f"'{name}' is not an RDS instance class: '{ec2_part}' is no EC2 instance type",
            f"{fix} (RDS classes are db.<EC2 type>; {catalogue.rds_source} and {catalogue.source})",
        )


def _version_findings(kind: str, items: list[tuple[Path, str]]) -> Iterator[Finding]:
    catalogue = versions()
    spec = catalogue.kinds[kind]
    for path, version in items:
        canonical = version.replace("-", "+", 1) if kind == "workbench" else version
        if canonical in spec.versions:
            continue
        close = suggest_version(canonical, spec.versions)
        yield (
            path,
            f"{spec.label} {version} is not a build the image can install (catalogue of "
            f"{catalogue.retrieved}, from {spec.source})",
            f"one of {', '.join(close)}; if {spec.label} {version} is newer than the "
            f"catalogue, `invoke config.catalogue --versions` refreshes {VERSIONS_FILE.name}, "
            f"or --skip-check {kind}_version_known",
        )


def _listed_versions(data: Any, lang: str) -> list[tuple[Path, str]]:
    try:
        count = len(data["image"][lang]["versions"])
    except (InvalidInput, KeyError, TypeError):
        return []
    return list(_values(data, iter([("image", lang, "versions", i) for i in range(count)])))


@check("r_version_known", Level.ERROR, "every R version is a build Posit publishes")
def _r_versions(data: dict[str, Any]) -> Iterator[Finding]:
    yield from _version_findings("r", _listed_versions(data, "r"))


@check("python_version_known", Level.ERROR, "every Python version is a build Posit publishes")
def _python_versions(data: dict[str, Any]) -> Iterator[Finding]:
    yield from _version_findings("python", _listed_versions(data, "python"))


@check("quarto_version_known", Level.ERROR, "the Quarto version is a Quarto release")
def _quarto_version(data: dict[str, Any]) -> Iterator[Finding]:
    items = list(_values(data, iter([("image", "quarto", "version")])))
    yield from _version_findings("quarto", items)


@check("workbench_version_known", Level.ERROR, "the Workbench version is a Posit release")
def _workbench_version(data: dict[str, Any]) -> Iterator[Finding]:
    items = list(_values(data, iter([("image", "workbench", "version")])))
    yield from _version_findings("workbench", items)
