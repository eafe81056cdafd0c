"""All five services as separate processes, driven only through their public edges."""

from __future__ import annotations

import asyncio
import email
import email.policy
import functools
import json
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import grpc
import pytest

from fixloop_devkit.devstack import LocalPlatform
from fixloop_devkit.testing import ConsumedRecord, eventually, produce, read_topic
from fixloop_shared.store import make_client
from fixloop_shared.topics import Topic, dead_letter_topic

from .conftest import SLA_TARGET_SECONDS, cli, get_work_order, order_file

pytestmark = pytest.mark.e2e

ACME_KEY = "dev-key-acme"
GLOBEX_KEY = "dev-key-globex"


async def events_of(
    stack: LocalPlatform, topic: Topic, event_type: str, timeout: float = 2.0
) -> list[tuple[ConsumedRecord, dict[str, object]]]:
    records = await read_topic(stack.bootstrap, topic.value, timeout=timeout)
    return [(r, r.json()) for r in records if r.headers.get("ce_type") == event_type]


async def received_for(stack: LocalPlatform, external_id: str) -> list[dict[str, object]]:
    found = await events_of(stack, Topic.WORKORDERS_EVENTS, "fixloop.workorder.received.v1")
    return [payload for _, payload in found if payload["external_id"] == external_id]


async def wait_received(stack: LocalPlatform, external_id: str, timeout: float = 60) -> str:
    received = await eventually(
        lambda: received_for(stack, external_id), lambda r: len(r) >= 1, timeout=timeout
    )
    return str(received[0]["work_order_id"])


async def of_work_order(
    stack: LocalPlatform, topic: Topic, event_type: str, work_order_id: str
) -> list[dict[str, object]]:
    found = await events_of(stack, topic, event_type)
    return [p for _, p in found if p["work_order_id"] == work_order_id]


