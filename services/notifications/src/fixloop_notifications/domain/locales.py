"""Which of the available translations a recipient gets.

A recipient's locale is a BCP 47 tag such as ``de-AT``. The best match is the exact tag, then
its language (``de``), then the fallback language (``en``).
"""

from __future__ import annotations

from collections.abc import Collection

FALLBACK_LOCALE = "en"


def language_of(locale: str) -> str:
    """The language subtag of a locale tag (``de-AT`` -> ``de``)."""
    return locale.split("-", 1)[0].lower()


def candidates(requested: str, fallback: str = FALLBACK_LOCALE) -> tuple[str, ...]:
    """The tags to try for ``requested``, best first, without repeats."""
    return tuple(dict.fromkeys((requested, language_of(requested), fallback)))


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
