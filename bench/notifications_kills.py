"""Benchmark: receipt e-mails delivered through repeated ``kill -9`` of the notifications service.

How many e-mails a crash mid-send makes the service send twice, and what the kills cost in
time. The service records each attempt before sending and keeps a notification's Message-ID the
same on every attempt, so a crash between the relay's "250 accepted" and the delivery marked sent
makes it send that notification again once the dead worker's lease runs out (the longest channel
timeout + ``FIXLOOP_NOTIFICATIONS_DELIVERY_LEASE_MARGIN_SECONDS``), with the same Message-ID: a
receiver can drop the repeat.

Starts the embedded broker, the notifications service's store, the SMTP sink and the
notifications service only (free ports, a temporary data folder), then:

1. baseline (``--baseline``, on by default): ``--notices`` (N) ``fixloop.workorder.received.v1``
   events published at once and nobody killed; seconds until every requester has its e-mail;
2. the kills: N more events (CloudEvents binary mode, keyed by work order id, tenant acme, each
   with its own requester) published to ``fixloop.workorders.events.v1`` as fast as the producer
   takes them. While the e-mails arrive, the notifications process is sent SIGKILL ``--kills``
   (K) times, once after each N/(K+1) requesters have their e-mail (and only once the running
   process has sent one itself), and started again at once;
3. waits until every requester has an e-mail (``--timeout``) and no delivery is pending in the
   service's store any more (nothing can be sent again after that), then reads every ``.eml``
   of the phase: e-mails, distinct Message-IDs, requesters with more than one e-mail, and
   whether every repeat carries the Message-ID of the first. From the store: deliveries attempted
   more than once, and attempts left "in flight" by a killed worker (each is a possible repeat:
   it was on record before the send, which may or may not have reached the relay).

``duplicates`` are e-mails beyond the first per requester; ``duplicate_rate`` is duplicates / N.
``elapsed_s`` runs from the first publish until every requester has an e-mail;
``throughput_per_s`` = N / elapsed_s, and ``throughput_vs_baseline`` its ratio to the kill-free
burst on the same stack (absolute figures drift on a shared machine; the ratio less so). The
kills phase's store already holds the baseline's N deliveries. ``--lease-margin`` sets the
service's margin (default: the service's own, 15 s), to show the trade-off: a short lease brings
a killed worker's deliveries back sooner, and risks a slow send being taken over while it is
still under way.

A measurement, not a test: it asserts nothing. Prints figures as it goes and a summary, writes
everything as JSON (``--out``, default ``bench/results/notify-*.json``) and prints one JSON line
last. Exits non-zero with a one-line reason only when it could not measure.

    uv run python -m bench.notifications_kills                   # make bench-notify
    uv run python -m bench.notifications_kills --notices 60 --kills 2 --no-baseline   # smoke
    make bench-notify KILLS=6 NOTICES=300 BENCH_NOTIFY_ARGS="--lease-margin 5"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.parser
import email.policy
import json
import os
import platform as host
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.pipeline import git_commit
from fixloop_devkit.devstack import LocalPlatform, StackPorts
from fixloop_devkit.testing import unique
from fixloop_notifications.adapters.mongo import DELIVERIES, DELIVERY_ATTEMPTS, IN_FLIGHT
from fixloop_notifications.main import delivery_lease
from fixloop_notifications.settings import NotificationsSettings
from fixloop_shared.bus import ensure_topics
from fixloop_shared.contracts import (
    Address,
    Category,
    Equipment,
    Priority,
    Requester,
    Site,
    WorkOrderReceived,
)
from fixloop_shared.envelope import EventEnvelope, binary_headers, encode_payload
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import equals, make_client
from fixloop_shared.topics import Service, Topic

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SERVICE = Service.NOTIFICATIONS.value
TENANT = "acme"
MAIL_DOMAIN = "bench.example"
STARTUP_GRACE_S = 0.5
"""An e-mail written this soon after a (re)start came from the process killed before it."""
LOG_PROBLEM = re.compile(r"\b(ERROR|CRITICAL|Traceback|WARNING)\b|\"level\": ?\"(error|warning)\"")


class CouldNotMeasure(RuntimeError):  # noqa: N818 - says what happened, not a kind of error
    """The run could not measure what it is for (one line: the reason)."""


@dataclass
class Options:
    notices: int = 300
    kills: int = 6
    lease_margin: float | None = None
    """Seconds (FIXLOOP_NOTIFICATIONS_DELIVERY_LEASE_MARGIN_SECONDS); None: the service's."""
    timeout: float = 600.0
    """Seconds a phase may take until every requester has an e-mail and nothing is pending."""
    baseline: bool = True
    out: Path | None = None
    work_dir: Path | None = None


