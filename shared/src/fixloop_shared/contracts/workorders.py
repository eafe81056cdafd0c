"""Events of the orders service (``fixloop.workorders.*``) and the work order facts they carry.

:class:`WorkOrderSubmitted` is inbound (external platforms, closed); :class:`WorkOrderReceived` is
published by the orders service on ``fixloop.workorders.events.v1``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AwareDatetime, EmailStr, Field

from fixloop_shared.contracts.base import ClosedContract, Contract, EventPayload
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
    SourcePlatform,
    TenantId,
    TimeZoneName,
)
from fixloop_shared.vocabulary import Category, Priority


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
    sms_consent: bool = Field(
        default=False,
        description="the requester agreed to be told by text message (SMS) at ``phone``",
    )


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
    follow_up_of: Identifier | None = Field(
        default=None,
        description="the closed order whose work was rejected after its reopen window, if any",
    )


__all__ = [
    "Address",
    "Category",
    "Equipment",
    "PartLine",
    "Priority",
    "Requester",
    "Site",
    "WorkOrderDetails",
    "WorkOrderReceived",
    "WorkOrderSubmitted",
]
