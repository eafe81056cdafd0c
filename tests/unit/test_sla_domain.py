"""The sla service's pure domain: clock arithmetic, firing decisions, state transitions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from pydantic import ValidationError

from fixloop_shared.contracts import Milestone, SlaBreached, SlaMet, SlaWarning
from fixloop_sla.app.clocks import sla_events
from fixloop_sla.domain import (
    ClockPolicy,
    ClockSignal,
    ClockState,
    InvalidClockError,
    InvalidPolicyError,
    MilestoneClock,
    NaiveDatetimeError,
    SignalKind,
    SlaPolicy,
    Transition,
    clock_id_for,
    is_late,
    to_instant,
)
from fixloop_sla.settings import SlaSettings

DISPATCH = Milestone.DISPATCH_CONFIRMATION
MS = timedelta(milliseconds=1)
LATE_AFTER = timedelta(seconds=5)
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",  # 30-minute daylight-saving shift
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/St_Johns",
]

zones = st.sampled_from(ZONES).map(ZoneInfo)
aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 2),  # noqa: DTZ001 - hypothesis bounds are naive by contract
    max_value=datetime(2090, 12, 30),  # noqa: DTZ001
    timezones=zones,
)
# Whole milliseconds up to 30 days, the resolution of the store.
durations_ms = st.integers(min_value=2, max_value=30 * 24 * 3600 * 1000)


@st.composite
def policies(draw: st.DrawFn) -> ClockPolicy:
    target_ms = draw(durations_ms)
    warning_ms = draw(st.integers(min_value=1, max_value=target_ms - 1))
    return ClockPolicy(
        milestone=DISPATCH,
        target=timedelta(milliseconds=target_ms),
        warning_before=timedelta(milliseconds=warning_ms),
    )


def start(policy: ClockPolicy, at: datetime, work_order_id: str = "wo-1") -> MilestoneClock:
    return MilestoneClock.start(
        work_order_id=work_order_id,
        tenant="acme",
        correlation_id="corr-1",
        policy=policy,
        started_at=at,
    )


def offset_times(clock: MilestoneClock) -> st.SearchStrategy[datetime]:
    """Instants around a clock's life, in any time zone, biased to its exact moments."""
    span_ms = int((clock.due_at - clock.started_at) / MS)
    exact = st.sampled_from(
        [clock.started_at, clock.warn_at - MS, clock.warn_at, clock.due_at - MS, clock.due_at]
    )
    around = st.integers(min_value=-span_ms, max_value=3 * span_ms).map(
        lambda ms: clock.started_at + timedelta(milliseconds=ms)
    )
    return st.tuples(st.one_of(exact, around), zones).map(lambda pair: pair[0].astimezone(pair[1]))


DEFAULT_POLICY = ClockPolicy.of_seconds(DISPATCH, target_seconds=7200, warning_before_seconds=3600)
T0 = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)


# -- clock arithmetic ---------------------------------------------------------------------


@given(policy=policies(), started=aware_datetimes)
def test_deadlines_are_exact_durations_from_the_start_in_utc(
    policy: ClockPolicy, started: datetime
) -> None:
    clock = start(policy, started)
    assert clock.started_at == to_instant(started)
    assert abs(clock.started_at - started) < MS
    for moment in (clock.started_at, clock.warn_at, clock.due_at):
        assert moment.tzinfo is UTC
        assert moment.microsecond % 1000 == 0
    assert clock.due_at - clock.started_at == policy.target
    assert clock.due_at - clock.warn_at == policy.warning_before
    assert (clock.due_at - clock.started_at).total_seconds() == policy.target.total_seconds()
    assert clock.started_at < clock.warn_at < clock.due_at


@given(policy=policies(), started=aware_datetimes, other_zone=zones)
def test_the_same_instant_in_another_zone_gives_the_same_clock(
    policy: ClockPolicy, started: datetime, other_zone: ZoneInfo
) -> None:
    assert start(policy, started) == start(policy, started.astimezone(other_zone))


