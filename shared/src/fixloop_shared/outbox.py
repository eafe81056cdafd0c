"""The outbox relay: publishes committed outbox records in order and marks them sent.

A crash between publishing and marking re-publishes on restart (at-least-once; consumers are
idempotent). Nothing is published that was not committed, because only committed records are read.
Sent records are kept for ``retention_seconds`` (for inspection), then pruned, so the outbox
stays small and reading the pending records stays cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from opentelemetry import context as otel_context
from opentelemetry.propagate import extract

from fixloop_shared.store import OUTBOX, Document, Store

log = logging.getLogger(__name__)

PENDING: dict[str, object] = {"published": False}
"""Filter of unpublished records (a boolean flag: it indexes and counts the same everywhere)."""

Publish = Callable[[str, bytes, str, Mapping[str, str]], Awaitable[None]]
"""publish(topic, value, key, headers) — resolves once the broker acknowledged the record."""


class OutboxRelay:
    def __init__(
        self,
        store: Store,
        publish: Publish,
        *,
        poll_seconds: float = 0.2,
        batch_size: int = 200,
        retention_seconds: float = 60.0,
        prune_every_seconds: float = 10.0,
    ) -> None:
        self._store = store
        self._publish = publish
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._retention_ms = int(retention_seconds * 1000)
        self._prune_every = prune_every_seconds
        self._last_prune = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.published_total = 0
        store.on_commit(self.wake)

    def wake(self) -> None:
        self._wake.set()

    async def pending_count(self) -> int:
        return await self._store.db[OUTBOX].count_documents(PENDING)

    async def oldest_pending_age_seconds(self) -> float:
        doc = await self._store.db[OUTBOX].find_one(
            PENDING, sort=[("seq", 1)], projection={"created_at": 1}
        )
        if doc is None:
            return 0.0
        created: datetime = doc["created_at"]
        return max(0.0, (datetime.now(UTC) - created).total_seconds())

    async def drain(self) -> int:
        """Publish every pending record, oldest first; returns how many were published."""
        published = 0
        while True:
            docs = (
                await self._store.db[OUTBOX]
                .find(PENDING)
                .sort([("seq", 1)])
                .limit(self._batch_size)
                .to_list()
            )
            if not docs:
                return published
            for doc in docs:
                await self._publish_one(doc)
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

    async def prune(self) -> int:
        """Delete sent records older than the retention; returns how many were deleted."""
        cutoff = _now_ms() - self._retention_ms
        async with self._store.exclusive():
            result = await self._store.db[OUTBOX].delete_many(
                {"published": True, "published_at_ms": {"$lt": cutoff}}
            )
        return result.deleted_count

    async def _publish_one(self, doc: Document) -> None:
        headers: dict[str, str] = dict(doc["headers"])
        parent = (
            extract({"traceparent": headers["traceparent"]}) if "traceparent" in headers else None
        )
        token = otel_context.attach(parent) if parent is not None else None
        try:
            await self._publish(doc["topic"], doc["value"].encode(), doc["key"], headers)
        finally:
            if token is not None:
                otel_context.detach(token)

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.drain()
                if time.monotonic() - self._last_prune >= self._prune_every:
                    self._last_prune = time.monotonic()
                    await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(min(5.0, self._poll_seconds * 10))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"outbox-relay-{self._store.service}")

    async def stop(self, *, flush_timeout: float = 10.0) -> None:
        """Stop the loop, then publish what is still pending (bounded by ``flush_timeout``)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await asyncio.wait_for(self.drain(), timeout=flush_timeout)
        except Exception:  # noqa: BLE001 - whatever is left is published after the restart
            log.warning("outbox not fully flushed at shutdown; the next start publishes the rest")


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)
