"""The notifications service against the real broker, store, SMTP, SMS and webhook servers.

The service runs in-process (consumer, outbox relay, delivery worker); work orders arrive on
the work-order events topic as they do from the orders service, and what was sent is read
back from the sinks' folders, a scripted webhook endpoint, the delivery log and the
notifications events topic.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from standardwebhooks import Webhook

from fixloop_devkit.devstack import free_port
from fixloop_devkit.mailsink import FolderHandler
from fixloop_devkit.testing import ConsumedRecord, eventually, produce, read_topic, unique
from fixloop_notifications.adapters.mongo import (
    DELIVERIES,
    DELIVERY_ATTEMPTS,
    MongoDeliveryLog,
    create_indexes,
    delivery_to_document,
)
from fixloop_notifications.adapters.preferences import MongoPreferences
from fixloop_notifications.adapters.webhook_registry import MongoWebhookRegistry
from fixloop_notifications.domain.delivery import Delivery, notification_id_for
from fixloop_notifications.domain.quiet_hours import QuietHours
from fixloop_notifications.main import NotificationsService, bootstrap
from fixloop_notifications.settings import NotificationsSettings
from fixloop_shared.bus import ensure_topics
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
from fixloop_shared.due_work import epoch_ms
from fixloop_shared.envelope import Event, EventEnvelope, binary_headers, encode_payload
from fixloop_shared.kernel import apply_event
from fixloop_shared.memory import MemoryStore
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import Document, MongoClient, Store
from fixloop_shared.topics import Service, Topic, dead_letter_topic
from tests.integration.receivers import ScriptedEndpoint

pytestmark = pytest.mark.integration

RECEIPT_TEMPLATE = "workorder_received"
DESK = "desk@acme.example"
TENANT = "notices-acme"
"""The tenant of this module's orders: not one the example contractors work for, so the
contractors tests that share the broker are not given these orders to dispatch."""
HOUR = timedelta(hours=1)
SENT = "fixloop.notification.sent.v1"
FAILED = "fixloop.notification.failed.v1"


# -- the mail relay ------------------------------------------------------------------------------


class ScriptedRelay(FolderHandler):
    """The SMTP sink (each accepted message becomes an .eml file), scripted by recipient:
    ``refuse-*`` mailboxes do not exist (550), ``busy-*`` ones get 451 (try again later)
    for their first two messages."""

    BUSY_TIMES = 2

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.refused: list[str] = []
        self.busy_left: dict[str, int] = {}

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("refuse-"):
            self.refused.append(address)
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        busy = [r for r in envelope.rcpt_tos if r.startswith("busy-")]
        for recipient in busy:
            left = self.busy_left.setdefault(recipient, self.BUSY_TIMES)
            if left > 0:
                self.busy_left[recipient] = left - 1
                return "451 4.3.0 mail system busy, try again later"
        return await super().handle_DATA(server, session, envelope)


class Relay:
    """The relay on a fixed local port; it can be taken down (port closed) and brought back."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.handler = ScriptedRelay(folder)
        self.port = free_port()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    server = Relay(tmp_path_factory.mktemp("smtp") / "mail")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- the service ----------------------------------------------------------------------------------


RETRY_HORIZON_SECONDS = 2.0
"""How long the service under test retries a delivery (24 h in production, scaled down: an
outage shorter than this is ridden out, a longer one fails the delivery until retried by hand)."""


def settings_for(
    kafka_bootstrap: str, mongodb_uri: str, database: str, smtp_port: int, folder: Path
) -> NotificationsSettings:
    desks = folder / "desks.yaml"
    desks.write_text(
        "desks:\n"
        f"  - {{tenant: {TENANT}, name: ACME desk, email: {DESK}, locale: de,"
        " timezone: Europe/Berlin}\n",
        encoding="utf-8",
    )
    return NotificationsSettings(
        mongodb_uri=mongodb_uri,
        database=database,
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_timeout_seconds=5.0,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
        retry_horizon_seconds=RETRY_HORIZON_SECONDS,
        webhook_timeout_seconds=0.5,
        webhook_disable_after_failures=3,
        webhook_disable_after_seconds=0,
        delivery_poll_seconds=0.2,
        outbox_poll_seconds=0.1,
        shutdown_grace_seconds=2.0,
        links_port=0,
        desks_file=desks,
        log_level="WARNING",
    )


