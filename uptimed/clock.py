"""Time, injectable so tests can move it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Clock:
    """``now`` is epoch seconds (what rows record); ``monotonic`` measures intervals
    (rate-limit windows, pauses) and never jumps with NTP."""

    now: Callable[[], float] = field(default=time.time)
    monotonic: Callable[[], float] = field(default=time.monotonic)

    def now_ms(self) -> int:
        return int(self.now() * 1000)
