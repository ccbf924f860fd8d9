"""The connection: opening (pragmas, migrations, the reader), transactions, and the small read
helpers every query module uses.

Times are epoch milliseconds (INTEGER). The schema is versioned with ``PRAGMA user_version``:
``MIGRATIONS[n]`` brings a database from version n to n + 1, inside one transaction.

Writes that span several statements hold ``Connection._write_lock``: the one connection is
shared by every coroutine, and without the lock one coroutine's statements would land inside
another's transaction. Only the public methods commit.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Self

import aiosqlite

from uptimed.db.files import DatabaseUnavailable, check_files, log_created
from uptimed.db.schema import MIGRATIONS, SCHEMA_VERSION, STATUS_OF_CODE
from uptimed.models import MAX_SQLITE_INT, HistoryRow

JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
AUTO_VACUUM_INCREMENTAL = 2


class NotFound(Exception):
    """The site or webhook does not exist; ``str(e)`` is the API's detail text."""


HISTORY_SELECT = "SELECT status, response_time_ms, checked_at, status_since, reason FROM history"


def history_row(row: sqlite3.Row) -> HistoryRow:
    return HistoryRow.model_construct(
        status=STATUS_OF_CODE[row[0]],
        response_time_ms=row[1],
        last_checked=row[2],
        last_status_change=row[3],
        reason=row[4],
    )


FETCH_CHUNK = 2000


async def fetch_all(cur: aiosqlite.Cursor) -> list[sqlite3.Row]:
    """All rows in a few large fetches; ``async for`` would cross threads every 64 rows."""
    rows: list[sqlite3.Row] = []
    while batch := await cur.fetchmany(FETCH_CHUNK):
        rows.extend(batch)
    return rows


async def fetch_one(
    conn: aiosqlite.Connection, sql: str, args: Iterable[object] = ()
) -> sqlite3.Row | None:
    """The first row, in one trip to the database thread where a cursor takes three (execute,
    fetch, close), each waiting for a turn of a busy event loop."""
    return next(iter(await conn.execute_fetchall(sql, args)), None)


def valid_id(value: int) -> bool:
    return 0 < value <= MAX_SQLITE_INT


class Connection:
    """Owns the connections; the query classes (``db.store.Store``) build on it. Create with
    ``await Store.open(path)``, end with ``close()``."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._reader = conn  # until open() adds the read-only connection
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Self:
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
            log_created(path)
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
    async def latest(self) -> AsyncIterator[aiosqlite.Connection]:
        """The daemon's connection between two transactions, to read what is committed now:
        the reader shows an older snapshot while one of its reads is open (at start, the read
        of every site lasts seconds with 100,000 of them)."""
        async with self._write_lock:
            yield self._conn

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
