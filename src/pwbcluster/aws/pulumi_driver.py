"""Drive the real stacks through Pulumi's Automation API (inline programs).

The stacks are ``<deployment>-network`` and ``<deployment>-services`` of the project
``pwbcluster-aux``; their programs are the network and services stages', configured from the
deployment YAML (nobody edits a Pulumi.yaml). State lives where
``deployment.pulumi_backend`` says, by default in a file backend under
``~/.pwbcluster/pulumi`` (never inside ``build/``, which sits in the checkout).

Secrets in that state are encrypted by ``deployment.pulumi_secrets_provider``: an AWS KMS
key (``awskms://alias/NAME?region=REGION``; no passphrase exists then, and who may decrypt
is who may use the key), or a passphrase (the default). The toolkit never hard-codes a
passphrase: it uses ``PULUMI_CONFIG_PASSPHRASE``/``PULUMI_CONFIG_PASSPHRASE_FILE`` when
set, and otherwise generates a random one on first use into
``$XDG_CONFIG_HOME/pwbcluster/pulumi-passphrase`` (``~/.config``; directory 700, file 600).
A passphrase file is never kept beside the state: one inside a file backend's directory,
or in the directory that holds it, is refused, since whoever copies the state would then hold its key too. Keep a copy of
the passphrase apart from the state's backups: without it the state's secrets cannot be
read.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from pwbcluster.contracts.account import StackRequest
from pwbcluster.errors import MissingDependency, StageError, ToolkitError
from pwbcluster.progress import Ticker, ticking

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


def uses_passphrase(secrets_provider: str | None) -> bool:
    return secrets_provider in (None, "passphrase")


def passphrase_path() -> Path:
    """Where a generated passphrase lives: the OS user's config directory, not the state's."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "pwbcluster" / "pulumi-passphrase"


def _refuse_beside_state(path: Path, backend: str) -> None:
    if not backend.startswith("file://"):
        return
    state = Path(backend.removeprefix("file://")).expanduser().resolve()
    where = path.expanduser().resolve()
    if where.is_relative_to(state) or where.parent == state.parent:
        raise ToolkitError(
            f"the Pulumi passphrase file {path} lies beside the state in {state}: whoever "
            "copies the state would hold its key too. Keep the passphrase elsewhere "
            "(PULUMI_CONFIG_PASSPHRASE_FILE, or XDG_CONFIG_HOME outside the state), or use "
            "deployment.pulumi_secrets_provider: awskms://alias/NAME?region=REGION"
        )


def passphrase_env(backend: str, secrets_provider: str | None = None) -> dict[str, str]:
    """How the stack's secrets are encrypted: the user's passphrase, or a generated one."""
    if backend.startswith("https://"):
        return {}  # Pulumi Cloud (or self-hosted service) keeps its own secrets provider
    if not uses_passphrase(secrets_provider):
        return {}  # a KMS key encrypts them: there is no passphrase to keep
    if os.environ.get("PULUMI_CONFIG_PASSPHRASE"):
        return {}
    named = os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if named:
        _refuse_beside_state(Path(named), backend)
        return {}
    path = passphrase_path()
    base = path.parent
    _refuse_beside_state(path, backend)
    if not path.exists():
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        log.warning("generated the Pulumi state passphrase in %s: back it up", path)
    if path.stat().st_mode & 0o077:
        raise ToolkitError(f"{path} is readable by others: run `chmod 600 {path}`")
    return {"PULUMI_CONFIG_PASSPHRASE_FILE": str(path)}


def _say(tick: Ticker) -> Callable[[str], None]:
    """Pulumi's output: to the run log, and the last line to the progress ticker."""

    def say(line: str) -> None:
        log.info("%s", line.rstrip())
        tick.note(line)

    return say


def require_cli() -> None:
    if shutil.which("pulumi") is None:
        raise MissingDependency(INSTALL_HINT)


def require_credentials(region: str) -> None:
    import boto3

    if boto3.session.Session(region_name=region).get_credentials() is None:
        raise MissingDependency(CREDENTIALS_HINT)


def _stack(
    request: StackRequest,
    backend: str,
    region: str,
    create: bool = True,
    secrets_provider: str | None = None,
) -> Any:
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
        env_vars={"PULUMI_BACKEND_URL": backend, **passphrase_env(backend, secrets_provider)},
        # Used when a stack is created; an existing stack keeps the provider it has.
        secrets_provider=secrets_provider,
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


def preview(
    request: StackRequest, backend: str, region: str, secrets_provider: str | None = None
) -> str:
    """What ``up`` would change, as Pulumi summarises it; changes nothing."""
    stack = _stack(request, backend, region, secrets_provider=secrets_provider)
    with ticking(f"{request.part}: pulumi preview") as tick:
        result = _command("preview", request.part, lambda: stack.preview(on_output=_say(tick)))
    return str(result.change_summary)


def _replaced_urns(request: StackRequest, stack: Any) -> list[str]:
    """The URNs of the stack's resources of ``request.replace_types``."""
    if not request.replace_types:
        return []
    deployment = _command("export", request.part, stack.export_stack).deployment or {}
    return [
        r["urn"] for r in deployment.get("resources", []) if r.get("type") in request.replace_types
    ]


def up(
    request: StackRequest, backend: str, region: str, secrets_provider: str | None = None
) -> dict[str, Any]:
    """Create or update one stack; return its outputs."""
    stack = _stack(request, backend, region, secrets_provider=secrets_provider)
    replace = _replaced_urns(request, stack)
    if request.replace_types and not replace:
        raise StageError(
            f"the {request.part} stack holds no {', '.join(request.replace_types)} to replace"
        )
    with ticking(f"{request.part}: pulumi up") as tick:
        _command(
            "up", request.part, lambda: stack.up(on_output=_say(tick), replace=replace or None)
        )
    return outputs(request, backend, region, stack=stack)


def outputs(
    request: StackRequest,
    backend: str,
    region: str,
    stack: Any = None,
    secrets_provider: str | None = None,
) -> dict[str, Any]:
    stack = stack or _stack(
        request, backend, region, create=False, secrets_provider=secrets_provider
    )
    values = {k: v.value for k, v in _command("outputs", request.part, stack.outputs).items()}
    if not values:
        raise StageError(f"the {request.part} stack has no outputs yet: run `invoke up` first")
    return values


def destroy(
    request: StackRequest, backend: str, region: str, secrets_provider: str | None = None
) -> None:
    try:
        stack = _stack(request, backend, region, create=False, secrets_provider=secrets_provider)
    except StageError as exc:
        log.info("%s: nothing to destroy (%s)", request.part, exc)
        return
    with ticking(f"{request.part}: pulumi destroy") as tick:
        _command("destroy", request.part, lambda: stack.destroy(on_output=_say(tick)))
