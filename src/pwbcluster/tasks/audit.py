"""audit.*: the secret canary."""

from __future__ import annotations

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from invoke import Collection, Context
from rich.console import Console

from pwbcluster.config import load_config
from pwbcluster.errors import ToolkitError
from pwbcluster.sandbox import server as sandbox
from pwbcluster.sandbox.canary import audit
from pwbcluster.tasks.common import CONFIG_HELP, require_config, task, wired


@task(help={"config": CONFIG_HELP})
@wired
def secrets(c: Context, config: str | None = None) -> None:
    """Search build/, S3, CloudFormation, user-data, Args and logs for every secret value."""
    cfg = load_config(require_config(config))
    console = Console()
    server = sandbox.running(cfg.build_dir)
    if server is not None:
        with sandbox.aws_environment(server, cfg.region):
            report = audit(boto3.Session(region_name=cfg.region), cfg.build_dir)
        where = f"the sandbox at {server.endpoint}"
    else:
        session = boto3.Session(region_name=cfg.region)
        if session.get_credentials() is None:
            raise ToolkitError(
                f"nothing to search: no sandbox runs for deployment '{cfg.name}' "
                f"(no live server in {cfg.build_dir / 'sandbox.json'}) and no AWS credentials "
                "are configured. Start the sandbox (`invoke up --sandbox`) or configure "
                "credentials for the deployment's account."
            )
        try:
            report = audit(session, cfg.build_dir)
        except (BotoCoreError, ClientError) as exc:
            raise ToolkitError(f"the canary could not read the account: {exc}") from None
        where = "the AWS account of your credentials"
    console.print(
        f"Searched {report.places} places in {where} and build/ for "
        f"{report.secrets} secrets ({report.needles} forms)."
    )
    if report.vacuous is not None:
        raise ToolkitError(f"the canary proved nothing: {report.vacuous}")
    if report.findings:
        for finding in report.findings:
            console.print(f"[red]secret '{finding.secret_name}' found in {finding.where}[/red]")
        raise ToolkitError(f"{len(report.findings)} secret leak(s) found")
    console.print("[green]No secret value found outside Secrets Manager.[/green]")


ns = Collection(secrets)
