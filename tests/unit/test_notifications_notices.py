"""The notice rules: which fact is told to whom (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fixloop_notifications.domain.notices import (
    NOTICE_KINDS,
    RULES,
    Audience,
    ContractorCard,
    Desk,
    Fact,
    Known,
    NoticeOrder,
    OrderUnknown,
    Remedy,
    notices_for,
    webhook_disabled_notice,
)

AT = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
CONTRACTOR = ContractorCard(
    contractor_id="c-1", name="Kälte Nord GmbH", email="jobs@kaelte.example", phone="+4930123456"
)
DESK = Desk(
    tenant="acme",
    name="ACME desk",
    email="desk@acme.example",
    locale="de",
    timezone="Europe/Berlin",
    remedy=Remedy(kind="service_discount", percent=10),
)


def order(**changes: Any) -> NoticeOrder:
    values: dict[str, Any] = {
        "work_order_id": "wo-1",
        "tenant": "acme",
        "external_id": "FH-1",
        "source_platform": "fieldhub",
        "requester_name": "Anna Schmidt",
        "requester_email": "anna@example.de",
        "requester_locale": "de-AT",
        "site_name": "Filiale Mitte",
        "site_city": "Berlin",
        "site_country": "DE",
        "site_address": ("Hauptstr. 1", "10115 Berlin", "DE"),
        "site_timezone": "Europe/Berlin",
        "equipment_id": "eq-1",
        "equipment_class": "refrigeration",
        "priority": "normal",
        "category": "breakdown",
        "description": "Kühlraum zu warm",
        "received_at": AT,
        "requester_phone": "030 1234567",
        "requester_sms_consent": True,
    }
    values.update(changes)
    return NoticeOrder(**values)


def fact(event_type: str, **data: Any) -> Fact:
    return Fact(
        event_id="e-1",
        event_type=f"fixloop.{event_type}.v1",
        tenant="acme",
        occurred_at=AT,
        data={"work_order_id": "wo-1", **data},
    )


def test_every_rule_makes_a_known_kind() -> None:
    known = Known(order=order(contractor=CONTRACTOR), desk=DESK, contractor=CONTRACTOR)
    samples: dict[str, dict[str, Any]] = {
        "fixloop.workorder.scheduled.v1": {"window_start": AT, "window_end": AT},
        "fixloop.workorder.work_completed.v1": {"verify_by": AT, "completion": {}},
        "fixloop.assignment.offered.v1": {"expires_at": AT, "contractor_id": "c-1"},
        "fixloop.sla.at_risk.v1": {"milestone": "arrival", "due_at": AT, "predicted_at": AT},
    }
    made = set()
    for event_type in RULES:
        data = {"work_order_id": "wo-1", **samples.get(event_type, {})}
        for notice in notices_for(Fact("e", event_type, "acme", AT, data), known):
            made.add(notice.kind)
    assert made <= NOTICE_KINDS
    assert made | {"webhook_disabled"} == NOTICE_KINDS


def test_a_fact_about_an_order_not_received_yet_says_so() -> None:
    with pytest.raises(OrderUnknown):
        notices_for(fact("workorder.en_route"), Known(order=None, desk=DESK))


def test_requester_notices_carry_the_order_and_the_requesters_locale_and_zone() -> None:
    (notice,) = notices_for(
        fact("workorder.en_route", eta=AT + timedelta(hours=1)),
        Known(order=order(contractor=CONTRACTOR), desk=DESK),
    )
    assert notice.kind == "contractor_en_route"
    assert notice.recipient.audience is Audience.REQUESTER
    assert notice.recipient.locale == "de-AT"
    assert notice.recipient.timezone == "Europe/Berlin"
    assert notice.recipient.sms_consent is True
    assert notice.values["contractor_name"] == "Kälte Nord GmbH"
    assert notice.values["eta"] == AT + timedelta(hours=1)
    assert notice.urgent is False


def test_emergencies_and_safety_work_are_urgent() -> None:
    for changes in ({"priority": "emergency"}, {"category": "safety"}):
        (notice,) = notices_for(fact("workorder.on_site"), Known(order=order(**changes), desk=None))
        assert notice.urgent is True


def test_a_delay_carries_the_tenants_remedy_and_a_predicted_delay_only_for_the_requesters_milestones() -> (  # noqa: E501
    None
):
    known = Known(order=order(), desk=DESK)
    (delayed,) = notices_for(fact("workorder.delayed", cause="parts", new_eta=AT), known)
    assert delayed.values["remedy"] == {"kind": "service_discount", "percent": 10}
    (predicted,) = notices_for(
        fact("sla.at_risk", milestone="parts_fulfilment", due_at=AT, predicted_at=AT), known
    )
    assert predicted.kind == "delay_predicted"
    assert predicted.values["milestone"] == "parts"
    assert (
        notices_for(
            fact("sla.at_risk", milestone="progress_update", due_at=AT, predicted_at=AT), known
        )
        == []
    )


def test_completion_and_closing_ask_for_signed_links() -> None:
    known = Known(order=order(), desk=DESK)
    (completed,) = notices_for(
        fact("workorder.work_completed", verify_by=AT, completion={"work_summary": "ok"}), known
    )
    assert completed.links == frozenset({"verify", "reject"})
    assert completed.values["work_summary"] == "ok"
    (closed,) = notices_for(fact("workorder.closed"), known)
    assert closed.links == frozenset({"survey"})


def test_offers_go_to_the_contractor_they_name_and_only_with_a_way_to_reach_it() -> None:
    offered = fact("assignment.offered", expires_at=AT, contractor_id="c-1")
    (notice,) = notices_for(offered, Known(order=order(), desk=DESK, contractor=CONTRACTOR))
    assert notice.recipient.audience is Audience.CONTRACTOR
    assert notice.recipient.key == "contractor:c-1"
    assert notice.recipient.locale == "de"  # the desk's language
    assert notice.urgent is True
    unreachable = ContractorCard(contractor_id="c-2", name="No Contact Ltd")
    assert notices_for(offered, Known(order=order(), desk=DESK, contractor=unreachable)) == []


def test_a_cancellation_tells_the_requester_and_the_assigned_contractor() -> None:
    notices = notices_for(
        fact("workorder.cancelled", reason="duplicate"),
        Known(order=order(contractor=CONTRACTOR), desk=DESK),
    )
    assert [(n.kind, n.recipient.audience) for n in notices] == [
        ("workorder_cancelled", Audience.REQUESTER),
        ("job_cancelled", Audience.CONTRACTOR),
    ]


def test_desk_notices_need_a_desk_and_name_the_milestone() -> None:
    breached = fact("sla.breached", milestone="dispatch_confirmation", due_at=AT)
    assert notices_for(breached, Known(order=order(), desk=None)) == []
    (notice,) = notices_for(breached, Known(order=order(), desk=DESK))
    assert notice.recipient.audience is Audience.OPERATOR
    assert notice.values["milestone"] == "dispatch"
    assert notice.values["deadline"] == AT
    assert notice.urgent is True


def test_a_disabled_endpoint_is_told_to_the_desk() -> None:
    notice = webhook_disabled_notice(
        DESK, endpoint_url="https://hooks.example/x", failures=20, failing_since=AT
    )
    assert notice.kind == "webhook_disabled"
    assert notice.recipient.email == "desk@acme.example"
    assert notice.values["failures"] == 20