@asynccontextmanager
async def running(settings: NotificationsSettings) -> AsyncIterator[NotificationsService]:
    """The service's pieces, started the way its app starts them."""
    service = bootstrap(settings)
    ctx = service.ctx
    await ensure_topics(
        settings.kafka,
        [Topic.WORKORDERS_EVENTS, Topic.NOTIFICATIONS_EVENTS, dead_letter_topic(ctx.service)],
    )
    await ctx.store.ensure_indexes()
    await create_indexes(ctx.store)
    for hook in ctx.on_startup:
        await hook()
    await ctx.bus.broker.start()
    ctx.relay.start()
    try:
        yield service
    finally:
        await ctx.bus.broker.stop()
        for hook in reversed(ctx.on_shutdown):
            await hook()
        await ctx.relay.stop()
        await ctx.store.client.close()


@pytest.fixture(scope="module")
async def service(
    kafka_bootstrap: str, mongodb_uri: str, relay: Relay, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[NotificationsService]:
    """One running service for the module (joining the consumer group takes a few seconds)."""
    database = unique("test_notifications").replace("-", "_")
    folder = tmp_path_factory.mktemp("notifications")
    settings = settings_for(kafka_bootstrap, mongodb_uri, database, relay.port, folder)
    async with running(settings) as svc:
        yield svc


# -- events and what came out --------------------------------------------------------------------


def work_order(
    *, requester_email: str, locale: str = "de", tenant: str = TENANT
) -> WorkOrderReceived:
    return WorkOrderReceived(
        external_id=unique("FH"),
        site=Site(
            site_id="site-berlin-1",
            name="Kühlhaus Spandau",
            address=Address(
                line1="Am Juliusturm 12", city="Berlin", postal_code="13599", country="DE"
            ),
            timezone="Europe/Berlin",
        ),
        equipment=Equipment(equipment_id="chiller-3", equipment_class="refrigeration"),
        category=Category.BREAKDOWN,
        priority=Priority.EMERGENCY,
        description="Temperatur steigt <schnell> & Alarm läuft",
        requester=Requester(name="Jonas Weber", email=requester_email, locale=locale),
        reported_at=datetime(2026, 2, 3, 5, 55, tzinfo=UTC),
        work_order_id=unique("wo"),
        tenant=tenant,
        source_platform="fieldhub",
        received_at=datetime(2026, 2, 3, 6, 0, tzinfo=UTC),
    )


def envelope_of(order: WorkOrderReceived, tenant: str | None = None) -> EventEnvelope:
    return EventEnvelope.new(
        order, source=Service.ORDERS, subject=order.work_order_id, tenant=tenant or order.tenant
    )


async def planned_delivery(
    order: WorkOrderReceived, envelope: EventEnvelope | None = None, *, now: datetime | None = None
) -> Delivery:
    """The receipt e-mail the service plans for ``order`` (as its intake would record it)."""
    envelope = envelope or envelope_of(order)
    memory = MemoryStore(Service.NOTIFICATIONS)
    planner = bootstrap(
        NotificationsSettings(), uow=memory, clock=lambda: now or datetime.now(UTC)
    ).notifications

    async with memory.transaction() as uow:
        (delivery,) = await planner.on_event(Event(envelope, order), uow)
    return delivery


async def publish(
    bootstrap: str, order: WorkOrderReceived, envelope: EventEnvelope | None = None
) -> EventEnvelope:
    """Publish in CloudEvents binary mode, keyed by the work order (as the orders service does)."""
    envelope = envelope or envelope_of(order)
    await produce(
        bootstrap,
        Topic.WORKORDERS_EVENTS,
        encode_payload(order),
        key=order.work_order_id.encode(),
        headers=binary_headers(envelope),
    )
    return envelope


def mails_to(folder: Path, address: str) -> list[EmailMessage]:
    found = []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if any(a.addr_spec == address for a in message["To"].addresses):
            found.append(message)
    return found


async def mails_arrived(folder: Path, address: str, count: int = 1) -> list[EmailMessage]:
    async def probe() -> list[EmailMessage]:
        return mails_to(folder, address)

    return await eventually(probe, lambda mails: len(mails) >= count, timeout=30)


async def delivery_of(service: NotificationsService, work_order_id: str, status: str) -> Document:
    async def probe() -> Document | None:
        return await service.ctx.store.db[DELIVERIES].find_one({"work_order_id": work_order_id})

    doc = await eventually(probe, lambda d: d is not None and d["status"] == status, timeout=30)
    assert doc is not None
    return doc


async def attempts_of(service: NotificationsService, notification_id: str) -> list[Document]:
    return (
        await service.ctx.store.db[DELIVERY_ATTEMPTS]
        .find({"notification_id": notification_id})
        .sort("attempt", 1)
        .to_list()
    )


def outcomes_for(records: list[ConsumedRecord], work_order_id: str) -> list[ConsumedRecord]:
    return [r for r in records if r.json().get("work_order_id") == work_order_id]


async def outcome_events(
    bootstrap: str, work_order_id: str, count: int = 1
) -> list[ConsumedRecord]:
    records = await read_topic(
        bootstrap,
        Topic.NOTIFICATIONS_EVENTS,
        until=lambda rs: len(outcomes_for(rs, work_order_id)) >= count,
        timeout=30,
    )
    return outcomes_for(records, work_order_id)


def message_id(envelope: EventEnvelope) -> str:
    nid = notification_id_for(envelope.subject, envelope.id, "requester", Channel.EMAIL)
    return f"<{nid}@fixloop.local>"


# -- tests ----------------------------------------------------------------------------------------


async def test_received_work_order_sends_the_requester_a_german_mail_and_reports_it(
    service: NotificationsService, relay: Relay, kafka_bootstrap: str
) -> None:
    requester = f"{unique('jonas')}@example.com"
    order = work_order(requester_email=requester, locale="de")
    envelope = await publish(kafka_bootstrap, order)

    [mail] = await mails_arrived(relay.folder, requester)
    delivery = await delivery_of(service, order.work_order_id, "sent")
    attempts = await attempts_of(service, delivery["_id"])
    [event] = await outcome_events(kafka_bootstrap, order.work_order_id)

    assert mail["Message-ID"] == message_id(envelope)
    assert mail["From"] == "Fixloop <no-reply@fixloop.local>"
    assert mail["To"] == f"Jonas Weber <{requester}>"
    assert mail["Subject"] == (
        f"Ihr Reparaturauftrag {order.work_order_id} ist eingegangen (Kühlhaus Spandau)"
    )
    assert mail["Content-Language"] == "de"
    text_part = mail.get_body(preferencelist=("plain",))
    html_part = mail.get_body(preferencelist=("html",))
    assert text_part is not None
    assert html_part is not None
    text = text_part.get_content()
    html = html_part.get_content()
    assert "Guten Tag Jonas Weber," in text
    assert f"Auftrag: {order.work_order_id}" in text
    assert f"Ihre Referenz: {order.external_id} (fieldhub)" in text
    assert "Standort: Kühlhaus Spandau" in text
    assert "Anlage: refrigeration chiller-3" in text
    assert "Priorität: Notfall" in text
    # 05:55 / 06:00 UTC are 06:55 / 07:00 in Berlin (CET) on 3 February 2026, a Tuesday.
    assert "Gemeldet: Di., 3. Feb. 2026, 06:55 MEZ" in text
    assert "Eingegangen: Di., 3. Feb. 2026, 07:00 MEZ" in text
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert str(mail["List-Unsubscribe"]).startswith("<http://127.0.0.1:")
    assert "Temperatur steigt <schnell> & Alarm läuft" in text
    assert "Temperatur steigt &lt;schnell&gt; &amp; Alarm läuft" in html
    assert "<schnell>" not in html

    assert delivery["recipient"] == requester
    assert delivery["locale"] == "de"
    assert delivery["attempts"] == 1
    assert delivery["event_id"] == envelope.id
    assert delivery["message"]["message_id"] == message_id(envelope)
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "sent")]

    assert event.headers["ce_type"] == SENT
    assert event.headers["ce_source"] == Service.NOTIFICATIONS
    assert event.headers["ce_correlationid"] == envelope.correlationid
    assert event.headers["ce_tenant"] == TENANT
    assert event.key == order.work_order_id.encode()
    body = event.json()
    assert body["notification_id"] == delivery["_id"]
    assert body["recipient"] == requester
    assert body["channel"] == "email"
    assert body["template"] == RECEIPT_TEMPLATE
    assert body["locale"] == "de"
    assert body["attempts"] == 1


async def test_a_redelivered_event_sends_one_mail(
    service: NotificationsService, relay: Relay, kafka_bootstrap: str
) -> None:
    requester = f"{unique('dup')}@example.com"
    order = work_order(requester_email=requester, locale="en")
    envelope = envelope_of(order)
    for _ in range(3):
        await publish(kafka_bootstrap, order, envelope)
    # A different event about the same work order (same key, so the same partition, behind
    # the copies): once its mail is out, every copy has been consumed.
    marker = await publish(kafka_bootstrap, order)
    mails = await mails_arrived(relay.folder, requester, count=2)
    events = await outcome_events(kafka_bootstrap, order.work_order_id, count=2)
    await delivery_of(service, order.work_order_id, "sent")
    deliveries = (
        await service.ctx.store.db[DELIVERIES]
        .find({"work_order_id": order.work_order_id})
        .to_list()
    )
    # Applied once more as the kernel would: the event is claimed already, nothing happens.
    again = await apply_event(
        service.ctx.store, Event(envelope, order), service.notifications.on_event
    )
    assert again is None
    assert await service.ctx.store.db[DELIVERIES].count_documents(
        {"work_order_id": order.work_order_id}
    ) == len(deliveries)

    assert len(mails) == 2
    assert {m["Message-ID"] for m in mails} == {message_id(envelope), message_id(marker)}
    assert sorted(d["event_id"] for d in deliveries) == sorted([envelope.id, marker.id])
    assert len(events) == 2
    assert {e.headers["ce_type"] for e in events} == {SENT}


