"""Unit prices from the AWS Price List API, cached on disk with the date they were read.

``resolve_prices`` answers each ``PriceQuery`` from the cache when the entry is fresh, from
the API when credentials are present (and the caller allows it), from a stale cache entry
otherwise, and leaves the price unknown, with the reason, when none of these has it.
Nothing here invents a number.

``credentials_available`` resolves credentials the way botocore does but without the
instance metadata provider, so the answer never costs a network call.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from pwbcluster.errors import ToolkitError
from pwbcluster.estimate.catalogue import GB_MONTH, HOUR, PriceQuery

log = logging.getLogger(__name__)

PRICING_REGION = "us-east-1"
CACHE_ENV = "PWBCLUSTER_PRICE_CACHE"
OFFLINE_ENV = "PWBCLUSTER_PRICES_OFFLINE"
DEFAULT_MAX_AGE_DAYS = 30
MAX_PAGES = 10
CACHE_FORMAT = 1


class PriceNotFound(Exception):
    """The Price List API answered, but no single price matched the query."""


@dataclass(frozen=True)
class UnitPrice:
    usd: str
    unit: str
    description: str
    sku: str
    fetched_on: str
    effective_date: str = ""

    @property
    def amount(self) -> Decimal:
        return Decimal(self.usd)

    def age_days(self, today: dt.date) -> int:
        return (today - dt.date.fromisoformat(self.fetched_on)).days


@dataclass(frozen=True)
class PriceResult:
    query: PriceQuery
    price: UnitPrice | None
    source: str | None  # "api" | "cache" | "snapshot" | None
    reason: str | None = None


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pwbcluster" / "prices"


class PriceCache:
    """One JSON file per region: ``{"format": 1, "region": ..., "prices": {key: {...}}}``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, region: str) -> Path:
        return self.directory / f"{region}.json"

    def load(self, region: str) -> dict[str, UnitPrice]:
        path = self.path(region)
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text())
            return {k: UnitPrice(**v) for k, v in data.get("prices", {}).items()}
        except (OSError, ValueError, TypeError) as exc:
            log.warning("ignoring unreadable price cache %s: %s", path, exc)
            return {}

    def save(self, region: str, prices: dict[str, UnitPrice]) -> Path:
        path = self.path(region)
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = {**self.load(region), **prices}
        body = {
            "format": CACHE_FORMAT,
            "region": region,
            "currency": "USD",
            "prices": {k: asdict(v) for k, v in sorted(merged.items())},
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        tmp.replace(path)
        return path


def credentials_available() -> bool:
    """Whether botocore finds credentials, without asking the instance metadata service."""
    import botocore.session

    session = botocore.session.Session()
    resolver = session.get_component("credential_provider")
    # The instance metadata provider is the one that would touch the network; dropping it
    # has the effect of AWS_EC2_METADATA_DISABLED=true without changing the environment.
    resolver.remove("iam-role")
    try:
        return session.get_credentials() is not None
    except Exception as exc:  # a broken profile is "no usable credentials", not a crash
        log.debug("credential resolution failed: %s", exc)
        return False


def pricing_client() -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    config = BotoConfig(
        connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"}
    )
    return boto3.session.Session().client("pricing", region_name=PRICING_REGION, config=config)


def _normal(text: str) -> str:
    return re.sub(r"[\s_\-]", "", text).lower()


def _product_matches(query: PriceQuery, attributes: dict[str, str]) -> bool:
    if query.usagetype:
        # Usage types start with a regional prefix ("EU-", "USE1-", "EUW2-") or none.
        pattern = r"(?:[A-Z]{2,4}[0-9]{0,2}-)?" + re.escape(query.usagetype)
        if not re.fullmatch(pattern, attributes.get("usagetype", "")):
            return False
    for attribute, text in query.needles:
        values = attributes.values() if attribute == "*" else [attributes.get(attribute, "")]
        if not any(_normal(text) in _normal(str(v)) for v in values):
            return False
    return True


def _unit_fits(basis: str, unit: str) -> bool:
    u = unit.lower()
    if basis == HOUR:
        return "hr" in u or "hour" in u
    if basis == GB_MONTH:
        return u.startswith("gb-mo") or u == "gb-month"
    return True


def parse_price_item(raw: str) -> tuple[dict[str, str], list[dict[str, Any]], str, str]:
    """(product attributes, on-demand price dimensions, sku, effective date) of one item.

    ``PriceList`` entries are JSON strings, each an object with ``product`` and ``terms``.
    """
    item = json.loads(raw)
    product = item.get("product", {})
    dims: list[dict[str, Any]] = []
    effective = ""
    for term in (item.get("terms", {}).get("OnDemand") or {}).values():
        effective = term.get("effectiveDate", effective)
        dims.extend(term.get("priceDimensions", {}).values())
    return product.get("attributes", {}), dims, product.get("sku", ""), effective


def fetch_price(client: Any, query: PriceQuery, region: str, today: dt.date) -> UnitPrice:
    """Ask GetProducts for ``query`` in ``region``; exactly one distinct price must match."""
    candidates: dict[str, UnitPrice] = {}
    seen = 0
    token: str | None = None
    for _ in range(MAX_PAGES):
        kwargs: dict[str, Any] = {
            "ServiceCode": query.service,
            "Filters": query.api_filters(region),
            "FormatVersion": "aws_v1",
            "MaxResults": 100,
        }
        if token:
            kwargs["NextToken"] = token
        response = client.get_products(**kwargs)
        for raw in response.get("PriceList", []):
            seen += 1
            attributes, dims, sku, effective = parse_price_item(raw)
            if not _product_matches(query, attributes):
                continue
            for dim in dims:
                if str(dim.get("beginRange", "0")) not in ("0", "0.0"):
                    continue  # later tiers of tiered prices
                usd = dim.get("pricePerUnit", {}).get("USD")
                unit = str(dim.get("unit", ""))
                if usd is None or not _unit_fits(query.basis, unit):
                    continue
                try:
                    amount = Decimal(usd)
                except InvalidOperation:
                    continue
                candidates[str(amount.normalize())] = UnitPrice(
                    usd=str(amount.normalize()),
                    unit=unit,
                    description=str(dim.get("description", "")),
                    sku=sku,
                    fetched_on=today.isoformat(),
                    effective_date=effective,
                )
        token = response.get("NextToken")
        if not token:
            break
    if not candidates:
        raise PriceNotFound(f"no on-demand price matched ({seen} product(s) returned)")
    if len(candidates) > 1:
        found = ", ".join(sorted(candidates))
        raise PriceNotFound(f"ambiguous: {len(candidates)} different prices matched ({found})")
    return next(iter(candidates.values()))


SNAPSHOT_PATH = Path(__file__).resolve().parent / "price_snapshot.json"
SNAPSHOT_FORMAT = 1


@dataclass(frozen=True)
class Snapshot:
    """A dated, checked-in set of unit prices per region (``invoke prices.snapshot`` makes
    it from the Price List API), so a plan prices a deployment with no credentials at all
    and says the snapshot's date. ``None`` of it is a guess: a key it lacks stays unknown."""

    retrieved: str
    regions: dict[str, dict[str, UnitPrice]]

    @classmethod
    def load(cls, path: Path = SNAPSHOT_PATH) -> Snapshot | None:
        if not path.exists():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != SNAPSHOT_FORMAT:
            raise ToolkitError(f"{path}: unknown snapshot format {raw.get('format')!r}")
        regions = {
            region: {key: UnitPrice(**entry) for key, entry in entries.items()}
            for region, entries in raw.get("regions", {}).items()
        }
        return cls(str(raw["retrieved"]), regions)

    def get(self, region: str, key: str) -> UnitPrice | None:
        return self.regions.get(region, {}).get(key)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "retrieved": self.retrieved,
            "source": "AWS Price List API (pricing:GetProducts), on-demand list prices",
            "regions": {
                region: {key: asdict(price) for key, price in sorted(entries.items())}
                for region, entries in sorted(self.regions.items())
            },
        }


