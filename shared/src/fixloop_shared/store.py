"""MongoDB access shared by all services: client factory, indexes, and the unit of work.

A unit of work is one multi-document transaction that holds, together, a handler's state change,
the record that the consumed event was processed (idempotent consumer), and the events the change
emits (transactional outbox). Either all of it is durable or none of it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from fixloop_shared.contracts import EventPayload
from fixloop_shared.envelope import EventEnvelope, binary_headers, encode_payload
from fixloop_shared.errors import Conflict
from fixloop_shared.telemetry import current_traceparent

Document = dict[str, Any]
MongoClient = AsyncMongoClient[Document]

PROCESSED_EVENTS = "processed_events"
OUTBOX = "outbox"
OUTBOX_WORK = "outbox-relay"
"""The due-work kind of the outbox relay (woken by every commit that wrote outbox records)."""


def equals(fields: Mapping[str, object]) -> dict[str, object]:
    """A filter of fields each equal to a value, written ``{field: {"$eq": value}}``.

    On MongoDB that matches exactly what a bare ``{field: value}`` matches, and the value stays
    data whatever it holds. The embedded store reads a bare value as "equals, or is an array
    containing", which SQLite cannot look up in an index, so every such query reads the whole
    collection; ``$eq`` is one indexed comparison there (compound indexes included). Every
    equality filter on a hot path is written with it.
    """
    return {name: {"$eq": value} for name, value in fields.items()}


def make_client(uri: str, *, app_name: str, timeout_ms: int = 5000) -> MongoClient:
    """An AsyncMongoClient with timezone-aware datetimes and bounded server selection."""
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        tzinfo=UTC,
        appname=app_name,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        uuidRepresentation="standard",
    )


_seq_lock = threading.Lock()
_last_seq = 0


def next_sequence() -> int:
    """A process-wide strictly increasing number (nanosecond clock, never repeating)."""
    global _last_seq  # noqa: PLW0603 - one process-wide monotonic counter
    with _seq_lock:
        candidate = time.time_ns()
        _last_seq = max(candidate, _last_seq + 1)
        return _last_seq


@dataclass(frozen=True)
class OutgoingEvent:
    """An event waiting in the outbox, already in its wire form."""

    topic: str
    key: str
    envelope: EventEnvelope
    payload: EventPayload

    @classmethod
    def of(
        cls,
        payload: EventPayload,
        *,
        source: str,
        topic: str,
        key: str,
        tenant: str,
        correlationid: str | None = None,
        subject: str | None = None,
    ) -> OutgoingEvent:
        """A new event emitted now, in the active trace (what every unit of work queues)."""
        envelope = EventEnvelope.new(
            payload,
            source=source,
            subject=subject or key,
            tenant=tenant,
            correlationid=correlationid,
        ).with_traceparent(current_traceparent())
        return cls(topic=topic, key=key, envelope=envelope, payload=payload)

    def to_document(self) -> Document:
        return {
            "_id": self.envelope.id,
            "seq": next_sequence(),
            "topic": self.topic,
            "key": self.key,
            "event_type": self.envelope.type,
            "headers": binary_headers(self.envelope),
            "value": encode_payload(self.payload).decode(),
            "created_at": datetime.now(UTC),
            "published": False,
            "published_at_ms": None,
        }


class ClaimedAlready(Conflict):
    """An event of a batch was processed already (claimed by another consumer meanwhile)."""

    reason = "duplicate"


def _only_duplicates(exc: BulkWriteError) -> bool:
    errors = exc.details.get("writeErrors", []) if exc.details else []
    return bool(errors) and all(error.get("code") == DUPLICATE_KEY for error in errors)


DUPLICATE_KEY = 11000


class UnitOfWorkClosedError(RuntimeError):
    """Raised when a unit of work is used after it was rolled back or committed."""


@dataclass
class UnitOfWork:
    """One MongoDB transaction: state change + processed-event record + outbox, all or nothing."""

    store: Store
    session: AsyncClientSession
    _events: list[OutgoingEvent] = field(default_factory=list)
    _appends: dict[str, list[Document]] = field(default_factory=dict)
    _claims_at_commit: list[Document] = field(default_factory=list)
    memo: dict[object, object] = field(default_factory=dict)
    _duplicate: bool = False
    _after_commit: list[Callable[[], None]] = field(default_factory=list)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once this unit of work has committed (never if it rolls back)."""
        self._after_commit.append(callback)

    @property
    def db(self) -> AsyncDatabase[Document]:
        return self.store.db

    async def claim(self, envelope: EventEnvelope, *, consumer: str | None = None) -> bool:
        """Record that this consumer processed the event; False if it already had (redelivery).

        Must be the first write of the unit of work. On False the transaction is rolled back and
        the caller returns without effect.
        """
        try:
            await self.db[PROCESSED_EVENTS].insert_one(
                self._claim_document(envelope, consumer or self.store.service),
                session=self.session,
            )
        except DuplicateKeyError:
            self._duplicate = True
            return False
        return True

    def claim_at_commit(self, envelope: EventEnvelope, *, consumer: str | None = None) -> None:
        """Claim the event when the unit of work commits, before its other writes; the commit
        raises :class:`ClaimedAlready` if it was claimed already."""
        self._claims_at_commit.append(
            self._claim_document(envelope, consumer or self.store.service)
        )

    async def _insert_claims(self, claims: Sequence[Document]) -> None:
        try:
            await self.db[PROCESSED_EVENTS].insert_many(
                list(claims), ordered=True, session=self.session
            )
        except (DuplicateKeyError, BulkWriteError) as exc:
            if isinstance(exc, BulkWriteError) and not _only_duplicates(exc):
                raise
            msg = "an event of this unit of work was processed already"
            raise ClaimedAlready(msg) from exc

    async def claim_all(self, claims: Sequence[tuple[EventEnvelope, str]]) -> None:
        """Record several claims in one write (a batch of events); :class:`ClaimedAlready` if
        one of them is recorded already — the transaction then rolls back as a whole."""
        if not claims:
            return
        now = datetime.now(UTC)
        await self._insert_claims(
            [self._claim_document(envelope, consumer, now) for envelope, consumer in claims]
        )

    @staticmethod
    def _claim_document(
        envelope: EventEnvelope, consumer: str, now: datetime | None = None
    ) -> Document:
        return {
            "_id": f"{consumer}:{envelope.id}",
            "consumer": consumer,
            "event_id": envelope.id,
            "event_type": envelope.type,
            "tenant": envelope.tenant,
            "processed_at": now or datetime.now(UTC),
        }

    @property
    def is_duplicate(self) -> bool:
        return self._duplicate

    def emit(
        self,
        payload: EventPayload,
        *,
        topic: str,
        key: str,
        tenant: str,
        correlationid: str | None = None,
        subject: str | None = None,
    ) -> EventEnvelope:
        """Queue an event for the outbox; it is written with the transaction's other changes."""
        if self._duplicate:
            msg = "cannot emit from a unit of work whose event was already processed"
            raise UnitOfWorkClosedError(msg)
        event = OutgoingEvent.of(
            payload,
            source=self.store.service,
            topic=topic,
            key=key,
            tenant=tenant,
            correlationid=correlationid,
            subject=subject,
        )
        self._events.append(event)
        return event.envelope

    @property
    def emitted(self) -> Sequence[OutgoingEvent]:
        return tuple(self._events)

    def append_at_commit(self, collection: str, documents: Sequence[Document]) -> None:
        """Insert ``documents`` into ``collection`` when the unit of work commits, together with
        the other documents appended there (one write per collection for a whole batch of
        events). For append-only records nothing in the unit of work reads back (timeline
        entries); a unique index still refuses a duplicate, at commit."""
        self._appends.setdefault(collection, []).extend(documents)

    async def flush_outbox(self) -> None:
        """Write the appended documents and the queued events into the outbox (called by the
        transaction before commit)."""
        if self._claims_at_commit:
            await self._insert_claims(self._claims_at_commit)
            self._claims_at_commit.clear()
        for collection, documents in self._appends.items():
            if documents:
                await self.db[collection].insert_many(documents, ordered=True, session=self.session)
        self._appends.clear()
        if self._events:
            await self.db[OUTBOX].insert_many(
                [event.to_document() for event in self._events], ordered=True, session=self.session
            )


