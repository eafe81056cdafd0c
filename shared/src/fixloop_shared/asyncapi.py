"""The AsyncAPI document of the platform, from the subscribers and publishers the services run.

Each service declares on its broker what it consumes (its subscribers, :mod:`fixloop_shared.bus`)
and, with :func:`declare_published_topics`, what it produces: its events topics and its
dead-letter topic. Services publish through the transactional outbox, not through FastStream
publishers, so those publishers are for the specification only and never send.

:func:`asyncapi_document` builds each service's FastStream specification and merges them into
one AsyncAPI 3 document: one channel per topic of :func:`fixloop_shared.topics.all_topics`
(dead-letter topics included), one message per event type with its payload schema, the
CloudEvents binary-mode ``ce_*`` headers and the correlation id's location
(``$message.header#/ce_correlationid``), and one operation per service and topic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Union

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from fixloop_shared.bus import DLQ_HEADER_PREFIX, Bus
from fixloop_shared.contracts import EVENTS_ON_TOPIC, ClosedContract, EventPayload
from fixloop_shared.envelope import JSON_CONTENT_TYPE
from fixloop_shared.topics import (
    EVENTS_TOPIC_OF,
    Service,
    Topic,
    all_topics,
    dead_letter_topic,
    platform_of_inbound_topic,
)

ASYNCAPI_VERSION = "3.0.0"
SERVER_NAME = "kafka"
SERVER_HOST = "kafka:9092"
CORRELATION_ID_LOCATION = "$message.header#/ce_correlationid"
DEAD_LETTER_MESSAGE = "fixloop.deadletter"
CLOUDEVENTS_HEADERS_SCHEMA = "CloudEventsHeaders"
DEAD_LETTER_HEADERS_SCHEMA = "DeadLetterHeaders"
CLOSED_PREFIX = "Inbound"
KAFKA_BINDING_VERSION = "0.4.0"

CLOUDEVENTS_HEADERS: dict[str, tuple[str, bool]] = {
    "ce_specversion": ("CloudEvents version: 1.0", True),
    "ce_id": ("event id (UUID); consumers are idempotent on it", True),
    "ce_type": ("event type, e.g. fixloop.workorder.received.v1", True),
    "ce_source": ("URI-reference of the producer: a Fixloop service or the source platform", True),
    "ce_time": ("RFC 3339 time with offset (UTC from Fixloop services)", False),
    "ce_subject": ("aggregate id: the work order id (inbound: the order's external id)", False),
    "ce_tenant": ("tenant the event belongs to (extension attribute)", True),
    "ce_correlationid": (
        "id shared by every event caused by one inbound order (extension attribute; "
        "inbound default: ce_id)",
        False,
    ),
    "content-type": (f"media type of the payload: {JSON_CONTENT_TYPE}", False),
    "traceparent": ("W3C trace context of the producing span", False),
}
"""Kafka headers of an event in CloudEvents binary mode: description, required."""

DEAD_LETTER_HEADERS: dict[str, str] = {
    "reason": "why: undecodable, schema-violation, unknown-type, unauthorized, too-large, "
    "handler-error or a domain error's reason",
    "exception": "qualified class name of the error",
    "message": "the error's message (at most 1000 characters)",
    "original_topic": "topic the record was read from",
    "original_partition": "its partition",
    "original_offset": "its offset",
    "original_timestamp": "its timestamp (ms since the epoch)",
    "original_size": "size of its value in bytes",
    "original_sha256": "SHA-256 of its value (hex)",
    "service": "service that dead-lettered it",
    "consumer_group": "consumer group that read it",
    "time": "when it was dead-lettered (RFC 3339)",
    "attempts": "how many times it was tried",
    "body": "present when the value was left out (too large), saying why",
    "headers": "present when the original headers were too large to copy",
}
"""The ``fixloop_dlq_*`` headers of a dead-lettered record (after the prefix)."""


def _payload_schema(models: Sequence[type[EventPayload]]) -> Any:
    if not models:
        return None
    if len(models) == 1:
        return models[0]
    return Union[tuple(models)]  # noqa: UP007 - a runtime union of the topic's payload models


def declare_published_topics(bus: Bus, topics: Sequence[Topic]) -> None:
    """Declare, for the specification only, what a service produces: each of ``topics`` (with
    the event types it carries) and the service's dead-letter topic.

    The outbox relay publishes the events, the dead-letter middleware the dead letters; these
    publishers are never used to send.
    """
    service = bus.dead_letters.service
    for topic in topics:
        models = EVENTS_ON_TOPIC[topic]
        types = ", ".join(model.event_type for model in models)
        bus.broker.publisher(
            topic.value,
            title=f"{service}:{topic.value}",
            description=f"Publishes {types} through the transactional outbox.",
            schema=_payload_schema(models),
        )
    bus.broker.publisher(
        dead_letter_topic(service),
        title=f"{service}:{dead_letter_topic(service)}",
        description=(
            f"Records the {service} consumers can never process, with the reason in "
            f"{DLQ_HEADER_PREFIX}* headers."
        ),
        schema=bytes,
    )


# --------------------------------------------------------------------------- the document


def asyncapi_document(
    brokers: Mapping[str, KafkaBroker], *, title: str, version: str, description: str
) -> dict[str, Any]:
    """One AsyncAPI 3 document from the brokers of the services (service name → broker)."""
    schemas = _event_schemas()
    schemas[CLOUDEVENTS_HEADERS_SCHEMA] = _cloudevents_headers()
    schemas[DEAD_LETTER_HEADERS_SCHEMA] = _dead_letter_headers()
    messages = _messages()

    operations: dict[str, Any] = {}
    for service, broker in sorted(brokers.items()):
        operations.update(_operations(service, broker))
    channels = {topic: _channel(topic) for topic in all_topics()}
    for operation in operations.values():
        topic = operation["channel"]["$ref"].rsplit("/", 1)[-1]
        if topic not in channels:
            msg = f"a service uses topic {topic!r}, which is not in the topic registry"
            raise ValueError(msg)

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": title, "version": version, "description": description},
        "defaultContentType": JSON_CONTENT_TYPE,
        "servers": {
            SERVER_NAME: {
                "host": SERVER_HOST,
                "protocol": "kafka",
                "description": "Fixloop event backbone (Apache Kafka); the host is an example",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _operations(service: str, broker: KafkaBroker) -> dict[str, Any]:
    """The operations of one service, from its FastStream specification."""
    spec = json.loads(AsyncAPI(broker, title=service).to_specification().to_json())
    found: dict[str, Any] = {}
    # By channel (each consumer's or publisher's own title): two consumers of one service on one
    # topic are numbered the same way in every run.
    for operation in sorted(
        spec.get("operations", {}).values(), key=lambda op: str(op["channel"]["$ref"])
    ):
        channel_name = operation["channel"]["$ref"].rsplit("/", 1)[-1]
        channel = spec["channels"][channel_name]
        topic = channel["address"]
        if platform_of_inbound_topic(topic) is not None:
            continue  # a platform's own topic: one per deployment, described on the shared one
        action = operation["action"]
        entry: dict[str, Any] = {
            "action": action,
            "title": channel_name,
            "channel": {"$ref": f"#/channels/{topic}"},
            "messages": [
                {"$ref": f"#/channels/{topic}/messages/{message}"}
                for message in _message_names(topic)
            ],
        }
        if channel.get("description"):
            entry["description"] = channel["description"]
        if operation.get("bindings"):
            entry["bindings"] = operation["bindings"]
        key = f"{service}.{action}.{topic}"
        count = 1
        while key in found:
            count += 1
            key = f"{service}.{action}.{topic}.{count}"
        found[key] = entry
    return found


def _dead_letter_topics() -> dict[str, Service]:
    return {dead_letter_topic(service): service for service in Service}


def _message_names(topic: str) -> list[str]:
    if topic in _dead_letter_topics():
        return [DEAD_LETTER_MESSAGE]
    return [model.event_type for model in EVENTS_ON_TOPIC.get(Topic(topic), ())]


def _channel(topic: str) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "address": topic,
        "description": _channel_description(topic),
        "messages": {
            name: {"$ref": f"#/components/messages/{name}"} for name in _message_names(topic)
        },
        "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING_VERSION}},
        "servers": [{"$ref": f"#/servers/{SERVER_NAME}"}],
    }
    return channel


def _channel_description(topic: str) -> str:
    dead_letters = _dead_letter_topics()
    if topic in dead_letters:
        return (
            f"Dead letters of the {dead_letters[topic]} service: each record its consumers can "
            f"never process, as it was read (value, key and headers, ce_* included), with why "
            f"in {DLQ_HEADER_PREFIX}* headers. Never silently dropped; replay after a fix."
        )
    if topic == Topic.WORKORDERS_INBOUND:
        return (
            "External platforms publish work orders here, keyed by tenant/source/external id. "
            "Structured mode: the whole CloudEvent as JSON (content-type "
            "application/cloudevents+json). Binary mode: ce_* headers + JSON payload. "
            "On a secured cluster each platform publishes the same events to its own topic "
            "fixloop.workorders.inbound.<platform>.v1 instead, which only its Kafka principal "
            "may write; there the platform is the topic's, whatever the event's source says. "
            "This shared topic is for unsecured clusters only; the platform is its source. "
            f"Rejected events go to {dead_letter_topic(Service.ORDERS)} with the reason in "
            "headers."
        )
    if topic == Topic.LOGISTICS_INBOUND:
        return "Inbound feed of external logistics platforms; no event type is defined on it yet."
    owner = next(service for service, events in EVENTS_TOPIC_OF.items() if events == topic)
    return f"Events of the {owner} service, keyed by work order id."


def _event_schemas() -> dict[str, Any]:
    """Payload schemas by model name; nested models of a closed (inbound) contract are closed
    too, so they are kept apart under ``Inbound<Name>``."""
    schemas: dict[str, Any] = {}
    models = {model for models in EVENTS_ON_TOPIC.values() for model in models}
    for model in sorted(models, key=lambda model: model.__name__):
        kind: type[Any] = model  # mypy cannot see that an event payload may also be closed
        prefix = CLOSED_PREFIX if issubclass(kind, ClosedContract) else ""
        schema = model.model_json_schema(
            mode="validation", ref_template=f"#/components/schemas/{prefix}{{model}}"
        )
        for name, definition in schema.pop("$defs", {}).items():
            _add(schemas, f"{prefix}{name}", definition)
        _add(schemas, model.__name__, schema)
    return schemas


def _add(schemas: dict[str, Any], name: str, schema: Any) -> None:
    if name in schemas and schemas[name] != schema:
        msg = f"two different schemas are both named {name!r}"
        raise ValueError(msg)
    schemas[name] = schema


def _messages() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    correlation = {
        "location": CORRELATION_ID_LOCATION,
        "description": "id shared by every event caused by one inbound order",
    }
    for model in {model for models in EVENTS_ON_TOPIC.values() for model in models}:
        messages[model.event_type] = {
            "name": model.event_type,
            "title": model.summary,
            "contentType": JSON_CONTENT_TYPE,
            "headers": {"$ref": f"#/components/schemas/{CLOUDEVENTS_HEADERS_SCHEMA}"},
            "correlationId": correlation,
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
        }
    messages[DEAD_LETTER_MESSAGE] = {
        "name": DEAD_LETTER_MESSAGE,
        "title": "A record that could not be processed",
        "headers": {"$ref": f"#/components/schemas/{DEAD_LETTER_HEADERS_SCHEMA}"},
        "correlationId": {
            **correlation,
            "description": "copied from the original record, when it had one",
        },
        "payload": {
            "description": "the original record's value, unchanged; empty when left out (see "
            f"{DLQ_HEADER_PREFIX}body)"
        },
    }
    return dict(sorted(messages.items()))


def _cloudevents_headers() -> dict[str, Any]:
    return {
        "type": "object",
        "title": "CloudEvents binary-mode headers",
        "description": "CloudEvents 1.0 attributes as Kafka headers (binary mode).",
        "properties": {
            name: {"type": "string", "description": text}
            for name, (text, _required) in CLOUDEVENTS_HEADERS.items()
        },
        "required": [name for name, (_text, required) in CLOUDEVENTS_HEADERS.items() if required],
    }


def _dead_letter_headers() -> dict[str, Any]:
    properties: dict[str, Any] = {
        f"{DLQ_HEADER_PREFIX}{name}": {"type": "string", "description": text}
        for name, text in DEAD_LETTER_HEADERS.items()
    }
    properties.update(
        {
            name: {"type": "string", "description": f"copied from the original record: {text}"}
            for name, (text, _required) in CLOUDEVENTS_HEADERS.items()
        }
    )
    return {
        "type": "object",
        "title": "Dead-letter headers",
        "description": "Why the record was dead-lettered, and the original record's headers.",
        "properties": properties,
        "required": [
            f"{DLQ_HEADER_PREFIX}{name}"
            for name in DEAD_LETTER_HEADERS
            if name not in {"body", "headers"}
        ],
    }


__all__ = [
    "CLOUDEVENTS_HEADERS",
    "CORRELATION_ID_LOCATION",
    "DEAD_LETTER_HEADERS",
    "asyncapi_document",
    "declare_published_topics",
]
