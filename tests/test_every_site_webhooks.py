"""Webhooks of every site (``"site_id": null``) and what the config file declares, through the
real app: a real target whose answers flip, a fake Discord that validates and records."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import AUTH, AppClient, Target, eventually, wait_out
from tests.fake_discord import FakeDiscord
from tests.test_delivery import add_hook, titles
from uptimed.app import create_app
from uptimed.app_keys import CLOCK, STORE
from uptimed.config import Settings
from uptimed.db.sites import write_site
from uptimed.models import SiteIn


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"discord_backoff_initial_seconds": 0.05, "discord_backoff_max_seconds": 0.2}
    )


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeDiscord:
    return await FakeDiscord().start(aiohttp_server)


async def add_site(client: TestClient, url: str, name: str) -> int:
    resp = await client.post("/sites", json={"url": url, "name": name, "check_interval_seconds": 1})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["id"]


async def every_site_hook(client: TestClient, url: str) -> dict[str, Any]:
    resp = await client.post("/webhooks", json={"site_id": None, "discord_webhook_url": url})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def checked(client: TestClient, site_id: int) -> bool:
    return (await (await client.get(f"/sites/{site_id}")).json())["last_checked"] is not None


async def test_hears_a_site_made_before_it_and_one_made_after(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(fast)
    url = fake.url()
    before = await add_site(client, target.url("/before"), "Before")
    await eventually(lambda: checked(client, before))  # its "started" went to nobody
    hook = await every_site_hook(client, url)
    assert hook["site_id"] is None and hook["pending"] == 0
    after = await add_site(client, target.url("/after"), "After")
    await fake.wait_for(1, url)  # the new site's "Monitoring started"

    target.statuses.update({"/before": 503, "/after": 503})
    await eventually(lambda: _has(fake, url, "🔴 Before is DOWN", "🔴 After is DOWN"), timeout=10)
    assert titles(fake, url)[0] == "🟢 Monitoring started: After is UP"
    assert fake.violations() == []

    listed = await (await client.get("/webhooks")).json()
    assert [h["id"] for h in listed] == [hook["id"]]  # shown once
    for site_id in (before, after):  # and among the webhooks that hear each site
        hears = await (await client.get(f"/webhooks/{site_id}")).json()
        assert [h["id"] for h in hears] == [hook["id"]]


async def _has(discord: FakeDiscord, url: str, *wanted: str) -> bool:
    return all(title in titles(discord, url) for title in wanted)


async def test_a_site_whose_own_webhook_has_the_same_url_gets_one_message(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(fast)
    url = fake.url()
    site_id = await add_site(client, target.url("/shop"), "Shop")
    own = await add_hook(client, site_id, url)
    every = await every_site_hook(client, url)
    await eventually(lambda: _has(fake, url, "🟢 Monitoring started: Shop is UP"))
    target.statuses["/shop"] = 503
    await eventually(lambda: _has(fake, url, "🔴 Shop is DOWN"))
    target.statuses["/shop"] = 200
    await eventually(lambda: _has(fake, url, "🟢 Shop is UP"))
    await wait_out(1.5)  # a second copy would have come by now
    assert titles(fake, url) == [
        "🟢 Monitoring started: Shop is UP",
        "🔴 Shop is DOWN",
        "🟢 Shop is UP",
    ]
    hears = await (await client.get(f"/webhooks/{site_id}")).json()
    assert [h["id"] for h in hears] == [own["id"], every["id"]]
    assert fake.violations() == []


async def test_test_message_of_every_site_says_so(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord, caplog: Any
) -> None:
    client = await start_app(fast)
    hook = await every_site_hook(client, fake.url())
    caplog.set_level(logging.INFO, logger="uptimed.api.webhooks")

    resp = await client.post(f"/webhooks/{hook['id']}/test")
    assert (resp.status, await resp.json()) == (
        200,
        {"detail": "Test message delivered", "discord_status": 204},
    )
    embed = fake.valid_bodies()[-1]["embeds"][0]
    assert embed["title"] == "🔔 Test message for every site"
    assert "It hears every site" in embed["description"]
    assert fake.violations() == []

    resp = await client.patch(f"/webhooks/{hook['id']}", json={"enabled": False})
    assert resp.status == 200 and (await resp.json())["enabled"] is False
    lines = [r.getMessage() for r in caplog.records]
    assert f"test message delivered site=all webhook={hook['id']} status=204" in lines
    assert f"webhook disabled site=all webhook={hook['id']} (and every webhook with its URL)" in (
        lines
    )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


HOOK = "http://127.0.0.1:9/api/webhooks/123456789012345678/token"


async def declare(client: TestClient, key: str, url: str) -> int:
    """A site as a reload of the config file writes it (source 'config', its key)."""
    store, now = client.server.app[STORE], client.server.app[CLOCK].now_ms()
    async with store.transaction() as db:
        site = await write_site(db, SiteIn(url=url, name=key), now, key=key)
    return site.id


async def declare_webhook(client: TestClient, site_id: int | None, key: str | None) -> int:
    store, now = client.server.app[STORE], client.server.app[CLOCK].now_ms()
    async with store.transaction() as db:
        cur = await db.execute(
            "INSERT INTO webhooks (site_id, url, created_at, source, key)"
            " VALUES (?, ?, ?, 'config', ?)",
            (site_id, HOOK, now, key),
        )
    assert cur.lastrowid is not None
    return cur.lastrowid


@pytest.fixture
def with_config(
    aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings, tmp_path: Path
) -> Callable[[], Awaitable[TestClient]]:
    async def start() -> TestClient:
        app = create_app(settings, config_path=tmp_path / "uptimed.toml")
        client = await aiohttp_client(app)
        client.session.headers.update(AUTH)
        return client

    return start


async def test_what_the_file_declares_is_read_only_here_but_enabled_is_not(
    with_config: Callable[[], Awaitable[TestClient]], target: Target, tmp_path: Path
) -> None:
    client = await with_config()
    site_id = await declare(client, "shop", target.url())
    team = await declare_webhook(client, None, "team")
    own = await declare_webhook(client, site_id, None)
    path = tmp_path / "uptimed.toml"

    resp = await client.post("/webhooks", json={"site_id": site_id, "discord_webhook_url": HOOK})
    assert resp.status == 409
    assert await resp.json() == {
        "detail": f"Site 'shop' is declared in the config file {path}: change it there, then"
        " reload (SIGHUP or POST /config/reload)"
    }
    resp = await client.delete(f"/webhooks/{team}")
    assert resp.status == 409
    assert (await resp.json())["detail"].startswith(
        f"Webhook 'team' is declared in the config file {path}"
    )
    resp = await client.delete(f"/webhooks/{own}")
    assert resp.status == 409
    assert (await resp.json())["detail"].startswith(
        f"Webhook is declared in the config file {path}"
    )

    resp = await client.patch(f"/webhooks/{team}", json={"enabled": False})
    assert resp.status == 200 and (await resp.json())["enabled"] is False
    listed = await (await client.get(f"/webhooks/{site_id}")).json()
    assert [(h["id"], h["source"], h["key"]) for h in listed] == [
        (team, "config", "team"),
        (own, "config", None),
    ]
    # An API site beside it takes webhooks as before, and the API's webhooks can be deleted.
    api_site = (
        await (await client.post("/sites", json={"url": target.url(), "name": "api"})).json()
    )["id"]
    resp = await client.post("/webhooks", json={"site_id": api_site, "discord_webhook_url": HOOK})
    assert resp.status == 200
    hook = await resp.json()
    assert (hook["source"], hook["key"]) == ("api", None)
    assert (await client.delete(f"/webhooks/{hook['id']}")).status == 200