def fixloop_cli(
    service: NotificationsService, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``fixloop ...`` against the service's store, as an operator runs it."""
    settings = service.settings
    env = {
        **os.environ,
        "FIXLOOP_NOTIFICATIONS_MONGODB_URI": settings.mongodb_uri,
        "FIXLOOP_NOTIFICATIONS_DATABASE": settings.database,
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "fixloop_cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def notifications_cli(
    service: NotificationsService, *args: str
) -> subprocess.CompletedProcess[str]:
    return fixloop_cli(service, "notifications", *args)


async def test_an_outage_is_ridden_out_within_the_horizon_and_retried_by_hand_after_it(
    service: NotificationsService, relay: Relay, kafka_bootstrap: str
) -> None:
    # Down for less than the retry horizon: every mail goes out once the relay is back.
    short = [work_order(requester_email=f"{unique('short')}@example.com") for _ in range(4)]
    relay.stop()  # the relay's port is closed: connections are refused
    try:
        for order in short:
            await publish(kafka_bootstrap, order)
        for order in short:
            await attempted_twice(service, order.work_order_id)
    finally:
        relay.start()
    for order in short:
        delivery = await delivery_of(service, order.work_order_id, "sent")
        attempts = await attempts_of(service, delivery["_id"])
        assert [a["outcome"] for a in attempts][-1] == "sent"
        assert {a["outcome"] for a in attempts[:-1]} == {"transient"}
        assert len(await mails_arrived(relay.folder, order.requester.email)) == 1

    # Down for longer: the deliveries fail (reported), nothing is sent, nothing is lost ...
    long = [work_order(requester_email=f"{unique('long')}@example.com") for _ in range(4)]
    relay.stop()
    try:
        for order in long:
            await publish(kafka_bootstrap, order)
        failed = [await delivery_of(service, o.work_order_id, "failed") for o in long]
        events = [await outcome_events(kafka_bootstrap, o.work_order_id) for o in long]
    finally:
        relay.start()
    for delivery, [event] in zip(failed, events, strict=True):
        attempts = await attempts_of(service, delivery["_id"])
        assert len(attempts) == delivery["attempts"] >= 2
        assert {a["outcome"] for a in attempts} == {"transient"}
        assert f"127.0.0.1:{relay.port} unreachable" in delivery["last_error"]
        assert event.headers["ce_type"] == FAILED
        assert event.json()["error"] == delivery["last_error"]
    assert all(mails_to(relay.folder, o.requester.email) == [] for o in long)

    # ... and one command tries them again: each is sent, once.
    retried = notifications_cli(service, "retry", "--failed", "--since", "10m")
    assert retried.returncode == 0, retried.stderr
    count = int(retried.stdout.split()[0])
    assert count >= len(long)
    for order in long:
        delivery = await delivery_of(service, order.work_order_id, "sent")
        [mail] = await mails_arrived(relay.folder, order.requester.email)
        assert mail["Message-ID"] == f"<{delivery['_id']}@fixloop.local>"
    shown = notifications_cli(service, "log", long[0].work_order_id, "--json")
    assert shown.returncode == 0, shown.stderr
    [logged] = [json.loads(line) for line in shown.stdout.splitlines()]
    assert logged["status"] == "sent"
    assert [a["outcome"] for a in logged["attempts"]][-1] == "sent"
    assert len(logged["attempts"]) >= 3


async def attempted_twice(service: NotificationsService, work_order_id: str) -> None:
    async def probe() -> Document | None:
        return await service.ctx.store.db[DELIVERIES].find_one({"work_order_id": work_order_id})

    await eventually(probe, lambda d: d is not None and d["attempts"] >= 2, timeout=30)


async def test_permanent_rejection_fails_at_once_without_retries(
    service: NotificationsService, relay: Relay, kafka_bootstrap: str
) -> None:
    requester = f"{unique('refuse')}@example.com"
    order = work_order(requester_email=requester)
    await publish(kafka_bootstrap, order)
    delivery = await delivery_of(service, order.work_order_id, "failed")
    [event] = await outcome_events(kafka_bootstrap, order.work_order_id)
    attempts = await attempts_of(service, delivery["_id"])

    assert delivery["attempts"] == 1
    assert relay.handler.refused.count(requester) == 1
    assert "550" in delivery["last_error"]
    assert "mailbox unavailable" in delivery["last_error"]
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "permanent")]
    assert event.headers["ce_type"] == FAILED
    assert event.json()["attempts"] == 1


async def test_temporary_rejections_are_retried_until_the_mail_is_accepted(
    service: NotificationsService, relay: Relay, kafka_bootstrap: str
) -> None:
    requester = f"{unique('busy')}@example.com"
    order = work_order(requester_email=requester, locale="fr")
    await publish(kafka_bootstrap, order)
    delivery = await delivery_of(service, order.work_order_id, "sent")
    [event] = await outcome_events(kafka_bootstrap, order.work_order_id)
    attempts = await attempts_of(service, delivery["_id"])

    [mail] = mails_to(relay.folder, requester)
    assert str(mail["Subject"]).startswith("Nous avons bien reçu votre demande d'intervention")
    assert delivery["attempts"] == 3
    assert [a["outcome"] for a in attempts] == ["transient", "transient", "sent"]
    assert "451" in attempts[0]["error"]
    assert event.headers["ce_type"] == SENT
    assert event.json()["attempts"] == 3


async def test_a_delivery_left_by_a_dead_worker_is_sent_again_with_the_same_message_id(
    service: NotificationsService, relay: Relay
) -> None:
    requester = f"{unique('again')}@example.com"
    order = work_order(requester_email=requester, locale="en")
    envelope = envelope_of(order)
    now = datetime.now(UTC)
    planned = await planned_delivery(order, envelope, now=now)
    # What a worker leaves behind when it dies after an attempt but before recording it:
    # the delivery pending, one attempt counted, and its lease running out shortly.
    left_behind = delivery_to_document(planned) | {
        "lease_owner": "worker-that-died",
        "lease_until_ms": epoch_ms(now + timedelta(seconds=1)),
        "attempts": 1,
    }
    async with service.ctx.store.exclusive():  # as the service's own writes do
        await service.ctx.store.db[DELIVERIES].insert_one(left_behind)

    delivery = await delivery_of(service, order.work_order_id, "sent")
    [mail] = await mails_arrived(relay.folder, requester)
    [event] = await outcome_events(service.settings.kafka.bootstrap, order.work_order_id)

    assert mail["Message-ID"] == message_id(envelope)
    assert delivery["attempts"] == 2
    assert event.headers["ce_type"] == SENT
    assert event.json()["attempts"] == 2


