"""Which of the available translations a recipient gets, and which way its script runs.

A recipient's locale is a BCP 47 tag such as ``de-AT`` (``de_AT`` is read the same). The best
match is the exact tag, then language and region without a script (``zh-Hans-CN`` ->
``zh-CN``), then the language (``de``), then the fallback language (``en``). Tags are read with
Babel where it knows the language, and split by hand where it does not.
"""

from __future__ import annotations

from collections.abc import Collection

from babel import Locale, UnknownLocaleError

FALLBACK_LOCALE = "en"
LEFT_TO_RIGHT = "ltr"
RIGHT_TO_LEFT = "rtl"


def _subtags(locale: str) -> list[str]:
    return [part for part in locale.strip().replace("_", "-").split("-") if part]


def normalize_tag(locale: str) -> str:
    """``locale`` written as a BCP 47 tag: ``de_at`` -> ``de-AT``, ``zh_hans_cn`` ->
    ``zh-Hans-CN``. Extensions and variants are kept as given (lower case)."""
    parts = _subtags(locale)
    if not parts:
        return ""
    tag = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            tag.append(part.title())
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            tag.append(part.upper())
        else:
            tag.append(part.lower())
    return "-".join(tag)


def language_of(locale: str) -> str:
    """The language subtag of a locale tag (``de-AT`` -> ``de``)."""
    parts = _subtags(locale)
    return parts[0].lower() if parts else ""


def _region_of(tag: str) -> str | None:
    for part in tag.split("-")[1:]:
        if (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            return part
    return None


def candidates(requested: str, fallback: str = FALLBACK_LOCALE) -> tuple[str, ...]:
    """The tags to try for ``requested``, best first, without repeats."""
    tag = normalize_tag(requested)
    language = language_of(tag)
    region = _region_of(tag)
    tags = [tag, f"{language}-{region}" if region else "", language, fallback]
    return tuple(dict.fromkeys(t for t in tags if t))


class NoTranslation(LookupError):  # noqa: N818 - the domain word
    """Neither the requested locale, its language nor the fallback is available."""


def resolve_locale(
    requested: str, available: Collection[str], fallback: str = FALLBACK_LOCALE
) -> str:
    """The best available locale for ``requested``: exact -> language -> ``fallback``."""
    for tag in candidates(requested, fallback):
        if tag in available:
            return tag
    msg = f"no translation for {requested!r} among {sorted(available)!r}"
    raise NoTranslation(msg)


def babel_locale(locale: str) -> Locale:
    """The Babel locale for a tag (``zh-CN`` -> ``zh_Hans_CN``), English if Babel has no data
    for it."""
    try:
        return Locale.parse(normalize_tag(locale) or FALLBACK_LOCALE, sep="-")
    except (UnknownLocaleError, ValueError):
        try:
            return Locale.parse(language_of(locale) or FALLBACK_LOCALE)
        except (UnknownLocaleError, ValueError):
            return Locale.parse(FALLBACK_LOCALE)


def text_direction(locale: str) -> str:
    """``"rtl"`` for locales written right to left (Arabic, Hebrew, ...), else ``"ltr"``."""
    order = babel_locale(locale).character_order
    return RIGHT_TO_LEFT if order == "right-to-left" else LEFT_TO_RIGHT


__all__ = [
    "FALLBACK_LOCALE",
    "LEFT_TO_RIGHT",
    "RIGHT_TO_LEFT",
    "NoTranslation",
    "babel_locale",
    "candidates",
    "language_of",
    "normalize_tag",
    "resolve_locale",
    "text_direction",
]
