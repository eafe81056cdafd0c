"""``WatchWorkOrders``: a tenant's lifecycle steps, live, from the work order events topic.

Every step is published on ``fixloop.workorders.events.v1`` (through the outbox, in commit order
per order: the order's id is the record key). A watch reads that topic without a consumer group
and keeps the steps of the caller's tenant. Its cursor is the position reached in each partition,
so a watch resumed from the cursor of the last step it delivered continues with the very next
record of every partition: nothing is skipped, nothing repeated — the guarantee comes from the
log, not from clocks.

A cursor names offsets of the topic's current logs; if the broker lost its topics (the embedded
one keeps them in memory) a position past the end of a partition means a new log, read from its
start. How far back a watch can start is the topic's retention (``from_oldest``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from fixloop_shared.contracts import EVENTS_ON_TOPIC, LifecycleFacts, WorkOrderReceived
from fixloop_shared.envelope import Event, decode_event
from fixloop_shared.errors import FieldViolation, InvalidInput, PoisonMessage
from fixloop_shared.grpc_edge.errors import INVALID_ARGUMENT_MESSAGE
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topics import Topic

log = logging.getLogger(__name__)

CURSOR_PREFIX = "c1."
MAX_CURSOR_CHARS = 4096
STEP_EVENT_TYPES = {model.event_type: model for model in EVENTS_ON_TOPIC[Topic.WORKORDERS_EVENTS]}
_FACT_FIELDS = frozenset(LifecycleFacts.model_fields)


@dataclass(frozen=True, slots=True)
class WatchedStep:
    """One lifecycle step as a watcher sees it."""

    event_id: str
    event_type: str
    work_order_id: str
    external_id: str
    state: str
    previous_state: str | None
    version: int
    occurred_at: datetime
    actor_kind: str
    actor_id: str | None
    reason: str | None
    note: str | None
    contractor_id: str | None
    details: Mapping[str, str]


def encode_cursor(positions: Mapping[int, int]) -> str:
    raw = json.dumps({str(p): o for p, o in sorted(positions.items())}, separators=(",", ":"))
    return CURSOR_PREFIX + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[int, int]:
    """The positions in a cursor; INVALID_ARGUMENT for anything that is not one of ours."""

    def invalid() -> InvalidInput:
        return InvalidInput(
            INVALID_ARGUMENT_MESSAGE,
            [FieldViolation("cursor", "not a cursor of this API: pass one a watch returned")],
        )

    if len(cursor) > MAX_CURSOR_CHARS or not cursor.startswith(CURSOR_PREFIX):
        raise invalid()
    body = cursor.removeprefix(CURSOR_PREFIX)
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid() from None
    if not isinstance(data, dict):
        raise invalid()
    positions: dict[int, int] = {}
    for key, value in data.items():
        if not (isinstance(key, str) and key.isdigit() and len(key) <= 5):
            raise invalid()
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
            raise invalid()
        positions[int(key)] = value
    return positions


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, list | dict):
        return json.dumps(value, default=str, separators=(",", ":"))[:2000]
    return str(value)


def watched_step(event: Event[Any]) -> WatchedStep | None:
    """The step an event of the topic is, or None for an event that is not about one."""
    payload, envelope = event.payload, event.envelope
    if isinstance(payload, WorkOrderReceived):
        return WatchedStep(
            event_id=envelope.id,
            event_type=envelope.type,
            work_order_id=payload.work_order_id,
            external_id=payload.external_id,
            state="received",
            previous_state=None,
            version=1,
            occurred_at=payload.received_at,
            actor_kind="requester",
            actor_id=payload.source_platform,
            reason=None,
            note=None,
            contractor_id=None,
            details={"source_platform": payload.source_platform, "priority": payload.priority},
        )
    if not isinstance(payload, LifecycleFacts):
        return None
    dumped = payload.model_dump(mode="python", exclude_none=True)
    return WatchedStep(
        event_id=envelope.id,
        event_type=envelope.type,
        work_order_id=payload.work_order_id,
        external_id=payload.external_id,
        state=payload.state.value,
        previous_state=payload.previous_state.value,
        version=payload.version,
        occurred_at=payload.occurred_at,
        actor_kind=payload.actor.kind.value,
        actor_id=payload.actor.id,
        reason=payload.reason,
        note=payload.note,
        contractor_id=payload.contractor_id,
        details={key: _text(value) for key, value in dumped.items() if key not in _FACT_FIELDS},
    )


class WorkOrderWatch:
    """Opens watches on the work order events topic."""

    def __init__(self, kafka: KafkaSettings, *, topic: str = Topic.WORKORDERS_EVENTS) -> None:
        self._kafka = kafka
        self._topic = topic

    async def steps(
        self,
        tenant: str,
        *,
        cursor: str | None,
        work_order_id: str | None = None,
        from_oldest: bool = False,
    ) -> AsyncIterator[tuple[WatchedStep, str]]:
        """Yield the tenant's steps as (step, cursor after it), until the caller stops."""
        positions = decode_cursor(cursor) if cursor else None
        consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._kafka.fetch_max_wait_ms,
            **self._kafka.client_options(),
        )
        await consumer.start()
        try:
            partitions = sorted(consumer.partitions_for_topic(self._topic) or ())
            if not partitions:
                await consumer.force_metadata_update()
                partitions = sorted(consumer.partitions_for_topic(self._topic) or ())
            assigned = [TopicPartition(self._topic, p) for p in partitions]
            consumer.assign(assigned)
            ends = await consumer.end_offsets(assigned)
            reached: dict[int, int] = {}
            for tp in assigned:
                end = ends[tp]
                if positions is not None:
                    wanted = positions.get(tp.partition, 0)
                    # Past the end: the broker lost its log; the new one is read from its start.
                    start = wanted if wanted <= end else 0
                elif from_oldest:
                    start = (await consumer.beginning_offsets([tp]))[tp]
                else:
                    start = end
                consumer.seek(tp, start)
                reached[tp.partition] = start
            while True:
                batch = await consumer.getmany(timeout_ms=1000, max_records=500)
                for tp, records in sorted(batch.items(), key=lambda item: item[0].partition):
                    for record in records:
                        reached[tp.partition] = record.offset + 1
                        step = self._step_of(record, tenant, work_order_id)
                        if step is not None:
                            yield step, encode_cursor(reached)
        finally:
            await consumer.stop()

    @staticmethod
    def _step_of(record: Any, tenant: str, work_order_id: str | None) -> WatchedStep | None:
        headers = record.headers or ()
        for key, value in headers:
            if key == "ce_tenant" and value.decode(errors="replace") != tenant:
                return None
        if (
            work_order_id is not None
            and (record.key or b"").decode(errors="replace") != work_order_id
        ):
            return None
        try:
            event = decode_event(record.value, headers, STEP_EVENT_TYPES)
        except PoisonMessage:
            log.debug("watch skipped an undecodable record", extra={"offset": record.offset})
            return None
        if event.envelope.tenant != tenant:
            return None
        return watched_step(event)


__all__ = [
    "WatchedStep",
    "WorkOrderWatch",
    "decode_cursor",
    "encode_cursor",
    "watched_step",
]
