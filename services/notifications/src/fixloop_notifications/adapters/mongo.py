"""The delivery log in MongoDB: one document per delivery, one per attempt.

``deliveries`` holds each notification, its rendered message and where its delivery stands;
``delivery_attempts`` is the append-only log of every attempt (separate documents rather than
an ever-growing array). Pending deliveries are a kind of due work
(:meth:`MongoDeliveryLog.due_work`): pods lease them with ``lease_owner``/``lease_until_ms``
(epoch milliseconds), so any number of pods share them and a dead worker's deliveries come back
when its lease runs out.

Lease and attempt writes happen outside any transaction, so each takes the store's write slot
(``Store.exclusive``): on a store that does not isolate sessions, a consumer transaction rolled
back at the same moment would otherwise undo them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReplaceOne, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from fixloop_notifications.app.dispatch import DELIVERY_WORK
from fixloop_notifications.domain.delivery import (
    Delivery,
    DeliveryError,
    DeliveryStatus,
    OutgoingMessage,
    delivery_target,
)
from fixloop_notifications.domain.mail import Mailbox, OutgoingMail
from fixloop_notifications.domain.sms import OutgoingSms
from fixloop_notifications.domain.webhooks import OutgoingWebhook
from fixloop_shared.contracts import Channel
from fixloop_shared.due_work import (
    LEASE_OWNER,
    LEASE_UNTIL,
    ClaimedItem,
    DueWork,
    epoch_ms,
    lease_free,
    unleased,
)
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.store import Document, Store, database_of, equals, mongo_uow

DELIVERIES = "deliveries"
DELIVERY_ATTEMPTS = "delivery_attempts"

NO_OWNER = ""
"""``lease_owner`` of a delivery nobody holds (a string, so it filters the same everywhere)."""


async def create_indexes(store: Store) -> None:
    """The service's collections and indexes (run at start-up, idempotent)."""
    await store.ensure_indexes(
        {
            DELIVERIES: [
                IndexModel([("status", ASCENDING), (LEASE_UNTIL, ASCENDING)]),
                IndexModel([("status", ASCENDING), ("created_at", ASCENDING)]),
                IndexModel([("work_order_id", ASCENDING), ("created_at_ms", ASCENDING)]),
                IndexModel([("event_id", ASCENDING)]),
                IndexModel([("status", ASCENDING), ("target", ASCENDING)]),
            ],
            DELIVERY_ATTEMPTS: [
                IndexModel([("notification_id", ASCENDING), ("attempt", ASCENDING)], unique=True),
            ],
        }
    )


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else epoch_ms(moment)


def _moment(ms: Any) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def message_to_document(message: OutgoingMessage) -> Document:
    """A delivery's message, as stored (each channel its own shape)."""
    if isinstance(message, OutgoingMail):
        return {
            "kind": "email",
            "message_id": message.message_id,
            "sender": message.sender.address,
            "sender_name": message.sender.name,
            "recipient": message.recipient.address,
            "recipient_name": message.recipient.name,
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "language": message.language,
            "date_ms": epoch_ms(message.date),
            "unsubscribe_url": message.unsubscribe_url,
        }
    if isinstance(message, OutgoingSms):
        return {
            "kind": "sms",
            "message_id": message.message_id,
            "to": message.to,
            "sender": message.sender,
            "text": message.text,
            "segments": message.segments,
        }
    return {
        "kind": "webhook",
        "webhook_id": message.webhook_id,
        "endpoint_id": message.endpoint_id,
        "url": message.url,
        "event_type": message.event_type,
        "body": message.body,
    }


def message_from_document(doc: Document) -> OutgoingMessage:
    kind = doc["kind"]
    if kind == "email":
        date = _moment(doc["date_ms"])
        assert date is not None  # noqa: S101 - always written
        return OutgoingMail(
            message_id=doc["message_id"],
            sender=Mailbox(address=doc["sender"], name=doc["sender_name"]),
            recipient=Mailbox(address=doc["recipient"], name=doc["recipient_name"]),
            subject=doc["subject"],
            text=doc["text"],
            html=doc["html"],
            language=doc["language"],
            date=date,
            unsubscribe_url=doc.get("unsubscribe_url"),
        )
    if kind == "sms":
        return OutgoingSms(
            message_id=doc["message_id"],
            to=doc["to"],
            sender=doc["sender"],
            text=doc["text"],
            segments=int(doc["segments"]),
        )
    return OutgoingWebhook(
        webhook_id=doc["webhook_id"],
        endpoint_id=doc["endpoint_id"],
        url=doc["url"],
        event_type=doc["event_type"],
        body=doc["body"],
    )


