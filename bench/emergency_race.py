"""Benchmark: emergencies offered to three contractors at once, accepted by several at once.

Starts the embedded broker and two embedded stores (one per service) and builds the orders and
contractors services in this process, each as its own process builds it (``bootstrap``: its
consumers, relay, timers and gRPC server on a free port; their log lines go to a file). One
tenant, three contractors (``emergency_fan_out=3``), every one covering the site, without a
capacity limit and on call around the clock; offers stand for a week and the dispatch deadlines
are 30 days, so nothing runs out during a run. Per run:

1. ``--orders`` (1,000) emergency orders are published at once on the inbound topic; the run
   waits until each order's three offers were made (``fixloop.assignment.offered.v1`` on the
   contractors' events topic), then until the orders service lists them (``ListOffers`` of each
   contractor, paging 200 at a time, once a second) and reports how long both took;
2. the race: for each order, ``--racers`` (2; at most 3) of its contractors call ``AcceptOffer``
   of the partner gRPC API at the same moment (one ``asyncio.gather`` per order; each contractor
   has its own channel, as each app would; every call with a fresh ``request_id`` and a
   ``--deadline`` of 10 s, no retries). Which contractors race turns from order to order, so each
   is in as many races as the others. At most ``--concurrency`` (50) orders race at a time: a
   window, not waves, where the next order's race starts as soon as one ends (``0``: every
   order's race at once);
3. per order: the OK answers (exactly 1 expected), the FAILED_PRECONDITION answers (racers - 1
   expected) and any other code (an error); the time to resolve, from the racing calls' start to
   the winner's answer (p50/p90/p99/max), and the loser's answer time;
4. the withdrawals: a consumer of the contractors' events topic (no group, from its end before
   the orders are published) notes when each ``fixloop.assignment.withdrawn.v1`` is read; the
   time until the last of an order's other offers (the losers' and the one not raced for) is
   withdrawn, from the race's start and from the winner's answer (p50/p99). The consumer's fetch
   waits up to 100 ms, so these figures carry up to 100 ms of the reader's own;
5. afterwards: each contractor's load in the contractors store's ``contractors`` collection
   (open offers 0, but for orders nobody won, whose offers stay open; open jobs = the orders it
   won; over every run so far; read until it is so or nothing changes for 60 s) and every
   order's state in the orders store (``assigned``, to the contractor whose accept was answered
   OK).

The orders service's gRPC server admits 512 calls at once and refuses more with
RESOURCE_EXHAUSTED (``DEFAULT_MAX_CONCURRENT_RPCS``), and gives a mutation at most 10 s whatever
the caller's deadline (DEADLINE_EXCEEDED beyond it, nothing changed). ``--concurrency`` times
``--racers`` near or above 512 (``--concurrency 0`` with a few hundred orders) ends calls with
either, counted as errors; an order whose racers all got one has no winner, and its offers stay
open.

Everything runs in one process and one event loop, as in the integration tests: the two
services, the callers and the topic reader share it (and, with the broker and the two stores,
the machine's cores), so a burst of accepts also slows the contractors service's handling of
the assignments that end in the withdrawals. A race is timed from its own start, not from the
wait for its turn; but with 50 orders racing, 100 calls are in the service at once and each
answer waits for those ahead of it, so the time to resolve is about 50 / the orders resolved per
second. ``--concurrency 1`` gives a lone race's time.

Prints a summary and writes everything as JSON (``--out``, default
``bench/results/emergency-*.json``). Figures are medians over the runs (``--runs``; each run
publishes new orders on the same platform). It asserts nothing about speed; it says clearly when
an order had no winner or more than one.

    uv run python -m bench.emergency_race                   # the defaults of `make bench-emergency`
    uv run python -m bench.emergency_race --orders 50       # smoke, ~1 min
    uv run python -m bench.emergency_race --orders 100 --racers 3 --concurrency 0   # all at once
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import platform as host
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.pipeline import git_commit
from bench.probes import percentile
from fixloop.v1 import contractor_jobs_service_pb2 as jobs_pb2
from fixloop.v1 import contractor_jobs_service_pb2_grpc as jobs_grpc
from fixloop_contractors.adapters.mongo import CONTRACTORS as CONTRACTORS_COLLECTION
from fixloop_contractors.app.registry import import_contractors
from fixloop_contractors.domain.model import Contractor, Credential, CredentialKind, ServiceRegion
from fixloop_contractors.main import ContractorsService
from fixloop_contractors.main import bootstrap as contractors_bootstrap
from fixloop_contractors.settings import ContractorsSettings
from fixloop_devkit.testing import (
    ManagedProcess,
    start_embedded_broker,
    start_embedded_store,
    start_in_process,
)
from fixloop_orders.adapters.mongo import WORK_ORDERS
from fixloop_orders.main import OrdersService
from fixloop_orders.main import bootstrap as orders_bootstrap
from fixloop_orders.settings import OrdersSettings
from fixloop_shared.contracts import WorkOrderSubmitted
from fixloop_shared.envelope import EventEnvelope, to_structured
from fixloop_shared.grpc_edge.principals import PrincipalKind, PrincipalSpec, hash_api_key
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topics import Topic
from fixloop_shared.vocabulary import Priority

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BASE_ORDER = ROOT / "examples" / "orders" / "hvac-breakdown-berlin.json"

TENANT = "bench-race"
SOURCE = "bench-race.example"
FAN_OUT = 3
CONTRACTOR_IDS = tuple(f"bench-race-c{i}" for i in range(1, FAN_OUT + 1))
KEYS = {contractor: f"{contractor}-key" for contractor in CONTRACTOR_IDS}
OFFERED = "fixloop.assignment.offered.v1"
WITHDRAWN = "fixloop.assignment.withdrawn.v1"
PAGE_SIZE = 200
OFFER_TTL_SECONDS = 7 * 24 * 3600
DISPATCH_DEADLINE_SECONDS = 30 * 24 * 3600
STALL_SECONDS = 120.0
"""Waiting for offers gives up when no new one was listed for this long."""
SETTLE_SECONDS = 60.0
"""Waiting for withdrawals and loads gives up when nothing changed for this long."""
OK = grpc.StatusCode.OK.name
REFUSED = grpc.StatusCode.FAILED_PRECONDITION.name
T = TypeVar("T")


@dataclass
class Options:
    orders: int = 1000
    racers: int = 2
    concurrency: int = 50
    deadline: float = 10.0
    runs: int = 1
    out: Path | None = None
    work_dir: Path | None = None


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def say(message: str) -> None:
    print(f"{datetime.now().strftime('%H:%M:%S')} {message}", flush=True)  # noqa: DTZ005


def spread(prefix: str, seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max of durations in seconds, as milliseconds (NaN for none)."""
    values = list(seconds)
    return {
        f"{prefix}_p50_ms": ms(percentile(values, 0.5)),
        f"{prefix}_p90_ms": ms(percentile(values, 0.9)),
        f"{prefix}_p99_ms": ms(percentile(values, 0.99)),
        f"{prefix}_max_ms": ms(max(values)) if values else float("nan"),
    }


