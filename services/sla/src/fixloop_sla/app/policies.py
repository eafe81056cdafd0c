"""The policies the engine settles with: the active one for new cycles, every version pinned.

The shelf starts with the standard policy and is refilled from the store (every version, the
active one last) at start-up and then now and then, so an imported policy applies to cycles that
start after it, without a restart, and cycles already running keep the version they pinned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from fixloop_sla.domain import PolicyBook, SlaPolicy, standard_policy

log = logging.getLogger(__name__)


class PolicyShelf:
    def __init__(self, policies: Sequence[SlaPolicy] = ()) -> None:
        self._book = PolicyBook.of(policies or [standard_policy()])

    def book(self) -> PolicyBook:
        return self._book

    def fill(self, policies: Sequence[SlaPolicy]) -> None:
        if not policies:
            return
        book = PolicyBook.of(policies)
        if book.active != self._book.active:
            log.info(
                "SLA policy in force",
                extra={"policy": book.active.name, "version": book.active.version},
            )
        self._book = book

    async def keep_filled(
        self, load: Callable[[], Awaitable[Sequence[SlaPolicy]]], every_seconds: float
    ) -> None:
        """Refill from ``load`` every ``every_seconds`` until cancelled (failures are logged)."""
        while True:
            await asyncio.sleep(every_seconds)
            try:
                self.fill(await load())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning(
                    "reading the SLA policies failed; keeping those in force", exc_info=True
                )
