"""Constrained field types shared by the contracts: strict, bounded, operator-proof."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
)


def _no_control_chars(value: str) -> str:
    if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in value):
        msg = "control characters are not allowed"
        raise ValueError(msg)
    return value


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _iana_zone(value: str) -> str:
    if value not in _known_zones():
        msg = f"unknown IANA time zone {value!r}"
        raise ValueError(msg)
    return value


# --- URI-references (RFC 3986, section 4.1)

URI_REFERENCE_MAX_LENGTH = 256
"""The longest CloudEvents ``source`` (and source platform) Fixloop accepts, in characters."""

_UNRESERVED_SUB_DELIMS = r"A-Za-z0-9\-._~!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED_SUB_DELIMS}:@]|{_PCT})"
_SEGMENT_NC = rf"(?:[{_UNRESERVED_SUB_DELIMS}@]|{_PCT})"  # a first segment without a colon
_AUTHORITY = rf"(?:[{_UNRESERVED_SUB_DELIMS}:@]|{_PCT}|\[[0-9A-Za-z:.\-_~!$&'()*+,;=]+\])*"
_PATH_ABEMPTY = rf"(?:/{_PCHAR}*)*"
_QUERY_FRAGMENT = rf"(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"
URI_REFERENCE_PATTERN = (
    r"^(?:"
    rf"[A-Za-z][A-Za-z0-9+.\-]*:(?://{_AUTHORITY}{_PATH_ABEMPTY}|(?:{_PCHAR}|/)*)"  # URI
    rf"|//{_AUTHORITY}{_PATH_ABEMPTY}"  # network-path reference
    rf"|/(?:{_PCHAR}|/)*"  # absolute-path reference
    rf"|{_SEGMENT_NC}+{_PATH_ABEMPTY}"  # relative-path reference
    rf"){_QUERY_FRAGMENT}$"
)
"""RFC 3986 ``URI-reference`` (a URI or a relative reference), as a regular expression."""

_URI_REFERENCE = re.compile(URI_REFERENCE_PATTERN)
_URI_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"
)


def _uri_reference(value: str) -> str:
    for position, char in enumerate(value):
        if char not in _URI_CHARS:
            msg = (
                f"not a URI-reference: character {char!r} at position {position} is not allowed"
                " (RFC 3986; percent-encode it)"
            )
            raise ValueError(msg)
    if not _URI_REFERENCE.fullmatch(value):
        msg = (
            "not a URI-reference (RFC 3986): check the scheme, '%' escapes, and that a relative"
            " reference has no ':' in its first segment"
        )
        raise ValueError(msg)
    return value


UriReference = Annotated[
    str,
    StringConstraints(min_length=1, max_length=URI_REFERENCE_MAX_LENGTH),
    AfterValidator(_uri_reference),
    WithJsonSchema(
        {
            "type": "string",
            "format": "uri-reference",
            "minLength": 1,
            "maxLength": URI_REFERENCE_MAX_LENGTH,
            "pattern": URI_REFERENCE_PATTERN,
        }
    ),
]
"""A non-empty RFC 3986 URI-reference of at most 256 characters, compared as an exact string.

``https://fieldhub.example.com/orders``, ``urn:fixloop:fieldhub``, ``/x`` and ``fieldhub`` are
URI-references; ``field hub`` and ``1a:b`` are not.
"""

# --- moments

MAX_CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a moment that already happened may lie (the sender's clock is ahead)."""

EARLIEST_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)
"""Nothing Fixloop is told about happened before this."""

NOW_CONTEXT_KEY = "now"
"""Validation context key: the moment to judge against (default: the current time)."""


def _already_happened(value: datetime, info: ValidationInfo) -> datetime:
    context = info.context if isinstance(info.context, dict) else {}
    now = context.get(NOW_CONTEXT_KEY)
    if not isinstance(now, datetime):
        now = datetime.now(UTC)
    if value < EARLIEST_MOMENT:
        msg = f"must not be before {EARLIEST_MOMENT.isoformat()}"
        raise ValueError(msg)
    if value > now + MAX_CLOCK_SKEW:
        minutes = int(MAX_CLOCK_SKEW.total_seconds() // 60)
        msg = f"lies in the future (more than {minutes} minutes after the time of receipt)"
        raise ValueError(msg)
    return value


PastMoment = Annotated[AwareDatetime, AfterValidator(_already_happened)]
"""A timezone-aware moment that has already happened: not before 1970, and not after the time of
receipt plus :data:`MAX_CLOCK_SKEW` (five minutes). Judged against the validation context's
``now`` when given, so tests are deterministic."""

# --- identifiers

TenantId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
SourcePlatform = UriReference
"""An external platform is known by its CloudEvents ``source``: one type, one identity."""
ExternalId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")]
"""An id issued by someone else; also the type of the CloudEvents ``subject``, because an inbound
event's subject is its order's ``external_id`` (one identifier, one type). Every
:data:`Identifier` is an ``ExternalId``."""
EVENT_ID_MAX_LENGTH = 256


def _printable(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        msg = "control characters are not allowed"
        raise ValueError(msg)
    return value


EventId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=EVENT_ID_MAX_LENGTH),
    AfterValidator(_printable),
]
"""A CloudEvents ``id`` (any non-empty string, as the spec says, bounded and without control
characters); also the type of ``correlationid``, which defaults to the id."""
EquipmentClass = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{1,39}$")]
PartNumber = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
PostalCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]{0,11}$")]
Locale = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")]
TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_iana_zone)]
Quantity = Annotated[int, Field(ge=1, le=10_000)]

DESCRIPTION_MAX_LENGTH = 4000
"""The documented limit on a work order's description (characters)."""

Name = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_no_control_chars)
]
ShortText = Annotated[
    str, StringConstraints(min_length=1, max_length=500), AfterValidator(_no_control_chars)
]
Description = Annotated[
    str,
    StringConstraints(min_length=1, max_length=DESCRIPTION_MAX_LENGTH),
    AfterValidator(_no_control_chars),
]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()-]{5,32}$")]
