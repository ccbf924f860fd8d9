"""Delivers the outbox: per webhook URL one worker, strictly oldest message first.

A check only writes its message row (in the transition's transaction) and calls ``wake()``;
delivery happens here, in the daemon's event loop, so a slow or failing Discord delays no check.

Per message, under tenacity: 2xx -> marked delivered (only the POST is retried, never
"send and mark"); 429 -> wait ``retry_after`` (a global 429 pauses every worker); 5xx, timeouts
and connection errors -> exponential backoff with jitter until ``give_up_after`` seconds from
when the message was queued, then failed; 4xx such as 404/401 -> failed at once. A message
blocks the ones behind it on the same URL, so a recovery never overtakes its down alert.
After a 2xx that leaves ``X-RateLimit-Remaining: 0`` the worker waits ``Reset-After`` first.

What Discord asks to wait is believed only within bounds (``_Attempts.wait``): never less
than the backoff for that attempt, never more than ``backoff_max`` for a global limit (it
stops every webhook) nor past the message's give-up time; an odd value is logged and shown
in ``last_error``.

Nothing here depends on a later wake-up, and no worker dies of an exception:

* the writes that decide what is sent (delivered, failed) are retried until they land, so a
  message Discord accepted is never POSTed again because ``database is locked`` for a while;
  the note of a failed attempt (``last_error``) is written once, and if that fails it is logged
  and the retry goes on: a write problem never holds back a delivery;
* an unexpected error is logged and its message retried like a 5xx;
* the outbox is scanned again every ``min(backoff_max, RESCAN_MAX)`` seconds without a wake-up.

Deleting a webhook drops its pending rows (``Store.delete_webhook``) and calls ``dropped()``:
a worker checks its message is still pending before every POST and after any wait, and stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from uptimed.clock import Clock
from uptimed.db import Store
from uptimed.models import OutboxMessage
from uptimed.notify import Delivery, Notifier, NotifyError
from uptimed.notify.unwritten import UnwrittenAlerts

log = logging.getLogger(__name__)

RESCAN_MAX = 30.0  # seconds between scans of the outbox when nothing wakes the dispatcher
RESET_AFTER_MAX = 60.0  # seconds; Discord's webhook buckets refill within a few
STOP_MARGIN = 1.0  # seconds beyond the POST timeout a stop waits to record a POST in flight


class _Dropped(Exception):
    """The message is no longer pending (its webhook was deleted): stop, send nothing."""


def _retryable(exc: BaseException) -> bool:
    """5xx, 429 and network errors; also a bug, which must not end the worker. Never a
    cancellation (a BaseException, which tenacity hands to this predicate too)."""
    if isinstance(exc, NotifyError):
        return not exc.permanent
    return isinstance(exc, Exception) and not isinstance(exc, _Dropped)


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, NotifyError) else f"{type(exc).__name__}: {exc}"


def _who(message: OutboxMessage) -> str:
    """How every delivery log line names its message: site, webhook and message ids."""
    site = "-" if message.site_id is None else message.site_id
    hook = "-" if message.webhook_id is None else message.webhook_id
    return f"site={site} webhook={hook} message={message.id}"


class Dispatcher:
    """Owns the delivery tasks; ``start()`` inside the loop, ``wake()`` after queuing, ``stop()``.

    Keyword arguments: ``timeout`` per POST, ``give_up_after`` seconds a message may keep failing
    transiently, ``backoff_initial`` / ``backoff_max`` seconds between tries (``backoff_max``
    also caps a global rate limit's pause and the interval of the outbox scan).
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
        unwritten: UnwrittenAlerts | None = None,
    ) -> None:
        self._store = store
        self._unwritten = UnwrittenAlerts() if unwritten is None else unwritten
        self._session = session
        self._notifier = notifier
        self._clock = clock
        self._timeout = timeout
        self._give_up_after = give_up_after
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._backoff = wait_exponential_jitter(multiplier=backoff_initial, max=backoff_max)
        self._rescan = min(backoff_max, RESCAN_MAX)
        self._wake = asyncio.Event()
        self._drop_signal = asyncio.Event()  # replaced each time it is set
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._more: set[str] = set()  # URLs woken while their worker was already running
        self._global_pause_until = 0.0  # monotonic time before which nothing is sent
        self._main: asyncio.Task[None] | None = None
        self._posting: set[asyncio.Task[None]] = set()  # from a POST until its answer is recorded
        self._stopping = False

    def start(self) -> None:
        self._wake.set()  # deliver whatever a previous run left pending
        self._main = asyncio.create_task(self._run(), name="outbox")

    def wake(self) -> None:
        """New messages were committed; called by the monitor and the API, never blocks."""
        self._wake.set()

    def dropped(self) -> None:
        """Messages were dropped (a webhook deleted): waiting workers check theirs now."""
        self._drop_signal.set()
        self._drop_signal = asyncio.Event()

    async def stop(self) -> None:
        """Stop delivering. A POST in flight may finish and its answer is recorded (for up to
        the POST timeout): cancelled after Discord accepted it, it would be sent again after the
        restart. Every other pending message stays queued for the next start."""
        self._stopping = True
        tasks = [t for t in (self._main, *self._workers.values()) if t is not None]
        posting = [t for t in tasks if t in self._posting]
        for task in tasks:
            if task not in posting:
                task.cancel()
        if posting:
            await asyncio.wait(posting, timeout=self._timeout + STOP_MARGIN)
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            with suppress(TimeoutError):
                async with asyncio.timeout(self._rescan):
                    await self._wake.wait()
            self._wake.clear()
            try:
                urls = await self._store.pending_urls()
                urls += [u for u in await self._unwritten.pending_urls() if u not in urls]
            except Exception:
                log.exception("outbox scan failed; next scan in %gs", self._rescan)
                continue
            for url in urls:
                if url in self._workers:
                    self._more.add(url)
                else:
                    self._workers[url] = asyncio.create_task(self._drain(url), name="outbox-url")

    async def _drain(self, url: str) -> None:
        try:
            while not self._stopping:
                self._more.discard(url)
                message: OutboxMessage | None = None
                try:
                    message = await self._store.next_message(
                        url
                    ) or await self._unwritten.next_message(url)
                    if message is None:
                        if url in self._more:
                            continue
                        return
                    await self._deliver(message)
                except Exception:
                    who = _who(message) if message else "site=- webhook=-"
                    log.exception("outbox worker error %s; retrying in %gs", who, self._rescan)
                    await asyncio.sleep(self._rescan)
        finally:
            self._workers.pop(url, None)

    def _ledger(self, message: OutboxMessage) -> Store | UnwrittenAlerts:
        """Where a message's bookkeeping goes: the outbox table, or memory for the alert of a
        status change the database has not taken yet (negative ids)."""
        return self._unwritten if message.id < 0 else self._store

    async def _deliver(self, message: OutboxMessage) -> None:
        try:
            await self._deliver_and_record(message)
        finally:
            self._posting.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _deliver_and_record(self, message: OutboxMessage) -> None:
        attempts = _Attempts(self, message)
        retrying = AsyncRetrying(
            retry=retry_if_exception(_retryable),
            wait=attempts.wait,
            stop=attempts.expired,
            before_sleep=attempts.note,
            sleep=attempts.sleep,
            reraise=True,
        )
        try:
            delivery = await retrying(attempts.send)
        except _Dropped:
            log.info(
                "message no longer pending %s: its webhook was deleted%s",
                _who(message),
                " (or it went to the outbox)" if message.id < 0 else "",
            )
            return
        except Exception as e:  # permanent, or transient past the give-up time
            error, now = _describe(e), self._clock.now_ms()
            await self._write(
                message, "failed", lambda: self._ledger(message).mark_failed(message, now, error)
            )
            log.warning(
                "message failed %s attempts=%d error=%r", _who(message), attempts.count, error
            )
            return
        await self._write(
            message,
            "delivered",
            lambda: self._ledger(message).mark_delivered(message, self._clock.now_ms()),
        )
        log.info(
            "message delivered %s status=%d attempts=%d",
            _who(message),
            delivery.status,
            attempts.count,
        )
        if delivery.remaining == 0 and delivery.reset_after:  # don't earn a 429
            pause = min(max(0.0, delivery.reset_after), RESET_AFTER_MAX)
            if pause != delivery.reset_after:
                log.warning(
                    "odd X-RateLimit-Reset-After %s: %g, waiting %gs instead",
                    _who(message),
                    delivery.reset_after,
                    pause,
                )
            await asyncio.sleep(pause)

    async def _write(
        self, message: OutboxMessage, what: str, write: Callable[[], Awaitable[None]]
    ) -> None:
        """Retry a bookkeeping write until it lands (e.g. while another process holds the
        database lock): giving up on "delivered" would send the message again."""
        attempt = 0
        while True:
            try:
                await write()
                return
            except Exception as e:
                attempt += 1
                delay = min(self._backoff_max, self._backoff_initial * 2 ** min(attempt, 30))
                log.warning(
                    "outbox write failed %s marking=%s attempt=%d error=%r; retrying in %gs",
                    _who(message),
                    what,
                    attempt,
                    _describe(e),
                    delay,
                )
                await asyncio.sleep(delay)


