"""Benchmark: orders through intake -> offer, parts reservation, SLA clock and e-mail.

Starts the whole platform on the embedded stack (five service processes, one broker, one store per
service, the SMTP sink) and, per run:

1. steady state: orders published at fixed rates (default 1, 10 and 25 per second, 20 s each);
   intake -> offer latency p50/p90/p99 per rate;
2. baseline: a bare FastStream consume -> produce pass-through on the same broker (messages/s);
3. burst: N orders published at once; seconds until every order is fully through (offered, parts
   reserved or backordered, SLA clock started, e-mail in the sink's folder), orders/s, messages
   the services consumed per second (their Prometheus counters) and that rate against the
   baseline, and CPU seconds per process;
4. profile: a second, smaller burst (``--profile-orders``, 500) while py-spy samples the services
   (the sampler takes CPU from them, so the timed burst runs without it): the top functions of
   each service.

Prints a summary and writes everything as JSON under ``bench/results/``. It asserts nothing about
speed. Figures are medians over the runs.

    uv run python -m bench.pipeline                     # the defaults of `make bench`
    uv run python -m bench.pipeline --orders 50 --rates 2 --rate-seconds 5 --runs 1   # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform as host
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from bench.probes import (
    CLOCKS_METRIC,
    RECEIVED_METRIC,
    MailWatch,
    TopicWatch,
    percentile,
    process_tree_cpu,
    scrape,
    scrape_all,
)
from bench.pyspy import Profile, Sampler
from fixloop_devkit.devstack import SERVICES, LocalPlatform, StackPorts
from fixloop_shared.bus import ensure_topics
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topics import Topic

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BASE_ORDER = ROOT / "examples" / "orders" / "hvac-breakdown-berlin.json"
STALL_SECONDS = 90.0
"""A phase gives up when nothing moved on for this long (a broken pipeline never ends)."""


@dataclass
class Options:
    orders: int = 2000
    runs: int = 1
    rates: list[float] = field(default_factory=lambda: [1.0, 10.0, 25.0])
    rate_seconds: float = 20.0
    baseline_messages: int = 5000
    work_dir: Path | None = None
    profile: bool = True
    profile_rate: int = 50
    profile_orders: int = 500


# -- helpers -----------------------------------------------------------------------------------
def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def latency_figures(values: list[float], prefix: str) -> dict[str, float]:
    """p50/p90/p99/max of latencies in seconds, as milliseconds."""
    return {
        f"{prefix}_p50_ms": ms(percentile(values, 0.5)),
        f"{prefix}_p90_ms": ms(percentile(values, 0.9)),
        f"{prefix}_p99_ms": ms(percentile(values, 0.99)),
        f"{prefix}_max_ms": ms(max(values)) if values else float("nan"),
    }


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


async def publish(producer: AIOKafkaProducer, external_id: str, value: bytes) -> None:
    await producer.send(
        Topic.WORKORDERS_INBOUND.value,
        value,
        key=f"acme/fieldhub/{external_id}".encode(),
        headers=[("content-type", b"application/cloudevents+json")],
    )


def health_urls(stack: LocalPlatform) -> dict[str, str]:
    return {s: stack.health_url(s, "/metrics") for s in SERVICES}


def clocks_started(stack: LocalPlatform) -> float:
    return scrape(stack.health_url("sla", "/metrics"), CLOCKS_METRIC)


# -- baseline ------------------------------------------------------------------------------------
async def passthrough_rate(bootstrap: str, messages: int) -> float:
    """Messages/s of a bare FastStream subscriber that republishes each message.

    The subscriber's group join (about 5 s on Tansu) is left out: one warm-up message goes
    through first, then ``messages`` records of about an order's size are timed.
    """
    run = uuid.uuid4().hex[:8]
    source, sink = f"bench.passthrough.in.{run}", f"bench.passthrough.out.{run}"
    await ensure_topics(KafkaSettings(bootstrap=bootstrap), [source, sink])
    broker = KafkaBroker(bootstrap, acks="all", logger=None)  # a log line per message costs

    @broker.subscriber(source, group_id=f"bench-{run}", auto_offset_reset="earliest")
    @broker.publisher(sink)
    async def forward(message: KafkaMessage) -> bytes:
        return message.body

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    consumer = AIOKafkaConsumer(sink, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await producer.start()
    await consumer.start()
    await broker.start()
    filler = b"x" * 900

    async def through(count: int, first: int) -> None:
        sends = [
            await producer.send(source, b'{"n": %d, "pad": "%s"}' % (i, filler), key=b"%d" % i)
            for i in range(first, first + count)
        ]
        await asyncio.gather(*sends)
        seen = 0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000)
            seen += sum(len(records) for records in batch.values())

    try:
        await asyncio.wait_for(through(1, 0), timeout=120)  # the group is joined after this
        started = time.perf_counter()
        await through(messages, 1)
        return messages / (time.perf_counter() - started)
    finally:
        await broker.stop()
        await consumer.stop()
        await producer.stop()


# -- steady state ------------------------------------------------------------------------------
async def wait_quiet(mails: MailWatch, expected: int) -> None:
    """Wait (bounded) until a phase's e-mails have all arrived, then a little for the tail."""
    deadline = time.monotonic() + STALL_SECONDS
    last = -1
    while mails.poll() < expected and time.monotonic() < deadline:
        if len(mails.arrived) != last:
            last, deadline = len(mails.arrived), time.monotonic() + STALL_SECONDS
        await asyncio.sleep(1)
    await asyncio.sleep(2)


