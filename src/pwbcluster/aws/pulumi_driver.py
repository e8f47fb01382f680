"""Drive the real stacks through Pulumi's Automation API (inline programs).

The stacks are ``<deployment>-network`` and ``<deployment>-services`` of the project
``pwbcluster-aux``; their programs are the network and services stages', configured from the
deployment YAML (nobody edits a Pulumi.yaml). State lives where
``deployment.pulumi_backend`` says, by default in a file backend under
``~/.pwbcluster/pulumi`` (never inside ``build/``, which sits in the checkout).

Secrets in that state are encrypted with a passphrase. The toolkit never hard-codes
one: it uses ``PULUMI_CONFIG_PASSPHRASE``/``PULUMI_CONFIG_PASSPHRASE_FILE`` when set,
and otherwise generates a random one on first use into
``~/.config/pwbcluster/pulumi-passphrase`` (mode 600). Back that file up with the state:
without it, the state's secrets cannot be read.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

from pwbcluster.contracts.account import StackRequest
from pwbcluster.errors import MissingDependency, StageError, ToolkitError

log = logging.getLogger(__name__)


def default_backend_dir() -> Path:
    return Path.home() / ".pwbcluster" / "pulumi"


PLUGINS = {"aws": "pulumi_aws", "random": "pulumi_random", "tls": "pulumi_tls"}
INSTALL_HINT = (
    "the `pulumi` CLI is not installed (the Automation API drives it). Install it: "
    "`curl -fsSL https://get.pulumi.com | sh` on Linux or macOS, "
    "`brew install pulumi/tap/pulumi`, or `choco install pulumi` on Windows; then open a new "
    "shell and check `pulumi version`. To rehearse without AWS, run `invoke up --sandbox`."
)
CREDENTIALS_HINT = (
    "no AWS credentials found. Configure them the usual way, for example "
    "`aws configure sso` then `aws sso login --profile NAME` and `export AWS_PROFILE=NAME`, "
    "or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; check with `aws sts get-caller-identity`. "
    "To rehearse without AWS, run `invoke up --sandbox`."
)


def backend_url(configured: str | None) -> str:
    if configured:
        return str(configured)
    directory = default_backend_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"file://{directory}"


def passphrase_env(backend: str) -> dict[str, str]:
    """How the stack's secrets are encrypted: the user's passphrase, or a generated one."""
    if backend.startswith("https://"):
        return {}  # Pulumi Cloud (or self-hosted service) keeps its own secrets provider
    if os.environ.get("PULUMI_CONFIG_PASSPHRASE") or os.environ.get(
        "PULUMI_CONFIG_PASSPHRASE_FILE"
    ):
        return {}
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "pwbcluster"
    path = base / "pulumi-passphrase"
    if not path.exists():
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        log.warning("generated the Pulumi state passphrase in %s: back it up", path)
    if path.stat().st_mode & 0o077:
        raise ToolkitError(f"{path} is readable by others: run `chmod 600 {path}`")
    return {"PULUMI_CONFIG_PASSPHRASE_FILE": str(path)}


def require_cli() -> None:
    if shutil.which("pulumi") is None:
        raise MissingDependency(INSTALL_HINT)


def require_credentials(region: str) -> None:
    import boto3

    if boto3.session.Session(region_name=region).get_credentials() is None:
        raise MissingDependency(CREDENTIALS_HINT)


def _stack(request: StackRequest, backend: str, region: str, create: bool = True) -> Any:
    require_cli()
    require_credentials(region)
    from pulumi import automation as auto

    def program() -> None:
        import pulumi

        for key, value in request.program().items():
            if value is not None:
                secret = key in request.secret_outputs
                pulumi.export(key, pulumi.Output.secret(value) if secret else value)

    opts = auto.LocalWorkspaceOptions(
        env_vars={"PULUMI_BACKEND_URL": backend, **passphrase_env(backend)},
        project_settings=auto.ProjectSettings(
            name=request.project, runtime="python", backend=auto.ProjectBackend(url=backend)
        ),
    )
    if create:
        stack = auto.create_or_select_stack(
            stack_name=request.stack, project_name=request.project, program=program, opts=opts
        )
    else:
        try:
            stack = auto.select_stack(
                stack_name=request.stack, project_name=request.project, program=program, opts=opts
            )
        except auto.errors.StackNotFoundError:
            raise StageError(
                f"the {request.part} stack ({request.stack}) does not exist in {backend}: "
                "run `invoke up` first"
            ) from None
    stack.set_config("aws:region", auto.ConfigValue(value=region))
    # Inline programs cannot always report their plugins: install the ones the Python
    # packages were built for (a no-op when present).
    for plugin, package in PLUGINS.items():
        stack.workspace.install_plugin(plugin, f"v{metadata.version(package)}")
    return stack


def _command(action: str, part: str, call: Any) -> Any:
    from pulumi import automation as auto

    try:
        return call()
    except auto.errors.CommandError as exc:
        tail = "\n".join(str(exc).strip().splitlines()[-15:])
        raise StageError(f"pulumi {action} of the {part} stack failed:\n{tail}") from None


def preview(request: StackRequest, backend: str, region: str) -> str:
    """What ``up`` would change, as Pulumi summarises it; changes nothing."""
    stack = _stack(request, backend, region)
    result = _command("preview", request.part, lambda: stack.preview(on_output=log.info))
    return str(result.change_summary)


def _replaced_urns(request: StackRequest, stack: Any) -> list[str]:
    """The URNs of the stack's resources of ``request.replace_types``."""
    if not request.replace_types:
        return []
    deployment = _command("export", request.part, stack.export_stack).deployment or {}
    return [
        r["urn"] for r in deployment.get("resources", []) if r.get("type") in request.replace_types
    ]


def up(request: StackRequest, backend: str, region: str) -> dict[str, Any]:
    """Create or update one stack; return its outputs."""
    stack = _stack(request, backend, region)
    replace = _replaced_urns(request, stack)
    if request.replace_types and not replace:
        raise StageError(
            f"the {request.part} stack holds no {', '.join(request.replace_types)} to replace"
        )
    _command("up", request.part, lambda: stack.up(on_output=log.info, replace=replace or None))
    return outputs(request, backend, region, stack=stack)


def outputs(request: StackRequest, backend: str, region: str, stack: Any = None) -> dict[str, Any]:
    stack = stack or _stack(request, backend, region, create=False)
    values = {k: v.value for k, v in _command("outputs", request.part, stack.outputs).items()}
    if not values:
        raise StageError(f"the {request.part} stack has no outputs yet: run `invoke up` first")
    return values


def destroy(request: StackRequest, backend: str, region: str) -> None:
    try:
        stack = _stack(request, backend, region, create=False)
    except StageError as exc:
        log.info("%s: nothing to destroy (%s)", request.part, exc)
        return
    _command("destroy", request.part, lambda: stack.destroy(on_output=log.info))
