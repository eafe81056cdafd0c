"""SLA compliance figures and the clocks at risk (``fixloop_sla.domain.report``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fixloop_sla.domain.report import (
    ClosedCycle,
    CycleOutcome,
    CycleProfile,
    OpenCycle,
    OpenCycleState,
    ReportGroup,
    ReportRow,
    RiskReason,
    at_risk,
    summarize,
)

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
ACME = CycleProfile(contractor_id="ctr-a", equipment_class="hvac", priority="high")
OTHER = CycleProfile(contractor_id="ctr-b", equipment_class="lift", priority="normal")


def closed(
    work_order_id: str,
    outcome: CycleOutcome,
    *,
    clock: str = "arrival",
    cycle: int = 1,
    breached: bool | None = None,
    profile: CycleProfile = ACME,
    tenant: str = "acme",
) -> ClosedCycle:
    return ClosedCycle(
        work_order_id=work_order_id,
        tenant=tenant,
        clock=clock,
        cycle=cycle,
        outcome=outcome,
        breached=outcome is CycleOutcome.MISSED if breached is None else breached,
        started_at=NOW - 10 * HOUR,
        closed_at=NOW - HOUR,
        deadline=NOW - 2 * HOUR,
        profile=profile,
    )


def open_cycle(
    work_order_id: str,
    *,
    clock: str = "arrival",
    cycle: int = 1,
    state: OpenCycleState = OpenCycleState.RUNNING,
    deadline: datetime | None = None,
    warn_at: datetime | None = None,
    breached_at: datetime | None = None,
    predicted_at: datetime | None = None,
    profile: CycleProfile = ACME,
) -> OpenCycle:
    return OpenCycle(
        work_order_id=work_order_id,
        tenant="acme",
        clock=clock,
        cycle=cycle,
        state=state,
        started_at=NOW - 5 * HOUR,
        deadline=deadline,
        warn_at=warn_at,
        breached_at=breached_at,
        predicted_at=predicted_at,
        profile=profile,
    )


def only(rows: list[ReportRow]) -> ReportRow:
    [row] = rows
    return row


# --------------------------------------------------------------------------- summarize


def test_outcomes_are_counted_per_clock_and_compliance_excludes_cancelled() -> None:
    rows = summarize(
        [
            closed("wo-1", CycleOutcome.MET),
            closed("wo-2", CycleOutcome.MET),
            closed("wo-3", CycleOutcome.MET),
            closed("wo-4", CycleOutcome.MISSED),
            closed("wo-5", CycleOutcome.CANCELLED),
            closed("wo-6", CycleOutcome.CANCELLED),
            closed("wo-1", CycleOutcome.MET, clock="repair"),
        ],
        [],
        by=ReportGroup.NONE,
        now=NOW,
    )
    assert [(r.group, r.clock) for r in rows] == [("", "arrival"), ("", "repair")]
    arrival, repair = rows
    assert (arrival.met, arrival.missed, arrival.cancelled) == (3, 1, 2)
    assert arrival.compliance_percent == pytest.approx(75.0)
    assert arrival.ever_breached == 1
    assert (repair.met, repair.compliance_percent, repair.ever_breached) == (1, 100.0, 0)


def test_ever_breached_counts_the_pair_whatever_its_last_cycle_did() -> None:
    """Breached in cycle 1, met in cycle 2: one ever-breached pair, one met and one missed."""
    row = only(
        summarize(
            [
                closed("wo-1", CycleOutcome.MISSED, cycle=1),
                closed("wo-1", CycleOutcome.MET, cycle=2),
                closed("wo-1", CycleOutcome.MISSED, cycle=3),
                closed("wo-2", CycleOutcome.MET, breached=True),  # breached, then met
                closed("wo-3", CycleOutcome.CANCELLED, breached=True),
                closed("wo-4", CycleOutcome.MET),
            ],
            [],
            by=ReportGroup.NONE,
            now=NOW,
        )
    )
    assert (row.met, row.missed, row.cancelled) == (3, 2, 1)
    assert row.ever_breached == 3  # wo-1 once for its two breached cycles, wo-2, wo-3
    assert row.compliance_percent == pytest.approx(60.0)


def test_running_breached_cycles_count_against_compliance() -> None:
    row = only(
        summarize(
            [closed("wo-1", CycleOutcome.MET), closed("wo-2", CycleOutcome.MET)],
            [
                open_cycle("wo-3", deadline=NOW - HOUR),  # past its deadline, not recorded yet
                open_cycle("wo-4", deadline=NOW - HOUR, breached_at=NOW - HOUR),
                open_cycle("wo-5", deadline=NOW + HOUR),  # still in time: left out
                open_cycle("wo-6", deadline=NOW + HOUR, warn_at=NOW - HOUR),  # only warned
                open_cycle("wo-1", cycle=2, deadline=NOW - HOUR, breached_at=NOW - HOUR),
            ],
            by=ReportGroup.NONE,
            now=NOW,
        )
    )
    assert (row.met, row.missed, row.running_breached) == (2, 0, 3)
    assert row.ever_breached == 3
    assert row.compliance_percent == pytest.approx(40.0)


def test_a_paused_cycle_counts_as_breached_only_once_recorded() -> None:
    rows = summarize(
        [],
        [
            open_cycle("wo-1", state=OpenCycleState.PAUSED, deadline=NOW - HOUR),
            open_cycle(
                "wo-2",
                state=OpenCycleState.PAUSED,
                deadline=NOW - HOUR,
                breached_at=NOW - HOUR,
            ),
        ],
        by=ReportGroup.NONE,
        now=NOW,
    )
    assert only(rows).running_breached == 1


def test_an_empty_period_has_no_rows_and_nothing_judged_has_no_compliance() -> None:
    assert summarize([], [], by=ReportGroup.CONTRACTOR, now=NOW) == []
    assert (
        summarize([], [open_cycle("wo-1", deadline=NOW + HOUR)], by=ReportGroup.NONE, now=NOW) == []
    )
    row = only(
        summarize([closed("wo-1", CycleOutcome.CANCELLED)], [], by=ReportGroup.NONE, now=NOW)
    )
    assert row.cancelled == 1
    assert row.compliance_percent is None


@pytest.mark.parametrize(
    ("by", "groups"),
    [
        (ReportGroup.CONTRACTOR, ["", "ctr-a", "ctr-b"]),
        (ReportGroup.EQUIPMENT_CLASS, ["", "hvac", "lift"]),
        (ReportGroup.TENANT, ["acme", "globex"]),
        (ReportGroup.CLOCK, ["arrival"]),
    ],
)
def test_rows_are_grouped_then_per_clock(by: ReportGroup, groups: list[str]) -> None:
    rows = summarize(
        [
            closed("wo-1", CycleOutcome.MET),
            closed("wo-2", CycleOutcome.MISSED, profile=OTHER),
            closed("wo-3", CycleOutcome.MET, profile=CycleProfile(), tenant="globex"),
        ],
        [],
        by=by,
        now=NOW,
    )
    assert [r.group for r in rows] == groups
    assert {r.clock for r in rows} == {"arrival"}
    assert sum(r.met for r in rows) == 2
    assert sum(r.missed for r in rows) == 1


# --------------------------------------------------------------------------- at risk


def test_at_risk_picks_breached_predicted_warned_and_due_soon_by_time_left() -> None:
    cycles = [
        open_cycle("due-later", deadline=NOW + 5 * HOUR),  # not at risk
        open_cycle("due-soon", deadline=NOW + HOUR),
        open_cycle("warned", deadline=NOW + 3 * HOUR, warn_at=NOW - HOUR),
        open_cycle("late", deadline=NOW + 4 * HOUR, predicted_at=NOW + 6 * HOUR),
        open_cycle("on-time", deadline=NOW + 4 * HOUR, predicted_at=NOW + 3 * HOUR),
        open_cycle("overdue", deadline=NOW - 2 * HOUR, breached_at=NOW - 2 * HOUR),
        open_cycle("just-overdue", deadline=NOW - timedelta(minutes=5)),
        open_cycle("paused", state=OpenCycleState.PAUSED, deadline=NOW + HOUR, warn_at=NOW),
    ]
    rows = at_risk(cycles, now=NOW, within=2 * HOUR)
    assert [(r.cycle.work_order_id, r.reason) for r in rows] == [
        ("overdue", RiskReason.BREACHED),
        ("just-overdue", RiskReason.BREACHED),
        ("due-soon", RiskReason.DUE_SOON),
        ("warned", RiskReason.WARNED),
        ("late", RiskReason.PREDICTED_LATE),
    ]
    assert [r.time_left for r in rows] == [
        -2 * HOUR,
        -timedelta(minutes=5),
        HOUR,
        3 * HOUR,
        4 * HOUR,
    ]
    assert rows[-1].predicted_lateness == 2 * HOUR
    assert all(r.predicted_lateness is None for r in rows[:-1])


def test_at_risk_is_limited_to_the_most_urgent() -> None:
    cycles = [open_cycle(f"wo-{n}", deadline=NOW + n * timedelta(minutes=10)) for n in range(9)]
    rows = at_risk(cycles, now=NOW, within=HOUR, limit=3)
    assert [r.cycle.work_order_id for r in rows] == ["wo-0", "wo-1", "wo-2"]
    assert at_risk([], now=NOW, within=HOUR) == []


def test_a_breached_cycle_without_a_deadline_counts_from_its_breach() -> None:
    [row] = at_risk(
        [open_cycle("wo-1", state=OpenCycleState.PAUSED, breached_at=NOW - HOUR)],
        now=NOW,
        within=HOUR,
    )
    assert (row.reason, row.time_left) == (RiskReason.BREACHED, -HOUR)
