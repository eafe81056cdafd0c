"""Benchmark: the partner gRPC API's reads against a bare grpc.aio echo of the same reply size.

Starts the embedded broker and one embedded store, builds the orders service in this process
(``fixloop_orders.main.bootstrap``: its consumers, relay, timers and gRPC server on a free port;
its one JSON log line per call goes to a file, as it goes to stdout in production), seeds
``--orders`` work orders of tenant ``bench`` through the service's own intake, offers every one
to contractor ``ctr-bench`` and lets it accept every other offer. A bare ``grpc.aio`` echo server
(a generic unary method, no interceptors, no store) runs in the same process on another port. The
load comes from a separate client process, so the CPU measured here is the server's alone.
Per run:

1. throughput: GetWorkOrder (cycling through the orders), ListWorkOrders, ListOffers and
   ListJobs (page_size 50, cycling through every page) with ``--concurrency`` (8) calls in flight
   for ``--seconds`` after each distinct request was asked once and a warm-up, each followed by
   the echo answering the same requests with as many bytes as each real reply had: requests/s
   and their ratio to the echo's, latency, and the server CPU per call (this process, and the
   store's process);
2. latency: GetWorkOrder at a fixed offered rate (``--rate``, 200/s; open loop, every call
   timed from the moment it was scheduled), p50/p90/p99; the echo likewise;
3. refusals: server CPU per call of UNAUTHENTICATED calls (an unknown key) and of
   RESOURCE_EXHAUSTED calls (a principal with a limit of its own of 1 call per hour, used up),
   against a served GetWorkOrder and the echo (both from 1.);
4. profile (after the runs; py-spy takes CPU, so these figures are not the measured ones):
   py-spy samples this process and the store while GetWorkOrder, ListWorkOrders and
   UNAUTHENTICATED calls (``--profile``) run at full speed; the samples are sorted into store
   round trips, document conversion, reply building, interceptors, logging and the rest.

Walking the pages to collect the list requests also checks them: the summary says when the pages
repeat or miss items. The throughput runs use a service without a rate limit
(``grpc_rate_limit=""``); the default (``100/second;3000/minute`` for every principal without a
limit of its own) would stop a closed loop after 3,000 calls a minute.

CPU is process CPU time (user + system, every thread: gRPC's core threads included): this
process from ``time.process_time()``, the store from ``/proc``. What the service uses while idle
(consumers' fetches, the relay's and the timers' polls, the health probe) is measured before the
runs and subtracted. Prints a summary and writes everything as JSON (``--out``, default
``bench/results/grpc-*.json``). Figures are medians over the runs. It asserts nothing about speed.

    uv run python -m bench.grpc_reads                          # the defaults of `make bench-grpc`
    uv run python -m bench.grpc_reads --orders 100 --seconds 3 --no-profile       # smoke, ~1 min
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import multiprocessing
import os
import platform as host
import signal
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc

from bench.pipeline import git_commit
from bench.probes import percentile, process_tree_cpu
from bench.pyspy import Sampler, function_of
from fixloop.v1 import contractor_jobs_service_pb2 as jobs_pb2
from fixloop.v1 import work_orders_service_pb2 as wo_pb2

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BASE_ORDER = ROOT / "examples" / "orders" / "hvac-breakdown-berlin.json"

TENANT = "bench"
SOURCE = "bench.example"
CONTRACTOR = "ctr-bench"
KEYS = {
    "partner": "bench-partner-key",
    "contractor": "bench-contractor-key",
    "limited": "bench-limited-partner-key",
    "unknown": "bench-no-such-key",
}
TINY_LIMIT = "1/hour"
DEFAULT_LIMIT = "100/second;3000/minute"
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
ECHO_METHOD = "/bench.Echo/Reply"
SIZE_DIGITS = 8
"""An echo request is the reply's size in 8 ASCII digits, then the real request's bytes."""
CALL_TIMEOUT = 10.0
TARGETS = {"ratio_min": 0.5, "p99_ms_max": 20.0, "rate": 200.0, "concurrency": 8}

WO = "/fixloop.v1.WorkOrdersService/"
JOBS = "/fixloop.v1.ContractorJobsService/"
READS = {
    "GetWorkOrder": (WO + "GetWorkOrder", "partner"),
    "ListWorkOrders": (WO + "ListWorkOrders", "partner"),
    "ListOffers": (JOBS + "ListOffers", "contractor"),
    "ListJobs": (JOBS + "ListJobs", "contractor"),
}


@dataclass
class Options:
    orders: int = 500
    seconds: float = 10.0
    warmup: float = 2.0
    concurrency: int = 8
    rate: float = 200.0
    runs: int = 1
    out: Path | None = None
    work_dir: Path | None = None
    profile: bool = True
    profile_seconds: float = 6.0
    profile_rate: int = 100
    profile_phases: tuple[str, ...] = ("GetWorkOrder", "ListWorkOrders", "UNAUTHENTICATED")


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def say(message: str) -> None:
    print(f"{datetime.now().strftime('%H:%M:%S')} {message}", flush=True)  # noqa: DTZ005


# -- the client process -------------------------------------------------------------------------
@dataclass(frozen=True)
class Load:
    """What the client process does: calls of one method, in a closed loop (``concurrency`` in
    flight) or an open loop (``rate`` per second on a fixed schedule), the requests in turn."""

    target: str
    method: str
    requests: tuple[bytes, ...]
    metadata: tuple[tuple[str, str], ...]
    seconds: float
    warmup: float
    concurrency: int = 8
    rate: float | None = None


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)
    reply_bytes: list[int] = field(default_factory=list)

    def figures(self, seconds: float) -> dict[str, Any]:
        values = self.latencies
        return {
            "calls": len(values),
            "seconds": round(seconds, 3),
            "calls_per_second": round(len(values) / seconds, 1) if seconds else None,
            "codes": dict(self.codes),
            "reply_bytes_median": statistics.median(self.reply_bytes) if self.reply_bytes else 0,
            "p50_ms": ms(percentile(values, 0.5)),
            "p90_ms": ms(percentile(values, 0.9)),
            "p99_ms": ms(percentile(values, 0.99)),
            "max_ms": ms(max(values)) if values else float("nan"),
        }


async def _call(method: Any, load: Load, request: bytes, tally: Tally, started: float) -> None:
    try:
        reply = await method(request, metadata=load.metadata, timeout=CALL_TIMEOUT)
        tally.codes["OK"] += 1
        tally.reply_bytes.append(len(reply))
    except grpc.aio.AioRpcError as exc:
        tally.codes[exc.code().name] += 1
    tally.latencies.append(time.monotonic() - started)


async def _closed_loop(method: Any, load: Load, seconds: float) -> tuple[Tally, float]:
    tally, n = Tally(), len(load.requests)
    began = time.monotonic()
    deadline = began + seconds

    async def worker(first: int) -> None:
        i = first
        while time.monotonic() < deadline:
            await _call(method, load, load.requests[i % n], tally, time.monotonic())
            i += load.concurrency

    await asyncio.gather(*(worker(k) for k in range(load.concurrency)))
    return tally, time.monotonic() - began


async def _open_loop(method: Any, load: Load, seconds: float, rate: float) -> tuple[Tally, float]:
    """Calls sent on a fixed schedule whatever the answers do; each is timed from its slot."""
    tally, n = Tally(), len(load.requests)
    count = max(1, round(rate * seconds))
    began = time.monotonic() + 0.01
    pending: set[asyncio.Task[None]] = set()
    for i in range(count):
        slot = began + i / rate
        delay = slot - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(_call(method, load, load.requests[i % n], tally, slot))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
    return tally, time.monotonic() - began


async def _prime(method: Any, load: Load) -> None:
    """Each distinct request once (``concurrency`` in flight), before the warm-up: what is
    measured is the steady state, every answer asked for before (a first read goes to the store;
    the first pass's cost is the service's cold start, not its serving)."""
    slots = asyncio.Semaphore(load.concurrency)

    async def once(request: bytes) -> None:
        async with slots:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await method(request, metadata=load.metadata, timeout=CALL_TIMEOUT)

    await asyncio.gather(*(once(r) for r in dict.fromkeys(load.requests)))


async def _drive(load: Load, conn: Connection) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(load.target) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=10)
        method = channel.unary_unary(load.method)  # no (de)serializers: bytes in, bytes out
        await _prime(method, load)
        if load.rate is None:
            await _closed_loop(method, load, load.warmup)
        else:
            await _open_loop(method, load, load.warmup, load.rate)
        conn.send("measuring")
        cpu = time.process_time()
        if load.rate is None:
            tally, seconds = await _closed_loop(method, load, load.seconds)
        else:
            tally, seconds = await _open_loop(method, load, load.seconds, load.rate)
        cpu = time.process_time() - cpu
    return {**tally.figures(seconds), "client_cpu_seconds": round(cpu, 3)}


def client_process(conn: Connection) -> None:
    """The load generator: runs each :class:`Load` it is sent until it is sent None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    while (load := conn.recv()) is not None:
        try:
            conn.send(asyncio.run(_drive(load, conn)))
        except Exception:  # noqa: BLE001 - reported to the parent, which stops
            conn.send({"error": traceback.format_exc()})


