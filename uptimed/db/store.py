"""The store: all SQL of uptimed, in plain text, over one aiosqlite connection.

Times are epoch milliseconds (INTEGER). The schema is versioned with ``PRAGMA user_version``:
``MIGRATIONS[n]`` brings a database from version n to n + 1, inside one transaction.

Writes that span several statements hold ``Store._write_lock``: the one connection is shared by
every coroutine, and without the lock one coroutine's statements would land inside another's
transaction. Only the public methods commit.

Errors: ``NotFound`` (a site or webhook id that does not exist); ``DatabaseUnavailable`` (at
``open``: a path, file or directory that cannot hold a writable database, one line with the
reason); anything else is a bug or a broken disk and propagates.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import aiosqlite

from uptimed.db.schema import MIGRATIONS, SCHEMA_VERSION, STATUS_CODES, STATUS_OF_CODE
from uptimed.models import (
    MAX_SQLITE_INT,
    CheckResult,
    HistoryRow,
    OutboxMessage,
    Site,
    SiteIn,
    SiteState,
    Status,
    Transition,
    Webhook,
    WebhookIn,
)

log = logging.getLogger(__name__)

JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
AUTO_VACUUM_INCREMENTAL = 2

_SITE_COLUMNS = (
    "id, url, name, check_interval_seconds, expected_status_code, created_at, keep_alive"
)


class NotFound(Exception):
    """The site or webhook does not exist; ``str(e)`` is the API's detail text."""


class DatabaseUnavailable(RuntimeError):
    """The database cannot be opened, read or written at start; ``str(e)`` is one line:
    ``cannot open database /data/uptimed.db: permission denied``."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot open database {path.absolute()}: {reason}")
        self.path, self.reason = path, reason


def _log_created(path: Path) -> None:
    """At WARNING: a database that vanished (moved, deleted, a wrong DATABASE_URL) would
    otherwise come back empty without a word."""
    log.warning(
        "created a new, empty database %s: none was there (if one should be, it was moved or"
        " deleted, or DATABASE_URL names another file)",
        path.absolute(),
    )


def _os_reason(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


def check_files(path: Path) -> bool:
    """What SQLite needs of the file system, with the OS's reason when it is missing: the
    directory (made if missing: a first start needs no mkdir) takes new files (the ``-wal`` and
    ``-shm`` beside the database), and an existing file opens for writing. Returns whether the
    database is new (no file, or an empty one). ``open`` calls it; the process calls it first,
    before it takes its lock."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DatabaseUnavailable(path, f"{parent.absolute()} is not a directory") from None
    except OSError as e:
        reason = f"cannot create {parent.absolute()}: {_os_reason(e)}"
        raise DatabaseUnavailable(path, reason) from e
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise DatabaseUnavailable(
            path, f"{_os_reason(e)} (cannot create files in {parent.absolute()})"
        ) from e
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    except OSError as e:  # EACCES or EROFS (read-only), EISDIR
        raise DatabaseUnavailable(path, _os_reason(e)) from e
    try:
        return os.fstat(fd).st_size == 0  # left empty by a start that failed: new all the same
    finally:
        os.close(fd)


# Every Site the store builds has all its fields set, so all share one fields-set: pydantic
# would give each its own (a set of 7 names is 728 bytes, 2/3 of a Site). pydantic copies it
# before changing it (model_copy); a frozen Site never changes it.
_SITE_FIELDS = set(Site.model_fields)


def _site(row: sqlite3.Row) -> Site:
    data = dict(row)
    if data["keep_alive"] is not None:
        data["keep_alive"] = bool(data["keep_alive"])
    return Site.model_construct(_SITE_FIELDS, **data)


_WEBHOOK_SELECT = (
    "SELECT w.id, w.site_id, w.url, w.created_at, w.last_delivery_at, w.last_error,"
    " w.last_error_at,"
    " (SELECT count(*) FROM outbox o WHERE o.webhook_id = w.id"
    "  AND o.delivered_at IS NULL AND o.failed_at IS NULL) AS pending"
    " FROM webhooks w"
)
_PENDING = "delivered_at IS NULL AND failed_at IS NULL"


def _webhook(row: sqlite3.Row) -> Webhook:
    return Webhook.model_construct(
        id=row["id"],
        site_id=row["site_id"],
        discord_webhook_url=row["url"],
        created_at=row["created_at"],
        last_delivery_at=row["last_delivery_at"],
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
        pending=row["pending"],
    )


