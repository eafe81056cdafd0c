"""The platform's shared vocabulary: the enumerations the domain and the wire both speak.

Plain :class:`~enum.StrEnum` values with no framework behind them, so a service's domain can
use them without depending on the wire contracts. The contracts import them from here (and
``fixloop_shared.contracts`` re-exports them), so both sides always mean the same values.
"""

from __future__ import annotations

from enum import StrEnum


class Priority(StrEnum):
    EMERGENCY = "emergency"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Category(StrEnum):
    BREAKDOWN = "breakdown"
    PREVENTIVE = "preventive"
    INSPECTION = "inspection"
    INSTALLATION = "installation"
    SAFETY = "safety"


class Milestone(StrEnum):
    DISPATCH_CONFIRMATION = "dispatch_confirmation"


class Channel(StrEnum):
    EMAIL = "email"


__all__ = ["Category", "Channel", "Milestone", "Priority"]
