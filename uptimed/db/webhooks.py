"""Webhooks: where a site's messages go, and how their last delivery went."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

import aiosqlite

from uptimed.db.connection import (
    HISTORY_SELECT,
    NotFound,
    fetch_one,
    history_row,
    valid_id,
)
from uptimed.db.outbox import PENDING, hears_site, note_webhooks
from uptimed.db.sites import SELECT_SITE, SiteQueries, site_from_row, write_site
from uptimed.models import HistoryRow, Site, SiteIn, Status, Webhook, WebhookIn

WEBHOOK_SELECT = (
    "SELECT w.id, w.site_id, w.url, w.created_at, w.last_delivery_at, w.last_error,"
    " w.last_error_at, w.enabled, w.disabled_at, w.source, w.key,"
    " (SELECT count(*) FROM outbox o WHERE o.webhook_id = w.id"
    "  AND o.delivered_at IS NULL AND o.failed_at IS NULL) AS pending"
    " FROM webhooks w"
)


def webhook_from_row(row: sqlite3.Row) -> Webhook:
    return Webhook.model_construct(
        id=row["id"],
        site_id=row["site_id"],
        discord_webhook_url=row["url"],
        created_at=row["created_at"],
        last_delivery_at=row["last_delivery_at"],
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
        pending=row["pending"],
        enabled=bool(row["enabled"]),
        disabled_at=row["disabled_at"],
        source=row["source"],
        key=row["key"],
    )


def _new_webhook(data: WebhookIn, webhook_id: int | None, now: int, *, pending: int) -> Webhook:
    assert webhook_id is not None
    return Webhook.model_construct(
        **data.model_dump(),
        id=webhook_id,
        created_at=now,
        last_delivery_at=None,
        last_error=None,
        last_error_at=None,
        pending=pending,
        enabled=True,
        disabled_at=None,
        source="api",
        key=None,
    )


class WebhookQueries(SiteQueries):
    async def insert_webhook(
        self,
        data: WebhookIn,
        now: int,
        greeting: Callable[[Site, HistoryRow], str | None] | None = None,
    ) -> Webhook:
        """Store a webhook; if its site has already left INITIAL, queue ``greeting(site, latest)``
        (an event as JSON). A webhook without a site hears every site and is greeted by none.

        Without the greeting a webhook added after the first check (the usual order: create
        the site, then its webhook) would never hear "Monitoring started". Reading the status
        inside the write transaction means a concurrent first check sends it exactly once.
        """
        if data.site_id is None:
            async with self.transaction() as db:
                cur = await db.execute(
                    "INSERT INTO webhooks (site_id, url, created_at) VALUES (NULL, ?, ?)",
                    (data.discord_webhook_url, now),
                )
            return _new_webhook(data, cur.lastrowid, now, pending=0)
        if not valid_id(data.site_id):
            raise NotFound("Site not found")
        async with self.transaction() as db:
            site_row = await fetch_one(db, SELECT_SITE, (data.site_id,))
            if site_row is None:
                raise NotFound("Site not found")
            cur = await db.execute(
                "INSERT INTO webhooks (site_id, url, created_at) VALUES (?, ?, ?)",
                (data.site_id, data.discord_webhook_url, now),
            )
            webhook_id = cur.lastrowid
            pending = 0
            site = site_from_row(site_row)
            status = await self.site_status(db, site.id)
            if greeting is not None and status is not Status.INITIAL:
                async with db.execute(
                    f"{HISTORY_SELECT} WHERE site_id = ? ORDER BY checked_at DESC LIMIT 1",
                    (data.site_id,),
                ) as cur:
                    latest = history_row(await cur.fetchone())  # type: ignore[arg-type]
                if latest.status is not status:  # a check counted towards a threshold
                    latest = HistoryRow(
                        status=status,
                        response_time_ms=None,
                        last_checked=latest.last_checked,
                        last_status_change=latest.last_status_change,
                        reason=await self._open_reason(db, site.id),
                    )
                payload = greeting(site, latest)
                if payload is not None:  # None: the site's alerts are muted
                    await db.execute(
                        "INSERT INTO outbox (site_id, webhook_id, url, event, created_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (site.id, webhook_id, data.discord_webhook_url, payload, now),
                    )
                    pending = 1
        return _new_webhook(data, webhook_id, now, pending=pending)

    async def insert_sites(
        self,
        sites: Sequence[tuple[SiteIn, Sequence[str]]],
        every_site: Sequence[str] = (),
        *,
        now: int,
    ) -> tuple[list[Site], int]:
        """Write many sites, each with its own webhooks (URLs), and webhooks of every site, in
        one transaction: all or nothing. Returns the sites and how many webhooks were made.

        A URL given twice for one site, or twice for every site, is one webhook; a URL that
        a webhook of every site has already is not added again (adding it would change
        nothing: an event goes once to each URL). A site's own URL is kept even when every
        site's webhooks have it: deleting those must not silence the site."""
        async with self.transaction() as db:
            held = await db.execute_fetchall("SELECT url FROM webhooks WHERE site_id IS NULL")
            known = {row[0] for row in held}
            rows: list[tuple[int | None, str, int]] = [
                (None, url, now) for url in dict.fromkeys(every_site) if url not in known
            ]
            created: list[Site] = []
            for data, urls in sites:
                site = await write_site(db, data, now)
                created.append(site)
                rows.extend((site.id, url, now) for url in dict.fromkeys(urls))
            await db.executemany(
                "INSERT INTO webhooks (site_id, url, created_at) VALUES (?, ?, ?)", rows
            )
        return created, len(rows)

    @staticmethod
    async def _open_reason(db: aiosqlite.Connection, site_id: int) -> str | None:
        row = await fetch_one(
            db, "SELECT reason FROM incidents WHERE site_id = ? AND ended_at IS NULL", (site_id,)
        )
        return None if row is None else row[0]

    async def list_webhooks(self, site_id: int | None = None) -> list[Webhook]:
        """Every webhook, or those that hear one site (its own and every site's)."""
        if site_id is None:
            sql, args = f"{WEBHOOK_SELECT} ORDER BY w.id", ()
        else:
            await self.get_site(site_id)
            sql = f"{WEBHOOK_SELECT} WHERE w.site_id = ? OR w.site_id IS NULL ORDER BY w.id"
            args = (site_id,)
        async with self._reader.execute(sql, args) as cur:
            return [webhook_from_row(row) for row in await cur.fetchall()]

    async def get_webhook(self, webhook_id: int) -> Webhook:
        if valid_id(webhook_id):
            row = await fetch_one(self._reader, f"{WEBHOOK_SELECT} WHERE w.id = ?", (webhook_id,))
            if row is not None:
                return webhook_from_row(row)
        raise NotFound("Webhook not found")

    async def delete_webhook(self, webhook_id: int) -> int:
        """Delete the webhook and drop its undelivered messages; returns how many were dropped.

        A deleted webhook hears nothing more. (Deleting its site instead removes the webhook
        rows by cascade and leaves their messages, "Monitoring ended" among them, queued.)
        """
        if valid_id(webhook_id):
            async with self.transaction() as db:
                dropped = await db.execute(
                    f"DELETE FROM outbox WHERE webhook_id = ? AND {PENDING}", (webhook_id,)
                )
                cur = await db.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
                if cur.rowcount:
                    return dropped.rowcount
                raise NotFound("Webhook not found")  # rolls the outbox delete back
        raise NotFound("Webhook not found")

    async def set_webhook_enabled(self, webhook_id: int, enabled: bool, now: int) -> Webhook:
        """Enable or disable every webhook with this one's URL (to Discord they are one)."""
        webhook = await self.get_webhook(webhook_id)
        async with self.transaction() as db:
            await db.execute(
                "UPDATE webhooks SET enabled = ?, disabled_at = ? WHERE url = ? AND enabled <> ?",
                (int(enabled), None if enabled else now, webhook.discord_webhook_url, int(enabled)),
            )
        return await self.get_webhook(webhook_id)

    async def record_webhook_result(self, url: str, now: int, error: str | None) -> None:
        """Note on every webhook with this URL how its last delivery (or test) went."""
        async with self.transaction() as db:
            await note_webhooks(db, url, now, error)

    async def webhook_targets(self, site_id: int) -> list[tuple[int, str]]:
        """(id, URL) of each enabled webhook that hears a site, once per URL, read while
        writes may be failing."""
        rows = await self._reader.execute_fetchall(
            f"SELECT min(id), url FROM webhooks WHERE {hears_site('?')} AND enabled"
            " GROUP BY url ORDER BY min(id)",
            (site_id,),
        )
        return [(row[0], row[1]) for row in rows]