@pytest.mark.parametrize(
    ("local_start", "wall_clock_hours"),
    [
        # Spring forward: 02:00 -> 03:00 on 2024-03-31, so two real hours read as three.
        (datetime(2024, 3, 31, 1, 30, tzinfo=ZoneInfo("Europe/Berlin")), 3),
        # Fall back: 03:00 -> 02:00 on 2024-10-27, so two real hours read as one.
        (datetime(2024, 10, 27, 1, 30, tzinfo=ZoneInfo("Europe/Berlin")), 1),
        # Lord Howe shifts by 30 minutes.
        (datetime(2024, 4, 7, 1, 0, tzinfo=ZoneInfo("Australia/Lord_Howe")), 1.5),
    ],
)
def test_daylight_saving_changes_do_not_move_deadlines(
    local_start: datetime, wall_clock_hours: float
) -> None:
    clock = start(DEFAULT_POLICY, local_start)
    zone = local_start.tzinfo
    assert clock.due_at - clock.started_at == timedelta(hours=2)
    local_due = clock.due_at.astimezone(zone)
    wall = local_due.replace(tzinfo=None) - local_start.replace(tzinfo=None)
    assert wall == timedelta(hours=wall_clock_hours)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(NaiveDatetimeError):
        start(DEFAULT_POLICY, datetime(2024, 1, 1, 8, 0))  # noqa: DTZ001 - the point of the test
    with pytest.raises(NaiveDatetimeError):
        to_instant(datetime(2024, 1, 1))  # noqa: DTZ001


@given(
    target_ms=durations_ms,
    warning_ms=st.integers(min_value=-(10**9), max_value=10**10),
)
def test_a_policy_warns_strictly_between_start_and_deadline(
    target_ms: int, warning_ms: int
) -> None:
    target, warning = timedelta(milliseconds=target_ms), timedelta(milliseconds=warning_ms)
    if 0 < warning_ms < target_ms:
        ClockPolicy(DISPATCH, target=target, warning_before=warning)
    else:
        with pytest.raises(InvalidPolicyError):
            ClockPolicy(DISPATCH, target=target, warning_before=warning)


def test_policy_figures_must_be_positive_whole_milliseconds() -> None:
    with pytest.raises(InvalidPolicyError):
        ClockPolicy(DISPATCH, target=timedelta(0), warning_before=timedelta(0))
    with pytest.raises(InvalidPolicyError):
        ClockPolicy(
            DISPATCH, target=timedelta(seconds=10), warning_before=timedelta(microseconds=5)
        )
    with pytest.raises(InvalidPolicyError):
        SlaPolicy.of([DEFAULT_POLICY, DEFAULT_POLICY])
    assert SlaPolicy.of([DEFAULT_POLICY]).for_milestone(DISPATCH) is DEFAULT_POLICY
    assert SlaPolicy().for_milestone(DISPATCH) is None


def test_settings_default_to_two_hours_with_a_warning_one_hour_before() -> None:
    policy = SlaSettings().sla_policy().for_milestone(DISPATCH)
    assert policy == ClockPolicy(
        DISPATCH, target=timedelta(hours=2), warning_before=timedelta(hours=1)
    )


def test_settings_read_the_policy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIXLOOP_SLA_DISPATCH_TARGET_SECONDS", "900")
    monkeypatch.setenv("FIXLOOP_SLA_DISPATCH_WARNING_BEFORE_SECONDS", "300")
    policy = SlaSettings().sla_policy().for_milestone(DISPATCH)
    assert policy is not None
    assert policy.target == timedelta(minutes=15)
    assert policy.warning_before == timedelta(minutes=5)


@pytest.mark.parametrize(("target", "warning"), [(600, 600), (600, 601), (600, 0), (0, 1)])
def test_settings_reject_a_warning_not_before_the_deadline(target: int, warning: int) -> None:
    with pytest.raises(ValidationError):
        SlaSettings(dispatch_target_seconds=target, dispatch_warning_before_seconds=warning)


# -- what is due when -----------------------------------------------------------------------


