"""Notifications domain: locale resolution, local times, templates, MIME messages, retries."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from dataclasses import replace
from datetime import UTC, datetime, time
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import DictLoader
from markupsafe import escape

from fixloop_notifications.adapters.directory import MemoryNoticeDirectory
from fixloop_notifications.adapters.memory import MemoryDeliveryLog
from fixloop_notifications.adapters.preferences import MemoryPreferences
from fixloop_notifications.adapters.templates import TemplateCatalog
from fixloop_notifications.app.intake import SmsSettings, WorkOrderNotifications, received_order
from fixloop_notifications.app.links import NoticeLinks
from fixloop_notifications.domain.clock_display import format_moment
from fixloop_notifications.domain.delivery import (
    ERROR_MAX_LENGTH,
    Delivery,
    DeliveryError,
    DeliveryStatus,
    RetryPolicy,
    notification_id_for,
    smtp_reply_is_permanent,
    summarize_error,
)
from fixloop_notifications.domain.links import LinkSigner
from fixloop_notifications.domain.locales import NoTranslation, candidates, resolve_locale
from fixloop_notifications.domain.mail import Mailbox, build_email, message_id_for
from fixloop_notifications.domain.notices import Fact, Known, notices_for
from fixloop_notifications.domain.quiet_hours import QuietHours
from fixloop_notifications.domain.templates import UnknownTemplate
from fixloop_shared.contracts import (
    Address,
    Category,
    Channel,
    Equipment,
    Priority,
    Requester,
    Site,
    WorkOrderReceived,
)
from fixloop_shared.envelope import Event, EventEnvelope
from fixloop_shared.memory import MemoryStore

SENDER = Mailbox.parse("Fixloop <no-reply@fixloop.local>")
CATALOG = TemplateCatalog()
RECEIPT_TEMPLATE = "workorder_received"
PLANNED_AT = datetime(2026, 1, 14, 7, 47, tzinfo=UTC)
_MEMORY = MemoryStore("notifications")
NOTIFICATIONS = WorkOrderNotifications(
    deliveries=MemoryDeliveryLog(_MEMORY),
    directory=MemoryNoticeDirectory(_MEMORY),
    catalog=CATALOG,
    sender=SENDER,
    desks={},
    preferences=MemoryPreferences(),
    links=NoticeLinks(LinkSigner("x" * 32, "https://links.fixloop.example")),
    webhooks=None,
    sms=SmsSettings(sender="Fixloop"),
    # Never quiet: these tests are about what is written, not when.
    quiet_hours=QuietHours(start=time(0, 0), end=time(0, 0)),
    clock=lambda: PLANNED_AT,
)
IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def order(
    *,
    locale: str = "en",
    timezone: str = "Europe/Berlin",
    description: str = "Cooling unit on the roof trips every few minutes.",
    reported_at: datetime | None = datetime(2026, 1, 14, 7, 45, tzinfo=UTC),
    received_at: datetime = datetime(2026, 1, 14, 7, 46, tzinfo=UTC),
    requester_name: str = "Anna Berger",
    site_name: str = "Plant North",
) -> WorkOrderReceived:
    return WorkOrderReceived(
        external_id="FH-2026-0042",
        site=Site(
            site_id="site-7",
            name=site_name,
            address=Address(
                line1="Industriestr. 5", city="Berlin", postal_code="10115", country="DE"
            ),
            timezone=timezone,
        ),
        equipment=Equipment(
            equipment_id="chiller-2", equipment_class="hvac", manufacturer="Daikin", model="EWAD"
        ),
        category=Category.BREAKDOWN,
        priority=Priority.HIGH,
        description=description,
        requester=Requester(name=requester_name, email="anna@example.com", locale=locale),
        reported_at=reported_at,
        work_order_id="wo-8f2c",
        tenant="acme",
        source_platform="fieldhub",
        received_at=received_at,
    )


def plan(received: WorkOrderReceived, event_id: str = "evt-1") -> Delivery:
    """The receipt e-mail the service records for ``received`` (through its notice rules)."""
    envelope = EventEnvelope(
        id=event_id,
        type=received.event_type,
        source="orders",
        time=PLANNED_AT,
        subject=received.work_order_id,
        tenant=received.tenant,
        correlationid=event_id,
    )
    event = Event(envelope=envelope, payload=received)
    known = received_order(event)
    fact = Fact(event_id, received.event_type, received.tenant, PLANNED_AT, {})
    (notice,) = notices_for(fact, Known(order=known, desk=None))
    deliveries = asyncio.run(
        NOTIFICATIONS.deliveries_for(
            notice,
            event_id=event_id,
            event_type=received.event_type,
            tenant=received.tenant,
            correlation_id=event_id,
            order=known,
        )
    )
    (mail,) = [d for d in deliveries if d.channel is Channel.EMAIL]
    return mail


def parse(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(bytes(message), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


# -- locales ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("de-AT", "de-AT"),
        ("de-CH", "de"),
        ("de", "de"),
        ("fr-BE", "fr"),
        ("es", "en"),
        ("en-US", "en"),
    ],
)
def test_locale_resolution_is_exact_then_language_then_english(
    requested: str, expected: str
) -> None:
    assert resolve_locale(requested, {"en", "de", "de-AT", "fr"}) == expected


def test_no_translation_at_all_is_an_error() -> None:
    with pytest.raises(NoTranslation):
        resolve_locale("es-MX", {"de", "fr"})


locales = st.from_regex(r"^[a-z]{2}(-[A-Z]{2})?$", fullmatch=True)


@given(requested=locales, available=st.sets(locales, max_size=6))
def test_resolved_locale_is_the_best_available_candidate(
    requested: str, available: set[str]
) -> None:
    offered = available | {"en"}
    chosen = resolve_locale(requested, offered)
    assert chosen in offered
    order_of_preference = candidates(requested)
    assert chosen in order_of_preference
    better = order_of_preference[: order_of_preference.index(chosen)]
    assert not any(tag in offered for tag in better)


# -- local times ------------------------------------------------------------------------------


def test_times_are_shown_in_the_site_zone_in_the_readers_style() -> None:
    winter = datetime(2026, 1, 13, 13, 5, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 6, 30, tzinfo=UTC)
    assert format_moment(winter, "Europe/Berlin", "de") == "Di., 13. Jan. 2026, 14:05 MEZ"
    assert format_moment(summer, "Europe/Berlin", "de") == "Mi., 1. Juli 2026, 08:30 MESZ"
    assert format_moment(winter, "Europe/Vienna", "de-AT") == "Di., 13. Jän. 2026, 14:05 MEZ"
    assert format_moment(winter, "Europe/London", "en-GB") == "Tue, 13 Jan 2026, 13:05 GMT"
    assert format_moment(winter, "America/New_York", "en-US") == (
        "Tue, Jan 13, 2026, 8:05\u202fAM EST"
    )
    assert format_moment(summer, "Europe/Paris", "fr") == "mer. 1 juil. 2026, 08:30 UTC+02:00"


def test_the_local_date_can_differ_from_the_utc_date() -> None:
    late_utc = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    assert format_moment(late_utc, "Asia/Tokyo", "en-GB") == "Wed, 1 Apr 2026, 08:30 GMT+09:00"
    assert format_moment(late_utc, "America/Los_Angeles", "en-US") == (
        "Tue, Mar 31, 2026, 4:30\u202fPM PDT"
    )


def test_zones_without_an_abbreviation_show_their_utc_offset() -> None:
    moment = datetime(2026, 5, 5, 10, 0, tzinfo=UTC)
    assert format_moment(moment, "Asia/Dubai", "en-GB").endswith("14:00 GST")
    assert format_moment(moment, "Asia/Dubai", "de").endswith("14:00 GMT+04:00")
    assert format_moment(moment, "Asia/Kathmandu", "de").endswith("15:45 GMT+05:45")
    assert format_moment(moment, "Etc/UTC", "en-GB").endswith("10:00 UTC")


def test_unknown_regions_fall_back_to_the_language() -> None:
    moment = datetime(2026, 1, 13, 13, 5, tzinfo=UTC)
    assert format_moment(moment, "Europe/Zurich", "de-CH").startswith("Di., 13.")
    assert format_moment(moment, "Europe/Zurich", "qq-ZZ") == (
        format_moment(moment, "Europe/Zurich", "en")
    )


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_moment(datetime(2026, 1, 1, 12, 0), "Europe/Berlin", "en")  # noqa: DTZ001


zones = st.sampled_from(
    ["Europe/Berlin", "Europe/Vienna", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
)
moments = st.datetimes(
    min_value=datetime(1990, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(2090, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@given(moment=moments, zone=zones, locale=st.sampled_from(["en-GB", "de", "de-AT", "fr"]))
def test_formatted_moment_names_the_local_calendar_day(
    moment: datetime, zone: str, locale: str
) -> None:
    local = moment.astimezone(ZoneInfo(zone))
    text = format_moment(moment, zone, locale)
    assert str(local.year) in text
    assert f" {local.day}" in text
    assert f"{local.hour:02d}:{local.minute:02d}" in text


# -- templates and the receipt confirmation ---------------------------------------------------


def test_the_package_ships_the_receipt_in_english_german_and_french() -> None:
    assert {"en", "de", "fr"} <= CATALOG.locales
    assert RECEIPT_TEMPLATE in CATALOG.templates


def test_english_receipt_shows_the_order_in_the_site_time_zone() -> None:
    delivery = plan(order(locale="en-GB", timezone="America/Chicago"))
    assert delivery.locale == "en"
    mail = delivery.mail
    assert mail.subject == "We received your repair request wo-8f2c (Plant North)"
    for body in (mail.text, mail.html):
        assert "wo-8f2c" in body
        assert "FH-2026-0042" in body
        assert "Plant North" in body
        assert "chiller-2" in body
        assert "High" in body
        # 07:45 UTC is 01:45 in Chicago (UTC-6) on 14 January.
        assert "Wed, 14 Jan 2026, 01:45 GMT-06:00" in body
        assert "Wed, 14 Jan 2026, 01:46 GMT-06:00" in body
        assert "America/Chicago" in body
    assert "Hello Anna Berger," in mail.text


def test_german_receipt_is_written_in_german_with_german_dates() -> None:
    delivery = plan(order(locale="de"))
    mail = delivery.mail
    assert delivery.locale == "de"
    assert mail.language == "de"
    assert mail.subject == "Ihr Reparaturauftrag wo-8f2c ist eingegangen (Plant North)"
    assert "Guten Tag Anna Berger," in mail.text
    assert "Priorität: Hoch" in mail.text
    assert "Art: Störung" in mail.text
    assert "Gemeldet: Mi., 14. Jan. 2026, 08:45 MEZ" in mail.text
    assert "Eingegangen: Mi., 14. Jan. 2026, 08:46 MEZ" in mail.text
    assert '<html lang="de" dir="ltr">' in mail.html
    assert "<td>Mi., 14. Jan. 2026, 08:46 MEZ</td>" in mail.html


def test_regional_locale_uses_the_language_template_with_regional_words() -> None:
    delivery = plan(order(locale="de-AT", timezone="Europe/Vienna"))
    assert delivery.locale == "de"
    assert delivery.requested_locale == "de-AT"
    assert "14. Jän. 2026" in delivery.mail.text


def test_french_receipt_and_english_fallback() -> None:
    french = plan(order(locale="fr-CH", timezone="Europe/Zurich")).mail
    assert french.subject.startswith("Nous avons bien reçu votre demande d'intervention wo-8f2c")
    assert "mer. 14 janv. 2026, 08:46 UTC+01:00" in french.text
    fallback = plan(order(locale="sw")).mail
    assert fallback.language == "en"
    assert fallback.subject.startswith("We received your repair request")


def test_report_time_line_is_left_out_when_the_platform_sent_none() -> None:
    text = plan(order(locale="en", reported_at=None)).mail.text
    assert "Reported:" not in text
    assert "Received:" in text


def test_user_text_is_escaped_in_html_and_kept_verbatim_in_plain_text() -> None:
    hostile = 'Leaks <script>alert("x")</script> & <img src=x onerror=alert(1)>'
    delivery = plan(
        order(description=hostile, site_name="<b>Plant</b>", requester_name="Eve <evil@x.org>")
    )
    mail = delivery.mail
    assert "<script>" not in mail.html
    assert "<img" not in mail.html
    assert "<b>Plant</b>" not in mail.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img" in mail.html
    assert "&lt;b&gt;Plant&lt;/b&gt;" in mail.html
    assert hostile in mail.text
    assert "Hello Eve <evil@x.org>," in mail.text


descriptions = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"),
    min_size=1,
    max_size=300,
).filter(lambda s: s.strip())


@given(description=descriptions)
def test_any_description_appears_escaped_in_html_and_verbatim_in_text(description: str) -> None:
    mail = plan(order(description=description)).mail
    assert str(escape(description)) in mail.html
    assert description in mail.text


def test_names_with_line_breaks_never_become_headers() -> None:
    delivery = plan(order(requester_name="Anna\r\nBcc: victim@example.com", site_name="A\nB"))
    message = parse(build_email(delivery.mail))
    assert message["Bcc"] is None
    assert message["To"].addresses[0].addr_spec == "anna@example.com"
    assert "\n" not in str(message["Subject"])
    assert str(message["Subject"]).endswith("(A B)")


def test_catalog_offers_a_channel_only_when_every_part_exists() -> None:
    catalog = TemplateCatalog(
        DictLoader(
            {
                "greeting/email.subject.j2": "{% trans %}Hi{% endtrans %} {{ name }}",
                "greeting/email.txt.j2": "Hi {{ name }}",
                "greeting/email.html.j2": "<p>Hi {{ name }}</p>",
                "notice/email.subject.j2": "Notice",
                "notice/sms.txt.j2": "Notice {{ name }}",
            }
        ),
        translations={},
    )
    assert catalog.templates == {"greeting", "notice"}
    assert catalog.channels("greeting") == {Channel.EMAIL}
    assert catalog.channels("notice") == {Channel.SMS}
    rendered = catalog.render(
        "greeting", "de", channel=Channel.EMAIL, values={"name": "<Ann>\nB"}, timezone="UTC"
    )
    assert rendered.locale == "en"
    assert rendered.subject == "Hi <Ann> B"
    assert rendered.text == "Hi <Ann>\nB"
    assert rendered.html == "<p>Hi &lt;Ann&gt;\nB</p>"
    with pytest.raises(UnknownTemplate):
        catalog.render("farewell", "en", channel=Channel.EMAIL, values={}, timezone="UTC")
    with pytest.raises(UnknownTemplate):
        catalog.render("notice", "en", channel=Channel.EMAIL, values={}, timezone="UTC")


# -- the MIME message -------------------------------------------------------------------------


def test_mail_is_multipart_text_then_html_with_a_stable_message_id() -> None:
    delivery = plan(order(locale="de"), event_id="evt-42")
    again = plan(order(locale="de"), event_id="evt-42")
    assert delivery.mail == again.mail
    nid = delivery.notification_id
    message = parse(build_email(delivery.mail))
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert "Guten Tag Anna Berger" in parts[0].get_content()
    assert '<html lang="de" dir="ltr">' in parts[1].get_content()
    assert message["Message-ID"] == f"<{nid}@fixloop.local>"
    assert message["From"] == "Fixloop <no-reply@fixloop.local>"
    assert message["To"] == "Anna Berger <anna@example.com>"
    assert message["Content-Language"] == "de"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Subject"] == "Ihr Reparaturauftrag wo-8f2c ist eingegangen (Plant North)"
    assert message["Date"].datetime == datetime(2026, 1, 14, 7, 47, tzinfo=UTC)


def test_mailbox_parsing() -> None:
    assert Mailbox(address="no-reply@fixloop.local", name="Fixloop") == SENDER
    assert SENDER.domain == "fixloop.local"
    assert Mailbox.parse("ops@example.com") == Mailbox(address="ops@example.com")
    with pytest.raises(ValueError, match="not an e-mail address"):
        Mailbox.parse("Fixloop")


def test_internationalized_addresses_are_sent_in_their_smtp_form() -> None:
    idn = Mailbox(address="anna@exämple.de", name="Anna")
    assert idn.smtp_address == "anna@xn--exmple-cua.de"
    utf8 = Mailbox(address="jörg@example.de", name='Jörg "JJ" Müller')
    assert utf8.smtp_address == "jörg@example.de"
    delivery = plan(order())
    for recipient, expected in ((idn, "anna@xn--exmple-cua.de"), (utf8, "jörg@example.de")):
        mail = replace(delivery.mail, recipient=recipient)
        raw = build_email(mail).as_bytes(policy=email.policy.SMTPUTF8)
        parsed = email.message_from_string(raw.decode(), policy=email.policy.SMTPUTF8)
        [address] = parsed["To"].addresses
        assert f"{address.username}@{address.domain}" == expected
        assert address.display_name == recipient.name


# -- deliveries -------------------------------------------------------------------------------


def test_notification_ids_are_stable_per_order_fact_recipient_and_channel() -> None:
    first = notification_id_for("wo-1", "evt-1", "requester", Channel.EMAIL)
    assert first == notification_id_for("wo-1", "evt-1", "requester", Channel.EMAIL)
    assert first != notification_id_for("wo-2", "evt-1", "requester", Channel.EMAIL)
    assert first != notification_id_for("wo-1", "evt-2", "requester", Channel.EMAIL)
    assert first != notification_id_for("wo-1", "evt-1", "contractor:c-1", Channel.EMAIL)
    assert first != notification_id_for("wo-1", "evt-1", "requester", Channel.SMS)
    assert IDENTIFIER.match(first)
    assert message_id_for(first, "fixloop.local") == f"<{first}@fixloop.local>"


def test_a_planned_delivery_starts_pending_and_is_keyed_by_its_work_order() -> None:
    delivery = plan(order())
    assert delivery.status is DeliveryStatus.PENDING
    assert delivery.attempts == 0
    assert delivery.aggregate_key == "wo-8f2c"
    assert delivery.recipient == "anna@example.com"
    assert delivery.channel is Channel.EMAIL


@pytest.mark.parametrize(
    ("code", "permanent"), [(250, False), (421, False), (451, False), (550, True), (554, True)]
)
def test_only_5xx_smtp_replies_are_permanent(code: int, permanent: bool) -> None:
    assert smtp_reply_is_permanent(code) is permanent


def test_retry_waits_double_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    policy = RetryPolicy(attempts=4, base_seconds=2.0, max_seconds=5.0)
    assert [policy.wait_before(n) for n in range(5)] == [0.0, 2.0, 4.0, 5.0, 5.0]
    assert [policy.wait_before(n, jitter=0.0) for n in range(1, 5)] == [1.0, 2.0, 2.5, 2.5]


def test_a_delivery_is_tried_until_its_horizon_counted_from_when_it_became_due() -> None:
    policy = RetryPolicy(base_seconds=1, max_seconds=60, horizon_seconds=3600, attempts=1000)
    due = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert not policy.gives_up(attempts=50, due_since=due, now=due.replace(hour=12, minute=59))
    assert policy.gives_up(attempts=51, due_since=due, now=due.replace(hour=13))
    assert RetryPolicy(base_seconds=1, max_seconds=1, attempts=3).gives_up(
        attempts=3, due_since=due, now=due
    )


@given(
    base=st.floats(0.01, 10),
    cap=st.floats(0.01, 100),
    jitter=st.floats(0, 1),
)
def test_waits_never_exceed_the_cap_and_never_shrink_below_half_of_it(
    base: float, cap: float, jitter: float
) -> None:
    policy = RetryPolicy(base_seconds=base, max_seconds=cap)
    ceilings = [policy.wait_before(n) for n in range(1, 12)]
    assert ceilings == sorted(ceilings)
    for n, ceiling in enumerate(ceilings, start=1):
        wait = policy.wait_before(n, jitter)
        assert ceiling / 2 <= wait <= ceiling <= cap


def test_a_policy_needs_at_least_one_attempt() -> None:
    with pytest.raises(ValueError, match="at least one"):
        RetryPolicy(base_seconds=1, max_seconds=1, attempts=0)


@given(st.text(max_size=2000))
def test_errors_are_kept_as_one_bounded_line(text: str) -> None:
    summary = summarize_error(text)
    assert 1 <= len(summary) <= ERROR_MAX_LENGTH
    assert "\n" not in summary
    assert "\r" not in summary
    error = DeliveryError(text, permanent=True)
    assert error.detail == summary


def test_created_at_is_the_mail_date() -> None:
    delivery = plan(order())
    assert delivery.created_at == delivery.mail.date == PLANNED_AT