# -- the echo ------------------------------------------------------------------------------------
class EchoServer:
    """A bare grpc.aio server: one generic unary method answering ``n`` bytes to a request that
    starts with ``n`` in 8 digits. No interceptors, no store, nothing decoded."""

    def __init__(self) -> None:
        self.server: Any = None
        self.port = 0
        self._payloads: dict[int, bytes] = {}

    async def _reply(self, request: bytes, _context: Any) -> bytes:
        size = int(request[:SIZE_DIGITS])
        payload = self._payloads.get(size)
        if payload is None:
            payload = self._payloads[size] = b"x" * size
        return payload

    async def start(self) -> None:
        self.server = grpc.aio.server()
        handler = grpc.unary_unary_rpc_method_handler(self._reply)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("bench.Echo", {"Reply": handler}),)
        )
        self.port = int(self.server.add_insecure_port("127.0.0.1:0"))
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(1)


def echo_requests(requests: Sequence[bytes], reply_sizes: Sequence[int]) -> tuple[bytes, ...]:
    return tuple(
        b"%0*d" % (SIZE_DIGITS, size) + request
        for request, size in zip(requests, reply_sizes, strict=True)
    )


# -- the server side ------------------------------------------------------------------------------
@dataclass
class Workload:
    """The requests of one read (serialized) and the size of each one's real reply."""

    name: str
    method: str
    who: str
    requests: list[bytes] = field(default_factory=list)
    reply_sizes: list[int] = field(default_factory=list)
    items: list[int] = field(default_factory=list)
    """Of a list: the work orders, offers or jobs on each page."""
    ids: list[str] = field(default_factory=list)
    """Of a list: the id of every item on every page, in order (duplicates kept)."""
    expected: int = 0
    """Of a list: how many items the seeding made for it."""


