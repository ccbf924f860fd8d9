"""The outbox: Discord messages queued in the transaction of what they tell about, and the
bookkeeping of their delivery (``notify.outbox`` reads and marks them in id order per URL)."""

from __future__ import annotations

import json
from collections.abc import Iterable

import aiosqlite

from uptimed.db.connection import Connection, fetch_one
from uptimed.models import OutboxMessage

PENDING = "delivered_at IS NULL AND failed_at IS NULL"


async def queue_messages(
    db: aiosqlite.Connection,
    site_id: int,
    payload: str,
    now: int,
    sent: Iterable[str] = (),
    sent_at: int = 0,
) -> None:
    """Queue ``payload`` for each webhook of the site, inside the caller's transaction; those
    whose URL is in ``sent`` already got it from memory and are written as delivered."""
    await db.execute(
        "INSERT INTO outbox (site_id, webhook_id, url, payload, created_at, delivered_at)"
        " SELECT site_id, id, url, ?, ?,"
        "  CASE WHEN url IN (SELECT value FROM json_each(?)) THEN ? END"
        " FROM webhooks WHERE site_id = ? ORDER BY id",
        (payload, now, json.dumps(sorted(sent)), sent_at, site_id),
    )


async def note_webhooks(db: aiosqlite.Connection, url: str, now: int, error: str | None) -> None:
    """On every webhook with this URL: a delivery at ``now`` (no error), or a failed attempt."""
    if error is None:
        await db.execute(
            "UPDATE webhooks SET last_delivery_at = ?, last_error = NULL, last_error_at = NULL"
            " WHERE url = ?",
            (now, url),
        )
    else:
        await db.execute(
            "UPDATE webhooks SET last_error = ?, last_error_at = ? WHERE url = ?",
            (error, now, url),
        )


class OutboxQueries(Connection):
    async def pending_urls(self) -> list[str]:
        """The webhook URLs with undelivered messages, oldest waiting first."""
        async with self._conn.execute(
            f"SELECT url FROM outbox WHERE {PENDING} GROUP BY url ORDER BY min(id)"
        ) as cur:
            return [row[0] async for row in cur]

    async def next_message(self, url: str) -> OutboxMessage | None:
        """The oldest undelivered message for ``url``: messages to one webhook go in order."""
        row = await fetch_one(
            self._conn,
            "SELECT id, url, payload, created_at, attempts, site_id, webhook_id FROM outbox"
            f" WHERE url = ? AND {PENDING}"
            " ORDER BY id LIMIT 1",
            (url,),
        )
        if row is None:
            return None
        return OutboxMessage(
            id=row[0],
            url=row[1],
            payload=json.loads(row[2]),
            created_at=row[3],
            attempts=row[4],
            site_id=row[5],
            webhook_id=row[6],
        )

    async def is_pending(self, message_id: int) -> bool:
        """False once the message is delivered, failed or dropped (its webhook was deleted)."""
        row = await fetch_one(
            self._conn, f"SELECT 1 FROM outbox WHERE id = ? AND {PENDING}", (message_id,)
        )
        return row is not None

    async def mark_delivered(self, message: OutboxMessage, now: int) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL"
                " WHERE id = ?",
                (now, message.id),
            )
            await note_webhooks(db, message.url, now, None)

    async def mark_attempt(self, message: OutboxMessage, now: int, error: str) -> None:
        """A failed attempt that will be retried: its error shows on the webhooks at once."""
        async with self.transaction() as db:
            await db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                (error, message.id),
            )
            await note_webhooks(db, message.url, now, error)

    async def mark_failed(self, message: OutboxMessage, now: int, error: str) -> None:
        """Give up on a message; the error shows on its webhooks as ``last_error``."""
        async with self.transaction() as db:
            await db.execute(
                "UPDATE outbox SET failed_at = ?, attempts = attempts + 1, last_error = ?"
                " WHERE id = ?",
                (now, error, message.id),
            )
            await note_webhooks(db, message.url, now, error)
