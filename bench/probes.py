"""What the pipeline benchmark reads while the platform works: the services' Prometheus counters,
the processes' CPU time (``/proc``), the SMTP sink's folder and the events topics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from fixloop_shared.topics import Topic

OFFERED = "fixloop.assignment.offered.v1"
RECEIVED = "fixloop.workorder.received.v1"
PARTS_OUTCOMES = ("fixloop.parts.reserved.v1", "fixloop.parts.backordered.v1")
WATCHED_TYPES = frozenset((RECEIVED, OFFERED, *PARTS_OUTCOMES))

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- Prometheus ---------------------------------------------------------------------------------
def scrape(url: str, metric: str) -> float:
    """The sum of every sample of ``metric`` (all label sets, or the one written after the name,
    e.g. ``name{label="value"}``) on a /metrics page; 0 if absent."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - local http only
            text = response.read().decode()
    except OSError:
        return float("nan")
    total = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and metric in (match.group(1), match.group(1) + (match.group(2) or "")):
            total += float(match.group(3))
    return total


async def scrape_all(urls: Mapping[str, str], metric: str) -> dict[str, float]:
    """``metric`` per service, the pages fetched side by side (off the event loop)."""
    names = list(urls)
    values = await asyncio.gather(*(asyncio.to_thread(scrape, urls[n], metric) for n in names))
    return dict(zip(names, values, strict=True))


RECEIVED_METRIC = "faststream_received_messages_total"
"""FastStream's Prometheus middleware: one count per record a subscriber received."""

CLOCKS_METRIC = 'fixloop_sla_clocks_started_total{milestone="dispatch_confirmation"}'
"""One dispatch-confirmation clock cycle per received order."""


# -- CPU time from /proc ------------------------------------------------------------------------
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of one process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_tree_cpu(roots: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each root process and its live descendants."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parent[int(entry.name)], cpu[int(entry.name)] = stat
    result = {}
    for name, root in roots.items():
        total = 0.0
        for pid, seconds in cpu.items():
            node = pid
            while node > 1:
                if node == root:
                    total += seconds
                    break
                node = parent.get(node, 0)
        result[name] = total
    return result


# -- the SMTP sink's folder ---------------------------------------------------------------------
@dataclass
class MailWatch:
    """New ``.eml`` files in the sink's folder that carry a marker, with their arrival times."""

    folder: Path
    marker: str
    seen_files: set[str] = field(default_factory=set)
    arrived: list[float] = field(default_factory=list)

    def poll(self) -> int:
        if self.folder.is_dir():
            for entry in os.scandir(self.folder):
                if not entry.name.endswith(".eml") or entry.name in self.seen_files:
                    continue
                self.seen_files.add(entry.name)
                try:
                    text = Path(entry.path).read_text(errors="replace")
                    mtime = entry.stat().st_mtime
                except OSError:
                    continue
                if self.marker in text:
                    self.arrived.append(mtime)
        return len(self.arrived)


# -- the events topics --------------------------------------------------------------------------
@dataclass
class OrderTrack:
    """When each stage of one order was seen (``time.time()``); broker timestamps where known."""

    work_order_id: str | None = None
    offered_seen: float | None = None
    offered_broker: float | None = None
    parts_seen: float | None = None


class TopicWatch:
    """Reads the work-order, contractor and parts events (no consumer group, from the current end)
    and records, per external order id of one phase, when its offer and parts outcome appeared."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.prefix = prefix
        # The start is pinned with seek_to_end below; should the broker ever answer "offset out of
        # range", "earliest" re-reads (duplicates are ignored) where "latest" would skip records.
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=100
        )
        self.orders: dict[str, OrderTrack] = {}
        self._external_of: dict[str, str] = {}  # work order id -> external id (this phase only)
        self._early: dict[str, list[tuple[str, float, float]]] = {}  # events before the order
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        await self.consumer.topics()  # loads the cluster metadata
        watched = [
            TopicPartition(topic.value, partition)
            for topic in (Topic.WORKORDERS_EVENTS, Topic.CONTRACTORS_EVENTS, Topic.PARTS_EVENTS)
            for partition in sorted(self.consumer.partitions_for_topic(topic.value) or ())
        ]
        self.consumer.assign(watched)
        await self.consumer.seek_to_end(*watched)
        for partition in watched:  # pin the start positions before anything is published
            await self.consumer.position(partition)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()

    def expect(self, external_ids: Iterable[str]) -> None:
        for external_id in external_ids:
            self.orders.setdefault(external_id, OrderTrack())

    def counts(self) -> tuple[int, int]:
        """(orders offered, orders with a parts outcome) so far."""
        offered = sum(1 for t in self.orders.values() if t.offered_seen is not None)
        parts = sum(1 for t in self.orders.values() if t.parts_seen is not None)
        return offered, parts

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=200)
            now = time.time()
            for records in batch.values():
                for record in records:
                    headers = {k: v.decode(errors="replace") for k, v in record.headers or ()}
                    kind = headers.get("ce_type", "")
                    if kind not in WATCHED_TYPES:
                        continue
                    payload = json.loads(record.value or b"{}")
                    work_order_id = payload.get("work_order_id", "")
                    if kind == RECEIVED:
                        external_id = payload.get("external_id", "")
                        if external_id.startswith(self.prefix):
                            self._received(external_id, work_order_id)
                    else:
                        self._stage(work_order_id, kind, now, record.timestamp / 1000)

    def _received(self, external_id: str, work_order_id: str) -> None:
        self._external_of[work_order_id] = external_id
        self.orders.setdefault(external_id, OrderTrack()).work_order_id = work_order_id
        # Topics are read independently, so an offer may be seen before its order.
        for kind, seen, broker in self._early.pop(work_order_id, []):
            self._stage(work_order_id, kind, seen, broker)

    def _stage(self, work_order_id: str, kind: str, seen: float, broker: float) -> None:
        external_id = self._external_of.get(work_order_id)
        if external_id is None:
            self._early.setdefault(work_order_id, []).append((kind, seen, broker))
            return
        track = self.orders[external_id]
        if kind == OFFERED and track.offered_seen is None:
            track.offered_seen, track.offered_broker = seen, broker
        elif kind in PARTS_OUTCOMES and track.parts_seen is None:
            track.parts_seen = seen