@dataclass
class Bench:
    opts: Options
    tmp: Path
    service: Any = None
    echo: EchoServer = field(default_factory=EchoServer)
    store_pid: int = 0
    client: Connection | None = None
    worker: Any = None
    idle: dict[str, float] = field(default_factory=dict)
    """CPU seconds per wall second of this process and the store while nothing is called."""
    workloads: dict[str, Workload] = field(default_factory=dict)
    log_file: Any = None
    processes: list[Any] = field(default_factory=list)
    """The broker's and the store's :class:`ManagedProcess`, stopped last."""

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.service.partner_api.bound_port}"

    def cpu(self) -> tuple[float, float, float]:
        """(monotonic time, this process's CPU seconds, the store's)."""
        store = process_tree_cpu({"store": self.store_pid})["store"]
        return time.monotonic(), time.process_time(), store

    async def measure(self, load: Load) -> dict[str, Any]:
        """Run ``load`` in the client process; its figures, plus the server CPU per call (idle
        use subtracted) while it measured."""
        if self.client is None:
            msg = "the client process is not started"
            raise RuntimeError(msg)
        self.client.send(load)
        first = await asyncio.to_thread(self.client.recv)
        if isinstance(first, dict):
            msg = f"the client process failed:\n{first.get('error')}"
            raise RuntimeError(msg)
        wall0, own0, store0 = self.cpu()
        result: dict[str, Any] = await asyncio.to_thread(self.client.recv)
        wall1, own1, store1 = self.cpu()
        if "error" in result:
            msg = f"the client process failed:\n{result['error']}"
            raise RuntimeError(msg)
        wall = wall1 - wall0
        own = own1 - own0 - self.idle.get("orders", 0.0) * wall
        store = store1 - store0 - self.idle.get("store", 0.0) * wall
        calls = max(1, result["calls"])
        # Idle use subtracted, a process that did nothing for the calls may come out a hair
        # below zero; that is left as measured (``+ 0.0`` only turns -0.0 into 0.0).
        result.update(
            server_cpu_ms_per_call=round(1000 * (own + store) / calls, 3) + 0.0,
            orders_cpu_ms_per_call=round(1000 * own / calls, 3) + 0.0,
            store_cpu_ms_per_call=round(1000 * store / calls, 3) + 0.0,
            client_cpu_ms_per_call=round(1000 * result["client_cpu_seconds"] / calls, 3),
            server_cpu_seconds={
                "orders": round(own1 - own0, 3),
                "store": round(store1 - store0, 3),
            },
        )
        return result

    def load(
        self,
        work: Workload,
        *,
        echo: bool = False,
        who: str | None = None,
        target: str | None = None,
        concurrency: int | None = None,
        rate: float | None = None,
        seconds: float | None = None,
    ) -> Load:
        requests = echo_requests(work.requests, work.reply_sizes) if echo else tuple(work.requests)
        return Load(
            target=f"127.0.0.1:{self.echo.port}" if echo else (target or self.grpc_target),
            method=ECHO_METHOD if echo else work.method,
            requests=requests,
            metadata=(("x-api-key", KEYS[who or work.who]),),
            seconds=seconds or self.opts.seconds,
            warmup=self.opts.warmup,
            concurrency=concurrency or self.opts.concurrency,
            rate=rate,
        )

    # -- setting up ---------------------------------------------------------------------------
    async def start(self) -> None:
        from fixloop_devkit.testing import start_embedded_broker, start_embedded_store
        from fixloop_orders.main import bootstrap
        from fixloop_orders.settings import OrdersSettings
        from fixloop_shared.grpc_edge.principals import PrincipalKind, PrincipalSpec, hash_api_key
        from fixloop_shared.settings import KafkaSettings

        context = multiprocessing.get_context("spawn")
        self.client, theirs = context.Pipe()
        self.worker = context.Process(
            target=client_process, args=(theirs,), name="bench-grpc-client", daemon=True
        )
        self.worker.start()
        broker, bootstrap_servers = start_embedded_broker(self.tmp)
        self.processes.append(broker)
        store, uri = start_embedded_store(self.tmp / "stores", "orders")
        self.processes.append(store)
        self.store_pid = store.pid or 0

        def principal(name: str, kind: PrincipalKind, **where: str) -> PrincipalSpec:
            return PrincipalSpec(
                id=f"bench-{name}", kind=kind, key_hashes=[hash_api_key(KEYS[name])], **where
            )

        principals = [
            principal("partner", PrincipalKind.PARTNER, tenant=TENANT),
            principal("contractor", PrincipalKind.CONTRACTOR, contractor_id=CONTRACTOR),
            # A principal with a tiny limit of its own: RESOURCE_EXHAUSTED once it is used up.
            principal("limited", PrincipalKind.PARTNER, tenant=TENANT, rate_limit=TINY_LIMIT),
        ]
        settings = OrdersSettings(
            mongodb_uri=uri,
            database="bench_grpc",
            kafka=KafkaSettings(bootstrap=bootstrap_servers),
            health_port=0,
            grpc_port=0,
            grpc_reflection=False,
            grpc_rate_limit="",
            read_cache_seconds=60,
            principals=principals,
            source_tenants={SOURCE: [TENANT]},
        )
        self.service = bootstrap(settings)
        # The service logs one JSON line per call to stdout; here they go to a file instead.
        self.log_file = (self.tmp / "orders.log").open("a", encoding="utf-8")
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(self.log_file)
        await self.service.app.start()
        await self.echo.start()

    async def stop(self) -> None:
        if self.client is not None:
            with contextlib.suppress(OSError):
                self.client.send(None)
        if self.worker is not None:
            self.worker.join(10)
            if self.worker.is_alive():
                self.worker.kill()
        await self.echo.stop()
        if self.service is not None:
            await self.service.app.stop()
        for proc in reversed(self.processes):
            proc.stop()
        if self.log_file is not None:
            self.log_file.close()

    async def seed(self) -> None:
        """``--orders`` work orders through intake; each offered to the bench contractor (as the
        contractors service's event would be recorded), every other offer accepted."""
        from fixloop_orders.app.intake import work_order_details
        from fixloop_orders.domain.lifecycle import Actor
        from fixloop_shared.contracts import AssignmentOffered, WorkOrderSubmitted
        from fixloop_shared.envelope import Event, EventEnvelope
        from fixloop_shared.kernel import UnitOfWork, in_unit_of_work
        from fixloop_shared.topics import Service
        from fixloop_shared.vocabulary import ActorKind

        service = self.service
        template = json.loads(BASE_ORDER.read_text())["data"]
        ids: list[str] = []
        offers: list[str] = []
        batch = 25

        async def receive(uow: UnitOfWork, numbers: range) -> list[str]:
            created = []
            for i in numbers:
                submitted = WorkOrderSubmitted.model_validate_json(
                    json.dumps({**template, "external_id": f"BENCH-{i:06d}"})
                )
                result = await service.intake.receive(
                    uow,
                    tenant=TENANT,
                    source_platform=SOURCE,
                    details=work_order_details(submitted),
                    submission_id=str(uuid.uuid4()),
                    submission_type=WorkOrderSubmitted.event_type,
                )
                created.append(result.work_order_id or "")
            return created

        async def offer(uow: UnitOfWork, chunk: list[str]) -> list[str]:
            made = []
            now = datetime.now(UTC)
            for work_order_id in chunk:
                payload = AssignmentOffered(
                    work_order_id=work_order_id,
                    offer_id=f"offer-{uuid.uuid4().hex[:16]}",
                    contractor_id=CONTRACTOR,
                    contractor_name="Bench Contractor",
                    offered_at=now,
                    expires_at=now + timedelta(days=7),
                )
                envelope = EventEnvelope.new(
                    payload, source=Service.CONTRACTORS, subject=work_order_id, tenant=TENANT
                )
                await service.recorder.record(Event(envelope, payload), uow)
                made.append(payload.offer_id)
            return made

        async def accept(uow: UnitOfWork, chunk: list[str]) -> None:
            actor = Actor(ActorKind.CONTRACTOR, CONTRACTOR)
            for offer_id in chunk:
                await service.lifecycle.accept_offer(uow, actor, offer_id, via="grpc")

        for first in range(0, self.opts.orders, batch):
            numbers = range(first, min(first + batch, self.opts.orders))
            ids.extend(await in_unit_of_work(service.units, partial(receive, numbers=numbers)))
        for first in range(0, len(ids), batch):
            chunk = ids[first : first + batch]
            offers.extend(await in_unit_of_work(service.units, partial(offer, chunk=chunk)))
        accepted = offers[::2]
        for first in range(0, len(accepted), batch):
            chunk = accepted[first : first + batch]
            await in_unit_of_work(service.units, partial(accept, chunk=chunk))
        self.workloads = await self.requests_of(ids)

    async def requests_of(self, ids: list[str]) -> dict[str, Workload]:
        """Every request of each read, with the size of its real reply (the pages walked once)."""
        works = {name: Workload(name, method, who) for name, (method, who) in READS.items()}
        async with grpc.aio.insecure_channel(self.grpc_target) as channel:

            async def call(work: Workload, request: Any) -> bytes:
                raw = request.SerializeToString()
                reply: bytes = await channel.unary_unary(work.method)(
                    raw, metadata=(("x-api-key", KEYS[work.who]),), timeout=CALL_TIMEOUT
                )
                work.requests.append(raw)
                work.reply_sizes.append(len(reply))
                return reply

            get = works["GetWorkOrder"]
            for work_order_id in ids:
                await call(get, wo_pb2.GetWorkOrderRequest(work_order_id=work_order_id))
            accepted = (len(ids) + 1) // 2
            pages: list[tuple[str, Any, Any, str, str, int]] = [
                (
                    "ListWorkOrders",
                    wo_pb2.ListWorkOrdersRequest,
                    wo_pb2.ListWorkOrdersResponse,
                    "work_orders",
                    "id",
                    len(ids),
                ),
                (
                    "ListOffers",
                    jobs_pb2.ListOffersRequest,
                    jobs_pb2.ListOffersResponse,
                    "offers",
                    "offer_id",
                    len(ids) - accepted,
                ),
                (
                    "ListJobs",
                    jobs_pb2.ListJobsRequest,
                    jobs_pb2.ListJobsResponse,
                    "jobs",
                    "id",
                    accepted,
                ),
            ]
            for name, request_type, response_type, items, key, expected in pages:
                work, token = works[name], ""
                work.expected = expected
                while len(work.ids) <= 3 * expected:  # a broken page token ends the walk too
                    raw = await call(work, request_type(page_size=PAGE_SIZE, page_token=token))
                    page = response_type.FromString(raw)
                    work.items.append(len(getattr(page, items)))
                    work.ids.extend(getattr(item, key) for item in getattr(page, items))
                    token = page.next_page_token
                    if not token:
                        break
        return works

    async def measure_idle(self, seconds: float = 5.0) -> None:
        await asyncio.sleep(3)  # the relay publishes what seeding wrote
        wall0, own0, store0 = self.cpu()
        await asyncio.sleep(seconds)
        wall1, own1, store1 = self.cpu()
        wall = wall1 - wall0
        self.idle = {
            "orders": round((own1 - own0) / wall, 4),
            "store": round((store1 - store0) / wall, 4),
        }

    # -- one run ------------------------------------------------------------------------------
    async def run(self, label: str) -> dict[str, Any]:
        opts = self.opts
        throughput: dict[str, Any] = {}
        for name, work in self.workloads.items():
            served = await self.measure(self.load(work))
            echo = await self.measure(self.load(work, echo=True))
            ratio = served["calls_per_second"] / echo["calls_per_second"]
            throughput[name] = {"served": served, "echo": echo, "ratio": round(ratio, 3)}
            say(
                f"{label}: {name}: {served['calls_per_second']} calls/s "
                f"(echo {echo['calls_per_second']}, ratio {ratio:.2f}), "
                f"{served['server_cpu_ms_per_call']} ms server CPU/call, "
                f"reply {served['reply_bytes_median']} B, codes {served['codes']}"
            )
        get = self.workloads["GetWorkOrder"]
        at_rate = {
            "served": await self.measure(self.load(get, rate=opts.rate)),
            "echo": await self.measure(self.load(get, echo=True, rate=opts.rate)),
        }
        say(
            f"{label}: GetWorkOrder at {opts.rate:g}/s: p50 {at_rate['served']['p50_ms']} / "
            f"p90 {at_rate['served']['p90_ms']} / p99 {at_rate['served']['p99_ms']} ms "
            f"(echo p99 {at_rate['echo']['p99_ms']} ms)"
        )
        short = max(1.0, opts.seconds / 2)
        refusals = {
            "UNAUTHENTICATED": await self.measure(self.load(get, who="unknown", seconds=short)),
            "RESOURCE_EXHAUSTED": await self.measure(self.load(get, who="limited", seconds=short)),
        }
        say(
            f"{label}: refusals, server CPU/call: "
            + ", ".join(f"{k} {v['server_cpu_ms_per_call']} ms" for k, v in refusals.items())
        )
        return {"throughput": throughput, "at_rate": at_rate, "refusals": refusals}

    async def profile(self, phase: str) -> dict[str, Any]:
        """py-spy on this process and the store while ``phase`` (a read, or UNAUTHENTICATED) is
        called at full speed: each process's functions and where its samples fall."""
        folder = self.tmp / f"pyspy-{phase}"
        sampler = Sampler(
            {"orders": os.getpid(), "store": self.store_pid}, folder, self.opts.profile_rate
        )
        work = self.workloads["GetWorkOrder" if phase == "UNAUTHENTICATED" else phase]
        who = "unknown" if phase == "UNAUTHENTICATED" else None
        sampler.start()
        try:
            await asyncio.sleep(1)  # py-spy attached before the first call
            figures = await self.measure(
                self.load(work, who=who, seconds=self.opts.profile_seconds)
            )
        finally:
            profiles = await asyncio.to_thread(sampler.stop)
        result: dict[str, Any] = {"figures": figures, "errors": sampler.errors, "processes": {}}
        for name, profile in sorted(profiles.items()):
            raw = (folder / f"{name}.txt").read_text(errors="replace")
            cpu_ms = figures[f"{name}_cpu_ms_per_call"]
            result["processes"][name] = {
                **profile.summary(self.opts.profile_rate, n=15),
                "breakdown": breakdown(raw, CATEGORIES[name], REST[name], cpu_ms),
            }
        return result


