"""Text messages (SMS) as values: E.164 numbers, and texts fitted to a number of segments.

An SMS is carried in segments of 140 octets. A text written only in the GSM 03.38 alphabet
(GSM-7) takes 160 characters in one segment, or 153 per segment once it needs several (the rest
is the concatenation header); characters of the extension table (``€``, ``[``, ``{`` …) take two
septets. Any other character makes the whole text UCS-2: 70 UTF-16 code units in one segment,
67 per segment otherwise, and a character outside the Basic Multilingual Plane (most emoji) takes
two. A character is never split across segments.

A text longer than the allowed segments is shortened at a word boundary and marked with an
ellipsis: ``…`` in UCS-2 texts, ``...`` in GSM-7 texts (``…`` is not in the GSM alphabet; adding
it would turn the whole text into UCS-2 and cut its room by more than half).
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 basic character set (one septet each; the escape character left out)."""
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
"""The GSM 03.38 extension table: each takes two septets (escape + character)."""

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67

ELLIPSIS_UCS2 = "…"
ELLIPSIS_GSM7 = "..."

RAW_PHONE_MAX_LENGTH = 64
"""Longer input is not a phone number (and is not handed to the parser)."""


class InvalidPhone(ValueError):  # noqa: N818 - the name the contract gives it
    """A phone number that cannot be used: the message is a one-line reason."""


@dataclass(frozen=True)
class OutgoingSms:
    """One text message, ready to be sent (and sent again, identically, after a crash)."""

    message_id: str
    """Stable across attempts (the notification id): the provider's idempotency key."""
    to: str
    """The recipient in E.164 (``+4930901820``)."""
    sender: str
    """The sender: an E.164 number or an alphanumeric sender id, as the provider accepts."""
    text: str
    segments: int


def normalize_phone(raw: str, region: str | None) -> str:
    """``raw`` in E.164, read as a number of ``region`` (ISO 3166 code, e.g. ``DE``) when it has
    no ``+`` country prefix; :class:`InvalidPhone` with a one-line reason otherwise."""
    where = f" for {region}" if region else ""
    if len(raw) > RAW_PHONE_MAX_LENGTH:
        msg = f"not a valid phone number{where}: longer than {RAW_PHONE_MAX_LENGTH} characters"
        raise InvalidPhone(msg)
    region_code = region.upper() if region else None
    try:
        number = phonenumbers.parse(raw, region_code)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            reason = (
                "no country prefix (+…) and no region to read it in"
                if not region
                else f"unknown country prefix or region {region!r}"
            )
            msg = f"not a valid phone number{where}: {raw!r} ({reason})"
        else:
            msg = f"not a valid phone number{where}: {raw!r}"
        raise InvalidPhone(msg) from exc
    if not phonenumbers.is_valid_number(number):
        msg = f"not a valid phone number{where}: {raw!r}"
        raise InvalidPhone(msg)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can be sent in the GSM 7-bit alphabet (basic and extension tables)."""
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def _unit_sizes(text: str, gsm: bool) -> list[int]:
    """The size of each character in its encoding's units (septets or UTF-16 code units)."""
    if gsm:
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def _segments_of(sizes: list[int], gsm: bool) -> int:
    single, part = (GSM7_SINGLE, GSM7_PART) if gsm else (UCS2_SINGLE, UCS2_PART)
    if sum(sizes) <= single:
        return 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > part:  # a character never straddles two segments
            segments += 1
            used = 0
        used += size
    return segments


def count_segments(text: str) -> int:
    """How many segments ``text`` takes (an empty text still is one message)."""
    gsm = is_gsm7(text)
    return _segments_of(_unit_sizes(text, gsm), gsm)


def fit_sms(text: str, max_segments: int = 3) -> tuple[str, int]:
    """``text`` as it is if it fits in ``max_segments``, else shortened at a word boundary and
    ended with an ellipsis so that it does; with the number of segments it takes."""
    if max_segments < 1:
        msg = "an SMS has at least one segment"
        raise ValueError(msg)
    segments = count_segments(text)
    if segments <= max_segments:
        return text, segments
    gsm = is_gsm7(text)
    ellipsis = ELLIPSIS_GSM7 if gsm else ELLIPSIS_UCS2
    part = GSM7_PART if gsm else UCS2_PART
    single = GSM7_SINGLE if gsm else UCS2_SINGLE
    room = single if max_segments == 1 else max_segments * part
    sizes = _unit_sizes(text, gsm)
    room -= sum(_unit_sizes(ellipsis, gsm))
    # The longest prefix that fits by units, then back to the last word boundary in it.
    cut, used = 0, 0
    while cut < len(text) and used + sizes[cut] <= room:
        used += sizes[cut]
        cut += 1
    while True:
        shortened = _shorten_at(text, cut) + ellipsis
        segments = count_segments(shortened)
        if segments <= max_segments:
            return shortened, segments
        cut -= 1  # packing lost a few units at segment ends: one character less


def _shorten_at(text: str, cut: int) -> str:
    """``text[:cut]`` ended at the last word boundary in it (if one is in its second half),
    trailing spaces removed."""
    prefix = text[:cut]
    if cut < len(text) and not text[cut].isspace():
        boundary = max(prefix.rfind(" "), prefix.rfind("\n"), prefix.rfind("\t"))
        if boundary >= cut // 2:
            prefix = prefix[:boundary]
    return prefix.rstrip()


def compose_sms(
    *,
    message_id: str,
    to: str,
    region: str | None,
    sender: str,
    text: str,
    max_segments: int = 3,
) -> OutgoingSms:
    """An SMS to ``to`` (normalized to E.164, :class:`InvalidPhone` if it cannot be) with
    ``text`` fitted to ``max_segments``."""
    fitted, segments = fit_sms(text, max_segments)
    return OutgoingSms(
        message_id=message_id,
        to=normalize_phone(to, region),
        sender=sender,
        text=fitted,
        segments=segments,
    )
