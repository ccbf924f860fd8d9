"""One APScheduler job per site, on a fixed grid, rebuilt from the store at every start.

The ``sites`` table is the source of truth; jobs live in memory (``jobstore.HeapJobStore``).
Each job fires at ``first_run + k * interval`` (IntervalTrigger's grid), so a slow check never
shifts later ones. A new site runs at once; at start-up each site resumes its own grid where
it can, and overdue sites are spread over ``min(interval, startup_spread)`` so a restart
does not fire every check in the same second.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from uptimed.alerting import counting_failures
from uptimed.db import Store
from uptimed.jobstore import HeapJobStore
from uptimed.metrics import Metrics
from uptimed.models import CHECK_FIELDS, Site
from uptimed.monitor import Monitor

log = logging.getLogger(__name__)

_GOLDEN = 0.6180339887498949  # spreads consecutive ids evenly over [0, 1)


def job_id(site_id: int) -> str:
    return f"site:{site_id}"


def decides_check(site: Site) -> str:
    """The settings a check depends on (all but the name and whether it is paused), as JSON:
    Python would say 1 == 1.0 == True, and json_expected 1 is not true."""
    return site.model_dump_json(include=CHECK_FIELDS)


def first_run_at(
    site: Site, last_checked_ms: int | None, now: datetime, spread: float, *, retrying: bool = False
) -> datetime:
    """When a site's first check after start-up is due: never later than one interval away;
    ``retrying`` (failures were being counted at the stop): one retry interval away.

    A site whose grid point passed less than an interval ago (during the stop, or while the
    sites were being read) runs as long after now as it is late: those due in a restart's few
    seconds run in the few seconds after it, at the rate they came due. Spread afresh, some
    came a whole window after the start; put on their grid's next point, those that came due
    while 40,000 sites were read waited a whole interval."""
    seconds = site.check_interval_seconds
    if retrying and site.retry_interval_seconds is not None:
        seconds = min(seconds, site.retry_interval_seconds)
    interval = timedelta(seconds=seconds)
    window = min(seconds, spread)
    if last_checked_ms is not None:
        due = datetime.fromtimestamp(last_checked_ms / 1000, tz=UTC) + interval
        if now < due <= now + interval:
            return due
        late = now - due
        if timedelta(0) <= late < interval and late <= timedelta(seconds=window):
            return now + late
    return now + timedelta(seconds=(site.id * _GOLDEN) % 1.0 * window)


class GridTrigger(IntervalTrigger):
    """An interval trigger that stays on its grid (``start_date + k * interval``) also after a
    run was moved off it: a retry while failures are counted (``retry_interval_seconds``) is
    followed by the grid's next point, not by a run one interval after the retry.

    After a long gap (a suspended VM) it skips to the grid's last point before ``now``:
    APScheduler asks for every missed run before coalescing them into one, which for a day
    of a 1-second site was 86,400 calls per site in one go of the event loop."""

    __slots__ = ()

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        if previous_fire_time is None:
            return super().get_next_fire_time(previous_fire_time, now)  # type: ignore[no-any-return]
        start, length = self.start_date.timestamp(), self.interval_length
        # The tiny slack keeps float error from putting a grid point just before itself.
        after = math.floor((previous_fire_time.timestamp() - start) / length + 1e-6) + 1
        missed = math.floor((now.timestamp() - start) / length + 1e-6)  # the last one <= now
        return datetime.fromtimestamp(start + max(after, missed) * length, tz=self.timezone)


TICK_SECONDS = 0.01
CLOCK_STEP_SECONDS = 2.0  # wall and monotonic time disagreeing by this much is a clock step
CLOCK_WATCH_SECONDS = 1.0  # the longest the scheduler sleeps, so a step is seen promptly


class _TickingScheduler(AsyncIOScheduler):
    """Wakes at most every ``TICK_SECONDS`` and starts every job due by then.

    The stock scheduler sets a timer for the very next job. With thousands of checks a second
    that job is often under a millisecond away; uvloop rounds such a timer down to zero, so the
    loop spun until it was due (measured: a whole core at 2,000 runs/s). Every wake-up also went
    through ``call_soon_threadsafe``. A 10 ms tick costs a check at most 10 ms of lateness.

    Its jobs are due at wall-clock times, and the wall clock can step (NTP after a bad start, a
    VM resumed, an operator's ``date -s``): an hour back and no check would run for an hour, an
    hour forward and every check would run at once. So before each look at the due jobs the
    wall clock is compared with the monotonic one, and after a step every job moves by the
    step: each check keeps its place in real time. Steps under ``CLOCK_STEP_SECONDS`` are left
    alone (they make one check that much early or late).
    """

    _clocks: tuple[float, float] | None = None  # (wall, monotonic) when jobs were last looked at

    def _process_jobs(self) -> float | None:
        self._follow_wall_clock()
        wait = super()._process_jobs()
        return None if wait is None else min(wait, CLOCK_WATCH_SECONDS)

    def _follow_wall_clock(self) -> None:
        wall, mono = time.time(), time.monotonic()
        if self._clocks is not None:
            step = (wall - self._clocks[0]) - (mono - self._clocks[1])
            if abs(step) >= CLOCK_STEP_SECONDS:
                jobs = self._jobstores["default"]
                assert isinstance(jobs, HeapJobStore)
                jobs.shift(timedelta(seconds=step))
                log.warning(
                    "wall clock stepped by %+.1fs: every check moved by the same, keeping its"
                    " place in real time",
                    step,
                )
        self._clocks = (wall, mono)

    def _start_timer(self, wait_seconds: float | None) -> None:
        self._stop_timer()
        if wait_seconds is not None:
            self._timeout = self._eventloop.call_later(max(wait_seconds, TICK_SECONDS), self._tick)

    def _tick(self) -> None:
        self._timeout = None
        self._start_timer(self._process_jobs())


RESUME_CHUNK = 500  # jobs added between two yields to the loop (about 30 ms)
SKIP_REPORT_SECONDS = 60.0  # a site whose check outlasts its interval is named once a minute


class _SkipsReportedPerSite(logging.Filter):
    """Drops APScheduler's own warning for a skipped run: it names no site and repeats every
    interval. ``Scheduler`` reports skips instead, per site and at most once a minute."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in str(record.msg)


logging.getLogger("apscheduler.scheduler").addFilter(_SkipsReportedPerSite())


class Scheduler:
    """Owns the AsyncIOScheduler; start it from inside the running event loop.

    ``metrics`` hears how late each site's run started (against its due time) and of runs
    skipped because the site's previous check was still running."""

    def __init__(
        self,
        monitor: Monitor,
        *,
        startup_spread: float,
        maintenance: Callable[[], Awaitable[None]] | None = None,
        maintenance_interval: float = 60,
        followups: Callable[[], Awaitable[None]] | None = None,
        followups_interval: float = 5,
        monotonic: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        self._monitor = monitor
        metrics = metrics or Metrics(process=False)
        self._late = metrics.lateness.observe
        self._skip = metrics.skipped.inc
        self._monotonic = monotonic
        self._skips: dict[int, tuple[float, int]] = {}  # site id -> (last report, skips since)
        self._resuming = False
        self._restored = asyncio.Event()  # resume() has restored every stored site's state
        self._latest: dict[int, Site] = {}  # sites PATCHed while resume() was scheduling
        self._run_check = self._check  # one bound method for all jobs, not one each
        self._spread = startup_spread
        self._periodic = {
            name: (job, interval)
            for name, job, interval in (
                ("maintenance", maintenance, maintenance_interval),
                ("followups", followups, followups_interval),
            )
            if job is not None
        }
        self._aps = _TickingScheduler(
            timezone=UTC,
            jobstores={"default": HeapJobStore()},
            job_defaults={
                "max_instances": 1,  # checks of one site never overlap
                "coalesce": True,  # a backlog of missed runs becomes one run
                "misfire_grace_time": None,  # a late check still runs: late beats never
            },
        )
        self._aps.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)
        self._aps.add_listener(self._submitted, EVENT_JOB_SUBMITTED)

    def _submitted(self, event: JobSubmissionEvent) -> None:
        """A site's run was handed to the loop: its lateness is now minus its due time (the
        last of them when missed runs were coalesced). Periodic jobs are not checks."""
        if event.job_id not in self._periodic:
            self._late(max(0.0, time.time() - event.scheduled_run_times[-1].timestamp()))

    def _skipped(self, event: JobSubmissionEvent) -> None:
        """A run came due while the site's previous check was still going (max_instances)."""
        job = self._aps.get_job(event.job_id)
        if job is None or event.job_id in self._periodic:
            return
        self._skip()
        site: Site = job.args[0]
        now = self._monotonic()
        last, count = self._skips.get(site.id, (-SKIP_REPORT_SECONDS, 0))
        if now - last < SKIP_REPORT_SECONDS:
            self._skips[site.id] = (last, count + 1)
            return
        self._skips[site.id] = (now, 0)
        log.warning(
            "check still running at its next run, run skipped site=%d name=%r interval=%ds"
            " skipped_since_last_report=%d (said at most once a minute per site)",
            site.id,
            site.name,
            site.check_interval_seconds,
            count + 1,
        )

    def start(self) -> None:
        """Start firing (new sites can be scheduled at once); ``resume`` adds the stored ones."""
        for name, (job, interval) in self._periodic.items():
            self._aps.add_job(
                job,
                IntervalTrigger(seconds=interval, timezone=UTC),
                id=name,
                replace_existing=True,
                next_run_time=datetime.now(UTC) + timedelta(seconds=min(10.0, interval)),
            )
        self._aps.start()

    async def _check(self, site: Site) -> None:
        """A site's job: its check, then, while failures are counted towards its threshold,
        the next one after ``retry_interval_seconds`` if that comes before the grid's."""
        await self._monitor.run_check(site)
        retry = site.retry_interval_seconds
        if retry is None or retry >= site.check_interval_seconds:
            return
        state = self._monitor.states.get(site.id)
        job = self._aps.get_job(job_id(site.id))
        if state is None or job is None or not counting_failures(state):
            return
        at = datetime.now(UTC) + timedelta(seconds=retry)
        if job.next_run_time is not None and at < job.next_run_time:
            job.modify(next_run_time=at)

    async def resume(self, store: Store) -> None:
        """Schedule every stored site, in chunks, so the API answers while 100,000 are added.

        Jobs are added in the order of their first run, so the soonest are scheduled first, and
        while paused, so APScheduler does not wake up once per job.
        """
        started = time.monotonic()
        self._resuming = True
        try:
            count = await self._resume(store)
        finally:
            self._resuming = False
            self._restored.set()
            self._latest.clear()
        log.info("scheduler resumed sites=%d seconds=%.2f", count, time.monotonic() - started)

    async def _resume(self, store: Store) -> int:
        sites = await store.list_sites()
        states = await store.site_states()
        for site in sites:
            if site.id in states:
                self._monitor.restore(site.id, *states[site.id])
            if site.paused:
                self._monitor.pause(site.id)
            self._monitor.set_mute(site)
        await self._monitor.certificates.restore()
        self._restored.set()
        sites = [site for site in sites if not site.paused]
        now = datetime.now(UTC)
        plan: list[tuple[datetime, Site]] = []
        for offset in range(0, len(sites), RESUME_CHUNK * 4):
            for site in sites[offset : offset + RESUME_CHUNK * 4]:
                state, last = states.get(site.id, (None, None))
                retrying = state is not None and counting_failures(state)
                plan.append((first_run_at(site, last, now, self._spread, retrying=retrying), site))
            await asyncio.sleep(0)
        plan.sort(key=lambda item: item[0])
        for offset in range(0, len(plan), RESUME_CHUNK):
            self._aps.pause()
            try:
                for first_run, read in plan[offset : offset + RESUME_CHUNK]:
                    site = self._latest.get(read.id, read)  # as a PATCH left it meanwhile
                    if site is not read and (site.paused or self._aps.get_job(job_id(site.id))):
                        continue  # paused, or scheduled by that PATCH already
                    if site.id in self._monitor.states:  # not deleted meanwhile
                        self.schedule(site, first_run=first_run)
            finally:
                self._aps.resume()
            await asyncio.sleep(0)
        # A site deleted between the read above and its scheduling must not keep a job.
        alive = set(await store.site_ids())
        for _, site in plan:
            if site.id not in alive:
                self.unschedule(site.id)
                self._monitor.remove(site.id)
        return len(plan)

    def schedule(self, site: Site, *, first_run: datetime | None = None) -> None:
        """(Re)schedule a site's checks; the first runs at ``first_run``.

        The default is the site's ``created_at`` (never later than now): the grid then starts
        at the moment the API stamped, not a write-lock wait later, so lateness is measured
        from the time a user can see."""
        now = datetime.now(UTC)
        start = first_run or min(now, datetime.fromtimestamp(site.created_at / 1000, tz=UTC))
        self._aps.add_job(
            self._run_check,
            GridTrigger(seconds=site.check_interval_seconds, start_date=start, timezone=UTC),
            args=(site,),
            id=job_id(site.id),
            name="check",  # the id names the site; a per-job string is 100 bytes x 100,000
            replace_existing=True,
            next_run_time=start,
        )

    async def changed(self, before: Site, after: Site) -> None:
        """A site's settings changed (PATCH). Paused: its checks stop. Resumed, or anything
        that decides the check changed: its check in flight is abandoned and the next runs
        now, starting the new grid. Only the name: the grid stays, the jobs hear the name.

        At start-up it waits until the stored states are restored (a check before that would
        be dropped); ``resume()`` then schedules the site as changed here, not as it read it."""
        await self._restored.wait()
        if after.id not in self._monitor.states:  # deleted meanwhile
            return
        self._monitor.set_mute(after)
        if self._resuming:
            self._latest[after.id] = after
        if after.paused:
            self._monitor.pause(after.id)
            self.unschedule(after.id)
            await self._monitor.interrupt(after.id)
        elif before.paused or decides_check(before) != decides_check(after):
            self._monitor.unpause(after.id)
            await self._monitor.interrupt(after.id)
            if after.id in self._monitor.states:
                self.schedule(after, first_run=datetime.now(UTC))
        else:
            job = self._aps.get_job(job_id(after.id))
            if job is not None:
                job.modify(args=(after,))

    def unschedule(self, site_id: int) -> None:
        self._skips.pop(site_id, None)
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
