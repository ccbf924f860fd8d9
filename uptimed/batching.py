"""Batches the history rows of checks that changed nothing, one transaction per interval.

At thousands of checks a second a transaction per check costs more than the check. Checks that
change a status do not wait here: the monitor flushes this batch and then writes the transition,
its history row and its messages in one transaction of their own. So a SIGKILL can lose at most
the rows of the last interval (``flush_seconds``), never a transition or a pending message; a
SIGTERM loses nothing (``close`` flushes).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from uptimed.db import Store
from uptimed.db.history import HistoryValues, history_values
from uptimed.health import Health
from uptimed.metrics import Metrics
from uptimed.models import CheckResult, SiteState, Status

log = logging.getLogger(__name__)

MAX_PENDING = 200_000  # rows kept while the disk refuses writes, before the oldest are dropped


class CheckBatcher:
    """``add`` never waits; ``start`` runs the flush loop, ``flush`` writes now, ``close`` ends."""

    def __init__(
        self,
        store: Store,
        *,
        flush_seconds: float,
        append_unchanged: bool,
        health: Health | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        metrics = metrics or Metrics(process=False)
        self._rows_written = metrics.history_rows.inc
        self._rows_updated = metrics.history_updates.inc
        self._health = health or Health()
        self._interval = flush_seconds
        self._append = append_unchanged
        self._rows: list[HistoryValues] = []
        self._in_place: list[tuple[int, int, str | None, int]] = []
        self._failed: list[int] = []
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def add(
        self, site_id: int, result: CheckResult, state: SiteState, *, append: bool = False
    ) -> None:
        """``append``: a row of its own even with ``append_unchanged`` off."""
        if self._append or append:
            self._rows.append(history_values(site_id, result, state))
        else:
            self._in_place.append(
                (result.response_time_ms, result.checked_at, result.reason, site_id)
            )
        if result.status is Status.DOWN:
            self._failed.append(site_id)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="history-batches")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def flush(self) -> None:
        """Write what is pending; on a write error keep it for the next try (bounded)."""
        async with self._lock:
            rows, in_place, failed = self._rows, self._in_place, self._failed
            if not (rows or in_place or failed):
                return
            self._rows, self._in_place, self._failed = [], [], []
            try:
                await self._store.write_checks(rows, in_place, failed)
            except Exception as e:
                # Said once (Health logs a problem when it begins), not every 0.1 s.
                self._health.fail("history", f"history rows cannot be written: {e}")
                self._rows = (rows + self._rows)[-MAX_PENDING:]
                self._in_place = (in_place + self._in_place)[-MAX_PENDING:]
                self._failed = (failed + self._failed)[-MAX_PENDING:]
            else:
                self._health.ok("history")
                if rows:
                    self._rows_written(len(rows))
                if in_place:
                    self._rows_updated(len(in_place))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
