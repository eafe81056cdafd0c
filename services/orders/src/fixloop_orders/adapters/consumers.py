"""Kafka consumers of the orders service.

- ``fixloop.workorders.inbound.<platform>.v1``, one per platform bound in
  ``FIXLOOP_ORDERS_SOURCE_TENANTS`` (:func:`~fixloop_shared.topics.inbound_topic`): work orders
  submitted by that platform, in CloudEvents binary or structured mode, validated strictly against
  the inbound contract, and its commands on its own orders (cancel, verify or reject the completed
  work). Only that platform's Kafka principal may write the topic, so the platform is the topic's:
  an event's ``source`` is not trusted there. An event naming another source is handled as the
  topic platform's (its tenant binding, its orders, its claim scope) and the claimed source is
  logged; it can never act for the platform it names.
- ``fixloop.workorders.inbound.v1``, the shared inbound topic, for unsecured clusters only (where
  anyone may write any topic anyway): the same, with the platform taken from the event's
  ``source``. On a secured cluster no platform may write it.
- the events topics of contractors, parts, SLA and notifications: what they report about a work
  order goes into its timeline (the requester's survey answer included); the requester's verdict
  on completed work (``fixloop.feedback.completion_answered.v1``, from notifications) takes the
  verify or reject step.

Use-case errors that can never succeed on a retry become dead letters with their reason:
``unauthorized`` (source platform not bound to the tenant), ``unknown-work-order`` and
``illegal-transition`` (a command the order's state does not allow).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import Any

from fixloop_orders.app.intake import WorkOrderIntake, intake_consumer
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
from fixloop_shared.envelope import Event, EventEnvelope
from fixloop_shared.kernel import EventCheck, EventConsumer, Handler, UnitOfWork
from fixloop_shared.topics import Topic, inbound_topic

log = logging.getLogger(__name__)

TIMELINE_TOPICS: tuple[Topic, ...] = (
    Topic.CONTRACTORS_EVENTS,
    Topic.PARTS_EVENTS,
    Topic.SLA_EVENTS,
    Topic.NOTIFICATIONS_EVENTS,
)
"""The topics whose events about work orders are recorded in their timelines."""

CONSUMED_TOPICS: tuple[Topic, ...] = (Topic.WORKORDERS_INBOUND, *TIMELINE_TOPICS)
"""The shared topics the orders service consumes; each bound platform's inbound topic too."""


def consumed_topics(platforms: Iterable[str]) -> list[str]:
    """Every topic the orders service consumes with these platforms bound."""
    return [
        *(topic.value for topic in CONSUMED_TOPICS),
        *(inbound_topic(platform) for platform in sorted(set(platforms))),
    ]


def as_platform(event: Event[Any], platform: str) -> Event[Any]:
    """The event as the platform whose topic it was read from sent it: its ``source`` is that
    platform, whatever the sender wrote (a different claim is logged, once per event)."""
    claimed = event.envelope.source
    if claimed == platform:
        return event
    return dataclasses.replace(event, envelope=dataclasses.replace(event.envelope, source=platform))


def _log_claim(event: Event[Any], platform: str) -> None:
    claimed = event.envelope.source
    if claimed != platform:
        log.warning(
            "inbound event names another source than its topic's platform; handled as the "
            "platform's",
            extra={
                "platform": platform,
                "claimed_source": claimed[:256],
                "event_id": event.envelope.id,
                "event_type": event.envelope.type,
                "tenant": event.envelope.tenant,
            },
        )


def orders_consumers(
    intake: WorkOrderIntake,
    commands: PlatformCommands,
    recorder: TimelineRecorder,
    *,
    platforms: Iterable[str] = (),
) -> list[EventConsumer]:
    """The orders service's consumers: intake and commands from external platforms (the shared
    inbound topic and each of ``platforms``' own), timelines."""

    async def on_submitted(event: Event[WorkOrderSubmitted], uow: UnitOfWork) -> None:
        await intake.submitted(event, uow)

    async def on_command(event: Event[Any], uow: UnitOfWork) -> None:
        await commands.handle(event, uow)

    inbound_handlers: dict[type[EventPayload], Handler] = {WorkOrderSubmitted: on_submitted}
    inbound_handlers.update(dict.fromkeys(PLATFORM_COMMANDS, on_command))
    platform_consumers = [
        _platform_intake(platform, intake, inbound_handlers) for platform in sorted(set(platforms))
    ]

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
        *platform_consumers,
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


def _platform_intake(
    platform: str, intake: WorkOrderIntake, handlers: dict[type[EventPayload], Handler]
) -> EventConsumer:
    """The intake of one platform's own topic: every event is the platform's (see the module)."""

    def claim_scope(_envelope: EventEnvelope) -> str:
        return intake_consumer(intake.service, platform)

    def check_platform(event: Event[Any]) -> None:
        _log_claim(event, platform)
        intake.check_source(as_platform(event, platform))

    def bound(handler: Handler) -> Handler:
        async def handle(event: Event[Any], uow: UnitOfWork) -> None:
            await handler(as_platform(event, platform), uow)

        return handle

    check: EventCheck = check_platform
    return EventConsumer(
        name=f"intake-{platform}",
        topics=[inbound_topic(platform)],
        handlers={payload: bound(handler) for payload, handler in handlers.items()},
        registry=INBOUND_EVENT_TYPES,
        accept_structured=True,
        claim_scope=claim_scope,
        checks=[check],
        description=(
            f"Work orders and commands of the platform {platform}, on its own topic (only its "
            "Kafka principal may write it): every event there is the platform's, whatever its "
            "source says, and the platform must be bound to the event's tenant."
        ),
    )


__all__ = [
    "CONSUMED_TOPICS",
    "TIMELINE_TOPICS",
    "as_platform",
    "consumed_topics",
    "orders_consumers",
]
