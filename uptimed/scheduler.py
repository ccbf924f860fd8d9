"""One APScheduler job per site, on a fixed grid, rebuilt from the store at every start.

The ``sites`` table is the source of truth; jobs live in APScheduler's memory job store.
Each job fires at ``first_run + k * interval`` (IntervalTrigger's grid), so a slow check never
shifts later ones. A new site runs at once; at start-up each site resumes its own grid where
it can, and overdue sites are spread over ``min(interval, startup_spread)`` so a restart
does not fire every check in the same second.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from uptimed.models import Site
from uptimed.monitor import Monitor

log = logging.getLogger(__name__)

_GOLDEN = 0.6180339887498949  # spreads consecutive ids evenly over [0, 1)


def job_id(site_id: int) -> str:
    return f"site:{site_id}"


def first_run_at(site: Site, last_checked_ms: int | None, now: datetime, spread: float) -> datetime:
    """When a site's first check after start-up is due: never later than one interval away."""
    interval = timedelta(seconds=site.check_interval_seconds)
    if last_checked_ms is not None:
        due = datetime.fromtimestamp(last_checked_ms / 1000, tz=UTC) + interval
        if now < due <= now + interval:
            return due
    window = min(site.check_interval_seconds, spread)
    return now + timedelta(seconds=(site.id * _GOLDEN) % 1.0 * window)


class Scheduler:
    """Owns the AsyncIOScheduler; start it from inside the running event loop."""

    def __init__(
        self,
        monitor: Monitor,
        *,
        startup_spread: float,
        maintenance: Callable[[], Awaitable[None]] | None = None,
        maintenance_interval: float = 60,
    ) -> None:
        self._monitor = monitor
        self._spread = startup_spread
        self._maintenance = maintenance
        self._maintenance_interval = maintenance_interval
        self._aps = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={
                "max_instances": 1,  # checks of one site never overlap
                "coalesce": True,  # a backlog of missed runs becomes one run
                "misfire_grace_time": None,  # a late check still runs: late beats never
            },
        )

    def start(self, sites: list[Site], last_checked: dict[int, int | None]) -> None:
        now = datetime.now(UTC)
        for site in sites:
            self.schedule(
                site, first_run=first_run_at(site, last_checked.get(site.id), now, self._spread)
            )
        if self._maintenance is not None:
            self._aps.add_job(
                self._maintenance,
                IntervalTrigger(seconds=self._maintenance_interval, timezone=UTC),
                id="maintenance",
                replace_existing=True,
                next_run_time=now + timedelta(seconds=min(10.0, self._maintenance_interval)),
            )
        self._aps.start()
        log.info("scheduler started sites=%d", len(sites))

    def schedule(self, site: Site, *, first_run: datetime | None = None) -> None:
        """(Re)schedule a site's checks; the first runs at ``first_run`` (default: now)."""
        start = first_run or datetime.now(UTC)
        self._aps.add_job(
            self._monitor.run_check,
            IntervalTrigger(seconds=site.check_interval_seconds, start_date=start, timezone=UTC),
            args=(site,),
            id=job_id(site.id),
            name=f"check {site.url}",
            replace_existing=True,
            next_run_time=start,
        )

    def unschedule(self, site_id: int) -> None:
        job = self._aps.get_job(job_id(site_id))
        if job is not None:
            job.remove()

    async def stop(self, grace: float) -> None:
        """Stop firing, let checks in flight finish (``grace`` seconds), then shut down."""
        if self._aps.running:
            self._aps.pause()
        await self._monitor.drain(grace)
        if self._aps.running:
            self._aps.shutdown(wait=False)
