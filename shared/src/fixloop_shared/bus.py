"""Kafka plumbing shared by every service, on FastStream + aiokafka.

- ``make_bus``: the service's broker (producer acks=all, idempotence from settings, OpenTelemetry
  and Prometheus middlewares) and its dead-letter policy.
- ``DeadLetterPolicy``: publishes a record that can never succeed (see
  :mod:`fixloop_shared.errors`) to the service's dead-letter topic with headers saying why; a copy
  too large for the producer goes without its body but with its size, digest and original
  position, and a publish that fails is retried until the broker has it. It also tracks the
  partitions held up by a record (readiness reports them).
- ``check_tenant``: the envelope check every consumed event passes.

Consuming is the kernel's (:mod:`fixloop_shared.kernel`): batches, units of work, retries.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry, Counter
from tenacity import AsyncRetrying, retry_if_exception, wait_exponential_jitter

from fixloop_shared.contracts import EventPayload
from fixloop_shared.envelope import Event
from fixloop_shared.errors import (
    UnauthorizedSource,
    is_transient,
)
from fixloop_shared.kafka_security import broker_security
from fixloop_shared.log_throttle import ThrottledLog
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topics import dead_letter_topic

log = logging.getLogger(__name__)

DLQ_HEADER_PREFIX = "fixloop_dlq_"
"""Every header the dead-letter middleware adds starts with this prefix."""

DLQ_HEADROOM_BYTES = 64 * 1024
"""Room kept for the dead-letter headers and the record's framing below the producer's limit."""

MAX_COPIED_HEADER_BYTES = 16 * 1024
"""Original headers beyond this many bytes are left out of the dead-letter copy."""


@dataclass(frozen=True)
class StuckPartition:
    """A partition whose current record has not gone through (and so nothing behind it either)."""

    topic: str
    partition: int
    offset: int
    since: float
    error: str


@dataclass
class DeadLetterPolicy:
    """Where and how one service dead-letters; the broker is attached once it exists."""

    service: str
    registry: CollectorRegistry
    max_message_bytes: int = 1_048_576
    unexpected_attempts: int = 3
    max_wait_seconds: float = 30.0
    held_up_after_seconds: float = 5.0
    broker: KafkaBroker | None = None
    dead_lettered: Counter = field(init=False)
    stuck: dict[tuple[str, int], StuckPartition] = field(default_factory=dict)
    complaints: ThrottledLog = field(default_factory=lambda: ThrottledLog(log))

    def __post_init__(self) -> None:
        self.dead_lettered = Counter(
            "fixloop_messages_dead_lettered",
            "Messages published to the dead-letter topic",
            ["service", "reason"],
            registry=self.registry,
        )

    @property
    def topic(self) -> str:
        return dead_letter_topic(self.service)

    def backoff(self) -> AsyncRetrying:
        """Retry until it works, waiting longer each time (up to ``max_wait_seconds``)."""
        return AsyncRetrying(
            wait=wait_exponential_jitter(multiplier=0.1, max=self.max_wait_seconds),
            retry=retry_if_exception(lambda e: isinstance(e, Exception)),
            reraise=True,
        )

    def held_up(self, record: Any, exc: BaseException) -> None:
        """Record that ``record``'s partition is held up by ``exc`` (reported by readiness)."""
        where = (str(getattr(record, "topic", "")), int(getattr(record, "partition", -1) or 0))
        current = self.stuck.get(where)
        self.stuck[where] = StuckPartition(
            topic=where[0],
            partition=where[1],
            offset=int(getattr(record, "offset", -1) or 0),
            since=current.since if current else time.monotonic(),
            error=f"{type(exc).__name__}: {str(exc)[:200]}",
        )

    def moved_on(self, record: Any) -> None:
        where = (str(getattr(record, "topic", "")), int(getattr(record, "partition", -1) or 0))
        if self.stuck.pop(where, None) is not None:
            self.complaints.resolved(f"{where[0]}/{where[1]}")
            log.info("partition moving again", extra={"topic": where[0], "partition": where[1]})

    async def check_partitions(self) -> None:
        """Readiness: fail while any partition has been held up for more than a few seconds."""
        now = time.monotonic()
        held = [s for s in self.stuck.values() if now - s.since >= self.held_up_after_seconds]
        if held:
            first = held[0]
            msg = (
                f"{first.topic}[{first.partition}] held at offset {first.offset} for "
                f"{now - first.since:.0f}s: {first.error}"
            )
            raise PartitionHeldUpError(msg)

    def dead_letter_record(
        self, record: Any, exc: BaseException, *, reason: str, attempts: int, group: str = ""
    ) -> tuple[bytes, bytes | None, dict[str, str]]:
        """The dead-letter copy of ``record``: its body (omitted if too large), key and headers."""
        value = getattr(record, "value", None) or b""
        key = getattr(record, "key", None)
        headers = _copied_headers(getattr(record, "headers", ()) or ())
        headers.update(
            {
                f"{DLQ_HEADER_PREFIX}reason": reason,
                f"{DLQ_HEADER_PREFIX}exception": f"{type(exc).__module__}.{type(exc).__qualname__}",
                f"{DLQ_HEADER_PREFIX}message": str(exc)[:1000] or type(exc).__name__,
                f"{DLQ_HEADER_PREFIX}original_topic": str(getattr(record, "topic", "")),
                f"{DLQ_HEADER_PREFIX}original_partition": str(getattr(record, "partition", "")),
                f"{DLQ_HEADER_PREFIX}original_offset": str(getattr(record, "offset", "")),
                f"{DLQ_HEADER_PREFIX}original_timestamp": str(getattr(record, "timestamp", "")),
                f"{DLQ_HEADER_PREFIX}original_size": str(len(value)),
                f"{DLQ_HEADER_PREFIX}original_sha256": hashlib.sha256(value).hexdigest(),
                f"{DLQ_HEADER_PREFIX}service": self.service,
                f"{DLQ_HEADER_PREFIX}consumer_group": group or self.service,
                f"{DLQ_HEADER_PREFIX}time": datetime.now(UTC).isoformat(),
                f"{DLQ_HEADER_PREFIX}attempts": str(attempts),
            }
        )
        if isinstance(key, bytes) and len(key) > MAX_COPIED_HEADER_BYTES:
            key = key[:MAX_COPIED_HEADER_BYTES]
        framing = sum(len(k) + len(v.encode()) for k, v in headers.items()) + len(key or b"")
        if len(value) + framing > self.max_message_bytes - DLQ_HEADROOM_BYTES:
            headers[f"{DLQ_HEADER_PREFIX}body"] = "omitted: larger than the dead-letter limit"
            value = b""
        return value, key, headers

    async def dead_letter(
        self, record: Any, exc: BaseException, *, reason: str, attempts: int, group: str = ""
    ) -> None:
        """Publish the dead-letter copy of ``record``; keeps trying until the broker has it.

        A copy the broker refuses as a record (too large for its own limit, say) is sent again
        without its body and original headers: the reason, size, digest and original position
        are enough to find the record on its source topic.
        """
        assert self.broker is not None  # noqa: S101 - attached by make_broker
        value, key, headers = self.dead_letter_record(
            record, exc, reason=reason, attempts=attempts, group=group
        )
        where = f"{getattr(record, 'topic', '')}/{getattr(record, 'partition', '')}"
        async for attempt in self.backoff():
            with attempt:
                try:
                    await self.broker.publish(value, self.topic, key=key, headers=headers)
                except Exception as failure:
                    self.held_up(record, failure)
                    self.complaints.error(
                        where,
                        "dead-letter publish failed; retrying",
                        extra={"error": repr(failure)[:300], "original_partition": where},
                    )
                    if not is_transient(failure) and value:
                        value = b""
                        headers = _essential_headers(headers)
                        headers[f"{DLQ_HEADER_PREFIX}body"] = (
                            f"omitted: the broker refused the copy ({type(failure).__name__})"
                        )
                    raise
        self.dead_lettered.labels(self.service, reason).inc()
        log.warning(
            "message dead-lettered",
            extra={
                "reason": reason,
                "error": headers[f"{DLQ_HEADER_PREFIX}message"],
                "original_topic": headers[f"{DLQ_HEADER_PREFIX}original_topic"],
                "original_offset": headers[f"{DLQ_HEADER_PREFIX}original_offset"],
                "original_size": headers[f"{DLQ_HEADER_PREFIX}original_size"],
            },
        )


