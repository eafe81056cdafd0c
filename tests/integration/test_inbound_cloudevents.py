"""Spec-valid CloudEvents from external platforms become work orders via the real inbound topic.

The orders service runs in-process against the embedded broker and store (as in
``test_orders_service``), with its source platforms bound by URI-reference. Records are produced as
a platform would produce them with any CloudEvents SDK: binary mode with only the required
attributes plus ``tenant``, a JSON content type with parameters, no ``subject``, ``correlationid``
or ``time``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from fixloop_devkit.testing import ConsumedRecord, eventually, produce, read_topic, unique
from fixloop_orders.adapters.mongo import WORK_ORDERS
from fixloop_orders.app.intake import intake_consumer
from fixloop_orders.main import OrdersService, bootstrap
from fixloop_orders.settings import OrdersSettings
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import Document
from fixloop_shared.topics import Service, Topic, dead_letter_topic

pytestmark = pytest.mark.integration

HTTPS_SOURCE = "https://fieldhub.example.com/orders"
URN_SOURCE = "urn:fixloop:fieldhub"
URN_A = "urn:ce-it:a"
URN_A_B = "urn:ce-it:a:b"
TENANT = "ce-it-acme"
OTHER_TENANT = "ce-it-globex"
DEAD_LETTERS = dead_letter_topic(Service.ORDERS)


@pytest.fixture(scope="module")
async def orders(kafka_bootstrap: str, mongodb_uri: str) -> AsyncIterator[OrdersService]:
    settings = OrdersSettings(
        mongodb_uri=mongodb_uri,
        database=unique("inbound_ce_it").replace("-", "_"),
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        health_port=0,
        grpc_port=0,
        grpc_reflection=False,
        source_tenants={
            HTTPS_SOURCE: [TENANT],
            URN_SOURCE: [OTHER_TENANT],
            URN_A: [TENANT],
            URN_A_B: [TENANT],
        },
        outbox_poll_seconds=0.1,
    )
    service = bootstrap(settings)
    await service.app.start()
    try:
        yield service
    finally:
        await service.app.stop()


def order_data(external_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "site": {
            "site_id": "hh-altona-3",
            "name": "Kühlhaus Altona",
            "address": {
                "line1": "Große Elbstraße 145",
                "city": "Hamburg",
                "postal_code": "22767",
                "country": "DE",
            },
            "timezone": "Europe/Berlin",
        },
        "equipment": {"equipment_id": "cold-room-2", "equipment_class": "refrigeration"},
        "category": "breakdown",
        "priority": "emergency",
        "description": "Cold room 2 at 9 °C and rising; compressor does not start.",
        "requester": {"name": "Jonas Weber", "email": "jonas.weber@example.com", "locale": "de"},
        **changes,
    }


def minimal_headers(source: str, tenant: str, event_id: str | None = None) -> dict[str, str]:
    """Binary mode with only what the spec requires, plus the ``tenant`` extension."""
    return {
        "ce_specversion": "1.0",
        "ce_id": event_id or str(uuid.uuid4()),
        "ce_type": "fixloop.workorder.submitted.v1",
        "ce_source": source,
        "ce_tenant": tenant,
        "content-type": "application/json; charset=utf-8",
    }


async def send_binary(
    bootstrap: str, data: dict[str, Any], headers: dict[str, str], key: str
) -> None:
    await produce(
        bootstrap,
        Topic.WORKORDERS_INBOUND,
        json.dumps(data).encode(),
        key=key.encode(),
        headers=headers,
    )


async def wait_for_order(orders: OrdersService, external_id: str, source: str) -> Document:
    db = orders.ctx.store.db

    async def probe() -> Document | None:
        found: Document | None = await db[WORK_ORDERS].find_one(
            {"external_id": external_id, "source_platform": source}
        )
        return found

    found = await eventually(probe, lambda doc: doc is not None)
    assert found is not None
    return found


async def received_event(bootstrap: str, work_order_id: str) -> ConsumedRecord:
    def mine(records: list[ConsumedRecord]) -> list[ConsumedRecord]:
        return [r for r in records if r.key == work_order_id.encode()]

    records = await read_topic(
        bootstrap, Topic.WORKORDERS_EVENTS, until=lambda rs: bool(mine(rs)), timeout=20
    )
    [event] = mine(records)
    return event


async def test_a_minimal_binary_cloudevent_from_a_uri_source_becomes_a_work_order(
    orders: OrdersService, kafka_bootstrap: str
) -> None:
    external_id = unique("FH/2026")  # a '/' in the external id: it is the subject too
    event_id = str(uuid.uuid4())
    before = datetime.now(UTC)
    await send_binary(
        kafka_bootstrap,
        order_data(external_id, reported_at=(before - timedelta(minutes=20)).isoformat()),
        minimal_headers(HTTPS_SOURCE, TENANT, event_id),
        key=external_id,
    )

    doc = await wait_for_order(orders, external_id, HTTPS_SOURCE)
    assert doc["tenant"] == TENANT
    assert doc["state"] == "received"

    event = await received_event(kafka_bootstrap, doc["_id"])
    assert event.headers["ce_type"] == "fixloop.workorder.received.v1"
    assert event.headers["ce_correlationid"] == event_id  # defaulted to the inbound event id
    body = event.json()
    assert body["source_platform"] == HTTPS_SOURCE
    assert body["external_id"] == external_id
    assert datetime.fromisoformat(body["received_at"]) >= before - timedelta(seconds=1)


async def test_a_urn_source_is_bound_to_its_own_tenants_only(
    orders: OrdersService, kafka_bootstrap: str
) -> None:
    allowed = unique("URN-ok")
    await send_binary(
        kafka_bootstrap,
        order_data(allowed),
        minimal_headers(URN_SOURCE, OTHER_TENANT),
        key=allowed,
    )
    await wait_for_order(orders, allowed, URN_SOURCE)

    refused = unique("URN-refused")
    await send_binary(
        kafka_bootstrap, order_data(refused), minimal_headers(URN_SOURCE, TENANT), key=refused
    )
    letter = await dead_letter(kafka_bootstrap, refused)
    assert letter.headers["fixloop_dlq_reason"] == "unauthorized"
    assert URN_SOURCE in letter.headers["fixloop_dlq_message"]


async def test_garbage_and_future_events_are_dead_lettered_with_the_reason(
    orders: OrdersService, kafka_bootstrap: str
) -> None:
    spaced = unique("GARBAGE-source")
    await send_binary(
        kafka_bootstrap,
        order_data(spaced),
        minimal_headers("https://fieldhub.example.com/my orders", TENANT),
        key=spaced,
    )
    letter = await dead_letter(kafka_bootstrap, spaced)
    assert letter.headers["fixloop_dlq_reason"] == "schema-violation"
    assert "source: " in letter.headers["fixloop_dlq_message"]
    assert "not allowed" in letter.headers["fixloop_dlq_message"]

    future = unique("FUTURE")
    await send_binary(
        kafka_bootstrap,
        order_data(future, reported_at="3000-01-01T00:00:00Z"),
        minimal_headers(HTTPS_SOURCE, TENANT),
        key=future,
    )
    letter = await dead_letter(kafka_bootstrap, future)
    assert letter.headers["fixloop_dlq_reason"] == "schema-violation"
    assert "data.reported_at" in letter.headers["fixloop_dlq_message"]
    assert "future" in letter.headers["fixloop_dlq_message"]


async def test_sources_with_colons_cannot_pass_for_each_others_redeliveries(
    orders: OrdersService, kafka_bootstrap: str
) -> None:
    # urn:ce-it:a + id "b:<x>" and urn:ce-it:a:b + id "<x>" would share the claim key
    # "orders:intake:urn:ce-it:a:b:<x>" if the source were not encoded in the claim scope.
    suffix = uuid.uuid4().hex
    first, second = unique("COLON-1"), unique("COLON-2")
    await send_binary(
        kafka_bootstrap, order_data(first), minimal_headers(URN_A, TENANT, f"b:{suffix}"), first
    )
    await wait_for_order(orders, first, URN_A)
    await send_binary(
        kafka_bootstrap, order_data(second), minimal_headers(URN_A_B, TENANT, suffix), second
    )
    await wait_for_order(orders, second, URN_A_B)


def test_claim_scopes_are_unambiguous_and_unchanged_for_plain_sources() -> None:
    assert intake_consumer("orders", "fieldhub") == "orders:intake:fieldhub"
    assert intake_consumer("orders", "marketplace.example") == "orders:intake:marketplace.example"
    a = f"{intake_consumer('orders', URN_A)}:b:1"
    b = f"{intake_consumer('orders', URN_A_B)}:1"
    assert a != b
    assert ":" not in intake_consumer("orders", HTTPS_SOURCE).removeprefix("orders:intake:")


def test_source_bindings_take_uri_references_and_refuse_garbage() -> None:
    settings = OrdersSettings(
        source_tenants={HTTPS_SOURCE: [TENANT], URN_SOURCE: [TENANT], "/x": [TENANT]}
    )
    assert set(settings.source_tenants) == {HTTPS_SOURCE, URN_SOURCE, "/x"}
    for garbage in ("field hub", "x" * 10_000, '{"$ne": null}'):
        with pytest.raises(ValidationError, match="source_tenants"):
            OrdersSettings(source_tenants={garbage: [TENANT]})


async def dead_letter(bootstrap: str, needle: str) -> ConsumedRecord:
    def mine(records: list[ConsumedRecord]) -> list[ConsumedRecord]:
        return [r for r in records if needle.encode() in (r.value or b"")]

    records = await read_topic(bootstrap, DEAD_LETTERS, until=lambda rs: bool(mine(rs)), timeout=20)
    found = mine(records)
    assert found, f"no dead letter mentioning {needle}"
    return found[0]
