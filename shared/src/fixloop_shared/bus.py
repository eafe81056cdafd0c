"""Kafka plumbing shared by every service, on FastStream + aiokafka.

- ``make_broker``: producer acks=all, idempotence from settings, OpenTelemetry + Prometheus +
  dead-letter middlewares.
- ``subscribe``: one consumer group per service; the offset is committed only after the handler
  returned (its effects are durable by then); a failure seeks back so the record is redelivered.
- ``DeadLetterMiddleware``: wraps the whole consume path (decode included). Poison messages are
  published to the service's dead-letter topic with headers saying why, then committed, and the
  consumer carries on. Transient failures (store or broker unreachable) are retried with backoff
  and never dead-lettered. Unexpected errors are retried a bounded number of times, then
  dead-lettered so one bad record cannot block its partition forever.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from faststream import AckPolicy, BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.message import StreamMessage
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter
from pymongo.errors import ConnectionFailure, PyMongoError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from fixloop_shared.contracts.events import EventPayload
from fixloop_shared.envelope import Event, PoisonMessage, UnknownEventType, decode_event
from fixloop_shared.logs import bind_correlation
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topics import dead_letter_topic

log = logging.getLogger(__name__)

DLQ_HEADER_PREFIX = "fixloop_dlq_"
"""Every header the dead-letter middleware adds starts with this prefix."""

EventHandler = Callable[[Event[EventPayload]], Awaitable[None]]


def is_transient(exc: BaseException) -> bool:
    """True for failures that go away by themselves: store or broker unreachable, write conflict."""
    if isinstance(exc, ConnectionFailure | KafkaError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, PyMongoError):
        if exc.has_error_label("TransientTransactionError") or exc.has_error_label(
            "RetryableWriteError"
        ):
            return True
        # The embedded SQLite-backed store reports overlapping transactions this way; a retry
        # is correct (the idempotent consumer absorbs a commit that did go through).
        return "savepoint" in str(exc)
    return False


@dataclass
class DeadLetterPolicy:
    """Where and how one service dead-letters; the broker is attached once it exists."""

    service: str
    registry: CollectorRegistry
    transient_attempts: int = 8
    unexpected_attempts: int = 3
    max_wait_seconds: float = 5.0
    broker: KafkaBroker | None = None
    dead_lettered: Counter = field(init=False)

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

    async def dead_letter(
        self, msg: StreamMessage[Any], exc: BaseException, *, reason: str, attempts: int
    ) -> None:
        assert self.broker is not None  # noqa: S101 - attached by make_broker
        record = msg.raw_message
        headers: dict[str, str] = {}
        for key, raw in getattr(record, "headers", ()) or ():
            if not key.startswith(DLQ_HEADER_PREFIX):
                headers[key] = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        headers.update(
            {
                f"{DLQ_HEADER_PREFIX}reason": reason,
                f"{DLQ_HEADER_PREFIX}exception": f"{type(exc).__module__}.{type(exc).__qualname__}",
                f"{DLQ_HEADER_PREFIX}message": str(exc)[:1000] or type(exc).__name__,
                f"{DLQ_HEADER_PREFIX}original_topic": str(getattr(record, "topic", "")),
                f"{DLQ_HEADER_PREFIX}original_partition": str(getattr(record, "partition", "")),
                f"{DLQ_HEADER_PREFIX}original_offset": str(getattr(record, "offset", "")),
                f"{DLQ_HEADER_PREFIX}original_timestamp": str(getattr(record, "timestamp", "")),
                f"{DLQ_HEADER_PREFIX}service": self.service,
                f"{DLQ_HEADER_PREFIX}consumer_group": self.service,
                f"{DLQ_HEADER_PREFIX}time": datetime.now(UTC).isoformat(),
                f"{DLQ_HEADER_PREFIX}attempts": str(attempts),
            }
        )
        key = getattr(record, "key", None)
        value = getattr(record, "value", None)
        await self.broker.publish(
            value if value is not None else b"",
            self.topic,
            key=key,
            headers=headers,
        )
        self.dead_lettered.labels(self.service, reason).inc()
        log.warning(
            "message dead-lettered",
            extra={
                "reason": reason,
                "error": headers[f"{DLQ_HEADER_PREFIX}message"],
                "original_topic": headers[f"{DLQ_HEADER_PREFIX}original_topic"],
                "original_offset": headers[f"{DLQ_HEADER_PREFIX}original_offset"],
            },
        )


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "handler failed, retrying",
        extra={"attempt": state.attempt_number, "error": repr(exc)[:500]},
    )


class DeadLetterMiddleware(BaseMiddleware):
    """Retry transient failures, dead-letter poison messages, never drop anything silently."""

    policy: DeadLetterPolicy

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        policy = self.policy
        attempts = 0
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: not isinstance(e, PoisonMessage | _GiveUp)),
            wait=wait_exponential_jitter(multiplier=0.1, max=policy.max_wait_seconds),
            stop=stop_after_attempt(policy.transient_attempts),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    try:
                        return await call_next(msg)
                    except Exception as exc:
                        if (
                            not isinstance(exc, PoisonMessage)
                            and not is_transient(exc)
                            and attempts >= policy.unexpected_attempts
                        ):
                            raise _GiveUp(exc) from exc
                        raise
        except PoisonMessage as exc:
            await policy.dead_letter(msg, exc, reason=exc.reason, attempts=attempts)
            return None
        except _GiveUp as give_up:
            cause = give_up.cause
            log.error("handler keeps failing; dead-lettering", exc_info=cause)
            await policy.dead_letter(msg, cause, reason="handler-error", attempts=attempts)
            return None
        # Unreachable: the loop returns or raises. Transient failures that outlast the in-place
        # retries propagate: the record is not committed, the consumer seeks back to it, and it is
        # retried again.
        return None  # pragma: no cover


class _GiveUp(Exception):  # noqa: N818 - internal control flow
    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _middleware_factory(policy: DeadLetterPolicy) -> Callable[..., DeadLetterMiddleware]:
    def factory(msg: Any, /, *, context: Any) -> DeadLetterMiddleware:
        middleware = DeadLetterMiddleware(msg, context=context)
        middleware.policy = policy
        return middleware

    return factory


@dataclass
class Bus:
    broker: KafkaBroker
    dead_letters: DeadLetterPolicy
    settings: KafkaSettings

    async def publish_raw(
        self, topic: str, value: bytes, key: str, headers: Mapping[str, str]
    ) -> None:
        """Publish one record and wait for the broker's acknowledgement (acks=all)."""
        await self.broker.publish(value, topic, key=key.encode(), headers=dict(headers))


