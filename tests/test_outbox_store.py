"""The outbox and webhook bookkeeping on a real SQLite file: migration 5, dropping a deleted
webhook's messages, errors shown with their time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import database_at, told
from uptimed.alerting import next_state
from uptimed.db import Store
from uptimed.db.schema import MIGRATIONS
from uptimed.models import CheckResult, SiteIn, Status, WebhookIn

OUTBOX_V5 = MIGRATIONS.index(next(m for m in MIGRATIONS if "outbox_v5" in m))


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    s = await Store.open(tmp_path / "u.db")
    yield s  # type: ignore[misc]
    await s.close()


async def queue_change(store: Store, site_id: int, at: int) -> None:
    """The site's next change of status (DOWN, UP, DOWN, ...) with a message, as the monitor
    writes one."""
    previous = (await store.site_states())[site_id][0]
    up = previous.status is Status.DOWN
    result = CheckResult(
        status=Status.UP if up else Status.DOWN,
        checked_at=at,
        response_time_ms=5,
        reason=None if up else "HTTP 500",
    )
    state, transition = next_state(site_id, previous, result)
    assert transition is not None
    await store.record_transition(site_id, result, state, transition, message=told("x"))


async def test_migration_keeps_messages_and_snapshots_their_site(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    raw = database_at(path, OUTBOX_V5)
    raw.execute(
        "INSERT INTO sites (id, url, name, check_interval_seconds, expected_status_code,"
        " created_at, status_since) VALUES (7, 'http://a', 'a', 60, 200, 1, 1)"
    )
    raw.execute("INSERT INTO webhooks (id, site_id, url, created_at) VALUES (3, 7, 'http://h', 1)")
    raw.executemany(
        "INSERT INTO outbox (id, webhook_id, url, payload, created_at, attempts, last_error)"
        " VALUES (?, ?, 'http://h', '{}', 2, ?, ?)",
        [(10, 3, 2, "Discord answered 503"), (11, None, 0, None)],  # 11: its site was deleted
    )
    raw.commit()
    raw.close()

    store = await Store.open(path)
    first = await store.next_message("http://h")
    assert first is not None
    assert (first.id, first.site_id, first.webhook_id, first.attempts) == (10, 7, 3, 2)
    await store.mark_delivered([first], now=5)
    second = await store.next_message("http://h")
    assert second is not None and (second.id, second.site_id, second.webhook_id) == (11, None, None)
    assert [(w.id, w.last_error_at) for w in await store.list_webhooks()] == [(3, None)]
    assert await store.conn.execute_fetchall("PRAGMA foreign_key_list(outbox)") == []
    await store.close()


async def test_deleting_a_webhook_drops_only_its_undelivered_messages(store: Store) -> None:
    one = await store.insert_site(SiteIn(url="http://a", name="a"), now=1)
    two = await store.insert_site(SiteIn(url="http://b", name="b"), now=1)
    gone = await store.insert_webhook(WebhookIn(site_id=one.id, discord_webhook_url="http://h"), 2)
    kept = await store.insert_webhook(WebhookIn(site_id=two.id, discord_webhook_url="http://h"), 2)
    await queue_change(store, one.id, 3)
    delivered = await store.next_message("http://h")
    assert delivered is not None
    await store.mark_delivered([delivered], now=4)
    await queue_change(store, one.id, 5)
    await queue_change(store, two.id, 6)

    assert await store.delete_webhook(gone.id) == 1
    left = await store.next_message("http://h")
    assert left is not None and (left.site_id, left.webhook_id) == (two.id, kept.id)
    assert not await store.is_pending([delivered])
    assert [(w.id, w.pending) for w in await store.list_webhooks()] == [(kept.id, 1)]


async def test_deleting_the_site_keeps_monitoring_ended_with_its_webhook_named(
    store: Store,
) -> None:
    site = await store.insert_site(SiteIn(url="http://a", name="a"), now=1)
    hook = await store.insert_webhook(WebhookIn(site_id=site.id, discord_webhook_url="http://h"), 2)
    await store.delete_site(site.id, farewell=told("ended"), now=3)
    message = await store.next_message("http://h")
    assert message is not None
    assert message.event is not None
    assert (message.event.site_name, message.site_id, message.webhook_id) == (
        "ended",
        site.id,
        hook.id,
    )


async def test_a_failed_attempt_shows_with_its_time_until_a_delivery(store: Store) -> None:
    site = await store.insert_site(SiteIn(url="http://a", name="a"), now=1)
    await store.insert_webhook(WebhookIn(site_id=site.id, discord_webhook_url="http://h"), 2)
    await queue_change(store, site.id, 3)
    message = await store.next_message("http://h")
    assert message is not None

    await store.mark_attempt([message], now=4, error="Discord answered 503")
    (hook,) = await store.list_webhooks()
    assert (hook.last_error, hook.last_error_at, hook.pending) == ("Discord answered 503", 4, 1)
    await store.mark_delivered([message], now=5)
    (hook,) = await store.list_webhooks()
    assert (hook.last_error, hook.last_error_at, hook.last_delivery_at) == (None, None, 5)
