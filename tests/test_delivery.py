"""Discord delivery end to end: the real app checks a real target and posts to a fake Discord
that validates every body against the schema in tests/contract and answers as each test scripts."""

from __future__ import annotations

import itertools
import signal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import AppClient, Target, eventually, wait_out
from tests.daemon import Daemon, api, daemon_fixture  # noqa: F401
from tests.fake_discord import (
    FakeDiscord,
    Hang,
    NotFound,
    Ok,
    RateLimited,
    ServerError,
    Unauthorized,
)
from uptimed.config import Settings


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "discord_timeout_seconds": 2,
            "discord_backoff_initial_seconds": 0.05,
            "discord_backoff_max_seconds": 0.2,
        }
    )


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeDiscord:
    return await FakeDiscord().start(aiohttp_server)


async def add_site(client: TestClient, url: str, interval: int = 1, name: str = "Shop") -> int:
    resp = await client.post(
        "/sites", json={"url": url, "name": name, "check_interval_seconds": interval}
    )
    assert resp.status == 200
    return (await resp.json())["id"]


async def add_hook(client: TestClient, site_id: int, url: str) -> dict[str, Any]:
    resp = await client.post("/webhooks", json={"site_id": site_id, "discord_webhook_url": url})
    assert resp.status == 200
    return await resp.json()


def titles(fake: FakeDiscord, url: str | None = None) -> list[str]:
    return [b["embeds"][0]["title"] for b in fake.valid_bodies(url)]


async def hook_state(client: TestClient, hook_id: int) -> dict[str, Any]:
    hooks = await (await client.get("/webhooks")).json()
    return next(h for h in hooks if h["id"] == hook_id)


