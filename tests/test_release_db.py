"""A database written by the previous release opens with everything in it: the file in
tests/data was made by uptimed 0.1 through its own store (tests/data/make_db_0_1.py), and is
never made again, so every later migration is tried on what users have."""

from __future__ import annotations

import shutil
from pathlib import Path

from uptimed.db import SCHEMA_VERSION, Store
from uptimed.db.reports import history_page, incidents_page
from uptimed.models import HistoryQuery, SiteIn, Status

RELEASE_0_1 = Path(__file__).parent / "data" / "db-0.1.db"
T0 = 1_764_000_000_000
FIELDS_OF_0_1 = {"url", "name", "check_interval_seconds", "expected_status_code", "keep_alive"}


async def test_a_database_of_release_0_1_opens_with_everything_in_it(tmp_path: Path) -> None:
    path = tmp_path / "uptimed.db"
    shutil.copy(RELEASE_0_1, path)
    store = await Store.open(path)
    try:
        shop, blog = await store.list_sites()
        assert (shop.id, shop.name, shop.url, shop.check_interval_seconds) == (
            1, "Shop", "https://shop.example/health", 60
        )  # fmt: skip
        assert (blog.id, blog.expected_status_code, blog.keep_alive) == (2, 204, True)

        rows, _ = await history_page(store, shop.id, HistoryQuery())
        assert [r["status"] for r in rows] == ["INITIAL", "UP", "DOWN", "DOWN", "UP"]
        incidents, _ = await incidents_page(store, shop.id, limit=10, cursor=None, now=T0 * 2)
        assert [(i.reason, i.checks_failed, i.ended_at is not None) for i in incidents] == [
            ("HTTP 503", 2, True)
        ]
        states = await store.site_states()
        assert states[blog.id][0].status is Status.DOWN
        assert states[blog.id][0].reason == "HTTP 503"  # the open incident's, for the recovery

        hooks = await store.list_webhooks()
        assert [(w.site_id, w.pending, w.last_delivery_at is not None) for w in hooks] == [
            (shop.id, 2, True),
            (blog.id, 1, False),
        ]
        first = await store.next_message(hooks[0].discord_webhook_url)
        assert first is not None and first.payload == {"content": "1 DOWN"}
        assert (first.site_id, first.webhook_id) == (shop.id, hooks[0].id)

        # What 0.1 did not have takes its default: the same check as before, not paused.
        for site in (shop, blog):
            for name in set(SiteIn.model_fields) - FIELDS_OF_0_1:
                default = SiteIn.model_fields[name].get_default(call_default_factory=True)
                assert getattr(site, name) == default, name
        views = await store.list_site_views(now=T0 * 2)
        assert [(v.id, v.status, v.paused) for v in views] == [
            (shop.id, Status.UP, False),
            (blog.id, Status.DOWN, False),
        ]
        assert (views[1].last_reason, views[0].last_reason) == ("HTTP 503", None)
        # Their webhooks were told their status: an upgrade says nothing (an "unmuted" message
        # is for a status a mute kept quiet), and no reminder was asked for.
        assert await store.untold(T0 * 2) == []
        assert await store.due_reminders(T0 * 2) == []
        assert views[1].tls_certificate is None
        assert views[0].last_checked is not None
        # and it can be changed and paused, keeping its history
        data = SiteIn(**{**dict(shop), "name": "Shop 2", "paused": True})
        _, changed = await store.update_site(shop.id, data, now=T0 * 2)
        assert (changed.name, changed.paused) == ("Shop 2", True)
        rows, _ = await history_page(store, shop.id, HistoryQuery())
        assert len(rows) == 5

        # The site deleted in 0.1 (id 3) keeps its id: the next one is 4.
        new = await store.insert_site(SiteIn(url="http://new.example/", name="New"), T0 * 2)
        assert new.id == 4
        (version,) = await store.conn.execute_fetchall("PRAGMA user_version")
        assert tuple(version) == (SCHEMA_VERSION,)
    finally:
        await store.close()
