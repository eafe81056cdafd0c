"""``fixloop demo``: drive orders through the whole loop on a running stack, step by step.

Each demo order is the example HVAC breakdown in Berlin (``examples/orders/``, built in here so
the command runs anywhere) with a fresh event id, external id ``DEMO-<random>`` and the current
time. It is published to the inbound topic as an external platform would; then the demo plays
everyone else through the partner gRPC API: the apps of the contractors whose keys it is given
(by default the dev keys of Berliner Klima and Kälte Nord, the two contractors the example order
can go to) look for the offer; the app that got it accepts it, books the visit, reports en route
and on site and completes the work with a report and a photo reference; the requester (acme's
partner key) verifies it; the orders service closes it. Orders run concurrently; every step is
printed as it happens (the ``assigned`` step names the contractor that took the order).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fixloop_orders.cli_support import (
    DEFAULT_TARGET,
    EXIT_USAGE,
    TERMINAL_STATES,
    CallContext,
    TargetOption,
    check_api_key,
    fail,
    retry_delay,
    rpc_failure,
    say,
    state_label,
    timestamp,
)

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from fixloop.v1 import work_order_pb2
    from fixloop_shared.settings import KafkaSettings

T = TypeVar("T")

app = typer.Typer(
    name="demo",
    help="Drive demo orders through the whole loop on a running stack (`make run`).",
    invoke_without_command=True,
    subcommand_metavar="",
    pretty_exceptions_enable=False,
)

PARTNER_KEY = "dev-key-acme"
# The dev keys of both contractors that serve the example order (Berlin, hvac, acme): dispatch
# spreads the load, so with a few orders open some go to Kälte Nord.
CONTRACTOR_KEYS = ("dev-key-contractor-berliner-klima", "dev-key-contractor-kaelte-nord")
CONTRACTORS_HINT = (
    "import the example contractors first: fixloop contractors import examples/contractors.yaml"
)
CALL_TIMEOUT = 10.0
POLL_SECONDS = 0.4
RETRIES = 6

# examples/orders/hvac-breakdown-berlin.json (a test keeps the two the same).
DEMO_ORDER: dict[str, Any] = {
    "specversion": "1.0",
    "id": "5f0c2f7e-8a61-4a7b-9d2e-1c3b5a7e9f01",
    "type": "fixloop.workorder.submitted.v1",
    "source": "fieldhub",
    "time": "2026-11-21T08:42:10+01:00",
    "tenant": "acme",
    "datacontenttype": "application/json",
    "data": {
        "external_id": "FH-2026-118734",
        "site": {
            "site_id": "acme-ber-017",
            "name": "ACME Markt Berlin-Mitte",
            "address": {
                "line1": "Invalidenstraße 44",
                "city": "Berlin",
                "postal_code": "10115",
                "country": "DE",
            },
            "timezone": "Europe/Berlin",
        },
        "equipment": {
            "equipment_id": "AHU-2",
            "equipment_class": "hvac",
            "manufacturer": "Daikin",
            "model": "D-AHU Modular R",
        },
        "category": "breakdown",
        "priority": "high",
        "description": "Air handling unit 2 stopped overnight; sales floor at 29 °C. Fault code "
        "E7 (fan motor overload). V-belt looks worn, filters overdue.",
        "requester": {
            "name": "Anna Schulz",
            "email": "anna.schulz@acme-markt.example",
            "phone": "+49 30 5550 1234",
            "locale": "de",
        },
        "required_parts": [
            {"part_number": "FLT-HEPA-24", "quantity": 2},
            {"part_number": "BLT-V-A42", "quantity": 1},
        ],
        "reported_at": "2026-11-21T07:55:00+01:00",
    },
}

_STYLES = ("cyan", "magenta", "green", "yellow", "blue", "bright_red")


class DemoFailedError(Exception):
    """The demo cannot go on; its message is the one line the user sees."""


def demo_event(external_id: str, now: datetime) -> dict[str, Any]:
    """The built-in order as a fresh structured CloudEvent: new id, ``external_id``, ``now``."""
    doc = copy.deepcopy(DEMO_ORDER)
    stamp = now.astimezone(UTC).isoformat().replace("+00:00", "Z")
    doc["id"] = str(uuid.uuid4())
    doc["time"] = stamp
    doc["data"]["external_id"] = external_id
    doc["data"]["reported_at"] = stamp
    return doc


def _clock(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).astimezone().strftime("%H:%M:%S")


def _clock_of(stamp: Any) -> str:
    return _clock(stamp.ToDatetime(tzinfo=UTC))


@dataclass
class Run:
    """One demo order: what it is, where it stands, how long it took."""

    external_id: str
    style: str
    started: float = field(default_factory=time.monotonic)
    work_order_id: str = ""
    contractor_id: str = ""
    state: str = "not published"
    finished: float | None = None

    @property
    def took(self) -> float:
        return (self.finished or time.monotonic()) - self.started


@dataclass(frozen=True)
class DemoSettings:
    count: int
    target: str
    partner_key: str
    contractor_keys: tuple[str, ...]
    kafka: KafkaSettings
    timeout: float
    offer_timeout: float


@dataclass(frozen=True)
class SeenOffer:
    """An open offer and the contractor key whose app sees it (the one to take the job with)."""

    key: str
    offer: Any


class Demo:
    """Publishes the orders and plays the contractors and the requester until they are closed."""

    def __init__(self, settings: DemoSettings) -> None:
        self.s = settings
        self.runs = [
            Run(f"DEMO-{secrets.token_hex(4)}", _STYLES[i % len(_STYLES)])
            for i in range(settings.count)
        ]
        self._orders: dict[str, work_order_pb2.WorkOrder] = {}  # by external id
        self._offers: dict[str, SeenOffer] = {}  # open offers by work order id
        self._changed = asyncio.Condition()
        self._since = datetime.now(UTC) - timedelta(seconds=30)
        self._channel: Any = None
        self._producer: AIOKafkaProducer | None = None

    # ------------------------------------------------------------------ plumbing

    def _step(self, run: Run, state: str, detail: str = "") -> None:
        run.state = state
        line = Text(f"[{run.external_id}] ", style=run.style)
        line.append(f"{_clock()} {state:<15}")
        if detail:
            line.append(f" ({detail})", style="dim")
        Console(highlight=False).print(line, soft_wrap=True)

    def _context(self, action: str, what: str, request_id: str | None = None) -> CallContext:
        return CallContext(
            target=self.s.target,
            timeout=CALL_TIMEOUT,
            action=action,
            not_found=f"{what} not found",
            request_id=request_id,
        )

    async def _call(
        self, method: Any, request: Any, key: str, ctx: CallContext, label: str = ""
    ) -> Any:
        """One call; a rate limit, a lost connection or a slow answer is retried with the same
        request (a mutation's request id makes the retry safe)."""
        import grpc

        retryable = {
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        }
        for attempt in range(RETRIES):
            try:
                return await method(request, timeout=CALL_TIMEOUT, metadata=(("x-api-key", key),))
            except grpc.aio.AioRpcError as error:
                if error.code() in retryable and attempt < RETRIES - 1:
                    await asyncio.sleep(retry_delay(error) or 0.25 * 2**attempt)
                    continue
                message, _ = rpc_failure(error, ctx)
                raise DemoFailedError(f"{label}{message}") from None
        raise AssertionError  # pragma: no cover - the loop returns or raises

    async def _wait_for(self, find: Callable[[], T | None], seconds: float) -> T | None:
        """What ``find`` returns once the pollers found it, or None after ``seconds``."""
        try:
            async with asyncio.timeout(max(0.0, seconds)), self._changed:
                while (found := find()) is None:
                    await self._changed.wait()
                return found
        except TimeoutError:
            return None

    # ------------------------------------------------------------------ what the stack says

    async def _poll_orders(self) -> None:
        """The acme orders updated since the demo began, by external id (as the partner)."""
        from fixloop.v1 import work_orders_service_pb2 as pb

        stub = self._orders_stub()
        ctx = self._context("list work orders", "work orders")
        while True:
            token = ""
            while True:
                request = pb.ListWorkOrdersRequest(page_size=200, page_token=token)
                request.updated_since.CopyFrom(timestamp(self._since))
                answer = await self._call(stub.ListWorkOrders, request, self.s.partner_key, ctx)
                for order in answer.work_orders:
                    self._orders[order.external_id] = order
                token = answer.next_page_token
                if not token:
                    break
            async with self._changed:
                self._changed.notify_all()
            await asyncio.sleep(POLL_SECONDS)

    async def _poll_offers(self, key: str) -> None:
        """The open offers of ``key``'s contractor, by work order id (as that contractor's app)."""
        from fixloop.v1 import contractor_jobs_service_pb2 as pb

        stub = self._jobs_stub()
        ctx = self._context("list offers", "offers")
        while True:
            token = ""
            while True:
                request = pb.ListOffersRequest(page_size=200, page_token=token)
                answer = await self._call(stub.ListOffers, request, key, ctx)
                for offer in answer.offers:
                    self._offers[offer.work_order_id] = SeenOffer(key, offer)
                token = answer.next_page_token
                if not token:
                    break
            async with self._changed:
                self._changed.notify_all()
            await asyncio.sleep(POLL_SECONDS)

    def _orders_stub(self) -> Any:
        from fixloop.v1 import work_orders_service_pb2_grpc

        return work_orders_service_pb2_grpc.WorkOrdersServiceStub(self._channel)  # type: ignore[no-untyped-call]

    def _jobs_stub(self) -> Any:
        from fixloop.v1 import contractor_jobs_service_pb2_grpc

        return contractor_jobs_service_pb2_grpc.ContractorJobsServiceStub(self._channel)  # type: ignore[no-untyped-call]

    # ------------------------------------------------------------------ start and stop

    async def _connect(self) -> None:
        """Reach the API with every key, then the broker: one line saying which is missing."""
        import grpc
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        from fixloop.v1 import contractor_jobs_service_pb2 as jobs_pb
        from fixloop.v1 import work_orders_service_pb2 as orders_pb

        self._channel = grpc.aio.insecure_channel(self.s.target)
        checks: list[tuple[Any, Any, str, str, str, str]] = [
            (
                self._orders_stub().ListWorkOrders,
                orders_pb.ListWorkOrdersRequest(page_size=1),
                self.s.partner_key,
                "--partner-key",
                "list work orders (--partner-key must be a partner or operator key)",
                "work orders",
            )
        ]
        keys = self.s.contractor_keys
        for number, key in enumerate(keys, start=1):
            option = "--contractor-key" if len(keys) == 1 else f"--contractor-key #{number}"
            checks.append(
                (
                    self._jobs_stub().ListOffers,
                    jobs_pb.ListOffersRequest(page_size=1),
                    key,
                    option,
                    f"list offers ({option} must be a contractor's key)",
                    "offers",
                )
            )
        for method, request, key, option, action, what in checks:
            try:
                await method(request, timeout=CALL_TIMEOUT, metadata=(("x-api-key", key),))
            except grpc.aio.AioRpcError as error:
                message, _ = rpc_failure(error, self._context(action, what))
                if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                    message = f"{message}: check {option}"
                elif message.startswith("cannot reach"):
                    message = f"{message}: is the stack running? (`make run`, `fixloop status`)"
                raise DemoFailedError(message) from None
        bootstrap = self.s.kafka.bootstrap
        # aiokafka logs each failed connection attempt; the demo says it once, in its own words.
        logging.getLogger("aiokafka").addHandler(logging.NullHandler())
        logging.getLogger("aiokafka").propagate = False
        self._producer = AIOKafkaProducer(
            **self.s.kafka.client_options(),
            acks="all",
            enable_idempotence=self.s.kafka.idempotence,
            request_timeout_ms=10_000,
        )
        try:
            async with asyncio.timeout(20):
                await self._producer.start()
        except (KafkaError, OSError, TimeoutError) as exc:
            await self._producer.stop()
            self._producer = None
            msg = f"cannot reach Kafka at {bootstrap} ({type(exc).__name__}): is the stack running?"
            raise DemoFailedError(msg) from None

    async def _close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        if self._channel is not None:
            await self._channel.close()

    # ------------------------------------------------------------------ one order

    async def _publish(self, run: Run) -> None:
        from aiokafka.errors import KafkaError

        from fixloop_shared.contracts import INBOUND_EVENT_TYPES
        from fixloop_shared.envelope import STRUCTURED_CONTENT_TYPE, decode_event
        from fixloop_shared.errors import PoisonMessage
        from fixloop_shared.topics import inbound_topic

        doc = demo_event(run.external_id, datetime.now(UTC))
        raw = json.dumps(doc).encode()
        try:  # the built-in order is valid; checked as `fixloop inbound publish` checks a file
            decode_event(raw, [], INBOUND_EVENT_TYPES, accept_structured=True)
        except PoisonMessage as exc:
            msg = f"the built-in demo order is invalid: {exc.message}"
            raise DemoFailedError(msg) from None
        key = f"{doc['tenant']}/{doc['source']}/{run.external_id}".encode()
        topic = inbound_topic(str(doc["source"]))  # the platform's own topic
        assert self._producer is not None  # noqa: S101 - connected before any order runs
        run.started = time.monotonic()
        try:
            await self._producer.send_and_wait(
                topic,
                raw,
                key=key,
                headers=[("content-type", STRUCTURED_CONTENT_TYPE.encode())],
            )
        except (KafkaError, OSError) as exc:
            msg = f"cannot publish to Kafka at {self.s.kafka.bootstrap} ({type(exc).__name__})"
            raise DemoFailedError(msg) from None
        self._step(run, "published", f"to {topic}")

    async def _no_offer(self, run: Run) -> str:
        """What is probably missing when none of the contractors got an offer for the order."""
        from fixloop.v1 import work_orders_service_pb2 as pb

        answer = await self._call(
            self._orders_stub().GetWorkOrder,
            pb.GetWorkOrderRequest(work_order_id=run.work_order_id),
            self.s.partner_key,
            self._context("read work orders", f"work order {run.work_order_id}"),
        )
        within = f"within {self.s.offer_timeout:g}s"
        for entry in reversed(answer.work_order.timeline):
            if entry.kind == "assignment_offered":
                other = entry.details.get("contractor_id", "another contractor")
                return (
                    f"no offer for {run.external_id} {within} to "
                    f"{self._contractors_given()}: it was offered to {other}"
                )
            if entry.kind == "assignment_unfilled":
                reason = entry.details.get("reason", "no eligible contractor")
                return f"no offer for {run.external_id}: {reason}; {CONTRACTORS_HINT}"
        return f"no offer for {run.external_id} {within}: {CONTRACTORS_HINT}"

    def _contractors_given(self) -> str:
        count = len(self.s.contractor_keys)
        if count == 1:
            return "the --contractor-key's contractor"
        return f"any of the {count} contractors of the --contractor-key options"

    async def _drive(self, run: Run) -> None:
        from fixloop.v1 import contractor_jobs_service_pb2 as jobs_pb
        from fixloop.v1 import work_order_pb2
        from fixloop.v1 import work_orders_service_pb2 as orders_pb

        ext, label = run.external_id, f"{run.external_id}: "
        await self._publish(run)
        order = await self._wait_for(lambda: self._orders.get(ext), self.s.offer_timeout)
        if order is None:
            msg = (
                f"{ext} was published but the orders service did not store it within "
                f"{self.s.offer_timeout:g}s: is the orders service running? (fixloop status)"
            )
            raise DemoFailedError(msg)
        run.work_order_id = work_order_id = order.id
        self._step(run, state_label(order.state), f"work order {work_order_id}")

        left = self.s.offer_timeout - run.took
        seen = await self._wait_for(lambda: self._offers.get(work_order_id), left)
        if seen is None:
            raise DemoFailedError(await self._no_offer(run))
        offer = seen.offer
        self._step(
            run, "offered", f"offer {offer.offer_id}, open until {_clock_of(offer.expires_at)}"
        )

        # The whole job is done by the app of the contractor the order was offered to.
        jobs, key = self._jobs_stub(), seen.key

        async def job_step(method: Any, request: Any, action: str) -> Any:
            ctx = self._context(action, f"job {work_order_id}", request.request_id)
            return (await self._call(method, request, key, ctx, label)).job

        def rid() -> str:
            return str(uuid.uuid4())

        job = await job_step(
            jobs.AcceptOffer,
            jobs_pb.AcceptOfferRequest(request_id=rid(), offer_id=offer.offer_id),
            "accept offers",
        )
        run.contractor_id = job.contractor_id
        self._step(run, state_label(job.state), job.contractor_id)

        now = datetime.now(UTC)
        start, end = now + timedelta(hours=1), now + timedelta(hours=3)
        job = await job_step(
            jobs.ScheduleVisit,
            jobs_pb.ScheduleVisitRequest(
                request_id=rid(),
                work_order_id=work_order_id,
                window=work_order_pb2.AppointmentWindow(start=timestamp(start), end=timestamp(end)),
                note="Technician with filters and a V-belt on board.",
            ),
            "schedule visits",
        )
        self._step(run, state_label(job.state), f"visit {_clock(start)}-{_clock(end)}")

        for kind, eta, what in (
            (jobs_pb.PROGRESS_KIND_EN_ROUTE, start, "arrival"),
            (jobs_pb.PROGRESS_KIND_ON_SITE, start + timedelta(minutes=90), "done"),
        ):
            job = await job_step(
                jobs.ReportProgress,
                jobs_pb.ReportProgressRequest(
                    request_id=rid(), work_order_id=work_order_id, kind=kind, eta=timestamp(eta)
                ),
                "report progress",
            )
            self._step(run, state_label(job.state), f"eta {what} {_clock(eta)}")

        report = completion_report(ext)
        job = await job_step(
            jobs.CompleteWork,
            jobs_pb.CompleteWorkRequest(
                request_id=rid(), work_order_id=work_order_id, completion=report
            ),
            "complete work",
        )
        self._step(
            run,
            state_label(job.state),
            f"{report.resolution_code}, {report.labour_minutes} min, "
            f"{len(report.parts_used)} parts, {len(report.photos)} photo",
        )

        verify_id = rid()
        answer = await self._call(
            self._orders_stub().VerifyCompletion,
            orders_pb.VerifyCompletionRequest(
                request_id=verify_id, work_order_id=work_order_id, note="Cooling is back, thanks."
            ),
            self.s.partner_key,
            self._context("verify work", f"work order {work_order_id}", verify_id),
            label,
        )
        self._step(run, state_label(answer.work_order.state), "by the requester")

        def finished() -> work_order_pb2.WorkOrder | None:
            seen = self._orders.get(ext)
            if seen is None or state_label(seen.state) not in TERMINAL_STATES:
                return None
            return seen

        done = await self._wait_for(finished, self.s.timeout)
        if done is not None:
            run.finished = time.monotonic()
            self._step(run, state_label(done.state), f"after {run.took:.1f}s")

    # ------------------------------------------------------------------ the whole demo

    async def run(self) -> None:
        """Every order to its end, or :class:`DemoFailedError`; ``TimeoutError`` when the
        orders are not all closed within the timeout."""
        try:
            await self._connect()
        except BaseException:
            await self._close()
            raise
        pollers = [
            asyncio.create_task(self._poll_orders()),
            *(asyncio.create_task(self._poll_offers(key)) for key in self.s.contractor_keys),
        ]
        drivers = [asyncio.create_task(self._drive(run)) for run in self.runs]
        try:
            async with asyncio.timeout(self.s.timeout):
                pending: set[asyncio.Task[None]] = set(drivers)
                while pending:
                    # The pollers only end by failing: a failure of one ends the demo at once.
                    done, _ = await asyncio.wait(
                        {*pending, *pollers}, return_when=asyncio.FIRST_COMPLETED
                    )
                    for task in done:
                        error = task.exception()
                        if error is not None:
                            raise error
                    pending -= done
        finally:
            for task in (*drivers, *pollers):
                task.cancel()
            await asyncio.gather(*drivers, *pollers, return_exceptions=True)
            await self._close()

    def summary(self) -> Table:
        table = Table(title="Demo orders")
        for column in ("order", "work order", "contractor", "state", "took"):
            table.add_column(column, no_wrap=column != "work order")
        for run in self.runs:
            took = f"{run.took:.1f}s" if run.finished is not None else f"{run.took:.1f}s, open"
            table.add_row(
                run.external_id, run.work_order_id or "-", run.contractor_id or "-", run.state, took
            )
        return table


def completion_report(external_id: str) -> work_order_pb2.CompletionReport:
    """A plausible report of the repair the example order asks for, with a photo reference."""
    from fixloop.v1 import work_order_pb2

    photo = f"demo/{external_id.lower()}/ahu-2-after-repair.jpg"
    passed = work_order_pb2.CHECKLIST_OUTCOME_PASSED
    return work_order_pb2.CompletionReport(
        resolution_code="replaced_part",
        work_summary="Replaced the worn V-belt and both HEPA filters, reset the fan motor "
        "overload (E7), ran the unit for 30 minutes: supply air 16 °C, no fault.",
        labour_minutes=95,
        parts_used=[
            work_order_pb2.PartLine(part_number="FLT-HEPA-24", quantity=2),
            work_order_pb2.PartLine(part_number="BLT-V-A42", quantity=1),
        ],
        checklist=[
            work_order_pb2.ChecklistResult(item="Fan motor current within rating", outcome=passed),
            work_order_pb2.ChecklistResult(item="Belt tension checked", outcome=passed),
            work_order_pb2.ChecklistResult(item="Filters replaced", outcome=passed),
        ],
        photos=[
            work_order_pb2.PhotoEvidence(
                uri=f"https://files.fixloop.example/{photo}",
                content_type="image/jpeg",
                size_bytes=482_113,
                sha256=hashlib.sha256(photo.encode()).hexdigest(),
            )
        ],
    )


@app.callback(invoke_without_command=True)
def demo(
    *,
    ctx: typer.Context,
    orders: Annotated[
        int, typer.Option("--orders", help="How many orders, run concurrently.", min=1, max=50)
    ] = 1,
    timeout: Annotated[
        float,
        typer.Option(help="Seconds until every order must be closed.", min=5.0, max=3600.0),
    ] = 120.0,
    offer_timeout: Annotated[
        float,
        typer.Option(help="Seconds to wait for each order's offer.", min=1.0, max=600.0),
    ] = 30.0,
    partner_key: Annotated[
        str, typer.Option(help="API key of acme's partner (the requester).")
    ] = PARTNER_KEY,
    contractor_key: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KEY",
            help="API key of a contractor's app to play (repeatable): each order is taken, "
            "accepted through completed, by the contractor whose key sees its offer.",
            show_default=", ".join(CONTRACTOR_KEYS),
        ),
    ] = None,
    target: TargetOption = DEFAULT_TARGET,
    bootstrap: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap servers (default: FIXLOOP_KAFKA_BOOTSTRAP)."),
    ] = None,
) -> None:
    """Drive orders through the whole loop on a running stack and print every step.

    Each order is published to the inbound topic like `fixloop inbound publish` does, offered to
    one of the contractors whose keys are given, accepted by that contractor, scheduled, reported
    en route and on site, completed with a report and a photo, verified by the requester and
    closed. Exit code 0 only when every order closed.
    """
    if ctx.invoked_subcommand is not None:  # pragma: no cover - the group has no subcommands
        return
    from pydantic import ValidationError

    from fixloop_shared.settings import KafkaSettings

    check_api_key(partner_key, "--partner-key")
    contractor_keys = tuple(dict.fromkeys(contractor_key or CONTRACTOR_KEYS))  # once each, in order
    for key in contractor_keys:
        check_api_key(key, "--contractor-key")
    try:
        kafka = KafkaSettings()
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        fail(f"FIXLOOP_KAFKA_*: {'.'.join(map(str, first['loc']))}: {first['msg']}", EXIT_USAGE)
    if bootstrap:
        kafka = kafka.model_copy(update={"bootstrap": bootstrap})
    runner = Demo(
        DemoSettings(
            count=orders,
            target=target,
            partner_key=partner_key,
            contractor_keys=contractor_keys,
            kafka=kafka,
            timeout=timeout,
            offer_timeout=offer_timeout,
        )
    )
    try:
        asyncio.run(runner.run())
    except DemoFailedError as exc:
        fail(str(exc))
    except TimeoutError:
        Console(highlight=False).print(runner.summary())
        still = sum(run.finished is None for run in runner.runs)
        fail(f"{still} of {orders} demo orders not closed within {timeout:g}s")
    Console(highlight=False).print(runner.summary())
    not_closed = [run for run in runner.runs if run.state != "closed"]
    if not_closed:
        ended = ", ".join(f"{run.external_id} {run.state}" for run in not_closed)
        fail(f"{len(not_closed)} of {orders} demo orders did not close: {ended}")
    slowest = max(run.took for run in runner.runs)
    noun = "order" if orders == 1 else "orders"
    say(f"all {orders} demo {noun} closed (slowest: {slowest:.1f}s)")


__all__ = ["DEMO_ORDER", "app", "completion_report", "demo_event"]