async def rate_run(stack: LocalPlatform, rate: float, seconds: float) -> dict[str, Any]:
    """Orders at ``rate`` per second for ``seconds`` (open loop, on a fixed schedule)."""
    run = uuid.uuid4().hex[:8]
    count = max(1, round(rate * seconds))
    values = order_values(count, run)
    watch = TopicWatch(stack.bootstrap, f"BENCH-{run}-")
    await watch.start()
    watch.expect(e for e, _ in values)
    mails = MailWatch(stack.mail_dir, f"bench-{run}-")
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=1)
    await producer.start()
    published: dict[str, float] = {}
    try:
        t0 = time.time()
        for i, (external_id, value) in enumerate(values):
            delay = t0 + i / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            published[external_id] = time.time()
            await publish(producer, external_id, value)
        await producer.flush()
        publish_seconds = time.time() - t0
        deadline = time.monotonic() + STALL_SECONDS
        last = -1
        while (offered := watch.counts()[0]) < count and time.monotonic() < deadline:
            if offered != last:
                last, deadline = offered, time.monotonic() + STALL_SECONDS
            await asyncio.sleep(0.2)
    finally:
        await producer.stop()
        await watch.stop()
    seen = [
        t.offered_seen - published[e] for e, t in watch.orders.items() if t.offered_seen is not None
    ]
    broker = [
        t.offered_broker - published[e]
        for e, t in watch.orders.items()
        if t.offered_broker is not None
    ]
    # Let the rest of this phase's work finish, so the next phase starts on an idle platform.
    await wait_quiet(mails, count)
    return {
        "rate": rate,
        "seconds": seconds,
        "orders": count,
        "published_per_second": round(count / publish_seconds, 2) if publish_seconds else None,
        "offered": len(seen),
        **latency_figures(seen, "offer_seen"),
        **latency_figures(broker, "offer_broker_ts"),
    }