# -- one order's race -----------------------------------------------------------------------------
@dataclass
class Race:
    work_order_id: str
    offers: dict[str, str]
    """Contractor → its offer of the order."""
    racers: tuple[str, ...] = ()
    started: float = 0.0
    """``time.monotonic()`` when the racing calls were made."""
    answers: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Racer → (status code, seconds from the start to its answer)."""

    @property
    def winners(self) -> list[str]:
        return [c for c, (code, _) in self.answers.items() if code == OK]

    def seconds_of(self, wanted: str) -> list[float]:
        return [s for code, s in self.answers.values() if code == wanted]

    def others(self) -> list[str]:
        """The offers that should be withdrawn: every one but the winner's (one winner only)."""
        winners = self.winners
        if len(winners) != 1:
            return []
        return [offer for c, offer in self.offers.items() if c != winners[0]]


class EventWatch:
    """Reads the contractors' events topic (no consumer group, from its end at the start) and
    notes the offers made per work order, and when each offer's withdrawal was read
    (``time.monotonic()``)."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=100
        )
        self.offered: dict[str, set[str]] = {}
        """Work order → the offers made of it."""
        self.withdrawn: dict[str, float] = {}
        """Offer → when its withdrawal was read."""
        self.stamped: dict[str, float] = {}
        """Offer → its withdrawal's record timestamp (when the relay sent it), on the same
        clock as :attr:`withdrawn`."""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        await self.consumer.topics()  # loads the cluster metadata
        topic = Topic.CONTRACTORS_EVENTS.value
        partitions = [
            TopicPartition(topic, p)
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for partition in partitions:  # the start pinned before anything is published
            await self.consumer.position(partition)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=200)
            now = time.monotonic()
            wall_minus_monotonic = time.time() - now
            for records in batch.values():
                for record in records:
                    headers = {k: v.decode(errors="replace") for k, v in record.headers or ()}
                    kind = headers.get("ce_type")
                    if kind not in {OFFERED, WITHDRAWN}:
                        continue
                    payload = json.loads(record.value or b"{}")
                    offer_id = payload.get("offer_id", "")
                    if kind == OFFERED:
                        work_order_id = payload.get("work_order_id", "")
                        self.offered.setdefault(work_order_id, set()).add(offer_id)
                        continue
                    self.withdrawn.setdefault(offer_id, now)
                    self.stamped.setdefault(
                        offer_id, record.timestamp / 1000 - wall_minus_monotonic
                    )


def running(value: T | None, what: str) -> T:
    if value is None:
        msg = f"{what} is not started"
        raise RuntimeError(msg)
    return value


# -- the platform ---------------------------------------------------------------------------------
def quiet(log: TextIO) -> None:
    """The services log JSON lines (one per gRPC call, among others) to stdout; here they go to a
    file."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(log)


