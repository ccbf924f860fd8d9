"""The public status page's data: what ``GET /status`` renders and ``GET /status.json`` returns.

Only sites marked ``public`` appear, and nothing else of theirs: no URL unless ``show_url``, no
headers, no assertions, no failure bodies; an incident's reason is the short text the API shows,
with the site's host name taken out unless its URL is shown.

Uptime is counted as ``/sites/{id}/uptime`` counts it, so the two agree: monitored time from
the first finished check (``reports.first_result``), less paused and offline spans
(``reports.paused``), and down time from the incidents table; a window starts where
``reports.window_start`` says (rounded to the rollups' hour or day beyond the raw rows). The page
needs only the uptime, not the API's check counts and response-time percentiles, so it reads no
history rows and no rollups for it: one incidents query per site serves the three windows and
the 90 daily bars (the same sum cut at UTC midnights). The 24 h response-time chart reads the
finished hours from ``rollup_hour`` and only the hours after its watermark from raw rows.

Building this for 100 sites takes some 700 small indexed queries and renders some 9,000 bars,
so ``StatusCache`` keeps the result (and its rendered HTML) for at most ``CACHE_SECONDS``, and
makes the next one before then while visitors keep coming (see its docstring).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field
from yarl import URL

from uptimed.clock import Clock
from uptimed.db import Store
from uptimed.db.maintenance import DAY, HOUR, Retention
from uptimed.db.reports import first_result, paused, window_start
from uptimed.intervals import Paused
from uptimed.models import SiteView, Status, Timestamp

log = logging.getLogger(__name__)

WINDOWS = ("24h", "30d", "90d")
DAYS = 90
INCIDENTS = 10
CACHE_SECONDS = 10.0

State = Literal["up", "down", "pending", "paused"]


class StatusWindow(BaseModel):
    window: str = Field(examples=["24h"])
    uptime_percent: float | None = Field(description="null: nothing monitored in the window")


class StatusDay(BaseModel):
    """One UTC day of the 90 bars."""

    date: str = Field(examples=["2026-12-01"], description="the UTC day")
    uptime_percent: float | None = Field(description="null: not monitored that day")
    down_seconds: float


class StatusPoint(BaseModel):
    """The average response time of one hour's checks."""

    hour: Timestamp = Field(description="the start of the hour")
    avg_ms: float


class StatusSite(BaseModel):
    id: int
    name: str
    url: str | None = Field(description="only when the site's show_url is true")
    state: State = Field(description="pending: not checked yet; paused: not being checked")
    since: Timestamp = Field(description="when the site entered its current status")
    uptime: list[StatusWindow]
    days: list[StatusDay] = Field(description=f"the last {DAYS} UTC days, oldest first")
    response_times: list[StatusPoint] = Field(description="the last 24 hours, oldest first")


class StatusIncident(BaseModel):
    site_id: int
    site_name: str
    started_at: Timestamp
    ended_at: Timestamp | None = Field(description="null: still down")
    duration_seconds: float
    reason: str | None


class StatusPage(BaseModel):
    """``GET /status.json``; ``GET /status`` shows the same as HTML."""

    title: str
    description: str
    generated_at: Timestamp
    sites_down: int
    sites: list[StatusSite]
    incidents: list[StatusIncident] = Field(
        description=f"the last {INCIDENTS} incidents of the public sites, newest first"
    )


def _state(site: SiteView) -> State:
    if site.paused:
        return "paused"
    return {Status.UP: "up", Status.DOWN: "down"}.get(site.status, "pending")  # type: ignore[return-value]


Span = tuple[int, int]


def _uptime(
    start: int, end: int, incidents: list[Span], pauses: Paused
) -> tuple[float | None, float]:
    """Uptime % and down seconds of [start, end], as ``reports.uptime_window`` counts them:
    monitored time less paused spans, down time the incidents' (ongoing: to ``end``) less
    their paused part. (None, 0) when nothing in it was monitored."""
    if start >= end:
        return None, 0.0
    down = sum(max(0, min(e, end) - max(s, start)) for s, e in incidents)
    paused_ms, paused_down, _ = pauses.within(start, end)
    monitored, down = end - start - paused_ms, down - paused_down
    if monitored <= 0:
        return None, 0.0
    return round(100 * (monitored - down) / monitored, 4), down / 1000


