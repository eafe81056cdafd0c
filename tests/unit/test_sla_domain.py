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

from fixloop_shared.contracts import Milestone, SlaBreached, SlaMet, SlaStopped, SlaWarning
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
    clock_ids_of,
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


# -- cancellation: stopped without the milestone ------------------------------------------------

REASON = "customer withdrew the request"


@given(policy=policies(), started=aware_datetimes, data=st.data())
def test_a_cancellation_stops_a_running_clock_once_and_nothing_fires_afterwards(
    policy: ClockPolicy, started: datetime, data: st.DataObject
) -> None:
    clock = start(policy, started)
    cancelled_at = data.draw(offset_times(clock))
    now = max(to_instant(cancelled_at), clock.started_at)
    transition = clock.cancel(cancelled_at, reason=REASON, now=now, late_after=LATE_AFTER)
    after = transition.after
    stop_instant = to_instant(cancelled_at)
    assert transition.changed
    assert after.version == clock.version + 1
    assert (after.stopped_at, after.stop_reason) == (stop_instant, REASON)
    assert after.is_stopped
    assert after.next_fire_at is None
    kinds = [s.kind for s in transition.signals]
    if stop_instant < clock.due_at:
        assert after.state is ClockState.STOPPED
        assert kinds == [SignalKind.STOPPED]
        assert not after.breached
        assert not after.warned  # a warning not sent yet is never sent for a cancelled order
    else:
        # Missed before it was cancelled (the scheduler had not fired the breach yet).
        assert after.state is ClockState.BREACHED
        assert kinds == [SignalKind.BREACH, SignalKind.STOPPED]
    stopped = transition.signals[-1]
    assert (stopped.stopped_at, stopped.reason, stopped.fired_at) == (stop_instant, REASON, now)
    # Nothing fires on it afterwards, and no later stop, cancellation or redelivery changes it.
    for later in data.draw(st.lists(offset_times(clock), min_size=1, max_size=6)):
        assert not after.fire(later, late_after=LATE_AFTER).changed
        assert not after.stop(later, now=later).changed
        assert not after.cancel(later, reason="again", now=later).changed
    assert not after.cancel(cancelled_at, reason=REASON, now=now).changed


@given(policy=policies(), started=aware_datetimes, data=st.data())
def test_the_outcome_of_a_cancellation_does_not_depend_on_when_it_is_processed(
    policy: ClockPolicy, started: datetime, data: st.DataObject
) -> None:
    """A scheduler on time and one that lagged (or a backlog of events) end the same way."""
    clock = start(policy, started)
    cancelled_at = to_instant(data.draw(offset_times(clock)))
    assume(cancelled_at >= clock.started_at)
    # On time: every pass up to the cancellation, then the cancellation at once.
    passes = sorted(
        to_instant(t)
        for t in data.draw(st.lists(offset_times(clock), max_size=8))
        if clock.started_at <= to_instant(t) <= cancelled_at
    )
    on_time = clock
    for moment in [*passes, cancelled_at]:
        on_time = on_time.fire(moment, late_after=LATE_AFTER).after
    on_time = on_time.cancel(cancelled_at, reason=REASON, now=cancelled_at).after
    # Lagging: no pass at all, the cancellation processed much later.
    lag = timedelta(milliseconds=data.draw(st.integers(min_value=0, max_value=10**9)))
    lagging = clock.cancel(cancelled_at, reason=REASON, now=cancelled_at + lag).after
    assert on_time.state == lagging.state
    assert on_time.breached == lagging.breached == (cancelled_at >= clock.due_at)
    assert (on_time.stopped_at, on_time.stop_reason) == (lagging.stopped_at, lagging.stop_reason)


def test_a_cancellation_after_the_breach_records_the_stop_and_says_so() -> None:
    breached = start(DEFAULT_POLICY, T0).fire(T0 + timedelta(hours=3)).after
    now = T0 + timedelta(hours=4)
    transition = breached.cancel(T0 + timedelta(hours=3, minutes=30), reason=REASON, now=now)
    after = transition.after
    assert after.state is ClockState.BREACHED  # the breach stands
    assert after.breached_at == breached.breached_at
    assert (after.stopped_at, after.stop_reason) == (T0 + timedelta(hours=3, minutes=30), REASON)
    (stopped,) = transition.signals
    assert (stopped.kind, stopped.reason, stopped.fired_at) == (SignalKind.STOPPED, REASON, now)
    assert not after.cancel(now, reason=REASON, now=now).changed
    assert not after.stop(now, now=now).changed


def test_a_cancellation_of_a_clock_stopped_already_changes_nothing() -> None:
    clock = start(DEFAULT_POLICY, T0)
    now = T0 + timedelta(minutes=20)
    met = clock.stop(T0 + timedelta(minutes=10), now=now).after
    assert not met.cancel(now, reason=REASON, now=now).changed
    # Breached, then the milestone reached late: stopped already.
    late_stop = clock.fire(T0 + timedelta(hours=3)).after.stop(T0 + timedelta(hours=4), now=now)
    assert not late_stop.after.cancel(now, reason=REASON, now=now).changed
    # Cancelled first: the accepted assignment that comes later changes nothing either.
    cancelled = clock.cancel(now, reason=REASON, now=now).after
    assert cancelled.state is ClockState.STOPPED
    assert not cancelled.stop(now + timedelta(minutes=1), now=now + timedelta(minutes=1)).changed


