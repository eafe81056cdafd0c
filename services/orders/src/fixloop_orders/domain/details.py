"""What is to be done, where and for whom: a work order's details as plain domain values.

The source platform's submission is mapped into these at the app edge
(:func:`fixloop_orders.app.intake.work_order_details`), and back into the wire model when the
``workorder.received`` event is published; the domain never sees the wire models. Values are
trusted: they were validated when the submission was read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fixloop_shared.vocabulary import Category, Priority


@dataclass(frozen=True, slots=True, kw_only=True)
class Address:
    line1: str
    line2: str | None = None
    city: str
    postal_code: str
    country: str
    """ISO 3166-1 alpha-2 country code."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Site:
    site_id: str
    name: str
    address: Address
    timezone: str
    """IANA time zone of the site, e.g. ``Europe/Berlin``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Equipment:
    equipment_id: str
    equipment_class: str
    manufacturer: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Requester:
    name: str
    email: str
    phone: str | None = None
    locale: str
    """BCP 47 language tag, e.g. ``de-AT``."""
    sms_consent: bool = False
    """Agreed to be told by text message at ``phone``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PartLine:
    part_number: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkOrderDetails:
    """What an external platform told us about the work to be done."""

    external_id: str
    """The order's id on the source platform."""
    site: Site
    equipment: Equipment
    category: Category
    priority: Priority
    description: str
    requester: Requester
    required_parts: tuple[PartLine, ...] = ()
    reported_at: datetime | None = None
    """When the fault was reported (timezone-aware), if the platform said."""


__all__ = ["Address", "Equipment", "PartLine", "Requester", "Site", "WorkOrderDetails"]
