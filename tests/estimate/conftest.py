"""Fixtures for the diagram and cost tests: a private project copy, a rendered plan, and
Price List API answers shaped like the real ones.

The shape follows the GetProducts documentation and the AWS CLI example: ``PriceList`` is
a list of JSON *strings*, each an object with ``product`` (``productFamily``,
``attributes``, ``sku``), ``serviceCode``, ``terms`` (``OnDemand`` and ``Reserved``, each
keyed by offer term, with ``priceDimensions`` carrying ``unit``, ``beginRange``,
``endRange`` and ``pricePerUnit`` ``{"USD": "0.1824000000"}``), ``version`` and
``publicationDate``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from pwbcluster.config import Config, load_config
from pwbcluster.estimate.catalogue import PriceQuery
from pwbcluster.pipeline.plan import PlanContext, planned_context, render_step

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated_prices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own price cache and no AWS credentials from the machine."""
    cache = tmp_path / "price-cache"
    monkeypatch.setenv("PWBCLUSTER_PRICE_CACHE", str(cache))
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "PWBCLUSTER_PRICES_OFFLINE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return cache


@pytest.fixture
def full_project(project: Path) -> Path:
    """The project copy plus the image scripts (the image fingerprint reads them)."""
    shutil.copytree(ROOT / "image", project / "image", dirs_exist_ok=True)
    return project


def rendered(config: Config) -> PlanContext:
    ctx = planned_context(config)
    ctx.build_dir.mkdir(parents=True, exist_ok=True)
    render_step(ctx)
    return ctx


@pytest.fixture
def example(full_project: Path) -> PlanContext:
    return rendered(load_config(full_project / "config" / "example.yaml"))


def price_item(
    service: str,
    family: str,
    attributes: dict[str, str],
    usd: str,
    unit: str,
    sku: str,
    begin: str = "0",
) -> str:
    """One PriceList entry, as the API returns it: a JSON string."""
    term = f"{sku}.JRTCKXETXF"
    rate = f"{term}.6YS6EN2CT7"
    reserved = f"{sku}.4NA7Y494T4"
    item: dict[str, Any] = {
        "product": {
            "productFamily": family,
            "attributes": {"servicecode": service, "locationType": "AWS Region", **attributes},
            "sku": sku,
        },
        "serviceCode": service,
        "terms": {
            "OnDemand": {
                term: {
                    "priceDimensions": {
                        rate: {
                            "unit": unit,
                            "endRange": "Inf",
                            "description": f"${usd} per {unit} ({sku})",
                            "appliesTo": [],
                            "rateCode": rate,
                            "beginRange": begin,
                            "pricePerUnit": {"USD": f"{float(usd):.10f}"},
                        }
                    },
                    "sku": sku,
                    "effectiveDate": "2026-11-01T00:00:00Z",
                    "offerTermCode": "JRTCKXETXF",
                    "termAttributes": {},
                }
            },
            # Reserved prices are present in real answers and must be ignored.
            "Reserved": {
                reserved: {
                    "priceDimensions": {
                        f"{reserved}.2TG2D8R56U": {
                            "unit": "Quantity",
                            "description": "Upfront Fee",
                            "beginRange": "0",
                            "endRange": "Inf",
                            "pricePerUnit": {"USD": "999"},
                            "appliesTo": [],
                            "rateCode": f"{reserved}.2TG2D8R56U",
                        }
                    },
                    "sku": sku,
                    "effectiveDate": "2026-11-01T00:00:00Z",
                    "offerTermCode": "4NA7Y494T4",
                    "termAttributes": {"LeaseContractLength": "1yr"},
                }
            },
        },
        "version": "20261101000000",
        "publicationDate": "2026-11-01T00:00:00Z",
    }
    return json.dumps(item)


def answer(*items: str, next_token: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"FormatVersion": "aws_v1", "PriceList": list(items)}
    if next_token:
        response["NextToken"] = next_token
    return response


def expected(query: PriceQuery, region: str, token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "ServiceCode": query.service,
        "Filters": query.api_filters(region),
        "FormatVersion": "aws_v1",
        "MaxResults": 100,
    }
    if token:
        params["NextToken"] = token
    return params


@pytest.fixture(scope="session")
def botocore_session() -> botocore.session.Session:
    """One session for all stubbed clients: it loads the service model once."""
    return botocore.session.get_session()


@pytest.fixture
def pricing(botocore_session: botocore.session.Session) -> Iterator[tuple[Any, Stubber]]:
    """A pricing client (us-east-1) whose answers come from botocore's Stubber."""
    client = botocore_session.create_client(
        "pricing",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber
