"""Wiring: settings -> clients -> use cases -> Kafka consumer, delivery worker, HTTP probes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fixloop_notifications.adapters.consumer import CONSUMED_TOPICS, notifications_consumers
from fixloop_notifications.adapters.desks import load_desks
from fixloop_notifications.adapters.directory import (
    MemoryNoticeDirectory,
    MongoNoticeDirectory,
    create_directory_indexes,
)
from fixloop_notifications.adapters.link_answers import (
    MemoryLinkAnswers,
    MongoLinkAnswers,
    create_link_answer_indexes,
)
from fixloop_notifications.adapters.links_http import LinksServer, links_app
from fixloop_notifications.adapters.memory import MemoryDeliveryLog, MemoryMailRelay
from fixloop_notifications.adapters.mongo import MongoDeliveryLog, create_indexes
from fixloop_notifications.adapters.preferences import (
    MemoryPreferences,
    MongoPreferences,
    create_preference_indexes,
)
from fixloop_notifications.adapters.sms_http import HttpSmsSender
from fixloop_notifications.adapters.smtp import SmtpSender
from fixloop_notifications.adapters.templates import TemplateCatalog
from fixloop_notifications.adapters.webhook_registry import (
    MongoWebhookRegistry,
    create_webhook_indexes,
)
from fixloop_notifications.adapters.webhooks_http import WebhookEndpointDisabled, WebhookSender
from fixloop_notifications.app.dispatch import ChannelSenders, DeliveryWorker
from fixloop_notifications.app.feedback import LinkAnswerBook, LinkAnswers
from fixloop_notifications.app.intake import SmsSettings, WorkOrderNotifications
from fixloop_notifications.app.links import NoticeLinks
from fixloop_notifications.app.ports import DeliveryLog, NoticeDirectory
from fixloop_notifications.domain.delivery import Delivery, DeliveryError, RetryPolicy
from fixloop_notifications.domain.links import LinkSigner
from fixloop_notifications.domain.mail import Mailbox
from fixloop_notifications.domain.quiet_hours import QuietHours
from fixloop_notifications.domain.webhooks import DisablePolicy
from fixloop_notifications.settings import NotificationsSettings
from fixloop_shared.asyncapi import declare_published_topics
from fixloop_shared.kernel import EventConsumer, UnitsOfWork
from fixloop_shared.memory import memory_store
from fixloop_shared.runtime import ServiceContext, build_app, build_context, serve
from fixloop_shared.service_app import ServiceApp
from fixloop_shared.settings import load_settings
from fixloop_shared.store import Store
from fixloop_shared.topics import Service, Topic

PRODUCED_TOPICS: tuple[Topic, ...] = (Topic.NOTIFICATIONS_EVENTS,)


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class NotificationsService:
    """The pieces of one notifications process (the app runs them; tests may too)."""

    settings: NotificationsSettings
    ctx: ServiceContext
    units: UnitsOfWork
    """Where the consumers' units of work come from (the MongoDB store, or the given one)."""
    consumers: list[EventConsumer]
    deliveries: DeliveryLog
    sender: ChannelSenders
    notifications: WorkOrderNotifications
    worker: DeliveryWorker
    app: ServiceApp
    links: LinksServer
    """The public links (survey, verify/reject, unsubscribe) on their own port."""


def _nothing() -> None:
    """What recording a delivery wakes when no due-work kind delivers it."""


def delivery_lease(settings: NotificationsSettings) -> timedelta:
    """How long a worker holds a delivery per attempt: the longest attempt's deadline and a
    margin. A worker that dies gives it back after that (a retry's wait is kept in the
    delivery itself, not in the lease)."""
    longest = max(
        settings.smtp_timeout_seconds,
        settings.sms_timeout_seconds,
        settings.webhook_timeout_seconds,
    )
    return timedelta(seconds=longest + settings.delivery_lease_margin_seconds)


