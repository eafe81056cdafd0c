"""Webhooks to tenant-registered endpoints, signed per the Standard Webhooks specification.

Each request carries ``webhook-id`` (stable across attempts, so receivers de-duplicate),
``webhook-timestamp`` (seconds since the epoch, of this attempt) and ``webhook-signature``:
``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, one per active secret of the endpoint,
space-separated, newest first. During a secret rotation the previous secret stays active for a
while, so a receiver that still has it verifies as well as one that has the new one.

An endpoint that keeps failing is disabled by its :class:`DisablePolicy`; its operator is told.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets as random_source
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32
URL_MAX_LENGTH = 2048

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class InvalidEndpointUrl(ValueError):  # noqa: N818 - reads as what it is
    """An endpoint URL that cannot be registered: the message is a one-line reason."""


class DisabledReason(StrEnum):
    FAILING = "failing"
    """Disabled by the :class:`DisablePolicy` after persistent failure."""
    GONE = "gone"
    """The endpoint answered 410 Gone: its owner removed it."""
    OPERATOR = "operator"
    """Disabled by the tenant's operator."""


@dataclass(frozen=True)
class WebhookSecret:
    """One signing secret of an endpoint; ``expires_at`` is set on a secret replaced by a
    rotation (it signs until then, beside the new one)."""

    value: str = field(repr=False)
    created_at: datetime
    expires_at: datetime | None = None

    def active_at(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True)
class WebhookEndpoint:
    """A tenant's registered receiver of webhooks, and how its deliveries have been going."""

    endpoint_id: str
    tenant: str
    url: str
    secrets: tuple[WebhookSecret, ...]
    """Newest first."""
    event_types: tuple[str, ...]
    """The event types it receives; empty = all."""
    enabled: bool
    created_at: datetime
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    """When the current run of failures began (None while deliveries succeed)."""
    disabled_at: datetime | None = None
    disabled_reason: DisabledReason | None = None

    def accepts(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def active_secrets(self, now: datetime) -> tuple[str, ...]:
        """The secrets to sign with at ``now``, newest first."""
        return tuple(secret.value for secret in self.secrets if secret.active_at(now))


@dataclass(frozen=True)
class OutgoingWebhook:
    """One webhook message, ready to be sent (and sent again, identically, after a crash)."""

    webhook_id: str
    """Stable across attempts (the notification id): the ``webhook-id`` header."""
    endpoint_id: str
    url: str
    event_type: str
    body: str
    """The JSON text sent and signed, exactly."""


def new_secret(random_bytes: bytes | None = None) -> str:
    """A signing secret: ``whsec_`` + base64 of 32 random bytes (or of ``random_bytes``)."""
    raw = random_source.token_bytes(SECRET_BYTES) if random_bytes is None else random_bytes
    if len(raw) < SECRET_BYTES:
        msg = f"a webhook secret has at least {SECRET_BYTES} bytes"
        raise ValueError(msg)
    return SECRET_PREFIX + base64.b64encode(raw).decode("ascii")


def sign(webhook: OutgoingWebhook, secrets: Sequence[str], at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of ``webhook`` sent at ``at``: one ``v1`` signature per
    secret, in the order given (newest first)."""
    if not secrets:
        msg = "a webhook is signed with at least one secret"
        raise ValueError(msg)
    if at.tzinfo is None:
        msg = "the signing time must be timezone-aware"
        raise ValueError(msg)
    # The library reads the time as UTC whatever its zone: hand it UTC.
    when = at.astimezone(UTC)
    signatures = [
        Webhook(secret).sign(msg_id=webhook.webhook_id, timestamp=when, data=webhook.body)
        for secret in secrets
    ]
    return {
        HEADER_ID: webhook.webhook_id,
        HEADER_TIMESTAMP: str(int(when.timestamp())),
        HEADER_SIGNATURE: " ".join(signatures),
    }


@dataclass(frozen=True)
class DisablePolicy:
    """When an endpoint that keeps failing is disabled: after at least ``after_failures``
    consecutive failed attempts, and failing for at least ``after`` (both), so neither a burst
    of failures in a short outage nor a rare failure over a long time disables it."""

    after_failures: int = 10
    after: timedelta = timedelta(hours=12)

    def __post_init__(self) -> None:
        if self.after_failures < 1:
            msg = "an endpoint is disabled after at least one failure"
            raise ValueError(msg)
        if self.after < timedelta(0):
            msg = "the failing period cannot be negative"
            raise ValueError(msg)

    def should_disable(
        self, consecutive_failures: int, failing_since: datetime | None, now: datetime
    ) -> bool:
        if failing_since is None:
            return False
        return consecutive_failures >= self.after_failures and now - failing_since >= self.after


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refused_address(host: str) -> str | None:
    """Why a literal IP address host is refused (internal networks, metadata services), if so."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.is_loopback:
        return None
    return refused_address(address)


def refused_address(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_loopback: bool = True
) -> str | None:
    """Why a webhook may not be sent to ``address`` (what a host name resolved to), if so:
    internal networks, link-local (cloud metadata services), non-unicast, and loopback unless
    ``allow_loopback``. An IPv4 address mapped into IPv6 is judged as the IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return None if allow_loopback else "this machine"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "not a unicast address"
    if address.is_private:
        return "a private network address"
    if not address.is_global:
        return "not a public internet address"
    return None


def validate_endpoint_url(url: str, *, allow_loopback: bool = True) -> str:
    """``url`` if it can be registered as an endpoint, else :class:`InvalidEndpointUrl`.

    https only, except http to the machine itself (``localhost``, ``127.0.0.1``, ``::1``) when
    ``allow_loopback``; no credentials, fragment, spaces or control characters in it; at most
    2048 characters; a literal IP address must not be internal (private, link-local)."""
    if len(url) > URL_MAX_LENGTH:
        msg = f"endpoint URL longer than {URL_MAX_LENGTH} characters"
        raise InvalidEndpointUrl(msg)
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        msg = "endpoint URL contains spaces or control characters"
        raise InvalidEndpointUrl(msg)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        msg = f"not a URL: {url!r} ({exc})"
        raise InvalidEndpointUrl(msg) from exc
    host = parts.hostname or ""
    if parts.scheme not in {"https", "http"} or not host:
        msg = f"endpoint URL must be https://host/…: {url!r}"
        raise InvalidEndpointUrl(msg)
    if parts.username is not None or parts.password is not None:
        msg = "endpoint URL must not contain credentials (user:password@)"
        raise InvalidEndpointUrl(msg)
    if parts.fragment or url.endswith("#"):
        msg = "endpoint URL must not contain a fragment (#…)"
        raise InvalidEndpointUrl(msg)
    if port == 0:
        msg = f"endpoint URL has port 0: {url!r}"
        raise InvalidEndpointUrl(msg)
    loopback = _is_loopback(host)
    if loopback and not allow_loopback:
        msg = f"endpoint URL points at this machine: {host}"
        raise InvalidEndpointUrl(msg)
    if parts.scheme == "http" and not loopback:
        msg = f"endpoint URL must use https (http only to localhost): {url!r}"
        raise InvalidEndpointUrl(msg)
    refused = _refused_address(host)
    if refused is not None:
        msg = f"endpoint URL host is {refused}: {host}"
        raise InvalidEndpointUrl(msg)
    return url
