"""Sites: what is monitored, and each one's current status (the monitor's state at a start)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Any, TypeVar, get_args

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
from uptimed.fields import HttpMethod
from uptimed.models import Certificate, Site, SiteIn, SiteState, SiteView, Status, TlsCertificate

T = TypeVar("T")

# A site's settings, in the order of models.SiteIn; JSON_COLUMNS hold JSON text, BOOL_COLUMNS
# 0/1 (keep_alive may be NULL: the global setting).
WRITABLE = tuple(SiteIn.model_fields)
JSON_COLUMNS = frozenset(
    {"headers", "accepted_status_codes", "json_expected", "tls_expiry_warn_days"}
)
BOOL_COLUMNS = (
    "keep_alive",
    "paused",
    "follow_redirects",
    "verify_tls",
    "tls",
    "public",
    "show_url",
)
# Not writable through the API: where the site was declared (models.SiteView.source, key).
ORIGIN = ("source", "key")
SITE_COLUMNS = ", ".join(("id", "created_at", *ORIGIN, *WRITABLE))
# The read-only status of a site beside its settings (models.SiteView): the latest history
# row, found by the (site, time) key, is the last check unless it is the INITIAL row.
VIEW_SELECT = (
    f"SELECT {', '.join(f's.{c}' for c in SITE_COLUMNS.split(', '))},"
    " s.status, s.status_since, h.status AS last_code, h.checked_at AS last_checked,"
    " h.response_time_ms AS last_response_time_ms, h.reason AS last_reason,"
    " s.tls_subject, s.tls_issuer, s.tls_expires_at"
    " FROM sites s LEFT JOIN history h ON h.site_id = s.id"
    "  AND h.checked_at = (SELECT max(checked_at) FROM history WHERE site_id = s.id)"
)
_INSERT = (
    f"INSERT INTO sites (created_at, status, status_since, source, key, {', '.join(WRITABLE)})"
    f" VALUES (?1, 'INITIAL', ?1, ?2, ?3, {', '.join(f'?{i + 4}' for i in range(len(WRITABLE)))})"
)
_UPDATE = f"UPDATE sites SET {', '.join(f'{c} = ?' for c in WRITABLE)} WHERE id = ?"
# Every Site the store builds has all its fields set, so all share one fields-set: pydantic
# would give each its own (a set of names is a few hundred bytes, much of a Site). pydantic
# copies it before changing it (model_copy); a frozen Site never changes it.
SITE_FIELDS = set(Site.model_fields)
VIEW_FIELDS = set(SiteView.model_fields)
# One empty dict for every site without headers: a frozen Site's dict is never changed, and
# 100,000 sites would otherwise hold 100,000 of them.
_NO_HEADERS: dict[str, str] = {}
# Likewise one string per method, not one per site read, and one list per set of warning
# thresholds (most sites have the default).
_METHODS = {method: method for method in get_args(HttpMethod)}
_WARN_DAYS: dict[str, list[int]] = {}
SELECT_SITE = f"SELECT {SITE_COLUMNS} FROM sites WHERE id = ?"
_START_PAUSE = "INSERT INTO pauses (site_id, started_at) VALUES (?, ?)"


def _settings(row: sqlite3.Row) -> dict[str, Any]:
    data = {name: row[name] for name in ("id", "created_at", *ORIGIN, *WRITABLE)}
    for name in BOOL_COLUMNS:
        if data[name] is not None:
            data[name] = bool(data[name])
    warn_days = data.pop("tls_expiry_warn_days")
    for name in JSON_COLUMNS - {"tls_expiry_warn_days"}:
        if data[name] is not None:
            data[name] = json.loads(data[name])
    if (shared := _WARN_DAYS.get(warn_days)) is None:
        shared = _WARN_DAYS.setdefault(warn_days, json.loads(warn_days))
    data["tls_expiry_warn_days"] = shared
    data["headers"] = data["headers"] or _NO_HEADERS
    data["method"] = _METHODS.get(data["method"], data["method"])
    return data


def site_from_row(row: sqlite3.Row) -> Site:
    return _lean_site(_settings(row))


def _site(data: SiteIn, site_id: int, created_at: int) -> Site:
    """The Site just written, sharing the constants a site read back would."""
    fields = dict(data)
    fields["headers"] = data.headers or _NO_HEADERS
    fields["method"] = _METHODS.get(data.method, data.method)
    return _lean_site({**fields, "id": site_id, "created_at": created_at})


_SITE_ORDER = tuple(Site.model_fields)


def _lean_site(values: dict[str, Any]) -> Site:
    """``Site.model_construct(SITE_FIELDS, **values)``, with the attributes set one by one in
    one order: CPython then keeps one table of keys for every site and each site holds only
    its values (a "split" dict: 296 bytes for 29 fields, where the dict pydantic builds takes
    832). 100,000 sites stay in the scheduler's jobs. CPython shares a class's table only up
    to 29 names; past them every site has a dict of its own (1,584 bytes at 31), so
    ``models.Site`` must not grow past 29 fields (test_db checks it).
    What pydantic sees is the same: a frozen model whose ``__dict__`` has every field."""
    site = object.__new__(Site)
    for name in _SITE_ORDER:
        object.__setattr__(site, name, values[name])
    object.__setattr__(site, "__pydantic_fields_set__", SITE_FIELDS)
    object.__setattr__(site, "__pydantic_extra__", None)
    object.__setattr__(site, "__pydantic_private__", None)
    return site


def view_from_row(row: sqlite3.Row, now: int) -> SiteView:
    """``now`` (epoch ms) counts the certificate's days left."""
    data = _settings(row)
    if row["tls_expires_at"] is not None:
        seen = Certificate(row["tls_subject"], row["tls_issuer"], row["tls_expires_at"])
        data["tls_certificate"] = TlsCertificate(**asdict(seen), days_left=seen.days_left(now))
    checked = row["last_code"] not in (None, STATUS_CODES[Status.INITIAL])
    data.update(
        status=Status(row["status"]),
        status_since=row["status_since"],
        last_checked=row["last_checked"] if checked else None,
        last_response_time_ms=row["last_response_time_ms"] if checked else None,
        last_reason=row["last_reason"] if checked else None,
    )
    return SiteView.model_construct(VIEW_FIELDS, **data)


