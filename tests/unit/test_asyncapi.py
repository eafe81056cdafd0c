"""The AsyncAPI document is generated from the services' own subscribers and publishers."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import yaml

from fixloop_shared.asyncapi import CLOUDEVENTS_HEADERS, CORRELATION_ID_LOCATION
from fixloop_shared.contracts import EVENT_TYPES
from fixloop_shared.schemas import asyncapi_document, service_brokers
from fixloop_shared.topics import Service, Topic, all_topics, dead_letter_topic


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(asyncapi_document())
    return doc


def test_every_registry_topic_and_every_dead_letter_topic_is_a_channel(
    document: dict[str, Any],
) -> None:
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {topic.value for topic in Topic} <= addresses
    assert {dead_letter_topic(service) for service in Service} <= addresses
    assert addresses == set(all_topics())


def test_every_service_declares_what_it_consumes_and_produces(document: dict[str, Any]) -> None:
    operations = document["operations"]
    for service in Service:
        sends = {
            op["channel"]["$ref"].rsplit("/", 1)[-1]
            for name, op in operations.items()
            if name.startswith(f"{service}.") and op["action"] == "send"
        }
        assert dead_letter_topic(service) in sends, service
        receives = [
            name
            for name, op in operations.items()
            if name.startswith(f"{service}.") and op["action"] == "receive"
        ]
        assert receives, service
    inbound = "#/channels/fixloop.workorders.inbound.v1/messages/"
    assert operations["orders.receive.fixloop.workorders.inbound.v1"]["messages"] == [
        {"$ref": inbound + event_type}
        for event_type in (
            "fixloop.workorder.submitted.v1",
            "fixloop.workorder.cancellation_requested.v1",
            "fixloop.workorder.completion_verified.v1",
            "fixloop.workorder.completion_rejected.v1",
        )
    ]


def test_every_event_type_is_a_message_with_cloudevents_headers_and_correlation_id(
    document: dict[str, Any],
) -> None:
    components = document["components"]
    headers = components["schemas"]["CloudEventsHeaders"]["properties"]
    assert set(CLOUDEVENTS_HEADERS) <= set(headers)
    for name in (
        "ce_specversion",
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_time",
        "ce_subject",
        "ce_tenant",
        "ce_correlationid",
        "content-type",
        "traceparent",
    ):
        assert name in headers
    messages = components["messages"]
    assert set(EVENT_TYPES) <= set(messages)
    for message in messages.values():
        assert message["correlationId"]["location"] == CORRELATION_ID_LOCATION
        assert message["headers"]["$ref"].startswith("#/components/schemas/")
    assert CORRELATION_ID_LOCATION == "$message.header#/ce_correlationid"
    assert "fixloop_dlq_reason" in components["schemas"]["DeadLetterHeaders"]["properties"]


def test_the_inbound_contract_is_closed_in_the_document(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["WorkOrderSubmitted"]["additionalProperties"] is False
    assert schemas["InboundSite"]["additionalProperties"] is False
    assert "additionalProperties" not in schemas["Site"]


def test_building_the_services_connects_to_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        msg = f"a connection was attempted at build time: {args}"
        raise AssertionError(msg)

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    brokers = service_brokers()
    assert set(brokers) == {service.value for service in Service}