# -- where the samples fall ----------------------------------------------------------------------
WAITING = "waiting (select, thread-pool queue, locks; py-spy counts them as active)"
WAITING_LEAVES = (
    "EpollSelector.select (",
    "_worker (concurrent/futures/thread.py)",
    "_serialize.<locals>.wrapper (nx_27017/handler.py)",
)
CATEGORIES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "orders": (
        (
            "background: consumers, relay, timers, health",
            (
                "aiokafka/",
                "faststream/",
                "fixloop_shared/outbox.py",
                "fixloop_shared/due_work.py",
                "fixloop_shared/bus.py",
                "partner_api.py",
                "fixloop_shared/grpc_edge/hosting.py",
            ),
        ),
        ("store round trips: pymongo, its tracing spans, BSON, sockets", ("pymongo/", "bson/")),
        ("call log: logging, JSON formatting", ("logging/", "pythonjsonlogger/")),
        ("reply messages: work_order_message, offer_message", ("grpc_messages.py",)),
        (
            "documents to views: order_from_document, view_of",
            ("fixloop_orders/adapters/mongo.py", "fixloop_orders/app/", "fixloop_orders/domain/"),
        ),
        ("edge interceptors: auth, rate limit, error mapping", ("fixloop_shared/grpc_edge/",)),
        ("servicer: validation, bounded_read", ("grpc_api.py", "grpc_jobs.py")),
        ("grpc's Python layer", ("grpc/", "grpc_status/", "google/")),
    ),
    "store": (
        ("query execution: neosqlite over SQLite, JSON", ("neosqlite/", "json/", "sqlite3/")),
        ("command handling: nx-27017, BSON", ("nx_27017/", "embedded_store.py", "bson/")),
        (
            "thread hand-off: to_thread, loop wake-ups",
            ("concurrent/futures/", "_write_to_self", "_read_from_self", "call_soon_threadsafe"),
        ),
    ),
}
REST = {
    "orders": "the rest: gRPC core (C code under the loop's callbacks), event loop, sockets",
    "store": "the rest: event loop, sockets",
}