def resolve_prices(
    queries: Iterable[PriceQuery],
    region: str,
    cache: PriceCache,
    client_factory: Callable[[], Any] | None,
    today: dt.date | None = None,
    max_age_days: int = DEFAULT_MAX_AGE_DAYS,
    force: bool = False,
    snapshot: Snapshot | None = None,
) -> dict[str, PriceResult]:
    """Each query's price: fresh cache, else the API (if a client factory is given), else
    the newer of a stale cache entry and the bundled snapshot, else unknown with the
    reason."""
    today = today or dt.date.today()
    unique = {q.key: q for q in queries}
    cached = cache.load(region)
    results: dict[str, PriceResult] = {}
    to_fetch: list[PriceQuery] = []
    for key, query in unique.items():
        entry = cached.get(key)
        if entry and not force and entry.age_days(today) <= max_age_days:
            results[key] = PriceResult(query, entry, "cache")
        else:
            to_fetch.append(query)
    fetched: dict[str, UnitPrice] = {}
    client = None
    if to_fetch and client_factory is not None:
        try:
            client = client_factory()
        except Exception as exc:  # no client means "offline", with the reason kept
            log.warning("price list client unavailable: %s", exc)
    unreachable: str | None = None
    for query in to_fetch:
        entry = cached.get(query.key)
        reason = unreachable or (
            "not in the price cache and no AWS credentials to ask the Price List API"
        )
        if client is not None and unreachable is None:
            try:
                price = fetch_price(client, query, region, today)
            except PriceNotFound as exc:
                reason = f"Price List API: {exc}"
            except ClientError as exc:  # this query refused (permissions, throttling)
                reason = f"Price List API refused: {exc}"
            except Exception as exc:  # the API cannot be reached: stop asking it
                reason = f"Price List API unreachable: {type(exc).__name__}: {exc}"
                unreachable = reason
            else:
                fetched[query.key] = price
                results[query.key] = PriceResult(query, price, "api")
                continue
        bundled = snapshot.get(region, query.key) if snapshot else None
        if entry and (bundled is None or entry.fetched_on >= bundled.fetched_on):
            # Stale, but dated: better than nothing, and labelled.
            note = f"cached {entry.age_days(today)} days ago, not refreshed: {reason}"
            results[query.key] = PriceResult(query, entry, "cache", reason=note)
        elif bundled is not None and snapshot is not None:
            note = f"from the bundled price snapshot of {snapshot.retrieved}"
            results[query.key] = PriceResult(query, bundled, "snapshot", reason=note)
        else:
            if snapshot is not None:
                reason += f"; not in the bundled snapshot of {snapshot.retrieved}"
            results[query.key] = PriceResult(query, None, None, reason=reason)
    if fetched:
        try:
            path = cache.save(region, fetched)
        except OSError as exc:  # the estimate stands; only the next run pays again
            log.warning("could not write the price cache %s: %s", cache.directory, exc)
        else:
            log.info("cached %d price(s) in %s", len(fetched), path)
    return results


