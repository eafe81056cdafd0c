"""Realistic values for every notice kind, to preview and test its templates.

The values are raw, as the notice rules hand them to the renderer: aware UTC datetimes, dates,
enum values as strings, counts as ints.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

_COMMON: Mapping[str, Any] = {
    "recipient_name": "Anna Berger",
    "reference": "wo-8f2c",
    "external_id": "FH-2026-0042",
    "source_platform": "fieldhub",
    "site_name": "Plant North",
    "site_city": "Berlin",
    "site_address": ["Industriestr. 5", "10115 Berlin", "DE"],
    "site_timezone": "Europe/Berlin",
    "priority": "high",
    "category": "breakdown",
    "unsubscribe_url": "https://notify.fixloop.example/u/eyJyIjoiYW5uYSJ9.sig",
    "tenant": "acme",
}

_CONTRACTOR = {"recipient_name": "Kältetechnik Schulz GmbH"}
_DESK = {"recipient_name": "ACME dispatch desk"}
_NO_ORDER = {"reference": None, "external_id": None}

_KINDS: Mapping[str, Mapping[str, Any]] = {
    "workorder_received": {
        "equipment_id": "chiller-2",
        "equipment_class": "hvac",
        "equipment_make": "Daikin EWAD",
        "description": "Cooling unit on the roof trips every few minutes.",
        "reported_at": datetime(2026, 1, 14, 7, 45, tzinfo=UTC),
        "received_at": datetime(2026, 1, 14, 7, 46, tzinfo=UTC),
    },
    "contractor_assigned": {
        "contractor_name": "Kältetechnik Schulz GmbH",
        "contractor_phone": "+49 30 1234567",
        "contractor_email": "service@schulz-kaelte.example",
    },
    "visit_scheduled": {
        "window_start": datetime(2026, 1, 15, 8, 0, tzinfo=UTC),
        "window_end": datetime(2026, 1, 15, 11, 0, tzinfo=UTC),
        "contractor_name": "Kältetechnik Schulz GmbH",
    },
    "contractor_en_route": {
        "contractor_name": "Kältetechnik Schulz GmbH",
        "eta": datetime(2026, 1, 15, 8, 40, tzinfo=UTC),
    },
    "contractor_on_site": {
        "contractor_name": "Kältetechnik Schulz GmbH",
        "eta": datetime(2026, 1, 15, 12, 30, tzinfo=UTC),
    },
    "awaiting_parts": {
        "eta": datetime(2026, 1, 19, 9, 0, tzinfo=UTC),
        "parts_count": 3,
    },
    "workorder_delayed": {
        "cause": "parts",
        "new_eta": datetime(2026, 1, 20, 15, 0, tzinfo=UTC),
        "remedy": {"kind": "service_discount", "percent": 15},
    },
    "delay_predicted": {
        "milestone": "repair",
        "deadline": datetime(2026, 1, 16, 16, 0, tzinfo=UTC),
        "predicted_at": datetime(2026, 1, 17, 10, 0, tzinfo=UTC),
        "remedy": {"kind": "extended_warranty", "months": 6},
    },
    "work_completed": {
        "work_summary": "Replaced the faulty compressor contactor and tested the unit for an hour.",
        "verify_by": datetime(2026, 1, 18, 16, 0, tzinfo=UTC),
        "verify_url": "https://notify.fixloop.example/v/wo-8f2c.sig",
        "reject_url": "https://notify.fixloop.example/r/wo-8f2c.sig",
    },
    "workorder_closed": {
        "survey_url": "https://notify.fixloop.example/s/wo-8f2c.sig",
        "survey_expires_at": datetime(2026, 2, 1, 23, 0, tzinfo=UTC),
    },
    "workorder_cancelled": {"reason": "The fault cleared after a power reset."},
    "offer_made": {
        **_CONTRACTOR,
        "expires_at": datetime(2026, 1, 14, 8, 16, tzinfo=UTC),
        "equipment_class": "hvac",
        "description": "Cooling unit on the roof trips every few minutes.",
        "site_address": ["Industriestr. 5", "10115 Berlin", "DE"],
    },
    "offer_withdrawn": {**_CONTRACTOR, "reason": "Another contractor accepted first."},
    "job_cancelled": {**_CONTRACTOR, "reason": "The requester withdrew the request."},
    "credential_expiring": {
        **_CONTRACTOR,
        **_NO_ORDER,
        "credential_kind": "insurance",
        "credential_name": "Public liability insurance",
        "credential_number": "PL-448812",
        "expires_on": date(2026, 2, 14),
        "days_left": 30,
    },
    "order_unfilled": {**_DESK, "reason": "No contractor accepted within 3 offer rounds."},
    "sla_breached": {
        **_DESK,
        "milestone": "arrival",
        "deadline": datetime(2026, 1, 14, 11, 46, tzinfo=UTC),
        "contractor_name": "Kältetechnik Schulz GmbH",
    },
    "sla_escalated": {
        **_DESK,
        "milestone": "repair",
        "level": 2,
        "deadline": datetime(2026, 1, 16, 16, 0, tzinfo=UTC),
        "audience": "regional manager",
    },
    "quality_alert": {
        **_DESK,
        "contractor_name": "Kältetechnik Schulz GmbH",
        "alert": "3 of the last 10 jobs were rejected by requesters.",
    },
    "webhook_disabled": {
        **_DESK,
        **_NO_ORDER,
        "endpoint_url": "https://hooks.acme.example/fixloop",
        "failures": 25,
        "failing_since": datetime(2026, 1, 13, 22, 10, tzinfo=UTC),
    },
}

SAMPLE_KINDS: tuple[str, ...] = tuple(_KINDS)


def sample_values(kind: str) -> dict[str, Any]:
    """Realistic raw values for notice ``kind`` (common values included). Raises
    :class:`KeyError` for an unknown kind."""
    return {**_COMMON, **_KINDS[kind]}


__all__ = ["SAMPLE_KINDS", "sample_values"]