def mails_to(stack: LocalPlatform, address: str) -> list[EmailMessage]:
    messages = []
    for path in sorted(stack.mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if address in str(message["To"]):
            messages.append(message)
    return messages


async def test_one_order_runs_the_whole_loop(platform: LocalPlatform, tmp_path: Path) -> None:
    path, external_id = order_file(
        tmp_path,
        data_requester={
            "name": "Anna Schulz",
            "email": f"anna.{tmp_path.name[-6:]}@acme-markt.example",
            "locale": "de",
        },
    )
    address = json.loads(path.read_text())["data"]["requester"]["email"]
    cli(platform, "inbound", "publish", str(path))

    work_order_id = await wait_received(platform, external_id)

    offered = await eventually(
        lambda: of_work_order(
            platform, Topic.CONTRACTORS_EVENTS, "fixloop.assignment.offered.v1", work_order_id
        ),
        lambda found: len(found) == 1,
    )
    assert offered[0]["contractor_id"] == "ctr-berliner-klima"

    reserved = await eventually(
        lambda: of_work_order(
            platform, Topic.PARTS_EVENTS, "fixloop.parts.reserved.v1", work_order_id
        ),
        lambda found: len(found) == 1,
    )
    reservations: list[dict[str, object]] = reserved[0]["reservations"]  # type: ignore[assignment]
    reserved_parts = {(r["part_number"], r["quantity"]) for r in reservations}
    assert reserved_parts == {("FLT-HEPA-24", 2), ("BLT-V-A42", 1)}

    warnings = await eventually(
        lambda: of_work_order(platform, Topic.SLA_EVENTS, "fixloop.sla.warning.v1", work_order_id),
        lambda found: len(found) == 1,
    )
    assert warnings[0]["milestone"] == "dispatch_confirmation"

    mails = await eventually(
        lambda: asyncio.to_thread(mails_to, platform, address), lambda m: len(m) == 1
    )
    mail = mails[0]
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert external_id in text
    assert "Auftrag" in str(mail["Subject"]) or "Auftrag" in text  # German, the requester's locale

    def timeline_kinds() -> set[str]:
        order = get_work_order(platform, work_order_id, ACME_KEY)
        return {entry.event_type for entry in order.timeline}

    kinds = await eventually(
        lambda: asyncio.to_thread(timeline_kinds),
        lambda k: {"fixloop.assignment.offered.v1", "fixloop.parts.reserved.v1"} <= k,
    )
    assert "fixloop.workorder.submitted.v1" in kinds or len(kinds) >= 3
    order = get_work_order(platform, work_order_id, ACME_KEY)
    assert order.external_id == external_id
    assert order.tenant == "acme"

    with pytest.raises(grpc.RpcError) as other_tenant:
        get_work_order(platform, work_order_id, GLOBEX_KEY)
    assert other_tenant.value.code() == grpc.StatusCode.NOT_FOUND


async def test_same_external_order_three_times_makes_one_work_order(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    first, external_id = order_file(tmp_path)
    copies = [first] + [order_file(tmp_path, external_id=external_id)[0] for _ in range(2)]
    cli(platform, "inbound", "publish", *map(str, copies))
    marker, marker_id = order_file(tmp_path)
    cli(platform, "inbound", "publish", str(marker))
    await wait_received(platform, marker_id)
    await wait_received(platform, external_id)
    received = await received_for(platform, external_id)
    assert len({r["work_order_id"] for r in received}) == 1
    assert len(received) == 1


async def test_poison_inputs_are_dead_lettered_and_good_orders_still_flow(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    before, before_id = order_file(tmp_path)
    cli(platform, "inbound", "publish", str(before))

    base = json.loads(order_file(tmp_path)[0].read_text())
    inbound = Topic.WORKORDERS_INBOUND.value

    def variant(**changes: object) -> bytes:
        doc = json.loads(json.dumps(base))
        for key, value in changes.items():
            if key.startswith("data_"):
                doc["data"][key.removeprefix("data_")] = value
            else:
                doc[key] = value
        return json.dumps(doc).encode()

    poison = {
        "not-json": b"this is not json {",
        "schema": variant(data_priority="whenever"),
        "naive-datetime": variant(time="2026-11-21T08:42:10"),
        "unbound-tenant": variant(source="buildmart", tenant="globex"),
        "operator": variant(data_description={"$ne": None}),
        "too-long": variant(data_description="x" * 4001),
    }
    for name, value in poison.items():
        await produce(platform.bootstrap, inbound, value, key=name.encode())

    after, after_id = order_file(tmp_path)
    cli(platform, "inbound", "publish", str(after))

    await wait_received(platform, before_id)
    await wait_received(platform, after_id)

    dead = await eventually(
        lambda: read_topic(platform.bootstrap, dead_letter_topic("orders"), timeout=2),
        lambda records: {r.key for r in records} >= {k.encode() for k in poison},
    )
    reasons = {
        (r.key or b"").decode(): (r.headers["fixloop_dlq_reason"], r.headers["fixloop_dlq_message"])
        for r in dead
        if (r.key or b"").decode() in poison
    }
    assert reasons["not-json"][0] == "undecodable"
    assert reasons["schema"][0] == "schema-violation"
    assert "data.priority" in reasons["schema"][1]
    assert "timezone" in reasons["naive-datetime"][1]
    assert reasons["unbound-tenant"][0] == "unauthorized"
    assert "data.description" in reasons["operator"][1]
    assert "4000" in reasons["too-long"][1]
    for record in dead:
        assert record.headers["fixloop_dlq_original_topic"] == inbound
        assert record.headers["fixloop_dlq_service"] == "orders"

    listed = cli(platform, "dlq", "list", "--service", "orders", "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {"undecodable", "schema-violation", "unauthorized"} <= {row["reason"] for row in rows}


async def test_sla_warning_and_breach_survive_a_restart_and_fire_once(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    path, external_id = order_file(tmp_path, "elevator-entrapment-munich.json")
    cli(platform, "inbound", "publish", str(path))
    work_order_id = await wait_received(platform, external_id)

    client = make_client(platform.mongodb_uri("sla"), app_name="e2e-probe")
    try:
        clocks = client["fixloop_sla"]["clocks"]
        clock = await eventually(
            lambda: clocks.find_one({"work_order_id": work_order_id}),
            lambda found: found is not None,
            timeout=30,
        )
    finally:
        await client.close()
    assert clock is not None
    warn_at: datetime = clock["warn_at"]
    due_at: datetime = clock["due_at"]
    assert (due_at - clock["started_at"]).total_seconds() == SLA_TARGET_SECONDS

    platform.stop_service("sla")  # the clock is running; the service goes down before warn_at
    assert datetime.now(UTC) < due_at
    await asyncio.sleep(max(0.0, (warn_at - datetime.now(UTC)).total_seconds()) + 0.5)
    platform.start_service("sla")  # back after warn_at, before due_at
    assert datetime.now(UTC) < due_at

    async def sla(event_type: str) -> list[dict[str, object]]:
        return await of_work_order(platform, Topic.SLA_EVENTS, event_type, work_order_id)

    def at(payload: dict[str, object], field: str) -> datetime:
        return datetime.fromisoformat(str(payload[field]))

    warnings = await eventually(
        lambda: sla("fixloop.sla.warning.v1"), lambda f: len(f) >= 1, timeout=60
    )
    breaches = await eventually(
        lambda: sla("fixloop.sla.breached.v1"), lambda f: len(f) >= 1, timeout=60
    )
    assert at(warnings[0], "fired_at") >= at(warnings[0], "warn_at")
    assert at(breaches[0], "fired_at") >= at(breaches[0], "due_at")
    assert at(warnings[0], "fired_at") <= at(breaches[0], "fired_at")

    # A clean restart after both fired emits nothing more; a graceful stop exits with status 0.
    assert platform.stop_service("sla") == 0
    platform.start_service("sla")
    await asyncio.sleep(3)
    assert len(await sla("fixloop.sla.warning.v1")) == 1
    assert len(await sla("fixloop.sla.breached.v1")) == 1


async def test_orders_service_killed_mid_stream_loses_and_doubles_nothing(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    total = 200
    batch_dir = tmp_path / "batch"
    batch_dir.mkdir()
    files = [order_file(batch_dir) for _ in range(total)]
    external_ids = {external_id for _, external_id in files}
    publish_all = functools.partial(
        cli, platform, "inbound", "publish", *(str(p) for p, _ in files)
    )
    publisher = asyncio.get_running_loop().run_in_executor(None, publish_all)

    async def some_processed() -> int:
        found = await events_of(
            platform, Topic.WORKORDERS_EVENTS, "fixloop.workorder.received.v1", timeout=0.5
        )
        return sum(1 for _, p in found if p["external_id"] in external_ids)

    await eventually(some_processed, lambda n: n >= 20, timeout=60, interval=0.05)
    platform.kill_service("orders")  # kill -9 while orders are flowing
    await publisher
    platform.start_service("orders")

    async def received_by_external_id() -> dict[str, set[object]]:
        found = await events_of(platform, Topic.WORKORDERS_EVENTS, "fixloop.workorder.received.v1")
        ids: dict[str, set[object]] = {}
        for _, payload in found:
            if payload["external_id"] in external_ids:
                ids.setdefault(str(payload["external_id"]), set()).add(payload["work_order_id"])
        return ids

    ids = await eventually(
        received_by_external_id, lambda found: len(found) == total, timeout=180, interval=1
    )
    assert all(len(work_orders) == 1 for work_orders in ids.values()), "duplicate effects"
    assert len({next(iter(w)) for w in ids.values()}) == total
