"""Event contracts: strict validation at the edge, CloudEvents encoding, published schemas."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixloop_shared.contracts import (
    EVENT_TYPES,
    INBOUND_EVENT_TYPES,
    AssignmentOffered,
    WorkOrderReceived,
    WorkOrderSubmitted,
)
from fixloop_shared.contracts.types import DESCRIPTION_MAX_LENGTH, MAX_CLOCK_SKEW
from fixloop_shared.envelope import (
    EventEnvelope,
    binary_headers,
    decode_event,
    encode_payload,
    to_structured,
)
from fixloop_shared.errors import (
    MessageTooLarge,
    PoisonMessage,
    SchemaViolation,
    UndecodableMessage,
    UnknownEventType,
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


# --------------------------------------------------------------------------- spec-valid inbound

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
"""The time of receipt in these tests (the example orders were sent shortly before)."""


def decode_at(doc: dict[str, Any], now: datetime = NOW, registry: Any = INBOUND_EVENT_TYPES) -> Any:
    return decode_event(json.dumps(doc).encode(), [], registry, accept_structured=True, now=now)


def binary_of(doc: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The same CloudEvent in binary mode, only the attributes the structured form has."""
    data = doc.pop("data")
    headers = {f"ce_{name}": str(value) for name, value in doc.items() if name != "datacontenttype"}
    if "datacontenttype" in doc:
        headers["content-type"] = doc["datacontenttype"]
    return json.dumps(data).encode(), headers


def decode_binary(doc: dict[str, Any], now: datetime = NOW) -> Any:
    value, headers = binary_of(doc)
    return decode_event(value, headers, INBOUND_EVENT_TYPES, accept_structured=True, now=now)


def _check_string(schema: dict[str, Any], value: str, path: str) -> list[str]:
    problems: list[str] = []
    if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 10**9):
        problems.append(f"{path}: length {len(value)}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{path}: does not match the pattern")
    if schema.get("format") == "date-time":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            problems.append(f"{path}: not an RFC 3339 date-time")
        else:
            if moment.tzinfo is None:
                problems.append(f"{path}: date-time without offset")
    return problems


def _check(schema: dict[str, Any], value: Any, path: str = "$") -> list[str]:
    """A small JSON Schema (2020-12) validator for the keywords the attribute schema uses.

    An unknown keyword fails loudly, so the check can never pass by ignoring part of a schema.
    """
    annotations = {"title", "description", "default", "$id", "$schema", "examples"}
    known = {
        "type", "properties", "required", "additionalProperties", "anyOf", "const",
        "pattern", "minLength", "maxLength", "format",
    }  # fmt: skip
    unknown = set(schema) - annotations - known
    assert not unknown, f"the test's validator does not know {unknown}"
    problems: list[str] = []
    types: dict[str, type] = {
        "string": str, "object": dict, "null": type(None), "boolean": bool, "array": list
    }  # fmt: skip
    if "type" in schema and not isinstance(value, types[schema["type"]]):
        return [f"{path}: not a {schema['type']}"]
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: not {schema['const']!r}")
    if "anyOf" in schema and all(_check(s, value, path) for s in schema["anyOf"]):
        problems.append(f"{path}: matches none of anyOf")
    if isinstance(value, str):
        problems += _check_string(schema, value, path)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        problems += [
            f"{path}.{name}: required" for name in schema.get("required", ()) if name not in value
        ]
        for name, item in value.items():
            if name in properties:
                problems += _check(properties[name], item, f"{path}.{name}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{path}.{name}: not allowed")
    return problems


def test_every_example_order_matches_the_published_attribute_schema() -> None:
    schema = json.loads(
        (ROOT / "docs" / "contracts" / "cloudevents-attributes.schema.json").read_text()
    )
    files = sorted((ROOT / "examples" / "orders").glob("*.json"))
    assert len(files) >= 4
    for path in files:
        doc = json.loads(path.read_text())
        assert _check(schema, doc) == [], path.name
        _, headers = binary_of(doc)  # the same event in binary mode: attributes in headers
        attributes = {k.removeprefix("ce_"): v for k, v in headers.items() if k.startswith("ce_")}
        assert _check(schema, attributes) == [], path.name
    # and the schema is not a blank cheque
    bad = json.loads(files[0].read_text())
    bad["source"] = "field hub"
    bad["time"] = "2026-11-21T08:42:10"
    del bad["tenant"]
    assert len(_check(schema, bad)) == 3


@pytest.mark.parametrize(
    "source",
    [
        "https://fieldhub.example.com/orders",
        "urn:fixloop:fieldhub",
        "/x",
        "fieldhub",
        "http://[2001:db8::7]:8080/orders?region=eu#v1",
        "//partner.example/feeds/orders%20de",
    ],
)
def test_any_uri_reference_is_a_source_in_both_modes(source: str) -> None:
    doc = example()
    doc["source"] = source
    assert decode_at(doc).envelope.source == source
    assert decode_binary(example() | {"source": source}).envelope.source == source


