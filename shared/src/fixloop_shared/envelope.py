"""CloudEvents 1.0 on Kafka: binary mode (``ce_*`` headers + JSON payload) and structured mode.

Everything decoded here is untrusted input: it is size-checked, parsed, and validated against the
strict contract models. Anything that fails raises a :class:`PoisonMessage` subclass, which the
bus dead-letters with its reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Generic, Literal, TypeVar

from pydantic import AwareDatetime, Field, ValidationError

from fixloop_shared.contracts.events import Contract, EventPayload
from fixloop_shared.contracts.types import Identifier, TenantId

P = TypeVar("P", bound=EventPayload)

SPEC_VERSION = "1.0"
JSON_CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
DEFAULT_MAX_MESSAGE_BYTES = 1_048_576


class PoisonMessage(Exception):  # noqa: N818 - the domain word for a message that can never succeed
    """A message that can never be processed; it goes to the dead-letter topic with ``reason``."""

    reason = "poison"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UndecodableMessage(PoisonMessage):
    reason = "undecodable"


class SchemaViolation(PoisonMessage):
    reason = "schema-violation"


class UnknownEventType(PoisonMessage):
    reason = "unknown-type"


class UnauthorizedSource(PoisonMessage):
    reason = "unauthorized"


class MessageTooLarge(PoisonMessage):
    reason = "too-large"


class CloudEventAttributes(Contract):
    """The CloudEvents attributes Fixloop requires (``tenant`` and ``correlationid`` extensions)."""

    specversion: Literal["1.0"]
    id: Identifier
    type: str = Field(pattern=r"^fixloop\.[a-z_]+\.[a-z_]+\.v[0-9]+$", max_length=128)
    source: str = Field(pattern=r"^[a-z0-9][a-z0-9./-]{0,127}$")
    time: AwareDatetime
    subject: Identifier
    tenant: TenantId
    correlationid: Identifier
    datacontenttype: Literal["application/json"] | None = None
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
    event_type: str, data: bytes, registry: Mapping[str, type[EventPayload]]
) -> EventPayload:
    model = registry.get(event_type)
    if model is None:
        msg = f"unknown event type {event_type!r}"
        raise UnknownEventType(msg)
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise SchemaViolation(_describe(exc, "data.")) from exc


def _attributes(raw: Mapping[str, object]) -> CloudEventAttributes:
    try:
        return CloudEventAttributes.model_validate_json(json.dumps(raw))
    except ValidationError as exc:
        raise SchemaViolation(_describe(exc)) from exc


def _to_envelope(attrs: CloudEventAttributes) -> EventEnvelope:
    return EventEnvelope(
        id=attrs.id,
        type=attrs.type,
        source=attrs.source,
        time=attrs.time.astimezone(UTC),
        subject=attrs.subject,
        tenant=attrs.tenant,
        correlationid=attrs.correlationid,
        traceparent=attrs.traceparent,
    )


def decode_event(
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes | str],
    registry: Mapping[str, type[EventPayload]],
    *,
    accept_structured: bool = False,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> Event[EventPayload]:
    """Decode and validate one Kafka record; raises :class:`PoisonMessage` if it is unusable."""
    if value is None:
        msg = "message has no value"
        raise UndecodableMessage(msg)
    if len(value) > max_bytes:
        msg = f"message is {len(value)} bytes, the limit is {max_bytes}"
        raise MessageTooLarge(msg)
    hdrs = _header_map(headers)
    if "ce_specversion" in hdrs or "ce_type" in hdrs:
        raw_attrs: dict[str, object] = {
            key.removeprefix("ce_"): val for key, val in hdrs.items() if key.startswith("ce_")
        }
        if "traceparent" in hdrs:
            raw_attrs["traceparent"] = hdrs["traceparent"]
        attrs = _attributes(raw_attrs)
        payload = _validate_payload(attrs.type, value, registry)
        return Event(_to_envelope(attrs), payload)
    if not accept_structured:
        msg = "missing CloudEvents binary-mode headers (ce_specversion, ce_type, ...)"
        raise SchemaViolation(msg)
    return _decode_structured(value, hdrs, registry)


def _decode_structured(
    value: bytes, hdrs: Mapping[str, str], registry: Mapping[str, type[EventPayload]]
) -> Event[EventPayload]:
    try:
        doc = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        msg = f"value is not valid JSON: {exc}"
        raise UndecodableMessage(msg[:300]) from exc
    if not isinstance(doc, dict):
        msg = "a structured-mode CloudEvent must be a JSON object"
        raise SchemaViolation(msg)
    if "data" not in doc:
        msg = "data: field required"
        raise SchemaViolation(msg)
    data = doc.pop("data")
    if not isinstance(data, dict):
        msg = "data: must be a JSON object"
        raise SchemaViolation(msg)
    doc.setdefault("correlationid", doc.get("id"))
    if "subject" not in doc and isinstance(data.get("external_id"), str):
        doc["subject"] = data["external_id"]
    if "traceparent" in hdrs and "traceparent" not in doc:
        doc["traceparent"] = hdrs["traceparent"]
    problems: list[PoisonMessage] = []
    attrs: CloudEventAttributes | None = None
    payload: EventPayload | None = None
    try:
        attrs = _attributes(doc)
    except PoisonMessage as exc:
        problems.append(exc)
    event_type = doc.get("type")
    if isinstance(event_type, str):
        try:
            payload = _validate_payload(event_type, json.dumps(data).encode(), registry)
        except PoisonMessage as exc:
            problems.append(exc)
    if problems:
        first = problems[0]
        raise type(first)("; ".join(p.message for p in problems))
    assert attrs is not None  # noqa: S101 - no problems means both validated
    assert payload is not None  # noqa: S101
    return Event(_to_envelope(attrs), payload)
