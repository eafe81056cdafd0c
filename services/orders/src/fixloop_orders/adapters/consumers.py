"""Kafka consumers of the orders service.

- ``fixloop.workorders.inbound.v1``: work orders submitted by external platforms, in CloudEvents
  binary or structured mode, validated strictly against the inbound contract, and the commands of
  those platforms on their own orders (cancel, verify or reject the completed work).
- the events topics of contractors, parts, SLA and notifications: what they report about a work
  order goes into its timeline (the requester's survey answer included); the requester's verdict
  on completed work (``fixloop.feedback.completion_answered.v1``, from notifications) takes the
  verify or reject step.

Use-case errors that can never succeed on a retry become dead letters with their reason:
``unauthorized`` (source platform not bound to the tenant), ``unknown-work-order`` and
``illegal-transition`` (a command the order's state does not allow).
"""

from __future__ import annotations

from typing import Any

from fixloop_orders.app.intake import WorkOrderIntake
from fixloop_orders.app.platform_commands import PlatformCommands
from fixloop_orders.app.timeline import TimelineRecorder
from fixloop_orders.app.timeline_facts import RECORDED_PAYLOADS
from fixloop_shared.contracts import (
    INBOUND_EVENT_TYPES,
    PLATFORM_COMMANDS,
    CompletionAnswered,
    EventPayload,
    WorkOrderSubmitted,
)
from fixloop_shared.envelope import Event
from fixloop_shared.kernel import EventConsumer, Handler, UnitOfWork
from fixloop_shared.topics import Topic

TIMELINE_TOPICS: tuple[Topic, ...] = (
    Topic.CONTRACTORS_EVENTS,
    Topic.PARTS_EVENTS,
    Topic.SLA_EVENTS,
    Topic.NOTIFICATIONS_EVENTS,
)
"""The topics whose events about work orders are recorded in their timelines."""

CONSUMED_TOPICS: tuple[Topic, ...] = (Topic.WORKORDERS_INBOUND, *TIMELINE_TOPICS)


def orders_consumers(
    intake: WorkOrderIntake, commands: PlatformCommands, recorder: TimelineRecorder
) -> list[EventConsumer]:
    """The orders service's consumers: intake and commands from external platforms, timelines."""

    async def on_submitted(event: Event[WorkOrderSubmitted], uow: UnitOfWork) -> None:
        await intake.submitted(event, uow)

    async def on_command(event: Event[Any], uow: UnitOfWork) -> None:
        await commands.handle(event, uow)

    inbound_handlers: dict[type[EventPayload], Handler] = {WorkOrderSubmitted: on_submitted}
    inbound_handlers.update(dict.fromkeys(PLATFORM_COMMANDS, on_command))

    async def on_work_order_event(event: Event[EventPayload], uow: UnitOfWork) -> None:
        await recorder.record(event, uow)

    async def on_completion_answered(event: Event[CompletionAnswered], uow: UnitOfWork) -> None:
        await commands.completion_answered(event, uow)

    timeline_handlers: dict[type[EventPayload], Handler] = dict.fromkeys(
        RECORDED_PAYLOADS, on_work_order_event
    )
    timeline_handlers[CompletionAnswered] = on_completion_answered
    return [
        EventConsumer(
            name="intake",
            topics=[Topic.WORKORDERS_INBOUND],
            handlers=inbound_handlers,
            registry=INBOUND_EVENT_TYPES,
            accept_structured=True,
            claim_scope=intake.claim_scope,
            checks=[intake.check_source],
            description=(
                "Work orders submitted by external platforms (CloudEvents binary or structured "
                "mode), and their commands on the orders they submitted (cancel, verify or "
                "reject the completed work). The source platform must be bound to the event's "
                "tenant."
            ),
        ),
        EventConsumer(
            name="timeline",
            topics=list(TIMELINE_TOPICS),
            handlers=timeline_handlers,
            preload=recorder.preload,
            description=(
                "Offers, parts reservations, SLA clocks, notifications and the requester's survey "
                "answers about a work order, recorded in its timeline; the requester's verdict on "
                "completed work (signed link) verifies or rejects it."
            ),
        ),
    ]


__all__ = ["CONSUMED_TOPICS", "TIMELINE_TOPICS", "orders_consumers"]
