"""Event contracts: strict validation at the edge, CloudEvents encoding, published schemas."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixloop_shared.contracts import EVENT_TYPES, INBOUND_EVENT_TYPES, WorkOrderSubmitted
from fixloop_shared.contracts.types import DESCRIPTION_MAX_LENGTH
from fixloop_shared.envelope import (
    EventEnvelope,
    MessageTooLarge,
    PoisonMessage,
    SchemaViolation,
    UndecodableMessage,
    UnknownEventType,
    binary_headers,
    decode_event,
    encode_payload,
    to_structured,
)
from fixloop_shared.schemas import render

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "orders" / "hvac-breakdown-berlin.json"


def example() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return doc


def decode(doc: dict[str, Any]) -> WorkOrderSubmitted:
    event = decode_event(json.dumps(doc).encode(), [], INBOUND_EVENT_TYPES, accept_structured=True)
    assert isinstance(event.payload, WorkOrderSubmitted)
    return event.payload


def test_every_example_order_is_valid() -> None:
    files = sorted((ROOT / "examples" / "orders").glob("*.json"))
    assert len(files) >= 4
    for path in files:
        decode(json.loads(path.read_text()))


def test_structured_mode_fills_subject_and_correlation_from_the_order() -> None:
    event = decode_event(
        json.dumps(example()).encode(), [], INBOUND_EVENT_TYPES, accept_structured=True
    )
    assert event.envelope.subject == "FH-2026-118734"
    assert event.envelope.correlationid == event.envelope.id
    assert event.envelope.time == datetime(2026, 11, 21, 7, 42, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (
            lambda d: d.__setitem__("time", "2026-11-21T08:42:10"),
            "time: Input should have timezone",
        ),
        (
            lambda d: d["data"].__setitem__("reported_at", "2026-11-21T07:55:00"),
            "data.reported_at",
        ),
        (lambda d: d["data"].__setitem__("description", {"$ne": None}), "data.description"),
        (
            lambda d: d["data"].__setitem__("description", "x" * (DESCRIPTION_MAX_LENGTH + 1)),
            "at most 4000 characters",
        ),
        (lambda d: d["data"]["site"].__setitem__("timezone", "Mars/Olympus"), "time zone"),
        (lambda d: d["data"].__setitem__("tenant", "globex"), "Extra inputs are not permitted"),
        (lambda d: d["data"]["required_parts"][0].__setitem__("quantity", "2"), "quantity"),
        (lambda d: d.__setitem__("tenant", {"$gt": ""}), "tenant"),
        (lambda d: d["data"]["requester"].__setitem__("email", "not-an-address"), "email"),
    ],
)
def test_bad_inbound_orders_are_rejected_with_the_field_named(mutate: Any, fragment: str) -> None:
    doc = example()
    mutate(doc)
    with pytest.raises(SchemaViolation) as info:
        decode(doc)
    assert fragment in info.value.message


def test_undecodable_unknown_and_oversized_messages() -> None:
    with pytest.raises(UndecodableMessage):
        decode_event(b"{not json", [], INBOUND_EVENT_TYPES, accept_structured=True)
    doc = example()
    doc["type"] = "fixloop.workorder.exploded.v1"
    with pytest.raises(UnknownEventType):
        decode_event(json.dumps(doc).encode(), [], INBOUND_EVENT_TYPES, accept_structured=True)
    with pytest.raises(MessageTooLarge):
        decode_event(b"x" * 2000, [], INBOUND_EVENT_TYPES, accept_structured=True, max_bytes=1000)
    with pytest.raises(SchemaViolation):  # binary mode required on internal topics
        decode_event(json.dumps(example()).encode(), [], EVENT_TYPES)


def test_binary_mode_round_trip_keeps_every_attribute() -> None:
    payload = decode(example())
    envelope = EventEnvelope.new(
        payload, source="fieldhub", subject="FH-2026-118734", tenant="acme"
    ).with_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    headers = binary_headers(envelope)
    event = decode_event(encode_payload(payload), headers, EVENT_TYPES)
    assert event.envelope == envelope
    assert event.payload == payload
    again = decode_event(
        json.dumps(to_structured(envelope, payload)).encode(),
        [],
        EVENT_TYPES,
        accept_structured=True,
    )
    assert again.payload == payload


@given(st.binary(max_size=512))
def test_junk_bytes_only_ever_raise_poison_message(junk: bytes) -> None:
    for structured in (True, False):
        with pytest.raises(PoisonMessage):
            decode_event(junk, [], INBOUND_EVENT_TYPES, accept_structured=structured)


@given(st.text(max_size=200))
def test_any_text_in_a_string_field_is_data_never_an_operator(text: str) -> None:
    doc = example()
    doc["data"]["external_id"] = text
    try:
        payload = decode(doc)
    except PoisonMessage:
        return
    assert isinstance(payload.external_id, str)
    assert payload.external_id == text


def test_published_contracts_are_up_to_date() -> None:
    out = ROOT / "docs" / "contracts"
    files = render()
    committed = {p.name for p in out.glob("*")}
    assert committed == set(files), "run `make schemas`"
    for name, text in files.items():
        assert (out / name).read_text() == text, f"{name} is stale: run `make schemas`"
    assert len(files) == len(EVENT_TYPES) + 2
