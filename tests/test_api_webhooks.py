"""/webhooks through the real app: stored, listed per site and in all, deleted, validated."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Target

HOOK = "http://127.0.0.1:9/api/webhooks/123456789012345678/token"
URL_ERROR = "Field 'discord_webhook_url': must be an http:// or https:// URL"
# Nothing listens on port 9: delivery attempts fail and show there while being retried.
RETRYING = ("last_error", "last_error_at")


def steady(hooks: list[dict]) -> list[dict]:
    """The webhooks without what the background delivery attempts change meanwhile."""
    return [{k: v for k, v in hook.items() if k not in RETRYING} for hook in hooks]


async def _site(client: TestClient, target: Target, name: str = "s") -> dict:
    return await (await client.post("/sites", json={"url": target.url(), "name": name})).json()


async def test_webhook_crud(client: TestClient, target: Target) -> None:
    a, b = await _site(client, target, "a"), await _site(client, target, "b")
    resp = await client.post("/webhooks", json={"site_id": a["id"], "discord_webhook_url": HOOK})
    assert resp.status == 200
    hook_a = await resp.json()
    assert {k: hook_a[k] for k in ("site_id", "discord_webhook_url")} == {
        "site_id": a["id"],
        "discord_webhook_url": HOOK,
    }
    assert isinstance(hook_a["id"], int)
    hook_b = await (
        await client.post("/webhooks", json={"site_id": b["id"], "discord_webhook_url": HOOK + "2"})
    ).json()

    assert steady(await (await client.get("/webhooks")).json()) == steady([hook_a, hook_b])
    assert steady(await (await client.get(f"/webhooks/{a['id']}")).json()) == steady([hook_a])
    assert steady(await (await client.get(f"/webhooks/{b['id']}")).json()) == steady([hook_b])

    resp = await client.delete(f"/webhooks/{hook_a['id']}")
    assert resp.status == 200
    assert await resp.json() == {"detail": "Webhook deleted successfully"}
    assert steady(await (await client.get("/webhooks")).json()) == steady([hook_b])

    resp = await client.delete(f"/webhooks/{hook_a['id']}")
    assert resp.status == 400
    assert await resp.json() == {"detail": "Webhook not found"}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"site_id": 999, "discord_webhook_url": HOOK}, "Site not found"),
        ({"site_id": 1, "discord_webhook_url": "discord.com/api/webhooks/1/x"}, URL_ERROR),
        ({"site_id": 1, "discord_webhook_url": "javascript:alert(1)"}, URL_ERROR),
        ({"site_id": "1", "discord_webhook_url": HOOK}, "Field 'site_id'"),
        ({"site_id": 0, "discord_webhook_url": HOOK}, "Field 'site_id'"),
        ({"discord_webhook_url": HOOK}, "Field 'site_id' is required."),
        ({"site_id": 1}, "Field 'discord_webhook_url' is required."),
        ({"site_id": 2**70, "discord_webhook_url": HOOK}, "Site not found"),
    ],
    ids=["unknown-site", "no-scheme", "js", "string-id", "zero-id", "no-site", "no-url", "huge-id"],
)
async def test_bad_webhook_bodies(
    client: TestClient, target: Target, body: dict, detail: str
) -> None:
    await _site(client, target)
    resp = await client.post("/webhooks", json=body)
    assert resp.status == 400
    assert detail in (await resp.json())["detail"]
    assert await (await client.get("/webhooks")).json() == []


async def test_webhooks_of_unknown_site_and_bad_ids(client: TestClient) -> None:
    resp = await client.get("/webhooks/42")
    assert (resp.status, await resp.json()) == (400, {"detail": "Site not found"})
    resp = await client.get("/webhooks/x")
    assert resp.status == 400
    resp = await client.delete("/webhooks/x")
    assert resp.status == 400
    resp = await client.delete("/webhooks/7")
    assert (resp.status, await resp.json()) == (400, {"detail": "Webhook not found"})
