"""Making the sites and webhooks the config file declares (source 'config') match the file, in
one transaction: created, changed in place (as a PATCH would: history and incidents stay) or
deleted ("Monitoring ended" queued first, as ``delete_site`` does). Rows made through the API
(source 'api') are never read or written here.

Identity: a declared site is its key; a declared webhook of one site is (site, URL); a
declared webhook of every site (``site_id`` NULL) is (name, URL): a ``[webhooks.NAME]`` whose
URL changed is deleted and made again, since its delivery record and any disabling by Discord
belonged to the old URL.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

import aiosqlite

from uptimed.db.connection import FETCH_CHUNK, Connection
from uptimed.db.outbox import PENDING
from uptimed.db.sites import (
    SITE_COLUMNS,
    WRITABLE,
    column_values,
    drop_site,
    rewrite_site,
    site_from_row,
    write_site,
)
from uptimed.declared import Declaration
from uptimed.models import Site, SiteIn

# Declared sites handled between two deliberate yields to the event loop (each statement's
# await yields too; this bounds the Python work of sites left unchanged, which await nothing).
APPLY_CHUNK = 200
_IN_LIST = "IN (SELECT value FROM json_each(?))"


@dataclass
class Applied:
    """What ``apply_declaration`` changed, for the scheduler and the monitor to follow, and
    counts for the log and ``POST /config/reload``."""

    created: list[Site] = field(default_factory=list)
    changed: list[tuple[Site, Site]] = field(default_factory=list)  # (before, after)
    removed: list[int] = field(default_factory=list)  # site ids
    unchanged: int = 0
    webhooks_created: int = 0
    webhooks_removed: int = 0
    queued: bool = False  # messages were queued: wake the outbox


class DeclarationQueries(Connection):
    async def apply_declaration(
        self,
        declaration: Declaration,
        now: int,
        *,
        farewell: Callable[[Site], str | None],
        pause_message: Callable[[SiteIn, bool], str | None],
        pausing: Callable[[int], None] = lambda site_id: None,
    ) -> Applied:
        """Make the declared rows match ``declaration`` (its sites' fields already complete:
        defaults that come from settings filled in) in one transaction.

        A site whose stored settings equal the file's is not written at all. ``farewell(site)``
        and ``pause_message(data, paused)`` give the events (JSON; None: say nothing, e.g.
        muted) for a removed site and for a change of ``paused``; ``pausing(site_id)`` is called
        before a site is written paused, so a check in flight records nothing after it (the
        caller undoes it if this raises)."""
        applied = Applied()
        async with self.transaction() as db:
            stored = await _declared_rows(db)
            ids: dict[str, int] = {}
            for number, declared in enumerate(declaration.sites):
                if number % APPLY_CHUNK == APPLY_CHUNK - 1:
                    await asyncio.sleep(0)
                data, row = declared.site, stored.pop(declared.key, None)
                if row is None:
                    site = await write_site(db, data, now, declared.key)
                    applied.created.append(site)
                    ids[declared.key] = site.id
                    continue
                ids[declared.key] = row["id"]
                if [row[name] for name in WRITABLE] == column_values(data):
                    applied.unchanged += 1
                    continue
                before = site_from_row(row)
                if data.paused and not before.paused:
                    pausing(before.id)
                message = pause_message(data, data.paused) if data.paused != before.paused else None
                after = await rewrite_site(
                    db, before, data, now, paused_message=message, resumed_message=message
                )
                applied.changed.append((before, after))
                applied.queued |= message is not None
            for row in stored.values():  # no longer in the file
                site = site_from_row(row)
                message = farewell(site)
                await drop_site(db, site.id, message, now)
                applied.removed.append(site.id)
                applied.queued |= message is not None
            await _match_webhooks(db, declaration, ids, now, applied)
        return applied

    async def declared_site_count(self) -> int:
        rows = await self._reader.execute_fetchall(
            "SELECT count(*) FROM sites WHERE source = 'config'"
        )
        return int(next(iter(rows))[0])


async def _declared_rows(db: aiosqlite.Connection) -> dict[str, sqlite3.Row]:
    """The stored declared sites by key, read inside the transaction that changes them."""
    rows: dict[str, sqlite3.Row] = {}
    async with db.execute(f"SELECT {SITE_COLUMNS} FROM sites WHERE source = 'config'") as cur:
        while batch := await cur.fetchmany(FETCH_CHUNK):
            rows.update((row["key"], row) for row in batch)
    return rows


async def _match_webhooks(
    db: aiosqlite.Connection,
    declaration: Declaration,
    ids: dict[str, int],
    now: int,
    applied: Applied,
) -> None:
    """Declared webhooks: those of the removed sites went with them (cascade); the rest are
    created or deleted to match. A deleted one drops its undelivered messages, as
    ``DELETE /webhooks/{id}`` does."""
    own: dict[tuple[int, str], str | None] = {}  # (site id, URL) -> [webhooks.NAME]
    for declared in declaration.sites:
        for hook in declared.webhooks:
            own.setdefault((ids[declared.key], hook.url), hook.name)
    every = {(hook.name, hook.url) for hook in declaration.every_site}
    gone: list[int] = []
    renamed: list[tuple[str | None, int]] = []
    rows = await db.execute_fetchall(
        "SELECT id, site_id, url, key FROM webhooks WHERE source = 'config'"
    )
    for webhook_id, site_id, url, key in rows:
        if site_id is None:
            if (key, url) in every:
                every.discard((key, url))
            else:
                gone.append(webhook_id)
        elif (site_id, url) in own:
            name = own.pop((site_id, url))
            if name != key:
                renamed.append((name, webhook_id))
        else:
            gone.append(webhook_id)
    if gone:
        listed = (json.dumps(gone),)
        await db.execute(f"DELETE FROM outbox WHERE webhook_id {_IN_LIST} AND {PENDING}", listed)
        await db.execute(f"DELETE FROM webhooks WHERE id {_IN_LIST}", listed)
    if renamed:
        await db.executemany("UPDATE webhooks SET key = ? WHERE id = ?", renamed)
    new = [(site_id, url, now, name) for (site_id, url), name in own.items()]
    new += [
        (None, hook.url, now, hook.name)
        for hook in dict.fromkeys(declaration.every_site)
        if (hook.name, hook.url) in every
    ]
    if new:
        await db.executemany(
            "INSERT INTO webhooks (site_id, url, created_at, source, key)"
            " VALUES (?, ?, ?, 'config', ?)",
            new,
        )
    applied.webhooks_created += len(new)
    applied.webhooks_removed += len(gone)
