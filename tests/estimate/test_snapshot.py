"""The bundled price snapshot: made from Price List API answers, read back offline with its
date, newer cache entries preferred, a key it lacks left unknown (never guessed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pwbcluster.estimate import catalogue as cat
from pwbcluster.estimate import prices

from .conftest import answer, expected, price_item

TODAY = dt.date(2026, 11, 30)


def _ec2(region: str, usd: str) -> str:
    attrs = {
        "instanceType": "t3.xlarge",
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "operation": "RunInstances",
        "usagetype": "BoxUsage:t3.xlarge",
    }
    return price_item("AmazonEC2", "Compute Instance", attrs, usd, "Hrs", f"SKU-{region}")


def test_a_snapshot_is_made_per_region_and_prices_offline_with_its_date(
    pricing: Any, tmp_path: Path
) -> None:
    client, stubber = pricing
    instance, nat = cat.ec2_instance("t3.xlarge"), cat.nat_gateway()
    stubber.add_response(
        "get_products", answer(_ec2("us-east-1", "0.1664")), expected(instance, "us-east-1")
    )
    stubber.add_response("get_products", answer(), expected(nat, "us-east-1"))  # not found
    stubber.add_response(
        "get_products", answer(_ec2("eu-west-1", "0.1824")), expected(instance, "eu-west-1")
    )
    stubber.add_response("get_products", answer(), expected(nat, "eu-west-1"))
    made, missing = prices.make_snapshot([instance, nat], ["us-east-1", "eu-west-1"], client, TODAY)
    stubber.assert_no_pending_responses()
    assert set(missing) == {"us-east-1", "eu-west-1"}
    assert all(len(v) == 1 and v[0].startswith(f"{nat.key}:") for v in missing.values()), missing
    path = tmp_path / "snapshot.json"
    path.write_text(__import__("json").dumps(made.to_json()))
    loaded = prices.Snapshot.load(path)
    assert loaded is not None and loaded.retrieved == "2026-11-30"

    cache = prices.PriceCache(tmp_path / "cache")
    results = prices.resolve_prices(
        [instance, nat], "eu-west-1", cache, None, TODAY, snapshot=loaded
    )
    got = results[instance.key]
    assert got.price is not None and got.price.usd == "0.1824" and got.source == "snapshot"
    assert "2026-11-30" in (got.reason or "")
    # What the snapshot lacks stays unknown, and says so.
    assert results[nat.key].price is None
    assert "not in the bundled snapshot of 2026-11-30" in (results[nat.key].reason or "")
    # A region the snapshot was not made for: unknown too.
    other = prices.resolve_prices([instance], "ap-south-1", cache, None, TODAY, snapshot=loaded)
    assert other[instance.key].price is None


def test_a_newer_cache_entry_beats_the_snapshot_and_an_older_one_does_not(tmp_path: Path) -> None:
    query = cat.ec2_instance("t3.xlarge")

    def unit(usd: str, on: str) -> prices.UnitPrice:
        return prices.UnitPrice(usd, "Hrs", "t3.xlarge", "SKU", on)

    snap = prices.Snapshot("2026-10-01", {"eu-west-1": {query.key: unit("0.20", "2026-10-01")}})
    cache = prices.PriceCache(tmp_path / "cache")
    cache.save("eu-west-1", {query.key: unit("0.18", "2026-11-01")})  # 29 days old: fresh
    fresh = prices.resolve_prices([query], "eu-west-1", cache, None, TODAY, snapshot=snap)
    assert fresh[query.key].price.usd == "0.18"  # type: ignore[union-attr]
    late = dt.date(2027, 3, 1)  # the cache entry is stale now, but still newer: kept
    stale = prices.resolve_prices([query], "eu-west-1", cache, None, late, snapshot=snap)
    assert stale[query.key].source == "cache"
    cache.save("eu-west-1", {query.key: unit("0.15", "2026-01-01")})  # older than the snapshot
    older = prices.resolve_prices([query], "eu-west-1", cache, None, late, snapshot=snap)
    assert older[query.key].source == "snapshot" and older[query.key].price.usd == "0.20"  # type: ignore[union-attr]


def test_the_snapshot_regions_are_parallelclusters_commercial_ones(tmp_path: Path) -> None:
    site = tmp_path / "pcluster"
    (site / "resources").mkdir(parents=True)
    (site / "resources" / "supported-regions").write_text(
        "eu-west-1\ncn-north-1\nus-gov-west-1\nus-iso-east-1\nus-east-1\n"
    )
    assert prices.commercial_regions(site) == ["eu-west-1", "us-east-1"]
