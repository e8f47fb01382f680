"""nox sessions: `nox -l` lists them; `nox -s lint typecheck tests bats security` is what CI runs.

Dependencies come from pyproject.toml's dependency groups; extra arguments after `--`
reach the tool (for example `nox -s tests -- -k config -x`).
"""

from __future__ import annotations

import glob
import shutil

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests", "bats", "security"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
# cluster/ha/reconcile.py runs on the nodes (their python3, standard library only): it is
# linted and type-checked like the package.
NODE_PYTHON = ["cluster/ha/reconcile.py"]
PY_PATHS = ["src", "tests", "benchmarks", "pulumi", "tasks.py", "noxfile.py", *NODE_PYTHON]


def shell_scripts() -> list[str]:
    found = set(glob.glob("**/*.sh", recursive=True)) | set(glob.glob("bin/*"))
    return sorted(p for p in found if not p.startswith((".venv", ".nox", "build/")))


def require_tool(session: nox.Session, tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        session.error(f"{tool} is not installed: run `bin/setup --test` (Debian package {package})")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, shellcheck, yamllint, the schemas against their metaschema, generated docs."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    paths = [p for p in PY_PATHS if glob.glob(p)]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    require_tool(session, "shellcheck", "shellcheck")
    session.run("shellcheck", "--external-sources", *shell_scripts(), external=True)
    session.run("yamllint", "--strict", ".")
    schemas = sorted(glob.glob("config/schema/*.schema.json"))
    session.run("check-jsonschema", "--check-metaschema", *schemas)
    session.install("-e", ".")
    session.run("invoke", "config.docs", "--check")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy on the pwbcluster package and the Python that runs on the nodes."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "typecheck"))
    session.run("mypy", *session.posargs)
    # The node-side script is held to --strict, and to the oldest Python mypy still models.
    session.run("mypy", "--strict", "--python-version", "3.10", *NODE_PYTHON)


@nox.session
def tests(session: nox.Session) -> None:
    """pytest: unit, Pulumi mocks, pcluster offline and the real daemons (needs root for those)."""
    # Bytecode written at install time: the tests start invoke and ParallelCluster's worker
    # hundreds of times, and with PYTHONDONTWRITEBYTECODE set each start would compile every
    # import again (bin/setup does the same for .venv).
    session.install(
        "-e",
        ".",
        *nox.project.dependency_groups(PYPROJECT, "test"),
        env={"UV_COMPILE_BYTECODE": "1"},
    )
    session.run("python", "-m", "compileall", "-q", "src", silent=True)
    # pytest exits 5 when it collected nothing; nox fails on it, which is what we want:
    # a suite that silently ran no test is not a green suite.
    session.run("pytest", "--durations=15", *(session.posargs or ["tests"]))


@nox.session
def shellcheck(session: nox.Session) -> None:
    """shellcheck on every shell script."""
    require_tool(session, "shellcheck", "shellcheck")
    session.run("shellcheck", "--external-sources", *shell_scripts(), external=True)


@nox.session(venv_backend="none")
def bats(session: nox.Session) -> None:
    """bats tests for the node and image scripts, with commands stubbed on PATH."""
    require_tool(session, "bats", "bats")
    files = sorted(glob.glob("tests/bats/*.bats"))
    if not files:
        session.error("no bats tests found under tests/bats/")
    session.run("bats", "--print-output-on-failure", *files, *session.posargs, external=True)


# The deployments whose synthesised CloudFormation the security session scans.
SECURITY_DEPLOYMENTS = {
    "config/example.yaml": "build/example/plan/cloudformation",
    "security/tls-hostname.yaml": "build/example-tls/plan/cloudformation",
}


@nox.session
def security(session: nox.Session) -> None:
    """checkov on the planned CloudFormation: fails on a finding the project controls."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "security"))
    try:
        for deployment in SECURITY_DEPLOYMENTS:
            session.run("invoke", "plan", "--config", deployment)
    finally:
        # The plans' warm pcluster worker is not left running after CI.
        session.run("invoke", "pcluster.workers", "--stop", success_codes=[0, 1])
    session.run(
        "python",
        "-m",
        "pwbcluster.pcluster.findings",
        "--inherent",
        "security/checkov-inherent.yaml",
        *SECURITY_DEPLOYMENTS.values(),
    )