def parse_args(argv: Sequence[str] | None = None) -> Options:
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m bench.notifications_kills",
        description=__doc__.split("\n\n")[0] if __doc__ else "",
    )
    parser.add_argument("--notices", type=int, default=defaults.notices, help="receipts (N)")
    parser.add_argument("--kills", type=int, default=defaults.kills, help="kill -9 (K)")
    parser.add_argument(
        "--lease-margin",
        type=float,
        default=None,
        help="the service's delivery lease margin in seconds (default: the service's, 30)",
    )
    parser.add_argument("--timeout", type=float, default=defaults.timeout)
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=defaults.baseline,
        help="a kill-free burst of N first (default: on)",
    )
    parser.add_argument("--out", type=Path, help="the JSON file (default bench/results/notify-*)")
    parser.add_argument("--work-dir", type=Path, help="keep the stack's data and logs here")
    args = parser.parse_args(argv)
    opts = Options(
        notices=args.notices,
        kills=args.kills,
        lease_margin=args.lease_margin,
        timeout=args.timeout,
        baseline=args.baseline,
        out=args.out,
        work_dir=args.work_dir,
    )
    problems = []
    if opts.notices < 1:
        problems.append("--notices must be at least 1")
    if not 0 <= opts.kills < opts.notices:
        problems.append("--kills must be between 0 and --notices - 1")
    if opts.lease_margin is not None and not 1 <= opts.lease_margin <= 600:
        problems.append("--lease-margin must be between 1 and 600 seconds (the service's range)")
    if opts.timeout <= 0:
        problems.append("--timeout must be positive")
    if problems:
        parser.error("; ".join(problems))
    return opts


def say(message: str) -> None:
    print(f"{datetime.now().strftime('%H:%M:%S')} {message}", flush=True)  # noqa: DTZ005


# -- the events ---------------------------------------------------------------------------------
def requester_email(phase: str, i: int) -> str:
    return f"{phase}-{i:05d}@{MAIL_DOMAIN}"


def receipt(phase: str, i: int) -> WorkOrderReceived:
    """A received work order of tenant acme whose requester is the phase's ``i``-th."""
    return WorkOrderReceived(
        external_id=f"BENCH-{phase}-{i:05d}",
        site=Site(
            site_id="site-berlin-1",
            name="Kühlhaus Spandau",
            address=Address(
                line1="Am Juliusturm 12", city="Berlin", postal_code="13599", country="DE"
            ),
            timezone="Europe/Berlin",
        ),
        equipment=Equipment(equipment_id="chiller-3", equipment_class="refrigeration"),
        category=Category.BREAKDOWN,
        priority=Priority.HIGH,
        description="Temperatur steigt, Alarm läuft",
        requester=Requester(name="Jonas Weber", email=requester_email(phase, i), locale="de"),
        reported_at=datetime.now(UTC),
        work_order_id=unique("wo"),
        tenant=TENANT,
        source_platform="fieldhub",
        received_at=datetime.now(UTC),
    )