@dataclass
class _Parts:
    """Where a notifications process keeps and sends things: MongoDB and the real channels, or
    memory."""

    deliveries: DeliveryLog
    directory: NoticeDirectory
    preferences: MongoPreferences | MemoryPreferences
    answers: LinkAnswerBook
    webhooks: MongoWebhookRegistry | None
    senders: ChannelSenders


def _stored_parts(ctx: ServiceContext, settings: NotificationsSettings, now: Clock) -> _Parts:
    webhooks = MongoWebhookRegistry(
        ctx.store, allow_loopback=settings.webhook_allow_loopback, box=settings.secret_box()
    )
    relay = SmtpSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        timeout_seconds=settings.smtp_timeout_seconds,
        keep_connections=settings.delivery_concurrency,
    )
    sms = HttpSmsSender(
        base_url=settings.sms_api_url,
        account=settings.sms_account,
        token=settings.sms_token,
        sender=settings.sms_sender,
        timeout_seconds=settings.sms_timeout_seconds,
    )
    caller = WebhookSender(
        webhooks,
        timeout_seconds=settings.webhook_timeout_seconds,
        disable_policy=DisablePolicy(
            after_failures=settings.webhook_disable_after_failures,
            after=timedelta(seconds=settings.webhook_disable_after_seconds),
        ),
        clock=now,
        allow_loopback=settings.webhook_allow_loopback,
    )
    ctx.on_shutdown.extend([relay.close, sms.close, caller.close])
    return _Parts(
        deliveries=MongoDeliveryLog(ctx.store),
        directory=MongoNoticeDirectory(ctx.store),
        preferences=MongoPreferences(ctx.store),
        answers=MongoLinkAnswers(ctx.store),
        webhooks=webhooks,
        senders=ChannelSenders(mail=relay, sms=sms, webhooks=caller),
    )


def _memory_parts(ctx: ServiceContext, uow: UnitsOfWork) -> _Parts:
    memory = memory_store(uow)
    ctx.units = memory
    return _Parts(
        deliveries=MemoryDeliveryLog(memory),
        directory=MemoryNoticeDirectory(memory),
        preferences=MemoryPreferences(),
        answers=MemoryLinkAnswers(memory),
        webhooks=None,
        senders=ChannelSenders(mail=MemoryMailRelay()),
    )