@given(policy=policies(), started=aware_datetimes, data=st.data())
def test_a_fresh_clock_fires_exactly_what_is_due(
    policy: ClockPolicy, started: datetime, data: st.DataObject
) -> None:
    clock = start(policy, started)
    now = data.draw(offset_times(clock))
    at = to_instant(now)
    transition = clock.fire(now, late_after=LATE_AFTER)
    kinds = [s.kind for s in transition.signals]
    if at < clock.warn_at:
        assert kinds == []
        assert not transition.changed
        assert transition.after.next_fire_at == clock.warn_at
    elif at < clock.due_at:
        assert kinds == [SignalKind.WARNING]
        assert transition.after.warned
        assert transition.after.warned_at == at
        assert transition.after.state is ClockState.RUNNING
        assert transition.after.next_fire_at == clock.due_at
    else:
        # Already past the deadline: the breach goes out, the stale warning is suppressed.
        assert kinds == [SignalKind.BREACH]
        assert transition.after.state is ClockState.BREACHED
        assert transition.after.warning_suppressed
        assert not transition.after.warned
        assert transition.after.next_fire_at is None


@given(policy=policies(), started=aware_datetimes, data=st.data())
def test_firing_is_at_most_once_whatever_the_order_of_passes(
    policy: ClockPolicy, started: datetime, data: st.DataObject
) -> None:
    clock = start(policy, started)
    passes = data.draw(st.lists(offset_times(clock), min_size=1, max_size=12))
    signals: list[ClockSignal] = []
    for now in passes:
        transition = clock.fire(now, late_after=LATE_AFTER)
        assert transition.changed == bool(transition.signals)
        if transition.changed:
            assert transition.after.version == clock.version + 1
        signals.extend(transition.signals)
        clock = transition.after
    kinds = [s.kind for s in signals]
    assert kinds.count(SignalKind.WARNING) <= 1
    assert kinds.count(SignalKind.BREACH) <= 1
    assert kinds in (
        [],
        [SignalKind.WARNING],
        [SignalKind.BREACH],
        [
            SignalKind.WARNING,
            SignalKind.BREACH,
        ],
    )
    for signal in signals:
        moment = clock.warn_at if signal.kind is SignalKind.WARNING else clock.due_at
        assert signal.fired_at >= moment
    # The breach fires on the first pass at or after the deadline, and only then.
    past_deadline = [to_instant(t) for t in passes if to_instant(t) >= clock.due_at]
    assert (SignalKind.BREACH in kinds) == bool(past_deadline)
    assert clock.warning_suppressed == (SignalKind.BREACH in kinds and not clock.warned)


@given(
    moment=aware_datetimes,
    delay_ms=st.integers(min_value=0, max_value=10**8),
    late_after_ms=st.integers(min_value=0, max_value=10**7),
)
def test_late_means_fired_more_than_the_tolerance_after_its_moment(
    moment: datetime, delay_ms: int, late_after_ms: int
) -> None:
    fired = moment + timedelta(milliseconds=delay_ms)
    assert is_late(moment, fired, timedelta(milliseconds=late_after_ms)) == (
        delay_ms > late_after_ms
    )


@given(policy=policies(), started=aware_datetimes, data=st.data())
def test_catch_up_firings_after_downtime_are_flagged_late(
    policy: ClockPolicy, started: datetime, data: st.DataObject
) -> None:
    clock = start(policy, started)
    now = data.draw(offset_times(clock))
    assume(to_instant(now) >= clock.warn_at)
    (signal,) = clock.fire(now, late_after=LATE_AFTER).signals
    moment = clock.warn_at if signal.kind is SignalKind.WARNING else clock.due_at
    assert signal.late == (to_instant(now) - moment > LATE_AFTER)


def test_restart_scenarios_on_the_default_policy() -> None:
    clock = start(DEFAULT_POLICY, T0)
    # Down from before warn_at until between warn_at and due_at: a late warning, then the breach.
    warned = clock.fire(T0 + timedelta(minutes=90)).after
    assert warned.warned
    (breach,) = warned.fire(T0 + timedelta(hours=2, seconds=1)).signals
    assert breach.kind is SignalKind.BREACH
    assert not breach.late
    # Down past due_at: one late breach, no warning.
    (only,) = clock.fire(T0 + timedelta(hours=8)).signals
    assert only.kind is SignalKind.BREACH
    assert only.late
    # On time: not late.
    (on_time,) = clock.fire(T0 + timedelta(hours=1, milliseconds=400)).signals
    assert not on_time.late


