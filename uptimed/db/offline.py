"""The spans when the monitor itself was offline (its connectivity checks failed too), and
the sites whose failed checks it set aside then (see ``uptimed.connectivity``).

A span is closed in the transaction that queues its reconnect messages: one per distinct
enabled webhook URL among the webhooks of the sites set aside in it, so a URL shared by many
sites hears of the span once, and a crash between the two cannot lose or double them.
"""

from __future__ import annotations

from collections.abc import Iterable

import aiosqlite

from uptimed.db.connection import Connection, fetch_one
from uptimed.models import Event, EventKind


async def _add_sites(db: aiosqlite.Connection, span_id: int, site_ids: Iterable[int]) -> None:
    await db.executemany(
        "INSERT OR IGNORE INTO offline_sites (offline_id, site_id) VALUES (?, ?)",
        [(span_id, site_id) for site_id in site_ids],
    )


class OfflineQueries(Connection):
    async def open_offline_span(self) -> tuple[int, int] | None:
        """The span a previous run left open (id, started_at), if any: the latest."""
        async with self.latest() as db:
            row = await fetch_one(
                db,
                "SELECT id, started_at FROM offline WHERE ended_at IS NULL"
                " ORDER BY id DESC LIMIT 1",
            )
        return None if row is None else (row[0], row[1])

    async def start_offline(self, now: int, site_ids: Iterable[int] = ()) -> int:
        """Open a span at ``now`` with these sites set aside; its id."""
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO offline (started_at, last_seen_at) VALUES (?, ?)", (now, now)
            )
            assert cur.lastrowid is not None
            await _add_sites(db, cur.lastrowid, site_ids)
            return cur.lastrowid

    async def note_offline(self, span_id: int, now: int | None, site_ids: Iterable[int]) -> None:
        """Still offline at ``now`` (None: not a probe's news), with these sites set aside."""
        async with self.transaction() as db:
            if now is not None:
                await db.execute(
                    "UPDATE offline SET last_seen_at = max(last_seen_at, ?) WHERE id = ?",
                    (now, span_id),
                )
            await _add_sites(db, span_id, site_ids)

    async def end_offline(self, span_id: int, now: int, site_ids: Iterable[int]) -> tuple[int, int]:
        """Close the span at ``now`` and queue its reconnect messages; (sites set aside in
        it, messages queued). ``Event.checks`` is how many of the URL's sites were set aside;
        ``webhook_id`` the lowest id of the URL (a snapshot for the delivery log)."""
        async with self.transaction() as db:
            await _add_sites(db, span_id, site_ids)
            cur = await db.execute(
                "UPDATE offline SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
                (now, span_id),
            )
            if cur.rowcount == 0:  # ended already: its messages were queued then
                return 0, 0
            row = await fetch_one(
                db,
                "SELECT started_at, (SELECT count(*) FROM offline_sites WHERE offline_id = ?1)"
                " FROM offline WHERE id = ?1",
                (span_id,),
            )
            assert row is not None
            started_at, sites = row[0], row[1]
            hooks = await db.execute_fetchall(
                "SELECT w.url, min(w.id), count(DISTINCT o.site_id) FROM webhooks w"
                " JOIN offline_sites o ON o.site_id = w.site_id OR w.site_id IS NULL"
                " WHERE o.offline_id = ? AND w.enabled = 1 GROUP BY w.url ORDER BY min(w.id)",
                (span_id,),
            )
            await db.executemany(
                "INSERT INTO outbox (site_id, webhook_id, url, event, created_at)"
                " VALUES (NULL, ?, ?, ?, ?)",
                [
                    (
                        webhook_id,
                        url,
                        Event(
                            kind=EventKind.OFFLINE,
                            site_name="",
                            site_url="",
                            at=now,
                            down_since=started_at,
                            checks=count,
                        ).model_dump_json(),
                        now,
                    )
                    for url, webhook_id, count in hooks
                ],
            )
        return sites, len(hooks)