class PartitionHeldUpError(RuntimeError):
    """Readiness: a partition's current record has not gone through for a while."""


def _copied_headers(raw_headers: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    budget = MAX_COPIED_HEADER_BYTES
    for key, raw in raw_headers:
        if key.startswith(DLQ_HEADER_PREFIX):
            continue
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        budget -= len(key) + len(text.encode())
        if budget < 0:
            headers[f"{DLQ_HEADER_PREFIX}headers"] = "truncated: original headers too large"
            break
        headers[key] = text
    return headers


def _essential_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith(DLQ_HEADER_PREFIX)}


@dataclass
class Bus:
    broker: KafkaBroker
    dead_letters: DeadLetterPolicy
    settings: KafkaSettings
    events_handled: Counter
    tracer: Tracer | None = None
    topics_lost_at: float | None = None
    """When (``time.monotonic()``) the broker was last found without this service's topics."""

    async def publish_raw(
        self, topic: str, value: bytes, key: str, headers: Mapping[str, str]
    ) -> None:
        """Publish one record and wait for the broker's acknowledgement (acks=all)."""
        await self.broker.publish(value, topic, key=key.encode(), headers=dict(headers))

    async def send_raw(
        self, topic: str, value: bytes, key: str, headers: Mapping[str, str]
    ) -> Awaitable[object]:
        """Queue one record in the producer (in call order) and return its acknowledgement
        (acks=all) to await; a batch sent this way goes out together."""
        ack: Awaitable[object] = await self.broker.publish(
            value, topic, key=key.encode(), headers=dict(headers), no_confirm=True
        )
        return ack


