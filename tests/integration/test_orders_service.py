"""The orders service in-process against the real broker and store.

The service is built by its own wiring (``bootstrap``) with test settings and started like
the real process (start-up hooks, consumers, outbox relay, gRPC server on a free port). Tests
drive it only through its edges: the inbound topic, the other services' events topics, the
``workorders.events`` and dead-letter topics, and the partner gRPC API. Topics are shared by
the whole test session, so every check filters by ids that only this module uses.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fixloop.v1 import work_order_pb2, work_orders_service_pb2, work_orders_service_pb2_grpc
from fixloop_devkit.testing import (
    ConsumedRecord,
    eventually,
    produce,
    read_topic,
    start_in_process,
    unique,
)
from fixloop_orders.adapters.grpc_api import SERVICE_NAME
from fixloop_orders.adapters.mongo import TIMELINE, WORK_ORDERS
from fixloop_orders.adapters.partner_api import PartnerApi
from fixloop_orders.app.queries import (
    OfferPosition,
    OfferView,
    PagePosition,
    WorkOrderFilter,
    WorkOrderView,
)
from fixloop_orders.main import OrdersService, bootstrap
from fixloop_orders.settings import OrdersSettings
from fixloop_shared.contracts import (
    Address,
    AssignmentOffered,
    Category,
    Equipment,
    EventPayload,
    PartLine,
    PartReservation,
    PartsReserved,
    Priority,
    Requester,
    Site,
    WorkOrderSubmitted,
)
from fixloop_shared.envelope import EventEnvelope, binary_headers, encode_payload, to_structured
from fixloop_shared.grpc_edge.principals import (
    PrincipalDirectory,
    PrincipalKind,
    PrincipalSpec,
    hash_api_key,
)
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import OUTBOX, Document
from fixloop_shared.topics import Service, Topic, dead_letter_topic
from fixloop_shared.vocabulary import WorkOrderState

pytestmark = pytest.mark.integration

SOURCE = "marketplace.example"
TENANT_A = "orders-it-acme"
TENANT_B = "orders-it-globex"
KEY_A = "orders-it-acme-key-5c1d"
KEY_B = "orders-it-globex-key-9e7a"
PRINCIPAL_A = PrincipalSpec(
    id="orders-it-acme-erp",
    kind=PrincipalKind.PARTNER,
    tenant=TENANT_A,
    key_hashes=[hash_api_key(KEY_A)],
)
PRINCIPAL_B = PrincipalSpec(
    id="orders-it-globex-erp",
    kind=PrincipalKind.PARTNER,
    tenant=TENANT_B,
    key_hashes=[hash_api_key(KEY_B)],
)
DEAD_LETTERS = dead_letter_topic(Service.ORDERS)


@dataclass
class Running:
    service: OrdersService
    bootstrap: str
    channel: grpc.aio.Channel

    @property
    def db(self) -> Any:
        return self.service.ctx.store.db

    @property
    def stub(self) -> work_orders_service_pb2_grpc.WorkOrdersServiceStub:
        return work_orders_service_pb2_grpc.WorkOrdersServiceStub(self.channel)  # type: ignore[no-untyped-call]

    async def order_by_external_id(self, external_id: str) -> Document | None:
        found: Document | None = await self.db[WORK_ORDERS].find_one({"external_id": external_id})
        return found

    async def get(self, work_order_id: str, key: str = KEY_A) -> work_order_pb2.WorkOrder:
        response: work_orders_service_pb2.GetWorkOrderResponse = await self.stub.GetWorkOrder(
            work_orders_service_pb2.GetWorkOrderRequest(work_order_id=work_order_id),
            metadata=(("x-api-key", key),),
            timeout=5,
        )
        return response.work_order


@pytest.fixture(scope="module")
async def running(kafka_bootstrap: str, mongodb_uri: str) -> AsyncIterator[Running]:
    settings = OrdersSettings(
        mongodb_uri=mongodb_uri,
        database=unique("orders_it").replace("-", "_"),
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        health_port=0,
        grpc_port=0,
        grpc_reflection=False,
        principals=[PRINCIPAL_A, PRINCIPAL_B],
        source_tenants={SOURCE: [TENANT_A, TENANT_B], "erp.example": [TENANT_B]},
        outbox_poll_seconds=0.1,
    )
    service = await start_in_process(lambda: bootstrap(settings))
    port = service.partner_api.bound_port
    assert port is not None
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Running(service=service, bootstrap=kafka_bootstrap, channel=channel)
    finally:
        await channel.close()
        await service.app.stop()


# --------------------------------------------------------------------------- building events


def submitted(external_id: str) -> WorkOrderSubmitted:
    return WorkOrderSubmitted(
        external_id=external_id,
        site=Site(
            site_id="berlin-mitte",
            name="Acme Store Berlin Mitte",
            address=Address(
                line1="Rosenthaler Str. 40", city="Berlin", postal_code="10178", country="DE"
            ),
            timezone="Europe/Berlin",
        ),
        equipment=Equipment(equipment_id="ahu-3", equipment_class="hvac", manufacturer="Trane"),
        category=Category.BREAKDOWN,
        priority=Priority.HIGH,
        description="Air handling unit 3 trips its breaker every few minutes.",
        requester=Requester(name="Mara Keller", email="mara.keller@example.com", locale="de-DE"),
        required_parts=[PartLine(part_number="ORDERS-IT-FILTER", quantity=2)],
        reported_at=datetime(2026, 3, 2, 7, 55, tzinfo=UTC),
    )


def envelope_for(
    payload: EventPayload, *, source: str, tenant: str, subject: str, correlationid: str | None
) -> EventEnvelope:
    return EventEnvelope.new(
        payload, source=source, subject=subject, tenant=tenant, correlationid=correlationid
    )


async def submit_structured(
    bootstrap: str,
    payload: WorkOrderSubmitted,
    *,
    tenant: str = TENANT_A,
    source: str = SOURCE,
    correlationid: str | None = None,
    key: str | None = None,
) -> EventEnvelope:
    envelope = envelope_for(
        payload,
        source=source,
        tenant=tenant,
        subject=payload.external_id,
        correlationid=correlationid,
    )
    value = json.dumps(to_structured(envelope, payload)).encode()
    headers = {"content-type": "application/cloudevents+json"}
    record_key = (key or payload.external_id).encode()
    await produce(bootstrap, Topic.WORKORDERS_INBOUND, value, key=record_key, headers=headers)
    return envelope


async def publish_binary(
    bootstrap: str, topic: Topic, envelope: EventEnvelope, payload: EventPayload, key: str
) -> None:
    await produce(
        bootstrap,
        topic,
        encode_payload(payload),
        key=key.encode(),
        headers=binary_headers(envelope),
    )


def events_of(records: list[ConsumedRecord], work_order_id: str) -> list[ConsumedRecord]:
    return [r for r in records if r.key == work_order_id.encode()]


async def wait_for_order(running: Running, external_id: str) -> Document:
    async def probe() -> Document | None:
        return await running.order_by_external_id(external_id)

    found = await eventually(probe, lambda doc: doc is not None)
    assert found is not None
    return found


async def dead_letter_mentioning(bootstrap: str, needle: str) -> ConsumedRecord:
    def mine(records: list[ConsumedRecord]) -> list[ConsumedRecord]:
        return [r for r in records if needle.encode() in (r.value or b"")]

    records = await read_topic(bootstrap, DEAD_LETTERS, until=lambda rs: bool(mine(rs)), timeout=20)
    found = mine(records)
    assert found, f"no dead letter mentioning {needle}"
    return found[0]


# --------------------------------------------------------------------------- intake


async def test_structured_order_becomes_a_received_work_order_and_event(
    running: Running,
) -> None:
    external_id = unique("EXT-structured")
    correlation = f"corr-{uuid.uuid4().hex}"
    envelope = await submit_structured(
        running.bootstrap, submitted(external_id), correlationid=correlation
    )

    doc = await wait_for_order(running, external_id)
    work_order_id = doc["_id"]
    assert str(uuid.UUID(work_order_id)) == work_order_id
    assert doc["tenant"] == TENANT_A
    assert doc["source_platform"] == SOURCE
    assert doc["state"] == "received"
    assert doc["site"]["address"]["city"] == "Berlin"
    assert doc["required_parts"] == [{"part_number": "ORDERS-IT-FILTER", "quantity": 2}]
    assert "timeline" not in doc

    # The embedded store isolates no session: the order can be seen before its transaction has
    # written the timeline entry it commits with.
    entries = await eventually(
        lambda: running.db[TIMELINE].find({"work_order_id": work_order_id}).to_list(),
        lambda found: len(found) >= 1,
    )
    assert len(entries) == 1
    assert entries[0]["entry_id"] == envelope.id
    assert entries[0]["kind"] == "received"
    assert entries[0]["tenant"] == TENANT_A

    records = await read_topic(
        running.bootstrap,
        Topic.WORKORDERS_EVENTS,
        until=lambda rs: bool(events_of(rs, work_order_id)),
    )
    mine = events_of(records, work_order_id)
    assert len(mine) == 1, [(r.partition, r.offset, r.headers["ce_id"]) for r in mine]
    [event] = mine
    assert event.headers["ce_type"] == "fixloop.workorder.received.v1"
    assert event.headers["ce_source"] == Service.ORDERS
    assert event.headers["ce_tenant"] == TENANT_A
    assert event.headers["ce_subject"] == work_order_id
    assert event.headers["ce_correlationid"] == correlation
    body = event.json()
    assert body["work_order_id"] == work_order_id
    assert body["external_id"] == external_id
    assert body["tenant"] == TENANT_A
    assert body["source_platform"] == SOURCE
    assert body["equipment"]["manufacturer"] == "Trane"
    received_at = datetime.fromisoformat(body["received_at"])
    assert received_at == doc["received_at"]


async def test_the_same_external_order_sent_again_is_one_work_order(running: Running) -> None:
    external_id = unique("EXT-dup")
    payload = submitted(external_id)
    first = await submit_structured(running.bootstrap, payload)
    # the very same record redelivered (same event id) ...
    await produce(
        running.bootstrap,
        Topic.WORKORDERS_INBOUND,
        json.dumps(to_structured(first, payload)).encode(),
        key=external_id.encode(),
    )
    # ... and re-sent with new event ids, once in binary mode
    await submit_structured(running.bootstrap, payload)
    again = envelope_for(
        payload, source=SOURCE, tenant=TENANT_A, subject=external_id, correlationid=None
    )
    await publish_binary(running.bootstrap, Topic.WORKORDERS_INBOUND, again, payload, external_id)
    # same record key, so same partition: once the marker is in, all copies were handled
    marker = unique("EXT-marker")
    await submit_structured(running.bootstrap, submitted(marker), key=external_id)
    await wait_for_order(running, marker)

    orders = await running.db[WORK_ORDERS].find({"external_id": external_id}).to_list()
    assert len(orders) == 1
    work_order_id = orders[0]["_id"]
    timeline = await running.db[TIMELINE].find({"work_order_id": work_order_id}).to_list()
    assert [entry["entry_id"] for entry in timeline] == [first.id]
    outbox = await running.db[OUTBOX].find({"key": work_order_id}).to_list()
    assert [doc["event_type"] for doc in outbox] == ["fixloop.workorder.received.v1"]

    records = await read_topic(
        running.bootstrap,
        Topic.WORKORDERS_EVENTS,
        until=lambda rs: bool(events_of(rs, work_order_id)),
    )
    mine = events_of(records, work_order_id)
    assert len(mine) == 1, [(r.partition, r.offset, r.headers["ce_id"]) for r in mine]


async def test_the_same_external_id_from_another_source_is_another_order(
    running: Running,
) -> None:
    external_id = unique("EXT-shared")
    await submit_structured(running.bootstrap, submitted(external_id), tenant=TENANT_B)
    await submit_structured(
        running.bootstrap, submitted(external_id), tenant=TENANT_B, source="erp.example"
    )

    async def count() -> int:
        found: int = await running.db[WORK_ORDERS].count_documents({"external_id": external_id})
        return found

    await eventually(count, lambda n: n == 2)
    sources = await running.db[WORK_ORDERS].distinct(
        "source_platform", {"external_id": external_id}
    )
    assert sorted(sources) == ["erp.example", SOURCE]


@pytest.mark.parametrize(
    ("source", "tenant"),
    [(SOURCE, "initech"), ("erp.example", TENANT_A), ("rogue.example", TENANT_A)],
)
async def test_order_from_a_source_not_bound_to_its_tenant_is_dead_lettered(
    running: Running, source: str, tenant: str
) -> None:
    external_id = unique("EXT-unbound")
    await submit_structured(running.bootstrap, submitted(external_id), tenant=tenant, source=source)

    letter = await dead_letter_mentioning(running.bootstrap, external_id)
    assert letter.headers["fixloop_dlq_reason"] == "unauthorized"
    assert letter.headers["fixloop_dlq_original_topic"] == Topic.WORKORDERS_INBOUND
    message = letter.headers["fixloop_dlq_message"]
    assert source in message
    assert tenant in message
    assert await running.order_by_external_id(external_id) is None


async def test_an_invalid_order_is_dead_lettered_with_its_reason(running: Running) -> None:
    external_id = unique("EXT-invalid")
    envelope = envelope_for(
        submitted(external_id),
        source=SOURCE,
        tenant=TENANT_A,
        subject=external_id,
        correlationid=None,
    )
    document = to_structured(envelope, submitted(external_id))
    data = document["data"]
    assert isinstance(data, dict)
    data["reported_at"] = "2026-03-02T07:55:00"  # no time zone
    data["priority"] = {"$ne": None}
    await produce(
        running.bootstrap,
        Topic.WORKORDERS_INBOUND,
        json.dumps(document).encode(),
        key=external_id.encode(),
    )

    letter = await dead_letter_mentioning(running.bootstrap, external_id)
    assert letter.headers["fixloop_dlq_reason"] == "schema-violation"
    assert "reported_at" in letter.headers["fixloop_dlq_message"]
    assert "priority" in letter.headers["fixloop_dlq_message"]
    assert await running.order_by_external_id(external_id) is None


# --------------------------------------------------------------------------- timeline via gRPC


async def test_offers_and_reservations_show_in_the_timeline_of_the_tenant_only(
    running: Running,
) -> None:
    external_id = unique("EXT-timeline")
    received = await submit_structured(running.bootstrap, submitted(external_id))
    doc = await wait_for_order(running, external_id)
    work_order_id: str = doc["_id"]
    received_at: datetime = doc["received_at"]

    offered_at = (received_at + timedelta(minutes=1)).replace(second=0, microsecond=0)
    offer = AssignmentOffered(
        work_order_id=work_order_id,
        offer_id=unique("offer"),
        contractor_id="ctr-berlin-klima",
        contractor_name="Berliner Klima Service GmbH",
        offered_at=offered_at,
        expires_at=offered_at + timedelta(minutes=30),
    )
    offer_envelope = envelope_for(
        offer,
        source=Service.CONTRACTORS,
        tenant=TENANT_A,
        subject=work_order_id,
        correlationid=received.correlationid,
    )
    reserved = PartsReserved(
        work_order_id=work_order_id,
        reservations=[
            PartReservation(part_number="FLT-HEPA-24", warehouse_id="wh-berlin", quantity=2)
        ],
        reserved_at=offered_at + timedelta(minutes=2),
    )
    reserved_envelope = envelope_for(
        reserved,
        source=Service.PARTS,
        tenant=TENANT_A,
        subject=work_order_id,
        correlationid=received.correlationid,
    )
    # the same offer in the name of another tenant must not touch the order
    foreign_envelope = envelope_for(
        offer,
        source=Service.CONTRACTORS,
        tenant=TENANT_B,
        subject=work_order_id,
        correlationid=None,
    )

    bootstrap = running.bootstrap
    await publish_binary(bootstrap, Topic.CONTRACTORS_EVENTS, offer_envelope, offer, work_order_id)
    await publish_binary(bootstrap, Topic.CONTRACTORS_EVENTS, offer_envelope, offer, work_order_id)
    await publish_binary(
        bootstrap, Topic.CONTRACTORS_EVENTS, foreign_envelope, offer, work_order_id
    )
    await publish_binary(bootstrap, Topic.PARTS_EVENTS, reserved_envelope, reserved, work_order_id)

    async def timeline() -> list[work_order_pb2.TimelineEntry]:
        return list((await running.get(work_order_id)).timeline)

    # received, dispatching (the first offer's step), the offer and the reservation: the two
    # topics are consumed independently, either may come first
    await eventually(timeline, lambda es: len(es) >= 4)
    # the foreign copy follows the redelivered one on the same partition: once it is
    # dead-lettered, both copies of the offer have been handled
    letter = await dead_letter_mentioning(bootstrap, f'"offer_id":"{offer.offer_id}"')
    assert letter.headers["fixloop_dlq_reason"] == "unknown-work-order"
    assert letter.headers["ce_tenant"] == TENANT_B
    assert TENANT_B in letter.headers["fixloop_dlq_message"]

    order = await running.get(work_order_id)
    # The first offer moved the order to dispatching: a step of its own, when it was learnt.
    assert [e.kind for e in order.timeline].count("dispatching") == 1
    entries = [e for e in order.timeline if e.kind != "dispatching"]
    assert [e.kind for e in entries] == ["received", "assignment_offered", "parts_reserved"]
    assert [e.id for e in entries] == [received.id, offer_envelope.id, reserved_envelope.id]
    assert [e.at.ToDatetime(tzinfo=UTC) for e in entries] == [
        received_at,
        offered_at,
        offered_at + timedelta(minutes=2),
    ]
    _, offered_entry, reserved_entry = entries
    expires_at = offered_at + timedelta(minutes=30)
    # The clock time alone on the day of the offer; with the date when the expiry is on the next.
    same_day = expires_at.date() == offered_at.date()
    expiry = expires_at.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")
    assert offered_entry.summary == (
        f"Offered to Berliner Klima Service GmbH (offer expires {expiry} UTC)"
    )
    assert offered_entry.event_type == "fixloop.assignment.offered.v1"
    assert offered_entry.details["contractor_id"] == "ctr-berlin-klima"
    assert reserved_entry.summary == "Reserved 2 x FLT-HEPA-24 from wh-berlin"
    assert reserved_entry.event_type == "fixloop.parts.reserved.v1"
    assert order.state == work_order_pb2.WORK_ORDER_STATE_DISPATCHING
    assert order.external_id == external_id
    assert order.requester.email == "mara.keller@example.com"
    assert order.updated_at.ToDatetime(tzinfo=UTC) >= received_at

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.get(work_order_id, key=KEY_B)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_unknown_work_order_is_not_found_and_health_is_serving(running: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.get(str(uuid.uuid4()))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    health = health_pb2_grpc.HealthStub(running.channel)
    for name in ("", SERVICE_NAME):
        response = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


class NoOrders:
    async def get_work_order(self, tenant: str, work_order_id: str) -> WorkOrderView | None:
        return None

    async def list_work_orders(
        self, tenant: str, wanted: WorkOrderFilter, *, after: PagePosition | None, limit: int
    ) -> list[WorkOrderView]:
        return []

    async def list_jobs(
        self,
        contractor_id: str,
        states: frozenset[WorkOrderState],
        *,
        after: PagePosition | None,
        limit: int,
    ) -> list[WorkOrderView]:
        return []

    async def list_offers(
        self, contractor_id: str, *, open_only: bool, after: OfferPosition | None, limit: int
    ) -> list[OfferView]:
        return []


async def test_grpc_health_follows_readiness() -> None:
    problems: list[str | None] = ["store unreachable: ServerSelectionTimeoutError"]

    async def probe() -> str | None:
        return problems[-1]

    api = PartnerApi(
        NoOrders(),
        host="127.0.0.1",
        port=0,
        principals=PrincipalDirectory.of([PRINCIPAL_A]),
        reflection=False,
        stop_grace_seconds=0.5,
        readiness=probe,
        readiness_interval_seconds=0.05,
    )
    await api.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{api.bound_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)

            async def status() -> int:
                request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
                response = await health.Check(request, timeout=5)
                return int(response.status)

            await eventually(status, lambda s: s == health_pb2.HealthCheckResponse.NOT_SERVING)
            with pytest.raises(RuntimeError):
                await api.check_serving()
            problems.append(None)
            await eventually(status, lambda s: s == health_pb2.HealthCheckResponse.SERVING)
            await api.check_serving()
    finally:
        await api.stop()
    with pytest.raises(RuntimeError):
        await api.check_serving()