def principals() -> list[PrincipalSpec]:
    """One contractor app per contractor, each with its key (stored as its hash)."""
    return [
        PrincipalSpec(
            id=f"{contractor}-app",
            kind=PrincipalKind.CONTRACTOR,
            key_hashes=[hash_api_key(KEYS[contractor])],
            contractor_id=contractor,
        )
        for contractor in CONTRACTOR_IDS
    ]


def contractor_profiles() -> list[Contractor]:
    """Three contractors for the tenant's HVAC work around Berlin (postal codes 10…); no capacity
    limit, no rota (on call around the clock)."""
    return [
        Contractor(
            contractor_id=contractor,
            name=f"Bench Race Contractor {i}",
            email=f"{contractor}@example.com",
            timezone="Europe/Berlin",
            tenants=frozenset({TENANT}),
            skills=frozenset({"hvac"}),
            regions=(ServiceRegion(country="DE", postal_prefixes=("10",)),),
            credentials=(
                Credential(
                    kind=CredentialKind.LIABILITY_INSURANCE,
                    number=f"INS-RACE-{i}",
                    expires_on=date(2099, 12, 31),
                ),
            ),
        )
        for i, contractor in enumerate(CONTRACTOR_IDS, start=1)
    ]


@dataclass
class Platform:
    opts: Options
    tmp: Path
    processes: list[ManagedProcess] = field(default_factory=list)
    bootstrap: str = ""
    orders: OrdersService | None = None
    contractors: ContractorsService | None = None
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    watch: EventWatch | None = None
    log: TextIO | None = None
    done: set[str] = field(default_factory=set)
    """Work orders raced in earlier runs."""
    won: Counter[str] = field(default_factory=Counter)
    """Orders each contractor won (an OK answer), over every run."""
    unresolved: Counter[str] = field(default_factory=Counter)
    """Each contractor's offers of orders nobody won (none answered OK), over every run."""

    async def start(self) -> None:
        broker, self.bootstrap = start_embedded_broker(self.tmp)
        self.processes.append(broker)
        stores = {}
        for name in ("contractors", "orders"):
            store, uri = start_embedded_store(self.tmp / "stores", name)
            self.processes.append(store)
            stores[name] = uri
        kafka = KafkaSettings(bootstrap=self.bootstrap)
        log = self.log = (self.tmp / "services.log").open("a", encoding="utf-8")

        def build_contractors() -> ContractorsService:
            service = contractors_bootstrap(
                ContractorsSettings(
                    mongodb_uri=stores["contractors"],
                    database="bench_race_contractors",
                    kafka=kafka,
                    health_port=0,
                    grpc_port=0,
                    grpc_reflection=False,
                    emergency_fan_out=FAN_OUT,
                    offer_ttl_seconds=OFFER_TTL_SECONDS,
                    emergency_offer_ttl_seconds=OFFER_TTL_SECONDS,
                    dispatch_escalate_after_seconds=DISPATCH_DEADLINE_SECONDS,
                    emergency_dispatch_escalate_after_seconds=DISPATCH_DEADLINE_SECONDS,
                    dispatch_time_limit_seconds=DISPATCH_DEADLINE_SECONDS,
                    emergency_dispatch_time_limit_seconds=DISPATCH_DEADLINE_SECONDS,
                )
            )
            quiet(log)
            return service

        def build_orders() -> OrdersService:
            service = orders_bootstrap(
                OrdersSettings(
                    mongodb_uri=stores["orders"],
                    database="bench_race_orders",
                    kafka=kafka,
                    health_port=0,
                    grpc_port=0,
                    grpc_reflection=False,
                    grpc_rate_limit="",  # the default 100/second per principal would refuse accepts
                    principals=principals(),
                    source_tenants={SOURCE: [TENANT]},
                )
            )
            quiet(log)
            return service

        self.contractors = await start_in_process(build_contractors)
        await import_contractors(
            self.contractors.registry, contractor_profiles(), as_of=datetime.now(UTC).date()
        )
        self.orders = await start_in_process(build_orders)
        target = f"127.0.0.1:{self.orders.partner_api.bound_port}"
        for contractor in CONTRACTOR_IDS:
            self.channels[contractor] = grpc.aio.insecure_channel(target)
            await asyncio.wait_for(self.channels[contractor].channel_ready(), timeout=10)
        self.watch = EventWatch(self.bootstrap)
        await self.watch.start()

    async def stop(self) -> None:
        if self.watch is not None:
            await self.watch.stop()
        for channel in self.channels.values():
            await channel.close()
        for service in (self.orders, self.contractors):
            if service is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(service.app.stop(), 60)
        for proc in reversed(self.processes):
            proc.stop()
        if self.log is not None:
            self.log.close()

    def jobs(self, contractor: str) -> jobs_grpc.ContractorJobsServiceStub:
        return jobs_grpc.ContractorJobsServiceStub(self.channels[contractor])  # type: ignore[no-untyped-call]

    # -- a run's steps ----------------------------------------------------------------------------
    async def submit(self, count: int, run: str) -> None:
        """``count`` emergency orders on the inbound topic, at once, as a partner platform sends
        them (structured CloudEvents)."""
        template = json.loads(BASE_ORDER.read_text())["data"]
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            sends = []
            for i in range(count):
                external_id = f"RACE-{run}-{i:06d}"
                payload = WorkOrderSubmitted.model_validate_json(
                    json.dumps(
                        {**template, "external_id": external_id, "priority": Priority.EMERGENCY}
                    )
                )
                envelope = EventEnvelope.new(
                    payload, source=SOURCE, subject=external_id, tenant=TENANT
                )
                sends.append(
                    await producer.send(
                        Topic.WORKORDERS_INBOUND.value,
                        json.dumps(to_structured(envelope, payload)).encode(),
                        key=f"{TENANT}/{SOURCE}/{external_id}".encode(),
                        headers=[("content-type", b"application/cloudevents+json")],
                    )
                )
            await asyncio.gather(*sends)
        finally:
            await producer.stop()

    async def open_offers(self, contractor: str) -> list[Any]:
        """Every open offer of the contractor, page by page."""
        offers: list[Any] = []
        token = ""
        metadata = (("x-api-key", KEYS[contractor]),)
        while True:
            page = await self.jobs(contractor).ListOffers(
                jobs_pb2.ListOffersRequest(page_size=PAGE_SIZE, page_token=token),
                metadata=metadata,
                timeout=30,
            )
            offers.extend(page.offers)
            token = page.next_page_token
            if not token or not page.offers:
                return offers

    async def made(self, count: int) -> int:
        """Wait until ``count`` new orders each had an offer made to every contractor (read on
        the contractors' events topic), or no new offer was made for a while; how many did."""
        watch = running(self.watch, "the event watch")
        deadline = time.monotonic() + STALL_SECONDS
        seen = -1
        while True:
            offers = [o for w, o in watch.offered.items() if w not in self.done]
            ready = sum(1 for o in offers if len(o) >= FAN_OUT)
            if ready >= count or time.monotonic() > deadline:
                return ready
            if (total := sum(map(len, offers))) != seen:
                seen, deadline = total, time.monotonic() + STALL_SECONDS
            await asyncio.sleep(0.2)

    async def listed(self, count: int) -> list[Race]:
        """Wait until the orders service lists ``count`` new orders' offers to every contractor
        (or no new one for a while); those orders, in the order they were offered."""
        deadline = time.monotonic() + STALL_SECONDS
        seen = -1
        while True:
            listed = await asyncio.gather(*(self.open_offers(c) for c in CONTRACTOR_IDS))
            by_order: dict[str, dict[str, str]] = {}
            for contractor, offers in zip(CONTRACTOR_IDS, listed, strict=True):
                for offer in offers:
                    if offer.work_order_id not in self.done:
                        by_order.setdefault(offer.work_order_id, {})[contractor] = offer.offer_id
            ready = [w for w, offers in by_order.items() if len(offers) == FAN_OUT]
            total = sum(len(o) for o in by_order.values())
            if len(ready) >= count or time.monotonic() > deadline:
                return [Race(w, by_order[w]) for w in ready]
            if total != seen:
                seen, deadline = total, time.monotonic() + STALL_SECONDS
            await asyncio.sleep(1)

    async def accept(self, race: Race, contractor: str) -> None:
        request = jobs_pb2.AcceptOfferRequest(
            request_id=f"race-{uuid.uuid4().hex}", offer_id=race.offers[contractor]
        )
        try:
            await self.jobs(contractor).AcceptOffer(
                request, metadata=(("x-api-key", KEYS[contractor]),), timeout=self.opts.deadline
            )
            code = OK
        except grpc.aio.AioRpcError as exc:
            code = exc.code().name
        race.answers[contractor] = (code, time.monotonic() - race.started)

    async def race(self, races: list[Race]) -> float:
        """Every order's racers accept at the same moment; at most ``--concurrency`` orders race
        at a time (0: all at once). The wall-clock seconds of the whole phase."""
        slots = asyncio.Semaphore(self.opts.concurrency or len(races) or 1)

        async def one(i: int, race: Race) -> None:
            race.racers = tuple(CONTRACTOR_IDS[(i + j) % FAN_OUT] for j in range(self.opts.racers))
            async with slots:
                race.started = time.monotonic()
                await asyncio.gather(*(self.accept(race, c) for c in race.racers))

        began = time.monotonic()
        await asyncio.gather(*(one(i, race) for i, race in enumerate(races)))
        return time.monotonic() - began

    async def withdrawals(self, races: list[Race]) -> bool:
        """Wait until every other offer of the orders with one winner was seen withdrawn, or
        nothing more was for a while; whether all were."""
        watch = running(self.watch, "the event watch")
        wanted = {offer for race in races for offer in race.others()}
        deadline = time.monotonic() + SETTLE_SECONDS
        seen = -1
        while (found := len(wanted & watch.withdrawn.keys())) < len(wanted):
            if time.monotonic() > deadline:
                return False
            if found != seen:
                seen, deadline = found, time.monotonic() + SETTLE_SECONDS
            await asyncio.sleep(0.5)
        return True

    async def loads(self) -> dict[str, dict[str, int]]:
        contractors = running(self.contractors, "the contractors service")
        found = {}
        for contractor in CONTRACTOR_IDS:
            doc = await contractors.ctx.store.db[CONTRACTORS_COLLECTION].find_one(
                {"_id": contractor}
            )
            doc = doc or {}
            found[contractor] = {
                "open_offers": int(doc.get("open_offers", -1)),
                "open_jobs": int(doc.get("open_jobs", 0)),
            }
        return found

    async def settled_loads(self) -> tuple[dict[str, dict[str, int]], dict[str, Any], float]:
        """The contractors' loads once they are as expected (or stopped changing for a while):
        (found, expected, seconds waited)."""
        expected = {
            c: {"open_offers": self.unresolved[c], "open_jobs": self.won[c]} for c in CONTRACTOR_IDS
        }
        began = time.monotonic()
        deadline = began + SETTLE_SECONDS
        found = await self.loads()
        last = found
        while found != expected and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            found = await self.loads()
            if found != last:
                last, deadline = found, time.monotonic() + SETTLE_SECONDS
        return found, expected, time.monotonic() - began

    async def order_states(self, races: list[Race]) -> dict[str, Any]:
        """How the raced orders stand in the orders store."""
        service = running(self.orders, "the orders service")
        wanted = {race.work_order_id: race for race in races}
        docs = await service.ctx.store.db[WORK_ORDERS].find({"tenant": TENANT}).to_list()
        states: Counter[str] = Counter()
        to_winner = 0
        wrong: list[dict[str, Any]] = []
        for doc in docs:
            race = wanted.get(str(doc["_id"]))
            if race is None:
                continue
            state = str(doc.get("state"))
            states[state] += 1
            winners = race.winners
            if state == "assigned" and winners == [doc.get("contractor_id")]:
                to_winner += 1
            elif len(wrong) < 20:
                wrong.append(
                    {
                        "work_order_id": race.work_order_id,
                        "state": state,
                        "contractor_id": doc.get("contractor_id"),
                        "answers": {c: a[0] for c, a in race.answers.items()},
                    }
                )
        return {
            "raced": len(wanted),
            "found": sum(states.values()),
            "states": dict(states),
            "assigned_to_the_winner": to_winner,
            "not_so": wrong,
        }

    async def run(self, label: str) -> dict[str, Any]:
        opts = self.opts
        run = uuid.uuid4().hex[:8]
        began = time.monotonic()
        await self.submit(opts.orders, run)
        published = time.monotonic() - began
        made = await self.made(opts.orders)
        made_seconds = time.monotonic() - began
        races = await self.listed(min(made, opts.orders))
        offers_seconds = time.monotonic() - began
        say(
            f"{label}: {opts.orders} emergencies published in {published:.1f}s; {made} offered "
            f"to all {FAN_OUT} contractors after {made_seconds:.1f}s, {len(races)} listed so "
            f"after {offers_seconds:.1f}s"
        )
        race_seconds = await self.race(races)
        self.done.update(r.work_order_id for r in races)
        for race in races:
            for winner in race.winners:
                self.won[winner] += 1
            if not race.winners:  # nobody took it: its offers stay open
                self.unresolved.update(race.offers.keys())
        say(f"{label}: {len(races)} races run in {race_seconds:.1f}s")
        all_withdrawn = await self.withdrawals(races)
        found, expected, settle_seconds = await self.settled_loads()
        orders = await self.order_states(races)
        return self.figures(races, found, expected, orders) | {
            "published_seconds": round(published, 2),
            "offered_seconds": round(made_seconds, 2),
            "offers_listed_seconds": round(offers_seconds, 2),
            "race_seconds": round(race_seconds, 2),
            "races_per_second": round(len(races) / race_seconds, 1) if race_seconds else None,
            "all_withdrawn": all_withdrawn,
            "loads_settle_seconds": round(settle_seconds, 2),
        }

    def figures(
        self,
        races: list[Race],
        found: dict[str, dict[str, int]],
        expected: dict[str, Any],
        orders: dict[str, Any],
    ) -> dict[str, Any]:
        watch = running(self.watch, "the event watch")
        withdrawn, stamped = watch.withdrawn, watch.stamped
        winners = Counter(len(r.winners) for r in races)
        codes: Counter[str] = Counter(code for r in races for code, _ in r.answers.values())
        errors = {code: n for code, n in codes.items() if code not in {OK, REFUSED}}
        resolve = [r.seconds_of(OK)[0] for r in races if len(r.winners) == 1]
        refusal = [s for r in races for s in r.seconds_of(REFUSED)]
        from_start, after_answer, stamped_after = [], [], []
        for race in races:
            others = race.others()
            if others and all(o in withdrawn for o in others):
                last = max(withdrawn[o] for o in others)
                answered = race.started + race.seconds_of(OK)[0]
                from_start.append(last - race.started)
                after_answer.append(last - answered)
                stamped_after.append(max(stamped[o] for o in others) - answered)
        wrong_refusals = sum(
            1
            for r in races
            if len(r.winners) == 1 and len(r.seconds_of(REFUSED)) != len(r.racers) - 1
        )
        return {
            "orders": self.opts.orders,
            "raced": len(races),
            "exactly_one_winner": winners[1],
            "no_winner": winners[0],
            "more_than_one_winner": sum(n for k, n in winners.items() if k > 1),
            "winners_by_count": {str(k): n for k, n in sorted(winners.items())},
            "ok_answers": codes[OK],
            "refusals": codes[REFUSED],
            "refusals_expected": len(races) * (self.opts.racers - 1),
            "orders_with_other_than_racers_minus_1_refusals": wrong_refusals,
            "errors": sum(errors.values()),
            "error_codes": errors,
            **spread("resolve", resolve),
            **spread("refusal_answer", refusal),
            "withdrawn_orders": len(from_start),
            **spread("withdrawn_from_start", from_start),
            **spread("withdrawn_after_answer", after_answer),
            **spread("withdrawn_stamped_after_answer", stamped_after),
            "loads": {"found": found, "expected": expected, "ok": found == expected},
            "order_states": orders,
        }


