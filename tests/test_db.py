"""The store on a real SQLite file: pragmas, migrations, cascades, one-transaction writes."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from tests.conftest import database_at, told
from uptimed.alerting import next_state
from uptimed.db import SCHEMA_VERSION, NotFound, Store
from uptimed.db.reports import history_page, incidents_page
from uptimed.models import (
    CheckResult,
    HistoryQuery,
    SiteIn,
    SiteState,
    Status,
    Transition,
    WebhookIn,
    iso_ms,
)


def started(site_id: int, result: CheckResult) -> tuple[SiteState, Transition]:
    """The first check's transition, as the monitor's state machine makes it."""
    state, transition = next_state(site_id, SiteState(status=Status.INITIAL, since=1), result)
    assert transition is not None
    return state, transition


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    s = await Store.open(tmp_path / "sub" / "u.db")
    yield s  # type: ignore[misc]
    await s.close()


async def test_pragmas_and_schema_version(store: Store, tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / "sub" / "u.db")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    # History is clustered by (site, time): no rowid, no second index to keep in step.
    sql = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'history'").fetchone()[0]
    assert "WITHOUT ROWID" in sql and "PRIMARY KEY (site_id, checked_at)" in sql
    assert raw.execute("PRAGMA index_list(history)").fetchall()[0][1].startswith("sqlite_autoindex")


async def test_reopen_keeps_data_and_skips_applied_migrations(tmp_path: Path) -> None:
    path = tmp_path / "u.db"
    s = await Store.open(path)
    site = await s.insert_site(SiteIn(url="http://a", name="a"), now=1)
    await s.close()
    s = await Store.open(path)
    assert await s.list_sites() == [site]
    await s.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "u.db"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        await Store.open(path)


async def test_delete_cascades_to_history_and_webhooks(store: Store) -> None:
    site = await store.insert_site(SiteIn(url="http://a", name="a"), now=1)
    await store.insert_webhook(WebhookIn(site_id=site.id, discord_webhook_url="http://h"), now=2)
    result = CheckResult(status=Status.UP, checked_at=3, response_time_ms=5)
    state, transition = started(site.id, result)
    assert await store.record_transition(site.id, result, state, transition)
    await store.delete_site(site.id)
    with pytest.raises(NotFound):
        await store.get_site(site.id)
    assert (await history_page(store, site.id, HistoryQuery()))[0] == []
    assert await store.list_webhooks() == []
    # A check that finishes after the delete writes nothing and does not fail.
    assert not await store.record_transition(site.id, result, state, transition)
    await store.write_checks([(site.id, 1, 5, 4, None, 3)], [], [])
    assert (await history_page(store, site.id, HistoryQuery()))[0] == []


async def test_a_transition_is_one_transaction(store: Store) -> None:
    site = await store.insert_site(SiteIn(url="http://a", name="a"), now=1)
    bad = CheckResult(status=Status.UP, checked_at=2**70, response_time_ms=5)  # cannot be stored
    with pytest.raises(OverflowError):
        await store.record_transition(site.id, bad, *started(site.id, bad))
    states = await store.site_states()
    assert states[site.id][0].status is Status.INITIAL  # the sites row was rolled back too
    page, _ = await history_page(store, site.id, HistoryQuery())
    assert [r["status"] for r in page] == ["INITIAL"]


async def test_transition_message_is_queued_per_webhook_in_the_same_transaction(
    store: Store,
) -> None:
    site = await store.insert_site(SiteIn(url="http://a", name="a"), now=1)
    for url in ("http://h/1", "http://h/2"):
        await store.insert_webhook(WebhookIn(site_id=site.id, discord_webhook_url=url), now=2)
    result = CheckResult(status=Status.DOWN, checked_at=3, response_time_ms=5, reason="HTTP 500")
    down, went_down = started(site.id, result)
    await store.record_transition(site.id, result, down, went_down, message=told("down"))
    assert await store.pending_urls() == ["http://h/1", "http://h/2"]
    message = await store.next_message("http://h/2")
    assert message is not None and message.event.site_name == "down"

    bad = CheckResult(status=Status.UP, checked_at=2**70, response_time_ms=5)
    up, went_up = next_state(site.id, down, bad)
    assert went_up is not None
    with pytest.raises(OverflowError):
        await store.record_transition(site.id, bad, up, went_up, message=told("up"))
    assert [w.pending for w in await store.list_webhooks()] == [1, 1]  # no "up" queued

    await store.mark_delivered([message], now=9)
    hooks = await store.list_webhooks()
    assert [(w.pending, w.last_delivery_at) for w in hooks] == [(1, None), (0, 9)]


async def test_a_paused_site_records_no_transition_of_a_check_still_in_flight(
    store: Store,
) -> None:
    """The monitor writes a transition after its check; if the site was paused meanwhile,
    its webhooks were told "paused" and must hear nothing more."""
    site = await store.insert_site(SiteIn(url="http://a", name="a"), now=1)
    await store.insert_webhook(WebhookIn(site_id=site.id, discord_webhook_url="http://h"), now=2)
    await store.update_site(site.id, SiteIn(url="http://a", name="a", paused=True), now=3)
    result = CheckResult(status=Status.DOWN, checked_at=4, response_time_ms=5, reason="HTTP 500")
    down, went_down = started(site.id, result)
    written = await store.record_transition(site.id, result, down, went_down, message=told("down"))
    assert not written
    assert await store.pending_urls() == []
    assert (await store.site_states())[site.id][0].status is Status.INITIAL
    rows, _ = await history_page(store, site.id, HistoryQuery())
    assert [r["status"] for r in rows] == ["INITIAL"]


async def test_migration_from_v2_keeps_history_and_derives_incidents(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    raw = database_at(path, 2)
    raw.execute(
        "INSERT INTO sites (id, url, name, check_interval_seconds, expected_status_code,"
        " created_at, status, status_since, last_checked) VALUES (1, 'http://a', 'a', 60, 200,"
        " 0, 'UP', 300, 400)"
    )
    rows = [
        ("INITIAL", None, 0, 0, None),
        ("UP", 5, 100, 100, None),
        ("DOWN", 7, 200, 200, "HTTP 503"),
        ("DOWN", 8, 250, 200, "timeout after 10s"),
        ("UP", 6, 300, 300, None),
        ("UP", 6, 400, 300, None),
    ]
    raw.executemany(
        "INSERT INTO history (site_id, status, response_time_ms, checked_at, status_since, reason)"
        " VALUES (1, ?, ?, ?, ?, ?)",
        rows,
    )
    raw.commit()
    raw.close()

    store = await Store.open(path)
    page, _ = await history_page(store, 1, HistoryQuery())
    assert [
        (r["status"], r["last_checked"], r["last_status_change"], r["reason"]) for r in page
    ] == [(s, iso_ms(at), iso_ms(since), reason) for s, _, at, since, reason in rows]
    incidents, _ = await incidents_page(store, 1, limit=10, cursor=None, now=1000)
    assert [(i.started_at, i.ended_at, i.reason, i.checks_failed) for i in incidents] == [
        (200, 300, "HTTP 503", 2)
    ]
    await store.close()
    assert sqlite3.connect(path).execute("PRAGMA auto_vacuum").fetchone()[0] == 2


async def test_a_site_never_checked_has_no_last_check(store: Store) -> None:
    never = await store.insert_site(SiteIn(url="http://a", name="a"), now=1_000)
    checked = await store.insert_site(SiteIn(url="http://b", name="b"), now=1_000)
    result = CheckResult(status=Status.UP, checked_at=5_000, response_time_ms=5)
    await store.record_transition(checked.id, result, *started(checked.id, result))
    states = await store.site_states()
    assert states[never.id][1] is None  # its INITIAL row is not a check: due at once
    assert states[checked.id][1] == 5_000


async def test_ids_are_never_reused_across_deletes_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "u.db"
    s = await Store.open(path)
    first = await s.insert_site(SiteIn(url="http://a", name="a"), now=1)
    last = await s.insert_site(SiteIn(url="http://b", name="b"), now=1)
    hook = await s.insert_webhook(
        WebhookIn(site_id=first.id, discord_webhook_url="http://h"), now=1
    )
    await s.delete_site(last.id)
    await s.delete_webhook(hook.id)
    await s.close()
    s = await Store.open(path)  # the counters survive a restart
    again = await s.insert_site(SiteIn(url="http://c", name="c"), now=2)
    hook2 = await s.insert_webhook(
        WebhookIn(site_id=first.id, discord_webhook_url="http://h"), now=2
    )
    await s.close()
    assert again.id == last.id + 1
    assert hook2.id == hook.id + 1


async def test_migration_to_growing_ids_keeps_every_row_that_points_at_a_site(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v4.db"
    raw = database_at(path, 4)
    raw.executescript(
        """
        INSERT INTO sites (id, url, name, check_interval_seconds, expected_status_code,
                           created_at, status, status_since, last_checked, keep_alive)
            VALUES (7, 'http://a', 'a', 60, 200, 0, 'DOWN', 200, 250, 1);
        INSERT INTO history VALUES (7, 0, 0, NULL, 0, NULL), (7, 200, 2, 9, 200, 'HTTP 503');
        INSERT INTO incidents (site_id, started_at, reason) VALUES (7, 200, 'HTTP 503');
        INSERT INTO webhooks (id, site_id, url, created_at) VALUES (3, 7, 'http://h/1', 0);
        INSERT INTO outbox (webhook_id, url, payload, created_at) VALUES (3, 'http://h/1', '{}', 1);
        INSERT INTO rollup_minute (site_id, bucket, checks, up, rt_sum, rt_max)
            VALUES (7, 0, 1, 0, 9, 9);
        """
    )
    raw.commit()
    raw.close()

    store = await Store.open(path)
    site = await store.get_site(7)
    assert (site.name, site.keep_alive) == ("a", True)
    assert [w.id for w in await store.list_webhooks(7)] == [3]
    assert (await store.list_webhooks(7))[0].pending == 1
    page, _ = await history_page(store, 7, HistoryQuery())
    assert [r["status"] for r in page] == ["INITIAL", "DOWN"]
    new = await store.insert_site(SiteIn(url="http://b", name="b"), now=5)
    await store.delete_site(new.id)
    newer = await store.insert_site(SiteIn(url="http://c", name="c"), now=6)
    await store.close()
    assert (new.id, newer.id) == (8, 9)
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT count(*) FROM incidents WHERE site_id = 7").fetchone()[0] == 1
    assert raw.execute("SELECT count(*) FROM rollup_minute WHERE site_id = 7").fetchone()[0] == 1
    assert raw.execute("PRAGMA foreign_keys").fetchone()[0] == 0  # a new connection's default
    assert raw.execute("PRAGMA foreign_key_check").fetchall() == []


async def test_an_outbox_id_is_never_given_to_another_message(store: Store) -> None:
    """A worker may still hold the id of a message its webhook's deletion dropped: that id must
    not come to name a new message, or the worker would send and mark the wrong one."""
    site = await store.insert_site(SiteIn(url="http://a", name="a"), now=1)
    hook = await store.insert_webhook(
        WebhookIn(site_id=site.id, discord_webhook_url="http://h/1"), now=1
    )
    down = CheckResult(status=Status.DOWN, checked_at=5, response_time_ms=1, reason="x")
    transition = Transition(
        site_id=site.id, previous=Status.INITIAL, current=Status.DOWN, at=5, previous_since=1
    )
    state = SiteState(status=Status.DOWN, since=5)
    await store.record_transition(site.id, down, state, transition, message=told("x"))
    dropped = await store.next_message("http://h/1")
    assert dropped is not None
    await store.delete_webhook(hook.id)
    await store.insert_webhook(WebhookIn(site_id=site.id, discord_webhook_url="http://h/2"), now=6)
    up = CheckResult(status=Status.UP, checked_at=9, response_time_ms=1)
    back = Transition(
        site_id=site.id, previous=Status.DOWN, current=Status.UP, at=9, previous_since=5
    )
    await store.record_transition(
        site.id, up, SiteState(status=Status.UP, since=9), back, message=told("x")
    )
    new = await store.next_message("http://h/2")
    assert new is not None and new.id > dropped.id
    assert not await store.is_pending([dropped])


async def test_every_stored_site_shares_one_table_of_attribute_names(store: Store) -> None:
    """A Site past 29 fields gives each site a dict of its own (1,704 bytes a site instead of
    384: 50 MiB more at 40,000 sites): CPython shares a class's key table up to 29 names."""
    written = await store.insert_site(SiteIn(url="http://a", name="a"), now=1)
    before, after = await store.update_site(
        written.id, SiteIn(url="http://b", name="b", headers={"X": "1"}), now=2
    )
    read = (await store.list_sites())[0]
    for site in (written, before, after, read, await store.get_site(written.id)):
        assert len(vars(site)) <= 29
        # A shared-key dict stores only its values: 296 bytes for 29 (its own table: 1,584).
        assert sys.getsizeof(vars(site)) < 600, f"{len(vars(site))} fields: not key-shared"