def delivery_to_document(delivery: Delivery) -> Document:
    lease = unleased()
    if delivery.not_before is not None:
        # Held (quiet hours): nobody may claim it before then.
        lease[LEASE_UNTIL] = epoch_ms(delivery.not_before)
    return {
        "_id": delivery.notification_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "tenant": delivery.tenant,
        "correlation_id": delivery.correlation_id,
        "work_order_id": delivery.work_order_id,
        "channel": delivery.channel.value,
        "target": delivery_target(delivery),
        "template": delivery.template,
        "locale": delivery.locale,
        "requested_locale": delivery.requested_locale,
        "recipient": delivery.recipient,
        "recipient_key": delivery.recipient_key,
        "urgent": delivery.urgent,
        "message": message_to_document(delivery.message),
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "created_at_ms": epoch_ms(delivery.created_at),
        "not_before_ms": _ms(delivery.not_before),
        "updated_at": delivery.created_at,
        **lease,
    }


def delivery_from_document(doc: Document) -> Delivery:
    return Delivery(
        notification_id=doc["_id"],
        event_id=doc["event_id"],
        event_type=doc["event_type"],
        tenant=doc["tenant"],
        correlation_id=doc["correlation_id"],
        work_order_id=doc.get("work_order_id"),
        channel=Channel(doc["channel"]),
        template=doc["template"],
        locale=doc["locale"],
        requested_locale=doc["requested_locale"],
        message=message_from_document(doc["message"]),
        created_at=doc["created_at"],
        status=DeliveryStatus(doc["status"]),
        attempts=int(doc["attempts"]),
        last_error=doc.get("last_error"),
        not_before=_moment(doc.get("not_before_ms")),
        recipient_key=doc.get("recipient_key", ""),
        urgent=bool(doc.get("urgent", False)),
    )


PENDING = equals({"status": DeliveryStatus.PENDING.value})
"""The filter of deliveries not yet sent or failed."""


def _leased_by(notification_id: str, owner: str) -> Document:
    """The filter for a delivery still pending and leased by ``owner``."""
    return equals(
        {"_id": notification_id, "status": DeliveryStatus.PENDING.value, LEASE_OWNER: owner}
    )


IN_FLIGHT = "in_flight"
"""The outcome of an attempt begun and not (yet) finished: the process may have died sending."""


def _attempt_entry(
    notification_id: str,
    attempt: int,
    at: datetime,
    error: DeliveryError | None,
    *,
    outcome: str | None = None,
) -> Document:
    if outcome is None:
        outcome = "sent" if error is None else ("permanent" if error.permanent else "transient")
    return {
        "_id": f"{notification_id}:{attempt}",
        "notification_id": notification_id,
        "attempt": attempt,
        "at": at,
        "outcome": outcome,
        "error": None if error is None else error.detail,
    }


