"""Per-minute and per-hour request limits with YouSign's headers.

Fixed windows aligned to the emulator's start (window n covers [start + n*L, start + (n+1)*L)), like Kong's
rate-limiting plugin that produces these header names. Rejected (429) requests are not counted: YouSign does
not say, and not counting them means a client that waits Retry-After always gets through.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

# Header value for an unlimited window: headers are declared as integers on every response.
UNLIMITED = 1_000_000


class FixedWindow:
    def __init__(self, limit: int | None, length: float, origin: float) -> None:
        self.limit = limit
        self.length = length
        self.origin = origin
        self._index = 0
        self.count = 0

    def _roll(self, now: float) -> None:
        index = int((now - self.origin) // self.length)
        if index != self._index:
            self._index, self.count = index, 0

    def is_full(self, now: float) -> bool:
        self._roll(now)
        return self.limit is not None and self.count >= self.limit

    def take(self, now: float) -> None:
        self._roll(now)
        self.count += 1

    def remaining(self, now: float) -> int:
        self._roll(now)
        return UNLIMITED if self.limit is None else max(0, self.limit - self.count)

    def reset_in(self, now: float) -> float:
        """Seconds until this window ends (and a new, empty one starts)."""
        self._roll(now)
        return self.origin + (self._index + 1) * self.length - now


@dataclass
class Decision:
    allowed: bool
    headers: dict[str, str]
    retry_after: int | None = None


class RateLimiter:
    def __init__(
        self,
        per_minute: int | None,
        per_hour: int | None,
        minute_seconds: float = 60.0,
        hour_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        origin = clock()
        self.minute = FixedWindow(per_minute, minute_seconds, origin)
        self.hour = FixedWindow(per_hour, hour_seconds, origin)

    def acquire(self) -> Decision:
        """Count one request if both windows have room; otherwise say how long to wait."""
        now = self._clock()
        full = [w for w in (self.minute, self.hour) if w.is_full(now)]
        if full:
            wait = max(w.reset_in(now) for w in full)
            retry_after = max(1, math.ceil(wait))
            headers = self._headers(now)
            headers["Retry-After"] = str(retry_after)
            return Decision(False, headers, retry_after)
        self.minute.take(now)
        self.hour.take(now)
        return Decision(True, self._headers(now))

    def peek_headers(self) -> dict[str, str]:
        return self._headers(self._clock())

    def _headers(self, now: float) -> dict[str, str]:
        minute_left, hour_left = self.minute.remaining(now), self.hour.remaining(now)
        # RateLimit-* describe the window that will run out first.
        tightest = self.hour if hour_left < minute_left else self.minute
        return {
            "RateLimit-Limit": str(tightest.limit if tightest.limit is not None else UNLIMITED),
            "RateLimit-Remaining": str(tightest.remaining(now)),
            "RateLimit-Reset": str(max(1, math.ceil(tightest.reset_in(now)))),
            "X-RateLimit-Limit-Minute": str(
                self.minute.limit if self.minute.limit is not None else UNLIMITED
            ),
            "X-RateLimit-Remaining-Minute": str(minute_left),
            "X-RateLimit-Limit-Hour": str(self.hour.limit if self.hour.limit is not None else UNLIMITED),
            "X-RateLimit-Remaining-Hour": str(hour_left),
        }
