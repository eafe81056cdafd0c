"""All five services as separate processes, driven only through their public edges.

The repair loop closes at the end of the module: orders come in on the inbound topic; contractors
(their field-service apps) and the requester's partner integration act through the partner gRPC
API with the embedded stack's dev keys; the watch follows every step. What the other services did
is checked in their own stores. (One module, one platform: starting one costs half a minute.)"""

from __future__ import annotations

import asyncio
import email
import email.policy
import functools
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from fixloop.v1 import contractor_jobs_service_pb2 as jobs_pb2
from fixloop.v1 import contractor_jobs_service_pb2_grpc as jobs_grpc
from fixloop.v1 import work_order_pb2
from fixloop.v1 import work_orders_service_pb2 as wo_pb2
from fixloop.v1 import work_orders_service_pb2_grpc as wo_grpc
from fixloop_devkit.devstack import LocalPlatform
from fixloop_devkit.testing import ConsumedRecord, eventually, produce, read_topic
from fixloop_shared.store import make_client
from fixloop_shared.topics import Topic, dead_letter_topic

from .conftest import cli, get_work_order, order_file

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
    # Both serve Berlin hvac for acme; load balancing across the module's orders picks either.
    assert offered[0]["contractor_id"] in {"ctr-berliner-klima", "ctr-kaelte-nord"}

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


async def test_an_orders_clocks_warn_breach_escalate_and_meet_once_across_a_kill_9(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    """The e2e policy's clocks (seconds) through an order's lifecycle, driven through the
    public edges, with the sla service killed with SIGKILL and restarted while a clock runs;
    a delay past the repair deadline puts the repair at risk before it is due."""
    tag = f"clocks-{uuid.uuid4().hex[:8]}"
    path, _ = order_file(tmp_path, data_description=f"Air handling unit trips its breaker ({tag})")
    cli(platform, "inbound", "publish", str(path))
    edges = Edges(platform.grpc_target)

    async def said() -> list[tuple[str, object, object]]:
        records = await read_topic(platform.bootstrap, Topic.SLA_EVENTS.value, timeout=1)
        seen: dict[str, tuple[str, object, object]] = {}  # once per event id (at-least-once relay)
        for record in records:
            payload = record.json()
            if payload["work_order_id"] == work_order_id:
                kind = record.headers["ce_type"].removeprefix("fixloop.sla.").removesuffix(".v1")
                seen[record.headers["ce_id"]] = (kind, payload["milestone"], payload["cycle"])
        return list(seen.values())

    async def until(*wanted: tuple[str, str, int], timeout: float = 60) -> None:
        await eventually(said, lambda found: set(wanted) <= set(found), timeout=timeout)

    try:
        (offer,) = await wait_for_offers(edges, tag, 1)
        work_order_id = offer.work_order_id
        contractor_id = contractor_of(offer, await offers_by_contractor(edges, tag))
        key = CONTRACTOR_KEYS[contractor_id]
        await until(("warning", "dispatch_confirmation", 1))
        await edges.call(
            edges.jobs.AcceptOffer,
            jobs_pb2.AcceptOfferRequest(request_id=rid(), offer_id=offer.offer_id),
            key,
        )
        await until(("met", "dispatch_confirmation", 1), ("warning", "arrival", 1))

        # The arrival clock runs towards its breach; the sla service dies without a word.
        platform.kill_service("sla")
        await asyncio.sleep(2)
        platform.start_service("sla")
        await until(("breached", "arrival", 1), ("escalated", "arrival", 1))

        async def progress(kind: Any) -> None:
            await edges.call(
                edges.jobs.ReportProgress,
                jobs_pb2.ReportProgressRequest(
                    request_id=rid(), work_order_id=work_order_id, kind=kind, note="working"
                ),
                key,
            )

        await progress(jobs_pb2.PROGRESS_KIND_ON_SITE)
        await until(("warning", "progress_update", 1))
        await progress(jobs_pb2.PROGRESS_KIND_NOTE)
        await until(("met", "progress_update", 1))
        # A delay whose new ETA is after the repair deadline: at risk at once, before the breach.
        await edges.call(
            edges.jobs.ReportDelay,
            jobs_pb2.ReportDelayRequest(
                request_id=rid(),
                work_order_id=work_order_id,
                cause=work_order_pb2.DELAY_CAUSE_PARTS,
                new_eta=stamp(datetime.now(UTC) + timedelta(hours=2)),
                note="compressor on back order",
            ),
            key,
        )
        await until(("at_risk", "repair", 1))
        at_risk = next(
            r.json()
            for r in await read_topic(platform.bootstrap, Topic.SLA_EVENTS.value, timeout=1)
            if r.headers["ce_type"] == "fixloop.sla.at_risk.v1"
            and r.json()["work_order_id"] == work_order_id
        )
        predicted, due = (
            datetime.fromisoformat(str(at_risk[k])) for k in ("predicted_at", "due_at")
        )
        assert datetime.fromisoformat(str(at_risk["fired_at"])) < due
        assert at_risk["predicted_lateness_seconds"] == (predicted - due).total_seconds() > 0
        await edges.call(
            edges.jobs.CompleteWork,
            jobs_pb2.CompleteWorkRequest(
                request_id=rid(), work_order_id=work_order_id, completion=COMPLETION
            ),
            key,
        )
        await until(("met", "repair", 1), ("met", "progress_update", 3))
    finally:
        await edges.close()

    # Killed again and restarted after everything was said: nothing is said twice.
    platform.kill_service("sla")
    platform.start_service("sla")
    await asyncio.sleep(3)
    found = await said()
    assert sorted(found) == sorted(
        [
            ("warning", "dispatch_confirmation", 1),
            ("met", "dispatch_confirmation", 1),
            ("warning", "arrival", 1),
            ("breached", "arrival", 1),
            ("escalated", "arrival", 1),
            ("warning", "progress_update", 1),
            ("met", "progress_update", 1),
            ("at_risk", "repair", 1),
            ("met", "progress_update", 2),  # the delay is a progress report too
            ("met", "repair", 1),
            ("met", "progress_update", 3),
        ]
    ), found


# --------------------------------------------------------------------------- the repair loop

PARTNER_KEY = "dev-key-acme"
CONTRACTOR_KEYS = {
    "ctr-berliner-klima": "dev-key-contractor-berliner-klima",
    "ctr-kaelte-nord": "dev-key-contractor-kaelte-nord",
}
MAIN_LINE = [
    "received",
    "dispatching",
    "assigned",
    "scheduled",
    "en_route",
    "on_site",
    "work_completed",
    "verified",
    "closed",
]
RETRIED = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,  # a partner over its rate limit waits and retries
}
R = TypeVar("R")