async def test_an_event_whose_tenants_disagree_is_dead_lettered_not_sent(
    service: NotificationsService, relay: Relay, kafka_bootstrap: str
) -> None:
    requester = f"{unique('mixed')}@example.com"
    order = work_order(requester_email=requester, tenant="acme")
    envelope = await publish(kafka_bootstrap, order, envelope_of(order, tenant="globex"))

    def dead_lettered(records: list[ConsumedRecord]) -> list[ConsumedRecord]:
        return [r for r in records if r.headers.get("ce_id") == envelope.id]

    records = await read_topic(
        kafka_bootstrap,
        dead_letter_topic(Service.NOTIFICATIONS),
        until=lambda rs: bool(dead_lettered(rs)),
        timeout=30,
    )
    [record] = dead_lettered(records)
    assert record.headers["fixloop_dlq_reason"] == "unauthorized"
    assert "tenant" in record.headers["fixloop_dlq_message"]
    assert (
        await service.ctx.store.db[DELIVERIES].count_documents(
            {"work_order_id": order.work_order_id}
        )
        == 0
    )
    assert mails_to(relay.folder, requester) == []


async def test_the_attempt_log_survives_a_transaction_rolled_back_beside_it(
    mongo_client: MongoClient, database_name: str
) -> None:
    """The delivery worker logs attempts outside any transaction while the consumer's
    transactions run beside it; one of those rolled back (a redelivered event) must not take
    a logged attempt or a lease with it."""
    store = Store(mongo_client, database_name, service=Service.NOTIFICATIONS)
    await create_indexes(store)
    log = MongoDeliveryLog(store)
    planned = await planned_delivery(work_order(requester_email=f"{unique('beside')}@example.com"))
    await store.db[DELIVERIES].insert_one(delivery_to_document(planned))
    nid = planned.notification_id
    now = datetime.now(UTC)

    class RolledBackError(Exception):
        pass

    async def log_attempt_meanwhile() -> None:
        claimed = await log.claim_next(owner="worker-1", now=now, lease_until=now + HOUR)
        assert claimed is not None
        number = await log.begin_attempt(nid, owner="worker-1", now=now, lease_until=now + HOUR)
        assert number == 1
        await log.record_attempt(nid, attempt=1, at=now, error=None)

    beside: list[asyncio.Task[None]] = []

    async def roll_back_while_the_worker_logs() -> None:
        async with store.transaction() as uow:
            await uow.db["scratch"].insert_one({"_id": unique("rolled-back")}, session=uow.session)
            beside.append(asyncio.create_task(log_attempt_meanwhile()))
            await asyncio.sleep(0.5)
            raise RolledBackError

    with pytest.raises(RolledBackError):
        await roll_back_while_the_worker_logs()
    await asyncio.gather(*beside)

    attempts = await store.db[DELIVERY_ATTEMPTS].find({"notification_id": nid}).to_list()
    delivery = await store.db[DELIVERIES].find_one({"_id": nid})
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "sent")]
    assert delivery is not None
    assert (delivery["lease_owner"], delivery["attempts"]) == ("worker-1", 1)


# -- webhooks -------------------------------------------------------------------------------------


async def webhook_calls(service: NotificationsService, work_order_id: str) -> list[Document]:
    return (
        await service.ctx.store.db[DELIVERIES]
        .find({"work_order_id": work_order_id, "channel": "webhook"})
        .to_list()
    )


async def test_a_webhook_failing_then_hanging_then_answering_is_delivered_once_signed(
    service: NotificationsService, kafka_bootstrap: str, scripted: ScriptedEndpoint
) -> None:
    registry = MongoWebhookRegistry(service.ctx.store)
    tenant = unique("hooked")
    endpoint = await registry.add(
        tenant, f"http://127.0.0.1:{scripted.port}/hooks", [], datetime.now(UTC)
    )
    scripted.script = [500, "hang"]
    order = work_order(requester_email=f"{unique('hook')}@example.com", tenant=tenant)
    try:
        envelope = await publish(kafka_bootstrap, order)

        async def sent_call() -> list[Document]:
            return [d for d in await webhook_calls(service, order.work_order_id) if d]

        [call] = await eventually(
            sent_call, lambda calls: bool(calls) and calls[0]["status"] == "sent", timeout=30
        )
    finally:
        await registry.remove(endpoint.endpoint_id)
    attempts = await attempts_of(service, call["_id"])
    assert [a["outcome"] for a in attempts] == ["transient", "transient", "sent"]
    assert "answered 500" in attempts[0]["error"]
    assert len(scripted.requests) == 3
    secret = endpoint.secrets[0].value
    ids = set()
    for headers, body in scripted.requests:
        verified = Webhook(secret).verify(body, headers)
        assert verified["id"] == envelope.id
        assert verified["type"] == "fixloop.workorder.received.v1"
        assert verified["data"]["work_order_id"] == order.work_order_id
        ids.add(headers["webhook-id"])
    assert ids == {call["message"]["webhook_id"]}  # the same id on every attempt