class _Attempts:
    """The tenacity callbacks for one message: send, wait, stop, note and sleep."""

    def __init__(self, dispatcher: Dispatcher, message: OutboxMessage) -> None:
        self._d = dispatcher
        self._message = message
        self._deadline_ms = message.created_at + dispatcher._give_up_after * 1000
        self._odd = ""  # what was odd about the last wait Discord asked for
        self._final = False  # the wait just computed ends at the give-up time
        self._done = False  # the try at the give-up time failed too
        self.count = 0

    async def send(self) -> Delivery:
        d = self._d
        pause = d._global_pause_until - d._clock.monotonic()
        if pause > 0:
            await self.sleep(pause)
        if not await d._ledger(self._message).is_pending(self._message.id):
            raise _Dropped
        if d._stopping:  # a retry after a stop began: it goes out after the next start
            raise asyncio.CancelledError
        self.count += 1
        task = asyncio.current_task()
        d._posting.add(task)  # type: ignore[arg-type]
        try:
            return await d._notifier.send(
                d._session, self._message.url, self._message.payload, timeout=d._timeout
            )
        except BaseException:
            d._posting.discard(task)  # type: ignore[arg-type]  # not accepted: may be cancelled
            raise

    def wait(self, state: RetryCallState) -> float:
        """The backoff, or Discord's value clamped to [backoff, ceiling]; never past give-up."""
        d = self._d
        self._done = self._final
        exc = state.outcome.exception() if state.outcome else None
        wait = float(d._backoff(state))  # the floor
        left = max(0.0, (self._deadline_ms - d._clock.now_ms()) / 1000)
        self._odd = ""
        asked = exc.retry_after if isinstance(exc, NotifyError) else None
        if asked is not None:
            is_global = isinstance(exc, NotifyError) and exc.is_global
            ceiling = d._backoff_max if is_global else d._give_up_after
            wait = min(max(asked, wait), ceiling)
            if asked <= 0 or asked > ceiling:
                self._odd = f"; a wait of {asked:g}s is out of range: waiting {wait:.3g}s instead"
            if is_global:
                d._global_pause_until = max(d._global_pause_until, d._clock.monotonic() + wait)
        self._final = wait >= left
        return min(wait, left)

    def expired(self, state: RetryCallState) -> bool:
        """Past the give-up time, or the one try made at it failed (a timer that wakes a
        millisecond early must not buy another)."""
        return self._done or self._d._clock.now_ms() >= self._deadline_ms

    async def note(self, state: RetryCallState) -> None:
        """Show the failed attempt on the webhook (``last_error``) and log it, before waiting."""
        exc = state.outcome.exception() if state.outcome else None
        error = (_describe(exc) if exc else "unknown error") + self._odd
        message, d = self._message, self._d
        try:
            await d._ledger(message).mark_attempt(message, d._clock.now_ms(), error)
        except Exception as e:  # the next attempt notes again; the POST must not wait
            log.warning(
                "outbox write failed %s marking=attempt error=%r; not retried",
                _who(message),
                _describe(e),
            )
        log.warning(
            "message retry %s attempt=%d in=%.3gs error=%r",
            _who(message),
            state.attempt_number,
            state.upcoming_sleep,
            error,
            exc_info=exc if exc is not None and not isinstance(exc, NotifyError) else None,
        )

    async def sleep(self, seconds: float) -> None:
        """Sleeps ``seconds``, but stops early with ``_Dropped`` if the message was dropped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            signal = self._d._drop_signal
            with suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await signal.wait()
            if signal.is_set() and not await self._d._ledger(self._message).is_pending(
                self._message.id
            ):
                raise _Dropped
