"""The outbox: what happened, queued in the transaction of the change it tells about, and the
bookkeeping of its delivery (``notify.outbox`` reads rows in id order per URL, renders them into
messages, one or many events each, and marks them).

A row holds an event (``models.Event`` as JSON), or, if it was queued before schema 9, the body
that was rendered then (``payload``), which is sent alone and as it is."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import aiosqlite

from uptimed.db.connection import Connection, fetch_one
from uptimed.models import Event, OutboxMessage

PENDING = "delivered_at IS NULL AND failed_at IS NULL"


def hears_site(param: str) -> str:
    """SQL for the webhooks that hear of the site given by ``param``: its own, and those
    without a site (they hear every site)."""
    return f"(site_id = {param} OR site_id IS NULL)"


_IDS = "id IN (SELECT value FROM json_each(:ids))"


async def queue_messages(
    db: aiosqlite.Connection,
    site_id: int,
    event: str,
    now: int,
    sent: Iterable[str] = (),
    sent_at: int = 0,
) -> None:
    """Queue ``event`` (JSON) for each enabled webhook that hears the site (its own, and those
    of every site), once per URL, inside the caller's transaction; those whose URL is in
    ``sent`` already got it from memory and are written as delivered. A disabled webhook
    (Discord refused its URL for good) takes nothing."""
    await db.execute(
        "INSERT INTO outbox (site_id, webhook_id, url, event, created_at, delivered_at)"
        " SELECT ?4, min(id), url, ?1, ?2,"
        "  CASE WHEN url IN (SELECT value FROM json_each(?3)) THEN ?5 END"
        f" FROM webhooks WHERE {hears_site('?4')} AND enabled = 1 GROUP BY url ORDER BY min(id)",
        (event, now, json.dumps(sorted(sent)), site_id, sent_at),
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


def _ids(messages: Sequence[OutboxMessage]) -> str:
    return json.dumps([m.id for m in messages])


class OutboxQueries(Connection):
    async def pending_urls(self) -> list[str]:
        """The webhook URLs with undelivered messages, oldest waiting first."""
        async with self._conn.execute(
            f"SELECT url FROM outbox WHERE {PENDING} GROUP BY url ORDER BY min(id)"
        ) as cur:
            return [row[0] async for row in cur]

    async def pending_messages(self, url: str, limit: int) -> list[OutboxMessage]:
        """The oldest ``limit`` undelivered rows for ``url``: messages to one webhook go in
        order, so a site's recovery never overtakes its outage."""
        rows = await self._conn.execute_fetchall(
            "SELECT id, url, event, payload, created_at, attempts, site_id, webhook_id FROM outbox"
            f" WHERE url = ? AND {PENDING} ORDER BY id LIMIT ?",
            (url, limit),
        )
        return [
            OutboxMessage.model_construct(
                id=row[0],
                url=row[1],
                event=None if row[2] is None else Event.model_validate_json(row[2]),
                payload=None if row[3] is None else json.loads(row[3]),
                created_at=row[4],
                attempts=row[5],
                site_id=row[6],
                webhook_id=row[7],
            )
            for row in rows
        ]

    async def pending_count(self) -> int:
        """Messages neither delivered nor failed, over every webhook (the partial index)."""
        row = await fetch_one(self._reader, f"SELECT count(*) FROM outbox WHERE {PENDING}")
        return int(row[0]) if row is not None else 0

    async def next_message(self, url: str) -> OutboxMessage | None:
        """The oldest undelivered message for ``url``."""
        found = await self.pending_messages(url, 1)
        return found[0] if found else None

    async def is_pending(self, messages: Sequence[OutboxMessage]) -> bool:
        """False once any of them is delivered, failed or dropped (its webhook was deleted)."""
        row = await fetch_one(
            self._conn,
            f"SELECT count(*) FROM outbox WHERE {_IDS} AND {PENDING}",
            {"ids": _ids(messages)},
        )
        return row is not None and row[0] == len(messages)

    async def mark_delivered(self, messages: Sequence[OutboxMessage], now: int) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE outbox SET delivered_at = :now, attempts = attempts + 1,"
                f" last_error = NULL WHERE {_IDS}",
                {"now": now, "ids": _ids(messages)},
            )
            await note_webhooks(db, messages[0].url, now, None)

    async def mark_attempt(self, messages: Sequence[OutboxMessage], now: int, error: str) -> None:
        """A failed attempt that will be retried: its error shows on the webhooks at once."""
        async with self.transaction() as db:
            await db.execute(
                f"UPDATE outbox SET attempts = attempts + 1, last_error = :error WHERE {_IDS}",
                {"error": error, "ids": _ids(messages)},
            )
            await note_webhooks(db, messages[0].url, now, error)

    async def mark_failed(
        self, messages: Sequence[OutboxMessage], now: int, error: str, *, disable: bool = False
    ) -> None:
        """Give up on messages; the error shows on their webhooks as ``last_error``. With
        ``disable`` (Discord refused the URL itself: 404, 401) every webhook with that URL is
        disabled and every message still pending for it fails too: none could be delivered."""
        url = messages[0].url
        async with self.transaction() as db:
            await db.execute(
                "UPDATE outbox SET failed_at = :now, attempts = attempts + 1,"
                f" last_error = :error WHERE {_IDS}",
                {"now": now, "error": error, "ids": _ids(messages)},
            )
            if disable:
                await db.execute(
                    f"UPDATE outbox SET failed_at = ?, last_error = ? WHERE url = ? AND {PENDING}",
                    (now, f"not sent: the webhook was disabled ({error})", url),
                )
                await db.execute(
                    "UPDATE webhooks SET enabled = 0, disabled_at = ? WHERE url = ? AND enabled",
                    (now, url),
                )
            await note_webhooks(db, url, now, error)
