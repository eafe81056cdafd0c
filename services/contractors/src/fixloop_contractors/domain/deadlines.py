"""Dispatch deadlines: how long an order may go untaken before people are told, and given up on.

An order's dispatch starts with its first offer. If no contractor has taken it ``escalate_after``
later, it is *escalated*: the operators' dispatch queue shows it (offers go on meanwhile). If still
nobody has taken it ``time_limit`` after the first offer, dispatch *gives up*: its open offers are
withdrawn and it is reported unfilled, whatever rounds are left. Emergencies have shorter times.

An escalation at or after the time limit is left out: giving up says more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from fixloop_contractors.domain.offers import Offer


class DeadlineStage(StrEnum):
    ESCALATE = "escalate"
    GIVE_UP = "give_up"


class DeadlineVerdict(StrEnum):
    """What a deadline that fell due means for its order now."""

    OVER = "over"
    """Nothing to do: the order was taken, found unfilled, cancelled or given to someone."""
    NOT_DUE = "not_due"
    """Its time is not up yet (this clock is behind the one that armed it)."""
    ESCALATE = "escalate"
    GIVE_UP = "give_up"


@dataclass(frozen=True, slots=True)
class DispatchDeadlines:
    """The times, from an order's first offer, to escalate it and to give up on it."""

    escalate_after: timedelta
    time_limit: timedelta
    emergency_escalate_after: timedelta
    emergency_time_limit: timedelta

    def __post_init__(self) -> None:
        for name in ("escalate_after", "time_limit", "emergency_escalate_after"):
            if getattr(self, name) <= timedelta(0):
                msg = f"{name} must be positive, not {getattr(self, name)}"
                raise ValueError(msg)
        if self.emergency_time_limit <= timedelta(0):
            msg = f"emergency_time_limit must be positive, not {self.emergency_time_limit}"
            raise ValueError(msg)

    def of(
        self,
        *,
        work_order_id: str,
        tenant: str,
        emergency: bool,
        since: datetime,
    ) -> DispatchDeadline:
        escalate = self.emergency_escalate_after if emergency else self.escalate_after
        limit = self.emergency_time_limit if emergency else self.time_limit
        give_up_at = since + limit
        escalate_at = since + escalate
        return DispatchDeadline(
            work_order_id=work_order_id,
            tenant=tenant,
            waiting_since=since,
            escalate_at=escalate_at if escalate_at < give_up_at else None,
            give_up_at=give_up_at,
        )


@dataclass(frozen=True, slots=True)
class DispatchDeadline:
    """One order's deadlines."""

    work_order_id: str
    tenant: str
    waiting_since: datetime
    """Its first offer."""
    escalate_at: datetime | None
    """None: the time limit comes first."""
    give_up_at: datetime

    def first_stage(self) -> tuple[DeadlineStage, datetime]:
        """The stage that falls due first, and when."""
        if self.escalate_at is not None:
            return DeadlineStage.ESCALATE, self.escalate_at
        return DeadlineStage.GIVE_UP, self.give_up_at


def deadline_verdict(
    offers: Sequence[Offer],
    *,
    unfilled: bool,
    stage: DeadlineStage,
    due_at: datetime,
    now: datetime,
) -> DeadlineVerdict:
    """What the deadline ``stage`` (due at ``due_at``) means for an order with ``offers``.

    Over once an offer was accepted (a job exists, whatever became of it), the order was found
    unfilled, or no offer is open (cancelled: every offer withdrawn). Otherwise the stage, once
    ``now`` has reached it.
    """
    if unfilled or any(o.job is not None for o in offers) or not any(o.is_open for o in offers):
        return DeadlineVerdict.OVER
    if now < due_at:
        return DeadlineVerdict.NOT_DUE
    return DeadlineVerdict(stage.value)


__all__ = [
    "DeadlineStage",
    "DeadlineVerdict",
    "DispatchDeadline",
    "DispatchDeadlines",
    "deadline_verdict",
]
