"""Price tasks: fetch the unit prices a deployment needs into the on-disk cache.

``invoke plan`` then prices the deployment from the cache, offline. Needs AWS credentials
allowed to call ``pricing:GetProducts`` (any account; the Price List API is free).
"""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, Context, task
from rich.console import Console

from pwbcluster.config import load_config
from pwbcluster.errors import ToolkitError
from pwbcluster.estimate import prices
from pwbcluster.pipeline.plan import items_for_config
from pwbcluster.tasks.common import CONFIG_HELP, require_config, wired

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


ns = Collection("prices", refresh)
ns.configure(DEFAULTS)
