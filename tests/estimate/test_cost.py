"""The estimate of the example deployment: per-resource arithmetic, idle against max, the
cache used offline, and unknown prices reported as unknown."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from pwbcluster.estimate.prices import PriceCache
from pwbcluster.estimate.resources import bill_of_materials
from pwbcluster.pipeline import plan_estimate as steps
from pwbcluster.pipeline.plan import PlanContext

from .conftest import answer, expected, price_item

# Unit prices the stubbed Price List API answers with, per query key:
# (service, product family, attributes, USD, unit).
TABLE: dict[str, tuple[str, str, dict[str, str], str, str]] = {
    "vpc:nat-gateway": (
        "AmazonEC2",
        "NAT Gateway",
        {"usagetype": "EU-NatGateway-Hours"},
        "0.048",
        "Hrs",
    ),
    "vpc:public-ipv4": (
        "AmazonVPC",
        "VPC Public IPv4 Address",
        {"usagetype": "EU-PublicIPv4:InUseAddress"},
        "0.005",
        "Hrs",
    ),
    "ds:SimpleAD:Small": (
        "AWSDirectoryService",
        "AWS Directory Service",
        {"directorySize": "Small", "directoryType": "Simple AD"},
        "0.05",
        "Hrs",
    ),
    "elb:network": (
        "AWSELB",
        "Load Balancer-Network",
        {"usagetype": "EU-LoadBalancerUsage"},
        "0.0252",
        "Hrs",
    ),
    "rds:postgres:db.t4g.small:Single-AZ": (
        "AmazonRDS",
        "Database Instance",
        {"instanceType": "db.t4g.small"},
        "0.034",
        "Hrs",
    ),
    "rds-storage:gp3:Single-AZ": (
        "AmazonRDS",
        "Database Storage",
        {"usagetype": "EU-RDS:GP3-Storage"},
        "0.127",
        "GB-Mo",
    ),
    "ec2:t3.medium": (
        "AmazonEC2",
        "Compute Instance",
        {"instanceType": "t3.medium"},
        "0.0456",
        "Hrs",
    ),
    "ebs:gp3": ("AmazonEC2", "Storage", {"volumeApiName": "gp3"}, "0.088", "GB-Mo"),
    "secretsmanager:secret": (
        "AWSSecretsManager",
        "Secret",
        {"usagetype": "EU-AWSSecretsManager-Secrets"},
        "0.40",
        "Secrets",
    ),
    "ec2:t3.xlarge": (
        "AmazonEC2",
        "Compute Instance",
        {"instanceType": "t3.xlarge"},
        "0.1824",
        "Hrs",
    ),
    "ec2:g4dn.xlarge": (
        "AmazonEC2",
        "Compute Instance",
        {"instanceType": "g4dn.xlarge"},
        "0.587",
        "Hrs",
    ),
    "efs:standard": (
        "AmazonEFS",
        "Storage",
        {"usagetype": "EU-TimedStorage-ByteHrs"},
        "0.33",
        "GB-Mo",
    ),
    # /home's default, PERSISTENT_2 at 125 MB/s/TiB (a stub price, not AWS's).
    "fsx:lustre:PERSISTENT_2:125": (
        "AmazonFSx",
        "Storage",
        {"fileSystemType": "Lustre", "storageType": "SSD", "throughputCapacity": "125"},
        "0.159",
        "GB-Mo",
    ),
}


def stub_price_list(stubber: Any, ctx: PlanContext) -> None:
    """One GetProducts answer per distinct query, in the order the estimate asks."""
    assert ctx.cluster is not None
    seen: set[str] = set()
    for item in bill_of_materials(ctx.config.model, ctx.cluster.config):
        query = item.query
        if query.key in seen:
            continue
        seen.add(query.key)
        service, family, attrs, usd, unit = TABLE[query.key]
        body = price_item(service, family, attrs, usd, unit, sku=query.key.upper())
        stubber.add_response("get_products", answer(body), expected(query, ctx.config.region))


@pytest.fixture
def online(example: PlanContext, pricing: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    client, stubber = pricing
    stub_price_list(stubber, example)
    monkeypatch.setattr(steps, "pricing_client", lambda: client)
    estimate = steps.estimate_for(example, allow_api=True)
    stubber.assert_no_pending_responses()
    return estimate.to_json()


def line(doc: dict[str, Any], resource: str) -> dict[str, Any]:
    return next(ln for ln in doc["lines"] if ln["resource"] == resource)


def test_each_resource_is_priced_per_hour_and_per_month(online: dict[str, Any]) -> None:
    assert online["complete"] and online["unknown_prices"] == []
    assert online["price_dates"] == [dt.date.today().isoformat()]
    head = line(online, "head node")
    assert head["unit_price_usd"] == 0.1824 and head["hourly_idle_usd"] == 0.1824
    assert head["monthly_idle_usd"] == head["monthly_max_usd"] == 133.15  # 0.1824 * 730
    login = line(online, "login nodes")
    assert login["quantity_idle"] == 2 and login["monthly_idle_usd"] == 266.30
    # Storage is priced per GB-month: FSx 1200 GB at 0.159; the head node's 100 GB gp3.
    assert line(online, "/home FSx Lustre")["monthly_idle_usd"] == 190.80
    assert line(online, "head node root disk")["monthly_idle_usd"] == 8.80
    assert line(online, "head node root disk")["hourly_idle_usd"] == round(8.8 / 730, 4)
    # The directory is two domain controllers; Secrets Manager is per secret-month.
    assert line(online, "directory")["monthly_idle_usd"] == 73.00  # 2 * 0.05 * 730
    assert line(online, "Secrets Manager")["monthly_idle_usd"] == 2.40  # 6 * 0.40
    # Two network load balancers: the login pool's and the directory's TLS front.
    assert line(online, "login NLB")["monthly_idle_usd"] == 18.40  # 0.0252 * 730 = 18.396
    assert line(online, "directory TLS front")["monthly_idle_usd"] == 18.40
    assert line(online, "pcluster internal EFS")["assumption"]


def test_queues_cost_their_minimum_while_idle_and_their_maximum_when_busy(
    online: dict[str, Any],
) -> None:
    cpu, gpu = line(online, "queue all"), line(online, "queue gpu")
    assert (cpu["quantity_idle"], cpu["quantity_max"]) == (1, 10)
    assert cpu["monthly_idle_usd"] == 133.15 and cpu["monthly_max_usd"] == 1331.52
    assert (gpu["monthly_idle_usd"], gpu["monthly_max_usd"]) == (0.0, 428.51)  # 0.587 * 730
    disks = line(online, "queue all disks")
    assert disks["monthly_idle_usd"] == 8.80 and disks["monthly_max_usd"] == 88.00
    # Everything else is static: the difference between max and idle is the queues alone.
    totals = online["totals"]
    growth = 9 * 0.1824 * 730 + 0.587 * 730 + 10 * 100 * 0.088
    assert totals["monthly_max_usd"] - totals["monthly_idle_usd"] == pytest.approx(growth, abs=0.02)
    idle_sum = sum(ln["monthly_idle_usd"] for ln in online["lines"])
    assert totals["monthly_idle_usd"] == pytest.approx(idle_sum, abs=0.01 * len(online["lines"]))
    assert totals["hourly_idle_usd"] == pytest.approx(totals["monthly_idle_usd"] / 730, abs=0.01)


def test_the_plan_step_prices_from_the_cache_offline(
    online: dict[str, Any], example: PlanContext
) -> None:
    # The online run filled the cache; now there are no credentials (conftest).
    steps.cost_step(example)
    doc = json.loads((example.build_dir / "cost.json").read_text())
    assert all(ln["price_source"] == "cache" for ln in doc["lines"])
    assert doc["totals"] == online["totals"] and doc["complete"]
    assert doc["how_to_fetch_prices"] is None
    text = "\n".join(example.notes)
    assert "Cost estimate" in text and "1,331.52" in text and "unknown" not in text


def test_missing_prices_are_unknown_counted_in_no_total_and_say_how_to_fetch(
    online: dict[str, Any], example: PlanContext
) -> None:
    cache = PriceCache(steps.default_cache_dir())
    region = example.config.region
    kept = {k: v for k, v in cache.load(region).items() if k != "ec2:g4dn.xlarge"}
    cache.path(region).unlink()
    cache.save(region, kept)
    steps.cost_step(example)
    doc = json.loads((example.build_dir / "cost.json").read_text())
    gpu = line(doc, "queue gpu")
    assert gpu["unit_price_usd"] is None and gpu["monthly_max_usd"] is None
    assert "no AWS credentials" in gpu["unknown_reason"]
    assert not doc["complete"] and "partial" in doc["totals"]["note"]
    assert [u["price_key"] for u in doc["unknown_prices"]] == ["ec2:g4dn.xlarge"]
    assert doc["totals"]["monthly_max_usd"] == pytest.approx(
        online["totals"]["monthly_max_usd"] - 0.587 * 730, abs=0.01
    )
    assert doc["how_to_fetch_prices"] == "invoke prices.refresh --config config/example.yaml"
    text = "\n".join(example.notes)
    assert "Unknown prices (1" in text and "invoke prices.refresh --config" in text


def test_old_cached_prices_are_used_and_flagged(
    online: dict[str, Any], example: PlanContext
) -> None:
    cache = PriceCache(steps.default_cache_dir())
    region = example.config.region
    old = {k: replace(v, fetched_on="2020-01-01") for k, v in cache.load(region).items()}
    cache.save(region, old)
    steps.cost_step(example)
    doc = json.loads((example.build_dir / "cost.json").read_text())
    assert doc["complete"] and doc["totals"] == online["totals"]
    assert doc["price_dates"] == ["2020-01-01"]
    assert all("not refreshed" in ln["price_note"] for ln in doc["lines"])
    assert "cached price(s) are old (oldest 2020-01-01)" in "\n".join(example.notes)


def test_with_no_cache_and_no_credentials_every_price_is_unknown(example: PlanContext) -> None:
    steps.cost_step(example)
    doc = json.loads((example.build_dir / "cost.json").read_text())
    assert doc["lines"] and all(ln["unit_price_usd"] is None for ln in doc["lines"])
    assert all(ln["monthly_idle_usd"] is None for ln in doc["lines"])
    # Unknown stays unknown: null totals, never a sum of nothing shown as 0.
    totals = doc["totals"]
    assert not doc["complete"] and "unknown" in totals["note"]
    assert all(totals[k] is None for k in totals if k.endswith("_usd")), totals
    text = "\n".join(example.notes)
    assert "total per month (no price known)" in text and " 0.00 " not in text


def test_an_existing_vpc_has_no_nat_gateway_and_options_add_databases(
    example: PlanContext,
) -> None:
    assert example.cluster is not None
    data = json.loads(json.dumps(example.config.data))
    data["aux"]["network"]["vpc_id"] = "vpc-0123456789abcdef0"
    data["aux"]["databases"]["audit"]["enabled"] = True
    data["aux"]["databases"]["slurm_accounting"]["enabled"] = True
    items = {i.resource: i for i in bill_of_materials(data, example.cluster.config)}
    assert "NAT gateway" not in items
    assert items["audit DB"].query.key == "rds:postgres:db.t4g.small:Single-AZ"
    assert items["Slurm acct DB"].query.key == "rds:mariadb:db.t4g.small:Single-AZ"
    assert items["Secrets Manager"].idle == Decimal(8)
