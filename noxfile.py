"""nox sessions: `nox -l` lists them; CI runs `nox -s lint typecheck tests bats security ha_versions`.

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


# The controller-HA tests that prove, on each Slurm: takeover after kill -9 of the head
# with the running job kept and new jobs accepted, failback to the head, and a hung
# hand-back ended by the watcher within seconds (the module's fixture sets up HA with
# controller-ha.sh and checks idempotence on the way). The rest of the module (login nodes
# leaving and joining, pcluster rewrites, concurrent runs) is Slurm-version-neutral file
# handling, run on the host's Slurm by the tests session.
HA_VERSION_TESTS = [
    "tests/ha/test_controller_failover.py::test_ha_settings_come_from_the_scripts",
    "tests/ha/test_controller_failover.py::test_reconciler_twice_changes_nothing",
    "tests/ha/test_controller_failover.py::test_failover_keeps_running_job_and_accepts_new_ones",
    "tests/ha/test_controller_failover.py::test_control_returns_to_the_head",
    "tests/ha/test_controller_failover.py::test_hung_hand_back_is_killed_within_seconds",
]


@nox.session(default=False)
def ha_versions(session: nox.Session) -> None:
    """Controller-HA tests on Debian 12, 13 and testing's Slurm (debootstrap roots, cached)."""
    # `nox -s ha_versions -- trixie forky` picks suites; named suites run even when native.
    from_args = [a for a in session.posargs if not a.startswith("-")]
    pytest_args = [a for a in session.posargs if a.startswith("-")]
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "test"))
    require_tool(session, "debootstrap", "debootstrap")
    for suite in from_args or ["bookworm", "trixie", "forky"]:
        resolved = session.run(
            "python", "-m", "pwbcluster.lab.rootfs", "resolve", suite, silent=True
        )
        root = str(resolved or "").strip().splitlines()[-1]
        if root == "native" and not from_args:
            session.log(f"{suite}: the host's own Slurm; its HA tests run in the tests session")
            continue
        env = {"PWBHA_SLURM_ROOT": "" if root == "native" else root}
        # A skipped HA test is not a passed one: say why it cannot run and fail.
        session.run(
            "python",
            "-c",
            "import sys; sys.path.insert(0, 'tests/ha'); import harness; "
            "r = harness.unavailable_reason(); sys.exit(f'cannot run: {r}' if r else 0)",
            env=env,
        )
        session.log(f"{suite}: HA tests with Slurm from {root}")
        session.run(
            "pytest",
            "-p",
            "no:cacheprovider",
            *pytest_args,
            *HA_VERSION_TESTS,
            env=env,
        )
