"""The one registry of Kafka topic names. Services never spell a topic as a string literal."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum


class Topic(StrEnum):
    """Every topic Fixloop produces to or consumes from (per-platform inbound topics are named by
    :func:`inbound_topic`)."""

    WORKORDERS_INBOUND = "fixloop.workorders.inbound.v1"
    """The shared inbound topic, for unsecured clusters only: whoever can write it can claim any
    ``source``, so orders binds a platform there by the ``source`` it writes. On a secured cluster
    no platform gets write access to it; each writes its own :func:`inbound_topic`."""
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


PLATFORM_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
"""An external platform that has its own inbound topic (and Kafka principal) is named like a DNS
label: lower-case letters, digits and inner hyphens, at most 63 characters. The name is part of a
topic name and of a Kafka user name, so nothing else is allowed."""

_PLATFORM_NAME = re.compile(PLATFORM_NAME_PATTERN)
_INBOUND_PREFIX = "fixloop.workorders.inbound."
_INBOUND_SUFFIX = ".v1"


def is_platform_name(name: str) -> bool:
    """Whether ``name`` may name a platform's own inbound topic (:data:`PLATFORM_NAME_PATTERN`)."""
    return _PLATFORM_NAME.fullmatch(name) is not None


def inbound_topic(platform: str) -> str:
    """The inbound topic of one external platform: ``fixloop.workorders.inbound.<platform>.v1``.

    Only that platform's Kafka principal may write it, so the orders service takes the platform
    of every order it reads there from the topic, never from the ``source`` the sender wrote.
    """
    if not is_platform_name(platform):
        msg = (
            f"platform name {platform!r} is not allowed in a topic name "
            f"(expected {PLATFORM_NAME_PATTERN})"
        )
        raise ValueError(msg)
    return f"{_INBOUND_PREFIX}{platform}{_INBOUND_SUFFIX}"


def platform_of_inbound_topic(topic: str) -> str | None:
    """The platform whose own inbound topic ``topic`` is; None for any other topic (the shared
    ``fixloop.workorders.inbound.v1`` included)."""
    if not (topic.startswith(_INBOUND_PREFIX) and topic.endswith(_INBOUND_SUFFIX)):
        return None
    name = topic[len(_INBOUND_PREFIX) : -len(_INBOUND_SUFFIX)]
    return name if is_platform_name(name) else None


OPERATIONS_PRINCIPAL = "operations"
"""The Kafka principal of operators' commands: dead letters listed and replayed."""


def platform_principal(platform: str) -> str:
    """The Kafka principal (user) name of one external platform: ``platform-<name>``."""
    inbound_topic(platform)  # validates the name
    return f"platform-{platform}"


SERVICE_READS: dict[Service, tuple[Topic, ...]] = {
    Service.ORDERS: (
        Topic.WORKORDERS_INBOUND,
        Topic.WORKORDERS_EVENTS,
        Topic.CONTRACTORS_EVENTS,
        Topic.PARTS_EVENTS,
        Topic.SLA_EVENTS,
        Topic.NOTIFICATIONS_EVENTS,
    ),
    Service.CONTRACTORS: (
        Topic.WORKORDERS_EVENTS,
        Topic.CONTRACTORS_EVENTS,
        Topic.NOTIFICATIONS_EVENTS,
    ),
    Service.PARTS: (Topic.WORKORDERS_EVENTS,),
    Service.SLA: (Topic.WORKORDERS_EVENTS,),
    Service.NOTIFICATIONS: (
        Topic.WORKORDERS_EVENTS,
        Topic.CONTRACTORS_EVENTS,
        Topic.SLA_EVENTS,
    ),
}
"""The shared topics each service consumes (orders also reads every platform's inbound topic and
its own events topic, which its read cache follows). A service writes only its own events topic
and its own dead-letter topic."""


def topic_access(platforms: Iterable[str]) -> dict[str, dict[str, frozenset[str]]]:
    """Who may read and who may write which topic: the Kafka ACLs as data.

    Principal name -> ``{"read": topics, "write": topics}``, for the five services (``orders``,
    ``contractors``, ``parts``, ``sla``, ``notifications``), one ``platform-<name>`` per
    external platform in ``platforms``, and the operators' ``operations``. A service writes its
    own events topic and its own dead-letter topic; orders reads every platform's inbound topic;
    a platform writes only its own inbound topic and reads nothing. Consumer groups are named
    after the services. Operators (``fixloop dlq list|replay``) read every dead-letter topic and
    write back to any topic a dead letter can come from (every consumed topic, every platform's
    inbound topic, not the shared one), in no consumer group.
    """
    names = sorted(set(platforms))
    inbound = frozenset(inbound_topic(name) for name in names)
    access: dict[str, dict[str, frozenset[str]]] = {}
    for service in Service:
        read = {topic.value for topic in SERVICE_READS[service]}
        if service is Service.ORDERS:
            read |= inbound
        access[service.value] = {
            "read": frozenset(read),
            "write": frozenset({EVENTS_TOPIC_OF[service].value, dead_letter_topic(service)}),
        }
    for name in names:
        access[platform_principal(name)] = {
            "read": frozenset(),
            "write": frozenset({inbound_topic(name)}),
        }
    # Not the shared inbound topic: on it a platform is the event's own `source` (a secured
    # cluster lets nobody write it, so no dead letter comes from it there).
    consumed = {topic.value for topics in SERVICE_READS.values() for topic in topics}
    consumed.discard(Topic.WORKORDERS_INBOUND.value)
    access[OPERATIONS_PRINCIPAL] = {
        "read": frozenset(dead_letter_topic(service) for service in Service),
        "write": frozenset(consumed | inbound),
    }
    return access


def all_topics(platforms: Iterable[str] = ()) -> list[str]:
    """Every topic the platform needs, dead-letter topics included (for topic provisioning), and
    the inbound topic of each of ``platforms``."""
    return (
        [t.value for t in Topic]
        + [dead_letter_topic(s) for s in Service]
        + [inbound_topic(p) for p in sorted(set(platforms))]
    )