# -- burst -------------------------------------------------------------------------------------
async def burst_run(
    stack: LocalPlatform, count: int, opts: Options, tmp: Path, *, profile: bool = False
) -> dict[str, Any]:
    """``count`` orders at once, through the whole pipeline; with ``profile``, py-spy samples the
    services meanwhile (it takes CPU from them, so a timed burst runs without it)."""
    run = uuid.uuid4().hex[:8]
    values = order_values(count, run)
    watch = TopicWatch(stack.bootstrap, f"BENCH-{run}-")
    await watch.start()
    watch.expect(e for e, _ in values)
    mails = MailWatch(stack.mail_dir, f"bench-{run}-")
    urls = health_urls(stack)
    received_before = await scrape_all(urls, RECEIVED_METRIC)
    clocks_before = clocks_started(stack)
    roots = {n: p.pid for n, p in stack.processes.items() if p.pid is not None}
    cpu_before = process_tree_cpu(roots)
    sampler = Sampler(
        {s: roots[s] for s in SERVICES if s in roots}, tmp / f"pyspy-{run}", opts.profile_rate
    )
    if profile:
        sampler.start()
        await asyncio.sleep(1)  # py-spy attached before the first order
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    published: dict[str, float] = {}
    stage_done: dict[str, float] = {}
    clocks = 0.0
    try:
        started = time.time()
        for external_id, value in values:
            published[external_id] = time.time()
            await publish(producer, external_id, value)
        await producer.flush()
        publish_seconds = time.time() - started
        deadline = time.monotonic() + STALL_SECONDS
        progress: tuple[int, ...] = ()
        while time.monotonic() < deadline:
            offered, parts = watch.counts()
            clocks = clocks_started(stack) - clocks_before
            emails = await asyncio.to_thread(mails.poll)
            now = time.time()
            for stage, done in (
                ("offered", offered),
                ("parts", parts),
                ("clocks", int(clocks)),
                ("emails", emails),
            ):
                if done >= count:
                    stage_done.setdefault(stage, now)
            if len(stage_done) == 4:
                break
            if (offered, parts, int(clocks), emails) != progress:
                progress = (offered, parts, int(clocks), emails)
                deadline = time.monotonic() + STALL_SECONDS
            await asyncio.sleep(0.5)
        finished = time.time()
        received_after = await scrape_all(urls, RECEIVED_METRIC)
        cpu_after = process_tree_cpu(roots)
    finally:
        profiles = sampler.stop() if profile else {}
        await producer.stop()
        await watch.stop()
    offered, parts = watch.counts()
    # E-mails carry their arrival time (file mtime), offers and parts outcomes the time seen.
    last_mail = max(mails.arrived, default=finished)
    ends = [
        last_mail if len(mails.arrived) >= count else finished,
        stage_done.get("clocks", finished),
        *(
            max((getattr(t, a) or finished) for t in watch.orders.values())
            for a in ("offered_seen", "parts_seen")
        ),
    ]
    complete = all(stage in stage_done for stage in ("offered", "parts", "clocks", "emails"))
    seconds = (max(ends) if complete else finished) - started
    window = finished - started
    handled = {s: received_after[s] - received_before[s] for s in SERVICES}
    total_handled = sum(handled.values())
    latencies = [
        t.offered_seen - published[e] for e, t in watch.orders.items() if t.offered_seen is not None
    ]
    await wait_quiet(mails, count)
    return {
        "orders": count,
        "complete": complete,
        "seconds": round(seconds, 2),
        "orders_per_second": round(count / seconds, 2) if complete else None,
        "publish_seconds": round(publish_seconds, 2),
        "offered": offered,
        "parts_reserved_or_backordered": parts,
        "clocks_started": int(clocks),
        "emails": len(mails.arrived),
        "stage_seconds": {k: round(v - started, 2) for k, v in stage_done.items()},
        **latency_figures(latencies, "offer_seen"),
        "messages_handled": int(total_handled),
        "messages_handled_by_service": {s: int(v) for s, v in handled.items()},
        "messages_per_order": round(total_handled / count, 2),
        "messages_per_second": round(total_handled / window, 1) if window else None,
        "measured_seconds": round(window, 2),
        "cpu_seconds": {n: round(cpu_after[n] - cpu_before[n], 1) for n in roots},
        "profile_errors": sampler.errors,
        "_profiles": profiles,
    }


# -- the whole benchmark -----------------------------------------------------------------------
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
    subprocess.run([sys.executable, "-m", "fixloop_cli", *args], env=env, check=True)


def say(message: str) -> None:
    print(f"{datetime.now().strftime('%H:%M:%S')} {message}", flush=True)  # noqa: DTZ005