async def publish_all(bootstrap: str, orders: Sequence[WorkOrderReceived]) -> float:
    """Publish in CloudEvents binary mode, keyed by the work order (as the orders service does),
    as fast as the producer takes them; returns the seconds it took."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    began = time.monotonic()
    try:
        for order in orders:
            envelope = EventEnvelope.new(
                order, source=Service.ORDERS, subject=order.work_order_id, tenant=order.tenant
            )
            await producer.send(
                Topic.WORKORDERS_EVENTS.value,
                encode_payload(order),
                key=order.work_order_id.encode(),
                headers=[(k, v.encode()) for k, v in binary_headers(envelope).items()],
            )
        await producer.flush()
    finally:
        await producer.stop()
    return time.monotonic() - began


# -- the SMTP sink's folder ---------------------------------------------------------------------
@dataclass(frozen=True)
class Mail:
    file: str
    to: str
    message_id: str
    arrived: float
    """The file's mtime (``time.time()`` scale)."""


@dataclass
class Mailbox:
    """The phase's e-mails in the sink's folder (addressed to its requesters), as they arrive."""

    folder: Path
    phase: str
    seen: set[str] = field(default_factory=set)
    mails: list[Mail] = field(default_factory=list)
    by_requester: dict[str, list[Mail]] = field(default_factory=dict)
    _parser: email.parser.BytesHeaderParser = field(
        default_factory=lambda: email.parser.BytesHeaderParser(policy=email.policy.default)
    )

    def poll(self) -> int:
        """Read the new files; returns how many requesters have an e-mail."""
        if not self.folder.is_dir():
            return 0
        marker = f"{self.phase}-"
        for entry in os.scandir(self.folder):
            if not entry.name.endswith(".eml") or entry.name in self.seen:
                continue
            try:
                raw = Path(entry.path).read_bytes()
                mtime = entry.stat().st_mtime
            except OSError:
                continue
            self.seen.add(entry.name)
            message = self._parser.parsebytes(raw)
            to = str(message.get("To", ""))
            address = to[to.find("<") + 1 : to.rfind(">")] if "<" in to else to.strip()
            if not address.startswith(marker) or not address.endswith(MAIL_DOMAIN):
                continue
            mail = Mail(entry.name, address, str(message.get("Message-ID", "")).strip(), mtime)
            self.mails.append(mail)
            self.by_requester.setdefault(address, []).append(mail)
        return len(self.by_requester)

    def since(self, moment: float) -> int:
        return sum(1 for m in self.mails if m.arrived >= moment)

    def first_after(self, moment: float) -> float | None:
        later = [m.arrived for m in self.mails if m.arrived >= moment]
        return min(later) if later else None


def mail_figures(box: Mailbox, requesters: Sequence[str]) -> dict[str, Any]:
    """E-mails, repeats and their Message-IDs, per the phase's requesters."""
    n = len(requesters)
    with_mail = [r for r in requesters if r in box.by_requester]
    repeated = {r: ms for r, ms in box.by_requester.items() if len(ms) > 1}
    same_id = all(len({m.message_id for m in ms}) == 1 for ms in repeated.values())
    ids_per_requester = [{m.message_id for m in ms} for ms in box.by_requester.values()]
    message_ids = {m.message_id for m in box.mails}
    shared = len(message_ids) != sum(len(ids) for ids in ids_per_requester)
    mails = len(box.mails)
    duplicates = mails - len(with_mail)
    return {
        "mails": mails,
        "requesters_with_mail": len(with_mail),
        "lost": n - len(with_mail),
        "duplicates": duplicates,
        "duplicate_rate": round(duplicates / n, 4) if n else None,
        "requesters_with_more_than_one_mail": len(repeated),
        "most_mails_to_one_requester": max(
            (len(ms) for ms in box.by_requester.values()), default=0
        ),
        "distinct_message_ids": len(message_ids),
        "same_message_id_on_every_duplicate": same_id,
        "message_id_shared_between_requesters": shared,
        "mails_without_message_id": sum(1 for m in box.mails if not m.message_id),
        "repeat_delay_s": sorted(
            round(ms[1].arrived - ms[0].arrived, 1)
            for ms in (sorted(v, key=lambda m: m.arrived) for v in repeated.values())
        ),
    }


