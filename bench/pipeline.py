"""Benchmark: N orders through intake -> offer, reservation, SLA clock and e-mail.

Starts the whole platform on the embedded stack (five service processes, one broker, one store per
service, the SMTP sink), publishes N external orders, and measures from publish to the
``assignment.offered`` event of each order. In the same run and on the same broker it measures a
bare FastStream consume->produce pass-through as the baseline. Prints the figures and writes them
as JSON under ``bench/results/``. It asserts nothing about speed.

    uv run python -m bench.pipeline --orders 2000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from fixloop_shared.bus import ensure_topics
from fixloop_shared.devstack import LocalPlatform, StackPorts
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topics import Topic

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BASE_ORDER = ROOT / "examples" / "orders" / "hvac-breakdown-berlin.json"


@dataclass
class RunFigures:
    orders: int
    seconds: float
    orders_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float
    reserved: int
    emails: int


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(q * (len(ordered) - 1)))
    return ordered[index]


async def passthrough_rate(bootstrap: str, messages: int) -> float:
    """Messages/s of a bare FastStream subscriber that republishes each message."""
    run = uuid.uuid4().hex[:8]
    source, sink = f"bench.passthrough.in.{run}", f"bench.passthrough.out.{run}"
    await ensure_topics(KafkaSettings(bootstrap=bootstrap), [source, sink])
    broker = KafkaBroker(bootstrap, acks="all")

    @broker.subscriber(source, group_id=f"bench-{run}", auto_offset_reset="earliest")
    @broker.publisher(sink)
    async def forward(message: KafkaMessage) -> bytes:
        return message.body

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    consumer = AIOKafkaConsumer(sink, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await producer.start()
    await consumer.start()
    await broker.start()
    try:
        started = time.perf_counter()
        sends = [
            await producer.send(source, b'{"n": %d}' % i, key=str(i % 64).encode())
            for i in range(messages)
        ]
        await asyncio.gather(*sends)
        seen = 0
        while seen < messages:
            batch = await consumer.getmany(timeout_ms=1000)
            seen += sum(len(records) for records in batch.values())
        return messages / (time.perf_counter() - started)
    finally:
        await broker.stop()
        await consumer.stop()
        await producer.stop()


def order_values(count: int, run: str) -> list[tuple[str, bytes]]:
    template = json.loads(BASE_ORDER.read_text())
    values = []
    for i in range(count):
        doc = json.loads(json.dumps(template))
        external_id = f"BENCH-{run}-{i:06d}"
        doc["id"] = str(uuid.uuid4())
        doc["time"] = datetime.now(UTC).isoformat()
        doc["data"]["external_id"] = external_id
        doc["data"]["requester"]["email"] = f"bench-{run}-{i}@example.com"
        values.append((external_id, json.dumps(doc).encode()))
    return values


async def pipeline_run(stack: LocalPlatform, count: int) -> RunFigures:
    run = uuid.uuid4().hex[:8]
    values = order_values(count, run)
    watch = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, auto_offset_reset="latest")
    await watch.start()
    await watch.topics()  # loads the cluster metadata
    watched = [
        TopicPartition(topic.value, partition)
        for topic in (Topic.WORKORDERS_EVENTS, Topic.CONTRACTORS_EVENTS, Topic.PARTS_EVENTS)
        for partition in sorted(watch.partitions_for_topic(topic.value) or ())
    ]
    watch.assign(watched)
    await watch.seek_to_end(*watched)
    for partition in watched:  # pin the start positions before anything is published
        await watch.position(partition)
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    published: dict[str, float] = {}
    started = time.perf_counter()
    for external_id, value in values:
        published[external_id] = time.perf_counter()
        await producer.send(
            Topic.WORKORDERS_INBOUND.value,
            value,
            key=f"acme/fieldhub/{external_id}".encode(),
            headers=[("content-type", b"application/cloudevents+json")],
        )
    await producer.flush()
    work_order_of: dict[str, str] = {}
    offered_seen: dict[str, float] = {}  # work order id -> first time its offer was seen
    reserved: set[str] = set()
    deadline = time.monotonic() + max(120, count * 0.5)
    prefix = f"BENCH-{run}-"

    def offered_count() -> int:
        return sum(1 for work_order_id in offered_seen if work_order_id in work_order_of)

    while offered_count() < count and time.monotonic() < deadline:
        batch = await watch.getmany(timeout_ms=500)
        now = time.perf_counter()
        for records in batch.values():
            for record in records:
                headers = {k: v.decode() for k, v in record.headers or ()}
                kind = headers.get("ce_type", "")
                payload = json.loads(record.value or b"{}")
                # Topics are read independently, so an offer may be seen before its order.
                if kind == "fixloop.workorder.received.v1" and payload.get(
                    "external_id", ""
                ).startswith(prefix):
                    work_order_of[payload["work_order_id"]] = payload["external_id"]
                elif kind == "fixloop.assignment.offered.v1":
                    offered_seen.setdefault(payload["work_order_id"], now)
                elif kind.startswith("fixloop.parts."):
                    reserved.add(payload["work_order_id"])
    offered_at = {work_order_of[w]: seen for w, seen in offered_seen.items() if w in work_order_of}
    reserved &= set(work_order_of)
    finished = max(offered_at.values(), default=time.perf_counter())
    await producer.stop()
    await watch.stop()
    latencies = [(offered_at[e] - published[e]) * 1000 for e in offered_at]
    # Let the rest of this run's work (e-mails, timeline entries) finish before the next run, so
    # every run starts on an idle platform; the e-mail count is taken once delivery is done.
    emails = await drained_emails(stack, f"bench-{run}-", count, timeout=max(120.0, count * 0.3))
    return RunFigures(
        orders=len(offered_at),
        seconds=round(finished - started, 3),
        orders_per_second=round(len(offered_at) / (finished - started), 1),
        latency_p50_ms=round(percentile(latencies, 0.5), 1) if latencies else float("nan"),
        latency_p99_ms=round(percentile(latencies, 0.99), 1) if latencies else float("nan"),
        reserved=len(reserved),
        emails=emails,
    )


async def drained_emails(stack: LocalPlatform, marker: str, expected: int, timeout: float) -> int:
    """Wait (bounded) until every e-mail of a run has arrived; return how many did."""
    deadline = time.monotonic() + timeout
    while True:
        count = sum(1 for p in stack.mail_dir.glob("*.eml") if marker in p.read_text())
        if count >= expected or time.monotonic() > deadline:
            return count
        await asyncio.sleep(1)


def write_stock(path: Path, per_part: int) -> None:
    parts = ["FLT-HEPA-24", "BLT-V-A42"]
    lines = "\n".join(
        f"  - {{warehouse_id: wh-berlin, part_number: {p}, quantity: {per_part}}}" for p in parts
    )
    path.write_text(
        "warehouses:\n  - {warehouse_id: wh-berlin, name: Berlin Central, country: DE}\n"
        f"stock:\n{lines}\n"
    )


def fixloop_cli(stack: LocalPlatform, *args: str) -> None:
    env = {**os.environ, "FIXLOOP_KAFKA_BOOTSTRAP": stack.bootstrap}
    for service in ("contractors", "parts"):
        env.update(stack.env_for(service))
    subprocess.run([sys.executable, "-m", "fixloop_shared", *args], env=env, check=True)


async def main_async(orders: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fixloop-bench-") as tmp:
        stack = LocalPlatform(data_dir=Path(tmp), ports=StackPorts.free())
        try:
            stack.start_infrastructure()
            stack.start_services()
            fixloop_cli(stack, "contractors", "import", str(ROOT / "examples" / "contractors.yaml"))
            stock = Path(tmp) / "bench-stock.yaml"
            write_stock(stock, per_part=orders * runs * 3 + 100)
            fixloop_cli(stack, "parts", "import", str(stock))
            baseline = []
            pipeline = []
            for i in range(runs):
                baseline.append(await passthrough_rate(stack.bootstrap, orders))
                figures = await pipeline_run(stack, orders)
                pipeline.append(figures)
                print(
                    f"run {i + 1}/{runs}: pipeline {figures.orders_per_second} orders/s "
                    f"(p50 {figures.latency_p50_ms} ms, p99 {figures.latency_p99_ms} ms, "
                    f"{figures.orders}/{orders} offered, {figures.reserved} reserved, "
                    f"{figures.emails} e-mails); pass-through {baseline[-1]:.0f} msg/s",
                    flush=True,
                )
        finally:
            stack.stop()
    rate = statistics.median(f.orders_per_second for f in pipeline)
    base = statistics.median(baseline)
    return {
        "benchmark": "order-pipeline",
        "time": datetime.now(UTC).isoformat(),
        "orders_per_run": orders,
        "runs": runs,
        "machine": {"cpus": os.cpu_count(), "python": host.python_version()},
        "pipeline_orders_per_second_median": rate,
        "latency_p50_ms_median": statistics.median(f.latency_p50_ms for f in pipeline),
        "latency_p99_ms_median": statistics.median(f.latency_p99_ms for f in pipeline),
        "passthrough_messages_per_second_median": round(base, 1),
        "pipeline_to_passthrough_ratio": round(rate / base, 4) if base else None,
        "pipeline_runs": [asdict(f) for f in pipeline],
        "passthrough_runs": [round(b, 1) for b in baseline],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.orders < 1 or args.runs < 1:
        parser.error("--orders and --runs must be at least 1")
    # SIGTERM (e.g. a timeout) unwinds like Ctrl-C, so the stack's processes are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = asyncio.run(main_async(args.orders, args.runs))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"pipeline-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not k.endswith("_runs")}, indent=2))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
