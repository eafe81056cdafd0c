"""The outbox relay: publishes committed outbox records in order and marks them sent.

A crash between publishing and marking re-publishes on restart (at-least-once; consumers are
idempotent). Nothing is published that was not committed, because only committed records are read.

Sent records are retained for ``retention_seconds`` after the broker acknowledged them (default 7
days), then pruned. They are the recovery for a broker that lost acknowledged records (the
embedded broker after a restart, real Kafka after an unclean leader election):
:func:`republish` (``fixloop outbox republish``) sends them again with their original key,
headers and event id, and idempotent consumers absorb the copies they had already seen.

Every scan goes through the ``(published, seq)`` index, so reading the pending records costs the
same whether 10 or 10 million sent records are retained. The filters are written with an
explicit ``$eq``: equivalent on MongoDB, but the embedded store (nx-27017) turns a bare
``{"published": False}`` into "equals, or is an array containing" — an expression SQLite cannot
answer from the index, which made every pending scan read the whole collection.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka.errors import KafkaError
from opentelemetry import context as otel_context
from opentelemetry.propagate import extract
from prometheus_client import CollectorRegistry, Counter, Gauge
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from fixloop_shared.due_work import ClaimedItem, DueWork, DueWorkScheduler
from fixloop_shared.store import OUTBOX, OUTBOX_WORK, Document, Store

log = logging.getLogger(__name__)

PENDING: dict[str, object] = {"published": {"$eq": False}}
"""Filter of unpublished records (a boolean flag, always compared with an explicit ``$eq``)."""

SENT: dict[str, object] = {"published": {"$eq": True}}
"""Filter of records the broker acknowledged (retained for republishing)."""

DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600.0

DEFAULT_RELAY_LEASE_SECONDS = 10.0
"""How long the relay lease lasts without renewal: a killed relay is replaced after this."""

DEFAULT_BACKLOG_COUNT_SECONDS = 15.0
"""How often a relay counts the pending records while some are pending (one ``$count`` through
the index); the oldest pending record is seen on every pass anyway."""

SEQ_SLACK_NS = 1_000_000_000
"""``seq`` is the creating process's nanosecond clock read just before ``created_at`` (see
:func:`fixloop_shared.store.next_sequence`), never behind it by more than a few microseconds.
A time window on ``created_at``/``published_at_ms`` is therefore first narrowed to a ``seq``
range widened by this slack (so the index does the work), then applied exactly."""

Publish = Callable[[str, bytes, str, Mapping[str, str]], Awaitable[Awaitable[object] | None]]
"""publish(topic, value, key, headers) — hands the record to the producer. It resolves either
once the broker acknowledged the record (returning None), or as soon as the record is queued,
returning what to await for its acknowledgement (``Bus.send_raw``), so that a batch is sent in
one go, in order, and acknowledged together."""


class OutboxRelay:
    """Publishes the outbox: a singleton kind of due work (``outbox-relay``) on the service's
    :class:`~fixloop_shared.due_work.DueWorkScheduler`.

    Ordering across pods: one lease document per service (the relay lease, in
    ``due_work_leases``) is claimed by the pod that relays, renewed once half of it is used up,
    kept while that pod runs and given back when it stops. Only its holder relays; the other pods
    stand by (their pass is one read while nothing is pending, then a failed claim). Records are
    published in ``seq`` order (queued in order, acknowledged together; the producer keeps each
    partition's order) and marked sent after the whole batch was acknowledged, so the first copy
    of every record reaches the broker in ``seq`` order, even when a stalled holder resumes after
    its lease ran out (what it sends then are copies, absorbed by idempotent consumers).

    Its backlog metrics (:class:`OutboxBacklog`) are registered on ``metrics`` (the service's
    registry; a private one if None) and moved by the relay's own passes.
    """

    def __init__(
        self,
        store: Store,
        publish: Publish,
        *,
        poll_seconds: float = 0.2,
        batch_size: int = 200,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        prune_every_seconds: float = 10.0,
        prune_batch_size: int = 1000,
        lease_seconds: float = DEFAULT_RELAY_LEASE_SECONDS,
        scheduler: DueWorkScheduler | None = None,
        metrics: CollectorRegistry | None = None,
        backlog_count_seconds: float = DEFAULT_BACKLOG_COUNT_SECONDS,
    ) -> None:
        self._store = store
        self._publish = publish
        self._batch_size = batch_size
        self._retention_ms = int(retention_seconds * 1000)
        self._prune_every = prune_every_seconds
        self._prune_batch = prune_batch_size
        self._last_prune = 0.0
        self.published_total = 0
        self.backlog = OutboxBacklog(metrics or CollectorRegistry())
        self._count_every = backlog_count_seconds
        self._last_count = -backlog_count_seconds
        self.scheduler = scheduler or DueWorkScheduler.for_store(store)
        self.work = DueWork.singleton_lease(
            OUTBOX_WORK,
            self._relay_pass,
            lease=timedelta(seconds=lease_seconds),
            poll_seconds=poll_seconds,
            has_work=self._has_work,
            # A publish the broker refused is tried again soon, not when the lease runs out.
            retry_after=timedelta(seconds=1),
        )
        self.scheduler.add(self.work)

    def wake(self) -> None:
        self.scheduler.wake(OUTBOX_WORK)

    async def pending_count(self) -> int:
        return await count(self._store, PENDING)

    async def oldest_pending_age_seconds(self) -> float:
        doc = await self._store.db[OUTBOX].find_one(
            PENDING, sort=[("seq", 1)], projection={"created_at": 1}
        )
        if doc is None:
            return 0.0
        created: datetime = doc["created_at"]
        return max(0.0, (datetime.now(UTC) - created).total_seconds())

    async def drain(self, lease: ClaimedItem | None = None) -> int:
        """Publish every pending record, oldest first; returns how many were published.

        With ``lease`` (the relay lease), the lease is renewed before each batch and the drain
        ends as soon as another pod holds it. Without, the caller is the only relay (tests, the
        command line)."""
        published = 0
        while True:
            if lease is not None and not await _keep(lease):
                log.warning("the relay lease was taken over; this pod stands by")
                return published
            docs = (
                await self._store.db[OUTBOX]
                .find(PENDING)
                .sort([("seq", 1)])
                .limit(self._batch_size)
                .to_list()
            )
            self.backlog.scanned(docs, complete=len(docs) < self._batch_size)
            if not docs:
                return published
            acknowledgements = [await self._publish_one(doc) for doc in docs]
            await asyncio.gather(*(ack for ack in acknowledgements if ack is not None))
            # Marked after the whole batch was acknowledged: a crash in between re-publishes the
            # batch (consumers are idempotent) and never skips a record.
            async with self._store.exclusive():
                await self._store.db[OUTBOX].update_many(
                    {"_id": {"$in": [doc["_id"] for doc in docs]}},
                    # Epoch milliseconds: the embedded store keeps a $set datetime as a string.
                    {"$set": {"published": True, "published_at_ms": _now_ms()}},
                )
            published += len(docs)
            self.published_total += len(docs)
            self.backlog.sent(len(docs), rest_unknown=len(docs) == self._batch_size)
            if len(docs) < self._batch_size:
                return published  # that was all that was pending

    async def prune(self) -> int:
        """Delete sent records acknowledged longer than the retention ago; returns how many.

        Never touches a pending record. Deletes in bounded batches, so a long backlog (a service
        that was down for days) never holds the store's write slot for long.
        """
        cutoff_ms = _now_ms() - self._retention_ms
        # A record acknowledged before the cutoff was created before it too, so its seq is below
        # the cutoff (plus slack): that bound lets the (published, seq) index find the candidates.
        # A creating clock ahead of this one (or stepped back) only keeps a record longer.
        query: dict[str, object] = {
            **SENT,
            "seq": {"$lt": cutoff_ms * 1_000_000 + SEQ_SLACK_NS},
            "published_at_ms": {"$lt": cutoff_ms},
        }
        deleted = 0
        while True:
            docs = (
                await self._store.db[OUTBOX]
                .find(query, projection={"_id": 1})
                .sort([("seq", 1)])
                .limit(self._prune_batch)
                .to_list()
            )
            if not docs:
                return deleted
            async with self._store.exclusive():
                result = await self._store.db[OUTBOX].delete_many(
                    {"_id": {"$in": [doc["_id"] for doc in docs]}, **SENT}
                )
            deleted += result.deleted_count
            if len(docs) < self._prune_batch:
                return deleted

    async def _publish_one(self, doc: Document) -> Awaitable[object] | None:
        return await publish_record(self._publish, doc)

    def _prune_due(self) -> bool:
        return time.monotonic() - self._last_prune >= self._prune_every

    async def _has_work(self) -> bool:
        """Claim the relay lease only when there is something to publish or prune.

        Every pod's relay asks this on each poll while it does not hold the lease, so the pods
        standing by keep the backlog metrics as current as the holder does."""
        oldest = await self._store.db[OUTBOX].find_one(
            PENDING, sort=[("seq", 1)], projection={"created_at": 1}
        )
        self.backlog.saw_oldest(oldest)
        await self._count_backlog_if_due()
        return self._prune_due() or oldest is not None

    async def _count_backlog_if_due(self) -> None:
        """Count the pending records now and then while some are pending (a backlog larger
        than a batch is otherwise only known to be at least a batch)."""
        if not self.backlog.has_pending or time.monotonic() - self._last_count < self._count_every:
            return
        self._last_count = time.monotonic()
        self.backlog.counted(await self.pending_count())

    async def _relay_pass(self, lease: ClaimedItem) -> None:
        await self.drain(lease)
        await self._count_backlog_if_due()
        if self._prune_due():
            self._last_prune = time.monotonic()
            await self.prune()

    def start(self) -> None:
        """Start relaying (the relay's kind on the scheduler; a no-op if it runs already)."""
        self.scheduler.start_now(OUTBOX_WORK)

    async def stop(self, *, flush_timeout: float = 10.0) -> None:
        """Stop the loop, then publish what is still pending (bounded by ``flush_timeout``) if
        the relay lease can be had; a pod that holds it publishes the rest otherwise."""
        await self.scheduler.stop(OUTBOX_WORK, grace_seconds=flush_timeout)
        try:
            await asyncio.wait_for(self.scheduler.run_once(OUTBOX_WORK), timeout=flush_timeout)
        except Exception:  # noqa: BLE001 - whatever is left is published after the restart
            log.warning("outbox not fully flushed at shutdown; the next start publishes the rest")


class OutboxBacklog:
    """The relay's Prometheus metrics, moved by the relay as it works, never by a probe.

    Every pod's relay looks at the service's one outbox (the lease holder as it publishes, the
    others as they look for work on each poll), so every pod of a service reports the same
    backlog. ``fixloop_outbox_oldest_pending_seconds`` is computed when it is read, from the
    creation time of the oldest pending record the relay last saw: it keeps growing while that
    record stays unpublished, whether the broker refuses it or the relay has stopped.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.pending = Gauge(
            "fixloop_outbox_pending",
            "Outbox records not yet published (the service's whole outbox; every pod reports it)",
            registry=registry,
        )
        self.oldest_pending = Gauge(
            "fixloop_outbox_oldest_pending_seconds",
            "Age of the oldest unpublished outbox record (0 when none is pending)",
            registry=registry,
        )
        self.oldest_pending.set_function(self.oldest_pending_age_seconds)
        self.published = Counter(
            "fixloop_outbox_published",
            "Outbox records this pod published and the broker acknowledged",
            registry=registry,
        )
        self._oldest: datetime | None = None
        self._pending = 0

    @property
    def has_pending(self) -> bool:
        return self._oldest is not None

    def oldest_pending_age_seconds(self) -> float:
        oldest = self._oldest
        if oldest is None:
            return 0.0
        return max(0.0, (datetime.now(UTC) - oldest).total_seconds())

    def saw_oldest(self, doc: Document | None) -> None:
        """The oldest pending record (by ``seq``) as just read, or None: nothing is pending."""
        self._oldest = None if doc is None else doc["created_at"]
        if doc is None:
            self._set_pending(0)
        elif self._pending == 0:
            self._set_pending(1)  # at least this one, until the next count

    def scanned(self, docs: list[Document], *, complete: bool) -> None:
        """A scan of pending records, oldest first; ``complete``: it found all of them."""
        self.saw_oldest(docs[0] if docs else None)
        if complete or self._pending < len(docs):  # a full batch: at least that many
            self._set_pending(len(docs))

    def counted(self, pending: int) -> None:
        self._set_pending(pending)
        if pending == 0:
            self._oldest = None

    def sent(self, records: int, *, rest_unknown: bool) -> None:
        """``records`` were acknowledged and marked sent; unless ``rest_unknown`` they were all
        that was pending when scanned (the next scan sees whatever was written since)."""
        self.published.inc(records)
        if rest_unknown:
            self._set_pending(max(0, self._pending - records))
        else:
            self._set_pending(0)
            self._oldest = None

    def _set_pending(self, pending: int) -> None:
        self._pending = pending
        self.pending.set(pending)


async def _keep(lease: ClaimedItem) -> bool:
    """Renew the relay lease once half of it is used up; False if another pod holds it."""
    if lease.lease_left_seconds() > lease.work.lease.total_seconds() / 2:
        return True
    return await lease.renew()


async def count(store: Store, query: Mapping[str, object]) -> int:
    """How many outbox records match ``query``.

    A ``$count`` stage rather than ``count_documents``: its ``$group`` on a constant key makes
    the embedded store load every record of the collection into Python (seconds for 50,000);
    ``$count`` runs inside SQLite, through the index. Same result on MongoDB.
    """
    cursor = await store.db[OUTBOX].aggregate([{"$match": dict(query)}, {"$count": "n"}])
    found = await cursor.to_list()
    return int(found[0]["n"]) if found else 0


async def publish_record(publish: Publish, doc: Document) -> Awaitable[object] | None:
    """Publish one outbox record as it was written: topic, key, headers (event id, trace) and
    value, inside the trace of the unit of work that wrote it; returns what ``publish`` does."""
    headers: dict[str, str] = dict(doc["headers"])
    parent = extract({"traceparent": headers["traceparent"]}) if "traceparent" in headers else None
    token = otel_context.attach(parent) if parent is not None else None
    try:
        return await publish(doc["topic"], doc["value"].encode(), doc["key"], headers)
    finally:
        if token is not None:
            otel_context.detach(token)


# --- republishing retained records -------------------------------------------------------------

REPUBLISH_ATTEMPTS = 60
"""A record the broker refuses is tried this many times (about a minute) before the command
gives up."""


async def _republish_record(publish: Publish, doc: Document) -> None:
    # A broker that just restarted may refuse writes for a while: the embedded broker stores
    # batches that producers retried into a topic before it was created again outside the
    # topic's offsets, and answers UnknownError to later writes until its offsets pass them.
    # Such a refusal is tried again, with backoff, before the command reports it.
    retrying = AsyncRetrying(
        retry=retry_if_exception_type((KafkaError, OSError)),
        wait=wait_exponential_jitter(multiplier=0.05, max=1),
        stop=stop_after_attempt(REPUBLISH_ATTEMPTS),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            ack = await publish_record(publish, doc)
            if ack is not None:
                await ack


@dataclass(frozen=True)
class RepublishWindow:
    """Records created at or after ``since`` and before ``until`` (``None``: up to now)."""

    since: datetime
    until: datetime | None = None

    def __post_init__(self) -> None:
        for name, moment in (("since", self.since), ("until", self.until)):
            if moment is not None and moment.utcoffset() is None:
                msg = f"{name} must be timezone-aware"
                raise ValueError(msg)
        if self.until is not None and self.until <= self.since:
            msg = "until must be later than since"
            raise ValueError(msg)

    def query(self, after_seq: int | None) -> dict[str, object]:
        """The index-friendly superset of the window: sent records from just before ``since`` on,
        after ``after_seq``. :meth:`holds` then decides exactly (on ``created_at``)."""
        lowest = _ns(self.since) - SEQ_SLACK_NS - 1
        return {**SENT, "seq": {"$gt": lowest if after_seq is None else max(after_seq, lowest)}}

    def holds(self, doc: Document) -> bool:
        created: datetime = doc["created_at"]
        return created >= self.since and (self.until is None or created < self.until)

    def created_filter(self) -> dict[str, object]:
        created: dict[str, object] = {"$gte": self.since}
        if self.until is not None:
            created["$lt"] = self.until
        return {"created_at": created}


@dataclass(frozen=True)
class RepublishResult:
    republished: int
    topics: tuple[str, ...]
    pending: int
    """Records of the window not sent yet: the relay publishes them, republish leaves them."""


async def retained_in_window(
    store: Store, window: RepublishWindow, *, batch_size: int = 500
) -> AsyncIterator[list[Document]]:
    """The sent records created in ``window``, oldest first (by ``seq``), in batches."""
    after: int | None = None
    while True:
        # Paged by seq through the (published, seq) index; created_at is compared here rather
        # than in the filter: on the embedded store a datetime comparison defeats the index.
        # Without a seq upper bound: after a clock step back, seq runs ahead of created_at.
        docs = (
            await store.db[OUTBOX]
            .find(window.query(after))
            .sort([("seq", 1)])
            .limit(batch_size)
            .to_list()
        )
        if matching := [doc for doc in docs if window.holds(doc)]:
            yield matching
        if len(docs) < batch_size:
            return
        after = int(docs[-1]["seq"])


async def republish(
    store: Store,
    publish: Publish,
    window: RepublishWindow,
    *,
    dry_run: bool = False,
    before_publish: Callable[[list[str]], Awaitable[None]] | None = None,
    batch_size: int = 500,
) -> RepublishResult:
    """Publish every retained (sent) record created in ``window`` again, in original order, each
    with its original topic, key, headers and value (so the event id is unchanged).

    ``before_publish(topics)`` runs before the first record is sent, with the topics the records
    go to (to re-create topics the broker lost). With ``dry_run`` nothing is published and
    ``republished`` says how many records would be. Records of the window the relay has not sent
    yet are left to the relay and only counted (``pending``).
    """
    topics: dict[str, None] = {}
    found = 0
    async for docs in retained_in_window(store, window, batch_size=batch_size):
        found += len(docs)
        topics.update(dict.fromkeys(str(doc["topic"]) for doc in docs))
    published = 0
    if not dry_run and found:
        if before_publish is not None:
            await before_publish(list(topics))
        async for docs in retained_in_window(store, window, batch_size=batch_size):
            for doc in docs:
                await _republish_record(publish, doc)
                published += 1
    pending = await count(store, {**PENDING, **window.created_filter()})
    return RepublishResult(
        republished=found if dry_run else published, topics=tuple(topics), pending=pending
    )


_DURATION_PART = re.compile(r"(\d{1,9})([smhd])")
_DURATION = re.compile(r"(?:\d{1,9}[smhd])+")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})?"
)


def parse_moment(text: str, *, now: datetime | None = None) -> datetime:
    """An RFC 3339 timestamp with a zone (``2026-11-26T08:00:00Z``, ``...+01:00``), or a
    duration before ``now`` (``90s``, ``15m``, ``2h``, ``7d``, ``1h30m``), as a UTC datetime.

    Raises ValueError with a one-line reason for anything else, a time without a zone included.
    """
    value = text.strip()
    if _DURATION.fullmatch(value):
        seconds = sum(int(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(value))
        if seconds == 0:
            msg = f"{text!r} is a zero duration"
            raise ValueError(msg)
        try:
            return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
        except OverflowError:
            msg = f"{text!r} reaches back too far"
            raise ValueError(msg) from None
    if not _RFC3339.fullmatch(value):
        msg = (
            f"{text!r} is neither an RFC 3339 time with a zone (e.g. 2026-11-26T08:00:00Z) "
            "nor a duration (e.g. 15m, 2h, 7d)"
        )
        raise ValueError(msg)
    try:
        moment = datetime.fromisoformat(value.upper().replace(" ", "T"))
    except ValueError:
        msg = f"{text!r} is not a valid time"
        raise ValueError(msg) from None
    if moment.utcoffset() is None:
        msg = f"{text!r} has no time zone; add Z or an offset such as +01:00"
        raise ValueError(msg)
    return moment.astimezone(UTC)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)
