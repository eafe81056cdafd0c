"""What the notifications service knows of a work order: the facts its messages show.

A plain value, mapped from the ``workorder.received`` event at the app edge
(:func:`fixloop_notifications.app.intake.received_work_order`), so the domain never depends on
the wire model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fixloop_shared.vocabulary import Category, Priority


@dataclass(frozen=True, slots=True)
class PostalAddress:
    line1: str
    city: str
    postal_code: str
    country: str
    """ISO 3166-1 alpha-2 country code."""
    line2: str | None = None

    @property
    def lines(self) -> list[str]:
        """The address as printed on a letter: street lines, postal code and city, country."""
        lines = [self.line1]
        if self.line2:
            lines.append(self.line2)
        lines.append(f"{self.postal_code} {self.city}")
        lines.append(self.country)
        return lines


@dataclass(frozen=True, slots=True)
class ReceivedWorkOrder:
    """A work order Fixloop has received, with what its notifications tell people about it."""

    work_order_id: str
    tenant: str
    source_platform: str
    external_id: str
    requester_name: str
    requester_email: str
    requester_locale: str
    """BCP 47 language tag the requester asked to be written to in, e.g. ``de-AT``."""
    site_name: str
    site_address: PostalAddress
    site_timezone: str
    """IANA time zone of the site: every moment is shown in it."""
    equipment_id: str
    equipment_class: str
    category: Category
    priority: Priority
    description: str
    received_at: datetime
    equipment_manufacturer: str | None = None
    equipment_model: str | None = None
    reported_at: datetime | None = None


__all__ = ["PostalAddress", "ReceivedWorkOrder"]
