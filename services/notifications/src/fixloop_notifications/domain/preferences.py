"""A recipient's preferences: which notices they want on which channel, SMS consent, quiet hours.

A recipient is an address within a tenant: an e-mail address or a phone number in E.164. Their
preferences say:

- **opt-outs**, per kind of notice (its template name, e.g. ``visit_scheduled``) and channel, or
  for every kind on a channel (``kind`` None, what a one-click unsubscribe of an e-mail about an
  essential notice records);
- **SMS consent**: no SMS goes to a number without recorded consent — the recipient's latest word
  recorded here (when, and through what), else the consent recorded with their order — and a
  withdrawn consent stops every SMS;
- **quiet hours** (None: the default 21:00 to 07:00 local) and optional locale and time zone
  overrides.

**Essential notices.** Some notices are part of the work the recipient asked for, not news they
may decline: the request to verify completed work (silence means the work is verified
automatically when the verify-by time passes), a cancellation (someone may be waiting on site for
a visit that will not happen), and for contractors the offer withdrawn, job cancelled and
credential expiring notices (acting on a withdrawn job, or working with a lapsed licence, does
harm). The tenant's dispatch desk cannot opt out of its operational alerts either. An essential
notice ignores e-mail opt-outs; SMS always needs consent, and an SMS opt-out is honoured for every
notice (a "STOP" is binding whatever the message). Webhooks are configured by the tenant per
endpoint (their event filter), not by a recipient, so preferences never stop them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from fixloop_notifications.domain.quiet_hours import DEFAULT_QUIET_HOURS, QuietHours
from fixloop_shared.vocabulary import Channel

ESSENTIAL_KINDS: frozenset[str] = frozenset(
    {
        # requester
        "work_completed",
        "workorder_cancelled",
        # contractor
        "offer_withdrawn",
        "job_cancelled",
        "credential_expiring",
        # operator (the tenant's dispatch desk)
        "order_unfilled",
        "sla_breached",
        "sla_escalated",
        "quality_alert",
        "webhook_disabled",
    }
)
"""Notices that go out whatever the recipient opted out of by e-mail (see the module's text)."""

MAX_ADDRESS_LENGTH = 254
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/@+-]{0,127}$")


def is_essential(kind: str) -> bool:
    """Whether a notice of ``kind`` goes out despite e-mail opt-outs."""
    return kind in ESSENTIAL_KINDS


class InvalidAddress(ValueError):  # noqa: N818 - the domain's word
    """Neither an e-mail address nor a phone number in E.164."""


def recipient_address(raw: str) -> str:
    """``raw`` as the key of a recipient: an E.164 number as it is, an e-mail address in lower
    case (the same mailbox however it was spelt). :class:`InvalidAddress` otherwise."""
    value = raw.strip()
    if len(value) > MAX_ADDRESS_LENGTH:
        msg = "address is too long"
        raise InvalidAddress(msg)
    if _E164.match(value):
        return value
    if _EMAIL.match(value):
        return value.lower()
    msg = "not an e-mail address or an E.164 phone number"
    raise InvalidAddress(msg)


def notice_kind(raw: str) -> str:
    """``raw`` as a kind of notice (a template name); ValueError otherwise."""
    if not _KIND.match(raw):
        msg = f"not a kind of notice: {raw[:64]!r}"
        raise ValueError(msg)
    return raw


@dataclass(frozen=True, slots=True)
class SmsConsent:
    """What the recipient said about receiving SMS, when, and through what (e.g. ``intake``,
    ``sms:STOP``, ``operator:desk-7``)."""

    granted: bool
    at: datetime
    source: str

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            msg = "consent time must be timezone-aware"
            raise ValueError(msg)
        if not _SOURCE.match(self.source):
            msg = "consent source must be a short printable label"
            raise ValueError(msg)


OptOut = tuple[str | None, Channel]
"""A kind of notice (None: every kind) no longer wanted on a channel."""


@dataclass(frozen=True, slots=True)
class RecipientPreferences:
    """One recipient's preferences within a tenant (a recipient who set none has the defaults)."""

    tenant: str
    address: str
    opted_out: frozenset[OptOut] = field(default_factory=frozenset)
    sms_consent: SmsConsent | None = None
    quiet_hours: QuietHours | None = None
    """None: the default quiet hours (21:00 to 07:00 local)."""
    locale: str | None = None
    timezone: str | None = None

    @property
    def effective_quiet_hours(self) -> QuietHours:
        return self.quiet_hours or DEFAULT_QUIET_HOURS

    def consents_to_sms(self, *, on_order: bool = False) -> bool:
        """Whether the recipient agreed to SMS: their latest recorded word (a withdrawal wins),
        else the consent recorded with their order (``on_order``)."""
        if self.sms_consent is not None:
            return self.sms_consent.granted
        return on_order

    def opted_out_of(self, kind: str, channel: Channel) -> bool:
        """Whether the recipient opted out of ``kind`` on ``channel`` (or of every kind there)."""
        return (kind, channel) in self.opted_out or (None, channel) in self.opted_out

    def allows(
        self, kind: str, channel: Channel, *, essential: bool, sms_consent_on_order: bool = False
    ) -> bool:
        """Whether a notice of ``kind`` may go to this recipient on ``channel``.

        Webhooks: always (the tenant's endpoint filter decides). SMS: only with consent (see
        :meth:`consents_to_sms`; ``sms_consent_on_order`` is the consent the order recorded) and
        without an opt-out, essential or not. E-mail: an essential notice always, any other
        unless opted out of.
        """
        if channel is Channel.WEBHOOK:
            return True
        if channel is Channel.SMS:
            return self.consents_to_sms(on_order=sms_consent_on_order) and not self.opted_out_of(
                kind, channel
            )
        return essential or not self.opted_out_of(kind, channel)

    def with_opt_out(self, kind: str | None, channel: Channel) -> RecipientPreferences:
        return replace(self, opted_out=self.opted_out | {(kind, channel)})

    def with_opt_in(self, kind: str | None, channel: Channel) -> RecipientPreferences:
        return replace(self, opted_out=self.opted_out - {(kind, channel)})

    def with_sms_consent(self, consent: SmsConsent) -> RecipientPreferences:
        return replace(self, sms_consent=consent)

    def with_quiet_hours(self, quiet_hours: QuietHours | None) -> RecipientPreferences:
        return replace(self, quiet_hours=quiet_hours)


def default_preferences(tenant: str, address: str) -> RecipientPreferences:
    """The preferences of a recipient who set none: everything wanted, no SMS consent recorded
    (then the order's own consent decides)."""
    return RecipientPreferences(tenant=tenant, address=address)


__all__ = [
    "ESSENTIAL_KINDS",
    "InvalidAddress",
    "OptOut",
    "RecipientPreferences",
    "SmsConsent",
    "default_preferences",
    "is_essential",
    "notice_kind",
    "recipient_address",
]
