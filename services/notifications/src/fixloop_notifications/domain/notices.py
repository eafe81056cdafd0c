"""Which facts are told to whom: the notice rules of the whole repair loop.

A fact is one consumed event (its type, id, moment and payload as plain values). The rules turn a
fact, with what the service knows of the order (:class:`NoticeOrder`), of the contractor and of
the tenant's dispatch desk, into the notices it causes — each one kind of message for one
recipient. Channels, preferences, quiet hours and rendering come after (in the app layer); this
module decides only what is said and to whom.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from fixloop_notifications.domain.templates import single_line


class Audience(StrEnum):
    REQUESTER = "requester"
    """Who asked for the repair (the tenant's customer)."""
    CONTRACTOR = "contractor"
    OPERATOR = "operator"
    """The tenant's dispatch desk."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """Someone a notice is for, and how they are reached."""

    audience: Audience
    key: str
    """Stable id of the recipient for this order (``requester``, ``contractor:<id>``,
    ``desk``): a notice is sent once per fact, recipient and channel."""
    name: str
    locale: str
    timezone: str
    """IANA zone the recipient reads times in."""
    email: str | None = None
    phone: str | None = None
    sms_consent: bool = False
    """Agreed to text messages (as far as the order tells; preferences may add it)."""
    country: str | None = None
    """ISO country of the recipient's site, used to read a phone number written nationally."""


@dataclass(frozen=True, slots=True)
class Remedy:
    """What a tenant offers its customer when work is late (its policy; optional)."""

    kind: str
    """``service_discount`` (``percent``) or ``extended_warranty`` (``months``)."""
    percent: int | None = None
    months: int | None = None

    def as_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {"kind": self.kind}
        if self.percent is not None:
            values["percent"] = self.percent
        if self.months is not None:
            values["months"] = self.months
        return values


@dataclass(frozen=True, slots=True)
class Desk:
    """A tenant's dispatch desk: who is told of unfilled orders, breaches and alerts."""

    tenant: str
    name: str
    email: str
    locale: str = "en"
    timezone: str = "UTC"
    phone: str | None = None
    remedy: Remedy | None = None

    def recipient(self) -> Recipient:
        return Recipient(
            audience=Audience.OPERATOR,
            key="desk",
            name=self.name,
            locale=self.locale,
            timezone=self.timezone,
            email=self.email,
            phone=self.phone,
        )


@dataclass(frozen=True, slots=True)
class ContractorCard:
    """What the service knows of a contractor: its name and how it is reached."""

    contractor_id: str
    name: str
    email: str | None = None
    phone: str | None = None
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class NoticeOrder:
    """A work order as its notices need it, kept from ``workorder.received`` on."""

    work_order_id: str
    tenant: str
    external_id: str
    source_platform: str
    requester_name: str
    requester_email: str
    requester_locale: str
    site_name: str
    site_city: str
    site_country: str
    site_address: tuple[str, ...]
    site_timezone: str
    equipment_id: str
    equipment_class: str
    priority: str
    category: str
    description: str
    received_at: datetime
    requester_phone: str | None = None
    requester_sms_consent: bool = False
    """The requester agreed to text messages (recorded with the order)."""
    equipment_make: str | None = None
    reported_at: datetime | None = None
    contractor: ContractorCard | None = None
    """The contractor the order is assigned to, once it is."""

    @property
    def urgent(self) -> bool:
        """Emergencies and safety work are told at once, quiet hours or not."""
        return self.priority == "emergency" or self.category == "safety"

    def requester(self) -> Recipient:
        return Recipient(
            audience=Audience.REQUESTER,
            key="requester",
            name=self.requester_name,
            locale=self.requester_locale,
            timezone=self.site_timezone,
            email=self.requester_email,
            phone=self.requester_phone,
            sms_consent=self.requester_sms_consent,
            country=self.site_country,
        )

    def common_values(self) -> dict[str, Any]:
        return {
            "reference": self.work_order_id,
            "external_id": self.external_id,
            "source_platform": self.source_platform,
            "site_name": single_line(self.site_name),
            "site_city": self.site_city,
            "site_address": list(self.site_address),
            "site_timezone": self.site_timezone,
            "priority": self.priority,
            "category": self.category,
            "tenant": self.tenant,
        }


@dataclass(frozen=True, slots=True)
class Fact:
    """One consumed event as the rules read it."""

    event_id: str
    event_type: str
    tenant: str
    occurred_at: datetime
    data: Mapping[str, Any]
    """The event's payload as plain values (datetimes aware)."""

    @property
    def work_order_id(self) -> str | None:
        value = self.data.get("work_order_id")
        return str(value) if value else None


@dataclass(frozen=True, slots=True)
class Notice:
    """One kind of message for one recipient, caused by one fact."""

    kind: str
    recipient: Recipient
    urgent: bool
    """Sent at once, even in the recipient's quiet hours."""
    values: Mapping[str, Any] = field(default_factory=dict)
    links: frozenset[str] = frozenset()
    """Signed links the message carries (``verify``, ``reject``, ``survey``), added when it is
    rendered."""


@dataclass(frozen=True, slots=True)
class Known:
    """What the service knows around a fact."""

    order: NoticeOrder | None
    desk: Desk | None
    contractor: ContractorCard | None = None
    """The contractor the fact is about, when it names one."""


class OrderUnknown(LookupError):  # noqa: N818 - the domain word
    """A fact about an order whose ``workorder.received`` has not been seen yet."""


Rule = Callable[[Fact, Known], list[Notice]]

REQUESTER_MILESTONES = frozenset({"dispatch", "arrival", "parts", "repair"})
"""Milestones whose predicted lateness is told to the requester (the others are the desk's)."""

_MILESTONE_WORDS = {
    "dispatch_confirmation": "dispatch",
    "parts_fulfilment": "parts",
    "progress_update": "progress",
}


def milestone_word(value: object) -> str:
    """The short name a notice uses for an SLA milestone (``dispatch_confirmation`` ->
    ``dispatch``)."""
    text = str(value or "")
    return _MILESTONE_WORDS.get(text, text)


def _order(known: Known) -> NoticeOrder:
    if known.order is None:
        raise OrderUnknown
    return known.order


def _to_requester(
    kind: str, values: Callable[[Fact, NoticeOrder], dict[str, Any]], *, at_once: bool = False
) -> Rule:
    """A notice to the order's requester; ``at_once``: never held for quiet hours."""

    def rule(fact: Fact, known: Known) -> list[Notice]:
        order = _order(known)
        return [
            Notice(
                kind=kind,
                recipient=order.requester(),
                urgent=at_once or order.urgent,
                values={
                    **order.common_values(),
                    "recipient_name": single_line(order.requester_name),
                    **values(fact, order),
                },
            )
        ]

    return rule


def _contractor_recipient(card: ContractorCard, fallback_zone: str, locale: str) -> Recipient:
    return Recipient(
        audience=Audience.CONTRACTOR,
        key=f"contractor:{card.contractor_id}",
        name=card.name,
        locale=locale,
        timezone=card.timezone or fallback_zone,
        email=card.email,
        phone=card.phone,
    )


def contractor_locale(known: Known) -> str:
    """Contractors are written to in their tenant desk's language (English without one)."""
    return known.desk.locale if known.desk is not None else "en"


def _to_contractor(
    kind: str, values: Callable[[Fact, NoticeOrder], dict[str, Any]], *, urgent: bool
) -> Rule:
    def rule(fact: Fact, known: Known) -> list[Notice]:
        order = _order(known)
        card = known.contractor or order.contractor
        if card is None or not (card.email or card.phone):
            return []
        recipient = _contractor_recipient(card, order.site_timezone, contractor_locale(known))
        return [
            Notice(
                kind=kind,
                recipient=recipient,
                urgent=urgent or order.urgent,
                values={
                    **order.common_values(),
                    "recipient_name": single_line(card.name),
                    **values(fact, order),
                },
            )
        ]

    return rule


def _to_desk(kind: str, values: Callable[[Fact, NoticeOrder | None], dict[str, Any]]) -> Rule:
    def rule(fact: Fact, known: Known) -> list[Notice]:
        if known.desk is None:
            return []
        common = known.order.common_values() if known.order is not None else {}
        return [
            Notice(
                kind=kind,
                recipient=known.desk.recipient(),
                urgent=True,
                values={
                    **common,
                    "recipient_name": single_line(known.desk.name),
                    **values(fact, known.order),
                },
            )
        ]

    return rule


def _nothing(_fact: Fact, _order: NoticeOrder) -> dict[str, Any]:
    return {}


def _received(_fact: Fact, order: NoticeOrder) -> dict[str, Any]:
    return {
        "equipment_id": order.equipment_id,
        "equipment_class": order.equipment_class,
        "equipment_make": order.equipment_make,
        "description": order.description,
        "reported_at": order.reported_at,
        "received_at": order.received_at,
    }


def _assigned(_fact: Fact, order: NoticeOrder) -> dict[str, Any]:
    card = order.contractor
    return {
        "contractor_name": card.name if card else None,
        "contractor_phone": card.phone if card else None,
        "contractor_email": card.email if card else None,
    }


def _contractor_name(order: NoticeOrder) -> str | None:
    return order.contractor.name if order.contractor else None


def _scheduled(fact: Fact, order: NoticeOrder) -> dict[str, Any]:
    return {
        "window_start": fact.data["window_start"],
        "window_end": fact.data["window_end"],
        "contractor_name": _contractor_name(order),
    }


def _with_eta(fact: Fact, order: NoticeOrder) -> dict[str, Any]:
    return {"contractor_name": _contractor_name(order), "eta": fact.data.get("eta")}


def _awaiting_parts(fact: Fact, _order: NoticeOrder) -> dict[str, Any]:
    parts = fact.data.get("parts") or []
    count = sum(int(p.get("quantity", 1)) for p in parts) if parts else 0
    return {"eta": fact.data.get("eta"), "parts_count": count}


def _completed(fact: Fact, _order: NoticeOrder) -> dict[str, Any]:
    completion = fact.data.get("completion") or {}
    return {
        "work_summary": completion.get("work_summary", ""),
        "verify_by": fact.data["verify_by"],
    }


def _reason(fact: Fact, _order: NoticeOrder | None) -> dict[str, Any]:
    return {"reason": fact.data.get("reason")}


def _offer(fact: Fact, order: NoticeOrder) -> dict[str, Any]:
    return {
        "expires_at": fact.data["expires_at"],
        "equipment_class": order.equipment_class,
        "description": order.description,
        "site_address": list(order.site_address),
    }


def _sla(fact: Fact, order: NoticeOrder | None) -> dict[str, Any]:
    return {
        "milestone": milestone_word(fact.data.get("milestone")),
        "deadline": fact.data.get("due_at"),
        "contractor_name": _contractor_name(order) if order else None,
    }


def _escalated(fact: Fact, order: NoticeOrder | None) -> dict[str, Any]:
    return {
        **_sla(fact, order),
        "level": fact.data.get("level", 1),
        "audience": fact.data.get("audience"),
    }


def _delayed_rule(fact: Fact, known: Known) -> list[Notice]:
    (notice,) = _to_requester(
        "workorder_delayed",
        lambda f, _o: {"cause": f.data.get("cause"), "new_eta": f.data.get("new_eta")},
    )(fact, known)
    return [_with_remedy(notice, known)]


def _with_remedy(notice: Notice, known: Known) -> Notice:
    remedy = known.desk.remedy if known.desk is not None else None
    values = {**notice.values, "remedy": remedy.as_values() if remedy else None}
    return replace(notice, values=values)


def _at_risk_rule(fact: Fact, known: Known) -> list[Notice]:
    if milestone_word(fact.data.get("milestone")) not in REQUESTER_MILESTONES:
        return []
    (notice,) = _to_requester(
        "delay_predicted",
        lambda f, _o: {
            "milestone": milestone_word(f.data.get("milestone")),
            "deadline": f.data.get("due_at"),
            "predicted_at": f.data.get("predicted_at"),
        },
    )(fact, known)
    return [_with_remedy(notice, known)]


def _completed_rule(fact: Fact, known: Known) -> list[Notice]:
    (notice,) = _to_requester("work_completed", _completed)(fact, known)
    return [replace(notice, links=frozenset({"verify", "reject"}))]


def _closed_rule(fact: Fact, known: Known) -> list[Notice]:
    (notice,) = _to_requester("workorder_closed", _nothing)(fact, known)
    return [replace(notice, links=frozenset({"survey"}))]


def _cancelled_rule(fact: Fact, known: Known) -> list[Notice]:
    notices = _to_requester("workorder_cancelled", _reason)(fact, known)
    return notices + _to_contractor("job_cancelled", _reason, urgent=True)(fact, known)


def _credential_rule(fact: Fact, known: Known) -> list[Notice]:
    card = known.contractor
    if card is None or not (card.email or card.phone):
        return []
    recipient = _contractor_recipient(card, "UTC", contractor_locale(known))
    data = fact.data
    return [
        Notice(
            kind="credential_expiring",
            recipient=recipient,
            urgent=False,
            values={
                "recipient_name": single_line(card.name),
                "tenant": fact.tenant,
                "credential_kind": data.get("credential_kind"),
                "credential_name": data.get("credential_name"),
                "credential_number": data.get("credential_number"),
                "expires_on": data.get("expires_on"),
                "days_left": data.get("days_left"),
            },
        )
    ]


def _quality(fact: Fact, known: Known) -> list[Notice]:
    name = known.contractor.name if known.contractor else str(fact.data.get("contractor_id", ""))
    alert = fact.data.get("summary") or fact.data.get("kind") or fact.data.get("reason") or ""
    return _to_desk("quality_alert", lambda _f, _o: {"contractor_name": name, "alert": alert})(
        fact, known
    )


RULES: Mapping[str, Rule] = {
    # The receipt answers the requester's own request, made a moment ago: never held.
    "fixloop.workorder.received.v1": _to_requester("workorder_received", _received, at_once=True),
    "fixloop.workorder.assigned.v1": _to_requester("contractor_assigned", _assigned),
    "fixloop.workorder.scheduled.v1": _to_requester("visit_scheduled", _scheduled),
    "fixloop.workorder.en_route.v1": _to_requester("contractor_en_route", _with_eta),
    "fixloop.workorder.on_site.v1": _to_requester("contractor_on_site", _with_eta),
    "fixloop.workorder.awaiting_parts.v1": _to_requester("awaiting_parts", _awaiting_parts),
    "fixloop.workorder.delayed.v1": _delayed_rule,
    "fixloop.workorder.work_completed.v1": _completed_rule,
    "fixloop.workorder.closed.v1": _closed_rule,
    "fixloop.workorder.cancelled.v1": _cancelled_rule,
    "fixloop.assignment.offered.v1": _to_contractor("offer_made", _offer, urgent=True),
    "fixloop.assignment.withdrawn.v1": _to_contractor("offer_withdrawn", _reason, urgent=True),
    "fixloop.assignment.unfilled.v1": _to_desk("order_unfilled", _reason),
    "fixloop.contractor.credential_expiring.v1": _credential_rule,
    "fixloop.sla.at_risk.v1": _at_risk_rule,
    "fixloop.sla.breached.v1": _to_desk("sla_breached", _sla),
    "fixloop.sla.escalated.v1": _to_desk("sla_escalated", _escalated),
    "fixloop.quality.alert_raised.v1": _quality,
}
"""Event type -> the notices it causes."""

NOTICE_KINDS: frozenset[str] = frozenset(
    {
        "workorder_received",
        "contractor_assigned",
        "visit_scheduled",
        "contractor_en_route",
        "contractor_on_site",
        "awaiting_parts",
        "workorder_delayed",
        "delay_predicted",
        "work_completed",
        "workorder_closed",
        "workorder_cancelled",
        "offer_made",
        "offer_withdrawn",
        "job_cancelled",
        "credential_expiring",
        "order_unfilled",
        "sla_breached",
        "sla_escalated",
        "quality_alert",
        "webhook_disabled",
    }
)
"""Every kind of notice (one template each)."""


def notices_for(fact: Fact, known: Known) -> list[Notice]:
    """The notices ``fact`` causes (none for a fact nobody is told about). Raises
    :class:`OrderUnknown` when the fact is about an order not received yet."""
    rule = RULES.get(fact.event_type)
    return [] if rule is None else rule(fact, known)


def webhook_disabled_notice(
    desk: Desk, *, endpoint_url: str, failures: int, failing_since: datetime
) -> Notice:
    """The desk is told that one of its webhook endpoints was disabled."""
    return Notice(
        kind="webhook_disabled",
        recipient=desk.recipient(),
        urgent=True,
        values={
            "recipient_name": single_line(desk.name),
            "tenant": desk.tenant,
            "endpoint_url": endpoint_url,
            "failures": failures,
            "failing_since": failing_since,
        },
    )


__all__ = [
    "NOTICE_KINDS",
    "RULES",
    "Audience",
    "ContractorCard",
    "Desk",
    "Fact",
    "Known",
    "Notice",
    "NoticeOrder",
    "OrderUnknown",
    "Recipient",
    "Remedy",
    "notices_for",
    "webhook_disabled_notice",
]
