"""Repeated identical errors logged with a rate limit: the first at once, then a count per window.

A store or broker that is down makes every retry fail the same way; a line per retry fills the
disk and hides everything else. :class:`ThrottledLog` writes the first occurrence of a key, counts
the repeats, and writes one summary line per window while they go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Seen:
    window_started: float
    suppressed: int = 0


@dataclass
class ThrottledLog:
    """Log each ``key`` at most once per ``every_seconds``, counting what it held back."""

    logger: logging.Logger
    every_seconds: float = 30.0
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 1024
    _seen: dict[str, _Seen] = field(default_factory=dict)

    def log(
        self, level: int, key: str, message: str, *, extra: dict[str, Any] | None = None
    ) -> bool:
        """Write the line (returns True) or count it as a repeat (returns False)."""
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen.window_started < self.every_seconds:
            seen.suppressed += 1
            return False
        fields = dict(extra or {})
        if seen is not None and seen.suppressed:
            fields["repeated"] = seen.suppressed
            fields["repeated_within_seconds"] = round(now - seen.window_started, 1)
        if len(self._seen) >= self.max_keys and key not in self._seen:
            self._seen.pop(next(iter(self._seen)))
        self._seen[key] = _Seen(window_started=now)
        self.logger.log(level, message, extra=fields)
        return True

    def warning(self, key: str, message: str, *, extra: dict[str, Any] | None = None) -> bool:
        return self.log(logging.WARNING, key, message, extra=extra)

    def error(self, key: str, message: str, *, extra: dict[str, Any] | None = None) -> bool:
        return self.log(logging.ERROR, key, message, extra=extra)

    def resolved(self, key: str) -> None:
        """Forget ``key``: the next failure of its kind is news again."""
        self._seen.pop(key, None)