def test_binary_mode_without_subject_correlation_or_time_fills_them_like_structured_mode() -> None:
    doc = example()
    del doc["time"]
    value, headers = binary_of(doc)
    assert "ce_subject" not in headers
    assert "ce_correlationid" not in headers
    event = decode_event(value, headers, INBOUND_EVENT_TYPES, accept_structured=True, now=NOW)
    assert event.envelope.subject == "FH-2026-118734"  # the order's external_id
    assert event.envelope.correlationid == event.envelope.id
    assert event.envelope.time == NOW  # no time: the time of receipt
    assert event.envelope.time.tzinfo is not None


def test_given_subject_and_correlation_id_are_kept() -> None:
    doc = example() | {"subject": "FH-2026-118734", "correlationid": "corr-1"}
    for event in (decode_at(dict(doc)), decode_binary(dict(doc))):
        assert event.envelope.correlationid == "corr-1"
        assert event.envelope.subject == "FH-2026-118734"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "Application/JSON",
        'application/vnd.fieldhub.order+json; charset="utf-8"',
    ],
)
def test_json_content_types_with_parameters_are_accepted(content_type: str) -> None:
    doc = example() | {"datacontenttype": content_type}
    assert decode_at(dict(doc)).payload.external_id == "FH-2026-118734"
    assert decode_binary(dict(doc)).payload.external_id == "FH-2026-118734"


@pytest.mark.parametrize(
    ("content_type", "fragment"),
    [
        ("text/plain", "the data must be JSON"),
        ("application/xml", "the data must be JSON"),
        ("application/json; charset=iso-8859-1", "must be UTF-8"),
        ("application/json; nonsense", "malformed media type parameter"),
    ],
)
def test_non_json_content_types_are_refused(content_type: str, fragment: str) -> None:
    for decoder in (decode_at, decode_binary):
        with pytest.raises(SchemaViolation) as info:
            decoder(example() | {"datacontenttype": content_type})
        assert info.value.message.startswith("datacontenttype: ")
        assert fragment in info.value.message


def test_extension_attributes_fixloop_does_not_use_are_ignored() -> None:
    doc = example() | {"partitionkey": "acme/FH-2026-118734", "comexampleflag": True}
    assert decode_at(dict(doc)).envelope.tenant == "acme"
    value, headers = binary_of(example())
    headers |= {"ce_partitionkey": "acme/FH-2026-118734", "x-app-header": "1"}
    assert decode_event(value, headers, INBOUND_EVENT_TYPES, now=NOW).envelope.tenant == "acme"


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("field hub", "character ' ' at position 5 is not allowed"),
        ("https://fieldhub.example.com/" + "x" * 10_000, "at most 256 characters"),
        ("1a:b", "not a URI-reference"),
        ("https://example.com/%zz", "not a URI-reference"),
        ("", "at least 1 character"),
        ("fieldhub\n", "character '\\n'"),
        ({"$ne": None}, "source: Input should be a valid string"),
    ],
)
def test_garbage_sources_are_refused_with_the_reason(source: Any, fragment: str) -> None:
    doc = example()
    doc["source"] = source
    with pytest.raises(SchemaViolation) as info:
        decode_at(doc)
    assert info.value.message.startswith("source: ")
    assert fragment in info.value.message


def test_reported_at_far_in_the_future_is_refused() -> None:
    doc = example()
    doc["data"]["reported_at"] = "3000-01-01T00:00:00Z"
    with pytest.raises(SchemaViolation) as info:
        decode_at(doc)
    assert "data.reported_at: Value error, lies in the future" in info.value.message


def test_event_and_payload_times_allow_a_small_clock_skew_and_no_more() -> None:
    def at(moment: datetime) -> dict[str, Any]:
        stamp = moment.isoformat()
        doc = example() | {"time": stamp}
        doc["data"]["reported_at"] = stamp
        return doc

    event = decode_at(at(NOW + MAX_CLOCK_SKEW))  # the sender's clock is a little ahead
    assert event.envelope.time == NOW + MAX_CLOCK_SKEW
    with pytest.raises(SchemaViolation) as info:
        decode_at(at(NOW + MAX_CLOCK_SKEW + timedelta(seconds=1)))
    assert "time: Value error, lies in the future" in info.value.message
    assert "data.reported_at: Value error, lies in the future" in info.value.message
    for ancient in ("1969-12-31T23:59:59Z", "0001-01-01T00:30:00+01:00"):
        with pytest.raises(SchemaViolation, match="must not be before 1970"):
            decode_at(example() | {"time": ancient})
    with pytest.raises(SchemaViolation, match="lies in the future"):
        decode_at(example() | {"time": "9999-12-31T23:59:59-01:00"})