def _days(
    *, now: int, first: int | None, since: int, incidents: list[Span], pauses: Paused
) -> list[StatusDay]:
    """Each UTC day from ``since``: the day up to ``now``, from the first finished check."""
    days = []
    for start in range(since, now, DAY):
        end = min(start + DAY, now)
        percent, down = _uptime(
            max(start, first) if first is not None else end, end, incidents, pauses
        )
        days.append(
            StatusDay(
                date=datetime.fromtimestamp(start / 1000, UTC).date().isoformat(),
                uptime_percent=percent,
                down_seconds=down,
            )
        )
    return days


async def _rollup_hour_done(store: Store) -> int | None:
    """How far ``rollup_hour`` reaches (its watermark): after it, only raw rows have the hours."""
    rows = await store.reader.execute_fetchall(
        "SELECT value FROM meta WHERE key = 'rollup_hour'", ()
    )
    return int(rows[0][0]) if rows else None


async def _response_times(
    store: Store, site_id: int, *, now: int, done: int | None
) -> list[StatusPoint]:
    """Hourly averages of the last 24 h: rollups up to their watermark, raw rows after it."""
    since = now // HOUR * HOUR - 23 * HOUR
    done = since if done is None else max(since, min(done, now))
    rows = await store.reader.execute_fetchall(
        "SELECT bucket, rt_sum, checks FROM rollup_hour"
        " WHERE site_id = ?1 AND bucket >= ?2 AND bucket < ?3 AND checks > 0"
        " UNION ALL SELECT checked_at / ?4 * ?4, sum(response_time_ms), count(*) FROM history"
        " WHERE site_id = ?1 AND checked_at >= ?3 AND status <> 0 AND response_time_ms IS NOT NULL"
        " GROUP BY 1",
        (site_id, since, done, HOUR),
    )
    sums: dict[int, list[int]] = {}
    for bucket, rt_sum, checks in rows:
        acc = sums.setdefault(bucket, [0, 0])
        acc[0] += rt_sum
        acc[1] += checks
    return [StatusPoint(hour=h, avg_ms=round(s / c, 1)) for h, (s, c) in sorted(sums.items()) if c]


def _public_reason(reason: str | None, view: SiteView | None) -> str | None:
    """A reason as the page may show it: without the site's host name unless its URL is shown
    (a TLS or name-lookup error names the host the operator chose not to publish)."""
    if reason is None or view is None or view.show_url:
        return reason
    host = URL(view.url).host
    return reason.replace(host, "(host)") if host else reason


async def _incidents(store: Store, views: dict[int, SiteView], *, now: int) -> list[StatusIncident]:
    rows = await store.reader.execute_fetchall(
        "SELECT i.site_id, i.started_at, i.ended_at, i.reason FROM incidents i"
        " JOIN sites s ON s.id = i.site_id WHERE s.public = 1 ORDER BY i.id DESC LIMIT ?",
        (INCIDENTS,),
    )
    return [
        StatusIncident(
            site_id=site_id,
            site_name=views[site_id].name if site_id in views else "",
            started_at=started,
            ended_at=ended,
            duration_seconds=((ended if ended is not None else now) - started) / 1000,
            reason=_public_reason(reason, views.get(site_id)),
        )
        for site_id, started, ended, reason in rows
    ]


async def _site(
    store: Store, view: SiteView, *, now: int, retention: Retention, since: int, done: int | None
) -> StatusSite:
    """One site's part: some seven indexed queries, none over history but the last hours'."""
    first = await first_result(store, view, now=now, retention=retention)
    starts = {
        w: window_start(w, now=now, first=first, retention=retention) if first is not None else now
        for w in WINDOWS
    }
    earliest = min(since, *starts.values())
    pauses = await paused(store, view.id, since=earliest, now=now)
    rows = await store.reader.execute_fetchall(
        "SELECT started_at, coalesce(ended_at, ?1) FROM incidents"
        " WHERE site_id = ?2 AND started_at < ?1 AND coalesce(ended_at, ?1) > ?3",
        (now, view.id, earliest),
    )
    incidents = [(s, e) for s, e in rows]
    return StatusSite(
        id=view.id,
        name=view.name,
        url=view.url if view.show_url else None,
        state=_state(view),
        since=view.status_since,
        uptime=[
            StatusWindow(window=w, uptime_percent=_uptime(start, now, incidents, pauses)[0])
            for w, start in starts.items()
        ],
        days=_days(now=now, first=first, since=since, incidents=incidents, pauses=pauses),
        response_times=await _response_times(store, view.id, now=now, done=done),
    )


