"""From consumed events to recorded deliveries, in memory with an injectable clock: channels,
consent, opt-outs, quiet hours (across DST changes), what a contractor and a desk are told."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from fixloop_notifications.adapters.memory import MemoryDeliveryLog
from fixloop_notifications.adapters.preferences import MemoryPreferences
from fixloop_notifications.domain.delivery import Delivery
from fixloop_notifications.domain.mail import OutgoingMail, build_email
from fixloop_notifications.domain.notices import Desk
from fixloop_notifications.domain.preferences import SmsConsent
from fixloop_notifications.domain.sms import OutgoingSms
from fixloop_notifications.main import NotificationsService, bootstrap
from fixloop_notifications.settings import NotificationsSettings
from fixloop_shared.contracts import (
    Actor,
    AssignmentOffered,
    ContractorContact,
    ContractorCredentialExpiring,
    EventPayload,
    WorkOrderAssigned,
    WorkOrderEnRoute,
    WorkOrderReceived,
)
from fixloop_shared.envelope import Event, EventEnvelope
from fixloop_shared.memory import MemoryStore
from fixloop_shared.vocabulary import ActorKind, Channel, WorkOrderState

WORK_ORDER = "wo-quiet-1"
P = TypeVar("P", bound=EventPayload)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def service_at(now: datetime, desks: dict[str, Desk] | None = None) -> NotificationsService:
    service = bootstrap(
        NotificationsSettings(public_url="https://links.fixloop.example"),
        uow=MemoryStore("notifications"),
        clock=Clock(now),
    )
    if desks:
        service.notifications._desks = desks
    return service


def received(
    *,
    at: datetime,
    priority: str = "normal",
    phone: str | None = "030 1234567",
    consent: bool = True,
    locale: str = "de",
    timezone: str = "Europe/Berlin",
) -> WorkOrderReceived:
    return wire(
        WorkOrderReceived,
        {
            "external_id": "FH-1",
            "site": {
                "site_id": "s-1",
                "name": "Filiale Mitte",
                "address": {
                    "line1": "Rosenthaler Str. 40",
                    "city": "Berlin",
                    "postal_code": "10178",
                    "country": "DE",
                },
                "timezone": timezone,
            },
            "equipment": {"equipment_id": "ahu-3", "equipment_class": "hvac"},
            "category": "breakdown",
            "priority": priority,
            "description": "Lüftung fällt aus",
            "requester": {
                "name": "Mara Keller",
                "email": "mara@example.com",
                "phone": phone,
                "locale": locale,
                "sms_consent": consent,
            },
            "work_order_id": WORK_ORDER,
            "tenant": "acme",
            "source_platform": "fieldhub",
            "received_at": at,
        },
    )


def wire(model: type[P], data: dict[str, Any]) -> P:
    """The payload as it arrives: read from its JSON (the models are strict)."""
    return model.model_validate_json(json.dumps(data, default=_json_value))


def _json_value(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


def lifecycle(model: type[P], at: datetime, **fields: Any) -> P:
    return wire(
        model,
        {
            "work_order_id": WORK_ORDER,
            "external_id": "FH-1",
            "source_platform": "fieldhub",
            "state": WorkOrderState.EN_ROUTE,
            "previous_state": WorkOrderState.ASSIGNED,
            "occurred_at": at,
            "actor": Actor(kind=ActorKind.CONTRACTOR, id="c-1"),
            "via": "grpc",
            "version": 3,
            **fields,
        },
    )


async def consume(service: NotificationsService, payload: EventPayload) -> list[Delivery]:
    now = service.notifications._clock()
    envelope = EventEnvelope.new(
        payload, source="orders", subject=WORK_ORDER, tenant="acme", time=now
    )
    async with service.units.transaction() as uow:
        return await service.notifications.on_event(Event(envelope, payload), uow)


def by_channel(deliveries: Sequence[Delivery]) -> dict[Channel, Delivery]:
    return {d.channel: d for d in deliveries}


@pytest.mark.parametrize(
    ("local_evening", "release"),
    [
        # The night the clocks go back (03:00 CEST -> 02:00 CET): 07:00 CET is 06:00 UTC.
        (datetime(2026, 10, 24, 20, 30, tzinfo=UTC), datetime(2026, 10, 25, 6, 0, tzinfo=UTC)),
        # The night they go forward (02:00 CET -> 03:00 CEST): 07:00 CEST is 05:00 UTC.
        (datetime(2026, 3, 28, 22, 0, tzinfo=UTC), datetime(2026, 3, 29, 5, 0, tzinfo=UTC)),
        # After midnight, still quiet: the same morning.
        (datetime(2026, 10, 25, 2, 30, tzinfo=UTC), datetime(2026, 10, 25, 6, 0, tzinfo=UTC)),
    ],
)
async def test_a_notice_in_quiet_hours_is_held_until_seven_local_across_dst(
    local_evening: datetime, release: datetime
) -> None:
    service = service_at(local_evening)
    # The receipt answers the requester's own request: it goes at once, even at night.
    receipts = await consume(service, received(at=local_evening))
    assert {(d.channel, d.not_before) for d in receipts} == {
        (Channel.EMAIL, None),
        (Channel.SMS, None),
    }
    deliveries = await consume(
        service, lifecycle(WorkOrderEnRoute, local_evening, eta=release + timedelta(hours=2))
    )
    channels = by_channel(deliveries)
    assert set(channels) == {Channel.EMAIL, Channel.SMS}
    for delivery in deliveries:
        assert delivery.not_before == release
        assert delivery.urgent is False
    assert channels[Channel.EMAIL].mail.date == release
    log = service.deliveries
    assert isinstance(log, MemoryDeliveryLog)
    owner = service.worker.owner
    for _ in receipts:  # taken out of the way
        later = release + timedelta(days=1)
        assert await log.claim_next(owner="earlier", now=local_evening, lease_until=later)
    before = release - timedelta(seconds=1)
    assert await log.claim_next(owner=owner, now=before, lease_until=release) is None
    claimed = await log.claim_next(
        owner=owner, now=release + timedelta(seconds=1), lease_until=release + timedelta(minutes=1)
    )
    assert claimed is not None
    assert claimed.not_before == release


async def test_an_emergency_goes_out_at_once_at_night() -> None:
    night = datetime(2026, 10, 24, 23, 30, tzinfo=UTC)  # 01:30 in Berlin
    service = service_at(night)
    deliveries = await consume(service, received(at=night, priority="emergency"))
    assert len(deliveries) == 2
    assert all(d.not_before is None and d.urgent for d in deliveries)


async def test_daytime_notices_are_due_at_once_in_the_readers_zone() -> None:
    # 09:00 UTC is 18:00 in Tokyo (not quiet) but 05:00 in New York (quiet).
    morning = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    en_route = lifecycle(WorkOrderEnRoute, morning)
    held = {}
    for zone in ("Asia/Tokyo", "America/New_York"):
        service = service_at(morning)
        await consume(service, received(at=morning, timezone=zone))
        held[zone] = {d.not_before for d in await consume(service, en_route)}
    assert held == {
        "Asia/Tokyo": {None},
        "America/New_York": {datetime(2026, 6, 1, 11, 0, tzinfo=UTC)},
    }


async def test_a_text_needs_consent_and_a_valid_number_and_is_sent_in_e164() -> None:
    noon = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    sms = by_channel(await consume(service_at(noon), received(at=noon)))[Channel.SMS]
    assert isinstance(sms.message, OutgoingSms)
    assert sms.message.to == "+49301234567"
    assert sms.message.message_id == sms.notification_id
    assert 1 <= sms.message.segments <= 3
    assert WORK_ORDER in sms.message.text
    without_consent = await consume(service_at(noon), received(at=noon, consent=False))
    assert {d.channel for d in without_consent} == {Channel.EMAIL}
    bad_number = await consume(service_at(noon), received(at=noon, phone="12345"))
    assert {d.channel for d in bad_number} == {Channel.EMAIL}


async def test_recorded_preferences_win_over_the_order_for_texts_and_kinds() -> None:
    noon = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    service = service_at(noon)
    preferences = service.notifications._preferences
    assert isinstance(preferences, MemoryPreferences)
    withdrawn = SmsConsent(granted=False, at=noon, source="sms STOP")
    await preferences.record_sms_consent("acme", "+49301234567", withdrawn)
    await preferences.opt_out(
        "acme", "mara@example.com", "contractor_en_route", Channel.EMAIL, at=noon
    )
    assert {d.channel for d in await consume(service, received(at=noon))} == {Channel.EMAIL}
    en_route = lifecycle(WorkOrderEnRoute, noon, eta=noon + timedelta(hours=1))
    assert await consume(service, en_route) == []


async def test_every_mail_carries_a_one_click_unsubscribe_link() -> None:
    noon = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    mail = by_channel(await consume(service_at(noon), received(at=noon)))[Channel.EMAIL].mail
    assert isinstance(mail, OutgoingMail)
    assert mail.unsubscribe_url is not None
    assert mail.unsubscribe_url.startswith("https://links.fixloop.example/unsubscribe/")
    message = build_email(mail)
    assert message["List-Unsubscribe"] == f"<{mail.unsubscribe_url}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.unsubscribe_url in mail.html


async def test_the_contractor_is_told_of_its_offer_and_the_requester_how_to_reach_it() -> None:
    noon = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    desk = Desk(tenant="acme", name="Desk", email="desk@acme.example", locale="fr")
    service = service_at(noon, {"acme": desk})
    await consume(service, received(at=noon))
    contact = ContractorContact(
        email="jobs@kaelte.example", phone="+49 30 4403 2210", timezone="Europe/Berlin"
    )
    offer = AssignmentOffered(
        work_order_id=WORK_ORDER,
        offer_id="o-1",
        contractor_id="c-1",
        contractor_name="Kälte Nord",
        offered_at=noon,
        expires_at=noon + timedelta(minutes=30),
        contact=contact,
    )
    offered = await consume(service, offer)
    assert [(d.template, d.channel, d.recipient, d.locale) for d in offered] == [
        ("offer_made", Channel.EMAIL, "jobs@kaelte.example", "fr")
    ]  # no SMS: the contractor has not agreed to texts
    assigned = lifecycle(
        WorkOrderAssigned,
        noon,
        state=WorkOrderState.ASSIGNED,
        previous_state=WorkOrderState.DISPATCHING,
        contractor_id="c-1",
    )
    told = by_channel(await consume(service, assigned))
    assert told[Channel.EMAIL].template == "contractor_assigned"
    assert "Kälte Nord" in told[Channel.EMAIL].mail.text
    assert "+49 30 4403 2210" in told[Channel.EMAIL].mail.text


async def test_a_credential_warning_reaches_the_contractor_without_an_order() -> None:
    morning = datetime(2026, 6, 1, 6, 30, tzinfo=UTC)  # 08:30 in Berlin
    service = service_at(morning)
    warning = ContractorCredentialExpiring(
        contractor_id="c-9",
        contractor_name="Lift & Co",
        credential_kind="licence",
        credential_number="L-77",
        expires_on=date(2026, 7, 1),
        days_left=30,
        due_at=morning,
        contact=ContractorContact(email="office@lift.example", timezone="Europe/Berlin"),
    )
    (delivery,) = await consume(service, warning)
    assert (delivery.template, delivery.recipient, delivery.work_order_id) == (
        "credential_expiring",
        "office@lift.example",
        None,
    )
    assert "L-77" in delivery.mail.text


async def test_a_fact_that_comes_before_its_order_waits_for_it_and_is_told_then() -> None:
    noon = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    service = service_at(noon)
    offer = AssignmentOffered(
        work_order_id=WORK_ORDER,
        offer_id="o-1",
        contractor_id="c-1",
        contractor_name="Kälte Nord",
        offered_at=noon,
        expires_at=noon + timedelta(minutes=30),
        contact=ContractorContact(email="jobs@kaelte.example"),
    )
    # Read first (the contractors' topic was ahead): nothing to say yet, nothing lost.
    assert await consume(service, offer) == []
    told = await consume(service, received(at=noon))
    assert sorted((d.template, d.recipient) for d in told) == [
        ("offer_made", "jobs@kaelte.example"),
        ("workorder_received", "+49301234567"),
        ("workorder_received", "mara@example.com"),
    ]
    again = await consume(service, received(at=noon))  # a second receipt: nothing kept is left
    assert all(d.template == "workorder_received" for d in again)