def bootstrap(
    settings: NotificationsSettings | None = None,
    *,
    uow: UnitsOfWork | None = None,
    clock: Clock | None = None,
) -> NotificationsService:
    """The composition root: settings → clients → use cases → consumers and worker → app.

    Nothing connects here; the app connects when it starts. ``clock`` is the time every use case
    reads (None: the UTC clock). With ``uow`` (a :class:`~fixloop_shared.memory.MemoryStore`) the
    consumer and the worker's outcomes work in its units of work, the delivery log, what is known
    of orders and recipients' preferences live in it instead of MongoDB, mail goes to a
    :class:`MemoryMailRelay` instead of SMTP, and there are no SMS or webhooks. Deliveries are
    then no kind of the (MongoDB) due-work scheduler: a pending one is taken with
    :meth:`MemoryDeliveryLog.claim_next` and delivered with :meth:`DeliveryWorker.deliver`.
    """
    settings = settings or NotificationsSettings()
    now = clock or utc_now
    ctx = build_context(Service.NOTIFICATIONS, settings)
    desks = load_desks(settings.desks_file)
    parts = _stored_parts(ctx, settings, now) if uow is None else _memory_parts(ctx, uow)
    deliveries, directory, preferences = parts.deliveries, parts.directory, parts.preferences
    answers, webhooks, senders = parts.answers, parts.webhooks, parts.senders
    signer = LinkSigner(
        settings.link_secret.get_secret_value(),
        settings.public_url,
        previous_secrets=[s.get_secret_value() for s in settings.link_previous_secrets],
    )
    on_recorded: Callable[[], None] = _nothing
    catalog = TemplateCatalog()
    notifications = WorkOrderNotifications(
        deliveries=deliveries,
        directory=directory,
        catalog=catalog,
        sender=Mailbox.parse(settings.mail_from),
        desks=desks,
        preferences=preferences,
        links=NoticeLinks(signer),
        webhooks=webhooks,
        sms=SmsSettings(sender=settings.sms_sender, max_segments=settings.sms_max_segments),
        quiet_hours=QuietHours(start=settings.quiet_hours_start, end=settings.quiet_hours_end),
        on_recorded=lambda: on_recorded(),  # noqa: PLW0108 - bound after the worker exists
        clock=now,
        metrics=ctx.metrics,
    )

    async def on_failed(delivery: Delivery, error: DeliveryError) -> None:
        if isinstance(error, WebhookEndpointDisabled):
            endpoint = error.endpoint
            await notifications.endpoint_disabled(
                ctx.units,
                tenant=endpoint.tenant,
                endpoint_id=endpoint.endpoint_id,
                endpoint_url=endpoint.url,
                failures=endpoint.consecutive_failures,
                failing_since=endpoint.failing_since or delivery.created_at,
            )

    worker = DeliveryWorker(
        clock=now,
        # The worker only opens units of work on it (``transaction()``).
        store=ctx.units,
        deliveries=deliveries,
        sender=senders,
        policy=RetryPolicy(
            attempts=settings.delivery_attempts,
            base_seconds=settings.retry_base_seconds,
            max_seconds=settings.retry_max_seconds,
            horizon_seconds=settings.retry_horizon_seconds,
        ),
        lease=delivery_lease(settings),
        scheduler=ctx.scheduler,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        metrics=ctx.metrics,
        concurrency=settings.delivery_concurrency,
        on_failed=on_failed,
    )
    if isinstance(deliveries, MongoDeliveryLog):
        ctx.scheduler.add(
            deliveries.due_work(
                worker.deliver_batch,
                lease=delivery_lease(settings),
                batch_size=settings.delivery_batch_size,
                poll_seconds=settings.delivery_poll_seconds,
            )
        )
        on_recorded = worker.wake
        ctx.on_startup.append(worker.start)
        ctx.on_shutdown.append(worker.stop)
    feedback = LinkAnswers(units=ctx.units, answers=answers, preferences=preferences, clock=now)
    links = LinksServer(
        links_app(signer=signer, answers=feedback, catalog=catalog),
        host=settings.links_host,
        port=settings.links_port,
    )
    if uow is None:
        ctx.on_startup.append(links.start)
        ctx.on_shutdown.append(links.stop)
    consumers = notifications_consumers(notifications)
    ctx.consume(*consumers)
    declare_published_topics(ctx.bus, PRODUCED_TOPICS)

    async def indexes(store: Store) -> None:
        await create_indexes(store)
        await create_webhook_indexes(store)
        await create_preference_indexes(store)
        await create_link_answer_indexes(store)
        await create_directory_indexes(store)

    app = build_app(
        ctx,
        topics=[t.value for t in (*CONSUMED_TOPICS, *PRODUCED_TOPICS)],
        indexes=indexes,
        title="Fixloop notifications",
        description=(
            "Tells requesters, contractors and tenants' dispatch desks what happens to their "
            "work orders — by e-mail, SMS and signed webhooks — in their language and time "
            "zone, holds what can wait through quiet hours, serves the signed survey, verify "
            "and unsubscribe links, and reports every delivery as notification.sent or "
            "notification.failed."
        ),
    )
    return NotificationsService(
        settings=settings,
        ctx=ctx,
        units=ctx.units,
        consumers=consumers,
        deliveries=deliveries,
        sender=senders,
        notifications=notifications,
        worker=worker,
        app=app,
        links=links,
    )


def create_app(settings: NotificationsSettings | None = None) -> ServiceApp:
    """The ASGI app of the notifications service."""
    return bootstrap(settings).app


def main() -> None:
    settings = load_settings(NotificationsSettings)
    serve(create_app(settings), settings)
