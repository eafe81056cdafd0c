"""One contract, two implementations: the MongoDB unit of work and the in-memory one.

Every test here runs against both — the MongoDB store on the real embedded (or configured) server,
and :class:`fixloop_shared.memory.MemoryStore` — and so does the orders work-order repository
(``MongoWorkOrders`` and ``MemoryWorkOrders``). A use case tested on the in-memory pair can be
trusted on MongoDB because both keep the same promises.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fixloop_orders.adapters.memory import MemoryWorkOrders
from fixloop_orders.adapters.mongo import MongoWorkOrders
from fixloop_orders.adapters.mongo import ensure_indexes as orders_indexes
from fixloop_orders.app.intake import work_order_details
from fixloop_orders.app.ports import (
    ConcurrentUpdateError,
    ExternalOrderConflictError,
    WorkOrderRepository,
)
from fixloop_orders.domain.lifecycle import SYSTEM, Request, Step
from fixloop_orders.domain.work_order import WorkOrder, WorkOrderState
from fixloop_shared.contracts import AssignmentAccepted, WorkOrderSubmitted
from fixloop_shared.envelope import EventEnvelope
from fixloop_shared.kernel import UnitsOfWork
from fixloop_shared.memory import MemoryStore
from fixloop_shared.store import (
    OUTBOX,
    ClaimedAlready,
    MongoClient,
    Store,
    UnitOfWorkClosedError,
)

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Backend:
    name: str
    units: UnitsOfWork
    orders: WorkOrderRepository
    outbox: Callable[[], Any]


@pytest.fixture(params=["memory", "mongo"])
async def backend(
    request: pytest.FixtureRequest, mongo_client: MongoClient, database_name: str
) -> AsyncIterator[Backend]:
    if request.param == "memory":
        memory = MemoryStore("orders")

        async def memory_outbox() -> list[str]:
            return [event.envelope.id for event in memory.outbox]

        yield Backend("memory", memory, MemoryWorkOrders(memory), memory_outbox)
        return
    store = Store(mongo_client, database_name, service="orders")
    await store.ensure_indexes()
    await orders_indexes(store)

    async def mongo_outbox() -> list[str]:
        docs = await store.db[OUTBOX].find({}).sort([("seq", 1)]).to_list()
        return [str(doc["_id"]) for doc in docs]

    yield Backend("mongo", store, MongoWorkOrders(store.db), mongo_outbox)


def accepted(work_order_id: str = "wo-1") -> tuple[EventEnvelope, AssignmentAccepted]:
    payload = AssignmentAccepted(
        work_order_id=work_order_id, offer_id="of-1", contractor_id="c-1", accepted_at=NOW
    )
    envelope = EventEnvelope.new(payload, source="contractors", subject=work_order_id, tenant="t")
    return envelope, payload


class Boom(Exception):  # noqa: N818 - a failure made on purpose
    pass


# -- the unit of work -------------------------------------------------------------------------


async def test_a_claim_is_kept_once_and_a_second_claim_of_it_is_refused(backend: Backend) -> None:
    envelope, _ = accepted()
    async with backend.units.transaction() as uow:
        assert await uow.claim(envelope)
    async with backend.units.transaction() as uow:
        assert not await uow.claim(envelope)
    async with backend.units.transaction() as uow:
        assert await uow.claim(envelope, consumer="orders:other-scope")
    claimed = await backend.units.already_claimed(
        [("orders", envelope.id), ("orders", "never-seen"), ("orders:other-scope", envelope.id)]
    )
    assert claimed == {("orders", envelope.id), ("orders:other-scope", envelope.id)}


async def test_emitted_events_reach_the_outbox_only_when_the_unit_commits(
    backend: Backend,
) -> None:
    envelope, payload = accepted()
    committed: list[str] = []

    async def fail_midway() -> None:
        async with backend.units.transaction() as uow:
            assert await uow.claim(envelope)
            uow.emit(payload, topic="t", key="wo-1", tenant="t")
            uow.after_commit(lambda: committed.append("rolled back"))
            raise Boom

    with pytest.raises(Boom):
        await fail_midway()
    assert await backend.outbox() == []
    assert committed == []
    assert await backend.units.already_claimed([("orders", envelope.id)]) == set()

    async with backend.units.transaction() as uow:
        assert await uow.claim(envelope)
        first = uow.emit(payload, topic="t", key="wo-1", tenant="t")
        second = uow.emit(payload, topic="t", key="wo-1", tenant="t", correlationid="c-9")
        uow.after_commit(lambda: committed.append("committed"))
    assert await backend.outbox() == [first.id, second.id]
    assert second.correlationid == "c-9"
    assert first.source == "orders"
    assert committed == ["committed"]


async def test_a_refused_claim_makes_the_whole_unit_a_no_op(backend: Backend) -> None:
    envelope, payload = accepted()
    async with backend.units.transaction() as uow:
        assert await uow.claim(envelope)
    async with backend.units.transaction() as uow:
        assert not await uow.claim(envelope)
        with pytest.raises(UnitOfWorkClosedError):
            uow.emit(payload, topic="t", key="wo-1", tenant="t")
    assert await backend.outbox() == []


async def test_a_claim_made_at_commit_refuses_the_whole_unit_when_it_was_made_before(
    backend: Backend,
) -> None:
    envelope, payload = accepted()
    committed: list[str] = []
    async with backend.units.transaction() as uow:
        uow.claim_at_commit(envelope)
        first = uow.emit(payload, topic="t", key="wo-1", tenant="t")
    assert await backend.units.already_claimed([("orders", envelope.id)]) == {
        ("orders", envelope.id)
    }

    async def again() -> None:
        async with backend.units.transaction() as uow:
            uow.claim_at_commit(envelope)
            uow.emit(payload, topic="t", key="wo-1", tenant="t")
            uow.after_commit(lambda: committed.append("again"))

    with pytest.raises(ClaimedAlready):
        await again()
    assert await backend.outbox() == [first.id]
    assert committed == []


# -- the orders repository ----------------------------------------------------------------------


def work_order(work_order_id: str, external_id: str = "EXT-1", tenant: str = "acme") -> WorkOrder:
    submission = WorkOrderSubmitted.model_validate_json(
        json.dumps(
            {
                "external_id": external_id,
                "site": {
                    "site_id": "s-1",
                    "name": "ACME Berlin",
                    "address": {
                        "line1": "Invalidenstraße 1",
                        "city": "Berlin",
                        "postal_code": "10115",
                        "country": "DE",
                    },
                    "timezone": "Europe/Berlin",
                },
                "equipment": {"equipment_id": "AC-1", "equipment_class": "hvac"},
                "category": "breakdown",
                "priority": "high",
                "description": "Cooling failed",
                "requester": {"name": "Mara", "email": "mara@example.com", "locale": "de"},
                "reported_at": (NOW - timedelta(hours=1)).isoformat(),
            }
        )
    )
    return WorkOrder.receive(
        work_order_id=work_order_id,
        tenant=tenant,
        source_platform="fieldhub",
        details=work_order_details(submission),
        received_at=NOW,
        submission_id=f"sub-{work_order_id}",
        submission_type=WorkOrderSubmitted.event_type,
    )


async def test_a_work_order_is_stored_once_per_external_key_and_read_by_its_tenant_only(
    backend: Backend,
) -> None:
    order = work_order("wo-1")
    async with backend.units.transaction() as uow:
        await backend.orders.add(uow, order)
    assert await backend.orders.find_id_by_key(None, order.key) == "wo-1"
    found = await backend.orders.get(None, "acme", "wo-1")
    assert found is not None
    assert found.details.external_id == "EXT-1"
    assert await backend.orders.get(None, "globex", "wo-1") is None
    assert await backend.orders.get(None, "acme", "wo-unknown") is None

    with pytest.raises(ExternalOrderConflictError):
        async with backend.units.transaction() as uow:
            await backend.orders.add(uow, work_order("wo-2"))  # same external key
    assert await backend.orders.get(None, "acme", "wo-2") is None
    other_tenant = work_order("wo-3", tenant="globex")
    async with backend.units.transaction() as uow:
        await backend.orders.add(uow, other_tenant)
    assert await backend.orders.find_id_by_key(None, other_tenant.key) == "wo-3"


async def test_saves_are_guarded_by_version_and_a_rolled_back_unit_keeps_nothing(
    backend: Backend,
) -> None:
    async with backend.units.transaction() as uow:
        await backend.orders.add(uow, work_order("wo-1"))
    first = await backend.orders.get(None, "acme", "wo-1")
    stale = await backend.orders.get(None, "acme", "wo-1")
    assert first is not None
    assert stale is not None
    dispatch = Request(Step.START_DISPATCH, SYSTEM, NOW)
    first.take(dispatch, entry_id="evt-1", event_type="t", via="events")
    async with backend.units.transaction() as uow:
        await backend.orders.save(uow, first)
    saved = await backend.orders.get(None, "acme", "wo-1")
    assert saved is not None
    assert saved.version == stale.version + 1
    assert saved.state is WorkOrderState.DISPATCHING

    stale.take(dispatch, entry_id="evt-2", event_type="t", via="events")
    with pytest.raises(ConcurrentUpdateError):
        async with backend.units.transaction() as uow:
            await backend.orders.save(uow, stale)

    async def add_then_fail() -> None:
        async with backend.units.transaction() as uow:
            await backend.orders.add(uow, work_order("wo-9", external_id="EXT-9"))
            raise Boom

    with pytest.raises(Boom):
        await add_then_fail()
    assert await backend.orders.get(None, "acme", "wo-9") is None


async def test_orders_loaded_ahead_are_the_ones_read_later_in_the_unit_and_stay_in_their_tenant(
    backend: Backend,
) -> None:
    async with backend.units.transaction() as uow:
        await backend.orders.add(uow, work_order("wo-1"))
        await backend.orders.add(uow, work_order("wo-2", external_id="EXT-2"))
    async with backend.units.transaction() as uow:
        await backend.orders.load(uow, "acme", ["wo-1", "wo-2", "wo-unknown"])
        first = await backend.orders.get(uow, "acme", "wo-1")
        assert first is not None
        first.take(
            Request(Step.START_DISPATCH, SYSTEM, NOW), entry_id="evt-1", event_type="t", via="x"
        )
        await backend.orders.save(uow, first)
        again = await backend.orders.get(uow, "acme", "wo-1")
        assert again is not None
        assert again.version == first.version  # the saved state, not the state loaded ahead
        assert await backend.orders.get(uow, "globex", "wo-1") is None
        assert await backend.orders.get(uow, "acme", "wo-unknown") is None
    stored = await backend.orders.get(None, "acme", "wo-1")
    assert stored is not None
    assert stored.version == first.version
    untouched = await backend.orders.get(None, "acme", "wo-2")
    assert untouched is not None
    assert untouched.version == 1  # as received