# -- stops and state transitions --------------------------------------------------------------


@given(policy=policies(), started=aware_datetimes, data=st.data())
def test_a_stop_before_the_deadline_meets_the_milestone(
    policy: ClockPolicy, started: datetime, data: st.DataObject
) -> None:
    clock = start(policy, started)
    stopped_at = data.draw(offset_times(clock))
    now = data.draw(offset_times(clock))
    stop_instant = to_instant(stopped_at)
    transition = clock.stop(stopped_at, now=now, late_after=LATE_AFTER)
    after = transition.after
    assert after.stopped_at == stop_instant
    if stop_instant < clock.due_at:
        assert after.state is ClockState.MET
        assert [s.kind for s in transition.signals] == [SignalKind.MET]
        assert transition.signals[0].stopped_at == stop_instant
        assert not after.breached
    else:
        # Reached at or after the deadline (inclusive): the milestone was missed.
        assert after.state is ClockState.BREACHED
        assert [s.kind for s in transition.signals] == [SignalKind.BREACH]
    assert after.next_fire_at is None
    # Nothing more ever fires or stops it.
    later = data.draw(offset_times(clock))
    assert not after.fire(later).changed
    assert not after.stop(later, now=later).changed


def test_a_stop_after_the_breach_is_recorded_without_a_signal() -> None:
    breached = start(DEFAULT_POLICY, T0).fire(T0 + timedelta(hours=3)).after
    assert breached.state is ClockState.BREACHED
    # Even a stop whose event time is before the deadline: the breach already went out.
    for stopped_at in (T0 + timedelta(minutes=30), T0 + timedelta(hours=4)):
        transition = breached.stop(stopped_at, now=T0 + timedelta(hours=4))
        assert transition.changed
        assert transition.signals == ()
        assert transition.after.state is ClockState.BREACHED
        assert transition.after.stopped_at == stopped_at
        assert transition.after.version == breached.version + 1
        assert not transition.after.stop(T0, now=T0 + timedelta(hours=5)).changed


def test_a_warning_is_not_sent_once_the_milestone_is_met() -> None:
    met = start(DEFAULT_POLICY, T0).stop(T0 + timedelta(minutes=5), now=T0 + timedelta(hours=1))
    assert met.after.state is ClockState.MET
    assert not met.after.fire(T0 + timedelta(hours=1, minutes=30)).changed


def test_breach_is_inclusive_at_the_deadline() -> None:
    clock = start(DEFAULT_POLICY, T0)
    due = T0 + timedelta(hours=2)
    assert clock.stop(due - MS, now=due).after.state is ClockState.MET
    assert clock.stop(due, now=due).after.state is ClockState.BREACHED
    assert [s.kind for s in clock.fire(due - MS).signals] == [SignalKind.WARNING]
    assert [s.kind for s in clock.fire(due).signals] == [SignalKind.BREACH]


