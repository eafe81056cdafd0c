"""Message templates as the domain sees them: a named template, rendered for a locale.

What a template catalog must do is :class:`MessageTemplates`; the catalog the service runs with
(Jinja templates shipped in the package) is
:class:`fixloop_notifications.adapters.templates.TemplateCatalog`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class RenderedMessage:
    template: str
    locale: str
    """The locale of the translation used (after fallback), e.g. ``de`` for ``de-AT``."""
    subject: str
    text: str
    html: str


class UnknownTemplate(LookupError):  # noqa: N818 - the domain word
    """No translation of this template exists at all."""


class MessageTemplates(Protocol):
    """A catalog of message templates, each translated into some locales."""

    def render(
        self, template: str, requested_locale: str, values: Mapping[str, Any]
    ) -> RenderedMessage:
        """Render ``template`` in the best translation for ``requested_locale`` (exact locale,
        then its language, then English), with ``values``. The subject is one line; values are
        text, escaped in the HTML part. Raises :class:`UnknownTemplate` if ``template`` has no
        translation at all. Pure: the same arguments always give the same message."""
        ...


def single_line(value: str) -> str:
    """Collapse every run of whitespace (line breaks included) into one space."""
    return " ".join(value.split())


__all__ = ["MessageTemplates", "RenderedMessage", "UnknownTemplate", "single_line"]