def test_a_cancellation_after_the_warning_stops_the_clock_before_its_breach() -> None:
    warned = start(DEFAULT_POLICY, T0).fire(T0 + timedelta(minutes=61)).after
    assert warned.warned
    cancelled = warned.cancel(
        T0 + timedelta(minutes=70), reason=REASON, now=T0 + timedelta(minutes=71)
    )
    assert cancelled.after.state is ClockState.STOPPED
    assert [s.kind for s in cancelled.signals] == [SignalKind.STOPPED]
    assert cancelled.after.warned  # what went out stays recorded
    assert not cancelled.after.fire(T0 + timedelta(hours=5)).changed


def test_a_cancellation_needs_a_reason_and_only_a_cancelled_clock_has_one() -> None:
    clock = start(DEFAULT_POLICY, T0)
    with pytest.raises(InvalidClockError):
        clock.cancel(T0, reason="", now=T0)
    with pytest.raises(InvalidClockError):
        replace(clock, state=ClockState.STOPPED, stopped_at=T0)  # no reason
    with pytest.raises(InvalidClockError):
        replace(clock, stop_reason=REASON)  # running with a stop reason
    met = clock.stop(T0 + timedelta(minutes=1), now=T0 + timedelta(minutes=1)).after
    with pytest.raises(InvalidClockError):
        replace(met, stop_reason=REASON)  # met is the milestone reached, not a cancellation
    cancelled = clock.cancel(T0 + timedelta(minutes=1), reason=REASON, now=T0).after
    with pytest.raises(InvalidClockError):
        replace(cancelled, breached=True, breached_at=T0 + timedelta(hours=2))


def test_every_clock_of_a_work_order_has_a_known_id() -> None:
    ids = clock_ids_of("wo-1")
    assert len(ids) == len(set(ids)) == len(Milestone)
    assert clock_id_for("wo-1", DISPATCH) in ids
    assert set(ids).isdisjoint(clock_ids_of("wo-2"))


def test_cancellation_signals_become_valid_wire_events() -> None:
    clock = start(DEFAULT_POLICY, T0)
    stopped = clock.cancel(
        T0 + timedelta(minutes=30), reason=REASON, now=T0 + timedelta(minutes=31)
    )
    (event,) = sla_events(stopped.after, stopped.signals)
    assert isinstance(event, SlaStopped)
    assert (event.stopped_at, event.reason) == (T0 + timedelta(minutes=30), REASON)
    assert (event.clock_id, event.work_order_id, event.milestone) == (
        clock.clock_id,
        "wo-1",
        DISPATCH,
    )
    assert (event.started_at, event.warn_at, event.due_at) == (
        clock.started_at,
        clock.warn_at,
        clock.due_at,
    )
    overdue = clock.cancel(T0 + timedelta(hours=3), reason=REASON, now=T0 + timedelta(hours=3))
    breach, stop = sla_events(overdue.after, overdue.signals)
    assert isinstance(breach, SlaBreached)
    assert isinstance(stop, SlaStopped)
    assert stop.stopped_at == T0 + timedelta(hours=3)


class ClockLifecycleWithCancellations(ClockLifecycle):
    """The same interleavings, with cancellations (and their redeliveries) among the stops."""

    def __init__(self) -> None:
        super().__init__()
        self.cancellations: list[datetime] = []
        self.signals_when_stopped: int | None = None

    @rule(fraction=st.floats(min_value=-0.5, max_value=2.0))
    def order_cancelled(self, fraction: float) -> None:
        cancelled_at = to_instant(self.clock.started_at + self.span * fraction)
        self.stops.append(cancelled_at)
        self.cancellations.append(cancelled_at)
        self.apply(self.clock.cancel(cancelled_at, reason=REASON, now=self.now))

    @precondition(lambda self: bool(self.cancellations))
    @rule()
    def cancellation_redelivered(self) -> None:
        self.apply(self.clock.cancel(self.cancellations[-1], reason=REASON, now=self.now))

    def apply(self, transition: Transition) -> None:
        super().apply(transition)
        if SignalKind.STOPPED in [s.kind for s in transition.signals]:
            self.signals_when_stopped = len(self.signals)

    @invariant()
    def a_cancelled_clock_says_so_once_and_then_nothing(self) -> None:
        kinds = [s.kind for s in self.signals]
        assert kinds.count(SignalKind.STOPPED) <= 1
        assert not (SignalKind.MET in kinds and SignalKind.STOPPED in kinds)
        if self.signals_when_stopped is not None:
            assert len(self.signals) == self.signals_when_stopped
            assert self.clock.is_stopped
            assert self.clock.next_fire_at is None
        assert (self.clock.stop_reason is not None) == (SignalKind.STOPPED in kinds)
        assert (self.clock.state is ClockState.STOPPED) == (
            SignalKind.STOPPED in kinds and not self.clock.breached
        )


TestClockLifecycleWithCancellations = ClockLifecycleWithCancellations.TestCase
TestClockLifecycleWithCancellations.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None
)
