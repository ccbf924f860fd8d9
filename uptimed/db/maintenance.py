"""Rollups and pruning, run by the scheduler's maintenance job in small transactions.

Raw check rows are aggregated per site into minute rollups, minutes into hours, hours into days
(UTC), each level after the one below it is complete; ``meta`` keeps each level's watermark (the
end of what is rolled up). Rows are pruned only once they are rolled up and past their retention,
so the file reaches a steady size: minute rollups 2 days, hours 90 days, days 5 years, raw rows
``history_retention_days``; incidents, pauses and offline spans live as long as day rollups,
delivered (or given-up) Discord messages as long as raw rows.
Every function takes ``now`` (epoch ms), so tests drive time by hand.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from uptimed.db.schema import HIST_COLUMNS, rt_bucket_sql
from uptimed.db.store import Store
from uptimed.models import MAX_SQLITE_INT

log = logging.getLogger(__name__)

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
# A check's row lands after its start time (retries, batching): roll a minute up only when
# this much time has passed since it ended.
GRACE_MS = 120_000
SITES_PER_TRANSACTION = 200
PRUNE_EVERY = HOUR
_CHUNK = {MINUTE: 60 * MINUTE, HOUR: 24 * HOUR, DAY: 30 * DAY}


@dataclass(frozen=True)
class Retention:
    """Days each level is kept."""

    raw_days: float = 30
    minute_days: float = 2
    hour_days: float = 90
    day_days: float = 5 * 365


LEVELS = (("rollup_minute", MINUTE), ("rollup_hour", HOUR), ("rollup_day", DAY))
_SUMS = ", ".join(f"sum({h})" for h in HIST_COLUMNS)
_HIST = ", ".join(HIST_COLUMNS)


async def _meta(store: Store, key: str) -> int | None:
    async with store.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cur:
        row = await cur.fetchone()
    return None if row is None else int(row[0])


async def _set_meta(store: Store, key: str, value: int) -> None:
    async with store.transaction() as db:
        await db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


async def _first_bucket(store: Store, size: int) -> int | None:
    async with store.conn.execute("SELECT min(created_at) FROM sites") as cur:
        row = await cur.fetchone()
    return None if row is None or row[0] is None else row[0] // size * size


def _source_sql(table: str, size: int) -> str:
    """Aggregate the level below (raw rows for minutes) into ``table`` buckets of ``size``,
    for the sites in an id range. CROSS JOIN keeps SQLite's planner from scanning the whole
    level below: it must walk sites and seek each site's (site_id, time) range."""
    if table == "rollup_minute":
        sums = ", ".join(f"sum(b = {i})" for i in range(len(HIST_COLUMNS)))
        return (
            f"INSERT OR REPLACE INTO rollup_minute (site_id, bucket, checks, up, rt_sum, rt_max,"
            f" {_HIST}) SELECT site_id, checked_at / {size} * {size}, count(*), sum(status = 1),"
            f" coalesce(sum(response_time_ms), 0), coalesce(max(response_time_ms), 0), {sums}"
            f" FROM (SELECT h.site_id, h.checked_at, h.status, h.response_time_ms,"
            f" {rt_bucket_sql('h.response_time_ms')} AS b FROM sites s CROSS JOIN history h"
            f" ON h.site_id = s.id AND h.checked_at >= ? AND h.checked_at < ? AND h.status <> 0"
            f" WHERE s.id BETWEEN ? AND ?) GROUP BY 1, 2"
        )
    below = {"rollup_hour": "rollup_minute", "rollup_day": "rollup_hour"}[table]
    return (
        f"INSERT OR REPLACE INTO {table} (site_id, bucket, checks, up, rt_sum, rt_max, {_HIST})"
        f" SELECT r.site_id, r.bucket / {size} * {size}, sum(r.checks), sum(r.up),"
        f" sum(r.rt_sum), max(r.rt_max), {_SUMS} FROM sites s CROSS JOIN {below} r"
        f" ON r.site_id = s.id AND r.bucket >= ? AND r.bucket < ?"
        f" WHERE s.id BETWEEN ? AND ? GROUP BY 1, 2"
    )


async def rollup(store: Store, now: int) -> int:
    """Bring every level up to date; returns the number of buckets (time ranges) rolled."""
    rolled = 0
    limit = now - GRACE_MS
    for table, size in LEVELS:
        done = await _meta(store, table)
        if done is None:
            done = await _first_bucket(store, size)
            if done is None:
                continue
        end = limit // size * size
        sql = _source_sql(table, size)
        while done < end:
            stop = min(end, done + _CHUNK[size])
            # One transaction per batch of sites: none holds the connection for long. A crash
            # between batches redoes the chunk (INSERT OR REPLACE), the watermark moves last.
            for first, last in await _site_batches(store):
                async with store.transaction() as db:
                    await db.execute(sql, (done, stop, first, last))
                await asyncio.sleep(0)
            await _set_meta(store, table, stop)
            rolled += (stop - done) // size
            done = stop
            await asyncio.sleep(0)
        limit = done  # a level may only use what the level below has finished
    return rolled


