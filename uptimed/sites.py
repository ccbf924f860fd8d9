"""One service for adding, changing, pausing and removing a site: the store, the scheduler and
the monitor move together, so a handler only parses and serialises.

Changes to one site are made one at a time (a lock per site): a PATCH reads the site, merges
its fields and writes the whole site, and two at once would otherwise lose one (a rename sent
while someone pauses would write the site back unpaused); a DELETE during a PATCH would let
the PATCH schedule a deleted site again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from uptimed.alerting import ended_event, muted, paused_event
from uptimed.clock import Clock
from uptimed.db import Store
from uptimed.models import Site, SiteIn, SiteView, Status
from uptimed.monitor import Monitor
from uptimed.scheduler import Scheduler


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


log = logging.getLogger(__name__)
ADD_CHUNK = 100  # sites scheduled between two turns of the loop (add_many): about 15 ms
FIRST_CHECKS_SPREAD_SECONDS = 1.0  # as POST /sites: the first check within about a second

# Fields whose default is a setting and for which a PATCH's null is a value of its own (never
# remind), not "the default again".
NULL_IS_A_VALUE = frozenset({"renotify_every_seconds"})


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
    ) -> None:
        self._defaults = dict(defaults or {})  # fields whose default is a setting
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
        ``ADD_CHUNK`` sites, so checks due meanwhile start on time."""
        started, now = self._clock.monotonic(), self._clock.now_ms()
        items = [(self._defaulted(data), urls) for data, urls in sites]
        created, webhooks = await self._store.insert_sites(items, every_site, now=now)
        first = datetime.now(UTC)  # the scheduler's clock; after the write, not before it
        step = timedelta(seconds=FIRST_CHECKS_SPREAD_SECONDS / max(len(created), 1))
        views: list[SiteView] = []
        for offset in range(0, len(created), ADD_CHUNK):
            for n, site in enumerate(created[offset : offset + ADD_CHUNK], offset):
                views.append(self._watch(site, first_run=first + n * step))
            await asyncio.sleep(0)
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
            site = await self._store.get_site(site_id, latest=True)
            values = patched(site, patch)
            # A null that resets a field whose default is a setting (not renotify's: its null
            # means never) gives the setting's value.
            for name, default in self._defaults.items():
                if name not in values and name not in NULL_IS_A_VALUE:
                    values[name] = default
            data = SiteIn.model_validate(values)
            now = self._clock.now_ms()
            quiet = muted(data.alerts_muted_until, now)  # no message of pausing or resuming either
            pausing = data.paused and not site.paused
            if pausing:  # from now on, a check in flight records nothing
                self._monitor.pause(site_id)
            try:
                before, after = await self._store.update_site(
                    site_id,
                    data,
                    now=now,
                    paused_message=None
                    if quiet
                    else paused_event(data, now, paused=True).model_dump_json(),
                    resumed_message=None
                    if quiet
                    else paused_event(data, now, paused=False).model_dump_json(),
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
            site = await self._store.get_site(site_id, latest=True)
            now = self._clock.now_ms()
            farewell = (
                None
                if muted(site.alerts_muted_until, now)
                else ended_event(site, now).model_dump_json()
            )
            await self._store.delete_site(site.id, farewell=farewell, now=now)
            self._scheduler.unschedule(site.id)
            self._monitor.remove(site.id)
            self._wake()

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
