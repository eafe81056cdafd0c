"""Message templates as the domain sees them: a notice kind, rendered for a locale and channel.

What a template catalog must do is :class:`MessageTemplates`; the catalog the service runs with
(Jinja templates and gettext catalogs shipped in the package) is
:class:`fixloop_notifications.adapters.templates.TemplateCatalog`.

Values handed to a template are raw: timezone-aware datetimes, dates, enum values as strings,
counts as ints. The catalog writes them for the reader (locale, time zone); the caller never
formats them. Every notice gets :data:`COMMON_VALUES`; :data:`OPTIONAL_VALUES` names the values
a notice kind may leave out (``None`` or absent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fixloop_shared.vocabulary import Channel


@dataclass(frozen=True)
class RenderedMessage:
    """One notice written for one reader on one channel."""

    template: str
    locale: str
    """The locale of the translation used (after fallback), e.g. ``de`` for ``de-AT``."""
    channel: Channel
    subject: str
    """The e-mail subject, one line (``""`` for SMS)."""
    text: str
    """The plain text: the e-mail's text part, or the SMS body."""
    html: str
    """The e-mail's HTML part (``""`` for SMS)."""
    direction: str
    """``"ltr"`` or ``"rtl"``: which way the locale's script runs."""


class UnknownTemplate(LookupError):  # noqa: N818 - the domain word
    """No such template, or it has no form for the channel asked for."""


class MessageTemplates(Protocol):
    """A catalog of message templates, each translated into some locales."""

    def render(
        self,
        template: str,
        requested_locale: str,
        *,
        channel: Channel,
        values: Mapping[str, Any],
        timezone: str,
    ) -> RenderedMessage:
        """Render ``template`` for ``channel`` in the best translation for
        ``requested_locale`` (exact locale, then its language, then English), with raw
        ``values``; moments are shown in the IANA zone ``timezone``. The subject is one line;
        values are escaped in the HTML part. Raises :class:`UnknownTemplate` if ``template``
        does not exist or has no form for ``channel``. Pure: the same arguments always give
        the same message."""
        ...

    def channels(self, template: str) -> frozenset[Channel]:
        """The channels ``template`` has a form for (empty if there is no such template)."""
        ...


COMMON_VALUES: tuple[str, ...] = (
    "recipient_name",
    "reference",
    "external_id",
    "site_name",
    "site_city",
    "priority",
    "category",
    "unsubscribe_url",
    "tenant",
)
"""Values every notice gets; any of them may be ``None`` or absent."""

OPTIONAL_VALUES: Mapping[str, tuple[str, ...]] = {
    "workorder_received": ("equipment_make", "reported_at", "site_timezone"),
    "contractor_assigned": ("contractor_phone", "contractor_email"),
    "visit_scheduled": ("contractor_name",),
    "contractor_en_route": ("contractor_name", "eta"),
    "contractor_on_site": ("contractor_name", "eta"),
    "awaiting_parts": ("eta",),
    "workorder_delayed": ("remedy",),
    "delay_predicted": ("remedy", "predicted_at"),
    "work_completed": (),
    "workorder_closed": (),
    "workorder_cancelled": ("reason",),
    "offer_made": (),
    "offer_withdrawn": ("reason",),
    "job_cancelled": ("reason",),
    "credential_expiring": ("credential_name",),
    "order_unfilled": (),
    "sla_breached": ("contractor_name",),
    "sla_escalated": ("audience",),
    "quality_alert": (),
    "webhook_disabled": (),
}
"""Per notice kind, the values it may leave out."""


def single_line(value: str) -> str:
    """Collapse every run of whitespace (line breaks included) into one space."""
    return " ".join(value.split())


__all__ = [
    "COMMON_VALUES",
    "OPTIONAL_VALUES",
    "MessageTemplates",
    "RenderedMessage",
    "UnknownTemplate",
    "single_line",
]
