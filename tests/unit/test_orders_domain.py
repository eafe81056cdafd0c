"""The orders domain without I/O: lifecycle, de-duplication key, source bindings, timeline text."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from fixloop_orders.app.intake import received_event, work_order_details
from fixloop_orders.app.timeline_facts import RECORDED_EVENT_TYPES, timeline_fact
from fixloop_orders.domain.intake import SourceBindings
from fixloop_orders.domain.timeline import utc_clock
from fixloop_orders.domain.work_order import ExternalOrderKey, WorkOrder, WorkOrderState
from fixloop_shared.contracts import (
    EVENT_TYPES,
    Address,
    AssignmentAccepted,
    AssignmentCredentialLapsed,
    AssignmentEscalated,
    AssignmentOffered,
    AssignmentUnfilled,
    Category,
    Channel,
    Equipment,
    Milestone,
    NotificationFailed,
    NotificationSent,
    PartLine,
    PartReservation,
    PartsBackordered,
    PartsReserved,
    Priority,
    Requester,
    Site,
    SlaAtRisk,
    SlaBreached,
    SlaBreachRetracted,
    SlaEscalated,
    SlaWarning,
    UnfilledReason,
    WorkOrderReceived,
    WorkOrderSubmitted,
)

T0 = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)
WORK_ORDER_ID = "6f1d2a52-8c1e-4b8e-9a57-2f0c4b1d9e01"


def submission(external_id: str = "EXT-1", **changes: object) -> WorkOrderSubmitted:
    fields: dict[str, object] = {
        "external_id": external_id,
        "site": Site(
            site_id="berlin-mitte",
            name="Acme Store Berlin Mitte",
            address=Address(
                line1="Rosenthaler Str. 40", city="Berlin", postal_code="10178", country="DE"
            ),
            timezone="Europe/Berlin",
        ),
        "equipment": Equipment(equipment_id="ahu-3", equipment_class="hvac"),
        "category": Category.BREAKDOWN,
        "priority": Priority.HIGH,
        "description": "Air handling unit 3 trips its breaker.",
        "requester": Requester(name="Mara Keller", email="mara@example.com", locale="de-DE"),
        "required_parts": [PartLine(part_number="FLT-HEPA-24", quantity=2)],
    }
    fields.update(changes)
    return WorkOrderSubmitted.model_validate(fields)


def new_order(state: WorkOrderState = WorkOrderState.RECEIVED) -> WorkOrder:
    order = WorkOrder.receive(
        work_order_id=WORK_ORDER_ID,
        tenant="acme",
        source_platform="marketplace.example",
        details=work_order_details(submission()),
        received_at=T0,
        submission_id="evt-submitted-1",
        submission_type=WorkOrderSubmitted.event_type,
    )
    order.state = state
    return order


# --------------------------------------------------------------------------- receiving


def test_received_order_starts_in_received_with_one_timeline_entry() -> None:
    order = new_order()

    assert order.state is WorkOrderState.RECEIVED
    assert order.received_at == order.updated_at == T0
    [entry] = order.new_entries
    assert entry.entry_id == "evt-submitted-1"
    assert entry.kind == "received"
    assert entry.at == T0
    assert entry.event_type == WorkOrderSubmitted.event_type
    assert entry.summary == (
        "Received from marketplace.example as EXT-1: high priority breakdown "
        "at Acme Store Berlin Mitte"
    )
    assert entry.details["source_platform"] == "marketplace.example"
    assert entry.details["external_id"] == "EXT-1"
    assert all(isinstance(value, str) for value in entry.details.values())


def test_received_event_carries_the_whole_order() -> None:
    order = new_order()
    event = received_event(order)

    assert isinstance(event, WorkOrderReceived)
    assert event.work_order_id == WORK_ORDER_ID
    assert event.tenant == "acme"
    assert event.source_platform == "marketplace.example"
    assert event.received_at == T0
    assert event.external_id == "EXT-1"
    assert event.required_parts == [PartLine(part_number="FLT-HEPA-24", quantity=2)]
    assert event.site.timezone == "Europe/Berlin"


# --------------------------------------------------------------------------- de-duplication key


def test_same_external_order_has_the_same_key_whatever_else_differs() -> None:
    first = ExternalOrderKey.of_submission(
        work_order_details(submission("EXT-7")),
        tenant="acme",
        source_platform="marketplace.example",
    )
    resent = ExternalOrderKey.of_submission(
        work_order_details(
            submission("EXT-7", description="Now also leaking.", priority=Priority.EMERGENCY)
        ),
        tenant="acme",
        source_platform="marketplace.example",
    )
    assert first == resent
    assert hash(first) == hash(resent)
    assert new_order().key == ExternalOrderKey("acme", "marketplace.example", "EXT-1")


@pytest.mark.parametrize(
    "other",
    [
        ExternalOrderKey("globex", "marketplace.example", "EXT-7"),
        ExternalOrderKey("acme", "erp.example", "EXT-7"),
        ExternalOrderKey("acme", "marketplace.example", "EXT-8"),
        ExternalOrderKey("acme", "marketplace.example", "ext-7"),
    ],
)
def test_keys_differ_by_tenant_source_and_exact_external_id(other: ExternalOrderKey) -> None:
    assert ExternalOrderKey("acme", "marketplace.example", "EXT-7") != other


# --------------------------------------------------------------------------- source bindings


def test_source_may_submit_only_for_its_bound_tenants() -> None:
    bindings = SourceBindings.of({"marketplace.example": ["acme", "globex"], "erp.example": []})

    assert bindings.allows("marketplace.example", "acme")
    assert bindings.allows("marketplace.example", "globex")
    assert not bindings.allows("marketplace.example", "initech")
    assert not bindings.allows("erp.example", "acme")
    assert not bindings.allows("unknown.example", "acme")
    assert not bindings.is_empty


def test_no_bindings_allow_nothing() -> None:
    bindings = SourceBindings.of({})
    assert bindings.is_empty
    assert not bindings.allows("marketplace.example", "acme")


# --------------------------------------------------------------------------- timeline text


def offered(expires_at: datetime) -> AssignmentOffered:
    return AssignmentOffered(
        work_order_id=WORK_ORDER_ID,
        offer_id="offer-1",
        contractor_id="ctr-berlin-klima",
        contractor_name="Berliner Klima Service GmbH",
        offered_at=datetime(2026, 3, 2, 14, 0, tzinfo=UTC),
        expires_at=expires_at,
    )


def test_offer_summary_names_the_contractor_and_expiry() -> None:
    fact = timeline_fact(offered(datetime(2026, 3, 2, 14, 30, tzinfo=UTC)))

    assert fact is not None
    assert fact.work_order_id == WORK_ORDER_ID
    assert fact.kind == "assignment_offered"
    assert fact.at == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert fact.summary == "Offered to Berliner Klima Service GmbH (offer expires 14:30 UTC)"
    assert fact.details == {
        "offer_id": "offer-1",
        "contractor_id": "ctr-berlin-klima",
        "contractor_name": "Berliner Klima Service GmbH",
        "offered_at": "2026-03-02T14:00:00Z",
        "expires_at": "2026-03-02T14:30:00Z",
    }


def test_an_escalation_says_why_and_since_when() -> None:
    fact = timeline_fact(
        AssignmentEscalated(
            work_order_id=WORK_ORDER_ID,
            escalated_at=T0 + timedelta(minutes=90),
            waiting_since=T0,
            offers_made=3,
            open_offers=["ctr-b"],
            reason="not taken 1 h 30 min after its first offer (3 made, 1 still open)",
        )
    )
    assert fact is not None
    assert fact.kind == "assignment_escalated"
    assert fact.at == T0 + timedelta(minutes=90)
    assert fact.summary == (
        "Escalated to the dispatch desk: not taken 1 h 30 min after its first offer "
        "(3 made, 1 still open)"
    )
    assert fact.details["open_offers"] == "ctr-b"
    assert fact.details["offers_made"] == "3"


def test_a_credential_lapsing_during_the_job_flags_it() -> None:
    fact = timeline_fact(
        AssignmentCredentialLapsed(
            work_order_id=WORK_ORDER_ID,
            offer_id="offer-1",
            contractor_id="ctr-berlin-klima",
            credential_kind="liability_insurance",
            credential_number="INS 2025/7",
            expires_on=date(2026, 3, 1),
            noticed_at=T0,
        )
    )
    assert fact is not None
    assert fact.kind == "contractor_credential_lapsed"
    assert fact.summary == (
        "Contractor ctr-berlin-klima's liability insurance INS 2025/7 expired "
        "(2026-03-01 was its last day) while the job is open"
    )
    assert fact.details["expires_on"] == "2026-03-01"


def test_offer_expiring_another_day_shows_the_date() -> None:
    fact = timeline_fact(offered(datetime(2026, 3, 3, 9, 0, tzinfo=UTC)))
    assert fact is not None
    assert fact.summary.endswith("(offer expires 2026-03-03 09:00 UTC)")


def test_times_in_summaries_are_utc() -> None:
    from zoneinfo import ZoneInfo

    berlin = datetime(2026, 3, 2, 15, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert utc_clock(berlin, reference=T0) == "14:30 UTC"


def test_reserved_parts_summary() -> None:
    fact = timeline_fact(
        PartsReserved(
            work_order_id=WORK_ORDER_ID,
            reservations=[
                PartReservation(part_number="FLT-HEPA-24", warehouse_id="wh-berlin", quantity=2)
            ],
            reserved_at=T0,
        )
    )
    assert fact is not None
    assert fact.kind == "parts_reserved"
    assert fact.summary == "Reserved 2 x FLT-HEPA-24 from wh-berlin"
    assert fact.details == {"reserved": "2 x FLT-HEPA-24 from wh-berlin", "lines": "1"}


def test_long_reservation_lists_are_shortened_in_the_summary() -> None:
    lines = [
        PartReservation(part_number=f"P-{n}", warehouse_id="wh-berlin", quantity=1)
        for n in range(8)
    ]
    fact = timeline_fact(PartsReserved(work_order_id="wo", reservations=lines, reserved_at=T0))
    assert fact is not None
    assert fact.summary.endswith("1 x P-4 from wh-berlin and 3 more")
    assert "P-7" in fact.details["reserved"]


def test_backordered_summary_names_missing_and_reserved_parts() -> None:
    fact = timeline_fact(
        PartsBackordered(
            work_order_id=WORK_ORDER_ID,
            reservations=[
                PartReservation(part_number="FLT-HEPA-24", warehouse_id="wh-berlin", quantity=2)
            ],
            missing=[PartLine(part_number="FAN-220", quantity=1)],
            decided_at=T0,
        )
    )
    assert fact is not None
    assert fact.summary == "Backordered 1 x FAN-220; reserved 2 x FLT-HEPA-24 from wh-berlin"
    assert fact.details["missing"] == "1 x FAN-220"


def test_unfilled_and_accepted_summaries() -> None:
    unfilled = timeline_fact(
        AssignmentUnfilled(
            work_order_id=WORK_ORDER_ID,
            reason="no contractor with skill hvac in region berlin",
            considered=[UnfilledReason(contractor_id="c1", reasons=["insurance expired"])],
            decided_at=T0,
        )
    )
    accepted = timeline_fact(
        AssignmentAccepted(
            work_order_id=WORK_ORDER_ID, offer_id="o1", contractor_id="c1", accepted_at=T0
        )
    )
    assert unfilled is not None
    assert unfilled.summary == (
        "No eligible contractor: no contractor with skill hvac in region berlin "
        "(1 contractor considered)"
    )
    assert accepted is not None
    assert accepted.summary == "Offer accepted by contractor c1"


def test_sla_summaries_say_when_it_was_due() -> None:
    clock: dict[str, Any] = {
        "work_order_id": WORK_ORDER_ID,
        "clock_id": "clk-1",
        "milestone": Milestone.DISPATCH_CONFIRMATION,
        "started_at": T0,
        "warn_at": T0 + timedelta(minutes=45),
        "due_at": T0 + timedelta(hours=1),
    }
    warning = timeline_fact(SlaWarning(**clock, fired_at=T0 + timedelta(minutes=45)))
    breached = timeline_fact(SlaBreached(**clock, fired_at=T0 + timedelta(hours=1), late=True))

    assert warning is not None
    assert warning.summary == "SLA warning: dispatch confirmation due 09:15 UTC"
    assert warning.details["late"] == "false"
    assert breached is not None
    assert breached.summary.startswith("SLA breached: dispatch confirmation was due 09:15 UTC")
    assert "reported late" in breached.summary

    repair = {**clock, "milestone": Milestone.REPAIR, "cycle": 2}
    escalated = timeline_fact(
        SlaEscalated(
            **repair,
            fired_at=T0 + timedelta(hours=2),
            level=1,
            audience="account_manager",
            overdue_seconds=3600,
        )
    )
    at_risk = timeline_fact(
        SlaAtRisk(
            **repair,
            fired_at=T0 + timedelta(minutes=10),
            predicted_at=T0 + timedelta(hours=1, minutes=30),
            predicted_lateness_seconds=1800,
            basis="parts_eta",
        )
    )
    retracted = timeline_fact(
        SlaBreachRetracted(
            **repair,
            retracted_at=T0 + timedelta(hours=3),
            breached_at=T0 + timedelta(hours=1),
            reason="a late event shows the milestone was not missed",
        )
    )
    assert escalated is not None
    assert escalated.summary == (
        "SLA escalated to account manager (level 1): repair was due 09:15 UTC"
    )
    assert (escalated.details["cycle"], escalated.details["level"]) == ("2", "1")
    assert at_risk is not None
    assert at_risk.summary == (
        "SLA at risk: repair due 09:15 UTC is now expected 09:45 UTC"
        " (30 min late, by the parts eta)"
    )
    assert retracted is not None
    assert retracted.kind == "sla_breach_retracted"
    assert retracted.details["breached_at"] == "2026-03-02T09:15:00Z"


def test_notifications_about_an_order_are_recorded_others_are_not() -> None:
    common: dict[str, Any] = {
        "notification_id": "n1",
        "channel": Channel.EMAIL,
        "recipient": "mara@example.com",
        "template": "workorder-received",
        "locale": "de-DE",
        "attempts": 3,
    }
    sent = timeline_fact(NotificationSent(**common, work_order_id=WORK_ORDER_ID, sent_at=T0))
    failed = timeline_fact(
        NotificationFailed(
            **common, work_order_id=WORK_ORDER_ID, error="mailbox full", failed_at=T0
        )
    )
    unrelated = timeline_fact(NotificationSent(**common, sent_at=T0))

    assert sent is not None
    assert sent.summary == "Notified mara@example.com by email (workorder-received)"
    assert failed is not None
    assert failed.summary == (
        "Could not notify mara@example.com by email after 3 attempts: mailbox full"
    )
    assert failed.details["error"] == "mailbox full"
    assert unrelated is None


def test_own_and_inbound_events_are_not_timeline_facts() -> None:
    assert timeline_fact(submission()) is None
    assert WorkOrderSubmitted.event_type not in RECORDED_EVENT_TYPES
    assert set(EVENT_TYPES) >= RECORDED_EVENT_TYPES