# -- the whole benchmark --------------------------------------------------------------------------
async def main_async(opts: Options) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fixloop-bench-race-") as scratch:
        tmp = opts.work_dir or Path(scratch)
        platform = Platform(opts, tmp)
        try:
            began = time.monotonic()
            await platform.start()
            say(
                "embedded broker, two stores, orders and contractors services up in "
                f"{time.monotonic() - began:.0f}s"
            )
            for i in range(opts.runs):
                label = f"run {i + 1}/{opts.runs}"
                figures = await platform.run(label)
                figures["run"] = i + 1
                runs.append(figures)
                say(
                    f"{label}: {figures['exactly_one_winner']}/{figures['raced']} with exactly one "
                    f"winner, resolve p50 {figures['resolve_p50_ms']} / p99 "
                    f"{figures['resolve_p99_ms']} ms, {figures['errors']} errors"
                )
        finally:
            await platform.stop()
    return summarise(opts, runs)


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return round(statistics.median(present), 2) if present else None


MEDIANS = (
    "offered_seconds",
    "offers_listed_seconds",
    "race_seconds",
    "races_per_second",
    *(
        f"{name}_{q}_ms"
        for name in (
            "resolve",
            "refusal_answer",
            "withdrawn_from_start",
            "withdrawn_after_answer",
            "withdrawn_stamped_after_answer",
        )
        for q in ("p50", "p90", "p99", "max")
    ),
)
SUMS = (
    "orders",
    "raced",
    "exactly_one_winner",
    "no_winner",
    "more_than_one_winner",
    "ok_answers",
    "refusals",
    "refusals_expected",
    "orders_with_other_than_racers_minus_1_refusals",
    "errors",
    "withdrawn_orders",
)