def test_an_external_id_with_a_slash_is_the_subject_end_to_end() -> None:
    doc = example()
    doc["data"]["external_id"] = "FH/2026/118734"
    for event in (
        decode_at(json.loads(json.dumps(doc))),
        decode_binary(json.loads(json.dumps(doc))),
    ):
        assert event.envelope.subject == "FH/2026/118734"
        # ... and the subject survives being sent on in binary mode, as the published type says
        again = decode_event(
            encode_payload(event.payload), binary_headers(event.envelope), INBOUND_EVENT_TYPES
        )
        assert again.envelope.subject == "FH/2026/118734"
    doc["subject"] = "FH/2026/118734"
    assert decode_at(doc).envelope.subject == "FH/2026/118734"


def test_an_internal_event_with_an_unknown_field_is_read_and_the_field_ignored() -> None:
    offered = AssignmentOffered(
        work_order_id="wo-1",
        offer_id="offer-1",
        contractor_id="c-1",
        contractor_name="Berliner Klima Service GmbH",
        offered_at=NOW,
        expires_at=NOW + timedelta(hours=1),
    )
    body = json.loads(encode_payload(offered)) | {"added_in_a_later_release": {"x": 1}}
    envelope = EventEnvelope.new(offered, source="contractors", subject="wo-1", tenant="acme")
    headers = binary_headers(envelope) | {"ce_newextension": "1"}
    event = decode_event(json.dumps(body).encode(), headers, EVENT_TYPES)
    assert event.payload == offered

    received = decode_at(example()).payload
    received_body = json.loads(
        WorkOrderReceived(
            **received.model_dump(),
            work_order_id="wo-2",
            tenant="acme",
            source_platform="https://fieldhub.example.com/orders",
            received_at=NOW,
        ).model_dump_json()
    )
    received_body["site"]["address"]["floor"] = "3"  # unknown nested field
    received_body["priority_score"] = 7
    event = decode_event(
        json.dumps(received_body).encode(),
        binary_headers(EventEnvelope.new(received, source="orders", subject="wo-2", tenant="acme"))
        | {"ce_type": WorkOrderReceived.event_type},
        EVENT_TYPES,
    )
    assert isinstance(event.payload, WorkOrderReceived)
    assert event.payload.source_platform == "https://fieldhub.example.com/orders"
    assert "floor" not in event.payload.site.address.model_dump()


def test_an_inbound_order_with_an_unknown_field_is_refused_at_any_depth() -> None:
    doc = example()
    doc["data"]["site"]["address"]["floor"] = "3"
    doc["data"]["required_parts"][1]["colour"] = "red"
    doc["data"]["priority"] = "asap"
    with pytest.raises(SchemaViolation) as info:
        decode_at(doc)
    message = info.value.message
    assert "data.site.address.floor: Extra inputs are not permitted" in message
    assert "data.required_parts.1.colour: Extra inputs are not permitted" in message
    assert "data.priority: Input should be" in message  # every problem at once


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("source", {"$ne": None}),
        ("subject", {"$gt": ""}),
        ("id", {"$ne": None}),
        ("correlationid", ["$where"]),
        ("time", {"$gt": 0}),
        ("datacontenttype", {"$regex": "json"}),
    ],
)
def test_operator_shaped_attributes_are_data_of_the_wrong_type(attribute: str, value: Any) -> None:
    doc = example() | {attribute: value}
    with pytest.raises(SchemaViolation) as info:
        decode_at(doc)
    assert info.value.message.startswith(f"{attribute}: ")


def test_operator_looking_strings_stay_strings() -> None:
    doc = example() | {"id": '{"$ne": null}', "correlationid": "$where: 1"}
    doc["data"]["description"] = '{"$ne": null}'
    event = decode_at(doc)
    assert event.envelope.id == '{"$ne": null}'
    assert event.envelope.correlationid == "$where: 1"
    assert event.payload.description == '{"$ne": null}'


def test_other_cloudevents_are_refused_for_what_they_are() -> None:
    with pytest.raises(UnknownEventType):
        decode_at(example() | {"type": "com.example.order.created"})
    with pytest.raises(SchemaViolation, match="specversion"):
        decode_at(example() | {"specversion": "0.3"})
    doc = example()
    doc["data_base64"] = "e30="
    with pytest.raises(SchemaViolation, match="data_base64"):
        decode_at(doc)
    with pytest.raises(SchemaViolation, match="tenant"):
        decode_at({k: v for k, v in example().items() if k != "tenant"})