async def _site_batches(store: Store) -> list[tuple[int, int]]:
    """(first id, last id) of consecutive batches of sites, in one query: a query per batch
    meant three trips to the database thread each, and under 2,000 checks/s every trip waits
    for a turn of the loop (40,000 sites: the job outran its minute). The last range is open,
    so a site added meanwhile is still rolled up before the watermark moves past it."""
    async with store.conn.execute(
        "SELECT min(id), max(id) FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / ?"
        " AS batch FROM sites) GROUP BY batch ORDER BY batch",
        (SITES_PER_TRANSACTION,),
    ) as cur:
        batches = [(row[0], row[1]) for row in await cur.fetchall()]
    if batches:
        batches[-1] = (batches[-1][0], MAX_SQLITE_INT)
    return batches


async def prune(store: Store, now: int, retention: Retention) -> int:
    """Delete what is past its retention and already rolled up; returns rows deleted."""
    minute_done = await _meta(store, "rollup_minute") or 0
    hour_done = await _meta(store, "rollup_hour") or 0
    day_done = await _meta(store, "rollup_day") or 0
    cutoffs = [
        ("history", "checked_at", min(now - int(retention.raw_days * DAY), minute_done)),
        ("rollup_minute", "bucket", min(now - int(retention.minute_days * DAY), hour_done)),
        ("rollup_hour", "bucket", min(now - int(retention.hour_days * DAY), day_done)),
        ("rollup_day", "bucket", now - int(retention.day_days * DAY)),
    ]
    deleted = 0
    batches = await _site_batches(store)
    for table, column, cutoff in cutoffs:
        for first, last in batches:
            async with store.transaction() as db:
                # "IN (SELECT id ...)" lets SQLite seek (site_id = ?, time < ?) per site; a range
                # on site_id would make it read every row of the batch to find the old ones.
                cur = await db.execute(
                    f"DELETE FROM {table} WHERE site_id IN"
                    f" (SELECT id FROM sites WHERE id BETWEEN ? AND ?) AND {column} < ?",
                    (first, last, cutoff),
                )
                deleted += cur.rowcount
            await asyncio.sleep(0)
    # Spans that shape uptime (incidents, pauses, offline spans) live as long as day rollups;
    # a message delivered or given up as long as raw rows (nothing reads it after: the log
    # and GET /webhooks have told what happened to it).
    finished = now - int(retention.raw_days * DAY)
    ended = now - int(retention.day_days * DAY)
    for sql, cutoff in (
        ("DELETE FROM incidents WHERE ended_at IS NOT NULL AND ended_at < ?", ended),
        ("DELETE FROM pauses WHERE ended_at IS NOT NULL AND ended_at < ?", ended),
        ("DELETE FROM offline WHERE ended_at IS NOT NULL AND ended_at < ?", ended),
        (
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
            " WHERE delivered_at < ?1 OR failed_at < ?1 LIMIT 5000)",
            finished,
        ),
    ):
        while True:  # the outbox in batches: a first prune may find months of messages
            async with store.transaction() as db:
                cur = await db.execute(sql, (cutoff,))
            deleted += cur.rowcount
            await asyncio.sleep(0)
            if cur.rowcount < 5000:
                break
    await _give_back_free_pages(store)
    return deleted


async def _give_back_free_pages(store: Store, max_pages: int = 4096) -> None:
    """Shrink the file a little after large deletions; steady pruning reuses pages anyway."""
    async with store.conn.execute("PRAGMA freelist_count") as cur:
        (free,) = await cur.fetchone()  # type: ignore[misc]
    async with store.conn.execute("PRAGMA page_count") as cur:
        (pages,) = await cur.fetchone()  # type: ignore[misc]
    if free > max(256, pages // 10):
        async with store.transaction() as db:
            await db.execute(f"PRAGMA incremental_vacuum({max_pages})")


async def run(store: Store, now: int, retention: Retention) -> None:
    """The maintenance job: rollups every run, pruning at most once per ``PRUNE_EVERY`` (what
    it deletes is days old; walking every site for it each minute cost as much as the
    rollups). One log line per run that did something."""
    rolled = await rollup(store, now)
    deleted = 0
    pruned_at = await _meta(store, "pruned_at")
    if pruned_at is None or now - pruned_at >= PRUNE_EVERY:
        deleted = await prune(store, now, retention)
        await _set_meta(store, "pruned_at", now)
    if rolled or deleted:
        log.info("maintenance rolled_buckets=%d deleted_rows=%d", rolled, deleted)
