"""Retained outbox records and ``fixloop outbox republish``, against the real embedded broker and
store: the recovery for a broker that lost records it had acknowledged."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fixloop_devkit.testing import ConsumedRecord, read_topic, start_embedded_broker, unique
from fixloop_shared.bus import Bus, ensure_topics, make_bus
from fixloop_shared.contracts import AssignmentAccepted
from fixloop_shared.outbox import SENT, OutboxRelay, count, parse_moment
from fixloop_shared.settings import KafkaSettings, ServiceSettings
from fixloop_shared.store import OUTBOX, Document, MongoClient, Store

pytestmark = pytest.mark.integration

SERVICE = "contractors"


def accepted(work_order_id: str) -> AssignmentAccepted:
    return AssignmentAccepted(
        work_order_id=work_order_id,
        offer_id="offer-1",
        contractor_id="c-1",
        accepted_at=datetime.now(UTC),
    )


async def emit(store: Store, topic: str, *work_order_ids: str) -> None:
    """One committed unit of work per event, as a service writes them."""
    for work_order_id in work_order_ids:
        async with store.transaction() as uow:
            uow.emit(accepted(work_order_id), topic=topic, key=work_order_id, tenant="acme")


async def moment() -> datetime:
    """A boundary strictly between what was written before and what is written after (the store
    keeps datetimes to the millisecond)."""
    await asyncio.sleep(0.01)
    at = datetime.now(UTC)
    await asyncio.sleep(0.01)
    return at


async def outbox(store: Store) -> list[Document]:
    return await store.db[OUTBOX].find({}).sort([("seq", 1)]).to_list()


def rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def fixloop_outbox(
    *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fixloop_cli", "outbox", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def ids(records: list[ConsumedRecord]) -> list[str]:
    return [r.headers["ce_id"] for r in records]


def without_transport(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name != "correlation_id"}


def assert_same_as_stored(record: ConsumedRecord, doc: Document) -> None:
    assert record.headers["ce_id"] == doc["_id"]
    assert record.key == doc["key"].encode()
    assert record.value == doc["value"].encode()
    for name, value in doc["headers"].items():  # every original header, traceparent included
        assert record.headers[name] == value, name


@pytest.fixture
async def store(mongo_client: MongoClient, database_name: str) -> Store:
    store = Store(mongo_client, database_name, service=SERVICE)
    await store.ensure_indexes()
    return store


@pytest.fixture
async def bus(kafka_bootstrap: str) -> AsyncIterator[Bus]:
    bus = make_bus(KafkaSettings(bootstrap=kafka_bootstrap), service=SERVICE)
    await bus.broker.connect()
    try:
        yield bus
    finally:
        await bus.broker.stop()


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    """One partition, so the order of the whole topic is the order of publication."""
    name = unique("fixloop.test.outbox")
    await ensure_topics(KafkaSettings(bootstrap=kafka_bootstrap, partitions=1), [name])
    return name


def test_sent_records_are_kept_for_seven_days_by_default() -> None:
    assert ServiceSettings().outbox_retention_seconds == 7 * 24 * 3600


async def test_records_published_by_the_relay_stay_retained_after_being_sent(
    store: Store, bus: Bus, topic: str, kafka_bootstrap: str
) -> None:
    await emit(store, topic, "wo-1", "wo-2", "wo-3")
    relay = OutboxRelay(store, bus.publish_raw)

    assert await relay.pending_count() == 3
    assert await relay.drain() == 3
    assert await relay.pending_count() == 0
    assert await relay.prune() == 0

    kept = await outbox(store)
    assert [doc["key"] for doc in kept] == ["wo-1", "wo-2", "wo-3"]
    assert all(doc["published"] for doc in kept)
    assert all(isinstance(doc["published_at_ms"], int) for doc in kept)
    assert await count(store, SENT) == 3
    published = await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 3)
    assert ids(published) == [doc["_id"] for doc in kept]


async def test_republish_resends_exactly_the_window_in_order_with_original_identity(
    store: Store, bus: Bus, topic: str, kafka_bootstrap: str, mongodb_uri: str
) -> None:
    relay = OutboxRelay(store, bus.publish_raw)
    await emit(store, topic, "wo-before-1", "wo-before-2")
    since = await moment()
    await emit(store, topic, "wo-in-1", "wo-in-2", "wo-in-1", "wo-in-3")
    until = await moment()
    await emit(store, topic, "wo-after-1")
    assert await relay.drain() == 7
    await emit(store, topic, "wo-pending")  # not sent yet: the relay's job, not republish's
    docs = await outbox(store)
    window = [doc for doc in docs if doc["key"].startswith("wo-in-")]
    assert len(window) == 4
    original = await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 7)
    assert len(original) == 7

    # The store and broker are found as the service finds them: FIXLOOP_<SERVICE>_* settings.
    env = {
        f"FIXLOOP_{SERVICE.upper()}_MONGODB_URI": mongodb_uri,
        f"FIXLOOP_{SERVICE.upper()}_DATABASE": store.db.name,
        "FIXLOOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
    }
    window_args = ["--service", SERVICE, "--since", rfc3339(since), "--until", rfc3339(until)]
    dry = fixloop_outbox("republish", *window_args, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would republish 4 contractors records"), dry.stdout
    assert len(await read_topic(kafka_bootstrap, topic, timeout=1)) == 7

    result = fixloop_outbox("republish", *window_args, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("republished 4 contractors records"), result.stdout
    assert f"to {topic}" in result.stdout

    records = await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 11)
    assert len(records) == 11
    copies = records[7:]
    assert ids(copies) == [doc["_id"] for doc in window]  # exactly the window, in order
    for record, doc in zip(copies, window, strict=True):
        assert_same_as_stored(record, doc)
    first_sent = {r.headers["ce_id"]: r for r in original}
    for copy in copies:  # all but FastStream's own correlation_id, new on every publish
        assert without_transport(copy.headers) == without_transport(
            first_sent[copy.headers["ce_id"]].headers
        )
    assert await count(store, {"published": {"$eq": False}}) == 1

    # A duration is "that long ago": everything sent in the last hour, the pending one excepted.
    everything = fixloop_outbox("republish", "-s", SERVICE, "--since", "1h", "--dry-run", env=env)
    assert everything.returncode == 0, everything.stderr
    assert everything.stdout.startswith("would republish 7 contractors records")
    assert "1 records of that window are not sent yet" in everything.stdout


async def test_republish_restores_what_a_restarted_broker_lost(
    store: Store, tmp_path: Path, mongodb_uri: str
) -> None:
    topic = unique("fixloop.test.outbox")
    proc, bootstrap = start_embedded_broker(tmp_path / "before")
    try:
        settings = KafkaSettings(bootstrap=bootstrap, partitions=1)
        await ensure_topics(settings, [topic])
        bus = make_bus(settings, service=SERVICE)
        await bus.broker.connect()
        try:
            await emit(store, topic, "wo-a", "wo-b", "wo-c")
            assert await OutboxRelay(store, bus.publish_raw).drain() == 3
        finally:
            await bus.broker.stop()
        assert len(await read_topic(bootstrap, topic, until=lambda rs: len(rs) >= 3)) == 3
    finally:
        proc.stop()
    # The embedded broker keeps its data in memory: a new one starts empty, topics included.
    proc, bootstrap = start_embedded_broker(tmp_path / "after")
    try:
        result = fixloop_outbox(
            "republish",
            "--service",
            SERVICE,
            "--since",
            "15m",
            "--bootstrap",
            bootstrap,
            "--mongodb-uri",
            mongodb_uri,
            "--database",
            store.db.name,
            # the topic is re-created as the services create it: one partition in this test
            env={"FIXLOOP_KAFKA_PARTITIONS": "1"},
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("republished 3 contractors records"), result.stdout
        records = await read_topic(bootstrap, topic, until=lambda rs: len(rs) >= 3)
        docs = await outbox(store)
        assert ids(records) == [doc["_id"] for doc in docs]
        for record, doc in zip(records, docs, strict=True):
            assert_same_as_stored(record, doc)
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--since", "yesterday"], "--since: 'yesterday' is neither an RFC 3339 time"),
        (["--since", "2026-11-26T08:00:00"], "has no time zone"),
        (["--since", "1h", "--until", "2h"], "must be later than --since"),
    ],
)
def test_a_bad_time_is_one_line_and_a_failure(
    args: list[str], complaint: str, kafka_bootstrap: str
) -> None:
    result = fixloop_outbox(
        "republish", "--service", SERVICE, *args, "--bootstrap", kafka_bootstrap
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert complaint in lines[0]
    assert "Traceback" not in result.stderr


def test_an_unknown_service_is_one_line_and_a_failure() -> None:
    result = fixloop_outbox("republish", "--service", "billing", "--since", "15m")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "unknown service 'billing'" in result.stderr


async def test_pruning_removes_only_sent_records_older_than_the_retention(
    store: Store, bus: Bus, topic: str
) -> None:
    relay = OutboxRelay(store, bus.publish_raw, retention_seconds=1, prune_batch_size=2)
    await emit(store, topic, "wo-old-1", "wo-old-2", "wo-old-3")
    assert await relay.drain() == 3
    await emit(store, topic, "wo-old-but-pending")
    await asyncio.sleep(1.6)
    await emit(store, topic, "wo-recent")
    assert await relay.prune() == 3  # in batches of two

    left = {doc["key"]: doc["published"] for doc in await outbox(store)}
    assert left == {"wo-old-but-pending": False, "wo-recent": False}
    assert await relay.drain() == 2
    assert await relay.prune() == 0  # sent just now, however old the record is
    assert {doc["key"] for doc in await outbox(store)} == {"wo-old-but-pending", "wo-recent"}


def test_moments_are_rfc3339_with_a_zone_or_durations() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert parse_moment("2026-11-26T08:00:00Z") == datetime(2026, 11, 26, 8, tzinfo=UTC)
    assert parse_moment("2026-11-26T09:30:00.5+01:00") == datetime(
        2026, 11, 26, 8, 30, 0, 500_000, tzinfo=UTC
    )
    assert parse_moment("15m", now=now) == now - timedelta(minutes=15)
    assert parse_moment("2h", now=now) == now - timedelta(hours=2)
    assert parse_moment("1h30m", now=now) == now - timedelta(minutes=90)
    assert parse_moment("7d", now=now) == now - timedelta(days=7)
    for bad, complaint in [
        ("", "neither"),
        ("15", "neither"),
        ("-15m", "neither"),
        ("1.5h", "neither"),
        ("15 minutes", "neither"),
        ("2026-11-26", "neither"),
        ("2026-11-26 08:00", "neither"),
        ("2026-02-30T08:00:00Z", "not a valid time"),
        ("2026-11-26T08:00:00", "no time zone"),
        ("0m", "zero duration"),
    ]:
        with pytest.raises(ValueError, match=complaint):
            parse_moment(bad)
