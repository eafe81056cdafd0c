"""Benchmark: the sla service's running clocks, a burst of them due in one second, a restart.

The targets (from the issue): 1,000,000 running clocks in at most 1 GiB resident memory in the sla
process; fire lag p99 at most 1 s with 10,000 clocks due in the same second; after a restart with
1,000,000 clocks, ready to fire again within 60 s.

Starts an embedded broker and an embedded store in a temporary directory, then:

1. imports a bench policy into the sla database (one clock, dispatch confirmation: target 2 h,
   warning 1 h before the deadline) and creates the service's indexes on ``sla_orders``;
2. seeds ``--clocks`` (N) orders straight into ``sla_orders``, each as the engine writes a freshly
   received order: one document is built with the engine's own code (a received fact, ``settle``
   with the imported policy, ``order_document``) and cloned with its own id, partition (0..P-1, P
   the partitions of ``fixloop.workorders.events.v1``) and times shifted (a few clones are checked
   against the engine's own document). N - ``--burst`` of them warn spread evenly over
   ``--spread-hours`` (24) starting 30 minutes after the seeding began, so none comes due during
   the run (those more than an hour ahead were "received" in the future: only their times matter
   here); the ``--burst`` (10,000) warn within one second T, spread over its milliseconds. The
   per-partition gauges the engine keeps beside them (``sla_gauges``) are written to match. The
   embedded store inserts them at roughly 1,000 to 2,500 a second (its indexes included), so
   1,000,000 take 7 to 16 minutes;
3. the store's baseline: every order's (_id, next_due_ms, partition) read with a bare cursor
   (what a full reload costs on this store), before the burst is seeded and again at the end;
4. phase A (a restart at the default horizon, 2 h): ``python -m fixloop_sla`` as a subprocess.
   ``catchup_s`` is from its spawn until its /metrics shows ``fixloop_sla_partitions_owned`` = P
   (its partitions assigned and their due orders read); ``assigned_s`` is when its clock gauges
   first show (read on assignment, just before the due orders), ``load_s`` the rest. T is chosen
   when the burst is seeded, ``--lead`` seconds ahead (default: 45 s + 1.5 times the baseline's
   time to read what phase A reads, the burst and the orders warning within 2 h; at least 60 s);
   the run says whether the service was ready before T. A reader of the SLA topic (no group,
   from the beginning) collects the burst's ``fixloop.sla.warning.v1`` records: fire lag = the
   payload's ``fired_at`` - ``warn_at`` (when the engine decided), publish lag = the record's
   timestamp (when the outbox relay sent it) - ``warn_at``; p50/p99/max, the warnings flagged
   late, records read twice (same ``ce_id``), orders warned more than once (different ids),
   orders never warned, and the decision batches (one ``fired_at`` per transaction). The
   service's RSS (VmRSS, and VmHWM: the peak) once loaded and after the burst. The same-run
   baseline of the burst is the time the store took to insert its orders once;
5. phase B (all clocks in memory): ``kill -9`` and a start with
   ``FIXLOOP_SLA_TIMER_HORIZON_SECONDS=172800`` (48 h: every clock in its heap):
   ``catchup_all_in_memory_s`` and its RSS once loaded and settled (``rss_mib``: the figure for
   "N running clocks in the sla process"); ``--restarts`` times (median). Memory per clock is
   (RSS B - RSS A) / (clocks in the heap in B - in A). After a ``kill -9`` the dead member stays
   in the consumer group until its session times out, which ``assigned_s`` shows.

Figures are single measurements (the burst is a one-off per seeded store) but for phase B, the
median over ``--restarts``. On a shared machine they move with its load: the embedded store
competes for the same cores.

It asserts nothing about speed (a missed target says ``target met: no``); it exits non-zero with
a one-line reason only when it could not measure (the service never became ready, the burst was
not seen). Prints figures as it goes, writes everything as JSON (``--out``, default
``bench/results/sla-*.json``) and prints one JSON line last.

    uv run python -m bench.sla_clocks                       # 1,000,000 clocks (make bench-sla)
    uv run python -m bench.sla_clocks --clocks 20000        # smoke, ~3 min
    make bench-sla CLOCKS=300000 BENCH_SLA_ARGS="--restarts 3"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform as host
import re
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.pipeline import git_commit
from bench.probes import percentile, process_tree_cpu
from fixloop_devkit.devstack import ManagedProcess, free_port, http_ok
from fixloop_devkit.testing import start_embedded_broker, start_embedded_store
from fixloop_shared.bus import ensure_topics
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import make_client, merged_indexes
from fixloop_shared.topics import Topic
from fixloop_shared.vocabulary import ActorKind, Category, Milestone, Priority, WorkOrderState
from fixloop_sla.adapters.mongo import GAUGES, ORDERS, clock_indexes, gauge_id
from fixloop_sla.adapters.policies import MongoPolicyStore, policy_indexes
from fixloop_sla.adapters.records import order_document
from fixloop_sla.app.reporting import report_indexes
from fixloop_sla.domain import (
    ClockDefinition,
    FactKind,
    Goal,
    GoalMatch,
    OrderClocks,
    OrderFact,
    OrderProfile,
    PolicyBook,
    SlaPolicy,
    Threshold,
    ThresholdKind,
    settle,
)
from fixloop_sla.policy_file import policy_document

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

TENANT = "bench-sla"
DATABASE = "bench_sla"
POLICY_NAME = "bench-sla"
TARGET = timedelta(hours=2)
WARNING_BEFORE = timedelta(hours=1)
WARNING = "fixloop.sla.warning.v1"
CLOCK_TOPIC = Topic.WORKORDERS_EVENTS.value
SLA_TOPIC = Topic.SLA_EVENTS.value
DEFAULT_HORIZON_SECONDS = 7_200
ALL_IN_MEMORY_HORIZON_SECONDS = 172_800
SPREAD_STARTS_AFTER = timedelta(minutes=30)
SEED_CHUNK = 5_000
INSERTS_IN_FLIGHT = 2
ASSIGNMENT_FAILED = "failed on partition assignment"
"""What aiokafka logs when the rebalance listener (the timers' load) raised."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIB = 1024 * 1024
HOUR_MS = 3_600_000
_MILLIS = re.compile(r"(?<![0-9])[0-9]{12,14}(?![0-9])")
"""Epoch milliseconds inside a string (a key of what is planned or announced)."""

TARGET_RSS_MIB = 1024.0
TARGET_FIRE_LAG_P99_MS = 1000.0
TARGET_CATCHUP_S = 60.0

PROFILE = OrderProfile(
    tenant=TENANT,
    priority=Priority.NORMAL.value,
    equipment_class="hvac",
    category=Category.BREAKDOWN.value,
    site_timezone="Europe/Berlin",
)


class CouldNotMeasure(RuntimeError):  # noqa: N818 - says what happened, not a kind of error
    """The run could not measure what it is for (one line: the reason)."""


@dataclass
class Options:
    clocks: int = 1_000_000
    burst: int = 10_000
    partitions: int = field(default_factory=lambda: KafkaSettings().partitions)
    spread_hours: float = 24.0
    lead: float | None = None
    """Seconds from seeding the burst to its second T (None: from the baseline scan)."""
    ready_timeout: float = 600.0
    burst_timeout: float = 180.0
    """Seconds after T the burst's warnings are waited for."""
    restarts: int = 1
    settle_seconds: float = 5.0
    """Wait after a phase-B load before its RSS is read (the heap built, garbage collected)."""
    out: Path | None = None
    work_dir: Path | None = None


def parse_args(argv: Sequence[str] | None = None) -> Options:
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m bench.sla_clocks", description=__doc__.split("\n\n")[0] if __doc__ else ""
    )
    parser.add_argument("--clocks", type=int, default=defaults.clocks, help="orders seeded (N)")
    parser.add_argument("--burst", type=int, default=defaults.burst, help="due in one second")
    parser.add_argument(
        "--partitions",
        type=int,
        default=defaults.partitions,
        help="partitions of the clock topic (default: FIXLOOP_KAFKA_PARTITIONS, 3)",
    )
    parser.add_argument("--spread-hours", type=float, default=defaults.spread_hours)
    parser.add_argument(
        "--lead", type=float, default=None, help="seconds from seeding the burst to its second"
    )
    parser.add_argument("--ready-timeout", type=float, default=defaults.ready_timeout)
    parser.add_argument("--burst-timeout", type=float, default=defaults.burst_timeout)
    parser.add_argument(
        "--restarts", type=int, default=defaults.restarts, help="phase-B restarts (median)"
    )
    parser.add_argument("--settle-seconds", type=float, default=defaults.settle_seconds)
    parser.add_argument("--out", type=Path, help="the JSON file (default bench/results/sla-*)")
    parser.add_argument("--work-dir", type=Path, help="keep the stack's data and logs here")
    args = parser.parse_args(argv)
    opts = Options(
        clocks=args.clocks,
        burst=args.burst,
        partitions=args.partitions,
        spread_hours=args.spread_hours,
        lead=args.lead,
        ready_timeout=args.ready_timeout,
        burst_timeout=args.burst_timeout,
        restarts=args.restarts,
        settle_seconds=args.settle_seconds,
        out=args.out,
        work_dir=args.work_dir,
    )
    problems = []
    if opts.clocks < 1:
        problems.append("--clocks must be at least 1")
    if not 1 <= opts.burst <= opts.clocks:
        problems.append("--burst must be between 1 and --clocks")
    if opts.partitions < 1:
        problems.append("--partitions must be at least 1")
    if opts.spread_hours <= 0:
        problems.append("--spread-hours must be positive")
    if opts.restarts < 1:
        problems.append("--restarts must be at least 1")
    if opts.lead is not None and opts.lead < 5:
        problems.append("--lead must be at least 5 seconds")
    if problems:
        parser.error("; ".join(problems))
    return opts