def make_bus(
    settings: KafkaSettings,
    *,
    service: str,
    tracer_provider: TracerProvider | None = None,
    metrics: CollectorRegistry | None = None,
) -> Bus:
    registry = metrics or CollectorRegistry()
    policy = DeadLetterPolicy(service=service, registry=registry)
    middlewares: list[Any] = []
    if tracer_provider is not None:
        middlewares.append(KafkaTelemetryMiddleware(tracer_provider=tracer_provider))
    middlewares.append(KafkaPrometheusMiddleware(registry=registry, app_name=f"fixloop-{service}"))
    middlewares.append(_middleware_factory(policy))
    broker = KafkaBroker(
        settings.bootstrap,
        client_id=f"fixloop-{service}",
        acks="all",
        enable_idempotence=settings.idempotence,
        max_request_size=settings.max_message_bytes,
        middlewares=tuple(middlewares),
        logger=logging.getLogger(f"fixloop.{service}.kafka"),
    )
    policy.broker = broker
    return Bus(broker=broker, dead_letters=policy, settings=settings)


def subscribe(
    bus: Bus,
    topics: Sequence[str],
    handler: EventHandler,
    *,
    registry: Mapping[str, type[EventPayload]],
    accept_structured: bool = False,
    skip_unknown_types: bool | None = None,
    title: str | None = None,
    description: str | None = None,
) -> None:
    """Consume ``topics`` in the service's consumer group and hand each valid event to ``handler``.

    Events whose type the service does not handle are skipped (committed) by the handler. An
    event type missing from ``registry`` is skipped on internal topics (a producer may add types
    before consumers learn them) and dead-lettered on external feeds (``accept_structured``);
    ``skip_unknown_types`` overrides that rule.
    """
    service = bus.dead_letters.service
    max_bytes = bus.settings.max_message_bytes
    skip_unknown = not accept_structured if skip_unknown_types is None else skip_unknown_types

    async def consume(message: KafkaMessage) -> None:
        record = message.raw_message
        if isinstance(record, tuple):  # batch subscribers are not used
            msg = "batch records are not supported"
            raise TypeError(msg)
        try:
            event = decode_event(
                record.value,
                record.headers or (),
                registry,
                accept_structured=accept_structured,
                max_bytes=max_bytes,
            )
        except UnknownEventType as exc:
            if not skip_unknown:
                raise
            log.info("skipped an event type this service does not know", extra={"error": str(exc)})
            return
        with bind_correlation(event.envelope.correlationid, event.envelope.tenant):
            await handler(event)

    async def raw_body(message: StreamMessage[Any]) -> bytes:
        # Decoding is ours (decode_event), so undecodable bytes become a PoisonMessage.
        return message.body

    consume.__name__ = f"{service}_consume"
    bus.broker.subscriber(
        *topics,
        group_id=service,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=max_bytes,
        decoder=raw_body,
        title=title,
        description=description,
    )(consume)


async def ensure_topics(settings: KafkaSettings, topics: Sequence[str]) -> None:
    """Create any missing topic (keyed topics, ``settings.partitions`` partitions each)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="fixloop-admin")
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