async def test_an_endpoint_that_never_recovers_is_disabled_and_the_desk_told(
    service: NotificationsService,
    kafka_bootstrap: str,
    scripted: ScriptedEndpoint,
    relay: Relay,
) -> None:
    registry = MongoWebhookRegistry(service.ctx.store)
    endpoint = await registry.add(
        TENANT, f"http://127.0.0.1:{scripted.port}/dead", [], datetime.now(UTC)
    )
    scripted.script = [500] * 20
    order = work_order(requester_email=f"{unique('dead')}@example.com")
    try:
        await publish(kafka_bootstrap, order)

        async def failed_call() -> list[Document]:
            return await webhook_calls(service, order.work_order_id)

        [call] = await eventually(
            failed_call, lambda calls: bool(calls) and calls[0]["status"] == "failed", timeout=30
        )
        disabled = await registry.get(endpoint.endpoint_id)
        desk_mails = await eventually(
            lambda: asyncio.sleep(0, result=mails_about(relay.folder, endpoint.url)),
            bool,
            timeout=30,
        )
    finally:
        await registry.remove(endpoint.endpoint_id)
    assert disabled is not None
    assert disabled.enabled is False
    assert len(scripted.requests) == 3  # the third failure disabled it
    attempts = await attempts_of(service, call["_id"])
    assert [a["outcome"] for a in attempts] == ["transient", "transient", "permanent"]
    [mail] = desk_mails
    assert mail["Content-Language"] == "de"
    assert [a.addr_spec for a in mail["To"].addresses] == [DESK]


def mails_about(folder: Path, text: str) -> list[EmailMessage]:
    """Mails to the desk whose text mentions ``text``."""
    found = []
    for message in mails_to(folder, DESK):
        body = message.get_body(preferencelist=("plain",))
        if body is not None and text in body.get_content():
            found.append(message)
    return found


def webhooks_cli(service: NotificationsService, *args: str) -> subprocess.CompletedProcess[str]:
    return fixloop_cli(service, "webhooks", *args)


async def test_an_operator_manages_endpoints_from_the_cli(
    service: NotificationsService, scripted: ScriptedEndpoint
) -> None:
    tenant = unique("cli")
    url = f"http://127.0.0.1:{scripted.port}/cli"
    added = await asyncio.to_thread(webhooks_cli, service, "add", "--tenant", tenant, "--url", url)
    assert added.returncode == 0, added.stderr
    endpoint_id = added.stdout.split()[1]
    secret = added.stdout.split("shown once): ")[1].split()[0]
    assert secret.startswith("whsec_")

    tested = await asyncio.to_thread(webhooks_cli, service, "test", endpoint_id)
    assert tested.returncode == 0, tested.stderr
    assert "delivered" in tested.stdout
    [(headers, body)] = scripted.requests
    assert Webhook(secret).verify(body, headers)["type"] == "fixloop.webhook.test.v1"

    listed = await asyncio.to_thread(webhooks_cli, service, "list", "--tenant", tenant, "--json")
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["endpoint_id"], row["url"], row["enabled"]) == (endpoint_id, url, True)
    assert secret not in listed.stdout

    rotated = await asyncio.to_thread(webhooks_cli, service, "rotate-secret", endpoint_id)
    assert rotated.returncode == 0, rotated.stderr
    newer = rotated.stdout.split("shown once): ")[1].split()[0]
    assert newer != secret
    await asyncio.to_thread(webhooks_cli, service, "test", endpoint_id)
    headers, body = scripted.requests[-1]
    assert Webhook(secret).verify(body, headers)  # the old secret still verifies ...
    assert Webhook(newer).verify(body, headers)  # ... and so does the new one

    # Resealing under the key in force rewrites every endpoint; under a key that opens none of
    # them it changes nothing and says so.
    resealed = await asyncio.to_thread(webhooks_cli, service, "reseal")
    assert resealed.returncode == 0, resealed.stderr
    assert "resealed the secrets of" in resealed.stdout
    wrong_key = {"FIXLOOP_NOTIFICATIONS_WEBHOOK_SECRET_KEY": "not-the-key-" + "x" * 30}
    refused_key = await asyncio.to_thread(
        fixloop_cli, service, "webhooks", "reseal", extra_env=wrong_key
    )
    assert refused_key.returncode == 1
    assert "no configured key opens" in refused_key.stderr
    assert len(refused_key.stderr.strip().splitlines()) == 1
    await asyncio.to_thread(webhooks_cli, service, "test", endpoint_id)
    headers, body = scripted.requests[-1]
    assert Webhook(newer).verify(body, headers)

    disabled = await asyncio.to_thread(webhooks_cli, service, "disable", endpoint_id)
    assert disabled.returncode == 0, disabled.stderr
    refused = await asyncio.to_thread(webhooks_cli, service, "test", endpoint_id)
    assert refused.returncode == 1
    assert "disabled" in refused.stdout

    for bad in (
        ("add", "--tenant", tenant, "--url", "https://user:pw@example.com/x"),
        ("enable", str(uuid.uuid4())),
    ):
        wrong = await asyncio.to_thread(webhooks_cli, service, *bad)
        assert wrong.returncode in (1, 2), bad
        assert wrong.stderr.startswith("error: "), (bad, wrong.stderr)
        assert "Traceback" not in wrong.stderr

    # A host that does not resolve from here (.invalid never does) is taken, with a note: every
    # call resolves it again and refuses internal addresses.
    unresolved = await asyncio.to_thread(
        webhooks_cli, service, "add", "--tenant", tenant, "--url", "https://hooks.fixloop.invalid/x"
    )
    assert unresolved.returncode == 0, unresolved.stderr
    assert "note: the host does not resolve from here" in unresolved.stdout