def column_values(data: SiteIn) -> list[Any]:
    """The columns of ``WRITABLE`` for ``data``; empty headers are stored as NULL."""
    values: list[Any] = []
    for name in WRITABLE:
        value = getattr(data, name)
        if name in JSON_COLUMNS and value is not None:
            value = json.dumps(value) if value or name != "headers" else None
        values.append(value)
    return values


async def write_site(
    db: aiosqlite.Connection, data: SiteIn, now: int, key: str | None = None
) -> Site:
    """Insert a site (declared in the config file when ``key`` is given) and its ``INITIAL``
    history row inside the caller's transaction; a site created paused starts its first pause
    at once."""
    source = "api" if key is None else "config"
    cur = await db.execute(_INSERT, (now, source, key, *column_values(data)))
    site_id = cur.lastrowid
    assert site_id is not None
    await db.execute(INSERT_HISTORY, (site_id, STATUS_CODES[Status.INITIAL], None, now, None, now))
    if data.paused:
        await db.execute(_START_PAUSE, (site_id, now))
    return _site(data, site_id, now)


async def rewrite_site(
    db: aiosqlite.Connection,
    before: Site,
    data: SiteIn,
    now: int,
    *,
    paused_message: str | None = None,
    resumed_message: str | None = None,
) -> Site:
    """Replace the settings of the site ``before`` inside the caller's transaction; returns it
    after. When ``paused`` changes, a pause starts or ends at ``now`` and its webhooks get
    ``paused_message`` or ``resumed_message`` (events as JSON)."""
    site_id = before.id
    await db.execute(_UPDATE, (*column_values(data), site_id))
    if data.paused and not before.paused:
        await db.execute(_START_PAUSE, (site_id, now))
        if paused_message is not None:
            await queue_messages(db, site_id, paused_message, now)
    elif before.paused and not data.paused:
        await db.execute(
            "UPDATE pauses SET ended_at = ? WHERE site_id = ? AND ended_at IS NULL",
            (now, site_id),
        )
        if resumed_message is not None:
            await queue_messages(db, site_id, resumed_message, now)
    return _site(data, site_id, before.created_at)