class MongoDeliveryLog:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _deliveries(self) -> AsyncCollection[Document]:
        return self._store.db[DELIVERIES]

    async def add(self, uow: UnitOfWork, delivery: Delivery) -> None:
        # Written when the unit of work commits, with the rest of its batch's deliveries.
        mongo_uow(uow).append_at_commit(DELIVERIES, [delivery_to_document(delivery)])
        due = [(DELIVERY_WORK, delivery.not_before or delivery.created_at)]
        uow.after_commit(lambda: self._store.notify_due(due))

    def due_work(
        self,
        deliver: Callable[[Sequence[Delivery], str], Awaitable[None]],
        *,
        lease: timedelta,
        batch_size: int,
        poll_seconds: float,
    ) -> DueWork:
        """Pending deliveries as due work: oldest first, up to ``batch_size`` claimed at a time
        per pod and delivered together by ``deliver(deliveries, lease owner)``."""

        async def fire(item: ClaimedItem) -> None:
            await deliver([delivery_from_document(item.doc)], item.owner)

        async def fire_batch(items: Sequence[ClaimedItem]) -> None:
            await deliver([delivery_from_document(item.doc) for item in items], items[0].owner)

        return DueWork(
            name=DELIVERY_WORK,
            collection=DELIVERIES,
            due=lambda _now: PENDING,
            fire=fire,
            fire_batch=fire_batch,
            lease=lease,
            batch_size=batch_size,
            poll_seconds=poll_seconds,
            order=(("created_at", ASCENDING), ("_id", ASCENDING)),
            releases_itself=True,
        )

    async def claim_next(
        self, *, owner: str, now: datetime, lease_until: datetime
    ) -> Delivery | None:
        """Lease the oldest pending delivery nobody holds (one at a time; the scheduler claims
        batches through :meth:`due_work`)."""
        async with self._store.exclusive():
            doc = await self._deliveries.find_one_and_update(
                {**PENDING, **lease_free(epoch_ms(now))},
                {
                    "$set": {
                        LEASE_OWNER: owner,
                        LEASE_UNTIL: epoch_ms(lease_until),
                        "updated_at": now,
                    }
                },
                sort=[("created_at", ASCENDING), ("_id", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )
        return None if doc is None else delivery_from_document(doc)

    async def begin_attempt(
        self, notification_id: str, *, owner: str, now: datetime, lease_until: datetime
    ) -> int | None:
        async with self._store.exclusive():
            doc = await self._deliveries.find_one_and_update(
                _leased_by(notification_id, owner),
                {
                    "$inc": {"attempts": 1},
                    "$set": {
                        LEASE_UNTIL: epoch_ms(lease_until),
                        "last_attempt_at": now,
                        "updated_at": now,
                    },
                },
                projection={"attempts": True},
                return_document=ReturnDocument.AFTER,
            )
        return None if doc is None else int(doc["attempts"])

    async def begin_attempts(
        self, notification_ids: Sequence[str], *, owner: str, now: datetime, lease_until: datetime
    ) -> dict[str, int]:
        if not notification_ids:
            return {}
        leased = {
            "_id": {"$in": list(notification_ids)},
            **equals({"status": DeliveryStatus.PENDING.value, LEASE_OWNER: owner}),
        }
        before = self._deliveries.find(leased, projection={"attempts": True})
        coming = {str(doc["_id"]): int(doc["attempts"]) + 1 async for doc in before}
        if not coming:
            return {}
        async with self._store.exclusive():
            # The attempt is on record before it is counted and before anything is sent: a
            # crash mid-send leaves it "in flight" (a crash before the count, an entry the next
            # attempt, with the same number, overwrites).
            await self._store.db[DELIVERY_ATTEMPTS].bulk_write(
                [
                    ReplaceOne({"_id": entry["_id"]}, entry, upsert=True)
                    for entry in (
                        _attempt_entry(nid, number, now, None, outcome=IN_FLIGHT)
                        for nid, number in coming.items()
                    )
                ],
                ordered=False,
            )
            await self._deliveries.update_many(
                leased,
                {
                    "$inc": {"attempts": 1},
                    "$set": {
                        LEASE_UNTIL: epoch_ms(lease_until),
                        "last_attempt_at": now,
                        "updated_at": now,
                    },
                },
            )
        found = self._deliveries.find(leased, projection={"attempts": True})
        return {str(doc["_id"]): int(doc["attempts"]) async for doc in found}

    async def finish_sent(
        self,
        uow: UnitOfWork,
        attempts: Mapping[str, int],
        *,
        owner: str,
        at: datetime,
    ) -> bool:
        if not attempts:
            return True
        db = database_of(uow)
        result = await db[DELIVERIES].update_many(
            {
                "_id": {"$in": list(attempts)},
                **equals({"status": DeliveryStatus.PENDING.value, LEASE_OWNER: owner}),
            },
            {
                "$set": {
                    "status": DeliveryStatus.SENT.value,
                    **unleased(),
                    "updated_at": at,
                    "finished_at": at,
                    "sent_at": at,
                }
            },
            session=uow.session,
        )
        if result.modified_count != len(attempts):
            return False
        await db[DELIVERY_ATTEMPTS].bulk_write(
            [
                ReplaceOne({"_id": entry["_id"]}, entry, upsert=True)
                for entry in (
                    _attempt_entry(notification_id, attempt, at, None)
                    for notification_id, attempt in attempts.items()
                )
            ],
            ordered=False,
            session=uow.session,
        )
        return True

    async def record_attempt(
        self,
        notification_id: str,
        *,
        attempt: int,
        at: datetime,
        error: DeliveryError | None,
        uow: UnitOfWork | None = None,
    ) -> None:
        entry = _attempt_entry(notification_id, attempt, at, error)
        if uow is not None:
            await self._write_attempt(database_of(uow), entry, error, session=uow.session)
            return
        async with self._store.exclusive():
            await self._write_attempt(self._store.db, entry, error, session=None)

    @staticmethod
    async def _write_attempt(
        db: AsyncDatabase[Document],
        entry: Document,
        error: DeliveryError | None,
        *,
        session: Any,
    ) -> None:
        await db[DELIVERY_ATTEMPTS].replace_one(
            {"_id": entry["_id"]}, entry, upsert=True, session=session
        )
        if error is not None:
            await db[DELIVERIES].update_one(
                {"_id": entry["notification_id"]},
                {"$set": {"last_error": error.detail, "updated_at": entry["at"]}},
                session=session,
            )

    async def hold(self, notification_id: str, *, owner: str, until: datetime) -> None:
        async with self._store.exclusive():
            await self._deliveries.update_one(
                _leased_by(notification_id, owner),
                {"$set": {LEASE_OWNER: NO_OWNER, LEASE_UNTIL: epoch_ms(until)}},
            )

    async def release(self, notification_id: str, *, owner: str, now: datetime) -> None:
        async with self._store.exclusive():
            await self._deliveries.update_one(
                _leased_by(notification_id, owner),
                {"$set": {**unleased(), "updated_at": now}},
            )

    async def finish(
        self,
        uow: UnitOfWork,
        notification_id: str,
        *,
        owner: str,
        status: DeliveryStatus,
        at: datetime,
        error: str | None,
    ) -> bool:
        changes: dict[str, Any] = {
            "status": status.value,
            **unleased(),
            "updated_at": at,
            "finished_at": at,
        }
        if status is DeliveryStatus.SENT:
            changes["sent_at"] = at
        else:
            changes["failed_at"] = at
            changes["last_error"] = error
        result = await database_of(uow)[DELIVERIES].update_one(
            _leased_by(notification_id, owner),
            {"$set": changes},
            session=uow.session,
        )
        return result.matched_count == 1

    async def get(self, notification_id: str) -> Delivery | None:
        doc = await self._deliveries.find_one({"_id": notification_id})
        return None if doc is None else delivery_from_document(doc)

    async def resume(self, target: str, *, now: datetime) -> int:
        """Make the deliveries that wait for a retry on ``target`` due now (it answers again);
        how many. Deliveries held for quiet hours (no attempt yet) keep waiting."""
        async with self._store.exclusive():
            result = await self._deliveries.update_many(
                {
                    **equals(
                        {
                            "status": DeliveryStatus.PENDING.value,
                            "target": target,
                            LEASE_OWNER: NO_OWNER,
                        }
                    ),
                    "attempts": {"$gt": 0},
                    LEASE_UNTIL: {"$gt": epoch_ms(now)},
                },
                {"$set": {LEASE_UNTIL: epoch_ms(now), "updated_at": now}},
            )
        return int(result.modified_count)

    async def retry(
        self,
        *,
        now: datetime,
        failed: bool = True,
        since: datetime | None = None,
        work_order_id: str | None = None,
        notification_id: str | None = None,
    ) -> int:
        """Put failed deliveries (or, without ``failed``, also those waiting for their next
        attempt) back to be tried now, with a fresh retry horizon; how many."""
        statuses = [DeliveryStatus.FAILED.value]
        if not failed:
            statuses.append(DeliveryStatus.PENDING.value)
        query: Document = {"status": {"$in": statuses}, LEASE_OWNER: NO_OWNER}
        if since is not None:
            query["created_at_ms"] = {"$gte": epoch_ms(since)}
        if work_order_id is not None:
            query.update(equals({"work_order_id": work_order_id}))
        if notification_id is not None:
            query.update(equals({"_id": notification_id}))
        return await self._due_again(query, now)

    async def replay(
        self,
        target: str,
        *,
        since: datetime,
        now: datetime,
        work_order_id: str | None = None,
    ) -> int:
        """Send a target's deliveries recorded since ``since`` again (sent or failed ones, same
        ids, so receivers can tell a repeat); how many."""
        query: Document = {
            "status": {"$in": [DeliveryStatus.SENT.value, DeliveryStatus.FAILED.value]},
            "created_at_ms": {"$gte": epoch_ms(since)},
            **equals({"target": target}),
        }
        if work_order_id is not None:
            query.update(equals({"work_order_id": work_order_id}))
        return await self._due_again(query, now)

    async def _due_again(self, query: Document, now: datetime) -> int:
        """Make the deliveries ``query`` finds pending and due now, with a fresh retry horizon;
        how many."""
        async with self._store.exclusive():
            result = await self._deliveries.update_many(
                query,
                {
                    "$set": {
                        "status": DeliveryStatus.PENDING.value,
                        **unleased(),
                        "not_before_ms": epoch_ms(now),
                        "updated_at": now,
                        "retried_at_ms": epoch_ms(now),
                    }
                },
            )
        count = int(result.modified_count)
        if count:
            self._store.notify_due([(DELIVERY_WORK, now)])
        return count

    async def for_order(self, work_order_id: str, *, limit: int = 500) -> list[Delivery]:
        """The order's deliveries, oldest first."""
        found = (
            self._deliveries.find(equals({"work_order_id": work_order_id}))
            .sort([("created_at_ms", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        return [delivery_from_document(doc) async for doc in found]

    async def attempts_of(self, notification_ids: Sequence[str]) -> dict[str, list[Document]]:
        """Every logged attempt of these deliveries, in order."""
        if not notification_ids:
            return {}
        found = self._store.db[DELIVERY_ATTEMPTS].find(
            {"notification_id": {"$in": [str(i) for i in notification_ids]}}
        )
        attempts: dict[str, list[Document]] = {}
        async for doc in found:
            attempts.setdefault(str(doc["notification_id"]), []).append(doc)
        for entries in attempts.values():
            entries.sort(key=lambda entry: int(entry["attempt"]))
        return attempts
