"""The one registry of Kafka topic names. Services never spell a topic as a string literal."""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    """Every topic Fixloop produces to or consumes from."""

    WORKORDERS_INBOUND = "fixloop.workorders.inbound.v1"
    LOGISTICS_INBOUND = "fixloop.logistics.inbound.v1"
    WORKORDERS_EVENTS = "fixloop.workorders.events.v1"
    CONTRACTORS_EVENTS = "fixloop.contractors.events.v1"
    PARTS_EVENTS = "fixloop.parts.events.v1"
    SLA_EVENTS = "fixloop.sla.events.v1"
    NOTIFICATIONS_EVENTS = "fixloop.notifications.events.v1"


class Service(StrEnum):
    """The five services; each is also its Kafka consumer group and its CloudEvents source."""

    ORDERS = "orders"
    CONTRACTORS = "contractors"
    PARTS = "parts"
    SLA = "sla"
    NOTIFICATIONS = "notifications"


def dead_letter_topic(service: Service | str) -> str:
    """The dead-letter topic of one service's consumers (one consumer group per service)."""
    return f"fixloop.{service}.deadletter.v1"


EVENTS_TOPIC_OF: dict[Service, Topic] = {
    Service.ORDERS: Topic.WORKORDERS_EVENTS,
    Service.CONTRACTORS: Topic.CONTRACTORS_EVENTS,
    Service.PARTS: Topic.PARTS_EVENTS,
    Service.SLA: Topic.SLA_EVENTS,
    Service.NOTIFICATIONS: Topic.NOTIFICATIONS_EVENTS,
}


def all_topics() -> list[str]:
    """Every topic the platform needs, dead-letter topics included (for topic provisioning)."""
    return [t.value for t in Topic] + [dead_letter_topic(s) for s in Service]
