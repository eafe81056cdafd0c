"""Prometheus metrics of the sla service (served on /metrics from the service's registry).

The clock gauges are kept incrementally: a pod reads the per-partition counts of the partitions
it takes over (one query) and moves them by what each committed settlement changed; nothing ever
counts the clocks in the store.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fixloop_shared.vocabulary import Milestone
from fixloop_sla.app.engine import SavedOrder
from fixloop_sla.domain import SignalKind

_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 3600.0, float("inf"))
CONDITIONS = ("running", "paused", "breached")


class SlaMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.clocks = Gauge(
            "fixloop_sla_clocks",
            "Open clock cycles of the partitions this pod owns, by condition (running, paused, "
            "breached and still open)",
            ["milestone", "condition"],
            registry=registry,
        )
        self.started = Counter(
            "fixloop_sla_clocks_started",
            "Clock cycles started",
            ["milestone"],
            registry=registry,
        )
        self.signals = Counter(
            "fixloop_sla_signals",
            "SLA announcements: warnings, breaches, escalations, met, stopped, recomputed, "
            "retracted breaches, at risk",
            ["milestone", "kind", "late"],
            registry=registry,
        )
        self.fire_lag = Histogram(
            "fixloop_sla_fire_lag_seconds",
            "How long after its moment a due order was taken up by its timer",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.scheduled = Gauge(
            "fixloop_sla_timers_scheduled",
            "Orders with a timer in memory (due within the horizon)",
            registry=registry,
        )
        self.partitions = Gauge(
            "fixloop_sla_partitions_owned",
            "Partitions whose clocks this pod owns",
            registry=registry,
        )
        self._by_partition: dict[int | None, Tally[str]] = {}
        for milestone in Milestone:
            self.started.labels(milestone.value)
            for condition in CONDITIONS:
                self.clocks.labels(milestone.value, condition).set(0)
            for kind in SignalKind:
                for late in ("true", "false"):
                    self.signals.labels(milestone.value, kind.value, late)

    # -- the engine's observer --------------------------------------------------------------

    def settled(self, saved: Sequence[SavedOrder]) -> None:
        changed: set[str] = set()
        for item in saved:
            known = item.before.known if item.before is not None else {}
            for key in item.settlement.record.known.keys() - known.keys():
                self.started.labels(key.partition("/")[0]).inc()
            for signal in item.settlement.signals:
                late = "true" if signal.late else "false"
                self.signals.labels(signal.cycle.clock.value, signal.kind.value, late).inc()
            after = Tally(f"{c}__{s}" for c, s in item.settlement.record.open)
            before = Tally(f"{c}__{s}" for c, s in (item.before.open if item.before else ()))
            if after == before:
                continue
            tally = self._by_partition.setdefault(item.partition, Tally())
            tally.update(after)
            tally.subtract(before)
            changed.update(after)
            changed.update(before)
        self._refresh(changed)

    # -- the timers' observer ---------------------------------------------------------------

    def fired(self, lags_seconds: Sequence[float]) -> None:
        for lag in lags_seconds:
            self.fire_lag.observe(max(0.0, lag))

    def ownership(self, scheduled: int, partitions: int) -> None:
        self.scheduled.set(scheduled)
        self.partitions.set(partitions)

    def partitions_loaded(self, gauges: Mapping[int, Mapping[str, int]]) -> None:
        changed: set[str] = set()
        for partition, counts in gauges.items():
            previous = self._by_partition.get(partition, Tally())
            self._by_partition[partition] = Tally(dict(counts))
            changed.update(previous)
            changed.update(counts)
        self._refresh(changed)

    def partitions_dropped(self, partitions: Iterable[int]) -> None:
        changed: set[str] = set()
        for partition in partitions:
            changed.update(self._by_partition.pop(partition, Tally()))
        self._refresh(changed)

    def _refresh(self, keys: Iterable[str]) -> None:
        for key in keys:
            clock, _, condition = key.partition("__")
            if condition not in CONDITIONS:
                continue
            total = sum(tally.get(key, 0) for tally in self._by_partition.values())
            self.clocks.labels(clock, condition).set(max(0, total))
