"""Messages that come due with time rather than with a check: a reminder while a site stays
DOWN (``renotify_every_seconds``), and the status a mute kept quiet once it ends
(``alerts_muted_until``). The store says what is due, from the database, so a restart neither
skips nor doubles one; each is queued in the transaction that notes it sent."""

from __future__ import annotations

from collections.abc import Callable

from uptimed.alerting import reminder_event, unmuted_event
from uptimed.clock import Clock
from uptimed.db import Store

PAGE = 500  # sites read at a time


class Followups:
    """``run`` is the scheduler's periodic job (every few seconds)."""

    def __init__(
        self, store: Store, *, clock: Clock, wake: Callable[[], None], page: int = PAGE
    ) -> None:
        self._store = store
        self._page = page
        self._clock = clock
        self._wake = wake  # the outbox: a message was queued

    async def run(self) -> int:
        """Queue every due message, a page at a time (10,000 sites down at once must not all
        be in memory at once); returns how many."""
        now = self._clock.now_ms()
        queued = 0
        after = 0
        while page := await self._store.due_reminders(now, after=after, limit=self._page):
            for due in page:
                event = reminder_event(due.site, due.down_since, due.reason, now)
                message = event.model_dump_json()
                queued += await self._store.record_reminder(due, message, now)
            after = page[-1].incident_id
        after = 0
        while page := await self._store.untold(now, after=after, limit=self._page):
            for untold in page:
                event = unmuted_event(untold.site, untold.state, now)
                message = event.model_dump_json()
                queued += await self._store.record_told(untold, message, now)
            after = page[-1].site.id
        if queued:
            self._wake()
        return queued