def summarise(opts: Options, runs: list[dict[str, Any]]) -> dict[str, Any]:
    errors: Counter[str] = Counter()
    for row in runs:
        errors.update(row["error_codes"])
    return {
        "benchmark": "emergency-race",
        "time": datetime.now(UTC).isoformat(),
        "options": {
            **asdict(opts),
            "out": str(opts.out) if opts.out else None,
            "work_dir": str(opts.work_dir) if opts.work_dir else None,
        },
        "machine": {"cpus": os.cpu_count(), "python": host.python_version()},
        "git_commit": git_commit(),
        "setup": {
            "tenant": TENANT,
            "contractors": list(CONTRACTOR_IDS),
            "emergency_fan_out": FAN_OUT,
            "racers_per_order": opts.racers,
            "orders_racing_at_a_time": opts.concurrency or "all",
            "call_deadline_seconds": opts.deadline,
            "offer_ttl_seconds": OFFER_TTL_SECONDS,
            "orders_service_rate_limit": "none (grpc_rate_limit='')",
        },
        "totals": {key: sum(row[key] for row in runs) for key in SUMS}
        | {
            "error_codes": dict(errors),
            "all_withdrawn": all(row["all_withdrawn"] for row in runs),
            "loads_ok": all(row["loads"]["ok"] for row in runs),
            "orders_assigned_to_the_winner": sum(
                row["order_states"]["assigned_to_the_winner"] for row in runs
            ),
        },
        "medians": {key: median([row[key] for row in runs]) for key in MEDIANS},
        "runs": runs,
    }


