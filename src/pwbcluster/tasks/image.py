"""``invoke image.*``: the custom AMI (build, status, logs, list, delete)."""

from __future__ import annotations

from invoke import Collection, Context
from rich.console import Console

from pwbcluster.config import Config, load_config
from pwbcluster.pipeline import image_tasks as commands
from pwbcluster.pipeline import orchestrate
from pwbcluster.tasks.common import CONFIG_HELP, require_config, task, wired

SANDBOX_HELP = "use the deployment's sandbox (local moto server) instead of AWS"


def _config(c: Context, config: str | None) -> Config:
    path = config or c.config.get("pwbcluster", {}).get("config")
    return load_config(require_config(path))


@task(
    help={
        "config": CONFIG_HELP,
        "dry_run": "print the fingerprint, the upload list and the build-image config; "
        "touch no AWS (and no sandbox)",
        "sandbox": SANDBOX_HELP,
    }
)
@wired
def build(
    c: Context, config: str | None = None, dry_run: bool = False, sandbox: bool = False
) -> None:
    """Build the custom AMI when its inputs changed (runs the network stage first if needed)."""
    cfg = _config(c, config)
    console = Console()
    mode = "sandbox" if sandbox else "real"
    if dry_run:
        commands.dry_run(cfg, console, mode)
        return
    orchestrate.up(cfg, mode, console, {"image"})


@task(help={"config": CONFIG_HELP, "sandbox": SANDBOX_HELP})
@wired
def status(c: Context, config: str | None = None, sandbox: bool = False) -> None:
    """Show the recorded image, whether its inputs changed, and pcluster's view of it."""
    commands.status(_config(c, config), Console(), sandbox)


@task(
    help={
        "config": CONFIG_HELP,
        "image_id": "pcluster image id (default: the deployment's recorded image)",
    }
)
@wired
def logs(c: Context, config: str | None = None, image_id: str | None = None) -> None:
    """Print the build log of an image (pcluster get-image-log-events, every stream)."""
    commands.logs(_config(c, config), Console(), image_id)


@task(name="list", help={"config": CONFIG_HELP, "sandbox": SANDBOX_HELP})
@wired
def list_(c: Context, config: str | None = None, sandbox: bool = False) -> None:
    """List the images carrying a pwbcluster fingerprint tag in the deployment's region."""
    commands.list_images(_config(c, config), Console(), sandbox)


@task(
    help={
        "config": CONFIG_HELP,
        "image": "AMI id or pcluster image id of the image to delete",
        "sandbox": SANDBOX_HELP,
        "dry_run": "only say what would be deleted",
        "yes": "do not ask for confirmation",
    }
)
@wired
def delete(
    c: Context,
    image: str,
    config: str | None = None,
    sandbox: bool = False,
    dry_run: bool = False,
    yes: bool = False,
) -> None:
    """Delete one of the deployment's images (plan, confirm, act, verify)."""
    commands.delete(_config(c, config), Console(), image, sandbox, dry_run, yes)


@task(
    help={
        "config": CONFIG_HELP,
        "uv": "the uv executable that resolves the lock (default: uv on PATH, else beside Python)",
    }
)
@wired
def lock(c: Context, config: str | None = None, uv: str | None = None) -> None:
    """Rewrite image/requirements-jupyter.txt: image.jupyter's pins and every dependency, hashed."""
    commands.lock_jupyter(_config(c, config), Console(), uv)


ns = Collection(build, status, logs, list_, delete, lock)
