"""One service for adding, changing, pausing and removing a site: the store, the scheduler and
the monitor move together, so a handler only parses and serialises.

Changes to one site are made one at a time (a lock per site): a PATCH reads the site, merges
its fields and writes the whole site, and two at once would otherwise lose one (a rename sent
while someone pauses would write the site back unpaused); a DELETE during a PATCH would let
the PATCH schedule a deleted site again.

Sites declared in the config file are changed only by ``reload`` (at start, SIGHUP, ``POST
/config/reload``), one reload at a time; ``update`` and ``remove`` refuse them (``ReadOnly``,
answered 409).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from uptimed.alerting import ended_event, muted, paused_event
from uptimed.clock import Clock
from uptimed.db import Store
from uptimed.db.declarations import Applied
from uptimed.declared import Declaration, DeclarationError, ReadOnly, read_declaration
from uptimed.models import Site, SiteIn, SiteView, Status
from uptimed.monitor import Monitor
from uptimed.scheduler import Scheduler

log = logging.getLogger(__name__)

# Sites scheduled, rescheduled or unscheduled between two turns of the loop (bulk creation,
# reload): about 15 ms.
MOVE_CHUNK = 100


def patched(site: Site, patch: BaseModel) -> dict[str, Any]:
    """The site's settings with the patch's fields applied (null: the field's default), to be
    validated as a whole (``SiteIn``), as POST would: json_expected left without json_query
    is an error."""
    values: dict[str, Any] = {name: getattr(site, name) for name in SiteIn.model_fields}
    for name in patch.model_fields_set:
        value = getattr(patch, name)
        if value is None:
            del values[name]
        else:
            values[name] = value
    return values


FIRST_CHECKS_SPREAD_SECONDS = 1.0  # as POST /sites: the first check within about a second

# Fields whose default is a setting and for which a PATCH's null is a value of its own (never
# remind), not "the default again".
NULL_IS_A_VALUE = frozenset({"renotify_every_seconds"})


class NoConfigFile(Exception):
    """A reload was asked of a daemon started without a config file: there is nothing to
    read, and declared sites are left as they are."""


class Reloaded(BaseModel):
    """What a reload of the config file changed."""

    sites_created: int = Field(description="declared sites new in the file")
    sites_changed: int = Field(description="declared sites whose settings changed (history kept)")
    sites_removed: int = Field(description="declared sites gone from the file, now deleted")
    sites_unchanged: int = Field(description="declared sites the reload did not write")
    webhooks_created: int
    webhooks_removed: int
    seconds: float = Field(description="how long the reload took")

    def line(self) -> str:
        return " ".join(f"{name}={value}" for name, value in self.model_dump().items())


class Sites:
    def __init__(
        self,
        store: Store,
        scheduler: Scheduler,
        monitor: Monitor,
        *,
        clock: Clock,
        wake: Callable[[], None],
        defaults: Mapping[str, Any] | None = None,
        config_path: Path | None = None,
    ) -> None:
        """``config_path``: the file whose sites and webhooks ``reload`` follows (None: the
        daemon has none); a 409 for a declared site names it."""
        self._defaults = dict(defaults or {})  # fields whose default is a setting
        self._config_path = config_path
        self._reloading = asyncio.Lock()
        self._store = store
        self._scheduler = scheduler
        self._monitor = monitor
        self._clock = clock
        self._wake = wake  # the outbox: a message was queued
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}  # site id -> (lock, users)

    async def add(self, data: SiteIn) -> SiteView:
        site = await self._store.insert_site(self._defaulted(data), now=self._clock.now_ms())
        return self._watch(site)

    async def add_many(
        self, sites: Sequence[tuple[SiteIn, Sequence[str]]], every_site: Sequence[str] = ()
    ) -> list[SiteView]:
        """Add many sites, each with its own webhook URLs, and webhooks of every site, in one
        transaction (all or nothing: ``Store.insert_sites``), then schedule them as ``add``
        does, their first checks spread over ``FIRST_CHECKS_SPREAD_SECONDS`` (1,000 checks
        started in one turn of the loop held it for 0.2 s). The loop gets a turn every
        ``MOVE_CHUNK`` sites, so checks due meanwhile start on time."""
        started, now = self._clock.monotonic(), self._clock.now_ms()
        items = [(self._defaulted(data), urls) for data, urls in sites]
        created, webhooks = await self._store.insert_sites(items, every_site, now=now)
        views = await self._watch_many(created)
        log.info(
            "sites added in bulk sites=%d webhooks=%d seconds=%.3f",
            len(created),
            webhooks,
            self._clock.monotonic() - started,
        )
        return views

    def _defaulted(self, data: SiteIn) -> SiteIn:
        """The fields left out whose default is a setting get the setting's value."""
        unset = {k: v for k, v in self._defaults.items() if k not in data.model_fields_set}
        return data.model_copy(update=unset) if unset else data

    async def _watch_many(self, created: Sequence[Site]) -> list[SiteView]:
        """``_watch`` for many sites just stored, their first checks spread over
        ``FIRST_CHECKS_SPREAD_SECONDS`` (1,000 checks started in one turn of the loop held it
        for 0.2 s), the loop getting a turn every ``MOVE_CHUNK`` sites."""
        first = datetime.now(UTC)  # the scheduler's clock; after the write, not before it
        step = timedelta(seconds=FIRST_CHECKS_SPREAD_SECONDS / max(len(created), 1))
        views: list[SiteView] = []
        for offset in range(0, len(created), MOVE_CHUNK):
            for n, site in enumerate(created[offset : offset + MOVE_CHUNK], offset):
                views.append(self._watch(site, first_run=first + n * step))
            await asyncio.sleep(0)
        return views

    def _watch(self, site: Site, first_run: datetime | None = None) -> SiteView:
        """A site just stored: the monitor follows it, and it is checked (first at
        ``first_run``, default: at once) unless paused."""
        self._monitor.add(site)
        if site.paused:
            self._monitor.pause(site.id)
        else:
            self._scheduler.schedule(site, first_run=first_run)
        return SiteView.model_construct(
            **dict(site), status=Status.INITIAL, status_since=site.created_at
        )

    async def update(self, site_id: int, patch: BaseModel) -> None:
        """Apply a PATCH (pydantic's ``ValidationError`` when the result is no valid site). A
        change of what is checked runs the next check now; pausing tells the webhooks, in the
        transaction that pauses, and no alert of a check still in flight follows it."""
        async with self._one_at_a_time(site_id):
            await self._writable(site_id)
            site = await self._store.get_site(site_id, latest=True)
            values = patched(site, patch)
            # A null that resets a field whose default is a setting (not renotify's: its null
            # means never) gives the setting's value.
            for name, default in self._defaults.items():
                if name not in values and name not in NULL_IS_A_VALUE:
                    values[name] = default
            data = SiteIn.model_validate(values)
            now = self._clock.now_ms()
            pausing = data.paused and not site.paused
            if pausing:  # from now on, a check in flight records nothing
                self._monitor.pause(site_id)
            try:
                before, after = await self._store.update_site(
                    site_id,
                    data,
                    now=now,
                    paused_message=_pause_message(data, now, paused=True),
                    resumed_message=_pause_message(data, now, paused=False),
                )
            except BaseException:
                if pausing:
                    self._monitor.unpause(site_id)
                raise
            await self._scheduler.changed(before, after)
            if before.paused != after.paused:
                self._wake()

    async def remove(self, site_id: int) -> None:
        async with self._one_at_a_time(site_id):
            await self._writable(site_id)
            site = await self._store.get_site(site_id, latest=True)
            now = self._clock.now_ms()
            await self._store.delete_site(site.id, farewell=_farewell(site, now), now=now)
            self._scheduler.unschedule(site.id)
            self._monitor.remove(site.id)
            self._wake()

    async def _writable(self, site_id: int) -> None:
        if (key := await self._store.declared_key(site_id)) is not None:
            raise ReadOnly("Site", key, self._config_path)

    async def reload_file(self) -> Reloaded:
        """Read the config file again and ``reload`` it. Raises ``NoConfigFile``, or
        ``DeclarationError`` for a file with any error: then nothing changes."""
        if self._config_path is None:
            raise NoConfigFile(
                "uptimed was started without a config file (--config or UPTIMED_CONFIG):"
                " there is nothing to reload"
            )
        # In a thread: parsing and validating 1,000 sites would hold the loop, and checks.
        try:
            declaration = await asyncio.to_thread(read_declaration, self._config_path)
        except DeclarationError as e:
            log.error("config reload failed, the running config stays: %s", e)
            raise
        return await self.reload(declaration)

    async def reload(self, declaration: Declaration) -> Reloaded:
        """Make the declared sites and webhooks match ``declaration``, in one transaction, then
        move the scheduler and the monitor as add, update and remove would. One at a time."""
        async with self._reloading:
            started = self._clock.monotonic()
            applied = await self.apply(declaration)
            await self._follow(applied)
            reloaded = summary(applied, self._clock.monotonic() - started)
        log.info("config reloaded path=%s %s", declaration.path, reloaded.line())
        return reloaded

    async def apply(self, declaration: Declaration) -> Applied:
        """The store's part of ``reload`` alone: at start, before the scheduler reads the sites
        (it then schedules them as they are)."""
        declaration = replace(
            declaration,
            sites=tuple(
                replace(declared, site=self._defaulted(declared.site))
                for declared in declaration.sites
            ),
        )
        now = self._clock.now_ms()
        pausing: list[int] = []

        def pause(site_id: int) -> None:
            self._monitor.pause(site_id)
            pausing.append(site_id)

        try:
            applied = await self._store.apply_declaration(
                declaration,
                now,
                farewell=lambda site: _farewell(site, now),
                pause_message=lambda data, paused: _pause_message(data, now, paused=paused),
                pausing=pause,
            )
        except BaseException:
            for site_id in pausing:
                self._monitor.unpause(site_id)
            raise
        if applied.queued:
            self._wake()
        return applied

    async def _follow(self, applied: Applied) -> None:
        """Checks follow the committed reload, a chunk of sites between yields to the loop."""
        await self._watch_many(applied.created)
        for number, (before, after) in enumerate(applied.changed, 1):
            await self._scheduler.changed(before, after)
            if number % MOVE_CHUNK == 0:
                await asyncio.sleep(0)
        for number, site_id in enumerate(applied.removed, 1):
            self._scheduler.unschedule(site_id)
            self._monitor.remove(site_id)
            if number % MOVE_CHUNK == 0:
                await asyncio.sleep(0)

    @asynccontextmanager
    async def _one_at_a_time(self, site_id: int) -> AsyncIterator[None]:
        lock, users = self._locks.get(site_id) or (asyncio.Lock(), 0)
        self._locks[site_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[site_id]
            if users == 1:
                del self._locks[site_id]
            else:
                self._locks[site_id] = (lock, users - 1)


def _farewell(site: Site, now: int) -> str | None:
    """ "Monitoring ended" for a deleted site's webhooks, unless its alerts are muted."""
    return None if muted(site.alerts_muted_until, now) else ended_event(site, now).model_dump_json()


def _pause_message(data: SiteIn, now: int, *, paused: bool) -> str | None:
    if muted(data.alerts_muted_until, now):  # no message of pausing or resuming either
        return None
    return paused_event(data, now, paused=paused).model_dump_json()


def summary(applied: Applied, seconds: float) -> Reloaded:
    """What a reload (or the start's apply) changed, as the log line and the API tell it."""
    return Reloaded(
        sites_created=len(applied.created),
        sites_changed=len(applied.changed),
        sites_removed=len(applied.removed),
        sites_unchanged=applied.unchanged,
        webhooks_created=applied.webhooks_created,
        webhooks_removed=applied.webhooks_removed,
        seconds=round(seconds, 3),
    )
