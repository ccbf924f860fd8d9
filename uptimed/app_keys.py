"""Typed keys for everything the running app holds; handlers import these, not the factory."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from uptimed.config import Settings
from uptimed.db import Store
from uptimed.monitor import Monitor
from uptimed.scheduler import Scheduler


@dataclass(frozen=True)
class Clock:
    """Time, injectable so tests can move it: ``now`` is epoch seconds (what rows record),
    ``monotonic`` measures intervals (rate-limit windows) and never jumps with NTP."""

    now: Callable[[], float] = field(default=time.time)
    monotonic: Callable[[], float] = field(default=time.monotonic)

    def now_ms(self) -> int:
        return int(self.now() * 1000)


SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
STORE = web.AppKey("store", Store)
HTTP = web.AppKey("http", aiohttp.ClientSession)
MONITOR = web.AppKey("monitor", Monitor)
SCHEDULER = web.AppKey("scheduler", Scheduler)
