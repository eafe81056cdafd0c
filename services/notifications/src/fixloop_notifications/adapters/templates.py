"""The message templates shipped with the service, rendered with Jinja and gettext catalogs.

Package data:

- ``templates/<kind>/email.subject.j2`` (one line), ``email.txt.j2`` (plain text),
  ``email.html.j2`` (HTML, autoescaped: every value is text, never markup) and, for notices to
  requesters and contractors, ``sms.txt.j2``. Every human word goes through gettext
  (``{% trans %}``, ``_()``, plural forms with ``{% pluralize %}``).
- ``templates/_pages/<page>.html.j2``: small HTML pages (survey, confirmations, errors).
- ``locales/<locale>/LC_MESSAGES/messages.po``: the translations, compiled in memory when the
  catalog is built (no ``.mo`` files), and ``locales/messages.pot`` (extracted with Babel, see
  ``babel.cfg``).

Moments, days, windows, numbers and enumeration labels are written per render, in the reader's
locale and time zone, by filters: ``moment``, ``day``, ``window``, ``number``, ``percent``,
``label(kind)``. Rendering is pure: the same arguments always give the same message.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations
from jinja2 import BaseLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

from fixloop_notifications.domain.clock_display import (
    Width,
    format_day,
    format_moment,
    format_window,
)
from fixloop_notifications.domain.locales import (
    FALLBACK_LOCALE,
    babel_locale,
    language_of,
    normalize_tag,
    resolve_locale,
    text_direction,
)
from fixloop_notifications.domain.samples import sample_values
from fixloop_notifications.domain.templates import (
    COMMON_VALUES,
    OPTIONAL_VALUES,
    RenderedMessage,
    UnknownTemplate,
    single_line,
)
from fixloop_notifications.domain.vocabulary import label_id
from fixloop_shared.vocabulary import Channel

PACKAGE = "fixloop_notifications"
EMAIL_PARTS = ("subject", "txt", "html")
_EMAIL_FILE = re.compile(r"^(?P<kind>[a-z][a-z0-9_]*)/email\.(?P<part>subject|txt|html)\.j2$")
_SMS_FILE = re.compile(r"^(?P<kind>[a-z][a-z0-9_]*)/sms\.txt\.j2$")
_PAGE_FILE = re.compile(r"^_pages/(?P<page>[a-z][a-z0-9_]*)\.html\.j2$")


def load_translations(po_text: str, locale: str) -> Translations:
    """A gettext catalog compiled in memory from the text of a ``.po`` file (fuzzy entries are
    left out, so they fall back to English)."""
    catalog = read_po(io.StringIO(po_text), locale=locale.replace("-", "_"))
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled, domain="messages")


def shipped_translations(package: str = PACKAGE) -> dict[str, Translations]:
    """The catalogs under ``locales/`` in ``package``, by locale tag (``zh_CN`` -> ``zh-CN``)."""
    found: dict[str, Translations] = {}
    root = resources.files(package) / "locales"
    for folder in sorted(root.iterdir(), key=lambda entry: entry.name):
        po_file = folder / "LC_MESSAGES" / "messages.po"
        if folder.is_dir() and po_file.is_file():
            tag = normalize_tag(folder.name)
            found[tag] = load_translations(po_file.read_text(encoding="utf-8"), tag)
    return found


@dataclass(frozen=True)
class _Reader:
    """Who a render is for: the catalog, locale and time zone the filters write with."""

    translations: Translations
    locale: str
    """The tag dates and numbers are written in (``de-AT`` keeps its ``Jänner``)."""
    babel: Locale
    zone: str


_READER: ContextVar[_Reader] = ContextVar("fixloop_notifications_reader")


def _reader() -> _Reader:
    try:
        return _READER.get()
    except LookupError:
        msg = "a template is rendered only through TemplateCatalog"
        raise RuntimeError(msg) from None


def _gettext(message: str) -> str:
    return _reader().translations.gettext(message)


def _ngettext(singular: str, plural: str, count: int) -> str:
    return _reader().translations.ngettext(singular, plural, count)


def _moment(value: datetime | None, width: Width = "medium") -> str:
    if value is None:
        return ""
    reader = _reader()
    return format_moment(value, reader.zone, reader.locale, width)


def _day(value: date | datetime | None, width: Width = "medium") -> str:
    if value is None:
        return ""
    reader = _reader()
    if isinstance(value, datetime):
        value = value.astimezone(ZoneInfo(reader.zone)).date()
    return format_day(value, reader.locale, width)


def _window(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return ""
    reader = _reader()
    if end is None:
        return format_moment(start, reader.zone, reader.locale)
    return format_window(start, end, reader.zone, reader.locale)


def _number(value: float | None) -> str:
    return "" if value is None else format_decimal(value, locale=_reader().babel)


def _percent(value: float | None) -> str:
    """``value`` in percent (``15`` -> ``15 %`` in German)."""
    return "" if value is None else format_percent(value / 100, locale=_reader().babel)


def _label(value: object, kind: str) -> str:
    if value is None:
        return ""
    msgid = label_id(kind, str(value))
    return _gettext(msgid) if msgid else str(value)


def build_environment(loader: BaseLoader | None = None) -> Environment:
    """The Jinja environment the catalog renders with (also what Babel extraction reads:
    ``jinja2.ext.i18n``, trimmed ``{% trans %}`` blocks)."""
    env = Environment(
        loader=loader or PackageLoader(PACKAGE, "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2",), default_for_string=False, default=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_gettext, ngettext=_ngettext, newstyle=True
    )
    env.filters.update(
        moment=_moment,
        day=_day,
        window=_window,
        number=_number,
        percent=_percent,
        label=_label,
    )
    return env


class TemplateCatalog:
    """The notice templates and pages shipped in the package, in every shipped locale.

    ``loader`` and ``translations`` replace the package's templates and catalogs (tests)."""

    def __init__(
        self,
        loader: BaseLoader | None = None,
        translations: Mapping[str, Translations] | None = None,
    ) -> None:
        self._env = build_environment(loader)
        self._translations = dict(shipped_translations() if translations is None else translations)
        if FALLBACK_LOCALE not in self._translations:
            self._translations[FALLBACK_LOCALE] = Translations()
        email: dict[str, set[str]] = {}
        sms: set[str] = set()
        pages: set[str] = set()
        for name in self._env.list_templates():
            if match := _EMAIL_FILE.match(name):
                email.setdefault(match["kind"], set()).add(match["part"])
            elif match := _SMS_FILE.match(name):
                sms.add(match["kind"])
            elif match := _PAGE_FILE.match(name):
                pages.add(match["page"])
        channels: dict[str, set[Channel]] = {}
        for kind, parts in email.items():
            if set(EMAIL_PARTS) <= parts:
                channels.setdefault(kind, set()).add(Channel.EMAIL)
        for kind in sms:
            channels.setdefault(kind, set()).add(Channel.SMS)
        self._channels = {kind: frozenset(found) for kind, found in channels.items()}
        self._pages = frozenset(pages)

    @property
    def locales(self) -> frozenset[str]:
        """The shipped locale tags (``en``, ``de``, ..., ``zh-CN``, ``ar``)."""
        return frozenset(self._translations)

    @property
    def templates(self) -> frozenset[str]:
        """The notice kinds there are templates for."""
        return frozenset(self._channels)

    @property
    def pages(self) -> frozenset[str]:
        """The pages under ``templates/_pages``."""
        return self._pages

    def channels(self, template: str) -> frozenset[Channel]:
        """The channels ``template`` has a form for (empty if there is no such template)."""
        return self._channels.get(template, frozenset())

    def sample_values(self, template: str) -> dict[str, Any]:
        """Realistic values for previewing ``template``."""
        if template not in self._channels:
            msg = f"no template {template!r}"
            raise UnknownTemplate(msg)
        return sample_values(template)

    def resolve(self, requested_locale: str) -> str:
        """The shipped locale a reader of ``requested_locale`` gets."""
        return resolve_locale(requested_locale, self._translations)

    @contextmanager
    def _reading(self, locale: str, requested: str, zone: str) -> Iterator[None]:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            msg = f"unknown time zone {zone!r}"
            raise ValueError(msg) from error
        # Dates and numbers follow the requested locale where it is the same language as the
        # translation (de-AT writes "Jänner"); otherwise the translation's own locale.
        writing = requested if language_of(requested) == language_of(locale) else locale
        babel = babel_locale(writing)
        if babel.language != language_of(locale):
            writing, babel = locale, babel_locale(locale)
        reader = _Reader(self._translations[locale], writing, babel, zone)
        token = _READER.set(reader)
        try:
            yield
        finally:
            _READER.reset(token)

    def _context(
        self, template: str, locale: str, channel: Channel, values: Mapping[str, Any], zone: str
    ) -> dict[str, Any]:
        context: dict[str, Any] = dict.fromkeys(COMMON_VALUES)
        context.update(dict.fromkeys(OPTIONAL_VALUES.get(template, ())))
        context.update(values)
        context.update(
            lang=locale,
            direction=text_direction(locale),
            channel=str(channel),
            timezone=zone,
        )
        return context

    def render(
        self,
        template: str,
        requested_locale: str,
        *,
        channel: Channel,
        values: Mapping[str, Any],
        timezone: str,
    ) -> RenderedMessage:
        """Render ``template`` for ``channel`` in the best shipped translation for
        ``requested_locale``, with moments shown in ``timezone``."""
        offered = self.channels(template)
        if not offered:
            msg = f"no template {template!r}"
            raise UnknownTemplate(msg)
        if channel not in offered:
            msg = f"template {template!r} has no {channel} form"
            raise UnknownTemplate(msg)
        locale = self.resolve(requested_locale)
        context = self._context(template, locale, channel, values, timezone)
        direction = context["direction"]
        with self._reading(locale, requested_locale, timezone):
            if channel == Channel.SMS:
                text = self._env.get_template(f"{template}/sms.txt.j2").render(context)
                return RenderedMessage(
                    template=template,
                    locale=locale,
                    channel=channel,
                    subject="",
                    text=single_line(text),
                    html="",
                    direction=direction,
                )

            def part(name: str) -> str:
                return self._env.get_template(f"{template}/email.{name}.j2").render(context)

            subject = single_line(part("subject"))
            context["subject"] = subject
            return RenderedMessage(
                template=template,
                locale=locale,
                channel=channel,
                subject=subject,
                text=part("txt"),
                html=part("html"),
                direction=direction,
            )

    def render_page(
        self, page: str, requested_locale: str, values: Mapping[str, Any]
    ) -> tuple[str, str]:
        """The HTML of ``templates/_pages/<page>.html.j2`` in the best translation for
        ``requested_locale``, and the locale used. Values may include ``timezone`` (IANA zone
        moments are shown in; UTC if absent)."""
        if page not in self._pages:
            msg = f"no page {page!r}"
            raise UnknownTemplate(msg)
        locale = self.resolve(requested_locale)
        zone = str(values.get("timezone") or "UTC")
        context = dict(values)
        context.update(lang=locale, direction=text_direction(locale), timezone=zone)
        with self._reading(locale, requested_locale, zone):
            html = self._env.get_template(f"_pages/{page}.html.j2").render(context)
        return html, locale


__all__ = [
    "EMAIL_PARTS",
    "PACKAGE",
    "TemplateCatalog",
    "build_environment",
    "load_translations",
    "shipped_translations",
]
