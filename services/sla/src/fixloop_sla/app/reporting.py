"""Reads of the SLA engine's records for operators: clocks at risk, compliance reports, one
work order's clocks.

The engine keeps, in the sla database:

* ``sla_orders``: one document per work order with its open cycles (``open``), its profile
  (priority, equipment class, category, site time zone), its contractor and
  ``earliest_deadline_ms``, the soonest deadline (or breach) among the open cycles;
* ``sla_cycles``: one final record per closed cycle (met, missed or cancelled).

Every instant there is an int of epoch milliseconds (UTC). :class:`SlaReports` turns those
records into the domain's cycles (:mod:`fixloop_sla.domain.report`) and lets the domain judge
them; only the fields a report needs are read, never the engine's internal ones.

Filters are built from validated values only (str ids checked against their patterns, ints and
aware datetimes turned into epoch milliseconds), every equality written ``$eq``: a caller's
value is always data. Sizes are capped: at most :data:`MAX_AT_RISK` rows per at-risk call, a
report period of at most :data:`MAX_REPORT_PERIOD`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from fixloop_shared.errors import FieldViolation, InvalidInput
from fixloop_sla.domain.report import (
    AtRiskRow,
    ClosedCycle,
    CycleOutcome,
    CycleProfile,
    OpenCycle,
    OpenCycleState,
    ReportGroup,
    ReportRow,
    ReportTally,
    at_risk_row,
    risk_order,
)

log = logging.getLogger(__name__)

SLA_ORDERS = "sla_orders"
SLA_CYCLES = "sla_cycles"

MAX_AT_RISK = 1000
"""The most rows one at-risk call answers."""
MAX_WITHIN = timedelta(days=30)
"""The furthest ahead "due within" may look."""
MAX_REPORT_PERIOD = timedelta(days=366)
"""The longest period one report covers."""
MAX_ORDERS_SCANNED = 20_000
"""The most work orders one read looks through for open cycles (the soonest deadlines first)."""
_SCAN_SLACK = timedelta(minutes=1)
"""A breach recorded a little after its deadline is still found by the early end of a scan."""
_BATCH_SIZE = 500

TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
WORK_ORDER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ORDER_FIELDS = {
    "tenant": True,
    "contractor_id": True,
    "profile": True,
    "open": True,
    "earliest_deadline_ms": True,
}
_CYCLE_FIELDS = dict.fromkeys(
    (
        "work_order_id",
        "tenant",
        "clock",
        "cycle",
        "outcome",
        "breached",
        "started_ms",
        "closed_ms",
        "deadline_ms",
        "original_deadline_ms",
        "breach_margin_seconds",
        "paused_seconds",
        "business_seconds",
        "wall_seconds",
        "policy_name",
        "policy_version",
        "calendar",
        "calendar_version",
        "timezone",
        "timezone_source",
        "contractor_id",
        "equipment_class",
        "priority",
        "category",
        "revision",
    ),
    True,
)


def report_indexes() -> dict[str, Sequence[IndexModel]]:
    """What the reads need beyond the engine's own indexes."""
    return {
        SLA_ORDERS: [
            IndexModel(
                [("tenant", ASCENDING), ("earliest_deadline_ms", ASCENDING)],
                name="tenant_earliest_deadline",
            ),
            # The CLI's at-risk list over every tenant.
            IndexModel([("earliest_deadline_ms", ASCENDING)], name="earliest_deadline"),
        ],
        SLA_CYCLES: [
            IndexModel([("tenant", ASCENDING), ("closed_ms", ASCENDING)], name="tenant_closed"),
            IndexModel(
                [("tenant", ASCENDING), ("work_order_id", ASCENDING)], name="tenant_work_order"
            ),
            # The CLI's report over every tenant.
            IndexModel([("closed_ms", ASCENDING)], name="closed"),
        ],
    }


# --------------------------------------------------------------------------- validation


def _invalid(field: str, description: str) -> InvalidInput:
    return InvalidInput(f"{field}: {description}", [FieldViolation(field, description)])


def checked_tenant(tenant: object, field: str = "tenant") -> str:
    if not isinstance(tenant, str) or not TENANT_PATTERN.fullmatch(tenant):
        raise _invalid(field, "must be a tenant id: lowercase letters, digits and '-'")
    return tenant


