"""CloudEvents 1.0 on Kafka: binary mode (``ce_*`` headers + JSON payload) and structured mode.

Everything decoded here is untrusted input: it is size-checked, parsed, and validated against the
strict contract models. Anything that fails raises a :class:`PoisonMessage` subclass, which the
bus dead-letters with its reason.

Any event that follows the CloudEvents 1.0 specification is read, in either mode (hand-parsed
following the spec's Kafka protocol binding; the validation is the pydantic contract, which is also
what ``docs/contracts`` publishes):

- ``source`` is a URI-reference (bounded, compared as an exact string);
- optional attributes may be absent: ``time`` is then the time the record was decoded (received),
  ``correlationid`` is the event ``id``, and ``subject`` is derived from the payload where the
  event type has that rule (``workorder.submitted``: its ``external_id``);
- ``datacontenttype`` (binary mode: the ``content-type`` header) is JSON, parameters allowed;
- extension attributes Fixloop does not use are ignored.

What Fixloop adds is the ``tenant`` extension (required), and what a platform may do is decided
by who it is (its ``source``), never by what it writes.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from fixloop_shared.contracts import EventPayload
from fixloop_shared.contracts.types import (
    NOW_CONTEXT_KEY,
    EventId,
    ExternalId,
    PastMoment,
    TenantId,
    UriReference,
)
from fixloop_shared.errors import (
    MessageTooLarge,
    PoisonMessage,
    SchemaViolation,
    UndecodableMessage,
    UnknownEventType,
)

P = TypeVar("P", bound=EventPayload)

SPEC_VERSION = "1.0"
JSON_CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
DEFAULT_MAX_MESSAGE_BYTES = 1_048_576


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


JSON_MEDIA_TYPE_PATTERN = (
    rf"^[ \t]*{_any_case('application')}/(?:[!#$&^_.+0-9A-Za-z-]+\+)?{_any_case('json')}"
    r"[ \t]*(?:;.*)?$"
)
"""``application/json`` or ``application/<anything>+json``, any case, parameters allowed."""

_JSON_MEDIA_TYPE = re.compile(JSON_MEDIA_TYPE_PATTERN, re.DOTALL)


def _json_media_type(value: str) -> str:
    if not _JSON_MEDIA_TYPE.fullmatch(value):
        msg = (
            "the data must be JSON: application/json or application/*+json "
            "(parameters such as charset=utf-8 are allowed)"
        )
        raise ValueError(msg)
    for parameter in value.split(";")[1:]:
        name, equals, param_value = parameter.partition("=")
        if not equals or not name.strip():
            msg = f"malformed media type parameter {parameter.strip()!r}"
            raise ValueError(msg)
        charset = param_value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in {"utf-8", "utf8"}:
            msg = f"JSON data must be UTF-8, not charset={charset!r}"
            raise ValueError(msg)
    return value


JsonMediaType = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128),
    AfterValidator(_json_media_type),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 128,
            "pattern": JSON_MEDIA_TYPE_PATTERN,
            "description": (
                "application/json or application/*+json, parameters allowed; a charset must be "
                "utf-8. Binary mode: the content-type header."
            ),
        }
    ),
]


def _document_data(schema: dict[str, Any]) -> None:
    properties = schema.setdefault("properties", {})
    properties["data"] = {
        "type": "object",
        "description": (
            "Structured mode only: the payload, valid against the JSON Schema of the event type "
            "(<type>.schema.json). Binary mode carries it as the record value."
        ),
    }


class CloudEventAttributes(BaseModel):
    """The CloudEvents 1.0 attributes Fixloop reads (binary: ``ce_*`` headers; or structured).

    Required: ``specversion``, ``id``, ``type``, ``source`` (a URI-reference) and the ``tenant``
    extension. Optional: ``time`` (default: the time of receipt), ``subject`` (default: derived
    from the payload, e.g. a submitted order's ``external_id``), ``correlationid`` (default: the
    ``id``), ``datacontenttype`` (JSON), ``dataschema``, ``traceparent``. Other extension
    attributes are allowed and ignored.
    """

    model_config = ConfigDict(
        strict=True,
        extra="ignore",
        frozen=True,
        title="Fixloop CloudEvents attributes",
        json_schema_extra=_document_data,
    )

    specversion: Literal["1.0"]
    id: EventId
    type: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="e.g. fixloop.workorder.submitted.v1; unknown types are refused (unknown-type)"
    )
    source: UriReference = Field(
        description=(
            "URI-reference of the producer: a Fixloop service, or the external platform "
            "(FIXLOOP_ORDERS_SOURCE_TENANTS binds it to the tenants it may submit for)"
        )
    )
    time: PastMoment | None = Field(
        default=None,
        description=(
            "RFC 3339 with an offset; at most 5 minutes after the time of receipt. "
            "Absent: the time of receipt."
        ),
    )
    subject: ExternalId | None = Field(
        default=None,
        description="The aggregate id; absent on inbound orders: the order's data.external_id",
    )
    tenant: TenantId
    correlationid: EventId | None = Field(default=None, description="Absent: the event id")
    datacontenttype: JsonMediaType | None = None
    dataschema: UriReference | None = None
    traceparent: str | None = Field(default=None, max_length=128)


@dataclass(frozen=True)
class EventEnvelope:
    """CloudEvents attributes of one event; ``time`` is always timezone-aware UTC."""

    id: str
    type: str
    source: str
    time: datetime
    subject: str
    tenant: str
    correlationid: str
    traceparent: str | None = None

    @classmethod
    def new(
        cls,
        payload: EventPayload,
        *,
        source: str,
        subject: str,
        tenant: str,
        correlationid: str | None = None,
        time: datetime | None = None,
    ) -> EventEnvelope:
        event_id = str(uuid.uuid4())
        return cls(
            id=event_id,
            type=payload.event_type,
            source=source,
            time=(time or datetime.now(UTC)).astimezone(UTC),
            subject=subject,
            tenant=tenant,
            correlationid=correlationid or event_id,
        )

    def with_traceparent(self, traceparent: str | None) -> EventEnvelope:
        return replace(self, traceparent=traceparent)


@dataclass(frozen=True)
class Event(Generic[P]):
    envelope: EventEnvelope
    payload: P
    partition: int | None = None
    """The Kafka partition the event was consumed from (None when it did not come from Kafka)."""


def binary_headers(envelope: EventEnvelope) -> dict[str, str]:
    """The Kafka headers of an event in CloudEvents binary mode."""
    headers = {
        "ce_specversion": SPEC_VERSION,
        "ce_id": envelope.id,
        "ce_type": envelope.type,
        "ce_source": envelope.source,
        "ce_time": envelope.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "ce_subject": envelope.subject,
        "ce_tenant": envelope.tenant,
        "ce_correlationid": envelope.correlationid,
        "content-type": JSON_CONTENT_TYPE,
    }
    if envelope.traceparent:
        headers["traceparent"] = envelope.traceparent
    return headers


def encode_payload(payload: EventPayload) -> bytes:
    return payload.model_dump_json().encode()


def to_structured(envelope: EventEnvelope, payload: EventPayload) -> dict[str, object]:
    """A whole CloudEvent as one JSON object (structured mode), e.g. for files and the CLI."""
    doc: dict[str, object] = {
        "specversion": SPEC_VERSION,
        "id": envelope.id,
        "type": envelope.type,
        "source": envelope.source,
        "time": envelope.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "subject": envelope.subject,
        "tenant": envelope.tenant,
        "correlationid": envelope.correlationid,
        "datacontenttype": JSON_CONTENT_TYPE,
        "data": json.loads(payload.model_dump_json()),
    }
    return doc


def _header_map(headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes | str]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    result: dict[str, str] = {}
    for key, raw in items:
        try:
            result[key] = raw.decode() if isinstance(raw, bytes) else str(raw)
        except UnicodeDecodeError as exc:
            msg = f"header {key!r} is not valid UTF-8"
            raise UndecodableMessage(msg) from exc
    return result


def _describe(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:10]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{prefix}{loc or '(root)'}: {err['msg']}")
    more = exc.error_count() - len(parts)
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)


def _validate_payload(
    event_type: str,
    data: bytes,
    registry: Mapping[str, type[EventPayload]],
    context: Mapping[str, object],
) -> EventPayload:
    model = registry.get(event_type)
    if model is None:
        msg = f"unknown event type {event_type!r}"
        raise UnknownEventType(msg)
    try:
        return model.model_validate_json(data, context=dict(context))
    except ValidationError as exc:
        raise SchemaViolation(_describe(exc, "data.")) from exc


def _attributes(raw: Mapping[str, object], context: Mapping[str, object]) -> CloudEventAttributes:
    try:
        return CloudEventAttributes.model_validate_json(json.dumps(raw), context=dict(context))
    except ValidationError as exc:
        raise SchemaViolation(_describe(exc)) from exc


def _subject(attrs: CloudEventAttributes, payload: EventPayload) -> str:
    if attrs.subject is not None:
        return attrs.subject
    rule = type(payload).subject_field
    derived = getattr(payload, rule, None) if rule else None
    if not isinstance(derived, str):
        msg = f"subject: Field required (nothing derives it for {attrs.type})"
        raise SchemaViolation(msg)
    return derived


def _event(
    raw_attrs: Mapping[str, object],
    data: bytes,
    registry: Mapping[str, type[EventPayload]],
    received: datetime,
) -> Event[EventPayload]:
    """Validate attributes and payload together, so a rejection names every problem at once."""
    context = {NOW_CONTEXT_KEY: received}
    problems: list[PoisonMessage] = []
    attrs: CloudEventAttributes | None = None
    payload: EventPayload | None = None
    try:
        attrs = _attributes(raw_attrs, context)
    except PoisonMessage as exc:
        problems.append(exc)
    event_type = raw_attrs.get("type")
    if isinstance(event_type, str):
        try:
            payload = _validate_payload(event_type, data, registry, context)
        except PoisonMessage as exc:
            problems.append(exc)
    if problems:
        first = problems[0]
        raise type(first)("; ".join(p.message for p in problems))
    assert attrs is not None  # noqa: S101 - no problems means both validated
    assert payload is not None  # noqa: S101
    envelope = EventEnvelope(
        id=attrs.id,
        type=attrs.type,
        source=attrs.source,
        time=(attrs.time or received).astimezone(UTC),
        subject=_subject(attrs, payload),
        tenant=attrs.tenant,
        correlationid=attrs.correlationid or attrs.id,
        traceparent=attrs.traceparent,
    )
    return Event(envelope, payload)


def decode_event(
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes | str],
    registry: Mapping[str, type[EventPayload]],
    *,
    accept_structured: bool = False,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    now: datetime | None = None,
) -> Event[EventPayload]:
    """Decode and validate one Kafka record; raises :class:`PoisonMessage` if it is unusable.

    ``now`` is the time of receipt (default: the current time): the ``time`` of an event without
    one, and what event and payload times are judged against (a small clock skew allowed).
    """
    if value is None:
        msg = "message has no value"
        raise UndecodableMessage(msg)
    if len(value) > max_bytes:
        msg = f"message is {len(value)} bytes, the limit is {max_bytes}"
        raise MessageTooLarge(msg)
    received = (now or datetime.now(UTC)).astimezone(UTC)
    hdrs = _header_map(headers)
    if "ce_specversion" in hdrs or "ce_type" in hdrs:
        raw_attrs: dict[str, object] = {
            key.removeprefix("ce_"): val for key, val in hdrs.items() if key.startswith("ce_")
        }
        content_type = next((v for k, v in hdrs.items() if k.lower() == "content-type"), None)
        if content_type is not None:
            raw_attrs.setdefault("datacontenttype", content_type)
        if "traceparent" in hdrs:
            raw_attrs.setdefault("traceparent", hdrs["traceparent"])
        return _event(raw_attrs, value, registry, received)
    if not accept_structured:
        msg = "missing CloudEvents binary-mode headers (ce_specversion, ce_type, ...)"
        raise SchemaViolation(msg)
    return _decode_structured(value, hdrs, registry, received)


def _decode_structured(
    value: bytes,
    hdrs: Mapping[str, str],
    registry: Mapping[str, type[EventPayload]],
    received: datetime,
) -> Event[EventPayload]:
    try:
        doc = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        msg = f"value is not valid JSON: {exc}"
        raise UndecodableMessage(msg[:300]) from exc
    if not isinstance(doc, dict):
        msg = "a structured-mode CloudEvent must be a JSON object"
        raise SchemaViolation(msg)
    if "data_base64" in doc:
        msg = "data_base64: the data must be JSON (data), not base64"
        raise SchemaViolation(msg)
    if "data" not in doc:
        msg = "data: field required"
        raise SchemaViolation(msg)
    data = doc.pop("data")
    if not isinstance(data, dict):
        msg = "data: must be a JSON object"
        raise SchemaViolation(msg)
    if "traceparent" in hdrs and "traceparent" not in doc:
        doc["traceparent"] = hdrs["traceparent"]
    return _event(doc, json.dumps(data).encode(), registry, received)
