"""Every service through its own composition root, in memory: no broker, no store, no relay.

``bootstrap(settings, uow=MemoryStore(service), clock=...)`` wires the service's consumers and use
cases onto the in-memory unit of work and repositories. Each test applies an event the way the
kernel applies a record — decoded from its wire form with the consumer's registry, the envelope
checks, then the consumer's own handler in one unit of work claimed in the consumer's scope — and
checks the state, the outgoing events and their times (the injected clock's); the same event again
changes nothing.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, TypeVar

import pytest

from fixloop_contractors.app.dispatch import dispatch_request
from fixloop_contractors.domain.model import Contractor, Credential, CredentialKind, ServiceRegion
from fixloop_contractors.domain.offers import Offer
from fixloop_contractors.main import bootstrap as contractors_bootstrap
from fixloop_contractors.settings import ContractorsSettings
from fixloop_notifications.adapters.memory import MemoryDeliveryLog, MemoryMailRelay
from fixloop_notifications.domain.delivery import DeliveryStatus
from fixloop_notifications.main import bootstrap as notifications_bootstrap
from fixloop_notifications.main import delivery_lease
from fixloop_notifications.settings import NotificationsSettings
from fixloop_orders.main import bootstrap as orders_bootstrap
from fixloop_orders.settings import OrdersSettings
from fixloop_parts.adapters.memory import MemoryReservationLog, MemoryStock
from fixloop_parts.app import StockCountFile, import_stock_count
from fixloop_parts.domain import StockLevel
from fixloop_parts.main import bootstrap as parts_bootstrap
from fixloop_parts.settings import PartsSettings
from fixloop_shared.bus import check_tenant
from fixloop_shared.contracts import (
    AssignmentOffered,
    AssignmentWithdrawn,
    ContractorScorecardUpdated,
    EventPayload,
    Milestone,
    NotificationSent,
    PartLine,
    PartReservation,
    PartsBackordered,
    PartsReserved,
    SlaMet,
    SlaStopped,
    SlaWarning,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderReceived,
    WorkOrderSubmitted,
)
from fixloop_shared.envelope import (
    Event,
    EventEnvelope,
    binary_headers,
    decode_event,
    encode_payload,
)
from fixloop_shared.errors import UnauthorizedSource
from fixloop_shared.kernel import EventConsumer, UnitOfWork, UnitsOfWork, apply_event
from fixloop_shared.memory import MemoryStore
from fixloop_shared.runtime import ServiceContext
from fixloop_shared.store import Store
from fixloop_shared.topics import Service, Topic
from fixloop_shared.vocabulary import Priority
from fixloop_sla.adapters.memory import MemoryOrderClocksRepository
from fixloop_sla.main import bootstrap as sla_bootstrap
from fixloop_sla.settings import SlaSettings

NOON = datetime(2026, 3, 2, 12, 0, 0, 250_000, tzinfo=UTC)
"""The injected clock's time (to the millisecond, the precision the stores keep)."""
WORK_ORDER_ID = "6f1d2a52-8c1e-4b8e-9a57-2f0c4b1d9e01"
FIELDHUB = "https://fieldhub.example.com/orders"

M = TypeVar("M", bound=EventPayload)


class ComposedService(Protocol):
    ctx: ServiceContext
    units: UnitsOfWork
    consumers: list[EventConsumer]


class FixedClock:
    """The time every use case of a service reads; tests move it on."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def consumers_for(
    service: ComposedService, topic: Topic, payload: EventPayload
) -> list[EventConsumer]:
    """The consumers of ``service`` that read ``topic`` and handle ``payload``'s type."""
    found = [c for c in service.consumers if topic in c.topics and type(payload) in c.handlers]
    assert found
    return found


async def consume(
    service: ComposedService, topic: Topic, event: Event[Any], *, now: datetime
) -> bool:
    """Apply ``event`` as the kernel applies one record of ``topic``, in each consumer (group)
    that handles its type, one after the other; False if every one had claimed it already (a
    redelivery), which leaves no trace."""
    applied = [
        await consume_in(consumer, service, event, now=now)
        for consumer in consumers_for(service, topic, event.payload)
    ]
    return any(applied)


