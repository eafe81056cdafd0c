"""The work order lifecycle through the orders service's edges, on the real broker and store.

The service runs in-process (its own ``bootstrap``); the contractors service is played by
publishing its ``assignment.offered`` events. Everything else goes through the partner gRPC API
(as partners, operators and contractors) and the inbound topic (as the source platform).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from fixloop.v1 import contractor_jobs_service_pb2 as jobs_pb2
from fixloop.v1 import contractor_jobs_service_pb2_grpc as jobs_grpc
from fixloop.v1 import work_order_pb2
from fixloop.v1 import work_orders_service_pb2 as wo_pb2
from fixloop.v1 import work_orders_service_pb2_grpc as wo_grpc
from fixloop_devkit.testing import eventually, read_topic, start_in_process, unique
from fixloop_orders.adapters.change_feed import OrderChangeFeed
from fixloop_orders.adapters.consumers import TIMELINE_TOPICS
from fixloop_orders.adapters.mongo import (
    OFFERS,
    TIMELINE,
    WORK_ORDERS,
    MongoWorkOrderQueries,
)
from fixloop_orders.adapters.read_cache import ReadCache
from fixloop_orders.main import OrdersService, bootstrap
from fixloop_orders.settings import OrdersSettings
from fixloop_shared.bus import DLQ_HEADER_PREFIX
from fixloop_shared.contracts import (
    AssignmentExpired,
    AssignmentOffered,
    CancellationRequested,
    CompletionVerified,
    EventPayload,
)
from fixloop_shared.envelope import EventEnvelope
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topics import Service, Topic, dead_letter_topic
from tests.integration.principals import principals_of
from tests.integration.test_orders_service import publish_binary, submit_structured, submitted

pytestmark = pytest.mark.integration

SOURCE = "lifecycle.example"
TENANT = "lifecycle-it-acme"
OTHER_TENANT = "lifecycle-it-globex"
C1, C2 = "lifecycle-it-c1", "lifecycle-it-c2"
KEYS, PRINCIPALS = principals_of(
    "lc", tenant=TENANT, other_tenant=OTHER_TENANT, contractors={"c1": C1, "c2": C2}
)
S = work_order_pb2
REOPEN_WINDOW_SECONDS = 3.0


@dataclass
class Stack:
    service: OrdersService
    bootstrap: str
    channel: grpc.aio.Channel

    @property
    def db(self) -> Any:
        return self.service.ctx.store.db

    @property
    def orders(self) -> wo_grpc.WorkOrdersServiceStub:
        return wo_grpc.WorkOrdersServiceStub(self.channel)  # type: ignore[no-untyped-call]

    @property
    def jobs(self) -> jobs_grpc.ContractorJobsServiceStub:
        return jobs_grpc.ContractorJobsServiceStub(self.channel)  # type: ignore[no-untyped-call]

    async def call(self, method: Callable[..., Awaitable[Any]], request: Message, who: str) -> Any:
        return await method(request, metadata=(("x-api-key", KEYS[who]),), timeout=10)

    async def get(self, work_order_id: str, who: str = "partner") -> work_order_pb2.WorkOrder:
        answer = await self.call(
            self.orders.GetWorkOrder, wo_pb2.GetWorkOrderRequest(work_order_id=work_order_id), who
        )
        order: work_order_pb2.WorkOrder = answer.work_order
        return order

    async def wait_state(self, work_order_id: str, state: int) -> work_order_pb2.WorkOrder:
        return await eventually(lambda: self.get(work_order_id), lambda o: o.state == state)

    async def timeline_kinds(self, work_order_id: str) -> list[str]:
        docs = await self.db[TIMELINE].find({"work_order_id": work_order_id}).to_list()
        return [
            doc["kind"]
            for doc in sorted(docs, key=lambda d: int(d["details"].get("version", 0) or 0))
        ]


@pytest.fixture(scope="module")
async def stack(kafka_bootstrap: str, mongodb_uri: str) -> AsyncIterator[Stack]:
    settings = OrdersSettings(
        mongodb_uri=mongodb_uri,
        database=unique("lifecycle_it").replace("-", "_"),
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        health_port=0,
        grpc_port=0,
        grpc_reflection=False,
        grpc_rate_limit="",
        principals=PRINCIPALS,
        source_tenants={SOURCE: [TENANT]},
        outbox_poll_seconds=0.1,
        close_after_seconds=0,
        verify_after_hours=2 / 3600,  # two seconds: automatic verification is seen in a test
        lifecycle_timer_poll_seconds=0.2,
        reopen_window_days=REOPEN_WINDOW_SECONDS / 86400,
    )
    service = await start_in_process(lambda: bootstrap(settings))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.partner_api.bound_port}")
    try:
        yield Stack(service=service, bootstrap=kafka_bootstrap, channel=channel)
    finally:
        await channel.close()
        await service.app.stop()


def rid() -> str:
    return str(uuid.uuid4())


def stamp(at: datetime) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(at)
    return value


async def received_order(stack: Stack) -> str:
    external_id = unique("LC")
    await submit_structured(stack.bootstrap, submitted(external_id), tenant=TENANT, source=SOURCE)

    async def probe() -> Any:
        return await stack.db[WORK_ORDERS].find_one({"external_id": external_id})

    doc = await eventually(probe, lambda d: d is not None)
    return str(doc["_id"])


async def offer(
    stack: Stack,
    work_order_id: str,
    contractor: str,
    *,
    minutes: int = 30,
    assigned_by: str | None = None,
    reason: str | None = None,
) -> str:
    offer_id = unique("offer")
    now = datetime.now(UTC)
    payload = AssignmentOffered(
        work_order_id=work_order_id,
        offer_id=offer_id,
        contractor_id=contractor,
        contractor_name=f"Contractor {contractor}",
        offered_at=now,
        expires_at=now + timedelta(minutes=minutes),
        assigned_by=assigned_by,
        reason=reason,
    )
    envelope = EventEnvelope.new(
        payload, source=Service.CONTRACTORS, subject=work_order_id, tenant=TENANT
    )
    await publish_binary(
        stack.bootstrap, Topic.CONTRACTORS_EVENTS, envelope, payload, work_order_id
    )

    async def probe() -> Any:
        return await stack.db[OFFERS].find_one({"_id": offer_id})

    await eventually(probe, lambda d: d is not None)
    return offer_id


COMPLETION = work_order_pb2.CompletionReport(
    resolution_code="replaced_part",
    work_summary="Replaced the belt and tested for 20 minutes.",
    labour_minutes=80,
    parts_used=[work_order_pb2.PartLine(part_number="ORDERS-IT-FILTER", quantity=1)],
    checklist=[
        work_order_pb2.ChecklistResult(
            item="Airflow measured", outcome=work_order_pb2.CHECKLIST_OUTCOME_PASSED
        )
    ],
    photos=[
        work_order_pb2.PhotoEvidence(
            uri="https://files.example.com/p/1.jpg",
            content_type="image/jpeg",
            size_bytes=123_456,
            sha256="a" * 64,
        )
    ],
)


async def assigned_order(stack: Stack) -> str:
    work_order_id = await received_order(stack)
    offer_id = await offer(stack, work_order_id, C1)
    await stack.wait_state(work_order_id, S.WORK_ORDER_STATE_DISPATCHING)
    await stack.call(
        stack.jobs.AcceptOffer,
        jobs_pb2.AcceptOfferRequest(request_id=rid(), offer_id=offer_id),
        "c1",
    )
    return work_order_id


async def complete(stack: Stack, work_order_id: str) -> None:
    now = datetime.now(UTC)
    jobs = stack.jobs
    await stack.call(
        jobs.ScheduleVisit,
        jobs_pb2.ScheduleVisitRequest(
            request_id=rid(),
            work_order_id=work_order_id,
            window=work_order_pb2.AppointmentWindow(
                start=stamp(now + timedelta(hours=1)), end=stamp(now + timedelta(hours=3))
            ),
        ),
        "c1",
    )
    for kind in (jobs_pb2.PROGRESS_KIND_EN_ROUTE, jobs_pb2.PROGRESS_KIND_ON_SITE):
        await stack.call(
            jobs.ReportProgress,
            jobs_pb2.ReportProgressRequest(
                request_id=rid(),
                work_order_id=work_order_id,
                kind=kind,
                eta=stamp(now + timedelta(hours=1)),
            ),
            "c1",
        )
    await stack.call(
        jobs.CompleteWork,
        jobs_pb2.CompleteWorkRequest(
            request_id=rid(), work_order_id=work_order_id, completion=COMPLETION
        ),
        "c1",
    )


# --------------------------------------------------------------------------- the whole loop


async def test_an_inbound_order_goes_through_every_state_to_closed_and_the_watch_sees_each_step(
    stack: Stack,
) -> None:
    work_order_id = await assigned_order(stack)
    await complete(stack, work_order_id)
    order = await stack.get(work_order_id)
    assert order.state == S.WORK_ORDER_STATE_WORK_COMPLETED
    assert order.completion.resolution_code == "replaced_part"
    assert order.contractor_id == C1
    await stack.call(
        stack.orders.VerifyCompletion,
        wo_pb2.VerifyCompletionRequest(request_id=rid(), work_order_id=work_order_id),
        "partner",
    )
    closed = await stack.wait_state(work_order_id, S.WORK_ORDER_STATE_CLOSED)
    kinds = [entry.kind for entry in closed.timeline]
    for step in (
        "received",
        "dispatching",
        "assigned",
        "scheduled",
        "en_route",
        "on_site",
        "work_completed",
        "verified",
        "closed",
    ):
        assert kinds.count(step) == 1, (step, kinds)

    # The watch delivers every step of the order, in order, each once.
    steps: list[wo_pb2.WatchWorkOrdersResponse] = []
    call = stack.orders.WatchWorkOrders(
        wo_pb2.WatchWorkOrdersRequest(work_order_id=work_order_id, from_oldest=True),
        metadata=(("x-api-key", KEYS["partner"]),),
    )
    async for answer in call:
        steps.append(answer)
        if answer.step.state == S.WORK_ORDER_STATE_CLOSED:
            break
    call.cancel()
    assert [s.step.version for s in steps] == list(range(1, len(steps) + 1))
    assert [s.step.event_type.split(".")[2] for s in steps] == [
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

    # Resumed from the cursor of the fourth step: exactly the steps after it, nothing repeated.
    resumed: list[wo_pb2.WatchWorkOrdersResponse] = []
    call = stack.orders.WatchWorkOrders(
        wo_pb2.WatchWorkOrdersRequest(work_order_id=work_order_id, cursor=steps[3].cursor),
        metadata=(("x-api-key", KEYS["partner"]),),
    )
    async for answer in call:
        resumed.append(answer)
        if answer.step.state == S.WORK_ORDER_STATE_CLOSED:
            break
    call.cancel()
    assert [s.step.event_id for s in resumed] == [s.step.event_id for s in steps[4:]]

    # "As of" the moment it was assigned, replayed from the timeline.
    assigned_at = next(e.at for e in closed.timeline if e.kind == "assigned")
    past = await stack.call(
        stack.orders.GetWorkOrder,
        wo_pb2.GetWorkOrderRequest(work_order_id=work_order_id, as_of=assigned_at),
        "partner",
    )
    assert past.work_order.state_as_of == S.WORK_ORDER_STATE_ASSIGNED
    assert [e.kind for e in past.work_order.timeline][-1] in {"assigned", "assignment_offered"}


async def test_completed_work_without_an_answer_is_verified_automatically_then_closed(
    stack: Stack,
) -> None:
    work_order_id = await assigned_order(stack)
    await complete(stack, work_order_id)
    closed = await stack.wait_state(work_order_id, S.WORK_ORDER_STATE_CLOSED)
    verified = [e for e in closed.timeline if e.kind == "verified"]
    assert len(verified) == 1
    assert verified[0].details["actor_kind"] == "system"
    assert verified[0].details["automatic"] == "true"


async def test_work_rejected_within_the_window_reopens_and_after_it_makes_a_follow_up(
    stack: Stack,
) -> None:
    work_order_id = await assigned_order(stack)
    await complete(stack, work_order_id)
    reject = wo_pb2.RejectCompletionRequest(
        request_id=rid(), work_order_id=work_order_id, reason="still trips the breaker"
    )
    answer = await stack.call(stack.orders.RejectCompletion, reject, "partner")
    assert answer.work_order.state == S.WORK_ORDER_STATE_ASSIGNED
    assert answer.work_order.contractor_id == C1
    assert not answer.HasField("follow_up")

    # Completed again and closed; rejected once the reopen window is over: a follow-up order.
    await complete(stack, work_order_id)
    await stack.call(
        stack.orders.VerifyCompletion,
        wo_pb2.VerifyCompletionRequest(request_id=rid(), work_order_id=work_order_id),
        "partner",
    )
    await stack.wait_state(work_order_id, S.WORK_ORDER_STATE_CLOSED)
    await asyncio.sleep(REOPEN_WINDOW_SECONDS + 0.5)
    late = wo_pb2.RejectCompletionRequest(
        request_id=rid(), work_order_id=work_order_id, reason="leaking again"
    )
    answer = await stack.call(stack.orders.RejectCompletion, late, "partner")
    assert answer.work_order.state == S.WORK_ORDER_STATE_CLOSED
    follow_up = answer.follow_up
    assert follow_up.follow_up_of == work_order_id
    assert follow_up.state == S.WORK_ORDER_STATE_RECEIVED
    assert follow_up.external_id.startswith(answer.work_order.external_id)
    assert follow_up.site.site_id == answer.work_order.site.site_id
    original = await stack.get(work_order_id)
    assert original.state == S.WORK_ORDER_STATE_CLOSED
    assert [e.kind for e in original.timeline].count("follow_up_created") == 1
    assert [e.kind for e in original.timeline].count("reopened") == 1
    assert (await stack.get(follow_up.id)).follow_up_of == work_order_id


# --------------------------------------------------------------------------- idempotency


async def test_a_mutation_retried_with_its_request_id_has_one_effect_and_one_answer(
    stack: Stack,
) -> None:
    work_order_id = await assigned_order(stack)
    request = wo_pb2.AddCommentRequest(
        request_id=rid(), work_order_id=work_order_id, text="Please ring at the back door."
    )
    first = await stack.call(stack.orders.AddComment, request, "partner")
    again = await asyncio.gather(
        *(stack.call(stack.orders.AddComment, request, "partner") for _ in range(4))
    )
    assert all(
        a.SerializeToString(deterministic=True) == first.SerializeToString(deterministic=True)
        for a in again
    )
    assert (await stack.timeline_kinds(work_order_id)).count("comment_added") == 1

    changed = wo_pb2.AddCommentRequest(
        request_id=request.request_id, work_order_id=work_order_id, text="Something else"
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.call(stack.orders.AddComment, changed, "partner")
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def twice(stack: Stack, method: Any, request: Message, who: str) -> Any:
    """Send a mutation twice at once and once more after: one answer, byte for byte."""
    answers = await asyncio.gather(*(stack.call(method, request, who) for _ in range(2)))
    answers.append(await stack.call(method, request, who))
    first = answers[0].SerializeToString(deterministic=True)
    assert all(a.SerializeToString(deterministic=True) == first for a in answers), method
    return answers[0]


async def test_every_mutation_repeated_with_its_request_id_has_one_effect(stack: Stack) -> None:
    external_id = unique("LC-TWICE")
    create = wo_pb2.CreateWorkOrderRequest(
        request_id=rid(),
        work_order=wo_pb2.WorkOrderSubmission(
            external_id=external_id,
            site=work_order_pb2.Site(
                site_id="berlin-mitte",
                name="Acme Store Berlin Mitte",
                address=work_order_pb2.Address(
                    line1="Rosenthaler Str. 40", city="Berlin", postal_code="10178", country="DE"
                ),
                timezone="Europe/Berlin",
            ),
            equipment=work_order_pb2.Equipment(equipment_id="ahu-3", equipment_class="hvac"),
            category=work_order_pb2.CATEGORY_BREAKDOWN,
            priority=work_order_pb2.PRIORITY_HIGH,
            description="Air handling unit 3 trips its breaker.",
            requester=work_order_pb2.Requester(
                name="Mara Keller",
                email="mara.keller@example.com",
                phone="+4915112345678",
                locale="de-DE",
                sms_consent=True,
            ),
        ),
    )
    created = await twice(stack, stack.orders.CreateWorkOrder, create, "partner")
    assert created.created
    # The requester's consent to SMS travels with the order (notifications reads it there).
    assert created.work_order.requester.sms_consent
    stored = await stack.db[WORK_ORDERS].find_one({"_id": created.work_order.id})
    assert stored["requester"]["sms_consent"] is True
    # The same external order with a new request id: the same order, not created again.
    again = create.__deepcopy__()
    again.request_id = rid()
    repeated = await stack.call(stack.orders.CreateWorkOrder, again, "partner")
    assert (repeated.created, repeated.work_order.id) == (False, created.work_order.id)
    work_order_id = created.work_order.id

    offer_id = await offer(stack, work_order_id, C1)
    await stack.wait_state(work_order_id, S.WORK_ORDER_STATE_DISPATCHING)
    declined_offer = await offer(stack, work_order_id, C2)
    await twice(
        stack,
        stack.jobs.DeclineOffer,
        jobs_pb2.DeclineOfferRequest(request_id=rid(), offer_id=declined_offer, reason="too far"),
        "c2",
    )
    await twice(
        stack,
        stack.jobs.AcceptOffer,
        jobs_pb2.AcceptOfferRequest(request_id=rid(), offer_id=offer_id),
        "c1",
    )
    now = datetime.now(UTC)
    window = work_order_pb2.AppointmentWindow(
        start=stamp(now + timedelta(hours=1)), end=stamp(now + timedelta(hours=2))
    )
    steps: list[tuple[Any, Message, str]] = [
        (
            stack.jobs.ScheduleVisit,
            jobs_pb2.ScheduleVisitRequest(
                request_id=rid(), work_order_id=work_order_id, window=window
            ),
            "c1",
        ),
        (
            stack.jobs.ReportProgress,
            jobs_pb2.ReportProgressRequest(
                request_id=rid(), work_order_id=work_order_id, kind=jobs_pb2.PROGRESS_KIND_EN_ROUTE
            ),
            "c1",
        ),
        (
            stack.jobs.ReportProgress,
            jobs_pb2.ReportProgressRequest(
                request_id=rid(), work_order_id=work_order_id, kind=jobs_pb2.PROGRESS_KIND_ON_SITE
            ),
            "c1",
        ),
        (
            stack.jobs.ReportDelay,
            jobs_pb2.ReportDelayRequest(
                request_id=rid(),
                work_order_id=work_order_id,
                cause=work_order_pb2.DELAY_CAUSE_PARTS,
                new_eta=stamp(now + timedelta(days=1)),
            ),
            "c1",
        ),
        (
            stack.jobs.ReportProgress,
            jobs_pb2.ReportProgressRequest(
                request_id=rid(),
                work_order_id=work_order_id,
                kind=jobs_pb2.PROGRESS_KIND_AWAITING_PARTS,
                parts=[work_order_pb2.PartLine(part_number="RELAY-9", quantity=1)],
            ),
            "c1",
        ),
        (
            stack.jobs.ReportProgress,
            jobs_pb2.ReportProgressRequest(
                request_id=rid(), work_order_id=work_order_id, kind=jobs_pb2.PROGRESS_KIND_ON_SITE
            ),
            "c1",
        ),
        (
            stack.jobs.CommentOnJob,
            jobs_pb2.CommentOnJobRequest(
                request_id=rid(), work_order_id=work_order_id, text="Relay fitted."
            ),
            "c1",
        ),
        (
            stack.orders.AddComment,
            wo_pb2.AddCommentRequest(request_id=rid(), work_order_id=work_order_id, text="Thanks!"),
            "operator",
        ),
        (
            stack.jobs.CompleteWork,
            jobs_pb2.CompleteWorkRequest(
                request_id=rid(), work_order_id=work_order_id, completion=COMPLETION
            ),
            "c1",
        ),
        (
            stack.orders.RejectCompletion,
            wo_pb2.RejectCompletionRequest(
                request_id=rid(), work_order_id=work_order_id, reason="still noisy"
            ),
            "partner",
        ),
        (
            stack.jobs.ReportProgress,
            jobs_pb2.ReportProgressRequest(
                request_id=rid(), work_order_id=work_order_id, kind=jobs_pb2.PROGRESS_KIND_ON_SITE
            ),
            "c1",
        ),
        (
            stack.jobs.CompleteWork,
            jobs_pb2.CompleteWorkRequest(
                request_id=rid(), work_order_id=work_order_id, completion=COMPLETION
            ),
            "c1",
        ),
        (
            stack.orders.VerifyCompletion,
            wo_pb2.VerifyCompletionRequest(request_id=rid(), work_order_id=work_order_id),
            "partner",
        ),
    ]
    for method, request, who in steps:
        await twice(stack, method, request, who)
    await stack.wait_state(work_order_id, S.WORK_ORDER_STATE_CLOSED)
    kinds = await stack.timeline_kinds(work_order_id)
    expected = {
        "offer_declined": 1,
        "assigned": 1,
        "scheduled": 1,
        "en_route": 1,
        "on_site": 3,
        "delayed": 1,
        "awaiting_parts": 1,
        "comment_added": 2,
        "work_completed": 2,
        "reopened": 1,
        "verified": 1,
        "closed": 1,
    }
    assert {kind: kinds.count(kind) for kind in expected} == expected
    # A cancel repeated after the order closed is refused, not a second effect.
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        stack.call(
            stack.orders.CancelWorkOrder,
            wo_pb2.CancelWorkOrderRequest(
                request_id=rid(), work_order_id=work_order_id, reason="x"
            ),
            "partner",
        ),
    )


def submission(external_id: str) -> wo_pb2.WorkOrderSubmission:
    return wo_pb2.WorkOrderSubmission(
        external_id=external_id,
        site=work_order_pb2.Site(
            site_id="berlin-mitte",
            name="Acme Store Berlin Mitte",
            address=work_order_pb2.Address(
                line1="Rosenthaler Str. 40", city="Berlin", postal_code="10178", country="DE"
            ),
            timezone="Europe/Berlin",
        ),
        equipment=work_order_pb2.Equipment(equipment_id="ahu-3", equipment_class="hvac"),
        category=work_order_pb2.CATEGORY_BREAKDOWN,
        priority=work_order_pb2.PRIORITY_HIGH,
        description="Air handling unit 3 trips its breaker.",
        requester=work_order_pb2.Requester(
            name="Mara Keller", email="mara.keller@example.com", locale="de-DE"
        ),
    )


async def test_pages_list_every_order_and_offer_once(stack: Stack) -> None:
    for _ in range(23):
        await stack.call(
            stack.orders.CreateWorkOrder,
            wo_pb2.CreateWorkOrderRequest(request_id=rid(), work_order=submission(unique("PG"))),
            "partner",
        )

    async def walk(**filters: Any) -> list[str]:
        ids: list[str] = []
        token = ""
        while True:
            page = await stack.call(
                stack.orders.ListWorkOrders,
                wo_pb2.ListWorkOrdersRequest(page_size=7, page_token=token, **filters),
                "partner",
            )
            assert len(page.work_orders) <= 7
            ids.extend(o.id for o in page.work_orders)
            token = page.next_page_token
            if not token:
                return ids

    stored = await stack.db[WORK_ORDERS].find({"tenant": TENANT}).to_list()
    everything = await walk()
    assert len(everything) == len(set(everything))
    assert set(everything) == {d["_id"] for d in stored}
    received = await walk(states=[S.WORK_ORDER_STATE_RECEIVED])
    assert sorted(received) == sorted(d["_id"] for d in stored if d["state"] == "received")
    newest = max(d["updated_at"] for d in stored)
    recent = await walk(updated_since=stamp(newest))
    assert set(recent) == {d["_id"] for d in stored if d["updated_at"] >= newest}
    other = await stack.call(stack.orders.ListWorkOrders, wo_pb2.ListWorkOrdersRequest(), "other")
    assert not set(everything) & {o.id for o in other.work_orders}

    # Nine offers to contractor c2, three of them declined: open ones page by page, each once.
    offered = [await offer(stack, work_order_id, C2) for work_order_id in received[:9]]
    for offer_id in offered[:3]:
        await stack.call(
            stack.jobs.DeclineOffer,
            jobs_pb2.DeclineOfferRequest(request_id=rid(), offer_id=offer_id, reason="booked"),
            "c2",
        )

    async def offers(include_closed: bool) -> list[str]:
        ids: list[str] = []
        token = ""
        while True:
            page = await stack.call(
                stack.jobs.ListOffers,
                jobs_pb2.ListOffersRequest(
                    page_size=4, page_token=token, include_closed=include_closed
                ),
                "c2",
            )
            ids.extend(o.offer_id for o in page.offers)
            token = page.next_page_token
            if not token:
                return ids

    mine = set(offered)
    open_ones = [o for o in await offers(False) if o in mine]
    assert sorted(open_ones) == sorted(offered[3:])
    all_ones = [o for o in await offers(True) if o in mine]
    assert sorted(all_ones) == sorted(offered)


# --------------------------------------------------------------------------- read cache


async def test_a_read_during_a_step_shows_the_order_and_its_timeline_at_the_same_step(
    stack: Stack,
) -> None:
    """A step's transaction writes the order, then (at commit) its timeline entry. A read in
    between shows both as they were before the step or both after it, never the order a step
    ahead of its timeline (a store without isolation between sessions shows the half-written
    step; the read waits it out)."""
    work_order_id = await received_order(stack)
    queries = MongoWorkOrderQueries(stack.db)
    before = await queries.get_work_order(TENANT, work_order_id)
    assert before is not None
    assert before.version == 1

    async def half_written_step() -> None:
        async with stack.service.ctx.store.transaction() as uow:
            await stack.db[WORK_ORDERS].update_one(
                {"_id": work_order_id}, {"$inc": {"version": 1}}, session=uow.session
            )
            step_written.set()
            await asyncio.sleep(0.3)
            now = datetime.now(UTC)
            uow.append_at_commit(
                TIMELINE,
                [
                    {
                        "work_order_id": work_order_id,
                        "tenant": TENANT,
                        "entry_id": unique("entry"),
                        "at": now,
                        "kind": "comment",
                        "summary": "Comment",
                        "event_type": "fixloop.workorder.commented.v1",
                        "details": {"version": "2"},
                        "recorded_at": now,
                    }
                ],
            )

    step_written = asyncio.Event()
    writer = asyncio.create_task(half_written_step())
    await step_written.wait()
    during = await queries.get_work_order(TENANT, work_order_id)
    await writer
    assert during is not None
    steps = [int(e.details["version"]) for e in during.timeline if "version" in e.details]
    assert max(steps) == during.version
    after = await queries.get_work_order(TENANT, work_order_id)
    assert after is not None
    assert after.version == 2
    assert [int(e.details["version"]) for e in after.timeline] == [1, 2]


async def test_another_pods_kept_reads_follow_every_change(stack: Stack) -> None:
    """Pod B answers reads from memory; pod A (this stack) makes every change. B's answers follow
    A's steps (from the work order events) and the timeline entries and offers A records from
    other services' events (unsettled for a moment), long before B's kept answers would age out."""
    cache: ReadCache[Any] = ReadCache(max_age_seconds=600, settle_seconds=1.0, followed=True)
    feed = OrderChangeFeed(
        KafkaSettings(bootstrap=stack.bootstrap), cache, other_topics=TIMELINE_TOPICS
    )
    pod_b = dataclasses.replace(stack.service.partner_api, port=0, readiness=None, cache=cache)
    await pod_b.start()
    await feed.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{pod_b.bound_port}")
    b = Stack(service=stack.service, bootstrap=stack.bootstrap, channel=channel)
    try:
        # Both pods' caches follow the topics (pod A's own feed starts once its consumers are up).
        own = stack.service.partner_api.cache
        assert own is not None
        await eventually(lambda: asyncio.sleep(0, own.live and cache.live), lambda live: live)
        work_order_id = await received_order(stack)
        first = await offer(stack, work_order_id, C1)
        await b.wait_state(work_order_id, S.WORK_ORDER_STATE_DISPATCHING)
        await asyncio.sleep(1.5)  # the offer's record left the order unsettled for 1 s
        kept = await b.get(work_order_id)  # from the store, then kept
        hits = cache.hits
        assert await b.get(work_order_id) == kept
        assert cache.hits == hits + 1  # answered from memory

        # A timeline entry and an offer recorded by pod A (no lifecycle step of their own).
        second = await offer(stack, work_order_id, C2)
        seen = await eventually(
            lambda: b.get(work_order_id),
            lambda o: len(o.timeline) > len(kept.timeline),
            timeout=10,
        )
        assert second in {e.details.get("offer_id") for e in seen.timeline}

        async def c2_offers() -> list[str]:
            page = await b.call(b.jobs.ListOffers, jobs_pb2.ListOffersRequest(), "c2")
            return [o.offer_id for o in page.offers]

        assert second in await eventually(c2_offers, lambda ids: second in ids, timeout=10)

        # A lifecycle step on pod A: B's kept order, list and jobs follow.
        async def acme_list() -> dict[str, int]:
            page = await b.call(
                b.orders.ListWorkOrders, wo_pb2.ListWorkOrdersRequest(page_size=100), "partner"
            )
            return {o.id: o.state for o in page.work_orders}

        assert (await acme_list())[work_order_id] == S.WORK_ORDER_STATE_DISPATCHING
        await stack.call(
            stack.jobs.AcceptOffer,
            jobs_pb2.AcceptOfferRequest(request_id=rid(), offer_id=first),
            "c1",
        )
        assigned = await eventually(
            lambda: b.get(work_order_id),
            lambda o: o.state == S.WORK_ORDER_STATE_ASSIGNED,
            timeout=10,
        )
        assert assigned.contractor_id == C1
        lists = await eventually(
            acme_list, lambda o: o[work_order_id] == S.WORK_ORDER_STATE_ASSIGNED, timeout=10
        )
        assert lists[work_order_id] == S.WORK_ORDER_STATE_ASSIGNED
        jobs = await b.call(b.jobs.ListJobs, jobs_pb2.ListJobsRequest(), "c1")
        assert work_order_id in {j.id for j in jobs.jobs}
    finally:
        await channel.close()
        await feed.stop()
        await pod_b.stop()
    assert not cache.live


# --------------------------------------------------------------------------- refusals


async def expect(code: grpc.StatusCode, call: Awaitable[Any]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() is code, refused.value.details()


async def test_illegal_steps_are_refused_and_change_nothing(stack: Stack) -> None:
    work_order_id = await received_order(stack)
    offer_id = await offer(stack, work_order_id, C1)
    await stack.wait_state(work_order_id, S.WORK_ORDER_STATE_DISPATCHING)
    before = await stack.timeline_kinds(work_order_id)

    # Completing before accepting: the contractor holds no such job yet.
    await expect(
        grpc.StatusCode.NOT_FOUND,
        stack.call(
            stack.jobs.CompleteWork,
            jobs_pb2.CompleteWorkRequest(
                request_id=rid(), work_order_id=work_order_id, completion=COMPLETION
            ),
            "c1",
        ),
    )
    # Another contractor cannot take this contractor's offer.
    await expect(
        grpc.StatusCode.NOT_FOUND,
        stack.call(
            stack.jobs.AcceptOffer,
            jobs_pb2.AcceptOfferRequest(request_id=rid(), offer_id=offer_id),
            "c2",
        ),
    )
    # Verifying work that was never completed.
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        stack.call(
            stack.orders.VerifyCompletion,
            wo_pb2.VerifyCompletionRequest(request_id=rid(), work_order_id=work_order_id),
            "partner",
        ),
    )
    assert await stack.timeline_kinds(work_order_id) == before

    # Accepting after a cancellation.
    await stack.call(
        stack.orders.CancelWorkOrder,
        wo_pb2.CancelWorkOrderRequest(
            request_id=rid(), work_order_id=work_order_id, reason="duplicate"
        ),
        "operator",
    )
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        stack.call(
            stack.jobs.AcceptOffer,
            jobs_pb2.AcceptOfferRequest(request_id=rid(), offer_id=offer_id),
            "c1",
        ),
    )
    order = await stack.get(work_order_id)
    assert order.state == S.WORK_ORDER_STATE_CANCELLED
    assert not order.HasField("contractor_id")


async def test_an_offer_the_contractors_service_timed_out_can_no_longer_be_taken(
    stack: Stack,
) -> None:
    work_order_id = await received_order(stack)
    offer_id = await offer(stack, work_order_id, C1)
    await stack.wait_state(work_order_id, S.WORK_ORDER_STATE_DISPATCHING)
    expired = AssignmentExpired(
        work_order_id=work_order_id,
        offer_id=offer_id,
        contractor_id=C1,
        expired_at=datetime.now(UTC),
        dispatch_round=1,
    )
    envelope = EventEnvelope.new(
        expired, source=Service.CONTRACTORS, subject=work_order_id, tenant=TENANT
    )
    await publish_binary(
        stack.bootstrap, Topic.CONTRACTORS_EVENTS, envelope, expired, work_order_id
    )

    async def stored() -> Any:
        return await stack.db[OFFERS].find_one({"_id": offer_id})

    await eventually(stored, lambda doc: doc is not None and doc["status"] == "expired")
    assert "assignment_expired" in await stack.timeline_kinds(work_order_id)
    # Gone from the contractor's open offers, listed as expired with the closed ones.
    open_offers = await stack.call(stack.jobs.ListOffers, jobs_pb2.ListOffersRequest(), "c1")
    assert offer_id not in {o.offer_id for o in open_offers.offers}
    every = await stack.call(
        stack.jobs.ListOffers, jobs_pb2.ListOffersRequest(include_closed=True), "c1"
    )
    (mine,) = [o for o in every.offers if o.offer_id == offer_id]
    assert mine.status == jobs_pb2.OFFER_STATUS_EXPIRED
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        stack.call(
            stack.jobs.AcceptOffer,
            jobs_pb2.AcceptOfferRequest(request_id=rid(), offer_id=offer_id),
            "c1",
        ),
    )
    assert (await stack.get(work_order_id)).state == S.WORK_ORDER_STATE_DISPATCHING


async def test_an_operator_assignment_from_the_dispatch_queue_assigns_the_order_at_once(
    stack: Stack,
) -> None:
    work_order_id = await received_order(stack)
    first = await offer(stack, work_order_id, C1)
    await stack.wait_state(work_order_id, S.WORK_ORDER_STATE_DISPATCHING)
    await offer(stack, work_order_id, C2, assigned_by="ops-jane", reason="knows the site")

    order = await stack.wait_state(work_order_id, S.WORK_ORDER_STATE_ASSIGNED)
    assert order.contractor_id == C2
    docs = await stack.db[TIMELINE].find({"work_order_id": work_order_id}).to_list()
    given = [d for d in docs if d["kind"] == "assignment_offered" and "operator" in d["summary"]]
    assert [d["summary"] for d in given] == [
        f"Given to Contractor {C2} by operator ops-jane: knows the site"
    ]
    (assigned,) = [d for d in docs if d["kind"] == "assigned"]
    details = assigned["details"]
    assert (details["actor_kind"], details["actor_id"]) == ("operator", "ops-jane")
    assert (details["reason"], details["contractor_id"]) == ("knows the site", C2)
    # The first contractor's offer can no longer be taken: the order is assigned.
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        stack.call(
            stack.jobs.AcceptOffer,
            jobs_pb2.AcceptOfferRequest(request_id=rid(), offer_id=first),
            "c1",
        ),
    )


async def test_verify_twice_and_a_contractor_on_another_contractors_job(stack: Stack) -> None:
    work_order_id = await assigned_order(stack)
    await expect(
        grpc.StatusCode.NOT_FOUND,
        stack.call(
            stack.jobs.ReportProgress,
            jobs_pb2.ReportProgressRequest(
                request_id=rid(), work_order_id=work_order_id, kind=jobs_pb2.PROGRESS_KIND_EN_ROUTE
            ),
            "c2",
        ),
    )
    await complete(stack, work_order_id)
    verify = wo_pb2.VerifyCompletionRequest(request_id=rid(), work_order_id=work_order_id)
    await stack.call(stack.orders.VerifyCompletion, verify, "partner")
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        stack.call(
            stack.orders.VerifyCompletion,
            wo_pb2.VerifyCompletionRequest(request_id=rid(), work_order_id=work_order_id),
            "operator",
        ),
    )
    assert (await stack.timeline_kinds(work_order_id)).count("verified") == 1


async def test_bad_requests_name_each_bad_field(stack: Stack) -> None:
    work_order_id = await assigned_order(stack)
    bad = work_order_pb2.CompletionReport(resolution_code="X", work_summary="")
    bad.photos.add(uri="not a uri", content_type="text/html", size_bytes=0, sha256="zz")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.call(
            stack.jobs.CompleteWork,
            jobs_pb2.CompleteWorkRequest(
                request_id="", work_order_id=work_order_id, completion=bad
            ),
            "c1",
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(refused.value)
    assert status is not None
    detail = error_details_pb2.BadRequest()
    status.details[0].Unpack(detail)
    fields = {v.field for v in detail.field_violations}
    assert {
        "request_id",
        "completion.resolution_code",
        "completion.work_summary",
        "completion.photos[0].uri",
        "completion.photos[0].content_type",
        "completion.photos[0].size_bytes",
        "completion.photos[0].sha256",
    } <= fields


# --------------------------------------------------------------------------- inbound commands


async def test_the_source_platform_cancels_its_order_once_and_illegal_commands_are_dead_letters(
    stack: Stack,
) -> None:
    work_order_id = await received_order(stack)
    doc = await stack.db[WORK_ORDERS].find_one({"_id": work_order_id})
    external_id = doc["external_id"]

    async def command(payload: EventPayload) -> EventEnvelope:
        envelope = EventEnvelope.new(payload, source=SOURCE, subject=external_id, tenant=TENANT)
        await publish_binary(
            stack.bootstrap, Topic.WORKORDERS_INBOUND, envelope, payload, external_id
        )
        return envelope

    cancel = CancellationRequested(external_id=external_id, reason="ordered by mistake")
    await command(cancel)
    await command(cancel)  # re-published with a new event id: nothing left to do
    await stack.wait_state(work_order_id, S.WORK_ORDER_STATE_CANCELLED)
    verify = await command(CompletionVerified(external_id=external_id))

    def mine(records: list[Any]) -> list[Any]:
        return [r for r in records if r.headers.get("ce_id") == verify.id]

    records = await read_topic(
        stack.bootstrap,
        dead_letter_topic(Service.ORDERS),
        until=lambda rs: bool(mine(rs)),
        timeout=20,
    )
    letter = mine(records)[0]
    assert letter.headers[f"{DLQ_HEADER_PREFIX}reason"] == "illegal-transition"
    assert (await stack.timeline_kinds(work_order_id)).count("cancelled") == 1


# --------------------------------------------------------------------------- authorization


async def answer_code(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def stamp_now() -> timestamp_pb2.Timestamp:
    return stamp(datetime.now(UTC) + timedelta(hours=1))


OK, NF, PD, UA = (
    grpc.StatusCode.OK,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
)
FP = grpc.StatusCode.FAILED_PRECONDITION

# Per RPC: a request builder (given the order id and an offer id) and the expected code for each
# caller: own tenant's partner, other tenant's partner, the order's contractor, another
# contractor, no key. Requests are valid; a caller allowed in gets OK or, for a step the state
# no longer allows, FAILED_PRECONDITION — never another order's data.
Builder = Callable[[str, str], Message]
MATRIX: dict[str, tuple[Builder, dict[str, set[grpc.StatusCode]]]] = {
    "WorkOrdersService.GetWorkOrder": (
        lambda o, _f: wo_pb2.GetWorkOrderRequest(work_order_id=o),
        {"own": {OK}, "other": {NF}, "contractor": {PD}, "other_contractor": {PD}, "none": {UA}},
    ),
    "WorkOrdersService.ListWorkOrders": (
        lambda _o, _f: wo_pb2.ListWorkOrdersRequest(page_size=5),
        {"own": {OK}, "other": {OK}, "contractor": {PD}, "other_contractor": {PD}, "none": {UA}},
    ),
    "WorkOrdersService.CreateWorkOrder": (
        lambda _o, _f: wo_pb2.CreateWorkOrderRequest(request_id=rid()),
        {
            "own": {grpc.StatusCode.INVALID_ARGUMENT},
            "other": {grpc.StatusCode.INVALID_ARGUMENT},
            "contractor": {PD},
            "other_contractor": {PD},
            "none": {UA},
        },
    ),
    "WorkOrdersService.WatchWorkOrders": (
        lambda o, _f: wo_pb2.WatchWorkOrdersRequest(work_order_id=o),
        {
            "own": {grpc.StatusCode.DEADLINE_EXCEEDED},
            "other": {grpc.StatusCode.DEADLINE_EXCEEDED},
            "contractor": {PD},
            "other_contractor": {PD},
            "none": {UA},
        },
    ),
    "WorkOrdersService.CancelWorkOrder": (
        lambda o, _f: wo_pb2.CancelWorkOrderRequest(request_id=rid(), work_order_id=o, reason="x"),
        {"own": {OK}, "other": {NF}, "contractor": {PD}, "other_contractor": {PD}, "none": {UA}},
    ),
    "WorkOrdersService.VerifyCompletion": (
        lambda o, _f: wo_pb2.VerifyCompletionRequest(request_id=rid(), work_order_id=o),
        {"own": {FP}, "other": {NF}, "contractor": {PD}, "other_contractor": {PD}, "none": {UA}},
    ),
    "WorkOrdersService.RejectCompletion": (
        lambda o, _f: wo_pb2.RejectCompletionRequest(request_id=rid(), work_order_id=o, reason="x"),
        {"own": {FP}, "other": {NF}, "contractor": {PD}, "other_contractor": {PD}, "none": {UA}},
    ),
    "WorkOrdersService.AddComment": (
        lambda o, _f: wo_pb2.AddCommentRequest(request_id=rid(), work_order_id=o, text="hello"),
        {"own": {OK}, "other": {NF}, "contractor": {PD}, "other_contractor": {PD}, "none": {UA}},
    ),
    "ContractorJobsService.ListOffers": (
        lambda _o, _f: jobs_pb2.ListOffersRequest(include_closed=True),
        {"own": {PD}, "other": {PD}, "contractor": {OK}, "other_contractor": {OK}, "none": {UA}},
    ),
    "ContractorJobsService.AcceptOffer": (
        lambda _o, f: jobs_pb2.AcceptOfferRequest(request_id=rid(), offer_id=f),
        {"own": {PD}, "other": {PD}, "contractor": {FP}, "other_contractor": {NF}, "none": {UA}},
    ),
    "ContractorJobsService.DeclineOffer": (
        lambda _o, f: jobs_pb2.DeclineOfferRequest(request_id=rid(), offer_id=f, reason="busy"),
        {"own": {PD}, "other": {PD}, "contractor": {FP}, "other_contractor": {NF}, "none": {UA}},
    ),
    "ContractorJobsService.ListJobs": (
        lambda _o, _f: jobs_pb2.ListJobsRequest(),
        {"own": {PD}, "other": {PD}, "contractor": {OK}, "other_contractor": {OK}, "none": {UA}},
    ),
    "ContractorJobsService.ScheduleVisit": (
        lambda o, _f: jobs_pb2.ScheduleVisitRequest(
            request_id=rid(),
            work_order_id=o,
            window=work_order_pb2.AppointmentWindow(
                start=stamp_now(), end=stamp(datetime.now(UTC) + timedelta(hours=2))
            ),
        ),
        {"own": {PD}, "other": {PD}, "contractor": {OK}, "other_contractor": {NF}, "none": {UA}},
    ),
    "ContractorJobsService.ReportProgress": (
        lambda o, _f: jobs_pb2.ReportProgressRequest(
            request_id=rid(), work_order_id=o, kind=jobs_pb2.PROGRESS_KIND_NOTE, note="on it"
        ),
        {"own": {PD}, "other": {PD}, "contractor": {OK}, "other_contractor": {NF}, "none": {UA}},
    ),
    "ContractorJobsService.ReportDelay": (
        lambda o, _f: jobs_pb2.ReportDelayRequest(
            request_id=rid(),
            work_order_id=o,
            cause=work_order_pb2.DELAY_CAUSE_ACCESS,
            new_eta=stamp_now(),
        ),
        {"own": {PD}, "other": {PD}, "contractor": {OK}, "other_contractor": {NF}, "none": {UA}},
    ),
    "ContractorJobsService.CompleteWork": (
        lambda o, _f: jobs_pb2.CompleteWorkRequest(
            request_id=rid(), work_order_id=o, completion=COMPLETION
        ),
        {"own": {PD}, "other": {PD}, "contractor": {FP}, "other_contractor": {NF}, "none": {UA}},
    ),
    "ContractorJobsService.CommentOnJob": (
        lambda o, _f: jobs_pb2.CommentOnJobRequest(request_id=rid(), work_order_id=o, text="hi"),
        {"own": {PD}, "other": {PD}, "contractor": {OK}, "other_contractor": {NF}, "none": {UA}},
    ),
}
CALLERS = {
    "own": "partner",
    "other": "other",
    "contractor": "c1",
    "other_contractor": "c2",
    "none": None,
}


def every_rpc() -> set[str]:
    from fixloop.v1 import contractor_jobs_service_pb2, work_orders_service_pb2

    names: set[str] = set()
    for module in (work_orders_service_pb2, contractor_jobs_service_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            names.update(f"{service.name}.{method.name}" for method in service.methods)
    return names


def test_the_authorization_matrix_covers_every_rpc() -> None:
    assert set(MATRIX) == every_rpc()


async def test_authorization_matrix(stack: Stack) -> None:
    """Every RPC and every kind of caller, on an order assigned to contractor c1 (whose offer was
    accepted, so offers can only be refused for their state)."""
    work_order_id = await received_order(stack)
    offer_id = await offer(stack, work_order_id, C1)
    await stack.wait_state(work_order_id, S.WORK_ORDER_STATE_DISPATCHING)
    await stack.call(
        stack.jobs.AcceptOffer,
        jobs_pb2.AcceptOfferRequest(request_id=rid(), offer_id=offer_id),
        "c1",
    )
    stubs = {"WorkOrdersService": stack.orders, "ContractorJobsService": stack.jobs}
    failures = []
    for rpc, (build, expected) in sorted(MATRIX.items()):
        service, method = rpc.split(".")
        for caller, who in CALLERS.items():
            request = build(work_order_id, offer_id)
            metadata = () if who is None else (("x-api-key", KEYS[who]),)
            callable_ = getattr(stubs[service], method)
            if method == "WatchWorkOrders":

                async def watch(
                    req: Message = request, md: Any = metadata, fn: Any = callable_
                ) -> None:
                    async for _ in fn(req, metadata=md, timeout=1.5):
                        pass

                code = await answer_code(watch())
            else:
                code = await answer_code(callable_(request, metadata=metadata, timeout=10))
            if code not in expected[caller]:
                wanted = sorted(c.name for c in expected[caller])
                failures.append(f"{rpc} as {caller}: {code.name}, expected {wanted}")
    assert not failures, "\n".join(failures)