HISTORY_SELECT = "SELECT status, response_time_ms, checked_at, status_since, reason FROM history"


def history_row(row: sqlite3.Row) -> HistoryRow:
    return HistoryRow.model_construct(
        status=STATUS_OF_CODE[row[0]],
        response_time_ms=row[1],
        last_checked=row[2],
        last_status_change=row[3],
        reason=row[4],
    )


_FETCH_CHUNK = 2000


async def _fetch_all(cur: aiosqlite.Cursor) -> list[sqlite3.Row]:
    """All rows in a few large fetches; ``async for`` would cross threads every 64 rows."""
    rows: list[sqlite3.Row] = []
    while batch := await cur.fetchmany(_FETCH_CHUNK):
        rows.extend(batch)
    return rows


async def fetch_one(
    conn: aiosqlite.Connection, sql: str, args: Iterable[object] = ()
) -> sqlite3.Row | None:
    """The first row, in one trip to the database thread where a cursor takes three (execute,
    fetch, close), each waiting for a turn of a busy event loop."""
    return next(iter(await conn.execute_fetchall(sql, args)), None)


async def _note_webhooks(db: aiosqlite.Connection, url: str, now: int, error: str | None) -> None:
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


def _valid_id(value: int) -> bool:
    return 0 < value <= MAX_SQLITE_INT


