"""The repair loop closes: all five services as processes, driven only through the public edges.

Orders come in on the inbound topic; contractors (their field-service apps) and the requester's
partner integration act through the partner gRPC API with the embedded stack's dev keys; the
watch follows every step. What the other services did is checked in their own stores.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
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
from fixloop_devkit.testing import eventually
from fixloop_shared.store import make_client

from .conftest import cli, order_file

pytestmark = pytest.mark.e2e

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
        page = await edges.call(
            edges.jobs.ListOffers, jobs_pb2.ListOffersRequest(page_size=200), key
        )
        result[contractor_id] = {o.offer_id for o in page.offers if tag in o.description}
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
            lambda: store_docs(platform, "sla", "clocks", work_order_id=work_order_id),
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
    clocks = await eventually(
        lambda: store_docs(platform, "sla", "clocks", work_order_id=work_order_id),
        lambda found: bool(found) and all(d["state"] == "stopped" for d in found),
        timeout=30,
    )
    assert clocks


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