async def drop_site(
    db: aiosqlite.Connection, site_id: int, farewell: str | None = None, now: int = 0
) -> bool:
    """Delete a site inside the caller's transaction (False: there was none); its webhooks and
    history go with it (ON DELETE CASCADE). ``farewell`` (an event as JSON) is queued for the
    webhooks that hear it first, so "Monitoring ended" goes out although they are gone."""
    if farewell is not None:
        await queue_messages(db, site_id, farewell, now)
    cur = await db.execute("DELETE FROM sites WHERE id = ?", (site_id,))
    return cur.rowcount > 0


class SiteQueries(Connection):
    async def insert_site(self, data: SiteIn, now: int) -> Site:
        """Write the site and its ``INITIAL`` history row in one transaction; a site created
        paused starts its first pause at once."""
        async with self.transaction() as db:
            return await write_site(db, data, now)

    async def update_site(
        self,
        site_id: int,
        data: SiteIn,
        *,
        now: int,
        paused_message: str | None = None,
        resumed_message: str | None = None,
    ) -> tuple[Site, Site]:
        """Replace a site's settings; its history, incidents and webhooks stay. Returns the
        site before and after. When ``paused`` changes, a pause starts or ends at ``now`` and
        its webhooks get ``paused_message`` or ``resumed_message`` (events as JSON), in the same
        transaction: two PATCHes at once cannot both send "paused"."""
        if not valid_id(site_id):
            raise NotFound("Site not found")
        async with self.transaction() as db:
            row = await fetch_one(db, SELECT_SITE, (site_id,))
            if row is None:
                raise NotFound("Site not found")
            before = site_from_row(row)
            after = await rewrite_site(
                db,
                before,
                data,
                now,
                paused_message=paused_message,
                resumed_message=resumed_message,
            )
        return before, after

    async def list_sites(self) -> list[Site]:
        return await self._every(f"SELECT {SITE_COLUMNS} FROM sites ORDER BY id", (), site_from_row)

    async def _every(
        self, sql: str, args: Sequence[object], build: Callable[[sqlite3.Row], T]
    ) -> list[T]:
        """Every row of a query over all sites, built, in chunks: 100,000 sites must not stall
        the API for a second."""
        out: list[T] = []
        async with self._reader.execute(sql, args) as cur:
            while batch := await cur.fetchmany(FETCH_CHUNK):
                out.extend(build(row) for row in batch)
                await asyncio.sleep(0)
        return out

    async def list_site_views(
        self,
        *,
        now: int,
        status: Status | None = None,
        paused: bool | None = None,
        public: bool | None = None,
    ) -> list[SiteView]:
        """Every site with its status, optionally only those with ``status`` / ``paused`` /
        ``public`` (the status page's)."""
        where: list[str] = []
        args: list[object] = []
        if public is not None:
            where.append("s.public = ?")
            args.append(int(public))
        if status is not None:
            where.append("s.status = ?")
            args.append(status.value)
        if paused is not None:
            where.append("s.paused = ?")
            args.append(int(paused))
        sql = f"{VIEW_SELECT} {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY s.id"
        return await self._every(sql, args, lambda row: view_from_row(row, now))

    async def get_site_view(self, site_id: int, *, now: int, latest: bool = False) -> SiteView:
        """``latest``: as committed now (after a change), not as the reader's snapshot."""
        row = await self._site_row(f"{VIEW_SELECT} WHERE s.id = ?", site_id, latest=latest)
        return view_from_row(row, now)

    async def site_ids(self) -> list[int]:
        async with self._reader.execute("SELECT id FROM sites") as cur:
            return [row[0] for row in await fetch_all(cur)]

    async def get_site(self, site_id: int, *, latest: bool = False) -> Site:
        """``latest``: as committed now (to change it), not as the reader's snapshot."""
        return site_from_row(await self._site_row(SELECT_SITE, site_id, latest=latest))

    async def declared_key(self, site_id: int) -> str | None:
        """The key of a site declared in the config file, as committed now; None for a site
        made through the API (NotFound for no site)."""
        row = await self._site_row("SELECT key FROM sites WHERE id = ?", site_id, latest=True)
        return row["key"]

    async def _site_row(self, sql: str, site_id: int, *, latest: bool) -> sqlite3.Row:
        row = None
        if valid_id(site_id):
            if latest:
                async with self.latest() as db:
                    row = await fetch_one(db, sql, (site_id,))
            else:
                row = await fetch_one(self._reader, sql, (site_id,))
        if row is None:
            raise NotFound("Site not found")
        return row

    async def delete_site(self, site_id: int, *, farewell: str | None = None, now: int = 0) -> None:
        """Delete the site; its webhooks and history go with it (ON DELETE CASCADE).

        ``farewell`` (an event as JSON) is queued for each of its webhooks in the same transaction,
        so "Monitoring ended" goes out although the site and its webhooks are gone.
        """
        if not valid_id(site_id):
            raise NotFound("Site not found")
        async with self.transaction() as db:
            if not await drop_site(db, site_id, farewell, now):
                raise NotFound("Site not found")  # rolls the farewell back

    @staticmethod
    async def site_status(db: aiosqlite.Connection, site_id: int) -> Status:
        row = await fetch_one(db, "SELECT status FROM sites WHERE id = ?", (site_id,))
        return Status(row[0]) if row else Status.INITIAL

    async def site_states(self) -> dict[int, tuple[SiteState, int | None]]:
        """Each site's current state, and when it was last checked (None: never, or no row
        kept). The INITIAL row is not a check: a site never checked is due at once.

        A state's ``streak`` (checks towards a threshold) is not stored: it is the run of
        latest rows whose status differs from the site's, counted here for the few sites
        whose latest row does."""
        async with self._conn.execute(
            "SELECT id, status, status_since,"
            " (SELECT max(checked_at) FROM history h"
            "  WHERE h.site_id = s.id AND h.status <> 0) AS last_checked,"
            " (SELECT reason FROM incidents i WHERE i.site_id = s.id AND i.ended_at IS NULL),"
            " (SELECT status FROM history h WHERE h.site_id = s.id"
            "  ORDER BY checked_at DESC LIMIT 1) AS latest"
            " FROM sites s"
        ) as cur:
            states: dict[int, tuple[SiteState, int | None]] = {}
            counting: list[int] = []
            while batch := await cur.fetchmany(FETCH_CHUNK):
                for site_id, status, since, last, reason, latest in batch:
                    states[site_id] = (SiteState(Status(status), since, reason), last)
                    if latest not in (None, 0, STATUS_CODES[Status(status)]):
                        counting.append(site_id)
                await asyncio.sleep(0)
        for site_id in counting:
            state, last = states[site_id]
            states[site_id] = (replace(state, streak=await self._streak(site_id, state)), last)
        return states

    async def _streak(self, site_id: int, state: SiteState) -> int:
        """The latest rows in a row that disagree with ``state`` (at most the largest
        threshold, 10), since it began."""
        rows = await self._conn.execute_fetchall(
            "SELECT status FROM history WHERE site_id = ? AND checked_at > ?"
            " ORDER BY checked_at DESC LIMIT 10",
            (site_id, state.since),
        )
        own = STATUS_CODES[state.status]
        streak = 0
        for (status,) in rows:
            if status in (own, 0):
                break
            streak += 1
        return streak