class Store:
    """Owns the connection; create with ``await Store.open(path)``, end with ``close()``."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._reader = conn  # until open() adds the read-only connection
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Store:
        """Open (or create, with a WARNING) the database at ``path`` for reading and writing.

        Raises ``DatabaseUnavailable`` (one line: path and reason) for a path that cannot hold
        a writable database: checked before SQLite, which would open a read-only file read-only
        and fail only at the first write. On any failure every connection is closed again:
        aiosqlite's threads are not daemons, and one left open keeps the process from exiting.
        """
        created = check_files(path)
        conn: aiosqlite.Connection | None = None
        reader: aiosqlite.Connection | None = None
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
            conn.row_factory = sqlite3.Row
            await conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a process crash (SIGKILL); only an OS crash or power
            # cut can lose the last transactions. FULL would make each commit wait on fsync.
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA busy_timeout=5000")
            # Keep the WAL file from staying at its high-water mark after a burst of writes.
            await conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            store = cls(conn)
            await store._migrate()
            # API reads get a connection (and thread) of their own: in WAL mode they read the
            # last commit without waiting for a write or a maintenance batch on the other one.
            reader = await aiosqlite.connect(path, isolation_level=None)
            reader.row_factory = sqlite3.Row
            await reader.execute("PRAGMA query_only=ON")
            await reader.execute("PRAGMA busy_timeout=5000")
            store._reader = reader
        except BaseException as e:
            for c in (reader, conn):
                if c is not None:
                    with suppress(Exception):
                        await c.close()
            if isinstance(e, (sqlite3.Error, OSError)):
                raise DatabaseUnavailable(path, str(e)) from e
            raise
        if created:
            _log_created(path)
        return store

    @property
    def conn(self) -> aiosqlite.Connection:
        """The daemon's connection: maintenance reads; writes go through ``transaction()``."""
        return self._conn

    @property
    def reader(self) -> aiosqlite.Connection:
        """The read-only connection for what the API shows (``uptimed.db.reports``)."""
        return self._reader

    async def close(self) -> None:
        async with self._write_lock:
            if self._reader is not self._conn:
                await self._reader.close()
            await self._conn.close()

    async def _pragma(self, name: str) -> int:
        async with self._conn.execute(f"PRAGMA {name}") as cur:
            (value,) = await cur.fetchone()  # type: ignore[misc]
        return int(value)

    async def _migrate(self) -> None:
        version = await self._pragma("user_version")
        if version == 0:
            # Must be set before the first table: lets pruning hand pages back to the disk.
            await self._conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"database schema version {version} is newer than this uptimed ({SCHEMA_VERSION})"
            )
        # A migration may rebuild a table that others reference: with foreign keys on, its
        # DROP TABLE would delete (ON DELETE CASCADE) every row that points at it. The pragma is
        # ignored inside a transaction, so it is switched around them. (No foreign_key_check
        # after: it would read every history row of a large database at each upgrade.)
        await self._conn.execute("PRAGMA foreign_keys=OFF")
        for number in range(version, SCHEMA_VERSION):
            async with self.transaction():
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        await self._conn.execute(statement)
                await self._conn.execute(f"PRAGMA user_version = {number + 1}")
        await self._conn.execute("PRAGMA foreign_keys=ON")
        if await self._pragma("auto_vacuum") != AUTO_VACUUM_INCREMENTAL:
            # A database made before auto_vacuum was set: one VACUUM converts it.
            await self._conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            await self._conn.execute("VACUUM")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    # --- sites -------------------------------------------------------------------------------

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
                "INSERT INTO history (site_id, status, response_time_ms, checked_at, status_since)"
                " VALUES (?, 0, NULL, ?, ?)",
                (site_id, now, now),
            )
        return Site.model_construct(_SITE_FIELDS, **data.model_dump(), id=site_id, created_at=now)

    async def list_sites(self) -> list[Site]:
        sites: list[Site] = []
        async with self._reader.execute(f"SELECT {_SITE_COLUMNS} FROM sites ORDER BY id") as cur:
            while batch := await cur.fetchmany(_FETCH_CHUNK):
                sites.extend(_site(row) for row in batch)
                await asyncio.sleep(0)  # 100,000 sites must not stall the API for a second
        return sites

    async def site_ids(self) -> list[int]:
        async with self._reader.execute("SELECT id FROM sites") as cur:
            return [row[0] for row in await _fetch_all(cur)]

    async def get_site(self, site_id: int) -> Site:
        if _valid_id(site_id):
            row = await fetch_one(
                self._reader, f"SELECT {_SITE_COLUMNS} FROM sites WHERE id = ?", (site_id,)
            )
            if row is not None:
                return _site(row)
        raise NotFound("Site not found")

    async def delete_site(self, site_id: int, *, farewell: str | None = None, now: int = 0) -> None:
        """Delete the site; its webhooks and history go with it (ON DELETE CASCADE).

        ``farewell`` (a JSON payload) is queued for each of its webhooks in the same transaction,
        so "Monitoring ended" goes out although the site and its webhooks are gone.
        """
        if not _valid_id(site_id):
            raise NotFound("Site not found")
        async with self.transaction() as db:
            if farewell is not None:
                await self._queue(db, site_id, farewell, now)
            cur = await db.execute("DELETE FROM sites WHERE id = ?", (site_id,))
            if cur.rowcount == 0:
                raise NotFound("Site not found")

    @staticmethod
    async def _site_status(db: aiosqlite.Connection, site_id: int) -> Status:
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
            while batch := await cur.fetchmany(_FETCH_CHUNK):
                for site_id, status, since, last, reason in batch:
                    states[site_id] = (SiteState(Status(status), since, reason), last)
                await asyncio.sleep(0)
            return states

    # --- checks ------------------------------------------------------------------------------

    async def record_check(
        self,
        site_id: int,
        result: CheckResult,
        state: SiteState,
        transition: Transition | None,
        *,
        append_unchanged: bool,
        message: str | None = None,
        sent: Iterable[str] = (),
        now: int = 0,
    ) -> bool:
        """Write one check result, its transition and its messages in one transaction.

        ``sent``: webhook URLs this message already went to from memory (the transition could
        not be written then, see ``notify.unwritten``); their rows are written as delivered at
        ``now``.

        ``state`` is the status after this check. With ``append_unchanged`` False a check whose
        status did not change updates the latest history row in place instead of adding one.
        A DOWN transition opens an incident, an UP one closes it, and every DOWN check counts in
        the open incident. ``message`` (a JSON payload) is queued in the outbox for each webhook
        of the site. Returns False, writing nothing, when the site was deleted meanwhile.
        """
        status = STATUS_CODES[result.status]
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE sites SET status = ?, status_since = ?, last_checked = ? WHERE id = ?",
                (state.status, state.since, result.checked_at, site_id),
            )
            if cur.rowcount == 0:
                return False
            row = (result.response_time_ms, result.checked_at, result.reason)
            if transition is None and not append_unchanged:
                await db.execute(
                    "UPDATE history SET response_time_ms = ?, checked_at = ?, reason = ?"
                    " WHERE site_id = ? AND checked_at ="
                    " (SELECT max(checked_at) FROM history WHERE site_id = ?)",
                    (*row, site_id, site_id),
                )
            else:
                await db.execute(
                    "INSERT INTO history"
                    " (site_id, status, response_time_ms, checked_at, reason, status_since)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (site_id, status, *row, state.since),
                )
            if transition is not None and transition.current is Status.DOWN:
                await db.execute(
                    "INSERT INTO incidents (site_id, started_at, reason) VALUES (?, ?, ?)",
                    (site_id, result.checked_at, result.reason),
                )
            elif transition is not None:
                await db.execute(
                    "UPDATE incidents SET ended_at = ? WHERE site_id = ? AND ended_at IS NULL",
                    (result.checked_at, site_id),
                )
            elif result.status is Status.DOWN:
                await db.execute(
                    "UPDATE incidents SET checks_failed = checks_failed + 1"
                    " WHERE site_id = ? AND ended_at IS NULL",
                    (site_id,),
                )
            if message is not None:
                await self._queue(db, site_id, message, result.checked_at, sent, now)
        return True

    async def write_checks(
        self,
        rows: list[tuple[int, int, int, int, str | None, int]],
        in_place: list[tuple[int, int, str | None, int]],
        failed: list[int],
    ) -> None:
        """Write a batch of checks that changed no status, in one transaction.

        ``rows`` are new history rows (site_id, status code, response_time_ms, checked_at,
        reason, status_since); ``in_place`` updates the latest row of a site instead
        (response_time_ms, checked_at, reason, site_id: ``OPTIMISATION=1``); ``failed`` holds a
        site id per DOWN check, counted in its open incident. Rows of sites deleted meanwhile are
        dropped, not an error.
        """
        async with self.transaction() as db:
            if rows:
                await db.executemany(
                    "INSERT OR IGNORE INTO history"
                    " (site_id, status, response_time_ms, checked_at, reason, status_since)"
                    " SELECT ?1, ?2, ?3, ?4, ?5, ?6"
                    " WHERE EXISTS (SELECT 1 FROM sites WHERE id = ?1)",
                    rows,
                )
            if in_place:
                await db.executemany(
                    "UPDATE history SET response_time_ms = ?1, checked_at = ?2, reason = ?3"
                    " WHERE site_id = ?4 AND checked_at ="
                    " (SELECT max(checked_at) FROM history WHERE site_id = ?4)",
                    in_place,
                )
            if failed:
                await db.executemany(
                    "UPDATE incidents SET checks_failed = checks_failed + 1"
                    " WHERE site_id = ? AND ended_at IS NULL",
                    [(site_id,) for site_id in failed],
                )

    @staticmethod
    async def _queue(
        db: aiosqlite.Connection,
        site_id: int,
        payload: str,
        now: int,
        sent: Iterable[str] = (),
        sent_at: int = 0,
    ) -> None:
        await db.execute(
            "INSERT INTO outbox (site_id, webhook_id, url, payload, created_at, delivered_at)"
            " SELECT site_id, id, url, ?, ?,"
            "  CASE WHEN url IN (SELECT value FROM json_each(?)) THEN ? END"
            " FROM webhooks WHERE site_id = ? ORDER BY id",
            (payload, now, json.dumps(sorted(sent)), sent_at, site_id),
        )

    async def webhook_targets(self, site_id: int) -> list[tuple[int, str]]:
        """(id, URL) of each webhook of a site, read while writes may be failing."""
        rows = await self._reader.execute_fetchall(
            "SELECT id, url FROM webhooks WHERE site_id = ? ORDER BY id", (site_id,)
        )
        return [(row[0], row[1]) for row in rows]

    # --- webhooks ----------------------------------------------------------------------------

    async def insert_webhook(
        self,
        data: WebhookIn,
        now: int,
        greeting: Callable[[Site, HistoryRow], str] | None = None,
    ) -> Webhook:
        """Store a webhook; if its site has already left INITIAL, queue ``greeting(site, latest)``.

        Without the greeting a webhook added after the first check (the usual order: create
        the site, then its webhook) would never hear "Monitoring started". Reading the status
        inside the write transaction means a concurrent first check sends it exactly once.
        """
        if not _valid_id(data.site_id):
            raise NotFound("Site not found")
        async with self.transaction() as db:
            site_row = await fetch_one(
                db, f"SELECT {_SITE_COLUMNS} FROM sites WHERE id = ?", (data.site_id,)
            )
            if site_row is None:
                raise NotFound("Site not found")
            cur = await db.execute(
                "INSERT INTO webhooks (site_id, url, created_at) VALUES (?, ?, ?)",
                (data.site_id, data.discord_webhook_url, now),
            )
            webhook_id = cur.lastrowid
            pending = 0
            site = _site(site_row)
            status = await self._site_status(db, site.id)
            if greeting is not None and status is not Status.INITIAL:
                async with db.execute(
                    f"{HISTORY_SELECT} WHERE site_id = ? ORDER BY checked_at DESC LIMIT 1",
                    (data.site_id,),
                ) as cur:
                    latest = history_row(await cur.fetchone())  # type: ignore[arg-type]
                await db.execute(
                    "INSERT INTO outbox (site_id, webhook_id, url, payload, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (site.id, webhook_id, data.discord_webhook_url, greeting(site, latest), now),
                )
                pending = 1
        return Webhook.model_construct(
            **data.model_dump(),
            id=webhook_id,
            created_at=now,
            last_delivery_at=None,
            last_error=None,
            last_error_at=None,
            pending=pending,
        )

    async def list_webhooks(self, site_id: int | None = None) -> list[Webhook]:
        if site_id is None:
            sql, args = f"{_WEBHOOK_SELECT} ORDER BY w.id", ()
        else:
            await self.get_site(site_id)
            sql, args = f"{_WEBHOOK_SELECT} WHERE w.site_id = ? ORDER BY w.id", (site_id,)
        async with self._reader.execute(sql, args) as cur:
            return [_webhook(row) for row in await cur.fetchall()]

    async def get_webhook(self, webhook_id: int) -> Webhook:
        if _valid_id(webhook_id):
            row = await fetch_one(self._reader, f"{_WEBHOOK_SELECT} WHERE w.id = ?", (webhook_id,))
            if row is not None:
                return _webhook(row)
        raise NotFound("Webhook not found")

    async def delete_webhook(self, webhook_id: int) -> int:
        """Delete the webhook and drop its undelivered messages; returns how many were dropped.

        A deleted webhook hears nothing more. (Deleting its site instead removes the webhook
        rows by cascade and leaves their messages, "Monitoring ended" among them, queued.)
        """
        if _valid_id(webhook_id):
            async with self.transaction() as db:
                dropped = await db.execute(
                    f"DELETE FROM outbox WHERE webhook_id = ? AND {_PENDING}", (webhook_id,)
                )
                cur = await db.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
                if cur.rowcount:
                    return dropped.rowcount
                raise NotFound("Webhook not found")  # rolls the outbox delete back
        raise NotFound("Webhook not found")

    async def record_webhook_result(self, url: str, now: int, error: str | None) -> None:
        """Note on every webhook with this URL how its last delivery (or test) went."""
        async with self.transaction() as db:
            await _note_webhooks(db, url, now, error)

    # --- outbox ------------------------------------------------------------------------------

    async def pending_urls(self) -> list[str]:
        """The webhook URLs with undelivered messages, oldest waiting first."""
        async with self._conn.execute(
            f"SELECT url FROM outbox WHERE {_PENDING} GROUP BY url ORDER BY min(id)"
        ) as cur:
            return [row[0] async for row in cur]

    async def next_message(self, url: str) -> OutboxMessage | None:
        """The oldest undelivered message for ``url``: messages to one webhook go in order."""
        row = await fetch_one(
            self._conn,
            "SELECT id, url, payload, created_at, attempts, site_id, webhook_id FROM outbox"
            f" WHERE url = ? AND {_PENDING}"
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
            self._conn, f"SELECT 1 FROM outbox WHERE id = ? AND {_PENDING}", (message_id,)
        )
        return row is not None

    async def mark_delivered(self, message: OutboxMessage, now: int) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL"
                " WHERE id = ?",
                (now, message.id),
            )
            await _note_webhooks(db, message.url, now, None)

    async def mark_attempt(self, message: OutboxMessage, now: int, error: str) -> None:
        """A failed attempt that will be retried: its error shows on the webhooks at once."""
        async with self.transaction() as db:
            await db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                (error, message.id),
            )
            await _note_webhooks(db, message.url, now, error)

    async def mark_failed(self, message: OutboxMessage, now: int, error: str) -> None:
        """Give up on a message; the error shows on its webhooks as ``last_error``."""
        async with self.transaction() as db:
            await db.execute(
                "UPDATE outbox SET failed_at = ?, attempts = attempts + 1, last_error = ?"
                " WHERE id = ?",
                (now, error, message.id),
            )
            await _note_webhooks(db, message.url, now, error)
