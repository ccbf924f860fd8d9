"""Read-only history queries for the API: pages of checks, incidents, uptime over windows.

Every query walks the primary key (site, time) of its table, so its cost follows the rows it
returns, not the size of the database. Windows up to the raw retention are computed from raw
rows (exact); longer ones use hour and day rollups for the part raw rows no longer cover.
Downtime always comes from the incidents table, which is exact for the rollups' lifetime.
Monitored time begins with a site's first finished check (``first_result``): before it the
status is INITIAL, which is neither up nor down, so a window holds nothing to report until then.
Paused spans (the ``pauses`` table) are not monitored either: no check runs, yet an incident open
when the site was paused stays open, so its paused part is taken out of the down time too.
The spans when the monitor itself was offline (the ``offline`` table, every site's) count as
paused: failed checks were set aside then, so nobody knows how the sites were doing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from uptimed.db.connection import fetch_one
from uptimed.db.maintenance import DAY, HOUR, LEVELS, MINUTE, Retention
from uptimed.db.schema import HIST_COLUMNS, RT_BUCKETS, STATUS_CODES, rt_bucket_sql
from uptimed.db.store import Store
from uptimed.intervals import Paused
from uptimed.models import (
    HistoryQuery,
    Incident,
    ResponseTimes,
    Site,
    Status,
    UptimeWindow,
)

_INCIDENT_SELECT = "SELECT id, site_id, started_at, ended_at, reason, checks_failed FROM incidents"


def _ms(value: object) -> int:
    return int(value.timestamp() * 1000)  # type: ignore[attr-defined]


_ISO = "strftime('%Y-%m-%dT%H:%M:%fZ', {} / 1000.0, 'unixepoch')"
_HISTORY_JSON_SELECT = (
    "SELECT CASE status WHEN 0 THEN 'INITIAL' WHEN 1 THEN 'UP' ELSE 'DOWN' END,"
    f" response_time_ms, {_ISO.format('checked_at')}, {_ISO.format('status_since')}, reason,"
    " checked_at FROM history"
)
HISTORY_FIELDS = ("status", "response_time_ms", "last_checked", "last_status_change", "reason")


async def history_page(
    store: Store, site_id: int, query: HistoryQuery
) -> tuple[list[dict[str, object]], int | None]:
    """The newest ``query.limit`` matching rows, oldest first, and the cursor to older ones.

    Rows come out already in the API's shape (``HistoryRow`` as JSON, times formatted by
    SQLite): a page of 10,000 rows then costs no model objects at all.
    """
    where, args = ["site_id = ?"], [site_id]
    if query.since is not None:
        where.append("checked_at >= ?")
        args.append(_ms(query.since))
    if query.until is not None:
        where.append("checked_at < ?")
        args.append(_ms(query.until))
    if query.cursor is not None:
        where.append("checked_at < ?")
        args.append(query.cursor)
    if query.status is not None:
        where.append("status = ?")
        args.append(STATUS_CODES[query.status])
    rows = await store.reader.execute_fetchall(
        f"{_HISTORY_JSON_SELECT} WHERE {' AND '.join(where)} ORDER BY checked_at DESC LIMIT ?",
        (*args, query.limit + 1),
    )
    more = len(rows) > query.limit
    page = [dict(zip(HISTORY_FIELDS, row[:5], strict=True)) for row in rows[: query.limit]]
    page.reverse()
    return page, (rows[query.limit - 1][5] if more else None)


def _incident(row: object, now: int) -> Incident:
    """``duration_seconds`` is wall time from the first failure to the recovery (or ``now``),
    paused time included: the site was down for all of it as far as anyone knows, and the
    incident's own ``started_at``/``ended_at`` would not add up otherwise. Only ``/uptime``,
    which reports monitored time, leaves paused spans out."""
    id_, site_id, started, ended, reason, failed = row  # type: ignore[misc]
    return Incident.model_construct(
        id=id_,
        site_id=site_id,
        started_at=started,
        ended_at=ended,
        duration_seconds=((ended if ended is not None else now) - started) / 1000,
        reason=reason,
        checks_failed=failed,
    )


async def incidents_page(
    store: Store, site_id: int | None, *, limit: int, cursor: int | None, now: int
) -> tuple[list[Incident], int | None]:
    """Newest first; the cursor is the id below which the next page starts."""
    where, args = [], []
    if site_id is not None:
        where.append("site_id = ?")
        args.append(site_id)
    if cursor is not None:
        where.append("id < ?")
        args.append(cursor)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = await store.reader.execute_fetchall(
        f"{_INCIDENT_SELECT}{clause} ORDER BY id DESC LIMIT ?", (*args, limit + 1)
    )
    page = [_incident(row, now) for row in rows[:limit]]
    return page, (page[-1].id if len(rows) > limit else None)


_UNIT_MS = {"m": MINUTE, "h": HOUR, "d": DAY}


def window_ms(window: str) -> int:
    """``30m``, ``24h`` or ``7d`` in milliseconds."""
    return int(window[:-1]) * _UNIT_MS[window[-1]]


async def first_result(store: Store, site: Site, *, now: int, retention: Retention) -> int | None:
    """When the site's first check ran (its ``checked_at``), or None while none has finished.

    Exact while the raw history still holds the INITIAL row: the first row with another
    ``status_since`` is the first check that decided a status (``OPTIMISATION=1`` moves a
    row's ``checked_at``, never its ``status_since``; checks counted towards a threshold
    before it keep the INITIAL row's). Once pruning took the INITIAL row, the first bucket of
    the finest rollup level not yet pruned back to that time holds the first check. Within it
    the first check is known exactly when every check of the bucket had one status, which then
    began with the first check: the oldest incident's start (all DOWN) or the oldest raw row's
    ``status_since`` (the status never changed since), if they fall in the bucket. Otherwise
    the bucket's start stands for it, as the window's start is rounded at that resolution
    anyway.
    """
    rows = await store.reader.execute_fetchall(
        "SELECT status, status_since FROM history WHERE site_id = ? ORDER BY checked_at LIMIT 1",
        (site.id,),
    )
    if rows and rows[0][0] == STATUS_CODES[Status.INITIAL]:
        # The first row whose state is no longer INITIAL: checks counted towards a threshold
        # before it (failed, while the site was still INITIAL) carry the INITIAL row's since.
        row = await fetch_one(
            store.reader,
            "SELECT status_since FROM history WHERE site_id = ? AND status_since <> ?"
            " ORDER BY checked_at LIMIT 1",
            (site.id, rows[0][1]),
        )
        return None if row is None else row[0]
    raw_since = rows[0][1] if rows else None
    firsts: dict[str, tuple[int, int, int]] = {}  # level -> its oldest (bucket, checks, up)
    for table, _ in LEVELS:
        row = await fetch_one(
            store.reader,
            f"SELECT bucket, checks, up FROM {table} WHERE site_id = ? ORDER BY bucket LIMIT 1",
            (site.id,),
        )
        if row is not None:
            firsts[table] = (row[0], row[1], row[2])
    if not firsts:
        return raw_since
    oldest = min(bucket for bucket, _, _ in firsts.values())  # the coarsest floor of it
    kept = {
        "rollup_minute": retention.minute_days,
        "rollup_hour": retention.hour_days,
        "rollup_day": retention.day_days,
    }
    # Finest first; a level whose pruning never reached back to ``oldest`` holds the bucket of
    # the first check. None does once even day rollups are pruned: the oldest left stands in.
    reaching = [t for t, _ in LEVELS if t in firsts and oldest >= now - kept[t] * DAY]
    table = reaching[0] if reaching else min(firsts, key=lambda t: firsts[t][0])
    size = dict(LEVELS)[table]
    bucket, checks, up = firsts[table]
    exact: list[int] = []
    if up == checks and raw_since is not None:
        exact.append(raw_since)
    elif up == 0:
        row = await fetch_one(
            store.reader,
            "SELECT started_at FROM incidents WHERE site_id = ? ORDER BY id LIMIT 1",
            (site.id,),
        )
        exact.extend(v for v in (None if row is None else row[0], raw_since) if v is not None)
    inside = [v for v in exact if bucket <= v < bucket + size]
    return max(site.created_at, min(inside) if inside else bucket)


@dataclass
class _Stats:
    checks: int = 0
    down: int = 0
    rt_sum: int = 0
    rt_max: int | None = None
    hist: list[int] | None = None

    def merge(self, other: _Stats) -> None:
        self.add(other.checks, other.down, other.rt_sum, other.rt_max, other.hist or [])

    def add(self, checks: int, down: int, rt_sum: int, rt_max: int | None, hist: list[int]) -> None:
        self.checks += checks
        self.down += down
        self.rt_sum += rt_sum
        if rt_max is not None:
            self.rt_max = rt_max if self.rt_max is None else max(self.rt_max, rt_max)
        self.hist = (
            hist if self.hist is None else [a + b for a, b in zip(self.hist, hist, strict=True)]
        )


_RAW_HIST = ", ".join(f"coalesce(sum(b = {i}), 0)" for i in range(len(HIST_COLUMNS)))
_ROLLUP_SUMS = ", ".join(f"coalesce(sum({h}), 0)" for h in HIST_COLUMNS)


async def _stats(store: Store, sql: str, args: tuple[object, ...]) -> _Stats:
    """One row of (checks, down, rt_sum, rt_max, *histogram) as ``_Stats``."""
    row = await fetch_one(store.reader, sql, args)
    assert row is not None
    stats = _Stats()
    stats.add(row[0], row[1], row[2], row[3], list(row[4:]))
    return stats


async def _raw_stats(store: Store, site_id: int, start: int, end: int) -> _Stats:
    return await _stats(
        store,
        "SELECT count(*), coalesce(sum(status = 2), 0), coalesce(sum(response_time_ms), 0),"
        f" max(response_time_ms), {_RAW_HIST} FROM (SELECT status, response_time_ms,"
        f" {rt_bucket_sql('response_time_ms')} AS b FROM history"
        " WHERE site_id = ? AND checked_at >= ? AND checked_at < ? AND status <> 0)",
        (site_id, start, end),
    )


async def _rollup_stats(store: Store, table: str, site_id: int, start: int, end: int) -> _Stats:
    return await _stats(
        store,
        "SELECT coalesce(sum(checks), 0), coalesce(sum(checks - up), 0),"
        f" coalesce(sum(rt_sum), 0), max(rt_max), {_ROLLUP_SUMS} FROM {table}"
        " WHERE site_id = ? AND bucket >= ? AND bucket < ?",
        (site_id, start, end),
    )


async def _exact_p95(store: Store, site_id: int, start: int, end: int, checks: int) -> int | None:
    if not checks:
        return None
    row = await fetch_one(
        store.reader,
        "SELECT response_time_ms FROM history"
        " WHERE site_id = ? AND checked_at >= ? AND checked_at < ? AND status <> 0"
        " ORDER BY response_time_ms LIMIT 1 OFFSET ?",
        (site_id, start, end, math.ceil(0.95 * checks) - 1),
    )
    return None if row is None else row[0]


def _hist_p95(hist: list[int], checks: int, rt_max: int | None) -> int | None:
    """The upper edge of the bucket holding the 95th percentile (never above the maximum)."""
    if not checks:
        return None
    rank, seen = math.ceil(0.95 * checks), 0
    for i, count in enumerate(hist):
        seen += count
        if seen >= rank:
            bound = RT_BUCKETS[i] if i < len(RT_BUCKETS) else None
            return bound if bound is not None and (rt_max is None or bound < rt_max) else rt_max
    return rt_max


async def _downtime(store: Store, site_id: int, start: int, end: int) -> tuple[int, int]:
    """How many incidents touch [start, end] and their milliseconds inside it."""
    async with store.reader.execute(
        "SELECT count(*), coalesce(sum(min(coalesce(ended_at, ?2), ?2) - max(started_at, ?1)), 0)"
        " FROM incidents WHERE site_id = ?3 AND started_at <= ?2 AND coalesce(ended_at, ?2) > ?1",
        (start, end, site_id),
    ) as cur:
        row = await cur.fetchone()
    assert row is not None
    return row[0], row[1]


async def paused(store: Store, site_id: int, *, since: int, now: int) -> Paused:
    """The site's pauses and the monitor's offline spans (every site's) ending after
    ``since`` (an open one runs to ``now``), and the incidents during them; no incident query
    for a site neither paused nor offline since then. Offline, failed checks were set aside,
    so that time is not monitored either, nor down."""
    rows = await store.reader.execute_fetchall(
        "SELECT started_at, min(coalesce(ended_at, ?3), ?3) FROM pauses"
        " WHERE site_id = ?1 AND started_at < ?3 AND coalesce(ended_at, ?3) > ?2"
        " UNION ALL SELECT started_at, min(coalesce(ended_at, ?3), ?3) FROM offline"
        " WHERE started_at < ?3 AND coalesce(ended_at, ?3) > ?2",
        (site_id, since, now),
    )
    spans = [(start, end) for start, end in rows]
    if not spans:
        return Paused()
    # An open incident runs to ``now``, not to the last pause's end: the time after it counts.
    rows = await store.reader.execute_fetchall(
        "SELECT started_at, coalesce(ended_at, ?4) FROM incidents"
        " WHERE site_id = ?1 AND started_at < ?3 AND coalesce(ended_at, ?4) > ?2",
        (site_id, min(s for s, _ in spans), max(e for _, e in spans), now),
    )
    return Paused(spans, [(start, end) for start, end in rows])


# Up to this many checks the p95 is computed from every response time; beyond, from the
# rollups' histograms (an upper bucket edge), which costs the same for a day or a year.
EXACT_P95_MAX_CHECKS = 20_000


def _ceil(value: int, size: int) -> int:
    return -(-value // size) * size


async def _watermark(store: Store, table: str) -> int | None:
    row = await fetch_one(store.reader, "SELECT value FROM meta WHERE key = ?", (table,))
    return None if row is None else int(row[0])


async def _recent_stats(store: Store, site_id: int, start: int, now: int) -> _Stats:
    """Exact figures for [start, now] within the raw retention: raw rows at the edges, the
    finished hours and minutes from their rollups (sums, counts and maxima add up exactly)."""
    stats = _Stats()
    end = now + 1
    edge = min(_ceil(start, HOUR), end)
    stats.merge(await _raw_stats(store, site_id, start, edge))
    cursor = edge
    for table in ("rollup_hour", "rollup_minute"):
        done = await _watermark(store, table)
        if done is not None and done > cursor:
            stats.merge(await _rollup_stats(store, table, site_id, cursor, min(done, end)))
            cursor = min(done, end)
    if cursor < end:
        stats.merge(await _raw_stats(store, site_id, cursor, end))
    return stats


async def uptime(
    store: Store, site: Site, windows: list[str], *, now: int, retention: Retention
) -> list[UptimeWindow]:
    """The figures of each window, all ending at ``now``."""
    first = await first_result(store, site, now=now, retention=retention)
    # A day earlier than the longest window: rollups round a window's start down to the day.
    since = now - max(map(window_ms, windows), default=0) - DAY
    pauses = await paused(store, site.id, since=since, now=now)
    return [
        await uptime_window(
            store, site, w, now=now, retention=retention, first=first, pauses=pauses
        )
        for w in windows
    ]


async def uptime_window(
    store: Store,
    site: Site,
    window: str,
    *,
    now: int,
    retention: Retention,
    first: int | None,
    pauses: Paused | None = None,
) -> UptimeWindow:
    """The figures of one window ending at ``now``. ``first`` is ``first_result(site)``: the
    window starts there if that is later, and holds no monitored time while it is None.
    ``pauses`` (read since before the window's start) are taken out of the monitored time and
    the down time, from the same start, rounded or not, as the incidents."""
    if first is None or first > now:
        return _unknown(window, now)
    start = max(now - window_ms(window), first)
    raw_from = now - int(retention.raw_days * DAY)
    stats = _Stats()
    resolution = "raw"
    recent_from = start
    if start < raw_from:  # older than the raw rows: hour and day rollups, edge rounded
        recent_from = _ceil(raw_from, HOUR)
        hours_from = _hours_from(now, retention)
        if start >= hours_from:
            resolution, edge = "1h", start // HOUR * HOUR
            stats.merge(await _rollup_stats(store, "rollup_hour", site.id, edge, recent_from))
        else:
            resolution, edge = "1d", start // DAY * DAY
            stats.merge(await _rollup_stats(store, "rollup_day", site.id, edge, hours_from))
            stats.merge(await _rollup_stats(store, "rollup_hour", site.id, hours_from, recent_from))
        start = window_start(window, now=now, first=first, retention=retention)
    stats.merge(await _recent_stats(store, site.id, recent_from, now))
    exact = resolution == "raw" and stats.checks <= EXACT_P95_MAX_CHECKS
    if exact:
        p95 = await _exact_p95(store, site.id, start, now + 1, stats.checks)
    else:
        p95 = _hist_p95(stats.hist or [], stats.checks, stats.rt_max)
    incidents, down_ms = await _downtime(store, site.id, start, now)
    paused_ms, paused_down_ms, hidden = (pauses or Paused()).within(start, now)
    monitored, down = now - start - paused_ms, down_ms - paused_down_ms
    return UptimeWindow.model_construct(
        window=window,
        start=start,
        end=now,
        uptime_percent=round(100 * (monitored - down) / monitored, 4) if monitored > 0 else None,
        checks=stats.checks,
        checks_down=stats.down,
        down_seconds=down / 1000,
        incidents=incidents - hidden,
        response_time_ms=ResponseTimes(
            avg=round(stats.rt_sum / stats.checks, 1) if stats.checks else None,
            p95=p95,
            p95_exact=exact,
            max=stats.rt_max,
        ),
        resolution=resolution,
    )


def _hours_from(now: int, retention: Retention) -> int:
    """Where the hour rollups begin to cover every hour (a day edge): before it, days."""
    return _ceil(now - int(retention.hour_days * DAY) + HOUR, DAY)


def window_start(window: str, *, now: int, first: int, retention: Retention) -> int:
    """Where a window's figures begin (``UptimeWindow.start``): at the first finished check if
    that is later; beyond the raw rows, rounded down to the hour or day of the rollups it reads.
    The first check is not rounded (nothing before it is monitored), and rounding it would
    count INITIAL time as up."""
    start = max(now - window_ms(window), first)
    if start >= now - int(retention.raw_days * DAY):
        return start
    edge = start // HOUR * HOUR if start >= _hours_from(now, retention) else start // DAY * DAY
    return max(edge, first)


def _unknown(window: str, now: int) -> UptimeWindow:
    """No check has finished: no monitored time, so nothing to report but zero counts."""
    return UptimeWindow.model_construct(
        window=window,
        start=now,
        end=now,
        uptime_percent=None,
        checks=0,
        checks_down=0,
        down_seconds=0.0,
        incidents=0,
        response_time_ms=ResponseTimes(avg=None, p95=None, p95_exact=True, max=None),
        resolution="raw",
    )