async def build(
    store: Store, *, now: int, retention: Retention, title: str, description: str
) -> StatusPage | None:
    """The page as of ``now``, or None when no site is public (the page is off)."""
    views = await store.list_site_views(now=now, public=True)
    if not views:
        return None
    since = (now // DAY - DAYS + 1) * DAY  # the first of the 90 UTC days
    done = await _rollup_hour_done(store)
    sites = [
        await _site(store, view, now=now, retention=retention, since=since, done=done)
        for view in views
    ]
    return StatusPage(
        title=title,
        description=description,
        generated_at=now,
        sites_down=sum(s.state == "down" for s in sites),
        sites=sites,
        incidents=await _incidents(store, {v.id: v for v in views}, now=now),
    )


@dataclass(frozen=True)
class Rendered:
    """One build: the data, its HTML (also gzipped: compressed once, not per visit), its JSON."""

    page: StatusPage
    html: bytes
    html_gzip: bytes
    json: bytes


Build = Callable[[], Awaitable[StatusPage | None]]
Render = Callable[[StatusPage], str]


def _render(page: StatusPage, render: Render) -> Rendered:
    html = render(page).encode()
    return Rendered(
        page, html, gzip.compress(html, compresslevel=6, mtime=0), page.model_dump_json().encode()
    )


@dataclass
class StatusCache:
    """The last build and when its data was read (``clock.monotonic``); see the module docstring.

    A build older than ``max_age`` is never served. One at least ``refresh_after`` old is served
    while a new one is made in the background, so under steady traffic no visitor waits for a
    build; only the first visit after a quiet spell does (and those arriving during it share it).
    Rendering and compressing run in a thread: some 10,000 bars are milliseconds of CPU that
    would otherwise hold up the checks and every other request on the loop.
    """

    clock: Clock
    max_age: float = CACHE_SECONDS
    refresh_after: float = CACHE_SECONDS * 0.7
    _built: tuple[float, Rendered | None] | None = None
    _building: asyncio.Task[Rendered | None] | None = field(default=None, repr=False)

    async def get(self, build: Build, render: Render) -> Rendered | None:
        """A build younger than ``max_age``. None: no site is public."""
        if self._built is not None:
            age = self.clock.monotonic() - self._built[0]
            if age < self.max_age:
                if age >= self.refresh_after:
                    self._start(build, render)
                return self._built[1]
        # shield: a client that hangs up must not cancel the build the others wait for
        return await asyncio.shield(self._start(build, render))

    def _start(self, build: Build, render: Render) -> asyncio.Task[Rendered | None]:
        if self._building is None:
            self._building = asyncio.create_task(self._rebuild(build, render), name="status-page")
            self._building.add_done_callback(_log_failure)
        return self._building

    async def _rebuild(self, build: Build, render: Render) -> Rendered | None:
        started = self.clock.monotonic()
        try:
            page = await build()
            rendered = None
            if page is not None:
                loop = asyncio.get_running_loop()
                rendered = await loop.run_in_executor(None, _render, page, render)
            self._built = (started, rendered)
            return rendered
        finally:
            self._building = None

    async def close(self) -> None:
        """Stop a build in progress (at shutdown: the database is about to close)."""
        if self._building is not None:
            self._building.cancel()
            with suppress(asyncio.CancelledError):
                await self._building


def _log_failure(task: asyncio.Task[Rendered | None]) -> None:
    """A background build that failed is logged here (no visitor awaited it); one that a visitor
    awaited fails that request too, through the error middleware."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("status page build failed", exc_info=error)
