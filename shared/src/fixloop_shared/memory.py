"""The in-memory unit of work: the same contract as the MongoDB one, for pure tests of use cases.

A :class:`MemoryStore` keeps named collections of documents, the processed-event claims and the
outbox. A unit of work works on a copy of them (its ``session``) and replaces the originals when
it commits, so a unit of work that fails leaves nothing behind — like a MongoDB transaction.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fixloop_shared.contracts import EventPayload
from fixloop_shared.envelope import EventEnvelope
from fixloop_shared.store import ClaimedAlready, OutgoingEvent, UnitOfWorkClosedError

Documents = dict[str, dict[str, Any]]


@dataclass
class MemoryState:
    """What a :class:`MemoryStore` holds; a unit of work changes a copy of it."""

    collections: dict[str, Documents] = field(default_factory=dict)
    claims: set[tuple[str, str]] = field(default_factory=set)
    outbox: list[OutgoingEvent] = field(default_factory=list)

    def collection(self, name: str) -> Documents:
        return self.collections.setdefault(name, {})


@dataclass
class MemoryUnitOfWork:
    """The :class:`fixloop_shared.kernel.UnitOfWork` in memory; ``session`` is its working copy."""

    service: str
    session: MemoryState
    _emitted: list[OutgoingEvent] = field(default_factory=list)
    _after_commit: list[Callable[[], None]] = field(default_factory=list)
    _claims_at_commit: list[tuple[EventEnvelope, str]] = field(default_factory=list)
    duplicate: bool = False
    memo: dict[object, object] = field(default_factory=dict)

    async def claim(self, envelope: EventEnvelope, *, consumer: str | None = None) -> bool:
        """Like MongoDB's: a claim found already makes the whole unit of work a no-op."""
        key = (consumer or self.service, envelope.id)
        if key in self.session.claims:
            self.duplicate = True
            return False
        self.session.claims.add(key)
        return True

    def claim_at_commit(self, envelope: EventEnvelope, *, consumer: str | None = None) -> None:
        """Like MongoDB's: checked and recorded when the unit of work commits."""
        self._claims_at_commit.append((envelope, consumer or self.service))

    async def claim_all(self, claims: Sequence[tuple[EventEnvelope, str]]) -> None:
        """Like MongoDB's: all of them or, if one is recorded already, an error."""
        keys = [(consumer, envelope.id) for envelope, consumer in claims]
        if any(key in self.session.claims for key in keys) or len(set(keys)) < len(keys):
            msg = "an event of the batch was processed already"
            raise ClaimedAlready(msg)
        self.session.claims.update(keys)

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
        if self.duplicate:
            msg = "cannot emit from a unit of work whose event was already processed"
            raise UnitOfWorkClosedError(msg)
        event = OutgoingEvent.of(
            payload,
            source=self.service,
            topic=topic,
            key=key,
            tenant=tenant,
            correlationid=correlationid,
            subject=subject,
        )
        self._emitted.append(event)
        return event.envelope

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    @property
    def emitted(self) -> Sequence[OutgoingEvent]:
        return tuple(self._emitted)


class MemoryStore:
    """A service's store in memory: :class:`fixloop_shared.kernel.UnitsOfWork` for tests."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.state = MemoryState()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryUnitOfWork]:
        uow = MemoryUnitOfWork(self.service, copy.deepcopy(self.state))
        yield uow
        if uow.duplicate:
            return
        await uow.claim_all(uow._claims_at_commit)
        uow.session.outbox.extend(uow.emitted)
        self.state = uow.session
        for callback in uow._after_commit:
            callback()

    async def already_claimed(self, claims: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        return {claim for claim in claims if claim in self.state.claims}

    @property
    def outbox(self) -> list[OutgoingEvent]:
        return list(self.state.outbox)


def memory_store(units: object) -> MemoryStore:
    """The :class:`MemoryStore` behind ``units`` (what a composition root was given as its unit of
    work): the in-memory repositories keep their documents in its state."""
    if not isinstance(units, MemoryStore):
        msg = f"the in-memory repositories need a MemoryStore, not {type(units).__name__}"
        raise TypeError(msg)
    return units


__all__ = ["MemoryState", "MemoryStore", "MemoryUnitOfWork", "memory_store"]
