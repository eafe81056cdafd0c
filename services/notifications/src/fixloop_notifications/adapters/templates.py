"""The message templates shipped with the service, rendered with Jinja.

``templates/<template>/<locale>.subject.j2`` (one line), ``<locale>.txt.j2`` (plain text) and
``<locale>.html.j2`` (HTML, autoescaped: every value from an event is text, never markup), in
the package's ``templates`` folder (package data). A locale is offered for a template once all
three parts exist. Rendering is pure: the same template, locale and values always give the same
message. This is the :class:`~fixloop_notifications.domain.templates.MessageTemplates` the
service runs with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jinja2 import BaseLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

from fixloop_notifications.domain.locales import resolve_locale
from fixloop_notifications.domain.templates import RenderedMessage, UnknownTemplate, single_line

PARTS = ("subject", "txt", "html")
_TEMPLATE_FILE = re.compile(
    r"^(?P<template>[a-z][a-z0-9_]*)/(?P<locale>[a-z]{2}(?:-[A-Z]{2})?)\.(?P<part>subject|txt|html)\.j2$"
)


class TemplateCatalog:
    """The templates shipped in the package (or given by ``loader``) and their translations."""

    def __init__(self, loader: BaseLoader | None = None) -> None:
        self._env = Environment(
            loader=loader or PackageLoader("fixloop_notifications", "templates"),
            autoescape=select_autoescape(
                enabled_extensions=("html.j2",), default_for_string=False, default=False
            ),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        found: dict[str, dict[str, set[str]]] = {}
        for name in self._env.list_templates():
            match = _TEMPLATE_FILE.match(name)
            if match is None:
                continue
            locales = found.setdefault(match["template"], {})
            locales.setdefault(match["locale"], set()).add(match["part"])
        self._locales: dict[str, frozenset[str]] = {
            template: frozenset(loc for loc, parts in locales.items() if set(PARTS) <= parts)
            for template, locales in found.items()
        }

    @property
    def templates(self) -> frozenset[str]:
        return frozenset(t for t, locales in self._locales.items() if locales)

    def locales(self, template: str) -> frozenset[str]:
        """The locales ``template`` is translated into (all three parts present)."""
        return self._locales.get(template, frozenset())

    def render(
        self, template: str, requested_locale: str, values: Mapping[str, Any]
    ) -> RenderedMessage:
        """Render ``template`` in the best translation for ``requested_locale``."""
        available = self.locales(template)
        if not available:
            msg = f"no template {template!r}"
            raise UnknownTemplate(msg)
        locale = resolve_locale(requested_locale, available)

        def part(name: str) -> str:
            return self._env.get_template(f"{template}/{locale}.{name}.j2").render(values)

        return RenderedMessage(
            template=template,
            locale=locale,
            subject=single_line(part("subject")),
            text=part("txt"),
            html=part("html"),
        )


__all__ = ["PARTS", "TemplateCatalog"]
