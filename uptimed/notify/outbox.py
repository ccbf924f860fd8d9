"""Delivers the outbox: per webhook URL one worker, strictly oldest event first.

A check only writes its event row (in the transition's transaction) and calls ``wake()``;
delivery happens here, in the daemon's event loop, so a slow or failing Discord delays no check.

Grouping (``group_window`` seconds, ``alert_group_window_seconds``): a worker that finds its URL
idle (nothing sent within the window) sends what is pending at once: one event is today's
message. Events that come while a message is in flight or retried, or within the window of the
last send, wait until the window has passed and then go together, rendered by
``notify.grouped`` into as few messages as Discord's limits allow. So a storm of 200 outages is
a message at once and a few after the window, not 200 messages trickling out at Discord's 5
per 2 s. A group is chosen afresh from the rows each time, so a restart regroups what was not
delivered and nothing is sent twice or lost. A window of 0 sends every event alone.

Per message, under tenacity: 2xx -> its events marked delivered (only the POST is retried,
never "send and mark"); 429 -> wait ``retry_after`` (a global 429 pauses every worker); 5xx,
timeouts and connection errors -> exponential backoff with jitter until ``give_up_after``
seconds from when its oldest event was queued, then failed; 404, 401, 403 or a redirect (the
URL itself is refused) -> failed at once, and every webhook with that URL is disabled with
whatever was pending for it (``PATCH /webhooks/{id}`` enables it again); another 4xx -> that
message failed. A message blocks the ones behind it on the same URL, so a recovery never
overtakes its down alert.
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
from dataclasses import dataclass
from itertools import takewhile
from typing import Any

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from uptimed.clock import Clock
from uptimed.db import Store
from uptimed.metrics import Metrics
from uptimed.models import OutboxMessage
from uptimed.notify import Delivery, Notifier, NotifyError
from uptimed.notify.discord import build_payload
from uptimed.notify.grouped import render
from uptimed.notify.unwritten import UnwrittenAlerts

log = logging.getLogger(__name__)

RESCAN_MAX = 30.0  # seconds between scans of the outbox when nothing wakes the dispatcher
RESET_AFTER_MAX = 60.0  # seconds; Discord's webhook buckets refill within a few
STOP_MARGIN = 1.0  # seconds beyond the POST timeout a stop waits to record a POST in flight
GROUP_MAX = 1000  # events read for one group: at most a dozen messages


@dataclass(frozen=True)
class _Send:
    """One POST: the body and the outbox rows (events) it delivers, oldest first."""

    messages: list[OutboxMessage]
    payload: dict[str, Any]

    @property
    def url(self) -> str:
        return self.messages[0].url


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


def _who(messages: list[OutboxMessage]) -> str:
    """How every delivery log line names its message: site, webhook and outbox row ids (the
    first and last of a group, with how many events it holds)."""
    first, last = messages[0], messages[-1]
    site = "-" if first.site_id is None else first.site_id
    hook = "-" if first.webhook_id is None else first.webhook_id
    if len(messages) == 1:
        return f"site={site} webhook={hook} message={first.id}"
    return f"site={site}.. webhook={hook}.. message={first.id}..{last.id} events={len(messages)}"


def _payload(message: OutboxMessage) -> dict[str, Any]:
    """A row's body: its event rendered now, or the body rendered before schema 9."""
    if message.event is not None:
        return build_payload(message.event)
    assert message.payload is not None  # the table's CHECK: one of the two
    return message.payload


def _refuses_url(error: NotifyError) -> bool:
    """Discord says the webhook itself is gone or not ours (404, 401, 403), or the URL is not
    a webhook (a redirect, an unusable URL): nothing sent to it can succeed."""
    status = error.status
    return error.permanent and (status is None or status in (401, 403, 404) or status < 400)