def mongo_uow(uow: Any) -> UnitOfWork:
    """``uow`` as the MongoDB unit of work it must be (for MongoDB repositories given a
    :class:`fixloop_shared.kernel.UnitOfWork`)."""
    if not isinstance(uow, UnitOfWork):
        msg = f"a MongoDB repository was given {type(uow).__name__}, not a MongoDB unit of work"
        raise TypeError(msg)
    return uow


def database_of(uow: Any) -> AsyncDatabase[Document]:
    """The database a MongoDB unit of work writes to."""
    return mongo_uow(uow).db


class Transaction:
    """``async with store.transaction() as uow:`` commits on success, rolls back on error."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._session: AsyncClientSession | None = None
        self._uow: UnitOfWork | None = None

    async def __aenter__(self) -> UnitOfWork:
        await self._store.acquire_writes()
        try:
            self._session = self._store.client.start_session()
            await self._session.start_transaction()
        except BaseException:
            self._store.release_writes()
            raise
        self._uow = UnitOfWork(self._store, self._session)
        return self._uow

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None  # noqa: S101 - set in __aenter__
        assert self._uow is not None  # noqa: S101
        session = self._session
        try:
            if exc_type is not None or self._uow.is_duplicate:
                if session.in_transaction:
                    await session.abort_transaction()
                return
            await self._uow.flush_outbox()
            await session.commit_transaction()
        except BaseException:
            if session.in_transaction:
                await session.abort_transaction()
            raise
        finally:
            await session.end_session()
            self._store.release_writes()
        if self._uow.emitted:
            self._store.notify_committed()
            self._store.notify_due([(OUTBOX_WORK, datetime.now(UTC))])
        for callback in self._uow._after_commit:
            callback()


def merged_indexes(
    *groups: Mapping[str, Sequence[IndexModel]],
) -> dict[str, list[IndexModel]]:
    """Index lists of several owners merged per collection (``{**a, **b}`` would keep only
    ``b``'s list for a collection both name)."""
    merged: dict[str, list[IndexModel]] = {}
    for group in groups:
        for collection, models in group.items():
            merged.setdefault(collection, []).extend(models)
    return merged


class Store:
    """One service's database, its standard collections, and its transactions."""

    def __init__(
        self,
        client: MongoClient,
        database: str,
        *,
        service: str,
        serialize_writes: bool = True,
    ) -> None:
        self.client = client
        self.db: AsyncDatabase[Document] = client[database]
        self.service = service
        self._commit_listeners: list[Callable[[], None]] = []
        self._due_listeners: list[Callable[[str, datetime], None]] = []
        # One writer at a time per process. Needed on the embedded store (nx-27017), whose
        # sessions share one SQLite connection: overlapping transactions fail ("no such
        # savepoint") and an abort can undo another writer's changes. Correct, only slower, on
        # real MongoDB, where it can be switched off (``store_serialize_writes=false``).
        self._serialize = serialize_writes
        self._writes = asyncio.Lock()

    async def acquire_writes(self) -> None:
        if self._serialize:
            await self._writes.acquire()

    def release_writes(self) -> None:
        if self._serialize:
            self._writes.release()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the write slot for a write outside a transaction (see ``serialize_writes``)."""
        await self.acquire_writes()
        try:
            yield
        finally:
            self.release_writes()

    def transaction(self) -> Transaction:
        return Transaction(self)

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each commit that wrote outbox events (wakes the relay)."""
        self._commit_listeners.append(listener)

    def notify_committed(self) -> None:
        for listener in self._commit_listeners:
            listener()

    def on_due(self, listener: Callable[[str, datetime], None]) -> None:
        """Call ``listener(kind, at)`` for each due item a committed write reported (the
        due-work scheduler's wake-on-commit hook). Commits with outbox records report
        ``OUTBOX_WORK``; repositories report their own items from ``uow.after_commit``."""
        self._due_listeners.append(listener)

    def notify_due(self, items: Sequence[tuple[str, datetime]]) -> None:
        """Report committed due items: ``(kind, falls due at)``."""
        for kind, at in items:
            for listener in self._due_listeners:
                listener(kind, at)

    async def ensure_indexes(
        self, indexes: Mapping[str, Sequence[IndexModel]] | None = None
    ) -> None:
        """Create the standard indexes and the service's own (idempotent; run at start-up)."""
        wanted: dict[str, list[IndexModel]] = {
            PROCESSED_EVENTS: [IndexModel([("consumer", ASCENDING), ("event_id", ASCENDING)])],
            # Every outbox scan (pending records, pruning, republishing) seeks on ``published``
            # and reads in ``seq`` order through this one index, so the pending scan costs the
            # same however many sent records are retained (see fixloop_shared.outbox).
            OUTBOX: [IndexModel([("published", ASCENDING), ("seq", ASCENDING)])],
        }
        for collection, models in (indexes or {}).items():
            wanted.setdefault(collection, []).extend(models)
        for collection, models in wanted.items():
            await self.db[collection].create_indexes(models)

    async def already_claimed(self, claims: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (consumer, event id) claims are recorded already (committed state)."""
        if not claims:
            return set()
        ids = [f"{consumer}:{event_id}" for consumer, event_id in claims]
        found = self.db[PROCESSED_EVENTS].find(
            {"_id": {"$in": ids}}, {"consumer": 1, "event_id": 1}
        )
        return {(str(doc["consumer"]), str(doc["event_id"])) async for doc in found}

    async def ping(self) -> None:
        await self.client.admin.command("ping")
