"""The parts service against the real store and broker: stock import, reservations, events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from typer.testing import CliRunner, Result

from fixloop_devkit.devstack import free_port
from fixloop_devkit.testing import ConsumedRecord, produce, read_topic, unique
from fixloop_parts.adapters.consumer import parts_consumers
from fixloop_parts.adapters.mongo import (
    RESERVATIONS,
    SETTLEMENTS,
    STOCK,
    WORK_ORDER_PARTS,
    MongoReservationLog,
    MongoStock,
    ensure_indexes,
)
from fixloop_parts.app import (
    PartsReservations,
    PartsSettlements,
    ReservationPolicy,
    ReservationsNotWrittenYet,
    StockCountFile,
    import_stock_count,
)
from fixloop_parts.cli import app as parts_cli
from fixloop_parts.domain import SourceStock
from fixloop_parts.main import bootstrap
from fixloop_parts.settings import PartsSettings
from fixloop_shared.contracts import (
    Actor,
    Address,
    AssignmentAccepted,
    Category,
    CompletionReport,
    Equipment,
    PartLine,
    PartsBackordered,
    PartsConsumed,
    PartsReleased,
    PartsReserved,
    PartUsed,
    Priority,
    Requester,
    Site,
    WorkOrderCancelled,
    WorkOrderReceived,
    WorkOrderWorkCompleted,
)
from fixloop_shared.envelope import Event, EventEnvelope, binary_headers, encode_payload
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import OUTBOX, MongoClient, Store
from fixloop_shared.topics import Service, Topic, dead_letter_topic
from fixloop_shared.vocabulary import ActorKind, WorkOrderState

pytestmark = pytest.mark.integration

SITES = {
    "berlin": ("Berlin", "10115", "DE", "Europe/Berlin"),
    "hamburg": ("Hamburg", "20095", "DE", "Europe/Berlin"),
    "vienna": ("Wien", "1010", "AT", "Europe/Vienna"),
    "london": ("London", "SW1A 1AA", "GB", "Europe/London"),
}


def work_order(
    parts: Sequence[tuple[str, int]],
    *,
    site: str = "berlin",
    tenant: str = "acme",
    work_order_id: str | None = None,
) -> WorkOrderReceived:
    city, postal_code, country, zone = SITES[site]
    return WorkOrderReceived(
        work_order_id=work_order_id or unique("wo"),
        tenant=tenant,
        source_platform="fieldhub",
        received_at=datetime(2026, 11, 21, 9, 30, tzinfo=UTC),
        external_id=unique("fh"),
        site=Site(
            site_id=f"site-{site}",
            name=f"{city} office",
            address=Address(
                line1="Hauptstrasse 1", city=city, postal_code=postal_code, country=country
            ),
            timezone=zone,
        ),
        equipment=Equipment(equipment_id="eq-1", equipment_class="hvac"),
        category=Category.BREAKDOWN,
        priority=Priority.HIGH,
        description="Unit does not cool",
        requester=Requester(name="Facility desk", email="desk@acme.example", locale="de"),
        required_parts=[PartLine(part_number=p, quantity=q) for p, q in parts],
    )


def received(payload: WorkOrderReceived, *, tenant: str | None = None) -> Event[WorkOrderReceived]:
    envelope = EventEnvelope.new(
        payload, source="orders", subject=payload.work_order_id, tenant=tenant or payload.tenant
    )
    return Event(envelope, payload)


EXAMPLE_WORLD: dict[str, Any] = {
    "warehouses": [
        {"warehouse_id": "wh-berlin", "name": "Berlin central", "country": "DE"},
        {"warehouse_id": "wh-munich", "name": "Munich south", "country": "DE"},
        {"warehouse_id": "wh-vienna", "name": "Vienna", "country": "AT"},
    ],
    "stock": [],
}


async def seed(store: Store, lines: Sequence[tuple[str, str, int]]) -> None:
    count = StockCountFile.model_validate(
        {
            **EXAMPLE_WORLD,
            "stock": [{"warehouse_id": w, "part_number": p, "quantity": q} for w, p, q in lines],
        }
    )
    await import_stock_count(store, MongoStock(), count)


async def levels(store: Store, part_number: str) -> dict[str, tuple[int, int, int]]:
    """warehouse -> (on hand, reserved, available) of one part number."""
    docs = await store.db[STOCK].find({"part_number": part_number}).to_list()
    return {d["warehouse_id"]: (d["on_hand"], d["reserved"], d["available"]) for d in docs}


async def reserved_units(store: Store, work_order_id: str | None = None) -> int:
    query = {} if work_order_id is None else {"work_order_id": work_order_id}
    return sum(d["quantity"] for d in await store.db[RESERVATIONS].find(query).to_list())


@pytest.fixture
async def store(mongo_client: MongoClient, database_name: str) -> Store:
    store = Store(mongo_client, database_name, service=Service.PARTS)
    await store.ensure_indexes()
    await ensure_indexes(store)
    return store


def reservations_of(store: Store, *, attempts: int = 10) -> PartsReservations:
    return PartsReservations(
        store, MongoStock(), MongoReservationLog(), policy=ReservationPolicy(attempts=attempts)
    )


# --- CLI: fixloop parts import ----------------------------------------------------------------


async def run_cli(mongodb_uri: str, database: str, *args: str) -> Result:
    env = {
        "FIXLOOP_PARTS_MONGODB_URI": mongodb_uri,
        "FIXLOOP_PARTS_DATABASE": database,
        "COLUMNS": "160",
    }
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, parts_cli, list(args), env=env)


async def test_cli_imports_the_example_world_and_a_recount_keeps_reservations(
    store: Store, mongodb_uri: str, database_name: str, repo_root: Path, tmp_path: Path
) -> None:
    result = await run_cli(
        mongodb_uri, database_name, "import", str(repo_root / "examples" / "stock.yaml")
    )
    assert result.exit_code == 0, result.output
    assert "20 stock lines in 3 warehouses were counted (20 new, 0 changed)" in result.stdout
    assert "wh-munich (DE)" in result.stdout
    assert await store.db[STOCK].count_documents({}) == 20
    assert await levels(store, "CMP-SCROLL-5T") == {"wh-berlin": (0, 0, 0), "wh-munich": (1, 0, 1)}

    # A Berlin order takes 2 filters from Berlin; a recount of Berlin keeps those 2 reserved.
    outcome = await reservations_of(store).work_order_received(
        received(work_order([("FLT-HEPA-24", 2)]))
    )
    assert outcome is not None
    assert outcome.complete
    assert (await levels(store, "FLT-HEPA-24"))["wh-berlin"] == (40, 2, 38)

    recount = tmp_path / "recount.json"
    recount.write_text(
        json.dumps(
            {"stock": [{"warehouse_id": "wh-berlin", "part_number": "FLT-HEPA-24", "quantity": 10}]}
        )
    )
    result = await run_cli(mongodb_uri, database_name, "import", str(recount))
    assert result.exit_code == 0, result.output
    assert "1 stock lines in 1 warehouses were counted (0 new, 1 changed)" in result.stdout
    hepa = await levels(store, "FLT-HEPA-24")
    assert hepa["wh-berlin"] == (10, 2, 8)
    assert hepa["wh-munich"] == (25, 0, 25), "lines not in the count are left alone"
    doc = await store.db[STOCK].find_one({"_id": "wh-berlin/FLT-HEPA-24"})
    assert doc is not None
    assert doc["description"] == "HEPA filter 24 in (HVAC)", "kept when the count omits it"
    assert isinstance(doc["counted_at"], datetime)

    result = await run_cli(mongodb_uri, database_name, "stock", "--part", "FLT-HEPA-24")
    assert result.exit_code == 0, result.output
    assert "wh-berlin (DE)" in result.stdout
    assert "wh-vienna (AT)" in result.stdout


async def test_cli_rejects_an_invalid_file_with_one_line_per_problem(
    store: Store, mongodb_uri: str, database_name: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "warehouses:\n"  # 1
        "  - warehouse_id: wh-berlin\n"  # 2
        "    name: Berlin central\n"  # 3
        "    country: Germany\n"  # 4
        "stock:\n"  # 5
        "  - {warehouse_id: wh-berlin, part_number: FLT-HEPA-24, quantity: 5}\n"  # 6
        "  - {warehouse_id: wh-berlin, part_number: BLT-V-A42, quantity: -3}\n"  # 7
        "  - {warehouse_id: wh-berlin, part_number: THERM-DIGI-01, quantity: '4'}\n"  # 8
        "  - {warehouse_id: wh-berlin, part_number: REL-24V-CTRL, quantity: 2, bin: A-17}\n"  # 9
    )
    result = await run_cli(mongodb_uri, database_name, "import", str(bad))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[:-1] == [
        f"{bad}:4: warehouses[0].country: String should match pattern '^[A-Z]{{2}}$'",
        f"{bad}:7: stock[1].quantity: Input should be greater than or equal to 0",
        f"{bad}:8: stock[2].quantity: Input should be a valid integer",
        f"{bad}:9: stock[3].bin: Extra inputs are not permitted",
    ]
    assert lines[-1] == f"error: 4 problems in {bad}; nothing was imported"
    assert "Traceback" not in result.output
    assert await store.db[STOCK].count_documents({}) == 0

    duplicated = tmp_path / "duplicated.yaml"
    duplicated.write_text(
        "stock:\n  - {warehouse_id: wh-berlin, part_number: X, quantity: 1, quantity: 2}\n"
    )
    result = await run_cli(mongodb_uri, database_name, "import", str(duplicated))
    assert result.exit_code == 1
    assert (
        result.stderr.splitlines()[0]
        == f"{duplicated}:2: stock[0].quantity: key 'quantity' appears more than once"
    )

    for name, content, message in [
        ("empty.yaml", "", "the file is empty"),
        ("broken.json", '{"stock": [', "not valid JSON"),
        ("stock.csv", "a,b", "unsupported file type '.csv'"),
        ("missing.yaml", None, "no such file"),
    ]:
        path = tmp_path / name
        if content is not None:
            path.write_text(content)
        result = await run_cli(mongodb_uri, database_name, "import", str(path))
        assert result.exit_code == 1, name
        assert message in result.stderr.splitlines()[0], result.stderr
        assert "Traceback" not in result.output


async def test_cli_rejects_unknown_warehouses_and_counts_below_reservations_importing_nothing(
    store: Store, mongodb_uri: str, database_name: str, tmp_path: Path
) -> None:
    await seed(store, [("wh-berlin", "GSK-FRIDGE-180", 6), ("wh-munich", "GSK-FRIDGE-180", 3)])
    outcome = await reservations_of(store).work_order_received(
        received(work_order([("GSK-FRIDGE-180", 5)], site="hamburg"))
    )
    assert outcome is not None
    assert (await levels(store, "GSK-FRIDGE-180"))["wh-berlin"] == (6, 5, 1)

    count = tmp_path / "count.yaml"
    count.write_text(
        "stock:\n"
        "  - {warehouse_id: wh-munich, part_number: GSK-FRIDGE-180, quantity: 9}\n"
        "  - {warehouse_id: wh-hamburg, part_number: GSK-FRIDGE-180, quantity: 2}\n"
        "  - {warehouse_id: wh-berlin, part_number: GSK-FRIDGE-180, quantity: 4}\n"
    )
    for args in (("import", "--dry-run", str(count)), ("import", str(count))):
        result = await run_cli(mongodb_uri, database_name, *args)
        assert result.exit_code == 1
        assert result.stderr.strip().splitlines() == [
            f"{count}:3: stock[1].warehouse_id: unknown warehouse 'wh-hamburg' "
            "(neither listed under warehouses nor already known)",
            f"{count}:4: stock[2].quantity: counted 4 on hand but 5 are reserved for work orders "
            "(the count must be at least 5)",
            f"error: 2 problems in {count}; nothing was imported",
        ]
    assert await levels(store, "GSK-FRIDGE-180") == {
        "wh-berlin": (6, 5, 1),
        "wh-munich": (3, 0, 3),
    }, "the valid Munich line was not imported either"

    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(
        "stock:\n"
        "  - {warehouse_id: wh-munich, part_number: GSK-FRIDGE-180, quantity: 9}\n"
        "  - {warehouse_id: wh-berlin, part_number: GSK-FRIDGE-180, quantity: 5}\n"
    )
    result = await run_cli(mongodb_uri, database_name, "import", "--dry-run", str(fixed))
    assert result.exit_code == 0, result.output
    assert "Nothing was written" in result.stdout
    assert (await levels(store, "GSK-FRIDGE-180"))["wh-munich"] == (3, 0, 3)
    result = await run_cli(mongodb_uri, database_name, "import", str(fixed))
    assert result.exit_code == 0, result.output
    assert await levels(store, "GSK-FRIDGE-180") == {
        "wh-berlin": (5, 5, 0),
        "wh-munich": (9, 0, 9),
    }


async def test_cli_reports_an_unreachable_store_in_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = {
        "FIXLOOP_PARTS_MONGODB_URI": f"mongodb://user:secret@127.0.0.1:{port}/?directConnection=true",
        "FIXLOOP_PARTS_STORE_TIMEOUT_SECONDS": "0.5",
    }
    path = tmp_path / "stock.yaml"
    path.write_text("warehouses: [{warehouse_id: wh-berlin, name: Berlin, country: DE}]\n")
    result = await asyncio.to_thread(CliRunner().invoke, parts_cli, ["import", str(path)], env=env)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: cannot reach the parts store at "
        f"mongodb://***@127.0.0.1:{port}/?directConnection=true (ServerSelectionTimeoutError)"
    ]


# --- reservations: the use case -----------------------------------------------------------------


async def test_concurrent_orders_never_reserve_more_than_the_stock(store: Store) -> None:
    await seed(store, [("wh-berlin", "FLT-HEPA-24", 4), ("wh-munich", "FLT-HEPA-24", 3)])
    reservations = reservations_of(store)
    orders = [work_order([("FLT-HEPA-24", 1 + i % 2)]) for i in range(20)]

    outcomes = await asyncio.gather(
        *(reservations.work_order_received(received(o)) for o in orders)
    )

    assert all(outcome is not None for outcome in outcomes)
    total = 0
    for order, outcome in zip(orders, outcomes, strict=True):
        assert outcome is not None
        required = order.required_parts[0].quantity
        plan = outcome.plan
        assert plan.reserved_of("FLT-HEPA-24") + plan.missing_of("FLT-HEPA-24") == required
        assert await reserved_units(store, order.work_order_id) == plan.reserved_of("FLT-HEPA-24")
        total += plan.reserved_of("FLT-HEPA-24")
    assert total == 7
    assert await reserved_units(store) == 7
    assert await levels(store, "FLT-HEPA-24") == {"wh-berlin": (4, 4, 0), "wh-munich": (3, 3, 0)}
    assert await store.db[STOCK].count_documents({"available": {"$lt": 0}}) == 0

    outbox = await store.db[OUTBOX].find({}).to_list()
    assert len(outbox) == 20
    assert {doc["key"] for doc in outbox} == {o.work_order_id for o in orders}
    kinds = [doc["event_type"] for doc in outbox]
    assert kinds.count(PartsBackordered.event_type) == sum(
        1 for o in outcomes if o and not o.complete
    )
    assert kinds.count(PartsReserved.event_type) == sum(1 for o in outcomes if o and o.complete)
    assert kinds.count(PartsBackordered.event_type) >= 20 - 7


async def test_a_batch_read_ahead_in_one_unit_of_work_sees_its_own_reservations(
    store: Store,
) -> None:
    await seed(store, [("wh-berlin", "FLT-HEPA-24", 4), ("wh-munich", "FLT-HEPA-24", 3)])
    reservations = reservations_of(store)
    orders = [work_order([("FLT-HEPA-24", 1 + i % 2)]) for i in range(8)]
    events = [received(o) for o in orders]

    async with store.transaction() as uow:  # as the kernel applies a batch
        await reservations.preload(events, uow)
        outcomes = [await reservations.reserve(event, uow) for event in events]
        assert await reservations.reserve(events[0], uow) is None  # decided in this batch

    reserved = [o.plan.reserved_of("FLT-HEPA-24") for o in outcomes if o is not None]
    assert reserved == [1, 2, 1, 2, 1, 0, 0, 0]  # 7 in stock, first come first served
    for order, outcome in zip(orders, outcomes, strict=True):
        assert outcome is not None
        assert await reserved_units(store, order.work_order_id) == outcome.plan.reserved_of(
            "FLT-HEPA-24"
        )
    assert await levels(store, "FLT-HEPA-24") == {"wh-berlin": (4, 4, 0), "wh-munich": (3, 3, 0)}


class StaleStock(MongoStock):
    """Reads stock as it was before someone else reserved it (once)."""

    def __init__(self) -> None:
        self.reads = 0

    async def sources(self, uow: UnitOfWork, part_numbers: Sequence[str]) -> list[SourceStock]:
        self.reads += 1
        fresh = await super().sources(uow, part_numbers)
        if self.reads > 1:
            return fresh
        return [
            SourceStock(s.warehouse_id, s.country, s.part_number, s.available + 5) for s in fresh
        ]


async def test_a_reservation_planned_on_stale_stock_is_planned_again(store: Store) -> None:
    await seed(store, [("wh-berlin", "DOOR-ROLLER-EL", 4), ("wh-vienna", "DOOR-ROLLER-EL", 2)])
    stock = StaleStock()
    reservations = PartsReservations(store, stock, MongoReservationLog())
    order = work_order([("DOOR-ROLLER-EL", 7)])

    outcome = await reservations.work_order_received(received(order))

    assert outcome is not None
    assert outcome.attempts == 2
    assert stock.reads == 2
    assert [(a.warehouse_id, a.quantity) for a in outcome.plan.allocations] == [
        ("wh-berlin", 4),
        ("wh-vienna", 2),
    ]
    assert isinstance(outcome.event, PartsBackordered)
    assert [(m.part_number, m.quantity) for m in outcome.event.missing] == [("DOOR-ROLLER-EL", 1)]
    assert await levels(store, "DOOR-ROLLER-EL") == {"wh-berlin": (4, 4, 0), "wh-vienna": (2, 2, 0)}
    assert await store.db[OUTBOX].count_documents({}) == 1


async def test_a_redelivered_or_reissued_event_reserves_nothing_more(store: Store) -> None:
    await seed(store, [("wh-vienna", "REL-24V-CTRL", 15)])
    reservations = reservations_of(store)
    order = work_order([("REL-24V-CTRL", 3), ("REL-24V-CTRL", 2)], site="vienna", tenant="globex")
    event = received(order)

    first = await reservations.work_order_received(event)
    again = await reservations.work_order_received(event)
    reissued = await reservations.work_order_received(received(order))

    assert first is not None
    assert first.complete
    assert [(a.warehouse_id, a.quantity) for a in first.plan.allocations] == [("wh-vienna", 5)]
    assert again is None
    assert reissued is None
    assert await levels(store, "REL-24V-CTRL") == {"wh-vienna": (15, 5, 10)}
    assert await store.db[RESERVATIONS].count_documents({}) == 1
    assert await store.db[OUTBOX].count_documents({}) == 1
    decision = await store.db[WORK_ORDER_PARTS].find_one({"_id": order.work_order_id})
    assert decision is not None
    assert decision["status"] == "reserved"
    assert decision["tenant"] == "globex"
    assert decision["required"] == [{"part_number": "REL-24V-CTRL", "quantity": 5}]


async def test_an_order_without_parts_needs_no_decision(store: Store) -> None:
    outcome = await reservations_of(store).work_order_received(received(work_order([])))
    assert outcome is None
    assert await store.db[OUTBOX].count_documents({}) == 0
    assert await store.db[WORK_ORDER_PARTS].count_documents({}) == 0


# --- the service: Kafka in, Kafka out ----------------------------------------------------------


def of_work_order(records: list[ConsumedRecord], work_order_id: str) -> list[ConsumedRecord]:
    """The distinct events about one work order (the outbox publishes at least once)."""
    distinct: dict[str, ConsumedRecord] = {}
    for record in records:
        if record.key == work_order_id.encode():
            distinct.setdefault(record.headers["ce_id"], record)
    return list(distinct.values())


async def test_service_answers_received_work_orders_on_the_parts_topic(
    kafka_bootstrap: str, mongodb_uri: str, database_name: str
) -> None:
    settings = PartsSettings(
        mongodb_uri=mongodb_uri,
        database=database_name,
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        outbox_poll_seconds=0.1,
    )
    built = bootstrap(settings)
    service = built.app
    await service.start()
    try:
        # Through the service's own store: on the embedded store, transactions of a second
        # client in the same process can overlap the service's (see the README's gaps table).
        store = built.ctx.store
        # Part numbers of this test only: other tests' work orders on the shared topic name the
        # example-world parts, and this consumer group reads them too.
        gasket, compressor = unique("GSK-FRIDGE-180"), unique("CMP-SCROLL-5T")
        filter_, belt = unique("FLT-HEPA-24"), unique("BLT-V-A42")
        await seed(
            store,
            [
                ("wh-berlin", gasket, 6),
                ("wh-munich", compressor, 1),
                ("wh-berlin", filter_, 40),
                ("wh-berlin", belt, 18),
            ],
        )
        hamburg = work_order([(gasket, 1), (compressor, 2)], site="hamburg", tenant="globex")
        berlin = work_order([(filter_, 2), (belt, 1)])
        london = work_order([], site="london")
        mismatched = work_order([(filter_, 1)])
        marker = work_order([(filter_, 1)])
        lane = unique("lane").encode()  # one key, one partition: processed in this order

        async def publish(
            payload: WorkOrderReceived | AssignmentAccepted,
            key: bytes,
            subject: str,
            tenant: str = "acme",
            envelope: EventEnvelope | None = None,
        ) -> EventEnvelope:
            envelope = envelope or EventEnvelope.new(
                payload, source="orders", subject=subject, tenant=tenant
            )
            await produce(
                kafka_bootstrap,
                Topic.WORKORDERS_EVENTS,
                encode_payload(payload),
                key=key,
                headers=binary_headers(envelope),
            )
            return envelope

        hamburg_in = await publish(
            hamburg, hamburg.work_order_id.encode(), hamburg.work_order_id, "globex"
        )
        berlin_in = await publish(berlin, berlin.work_order_id.encode(), berlin.work_order_id)
        await publish(london, lane, london.work_order_id)
        await publish(berlin, lane, berlin.work_order_id, envelope=berlin_in)  # redelivery
        accepted = AssignmentAccepted(
            work_order_id=berlin.work_order_id,
            offer_id="offer-1",
            contractor_id="ctr-1",
            accepted_at=datetime(2026, 11, 21, 10, tzinfo=UTC),
        )
        await publish(accepted, lane, berlin.work_order_id)  # not for the parts service
        mismatched_in = await publish(mismatched, lane, mismatched.work_order_id, tenant="globex")
        await publish(marker, lane, marker.work_order_id)

        expected = {hamburg.work_order_id, berlin.work_order_id, marker.work_order_id}
        records = await read_topic(
            kafka_bootstrap,
            Topic.PARTS_EVENTS,
            until=lambda rs: expected <= {(r.key or b"").decode() for r in rs},
            timeout=40,
        )
        assert of_work_order(records, london.work_order_id) == [], "no parts, no answer"
        assert of_work_order(records, mismatched.work_order_id) == []
        assert len(of_work_order(records, marker.work_order_id)) == 1

        (backordered,) = of_work_order(records, hamburg.work_order_id)
        assert backordered.headers["ce_type"] == "fixloop.parts.backordered.v1"
        assert backordered.headers["ce_source"] == "parts"
        assert backordered.headers["ce_tenant"] == "globex"
        assert backordered.headers["ce_correlationid"] == hamburg_in.correlationid
        body = PartsBackordered.model_validate_json(backordered.value or b"")
        assert [(r.part_number, r.warehouse_id, r.quantity) for r in body.reservations] == [
            (gasket, "wh-berlin", 1),
            (compressor, "wh-munich", 1),
        ]
        assert [(m.part_number, m.quantity) for m in body.missing] == [(compressor, 1)]

        (reserved,) = of_work_order(records, berlin.work_order_id)
        assert reserved.headers["ce_type"] == "fixloop.parts.reserved.v1"
        assert reserved.headers["ce_correlationid"] == berlin_in.correlationid
        body_reserved = PartsReserved.model_validate_json(reserved.value or b"")
        assert [
            (r.part_number, r.warehouse_id, r.quantity) for r in body_reserved.reservations
        ] == [
            (filter_, "wh-berlin", 2),
            (belt, "wh-berlin", 1),
        ]
        assert await reserved_units(store, berlin.work_order_id) == 3
        assert (
            await store.db[RESERVATIONS].count_documents({"work_order_id": berlin.work_order_id})
            == 2
        )
        assert (await levels(store, filter_))["wh-berlin"] == (40, 3, 37), "berlin 2 + marker 1"
        assert await store.db[WORK_ORDER_PARTS].count_documents({"_id": london.work_order_id}) == 0
        assert (
            await store.db[WORK_ORDER_PARTS].count_documents({"_id": mismatched.work_order_id}) == 0
        )

        dead = await read_topic(
            kafka_bootstrap,
            dead_letter_topic(Service.PARTS),
            until=lambda rs: any(r.headers.get("ce_id") == mismatched_in.id for r in rs),
            timeout=10,
        )
        (dead_letter,) = [r for r in dead if r.headers.get("ce_id") == mismatched_in.id]
        assert dead_letter.headers["fixloop_dlq_reason"] == "unauthorized"
        assert "tenant" in dead_letter.headers["fixloop_dlq_message"]
    finally:
        await service.stop()


# --- settling reservations: cancelled and completed work orders ----------------------------------

SETTLED_AT = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)


def lifecycle_facts(work_order_id: str, state: WorkOrderState) -> dict[str, object]:
    return {
        "work_order_id": work_order_id,
        "external_id": f"fh-{work_order_id}",
        "source_platform": "fieldhub",
        "state": state,
        "previous_state": WorkOrderState.ON_SITE,
        "occurred_at": datetime(2026, 11, 22, 14, 0, tzinfo=UTC),
        "actor": Actor(kind=ActorKind.CONTRACTOR, id="ctr-1"),
        "via": "grpc",
        "version": 6,
        "contractor_id": "ctr-1",
    }


def cancellation(work_order_id: str, reason: str | None = "duplicate order") -> WorkOrderCancelled:
    return WorkOrderCancelled.model_validate(
        {**lifecycle_facts(work_order_id, WorkOrderState.CANCELLED), "reason": reason}
    )


def completion(work_order_id: str, used: Sequence[tuple[str, int]]) -> WorkOrderWorkCompleted:
    return WorkOrderWorkCompleted.model_validate(
        {
            **lifecycle_facts(work_order_id, WorkOrderState.WORK_COMPLETED),
            "completion": CompletionReport(
                resolution_code="replaced_part",
                work_summary="Replaced the worn parts",
                labour_minutes=75,
                parts_used=[PartUsed(part_number=p, quantity=q) for p, q in used],
            ),
            "verify_by": datetime(2026, 11, 25, 14, 0, tzinfo=UTC),
        }
    )


Lifecycle = TypeVar("Lifecycle", WorkOrderCancelled, WorkOrderWorkCompleted)


def lifecycle_event(payload: Lifecycle, *, tenant: str = "acme") -> Event[Lifecycle]:
    envelope = EventEnvelope.new(
        payload, source="orders", subject=payload.work_order_id, tenant=tenant
    )
    return Event(envelope, payload)


def settlements_of(store: Store) -> PartsSettlements:
    return PartsSettlements(store, MongoStock(), MongoReservationLog(), clock=lambda: SETTLED_AT)


async def outbox_of(store: Store, work_order_id: str) -> list[dict[str, Any]]:
    return await store.db[OUTBOX].find({"key": work_order_id}).sort("seq", 1).to_list()


async def test_a_cancellation_releases_the_reservations_once_and_nothing_after_it_moves_stock(
    store: Store,
) -> None:
    seeded = [
        ("wh-berlin", "FLT-HEPA-24", 3),
        ("wh-munich", "FLT-HEPA-24", 4),
        ("wh-berlin", "BLT-V-A42", 2),
    ]
    await seed(store, seeded)
    before = {part: await levels(store, part) for part in ("FLT-HEPA-24", "BLT-V-A42")}
    order = work_order([("FLT-HEPA-24", 5), ("BLT-V-A42", 1)], tenant="globex")
    reserved = await reservations_of(store).work_order_received(received(order))
    assert reserved is not None
    assert reserved.complete
    assert await levels(store, "FLT-HEPA-24") == {"wh-berlin": (3, 1, 2), "wh-munich": (4, 4, 0)}
    settlements = settlements_of(store)
    event = lifecycle_event(cancellation(order.work_order_id), tenant="globex")

    outcome = await settlements.work_order_cancelled(event)

    assert outcome is not None
    assert {part: await levels(store, part) for part in before} == before, "all available again"
    assert await store.db[STOCK].count_documents({"available": {"$lt": 0}}) == 0
    statuses = {
        (doc["part_number"], doc["warehouse_id"]): (doc["status"], doc["released"])
        for doc in await store.db[RESERVATIONS]
        .find({"work_order_id": order.work_order_id})
        .to_list()
    }
    assert statuses == {
        ("FLT-HEPA-24", "wh-berlin"): ("released", 1),
        ("FLT-HEPA-24", "wh-munich"): ("released", 4),
        ("BLT-V-A42", "wh-berlin"): ("released", 1),
    }
    settlement = await store.db[SETTLEMENTS].find_one({"_id": order.work_order_id})
    assert settlement is not None
    assert (settlement["outcome"], settlement["tenant"]) == ("released", "globex")
    assert settlement["settled_at"] == SETTLED_AT
    assert settlement["units_released"] == 6

    _, released_doc = await outbox_of(store, order.work_order_id)
    assert released_doc["event_type"] == PartsReleased.event_type
    assert released_doc["headers"]["ce_tenant"] == "globex"
    assert released_doc["headers"]["ce_correlationid"] == event.envelope.correlationid
    released = PartsReleased.model_validate_json(released_doc["value"])
    assert released.reason == "duplicate order"
    assert released.released_at == SETTLED_AT
    assert sorted((r.part_number, r.warehouse_id, r.quantity) for r in released.released) == [
        ("BLT-V-A42", "wh-berlin", 1),
        ("FLT-HEPA-24", "wh-berlin", 1),
        ("FLT-HEPA-24", "wh-munich", 4),
    ]

    # Redelivered, cancelled again, or completed afterwards: nothing is active, nothing moves.
    assert await settlements.work_order_cancelled(event) is None
    again = lifecycle_event(cancellation(order.work_order_id, reason=None), tenant="globex")
    assert await settlements.work_order_cancelled(again) is None
    late = completion(order.work_order_id, [("FLT-HEPA-24", 2), ("BLT-V-A42", 1)])
    assert await settlements.work_order_completed(lifecycle_event(late, tenant="globex")) is None
    assert {part: await levels(store, part) for part in before} == before
    assert len(await outbox_of(store, order.work_order_id)) == 2
    assert await store.db[SETTLEMENTS].count_documents({}) == 1

    # An order with nothing reserved has nothing to release and says nothing.
    nothing = work_order([("FLT-HEPA-24", 1)])
    empty = await settlements.work_order_cancelled(
        lifecycle_event(cancellation(nothing.work_order_id))
    )
    assert empty is None
    assert await outbox_of(store, nothing.work_order_id) == []


async def test_a_completion_consumes_the_used_parts_and_releases_the_rest(store: Store) -> None:
    await seed(
        store,
        [
            ("wh-berlin", "FLT-HEPA-24", 10),
            ("wh-berlin", "BLT-V-A42", 2),
            ("wh-munich", "GSK-FRIDGE-180", 3),
            ("wh-vienna", "THERM-DIGI-01", 1),
        ],
    )
    order = work_order([("FLT-HEPA-24", 4), ("BLT-V-A42", 1)])
    assert await reservations_of(store).work_order_received(received(order)) is not None
    assert (await levels(store, "FLT-HEPA-24"))["wh-berlin"] == (10, 4, 6)
    settlements = settlements_of(store)
    done = completion(
        order.work_order_id,
        [("FLT-HEPA-24", 3), ("GSK-FRIDGE-180", 2), ("THERM-DIGI-01", 2)],
    )
    event = lifecycle_event(done)

    outcome = await settlements.work_order_completed(event)

    assert outcome is not None
    # 3 of the 4 reserved filters used: on hand down by 3, the fourth available again.
    assert await levels(store, "FLT-HEPA-24") == {"wh-berlin": (7, 0, 7)}
    assert await levels(store, "BLT-V-A42") == {"wh-berlin": (2, 0, 2)}, "not used: released"
    # Used without a reservation: taken where a warehouse has them all, else left alone.
    assert await levels(store, "GSK-FRIDGE-180") == {"wh-munich": (1, 0, 1)}
    assert await levels(store, "THERM-DIGI-01") == {"wh-vienna": (1, 0, 1)}
    assert [(d.part_number, d.quantity) for d in outcome.ignored] == [("THERM-DIGI-01", 2)]

    _, consumed_doc = await outbox_of(store, order.work_order_id)
    assert consumed_doc["event_type"] == PartsConsumed.event_type
    assert consumed_doc["headers"]["ce_correlationid"] == event.envelope.correlationid
    consumed = PartsConsumed.model_validate_json(consumed_doc["value"])
    assert consumed.consumed_at == SETTLED_AT
    assert [(r.part_number, r.warehouse_id, r.quantity) for r in consumed.consumed] == [
        ("FLT-HEPA-24", "wh-berlin", 3),
        ("GSK-FRIDGE-180", "wh-munich", 2),
    ]
    assert sorted((r.part_number, r.warehouse_id, r.quantity) for r in consumed.released) == [
        ("BLT-V-A42", "wh-berlin", 1),
        ("FLT-HEPA-24", "wh-berlin", 1),
    ]
    line = await store.db[RESERVATIONS].find_one(
        {"work_order_id": order.work_order_id, "part_number": "FLT-HEPA-24"}
    )
    assert line is not None
    assert (line["status"], line["consumed"], line["released"]) == ("consumed", 3, 1)
    assert line["settled_by"] == event.envelope.id

    # The same event twice, a second completion, a cancellation afterwards: one effect only.
    assert await settlements.work_order_completed(event) is None
    redone = completion(order.work_order_id, [("GSK-FRIDGE-180", 1)])
    assert await settlements.work_order_completed(lifecycle_event(redone)) is None
    assert (
        await settlements.work_order_cancelled(lifecycle_event(cancellation(order.work_order_id)))
        is None
    )
    assert await levels(store, "FLT-HEPA-24") == {"wh-berlin": (7, 0, 7)}
    assert await levels(store, "GSK-FRIDGE-180") == {"wh-munich": (1, 0, 1)}
    assert len(await outbox_of(store, order.work_order_id)) == 2


async def test_an_order_without_reservations_consumes_used_stock_once(store: Store) -> None:
    await seed(store, [("wh-berlin", "GSK-FRIDGE-180", 2), ("wh-munich", "GSK-FRIDGE-180", 5)])
    settlements = settlements_of(store)
    event = lifecycle_event(completion("wo-no-parts", [("GSK-FRIDGE-180", 3)]))

    outcome = await settlements.work_order_completed(event)
    again = await settlements.work_order_completed(
        lifecycle_event(completion("wo-no-parts", [("GSK-FRIDGE-180", 3)]))
    )

    assert outcome is not None
    assert again is None, "the order's parts were settled already"
    assert await levels(store, "GSK-FRIDGE-180") == {
        "wh-berlin": (2, 0, 2),
        "wh-munich": (2, 0, 2),
    }, "one warehouse that has all 3"
    assert [doc["event_type"] for doc in await outbox_of(store, "wo-no-parts")] == [
        PartsConsumed.event_type
    ]
    nothing_used = await settlements.work_order_completed(
        lifecycle_event(completion("wo-nothing-used", []))
    )
    assert nothing_used is None
    assert await outbox_of(store, "wo-nothing-used") == []


async def test_a_concurrent_cancellation_and_completion_settle_the_order_once(
    store: Store,
) -> None:
    await seed(store, [("wh-berlin", "REL-24V-CTRL", 6)])
    order = work_order([("REL-24V-CTRL", 4)])
    assert await reservations_of(store).work_order_received(received(order)) is not None
    settlements = settlements_of(store)

    outcomes = await asyncio.gather(
        settlements.work_order_cancelled(lifecycle_event(cancellation(order.work_order_id))),
        settlements.work_order_completed(
            lifecycle_event(completion(order.work_order_id, [("REL-24V-CTRL", 1)]))
        ),
    )

    assert sum(outcome is not None for outcome in outcomes) == 1
    cancelled_first = outcomes[0] is not None
    expected = (6, 0, 6) if cancelled_first else (5, 0, 5)
    assert await levels(store, "REL-24V-CTRL") == {"wh-berlin": expected}
    assert len(await outbox_of(store, order.work_order_id)) == 2


async def test_a_batch_settling_stock_lets_its_later_orders_reserve_it(store: Store) -> None:
    await seed(store, [("wh-berlin", "DOOR-ROLLER-EL", 3)])
    first = work_order([("DOOR-ROLLER-EL", 3)])
    reservations = reservations_of(store)
    assert await reservations.work_order_received(received(first)) is not None
    settlements = settlements_of(store)
    (consumer,) = parts_consumers(reservations, settlements)
    assert consumer.preload is not None
    second = work_order([("DOOR-ROLLER-EL", 2)])
    batch: list[Event[Any]] = [
        lifecycle_event(cancellation(first.work_order_id)),
        received(second),
    ]

    async with store.transaction() as uow:  # as the kernel applies a batch
        await consumer.preload(batch, uow)  # reads the stock before the release moves it
        for event in batch:
            await consumer.handlers[type(event.payload)](event, uow)

    assert await reserved_units(store, second.work_order_id) == 2, "the released units"
    assert await levels(store, "DOOR-ROLLER-EL") == {"wh-berlin": (3, 2, 1)}
    kinds = [doc["event_type"] for doc in await store.db[OUTBOX].find({}).sort("seq", 1).to_list()]
    assert kinds == [PartsReserved.event_type, PartsReleased.event_type, PartsReserved.event_type]

    # Reservations made in a batch are written at its commit: settling them in the same batch
    # fails it, and the kernel applies its records one at a time instead.
    third = work_order([("DOOR-ROLLER-EL", 1)])

    async def reserve_and_cancel_in_one_unit() -> None:
        async with store.transaction() as uow:
            await reservations.reserve(received(third), uow)
            await settlements.release(lifecycle_event(cancellation(third.work_order_id)), uow)

    with pytest.raises(ReservationsNotWrittenYet):
        await reserve_and_cancel_in_one_unit()
    assert await levels(store, "DOOR-ROLLER-EL") == {"wh-berlin": (3, 2, 1)}, "rolled back"
    assert await store.db[RESERVATIONS].count_documents({"work_order_id": third.work_order_id}) == 0


async def test_service_releases_and_consumes_on_lifecycle_events(
    kafka_bootstrap: str, mongodb_uri: str, database_name: str
) -> None:
    settings = PartsSettings(
        mongodb_uri=mongodb_uri,
        database=database_name,
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        outbox_poll_seconds=0.1,
    )
    built = bootstrap(settings)
    service = built.app
    await service.start()
    try:
        store = built.ctx.store
        filter_, belt = unique("FLT-HEPA-24"), unique("BLT-V-A42")
        await seed(store, [("wh-berlin", filter_, 5), ("wh-munich", belt, 4)])
        cancelled_order = work_order([(filter_, 2), (belt, 1)])
        completed_order = work_order([(filter_, 3), (belt, 2)])

        async def publish(
            payload: WorkOrderReceived | WorkOrderCancelled | WorkOrderWorkCompleted,
            envelope: EventEnvelope | None = None,
        ) -> EventEnvelope:
            envelope = envelope or EventEnvelope.new(
                payload, source="orders", subject=payload.work_order_id, tenant="acme"
            )
            await produce(
                kafka_bootstrap,
                Topic.WORKORDERS_EVENTS,
                encode_payload(payload),
                key=payload.work_order_id.encode(),
                headers=binary_headers(envelope),
            )
            return envelope

        # Received and cancelled back to back (one key): possibly one batch, which the kernel
        # then applies one record at a time; the cancellation is delivered twice.
        await publish(cancelled_order)
        cancel_in = await publish(cancellation(cancelled_order.work_order_id))
        await publish(cancellation(cancelled_order.work_order_id), envelope=cancel_in)
        await publish(completed_order)
        complete_in = await publish(completion(completed_order.work_order_id, [(filter_, 1)]))
        await publish(
            completion(completed_order.work_order_id, [(filter_, 1)]), envelope=complete_in
        )

        expected = {
            (cancelled_order.work_order_id, PartsReleased.event_type),
            (completed_order.work_order_id, PartsConsumed.event_type),
        }
        records = await read_topic(
            kafka_bootstrap,
            Topic.PARTS_EVENTS,
            until=lambda rs: (
                expected <= {((r.key or b"").decode(), r.headers.get("ce_type")) for r in rs}
            ),
            timeout=40,
        )
        kinds = [
            r.headers["ce_type"] for r in of_work_order(records, cancelled_order.work_order_id)
        ]
        assert kinds == [PartsReserved.event_type, PartsReleased.event_type]
        (released_record,) = [
            r
            for r in of_work_order(records, cancelled_order.work_order_id)
            if r.headers["ce_type"] == PartsReleased.event_type
        ]
        assert released_record.headers["ce_correlationid"] == cancel_in.correlationid
        kinds = [
            r.headers["ce_type"] for r in of_work_order(records, completed_order.work_order_id)
        ]
        assert kinds == [PartsReserved.event_type, PartsConsumed.event_type]
        consumed_record = of_work_order(records, completed_order.work_order_id)[1]
        body = PartsConsumed.model_validate_json(consumed_record.value or b"")
        assert [(r.part_number, r.quantity) for r in body.consumed] == [(filter_, 1)]
        assert sorted((r.part_number, r.quantity) for r in body.released) == sorted(
            [(filter_, 2), (belt, 2)]
        )

        # One effect each: the cancelled order's units are all back, the completed order's
        # used filter is gone for good.
        assert await levels(store, filter_) == {"wh-berlin": (4, 0, 4)}
        assert await levels(store, belt) == {"wh-munich": (4, 0, 4)}
        assert await store.db[SETTLEMENTS].count_documents({}) == 2
    finally:
        await service.stop()