def refresh(
    queries: Iterable[PriceQuery],
    region: str,
    cache: PriceCache,
    max_age_days: int = DEFAULT_MAX_AGE_DAYS,
    force: bool = False,
    client_factory: Callable[[], Any] = pricing_client,
) -> dict[str, PriceResult]:
    """Fetch what the cache lacks (or everything, with ``force``) from the Price List API.

    Unlike ``invoke plan``, this is asked for explicitly, so the full credential chain is
    used, the instance metadata service included.
    """
    import boto3

    if boto3.session.Session().get_credentials() is None:
        raise ToolkitError(
            "no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY) for an identity allowed pricing:GetProducts, then run "
            "this again"
        )
    return resolve_prices(
        queries, region, cache, client_factory, max_age_days=max_age_days, force=force
    )


def commercial_regions(pcluster_site: Path | None) -> list[str]:
    """The regions ParallelCluster supports (its own resources/supported-regions file) in
    the commercial partition, which is what the Price List API prices (China, GovCloud and
    the ISO regions have price lists of their own)."""
    if pcluster_site is None or not (pcluster_site / "resources" / "supported-regions").exists():
        raise ToolkitError(
            "ParallelCluster's supported-regions file was not found: run `invoke pcluster.setup`"
        )
    names = (pcluster_site / "resources" / "supported-regions").read_text().split()
    return sorted(n for n in names if not n.startswith(("cn-", "us-gov-", "us-iso")))


def make_snapshot(
    queries: Iterable[PriceQuery],
    regions: Iterable[str],
    client: Any,
    today: dt.date,
    previous: Snapshot | None = None,
    on_region: Callable[[str, int, int], None] | None = None,
) -> tuple[Snapshot, dict[str, list[str]]]:
    """Ask the Price List API for every query in every region. What it could not price is
    returned per region (and left out: a missing entry stays unknown, never guessed);
    regions not asked keep the previous snapshot's entries."""
    unique = {q.key: q for q in queries}
    kept = dict(previous.regions) if previous else {}
    missing: dict[str, list[str]] = {}
    for region in regions:
        entries: dict[str, UnitPrice] = {}
        for query in unique.values():
            try:
                entries[query.key] = fetch_price(client, query, region, today)
            except (PriceNotFound, ClientError) as exc:
                missing.setdefault(region, []).append(f"{query.key}: {exc}")
        kept[region] = entries
        if on_region:
            on_region(region, len(entries), len(unique))
    return Snapshot(today.isoformat(), kept), missing
