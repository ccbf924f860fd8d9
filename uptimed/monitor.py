"""One check cycle: check the site, decide the transition, write both in one transaction.

``Monitor`` keeps each site's current state in memory (loaded from the store at start, changed
only after a commit), so a check costs one write and no read. Checks of one site never overlap
(the scheduler runs one instance per site), which is what makes that cache safe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import aiohttp

from uptimed.alerting import event_for, next_state
from uptimed.batching import CheckBatcher
from uptimed.checker import check_site
from uptimed.db import Store
from uptimed.models import Site, SiteState, Status
from uptimed.notify.discord import build_payload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckSessions:
    """The checks' HTTP sessions; ``keep_alive`` is the default a site's own setting overrides."""

    fresh: aiohttp.ClientSession
    pooled: aiohttp.ClientSession
    keep_alive: bool = False

    def for_site(self, site: Site) -> aiohttp.ClientSession:
        keep_alive = self.keep_alive if site.keep_alive is None else site.keep_alive
        return self.pooled if keep_alive else self.fresh


class Monitor:
    """Runs checks; ``states`` maps site id to its current state and drops deleted sites.

    Keyword arguments: ``timeout`` per request in seconds, ``retries`` extra tries on network
    errors, ``max_concurrent`` checks in flight at once, ``append_unchanged`` False for
    ``OPTIMISATION=1``, ``flush_seconds`` between batched history writes (see batching.py),
    ``clock`` returns epoch seconds, ``on_message`` is called after a
    transition's messages are committed (it wakes the outbox; it must not block).
    """

    def __init__(
        self,
        store: Store,
        sessions: CheckSessions,
        *,
        timeout: float,
        retries: int,
        max_concurrent: int,
        append_unchanged: bool,
        flush_seconds: float = 0.1,
        clock: Callable[[], float] = time.time,
        on_message: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._batcher = CheckBatcher(
            store, flush_seconds=flush_seconds, append_unchanged=append_unchanged
        )
        self._sessions = sessions
        self._timeout = timeout
        self._retries = retries
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._append_unchanged = append_unchanged
        self._clock = clock
        self._on_message = on_message
        self._inflight: set[asyncio.Task[object]] = set()
        self._stopping = False
        self.states: dict[int, SiteState] = {}

    def start(self) -> None:
        self._batcher.start()

    def add(self, site: Site) -> None:
        self.states[site.id] = SiteState(status=Status.INITIAL, since=site.created_at)

    def remove(self, site_id: int) -> None:
        self.states.pop(site_id, None)

    async def run_check(self, site: Site) -> None:
        """The scheduler's job; it logs and swallows errors so one bad site stops nothing."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self._check_and_record(site)
        except asyncio.CancelledError:
            # drain() cancels checks on purpose at a stop; it logs them in one line. Ending
            # normally keeps APScheduler from logging each one as a failed job.
            if not self._stopping:
                raise
        except Exception:
            log.exception("check failed site=%d", site.id)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _check_and_record(self, site: Site) -> None:
        async with self._semaphore:
            result = await check_site(
                self._sessions.for_site(site),
                site,
                timeout=self._timeout,
                retries=self._retries,
                clock=self._clock,
            )
        previous = self.states.get(site.id)
        if previous is None:  # deleted while it was being checked
            return
        if result.checked_at <= previous.since:  # (site, time) is the row's key: keep it unique
            result = replace(result, checked_at=previous.since + 1)
        state, transition = next_state(site.id, previous, result)
        if transition is None:
            self._batcher.add(site.id, result, state)
        else:
            # Rows batched before this transition go first: the order of a site's rows holds.
            await self._batcher.flush()
            message = json.dumps(build_payload(event_for(site, transition)))
            written = await self._store.record_check(
                site.id,
                result,
                state,
                transition,
                append_unchanged=self._append_unchanged,
                message=message,
            )
            if written and site.id in self.states:
                self.states[site.id] = state
            if written:
                self._on_message()
        if transition is not None:
            log.info(
                "transition site=%d %s->%s reason=%r rtt_ms=%d",
                site.id,
                transition.previous,
                transition.current,
                result.reason,
                result.response_time_ms,
            )
        elif log.isEnabledFor(logging.DEBUG):
            log.debug(
                "check site=%d status=%s reason=%r rtt_ms=%d",
                site.id,
                result.status,
                result.reason,
                result.response_time_ms,
            )

    async def drain(self, grace: float) -> None:
        """Let checks in flight finish for up to ``grace`` seconds, cancel the rest, and write
        every batched row."""
        self._stopping = True
        pending = {t for t in self._inflight if not t.done()}
        still: set[asyncio.Task[object]] = set()
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still)
        await self._batcher.close()
        log.info(
            "shutdown checks_finished=%d checks_cancelled=%d", len(pending) - len(still), len(still)
        )
