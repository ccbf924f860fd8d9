"""One check cycle: check the site, decide the transition, write both in one transaction.

``Monitor`` keeps each site's current state in memory (loaded from the store at start, changed
only after a commit), so a check costs one write and no read. Checks of one site never overlap
(the scheduler runs one instance per site), which is what makes that cache safe.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext, suppress
from dataclasses import dataclass, replace

import aiohttp

from uptimed.alerting import event_for, failing, muted, next_state
from uptimed.batching import CheckBatcher
from uptimed.certificates import CertificateWatch
from uptimed.checks import LocalFault, check_site
from uptimed.connectivity import Connectivity
from uptimed.db import Store
from uptimed.fields import is_https
from uptimed.health import Health
from uptimed.metrics import Metrics
from uptimed.models import CheckResult, Site, SiteState, Status, Transition
from uptimed.notify.unwritten import UnwrittenAlerts

log = logging.getLogger(__name__)

LOCAL_FAULT_TTL = 30.0  # /healthz reports a host fault until this long after it was last seen
INTERRUPT_WAIT_SECONDS = 2.0  # how long a PATCH waits for a check that is recording
HELD_RETRY_SECONDS = 1.0  # how often a transition the database refused is written again
STATUS_CHANGES = "status_changes"  # the health problem of held transitions
# A healthy site's check needs no slot of the failing sites' lane.
_ANY_LANE: AbstractAsyncContextManager[object] = nullcontext()


@dataclass
class _Held:
    """A transition to write (at once, or again once the database takes writes)."""

    site_id: int
    result: CheckResult
    state: SiteState
    transition: Transition
    key: int  # its alert's key in UnwrittenAlerts
    message: str | None  # the alert's payload (JSON); None: alerts are muted


@dataclass(frozen=True)
class CheckSessions:
    """The checks' HTTP sessions; ``keep_alive`` is the default a site's own setting overrides."""

    fresh: aiohttp.ClientSession
    pooled: aiohttp.ClientSession
    keep_alive: bool = False

    def for_site(self, site: Site) -> aiohttp.ClientSession:
        keep_alive = self.keep_alive if site.keep_alive is None else site.keep_alive
        return self.pooled if keep_alive else self.fresh


HANDSHAKE_EVERY_SECONDS = 3600.0  # a kept-alive https site's certificate is read afresh this often


class Monitor:
    """Runs checks; ``states`` maps site id to its current state and drops deleted sites.

    Keyword arguments: ``timeout`` per request in seconds, ``retries`` extra tries on network
    errors, ``max_concurrent`` checks in flight at once, ``append_unchanged`` False for
    ``OPTIMISATION=1``, ``flush_seconds`` between batched history writes (see batching.py),
    ``clock`` returns epoch seconds, ``on_message`` is called after a
    transition's messages are committed (it wakes the outbox; it must not block), ``health``
    hears of checks this host could not make and of writes the database refused,
    ``connectivity`` (None: ``connectivity_check_urls`` is empty) sets aside the failed checks
    of a monitor that is offline itself, ``metrics`` hears of every recorded check (its
    duration and result) and history row.
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
        monotonic: Callable[[], float] = time.monotonic,
        on_message: Callable[[], None] = lambda: None,
        health: Health | None = None,
        unwritten: UnwrittenAlerts | None = None,
        connectivity: Connectivity | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics or Metrics(process=False)
        self._connectivity = connectivity
        self._monotonic = monotonic
        self._health = health or Health()
        self._batcher = CheckBatcher(
            store,
            flush_seconds=flush_seconds,
            append_unchanged=append_unchanged,
            health=self._health,
            metrics=self._metrics,
        )
        self._sessions = sessions
        self._timeout = timeout
        self._retries = retries
        # Checks in flight, and those of failing sites (DOWN or counting failures: likely to
        # hang until their timeout on every try) in a lane of half as many: however many
        # sites hang, half of the budget stays for the checks of healthy ones.
        self._slots = asyncio.Semaphore(max_concurrent)
        self._failing_slots = asyncio.Semaphore(max(1, max_concurrent // 2))
        self._clock = clock
        self._on_message = on_message
        self._running: dict[int, asyncio.Task[object]] = {}  # site id -> its check in flight
        self._checking: set[int] = set()  # sites whose check waits for the network
        self._interrupted: set[asyncio.Task[object]] = set()  # cancelled by interrupt()
        self._paused: set[int] = set()
        self._stopping = False
        self.states: dict[int, SiteState] = {}
        self._stamps: dict[int, int] = {}  # site id -> checked_at of its last check
        self._unwritten = UnwrittenAlerts() if unwritten is None else unwritten
        self._handshakes: dict[int, float] = {}  # kept-alive https site -> last fresh read
        # site -> alerts_muted_until (epoch ms), as the latest PATCH left it: a check in flight
        # holds the Site it started with, which may predate the mute.
        self._mutes: dict[int, int] = {}
        self.certificates = CertificateWatch(store, clock=clock, on_message=on_message)
        self._held: deque[_Held] = deque()  # transitions the database refused, oldest first
        self._writer: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()  # set by drain(): held changes get one last try

    def start(self) -> None:
        self._batcher.start()

    def add(self, site: Site) -> None:
        self.states[site.id] = SiteState(status=Status.INITIAL, since=site.created_at)
        self.set_mute(site)

    def set_mute(self, site: Site) -> None:
        """Follow the site's ``alerts_muted_until`` (at start-up and after every change), and
        its name and paused flag for /metrics."""
        self._metrics.follow(site)
        if site.alerts_muted_until is None:
            self._mutes.pop(site.id, None)
        else:
            self._mutes[site.id] = site.alerts_muted_until

    def _muted(self, site_id: int, now: int) -> bool:
        return muted(self._mutes.get(site_id), now)

    def restore(self, site_id: int, state: SiteState, last_checked: int | None) -> None:
        """A stored site's state at start-up (unless a check changed it meanwhile); its next
        check is stamped after ``last_checked``, also when the clock is now behind it."""
        self.states.setdefault(site_id, state)
        if last_checked is not None:
            self._stamps.setdefault(site_id, last_checked)

    def remove(self, site_id: int) -> None:
        self.states.pop(site_id, None)
        self._stamps.pop(site_id, None)
        self._paused.discard(site_id)
        self._handshakes.pop(site_id, None)
        self._mutes.pop(site_id, None)
        self.certificates.forget(site_id)
        self._metrics.forget(site_id)

    def pause(self, site_id: int) -> None:
        """A paused site's check results are dropped (one may still be in flight)."""
        self._paused.add(site_id)

    def unpause(self, site_id: int) -> None:
        self._paused.discard(site_id)

    async def interrupt(self, site_id: int) -> None:
        """Cancel the site's check while it is waiting for the network (its site was paused or
        its settings changed: the answer would be to a question no longer asked), and wait for
        its end: the scheduler runs a site's next check only once the last one is over."""
        task = self._running.get(site_id)
        if task is None or task.done():
            return
        if site_id in self._checking:  # past the network it records: let it end then
            self._interrupted.add(task)
            task.cancel()
        await asyncio.wait({task}, timeout=INTERRUPT_WAIT_SECONDS)

    async def run_check(self, site: Site) -> None:
        """The scheduler's job; it logs and swallows errors so one bad site stops nothing."""
        task = asyncio.current_task()
        if task is not None:
            self._running[site.id] = task
        try:
            await self._check_and_record(site)
        except asyncio.CancelledError:
            # drain() cancels checks on purpose at a stop (it logs them in one line), and
            # interrupt() when a site changes. Ending normally keeps APScheduler from logging
            # each one as a failed job.
            if not (self._stopping or task in self._interrupted):
                raise
        except LocalFault as e:
            # Nothing is recorded and nothing is sent: the site was not checked at all.
            self._health.fail("checks", f"checks cannot run on this host: {e}", ttl=LOCAL_FAULT_TTL)
        except Exception:
            log.exception("check failed site=%d", site.id)
        finally:
            if task is not None:
                self._interrupted.discard(task)
                if self._running.get(site.id) is task:
                    del self._running[site.id]

    async def _check_and_record(self, site: Site) -> None:
        self._checking.add(site.id)  # interrupt() may cancel it until the answer is in
        session = self._session(site)
        state = self.states.get(site.id)
        lane: AbstractAsyncContextManager[object]
        lane = self._failing_slots if state is not None and failing(state) else _ANY_LANE
        try:
            async with lane, self._slots:
                started = self._monotonic()
                result = await check_site(
                    session,
                    site,
                    timeout=self._timeout,
                    retries=self._retries,
                    clock=self._clock,
                )
                elapsed = self._monotonic() - started
        finally:
            self._checking.discard(site.id)
        # The monitor's own outage (every connectivity check fails too): set aside, not
        # recorded. Waited for outside the slots: a probe's wait holds no check back. A site
        # already DOWN cannot change on a failure, so its check waits for no probe (one checked
        # more often than probes run would miss its runs): it is set aside while known offline.
        if result.status is Status.DOWN and self._connectivity is not None:
            if state is not None and state.status is Status.DOWN:
                if self._connectivity.offline:
                    return
            elif await self._connectivity.set_aside(site.id, started):
                return
        previous = self.states.get(site.id)
        if previous is None or site.id in self._paused:  # deleted or paused meanwhile
            return
        self._metrics.checked(site.id, result.status is Status.UP, result.response_time_ms, elapsed)
        # (site, time) is a history row's key, and a site's rows must not go back in time, also
        # when the wall clock steps back: such a check is stamped just after the site's last.
        floor = self._stamps.get(site.id, previous.since)
        if result.checked_at <= floor:
            result = replace(result, checked_at=floor + 1)
        self._stamps[site.id] = result.checked_at
        state, transition = next_state(
            site.id,
            previous,
            result,
            failure_threshold=site.failure_threshold,
            success_threshold=site.success_threshold,
        )
        if transition is None:
            # A check counted towards a threshold is a row of its own, also with
            # OPTIMISATION=1 (which otherwise moves the latest row): a restart counts them.
            self._batcher.add(site.id, result, state, append=bool(state.streak or previous.streak))
            if state is not previous and site.id in self.states:
                self.states[site.id] = state  # only the streak changed
        else:
            # Rows batched before this transition go first: the order of a site's rows holds.
            await self._batcher.flush()
            message = None
            if not self._muted(site.id, result.checked_at):
                message = event_for(site, transition).model_dump_json()
            held = _Held(site.id, result, state, transition, self._unwritten.new_key(), message)
            # Behind a held transition, or refused itself: kept, its alert sent from memory.
            if self._held or not await self._try_write(held):
                await self._hold(held)
        # A kept-alive connection shows the certificate of its handshake, maybe hours ago:
        # only a fresh one's is news (``_session`` makes one an hour). Deleted or paused
        # meanwhile (the writes above wait): nothing to say.
        if (
            result.certificate is not None
            and session is self._sessions.fresh
            and site.id in self.states
            and site.id not in self._paused
        ):
            settled = await self.certificates.seen(
                site, result.certificate, muted=self._muted(site.id, result.checked_at)
            )
            # Read, and no warning held back by a mute: a kept-alive site reuses its
            # connection for the next hour (else its next check connects afresh again).
            if settled and self._sessions.for_site(site) is self._sessions.pooled:
                self._handshakes[site.id] = self._monotonic()
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

    def _session(self, site: Site) -> aiohttp.ClientSession:
        """The site's session; a kept-alive https site connects afresh once an hour, so that a
        renewed certificate is seen although the connection would outlive it. (A TCP check
        connects afresh anyway: it has the fresh one.)"""
        if site.is_tcp:
            return self._sessions.fresh
        session = self._sessions.for_site(site)
        if session is self._sessions.fresh or not is_https(site.url):
            return session
        last = self._handshakes.get(site.id)
        if last is not None and self._monotonic() - last < HANDSHAKE_EVERY_SECONDS:
            return session
        return self._sessions.fresh

    async def _try_write(self, held: _Held) -> bool:
        """Write a transition now; False when the database refused it (a full or read-only
        disk, a lock held too long: ``OperationalError``, which may pass)."""
        try:
            written = await self._write(held)
        except sqlite3.OperationalError as e:
            self._health.fail(STATUS_CHANGES, f"status changes cannot be written: {e}")
            return False
        if written and held.site_id in self.states:
            self.states[held.site_id] = held.state
        if written:
            self._on_message()
        return True

    async def _write(self, held: _Held) -> bool:
        """Write a transition with its history row, incident and outbox rows; the URLs its
        alert already went to from memory are written as delivered. False: site deleted."""
        sent = self._unwritten.claim(held.key)
        try:
            written = await self._store.record_transition(
                held.site_id,
                held.result,
                held.state,
                held.transition,
                message=held.message,
                sent=sent,
                now=int(self._clock() * 1000),
            )
        except BaseException:
            self._unwritten.release(held.key)
            raise
        self._unwritten.settle(held.key)
        if written:
            self._metrics.history_rows.inc()
        return written

    async def _hold(self, held: _Held) -> None:
        """The database refused the transition: keep it (and every later one, in order) and
        send its alert from memory now, as the outbox would."""
        try:
            targets = await self._store.webhook_targets(held.site_id)
        except sqlite3.Error as e:  # not even readable: the outbox sends it once written
            log.error(
                "alert not sent from memory site=%d: webhooks unreadable: %s", held.site_id, e
            )
            targets = []
        # Its messages are in memory before the writer can see it, or the writer could write
        # it with every message pending and the dispatcher send them from memory as well.
        if held.message is not None:
            self._unwritten.add(
                held.key, held.site_id, targets, held.message, int(self._clock() * 1000)
            )
        if held.site_id in self.states:
            self.states[held.site_id] = held.state
        self._held.append(held)
        self._on_message()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_held(), name="held-transitions")

    async def _write_held(self) -> None:
        """Write the held transitions as soon as the database takes them; ends at a stop."""
        while self._held and not self._stopped.is_set():
            with suppress(TimeoutError):
                async with asyncio.timeout(HELD_RETRY_SECONDS):
                    await self._stopped.wait()
            await self._write_held_once()
        if not self._held:
            self._health.ok(STATUS_CHANGES)
            log.warning("every held status change is written now")

    async def _write_held_once(self) -> None:
        """Write held transitions, oldest first, until the database refuses one."""
        while self._held:
            try:
                await self._write(self._held[0])
            except sqlite3.OperationalError as e:
                self._health.fail(STATUS_CHANGES, f"status changes cannot be written: {e}")
                return
            except sqlite3.Error:  # not the disk but this row: trying again cannot help
                log.exception("held status change dropped site=%d", self._held[0].site_id)
            self._held.popleft()
            self._on_message()

    async def drain(self, grace: float) -> None:
        """Let checks in flight finish for up to ``grace`` seconds, cancel the rest, and write
        every batched row."""
        self._stopping = True
        pending = {t for t in self._running.values() if not t.done()}
        still: set[asyncio.Task[object]] = set()
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still)
        await self._batcher.close()
        self._stopped.set()  # the writer makes one last try, not cut off in a write
        if self._writer is not None:
            await asyncio.wait({self._writer}, timeout=max(grace, 1.0))
        if self._held and (self._writer is None or self._writer.done()):
            await self._write_held_once()
        if self._held:
            log.error(
                "shutdown with %d status changes the database refused: they are lost",
                len(self._held),
            )
        log.info(
            "shutdown checks_finished=%d checks_cancelled=%d", len(pending) - len(still), len(still)
        )