async def consume_in(
    consumer: EventConsumer, service: ComposedService, event: Event[Any], *, now: datetime
) -> bool:
    """Apply ``event`` as ``consumer`` does; False if it had claimed it already."""
    received = decode_event(
        encode_payload(event.payload),
        binary_headers(event.envelope),
        consumer.registry,
        accept_structured=consumer.accept_structured,
        now=now,
    )
    check_tenant(received)
    for check in consumer.checks:
        check(received)
    handler = consumer.handlers[type(received.payload)]

    async def handled(event: Event[EventPayload], uow: UnitOfWork) -> bool:
        await handler(event, uow)
        return True

    scope = consumer.scope_of(received.envelope, service.units.service)
    return await apply_event(service.units, received, handled, scope=scope) is True


def event_of(
    payload: EventPayload, *, source: str, tenant: str = "acme", at: datetime = NOON
) -> Event[Any]:
    subject = str(getattr(payload, "work_order_id", None) or getattr(payload, "external_id", ""))
    envelope = EventEnvelope.new(payload, source=source, subject=subject, tenant=tenant, time=at)
    return Event(envelope, payload)


def order_details(**changes: object) -> dict[str, object]:
    details: dict[str, object] = {
        "external_id": "FH-20931",
        "site": {
            "site_id": "berlin-mitte",
            "name": "Acme Store Berlin Mitte",
            "address": {
                "line1": "Rosenthaler Str. 40",
                "city": "Berlin",
                "postal_code": "10178",
                "country": "DE",
            },
            "timezone": "Europe/Berlin",
        },
        "equipment": {"equipment_id": "ahu-3", "equipment_class": "hvac"},
        "category": "breakdown",
        "priority": "high",
        "description": "Air handling unit 3 trips its breaker.",
        "requester": {"name": "Mara Keller", "email": "mara@example.com", "locale": "de-DE"},
        "required_parts": [{"part_number": "FLT-HEPA-24", "quantity": 2}],
    }
    details.update(changes)
    return details


def as_sent(model: type[M], fields: dict[str, object]) -> M:
    """``fields`` as the contract reads them off the wire (JSON: enums and times as text)."""
    return model.model_validate_json(json.dumps(fields, default=datetime.isoformat))


def submitted_order(**changes: object) -> WorkOrderSubmitted:
    return as_sent(WorkOrderSubmitted, order_details(**changes))


def received_order(
    work_order_id: str = WORK_ORDER_ID, *, received_at: datetime, **changes: object
) -> WorkOrderReceived:
    return as_sent(
        WorkOrderReceived,
        {
            **order_details(**changes),
            "work_order_id": work_order_id,
            "tenant": "acme",
            "source_platform": FIELDHUB,
            "received_at": received_at,
        },
    )


def outgoing(store: MemoryStore) -> list[tuple[str, str, EventPayload]]:
    return [(event.topic, event.key, event.payload) for event in store.outbox]


# -- the same shape everywhere ------------------------------------------------------------------

BOOTSTRAPS: dict[str, Callable[..., ComposedService]] = {
    Service.ORDERS: orders_bootstrap,
    Service.CONTRACTORS: contractors_bootstrap,
    Service.PARTS: parts_bootstrap,
    Service.SLA: sla_bootstrap,
    Service.NOTIFICATIONS: notifications_bootstrap,
}


@pytest.mark.parametrize("name", list(BOOTSTRAPS))
def test_without_units_of_work_a_service_consumes_on_its_mongodb_store(name: str) -> None:
    service = BOOTSTRAPS[name]()
    assert isinstance(service.units, Store)
    assert service.units is service.ctx.store
    assert service.ctx.units is service.ctx.store
    assert service.consumers


@pytest.mark.parametrize("name", list(BOOTSTRAPS))
def test_with_a_memory_store_a_service_consumes_on_it(name: str) -> None:
    store = MemoryStore(name)
    service = BOOTSTRAPS[name](None, uow=store, clock=FixedClock(NOON))
    assert service.units is store
    assert service.ctx.units is store
    assert service.consumers


