"""Sites: what is monitored, and each one's current status (the monitor's state at a start)."""

from __future__ import annotations

import asyncio
import sqlite3

import aiosqlite

from uptimed.db.connection import (
    FETCH_CHUNK,
    Connection,
    NotFound,
    fetch_all,
    fetch_one,
    valid_id,
)
from uptimed.db.history import INSERT_HISTORY
from uptimed.db.outbox import queue_messages
from uptimed.db.schema import STATUS_CODES
from uptimed.models import Site, SiteIn, SiteState, Status

SITE_COLUMNS = "id, url, name, check_interval_seconds, expected_status_code, created_at, keep_alive"
# Every Site the store builds has all its fields set, so all share one fields-set: pydantic
# would give each its own (a set of 7 names is 728 bytes, 2/3 of a Site). pydantic copies it
# before changing it (model_copy); a frozen Site never changes it.
SITE_FIELDS = set(Site.model_fields)


def site_from_row(row: sqlite3.Row) -> Site:
    data = dict(row)
    if data["keep_alive"] is not None:
        data["keep_alive"] = bool(data["keep_alive"])
    return Site.model_construct(SITE_FIELDS, **data)


class SiteQueries(Connection):
    async def insert_site(self, data: SiteIn, now: int) -> Site:
        """Write the site and its ``INITIAL`` history row in one transaction."""
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO sites (url, name, check_interval_seconds, expected_status_code,"
                " keep_alive, created_at, status, status_since)"
                " VALUES (?, ?, ?, ?, ?, ?, 'INITIAL', ?)",
                (
                    data.url,
                    data.name,
                    data.check_interval_seconds,
                    data.expected_status_code,
                    data.keep_alive,
                    now,
                    now,
                ),
            )
            site_id = cur.lastrowid
            await db.execute(
                INSERT_HISTORY, (site_id, STATUS_CODES[Status.INITIAL], None, now, None, now)
            )
        return Site.model_construct(SITE_FIELDS, **data.model_dump(), id=site_id, created_at=now)

    async def list_sites(self) -> list[Site]:
        sites: list[Site] = []
        async with self._reader.execute(f"SELECT {SITE_COLUMNS} FROM sites ORDER BY id") as cur:
            while batch := await cur.fetchmany(FETCH_CHUNK):
                sites.extend(site_from_row(row) for row in batch)
                await asyncio.sleep(0)  # 100,000 sites must not stall the API for a second
        return sites

    async def site_ids(self) -> list[int]:
        async with self._reader.execute("SELECT id FROM sites") as cur:
            return [row[0] for row in await fetch_all(cur)]

    async def get_site(self, site_id: int) -> Site:
        if valid_id(site_id):
            row = await fetch_one(
                self._reader, f"SELECT {SITE_COLUMNS} FROM sites WHERE id = ?", (site_id,)
            )
            if row is not None:
                return site_from_row(row)
        raise NotFound("Site not found")

    async def delete_site(self, site_id: int, *, farewell: str | None = None, now: int = 0) -> None:
        """Delete the site; its webhooks and history go with it (ON DELETE CASCADE).

        ``farewell`` (a JSON payload) is queued for each of its webhooks in the same transaction,
        so "Monitoring ended" goes out although the site and its webhooks are gone.
        """
        if not valid_id(site_id):
            raise NotFound("Site not found")
        async with self.transaction() as db:
            if farewell is not None:
                await queue_messages(db, site_id, farewell, now)
            cur = await db.execute("DELETE FROM sites WHERE id = ?", (site_id,))
            if cur.rowcount == 0:
                raise NotFound("Site not found")

    @staticmethod
    async def site_status(db: aiosqlite.Connection, site_id: int) -> Status:
        row = await fetch_one(db, "SELECT status FROM sites WHERE id = ?", (site_id,))
        return Status(row[0]) if row else Status.INITIAL

    async def site_states(self) -> dict[int, tuple[SiteState, int | None]]:
        """Each site's current status, and when it was last checked (None: never, or no row
        kept). The INITIAL row is not a check: a site never checked is due at once."""
        async with self._conn.execute(
            "SELECT id, status, status_since,"
            " (SELECT max(checked_at) FROM history h"
            "  WHERE h.site_id = s.id AND h.status <> 0) AS last_checked,"
            " (SELECT reason FROM incidents i WHERE i.site_id = s.id AND i.ended_at IS NULL)"
            " FROM sites s"
        ) as cur:
            states: dict[int, tuple[SiteState, int | None]] = {}
            while batch := await cur.fetchmany(FETCH_CHUNK):
                for site_id, status, since, last, reason in batch:
                    states[site_id] = (SiteState(Status(status), since, reason), last)
                await asyncio.sleep(0)
            return states
