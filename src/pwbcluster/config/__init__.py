"""Load, merge and check the configuration of one deployment.

``load_config("config/prod.yaml")`` reads the team's stage files (``pulumi/auxiliary.yaml``,
``image/image.yaml``, ``cluster/cluster.yaml``) and the deployment file, merges them
(the deployment file wins), validates the result against the JSON Schemas in
``config/schema/`` and runs the named semantic checks. Every problem is collected, each
with its file, line and key path, and raised together as one ``ConfigError``.

A checked configuration is also built once into ``Config.model``, the frozen typed
``Deployment`` (``pwbcluster.config.model``) that stages read by attribute; ``Config.data``
stays the plain merged dict for the fingerprints and the code not yet moved to the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path as FsPath
from typing import Any

from pwbcluster.config import checks as _checks
from pwbcluster.config import (
    checks_catalogue,  # noqa: F401  (importing registers its checks)
    checks_names,  # noqa: F401  (importing registers its checks)
    checks_platform,  # noqa: F401  (importing registers its checks)
    checks_state,  # noqa: F401  (importing registers its checks)
    checks_storage,  # noqa: F401  (importing registers its checks)
    checks_supply,  # noqa: F401  (importing registers its checks)
)
from pwbcluster.config.model import Deployment, model_of
from pwbcluster.config.problems import Level, Origin, Path, Problem, format_path
from pwbcluster.config.schema import check_merged, check_stage
from pwbcluster.config.source import Origins, load_file, merge, origin_of
from pwbcluster.errors import ConfigError

__all__ = [
    "Config",
    "ConfigError",
    "Deployment",
    "Level",
    "Origin",
    "Problem",
    "find_root",
    "load_config",
]

STAGE_FILES = {
    "aux": FsPath("pulumi/auxiliary.yaml"),
    "image": FsPath("image/image.yaml"),
    "cluster": FsPath("cluster/cluster.yaml"),
}


@dataclass
class Config:
    """The merged configuration: plain data plus where each value came from."""

    data: dict[str, Any]
    origins: Origins
    root: FsPath
    deployment_file: FsPath
    warnings: list[Problem] = field(default_factory=list)
    # A sub-directory of build/<deployment>/ for this use of the config: `plan` writes its
    # placeholder-filled files under build/<deployment>/plan/, so that it never overwrites
    # the files a sandbox or real run rendered (and its nodes read) in build/<deployment>/.
    build_subdir: str = ""
    # Not an init field: dataclasses.replace(config, data=...) must not carry the old model.
    _model: Deployment | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def model(self) -> Deployment:
        """The typed, frozen configuration (``load_config`` builds it once, after the checks)."""
        if self._model is None:
            # A Config made by hand (tests) gets its model on first use.
            self._model = model_of(self.data)
        return self._model

    @property
    def name(self) -> str:
        return str(self.data["deployment"]["name"])

    @property
    def region(self) -> str:
        return str(self.data["deployment"]["region"])

    @property
    def build_dir(self) -> FsPath:
        base = self.root / "build" / self.name
        return base / self.build_subdir if self.build_subdir else base

    def for_plan(self) -> Config:
        """The same configuration, writing into build/<deployment>/plan/."""
        if self.build_subdir == "plan":
            return self
        planned = replace(self, build_subdir="plan")
        planned._model = self._model  # same data, same model
        return planned

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.data[name])

    def where(self, path: Path) -> Origin:
        """File and line of a key path (its nearest ancestor when the key is defaulted)."""
        return origin_of(self.origins, path)

    def describe(self, path: Path) -> str:
        return f"{self.where(path)} {format_path(path)}"

    def tags(self) -> dict[str, str]:
        """Tags for every taggable resource: the user's, plus owner and deployment."""
        return self.model.tags()


def find_root(start: FsPath) -> FsPath:
    """The project root: the nearest ancestor of ``start`` holding the stage files."""
    here = start.resolve()
    for candidate in [here, *here.parents]:
        if all((candidate / f).is_file() for f in STAGE_FILES.values()):
            return candidate
    cwd = FsPath.cwd()
    if all((cwd / f).is_file() for f in STAGE_FILES.values()):
        return cwd
    raise ConfigError(
        [],
        summary=(
            f"cannot find the stage files ({', '.join(map(str, STAGE_FILES.values()))}) "
            f"above {start}; run from the project root or keep the deployment file inside it"
        ),
    )


def load_config(
    path: str | FsPath,
    root: FsPath | None = None,
    skip_checks: tuple[str, ...] = (),
    strict: bool = False,
) -> Config:
    """Load and check a deployment; raise ``ConfigError`` listing every problem found.

    Every layer is checked in one pass: each stage file on its own against its schema
    (a broken team standard is reported even where this deployment overrides the key),
    the merged result against the full schema, and the semantic checks on every value
    the schema did not refuse.
    """
    deployment_file = FsPath(path)
    if not deployment_file.is_file():
        raise ConfigError(
            [], summary=f"{deployment_file}: no such deployment file (try config/example.yaml)"
        )
    root = root or find_root(deployment_file.parent)
    schema_dir = root / "config" / "schema"
    problems: list[Problem] = []
    merged: dict[str, Any] = {}
    origins: Origins = {}
    stage_problems: list[Problem] = []
    for section, rel in STAGE_FILES.items():
        data, file_origins, file_problems = load_file(root / rel, prefix=(section,))
        problems.extend(file_problems)
        if data is None and not file_problems:
            data = {}
        if not file_problems:
            stage_problems.extend(check_stage(section, data, file_origins, schema_dir).problems)
        merged[section] = data
        origins.update(file_origins)
    data, dep_origins, dep_problems = load_file(deployment_file)
    problems.extend(dep_problems)
    if problems:  # syntax errors: the structure is unknown, so only the stage schemas ran
        syntax = sorted(set(problems) | set(stage_problems), key=Problem.sort_key)
        raise ConfigError(syntax, summary=f"{len(syntax)} error(s) in the configuration")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [Problem(Origin(str(deployment_file), 1), (), "the file must be a mapping")]
        )
    merged = merge(merged, origins, data, dep_origins)
    schema = check_merged(merged, origins, schema_dir)
    errors = _without_echoes(schema.problems, stage_problems, dep_origins)
    config = Config(data=merged, origins=origins, root=root, deployment_file=deployment_file)
    run = _checks.run_checks(config, skip=skip_checks, refused=frozenset(schema.refused))
    findings = run.problems
    errors += [p for p in findings if p.level is Level.ERROR or strict]
    config.warnings = [p for p in findings if p.level is Level.WARNING]
    if errors:
        shown = sorted(set(errors) | set(findings), key=Problem.sort_key)
        summary = f"{len(set(errors))} error(s) and {len(shown) - len(set(errors))} warning(s)"
        if run.skipped:
            summary += "; not checked until the values they read are fixed: " + ", ".join(
                run.skipped
            )
        raise ConfigError(shown, summary=summary)
    config._model = model_of(merged)
    return config


def _without_echoes(
    merged: list[Problem], stages: list[Problem], dep_origins: Origins
) -> list[Problem]:
    """The stage files' own problems, plus the merged document's that are not repeats.

    A problem of a stage file that the deployment does not touch is found twice (alone
    and merged), identically; one the deployment inherits through a section it only
    partly overrides (a required key missing from the standard) is found merged at the
    deployment's section line: the stage file's line is the one to fix.
    """
    stage_keys = {(p.path, p.message) for p in stages}
    kept = [p for p in merged if (p.path, p.message) not in stage_keys or p.path in dep_origins]
    return sorted(set(stages) | set(kept), key=Problem.sort_key)