def breakdown(
    raw: str,
    categories: Sequence[tuple[str, Sequence[str]]],
    rest: str,
    cpu_ms_per_call: float | None,
) -> list[dict[str, Any]]:
    """Each sample (a collapsed stack of py-spy's raw output) in the first category one of whose
    markers appears in it (waits first, by their leaf frame); the share of the samples, and that
    share of the measured CPU per call (the waits left out of the shares that split the CPU)."""
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [function_of(frame) for frame in stack.split(";")]
        if frames[-1].startswith(WAITING_LEAVES):
            counts[WAITING] += int(count_text)
            continue
        for name, markers in categories:
            if any(marker in frame for frame in frames for marker in markers):
                counts[name] += int(count_text)
                break
        else:
            counts[rest] += int(count_text)
    total = sum(counts.values())
    working = total - counts[WAITING]
    rows = []
    for name in [*(n for n, _ in categories), rest, WAITING]:
        share = counts[name] / total if total else 0.0
        cpu = None
        if name != WAITING and working and cpu_ms_per_call is not None:
            cpu = round(cpu_ms_per_call * counts[name] / working, 3) + 0.0
        rows.append(
            {
                "category": name,
                "samples": counts[name],
                "percent": round(100 * share, 1),
                "cpu_ms_per_call": cpu,
            }
        )
    return rows


