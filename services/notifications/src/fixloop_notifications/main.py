"""Wiring: settings -> clients -> use cases -> Kafka consumer, delivery worker, HTTP probes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fixloop_notifications.adapters.consumer import CONSUMED_TOPICS, notifications_consumers
from fixloop_notifications.adapters.memory import MemoryDeliveryLog, MemoryMailRelay
from fixloop_notifications.adapters.mongo import MongoDeliveryLog, create_indexes
from fixloop_notifications.adapters.smtp import SmtpSender
from fixloop_notifications.adapters.templates import TemplateCatalog
from fixloop_notifications.app.dispatch import DeliveryWorker
from fixloop_notifications.app.intake import WorkOrderNotifications
from fixloop_notifications.app.ports import DeliveryLog, MailSender
from fixloop_notifications.domain.delivery import RetryPolicy
from fixloop_notifications.domain.mail import Mailbox
from fixloop_notifications.settings import NotificationsSettings
from fixloop_shared.asyncapi import declare_published_topics
from fixloop_shared.kernel import EventConsumer, UnitsOfWork
from fixloop_shared.memory import memory_store
from fixloop_shared.runtime import ServiceContext, build_app, build_context, serve
from fixloop_shared.service_app import ServiceApp
from fixloop_shared.settings import load_settings
from fixloop_shared.topics import Service, Topic

PRODUCED_TOPICS: tuple[Topic, ...] = (Topic.NOTIFICATIONS_EVENTS,)

LEASE_MARGIN_SECONDS = 30.0

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
    sender: MailSender
    notifications: WorkOrderNotifications
    worker: DeliveryWorker
    app: ServiceApp


def _nothing() -> None:
    """What recording a delivery wakes when no due-work kind delivers it."""


def delivery_lease(settings: NotificationsSettings) -> timedelta:
    """How long a worker holds a delivery per attempt: the attempt's deadline, the longest
    wait before the next attempt, and a margin. A worker that dies gives it back after that."""
    return timedelta(
        seconds=settings.smtp_timeout_seconds + settings.retry_max_seconds + LEASE_MARGIN_SECONDS
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
    consumer and the worker's outcomes work in its units of work, the delivery log lives in it
    instead of MongoDB, and mail goes to a :class:`MemoryMailRelay` instead of SMTP. Deliveries
    are then no kind of the (MongoDB) due-work scheduler: a pending one is taken with
    :meth:`MemoryDeliveryLog.claim_next` and delivered with :meth:`DeliveryWorker.deliver`.
    """
    settings = settings or NotificationsSettings()
    now = clock or utc_now
    ctx = build_context(Service.NOTIFICATIONS, settings)
    deliveries: DeliveryLog
    sender: MailSender
    if uow is None:
        deliveries = MongoDeliveryLog(ctx.store)
        relay = SmtpSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            timeout_seconds=settings.smtp_timeout_seconds,
            keep_connections=settings.delivery_concurrency,
        )
        ctx.on_shutdown.append(relay.close)
        sender = relay
    else:
        memory = memory_store(uow)
        deliveries, sender = MemoryDeliveryLog(memory), MemoryMailRelay()
        ctx.units = memory
    worker = DeliveryWorker(
        clock=now,
        # The worker only opens units of work on it (``transaction()``).
        store=ctx.units,
        deliveries=deliveries,
        sender=sender,
        policy=RetryPolicy(
            attempts=settings.delivery_attempts,
            base_seconds=settings.retry_base_seconds,
            max_seconds=settings.retry_max_seconds,
        ),
        lease=delivery_lease(settings),
        scheduler=ctx.scheduler,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        metrics=ctx.metrics,
        concurrency=settings.delivery_concurrency,
    )
    on_recorded: Callable[[], None] = _nothing
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
    notifications = WorkOrderNotifications(
        deliveries=deliveries,
        catalog=TemplateCatalog(),
        sender=Mailbox.parse(settings.mail_from),
        on_recorded=on_recorded,
        clock=now,
    )
    consumers = notifications_consumers(notifications)
    ctx.consume(*consumers)
    declare_published_topics(ctx.bus, PRODUCED_TOPICS)
    app = build_app(
        ctx,
        topics=[t.value for t in (*CONSUMED_TOPICS, *PRODUCED_TOPICS)],
        indexes=create_indexes,
        title="Fixloop notifications",
        description=(
            "Tells requesters, contractors and dispatchers what happens to their work orders "
            "(e-mail), in their language and their site's time zone, and reports every "
            "delivery as notification.sent or notification.failed."
        ),
    )
    return NotificationsService(
        settings=settings,
        ctx=ctx,
        units=ctx.units,
        consumers=consumers,
        deliveries=deliveries,
        sender=sender,
        notifications=notifications,
        worker=worker,
        app=app,
    )


def create_app(settings: NotificationsSettings | None = None) -> ServiceApp:
    """The ASGI app of the notifications service."""
    return bootstrap(settings).app


def main() -> None:
    settings = load_settings(NotificationsSettings)
    serve(create_app(settings), settings)
