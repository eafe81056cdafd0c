"""The signed links' pages against the real store: answers recorded once (unique index), events
in the outbox in the same transaction, opt-outs in the recipients' preferences."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fixloop_notifications.adapters.link_answers import (
    LINK_ANSWERS,
    MongoLinkAnswers,
    create_link_answer_indexes,
)
from fixloop_notifications.adapters.links_http import links_app
from fixloop_notifications.adapters.preferences import (
    RECIPIENT_PREFERENCES,
    MongoPreferences,
    create_preference_indexes,
)
from fixloop_notifications.app.feedback import LinkAnswers
from fixloop_notifications.domain.links import LinkClaims, LinkPurpose, LinkSigner
from fixloop_notifications.domain.preferences import SmsConsent
from fixloop_notifications.domain.quiet_hours import QuietHours
from fixloop_shared.store import OUTBOX, Document, MongoClient, Store
from fixloop_shared.topics import Service, Topic
from fixloop_shared.vocabulary import Channel

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 1, 9, tzinfo=UTC)
VERIFY_BY = T0 + timedelta(days=3)
SIGNER = LinkSigner("k" * 48, "https://links.fixloop.test")
SURVEY = LinkClaims(
    tenant="acme",
    address="ana@example.com",
    locale="de",
    timezone="Europe/Berlin",
    work_order_id="wo-links-1",
    contractor_id="ctr-1",
)
COMPLETION = LinkClaims(
    tenant="acme",
    address="ana@example.com",
    locale="de",
    timezone="Europe/Berlin",
    work_order_id="wo-links-1",
    expires_at=VERIFY_BY,
)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(mongo_client: MongoClient, database_name: str) -> Store:
    store = Store(mongo_client, database_name, service=Service.NOTIFICATIONS)
    await store.ensure_indexes()
    await create_link_answer_indexes(store)
    await create_preference_indexes(store)
    return store


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + timedelta(hours=2))


@pytest.fixture
async def client(store: Store, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    answers = LinkAnswers(
        units=store,
        answers=MongoLinkAnswers(store),
        preferences=MongoPreferences(store),
        clock=clock,
    )
    app = links_app(signer=SIGNER, answers=answers)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://links"
    ) as client:
        yield client


async def outbox(store: Store) -> list[Document]:
    return [doc async for doc in store.db[OUTBOX].find({}).sort("seq", 1)]


async def test_survey_answered_once_with_its_event_in_the_outbox(
    client: httpx.AsyncClient, store: Store
) -> None:
    path = "/survey/" + SIGNER.token(LinkPurpose.SURVEY, SURVEY, T0)
    assert (await client.get(path)).status_code == 200
    first = await client.post(path, data={"rating": "5", "comment": "Sauber gearbeitet"})
    assert first.status_code == 200
    second = await client.post(path, data={"rating": "1"})
    assert second.status_code == 409
    [record] = await outbox(store)
    assert record["topic"] == Topic.NOTIFICATIONS_EVENTS.value
    assert record["key"] == "wo-links-1"
    assert record["event_type"] == "fixloop.feedback.submitted.v1"
    payload = json.loads(record["value"])
    assert payload["rating"] == 5
    assert payload["comment"] == "Sauber gearbeitet"
    assert payload["contractor_id"] == "ctr-1"
    assert await store.db[LINK_ANSWERS].count_documents({}) == 1


async def test_forged_and_expired_links_are_refused(
    client: httpx.AsyncClient, store: Store, clock: Clock
) -> None:
    token = SIGNER.token(LinkPurpose.SURVEY, SURVEY, T0)
    other = LinkSigner("x" * 48, "https://links.fixloop.test")
    forged = await client.post(
        "/survey/" + other.token(LinkPurpose.SURVEY, SURVEY, T0), data={"rating": "5"}
    )
    assert forged.status_code == 403
    clock.now = T0 + timedelta(days=31)
    expired = await client.post("/survey/" + token, data={"rating": "5"})
    assert expired.status_code == 410
    assert "Traceback" not in expired.text
    assert await outbox(store) == []


async def test_verify_post_emits_completion_answered_once(
    client: httpx.AsyncClient, store: Store
) -> None:
    verify = "/verify/" + SIGNER.token(LinkPurpose.VERIFY, COMPLETION, T0)
    reject = "/reject/" + SIGNER.token(LinkPurpose.REJECT, COMPLETION, T0)
    assert (await client.get(verify)).status_code == 200  # a scanner's prefetch does nothing
    assert await outbox(store) == []
    assert (await client.post(verify)).status_code == 200
    assert (await client.post(reject, data={"reason": "still leaking"})).status_code == 409
    [record] = await outbox(store)
    assert record["event_type"] == "fixloop.feedback.completion_answered.v1"
    assert json.loads(record["value"])["verdict"] == "verified"
    # the order completed again (new verify-by): a new question, answered anew
    again = replace(COMPLETION, expires_at=VERIFY_BY + timedelta(days=5))
    reject_again = "/reject/" + SIGNER.token(LinkPurpose.REJECT, again, T0)
    assert (await client.post(reject_again, data={"reason": "still leaking"})).status_code == 200
    assert json.loads((await outbox(store))[-1]["value"])["reason"] == "still leaking"


async def test_one_click_unsubscribe_records_the_opt_out(
    client: httpx.AsyncClient, store: Store
) -> None:
    claims = LinkClaims(
        tenant="acme",
        address="Ana@Example.com",
        locale="en",
        timezone="Europe/London",
        kind="visit_scheduled",
        channel=Channel.EMAIL,
    )
    path = "/unsubscribe/" + SIGNER.token(LinkPurpose.UNSUBSCRIBE, claims, T0)
    # RFC 8058: the mail client posts List-Unsubscribe=One-Click, here as multipart/form-data
    done = await client.post(path, files={"List-Unsubscribe": (None, "One-Click")})
    assert done.status_code == 200
    again = await client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    preferences = MongoPreferences(store)
    recorded = await preferences.get("acme", "ana@example.com")
    assert recorded is not None
    assert not recorded.allows("visit_scheduled", Channel.EMAIL, essential=False)
    assert recorded.allows("work_completed", Channel.EMAIL, essential=True)
    assert await store.db[RECIPIENT_PREFERENCES].count_documents({}) == 1


async def test_preferences_round_trip(store: Store) -> None:
    preferences = MongoPreferences(store)
    assert await preferences.get("acme", "+4915112345678") is None
    await preferences.record_sms_consent(
        "acme", "+4915112345678", SmsConsent(granted=True, at=T0, source="intake")
    )
    await preferences.set_quiet_hours("acme", "+4915112345678", QuietHours())
    await preferences.opt_out("acme", "+4915112345678", None, Channel.SMS, at=T0)
    recorded = await preferences.get("acme", "+4915112345678")
    assert recorded is not None
    assert recorded.sms_consent == SmsConsent(granted=True, at=T0, source="intake")
    assert recorded.quiet_hours == QuietHours()
    assert not recorded.allows("visit_scheduled", Channel.SMS, essential=False)
    await preferences.opt_in("acme", "+4915112345678", None, Channel.SMS)
    await preferences.set_quiet_hours("acme", "+4915112345678", None)
    recorded = await preferences.get("acme", "+4915112345678")
    assert recorded is not None
    assert recorded.allows("visit_scheduled", Channel.SMS, essential=False)
    assert recorded.quiet_hours is None
    # a value shaped like an operator is only ever data
    with pytest.raises(ValueError, match="not an e-mail address"):
        await preferences.get("acme", '{"$ne": null}')
