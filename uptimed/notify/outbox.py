"""Delivers the outbox: per webhook URL one worker, strictly oldest message first.

A check only writes its message row (in the transition's transaction) and calls ``wake()``;
delivery happens here, in the daemon's event loop, so a slow or failing Discord delays no check.

Per message, under tenacity: 2xx -> marked delivered at once (only the POST is retried, never
"send and mark"); 429 -> wait ``retry_after`` (a global 429 pauses every worker); 5xx, timeouts
and connection errors -> exponential backoff with jitter until ``give_up_after`` seconds from
when the message was queued, then failed; 4xx such as 404/401 -> failed at once. A message
blocks the ones behind it on the same URL, so a recovery never overtakes its down alert.
After a 2xx that leaves ``X-RateLimit-Remaining: 0`` the worker waits ``Reset-After`` first.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential_jitter,
)

from uptimed.clock import Clock
from uptimed.db import Store
from uptimed.models import OutboxMessage
from uptimed.notify import Delivery, Notifier, NotifyError

log = logging.getLogger(__name__)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, NotifyError) and not exc.permanent


class Dispatcher:
    """Owns the delivery tasks; ``start()`` inside the loop, ``wake()`` after queuing, ``stop()``.

    Keyword arguments: ``timeout`` per POST, ``give_up_after`` seconds a message may keep failing
    transiently, ``backoff_initial`` / ``backoff_max`` seconds between tries.
    """

    def __init__(
        self,
        store: Store,
        session: aiohttp.ClientSession,
        notifier: Notifier,
        *,
        clock: Clock,
        timeout: float,
        give_up_after: float,
        backoff_initial: float,
        backoff_max: float,
    ) -> None:
        self._store = store
        self._session = session
        self._notifier = notifier
        self._clock = clock
        self._timeout = timeout
        self._give_up_after_ms = give_up_after * 1000
        self._backoff = wait_exponential_jitter(multiplier=backoff_initial, max=backoff_max)
        self._wake = asyncio.Event()
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._more: set[str] = set()  # URLs woken while their worker was already running
        self._global_pause_until = 0.0  # monotonic time before which nothing is sent
        self._main: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._wake.set()  # deliver whatever a previous run left pending
        self._main = asyncio.create_task(self._run(), name="outbox")

    def wake(self) -> None:
        """New messages were committed; called by the monitor and the API, never blocks."""
        self._wake.set()

    async def stop(self) -> None:
        tasks = [t for t in (self._main, *self._workers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                urls = await self._store.pending_urls()
            except Exception:
                log.exception("outbox scan failed")
                continue
            for url in urls:
                if url in self._workers:
                    self._more.add(url)
                else:
                    self._workers[url] = asyncio.create_task(self._drain(url), name="outbox-url")

    async def _drain(self, url: str) -> None:
        try:
            while True:
                self._more.discard(url)
                message = await self._store.next_message(url)
                if message is None:
                    if url in self._more:
                        continue
                    return
                await self._deliver(message)
        except Exception:
            log.exception("outbox worker failed; it restarts on the next wake-up")
        finally:
            self._workers.pop(url, None)

    async def _deliver(self, message: OutboxMessage) -> None:
        retrying = AsyncRetrying(
            retry=retry_if_exception(_transient),
            wait=self._wait,
            stop=lambda state: self._expired(message, state),
            before_sleep=self._note_attempt(message),
            reraise=True,
        )
        try:
            delivery = await retrying(self._send, message)
        except NotifyError as e:
            await self._store.mark_failed(message, self._clock.now_ms(), str(e))
            log.warning("message failed id=%d error=%r", message.id, str(e))
            return
        await self._store.mark_delivered(message, self._clock.now_ms())
        log.info("message delivered id=%d status=%d", message.id, delivery.status)
        if delivery.remaining == 0 and delivery.reset_after:
            await asyncio.sleep(delivery.reset_after)  # the bucket is empty: don't earn a 429

    async def _send(self, message: OutboxMessage) -> Delivery:
        pause = self._global_pause_until - self._clock.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        return await self._notifier.send(
            self._session, message.url, message.payload, timeout=self._timeout
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, NotifyError) and exc.retry_after is not None:
            if exc.is_global:
                self._global_pause_until = self._clock.monotonic() + exc.retry_after
            return exc.retry_after
        return float(self._backoff(state))

    def _expired(self, message: OutboxMessage, state: RetryCallState) -> bool:
        return self._clock.now_ms() - message.created_at >= self._give_up_after_ms

    def _note_attempt(self, message: OutboxMessage):  # type: ignore[no-untyped-def]
        async def note(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            await self._store.mark_attempt(message, str(exc))
            log.info(
                "message retry id=%d attempt=%d error=%r",
                message.id,
                state.attempt_number,
                str(exc),
            )

        return note
