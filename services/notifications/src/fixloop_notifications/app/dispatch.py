"""The delivery worker: sends pending notifications, retries, and records how each one ended.

Pending deliveries are a kind of due work (``notification-deliveries``) on the service's
due-work scheduler, which leases the oldest ones, a batch at a time per pod. Each is attempted
once per claim, on its channel (e-mail, SMS, webhook): those sent are marked sent together, in
one transaction that emits their ``NotificationSent`` events through the outbox; a permanent
failure, or a delivery past the policy's horizon (24 h by default), is marked failed
(``NotificationFailed``) and can be retried by hand; a transient failure keeps the delivery out
of reach until its backoff (doubling, with jitter) is over, when any pod claims it again. When a
channel that was failing answers again, the deliveries waiting on it are due at once.

The attempt is counted before anything is sent. A crash after sending but before marking leaves
the delivery pending; once its lease runs out it is sent again with the same Message-ID (SMS:
idempotency key; webhook: ``webhook-id``), so receivers can tell the repeat (at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter
from tenacity import AsyncRetrying, stop_after_attempt

from fixloop_notifications.app.ports import DeliveryLog, MailSender, SmsSender, WebhookCaller
from fixloop_notifications.domain.delivery import (
    Delivery,
    DeliveryError,
    DeliveryStatus,
    RetryPolicy,
    delivery_target,
)
from fixloop_notifications.domain.mail import OutgoingMail
from fixloop_notifications.domain.sms import OutgoingSms
from fixloop_shared.contracts import NotificationFailed, NotificationSent
from fixloop_shared.due_work import DueWorkScheduler
from fixloop_shared.kernel import UnitsOfWork
from fixloop_shared.topics import Topic

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


DELIVERY_WORK = "notification-deliveries"
"""The due-work kind of pending deliveries."""


class _LeaseLost(Exception):  # noqa: N818 - internal control flow
    """The delivery was finished or taken over by another worker."""


class DeliveryInterruptedError(Exception):
    """The store (or something unexpected) failed mid-delivery: it stays pending, leased, and
    is picked up again when its lease runs out (not at once: no hot loop while the store is
    down). Nothing is recorded as done that was not."""


class ChannelSenders:
    """Sends a delivery on its channel; a channel with no sender configured fails permanently."""

    def __init__(
        self,
        *,
        mail: MailSender | None = None,
        sms: SmsSender | None = None,
        webhooks: WebhookCaller | None = None,
    ) -> None:
        self.mail = mail
        self.sms = sms
        self.webhooks = webhooks

    async def send(self, delivery: Delivery) -> None:
        message = delivery.message
        if isinstance(message, OutgoingMail):
            if self.mail is None:
                raise DeliveryError("no mail relay is configured", permanent=True)
            await self.mail.send(message)
        elif isinstance(message, OutgoingSms):
            if self.sms is None:
                raise DeliveryError("no SMS provider is configured", permanent=True)
            await self.sms.send(message)
        else:
            if self.webhooks is None:
                raise DeliveryError("webhooks are not configured", permanent=True)
            await self.webhooks.send(message)


class DeliveryWorker:
    def __init__(
        self,
        *,
        store: UnitsOfWork,
        deliveries: DeliveryLog,
        sender: ChannelSenders,
        policy: RetryPolicy,
        lease: timedelta,
        scheduler: DueWorkScheduler,
        shutdown_grace_seconds: float = 10.0,
        metrics: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = _utc_now,
        concurrency: int = 4,
        on_failed: Callable[[Delivery, DeliveryError], Awaitable[None]] | None = None,
    ) -> None:
        self._concurrency = concurrency
        self._on_failed = on_failed
        self._store = store
        self._deliveries = deliveries
        self._sender = sender
        self._policy = policy
        self._lease = lease
        self._scheduler = scheduler
        self._grace = shutdown_grace_seconds
        self._clock = clock
        self._failing: set[str] = set()
        """Targets (a channel, or one webhook endpoint) whose last attempt failed."""
        self._jitter = random.Random()  # noqa: S311 - spreads retries, not a secret
        registry = metrics or CollectorRegistry()
        self._outcomes = Counter(
            "fixloop_notifications_delivered",
            "Notifications whose delivery ended, by channel and outcome",
            ["channel", "outcome"],
            registry=registry,
        )
        self._attempts = Counter(
            "fixloop_notification_attempts",
            "Delivery attempts, by outcome (sent, transient, permanent)",
            ["outcome"],
            registry=registry,
        )

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def owner(self) -> str:
        """Whose leases this worker's deliveries are held under (the process's scheduler)."""
        return self._scheduler.owner

    def wake(self) -> None:
        """Look for pending deliveries now (a new one was recorded)."""
        self._scheduler.wake(DELIVERY_WORK)

    async def start(self) -> None:
        await self._scheduler.start(DELIVERY_WORK)

    async def stop(self) -> None:
        """Stop taking deliveries, let in-flight ones finish (bounded), give the rest back."""
        await self._scheduler.stop(DELIVERY_WORK, grace_seconds=self._grace)

    # -- a batch of deliveries --------------------------------------------------------------
    async def deliver_batch(self, deliveries: Sequence[Delivery], owner: str) -> None:
        """Deliver leased deliveries together, each attempted once: one write counts their
        attempts (on record before anything is sent), up to ``concurrency`` messages are sent
        at a time, and each one sent is recorded at once in its own unit of work (with its
        ``NotificationSent`` event).

        A delivery whose attempt failed is settled on its own: a permanent failure (or the last
        attempt the policy allows) is recorded failed; a transient one keeps its lease until
        its backoff is over and is claimed again then (by any pod) — a retry is due work, and
        no delivery waits behind another's backoff.
        """
        if owner != self.owner:
            msg = f"deliveries leased by {owner}, not by this worker ({self.owner})"
            raise ValueError(msg)
        now = self._clock()
        numbers = await self._deliveries.begin_attempts(
            [d.notification_id for d in deliveries],
            owner=self.owner,
            now=now,
            lease_until=now + self._lease,
        )
        leased = [d for d in deliveries if d.notification_id in numbers]
        slots = asyncio.Semaphore(self._concurrency)

        async def attempt(delivery: Delivery) -> DeliveryError | None:
            async with slots:
                try:
                    await self._sender.send(delivery)
                except DeliveryError as exc:
                    self._attempts.labels("permanent" if exc.permanent else "transient").inc()
                    return exc
                self._attempts.labels("sent").inc()
            # Recorded the moment it is sent (not with the rest of the batch): a crash repeats
            # at most the messages in flight at that moment.
            if not await self._finish_sent([delivery], numbers):
                number = numbers[delivery.notification_id]
                await self._record_outcome(
                    delivery, status=DeliveryStatus.SENT, attempts=number, error=None
                )
            return None

        errors = await asyncio.gather(*(attempt(d) for d in leased))
        for delivery, error in zip(leased, errors, strict=True):
            if error is not None:
                await self._settle_failed(delivery, numbers[delivery.notification_id], error)
        await self._resume_recovered(leased, errors)

    async def _resume_recovered(
        self, attempted: Sequence[Delivery], errors: Sequence[DeliveryError | None]
    ) -> None:
        """A target that failed before and has just taken a delivery is answering again: what
        waits on it is due now, not at the end of its backoff."""
        outcomes = list(zip(attempted, errors, strict=True))
        failed = {delivery_target(d) for d, e in outcomes if e is not None}
        recovered = {delivery_target(d) for d, e in outcomes if e is None} & self._failing
        self._failing -= recovered
        for target in recovered - failed:
            try:
                resumed = await self._deliveries.resume(target, now=self._clock())
            except Exception:  # noqa: BLE001 - they come due at the end of their backoff
                log.warning("could not resume deliveries", extra={"target": target})
                continue
            if resumed:
                log.info("channel answers again", extra={"target": target, "resumed": resumed})
                self.wake()

    async def _finish_sent(self, sent: Sequence[Delivery], numbers: Mapping[str, int]) -> bool:
        at = self._clock()
        attempts = {d.notification_id: numbers[d.notification_id] for d in sent}
        try:
            async with self._store.transaction() as uow:
                if not await self._deliveries.finish_sent(uow, attempts, owner=self.owner, at=at):
                    raise _LeaseLost
                for delivery in sent:
                    uow.emit(
                        self._outcome_event(
                            delivery, DeliveryStatus.SENT, attempts[delivery.notification_id], at
                        ),
                        topic=Topic.NOTIFICATIONS_EVENTS,
                        key=delivery.aggregate_key,
                        tenant=delivery.tenant,
                        correlationid=delivery.correlation_id,
                    )
        except _LeaseLost:
            return False
        for delivery in sent:
            self._outcomes.labels(delivery.channel.value, DeliveryStatus.SENT.value).inc()
        log.info("notifications sent", extra={"notifications": len(sent)})
        return True

    async def _settle_failed(self, delivery: Delivery, number: int, error: DeliveryError) -> None:
        nid = delivery.notification_id
        await self._log_attempt(nid, number, error)
        if not error.permanent:
            self._failing.add(delivery_target(delivery))
        now = self._clock()
        if error.permanent or self._policy.gives_up(
            attempts=number, due_since=delivery.due_since, now=now
        ):
            await self._record_outcome(
                delivery, status=DeliveryStatus.FAILED, attempts=number, error=error.detail
            )
            if self._on_failed is not None:
                try:
                    await self._on_failed(delivery, error)
                except Exception:
                    log.exception("reacting to a failed delivery failed", extra={"id": nid})
            return
        wait = self._policy.wait_before(number, self._jitter.random())
        retry_at = now + timedelta(seconds=wait)
        log.warning(
            "delivery attempt failed; retrying",
            extra={"notification_id": nid, "attempt": number, "error": error.detail},
        )
        try:
            await self._deliveries.hold(nid, owner=self.owner, until=retry_at)
        except Exception:  # noqa: BLE001 - its lease runs out by itself, a little later
            log.warning("could not set the retry time", extra={"notification_id": nid})
        self._scheduler.due_at(DELIVERY_WORK, retry_at)

    # -- one delivery -----------------------------------------------------------------------
    async def deliver(self, delivery: Delivery, owner: str | None = None) -> None:
        """Deliver one leased delivery: :meth:`deliver_batch` of one."""
        await self.deliver_batch([delivery], owner or self.owner)

    async def _log_attempt(
        self, notification_id: str, attempt: int, error: DeliveryError | None
    ) -> None:
        """Add the attempt to the attempt log. The log is a record, not the state: when the
        store cannot take it, the delivery goes on (the attempt is counted on the delivery)."""
        try:
            await self._deliveries.record_attempt(
                notification_id, attempt=attempt, at=self._clock(), error=error
            )
        except Exception:
            log.exception(
                "attempt not logged", extra={"notification_id": notification_id, "attempt": attempt}
            )

    async def _record_outcome(
        self, delivery: Delivery, *, status: DeliveryStatus, attempts: int, error: str | None
    ) -> None:
        nid = delivery.notification_id
        try:
            # Finishing is idempotent (only a pending delivery leased by this worker changes),
            # so it is simply tried again when the store hiccups.
            finished = False
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(5),
                wait=lambda state: min(2.0, 0.1 * 2**state.attempt_number),
                reraise=True,
            ):
                with attempt:
                    finished = await self._finish(
                        delivery, status=status, attempts=attempts, error=error
                    )
        except asyncio.CancelledError:
            await self._release(nid)
            raise
        except Exception as exc:
            # Not recorded: the delivery stays pending and is attempted again once its lease
            # runs out (at-least-once).
            msg = f"recording the outcome of delivery {nid} failed; it stays pending"
            raise DeliveryInterruptedError(msg) from exc
        if not finished:
            log.info("delivery was already finished", extra={"notification_id": nid})
            return
        self._outcomes.labels(delivery.channel.value, status.value).inc()
        level = logging.INFO if status is DeliveryStatus.SENT else logging.WARNING
        log.log(
            level,
            "notification %s",
            status.value,
            extra={
                "notification_id": nid,
                "work_order_id": delivery.work_order_id,
                "attempts": attempts,
                "error": error,
            },
        )

    async def _finish(
        self, delivery: Delivery, *, status: DeliveryStatus, attempts: int, error: str | None
    ) -> bool:
        """Mark the delivery and emit its outcome event, in one transaction."""
        at = self._clock()
        payload = self._outcome_event(delivery, status, attempts, at, error)
        async with self._store.transaction() as uow:
            if not await self._deliveries.finish(
                uow, delivery.notification_id, owner=self.owner, status=status, at=at, error=error
            ):
                return False
            if status is DeliveryStatus.SENT:
                await self._deliveries.record_attempt(
                    delivery.notification_id, attempt=attempts, at=at, error=None, uow=uow
                )
            uow.emit(
                payload,
                topic=Topic.NOTIFICATIONS_EVENTS,
                key=delivery.aggregate_key,
                tenant=delivery.tenant,
                correlationid=delivery.correlation_id,
            )
        return True

    @staticmethod
    def _outcome_event(
        delivery: Delivery,
        status: DeliveryStatus,
        attempts: int,
        at: datetime,
        error: str | None = None,
    ) -> NotificationSent | NotificationFailed:
        reported = replace(delivery, attempts=attempts).reported_attempts
        if status is DeliveryStatus.SENT:
            return NotificationSent(
                notification_id=delivery.notification_id,
                work_order_id=delivery.work_order_id,
                channel=delivery.channel,
                recipient=delivery.reported_recipient,
                template=delivery.template,
                locale=delivery.locale or None,
                attempts=reported,
                sent_at=at,
            )
        return NotificationFailed(
            notification_id=delivery.notification_id,
            work_order_id=delivery.work_order_id,
            channel=delivery.channel,
            recipient=delivery.reported_recipient,
            template=delivery.template,
            locale=delivery.locale or None,
            attempts=reported,
            error=error or "unknown error",
            failed_at=at,
        )

    async def _release(self, notification_id: str) -> None:
        try:
            await asyncio.wait_for(
                self._deliveries.release(notification_id, owner=self.owner, now=self._clock()),
                timeout=2,
            )
        except Exception:  # noqa: BLE001 - the lease runs out by itself
            log.warning("could not give a lease back", extra={"notification_id": notification_id})
