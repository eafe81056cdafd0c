"""Signed, expiring links in the notices a recipient gets: survey, verify, reject, unsubscribe.

A link is ``{base_url}/{purpose}/{token}``. The token is an itsdangerous
``URLSafeTimedSerializer`` token — the claims as JSON, the moment it was issued, an HMAC — with a
salt per purpose, so a token made for one purpose never reads as another. The claims are signed,
not encrypted: they hold nothing the recipient does not know already (their own address, their
order's id).

How long a link works:

- survey: 30 days after it was issued;
- verify and reject: until the order's verify-by time (the ``expires_at`` claim), after which the
  work is verified automatically;
- unsubscribe: one year after it was issued.

Reading a token raises :class:`LinkForged` (not made with our secret, altered, malformed, or
made for another purpose) or :class:`LinkExpired`. Pure: the caller gives every time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

from fixloop_shared.vocabulary import Channel

MIN_SECRET_LENGTH = 32
MAX_TOKEN_LENGTH = 2048
ISSUED_IN_FUTURE_TOLERANCE = timedelta(minutes=5)
"""How far ahead of the reader's clock an issuing clock may run."""


class LinkPurpose(StrEnum):
    """What a link does; also its path segment."""

    SURVEY = "survey"
    VERIFY = "verify"
    REJECT = "reject"
    UNSUBSCRIBE = "unsubscribe"


MAX_AGE: Mapping[LinkPurpose, timedelta] = {
    LinkPurpose.SURVEY: timedelta(days=30),
    LinkPurpose.UNSUBSCRIBE: timedelta(days=365),
}
"""How long after issue a link of these purposes works (verify and reject: their expires_at)."""

NEEDS_EXPIRES_AT = frozenset({LinkPurpose.VERIFY, LinkPurpose.REJECT})


class LinkForged(ValueError):  # noqa: N818 - the domain's word
    """The token was not made by us for this purpose, or was altered."""


class LinkExpired(ValueError):  # noqa: N818 - the domain's word
    """The token is genuine but no longer works."""


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """What a link says about whom it is for and what it is about.

    ``work_order_id`` is required for survey, verify and reject; ``contractor_id`` is the
    contractor who did the work (survey); ``kind`` (None: every kind) and ``channel`` say what an
    unsubscribe stops; ``expires_at`` is the order's verify-by time (verify and reject).
    """

    tenant: str
    address: str
    locale: str
    timezone: str
    work_order_id: str | None = None
    contractor_id: str | None = None
    kind: str | None = None
    channel: Channel | None = None
    expires_at: datetime | None = None

    def check_for(self, purpose: LinkPurpose) -> None:
        """ValueError unless these claims fit ``purpose``."""
        if purpose is not LinkPurpose.UNSUBSCRIBE and not self.work_order_id:
            msg = f"a {purpose} link needs a work order"
            raise ValueError(msg)
        if purpose is LinkPurpose.UNSUBSCRIBE and self.channel is None:
            msg = "an unsubscribe link needs a channel"
            raise ValueError(msg)
        if purpose in NEEDS_EXPIRES_AT and self.expires_at is None:
            msg = f"a {purpose} link needs expires_at (the order's verify-by time)"
            raise ValueError(msg)
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            msg = "expires_at must be timezone-aware"
            raise ValueError(msg)


_KEYS = {
    "p": "purpose",
    "t": "tenant",
    "a": "address",
    "l": "locale",
    "z": "timezone",
    "w": "work_order_id",
    "c": "contractor_id",
    "k": "kind",
    "ch": "channel",
    "x": "expires_at",
}


def _to_wire(purpose: LinkPurpose, claims: LinkClaims) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "p": purpose.value,
        "t": claims.tenant,
        "a": claims.address,
        "l": claims.locale,
        "z": claims.timezone,
    }
    optional = {
        "w": claims.work_order_id,
        "c": claims.contractor_id,
        "k": claims.kind,
        "ch": None if claims.channel is None else claims.channel.value,
        "x": None if claims.expires_at is None else int(claims.expires_at.timestamp()),
    }
    wire.update({key: value for key, value in optional.items() if value is not None})
    return wire