# -- the stack ----------------------------------------------------------------------------------
@dataclass
class Stack:
    opts: Options
    platform: LocalPlatform
    starts: int = 0
    started_at: float = 0.0
    """``time.time()`` of the running process's start."""

    @classmethod
    def create(cls, opts: Options, data_dir: Path) -> Stack:
        env = {"FIXLOOP_NOTIFICATIONS_LOG_LEVEL": "INFO"}
        if opts.lease_margin is not None:
            env["FIXLOOP_NOTIFICATIONS_DELIVERY_LEASE_MARGIN_SECONDS"] = f"{opts.lease_margin:g}"
        platform = LocalPlatform(
            data_dir=data_dir, ports=StackPorts.free(), service_env={SERVICE: env}
        )
        return cls(opts, platform)

    @property
    def log_path(self) -> Path:
        return self.platform.data_dir / "logs" / f"{SERVICE}.log"

    def settings(self) -> NotificationsSettings:
        """The service's settings as the bench starts it (its lease follows from them)."""
        margin = self.opts.lease_margin
        if margin is None:
            return NotificationsSettings()
        return NotificationsSettings(delivery_lease_margin_seconds=margin)

    def start(self) -> None:
        self.platform.start_broker()
        self.platform.start_store(SERVICE)
        self.platform.start_mail_sink()
        self.started_at = time.time()
        self.starts += 1
        self.platform.start_service(SERVICE, timeout=120)

    def kill_and_restart(self) -> float:
        """SIGKILL the service and start it again at once (not waiting for it to be ready);
        returns the moment of the kill."""
        killed = time.time()
        self.platform.kill_service(SERVICE)
        self.starts += 1
        self.platform.launch(SERVICE, note=f"start {self.starts}: after kill -9")
        self.started_at = time.time()
        return killed

    def running(self) -> bool:
        proc = self.platform.processes.get(SERVICE)
        return proc is not None and proc.running

    def tail(self) -> str:
        proc = self.platform.processes.get(SERVICE)
        return proc.tail(5).replace("\n", " | ") if proc is not None else ""

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.platform.stop()

    def log_problems(self) -> dict[str, Any]:
        """Warning/error lines in the service's log, counted by their message (numbers and ids
        blanked), the commonest first."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return {}
        kinds: Counter[str] = Counter()
        for line in lines:
            if not LOG_PROBLEM.search(line):
                continue
            text = line
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    said = record.get("message", record.get("event", line))
                    text = f"{record.get('level', '')} {record.get('logger', '')}: {said}"
            text = re.sub(r"[0-9a-f]{8,}|\d+(\.\d+)?", "#", text)[:200]
            kinds[text] += 1
        return {
            "problem_lines": sum(kinds.values()),
            "commonest": [{"count": c, "line": t} for t, c in kinds.most_common(8)],
            "starts": self.starts,
        }


class StoreReader:
    """The notifications store, read by the bench: what is pending, attempts left in flight."""

    def __init__(self, uri: str, database: str) -> None:
        self.client = make_client(uri, app_name="bench-notify")
        self.db = self.client[database]

    async def close(self) -> None:
        await self.client.close()

    async def counts(self) -> tuple[int, int]:
        """(deliveries recorded, deliveries pending)."""
        total = await self.db[DELIVERIES].count_documents({})
        pending = await self.db[DELIVERIES].count_documents(equals({"status": "pending"}))
        return total, pending

    async def attempts(self, work_orders: Sequence[str]) -> dict[str, Any]:
        found = self.db[DELIVERIES].find(
            {"work_order_id": {"$in": list(work_orders)}},
            projection={"attempts": True, "status": True},
        )
        attempts: dict[str, int] = {}
        statuses: Counter[str] = Counter()
        async for doc in found:
            attempts[str(doc["_id"])] = int(doc["attempts"])
            statuses[str(doc["status"])] += 1
        in_flight = 0
        ids = list(attempts)
        for i in range(0, len(ids), 200):
            in_flight += await self.db[DELIVERY_ATTEMPTS].count_documents(
                {"notification_id": {"$in": ids[i : i + 200]}, **equals({"outcome": IN_FLIGHT})}
            )
        return {
            "deliveries": len(attempts),
            "statuses": dict(statuses),
            "attempted_more_than_once": sum(1 for a in attempts.values() if a > 1),
            "attempts": sum(attempts.values()),
            "attempts_left_in_flight": in_flight,
        }


# -- one phase ----------------------------------------------------------------------------------
async def phase(
    stack: Stack, store: StoreReader, name: str, *, n: int, kills: int, timeout: float
) -> dict[str, Any]:
    """N receipts published at once, the service killed ``kills`` times while they are sent."""
    orders = [receipt(name, i) for i in range(n)]
    requesters = [requester_email(name, i) for i in range(n)]
    thresholds = [round(k * n / (kills + 1)) for k in range(1, kills + 1)]
    box = Mailbox(stack.platform.mail_dir, name)
    expected_deliveries = (await store.counts())[0] + n
    say(f"{name}: publishing {n} receipts" + (f", {kills} kills planned" if kills else ""))
    began = time.time()
    publishing = asyncio.create_task(publish_all(stack.platform.bootstrap, orders))
    kill_log: list[dict[str, Any]] = []
    all_mailed: float | None = None
    deadline = time.monotonic() + timeout
    while True:
        await asyncio.sleep(0.1)
        have = box.poll()
        if publishing.done() and publishing.exception() is not None:
            raise CouldNotMeasure(f"publishing failed: {publishing.exception()}")
        if not stack.running():
            msg = f"the notifications service exited by itself: {stack.tail()}"
            raise CouldNotMeasure(msg)
        if (
            len(kill_log) < kills
            and have >= thresholds[len(kill_log)]
            and box.since(stack.started_at + STARTUP_GRACE_S) > 0
        ):
            up_for = time.time() - stack.started_at
            killed = stack.kill_and_restart()
            kill_log.append(
                {
                    "at_s": round(killed - began, 2),
                    "requesters_with_mail": have,
                    "mails": len(box.mails),
                    "process_up_for_s": round(up_for, 1),
                    "restarted_at": stack.started_at,
                }
            )
            say(
                f"{name}: kill -9 #{len(kill_log)} at {killed - began:.1f}s "
                f"({have}/{n} requesters mailed), restarted"
            )
        if have >= n and len(kill_log) >= min(kills, len(thresholds)) and all_mailed is None:
            all_mailed = max(ms[0].arrived for ms in box.by_requester.values())
            say(f"{name}: every requester mailed {all_mailed - began:.1f}s after the first publish")
        if all_mailed is not None:
            total, pending = await store.counts()
            if pending == 0 and total >= expected_deliveries:
                break
        if time.monotonic() > deadline:
            break
    settled = time.time()
    await asyncio.sleep(1.0)  # a file written just now
    box.poll()
    publish_s = await publishing
    repeats = [
        sorted(ms, key=lambda m: m.arrived)[0].arrived
        for ms in box.by_requester.values()
        if len(ms) > 1
    ]
    previous = 0.0
    for row in kill_log:
        restarted = row.pop("restarted_at")
        killed_at = began + row["at_s"]
        # A repeat's first copy went out under the process the next kill ended.
        row["duplicates_it_caused"] = sum(1 for t in repeats if previous <= t <= killed_at + 0.05)
        previous = killed_at + 0.05
        first = box.first_after(restarted + STARTUP_GRACE_S)
        row["first_mail_after_restart_s"] = (
            None if first is None else round(first - (began + row["at_s"]), 1)
        )
    figures = mail_figures(box, requesters)
    complete = all_mailed is not None
    last_first = max((ms[0].arrived for ms in box.by_requester.values()), default=began)
    elapsed = (last_first if all_mailed is None else all_mailed) - began
    stored = await store.attempts([o.work_order_id for o in orders])
    result = {
        "phase": name,
        "notices": n,
        "kills": len(kill_log),
        "complete": complete,
        "elapsed_s": round(elapsed, 2),
        "throughput_per_s": round(n / elapsed, 2) if complete and elapsed > 0 else None,
        "settled_s": round(settled - began, 2),
        "publish_s": round(publish_s, 2),
        **figures,
        "store": stored,
        "kill_log": kill_log,
    }
    say(
        f"{name}: {figures['mails']} e-mails to {figures['requesters_with_mail']}/{n} requesters, "
        f"{figures['duplicates']} duplicates, {figures['lost']} lost; all mailed in "
        f"{elapsed:.1f}s, nothing pending after {settled - began:.1f}s"
    )
    return result


async def run(opts: Options, stack: Stack, result: dict[str, Any]) -> None:
    began = time.monotonic()
    stack.start()
    settings = stack.settings()
    result["lease_seconds"] = delivery_lease(settings).total_seconds()
    result["lease_margin_seconds"] = settings.delivery_lease_margin_seconds
    result["delivery_batch_size"] = settings.delivery_batch_size
    result["delivery_concurrency"] = settings.delivery_concurrency
    say(
        f"broker, store, SMTP sink and notifications up in {time.monotonic() - began:.0f}s "
        f"(lease {result['lease_seconds']:g}s, batch {settings.delivery_batch_size}, "
        f"concurrency {settings.delivery_concurrency})"
    )
    await ensure_topics(
        KafkaSettings(bootstrap=stack.platform.bootstrap), [Topic.WORKORDERS_EVENTS.value]
    )
    store = StoreReader(
        stack.platform.mongodb_uri(SERVICE),
        stack.platform.env_for(SERVICE)["FIXLOOP_NOTIFICATIONS_DATABASE"],
    )
    try:
        if opts.baseline:
            result["baseline"] = await phase(
                stack, store, "base", n=opts.notices, kills=0, timeout=opts.timeout
            )
            if not result["baseline"]["complete"]:
                msg = f"the baseline's e-mails did not all arrive within {opts.timeout:.0f}s"
                raise CouldNotMeasure(msg)
        result["kills"] = await phase(
            stack, store, "kill", n=opts.notices, kills=opts.kills, timeout=opts.timeout
        )
        if not result["kills"]["complete"]:
            result["incomplete"] = (
                f"{result['kills']['lost']} requesters had no e-mail after {opts.timeout:.0f}s"
            )
    finally:
        await store.close()


def summarise(opts: Options, result: Mapping[str, Any]) -> dict[str, Any]:
    kills = result.get("kills", {})
    base = result.get("baseline", {})
    throughput = kills.get("throughput_per_s")
    base_throughput = base.get("throughput_per_s")
    figures = {
        "notices": opts.notices,
        "kills": kills.get("kills"),
        "mails": kills.get("mails"),
        "duplicates": kills.get("duplicates"),
        "duplicate_rate": kills.get("duplicate_rate"),
        "distinct_message_ids": kills.get("distinct_message_ids"),
        "same_message_id_on_every_duplicate": kills.get("same_message_id_on_every_duplicate"),
        "lost": kills.get("lost"),
        "elapsed_s": kills.get("elapsed_s"),
        "throughput_per_s": throughput,
        "lease_seconds": result.get("lease_seconds"),
        "lease_margin_seconds": result.get("lease_margin_seconds"),
        "requesters_with_more_than_one_mail": kills.get("requesters_with_more_than_one_mail"),
        "attempts_left_in_flight": kills.get("store", {}).get("attempts_left_in_flight"),
        "settled_s": kills.get("settled_s"),
        "baseline_elapsed_s": base.get("elapsed_s"),
        "baseline_throughput_per_s": base_throughput,
        "throughput_vs_baseline": round(throughput / base_throughput, 3)
        if throughput and base_throughput
        else None,
    }
    return {
        "benchmark": "notifications-kills",
        "time": datetime.now(UTC).isoformat(),
        "options": {
            **asdict(opts),
            "out": str(opts.out) if opts.out else None,
            "work_dir": str(opts.work_dir) if opts.work_dir else None,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": host.python_version(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "git_commit": git_commit(),
        "figures": figures,
        **result,
    }


def report(summary: Mapping[str, Any]) -> str:
    f = summary["figures"]
    kills = summary.get("kills", {})
    base = summary.get("baseline", {})
    lines = [
        f"notifications under kill -9: {f['notices']} receipts, {f['kills']} kills, lease "
        f"{f['lease_seconds']}s (margin {f['lease_margin_seconds']}s), "
        f"{summary['machine']['cpus']} cores, load {summary['machine']['load_average_at_end']}",
    ]
    if base:
        lines.append(
            f"  without kills: {base['mails']} e-mails, {base['duplicates']} duplicates, all "
            f"in {base['elapsed_s']}s ({base['throughput_per_s']}/s)"
        )
    if kills:
        lines += [
            f"  with kills:    {kills['mails']} e-mails to {kills['requesters_with_mail']} "
            f"requesters, {kills['duplicates']} duplicates ({(kills['duplicate_rate'] or 0):.1%}"
            f" of receipts; {kills['requesters_with_more_than_one_mail']} requesters mailed "
            f"more than once), {kills['lost']} lost",
            f"                 all mailed in {kills['elapsed_s']}s ({kills['throughput_per_s']}/s"
            f", x{f['throughput_vs_baseline']} the kill-free burst); nothing pending after "
            f"{kills['settled_s']}s",
            f"  Message-IDs:   {kills['distinct_message_ids']} distinct; every repeat the same "
            f"as its first: {kills['same_message_id_on_every_duplicate']}; repeats after "
            f"{kills['repeat_delay_s']} s",
            f"  store:         {kills['store']['attempts_left_in_flight']} attempts left in "
            f"flight by a kill, {kills['store']['attempted_more_than_once']} deliveries "
            f"attempted more than once",
        ]
        for i, row in enumerate(kills.get("kill_log", []), start=1):
            lines.append(
                f"  kill {i}: at {row['at_s']}s, {row['requesters_with_mail']} mailed, the "
                f"process up {row['process_up_for_s']}s; next e-mail "
                f"{row['first_mail_after_restart_s']}s after the kill; "
                f"{row['duplicates_it_caused']} duplicates"
            )
    problems = summary.get("service_log", {})
    if problems.get("problem_lines"):
        lines.append(f"  the service logged {problems['problem_lines']} warning/error lines:")
        lines += [f"    {p['count']} x {p['line']}" for p in problems["commonest"][:5]]
    if summary.get("incomplete"):
        lines.append(f"  incomplete: {summary['incomplete']}")
    if summary.get("error"):
        lines.append(f"  could not measure: {summary['error']}")
    return "\n".join(lines)


async def main_async(opts: Options) -> tuple[dict[str, Any], str | None]:
    result: dict[str, Any] = {}
    error: str | None = None
    with tempfile.TemporaryDirectory(prefix="fixloop-bench-notify-") as scratch:
        stack = Stack.create(opts, opts.work_dir or Path(scratch))
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
    out = opts.out or RESULTS / f"notify-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(report(summary))
    print(f"written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    if error:
        print(f"bench-notify: could not measure: {error}", file=sys.stderr)
    print(json.dumps(summary["figures"]), flush=True)
    if error:
        sys.exit(1)


if __name__ == "__main__":
    main()
