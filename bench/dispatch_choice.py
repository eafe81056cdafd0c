"""Benchmark: the pure dispatch choice among 10,000 contractors in one region.

Builds a seeded world of ``--contractors`` contractors that all cover one region (Germany, around
Berlin), spread over ``--zones`` IANA time zones (more than the 8 that Python's own zone cache
keeps), with base coordinates (a tenth without, judged by postal prefix), capacities and loads,
skill levels, scorecards, credentials (some expired or expiring) and on-call rotas (around the
clock, working hours with a night-and-weekend backup, split shifts, holiday exceptions). Then
times the choice (:func:`fixloop_contractors.domain.dispatch.rank_candidates` and the offer it
makes) for ``--decisions`` work orders per run, each at its own moment of the week, site, tenant,
equipment class and expected duration, with a few declined, preferred and blocked contractors.

Candidate sets, each of the whole region:

- **mixed**: the registry as it is, tenants and skills varying; most are excluded early;
- **matched**: every contractor serves the order's tenant and equipment class (what a store query
  that narrows by those rules hands over); about a third are eligible, and all of those scored;
- **matched-1-zone**: the same, all in one time zone, to compare with ``matched``;
- **eligible**: every contractor passes every rule but the few declined or blocked ones (what a
  query narrowing by every hard rule hands over): the most scoring there can be.

Per run and set: decision time p50/p90/p99 (wall clock, and this thread's CPU time, as the
machine may be shared) and the mean time per contractor assessed; the figures are medians over
``--runs`` runs. Target: p99 at most 50 ms. Each set's contractors are built, collected and
frozen (``gc.freeze``) before its runs, so the garbage collector scans what the decisions
allocate rather than the benchmark's fixture. A decision scores only the candidates that might be
among those it offers the order to, keeps its excluded contractors as they came, and works out
the rest when asked. The time to spell out the whole explanation (every ranked entry, scoring the
candidates the decision put aside, and every exclusion with its reasons) is measured apart, for
``--explain`` decisions per set, and so is the decision and its explanation together, as the
service explains every decision it makes; each of those decisions' offers is checked against the
head of its whole ranking. How fast the interpreter runs on this machine at the time (a plain
counting loop, before and after) is recorded with the figures, as the machine may be shared.
Prints a summary and writes everything as JSON (``--out``, default
``bench/results/dispatch-*.json``). It asserts nothing about speed.

    uv run python -m bench.dispatch_choice                # the defaults of `make bench-dispatch`
    uv run python -m bench.dispatch_choice --decisions 20 --runs 2 --explain 5    # smoke, ~20 s
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform as host
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

from bench.pipeline import git_commit, verdict
from bench.probes import percentile
from fixloop_contractors.domain.dispatch import (
    Candidate,
    DispatchRanking,
    DispatchRequest,
    TenantPreferences,
    rank_candidates,
)
from fixloop_contractors.domain.model import (
    Contractor,
    Credential,
    CredentialKind,
    GeoPoint,
    ServiceRegion,
)
from fixloop_contractors.domain.rota import (
    WORKING_DAYS,
    DayException,
    OnCallRota,
    RotaLayer,
    Weekday,
    WeeklyWindow,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_P99_MS = 50.0

ZONES = (
    "Europe/Berlin",
    "Europe/London",
    "Europe/Lisbon",
    "Europe/Helsinki",
    "Europe/Istanbul",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/Sao_Paulo",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
)
TENANTS = ("acme", "globex", "initech", "umbrella")
SKILLS = ("hvac", "elevator", "plumbing", "electrical", "refrigeration")
BERLIN = GeoPoint(52.52, 13.405)
SITE_CODES = ("10115", "10243", "10999", "12043", "13347", "14467", "15230", "16515")
PREFIXES = ("1", "10", "12", "13", "14", "15", "16", "101", "102", "109", "120", "133")
WEEK_START = datetime(2026, 11, 16, tzinfo=UTC)  # a Monday
HOLIDAYS = (date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26), date(2027, 1, 1))
EVERY_OTHER = (Weekday.MONDAY, Weekday.WEDNESDAY, Weekday.FRIDAY, Weekday.SUNDAY)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def say(message: str) -> None:
    print(message, flush=True)


def near(rng: random.Random, centre: GeoPoint, km: float) -> GeoPoint:
    """A point within about ``km`` of ``centre``."""
    return GeoPoint(
        round(centre.latitude + rng.uniform(-km, km) / 111.0, 5),
        round(centre.longitude + rng.uniform(-km, km) / 68.0, 5),
    )


def rota_of(rng: random.Random) -> OnCallRota | None:
    roll = rng.random()
    if roll < 0.3:
        return None  # around the clock
    if roll < 0.45:
        return OnCallRota(
            RotaLayer(
                (WeeklyWindow.whole_week(),), tuple(DayException.off(day) for day in HOLIDAYS)
            )
        )
    working = WeeklyWindow.daily(clock(8), clock(18), WORKING_DAYS)
    if roll < 0.75:
        backup = RotaLayer(
            (
                *WeeklyWindow.daily(clock(18), clock(8), WORKING_DAYS[:4]),
                WeeklyWindow(Weekday.FRIDAY, clock(18), Weekday.MONDAY, clock(8)),
            )
        )
        return OnCallRota(RotaLayer(working, (DayException.off(HOLIDAYS[1]),)), backup)
    if roll < 0.9:
        return OnCallRota(RotaLayer(working, tuple(DayException.off(day) for day in HOLIDAYS)))
    split = (
        *WeeklyWindow.daily(clock(6), clock(12), EVERY_OTHER),
        *WeeklyWindow.daily(clock(14), clock(22), EVERY_OTHER),
    )
    return OnCallRota(RotaLayer(split))


WORLDS = ("mixed", "matched", "eligible")
"""mixed: the registry as it is; matched: each contractor serves every tenant and equipment
class; eligible: matched, and also covering the whole country with valid credentials, room
under its capacity and on call around the clock."""


def build_world(
    count: int, zones: Sequence[str], seed: int, kind: str = "mixed"
) -> list[Candidate]:
    """The contractors of the region (see :data:`WORLDS` for the kinds)."""
    rng = random.Random(seed)
    world: list[Candidate] = []
    for i in range(count):
        skills = frozenset(rng.sample(SKILLS, rng.randint(1, 3)))
        tenants = frozenset(rng.sample(TENANTS, rng.randint(1, 3)))
        if kind != "mixed":
            skills, tenants = frozenset(SKILLS), frozenset(TENANTS)
        prefixes = tuple(rng.sample(PREFIXES, rng.randint(1, 3))) if rng.random() < 0.8 else ()
        credentials = [
            Credential(
                CredentialKind.TRADE_LICENCE,
                f"TL-{i}",
                date(2026, 11, 10) + timedelta(days=rng.randint(0, 3 * 365)),
            ),
            Credential(
                CredentialKind.LIABILITY_INSURANCE,
                f"LI-{i}",
                date(2026, 11, 20) + timedelta(days=rng.randint(0, 2 * 365)),
            ),
        ]
        capacity = rng.randint(2, 12) if rng.random() < 0.7 else None
        open_jobs = rng.randint(0, capacity or 6)
        rota = rota_of(rng)
        if kind == "eligible":
            prefixes = ()
            credentials = [replace(c, expires_on=date(2029, 12, 31)) for c in credentials]
            open_jobs = 0 if capacity is None else rng.randint(0, capacity - 2)
            rota = OnCallRota.around_the_clock() if rota is not None else None
        contractor = Contractor(
            contractor_id=f"ctr-{i:05d}",
            name=f"Contractor {i}",
            email=f"ctr-{i}@example.com",
            timezone=zones[i % len(zones)],
            tenants=tenants,
            skills=skills,
            regions=(ServiceRegion("DE", prefixes),),
            credentials=tuple(credentials),
            base_location=near(rng, BERLIN, 60) if rng.random() < 0.9 else None,
            max_concurrent_jobs=capacity,
            skill_levels=tuple((s, rng.randint(1, 5)) for s in skills if rng.random() < 0.6),
            rota=rota,
        )
        world.append(
            Candidate(
                contractor,
                open_offers=rng.randint(0, 1),
                open_jobs=open_jobs,
                scorecard=round(rng.random(), 3) if rng.random() < 0.7 else None,
            )
        )
    return world


@dataclass(frozen=True)
class Order:
    request: DispatchRequest
    at: datetime
    declined: frozenset[str]
    preferences: TenantPreferences


def orders(count: int, world: Sequence[Candidate], seed: int) -> list[Order]:
    rng = random.Random(seed)
    ids = [c.contractor.contractor_id for c in world]
    made = []
    for i in range(count):
        request = DispatchRequest(
            work_order_id=f"wo-{i:05d}",
            tenant=rng.choice(TENANTS),
            equipment_class=rng.choice(SKILLS),
            country="DE",
            postal_code=rng.choice(SITE_CODES),
            site_location=near(rng, BERLIN, 25) if rng.random() < 0.9 else None,
            expected_duration=timedelta(hours=rng.choice((1, 2, 4, 8))),
        )
        at = WEEK_START + timedelta(seconds=rng.randrange(7 * 24 * 3600))
        made.append(
            Order(
                request,
                at,
                frozenset(rng.sample(ids, rng.randint(0, 5))),
                TenantPreferences(
                    preferred=frozenset(rng.sample(ids, 50)),
                    blocked=frozenset(rng.sample(ids, 20)),
                ),
            )
        )
    return made


@dataclass(frozen=True)
class Options:
    contractors: int = 10_000
    decisions: int = 100
    runs: int = 5
    zones: int = len(ZONES)
    fan_out: int = 1
    explain: int = 20
    seed: int = 8
    out: Path | None = None


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float
    ranking: DispatchRanking


def decide(order: Order, pool: Sequence[Candidate], fan_out: int) -> Timing:
    wall, cpu = time.perf_counter(), time.thread_time()
    ranking = rank_candidates(
        order.request,
        pool,
        order.at,
        declined=order.declined,
        preferences=order.preferences,
        fan_out=fan_out,
    )
    assert ranking.offered or not ranking.eligible_count  # noqa: S101 - the choice itself
    return Timing(time.perf_counter() - wall, time.thread_time() - cpu, ranking)


def explain(ranking: DispatchRanking) -> float:
    """Seconds to spell out every ranked entry and every exclusion with its reasons."""
    started = time.perf_counter()
    ranked, excluded = ranking.ranked, ranking.excluded
    seconds = time.perf_counter() - started
    assert len(ranked) + len(excluded) == ranking.assessed_count  # noqa: S101
    # The offer, made before the whole ranking was worked out, is its head.
    assert ranking.offered == ranked[: ranking.fan_out]  # noqa: S101
    return seconds


def spread(prefix: str, seconds: Sequence[float]) -> dict[str, float]:
    values = list(seconds)
    return {
        f"{prefix}p50_ms": ms(percentile(values, 0.50)),
        f"{prefix}p90_ms": ms(percentile(values, 0.90)),
        f"{prefix}p99_ms": ms(percentile(values, 0.99)),
        f"{prefix}max_ms": ms(max(values)),
    }


def run_once(
    opts: Options, pools: Sequence[tuple[Order, Sequence[Candidate]]], run: int
) -> dict[str, Any]:
    rng = random.Random(opts.seed * 1000 + run)
    sequence = list(pools)
    rng.shuffle(sequence)
    wall: list[float] = []
    cpu: list[float] = []
    eligible: list[int] = []
    for order, pool in sequence:
        # Each ranking is dropped once measured, as a service drops it once stored.
        timing = decide(order, pool, opts.fan_out)
        assert timing.ranking.assessed_count == len(pool)  # noqa: S101 - every candidate kept
        wall.append(timing.wall)
        cpu.append(timing.cpu)
        eligible.append(timing.ranking.eligible_count)
    assessed = sum(len(pool) for _, pool in sequence)
    return {
        **spread("", wall),
        **spread("cpu_", cpu),
        "mean_ms": ms(statistics.fmean(wall)),
        "us_per_contractor": round(sum(wall) / assessed * 1e6, 3),
        "eligible_median": statistics.median(eligible),
    }


def median_of(rows: Sequence[dict[str, Any]], key: str) -> float:
    return round(statistics.median(float(row[key]) for row in rows), 3)


SETS = (
    ("mixed", "mixed", False),
    ("matched", "matched", False),
    ("matched-1-zone", "matched", True),
    ("eligible", "eligible", False),
)
"""(name, kind of world, all in one time zone)."""


def measure_set(
    opts: Options, name: str, pools: Sequence[tuple[Order, Sequence[Candidate]]]
) -> dict[str, Any]:
    # Warm up (the interpreter's caches, the time zones), not measured.
    for order, pool in pools[:2]:
        decide(order, pool, opts.fan_out)
    runs = []
    for run in range(opts.runs):
        row = run_once(opts, pools, run)
        say(
            f"  {name:14s} run {run + 1}/{opts.runs}: p50 {row['p50_ms']:.1f} ms, "
            f"p99 {row['p99_ms']:.1f} ms (CPU {row['cpu_p99_ms']:.1f} ms), "
            f"{row['us_per_contractor']:.2f} µs per contractor, "
            f"{row['eligible_median']:.0f} eligible (median)"
        )
        runs.append(row)
    explained: list[float] = []
    together: list[float] = []
    for order, pool in pools[: opts.explain]:
        timing = decide(order, pool, opts.fan_out)
        explained.append(explain(timing.ranking))
        together.append(timing.wall + explained[-1])
    medians = {key: median_of(runs, key) for key in runs[0]}
    return {
        "medians": medians,
        "runs": runs,
        "explanation": spread("", explained) if explained else None,
        "decision_and_explanation": spread("", together) if together else None,
        "target_p99_ms": TARGET_P99_MS,
        "target_met": medians["p99_ms"] <= TARGET_P99_MS,
    }


def loop_ns() -> float:
    """Nanoseconds per iteration of a plain counting loop (median of five): how fast this
    interpreter runs on this machine right now."""
    times = []
    for _ in range(5):
        started, total = time.perf_counter(), 0
        for i in range(1_000_000):
            total += i
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)


def measure(opts: Options) -> dict[str, Any]:
    zones = ZONES[: opts.zones]
    say(f"{opts.contractors:,} contractors in {len(zones)} time zones, one set at a time ...")
    world = build_world(opts.contractors, zones, opts.seed)
    work = orders(opts.decisions, world, opts.seed + 1)
    facts = {
        "contractors": opts.contractors,
        "time_zones": list(zones),
        "region": "DE around Berlin (whole country or postal prefixes 1x)",
        "with_base_location": sum(c.contractor.base_location is not None for c in world),
        "with_rota": sum(c.contractor.rota is not None for c in world),
        "with_capacity": sum(c.contractor.max_concurrent_jobs is not None for c in world),
        "gc": "the world is built, collected and frozen (gc.freeze) before each set's runs: "
        "collections then scan what the decisions allocate, not the fixture",
    }
    del world
    calibration = {"loop_ns_before": loop_ns()}
    results: dict[str, Any] = {}
    for name, kind, one_zone in SETS:
        pool = build_world(opts.contractors, zones[:1] if one_zone else zones, opts.seed, kind)
        gc.collect()
        gc.freeze()
        try:
            results[name] = measure_set(opts, name, [(order, pool) for order in work])
        finally:
            gc.unfreeze()
            del pool
    calibration["loop_ns_after"] = loop_ns()
    return {"world": facts, "calibration": calibration, "candidate_sets": results}


def report(result: dict[str, Any]) -> str:
    opts = result["options"]
    lines = [
        f"dispatch choice among {result['world']['contractors']:,} contractors in one region, "
        f"{len(result['world']['time_zones'])} time zones, {opts['decisions']} decisions x "
        f"{opts['runs']} runs (medians over runs; CPU: this thread's CPU time):"
    ]
    for name, figures in result["candidate_sets"].items():
        m = figures["medians"]
        lines.append(
            f"  {name:14s} p50 {m['p50_ms']:6.1f} ms  p90 {m['p90_ms']:6.1f} ms  "
            f"p99 {m['p99_ms']:6.1f} ms  (CPU p50 {m['cpu_p50_ms']:.1f}, p99 "
            f"{m['cpu_p99_ms']:.1f})  {m['us_per_contractor']:.2f} µs/contractor  "
            f"{m['eligible_median']:.0f} eligible" + verdict(figures["target_met"])
        )
        if figures["explanation"]:
            e, both = figures["explanation"], figures["decision_and_explanation"]
            lines.append(
                f"  {'':14s} whole explanation, when asked for: p50 {e['p50_ms']:.1f} ms, "
                f"p99 {e['p99_ms']:.1f} ms; with the decision: p50 {both['p50_ms']:.1f} ms, "
                f"p99 {both['p99_ms']:.1f} ms ({opts['explain']} decisions)"
            )
    lines.append(f"  target: p99 <= {TARGET_P99_MS:.0f} ms")
    c = result["calibration"]
    lines.append(
        f"  a plain counting loop took {c['loop_ns_before']} ns per iteration before the runs "
        f"and {c['loop_ns_after']} ns after"
    )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    defaults = Options()
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--contractors", type=int, default=defaults.contractors)
    parser.add_argument("--decisions", type=int, default=defaults.decisions, help="per run")
    parser.add_argument("--runs", type=int, default=defaults.runs)
    parser.add_argument(
        "--zones", type=int, default=defaults.zones, help=f"time zones used (1..{len(ZONES)})"
    )
    parser.add_argument("--fan-out", type=int, default=defaults.fan_out, help="offered at once")
    parser.add_argument(
        "--explain", type=int, default=defaults.explain, help="decisions explained in full, per set"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", type=Path, help="the JSON file (default bench/results/dispatch-*)")
    args = parser.parse_args(argv)
    if not 1 <= args.zones <= len(ZONES):
        parser.error(f"--zones must be 1..{len(ZONES)}")
    if min(args.runs, args.decisions, args.contractors, args.fan_out) < 1 or args.explain < 0:
        parser.error("--runs, --decisions, --contractors and --fan-out must be at least 1")
    return Options(
        contractors=args.contractors,
        decisions=args.decisions,
        runs=args.runs,
        zones=args.zones,
        fan_out=args.fan_out,
        explain=args.explain,
        seed=args.seed,
        out=args.out,
    )


def main() -> None:
    opts = parse_args()
    started = datetime.now(UTC)
    figures = measure(opts)
    result = {
        "benchmark": "dispatch-choice",
        "time": started.isoformat(),
        "options": {**asdict(opts), "out": None if opts.out is None else str(opts.out)},
        "machine": {"cpus": os.cpu_count(), "python": host.python_version()},
        "git_commit": git_commit(),
        **figures,
    }
    out = opts.out or RESULTS / f"dispatch-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    say(report(result))
    say(f"written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
