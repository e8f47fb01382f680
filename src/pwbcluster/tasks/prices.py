"""Price tasks: fetch the unit prices a deployment needs into the on-disk cache.

``invoke plan`` then prices the deployment from the cache, offline. Needs AWS credentials
allowed to call ``pricing:GetProducts`` (any account; the Price List API is free).
"""

from __future__ import annotations

import json
from pathlib import Path

from invoke import Collection, Context
from rich.console import Console

from pwbcluster.config import load_config
from pwbcluster.errors import ToolkitError
from pwbcluster.estimate import prices
from pwbcluster.pipeline.plan import items_for_config
from pwbcluster.tasks.common import CONFIG_HELP, require_config, task, wired

DEFAULTS = {"prices": {"cache_dir": None, "max_age_days": prices.DEFAULT_MAX_AGE_DAYS}}


@task(
    help={
        "config": CONFIG_HELP,
        "cache_dir": "price cache directory (default: $PWBCLUSTER_PRICE_CACHE or "
        "~/.cache/pwbcluster/prices)",
        "max_age_days": "re-fetch cached prices older than this many days (default 30)",
        "force": "re-fetch every price, however fresh",
    }
)
@wired
def refresh(
    c: Context,
    config: str | None = None,
    cache_dir: str | None = None,
    max_age_days: int | None = None,
    force: bool = False,
) -> None:
    """Fetch the deployment's unit prices from the AWS Price List API into the cache."""
    settings = c.config.get("prices", {})
    path = config or c.config.get("pwbcluster", {}).get("config")
    cfg = load_config(require_config(path))
    directory = Path(cache_dir or settings.get("cache_dir") or prices.default_cache_dir())
    age = max_age_days if max_age_days is not None else settings.get("max_age_days")
    cache = prices.PriceCache(directory)
    results = prices.refresh(
        [item.query for item in items_for_config(cfg)],
        cfg.region,
        cache,
        max_age_days=int(age if age is not None else prices.DEFAULT_MAX_AGE_DAYS),
        force=force,
    )
    console = Console()
    for key, result in sorted(results.items()):
        p = result.price
        if p:
            line = f"{key}: {p.usd} USD per {p.unit} ({result.source}, {p.fetched_on})"
            console.print(
                line + (f" [yellow]{result.reason}[/yellow]" if result.reason else ""),
                highlight=False,
            )
        else:
            console.print(f"[red]{key}: unknown[/red] ({result.reason})", highlight=False)
    console.print(f"cache: {cache.path(cfg.region)}", highlight=False)
    missing = [k for k, r in results.items() if r.price is None]
    if missing:
        raise ToolkitError(f"{len(missing)} price(s) could not be fetched: {', '.join(missing)}")


@task(
    help={
        "config": "a deployment whose priced items go in (repeatable; default config/example.yaml)",
        "region": "only this region (repeatable; default every commercial region "
        "ParallelCluster supports)",
        "instance_type": "also price this instance type (repeatable)",
        "output": "where to write it (default: the bundled snapshot in the package)",
    },
    iterable=["config", "region", "instance_type"],
)
@wired
def snapshot(
    c: Context,
    config: list[str] | None = None,
    region: list[str] | None = None,
    instance_type: list[str] | None = None,
    output: str | None = None,
) -> None:
    """Write the dated price snapshot plan uses without credentials, from the Price List API.

    Commit the file it writes: `invoke plan` then prices offline and says the date.
    """
    import datetime as dt

    import boto3

    from pwbcluster.estimate import catalogue
    from pwbcluster.files import write_text
    from pwbcluster.pcluster.venv import site_packages

    if boto3.session.Session().get_credentials() is None:
        raise ToolkitError(
            "no AWS credentials found: the snapshot is read from the Price List API "
            "(pricing:GetProducts); set AWS_PROFILE and run this again"
        )
    queries = []
    for path in config or ["config/example.yaml"]:
        queries += [item.query for item in items_for_config(load_config(Path(path)))]
    queries += [catalogue.ec2_instance(t) for t in instance_type or []]
    regions = region or prices.commercial_regions(site_packages() / "pcluster")
    target = Path(output) if output else prices.SNAPSHOT_PATH
    previous = prices.Snapshot.load(target)
    console = Console()

    def said(name: str, priced: int, wanted: int) -> None:
        console.print(f"{name}: {priced} of {wanted} price(s)", highlight=False)

    made, missing = prices.make_snapshot(
        queries, regions, prices.pricing_client(), dt.date.today(), previous, said
    )
    write_text(target, json.dumps(made.to_json(), indent=2) + "\n")
    console.print(f"snapshot of {made.retrieved}: {target}", highlight=False)
    for name, lines in sorted(missing.items()):
        console.print(f"[yellow]{name}: not priced[/yellow] {'; '.join(lines)}", highlight=False)


ns = Collection("prices", refresh, snapshot)
ns.configure(DEFAULTS)
