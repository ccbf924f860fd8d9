"""When a site turns DOWN or UP and who hears of it, end to end: the real app checks a real
target and posts to a fake Discord that validates every body. Thresholds and retry intervals
run in real time (seconds); reminders and mutes on a clock the test moves, with the periodic
job (``FOLLOWUPS``) called at the moments the test picks."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import AppClient, ManualClock, Target, eventually
from tests.fake_discord import FakeDiscord
from uptimed.app_keys import FOLLOWUPS
from uptimed.config import Settings
from uptimed.models import iso_ms


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"discord_backoff_initial_seconds": 0.05, "discord_backoff_max_seconds": 0.2}
    )


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeDiscord:
    return await FakeDiscord().start(aiohttp_server)


async def add_site(client: TestClient, **fields: Any) -> dict[str, Any]:
    resp = await client.post("/sites", json={"name": "Shop", **fields})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def add_hook(client: TestClient, site_id: int, url: str) -> None:
    resp = await client.post("/webhooks", json={"site_id": site_id, "discord_webhook_url": url})
    assert resp.status == 200


async def site(client: TestClient, site_id: int) -> dict[str, Any]:
    return await (await client.get(f"/sites/{site_id}")).json()


async def history(client: TestClient, site_id: int) -> list[dict[str, Any]]:
    """Oldest first, INITIAL row left out."""
    rows = await (await client.get(f"/sites/{site_id}/history")).json()
    return [r for r in rows if r["status"] != "INITIAL"]


def titles(fake: FakeDiscord) -> list[str]:
    return [b["embeds"][0]["title"] for b in fake.valid_bodies()]


def fields(fake: FakeDiscord, index: int) -> dict[str, str]:
    return {f["name"]: f["value"] for f in fake.valid_bodies()[index]["embeds"][0]["fields"]}


async def pending(client: TestClient, site_id: int) -> int:
    hooks = await (await client.get(f"/webhooks/{site_id}")).json()
    return sum(h["pending"] for h in hooks)


# --- thresholds and the retry interval ------------------------------------------------------


async def test_three_failures_turn_a_site_down_retries_come_sooner_then_the_grid_returns(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(fast)
    s = await add_site(
        client,
        url=target.url("/shop"),
        check_interval_seconds=4,
        failure_threshold=3,
        retry_interval_seconds=1,
    )
    await add_hook(client, s["id"], fake.url())
    await fake.wait_for(1)
    ok_hits = len(target.hit_times("/shop"))
    target.status = 503

    await fake.wait_for(2, timeout=15)

    assert titles(fake) == ["🟢 Monitoring started: Shop is UP", "🔴 Shop is DOWN"]
    assert fields(fake, 1)["Confirmed by"] == "3 failed checks in a row"
    hits = target.hit_times("/shop")
    failed = hits[ok_hits : ok_hits + 3]
    # the 2nd and 3rd failures came one retry interval after the one before, not four
    assert [round(b - a) for a, b in itertools.pairwise(failed)] == [1, 1]
    # every check but the retries lies on the site's 4-second grid, the next one included
    after = (await target.wait_hits("/shop", ok_hits + 4, timeout=10))[ok_hits + 3]
    for hit in [*hits[:ok_hits], failed[0], after]:
        offset = (hit - hits[0]) % 4
        assert min(offset, 4 - offset) < 0.5, (hit - hits[0], hits)
    # history has every check as it was; the site's status, since and incident follow its state
    rows = await history(client, s["id"])
    down = [r for r in rows if r["status"] == "DOWN"]
    assert [r["last_status_change"] for r in down[:3]] == [rows[0]["last_status_change"]] * 2 + [
        down[2]["last_checked"]
    ]
    now = await site(client, s["id"])
    assert (now["status"], now["status_since"]) == ("DOWN", down[2]["last_checked"])
    incidents = await (await client.get(f"/sites/{s['id']}/incidents")).json()
    assert [(i["started_at"], i["checks_failed"]) for i in incidents] == [
        (down[2]["last_checked"], 3)
    ]
    assert fake.violations() == []


async def test_two_good_checks_in_a_row_end_an_outage(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(fast)
    target.status = 503
    s = await add_site(
        client, url=target.url("/shop"), check_interval_seconds=1, success_threshold=2
    )
    await add_hook(client, s["id"], fake.url())
    await fake.wait_for(1)
    target.status = 200

    await fake.wait_for(2, timeout=10)

    assert titles(fake) == ["🔴 Monitoring started: Shop is DOWN", "🟢 Shop is UP"]
    assert fields(fake, 1)["Confirmed by"] == "2 good checks in a row"
    rows = await history(client, s["id"])
    first_up = next(i for i, r in enumerate(rows) if r["status"] == "UP")
    counted, turned = rows[first_up], rows[first_up + 1]
    assert counted["last_status_change"] == rows[0]["last_status_change"]  # still DOWN then
    assert turned["last_status_change"] == turned["last_checked"]  # UP from here
    assert fake.violations() == []


# --- reminders ------------------------------------------------------------------------------


async def test_reminders_while_down_come_from_the_database_across_a_restart(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    manual = ManualClock()
    client = await start_app(fast, manual.clock())
    target.status = 503
    s = await add_site(
        client, url=target.url("/shop"), check_interval_seconds=1, renotify_every_seconds=60
    )
    await add_hook(client, s["id"], fake.url())
    await fake.wait_for(1)  # "Monitoring started: Shop is DOWN"
    followups = client.server.app[FOLLOWUPS]

    assert await followups.run() == 0
    manual.advance(59)
    assert await followups.run() == 0
    manual.advance(2)
    assert await followups.run() == 1
    assert await followups.run() == 0  # due once per period, not once per run
    await fake.wait_for(2)
    assert titles(fake)[1].startswith("🔴 Shop is still DOWN (for 1m")
    assert fields(fake, 1)["Reason"] == "HTTP 503"
    assert "Down since" in fields(fake, 1)

    await client.close()  # a restart on the same database and clock
    client = await start_app(fast, manual.clock())
    followups = client.server.app[FOLLOWUPS]
    assert await followups.run() == 0  # the reminder sent before is not sent again
    manual.advance(60)
    assert await followups.run() == 1
    await fake.wait_for(3)
    assert titles(fake)[2].startswith("🔴 Shop is still DOWN (for 2m")

    target.status = 200  # recovered: no reminder any more
    await eventually(lambda: _status_is(client, s["id"], "UP"))
    manual.advance(600)
    assert await followups.run() == 0
    await fake.wait_for(4)
    assert titles(fake)[3] == "🟢 Shop is UP"
    assert fake.violations() == []


async def _status_is(client: TestClient, site_id: int, status: str) -> bool:
    return (await site(client, site_id))["status"] == status


async def test_a_new_site_takes_the_settings_defaults_and_null_means_never(
    start_app: AppClient, fast: Settings, target: Target
) -> None:
    settings = fast.model_copy(
        update={"renotify_every_seconds": 900, "tls_expiry_warn_days": [30, 5]}
    )
    client = await start_app(settings)
    plain = await add_site(client, url=target.url(), paused=True)
    assert (plain["renotify_every_seconds"], plain["tls_expiry_warn_days"]) == (900, [30, 5])
    never = await add_site(
        client, url=target.url(), paused=True, renotify_every_seconds=None, tls_expiry_warn_days=[]
    )
    assert (never["renotify_every_seconds"], never["tls_expiry_warn_days"]) == (None, [])
    # PATCH: null keeps meaning never for reminders, and resets the thresholds to the setting
    resp = await client.patch(
        f"/sites/{never['id']}",
        json={"renotify_every_seconds": None, "tls_expiry_warn_days": None},
    )
    got = await resp.json()
    assert (got["renotify_every_seconds"], got["tls_expiry_warn_days"]) == (None, [30, 5])


# --- mutes ----------------------------------------------------------------------------------


async def test_a_mute_holds_every_message_and_its_end_tells_the_state_once(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    manual = ManualClock()
    client = await start_app(fast, manual.clock())
    until = iso_ms(int((manual.wall + 3600) * 1000))
    s = await add_site(
        client,
        url=target.url("/shop"),
        check_interval_seconds=1,
        alerts_muted_until=until,
        renotify_every_seconds=60,
    )
    assert s["alerts_muted_until"] == until
    await eventually(lambda: _status_is(client, s["id"], "UP"))
    await add_hook(client, s["id"], fake.url())  # no greeting while muted
    target.status = 503
    await eventually(lambda: _status_is(client, s["id"], "DOWN"))
    # messages are queued in the transaction of the change: none was
    assert await pending(client, s["id"]) == 0
    followups = client.server.app[FOLLOWUPS]
    manual.advance(600)
    assert await followups.run() == 0  # still muted: no reminder either

    manual.advance(3001)
    assert await followups.run() == 1
    assert await followups.run() == 0
    await fake.wait_for(1)
    assert titles(fake) == ["🔴 Alerts unmuted: Shop is DOWN"]
    assert fields(fake, 0)["Reason"] == "HTTP 503"
    manual.advance(59)  # the next reminder is one period after the end of the mute
    assert await followups.run() == 0
    manual.advance(2)
    assert await followups.run() == 1
    await fake.wait_for(2)
    assert titles(fake)[1].startswith("🔴 Shop is still DOWN")
    assert len(fake.received()) == 2
    assert fake.violations() == []


async def test_a_mute_that_ends_on_the_state_last_told_says_nothing(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    manual = ManualClock()
    client = await start_app(fast, manual.clock())
    s = await add_site(client, url=target.url("/shop"), check_interval_seconds=1)
    await add_hook(client, s["id"], fake.url())
    await fake.wait_for(1)  # told: UP
    until = iso_ms(int((manual.wall + 60) * 1000))
    resp = await client.patch(f"/sites/{s['id']}", json={"alerts_muted_until": until})
    assert resp.status == 200
    target.status = 503
    await eventually(lambda: _status_is(client, s["id"], "DOWN"))
    target.status = 200
    await eventually(lambda: _status_is(client, s["id"], "UP"))
    manual.advance(61)
    followups = client.server.app[FOLLOWUPS]
    assert await followups.run() == 0
    assert await pending(client, s["id"]) == 0
    assert titles(fake) == ["🟢 Monitoring started: Shop is UP"]


async def test_a_mute_set_while_a_check_is_in_flight_holds_that_checks_alert(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(fast)
    s = await add_site(client, url=target.url("/shop"), check_interval_seconds=1)
    await add_hook(client, s["id"], fake.url())
    await fake.wait_for(1)
    target.delays["/shop"] = 1.0
    target.status = 503
    hits = len(target.hit_times("/shop"))
    await target.wait_hits("/shop", hits + 1)  # a check is waiting for its slow answer
    until = iso_ms(int((time.time() + 3600) * 1000))
    resp = await client.patch(f"/sites/{s['id']}", json={"alerts_muted_until": until})
    assert resp.status == 200

    await eventually(lambda: _status_is(client, s["id"], "DOWN"))
    assert await pending(client, s["id"]) == 0
    assert titles(fake) == ["🟢 Monitoring started: Shop is UP"]
