"""The cost estimate: per resource, its unit price, its cost per hour and per month while
idle (static parts and queues at their minimum) and at the queues' maximum.

On-demand list prices in USD, 730 hours a month. A line whose price is unknown says so
and counts in no total; the totals then say they are partial and name what is missing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pwbcluster.estimate.catalogue import HOUR
from pwbcluster.estimate.prices import PriceResult
from pwbcluster.estimate.resources import NOT_INCLUDED, Item

HOURS_PER_MONTH = Decimal(730)
CENT = Decimal("0.01")
MILLICENT = Decimal("0.0001")


def _round(value: Decimal | None, step: Decimal) -> float | None:
    return None if value is None else float(value.quantize(step, rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Line:
    item: Item
    result: PriceResult

    @property
    def unit_price(self) -> Decimal | None:
        return self.result.price.amount if self.result.price else None

    def hourly(self, quantity: Decimal) -> Decimal | None:
        price = self.unit_price
        if price is None:
            return None
        if self.item.query.basis == HOUR:
            return price * quantity
        return price * quantity / HOURS_PER_MONTH

    def monthly(self, quantity: Decimal) -> Decimal | None:
        price = self.unit_price
        if price is None:
            return None
        if self.item.query.basis == HOUR:
            return price * quantity * HOURS_PER_MONTH
        return price * quantity

    def to_json(self) -> dict[str, Any]:
        item, price = self.item, self.result.price
        return {
            "group": item.group,
            "resource": item.resource,
            "detail": item.detail,
            "price_key": item.query.key,
            "price_basis": item.query.basis,
            "unit_price_usd": float(price.amount) if price else None,
            "price_unit": price.unit if price else None,
            "price_description": price.description if price else None,
            "price_date": price.fetched_on if price else None,
            "price_source": self.result.source,
            "quantity_idle": float(item.idle),
            "quantity_max": float(item.busy),
            "hourly_idle_usd": _round(self.hourly(item.idle), MILLICENT),
            "hourly_max_usd": _round(self.hourly(item.busy), MILLICENT),
            "monthly_idle_usd": _round(self.monthly(item.idle), CENT),
            "monthly_max_usd": _round(self.monthly(item.busy), CENT),
            "assumption": item.assumption,
            "unknown_reason": None if price else self.result.reason,
            "price_note": self.result.reason if price else None,
        }


@dataclass
class Estimate:
    deployment: str
    region: str
    lines: list[Line]
    refresh_command: str
    created: dt.date = field(default_factory=dt.date.today)

    @property
    def unknown(self) -> dict[str, PriceResult]:
        return {ln.item.query.key: ln.result for ln in self.lines if ln.unit_price is None}

    @property
    def complete(self) -> bool:
        return not self.unknown

    def total(self, what: str, busy: bool) -> Decimal:
        total = Decimal(0)
        for line in self.lines:
            qty = line.item.busy if busy else line.item.idle
            value = line.hourly(qty) if what == "hourly" else line.monthly(qty)
            total += value or Decimal(0)
        return total

    def price_dates(self) -> list[str]:
        return sorted({ln.result.price.fetched_on for ln in self.lines if ln.result.price})

    def to_json(self) -> dict[str, Any]:
        unknown = self.unknown
        return {
            "deployment": self.deployment,
            "region": self.region,
            "currency": "USD",
            "pricing": "on-demand list prices, AWS Price List API",
            "hours_per_month": int(HOURS_PER_MONTH),
            "created": self.created.isoformat(),
            "price_dates": self.price_dates(),
            "complete": self.complete,
            "totals": self._totals_json(),
            "lines": [ln.to_json() for ln in self.lines],
            "unknown_prices": [
                {"price_key": k, "what": r.query.label, "reason": r.reason}
                for k, r in unknown.items()
            ],
            "how_to_fetch_prices": None if self.complete else self.refresh_command,
            "not_included": list(NOT_INCLUDED),
        }

    def _totals_json(self) -> dict[str, Any]:
        if not any(ln.unit_price is not None for ln in self.lines):
            # Nothing is known: the totals are unknown (null), never a sum of nothing.
            return {
                "note": "no price is known: the totals are unknown",
                "hourly_idle_usd": None,
                "hourly_max_usd": None,
                "monthly_idle_usd": None,
                "monthly_max_usd": None,
            }
        return {
            "note": "sums of the lines whose price is known"
            + ("" if self.complete else " (partial: some prices are unknown)"),
            "hourly_idle_usd": _round(self.total("hourly", False), MILLICENT),
            "hourly_max_usd": _round(self.total("hourly", True), MILLICENT),
            "monthly_idle_usd": _round(self.total("monthly", False), CENT),
            "monthly_max_usd": _round(self.total("monthly", True), CENT),
        }

    def text_lines(self) -> list[str]:
        """A table for the plan's output, 80 columns wide (cost.json has every detail)."""
        dates = self.price_dates()
        if not dates:
            when = "no prices known"
        elif len(dates) == 1:
            when = f"prices of {dates[0]}"
        else:
            when = f"prices of {dates[0]}..{dates[-1]}"
        out = [
            f"Cost estimate, USD on demand, {int(HOURS_PER_MONTH)} h/month, {when}:",
            f"  {'resource':<22} {'detail':<20} {'unit price':>12} {'idle/mo':>9} {'max/mo':>9}",
        ]
        known = any(ln.unit_price is not None for ln in self.lines)
        for ln in self.lines:
            item = ln.item
            out.append(
                f"  {_fit(item.resource, 22):<22} {_fit(item.detail, 20):<20} "
                f"{_unit_price(ln):>12} {_money(ln.monthly(item.idle)):>9} "
                f"{_money(ln.monthly(item.busy)):>9}"
            )
        label = "total per month" if self.complete else "total of known prices (partial)"
        if not known:
            label = "total per month (no price known)"
        idle = self.total("monthly", False) if known else None
        busy = self.total("monthly", True) if known else None
        out.append(f"  {label:<56} {_money(idle):>9} {_money(busy):>9}")
        if known:
            hourly = self.total("hourly", False), self.total("hourly", True)
            out.append(
                f"  per hour: {_money(hourly[0], MILLICENT)} idle, "
                f"{_money(hourly[1], MILLICENT)} at max counts"
            )
        if not self.complete:
            by_reason: dict[str, list[str]] = {}
            for key, result in self.unknown.items():
                by_reason.setdefault(result.reason or "unknown", []).append(key)
            out.append(f"  Unknown prices ({len(self.unknown)}, counted in no total):")
            for reason, keys in by_reason.items():
                out.append(f"    {', '.join(keys)}: {reason}")
            out.append(f"  To fetch them, with AWS credentials: {self.refresh_command}")
        bundled = [ln for ln in self.lines if ln.result.source == "snapshot"]
        if bundled:
            dated = sorted({ln.result.price.fetched_on for ln in bundled if ln.result.price})
            out.append(
                f"  {len({ln.item.query.key for ln in bundled})} price(s) from the bundled "
                f"snapshot of {', '.join(dated)} (no credentials needed); current ones, with "
                f"AWS credentials: {self.refresh_command}"
            )
        stale = [
            ln
            for ln in self.lines
            if ln.result.price and ln.result.reason and ln.result.source == "cache"
        ]
        if stale:
            oldest = min(ln.result.price.fetched_on for ln in stale if ln.result.price)
            out.append(
                f"  {len({ln.item.query.key for ln in stale})} cached price(s) are old "
                f"(oldest {oldest}); to refresh them: {self.refresh_command}"
            )
        return out


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _money(value: Decimal | None, step: Decimal = CENT) -> str:
    return "unknown" if value is None else f"{value.quantize(step, ROUND_HALF_UP):,}"


def _unit_price(line: Line) -> str:
    price = line.unit_price
    if price is None:
        return "unknown"
    unit = {"hour": "/h", "gb-month": "/GB-mo", "month": "/mo"}[line.item.query.basis]
    return f"{price.quantize(MILLICENT, ROUND_HALF_UP).normalize():f}{unit}"


def build_estimate(
    deployment: str,
    region: str,
    items: list[Item],
    prices: dict[str, PriceResult],
    refresh_command: str,
    today: dt.date | None = None,
) -> Estimate:
    lines = [Line(item, prices[item.query.key]) for item in items]
    return Estimate(deployment, region, lines, refresh_command, today or dt.date.today())