async def test_the_desk_records_what_a_recipient_asked_for_from_the_cli(
    service: NotificationsService,
) -> None:
    """What the desk records is what the service reads when it decides a notice."""
    tenant = unique("prefs")
    phone = "+4915112345678"

    async def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            notifications_cli, service, "preferences", *args, "--tenant", tenant
        )

    shown = await cli("show", phone, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["recorded"] is False

    given = await cli("sms-consent", phone, "--given", "--source", "operator:desk-7")
    assert given.returncode == 0, given.stderr
    out_of = await cli("opt-out", phone, "--channel", "sms", "--kind", "visit_scheduled")
    assert out_of.returncode == 0, out_of.stderr
    quiet = await cli("quiet-hours", phone, "22:30-06:00")
    assert quiet.returncode == 0, quiet.stderr
    spoken = await cli("language", phone, "--locale", "de_at", "--time-zone", "Europe/Vienna")
    assert spoken.returncode == 0, spoken.stderr

    book = MongoPreferences(service.ctx.store)
    recorded = await book.get(tenant, phone)
    assert recorded is not None
    assert recorded.allows("contractor_assigned", Channel.SMS, essential=False)
    assert not recorded.allows("visit_scheduled", Channel.SMS, essential=False)
    assert recorded.sms_consent is not None
    assert recorded.sms_consent.source == "operator:desk-7"
    assert recorded.effective_quiet_hours == QuietHours(start=time(22, 30), end=time(6, 0))
    assert (recorded.locale, recorded.timezone) == ("de-AT", "Europe/Vienna")

    # Withdrawn: no SMS at all, whatever the order says; the language kept when only the time
    # zone is cleared.
    withdrawn = await cli("sms-consent", phone, "--withdrawn", "--source", "sms:STOP")
    assert withdrawn.returncode == 0, withdrawn.stderr
    cleared = await cli("language", phone, "--time-zone", "none")
    assert cleared.returncode == 0, cleared.stderr
    recorded = await book.get(tenant, phone)
    assert recorded is not None
    assert not recorded.allows(
        "contractor_assigned", Channel.SMS, essential=False, sms_consent_on_order=True
    )
    assert (recorded.locale, recorded.timezone) == ("de-AT", None)

    shown = await cli("show", phone, "--json")
    view = json.loads(shown.stdout)
    assert view["sms_consent"]["granted"] is False
    assert view["opted_out"] == ["visit_scheduled:sms"]
    assert view["quiet_hours"] == "22:30-06:00"

    # A bad word is one line, exit 2, and changes nothing.
    bad = await cli("opt-out", phone, "--channel", "pigeon")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: --channel 'pigeon' is not one of email, sms"]
    assert (await book.get(tenant, phone)) == recorded