class ElsewhereUnits:
    """Units of work that are neither MongoDB's nor in memory."""

    service = "elsewhere"

    def transaction(self) -> Any:
        raise NotImplementedError

    async def already_claimed(self, claims: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        return set()


@pytest.mark.parametrize("name", list(BOOTSTRAPS))
def test_memory_repositories_need_a_memory_store(name: str) -> None:
    with pytest.raises(TypeError, match="MemoryStore"):
        BOOTSTRAPS[name](None, uow=ElsewhereUnits())


# -- orders ---------------------------------------------------------------------------------------


async def test_orders_intake_and_timeline_in_memory() -> None:
    store = MemoryStore(Service.ORDERS)
    clock = FixedClock(NOON)
    service = orders_bootstrap(
        OrdersSettings(source_tenants={FIELDHUB: ["acme"]}), uow=store, clock=clock
    )
    submitted = event_of(submitted_order(), source=FIELDHUB)

    assert await consume(service, Topic.WORKORDERS_INBOUND, submitted, now=NOON)

    [(topic, key, payload)] = outgoing(store)
    assert isinstance(payload, WorkOrderReceived)
    assert (topic, key) == (Topic.WORKORDERS_EVENTS, payload.work_order_id)
    assert payload.received_at == NOON
    assert (payload.tenant, payload.source_platform, payload.external_id) == (
        "acme",
        FIELDHUB,
        "FH-20931",
    )
    [announced] = store.outbox
    assert announced.envelope.source == Service.ORDERS
    assert announced.envelope.correlationid == submitted.envelope.correlationid
    view = await service.queries.get_work_order("acme", payload.work_order_id)
    assert view is not None
    assert (view.state, view.received_at, view.updated_at) == ("received", NOON, NOON)
    assert [entry.entry_id for entry in view.timeline] == [submitted.envelope.id]
    assert await service.queries.get_work_order("other-tenant", payload.work_order_id) is None

    before = copy.deepcopy(store.state)
    assert not await consume(service, Topic.WORKORDERS_INBOUND, submitted, now=NOON)
    assert store.state == before

    # What the contractors report goes into the timeline, recorded at the clock's time.
    clock.now = NOON + timedelta(minutes=3)
    offered = event_of(
        AssignmentOffered(
            work_order_id=payload.work_order_id,
            offer_id="of-1",
            contractor_id="ctr-berliner-klima",
            contractor_name="Berliner Klima Service GmbH",
            offered_at=NOON + timedelta(minutes=1),
            expires_at=NOON + timedelta(minutes=31),
        ),
        source=Service.CONTRACTORS,
        at=clock.now,
    )
    assert await consume(service, Topic.CONTRACTORS_EVENTS, offered, now=clock.now)
    view = await service.queries.get_work_order("acme", payload.work_order_id)
    assert view is not None
    # The first offer means dispatch is under way: the order moves when it learns of it.
    assert (view.state, view.version) == ("dispatching", 2)
    assert view.updated_at == NOON + timedelta(minutes=3)
    assert [entry.kind for entry in view.timeline] == [
        "received",
        "assignment_offered",
        "dispatching",
    ]
    assert view.timeline[1].entry_id == offered.envelope.id
    assert [event.envelope.type for event in store.outbox] == [
        "fixloop.workorder.received.v1",
        "fixloop.workorder.dispatching.v1",
    ]

    before = copy.deepcopy(store.state)
    assert not await consume(service, Topic.CONTRACTORS_EVENTS, offered, now=clock.now)
    assert store.state == before


async def test_orders_refuses_a_platform_not_bound_to_the_tenant_in_memory() -> None:
    store = MemoryStore(Service.ORDERS)
    service = orders_bootstrap(
        OrdersSettings(source_tenants={FIELDHUB: ["acme"]}), uow=store, clock=FixedClock(NOON)
    )
    elsewhere = event_of(submitted_order(), source=FIELDHUB, tenant="globex")
    with pytest.raises(UnauthorizedSource):
        await consume(service, Topic.WORKORDERS_INBOUND, elsewhere, now=NOON)
    assert store.outbox == []
    assert store.state.collection("work_orders") == {}


# -- contractors ----------------------------------------------------------------------------------


def contractor(contractor_id: str, name: str, *prefixes: str) -> Contractor:
    return Contractor(
        contractor_id=contractor_id,
        name=name,
        email=f"dispatch@{contractor_id}.example.com",
        timezone="Europe/Berlin",
        tenants=frozenset({"acme"}),
        skills=frozenset({"hvac"}),
        regions=(ServiceRegion("DE", prefixes),),
        credentials=(
            Credential(CredentialKind.LIABILITY_INSURANCE, "LI-1", expires_on=date(2027, 1, 31)),
        ),
    )


async def test_contractors_dispatch_in_memory() -> None:
    store = MemoryStore(Service.CONTRACTORS)
    settings = ContractorsSettings(offer_ttl_seconds=1800)
    service = contractors_bootstrap(settings, uow=store, clock=FixedClock(NOON))
    counts = await service.registry.upsert(
        [
            contractor("ctr-berliner-klima", "Berliner Klima Service GmbH", "101"),
            contractor("ctr-deutschland-kaelte", "Deutschland Kälte AG"),
        ]
    )
    assert (counts.created, counts.updated, counts.unchanged) == (2, 0, 0)
    received = event_of(received_order(received_at=NOON), source=Service.ORDERS)

    assert await consume(service, Topic.WORKORDERS_EVENTS, received, now=NOON)

    [(topic, key, payload)] = outgoing(store)
    assert (topic, key) == (Topic.CONTRACTORS_EVENTS, WORK_ORDER_ID)
    assert isinstance(payload, AssignmentOffered)
    assert payload.contractor_id == "ctr-berliner-klima"  # the most local one
    assert payload.offered_at == NOON
    assert payload.expires_at == NOON + timedelta(minutes=30)
    candidates = await service.registry.list_contractors(tenant="acme")
    load = {c.contractor.contractor_id: c.open_offers for c in candidates}
    assert load == {"ctr-berliner-klima": 1, "ctr-deutschland-kaelte": 0}

    before = copy.deepcopy(store.state)
    assert not await consume(service, Topic.WORKORDERS_EVENTS, received, now=NOON)
    assert store.state == before


async def test_contractors_assignment_in_memory_withdraws_the_other_offer_once() -> None:
    store = MemoryStore(Service.CONTRACTORS)
    service = contractors_bootstrap(ContractorsSettings(), uow=store, clock=FixedClock(NOON))
    await service.registry.upsert(
        [
            contractor("ctr-berliner-klima", "Berliner Klima Service GmbH", "101"),
            contractor("ctr-deutschland-kaelte", "Deutschland Kälte AG"),
        ]
    )
    order = received_order(received_at=NOON)
    assert await consume(
        service, Topic.WORKORDERS_EVENTS, event_of(order, source=Service.ORDERS), now=NOON
    )
    [(_, _, offered)] = outgoing(store)
    assert isinstance(offered, AssignmentOffered)
    # A second round's offer of the order, written through the service's own ledger.
    second = Offer.open(
        offer_id="offer-round-2",
        request=dispatch_request(order),
        contractor_id="ctr-deutschland-kaelte",
        at=NOON,
        ttl=timedelta(minutes=30),
        dispatch_round=2,
    )
    async with store.transaction() as uow:
        await service.ledger.within(uow).save_offer(
            second, dispatch_request(order), Priority.NORMAL, correlationid="test"
        )

    assigned_at = NOON + timedelta(minutes=7)
    assigned = event_of(
        as_sent(
            WorkOrderAssigned,
            {
                "work_order_id": WORK_ORDER_ID,
                "external_id": "FH-20931",
                "source_platform": FIELDHUB,
                "state": "assigned",
                "previous_state": "dispatching",
                "occurred_at": assigned_at,
                "actor": {"kind": "contractor", "id": "ctr-deutschland-kaelte"},
                "via": "grpc",
                "version": 3,
                "offer_id": second.offer_id,
                "contractor_id": "ctr-deutschland-kaelte",
            },
        ),
        source=Service.ORDERS,
        at=assigned_at,
    )
    assert await consume(service, Topic.WORKORDERS_EVENTS, assigned, now=assigned_at)

    # Dispatch withdraws the other offer; the contractors' performance consumer counts the
    # acceptance in the new contractor's scorecard (and its score goes on its profile).
    [(topic, key, withdrawn), (_, card_key, card)] = outgoing(store)[1:]
    assert (card_key, type(card)) == ("ctr-deutschland-kaelte", ContractorScorecardUpdated)
    assert isinstance(card, ContractorScorecardUpdated)
    assert (card.samples.offers_answered, card.measures.acceptance_rate) == (1, 1.0)
    assert card.score is None  # one offer is too few to judge by (neutral in ranking)
    assert (topic, key) == (Topic.CONTRACTORS_EVENTS, WORK_ORDER_ID)
    assert withdrawn == AssignmentWithdrawn(
        work_order_id=WORK_ORDER_ID,
        offer_id=offered.offer_id,
        contractor_id="ctr-berliner-klima",
        reason="assigned to another contractor",
        withdrawn_at=assigned_at,
    )
    load = {
        c.contractor.contractor_id: (c.open_offers, c.open_jobs)
        for c in await service.registry.list_contractors(tenant="acme")
    }
    assert load == {"ctr-berliner-klima": (0, 0), "ctr-deutschland-kaelte": (0, 1)}

    before = copy.deepcopy(store.state)
    assert not await consume(service, Topic.WORKORDERS_EVENTS, assigned, now=assigned_at)
    assert store.state == before


# -- parts ----------------------------------------------------------------------------------------


async def test_parts_reservation_in_memory() -> None:
    store = MemoryStore(Service.PARTS)
    clock = FixedClock(NOON)
    service = parts_bootstrap(PartsSettings(), uow=store, clock=clock)
    assert isinstance(service.stock, MemoryStock)
    assert isinstance(service.log, MemoryReservationLog)
    count = StockCountFile.model_validate(
        {
            "warehouses": [
                {"warehouse_id": "ber-1", "name": "Berlin Tempelhof", "country": "DE"},
                {"warehouse_id": "ams-1", "name": "Amsterdam West", "country": "NL"},
            ],
            "stock": [
                {"warehouse_id": "ber-1", "part_number": "FLT-HEPA-24", "quantity": 1},
                {"warehouse_id": "ams-1", "part_number": "FLT-HEPA-24", "quantity": 5},
            ],
        }
    )
    summary = await import_stock_count(service.units, service.stock, count, clock=clock)
    assert summary.new_lines == 2
    received = event_of(
        received_order(
            received_at=NOON,
            required_parts=[
                {"part_number": "FLT-HEPA-24", "quantity": 2},
                {"part_number": "BELT-A12", "quantity": 1},
            ],
        ),
        source=Service.ORDERS,
    )

    assert await consume(service, Topic.WORKORDERS_EVENTS, received, now=NOON)

    [(topic, key, payload)] = outgoing(store)
    assert (topic, key) == (Topic.PARTS_EVENTS, WORK_ORDER_ID)
    assert isinstance(payload, PartsBackordered)
    assert payload.decided_at == NOON
    assert payload.reservations == [
        PartReservation(part_number="FLT-HEPA-24", warehouse_id="ber-1", quantity=1),
        PartReservation(part_number="FLT-HEPA-24", warehouse_id="ams-1", quantity=1),
    ]
    assert payload.missing == [PartLine(part_number="BELT-A12", quantity=1)]
    assert service.stock.level("ber-1", "FLT-HEPA-24") == StockLevel("ber-1", "FLT-HEPA-24", 1, 1)
    assert service.stock.level("ams-1", "FLT-HEPA-24") == StockLevel("ams-1", "FLT-HEPA-24", 5, 1)
    decision = service.log.decision(WORK_ORDER_ID)
    assert decision is not None
    assert (decision["status"], decision["decided_at"]) == ("backordered", NOON)

    before = copy.deepcopy(store.state)
    assert not await consume(service, Topic.WORKORDERS_EVENTS, received, now=NOON)
    assert store.state == before

    # The use case's own entry point opens its unit of work on the same store.
    clock.now = NOON + timedelta(minutes=5)
    second = event_of(
        received_order(
            "wo-2",
            received_at=clock.now,
            required_parts=[{"part_number": "FLT-HEPA-24", "quantity": 4}],
        ),
        source=Service.ORDERS,
        at=clock.now,
    )
    outcome = await service.reservations.work_order_received(second)
    assert outcome is not None
    assert isinstance(outcome.event, PartsReserved)
    assert outcome.event.reserved_at == NOON + timedelta(minutes=5)
    assert service.stock.level("ams-1", "FLT-HEPA-24") == StockLevel("ams-1", "FLT-HEPA-24", 5, 5)
    assert [event.payload for event in store.outbox][1:] == [outcome.event]
    assert await service.reservations.work_order_received(second) is None


# -- sla ------------------------------------------------------------------------------------------


def lifecycle_step(
    model: type[M],
    *,
    occurred_at: datetime,
    state: str,
    previous_state: str,
    version: int = 3,
    **fields: object,
) -> M:
    """A lifecycle event of the orders service about ``WORK_ORDER_ID``, as read off the wire."""
    return as_sent(
        model,
        {
            "work_order_id": WORK_ORDER_ID,
            "external_id": "FH-20931",
            "source_platform": FIELDHUB,
            "state": state,
            "previous_state": previous_state,
            "occurred_at": occurred_at,
            "actor": {"kind": "system", "id": "fixloop"},
            "via": "events",
            "version": version,
            **fields,
        },
    )


def sla_step(
    model: type[M], at: datetime, state: str, previous: str, version: int, **fields: object
) -> Event[Any]:
    payload = lifecycle_step(
        model, occurred_at=at, state=state, previous_state=previous, version=version, **fields
    )
    return event_of(payload, source=Service.ORDERS, at=at)


async def test_sla_clocks_in_memory_warn_when_due_are_met_once_and_stop_on_cancellation() -> None:
    store = MemoryStore(Service.SLA)
    clock = FixedClock(NOON)
    service = sla_bootstrap(SlaSettings(), uow=store, clock=clock)  # the standard policy
    repository = service.repository
    assert isinstance(repository, MemoryOrderClocksRepository)
    received = event_of(received_order(received_at=NOON), source=Service.ORDERS)

    assert await consume(service, Topic.WORKORDERS_EVENTS, received, now=NOON)
    order = repository.order(WORK_ORDER_ID)
    assert order is not None
    assert sorted(order.open) == [("dispatch_confirmation", "running"), ("repair", "running")]
    assert store.outbox == []  # nothing is due yet

    before = copy.deepcopy(store.state)
    assert not await consume(service, Topic.WORKORDERS_EVENTS, received, now=NOON)
    assert store.state == before

    # The dispatch warning is due an hour before the 2-hour deadline, once.
    clock.now = NOON + timedelta(hours=1, seconds=2)
    assert await service.engine.settle_due([WORK_ORDER_ID]) == {
        WORK_ORDER_ID: NOON + timedelta(hours=2)
    }
    [(topic, key, warning)] = outgoing(store)
    assert (topic, key) == (Topic.SLA_EVENTS, WORK_ORDER_ID)
    assert isinstance(warning, SlaWarning)
    assert (warning.milestone, warning.fired_at, warning.late) == (
        Milestone.DISPATCH_CONFIRMATION,
        clock.now,
        False,
    )
    await service.engine.settle_due([WORK_ORDER_ID])
    assert len(store.outbox) == 1

    # Only the orders service may move an order's clocks.
    assigned_at = NOON + timedelta(hours=1, minutes=5)
    assigned = sla_step(
        WorkOrderAssigned, assigned_at, "assigned", "dispatching", 3, contractor_id="ctr-1"
    )
    forged = event_of(assigned.payload, source=Service.CONTRACTORS)
    with pytest.raises(UnauthorizedSource):
        await consume(service, Topic.WORKORDERS_EVENTS, forged, now=clock.now)

    clock.now = assigned_at
    assert await consume(service, Topic.WORKORDERS_EVENTS, assigned, now=clock.now)
    met = outgoing(store)[-1][2]
    assert isinstance(met, SlaMet)
    assert (met.milestone, met.stopped_at) == (Milestone.DISPATCH_CONFIRMATION, assigned_at)
    order = repository.order(WORK_ORDER_ID)
    assert order is not None
    assert sorted(order.open) == [("arrival", "running"), ("repair", "running")]
    assert not await consume(service, Topic.WORKORDERS_EVENTS, assigned, now=clock.now)
    assert len(store.outbox) == 2

    # A cancellation stops every open cycle without its milestone, once.
    cancelled_at = assigned_at + timedelta(minutes=10)
    clock.now = cancelled_at
    cancelled = sla_step(
        WorkOrderCancelled, cancelled_at, "cancelled", "assigned", 4, reason="duplicate order"
    )
    assert await consume(service, Topic.WORKORDERS_EVENTS, cancelled, now=clock.now)
    stops = [payload for _, _, payload in outgoing(store)[2:]]
    assert all(isinstance(stop, SlaStopped) for stop in stops)
    assert sorted(stop.milestone for stop in stops if isinstance(stop, SlaStopped)) == [
        Milestone.ARRIVAL,
        Milestone.REPAIR,
    ]
    assert {stop.reason for stop in stops if isinstance(stop, SlaStopped)} == {"duplicate order"}
    order = repository.order(WORK_ORDER_ID)
    assert order is not None
    assert order.open == ()
    clock.now = NOON + timedelta(days=5)
    await service.engine.settle_due([WORK_ORDER_ID])
    assert len(store.outbox) == 4


# -- notifications --------------------------------------------------------------------------------


async def test_notifications_record_and_deliver_in_memory() -> None:
    store = MemoryStore(Service.NOTIFICATIONS)
    clock = FixedClock(NOON)
    settings = NotificationsSettings(mail_from="Fixloop <no-reply@fixloop.example.com>")
    service = notifications_bootstrap(settings, uow=store, clock=clock)
    deliveries, relay = service.deliveries, service.sender.mail
    assert isinstance(deliveries, MemoryDeliveryLog)
    assert isinstance(relay, MemoryMailRelay)
    received = event_of(received_order(received_at=NOON), source=Service.ORDERS)

    assert await consume(service, Topic.WORKORDERS_EVENTS, received, now=NOON)

    [pending] = deliveries.pending()
    assert (pending.work_order_id, pending.recipient) == (WORK_ORDER_ID, "mara@example.com")
    assert (pending.created_at, pending.mail.date, pending.event_id) == (
        NOON,
        NOON,
        received.envelope.id,
    )
    assert store.outbox == []  # the outcome is reported once the mail is sent
    assert relay.sent == []

    before = copy.deepcopy(store.state)
    assert not await consume(service, Topic.WORKORDERS_EVENTS, received, now=NOON)
    assert store.state == before

    # Due work, fired by the use case: lease the pending delivery and deliver it.
    clock.now = NOON + timedelta(seconds=30)
    worker = service.worker
    leased = await deliveries.claim_next(
        owner=worker.owner, now=clock.now, lease_until=clock.now + delivery_lease(settings)
    )
    assert leased == pending
    assert (
        await deliveries.claim_next(
            owner="another-pod", now=clock.now, lease_until=clock.now + timedelta(minutes=1)
        )
        is None
    )
    await worker.deliver(leased)

    assert [mail.message_id for mail in relay.sent] == [pending.mail.message_id]
    [(topic, key, sent)] = outgoing(store)
    assert (topic, key) == (Topic.NOTIFICATIONS_EVENTS, WORK_ORDER_ID)
    assert isinstance(sent, NotificationSent)
    assert (sent.notification_id, sent.sent_at, sent.attempts) == (
        pending.notification_id,
        clock.now,
        1,
    )
    delivered = await deliveries.get(pending.notification_id)
    assert delivered is not None
    assert (delivered.status, delivered.attempts) == (DeliveryStatus.SENT, 1)
    assert [entry["outcome"] for entry in deliveries.attempts(pending.notification_id)] == ["sent"]
    assert deliveries.pending() == []

    # Delivering it again (a second worker pass) sends nothing and reports nothing.
    await worker.deliver(leased)
    assert len(relay.sent) == 1
    assert len(store.outbox) == 1
