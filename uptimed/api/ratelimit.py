"""Sliding-window counters for the per-user rate limit and the per-IP login-failure limit.

Exact (a log of timestamps per key, at most ``limit`` long) and clock-injected for tests.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

_SWEEP_EVERY = 1024


class SlidingWindow:
    """At most ``limit`` events per ``window`` seconds per key."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._calls = 0

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        return events

    def retry_after(self, key: str) -> int:
        """0 if another event is allowed now, else whole seconds until one is."""
        now = self._clock()
        events = self._recent(key, now)
        if len(events) < self.limit:
            return 0
        return max(1, math.ceil(events[0] + self.window - now))

    def hit(self, key: str) -> None:
        now = self._clock()
        events = self._recent(key, now)
        events.append(now)
        if len(events) > self.limit:
            events.popleft()
        self._calls += 1
        if self._calls % _SWEEP_EVERY == 0:
            self._sweep(now)

    def hit_if_allowed(self, key: str) -> int:
        """Count the event if allowed and return 0, else return the seconds to wait."""
        wait = self.retry_after(key)
        if not wait:
            self.hit(key)
        return wait

    def _sweep(self, now: float) -> None:
        """Forget keys with no recent events, so scanners cannot grow memory without bound."""
        stale = [k for k, ev in self._events.items() if not ev or ev[-1] <= now - self.window]
        for key in stale:
            del self._events[key]
