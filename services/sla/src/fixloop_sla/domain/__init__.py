"""Pure SLA logic: policies, milestone clocks and their decisions. No I/O, no frameworks."""

from fixloop_sla.domain.clock import (
    DEFAULT_LATE_AFTER,
    ClockSignal,
    ClockState,
    ClockStop,
    InvalidClockError,
    MilestoneClock,
    SignalKind,
    Transition,
    clock_id_for,
    clock_ids_of,
    is_late,
)
from fixloop_sla.domain.instants import RESOLUTION, NaiveDatetimeError, to_instant
from fixloop_sla.domain.policy import ClockPolicy, Deadlines, InvalidPolicyError, SlaPolicy

__all__ = [
    "DEFAULT_LATE_AFTER",
    "RESOLUTION",
    "ClockPolicy",
    "ClockSignal",
    "ClockState",
    "ClockStop",
    "Deadlines",
    "InvalidClockError",
    "InvalidPolicyError",
    "MilestoneClock",
    "NaiveDatetimeError",
    "SignalKind",
    "SlaPolicy",
    "Transition",
    "clock_id_for",
    "clock_ids_of",
    "is_late",
    "to_instant",
]