def checked_work_order_id(work_order_id: object, field: str = "work_order_id") -> str:
    if not isinstance(work_order_id, str) or not WORK_ORDER_ID_PATTERN.fullmatch(work_order_id):
        raise _invalid(field, "must be a work order id")
    return work_order_id


def epoch_ms(moment: datetime, field: str) -> int:
    """An aware datetime as int epoch milliseconds (UTC)."""
    if moment.tzinfo is None:
        raise _invalid(field, "must be an aware date and time")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def check_period(start: datetime, end: datetime) -> tuple[int, int]:
    """``[start, end)`` as epoch milliseconds; non-empty and at most :data:`MAX_REPORT_PERIOD`."""
    start_ms, end_ms = epoch_ms(start, "start"), epoch_ms(end, "end")
    if end_ms <= start_ms:
        raise _invalid("end", "must be after start")
    if end - start > MAX_REPORT_PERIOD:
        raise _invalid("end", f"the period may cover at most {MAX_REPORT_PERIOD.days} days")
    return start_ms, end_ms


# --------------------------------------------------------------------------- records


class MalformedRecordError(ValueError):
    """A stored record lacks a field a report needs, or has one of the wrong type."""


def _instant(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedRecordError(f"not epoch milliseconds: {type(value).__name__}")
    return _EPOCH + timedelta(milliseconds=value)


def _required_instant(value: object) -> datetime:
    moment = _instant(value)
    if moment is None:
        raise MalformedRecordError("a required instant is missing")
    return moment


def _text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedRecordError(f"not text: {type(value).__name__}")
    return value


def _required_text(value: object) -> str:
    text = _text(value)
    if text is None:
        raise MalformedRecordError("a required text is missing")
    return text


def _number(value: object, default: float | None = None) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedRecordError(f"not a number: {type(value).__name__}")
    return float(value)


def _integer(value: object, default: int = 0) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedRecordError(f"not an integer: {type(value).__name__}")
    return value


def profile_of(doc: Mapping[str, Any]) -> CycleProfile:
    """The profile and contractor of an ``sla_orders`` document."""
    raw_profile = doc.get("profile") or {}
    if not isinstance(raw_profile, Mapping):
        raise MalformedRecordError("profile is not a document")
    return CycleProfile(
        contractor_id=_text(doc.get("contractor_id")),
        equipment_class=_text(raw_profile.get("equipment_class")),
        priority=_text(raw_profile.get("priority")),
        category=_text(raw_profile.get("category")),
        site_timezone=_text(raw_profile.get("site_timezone")),
    )


def open_cycles_of(doc: Mapping[str, Any]) -> list[OpenCycle]:
    """The open cycles of an ``sla_orders`` document."""
    profile = profile_of(doc)
    work_order_id, tenant = _required_text(doc.get("_id")), _required_text(doc.get("tenant"))
    entries = doc.get("open") or []
    if not isinstance(entries, list):
        raise MalformedRecordError("open is not an array")
    cycles: list[OpenCycle] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise MalformedRecordError("an open cycle is not a document")
        try:
            state = OpenCycleState(str(entry.get("state")))
        except ValueError as exc:
            raise MalformedRecordError(f"unknown cycle state {entry.get('state')!r}") from exc
        cycles.append(
            OpenCycle(
                work_order_id=work_order_id,
                tenant=tenant,
                clock=_required_text(entry.get("clock")),
                cycle=_integer(entry.get("cycle")),
                state=state,
                started_at=_required_instant(entry.get("started_ms")),
                deadline=_instant(entry.get("deadline_ms")),
                warn_at=_instant(entry.get("warn_ms")),
                breached_at=_instant(entry.get("breached_ms")),
                predicted_at=_instant(entry.get("predicted_ms")),
                basis=_text(entry.get("basis")),
                policy_version=_integer(entry.get("policy_version")),
                profile=profile,
            )
        )
    return cycles


def closed_cycle_of(doc: Mapping[str, Any]) -> ClosedCycle:
    """The closed cycle an ``sla_cycles`` record holds."""
    try:
        outcome = CycleOutcome(str(doc.get("outcome")))
    except ValueError as exc:
        raise MalformedRecordError(f"unknown outcome {doc.get('outcome')!r}") from exc
    return ClosedCycle(
        work_order_id=_required_text(doc.get("work_order_id")),
        tenant=_required_text(doc.get("tenant")),
        clock=_required_text(doc.get("clock")),
        cycle=_integer(doc.get("cycle")),
        outcome=outcome,
        breached=doc.get("breached") is True,
        started_at=_required_instant(doc.get("started_ms")),
        closed_at=_required_instant(doc.get("closed_ms")),
        deadline=_instant(doc.get("deadline_ms")),
        original_deadline=_instant(doc.get("original_deadline_ms")),
        breach_margin_seconds=_number(doc.get("breach_margin_seconds")),
        paused_seconds=_number(doc.get("paused_seconds"), 0.0) or 0.0,
        business_seconds=_number(doc.get("business_seconds"), 0.0) or 0.0,
        wall_seconds=_number(doc.get("wall_seconds"), 0.0) or 0.0,
        policy_name=_text(doc.get("policy_name")) or "",
        policy_version=_integer(doc.get("policy_version")),
        calendar=_text(doc.get("calendar")) or "",
        calendar_version=_integer(doc.get("calendar_version")),
        timezone=_text(doc.get("timezone")) or "",
        timezone_source=_text(doc.get("timezone_source")) or "",
        profile=CycleProfile(
            contractor_id=_text(doc.get("contractor_id")),
            equipment_class=_text(doc.get("equipment_class")),
            priority=_text(doc.get("priority")),
            category=_text(doc.get("category")),
        ),
        revision=_integer(doc.get("revision"), 1),
    )


def _safe_open_cycles(doc: Mapping[str, Any]) -> list[OpenCycle]:
    try:
        return open_cycles_of(doc)
    except MalformedRecordError as exc:
        log.warning("sla_orders %r left out of a read: %s", doc.get("_id"), exc)
        return []


def _safe_closed_cycle(doc: Mapping[str, Any]) -> ClosedCycle | None:
    try:
        return closed_cycle_of(doc)
    except MalformedRecordError as exc:
        log.warning("sla_cycles %r left out of a read: %s", doc.get("_id"), exc)
        return None


@dataclass(frozen=True, kw_only=True)
class WorkOrderClocks:
    """Every cycle of one work order's clocks: the open ones and the closed ones."""

    work_order_id: str
    tenant: str
    profile: CycleProfile
    open: list[OpenCycle]
    """By clock, then cycle."""
    closed: list[ClosedCycle]
    """By clock, then cycle."""


# --------------------------------------------------------------------------- the reads


def _tenant_filter(tenant: str | None) -> dict[str, object]:
    return {} if tenant is None else {"tenant": {"$eq": checked_tenant(tenant)}}


class SlaReports:
    """Reads of ``sla_orders`` and ``sla_cycles`` for the operators' API and CLI."""

    def __init__(
        self, database: AsyncDatabase[Any], *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._orders = database[SLA_ORDERS]
        self._cycles = database[SLA_CYCLES]
        self._clock = clock or (lambda: datetime.now(UTC))

    async def at_risk(
        self, *, tenant: str | None, now: datetime, within: timedelta, limit: int
    ) -> list[AtRiskRow]:
        """Open cycles breached, predicted late, warned, or due within ``within`` of ``now``,
        least time left first; at most ``limit`` (1 to :data:`MAX_AT_RISK`); ``tenant`` None:
        every tenant's.

        Work orders are read by their soonest deadline; the read ends once ``limit`` rows are
        found and no later order can have less time left (or after :data:`MAX_ORDERS_SCANNED`).
        """
        if not 1 <= limit <= MAX_AT_RISK:
            raise _invalid("limit", f"must be from 1 to {MAX_AT_RISK}")
        if not timedelta(0) <= within <= MAX_WITHIN:
            raise _invalid("within", f"must be from 0 to {MAX_WITHIN.days} days")
        now_ms = epoch_ms(now, "now")
        query = {**_tenant_filter(tenant), "earliest_deadline_ms": {"$gte": 0}}
        cursor = (
            self._orders.find(query, projection=_ORDER_FIELDS)
            .sort([("earliest_deadline_ms", ASCENDING)])
            .batch_size(_BATCH_SIZE)
        )
        rows: list[AtRiskRow] = []
        scanned = 0
        slack_ms = _SCAN_SLACK // timedelta(milliseconds=1)
        async for doc in cursor:
            if len(rows) > limit:
                rows.sort(key=risk_order)
                del rows[limit:]
            if len(rows) == limit and (cutoff := rows[-1].time_left) is not None:
                earliest = doc.get("earliest_deadline_ms")
                cutoff_ms = cutoff // timedelta(milliseconds=1)
                if isinstance(earliest, int) and earliest - now_ms > cutoff_ms + slack_ms:
                    break
            scanned += 1
            if scanned > MAX_ORDERS_SCANNED:
                log.warning("at-risk read stopped after %d work orders", MAX_ORDERS_SCANNED)
                break
            for cycle in _safe_open_cycles(doc):
                row = at_risk_row(cycle, now, within)
                if row is not None:
                    rows.append(row)
        await cursor.close()
        rows.sort(key=risk_order)
        return rows[:limit]

    async def report(
        self,
        *,
        tenant: str | None,
        start: datetime,
        end: datetime,
        by: ReportGroup,
        now: datetime | None = None,
    ) -> list[ReportRow]:
        """Figures per group and clock: the cycles closed in ``[start, end)``, and the open
        cycles breached at ``now`` (None: the reports' clock) that breached before ``end``;
        ``tenant`` None: every tenant's."""
        start_ms, end_ms = check_period(start, end)
        group = ReportGroup(by)
        now = self._clock() if now is None else now
        now_ms = epoch_ms(now, "now")
        tally = ReportTally(group, now)
        closed = {
            **_tenant_filter(tenant),
            "closed_ms": {"$gte": start_ms, "$lt": end_ms},
        }
        cursor = self._cycles.find(closed, projection=_CYCLE_FIELDS).batch_size(_BATCH_SIZE)
        async for doc in cursor:
            cycle = _safe_closed_cycle(doc)
            if cycle is not None:
                tally.add_closed(cycle)
        breached_by = min(now_ms, end_ms - 1)
        orders = self._orders.find(
            {**_tenant_filter(tenant), "earliest_deadline_ms": {"$gte": 0, "$lte": breached_by}},
            projection=_ORDER_FIELDS,
        ).batch_size(_BATCH_SIZE)
        scanned = 0
        async for doc in orders:
            scanned += 1
            if scanned > MAX_ORDERS_SCANNED:
                log.warning("report read of open cycles stopped after %d", MAX_ORDERS_SCANNED)
                break
            for open_cycle in _safe_open_cycles(doc):
                breach = open_cycle.breached_at or open_cycle.deadline
                if breach is not None and breach < end:
                    tally.add_open(open_cycle)
        await orders.close()
        return tally.rows()

    async def work_order_clocks(self, *, tenant: str, work_order_id: str) -> WorkOrderClocks | None:
        """Every cycle of one of ``tenant``'s work orders; None when the tenant has no such
        order (another tenant's is exactly like an unknown one)."""
        tenant = checked_tenant(tenant)
        work_order_id = checked_work_order_id(work_order_id)
        mine = {"tenant": {"$eq": tenant}}
        order = await self._orders.find_one(
            {"_id": {"$eq": work_order_id}, **mine}, projection=_ORDER_FIELDS
        )
        records = await self._cycles.find(
            {"work_order_id": {"$eq": work_order_id}, **mine}, projection=_CYCLE_FIELDS
        ).to_list()
        if order is None and not records:
            return None
        closed = [c for doc in records if (c := _safe_closed_cycle(doc)) is not None]
        closed.sort(key=lambda c: (c.clock, c.cycle))
        open_cycles = [] if order is None else _safe_open_cycles(order)
        open_cycles.sort(key=lambda c: (c.clock, c.cycle))
        profile = CycleProfile()
        if order is not None:
            try:
                profile = profile_of(order)
            except MalformedRecordError as exc:
                log.warning("sla_orders %r has a malformed profile: %s", work_order_id, exc)
        elif closed:
            profile = max(closed, key=lambda c: c.closed_at).profile
        return WorkOrderClocks(
            work_order_id=work_order_id,
            tenant=tenant,
            profile=profile,
            open=open_cycles,
            closed=closed,
        )


__all__ = [
    "MAX_AT_RISK",
    "MAX_REPORT_PERIOD",
    "MAX_WITHIN",
    "SLA_CYCLES",
    "SLA_ORDERS",
    "MalformedRecordError",
    "SlaReports",
    "WorkOrderClocks",
    "check_period",
    "checked_tenant",
    "checked_work_order_id",
    "closed_cycle_of",
    "open_cycles_of",
    "profile_of",
    "report_indexes",
]
