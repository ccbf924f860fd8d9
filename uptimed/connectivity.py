"""Whether the monitor itself is online: a failed check only counts when it is.

When the monitor's uplink dies, every site fails at once, and recording that would turn every
site DOWN and wake everyone for a fault that is the monitor's own. With
``connectivity_check_urls`` set, a failed check asks ``Connectivity.set_aside``: the targets of
that list are probed in parallel (a short timeout), and when none answers the failure is set
aside (not recorded) and the site noted in the current offline span, whose webhooks hear of it
once the monitor is back online.

What a probe believes: any HTTP answer (any status; a HEAD, redirects not followed) or an
opened TCP connection means online, and so does anything else a peer sent back (a malformed
answer). A failure a check would try again is a target that failed: a timeout, a refused or
reset connection, a failed name lookup or TLS handshake. Every target failing is offline.

The rules that keep it cheap and honest:

* nobody probes while the monitor is online (or not known offline) unless a check failed, so a
  healthy monitor costs nothing;
* one probe is in flight at a time, and probes start at most every ``min_interval``;
* a failed check trusts only a probe that started at or after the check itself: a probe made
  before the uplink died would let the storm through, so a check waits for the next one
  (started at once when the last is older than ``min_interval``);
* while offline a watch probes every ``min_interval`` on its own, since the checks of a monitor
  back online succeed and would never ask; the first probe that gets an answer ends the span;
* the checks that waited for that probe are set aside too: they began before anyone knew the
  monitor was back (a timeout that began offline ends after the uplink returned), and setting
  them aside costs a real outage one check's delay, where recording them would be the storm.

The sites of the checks waiting for a probe are written in the probe's own transaction (the
span's start, its ``last_seen_at``, its end): no write per check, nothing lost in between.

The span lives in SQLite (``db/offline.py``): opened by the first probe that fails, its
``last_seen_at`` moved by each later one, closed by the first that succeeds (with the
reconnect messages queued in the same transaction). An open span found at start-up (a crash
while offline) is resumed: the monitor starts offline and its watch ends the span.

Errors: a database error while opening, noting or closing a span propagates from the probe to
the checks waiting for it (each then logs it as a failed check) and is logged by the watch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

import aiohttp

from uptimed.checks import http, tcp
from uptimed.checks.errors import Failure, LocalFault
from uptimed.db import Store
from uptimed.models import Site

log = logging.getLogger(__name__)

MIN_INTERVAL_SECONDS = 10.0  # probes start at most this often
PROBE_TIMEOUT_SECONDS = 3.0  # per target; a probe takes at most this long


@dataclass(frozen=True)
class _Verdict:
    set_aside: bool  # the failures of the checks that waited for this probe are the monitor's
    span_id: int | None = None  # the offline span they belong to


@dataclass
class _Probe:
    started: float  # monotonic
    task: asyncio.Task[_Verdict] = field(init=False)
    waiting: set[int] = field(default_factory=set)  # sites whose failed checks wait for it
    written: frozenset[int] = frozenset()  # those the probe wrote into the span itself


@dataclass(frozen=True)
class _Span:
    id: int
    started_at: int  # epoch ms


def _target(url: str) -> Site:
    """A connectivity target as a site the probes of ``uptimed.checks`` take."""
    site = Site(id=0, name="connectivity check", url=url, created_at=0)
    if site.is_tcp:
        return site
    return site.model_copy(update={"method": "HEAD", "follow_redirects": False})


class Connectivity:
    """Probes the connectivity targets on demand and keeps the offline span.

    Built with the target URLs, the checks' fresh ``session`` and the ``store``; keyword
    arguments: ``clock`` (epoch seconds, what spans record), ``monotonic`` (probe ages),
    ``min_interval`` seconds between probe starts, ``timeout`` per target, ``on_message``
    called after a span's reconnect messages are committed (it wakes the outbox). Call
    ``start()`` inside the loop (it resumes an open span) and ``stop()`` at the end.
    """

    def __init__(
        self,
        urls: list[str],
        session: aiohttp.ClientSession,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        min_interval: float = MIN_INTERVAL_SECONDS,
        timeout: float = PROBE_TIMEOUT_SECONDS,
        on_message: Callable[[], None] = lambda: None,
    ) -> None:
        self._targets = [_target(url) for url in urls]
        self._session = session
        self._store = store
        self._clock = clock
        self._monotonic = monotonic
        self._min_interval = min_interval
        self._timeout = timeout
        self._on_message = on_message
        self._latest: _Probe | None = None
        self._starting: asyncio.Task[None] | None = None  # waits out min_interval, then probes
        self._span: _Span | None = None
        self._watch: asyncio.Task[None] | None = None

    @property
    def offline(self) -> bool:
        return self._span is not None

    async def start(self) -> None:
        """Resume the span a previous run left open (it crashed or stopped while offline)."""
        row = await self._store.open_offline_span()
        if row is not None:
            self._span = _Span(*row)
            log.warning(
                "connectivity: offline since a previous run (span %d): failed checks are set"
                " aside until a connectivity check answers",
                row[0],
            )
            self._start_watch()

    async def stop(self) -> None:
        """Cancel the watch and any probe; an open span stays open in the database for the
        next start to resume."""
        tasks = [t for t in (self._watch, self._starting) if t is not None]
        if self._latest is not None:
            tasks.append(self._latest.task)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task

    async def set_aside(self, site_id: int, started: float) -> bool:
        """A check of ``site_id`` that started at ``started`` (monotonic) failed: True when
        the first probe started since then found the monitor offline, or found it online
        again after an offline span (the check began before anyone knew: its failure may be
        the outage's). The site is then noted in the span, and its result must be dropped:
        nothing recorded, nothing sent."""
        probe = await self._probe_since(started, site_id)
        verdict = await asyncio.shield(probe.task)
        if verdict.set_aside and site_id not in probe.written:
            # It failed after the probe had written its sites: noted alone (after a span's
            # end, listed without being counted in its message).
            assert verdict.span_id is not None
            await self._store.note_offline(verdict.span_id, None, [site_id])
        return verdict.set_aside

    async def _probe_since(self, started: float, site_id: int | None = None) -> _Probe:
        """The first probe that starts at or after ``started`` (maybe one in flight, or one
        just finished); ``site_id`` waits for it (the probe writes it with the span)."""
        while True:
            latest = self._latest
            if latest is not None and latest.started >= started:
                if site_id is not None:
                    latest.waiting.add(site_id)
                return latest
            if latest is not None and not latest.task.done():
                await asyncio.wait({latest.task})  # one at a time: the next starts after it
                continue
            if self._starting is None or self._starting.done():
                self._starting = asyncio.create_task(self._start_next(), name="connectivity")
            await asyncio.wait({self._starting})  # a waiter cancelled cancels no shared task

    async def _start_next(self) -> None:
        if self._latest is not None:
            wait = self._latest.started + self._min_interval - self._monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        probe = _Probe(self._monotonic())
        probe.task = asyncio.create_task(self._probe(probe), name="connectivity-probe")
        self._latest = probe

    async def _probe(self, probe: _Probe) -> _Verdict:
        """Probe every target in parallel and move the span, writing the sites of the failed
        checks waiting for this probe in the same transaction."""
        started_at = int(self._clock() * 1000)
        reasons = await asyncio.gather(*(self._reach(t) for t in self._targets))
        probe.written = frozenset(probe.waiting)  # later waiters write themselves
        span = self._span
        if any(r is None for r in reasons):
            if span is None:
                return _Verdict(set_aside=False)
            await self._end(span, started_at, probe.written)
            return _Verdict(set_aside=True, span_id=span.id)
        if span is None:
            span_id = await self._store.start_offline(started_at, probe.written)
            self._span = _Span(span_id, started_at)
            log.warning(
                "connectivity: offline: none of %d connectivity checks answered (%s);"
                " failed checks are set aside, not recorded",
                len(self._targets),
                reasons[0],
            )
            self._start_watch()
            return _Verdict(set_aside=True, span_id=span_id)
        await self._store.note_offline(span.id, int(self._clock() * 1000), probe.written)
        return _Verdict(set_aside=True, span_id=span.id)

    async def _reach(self, target: Site) -> str | None:
        """None when the target answered, else why not."""
        probe = tcp.probe if target.is_tcp else http.probe
        try:
            await probe(self._session, target, self._timeout)
        except Failure as e:
            # Not transient: a peer sent something back (a malformed answer): a network.
            return None if not e.transient else f"{target.url}: {e.reason}"
        except LocalFault as e:
            return f"{target.url}: {e}"
        return None

    async def _end(self, span: _Span, ended_at: int, site_ids: frozenset[int]) -> None:
        sites, queued = await self._store.end_offline(span.id, ended_at, site_ids)
        self._span = None
        log.warning(
            "connectivity: online again after %.0fs offline; failed checks of %d site(s) were"
            " set aside; %d reconnect message(s) queued",
            max(0, ended_at - span.started_at) / 1000,
            sites,
            queued,
        )
        if queued:
            self._on_message()

    def _start_watch(self) -> None:
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._watch_until_online(), name="connectivity-watch")

    async def _watch_until_online(self) -> None:
        """While offline, probe every ``min_interval``: the checks of a monitor back online
        succeed and would never ask."""
        while self._span is not None:
            probe = await self._probe_since(self._monotonic())
            try:
                await asyncio.shield(probe.task)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("connectivity: probe failed")
