"""What the alerts say, end to end: the real app, a real target and the fake Discord."""

from __future__ import annotations

from typing import Any

from tests.conftest import AppClient, Target, eventually
from tests.fake_discord import FakeDiscord
from uptimed.config import Settings


def fields(body: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in body["embeds"][0]["fields"]}


async def test_a_recovery_says_what_the_outage_was_also_after_a_restart(
    start_app: AppClient, settings: Settings, target: Target, aiohttp_server: Any
) -> None:
    fake = await FakeDiscord().start(aiohttp_server)
    client = await start_app(settings)
    site = await (
        await client.post(
            "/sites", json={"url": target.url("/s"), "name": "Shop", "check_interval_seconds": 1}
        )
    ).json()
    await client.post("/webhooks", json={"site_id": site["id"], "discord_webhook_url": fake.url()})
    await fake.wait_for(1, timeout=15)
    assert "Monitoring started" in fake.valid_bodies()[0]["embeds"][0]["title"]
    target.delays["/s"] = 3  # the timeout is 2 s: no answer
    await fake.wait_for(2, timeout=15)
    down = fake.valid_bodies()[1]
    assert "is DOWN" in down["embeds"][0]["title"]
    assert fields(down)["Reason"] == "timeout after 2s"
    assert "Response time" not in fields(down)  # no answer: there is no response time to show

    async def delivered() -> bool:
        return (await (await client.get("/webhooks")).json())[0]["pending"] == 0

    await eventually(delivered)
    await client.close()  # the outage's reason must come back from the database
    target.delays["/s"] = 0
    client = await start_app(settings)
    await fake.wait_for(3, timeout=15)
    up = fake.valid_bodies()[2]
    assert "is UP" in up["embeds"][0]["title"]
    assert fields(up)["Outage"] == "timeout after 2s"
    assert fields(up)["Response time"].endswith(" ms")
    assert fake.violations() == []