def stamp(at: datetime) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(at)
    return value


class Edges:
    """The partner API as the partner and the contractors' apps call it, retrying a call that
    failed on the way (same request, same request_id) until it is answered."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.aio.insecure_channel(target)
        self.orders: Any = wo_grpc.WorkOrdersServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.jobs: Any = jobs_grpc.ContractorJobsServiceStub(self.channel)  # type: ignore[no-untyped-call]

    async def call(
        self,
        method: Callable[..., Awaitable[R]],
        request: Message,
        key: str,
        *,
        patience: float = 180,
    ) -> R:
        deadline = asyncio.get_running_loop().time() + patience
        while True:
            try:
                return await method(request, metadata=(("x-api-key", key),), timeout=10)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRIED or asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def get(self, work_order_id: str) -> work_order_pb2.WorkOrder:
        answer = await self.call(
            self.orders.GetWorkOrder,
            wo_pb2.GetWorkOrderRequest(work_order_id=work_order_id),
            PARTNER_KEY,
        )
        order: work_order_pb2.WorkOrder = answer.work_order
        return order

    async def open_offers(self, tag: str) -> list[jobs_pb2.Offer]:
        found: list[jobs_pb2.Offer] = []
        for key in CONTRACTOR_KEYS.values():
            token = ""
            while True:
                page = await self.call(
                    self.jobs.ListOffers,
                    jobs_pb2.ListOffersRequest(page_size=200, page_token=token),
                    key,
                )
                found.extend(o for o in page.offers if tag in o.description)
                token = page.next_page_token
                if not token:
                    break
        return found

    async def close(self) -> None:
        await self.channel.close()


def rid() -> str:
    return str(uuid.uuid4())


COMPLETION = work_order_pb2.CompletionReport(
    resolution_code="replaced_part",
    work_summary="Replaced both HEPA filters and the V-belt; unit ran 30 minutes without tripping.",
    labour_minutes=95,
    parts_used=[
        work_order_pb2.PartLine(part_number="FLT-HEPA-24", quantity=2),
        work_order_pb2.PartLine(part_number="BLT-V-A42", quantity=1),
    ],
    checklist=[
        work_order_pb2.ChecklistResult(
            item="Breaker holds", outcome=work_order_pb2.CHECKLIST_OUTCOME_PASSED
        )
    ],
    photos=[
        work_order_pb2.PhotoEvidence(
            uri="https://files.example.com/jobs/ahu-3-after.jpg",
            content_type="image/jpeg",
            size_bytes=284_113,
            sha256="3f" * 32,
        )
    ],
)


async def run_job(edges: Edges, offer: jobs_pb2.Offer, contractor_id: str) -> str:
    """Accept the offer and take the job through to verified work (each step once)."""
    key = CONTRACTOR_KEYS[contractor_id]
    work_order_id = offer.work_order_id
    now = datetime.now(UTC)
    jobs = edges.jobs
    steps: list[tuple[Any, Message, str]] = [
        (
            jobs.AcceptOffer,
            jobs_pb2.AcceptOfferRequest(request_id=rid(), offer_id=offer.offer_id),
            key,
        ),
        (
            jobs.ScheduleVisit,
            jobs_pb2.ScheduleVisitRequest(
                request_id=rid(),
                work_order_id=work_order_id,
                window=work_order_pb2.AppointmentWindow(
                    start=stamp(now + timedelta(hours=1)), end=stamp(now + timedelta(hours=3))
                ),
            ),
            key,
        ),
        (
            jobs.ReportProgress,
            jobs_pb2.ReportProgressRequest(
                request_id=rid(),
                work_order_id=work_order_id,
                kind=jobs_pb2.PROGRESS_KIND_EN_ROUTE,
                eta=stamp(now + timedelta(hours=1, minutes=10)),
            ),
            key,
        ),
        (
            jobs.ReportProgress,
            jobs_pb2.ReportProgressRequest(
                request_id=rid(), work_order_id=work_order_id, kind=jobs_pb2.PROGRESS_KIND_ON_SITE
            ),
            key,
        ),
        (
            jobs.CompleteWork,
            jobs_pb2.CompleteWorkRequest(
                request_id=rid(), work_order_id=work_order_id, completion=COMPLETION
            ),
            key,
        ),
        (
            edges.orders.VerifyCompletion,
            wo_pb2.VerifyCompletionRequest(request_id=rid(), work_order_id=work_order_id),
            PARTNER_KEY,
        ),
    ]
    for method, request, who in steps:
        await edges.call(method, request, who)
    return work_order_id


async def wait_for_offers(
    edges: Edges, tag: str, count: int, timeout: float = 120
) -> list[jobs_pb2.Offer]:
    return await eventually(
        lambda: edges.open_offers(tag),
        lambda found: len(found) >= count,
        timeout=timeout,
        interval=0.5,
    )


def contractor_of(offer: jobs_pb2.Offer, offers_by_key: dict[str, set[str]]) -> str:
    for contractor_id, ids in offers_by_key.items():
        if offer.offer_id in ids:
            return contractor_id
    raise AssertionError(offer.offer_id)


async def offers_by_contractor(edges: Edges, tag: str) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for contractor_id, key in CONTRACTOR_KEYS.items():
        result[contractor_id] = set()
        token = ""
        while True:
            page = await edges.call(
                edges.jobs.ListOffers,
                jobs_pb2.ListOffersRequest(page_size=200, page_token=token),
                key,
            )
            result[contractor_id] |= {o.offer_id for o in page.offers if tag in o.description}
            token = page.next_page_token
            if not token:
                break
    return result


async def watch(
    edges: Edges, work_order_id: str, *, cursor: str = "", stop_after: int | None = None
) -> list[wo_pb2.WatchWorkOrdersResponse]:
    """Steps of one order from the oldest (or after ``cursor``) until it is closed, or until
    ``stop_after`` steps, when the connection is dropped."""
    request = wo_pb2.WatchWorkOrdersRequest(
        work_order_id=work_order_id, from_oldest=not cursor, cursor=cursor
    )
    call = edges.orders.WatchWorkOrders(request, metadata=(("x-api-key", PARTNER_KEY),), timeout=60)
    seen: list[wo_pb2.WatchWorkOrdersResponse] = []
    async for answer in call:
        seen.append(answer)
        if answer.step.state == work_order_pb2.WORK_ORDER_STATE_CLOSED or len(seen) == stop_after:
            break
    call.cancel()
    return seen


async def test_an_inbound_order_runs_every_step_to_closed_and_the_watch_sees_each_once(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    tag = f"loop-{uuid.uuid4().hex[:8]}"
    path, _ = order_file(tmp_path, data_description=f"Air handling unit trips its breaker ({tag})")
    cli(platform, "inbound", "publish", str(path))
    edges = Edges(platform.grpc_target)
    try:
        (offer,) = await wait_for_offers(edges, tag, 1)
        contractor_id = contractor_of(offer, await offers_by_contractor(edges, tag))
        work_order_id = await run_job(edges, offer, contractor_id)
        order = await eventually(
            lambda: edges.get(work_order_id),
            lambda o: o.state == work_order_pb2.WORK_ORDER_STATE_CLOSED,
            timeout=60,
        )
        kinds = [entry.kind for entry in order.timeline]
        assert [k for k in kinds if k in MAIN_LINE] == MAIN_LINE
        assert order.completion.resolution_code == "replaced_part"

        everything = await watch(edges, work_order_id)
        assert [s.step.event_type.split(".")[2] for s in everything] == MAIN_LINE
        assert [s.step.version for s in everything] == list(range(1, len(MAIN_LINE) + 1))
        # A watch dropped after four steps and resumed from its last cursor misses and repeats
        # nothing.
        first = await watch(edges, work_order_id, stop_after=4)
        rest = await watch(edges, work_order_id, cursor=first[-1].cursor)
        assert [s.step.event_id for s in first + rest] == [s.step.event_id for s in everything]
    finally:
        await edges.close()

    # The parts used were consumed in the parts service's store, the dispatch clock met.
    parts = platform.env_for("parts")
    client = make_client(parts["FIXLOOP_PARTS_MONGODB_URI"], app_name="e2e")
    try:
        db = client[parts["FIXLOOP_PARTS_DATABASE"]]
        lines = await eventually(
            lambda: db["reservations"].find({"work_order_id": work_order_id}).to_list(),
            lambda found: bool(found) and all(line.get("status") == "consumed" for line in found),
            timeout=30,
        )
        assert {line["part_number"] for line in lines} == {"FLT-HEPA-24", "BLT-V-A42"}
    finally:
        await client.close()


async def store_docs(
    platform: LocalPlatform, service: str, collection: str, **query: Any
) -> list[Any]:
    env = platform.env_for(service)
    prefix = f"FIXLOOP_{service.upper()}_"
    client = make_client(env[prefix + "MONGODB_URI"], app_name="e2e")
    try:
        docs: list[Any] = await client[env[prefix + "DATABASE"]][collection].find(query).to_list()
        return docs
    finally:
        await client.close()


async def test_cancelling_in_the_middle_withdraws_offers_releases_parts_and_stops_clocks(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    tag = f"cancel-{uuid.uuid4().hex[:8]}"
    path, _ = order_file(tmp_path, data_description=f"Air handling unit trips its breaker ({tag})")
    cli(platform, "inbound", "publish", str(path))
    edges = Edges(platform.grpc_target)
    try:
        (offer,) = await wait_for_offers(edges, tag, 1)
        work_order_id = offer.work_order_id
        reserved = await eventually(
            lambda: store_docs(platform, "parts", "reservations", work_order_id=work_order_id),
            lambda found: len(found) == 2,
            timeout=30,
        )
        await eventually(
            lambda: store_docs(platform, "sla", "sla_orders", _id=work_order_id),
            lambda found: len(found) == 1,
        )
        stock_before = {
            (d["part_number"], d["warehouse_id"]): d["available"]
            for d in await store_docs(platform, "parts", "stock")
        }
        answer = await edges.call(
            edges.orders.CancelWorkOrder,
            wo_pb2.CancelWorkOrderRequest(
                request_id=rid(), work_order_id=work_order_id, reason="site closed"
            ),
            PARTNER_KEY,
        )
        assert answer.work_order.state == work_order_pb2.WORK_ORDER_STATE_CANCELLED
    finally:
        await edges.close()

    offers = await eventually(
        lambda: store_docs(platform, "contractors", "offers", work_order_id=work_order_id),
        lambda found: bool(found) and all(d["status"] == "withdrawn" for d in found),
        timeout=30,
    )
    assert offers
    lines = await eventually(
        lambda: store_docs(platform, "parts", "reservations", work_order_id=work_order_id),
        lambda found: all(d.get("status") == "released" for d in found),
        timeout=30,
    )
    stock_after = {
        (d["part_number"], d["warehouse_id"]): d["available"]
        for d in await store_docs(platform, "parts", "stock")
    }
    for line in reserved:
        where = (line["part_number"], line["warehouse_id"])
        assert stock_after[where] == stock_before[where] + line["quantity"], where
    assert len(lines) == 2
    # Every clock of the order stopped without its milestone: nothing is open, nothing is due.
    clocks = await eventually(
        lambda: store_docs(platform, "sla", "sla_orders", _id=work_order_id),
        lambda found: len(found) == 1 and found[0]["open"] == [],
        timeout=30,
    )
    assert clocks[0]["next_due_ms"] >= 9 * 10**15  # never due


async def test_orders_killed_while_a_hundred_orders_run_the_loop_each_step_once(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    total = 100
    tag = f"kill-{uuid.uuid4().hex[:8]}"
    batch = tmp_path / "batch"
    batch.mkdir()
    files = [order_file(batch, data_description=f"AHU trips ({tag} #{i})")[0] for i in range(total)]
    await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(cli, platform, "inbound", "publish", *(str(p) for p in files))
    )
    edges = Edges(platform.grpc_target)
    try:
        offers = await wait_for_offers(edges, tag, total, timeout=240)
        by_contractor = await offers_by_contractor(edges, tag)
        done: list[str] = []

        async def one(offer: jobs_pb2.Offer) -> None:
            done.append(await run_job(edges, offer, contractor_of(offer, by_contractor)))

        jobs = [asyncio.create_task(one(offer)) for offer in offers]
        await eventually(
            lambda: asyncio.sleep(0, len(done)), lambda n: n >= total // 5, timeout=240
        )
        platform.kill_service("orders")  # kill -9 while steps are being taken
        await asyncio.get_running_loop().run_in_executor(None, platform.start_service, "orders")
        await asyncio.wait_for(asyncio.gather(*jobs), timeout=600)

        async def states() -> list[int]:
            return [(await edges.get(o.work_order_id)).state for o in offers]

        await eventually(
            states,
            lambda s: all(x == work_order_pb2.WORK_ORDER_STATE_CLOSED for x in s),
            timeout=120,
        )
        for offer in offers:
            order = await edges.get(offer.work_order_id)
            kinds = [entry.kind for entry in order.timeline]
            assert [k for k in kinds if k in MAIN_LINE] == MAIN_LINE, (offer.work_order_id, kinds)
    finally:
        await edges.close()


def test_the_demo_drives_three_orders_to_closed(platform: LocalPlatform) -> None:
    result = cli(platform, "demo", "--orders", "3")
    out = result.stdout
    for state in ("assigned", "scheduled", "en_route", "on_site", "work_completed", "closed"):
        assert state in out, state
    assert out.count("closed") >= 3


# The 200 orders below use up the example stock and leave 200 offers open: it runs last.


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