# -- small pure helpers -----------------------------------------------------------------------
def say(message: str) -> None:
    print(f"{datetime.now().strftime('%H:%M:%S')} {message}", flush=True)  # noqa: DTZ005


def at_ms(moment_ms: int) -> datetime:
    """An epoch-milliseconds instant as an aware UTC datetime (exact, no float rounding)."""
    return EPOCH + timedelta(milliseconds=moment_ms)


def spread_ms(prefix: str, seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p99/max of durations in seconds, as milliseconds (None for no values)."""
    values = list(seconds)
    if not values:
        return {f"{prefix}_{q}_ms": None for q in ("p50", "p90", "p99", "max")}
    return {
        f"{prefix}_p50_ms": round(percentile(values, 0.5) * 1000, 1),
        f"{prefix}_p90_ms": round(percentile(values, 0.9) * 1000, 1),
        f"{prefix}_p99_ms": round(percentile(values, 0.99) * 1000, 1),
        f"{prefix}_max_ms": round(max(values) * 1000, 1),
    }


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return round(statistics.median(present), 3) if present else None


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def metric_totals(text: str) -> dict[str, float]:
    """Every metric of a Prometheus text page, its samples (all label sets) summed."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            with contextlib.suppress(ValueError):
                value = float(match.group(3))
                totals[match.group(1)] = totals.get(match.group(1), 0.0) + value
    return totals


def memory_mib(status: str) -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` (the peak) of a ``/proc/PID/status`` text, in MiB."""
    found = {}
    for line in status.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            kib = int(rest.split()[0])
            found["rss_mib" if name == "VmRSS" else "peak_rss_mib"] = round(kib / 1024, 1)
    return found


def target_met(value: float | None, limit: float) -> str:
    return "unknown" if value is None else ("yes" if value <= limit else "no")


# -- the seeded orders ------------------------------------------------------------------------
def bench_policy() -> SlaPolicy:
    """One clock: dispatch confirmed within 2 h, warned 1 h before the deadline."""
    return SlaPolicy(
        name=POLICY_NAME,
        version=1,
        clocks=(
            ClockDefinition(
                Milestone.DISPATCH_CONFIRMATION,
                goals=(Goal(GoalMatch(), TARGET),),
                thresholds=(Threshold(ThresholdKind.WARNING, -WARNING_BEFORE),),
            ),
        ),
    )


def engine_document(
    work_order_id: str, partition: int, received_ms: int, book: PolicyBook
) -> dict[str, Any]:
    """The stored document of an order just received, as the engine writes it: its received
    fact recorded and settled at that moment (``SlaEngine.record``), then ``order_document``."""
    received = at_ms(received_ms)
    fact = OrderFact(
        event_id=f"{work_order_id}.received",
        kind=FactKind.RECEIVED,
        occurred_at=received,
        state=WorkOrderState.RECEIVED,
        actor=ActorKind.SYSTEM,
        order_version=1,
    )
    record = OrderClocks(
        work_order_id=work_order_id,
        tenant=TENANT,
        correlation_id=work_order_id,
        profile=PROFILE,
        facts=(fact,),
        partition=partition,
    )
    return order_document(settle(record, book, received), version=1)


class Cloner:
    """Copies of one engine-written document for other orders, received at other moments.

    The copy is made without knowing the document's fields: every instant in it (an integer of
    epoch milliseconds within a year of the template's receipt, also inside strings such as the
    keys of what is planned or announced) moves by the difference of the receipts, and the
    template's id becomes the order's. ``run`` checks a few copies against the engine's own
    documents, so a change of the stored form that this does not follow stops the run.
    """

    TEMPLATE_ID = "bench-template-id"
    WINDOW_MS = 366 * 24 * HOUR_MS

    def __init__(self, book: PolicyBook, received_ms: int = 1_800_000_000_000) -> None:
        self.book = book
        self.received_ms = received_ms
        self.template = engine_document(self.TEMPLATE_ID, 0, received_ms, book)
        if self.template.get("emitted"):
            msg = "a freshly received order's document has announcements"
            raise ValueError(msg)
        self.warn_after_ms = int(self.template["next_due_ms"]) - received_ms

    def received_for_warning(self, warn_ms: int) -> int:
        return warn_ms - self.warn_after_ms

    def _is_instant(self, value: int) -> bool:
        return abs(value - self.received_ms) <= self.WINDOW_MS

    def clone(self, work_order_id: str, partition: int, received_ms: int) -> dict[str, Any]:
        shift = received_ms - self.received_ms

        def number(match: re.Match[str]) -> str:
            value = int(match.group(0))
            return str(value + shift) if self._is_instant(value) else match.group(0)

        def text(value: str) -> str:
            value = value.replace(self.TEMPLATE_ID, work_order_id)
            return _MILLIS.sub(number, value) if shift else value

        def copy(value: Any) -> Any:
            if isinstance(value, bool) or value is None or isinstance(value, float):
                return value
            if isinstance(value, int):
                return value + shift if self._is_instant(value) else value
            if isinstance(value, str):
                return text(value)
            if isinstance(value, dict):
                return {text(k): copy(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [copy(v) for v in value]
            return value

        doc: dict[str, Any] = copy(self.template)
        doc["partition"] = partition
        return doc


def spread_warnings(count: int, start_ms: int, span_ms: int) -> Iterator[int]:
    """``count`` warning moments spread evenly over ``span_ms`` from ``start_ms``."""
    for i in range(count):
        yield start_ms + (i * span_ms) // max(1, count)


def burst_warnings(count: int, second_ms: int) -> Iterator[int]:
    """``count`` warning moments within the one second that starts at ``second_ms``."""
    for i in range(count):
        yield second_ms + (i * 1000) // count


def burst_id(i: int) -> str:
    return f"bench-burst-{i:06d}"


def spread_id(i: int) -> str:
    return f"bench-order-{i:07d}"


# -- reading the SLA topic --------------------------------------------------------------------
@dataclass
class Warned:
    ce_id: str
    warn_at: datetime
    fired_at: datetime
    late: bool
    record_ms: int
    seen_at: float
    """``time.time()`` when this reader got it."""


@dataclass
class WarningWatch:
    """Reads the SLA topic (no consumer group, from the beginning) and keeps the warnings of the
    burst's orders, and counts of everything else."""

    bootstrap: str
    burst_ids: frozenset[str]
    warned: dict[str, list[Warned]] = field(default_factory=dict)
    """Burst order -> its warnings (distinct ``ce_id``), in the order read."""
    ce_ids: Counter[str] = field(default_factory=Counter)
    other_types: Counter[str] = field(default_factory=Counter)
    other_warnings: int = 0
    consumer: AIOKafkaConsumer | None = None
    task: asyncio.Task[None] | None = None

    async def start(self, partitions: int) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=4 * MIB,
        )
        await self.consumer.start()
        assigned = [TopicPartition(SLA_TOPIC, p) for p in range(partitions)]
        self.consumer.assign(assigned)
        await self.consumer.seek_to_beginning(*assigned)
        self.task = asyncio.create_task(self._run(), name="sla-warning-watch")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await self.consumer.stop()

    @property
    def burst_seen(self) -> int:
        return len(self.warned)

    async def _run(self) -> None:
        assert self.consumer is not None  # noqa: S101 - started first
        while True:
            batch = await self.consumer.getmany(timeout_ms=200, max_records=5_000)
            seen_at = time.time()
            for records in batch.values():
                for record in records:
                    self._take(record, seen_at)

    def _take(self, record: Any, seen_at: float) -> None:
        headers = {k: v.decode(errors="replace") for k, v in record.headers or ()}
        kind = headers.get("ce_type", "")
        ce_id = headers.get("ce_id", "")
        payload = json.loads(record.value or b"{}")
        if not kind:  # structured mode
            kind, ce_id, payload = payload.get("type", ""), payload.get("id", ""), payload["data"]
        if kind != WARNING:
            self.other_types[kind] += 1
            return
        work_order_id = payload.get("work_order_id", "")
        if work_order_id not in self.burst_ids:
            self.other_warnings += 1
            return
        self.ce_ids[ce_id] += 1
        if self.ce_ids[ce_id] > 1:
            return
        self.warned.setdefault(work_order_id, []).append(
            Warned(
                ce_id=ce_id,
                warn_at=datetime.fromisoformat(payload["warn_at"]),
                fired_at=datetime.fromisoformat(payload["fired_at"]),
                late=bool(payload.get("late")),
                record_ms=int(record.timestamp),
                seen_at=seen_at,
            )
        )


def burst_figures(watch: WarningWatch, burst: int, second_ms: int) -> dict[str, Any]:
    """The burst's lags and what went wrong, from the warnings read."""
    firsts = [found[0] for found in watch.warned.values()]
    fire = [(w.fired_at - w.warn_at).total_seconds() for w in firsts]
    publish = [w.record_ms / 1000 - w.warn_at.timestamp() for w in firsts]
    seen = [w.seen_at - w.warn_at.timestamp() for w in firsts]
    last_fired = max((w.fired_at for w in firsts), default=None)
    last_record = max((w.record_ms for w in firsts), default=None)
    batches = Counter(w.fired_at for w in firsts)  # one decision time per batch (transaction)
    return {
        "burst": burst,
        "burst_second_utc": at_ms(second_ms).isoformat(),
        "warned": len(firsts),
        "missing": burst - len(firsts),
        "flagged_late": sum(1 for w in firsts if w.late),
        "records_read_twice": sum(n - 1 for n in watch.ce_ids.values() if n > 1),
        "orders_warned_more_than_once": sum(1 for f in watch.warned.values() if len(f) > 1),
        "other_warnings": watch.other_warnings,
        "other_event_types": dict(watch.other_types),
        "all_decided_s_after_the_second": None
        if last_fired is None
        else round(last_fired.timestamp() - second_ms / 1000, 3),
        "all_published_s_after_the_second": None
        if last_record is None
        else round((last_record - second_ms) / 1000, 3),
        "decision_batches": [
            [round(moment.timestamp() - second_ms / 1000, 3), size]
            for moment, size in sorted(batches.items())
        ],
        **spread_ms("fire_lag", fire),
        **spread_ms("publish_lag", publish),
        **spread_ms("read_lag", seen),
    }


# -- the stack --------------------------------------------------------------------------------
@dataclass
class Stack:
    opts: Options
    tmp: Path
    processes: list[ManagedProcess] = field(default_factory=list)
    bootstrap: str = ""
    store_uri: str = ""
    service: ManagedProcess | None = None
    health_port: int = 0
    starts: int = 0
    log_offset: int = 0
    """Where the running service's lines begin in its log."""

    def start_infrastructure(self) -> None:
        broker, self.bootstrap = start_embedded_broker(self.tmp)
        self.processes.append(broker)
        store, self.store_uri = start_embedded_store(self.tmp / "stores", "sla")
        self.processes.append(store)

    def stop(self) -> None:
        if self.service is not None:
            with contextlib.suppress(Exception):
                self.service.stop(timeout=20)
            self.service = None
        for proc in reversed(self.processes):
            with contextlib.suppress(Exception):
                proc.stop()

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/metrics"

    def spawn(self, horizon_seconds: float) -> ManagedProcess:
        self.starts += 1
        self.health_port = free_port()
        env = {
            "FIXLOOP_KAFKA_BOOTSTRAP": self.bootstrap,
            "FIXLOOP_KAFKA_IDEMPOTENCE": "false",
            "FIXLOOP_KAFKA_PARTITIONS": str(self.opts.partitions),
            "FIXLOOP_SLA_MONGODB_URI": self.store_uri,
            "FIXLOOP_SLA_DATABASE": DATABASE,
            "FIXLOOP_SLA_HEALTH_HOST": "127.0.0.1",
            "FIXLOOP_SLA_HEALTH_PORT": str(self.health_port),
            "FIXLOOP_SLA_GRPC_HOST": "127.0.0.1",
            "FIXLOOP_SLA_GRPC_PORT": "0",
            "FIXLOOP_SLA_LOG_LEVEL": "WARNING",
            "FIXLOOP_SLA_TIMER_HORIZON_SECONDS": str(horizon_seconds),
            "PYTHONUNBUFFERED": "1",
        }
        proc = ManagedProcess(
            "sla", [sys.executable, "-m", "fixloop_sla"], self.tmp / "logs" / "sla.log", env=env
        )
        log_path = self.tmp / "logs" / "sla.log"
        self.log_offset = log_path.stat().st_size if log_path.exists() else 0
        proc.start(note=f"start {self.starts}: horizon {horizon_seconds:.0f}s")
        self.service = proc
        return proc

    def kill_service(self) -> None:
        if self.service is not None:
            self.service.kill()
            self.service = None

    def stop_service(self) -> None:
        if self.service is not None:
            self.service.stop(timeout=30)
            self.service = None

    def service_memory(self) -> dict[str, float]:
        proc = self.service
        if proc is None or proc.pid is None:
            return {}
        with contextlib.suppress(OSError):
            return memory_mib(Path(f"/proc/{proc.pid}/status").read_text())
        return {}

    def service_cpu_seconds(self) -> float | None:
        proc = self.service
        if proc is None or proc.pid is None:
            return None
        return round(process_tree_cpu({"sla": proc.pid})["sla"], 1)

    def metrics(self) -> dict[str, float]:
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=5) as response:  # noqa: S310 - local http
                return metric_totals(response.read().decode())
        except OSError:
            return {}

    async def wait_loaded(self, spawned: float) -> dict[str, Any]:
        """Until the service owns every partition of the clock topic (and read their due orders):
        seconds from the spawn to /readyz and to that, the clocks in its heap then."""
        proc = self.service
        assert proc is not None  # noqa: S101 - spawned first
        ready_s: float | None = None
        assigned_s: float | None = None
        deadline = spawned + self.opts.ready_timeout
        while True:
            if not proc.running:
                tail = proc.tail(5).replace("\n", " | ")
                msg = f"the sla service exited during start-up: {tail}"
                raise CouldNotMeasure(msg)
            if failed := await asyncio.to_thread(self.assignment_failure):
                msg = (
                    "the sla service's clocks were not loaded: its partition assignment failed "
                    f"({failed}); it owns the partitions with no timers and is never told again"
                )
                raise CouldNotMeasure(msg)
            if ready_s is None and await asyncio.to_thread(
                http_ok, f"http://127.0.0.1:{self.health_port}/readyz"
            ):
                ready_s = time.monotonic() - spawned
            found = await asyncio.to_thread(self.metrics)
            if assigned_s is None and found.get("fixloop_sla_clocks", 0) > 0:
                assigned_s = time.monotonic() - spawned  # the gauges are read before the load
            if found.get("fixloop_sla_partitions_owned", 0) >= self.opts.partitions:
                catchup = time.monotonic() - spawned
                return {
                    "catchup_s": round(catchup, 2),
                    "readyz_s": None if ready_s is None else round(ready_s, 2),
                    "assigned_s": None if assigned_s is None else round(assigned_s, 2),
                    "load_s": None if assigned_s is None else round(catchup - assigned_s, 2),
                    "scheduled": int(found.get("fixloop_sla_timers_scheduled", 0)),
                    "clocks_gauge": int(found.get("fixloop_sla_clocks", 0)),
                }
            if time.monotonic() > deadline:
                msg = (
                    f"the sla service did not own all {self.opts.partitions} partitions within "
                    f"{self.opts.ready_timeout:.0f}s (owned "
                    f"{found.get('fixloop_sla_partitions_owned', 0):.0f})"
                )
                raise CouldNotMeasure(msg)
            await asyncio.sleep(0.25)

    def assignment_failure(self) -> str | None:
        """The last line of the error of a failed partition assignment logged by the running
        service (aiokafka logs the listener's exception and goes on), or None."""
        path = self.tmp / "logs" / "sla.log"
        with contextlib.suppress(OSError), path.open("rb") as log:
            log.seek(self.log_offset)
            for raw in log:
                line = raw.decode(errors="replace")
                if ASSIGNMENT_FAILED not in line:
                    continue
                with contextlib.suppress(ValueError):
                    lines = str(json.loads(line).get("exc_info", "")).strip().splitlines()
                    return lines[-1][:300] if lines else ASSIGNMENT_FAILED
                return ASSIGNMENT_FAILED
        return None

    def log_problems(self) -> dict[str, Any]:
        path = self.tmp / "logs" / "sla.log"
        if not path.exists():
            return {"error_lines": 0, "warning_lines": 0, "first": []}
        errors = warnings = 0
        first: list[str] = []
        for line in path.read_text(errors="replace").splitlines():
            level = ""
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                level = str(entry.get("level", entry.get("levelname", ""))).upper()
            if not level:
                level = "ERROR" if "Traceback" in line or " ERROR " in line else ""
            if level in ("ERROR", "CRITICAL"):
                errors += 1
            elif level == "WARNING":
                warnings += 1
            else:
                continue
            if len(first) < 10:
                first.append(line[:400])
        return {"error_lines": errors, "warning_lines": warnings, "first": first}


# -- the run ----------------------------------------------------------------------------------
async def scan_all(db: Any) -> tuple[int, float]:
    """Every order's (_id, next_due_ms, partition) through a bare cursor: (orders, seconds)."""
    began = time.monotonic()
    count = 0
    cursor = db[ORDERS].find({}, {"next_due_ms": True, "partition": True}).batch_size(10_000)
    async for _ in cursor:
        count += 1
    return count, time.monotonic() - began


async def first_batch_of_a_full_load(db: Any, partitions: int) -> float:
    """Seconds until the first batch of the timers' load query with every order due (what a pod
    with a 48 h horizon asks on assignment: all its partitions, due before then), which is how
    long the store is busy with that one call."""
    began = time.monotonic()
    cursor = (
        db[ORDERS]
        .find(
            {"partition": {"$in": list(range(partitions))}, "next_due_ms": {"$lt": 2**62}},
            {"next_due_ms": True, "partition": True},
        )
        .batch_size(10_000)
    )
    try:
        await cursor.next()
    finally:
        await cursor.close()
    return time.monotonic() - began


async def insert_chunks(
    db: Any, docs: Iterator[dict[str, Any]], total: int, what: str
) -> tuple[int, float]:
    """Insert ``docs`` in chunks, two in flight (the next is built and encoded while the store
    writes one), printing progress; (inserted, seconds)."""
    began = time.monotonic()
    done = 0
    next_report = began + 15
    chunk: list[dict[str, Any]] = []
    in_flight: set[asyncio.Task[Any]] = set()

    async def flush(*, last: bool = False) -> None:
        nonlocal done, next_report, chunk
        if chunk:
            in_flight.add(asyncio.create_task(db[ORDERS].insert_many(chunk, ordered=False)))
            chunk = []
        while in_flight and (last or len(in_flight) >= INSERTS_IN_FLIGHT):
            finished, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                in_flight.discard(task)
                done += len(task.result().inserted_ids)
        now = time.monotonic()
        if now >= next_report:
            rate = done / max(now - began, 1e-9)
            left = (total - done) / rate if rate else float("nan")
            say(f"  {what}: {done:,}/{total:,} ({rate:,.0f}/s, ~{left:.0f}s left)")
            next_report = now + 15

    for doc in docs:
        chunk.append(doc)
        if len(chunk) >= SEED_CHUNK:
            await flush()
    await flush(last=True)
    return done, time.monotonic() - began


def partition_counts(count: int, partitions: int) -> list[int]:
    """How many of ``count`` orders numbered 0.. land on each partition (order i on i % P)."""
    return [count // partitions + (1 if p < count % partitions else 0) for p in range(partitions)]


async def seed_gauges(db: Any, cloner: Cloner, n: int, burst: int, partitions: int) -> None:
    """The per-partition gauges of open cycles the engine keeps beside the orders (its ``$inc``
    of each settlement): every seeded order has one running cycle."""
    keys = [f"{clock}__{condition}" for clock, condition in cloner.template["open_conditions"]]
    spread = partition_counts(n - burst, partitions)
    bursting = partition_counts(burst, partitions)
    await db[GAUGES].insert_many(
        [
            {"_id": gauge_id(p), **dict.fromkeys(keys, spread[p] + bursting[p])}
            for p in range(partitions)
        ]
    )


async def create_indexes(db: Any) -> None:
    for collection, models in merged_indexes(
        clock_indexes(), policy_indexes(), report_indexes()
    ).items():
        await db[collection].create_indexes(list(models))


async def run(opts: Options, stack: Stack, result: dict[str, Any]) -> None:
    n, burst, parts = opts.clocks, opts.burst, opts.partitions
    phases: dict[str, float] = result.setdefault("phase_seconds", {})
    began = time.monotonic()
    stack.start_infrastructure()
    await ensure_topics(
        KafkaSettings(bootstrap=stack.bootstrap, partitions=parts), [CLOCK_TOPIC, SLA_TOPIC]
    )
    phases["stack"] = round(time.monotonic() - began, 1)
    say(f"embedded broker and store up in {phases['stack']:.0f}s ({parts} partitions per topic)")

    client = make_client(stack.store_uri, app_name="bench-sla", timeout_ms=30_000)
    watch: WarningWatch | None = None
    try:
        db = client[DATABASE]
        await create_indexes(db)
        imported = await MongoPolicyStore(db).import_policy(
            policy_document(bench_policy()), now=datetime.now(UTC), imported_by="bench"
        )
        book = PolicyBook.of([imported.policy])
        cloner = Cloner(book)
        for i, partition, received in (
            (1, 1, 1_790_000_000_123),
            (2, parts - 1, 1_799_999_999_999),
        ):
            work_order_id = spread_id(i)
            if cloner.clone(work_order_id, partition, received) != engine_document(
                work_order_id, partition, received, book
            ):
                msg = "a cloned order differs from the engine's own document"
                raise CouldNotMeasure(msg)
        result["policy"] = {"name": imported.name, "version": imported.version}

        # -- seeding the spread orders
        seed_began = time.monotonic()
        start_ms = int(time.time() * 1000) + int(SPREAD_STARTS_AFTER.total_seconds() * 1000)
        spread = n - burst
        span_ms = int(opts.spread_hours * 3600 * 1000)
        say(
            f"seeding {spread:,} orders warning over {opts.spread_hours:g} h from "
            f"{at_ms(start_ms).strftime('%H:%M:%S')} UTC"
        )
        docs = (
            cloner.clone(spread_id(i), i % parts, cloner.received_for_warning(warn_ms))
            for i, warn_ms in enumerate(spread_warnings(spread, start_ms, span_ms))
        )
        seeded, seed_s = await insert_chunks(db, docs, spread, "spread orders")
        seed_rate = seeded / seed_s if seed_s else float("nan")
        say(f"seeded {seeded:,} orders in {seed_s:.1f}s ({seed_rate:,.0f}/s)")

        # -- the store's baseline (before the burst)
        scanned, scan_s = await scan_all(db)
        scan_rate = scanned / scan_s if scan_s else float("nan")
        say(
            f"baseline: a bare cursor read {scanned:,} orders in {scan_s:.2f}s ({scan_rate:,.0f}/s)"
        )
        first_batch_s = await first_batch_of_a_full_load(db, parts)
        say(
            f"baseline: the timers' load query over every order answers its first batch in "
            f"{first_batch_s:.2f}s"
        )
        result["store_baseline"] = {  # again at the end, over every order
            "full_load_query_first_batch_seconds": round(first_batch_s, 2),
            "scans": [{"orders": scanned, "seconds": round(scan_s, 2)}],
            "orders_per_second": round(scan_rate, 1),
            "full_scan_seconds": round(n / scan_rate, 2),
        }

        # -- the burst
        # Phase A reads the burst and the orders warning within its horizon; it starts in ~15 s.
        in_horizon = burst + spread * max(
            0.0, (DEFAULT_HORIZON_SECONDS - SPREAD_STARTS_AFTER.total_seconds()) / (span_ms / 1000)
        )
        lead = opts.lead if opts.lead is not None else max(60.0, 45 + 1.5 * in_horizon / scan_rate)
        second_ms = (int(time.time() + lead) + 1) * 1000
        burst_ids = [burst_id(i) for i in range(burst)]
        burst_docs = (
            cloner.clone(burst_ids[i], i % parts, cloner.received_for_warning(warn_ms))
            for i, warn_ms in enumerate(burst_warnings(burst, second_ms))
        )
        burst_seeded, burst_s = await insert_chunks(db, burst_docs, burst, "burst orders")
        seeded += burst_seeded
        await seed_gauges(db, cloner, n, burst, parts)
        phases["seed"] = round(time.monotonic() - seed_began, 1)
        say(
            f"seeded {burst_seeded:,} burst orders in {burst_s:.1f}s, all warning within "
            f"{at_ms(second_ms).strftime('%H:%M:%S')} UTC ({second_ms / 1000 - time.time():.0f}s "
            "from now)"
        )
        result["seed"] = {
            "orders": seeded,
            "spread_orders": spread,
            "burst_orders": burst_seeded,
            "seconds": round(seed_s + burst_s, 1),
            "orders_per_second": round(seed_rate, 1),
            "spread_from_utc": at_ms(start_ms).isoformat(),
            "spread_hours": opts.spread_hours,
            "lead_seconds": round(lead, 1),
            "burst_insert_seconds": round(burst_s, 2),
        }

        # -- phase A: a restart at the default horizon, the burst
        phase_began = time.monotonic()
        watch = WarningWatch(stack.bootstrap, frozenset(burst_ids))
        await watch.start(parts)
        say(f"phase A: starting the sla service (horizon {DEFAULT_HORIZON_SECONDS}s)")
        spawned = time.monotonic()
        stack.spawn(DEFAULT_HORIZON_SECONDS)
        loaded = await stack.wait_loaded(spawned)
        loaded_wall = time.time()
        before_second = second_ms / 1000 - loaded_wall
        memory_loaded = stack.service_memory()
        cpu_loaded = stack.service_cpu_seconds()
        say(
            f"phase A: loaded in {loaded['catchup_s']:.1f}s (partitions assigned at "
            f"{loaded['assigned_s']}s, /readyz at {loaded['readyz_s']}s), "
            f"{loaded['scheduled']:,} clocks in its heap, RSS {memory_loaded.get('rss_mib')} MiB; "
            + (
                f"{before_second:.0f}s before the burst's second"
                if before_second > 0
                else f"NOT ready before the burst's second ({-before_second:.0f}s after it)"
            )
        )
        wait_until = second_ms / 1000 + opts.burst_timeout
        while watch.burst_seen < burst and time.time() < wait_until:
            if stack.service is None or not stack.service.running:
                msg = "the sla service exited while the burst was due"
                raise CouldNotMeasure(msg)
            await asyncio.sleep(0.25)
        await asyncio.sleep(5)  # anything read twice, or warned again
        figures = burst_figures(watch, burst, second_ms)
        memory_burst = stack.service_memory()
        found = await asyncio.to_thread(stack.metrics)
        result["phase_a"] = {
            "horizon_seconds": DEFAULT_HORIZON_SECONDS,
            **loaded,
            "ready_before_the_burst": before_second > 0,
            "seconds_to_spare_before_the_burst": round(before_second, 1),
            "memory_loaded": memory_loaded,
            "memory_after_burst": memory_burst,
            "cpu_seconds_until_loaded": cpu_loaded,
            "timer_fire_lag_count": found.get("fixloop_sla_fire_lag_seconds_count"),
            "timer_fire_lag_sum_s": found.get("fixloop_sla_fire_lag_seconds_sum"),
            **figures,
        }
        phases["phase_a"] = round(time.monotonic() - phase_began, 1)
        say(
            f"phase A: burst {figures['warned']:,}/{burst:,} warned; fire lag p50 "
            f"{figures['fire_lag_p50_ms']} / p99 {figures['fire_lag_p99_ms']} / max "
            f"{figures['fire_lag_max_ms']} ms; publish lag p99 {figures['publish_lag_p99_ms']} ms; "
            f"{figures['flagged_late']} flagged late, {figures['orders_warned_more_than_once']} "
            f"warned twice, RSS {memory_burst.get('rss_mib')} MiB"
        )
        if figures["warned"] == 0:
            msg = f"none of the burst's {burst} warnings was seen within {opts.burst_timeout:.0f}s"
            raise CouldNotMeasure(msg)

        # -- phase B: kill -9, every clock in memory
        phase_began = time.monotonic()
        restarts = []
        for k in range(1, opts.restarts + 1):
            stack.kill_service()
            say(f"phase B ({k}/{opts.restarts}): killed (-9); starting with a 48 h horizon")
            spawned = time.monotonic()
            stack.spawn(ALL_IN_MEMORY_HORIZON_SECONDS)
            loaded_b = await stack.wait_loaded(spawned)
            memory_at_load = stack.service_memory()
            cpu_b = stack.service_cpu_seconds()
            await asyncio.sleep(opts.settle_seconds)
            memory_b = stack.service_memory()
            after = await asyncio.to_thread(stack.metrics)
            row = {
                **loaded_b,
                "scheduled_settled": int(after.get("fixloop_sla_timers_scheduled", 0)),
                "memory_at_load": memory_at_load,
                "memory": memory_b,
                "cpu_seconds_until_loaded": cpu_b,
            }
            restarts.append(row)
            say(
                f"phase B ({k}/{opts.restarts}): loaded in {loaded_b['catchup_s']:.1f}s "
                f"(partitions assigned at {loaded_b['assigned_s']}s, /readyz at "
                f"{loaded_b['readyz_s']}s), {row['scheduled_settled']:,} clocks in "
                f"its heap, RSS {memory_b.get('rss_mib')} MiB (peak "
                f"{memory_b.get('peak_rss_mib')} MiB)"
            )
        stack.stop_service()
        rss_a = memory_loaded.get("rss_mib")
        rss_b = median([r["memory"].get("rss_mib") for r in restarts])
        clocks_b = median([r["scheduled_settled"] for r in restarts])
        per_clock = None
        if rss_a is not None and rss_b is not None and clocks_b is not None:
            more = clocks_b - loaded["scheduled"]
            per_clock = round((rss_b - rss_a) * MIB / more) if more > 0 else None
        result["phase_b"] = {
            "horizon_seconds": ALL_IN_MEMORY_HORIZON_SECONDS,
            "catchup_s": median([r["catchup_s"] for r in restarts]),
            "readyz_s": median([r["readyz_s"] for r in restarts]),
            "assigned_s": median([r["assigned_s"] for r in restarts]),
            "load_s": median([r["load_s"] for r in restarts]),
            "scheduled": clocks_b,
            "rss_mib": rss_b,
            "peak_rss_mib": median([r["memory"].get("peak_rss_mib") for r in restarts]),
            "bytes_per_clock_over_phase_a": per_clock,
            "restarts": restarts,
        }
        phases["phase_b"] = round(time.monotonic() - phase_began, 1)

        # -- the baseline again, over every order
        scanned_all, scan_all_s = await scan_all(db)
        rates = [scanned / scan_s, scanned_all / scan_all_s]
        rate = statistics.median(rates)
        result["store_baseline"] = {
            **result["store_baseline"],
            "scans": [
                {"orders": scanned, "seconds": round(scan_s, 2)},
                {"orders": scanned_all, "seconds": round(scan_all_s, 2)},
            ],
            "orders_per_second": round(rate, 1),
            "full_scan_seconds": round(n / rate, 2),
        }
        say(
            f"baseline again: {scanned_all:,} orders in {scan_all_s:.2f}s; a full read of "
            f"{n:,} takes {n / rate:.1f}s at the median rate"
        )
    finally:
        if watch is not None:
            await watch.stop()
        await client.close()


def summarise(opts: Options, result: dict[str, Any]) -> dict[str, Any]:
    a = result.get("phase_a", {})
    b = result.get("phase_b", {})
    full_scan = result.get("store_baseline", {}).get("full_scan_seconds")
    burst_insert = result.get("seed", {}).get("burst_insert_seconds")

    def ratio(value: float | None) -> float | None:
        return round(value / full_scan, 2) if value is not None and full_scan else None

    figures = {
        "clocks": opts.clocks,
        "rss_mib": b.get("rss_mib"),
        "fire_lag_p99_ms": a.get("fire_lag_p99_ms"),
        "catchup_s": a.get("catchup_s"),
        "publish_lag_p99_ms": a.get("publish_lag_p99_ms"),
        "catchup_all_in_memory_s": b.get("catchup_s"),
        "peak_rss_mib": b.get("peak_rss_mib"),
        "burst_warned": a.get("warned"),
        "burst": opts.burst,
        "catchup_vs_full_scan": ratio(a.get("catchup_s")),
        "catchup_all_in_memory_vs_full_scan": ratio(b.get("catchup_s")),
        "load_all_in_memory_s": b.get("load_s"),
        "load_all_in_memory_vs_full_scan": ratio(b.get("load_s")),
        "fire_lag_p99_vs_burst_insert": None
        if a.get("fire_lag_p99_ms") is None or not burst_insert
        else round(a["fire_lag_p99_ms"] / 1000 / burst_insert, 2),
    }
    return {
        "benchmark": "sla-clocks",
        "time": datetime.now(UTC).isoformat(),
        "options": {
            **asdict(opts),
            "out": str(opts.out) if opts.out else None,
            "work_dir": str(opts.work_dir) if opts.work_dir else None,
        },
        "machine": {"cpus": os.cpu_count(), "python": host.python_version()},
        "git_commit": git_commit(),
        "rss_mib_is": "VmRSS of the sla process with every clock in its heap (48 h horizon), "
        f"{opts.settle_seconds:g}s after it owned its partitions",
        "targets": {
            "rss_mib_max": TARGET_RSS_MIB,
            "fire_lag_p99_ms_max": TARGET_FIRE_LAG_P99_MS,
            "catchup_s_max": TARGET_CATCHUP_S,
        },
        "figures": figures,
        **result,
    }


def report(summary: Mapping[str, Any]) -> str:
    f = summary["figures"]
    lines = [
        f"sla clocks: {f['clocks']:,} orders, {f['burst']:,} due in one second, "
        f"{summary['machine']['cpus']} cores",
        f"  RSS with every clock in memory: {f['rss_mib']} MiB (peak {f['peak_rss_mib']} MiB)"
        f"  target <= {TARGET_RSS_MIB:.0f} MiB met: {target_met(f['rss_mib'], TARGET_RSS_MIB)}",
        f"  fire lag p99: {f['fire_lag_p99_ms']} ms (publish lag p99 {f['publish_lag_p99_ms']} ms)"
        f"  target <= {TARGET_FIRE_LAG_P99_MS:.0f} ms met: "
        f"{target_met(f['fire_lag_p99_ms'], TARGET_FIRE_LAG_P99_MS)}",
        f"  catch-up after a restart: {f['catchup_s']} s (all in memory "
        f"{f['catchup_all_in_memory_s']} s)  target <= {TARGET_CATCHUP_S:.0f} s met: "
        f"{target_met(f['catchup_s'], TARGET_CATCHUP_S)}",
        f"  against a bare full read of the store: x{f['catchup_vs_full_scan']} "
        f"(all in memory x{f['catchup_all_in_memory_vs_full_scan']}; its load alone, from the "
        f"assignment: {f['load_all_in_memory_s']} s, x{f['load_all_in_memory_vs_full_scan']})",
        f"  fire lag p99 against inserting the burst's orders once: "
        f"x{f['fire_lag_p99_vs_burst_insert']}",
    ]
    problems = summary.get("service_log", {})
    if problems.get("error_lines"):
        lines.append(f"  the service logged {problems['error_lines']} error lines")
    if summary.get("error"):
        lines.append(f"  could not measure: {summary['error']}")
    return "\n".join(lines)


async def main_async(opts: Options) -> tuple[dict[str, Any], str | None]:
    result: dict[str, Any] = {}
    error: str | None = None
    with tempfile.TemporaryDirectory(prefix="fixloop-bench-sla-") as scratch:
        tmp = opts.work_dir or Path(scratch)
        stack = Stack(opts, tmp)
        try:
            await run(opts, stack, result)
        except CouldNotMeasure as exc:
            error = str(exc)
        finally:
            stack.stop()
            result["service_log"] = stack.log_problems()
    if error:
        result["error"] = error
    return summarise(opts, result), error


def main() -> None:
    opts = parse_args()
    if opts.work_dir is not None:
        opts.work_dir.mkdir(parents=True, exist_ok=True)
    # SIGTERM (e.g. a timeout) unwinds like Ctrl-C, so every process started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    summary, error = asyncio.run(main_async(opts))
    out = opts.out or RESULTS / f"sla-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(report(summary))
    print(f"written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    if error:
        print(f"bench-sla: could not measure: {error}", file=sys.stderr)
    print(json.dumps(summary["figures"]), flush=True)
    if error:
        sys.exit(1)


if __name__ == "__main__":
    main()
