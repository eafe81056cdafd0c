"""One pydantic model per event type; the JSON Schemas in ``docs/contracts`` are generated.

A change that would break a consumer is a new model with a new ``.vN`` type, never an edit.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field

from fixloop_shared.contracts.types import (
    CountryCode,
    Description,
    EquipmentClass,
    ExternalId,
    Identifier,
    Locale,
    Name,
    PartNumber,
    Phone,
    PostalCode,
    Quantity,
    ShortText,
    SourcePlatform,
    TenantId,
    TimeZoneName,
)


class Contract(BaseModel):
    """Base of every wire model: strict types, unknown fields rejected, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class EventPayload(Contract):
    """Base of every event payload; ``event_type`` is the CloudEvents ``type`` attribute."""

    event_type: ClassVar[str]
    summary: ClassVar[str]


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
    reported_at: AwareDatetime | None = None


class WorkOrderSubmitted(EventPayload, WorkOrderDetails):
    """Inbound: an external platform submits a work order (topic ``fixloop.workorders.inbound.v1``).

    The tenant and the source platform are the CloudEvents ``tenant`` and ``source`` attributes.
    """

    event_type: ClassVar[str] = "fixloop.workorder.submitted.v1"
    summary: ClassVar[str] = "Work order submitted by an external platform"


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