async def main_async(opts: Options) -> dict[str, Any]:
    rate_runs: list[dict[str, Any]] = []
    burst_runs: list[dict[str, Any]] = []
    baseline_runs: list[float] = []
    profiles: dict[str, Profile] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="fixloop-bench-") as scratch:
        tmp = str(opts.work_dir or scratch)
        stack = LocalPlatform(data_dir=Path(tmp), ports=StackPorts.free())
        try:
            began = time.monotonic()
            stack.start_infrastructure()
            stack.start_services()
            fixloop_cli(stack, "contractors", "import", str(ROOT / "examples" / "contractors.yaml"))
            stock = Path(tmp) / "bench-stock.yaml"
            per_run = opts.orders + sum(round(r * opts.rate_seconds) for r in opts.rates)
            write_stock(stock, per_part=per_run * opts.runs * 3 + 100)
            fixloop_cli(stack, "parts", "import", str(stock))
            say(f"stack up and loaded in {time.monotonic() - began:.0f}s")
            for i in range(opts.runs):
                label = f"run {i + 1}/{opts.runs}"
                for rate in opts.rates:
                    figures = await rate_run(stack, rate, opts.rate_seconds)
                    figures["run"] = i + 1
                    rate_runs.append(figures)
                    say(
                        f"{label}: {rate:g} orders/s for {opts.rate_seconds:g}s: offer p50 "
                        f"{figures['offer_seen_p50_ms']} / p90 {figures['offer_seen_p90_ms']} / "
                        f"p99 {figures['offer_seen_p99_ms']} ms "
                        f"({figures['offered']}/{figures['orders']} offered)"
                    )
                baseline_runs.append(
                    await passthrough_rate(stack.bootstrap, opts.baseline_messages)
                )
                say(f"{label}: pass-through {baseline_runs[-1]:.0f} msg/s")
                burst = await burst_run(stack, opts.orders, opts, Path(tmp))
                burst["run"] = i + 1
                burst.pop("_profiles")
                if opts.profile:
                    profiled = await burst_run(
                        stack, opts.profile_orders, opts, Path(tmp), profile=True
                    )
                    for name, profile in profiled.pop("_profiles").items():
                        profiles.setdefault(name, Profile()).merge(profile)
                    errors.update(profiled["profile_errors"])
                    burst["profiled_burst"] = {
                        k: profiled[k] for k in ("orders", "seconds", "cpu_seconds")
                    }
                burst_runs.append(burst)
                say(
                    f"{label}: burst of {opts.orders}: {burst['seconds']} s "
                    f"({burst['orders_per_second']} orders/s, complete={burst['complete']}), "
                    f"{burst['messages_per_second']} msg/s handled"
                )
        finally:
            stack.stop()
    return summarise(opts, rate_runs, burst_runs, baseline_runs, profiles, errors)


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return round(statistics.median(present), 2) if present else None


