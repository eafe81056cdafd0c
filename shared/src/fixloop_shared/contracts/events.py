"""One pydantic model per event type; the JSON Schemas in ``docs/contracts`` are generated.

A change that would break a consumer is a new model with a new ``.vN`` type, never an edit.

Internal events are read tolerantly: a field a reader does not know is ignored, so a producer can
add a field without a new version. Inbound events from external platforms
(:data:`INBOUND_EVENT_TYPES`) are closed: an unknown field anywhere in them is refused with its
path, so a misspelt optional field is a dead letter with a reason, never data silently dropped.
Types are strict everywhere (no coercion).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
)
from pydantic.config import ExtraValues
from pydantic.json_schema import DEFAULT_REF_TEMPLATE, GenerateJsonSchema, JsonSchemaMode

from fixloop_shared.contracts.types import (
    CountryCode,
    Description,
    EquipmentClass,
    ExternalId,
    Identifier,
    Locale,
    Name,
    PartNumber,
    PastMoment,
    Phone,
    PostalCode,
    Quantity,
    ShortText,
    SourcePlatform,
    TenantId,
    TimeZoneName,
)


class Contract(BaseModel):
    """Base of every wire model: strict types, immutable, unknown fields ignored (tolerant reader).

    Inbound models close themselves with :class:`ClosedContract`.
    """

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


def _closed(schema: Any) -> Any:
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            _closed(value)
    elif isinstance(schema, list):
        for value in schema:
            _closed(value)
    return schema


class ClosedContract(Contract):
    """A model validated at the edge: an unknown field at any depth is refused, with its path.

    Nested models are shared with internal events, which stay tolerant, so the model is closed
    when it is validated (pydantic's per-call ``extra="forbid"`` reaches every nested model)
    rather than by each nested model's configuration. Its JSON Schema says the same
    (``additionalProperties: false`` throughout).
    """

    @classmethod
    def model_validate_json(
        cls,
        json_data: str | bytes | bytearray,
        *,
        strict: bool | None = None,
        extra: ExtraValues | None = "forbid",
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        return super().model_validate_json(
            json_data,
            strict=strict,
            extra=extra,
            context=context,
            by_alias=by_alias,
            by_name=by_name,
        )

    @classmethod
    def model_validate(
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        extra: ExtraValues | None = "forbid",
        from_attributes: bool | None = None,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        return super().model_validate(
            obj,
            strict=strict,
            extra=extra,
            from_attributes=from_attributes,
            context=context,
            by_alias=by_alias,
            by_name=by_name,
        )

    @classmethod
    def model_json_schema(
        cls,
        by_alias: bool | None = None,
        ref_template: str = DEFAULT_REF_TEMPLATE,
        schema_generator: type[GenerateJsonSchema] = GenerateJsonSchema,
        mode: JsonSchemaMode = "validation",
        **kwargs: Any,
    ) -> dict[str, Any]:
        schema = super().model_json_schema(
            by_alias=by_alias,
            ref_template=ref_template,
            schema_generator=schema_generator,
            mode=mode,
            **kwargs,
        )
        return dict(_closed(schema))


class EventPayload(Contract):
    """Base of every event payload; ``event_type`` is the CloudEvents ``type`` attribute."""

    event_type: ClassVar[str]
    summary: ClassVar[str]
    subject_field: ClassVar[str | None] = None
    """The payload field that is the CloudEvents ``subject`` when an event comes without one."""


class Priority(StrEnum):
    EMERGENCY = "emergency"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Category(StrEnum):
    BREAKDOWN = "breakdown"
    PREVENTIVE = "preventive"
    INSPECTION = "inspection"
    INSTALLATION = "installation"
    SAFETY = "safety"


class Address(Contract):
    line1: Name
    line2: Name | None = None
    city: Name
    postal_code: PostalCode
    country: CountryCode = Field(description="ISO 3166-1 alpha-2 country code")


class Site(Contract):
    site_id: Identifier
    name: Name
    address: Address
    timezone: TimeZoneName = Field(description="IANA time zone of the site, e.g. Europe/Berlin")


class Equipment(Contract):
    equipment_id: Identifier
    equipment_class: EquipmentClass = Field(description="e.g. hvac, elevator, refrigeration")
    manufacturer: Name | None = None
    model: Name | None = None


class Requester(Contract):
    name: Name
    email: EmailStr
    phone: Phone | None = None
    locale: Locale = Field(description="BCP 47 language tag, e.g. en, de, de-AT")


class PartLine(Contract):
    part_number: PartNumber
    quantity: Quantity


class WorkOrderDetails(Contract):
    """What an external platform tells us about the work to be done."""

    external_id: ExternalId = Field(description="The order's id on the source platform")
    site: Site
    equipment: Equipment
    category: Category
    priority: Priority
    description: Description
    requester: Requester
    required_parts: Annotated[list[PartLine], Field(max_length=50)] = Field(default_factory=list)
    reported_at: PastMoment | None = Field(
        default=None,
        description=(
            "When the fault was reported; timezone-aware, not before 1970 and at most 5 minutes "
            "after the time of receipt"
        ),
    )


class WorkOrderSubmitted(EventPayload, WorkOrderDetails, ClosedContract):
    """Inbound: an external platform submits a work order (topic ``fixloop.workorders.inbound.v1``).

    The tenant and the source platform are the CloudEvents ``tenant`` and ``source`` attributes.
    Unknown fields are refused (an inbound contract is closed).
    """

    event_type: ClassVar[str] = "fixloop.workorder.submitted.v1"
    summary: ClassVar[str] = "Work order submitted by an external platform"
    subject_field: ClassVar[str | None] = "external_id"


class WorkOrderReceived(EventPayload, WorkOrderDetails):
    event_type: ClassVar[str] = "fixloop.workorder.received.v1"
    summary: ClassVar[str] = "Work order received and stored"

    work_order_id: Identifier
    tenant: TenantId
    source_platform: SourcePlatform
    received_at: AwareDatetime


class AssignmentOffered(EventPayload):
    event_type: ClassVar[str] = "fixloop.assignment.offered.v1"
    summary: ClassVar[str] = "Work order offered to a contractor"

    work_order_id: Identifier
    offer_id: Identifier
    contractor_id: Identifier
    contractor_name: Name
    offered_at: AwareDatetime
    expires_at: AwareDatetime


class UnfilledReason(Contract):
    contractor_id: Identifier
    reasons: Annotated[list[ShortText], Field(max_length=20)]


class AssignmentUnfilled(EventPayload):
    event_type: ClassVar[str] = "fixloop.assignment.unfilled.v1"
    summary: ClassVar[str] = "No eligible contractor for a work order"

    work_order_id: Identifier
    reason: ShortText
    considered: Annotated[list[UnfilledReason], Field(max_length=500)] = Field(default_factory=list)
    decided_at: AwareDatetime


class AssignmentAccepted(EventPayload):
    event_type: ClassVar[str] = "fixloop.assignment.accepted.v1"
    summary: ClassVar[str] = "Contractor accepted a work order"

    work_order_id: Identifier
    offer_id: Identifier
    contractor_id: Identifier
    accepted_at: AwareDatetime


class PartReservation(Contract):
    part_number: PartNumber
    warehouse_id: Identifier
    quantity: Quantity


class PartsReserved(EventPayload):
    event_type: ClassVar[str] = "fixloop.parts.reserved.v1"
    summary: ClassVar[str] = "All required parts reserved"

    work_order_id: Identifier
    reservations: Annotated[list[PartReservation], Field(max_length=200)]
    reserved_at: AwareDatetime


class PartsBackordered(EventPayload):
    event_type: ClassVar[str] = "fixloop.parts.backordered.v1"
    summary: ClassVar[str] = "Some required parts are not in stock"

    work_order_id: Identifier
    reservations: Annotated[list[PartReservation], Field(max_length=200)]
    missing: Annotated[list[PartLine], Field(max_length=50)]
    decided_at: AwareDatetime


class Milestone(StrEnum):
    DISPATCH_CONFIRMATION = "dispatch_confirmation"


class SlaClockFacts(Contract):
    work_order_id: Identifier
    clock_id: Identifier
    milestone: Milestone
    started_at: AwareDatetime
    warn_at: AwareDatetime
    due_at: AwareDatetime


class SlaWarning(EventPayload, SlaClockFacts):
    event_type: ClassVar[str] = "fixloop.sla.warning.v1"
    summary: ClassVar[str] = "A milestone is about to miss its SLA"

    fired_at: AwareDatetime
    late: bool = Field(default=False, description="fired after its moment (service was down)")


class SlaBreached(EventPayload, SlaClockFacts):
    event_type: ClassVar[str] = "fixloop.sla.breached.v1"
    summary: ClassVar[str] = "A milestone missed its SLA"

    fired_at: AwareDatetime
    late: bool = False


class SlaMet(EventPayload, SlaClockFacts):
    event_type: ClassVar[str] = "fixloop.sla.met.v1"
    summary: ClassVar[str] = "A milestone was reached within its SLA"

    stopped_at: AwareDatetime


class Channel(StrEnum):
    EMAIL = "email"


class NotificationOutcome(Contract):
    notification_id: Identifier
    work_order_id: Identifier | None = None
    channel: Channel
    recipient: EmailStr
    template: Identifier
    locale: Locale
    attempts: Annotated[int, Field(ge=1, le=100)]


class NotificationSent(EventPayload, NotificationOutcome):
    event_type: ClassVar[str] = "fixloop.notification.sent.v1"
    summary: ClassVar[str] = "Notification delivered to the recipient's channel"

    sent_at: AwareDatetime


class NotificationFailed(EventPayload, NotificationOutcome):
    event_type: ClassVar[str] = "fixloop.notification.failed.v1"
    summary: ClassVar[str] = "Notification could not be delivered after retries"

    error: ShortText
    failed_at: AwareDatetime


INBOUND_EVENT_TYPES: dict[str, type[EventPayload]] = {
    WorkOrderSubmitted.event_type: WorkOrderSubmitted,
}

EVENT_TYPES: dict[str, type[EventPayload]] = {
    model.event_type: model
    for model in (
        WorkOrderSubmitted,
        WorkOrderReceived,
        AssignmentOffered,
        AssignmentUnfilled,
        AssignmentAccepted,
        PartsReserved,
        PartsBackordered,
        SlaWarning,
        SlaBreached,
        SlaMet,
        NotificationSent,
        NotificationFailed,
    )
}


def payload_model(event_type: str) -> type[EventPayload] | None:
    """The payload model registered for a CloudEvents ``type``, or None if unknown."""
    return EVENT_TYPES.get(event_type)


__all__ = [
    "EVENT_TYPES",
    "INBOUND_EVENT_TYPES",
    "Address",
    "AssignmentAccepted",
    "AssignmentOffered",
    "AssignmentUnfilled",
    "Category",
    "Channel",
    "Contract",
    "Equipment",
    "EventPayload",
    "Milestone",
    "NotificationFailed",
    "NotificationSent",
    "PartLine",
    "PartReservation",
    "PartsBackordered",
    "PartsReserved",
    "Priority",
    "Requester",
    "Site",
    "SlaBreached",
    "SlaMet",
    "SlaWarning",
    "UnfilledReason",
    "WorkOrderDetails",
    "WorkOrderReceived",
    "WorkOrderSubmitted",
    "payload_model",
]
