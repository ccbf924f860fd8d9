"""The store on a real SQLite file: pragmas, migrations, cascades, one-transaction writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from uptimed.db import SCHEMA_VERSION, NotFound, Store
from uptimed.models import CheckResult, SiteIn, SiteState, Status, WebhookIn


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    s = await Store.open(tmp_path / "sub" / "u.db")
    yield s  # type: ignore[misc]
    await s.close()


async def test_pragmas_and_schema_version(store: Store, tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / "sub" / "u.db")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "history_site_time" in indexes


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
    await store.record_check(
        site.id, result, SiteState(status=Status.UP, since=3), None, append_unchanged=True
    )
    await store.delete_site(site.id)
    with pytest.raises(NotFound):
        await store.history(site.id)
    assert await store.list_webhooks() == []
    # A check that finishes after the delete writes nothing and does not fail.
    assert not await store.record_check(
        site.id, result, SiteState(status=Status.UP, since=3), None, append_unchanged=True
    )


async def test_record_check_is_one_transaction(store: Store) -> None:
    site = await store.insert_site(SiteIn(url="http://a", name="a"), now=1)
    bad = CheckResult(status=Status.UP, checked_at=2**70, response_time_ms=5)  # cannot be stored
    with pytest.raises(OverflowError):
        await store.record_check(
            site.id, bad, SiteState(status=Status.UP, since=2), None, append_unchanged=True
        )
    states = await store.site_states()
    assert states[site.id][0].status is Status.INITIAL  # the sites row was rolled back too
    assert [r.status for r in await store.history(site.id)] == [Status.INITIAL]


async def test_transition_message_is_queued_per_webhook_in_the_same_transaction(
    store: Store,
) -> None:
    site = await store.insert_site(SiteIn(url="http://a", name="a"), now=1)
    for url in ("http://h/1", "http://h/2"):
        await store.insert_webhook(WebhookIn(site_id=site.id, discord_webhook_url=url), now=2)
    result = CheckResult(status=Status.DOWN, checked_at=3, response_time_ms=5, reason="HTTP 500")
    await store.record_check(
        site.id, result, SiteState(status=Status.DOWN, since=3), None,
        append_unchanged=True, message='{"content": "down"}',
    )  # fmt: skip
    assert await store.pending_urls() == ["http://h/1", "http://h/2"]
    message = await store.next_message("http://h/2")
    assert message is not None and message.payload == {"content": "down"}

    bad = CheckResult(status=Status.UP, checked_at=2**70, response_time_ms=5)
    with pytest.raises(OverflowError):
        await store.record_check(
            site.id, bad, SiteState(status=Status.UP, since=4), None,
            append_unchanged=True, message='{"content": "up"}',
        )  # fmt: skip
    assert [w.pending for w in await store.list_webhooks()] == [1, 1]  # no "up" queued

    await store.mark_delivered(message, now=9)
    hooks = await store.list_webhooks()
    assert [(w.pending, w.last_delivery_at) for w in hooks] == [(1, None), (0, 9)]