def summarise(  # noqa: PLR0917 - one call site, each list named
    opts: Options,
    rate_runs: list[dict[str, Any]],
    burst_runs: list[dict[str, Any]],
    baseline_runs: list[float],
    profiles: dict[str, Profile],
    errors: dict[str, str],
) -> dict[str, Any]:
    steady = []
    for rate in opts.rates:
        runs = [r for r in rate_runs if r["rate"] == rate]
        steady.append(
            {
                "rate": rate,
                **{
                    key: median([r[key] for r in runs])
                    for key in runs[0]
                    if key.startswith("offer_") or key == "published_per_second"
                },
                "offered": sum(r["offered"] for r in runs),
                "orders": sum(r["orders"] for r in runs),
            }
        )
    baseline = median(list(baseline_runs))
    msgs = median([b["messages_per_second"] for b in burst_runs])
    return {
        "benchmark": "order-pipeline",
        "time": datetime.now(UTC).isoformat(),
        "options": {**asdict(opts), "work_dir": str(opts.work_dir) if opts.work_dir else None},
        "machine": {"cpus": os.cpu_count(), "python": host.python_version()},
        "git_commit": git_commit(),
        "burst": {
            "orders": opts.orders,
            "seconds_median": median([b["seconds"] if b["complete"] else None for b in burst_runs]),
            "orders_per_second_median": median([b["orders_per_second"] for b in burst_runs]),
            "all_complete": all(b["complete"] for b in burst_runs),
            "offer_seen_p50_ms_median": median([b["offer_seen_p50_ms"] for b in burst_runs]),
            "offer_seen_p99_ms_median": median([b["offer_seen_p99_ms"] for b in burst_runs]),
            "messages_per_order_median": median([b["messages_per_order"] for b in burst_runs]),
            "messages_per_second_median": msgs,
        },
        "passthrough_messages_per_second_median": baseline,
        "efficiency_ratio": round(msgs / baseline, 4) if msgs and baseline else None,
        "steady_state": steady,
        "profiles": {
            name: profile.summary(opts.profile_rate) for name, profile in sorted(profiles.items())
        },
        "profile_errors": errors,
        "targets": {
            "burst_seconds_max": 60,
            "offer_p99_ms_at_10_per_second_max": 500,
            "efficiency_ratio_min": 0.5,
        },
        "burst_runs": burst_runs,
        "steady_state_runs": rate_runs,
        "passthrough_runs": [round(b, 1) for b in baseline_runs],
    }


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%h"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            # the benchmark's own files aside
            ["git", "-C", str(ROOT), "status", "--porcelain", "-uno", "--", ".", ":!bench"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{out}+uncommitted" if dirty else out


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("  [target met]" if ok else "  [target missed]")


def report(result: dict[str, Any]) -> str:
    burst, lines = result["burst"], []
    lines.append(
        f"Fixloop order pipeline, commit {result['git_commit']}, "
        f"{result['options']['runs']} run(s), medians"
    )
    seconds = burst["seconds_median"]
    lines.append(
        f"burst: {burst['orders']} orders fully through in {seconds} s "
        f"= {burst['orders_per_second_median']} orders/s"
        + verdict(None if seconds is None else seconds <= 60)
        + ("" if burst["all_complete"] else "  (NOT all orders completed)")
    )
    lines.append(
        f"  offer latency under the burst (queueing included): p50 "
        f"{burst['offer_seen_p50_ms_median']} ms, p99 {burst['offer_seen_p99_ms_median']} ms"
    )
    ratio = result["efficiency_ratio"]
    lines.append(
        f"efficiency: {burst['messages_per_second_median']} msg/s consumed by the services "
        f"({burst['messages_per_order_median']} per order) / pass-through "
        f"{result['passthrough_messages_per_second_median']} msg/s = "
        + (f"{ratio:.1%}" if ratio is not None else "n/a")
        + verdict(None if ratio is None else ratio >= 0.5)
    )
    lines.append("steady state, intake -> offer (seen by a consumer; broker timestamp):")
    for row in result["steady_state"]:
        ok = (
            row["offer_seen_p99_ms"] <= 500
            if row["rate"] == 10 and row["offer_seen_p99_ms"]
            else None
        )
        lines.append(
            f"  {row['rate']:>5g}/s: p50 {row['offer_seen_p50_ms']} / p90 "
            f"{row['offer_seen_p90_ms']} / p99 {row['offer_seen_p99_ms']} ms "
            f"(broker ts p99 {row['offer_broker_ts_p99_ms']} ms; "
            f"{row['offered']}/{row['orders']} offered)" + verdict(ok)
        )
    if result["burst_runs"]:
        last = result["burst_runs"][-1]
        cpu = last["cpu_seconds"]
        lines.append(
            f"CPU seconds during the last burst of {last['orders']}: "
            + ", ".join(f"{n} {v}" for n, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
        )
        if "profiled_burst" in last:
            lines.append(
                f"profiled separately, during a burst of {last['profiled_burst']['orders']} "
                f"({last['profiled_burst']['seconds']} s with py-spy attached):"
            )
    for name, prof in result["profiles"].items():
        lines.append(f"top functions in {name} (share of {prof['samples']} non-idle samples, own):")
        lines.extend(f"  {r['percent']:5.1f}%  {r['function']}" for r in prof["top_own"][:5])
    lines.extend(f"py-spy could not sample {n}: {e}" for n, e in result["profile_errors"].items())
    return "\n".join(lines)


def parse_args() -> Options:
    defaults = Options()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=defaults.orders, help="burst size")
    parser.add_argument("--runs", type=int, default=defaults.runs)
    parser.add_argument(
        "--rates",
        default=",".join(f"{r:g}" for r in defaults.rates),
        help="steady-state rates in orders/s, comma-separated ('' for none)",
    )
    parser.add_argument("--rate-seconds", type=float, default=defaults.rate_seconds)
    parser.add_argument("--baseline-messages", type=int, default=defaults.baseline_messages)
    parser.add_argument(
        "--work-dir", type=Path, help="keep the stack's data and logs here (default: a temp dir)"
    )
    parser.add_argument("--no-profile", action="store_true", help="no py-spy during the burst")
    parser.add_argument("--profile-rate", type=int, default=defaults.profile_rate)
    parser.add_argument(
        "--profile-orders",
        type=int,
        default=defaults.profile_orders,
        help="size of the separate burst py-spy samples (after the timed one)",
    )
    args = parser.parse_args()
    try:
        rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--rates: comma-separated numbers, got {args.rates!r}")
    if args.orders < 1 or args.runs < 1 or args.baseline_messages < 1:
        parser.error("--orders, --runs and --baseline-messages must be at least 1")
    if any(r <= 0 for r in rates) or args.rate_seconds <= 0:
        parser.error("--rates and --rate-seconds must be positive")
    return Options(
        orders=args.orders,
        runs=args.runs,
        rates=rates,
        rate_seconds=args.rate_seconds,
        baseline_messages=args.baseline_messages,
        work_dir=args.work_dir.resolve() if args.work_dir else None,
        profile=not args.no_profile,
        profile_rate=args.profile_rate,
        profile_orders=max(1, args.profile_orders),
    )


def main() -> None:
    opts = parse_args()
    if opts.work_dir is not None:
        opts.work_dir.mkdir(parents=True, exist_ok=True)
    # SIGTERM (e.g. a timeout) unwinds like Ctrl-C, so the stack's processes are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = asyncio.run(main_async(opts))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"pipeline-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
