"""The service kernel: one shape for how every service consumes events.

A service describes each of its consumers as an :class:`EventConsumer`: the topics, and a map from
event type to a plain handler ``async def handle(event, uow)``. The kernel does the rest, once:

- decodes each record (size first, then envelope and payload) and applies the envelope checks —
  the payload's tenant is the envelope's, plus the consumer's own checks (a source bound to its
  tenant); a record that fails is dead-lettered with its reason, the rest go on;
- reads records in batches and applies a batch in **one unit of work** with one claim per event
  (idempotent consumer), then commits the offsets; events already claimed are skipped before the
  transaction;
- if the batch fails, applies its records **one at a time**, each in its own unit of work, so a
  record that can never succeed is isolated (dead-lettered) and the others go through;
- retries transient failures in place with backoff (the partition is reported held up by
  readiness), and dead-letters a record whose handler keeps failing for another reason.

Handlers never open transactions, claim events or catch infrastructure errors: a new lifecycle
step is one more entry in a map.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from aiokafka import ConsumerRebalanceListener
from faststream import AckPolicy
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.trace import Tracer
from prometheus_client import Counter
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from fixloop_shared.bus import Bus, DeadLetterPolicy, check_tenant
from fixloop_shared.contracts import EVENT_TYPES, EventPayload
from fixloop_shared.envelope import Event, EventEnvelope, decode_event
from fixloop_shared.errors import (
    PoisonMessage,
    UnknownEventType,
    dead_letter_reason,
    is_record_level,
    is_transient,
)
from fixloop_shared.logs import bind_correlation
from fixloop_shared.store import ClaimedAlready
from fixloop_shared.telemetry import consuming

log = logging.getLogger(__name__)

P = TypeVar("P", bound=EventPayload)
T = TypeVar("T")


class UnitOfWork(Protocol):
    """One atomic change: the state change, the events it emits (outbox), the claims of the
    events that caused it. The MongoDB implementation is ``fixloop_shared.store.UnitOfWork``;
    ``fixloop_shared.memory.MemoryUnitOfWork`` is the in-memory one."""

    @property
    def session(self) -> Any:
        """What the store's repositories need to read and write inside this unit of work."""

    @property
    def memo(self) -> dict[object, object]:
        """What repositories loaded in this unit of work, for its later handlers (a batch's
        :attr:`EventConsumer.preload`); gone with the unit of work."""

    async def claim(self, envelope: EventEnvelope, *, consumer: str | None = None) -> bool:
        """Record that ``consumer`` processed the event; False if it already had."""

    async def claim_all(self, claims: Sequence[tuple[EventEnvelope, str]]) -> None:
        """Record several (event, consumer) claims in one write; raises
        :class:`fixloop_shared.store.ClaimedAlready` if any of them is recorded already."""

    def claim_at_commit(self, envelope: EventEnvelope, *, consumer: str | None = None) -> None:
        """Record the claim with the unit of work's other writes when it commits; the commit
        raises :class:`fixloop_shared.store.ClaimedAlready` (and leaves nothing) if the event
        was processed already."""

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
        """Queue an event; it is written to the outbox with the unit of work's other changes."""

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the unit of work has committed (wake a worker, say)."""


class UnitsOfWork(Protocol):
    """Where a service's units of work come from (its store)."""

    service: str

    def transaction(self) -> Any:
        """``async with units.transaction() as uow``: commits on success, rolls back on error."""

    async def already_claimed(self, claims: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (consumer, event id) claims are recorded already."""


Handler = Callable[[Event[Any], UnitOfWork], Awaitable[object]]
"""A handler applies one event inside the unit of work; what it returns is ignored."""
Preload = Callable[[Sequence[Event[Any]], UnitOfWork], Awaitable[object]]
"""Loads, in a few reads, what a batch's handlers will read one by one (into ``uow.memo``)."""
EventCheck = Callable[[Event[Any]], None]


class PartitionOwnership(Protocol):
    """What a consumer keeps per partition it owns (e.g. timers), told of each rebalance.

    ``partitions_revoked`` is awaited before the partitions go to another member: work on them
    must be finished or dropped when it returns. Partitions are ``(topic, partition)`` pairs.
    """

    async def partitions_assigned(self, partitions: frozenset[tuple[str, int]]) -> None: ...

    async def partitions_revoked(self, partitions: frozenset[tuple[str, int]]) -> None: ...


@dataclass(frozen=True)
class EventConsumer:
    """One consumer of a service: its topics and what it does with each event type.

    ``handlers`` maps payload classes to handlers; events of other types on these topics are
    skipped. ``claim_scope`` names whose claim an event is (default: the service); inbound
    submissions are scoped per source platform, since external event ids are unique only there.
    ``checks`` run on every decoded event before its handler and raise a poison error to refuse
    it (for example a source platform not bound to the event's tenant).
    """

    name: str
    topics: Sequence[str]
    handlers: Mapping[type[EventPayload], Handler]
    description: str = ""
    registry: Mapping[str, type[EventPayload]] = field(default_factory=lambda: EVENT_TYPES)
    accept_structured: bool = False
    skip_unknown_types: bool | None = None
    claim_scope: Callable[[EventEnvelope], str] | None = None
    checks: Sequence[EventCheck] = ()
    preload: Preload | None = None
    """Run once per batch, before its handlers, in the same unit of work."""
    ownership: PartitionOwnership | None = None
    """Told which partitions this pod's member of the group owns, as the group rebalances."""

    def scope_of(self, envelope: EventEnvelope, service: str) -> str:
        return self.claim_scope(envelope) if self.claim_scope is not None else service

    def group(self, service: str) -> str:
        """This consumer's Kafka consumer group: every pod of ``service`` joins it.

        One group per consumer, never one shared by a service's consumers: each group then has
        one member per pod, its rebalances stay its own, and no two members of one pod ever
        join, heartbeat or leave the same group at once (the embedded broker loses group state
        when two requests for one group overlap, see DESIGN.md section 6).
        """
        return f"{service}.{self.name}"


@dataclass(frozen=True)
class _Work:
    record: Any
    event: Event[Any]
    handler: Handler
    scope: str


@dataclass
class EventProcessor:
    """Applies records of one consumer: batch first, one at a time when the batch fails."""

    consumer: EventConsumer
    units: UnitsOfWork
    dead_letters: DeadLetterPolicy
    max_message_bytes: int
    handled: Counter | None = None
    tracer: Tracer | None = None
    unexpected_attempts: int = 3
    max_wait_seconds: float = 30.0

    @property
    def service(self) -> str:
        return self.units.service

    async def process(self, records: Sequence[Any]) -> None:
        work = [w for w in [await self._prepare(r) for r in records] if w is not None]
        if not work:
            return
        if len(work) == 1:  # its claim in the unit of work decides; no look-up first
            await self._apply_one(work[0])
            return
        claimed = await self._already_claimed(work)
        fresh = [w for w in work if (w.scope, w.event.envelope.id) not in claimed]
        self._count(len(work) - len(fresh), "duplicate")
        if len(fresh) > 1 and await self._apply_batch(fresh):
            return
        for item in fresh:
            await self._apply_one(item)

    async def _prepare(self, record: Any) -> _Work | None:
        try:
            event = decode_event(
                record.value,
                record.headers or (),
                self.consumer.registry,
                accept_structured=self.consumer.accept_structured,
                max_bytes=self.max_message_bytes,
            )
            check_tenant(event)
            for check in self.consumer.checks:
                check(event)
        except UnknownEventType as exc:
            skip = self.consumer.skip_unknown_types
            if skip if skip is not None else not self.consumer.accept_structured:
                log.info("skipped an event type this service does not know: %s", exc)
                self._count(1, "skipped")
                return None
            await self._dead_letter(record, exc, attempts=1)
            return None
        except PoisonMessage as exc:
            await self._dead_letter(record, exc, attempts=1)
            return None
        handler = self.consumer.handlers.get(type(event.payload))
        if handler is None:
            self._count(1, "skipped")
            return None
        partition = getattr(record, "partition", None)
        if isinstance(partition, int):
            event = replace(event, partition=partition)
        scope = self.consumer.scope_of(event.envelope, self.service)
        return _Work(record, event, handler, scope)

    async def _already_claimed(self, work: Sequence[_Work]) -> set[tuple[str, str]]:
        """The batch's events claimed already (committed). Only a shortcut: the claims made in
        the unit of work decide, so a look-up that fails for good just skips it."""
        claims = [(w.scope, w.event.envelope.id) for w in work]
        wait = wait_exponential_jitter(multiplier=0.1, max=self.max_wait_seconds)
        attempts = 0
        while True:
            attempts += 1
            try:
                return await self.units.already_claimed(claims)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    log.warning("claim look-up failed; relying on the claims", exc_info=exc)
                    return set()
                self._held_up(work[0].record, exc, "claim look-up failed, retrying", attempts)
                await asyncio.sleep(wait(_RetryState(attempts)))  # type: ignore[arg-type]

    async def _apply_batch(self, work: Sequence[_Work]) -> bool:
        try:
            async with self.units.transaction() as uow:
                # One write claims the whole batch; if another consumer claimed one of its
                # events meanwhile, the batch fails and its records go one at a time.
                await uow.claim_all([(item.event.envelope, item.scope) for item in work])
                if self.consumer.preload is not None:
                    await self.consumer.preload([item.event for item in work], uow)
                for item in work:
                    with self._handling(item):
                        await item.handler(item.event, uow)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure: isolate it record by record
            log.info(
                "batch not applied; applying its records one at a time",
                extra={"records": len(work), "error": repr(exc)[:300]},
            )
            return False
        for item in work:
            self.dead_letters.moved_on(item.record)
        self._count(len(work), "applied")
        return True

    async def _apply_one(self, item: _Work) -> None:
        envelope = item.event.envelope
        unexpected = 0
        attempts = 0
        wait = wait_exponential_jitter(multiplier=0.1, max=self.max_wait_seconds)
        while True:
            attempts += 1
            try:
                # The claim is written with the unit of work's other writes (one round trip
                # less); if the event was processed already, the commit refuses the whole unit.
                async with self.units.transaction() as uow:
                    uow.claim_at_commit(envelope, consumer=item.scope)
                    with self._handling(item):
                        await item.handler(item.event, uow)
            except asyncio.CancelledError:
                raise
            except ClaimedAlready:
                self.dead_letters.moved_on(item.record)
                self._count(1, "duplicate")
                return
            except Exception as exc:
                if await self._processed_already(item):
                    # A redelivery whose handler objected to the state it made itself.
                    self.dead_letters.moved_on(item.record)
                    self._count(1, "duplicate")
                    return
                if is_record_level(exc):
                    await self._dead_letter(item.record, exc, attempts=attempts)
                    return
                if not is_transient(exc):
                    unexpected += 1
                    if unexpected >= self.unexpected_attempts:
                        log.error("handler keeps failing; dead-lettering", exc_info=exc)
                        await self._dead_letter(item.record, exc, attempts=attempts)
                        return
                self._held_up(item.record, exc, "handler failed, retrying", attempts=attempts)
                await asyncio.sleep(wait(_RetryState(attempts)))  # type: ignore[arg-type]
                continue
            self.dead_letters.moved_on(item.record)
            self._count(1, "applied")
            return

    async def _processed_already(self, item: _Work) -> bool:
        """Whether the event's claim is recorded (False if that cannot be told now)."""
        claim = (item.scope, item.event.envelope.id)
        try:
            return claim in await self.units.already_claimed([claim])
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the failure at hand is handled as it is
            return False

    @contextmanager
    def _handling(self, item: _Work) -> Iterator[None]:
        """Logs carry the event's correlation id and tenant; it is handled in its own trace."""
        envelope = item.event.envelope
        with (
            bind_correlation(envelope.correlationid, envelope.tenant),
            consuming(
                self.tracer,
                envelope.traceparent,
                topic=str(getattr(item.record, "topic", "")),
                event_type=envelope.type,
            ),
        ):
            yield

    def _held_up(self, record: Any, exc: BaseException, message: str, attempts: int = 0) -> None:
        self.dead_letters.held_up(record, exc)
        where = f"{getattr(record, 'topic', '')}/{getattr(record, 'partition', '')}"
        self.dead_letters.complaints.warning(
            where, message, extra={"attempt": attempts, "error": repr(exc)[:500]}
        )

    async def _dead_letter(self, record: Any, exc: BaseException, *, attempts: int) -> None:
        await self.dead_letters.dead_letter(
            record,
            exc,
            reason=dead_letter_reason(exc),
            attempts=attempts,
            group=self.consumer.group(self.service),
        )
        self.dead_letters.moved_on(record)
        self._count(1, "dead-lettered")

    def _count(self, n: int, outcome: str) -> None:
        if self.handled is not None and n:
            self.handled.labels(self.service, self.consumer.name, outcome).inc(n)


@dataclass(frozen=True)
class _RetryState:
    """The one field tenacity's wait strategies read."""

    attempt_number: int


async def apply_event(
    units: UnitsOfWork,
    event: Event[P],
    handler: Callable[[Event[P], UnitOfWork], Awaitable[T]],
    *,
    scope: str | None = None,
    attempts: int = 1,
) -> T | None:
    """Apply one event now, in its own unit of work: claim it, run ``handler``, commit.

    What the kernel does for one record, without a broker (for commands and tests). A transient
    failure is tried again, up to ``attempts`` times in all. Returns the handler's result, or
    None if the event was claimed already.
    """
    for attempt in range(1, attempts + 1):
        try:
            async with units.transaction() as uow:
                if not await uow.claim(event.envelope, consumer=scope):
                    return None
                return await handler(event, uow)
        except Exception as exc:
            if attempt >= attempts or not is_transient(exc):
                raise
            log.info("applying again after a transient failure", extra={"error": repr(exc)[:300]})
    return None  # pragma: no cover - the loop returns or raises


UNIT_OF_WORK_ATTEMPTS = 6
"""How often :func:`in_unit_of_work` tries a unit of work that fails transiently."""


async def in_unit_of_work(units: UnitsOfWork, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run ``work`` in a unit of work of ``units`` and commit it; a transient failure (a write
    conflict, a store that does not answer for a moment, a decision another pod made meanwhile)
    runs it again in a fresh one. For work that is no consumed event: commands, timers."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential_jitter(multiplier=0.02, max=0.5),
        stop=stop_after_attempt(UNIT_OF_WORK_ATTEMPTS),
        reraise=True,
    ):
        with attempt:
            async with units.transaction() as uow:
                return await work(uow)
    msg = "unreachable: the retry loop returns or raises"  # pragma: no cover
    raise AssertionError(msg)


def subscribe_consumer(
    bus: Bus,
    units: UnitsOfWork,
    consumer: EventConsumer,
    *,
    max_records: int = 100,
    batch_timeout_ms: int = 50,
) -> EventProcessor:
    """Consume ``consumer.topics`` in the consumer's group, in batches, through the kernel."""
    processor = EventProcessor(
        consumer=consumer,
        units=units,
        dead_letters=bus.dead_letters,
        max_message_bytes=bus.settings.max_message_bytes,
        handled=bus.events_handled,
        tracer=bus.tracer,
    )

    async def consume(message: KafkaMessage) -> None:
        records = message.raw_message
        await processor.process(records if isinstance(records, tuple) else (records,))

    consume.__name__ = f"{units.service}_{consumer.name}".replace("-", "_")
    rewind = RewindAfterLoss(bus, ownership=consumer.ownership)
    subscriber = bus.broker.subscriber(
        *consumer.topics,
        group_id=consumer.group(units.service),
        batch=True,
        max_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=bus.settings.max_message_bytes,
        fetch_max_wait_ms=bus.settings.fetch_max_wait_ms,
        decoder=_raw_records,
        title=f"{units.service}:{consumer.name}",
        description=consumer.description or None,
        listener=rewind,
    )
    subscriber(consume)
    rewind.subscriber = subscriber
    return processor


REWIND_WINDOW_SECONDS = 120.0
"""How long after the broker was found without its topics a new assignment is read from the
beginning (the group rejoins within this)."""


class RewindAfterLoss(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells the consumer's :class:`PartitionOwnership` of each rebalance, and reads partitions
    assigned soon after the broker lost its topics from the beginning.

    The group's offsets on the new broker may have been committed by batches read from the old
    logs (positions there); kept, they would skip the first records of the new ones. Records read
    again are absorbed by the idempotent consumers.
    """

    def __init__(self, bus: Bus, *, ownership: PartitionOwnership | None = None) -> None:
        self.bus = bus
        self.ownership = ownership
        self.subscriber: Any = None
        self._rewound_for: float | None = None

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if self.ownership is not None:
            await self.ownership.partitions_revoked(_pairs(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._rewind(assigned)
        if self.ownership is not None:
            await self.ownership.partitions_assigned(_pairs(assigned))

    def _rewind(self, assigned: Any) -> None:
        lost_at = self.bus.topics_lost_at
        if lost_at is None or lost_at == self._rewound_for or not assigned:
            return
        if time.monotonic() - lost_at > REWIND_WINDOW_SECONDS:
            return
        consumer = getattr(self.subscriber, "consumer", None)
        if consumer is None:
            return
        self._rewound_for = lost_at
        # ``seek`` only sets the position (safe inside a rebalance); offset 0 is where a log the
        # broker created again begins, and past a log's start the reset policy (earliest) applies.
        for partition in assigned:
            consumer.seek(partition, 0)
        log.warning(
            "partitions assigned after the broker lost its topics are read from the beginning",
            extra={"partitions": sorted(f"{tp.topic}/{tp.partition}" for tp in assigned)},
        )


def _pairs(partitions: Any) -> frozenset[tuple[str, int]]:
    return frozenset((tp.topic, tp.partition) for tp in partitions or ())


async def _raw_records(message: Any) -> Any:
    # Decoding is the kernel's (decode_event), record by record.
    return message.body


__all__ = [
    "EventConsumer",
    "EventProcessor",
    "Handler",
    "PartitionOwnership",
    "UnitOfWork",
    "UnitsOfWork",
    "apply_event",
    "in_unit_of_work",
    "subscribe_consumer",
]