def _text(wire: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    value = wire.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > 256:
        msg = f"link claim {_KEYS[key]} is missing or malformed"
        raise LinkForged(msg)
    return value


def _from_wire(purpose: LinkPurpose, wire: object) -> LinkClaims:
    if not isinstance(wire, dict) or set(wire) - set(_KEYS):
        msg = "link claims are malformed"
        raise LinkForged(msg)
    if wire.get("p") != purpose.value:
        msg = f"link is not a {purpose} link"
        raise LinkForged(msg)
    expires = wire.get("x")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int)):
        msg = "link claim expires_at is malformed"
        raise LinkForged(msg)
    channel_name = _text(wire, "ch", required=False)
    try:
        channel = None if channel_name is None else Channel(channel_name)
        expires_at = None if expires is None else datetime.fromtimestamp(expires, tz=UTC)
        claims = LinkClaims(
            tenant=_text(wire, "t", required=True) or "",
            address=_text(wire, "a", required=True) or "",
            locale=_text(wire, "l", required=True) or "",
            timezone=_text(wire, "z", required=True) or "",
            work_order_id=_text(wire, "w", required=False),
            contractor_id=_text(wire, "c", required=False),
            kind=_text(wire, "k", required=False),
            channel=channel,
            expires_at=expires_at,
        )
        claims.check_for(purpose)
    except (ValueError, OverflowError, OSError) as exc:
        if isinstance(exc, LinkForged):
            raise
        msg = f"link claims do not fit a {purpose} link"
        raise LinkForged(msg) from exc
    return claims


def _signer_issued_at(moment: datetime) -> type[TimestampSigner]:
    """A timestamp signer that stamps ``moment`` instead of reading the system clock."""
    stamp = int(moment.timestamp())

    class IssuedAt(TimestampSigner):
        def get_timestamp(self) -> int:
            return stamp

    return IssuedAt


def _salt(purpose: LinkPurpose) -> str:
    return f"fixloop.notifications.link.{purpose.value}"


class LinkSigner:
    """Makes and reads the signed links of one deployment.

    ``secret`` signs new links (at least 32 characters); ``previous_secrets`` are still accepted
    when reading, so the secret can be rotated without breaking links already sent.
    """

    def __init__(self, secret: str, base_url: str, *, previous_secrets: Sequence[str] = ()) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            msg = f"the link secret must have at least {MIN_SECRET_LENGTH} characters"
            raise ValueError(msg)
        if not base_url.startswith(("https://", "http://")):
            msg = "the links' base URL must be an http(s) URL"
            raise ValueError(msg)
        self._secrets = [*previous_secrets, secret]  # itsdangerous signs with the last
        self.base_url = base_url.rstrip("/")

    def _serializer(
        self, purpose: LinkPurpose, signer: type[TimestampSigner] = TimestampSigner
    ) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            self._secrets,
            salt=_salt(purpose),
            serializer=json,
            serializer_kwargs={"separators": (",", ":"), "sort_keys": True},
            signer=signer,
        )

    def token(self, purpose: LinkPurpose, claims: LinkClaims, issued_at: datetime) -> str:
        """The signed token of a link for ``purpose`` issued at ``issued_at``."""
        if issued_at.tzinfo is None:
            msg = "issued_at must be timezone-aware"
            raise ValueError(msg)
        claims.check_for(purpose)
        serializer = self._serializer(purpose, _signer_issued_at(issued_at))
        return str(serializer.dumps(_to_wire(purpose, claims)))

    def url(self, purpose: LinkPurpose, claims: LinkClaims, issued_at: datetime) -> str:
        """The link itself: ``{base_url}/{purpose}/{token}``."""
        return f"{self.base_url}/{purpose.value}/{self.token(purpose, claims, issued_at)}"

    def read(
        self,
        token: str,
        purpose: LinkPurpose,
        now: datetime,
        max_age: timedelta | None = None,
    ) -> LinkClaims:
        """The claims of ``token`` as a ``purpose`` link at ``now``.

        ``max_age`` overrides the purpose's own (:data:`MAX_AGE`). Raises :class:`LinkForged`
        or :class:`LinkExpired`.
        """
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            msg = "link token is malformed"
            raise LinkForged(msg)
        try:
            wire, issued = self._serializer(purpose).loads(token, return_timestamp=True)
        except BadData as exc:
            msg = "link signature is not valid"
            raise LinkForged(msg) from exc
        claims = _from_wire(purpose, wire)
        if issued - now > ISSUED_IN_FUTURE_TOLERANCE:
            msg = "link was issued in the future"
            raise LinkForged(msg)
        limit = max_age if max_age is not None else MAX_AGE.get(purpose)
        if limit is not None and now - issued > limit:
            msg = f"{purpose} link expired on {(issued + limit).date().isoformat()}"
            raise LinkExpired(msg)
        if claims.expires_at is not None and now >= claims.expires_at:
            msg = f"{purpose} link expired on {claims.expires_at.date().isoformat()}"
            raise LinkExpired(msg)
        return claims


__all__ = [
    "MAX_AGE",
    "LinkClaims",
    "LinkExpired",
    "LinkForged",
    "LinkPurpose",
    "LinkSigner",
]