class Dispatcher:
    """Owns the delivery tasks; ``start()`` inside the loop, ``wake()`` after queuing, ``stop()``.

    Keyword arguments: ``timeout`` per POST, ``give_up_after`` seconds a message may keep failing
    transiently, ``backoff_initial`` / ``backoff_max`` seconds between tries (``backoff_max``
    also caps a global rate limit's pause and the interval of the outbox scan), ``group_window``
    seconds after a message to a URL during which its next events wait to go together (0: none),
    ``metrics`` counts messages sent, failed and attempts retried.
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
        group_window: float = 0.0,
        unwritten: UnwrittenAlerts | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics or Metrics(process=False)
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
        self._group_window = group_window
        self._last_sent: dict[str, float] = {}  # URL -> loop time its last message ended
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
                send: _Send | None = None
                try:
                    sends = await self._next_sends(url)
                    if sends is None:
                        if url in self._more:
                            continue
                        return
                    for send in sends:
                        if not await self._deliver(send):  # rows dropped: regroup the rest
                            break
                        self._last_sent[url] = asyncio.get_running_loop().time()
                except Exception:
                    who = _who(send.messages) if send else "site=- webhook=-"
                    log.exception("outbox worker error %s; retrying in %gs", who, self._rescan)
                    await asyncio.sleep(self._rescan)
        finally:
            self._workers.pop(url, None)

    async def _next_sends(self, url: str) -> list[_Send] | None:
        """What to POST to ``url`` next, in order; [] after waiting out the group window (read
        again: more came); None when nothing is pending."""
        rows = await self._store.pending_messages(url, GROUP_MAX)
        if not rows:
            message = await self._unwritten.next_message(url)
            return None if message is None else [_Send([message], _payload(message))]
        if rows[0].event is None or self._group_window <= 0:
            return [_Send(rows[:1], _payload(rows[0]))]
        loop = asyncio.get_running_loop()
        wait = self._last_sent.get(url, -self._group_window) + self._group_window - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
            return []
        group = list(takewhile(lambda m: m.event is not None, rows))
        sends, start = [], 0
        for payload, count in render([m.event for m in group if m.event is not None]):
            sends.append(_Send(group[start : start + count], payload))
            start += count
        return sends

    def _ledger(self, send: _Send) -> Store | UnwrittenAlerts:
        """Where a message's bookkeeping goes: the outbox table, or memory for the alert of a
        status change the database has not taken yet (negative ids)."""
        return self._unwritten if send.messages[0].id < 0 else self._store

    async def _deliver(self, send: _Send) -> bool:
        """False: its rows are no longer all pending (a webhook was deleted); nothing sent."""
        try:
            return await self._deliver_and_record(send)
        finally:
            self._posting.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _deliver_and_record(self, send: _Send) -> bool:
        messages = send.messages
        attempts = _Attempts(self, send)
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
                _who(messages),
                " (or it went to the outbox)" if messages[0].id < 0 else "",
            )
            return False
        except Exception as e:  # permanent, or transient past the give-up time
            error, now = _describe(e), self._clock.now_ms()
            disable = isinstance(e, NotifyError) and _refuses_url(e)
            self._metrics.discord_failed.inc()
            await self._write(
                messages,
                "failed",
                lambda: self._ledger(send).mark_failed(messages, now, error, disable=disable),
            )
            log.warning(
                "message failed %s attempts=%d error=%r%s",
                _who(messages),
                attempts.count,
                error,
                "; every webhook with this URL is disabled" if disable else "",
            )
            return True
        self._metrics.discord_sent.inc()
        await self._write(
            messages,
            "delivered",
            lambda: self._ledger(send).mark_delivered(messages, self._clock.now_ms()),
        )
        log.info(
            "message delivered %s status=%d attempts=%d",
            _who(messages),
            delivery.status,
            attempts.count,
        )
        if delivery.remaining == 0 and delivery.reset_after:  # don't earn a 429
            pause = min(max(0.0, delivery.reset_after), RESET_AFTER_MAX)
            if pause != delivery.reset_after:
                log.warning(
                    "odd X-RateLimit-Reset-After %s: %g, waiting %gs instead",
                    _who(messages),
                    delivery.reset_after,
                    pause,
                )
            await asyncio.sleep(pause)
        return True

    async def _write(
        self, messages: list[OutboxMessage], what: str, write: Callable[[], Awaitable[None]]
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
                    _who(messages),
                    what,
                    attempt,
                    _describe(e),
                    delay,
                )
                await asyncio.sleep(delay)


class _Attempts:
    """The tenacity callbacks for one message: send, wait, stop, note and sleep."""

    def __init__(self, dispatcher: Dispatcher, send: _Send) -> None:
        self._d = dispatcher
        self._send = send
        oldest = min(m.created_at for m in send.messages)
        self._deadline_ms = oldest + dispatcher._give_up_after * 1000
        self._odd = ""  # what was odd about the last wait Discord asked for
        self._final = False  # the wait just computed ends at the give-up time
        self._done = False  # the try at the give-up time failed too
        self.count = 0

    async def send(self) -> Delivery:
        d = self._d
        pause = d._global_pause_until - d._clock.monotonic()
        if pause > 0:
            await self.sleep(pause)
        if not await d._ledger(self._send).is_pending(self._send.messages):
            raise _Dropped
        if d._stopping:  # a retry after a stop began: it goes out after the next start
            raise asyncio.CancelledError
        self.count += 1
        task = asyncio.current_task()
        d._posting.add(task)  # type: ignore[arg-type]
        try:
            return await d._notifier.send(
                d._session, self._send.url, self._send.payload, timeout=d._timeout
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
        send, d = self._send, self._d
        d._metrics.discord_retried.inc()
        try:
            await d._ledger(send).mark_attempt(send.messages, d._clock.now_ms(), error)
        except Exception as e:  # the next attempt notes again; the POST must not wait
            log.warning(
                "outbox write failed %s marking=attempt error=%r; not retried",
                _who(send.messages),
                _describe(e),
            )
        log.warning(
            "message retry %s attempt=%d in=%.3gs error=%r",
            _who(send.messages),
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
            if signal.is_set() and not await self._d._ledger(self._send).is_pending(
                self._send.messages
            ):
                raise _Dropped