def make_bus(
    settings: KafkaSettings,
    *,
    service: str,
    tracer_provider: TracerProvider | None = None,
    metrics: CollectorRegistry | None = None,
) -> Bus:
    registry = metrics or CollectorRegistry()
    policy = DeadLetterPolicy(
        service=service, registry=registry, max_message_bytes=settings.max_message_bytes
    )
    middlewares: list[Any] = []
    if tracer_provider is not None:
        middlewares.append(KafkaTelemetryMiddleware(tracer_provider=tracer_provider))
    middlewares.append(KafkaPrometheusMiddleware(registry=registry, app_name=f"fixloop-{service}"))
    broker = KafkaBroker(
        settings.bootstrap,
        client_id=f"fixloop-{service}",
        acks="all",
        enable_idempotence=settings.idempotence,
        max_request_size=settings.max_message_bytes,
        security=broker_security(settings),
        middlewares=tuple(middlewares),
        logger=logging.getLogger(f"fixloop.{service}.kafka"),
    )
    policy.broker = broker
    handled = Counter(
        "fixloop_events_handled",
        "Consumed events by consumer and outcome (applied, duplicate, skipped, dead-lettered)",
        ["service", "consumer", "outcome"],
        registry=registry,
    )
    return Bus(
        broker=broker,
        dead_letters=policy,
        settings=settings,
        events_handled=handled,
        tracer=tracer_provider.get_tracer("fixloop.kernel") if tracer_provider else None,
    )


def check_tenant(event: Event[EventPayload]) -> None:
    """An event speaks for one tenant: a payload naming another than its envelope is refused."""
    tenant = getattr(event.payload, "tenant", None)
    if tenant is not None and tenant != event.envelope.tenant:
        msg = f"data.tenant {tenant!r} differs from the event's tenant {event.envelope.tenant!r}"
        raise UnauthorizedSource(msg)


async def ensure_topics(settings: KafkaSettings, topics: Sequence[str]) -> None:
    """Create any missing topic (keyed topics, ``settings.partitions`` partitions each)."""
    admin = AIOKafkaAdminClient(**settings.client_options(), client_id="fixloop-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(t, settings.partitions, settings.replication_factor) for t in missing]
            )
    finally:
        await admin.close()
