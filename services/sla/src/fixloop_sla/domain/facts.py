"""What the sla service knows of a work order: its lifecycle facts and the state they project.

A fact is one lifecycle event, reduced to what the clocks look at. The projection
(:class:`OrderView`) is what the clocks' conditions are evaluated on after each fact: the order's
state, and whether it waits for the customer, has an exception nobody answered or acted on, or a
requester's question nobody replied to.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from fixloop_shared.vocabulary import ActorKind, DelayCause, WorkOrderState
from fixloop_sla.domain.instants import to_instant

S = WorkOrderState


class FactKind(StrEnum):
    """A lifecycle step (the ``<step>`` of ``fixloop.workorder.<step>.v1``)."""

    RECEIVED = "received"
    DISPATCHING = "dispatching"
    ASSIGNED = "assigned"
    OFFER_DECLINED = "offer_declined"
    SCHEDULED = "scheduled"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    AWAITING_PARTS = "awaiting_parts"
    PROGRESS = "progress_reported"
    DELAYED = "delayed"
    WORK_COMPLETED = "work_completed"
    VERIFIED = "verified"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    REOPENED = "reopened"
    ARCHIVED = "archived"
    COMMENT = "comment_added"


EXCEPTIONS = frozenset({FactKind.DELAYED, FactKind.REOPENED})
"""Facts that open an exception: a reported delay, rejected work."""
WORK_UNDER_WAY = frozenset({S.ON_SITE, S.AWAITING_PARTS})
"""States in which progress reports are due."""
CUSTOMER_BACK = frozenset(
    {
        FactKind.SCHEDULED,
        FactKind.EN_ROUTE,
        FactKind.ON_SITE,
        FactKind.PROGRESS,
        FactKind.WORK_COMPLETED,
    }
)
"""Facts that show the site can be worked on again after a wait for the customer."""


@dataclass(frozen=True)
class OrderFact:
    event_id: str
    kind: FactKind
    occurred_at: datetime
    state: WorkOrderState
    """The order's state after the fact."""
    actor: ActorKind
    order_version: int = 0
    """The order's version after the fact (1, 2, ...): breaks ties between equal times."""
    eta: datetime | None = None
    """When the milestone the fact is about is now expected (arrival, completion, parts)."""
    cause: DelayCause | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "occurred_at", to_instant(self.occurred_at))
        if self.eta is not None:
            object.__setattr__(self, "eta", to_instant(self.eta))

    @property
    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.occurred_at, self.order_version, self.event_id)


@dataclass(frozen=True)
class OrderView:
    """The order as the clocks see it after a fact."""

    state: WorkOrderState | None = None
    customer_wait: bool = False
    exception_unanswered: bool = False
    exception_unacted: bool = False
    question_open: bool = False

    def after(self, fact: OrderFact) -> OrderView:
        view = replace(self, state=fact.state)
        kind, actor = fact.kind, fact.actor
        if kind is FactKind.DELAYED:
            view = replace(view, customer_wait=fact.cause is DelayCause.ACCESS)
        elif kind in CUSTOMER_BACK or fact.state is S.CANCELLED:
            view = replace(view, customer_wait=False)
        if kind in EXCEPTIONS:
            view = replace(
                view,
                exception_unanswered=actor is not ActorKind.OPERATOR,
                exception_unacted=True,
            )
        else:
            if actor is ActorKind.OPERATOR:
                view = replace(view, exception_unanswered=False)
            if moves_the_job(self, fact):
                view = replace(view, exception_unacted=False)
        if kind is FactKind.COMMENT:
            if actor is ActorKind.REQUESTER:
                view = replace(view, question_open=True)
            elif actor in (ActorKind.OPERATOR, ActorKind.CONTRACTOR):
                view = replace(view, question_open=False)
        return view


def moves_the_job(before: OrderView, fact: OrderFact) -> bool:
    """An action on an exception: the job moved to another state, or was rescheduled/reassigned."""
    if fact.kind in EXCEPTIONS or fact.kind is FactKind.COMMENT:
        return False
    return fact.state != before.state or fact.kind in (FactKind.SCHEDULED, FactKind.ASSIGNED)