# -- the whole benchmark -------------------------------------------------------------------------
async def main_async(opts: Options) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    profiles: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fixloop-bench-grpc-") as scratch:
        tmp = opts.work_dir or Path(scratch)
        bench = Bench(opts, tmp)
        try:
            began = time.monotonic()
            await bench.start()
            say(f"embedded broker, store and orders service up in {time.monotonic() - began:.0f}s")
            began = time.monotonic()
            await bench.seed()
            say(
                f"{opts.orders} orders seeded, offered, every other offer accepted "
                f"in {time.monotonic() - began:.0f}s"
            )
            await bench.measure_idle()
            say(
                f"idle CPU (subtracted): orders {bench.idle['orders']:.3f} s/s, "
                f"store {bench.idle['store']:.3f} s/s"
            )
            for i in range(opts.runs):
                figures = await bench.run(f"run {i + 1}/{opts.runs}")
                figures["run"] = i + 1
                runs.append(figures)
            for phase in opts.profile_phases if opts.profile else ():
                say(f"profiling {phase} with py-spy ...")
                profiles[phase] = await bench.profile(phase)
        finally:
            await bench.stop()
        return summarise(opts, bench, runs, profiles)


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return round(statistics.median(present), 3) if present else None


SUMMED = (
    "calls_per_second",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "server_cpu_ms_per_call",
    "orders_cpu_ms_per_call",
    "store_cpu_ms_per_call",
    "client_cpu_ms_per_call",
    "reply_bytes_median",
)


