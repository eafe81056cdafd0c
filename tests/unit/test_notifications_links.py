"""Quiet hours across DST changes, recipients' preferences, signed links, and the links' pages
(in memory)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixloop_notifications.adapters.link_answers import MemoryLinkAnswers
from fixloop_notifications.adapters.links_http import links_app, parse_rating
from fixloop_notifications.adapters.preferences import MemoryPreferences
from fixloop_notifications.app.feedback import LinkAnswers
from fixloop_notifications.domain.links import (
    MAX_AGE,
    LinkClaims,
    LinkExpired,
    LinkForged,
    LinkPurpose,
    LinkSigner,
)
from fixloop_notifications.domain.preferences import (
    InvalidAddress,
    RecipientPreferences,
    SmsConsent,
    is_essential,
    recipient_address,
)
from fixloop_notifications.domain.quiet_hours import (
    InvalidTimeZone,
    QuietHours,
    held_until,
    local_instant,
)
from fixloop_shared.contracts import CompletionAnswered, CompletionVerdict, FeedbackSubmitted
from fixloop_shared.memory import MemoryStore
from fixloop_shared.topics import Topic
from fixloop_shared.vocabulary import Channel


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


DEFAULT = QuietHours()
UNTIL_0230 = QuietHours(time(21), time(2, 30))
NOON_BREAK = QuietHours(time(12), time(14))


# -- quiet hours: named cases ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quiet", "now", "zone", "expected"),
    [
        # Berlin, spring forward 2026-03-29 02:00 CET -> 03:00 CEST: 07:00 local is 05:00 UTC.
        (DEFAULT, utc(2026, 3, 28, 21), "Europe/Berlin", utc(2026, 3, 29, 5)),
        # ... an end in the skipped hour (02:30) is the moment the clock jumps (03:00 CEST).
        (UNTIL_0230, utc(2026, 3, 28, 21), "Europe/Berlin", utc(2026, 3, 29, 1)),
        # Berlin, fall back 2026-10-25 03:00 CEST -> 02:00 CET: 07:00 local is 06:00 UTC.
        (DEFAULT, utc(2026, 10, 24, 21), "Europe/Berlin", utc(2026, 10, 25, 6)),
        # ... an end in the repeated hour is its first occurrence (02:30 CEST).
        (UNTIL_0230, utc(2026, 10, 24, 21), "Europe/Berlin", utc(2026, 10, 25, 0, 30)),
        # ... and the repeated 02:00-02:30 (CET) is not quiet again.
        (UNTIL_0230, utc(2026, 10, 25, 1, 10), "Europe/Berlin", None),
        # New York, spring forward 2026-03-08: from midnight EST to 07:00 EDT.
        (DEFAULT, utc(2026, 3, 8, 5), "America/New_York", utc(2026, 3, 8, 11)),
        # New York, fall back 2026-11-01: 07:00 EST is 12:00 UTC.
        (DEFAULT, utc(2026, 11, 1, 4), "America/New_York", utc(2026, 11, 1, 12)),
        # Bangkok (UTC+7, no DST): 22:00 local is quiet until 07:00, 20:00 is not.
        (DEFAULT, utc(2026, 6, 1, 15), "Asia/Bangkok", utc(2026, 6, 2, 0)),
        (DEFAULT, utc(2026, 6, 1, 13), "Asia/Bangkok", None),
        # Lord Howe moves its clock by 30 minutes: 2026-10-04 02:00 +10:30 -> 02:30 +11:00.
        (DEFAULT, utc(2026, 10, 3, 11, 30), "Australia/Lord_Howe", utc(2026, 10, 3, 20)),
        (
            QuietHours(time(21), time(2, 15)),
            utc(2026, 10, 3, 11, 30),
            "Australia/Lord_Howe",
            utc(2026, 10, 3, 15, 30),
        ),
        # ... and back on 2026-04-05 02:00 +11:00 -> 01:30 +10:30: 01:45 occurs twice, first +11.
        (
            QuietHours(time(21), time(1, 45)),
            utc(2026, 4, 4, 11, 30),
            "Australia/Lord_Howe",
            utc(2026, 4, 4, 14, 45),
        ),
        # A period that does not cross midnight (12:00-14:00, Berlin summer = UTC+2).
        (
            QuietHours(time(12), time(14)),
            utc(2026, 7, 1, 10, 30),
            "Europe/Berlin",
            utc(2026, 7, 1, 12),
        ),
        (QuietHours(time(12), time(14)), utc(2026, 7, 1, 12), "Europe/Berlin", None),
        (QuietHours(time(12), time(14)), utc(2026, 7, 1, 9, 59), "Europe/Berlin", None),
        # start == end: never quiet.
        (QuietHours(time(7), time(7)), utc(2026, 7, 1, 23), "Europe/Berlin", None),
        # the first minute of the period is quiet, its end is not
        (DEFAULT, utc(2026, 7, 1, 19), "Europe/Berlin", utc(2026, 7, 2, 5)),
        (DEFAULT, utc(2026, 7, 2, 5), "Europe/Berlin", None),
    ],
)
def test_held_until_named_cases(
    quiet: QuietHours, now: datetime, zone: str, expected: datetime | None
) -> None:
    assert quiet.held_until(now, zone) == expected


def test_held_until_needs_an_aware_moment_and_a_known_zone() -> None:
    with pytest.raises(ValueError, match="aware"):
        DEFAULT.held_until(datetime(2026, 1, 1, 22), "Europe/Berlin")  # noqa: DTZ001
    with pytest.raises(InvalidTimeZone):
        DEFAULT.held_until(utc(2026, 1, 1, 22), "Mars/Olympus_Mons")


def test_module_level_held_until_uses_the_default_quiet_hours() -> None:
    assert held_until(utc(2026, 3, 28, 21), "Europe/Berlin") == utc(2026, 3, 29, 5)


# -- quiet hours: properties ----------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Bangkok",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Asia/Kathmandu",
    "Pacific/Apia",
]
moments = st.datetimes(
    min_value=datetime(2025, 1, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
    max_value=datetime(2027, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
local_times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


@settings(max_examples=300, deadline=None)
@given(now=moments, zone=st.sampled_from(ZONES), start=local_times, end=local_times)
def test_a_held_notice_goes_out_when_the_period_ends(
    now: datetime, zone: str, start: time, end: time
) -> None:
    quiet = QuietHours(start, end)
    until = quiet.held_until(now, zone)
    if start == end:
        assert until is None
        return
    if until is None:
        return
    assert now < until <= now + timedelta(hours=25)
    # quiet right up to the end, not at the end (unless the next period starts right there)
    assert quiet.held_until(max(now, until - timedelta(seconds=1)), zone) == until
    after = quiet.held_until(until, zone)
    assert after is None or after > until
    # the end is the configured local time, or the first moment after a skipped one
    local_end = until.astimezone(ZoneInfo(zone))
    assert local_end.time() >= end or local_end.date() > (until - timedelta(seconds=1)).date()


@settings(max_examples=200, deadline=None)
@given(now=moments, start=local_times, end=local_times)
def test_without_dst_quiet_hours_follow_the_wall_clock(
    now: datetime, start: time, end: time
) -> None:
    zone = "Asia/Bangkok"
    local = now.astimezone(ZoneInfo(zone))
    wall = local.time()
    if start == end:
        quiet = False
    elif start < end:
        quiet = start <= wall < end
    else:
        quiet = wall >= start or wall < end
    assert QuietHours(start, end).is_quiet(now, zone) is quiet


def test_local_instant_of_a_skipped_time_is_the_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert local_instant(date(2026, 3, 29), time(2, 30), berlin) == utc(2026, 3, 29, 1)
    assert local_instant(date(2026, 3, 29), time(3, 0), berlin) == utc(2026, 3, 29, 1)
    assert local_instant(date(2026, 10, 25), time(2, 30), berlin) == utc(2026, 10, 25, 0, 30)


# -- preferences ----------------------------------------------------------------------------------

T0 = utc(2026, 5, 1, 9)


def test_opt_out_of_one_kind_on_one_channel() -> None:
    prefs = RecipientPreferences("acme", "ana@example.com").with_opt_out(
        "visit_scheduled", Channel.EMAIL
    )
    assert not prefs.allows("visit_scheduled", Channel.EMAIL, essential=False)
    assert prefs.allows("contractor_en_route", Channel.EMAIL, essential=False)
    assert prefs.with_opt_in("visit_scheduled", Channel.EMAIL).allows(
        "visit_scheduled", Channel.EMAIL, essential=False
    )


def test_opt_out_of_every_kind_spares_essential_email_only() -> None:
    prefs = RecipientPreferences("acme", "ana@example.com").with_opt_out(None, Channel.EMAIL)
    assert not prefs.allows("visit_scheduled", Channel.EMAIL, essential=False)
    assert prefs.allows("work_completed", Channel.EMAIL, essential=True)
    assert is_essential("work_completed")
    assert is_essential("workorder_cancelled")
    assert not is_essential("visit_scheduled")


def test_sms_needs_consent_and_a_stop_is_binding_even_for_essentials() -> None:
    prefs = RecipientPreferences("acme", "+4915112345678")
    assert not prefs.allows("visit_scheduled", Channel.SMS, essential=False)
    assert prefs.allows("visit_scheduled", Channel.SMS, essential=False, sms_consent_on_order=True)
    granted = prefs.with_sms_consent(SmsConsent(granted=True, at=T0, source="intake"))
    assert granted.allows("visit_scheduled", Channel.SMS, essential=False)
    withdrawn = granted.with_sms_consent(SmsConsent(granted=False, at=T0, source="sms:STOP"))
    assert not withdrawn.allows(
        "work_completed", Channel.SMS, essential=True, sms_consent_on_order=True
    )
    opted = granted.with_opt_out("work_completed", Channel.SMS)
    assert not opted.allows("work_completed", Channel.SMS, essential=True)


def test_webhooks_are_not_governed_by_recipient_preferences() -> None:
    prefs = RecipientPreferences("acme", "ana@example.com").with_opt_out(None, Channel.WEBHOOK)
    assert prefs.allows("visit_scheduled", Channel.WEBHOOK, essential=False)


def test_quiet_hours_default_when_none_set() -> None:
    prefs = RecipientPreferences("acme", "ana@example.com")
    assert prefs.effective_quiet_hours == QuietHours(time(21), time(7))
    own = prefs.with_quiet_hours(QuietHours(time(22), time(6)))
    assert own.effective_quiet_hours.start == time(22)


def test_recipient_addresses_are_email_or_e164() -> None:
    assert recipient_address(" Ana@Example.COM ") == "ana@example.com"
    assert recipient_address("+4915112345678") == "+4915112345678"
    for bad in ("0151 1234567", "ana", '{"$ne": null}', "a@b", "+0123456789"):
        with pytest.raises(InvalidAddress):
            recipient_address(bad)
    with pytest.raises(ValueError, match="aware"):
        SmsConsent(granted=True, at=datetime(2026, 1, 1), source="intake")  # noqa: DTZ001


# -- signed links ---------------------------------------------------------------------------------

SECRET = "s" * 40
SIGNER = LinkSigner(SECRET, "https://links.fixloop.test/")
VERIFY_BY = utc(2026, 5, 4, 9)
SURVEY_CLAIMS = LinkClaims(
    tenant="acme",
    address="ana@example.com",
    locale="de",
    timezone="Europe/Berlin",
    work_order_id="wo-1",
    contractor_id="ctr-7",
)
VERIFY_CLAIMS = LinkClaims(
    tenant="acme",
    address="ana@example.com",
    locale="ar",
    timezone="Asia/Dubai",
    work_order_id="wo-1",
    expires_at=VERIFY_BY,
)
UNSUBSCRIBE_CLAIMS = LinkClaims(
    tenant="acme",
    address="ana@example.com",
    locale="en",
    timezone="Europe/London",
    kind="visit_scheduled",
    channel=Channel.EMAIL,
)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_a_link_reads_back_its_claims() -> None:
    url = SIGNER.url(LinkPurpose.SURVEY, SURVEY_CLAIMS, T0)
    assert url.startswith("https://links.fixloop.test/survey/")
    assert SIGNER.read(token_of(url), LinkPurpose.SURVEY, T0 + timedelta(days=29)) == SURVEY_CLAIMS
    unsubscribe = SIGNER.token(LinkPurpose.UNSUBSCRIBE, UNSUBSCRIBE_CLAIMS, T0)
    assert SIGNER.read(unsubscribe, LinkPurpose.UNSUBSCRIBE, T0) == UNSUBSCRIBE_CLAIMS


def test_expiry_per_purpose() -> None:
    survey = SIGNER.token(LinkPurpose.SURVEY, SURVEY_CLAIMS, T0)
    with pytest.raises(LinkExpired, match="expired"):
        SIGNER.read(survey, LinkPurpose.SURVEY, T0 + MAX_AGE[LinkPurpose.SURVEY] + timedelta(1))
    verify = SIGNER.token(LinkPurpose.VERIFY, VERIFY_CLAIMS, T0)
    assert SIGNER.read(verify, LinkPurpose.VERIFY, VERIFY_BY - timedelta(seconds=1)).work_order_id
    with pytest.raises(LinkExpired):
        SIGNER.read(verify, LinkPurpose.VERIFY, VERIFY_BY)
    unsubscribe = SIGNER.token(LinkPurpose.UNSUBSCRIBE, UNSUBSCRIBE_CLAIMS, T0)
    assert SIGNER.read(unsubscribe, LinkPurpose.UNSUBSCRIBE, T0 + timedelta(days=364)).channel
    with pytest.raises(LinkExpired):
        SIGNER.read(unsubscribe, LinkPurpose.UNSUBSCRIBE, T0 + timedelta(days=366))


def test_a_link_of_one_purpose_never_works_for_another() -> None:
    verify = SIGNER.token(LinkPurpose.VERIFY, VERIFY_CLAIMS, T0)
    reject = SIGNER.token(LinkPurpose.REJECT, VERIFY_CLAIMS, T0)
    for purpose in (LinkPurpose.REJECT, LinkPurpose.SURVEY, LinkPurpose.UNSUBSCRIBE):
        with pytest.raises(LinkForged):
            SIGNER.read(verify, purpose, T0)
    with pytest.raises(LinkForged):
        SIGNER.read(reject, LinkPurpose.VERIFY, T0)


def test_forged_and_tampered_links_are_refused() -> None:
    token = SIGNER.token(LinkPurpose.SURVEY, SURVEY_CLAIMS, T0)
    other = LinkSigner("o" * 40, "https://links.fixloop.test")
    with pytest.raises(LinkForged):
        other.read(token, LinkPurpose.SURVEY, T0)
    # another order's claims under this signature
    forged_claims = SIGNER.token(
        LinkPurpose.SURVEY, replace(SURVEY_CLAIMS, work_order_id="wo-2"), T0
    ).split(".")
    parts = token.split(".")
    with pytest.raises(LinkForged):
        SIGNER.read(".".join([*forged_claims[:-1], parts[-1]]), LinkPurpose.SURVEY, T0)
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, "", "x" * 5000, "not-a-token", token + "é"):
        with pytest.raises(LinkForged):
            SIGNER.read(bad, LinkPurpose.SURVEY, T0)


def test_a_link_issued_in_the_future_is_refused() -> None:
    token = SIGNER.token(LinkPurpose.SURVEY, SURVEY_CLAIMS, T0 + timedelta(hours=1))
    with pytest.raises(LinkForged, match="future"):
        SIGNER.read(token, LinkPurpose.SURVEY, T0)


def test_a_rotated_secret_still_reads_old_links() -> None:
    token = SIGNER.token(LinkPurpose.SURVEY, SURVEY_CLAIMS, T0)
    rotated = LinkSigner("n" * 40, "https://links.fixloop.test", previous_secrets=[SECRET])
    assert rotated.read(token, LinkPurpose.SURVEY, T0).work_order_id == "wo-1"


def test_claims_must_fit_the_purpose() -> None:
    with pytest.raises(ValueError, match="expires_at"):
        SIGNER.token(LinkPurpose.VERIFY, SURVEY_CLAIMS, T0)
    with pytest.raises(ValueError, match="channel"):
        SIGNER.token(LinkPurpose.UNSUBSCRIBE, SURVEY_CLAIMS, T0)
    with pytest.raises(ValueError, match="32"):
        LinkSigner("short", "https://links.fixloop.test")


@pytest.mark.parametrize(
    ("raw", "rating"),
    [("1", 1), ("5", 5), ("0", None), ("6", None), ("4.0", None), (" 4", None), ("٤", None)],
)
def test_rating_is_strictly_one_digit_one_to_five(raw: str, rating: int | None) -> None:
    assert parse_rating(raw) == rating


# -- the pages, over a memory store ---------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def memory() -> MemoryStore:
    return MemoryStore("notifications")


@pytest.fixture
def preferences() -> MemoryPreferences:
    return MemoryPreferences()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + timedelta(hours=1))


@pytest.fixture
async def client(
    memory: MemoryStore, preferences: MemoryPreferences, clock: Clock
) -> httpx.AsyncClient:
    answers = LinkAnswers(
        units=memory, answers=MemoryLinkAnswers(memory), preferences=preferences, clock=clock
    )
    app = links_app(signer=SIGNER, answers=answers)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://links")


async def test_survey_is_answered_once(client: httpx.AsyncClient, memory: MemoryStore) -> None:
    path = "/survey/" + SIGNER.token(LinkPurpose.SURVEY, SURVEY_CLAIMS, T0)
    form = await client.get(path)
    assert form.status_code == 200
    assert 'name="rating"' in form.text
    assert form.headers["cache-control"] == "no-store"
    answered = await client.post(path, data={"rating": "4", "comment": "Schnell & <gut>"})
    assert answered.status_code == 200
    again = await client.post(path, data={"rating": "5"})
    assert again.status_code == 409
    [event] = memory.outbox
    assert event.topic == Topic.NOTIFICATIONS_EVENTS
    assert event.key == "wo-1"
    assert isinstance(event.payload, FeedbackSubmitted)
    assert event.payload.rating == 4
    assert event.payload.comment == "Schnell & <gut>"
    assert event.payload.contractor_id == "ctr-7"
    assert event.payload.locale == "de"
    assert (await client.get(path)).status_code == 200  # "already answered", not the form
    assert 'name="rating"' not in (await client.get(path)).text


async def test_survey_input_is_parsed_strictly(
    client: httpx.AsyncClient, memory: MemoryStore
) -> None:
    path = "/survey/" + SIGNER.token(LinkPurpose.SURVEY, SURVEY_CLAIMS, T0)
    for data in ({"rating": "9"}, {"rating": "four"}, {}, {"rating": "3", "comment": "x" * 2001}):
        assert (await client.post(path, data=data)).status_code == 400
    unknown = await client.post(path, data={"rating": "3", "admin": "1"})
    assert unknown.status_code == 400
    repeated = await client.post(
        path,
        content=b"rating=3&rating=5",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert repeated.status_code == 400
    too_big = await client.post(path, data={"rating": "3", "comment": "x" * 17000})
    assert too_big.status_code == 413
    assert memory.outbox == []
    escaped = await client.post(path, data={"rating": "0", "comment": "<script>x</script>"})
    assert "<script>x" not in escaped.text


async def test_forged_and_expired_links_get_pages(client: httpx.AsyncClient, clock: Clock) -> None:
    forged = await client.get("/survey/" + "abc.def.ghi")
    assert forged.status_code == 403
    assert "<html" in forged.text
    verify = "/verify/" + SIGNER.token(LinkPurpose.VERIFY, VERIFY_CLAIMS, T0)
    clock.now = VERIFY_BY
    expired = await client.post(verify)
    assert expired.status_code == 410


async def test_verify_acts_only_on_post(client: httpx.AsyncClient, memory: MemoryStore) -> None:
    path = "/verify/" + SIGNER.token(LinkPurpose.VERIFY, VERIFY_CLAIMS, T0)
    page = await client.get(path)
    assert page.status_code == 200
    assert 'dir="rtl"' in page.text
    assert memory.outbox == []
    assert (await client.post(path)).status_code == 200
    reject = "/reject/" + SIGNER.token(LinkPurpose.REJECT, VERIFY_CLAIMS, T0)
    assert (await client.post(reject, data={"reason": "leaks"})).status_code == 409
    [event] = memory.outbox
    assert isinstance(event.payload, CompletionAnswered)
    assert event.payload.verdict is CompletionVerdict.VERIFIED


async def test_one_click_unsubscribe(
    client: httpx.AsyncClient, preferences: MemoryPreferences
) -> None:
    path = "/unsubscribe/" + SIGNER.token(LinkPurpose.UNSUBSCRIBE, UNSUBSCRIBE_CLAIMS, T0)
    assert (await client.get(path)).status_code == 200
    assert await preferences.get("acme", "ana@example.com") is None
    assert (await client.post(path, data={"nothing": "here"})).status_code == 400
    done = await client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    recorded = await preferences.get("acme", "ana@example.com")
    assert recorded is not None
    assert not recorded.allows("visit_scheduled", Channel.EMAIL, essential=False)
    assert recorded.allows("workorder_delayed", Channel.EMAIL, essential=False)


# -- who consumes the answers ---------------------------------------------------------------------


def test_orders_and_contractors_consume_the_answers_from_notifications() -> None:
    from fixloop_contractors.main import bootstrap as contractors_bootstrap
    from fixloop_orders.app.timeline_facts import timeline_fact
    from fixloop_orders.main import bootstrap as orders_bootstrap

    orders = orders_bootstrap(None, uow=MemoryStore("orders"), clock=Clock(T0))
    [timeline] = [c for c in orders.consumers if CompletionAnswered in c.handlers]
    assert FeedbackSubmitted in timeline.handlers
    assert Topic.NOTIFICATIONS_EVENTS in timeline.topics
    contractors = contractors_bootstrap(None, uow=MemoryStore("contractors"), clock=Clock(T0))
    [performance] = [c for c in contractors.consumers if FeedbackSubmitted in c.handlers]
    assert Topic.NOTIFICATIONS_EVENTS in performance.topics

    fact = timeline_fact(
        FeedbackSubmitted(work_order_id="wo-1", rating=2, submitted_at=T0, comment="Late\nagain")
    )
    assert fact is not None
    assert fact.kind == "feedback_submitted"
    assert fact.summary == "Requester rated the work 2/5: Late again"
    assert fact.details["comment"] == "Late\nagain"
