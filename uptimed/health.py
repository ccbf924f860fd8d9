"""What the daemon knows is wrong with itself, for ``/healthz`` and the log.

A monitor that cannot write its database, has run out of descriptors or lost its file still
answers HTTP; that is exactly when ``/healthz`` must say so (503 with the reasons), so that a
container runtime or systemd watchdog can act. Each problem has a name (one per cause, so a
cause is reported once, not once per check) and is either cleared by the code that saw it
(``ok``) or, for faults seen only while they happen, expires ``ttl`` seconds after it was last
reported.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Problem:
    detail: str
    seen: float  # monotonic time it was last reported
    ttl: float | None
    count: int = 1


class Health:
    """Current problems by name. ``fail`` logs a problem when it begins (and each time its
    detail changes), ``ok`` logs its end; repeats in between are counted, not logged."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._problems: dict[str, _Problem] = {}

    def fail(self, name: str, detail: str, *, ttl: float | None = None) -> None:
        now = self._monotonic()
        problem = self._live(name, now)
        if problem is not None and problem.detail == detail:
            problem.seen, problem.count = now, problem.count + 1
            return
        self._problems[name] = _Problem(detail, now, ttl)
        log.error("health: %s: %s", name, detail)

    def ok(self, name: str) -> None:
        problem = self._problems.pop(name, None)
        if problem is not None:
            log.warning("health: %s recovered after %d occurrence(s)", name, problem.count)

    def problems(self) -> list[str]:
        """``"name: detail"`` for each current problem, oldest name first."""
        now = self._monotonic()
        return [
            f"{name}: {p.detail}"
            for name in list(self._problems)
            if (p := self._live(name, now)) is not None
        ]

    def _live(self, name: str, now: float) -> _Problem | None:
        problem = self._problems.get(name)
        if problem is not None and problem.ttl is not None and now - problem.seen > problem.ttl:
            del self._problems[name]
            log.warning("health: %s not seen for %gs, cleared", name, problem.ttl)
            return None
        return problem


DATABASE_WATCH_SECONDS = 2.0


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


async def watch_database_file(
    path: Path, health: Health, *, interval: float = DATABASE_WATCH_SECONDS
) -> None:
    """Report the database file gone or replaced while uptimed has it open.

    SQLite keeps writing to an open file after it was deleted (``rm -rf`` of its directory, a
    volume unmounted under it): every answer looks fine and everything is lost at the next
    start. Nothing fails, so nothing else would notice; this compares the path's device and
    inode with those it had at start, every ``interval`` seconds."""
    opened = _identity(path)
    while True:
        await asyncio.sleep(interval)
        if _identity(path) == opened:
            health.ok("database_file")
        else:
            health.fail(
                "database_file",
                f"{path} was deleted or replaced while open: what uptimed writes now is lost"
                " at its next start; restore the file (or stop uptimed) now",
            )