def medians(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {key: median([row[key] for row in rows]) for key in SUMMED}


def summarise(
    opts: Options, bench: Bench, runs: list[dict[str, Any]], profiles: dict[str, Any]
) -> dict[str, Any]:
    throughput = {}
    for name in READS:
        rows = [r["throughput"][name] for r in runs]
        throughput[name] = {
            "served": medians([r["served"] for r in rows]),
            "echo": medians([r["echo"] for r in rows]),
            "ratio": median([r["ratio"] for r in rows]),
            "requests": len(bench.workloads[name].requests),
        }
    at_rate = {side: medians([r["at_rate"][side] for r in runs]) for side in ("served", "echo")}
    refusals = {
        code: medians([r["refusals"][code] for r in runs])
        for code in ("UNAUTHENTICATED", "RESOURCE_EXHAUSTED")
    }
    get = throughput["GetWorkOrder"]
    return {
        "benchmark": "partner-grpc-reads",
        "time": datetime.now(UTC).isoformat(),
        "options": {
            **asdict(opts),
            "out": str(opts.out) if opts.out else None,
            "work_dir": str(opts.work_dir) if opts.work_dir else None,
        },
        "machine": {"cpus": os.cpu_count(), "python": host.python_version()},
        "git_commit": git_commit(),
        "setup": {
            "orders": opts.orders,
            "page_size": PAGE_SIZE,
            "service_rate_limit": "none (grpc_rate_limit='')",
            "limited_principal_rate_limit": TINY_LIMIT,
            "default_rate_limit": DEFAULT_LIMIT,
            "idle_cpu_seconds_per_second": bench.idle,
            "pages": {
                n: len(w.requests) for n, w in bench.workloads.items() if n != "GetWorkOrder"
            },
            "items_per_page": {
                n: w.items for n, w in bench.workloads.items() if n != "GetWorkOrder"
            },
            "pagination": {
                n: {"expected": w.expected, "walked": len(w.ids), "distinct": len(set(w.ids))}
                for n, w in bench.workloads.items()
                if n != "GetWorkOrder"
            },
            "reply_bytes": {n: w.reply_sizes for n, w in bench.workloads.items()},
        },
        "throughput": throughput,
        "at_rate": {"rate": opts.rate, **at_rate},
        "refusals": {
            **refusals,
            "served_GetWorkOrder": get["served"],
            "echo": get["echo"],
        },
        "profiles": profiles,
        "targets": {
            "ratio_to_echo_min": TARGETS["ratio_min"],
            "p99_ms_at_200_per_second_max": TARGETS["p99_ms_max"],
            "refusal_cpu_below_served": True,
        },
        "runs": runs,
    }


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("  [target met]" if ok else "  [target missed]")


def report(result: dict[str, Any]) -> str:
    opts, setup = result["options"], result["setup"]
    lines = [
        f"Fixloop partner gRPC API reads, commit {result['git_commit']}, {opts['runs']} run(s), "
        f"medians; {setup['orders']} orders of one tenant, embedded store",
        f"service built without a rate limit (grpc_rate_limit=''); client in its own process; "
        f"{opts['concurrency']} calls in flight, {opts['seconds']:g} s per figure",
        "server CPU = this process (orders service, every thread) + the store's process, idle "
        f"use subtracted (orders {setup['idle_cpu_seconds_per_second']['orders']:.3f}, store "
        f"{setup['idle_cpu_seconds_per_second']['store']:.3f} CPU s/s)",
        "",
        f"{'read':<15}{'reply B':>9}{'calls/s':>9}{'echo/s':>9}{'ratio':>7}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'CPU ms/call':>13}{'orders':>8}{'store':>7}{'echo':>7}",
    ]
    for name, row in result["throughput"].items():
        served, echo = row["served"], row["echo"]
        lines.append(
            f"{name:<15}{served['reply_bytes_median'] or 0:>9.0f}"
            f"{served['calls_per_second'] or 0:>9.0f}{echo['calls_per_second'] or 0:>9.0f}"
            f"{row['ratio'] or 0:>7.2f}{served['p50_ms'] or 0:>8.1f}{served['p99_ms'] or 0:>8.1f}"
            f"{served['server_cpu_ms_per_call'] or 0:>13.2f}"
            f"{served['orders_cpu_ms_per_call'] or 0:>8.2f}"
            f"{served['store_cpu_ms_per_call'] or 0:>7.2f}"
            f"{echo['server_cpu_ms_per_call'] or 0:>7.2f}"
        )
    lines.append("")
    for name, row in result["throughput"].items():
        ratio = row["ratio"]
        lines.append(
            f"{name}: {ratio:.2f}x the bare echo's requests/s at concurrency "
            f"{opts['concurrency']}, same reply size"
            + verdict(None if ratio is None else ratio >= TARGETS["ratio_min"])
        )
    rate = result["at_rate"]
    served, echo = rate["served"], rate["echo"]
    p99 = served["p99_ms"]
    lines.append(
        f"GetWorkOrder at {rate['rate']:g}/s offered (open loop, from the scheduled time): "
        f"p50 {served['p50_ms']} / p90 {served['p90_ms']} / p99 {p99} ms, "
        f"{served['server_cpu_ms_per_call']} ms server CPU/call "
        f"(echo: p99 {echo['p99_ms']} ms)"
        + verdict(
            None if p99 is None or rate["rate"] != TARGETS["rate"] else p99 <= TARGETS["p99_ms_max"]
        )
    )
    refusals = result["refusals"]
    served_cpu = refusals["served_GetWorkOrder"]["server_cpu_ms_per_call"]
    lines.append("server CPU per call (orders + store):")
    for code in ("UNAUTHENTICATED", "RESOURCE_EXHAUSTED"):
        row = refusals[code]
        lines.append(
            f"  {code:<19}{row['server_cpu_ms_per_call']:>7.3f} ms "
            f"(orders {row['orders_cpu_ms_per_call']}, store {row['store_cpu_ms_per_call']}; "
            f"{row['calls_per_second']:.0f} refusals/s)"
            + verdict(
                None
                if served_cpu is None or row["server_cpu_ms_per_call"] is None
                else row["server_cpu_ms_per_call"] < served_cpu
            )
        )
    lines.append(f"  {'served GetWorkOrder':<19}{served_cpu:>7.3f} ms")
    lines.append(f"  {'echo (same size)':<19}{refusals['echo']['server_cpu_ms_per_call']:>7.3f} ms")
    lines.append(
        "pages walked (items per page): "
        + "; ".join(
            f"{name} {len(items)} ({', '.join(map(str, items))})"
            for name, items in setup["items_per_page"].items()
        )
    )
    broken = {n: c for n, c in setup["pagination"].items() if c["walked"] != c["expected"]}
    if broken:
        lines.append(
            "PAGINATION IS WRONG on this store (items seeded / items the pages gave / distinct): "
            + "; ".join(
                f"{n} {c['expected']} / {c['walked']} / {c['distinct']}" for n, c in broken.items()
            )
        )
    per_minute = 3000
    get_cpu = result["throughput"]["GetWorkOrder"]["served"]["server_cpu_ms_per_call"] or 0.0
    lines.append(
        f"rate limit: default {DEFAULT_LIMIT} per principal and pod "
        f"(FIXLOOP_ORDERS_GRPC_RATE_LIMIT; a principal's own rate_limit overrides it): "
        f"{per_minute / 60:.0f} calls/s sustained, "
        f"{per_minute * MAX_PAGE_SIZE:,} orders a minute listed at {MAX_PAGE_SIZE} per page; "
        f"a principal using all of it costs {per_minute / 60 * get_cpu / 10:.1f}% of a core "
        f"at {get_cpu:.2f} ms per GetWorkOrder"
    )
    for phase, prof in result["profiles"].items():
        figures = prof["figures"]
        lines.append(
            f"where the server CPU goes, {phase} at full speed with py-spy attached "
            f"({figures['calls_per_second']} calls/s, orders {figures['orders_cpu_ms_per_call']} "
            f"+ store {figures['store_cpu_ms_per_call']} ms CPU/call):"
        )
        for name, process in prof["processes"].items():
            lines.append(f"  {name} ({process['samples']} non-idle samples):")
            lines.extend(
                f"    {row['percent']:5.1f}%  "
                + (
                    f"{row['cpu_ms_per_call']:5.2f} ms  "
                    if row["cpu_ms_per_call"] is not None
                    else " " * 10
                )
                + row["category"]
                for row in process["breakdown"]
                if row["samples"]
            )
            own = ", ".join(f"{r['function']} {r['percent']}%" for r in process["top_own"][:4])
            lines.append(f"    most own samples: {own}")
        lines.extend(f"  py-spy could not sample {n}: {e}" for n, e in prof["errors"].items())
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    defaults = Options()
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--orders", type=int, default=defaults.orders, help="orders to seed")
    parser.add_argument(
        "--seconds", type=float, default=defaults.seconds, help="measured seconds per figure"
    )
    parser.add_argument("--warmup", type=float, default=defaults.warmup)
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency)
    parser.add_argument(
        "--rate", type=float, default=defaults.rate, help="offered GetWorkOrder calls/s"
    )
    parser.add_argument("--runs", type=int, default=defaults.runs, help="3 recommended")
    parser.add_argument("--out", type=Path, help="the JSON file (default bench/results/grpc-*)")
    parser.add_argument("--work-dir", type=Path, help="keep the store, logs and profiles here")
    parser.add_argument("--no-profile", action="store_true", help="no py-spy phase")
    parser.add_argument("--profile-seconds", type=float, default=defaults.profile_seconds)
    parser.add_argument(
        "--profile",
        default=",".join(defaults.profile_phases),
        help="what py-spy samples after the runs: reads and/or UNAUTHENTICATED, comma-separated",
    )
    parser.add_argument("--profile-rate", type=int, default=defaults.profile_rate)
    args = parser.parse_args(argv)
    if args.orders < PAGE_SIZE or args.runs < 1 or args.concurrency < 1:
        parser.error(f"--orders must be at least {PAGE_SIZE}, --runs and --concurrency 1")
    phases = tuple(p.strip() for p in args.profile.split(",") if p.strip())
    if unknown := [p for p in phases if p not in READS and p != "UNAUTHENTICATED"]:
        parser.error(f"--profile: unknown {', '.join(unknown)}")
    if args.seconds <= 0 or args.rate <= 0 or args.warmup < 0:
        parser.error("--seconds and --rate must be positive, --warmup not negative")
    return Options(
        orders=args.orders,
        seconds=args.seconds,
        warmup=args.warmup,
        concurrency=args.concurrency,
        rate=args.rate,
        runs=args.runs,
        out=args.out.resolve() if args.out else None,
        work_dir=args.work_dir.resolve() if args.work_dir else None,
        profile=not args.no_profile,
        profile_seconds=args.profile_seconds,
        profile_rate=args.profile_rate,
        profile_phases=phases,
    )


def main() -> None:
    opts = parse_args()
    if opts.work_dir is not None:
        opts.work_dir.mkdir(parents=True, exist_ok=True)
    # SIGTERM (e.g. a timeout) unwinds like Ctrl-C, so the broker and store are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = asyncio.run(main_async(opts))
    out = opts.out or RESULTS / f"grpc-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    print(f"written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
