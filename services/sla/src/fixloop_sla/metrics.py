"""Prometheus metrics of the sla service (served on /metrics from the service's registry)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fixloop_shared.contracts import Milestone
from fixloop_sla.domain import SignalKind, Transition

_DELAY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 3600.0, float("inf"))


@dataclass(frozen=True)
class ClockCounts:
    """How many clocks of one milestone are in each condition the dashboards show."""

    milestone: Milestone
    running: int
    warned: int
    breached: int


class SlaMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.clocks_running = Gauge(
            "fixloop_sla_clocks_running",
            "Clocks running: milestone not reached and deadline not passed",
            ["milestone"],
            registry=registry,
        )
        self.clocks_warned = Gauge(
            "fixloop_sla_clocks_warned",
            "Running clocks whose warning went out (orders at risk)",
            ["milestone"],
            registry=registry,
        )
        self.clocks_breached = Gauge(
            "fixloop_sla_clocks_breached",
            "Breached clocks whose milestone is still not reached",
            ["milestone"],
            registry=registry,
        )
        self.clocks_started = Counter(
            "fixloop_sla_clocks_started", "Clocks started", ["milestone"], registry=registry
        )
        self.signals = Counter(
            "fixloop_sla_signals",
            "SLA warnings, breaches, met milestones and clocks stopped (cancelled) emitted",
            ["milestone", "kind", "late"],
            registry=registry,
        )
        self.fire_delay = Histogram(
            "fixloop_sla_fire_delay_seconds",
            "How long after its moment a warning or breach was fired",
            ["kind"],
            buckets=_DELAY_BUCKETS,
            registry=registry,
        )
        # Every series exists from the start, so dashboards and alerts see zeros, not gaps.
        for milestone in Milestone:
            self.clocks_started.labels(milestone.value)
            for kind in SignalKind:
                for late in ("true", "false"):
                    self.signals.labels(milestone.value, kind.value, late)

    def clock_started(self, milestone: Milestone) -> None:
        self.clocks_started.labels(milestone.value).inc()

    def transition_committed(self, transition: Transition) -> None:
        clock = transition.after
        for signal in transition.signals:
            late = "true" if signal.late else "false"
            self.signals.labels(clock.milestone.value, signal.kind.value, late).inc()
            if signal.kind is SignalKind.WARNING:
                moment = clock.warn_at
            elif signal.kind is SignalKind.BREACH:
                moment = clock.due_at
            else:
                continue
            delay = (signal.fired_at - moment).total_seconds()
            self.fire_delay.labels(signal.kind.value).observe(max(0.0, delay))

    def set_counts(self, counts: Iterable[ClockCounts]) -> None:
        for count in counts:
            label = count.milestone.value
            self.clocks_running.labels(label).set(count.running)
            self.clocks_warned.labels(label).set(count.warned)
            self.clocks_breached.labels(label).set(count.breached)