def report(result: dict[str, Any]) -> str:
    opts, totals, med = result["options"], result["totals"], result["medians"]
    at_a_time = opts["concurrency"] or "all"
    lines = [
        f"Fixloop emergency race, commit {result['git_commit']}, {opts['runs']} run(s), medians; "
        f"{opts['orders']} emergencies per run, each offered to {FAN_OUT} contractors at once, "
        f"{opts['racers']} accepting at the same moment, {at_a_time} orders racing at a time",
        f"orders raced: {totals['raced']} of {totals['orders']} "
        f"(all {FAN_OUT} offers of each made after {med['offered_seconds']} s, listed by the "
        f"orders service after {med['offers_listed_seconds']} s)",
        f"exactly one winner: {totals['exactly_one_winner']}; no winner: {totals['no_winner']}; "
        f"more than one: {totals['more_than_one_winner']}",
        f"answers: {totals['ok_answers']} OK, {totals['refusals']} FAILED_PRECONDITION "
        f"(expected {totals['refusals_expected']}), {totals['errors']} other"
        + (f" {totals['error_codes']}" if totals["error_codes"] else ""),
        f"time to resolve (racing calls' start -> the winner's answer): p50 "
        f"{med['resolve_p50_ms']} / p90 {med['resolve_p90_ms']} / p99 {med['resolve_p99_ms']} / "
        f"max {med['resolve_max_ms']} ms; the refused answer p50 {med['refusal_answer_p50_ms']} / "
        f"p99 {med['refusal_answer_p99_ms']} ms",
        f"other offers withdrawn ({totals['withdrawn_orders']} orders): from the race's start p50 "
        f"{med['withdrawn_from_start_p50_ms']} / p99 {med['withdrawn_from_start_p99_ms']} ms; "
        f"after the winner's answer p50 {med['withdrawn_after_answer_p50_ms']} / p99 "
        f"{med['withdrawn_after_answer_p99_ms']} ms (by the records' timestamps, when the "
        f"contractors service sent them: p50 {med['withdrawn_stamped_after_answer_p50_ms']} / "
        f"p99 {med['withdrawn_stamped_after_answer_p99_ms']} ms)",
        f"races: {med['race_seconds']} s for the lot, {med['races_per_second']} orders resolved/s",
        f"orders assigned to their winner in the orders store: "
        f"{totals['orders_assigned_to_the_winner']} of {totals['raced']}",
    ]
    for row in result["runs"]:
        loads = row["loads"]
        lines.append(
            f"loads after run {row['run']} "
            + ("as expected" if loads["ok"] else "NOT AS EXPECTED")
            + " (open offers / open jobs): "
            + ", ".join(
                f"{c} {v['open_offers']}/{v['open_jobs']}"
                + (
                    ""
                    if v == loads["expected"][c]
                    else " (expected {open_offers}/{open_jobs})".format_map(loads["expected"][c])
                )
                for c, v in loads["found"].items()
            )
        )
        states = row["order_states"]
        if states["not_so"]:
            lines.append(
                f"  orders not assigned to their one winner: "
                f"{states['raced'] - states['assigned_to_the_winner']} (all states: "
                f"{states['states']}); the first: {states['not_so'][0]}"
            )
    if totals["no_winner"] or totals["more_than_one_winner"]:
        lines.append(
            f"WINNERS != 1: {totals['no_winner']} orders without a winner, "
            f"{totals['more_than_one_winner']} with more than one"
        )
    if not totals["all_withdrawn"]:
        lines.append("NOT EVERY OTHER OFFER WAS SEEN WITHDRAWN within the wait")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    defaults = Options()
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--orders", type=int, default=defaults.orders, help="emergencies per run")
    parser.add_argument(
        "--racers",
        type=int,
        default=defaults.racers,
        help=f"contractors accepting each order at once (2..{FAN_OUT})",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=defaults.concurrency,
        help="orders racing at a time (a window: the next starts when one ends); 0: all at once",
    )
    parser.add_argument(
        "--deadline", type=float, default=defaults.deadline, help="each AcceptOffer's, seconds"
    )
    parser.add_argument("--runs", type=int, default=defaults.runs)
    parser.add_argument(
        "--out", type=Path, help="the JSON file (default bench/results/emergency-*)"
    )
    parser.add_argument("--work-dir", type=Path, help="keep the stores and logs here")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.runs < 1 or args.concurrency < 0:
        parser.error("--orders and --runs must be at least 1, --concurrency not negative")
    if not 2 <= args.racers <= FAN_OUT:
        parser.error(f"--racers must be 2..{FAN_OUT}")
    if args.deadline <= 0:
        parser.error("--deadline must be positive")
    return Options(
        orders=args.orders,
        racers=args.racers,
        concurrency=args.concurrency,
        deadline=args.deadline,
        runs=args.runs,
        out=args.out.resolve() if args.out else None,
        work_dir=args.work_dir.resolve() if args.work_dir else None,
    )


def main() -> None:
    opts = parse_args()
    if opts.work_dir is not None:
        opts.work_dir.mkdir(parents=True, exist_ok=True)
    # SIGTERM (e.g. a timeout) unwinds like Ctrl-C, so the broker and stores are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = asyncio.run(main_async(opts))
    out = opts.out or RESULTS / f"emergency-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    print(f"written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
