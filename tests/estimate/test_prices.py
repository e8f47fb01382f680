"""Reading unit prices from Price List API answers, caching them, and detecting credentials."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import botocore.utils
import pytest
from botocore.exceptions import EndpointConnectionError

from pwbcluster.errors import ToolkitError
from pwbcluster.estimate import catalogue as cat
from pwbcluster.estimate import prices

from .conftest import answer, expected, price_item

TODAY = dt.date(2026, 11, 26)
REGION = "eu-west-1"

EC2_ATTRS = {
    "instanceType": "t3.xlarge",
    "regionCode": REGION,
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
    "operation": "RunInstances",
    "usagetype": "EU-BoxUsage:t3.xlarge",
}


def test_an_instance_price_is_read_from_the_on_demand_term(pricing: Any) -> None:
    client, stubber = pricing
    query = cat.ec2_instance("t3.xlarge")
    stubber.add_response(
        "get_products",
        answer(price_item("AmazonEC2", "Compute Instance", EC2_ATTRS, "0.1824", "Hrs", "SKU1")),
        expected(query, REGION),
    )
    price = prices.fetch_price(client, query, REGION, TODAY)
    stubber.assert_no_pending_responses()
    assert price.amount == Decimal("0.1824") and price.unit == "Hrs"
    assert price.sku == "SKU1" and price.fetched_on == "2026-11-26"
    assert price.effective_date == "2026-11-01T00:00:00Z"


def test_the_filters_sent_name_the_region_and_the_product() -> None:
    filters = {f["Field"]: f["Value"] for f in cat.ec2_instance("c6i.large").api_filters(REGION)}
    assert filters["regionCode"] == REGION and filters["instanceType"] == "c6i.large"
    assert filters["operatingSystem"] == "Linux" and filters["tenancy"] == "Shared"
    assert all(f["Type"] == "TERM_MATCH" for f in cat.nat_gateway().api_filters(REGION))


def test_the_usage_type_picks_the_hourly_nat_price_not_the_per_gb_one(pricing: Any) -> None:
    client, stubber = pricing
    query = cat.nat_gateway()
    hours = price_item(
        "AmazonEC2", "NAT Gateway", {"usagetype": "EU-NatGateway-Hours"}, "0.048", "Hrs", "NAT1"
    )
    data = price_item(
        "AmazonEC2", "NAT Gateway", {"usagetype": "EU-NatGateway-Bytes"}, "0.048", "GB", "NAT2"
    )
    stubber.add_response("get_products", answer(data, hours), expected(query, REGION))
    price = prices.fetch_price(client, query, REGION, TODAY)
    assert price.sku == "NAT1" and price.unit == "Hrs"


def test_pages_are_followed(pricing: Any) -> None:
    client, stubber = pricing
    query = cat.network_load_balancer()
    lcu = price_item(
        "AWSELB", "Load Balancer-Network", {"usagetype": "EU-LCUUsage"}, "0.006", "LCU-Hrs", "L1"
    )
    hourly = price_item(
        "AWSELB",
        "Load Balancer-Network",
        {"usagetype": "EU-LoadBalancerUsage"},
        "0.0252",
        "Hrs",
        "L2",
    )
    stubber.add_response("get_products", answer(lcu, next_token="t1"), expected(query, REGION))
    stubber.add_response("get_products", answer(hourly), expected(query, REGION, token="t1"))
    price = prices.fetch_price(client, query, REGION, TODAY)
    stubber.assert_no_pending_responses()
    assert price.usd == "0.0252"


def test_later_tiers_are_ignored(pricing: Any) -> None:
    client, stubber = pricing
    query = cat.efs_standard()
    first = price_item(
        "AmazonEFS", "Storage", {"usagetype": "EU-TimedStorage-ByteHrs"}, "0.33", "GB-Mo", "E1"
    )
    later = price_item(
        "AmazonEFS",
        "Storage",
        {"usagetype": "EU-TimedStorage-ByteHrs"},
        "0.30",
        "GB-Mo",
        "E2",
        begin="1000",
    )
    stubber.add_response("get_products", answer(first, later), expected(query, REGION))
    assert prices.fetch_price(client, query, REGION, TODAY).usd == "0.33"


def test_fsx_scratch_and_persistent_tiers_are_told_apart(pricing: Any) -> None:
    client, stubber = pricing
    lustre = {"fileSystemType": "Lustre", "storageType": "SSD"}
    catalogue = [
        price_item("AmazonFSx", "Storage", {**lustre, "throughputCapacity": "N/A", "usagetype": "EU-Storage.Scratch2"}, "0.154", "GB-Mo", "SCRATCH"),
        price_item("AmazonFSx", "Storage", {**lustre, "throughputCapacity": "125", "usagetype": "EU-Storage.SSD.125"}, "0.161", "GB-Mo", "P125"),
        price_item("AmazonFSx", "Storage", {**lustre, "throughputCapacity": "250", "usagetype": "EU-Storage.SSD.250"}, "0.231", "GB-Mo", "P250"),
    ]  # fmt: skip
    for dtype, tier, sku in (("SCRATCH_2", None, "SCRATCH"), ("PERSISTENT_2", 250, "P250")):
        query = cat.fsx_lustre(dtype, tier)
        stubber.add_response("get_products", answer(*catalogue), expected(query, REGION))
        assert prices.fetch_price(client, query, REGION, TODAY).sku == sku


def test_no_match_and_ambiguity_are_errors_not_guesses(pricing: Any) -> None:
    client, stubber = pricing
    query = cat.ec2_instance("t3.xlarge")
    stubber.add_response("get_products", answer(), expected(query, REGION))
    with pytest.raises(prices.PriceNotFound, match="no on-demand price matched"):
        prices.fetch_price(client, query, REGION, TODAY)
    two = [
        price_item("AmazonEC2", "Compute Instance", EC2_ATTRS, usd, "Hrs", sku)
        for usd, sku in (("0.1824", "A"), ("0.2000", "B"))
    ]
    stubber.add_response("get_products", answer(*two), expected(query, REGION))
    with pytest.raises(prices.PriceNotFound, match="ambiguous: 2 different prices"):
        prices.fetch_price(client, query, REGION, TODAY)


def test_resolve_caches_with_the_date_and_then_works_offline(pricing: Any, tmp_path: Path) -> None:
    client, stubber = pricing
    query = cat.ec2_instance("t3.xlarge")
    stubber.add_response(
        "get_products",
        answer(price_item("AmazonEC2", "Compute Instance", EC2_ATTRS, "0.1824", "Hrs", "S")),
        expected(query, REGION),
    )
    cache = prices.PriceCache(tmp_path / "cache")
    online = prices.resolve_prices([query], REGION, cache, lambda: client, today=TODAY)
    assert online[query.key].source == "api"
    stored = json.loads(cache.path(REGION).read_text())
    assert stored["prices"][query.key]["fetched_on"] == "2026-11-26"
    assert stored["prices"][query.key]["usd"] == "0.1824"
    # Offline (no client at all): the same price, from the cache, with its date.
    offline = prices.resolve_prices([query], REGION, cache, None, today=TODAY)
    assert offline[query.key].source == "cache" and offline[query.key].reason is None
    assert offline[query.key].price == online[query.key].price


def test_an_unwritable_cache_does_not_lose_the_fetched_price(pricing: Any, tmp_path: Path) -> None:
    client, stubber = pricing
    query = cat.ec2_instance("t3.xlarge")
    stubber.add_response(
        "get_products",
        answer(price_item("AmazonEC2", "Compute Instance", EC2_ATTRS, "0.1824", "Hrs", "S")),
        expected(query, REGION),
    )
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    cache = prices.PriceCache(blocker / "cache")
    result = prices.resolve_prices([query], REGION, cache, lambda: client, today=TODAY)
    assert result[query.key].price is not None and result[query.key].source == "api"


def test_a_stale_price_is_used_offline_and_says_how_old_it_is(tmp_path: Path) -> None:
    cache = prices.PriceCache(tmp_path)
    query = cat.ebs_gp3()
    cache.save(REGION, {query.key: prices.UnitPrice("0.088", "GB-Mo", "gp3", "S", "2026-10-01")})
    result = prices.resolve_prices([query], REGION, cache, None, today=TODAY)[query.key]
    assert result.price is not None and result.price.usd == "0.088"
    assert result.reason is not None and "cached 56 days ago" in result.reason


def test_an_api_failure_leaves_the_price_unknown_with_the_reason(
    pricing: Any, tmp_path: Path
) -> None:
    client, stubber = pricing
    stubber.add_client_error("get_products", "AccessDeniedException", "not allowed")
    query = cat.secret()
    cache = prices.PriceCache(tmp_path)
    result = prices.resolve_prices([query], REGION, cache, lambda: client, today=TODAY)[query.key]
    assert result.price is None and result.reason is not None
    assert "AccessDeniedException" in result.reason
    assert not cache.path(REGION).exists(), "nothing fetched, nothing cached"


def test_an_unreachable_api_is_asked_once_not_once_per_price(tmp_path: Path) -> None:
    class Unreachable:
        calls = 0

        def get_products(self, **kwargs: Any) -> None:
            Unreachable.calls += 1
            raise EndpointConnectionError(
                endpoint_url="https://api.pricing.us-east-1.amazonaws.com/"
            )

    queries = [cat.ebs_gp3(), cat.nat_gateway(), cat.ec2_instance("t3.large")]
    cache = prices.PriceCache(tmp_path)
    results = prices.resolve_prices(queries, REGION, cache, Unreachable, today=TODAY)
    assert Unreachable.calls == 1
    assert all("unreachable: EndpointConnectionError" in (r.reason or "") for r in results.values())
    assert all(r.price is None for r in results.values())


def test_without_cache_or_credentials_the_price_is_unknown(tmp_path: Path) -> None:
    query = cat.directory("SimpleAD", "Small")
    result = prices.resolve_prices([query], REGION, prices.PriceCache(tmp_path), None)
    assert result[query.key].price is None
    assert "no AWS credentials" in (result[query.key].reason or "")


def test_credentials_are_detected_without_the_instance_metadata_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def record(self: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(type(self).__name__)
        raise AssertionError("the instance metadata service was asked")

    monkeypatch.setattr(botocore.utils.IMDSFetcher, "_fetch_metadata_token", record)
    monkeypatch.setattr(botocore.utils.IMDSFetcher, "_get_request", record)
    # The conftest's environment has no credentials at all; let IMDS look enabled too.
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    assert prices.credentials_available() is False
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    assert prices.credentials_available() is True
    assert calls == []


def test_refresh_without_credentials_says_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(ToolkitError, match="no AWS credentials found"):
        prices.refresh([cat.ebs_gp3()], REGION, prices.PriceCache(tmp_path))


def test_refresh_with_credentials_fills_the_cache(
    pricing: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, stubber = pricing
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    query = cat.ebs_gp3()
    item = price_item(
        "AmazonEC2", "Storage", {"volumeApiName": "gp3"}, "0.088", "GB-Mo", "G", begin="0"
    )
    stubber.add_response("get_products", answer(item), expected(query, REGION))
    cache = prices.PriceCache(tmp_path)
    results = prices.refresh([query], REGION, cache, client_factory=lambda: client)
    assert results[query.key].source == "api"
    assert cache.load(REGION)[query.key].usd == "0.088"


def test_the_default_cache_dir_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert prices.default_cache_dir() == tmp_path / "price-cache"
    monkeypatch.delenv("PWBCLUSTER_PRICE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert prices.default_cache_dir() == tmp_path / "xdg" / "pwbcluster" / "prices"


@pytest.mark.parametrize(
    ("query", "usagetype", "matches"),
    [
        (cat.efs_standard(), "EU-TimedStorage-ByteHrs", True),
        (cat.efs_standard(), "TimedStorage-ByteHrs", True),  # us-east-1 has no prefix
        (cat.efs_standard(), "EU-IATimedStorage-ByteHrs", False),
        (cat.efs_standard(), "EU-TimedStorage-Z-ByteHrs", False),
        (cat.public_ipv4(), "USE1-PublicIPv4:InUseAddress", True),
        (cat.public_ipv4(), "EUW2-PublicIPv4:IdleAddress", False),
        (cat.rds_storage_gp3(False), "EU-RDS:GP3-Storage", True),
        (cat.rds_storage_gp3(False), "EU-RDS:Multi-AZ-GP3-Storage", False),
        (cat.rds_storage_gp3(True), "EU-RDS:Multi-AZ-GP3-Storage", True),
        (cat.network_load_balancer(), "EU-LoadBalancerUsage", True),
        (cat.network_load_balancer(), "EU-TS-LoadBalancerUsage", False),
        (cat.secret(), "APN1-AWSSecretsManager-Secrets", True),
        (cat.secret(), "APN1-AWSSecretsManagerAPIRequest", False),
    ],
)
def test_usage_types_match_after_an_optional_regional_prefix_only(
    query: cat.PriceQuery, usagetype: str, matches: bool
) -> None:
    assert prices._product_matches(query, {"usagetype": usagetype}) is matches


def test_directory_types_are_told_apart() -> None:
    simple = cat.directory("SimpleAD", "Small")
    assert prices._product_matches(simple, {"directoryType": "Simple AD or AD Connector"})
    assert not prices._product_matches(simple, {"directoryType": "Microsoft AD"})
    managed = cat.directory("MicrosoftAD", "Standard")
    assert ("directoryType", "Microsoft AD") in managed.filters