async def test_each_transition_is_one_message_per_webhook(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(fast)
    site_id = await add_site(client, target.url("/shop"))
    a, b = fake.url(id="111111111111111111"), fake.url(id="222222222222222222")
    # "Started" comes from the first check, or from adding the webhook if that check came first.
    await add_hook(client, site_id, a)
    await add_hook(client, site_id, b)

    await fake.wait_for(2)
    target.status = 503
    await fake.wait_for(4)
    target.status = 200
    await fake.wait_for(6)

    for url in (a, b):
        got = titles(fake, url)
        assert len(got) == 3, got
        assert got[0] == "🟢 Monitoring started: Shop is UP"
        assert got[1] == "🔴 Shop is DOWN"
        assert got[2] == "🟢 Shop is UP"
    down = fake.valid_bodies(a)[1]["embeds"][0]
    assert {"name": "Reason", "value": "HTTP 503", "inline": False} in down["fields"]
    up = fake.valid_bodies(a)[2]["embeds"][0]
    assert any(f["name"] == "Downtime" for f in up["fields"])
    assert fake.violations() == []

    await wait_out(1.5)  # steady UP: no further message may arrive
    assert len(fake.received()) == 6
    hooks = await (await client.get(f"/webhooks/{site_id}")).json()
    assert [(h["pending"], h["last_error"]) for h in hooks] == [(0, None), (0, None)]
    assert all(h["last_delivery_at"] for h in hooks)


async def test_429_twice_then_delivered_once_not_before_retry_after(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(fast)
    url = fake.url()
    fake.script(url, RateLimited(retry_after=0.4), RateLimited(retry_after=0.4))
    site_id = await add_site(client, target.url(), interval=3600)
    await add_hook(client, site_id, url)

    got = await fake.wait_for(3, url)
    assert [r.status for r in got] == [429, 429, 204]
    assert got[1].at - got[0].at >= 0.4
    assert got[2].at - got[1].at >= 0.4
    await wait_out(0.5)
    assert len(fake.received(url)) == 3  # delivered exactly once
    assert fake.violations() == []


async def test_server_errors_are_retried_and_delivered_once(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(fast)
    url = fake.url()
    fake.script(url, ServerError(500), ServerError(502))
    target.delay = 0.5  # the webhook is in place before the first check answers
    site_id = await add_site(client, target.url())
    await add_hook(client, site_id, url)

    got = await fake.wait_for(3, url)
    assert [r.status for r in got] == [500, 502, 204]
    await wait_out(0.5)
    assert len(fake.received(url)) == 3
    assert (await hook_state(client, 1))["pending"] == 0


@pytest.mark.parametrize(("answer", "code"), [(NotFound(), 404), (Unauthorized(), 401)])
async def test_permanent_errors_fail_after_one_attempt(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord, answer: Any, code: int
) -> None:
    client = await start_app(fast)
    url = fake.url()
    fake.script(url, answer)
    target.delay = 0.5
    site_id = await add_site(client, target.url())
    hook = await add_hook(client, site_id, url)

    await fake.wait_for(1, url)

    async def failed() -> dict[str, Any] | None:
        state = await hook_state(client, hook["id"])
        return state if state["last_error"] else None

    state = await eventually(failed)
    assert state["pending"] == 0
    assert (
        f"Discord answered {(answer.__class__ is NotFound and 404) or 401}" in state["last_error"]
    )
    await wait_out(0.5)
    assert len(fake.received(url)) == 1  # never retried


async def test_recovery_never_overtakes_its_down_alert(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(fast)
    url = fake.url()
    target.delay = 0.5
    site_id = await add_site(client, target.url())
    await add_hook(client, site_id, url)
    await fake.wait_for(1, url)  # "started"
    # The down alert meets three 5xx; meanwhile the site recovers and the UP is queued.
    fake.script(url, ServerError(500), ServerError(500), ServerError(500))
    target.status = 503
    await fake.wait_for(2, url)
    target.status = 200
    await fake.wait_for(6, url, timeout=15)
    delivered = [r.body["embeds"][0]["title"] for r in fake.received(url) if r.status == 204]
    assert delivered == [
        "🟢 Monitoring started: Shop is UP",
        "🔴 Shop is DOWN",
        "🟢 Shop is UP",
    ]


async def test_deleting_a_site_sends_monitoring_ended(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(fast)
    url = fake.url()
    site_id = await add_site(client, target.url(), interval=3600)
    await add_hook(client, site_id, url)
    await client.delete(f"/sites/{site_id}")
    await fake.wait_for(2, url)
    assert titles(fake, url) == ["🟢 Monitoring started: Shop is UP", "⚪ Monitoring ended: Shop"]
    assert fake.violations() == []


async def test_webhook_test_endpoint_reports_discords_answer(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(fast)
    site_id = await add_site(client, target.url(), interval=3600)
    good, gone = fake.url(id="111111111111111111"), fake.url(id="222222222222222222")
    ok_hook = await add_hook(client, site_id, good)
    gone_hook = await add_hook(client, site_id, gone)
    await fake.wait_for(2)  # both got "Monitoring started"
    fake.script(gone, NotFound())

    resp = await client.post(f"/webhooks/{ok_hook['id']}/test")
    assert resp.status == 200
    assert await resp.json() == {"detail": "Test message delivered", "discord_status": 204}
    assert titles(fake, good)[-1] == "🔔 Test message for Shop"

    resp = await client.post(f"/webhooks/{gone_hook['id']}/test")
    assert resp.status == 502
    assert "Discord answered 404" in (await resp.json())["detail"]
    assert "Unknown Webhook" in (await hook_state(client, gone_hook["id"]))["last_error"]

    resp = await client.post("/webhooks/999/test")
    assert (resp.status, await resp.json()) == (400, {"detail": "Webhook not found"})
    assert fake.violations() == []


async def test_undelivered_messages_go_out_after_a_restart(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(fast)
    url = fake.url()
    fake.default = Hang()
    target.delay = 0.5
    site_id = await add_site(client, target.url(), interval=3600)
    await add_hook(client, site_id, url)
    await fake.wait_for(1, url)  # the "started" message is stuck in a hanging POST
    await client.close()

    fake.default = Ok()
    client = await start_app(fast)
    hook_pending = await hook_state(client, 1)
    got = await fake.wait_for(2, url)
    assert got[1].status == 204
    assert got[1].body == got[0].body
    await wait_out(0.5)
    assert len(fake.received(url)) == 2
    assert hook_pending["pending"] in (0, 1)
    assert (await hook_state(client, 1))["pending"] == 0


async def test_millisecond_retry_after_from_unversioned_urls(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(fast)
    url = fake.url(versioned=False)
    fake.script(url, RateLimited(retry_after=0.3, unit="ms"))
    target.delay = 0.5
    site_id = await add_site(client, target.url(), interval=3600)
    await add_hook(client, site_id, url)
    got = await fake.wait_for(2, url)
    assert [r.status for r in got] == [429, 204]
    assert 0.3 <= got[1].at - got[0].at < 5  # 300 ms read as ms, not as 300 s


async def test_transient_failures_give_up_after_the_configured_time(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(fast.model_copy(update={"discord_give_up_after_seconds": 1}))
    url = fake.url()
    fake.default = ServerError(503)
    target.delay = 0.5
    site_id = await add_site(client, target.url(), interval=3600)
    hook = await add_hook(client, site_id, url)

    async def failed() -> dict[str, Any] | None:
        state = await hook_state(client, hook["id"])
        return state if state["last_error"] and state["pending"] == 0 else None

    state = await eventually(failed)
    assert "Discord answered 503" in state["last_error"]
    assert len(fake.received(url)) >= 3


async def test_burst_of_50_down_alerts_through_one_webhook(
    start_app: AppClient, fast: Settings, target: Target, aiohttp_server: Any
) -> None:
    fake = await FakeDiscord(enforce_rate_limit=True).start(aiohttp_server)
    client = await start_app(fast)
    url = fake.url()
    target.delay = 0.5
    ids = [
        await add_site(client, target.url(f"/s{i}"), interval=3600, name=f"s{i}") for i in range(50)
    ]
    for site_id in ids:
        await add_hook(client, site_id, url)
    got = await fake.wait_for(50, url, timeout=40)
    await wait_out(0.3)
    delivered = [r for r in fake.received(url) if r.status == 204]
    assert len(delivered) == 50
    assert len({r.raw for r in delivered}) == 50
    assert [r.status for r in fake.received(url)].count(429) == 0  # paced by the headers
    assert fake.violations() == []
    assert len(got) >= 50


async def test_checks_keep_their_schedule_while_discord_hangs(
    start_app: AppClient, fast: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(fast.model_copy(update={"discord_timeout_seconds": 30}))
    url = fake.url()
    fake.default = Hang()
    site_id = await add_site(client, target.url("/hung"))
    await add_hook(client, site_id, url)
    target.statuses["/hung"] = 503  # transitions keep queueing messages behind the hung POST

    times = await target.wait_hits("/hung", 6, timeout=12)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.7 < g < 1.3 for g in gaps), gaps


async def test_sigkill_between_transition_and_delivery_delivers_once_after_restart(
    daemon: Daemon, target: Target, fake: FakeDiscord
) -> None:
    fake.default = Hang()  # the message is committed, its POST never answered
    daemon.env["UPTIMED_DISCORD_TIMEOUT_SECONDS"] = "60"
    await daemon.start()
    url = fake.url()
    status, site = await api(daemon, "POST", "/sites", {"url": target.url(), "name": "Shop"})
    assert status == 200
    status, _ = await api(
        daemon, "POST", "/webhooks", {"site_id": site["id"], "discord_webhook_url": url}
    )  # type: ignore[index]
    assert status == 200
    await fake.wait_for(1, url)
    await daemon.stop(signal.SIGKILL)

    fake.default = Ok()
    await daemon.start()
    got = await fake.wait_for(2, url)
    assert got[1].status == 204
    assert got[1].body["embeds"][0]["title"] == "🟢 Monitoring started: Shop is UP"
    await wait_out(1.0)
    assert len(fake.received(url)) == 2  # one hung attempt, one delivery, nothing after
    status, hooks = await api(daemon, "GET", "/webhooks")
    assert hooks[0]["pending"] == 0 and hooks[0]["last_delivery_at"]  # type: ignore[index]
