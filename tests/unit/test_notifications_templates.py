"""Notice templates and their translations: every kind, locale and channel renders completely."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.pofile import read_po

from fixloop_notifications.adapters.templates import TemplateCatalog
from fixloop_notifications.domain.clock_display import format_moment, format_window
from fixloop_notifications.domain.locales import (
    NoTranslation,
    candidates,
    normalize_tag,
    resolve_locale,
    text_direction,
)
from fixloop_notifications.domain.samples import SAMPLE_KINDS
from fixloop_notifications.domain.templates import RenderedMessage
from fixloop_notifications.domain.vocabulary import all_label_ids, label_id
from fixloop_shared.vocabulary import Channel, DelayCause, Milestone, Priority

CATALOG = TemplateCatalog()
PACKAGE = Path(str(resources.files("fixloop_notifications")))
SHIPPED = {"en", "de", "fr", "es", "pt", "th", "zh-CN", "ar"}
REQUESTER_AND_CONTRACTOR = {
    "workorder_received", "contractor_assigned", "visit_scheduled", "contractor_en_route",
    "contractor_on_site", "awaiting_parts", "workorder_delayed", "delay_predicted",
    "work_completed", "workorder_closed", "workorder_cancelled", "offer_made", "offer_withdrawn",
    "job_cancelled", "credential_expiring",
}  # fmt: skip
OPERATOR = {"order_unfilled", "sla_breached", "sla_escalated", "quality_alert", "webhook_disabled"}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trimmed": "true", "encoding": "utf-8"}


def render(
    kind: str,
    locale: str = "en",
    channel: Channel = Channel.EMAIL,
    zone: str = "Europe/Berlin",
    **overrides: object,
) -> RenderedMessage:
    values = {**CATALOG.sample_values(kind), **overrides}
    return CATALOG.render(kind, locale, channel=channel, values=values, timezone=zone)


# -- the catalog's shape ----------------------------------------------------------------------


def test_every_notice_kind_has_its_channels() -> None:
    assert CATALOG.locales == SHIPPED
    assert CATALOG.templates == REQUESTER_AND_CONTRACTOR | OPERATOR == set(SAMPLE_KINDS)
    for kind in REQUESTER_AND_CONTRACTOR:
        assert CATALOG.channels(kind) == {Channel.EMAIL, Channel.SMS}, kind
    for kind in OPERATOR:
        assert CATALOG.channels(kind) == {Channel.EMAIL}, kind


def test_every_kind_renders_in_every_locale_on_every_channel() -> None:
    for kind in sorted(CATALOG.templates):
        for locale in sorted(CATALOG.locales):
            for channel in CATALOG.channels(kind):
                values = CATALOG.sample_values(kind)
                message = CATALOG.render(
                    kind, locale, channel=channel, values=values, timezone="Asia/Bangkok"
                )
                assert message.locale == locale
                assert message.channel is channel
                assert message.text.strip(), (kind, locale, channel)
                if channel is Channel.SMS:
                    assert message.subject == message.html == ""
                    assert "\n" not in message.text
                    assert len(message.text) < 320, (kind, locale, len(message.text))
                    if values.get("reference"):
                        assert values["reference"] in message.text
                else:
                    assert message.subject
                    assert "\n" not in message.subject
                    assert f'<html lang="{locale}" dir="{message.direction}">' in message.html
                for body in (message.text, message.html):
                    assert "None" not in body, (kind, locale, channel)
                    assert "%(" not in body, (kind, locale, channel)


def test_unknown_templates_and_channels_are_refused() -> None:
    with pytest.raises(LookupError, match="no template"):
        CATALOG.render("farewell", "en", channel=Channel.EMAIL, values={}, timezone="UTC")
    with pytest.raises(LookupError, match="no sms form"):
        render("sla_breached", channel=Channel.SMS)
    with pytest.raises(ValueError, match="time zone"):
        render("workorder_received", zone="Mars/Olympus")


# -- the catalogs are complete ----------------------------------------------------------------


def _template_msgids() -> Iterator[str | tuple[str, ...]]:
    for *_, message, _comments, _context in extract_from_dir(
        str(PACKAGE / "templates"),
        method_map=[("**.j2", "jinja2")],
        options_map={"**.j2": JINJA_OPTIONS},
        directory_filter=lambda _path: True,
    ):
        yield message
    for _line, message, _comments, _context in extract_from_file(
        "python", str(PACKAGE / "domain" / "vocabulary.py")
    ):
        yield message


@cache
def source_msgids() -> frozenset[str | tuple[str, ...]]:
    return frozenset(_template_msgids())


@cache
def shipped_catalog(folder: str) -> Catalog:
    with (PACKAGE / "locales" / folder / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po)


def _placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


@pytest.mark.parametrize("folder", ["en", "de", "fr", "es", "pt", "th", "zh_CN", "ar"])
def test_each_catalog_translates_every_message_with_the_same_placeholders(folder: str) -> None:
    catalog = shipped_catalog(folder)
    wanted = source_msgids()
    assert wanted >= set(all_label_ids())
    problems: list[str] = []
    for msgid in sorted(wanted, key=str):
        entry = catalog.get(msgid)
        if entry is None or entry.fuzzy:
            problems.append(f"{folder}: no translation of {msgid!r}")
            continue
        forms = (
            tuple(entry.string)
            if isinstance(entry.string, (tuple, list))
            else (entry.string or "",)
        )
        plural = isinstance(msgid, tuple)
        if plural and len(forms) != catalog.num_plurals:
            problems.append(f"{folder}: {msgid!r} has {len(forms)} of {catalog.num_plurals} forms")
        expected = _placeholders(msgid[-1] if isinstance(msgid, tuple) else str(msgid))
        for form in forms:
            if not form.strip():
                problems.append(f"{folder}: empty translation of {msgid!r}")
                continue
            found = _placeholders(form)
            # A plural form may leave the number out ("one day", Arabic dual forms).
            if found != expected and not (plural and found == expected - {"count"}):
                problems.append(f"{folder}: placeholders of {msgid!r} differ in {form!r}")
            if "python-format" in entry.flags and "%" in PLACEHOLDER.sub("", form).replace(
                "%%", ""
            ):
                problems.append(f"{folder}: stray % in {form!r}")
    assert not problems, "\n".join(problems)


def test_plural_forms_headers_match_the_language() -> None:
    assert shipped_catalog("ar").num_plurals == 6
    assert shipped_catalog("th").num_plurals == 1
    assert shipped_catalog("zh_CN").num_plurals == 1
    assert shipped_catalog("de").num_plurals == 2
    assert shipped_catalog("fr").plural_expr == "(n > 1)"


def test_no_compiled_catalogs_are_shipped() -> None:
    assert not list((PACKAGE / "locales").rglob("*.mo"))
    assert (PACKAGE / "locales" / "messages.pot").is_file()


# -- locales ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("de-AT", "de"),
        ("de_at", "de"),
        ("DE", "de"),
        ("zh-TW", "en"),
        ("zh-Hans-CN", "zh-CN"),
        ("zh_CN", "zh-CN"),
        ("ar-EG", "ar"),
        ("pt-BR", "pt"),
        ("sw", "en"),
        ("", "en"),
    ],
)
def test_locale_fallback_chain(requested: str, expected: str) -> None:
    assert CATALOG.resolve(requested) == expected
    assert render("workorder_received", requested).locale == expected


def test_tags_are_read_with_either_separator() -> None:
    assert normalize_tag("zh_hant_tw") == "zh-Hant-TW"
    assert candidates("zh-Hant-TW") == ("zh-Hant-TW", "zh-TW", "zh", "en")
    assert text_direction("ar-SA") == "rtl"
    assert text_direction("fa") == "rtl"
    assert text_direction("de") == "ltr"
    assert text_direction("qq-ZZ") == "ltr"
    with pytest.raises(NoTranslation):
        resolve_locale("es", {"de"})


def test_arabic_is_written_right_to_left() -> None:
    message = render("workorder_received", "ar")
    assert message.direction == "rtl"
    assert '<html lang="ar" dir="rtl">' in message.html
    assert "استلمنا طلب الإصلاح" in message.subject
    assert render("workorder_received", "de").direction == "ltr"


def test_german_receipt_end_to_end() -> None:
    message = render("workorder_received", "de-AT", zone="Europe/Vienna")
    assert message.locale == "de"
    assert message.subject == "Ihr Reparaturauftrag wo-8f2c ist eingegangen (Plant North)"
    text = message.text
    assert "Guten Tag Anna Berger," in text
    assert "Priorität: Hoch" in text
    assert "Art: Störung" in text
    # Dates follow the requested region: Austrian German writes "Jänner".
    assert "Eingegangen: Mi., 14. Jän. 2026, 08:46 MEZ" in text
    assert "Alle Zeiten in der Zeitzone Europe/Vienna." in text
    assert "Diese E-Mails abbestellen: https://" in text


# -- moments, windows, numbers ----------------------------------------------------------------


def test_times_are_shown_in_the_given_zone_across_a_dst_change() -> None:
    # Europe/Berlin leaves summer time at 01:00 UTC on 25 October 2026.
    before = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    after = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert format_moment(before, "Europe/Berlin", "de") == "So., 25. Okt. 2026, 02:30 MESZ"
    assert format_moment(after, "Europe/Berlin", "de") == "So., 25. Okt. 2026, 02:30 MEZ"
    assert format_moment(before, "Europe/Berlin", "en").endswith("2:30\u202fAM GMT+02:00")
    assert format_moment(after, "Europe/Berlin", "en").endswith("2:30\u202fAM GMT+01:00")
    message = render("contractor_en_route", "de", eta=after)
    assert "Voraussichtliche Ankunft: So., 25. Okt. 2026, 02:30 MEZ" in message.text
    assert "02:30 MEZ" not in render("contractor_en_route", "de", eta=after, zone="UTC").text


def test_a_window_is_one_date_and_two_times() -> None:
    start = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
    end = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)
    assert (
        format_window(start, end, "Europe/Berlin", "de")
        == "Do., 15. Jan. 2026, 09:00\u201312:00 Uhr MEZ"
    )
    assert format_window(start, end, "America/New_York", "en") == (
        "Thu, Jan 15, 2026, 3:00\u2009\u2013\u20096:00\u202fAM EST"
    )
    # Across midnight in the reader's zone: two moments.
    late = format_window(start, end, "Pacific/Kiritimati", "en")
    assert late.count("2026") == 2
    subject = render("visit_scheduled", "de", window_start=start, window_end=end).subject
    assert subject.endswith("Do., 15. Jan. 2026, 09:00\u201312:00 Uhr MEZ")


def test_days_and_percent_are_written_in_the_locale() -> None:
    text = render("credential_expiring", "fr", expires_on=date(2026, 3, 1), days_left=1).text
    assert "1 mars 2026" in text
    delayed = render("workorder_delayed", "de").text
    assert "15\xa0%" in delayed
    assert "15%" in render("workorder_delayed", "en").text


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_moment(datetime(2026, 1, 1, 12, 0), "Europe/Berlin", "en")  # noqa: DTZ001


# -- plural forms and labels ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "count", "expected"),
    [
        ("de", 1, "benötigt 1 Ersatzteil,"),
        ("de", 5, "benötigt 5 Ersatzteile,"),
        ("en", 1, "needs 1 part to"),
        ("en", 5, "needs 5 parts to"),
        ("ar", 1, "قطعة غيار واحدة"),
        ("ar", 2, "قطعتي غيار"),
        ("ar", 5, "5 قطع غيار"),
        ("ar", 11, "11 قطعة غيار"),
    ],
)
def test_parts_count_uses_the_languages_plural_forms(
    locale: str, count: int, expected: str
) -> None:
    for channel in (Channel.EMAIL,):
        text = render("awaiting_parts", locale, channel, parts_count=count).text
        assert expected in text


def test_days_left_plural_and_today() -> None:
    assert render("credential_expiring", "de", days_left=1).subject.endswith("in 1 Tag ab")
    assert render("credential_expiring", "de", days_left=9).subject.endswith("in 9 Tagen ab")
    assert render("credential_expiring", "en", days_left=0).subject.endswith("expires today")


def test_enumerations_are_translated_and_unknown_values_shown_as_given() -> None:
    assert {label_id("priority", p) for p in Priority} <= all_label_ids()
    assert all(label_id("delay_cause", c) for c in DelayCause)
    assert all(label_id("milestone", m) for m in Milestone)
    assert label_id("credential_kind", "gas_safe_registration") is None
    text = render("credential_expiring", "de", credential_kind="gas_safe_registration").text
    assert "Art des Nachweises: gas_safe_registration" in text
    assert "Grund: Teile nicht verfügbar" in render("workorder_delayed", "de").text
    assert "Betroffener Schritt: Abschluss der Reparatur" in render("delay_predicted", "de").text


# -- values are text --------------------------------------------------------------------------


def test_values_are_escaped_in_html_and_verbatim_in_text() -> None:
    hostile = 'Leaks <script>alert("x")</script> & <img src=x onerror=alert(1)>'
    message = render(
        "workorder_received",
        "fr",
        description=hostile,
        site_name="<b>Plant</b>",
        recipient_name="Eve <evil@x.org>",
    )
    html = message.html
    assert "<script>" not in html
    assert "<img" not in html
    assert "<b>Plant</b>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img" in html
    assert "&lt;b&gt;Plant&lt;/b&gt;" in html
    assert "Eve &lt;evil@x.org&gt;" in html
    assert hostile in message.text
    assert "Eve <evil@x.org>" in message.text
    closed = render("workorder_closed", "de", survey_url='https://x.example/s?a=1&b="2"')
    assert 'href="https://x.example/s?a=1&amp;b=&#34;2&#34;"' in closed.html


def test_the_subject_is_one_line() -> None:
    message = render("workorder_received", "de", site_name="North\r\nBcc: victim@example.com")
    assert message.subject == (
        "Ihr Reparaturauftrag wo-8f2c ist eingegangen (North Bcc: victim@example.com)"
    )


def test_optional_values_may_be_left_out() -> None:
    values = CATALOG.sample_values("contractor_en_route")
    del values["eta"], values["contractor_name"], values["unsubscribe_url"]
    message = CATALOG.render(
        "contractor_en_route", "es", channel=Channel.EMAIL, values=values, timezone="UTC"
    )
    assert "Fixloop" in message.text
    assert "unsubscribe" not in message.html.lower()


# -- pages ------------------------------------------------------------------------------------


def test_pages_render_in_every_locale() -> None:
    assert CATALOG.pages
    values = {
        "reference": "wo-8f2c",
        "action": "/s/token",
        "address": "anna@example.com",
        "error": None,
        "rating": None,
        "comment": "",
        "reason": "",
        "every_kind": True,
    }
    for page in sorted(CATALOG.pages - {"base"}):
        for locale in sorted(CATALOG.locales):
            html, used = CATALOG.render_page(page, locale, values)
            assert used == locale
            assert f'lang="{locale}"' in html
    html, used = CATALOG.render_page("link_expired", "ar-EG", {})
    assert used == "ar"
    assert 'dir="rtl"' in html
    assert "انتهت صلاحية" in html