class ClockLifecycle(RuleBasedStateMachine):
    """Any interleaving of scheduler passes, stops and redeliveries, on a monotonic clock."""

    def __init__(self) -> None:
        super().__init__()
        self.signals: list[ClockSignal] = []
        self.stops: list[datetime] = []

    @initialize(policy=policies(), started=aware_datetimes)
    def start_clock(self, policy: ClockPolicy, started: datetime) -> None:
        self.clock = start(policy, started)
        self.now = self.clock.started_at
        self.span = self.clock.due_at - self.clock.started_at

    @rule(fraction=st.floats(min_value=0, max_value=0.8))
    def time_passes(self, fraction: float) -> None:
        self.now += self.span * fraction

    @rule()
    def scheduler_pass(self) -> None:
        self.apply(self.clock.fire(self.now, late_after=LATE_AFTER))

    @rule(fraction=st.floats(min_value=-0.5, max_value=2.0))
    def milestone_reached(self, fraction: float) -> None:
        stopped_at = self.clock.started_at + self.span * fraction
        self.stops.append(to_instant(stopped_at))
        self.apply(self.clock.stop(stopped_at, now=self.now, late_after=LATE_AFTER))

    @precondition(lambda self: bool(self.stops))
    @rule()
    def stop_redelivered(self) -> None:
        self.apply(self.clock.stop(self.stops[-1], now=self.now, late_after=LATE_AFTER))

    @rule()
    def stale_copy_loses(self) -> None:
        # A second pod decided on the same version: only one of the two saves can win.
        before = self.clock
        first = before.fire(self.now, late_after=LATE_AFTER)
        second = before.fire(self.now, late_after=LATE_AFTER)
        assert first == second
        self.apply(first)
        if first.changed:
            assert second.before.version != self.clock.version

    def apply(self, transition: Transition) -> None:
        assert transition.before == self.clock
        if transition.changed:
            assert transition.after.version == self.clock.version + 1
        else:
            assert transition.signals == ()
        self.signals.extend(transition.signals)
        self.clock = transition.after

    @invariant()
    def each_signal_at_most_once(self) -> None:
        kinds = [s.kind for s in self.signals]
        for kind in SignalKind:
            assert kinds.count(kind) <= 1
        assert not (SignalKind.MET in kinds and SignalKind.BREACH in kinds)
        if SignalKind.WARNING in kinds and SignalKind.BREACH in kinds:
            assert kinds.index(SignalKind.WARNING) < kinds.index(SignalKind.BREACH)

    @invariant()
    def state_matches_what_was_said(self) -> None:
        clock = self.clock
        kinds = [s.kind for s in self.signals]
        assert clock.warned == (SignalKind.WARNING in kinds)
        assert clock.breached == (SignalKind.BREACH in kinds)
        assert (clock.state is ClockState.MET) == (SignalKind.MET in kinds)
        if self.stops:
            assert clock.stopped_at == self.stops[0]  # the first stop wins
        if clock.state is ClockState.RUNNING:
            assert clock.next_fire_at in (clock.warn_at, clock.due_at)
        else:
            assert clock.next_fire_at is None


TestClockLifecycle = ClockLifecycle.TestCase
TestClockLifecycle.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


# -- identity, consistency and wire events ---------------------------------------------------


@given(a=st.text(min_size=1, max_size=40), b=st.text(min_size=1, max_size=40))
def test_clock_ids_are_deterministic_per_work_order(a: str, b: str) -> None:
    assert clock_id_for(a, DISPATCH) == clock_id_for(a, DISPATCH)
    assert (clock_id_for(a, DISPATCH) == clock_id_for(b, DISPATCH)) == (a == b)


def test_contradictory_clock_facts_are_rejected() -> None:
    clock = start(DEFAULT_POLICY, T0)
    with pytest.raises(InvalidClockError):
        replace(clock, warned=True)  # warned without warned_at
    with pytest.raises(InvalidClockError):
        replace(clock, warn_at=clock.due_at)
    with pytest.raises(InvalidClockError):
        replace(clock, state=ClockState.MET)  # met without a stop
    with pytest.raises(InvalidClockError):
        replace(clock, stopped_at=T0)  # running yet stopped


def test_signals_become_valid_wire_events() -> None:
    clock = start(DEFAULT_POLICY, datetime(2024, 5, 6, 10, 0, tzinfo=ZoneInfo("Europe/Berlin")))
    warned = clock.fire(T0 + timedelta(hours=1, minutes=1))
    breached = warned.after.fire(T0 + timedelta(hours=9))
    met = clock.stop(T0 + timedelta(minutes=10), now=T0 + timedelta(minutes=11))
    (warning,) = sla_events(warned.after, warned.signals)
    (breach,) = sla_events(breached.after, breached.signals)
    (met_event,) = sla_events(met.after, met.signals)
    assert isinstance(warning, SlaWarning)
    assert warning.warn_at == T0 + timedelta(hours=1)
    assert warning.fired_at == T0 + timedelta(hours=1, minutes=1)
    assert warning.late
    assert isinstance(breach, SlaBreached)
    assert breach.due_at == T0 + timedelta(hours=2)
    assert breach.late
    assert isinstance(met_event, SlaMet)
    assert met_event.stopped_at == T0 + timedelta(minutes=10)
    for event in (warning, breach, met_event):
        assert event.clock_id == clock.clock_id
        assert event.started_at == T0
        assert event.milestone is DISPATCH
