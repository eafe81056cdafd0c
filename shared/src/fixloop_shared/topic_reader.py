"""Read a topic from its start without joining a consumer group.

For operators' tools (``fixloop dlq list``/``replay`` read the dead-letter topics with it) and the
tests; a reader without a group commits nothing and disturbs no service's consumers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer

from fixloop_shared.settings import KafkaSettings


@dataclass(frozen=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.value or b"null")


async def read_topic(
    bootstrap: str | KafkaSettings,
    topic: str,
    *,
    until: Callable[[list[ConsumedRecord]], bool] | None = None,
    timeout: float = 10.0,
) -> list[ConsumedRecord]:
    """Read a topic from the start (no consumer group) until ``until`` holds or time runs out.

    ``bootstrap`` is a broker address (no credentials) or the settings of a secured cluster."""
    kafka = KafkaSettings(bootstrap=bootstrap) if isinstance(bootstrap, str) else bootstrap
    consumer = AIOKafkaConsumer(
        topic,
        **kafka.client_options(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    records: list[ConsumedRecord] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                records.extend(
                    ConsumedRecord(
                        topic=m.topic,
                        partition=m.partition,
                        offset=m.offset,
                        key=m.key,
                        value=m.value,
                        headers={k: v.decode(errors="replace") for k, v in (m.headers or ())},
                    )
                    for m in msgs
                )
            if until is not None and until(records):
                break
    finally:
        await consumer.stop()
    return records
