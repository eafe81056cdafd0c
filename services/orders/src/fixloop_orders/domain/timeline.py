"""Timeline facts: what happened to a work order, ready to become a timeline entry.

A fact names the work order it concerns, when it happened, a one-line summary for people, and a
flat ``details`` map of strings for machines. Times in summaries are UTC, with the date only when
it differs from the event's own day (:func:`utc_clock`). Which event says what is mapped at the
app edge (:mod:`fixloop_orders.app.timeline_facts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class TimelineFact:
    """Something that happened to a work order, ready to become a timeline entry."""

    work_order_id: str
    kind: str
    at: datetime
    summary: str
    details: Mapping[str, str]


def utc_clock(moment: datetime, *, reference: datetime | None = None) -> str:
    """``14:30 UTC``, or ``2026-03-03 14:30 UTC`` when the day differs from ``reference``'s."""
    at = moment.astimezone(UTC)
    if reference is not None and reference.astimezone(UTC).date() == at.date():
        return at.strftime("%H:%M UTC")
    return at.strftime("%Y-%m-%d %H:%M UTC")


__all__ = ["TimelineFact", "utc_clock"]
