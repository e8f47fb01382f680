"""The generated certificates' expiry: a named warning ahead of it (``certificate_expiry``).

The services stage generates two server certificates when the deployment brings none: the
LDAPS front's and Workbench's (``certs.py``: two years, signed by CAs valid for ten).
Their notAfter is recorded in the stage's contract; ``invoke status`` and ``invoke plan``
warn when one ends within ``EXPIRY_WARNING_DAYS``, naming ``invoke aux.renew-certs``,
which re-issues them (an ``aux.up`` within 30 days of the end does so too).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pwbcluster.contracts import ServicesOutputs

CHECK_NAME = "certificate_expiry"
EXPIRY_WARNING_DAYS = 60


@dataclass(frozen=True)
class RecordedCertificate:
    purpose: str  # "LDAPS front" | "Workbench"
    not_after: dt.datetime

    def days_left(self, now: dt.datetime) -> int:
        return (self.not_after - now).days


def parse_not_after(value: str) -> dt.datetime:
    """RFC 3339 as the TLS provider writes it (``2028-12-01T14:03:09Z``)."""
    stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def recorded_certificates(outputs: ServicesOutputs) -> list[RecordedCertificate]:
    found = [
        ("LDAPS front", outputs.ldap_certificate_not_after),
        ("Workbench", outputs.workbench_certificate_not_after),
    ]
    return [RecordedCertificate(purpose, parse_not_after(v)) for purpose, v in found if v]


def expiry_warnings(
    outputs: ServicesOutputs,
    now: dt.datetime | None = None,
    within_days: int = EXPIRY_WARNING_DAYS,
) -> list[str]:
    """One line per generated certificate that ends within ``within_days`` (or has)."""
    now = now or dt.datetime.now(dt.UTC)
    lines = []
    for cert in recorded_certificates(outputs):
        left = cert.days_left(now)
        if left > within_days:
            continue
        when = cert.not_after.strftime("%Y-%m-%d")
        state = f"expired on {when}" if left < 0 else f"expires on {when} ({left} days)"
        lines.append(
            f"{CHECK_NAME}: the generated {cert.purpose} certificate {state}; "
            "renew it with `invoke aux.renew-certs --config ...`"
        )
    return lines
