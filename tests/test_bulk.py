"""POST /sites/bulk through the real app: many sites and their webhooks in one transaction,
all or nothing, errors named by index and field."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import AppClient, Target, eventually, settings_of
from uptimed.app_keys import STORE
from uptimed.config import Settings

HOOK = "http://127.0.0.1:9/api/webhooks/123456789012345678/token"


async def bulk(client: TestClient, body: Any, status: int = 200) -> Any:
    resp = await client.post("/sites/bulk", json=body)
    answer = await resp.json()
    assert resp.status == status, answer
    return answer


async def listed(client: TestClient, path: str) -> list[dict[str, Any]]:
    return await (await client.get(path)).json()


async def test_a_list_of_sites_is_added_with_their_own_webhooks_and_checked(
    client: TestClient, target: Target
) -> None:
    sites = [
        {"url": target.url("/a"), "name": "A", "check_interval_seconds": 60},
        {"url": target.url("/b"), "name": "B", "webhooks": [HOOK, HOOK + "2", HOOK]},
        {"url": target.url("/c"), "name": "C", "paused": True, "headers": {"X-K": "v"}},
    ]
    made = await bulk(client, sites)
    assert [s["name"] for s in made] == ["A", "B", "C"]
    assert [s["status"] for s in made] == ["INITIAL"] * 3
    assert all(s["source"] == "api" and s["key"] is None for s in made)
    assert made[2]["paused"] is True and made[2]["headers"] == {"X-K": "v"}
    stored = await listed(client, "/sites")
    assert [settings_of(s) for s in stored] == [settings_of(s) for s in made]
    hooks = await listed(client, "/webhooks")
    # a URL given twice for one site is one webhook
    assert [(h["site_id"], h["discord_webhook_url"]) for h in hooks] == [
        (made[1]["id"], HOOK),
        (made[1]["id"], HOOK + "2"),
    ]
    await target.wait_hits("/a", 1)
    await target.wait_hits("/b", 1)
    assert target.hit_times("/c") == []  # paused


async def test_the_object_form_adds_webhooks_of_every_site_once_per_url(
    client: TestClient, target: Target
) -> None:
    first = await bulk(
        client,
        {"sites": [{"url": target.url("/a"), "name": "A"}], "webhooks": [HOOK, HOOK]},
    )
    second = await bulk(
        client,
        {"sites": [{"url": target.url("/b"), "name": "B"}], "webhooks": [HOOK, HOOK + "2"]},
    )
    hooks = await listed(client, "/webhooks")
    assert [(h["site_id"], h["discord_webhook_url"]) for h in hooks] == [
        (None, HOOK),
        (None, HOOK + "2"),
    ]
    for site in (*first, *second):  # each hears both
        assert len(await listed(client, f"/webhooks/{site['id']}")) == 2
    # webhooks of every site alone, no sites: allowed; nothing at all too (an empty file)
    assert await bulk(client, {"sites": [], "webhooks": [HOOK + "3"]}) == []
    assert await bulk(client, {"sites": []}) == []
    assert len(await listed(client, "/webhooks")) == 3
    assert len(await listed(client, "/sites")) == 2


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE", "PUT"])
async def test_other_methods_on_bulk_are_405(client: TestClient, method: str) -> None:
    resp = await client.request(method, "/sites/bulk", json=[])
    assert resp.status == 405
    assert resp.headers["Allow"] == "POST"
    assert "detail" in await resp.json()


async def test_settings_give_the_defaults_as_post_does(
    start_app: AppClient, settings: Settings, target: Target
) -> None:
    client = await start_app(
        settings.model_copy(
            update={"renotify_every_seconds": 3600, "tls_expiry_warn_days": [30, 5]}
        )
    )
    made = await bulk(
        client,
        [
            {"url": target.url(), "name": "defaults"},
            {"url": target.url(), "name": "own", "renotify_every_seconds": None},
        ],
    )
    assert [(s["renotify_every_seconds"], s["tls_expiry_warn_days"]) for s in made] == [
        (3600, [30, 5]),
        (None, [30, 5]),
    ]
    one = await (await client.post("/sites", json={"url": target.url(), "name": "one"})).json()
    assert settings_of(one) | {"id": 0, "created_at": 0, "name": ""} == settings_of(made[0]) | {
        "id": 0,
        "created_at": 0,
        "name": "",
    }


GOOD = {"url": "https://example.com/", "name": "good"}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            [GOOD, GOOD, GOOD, {**GOOD, "check_interval_seconds": 0}],
            "Field 'sites[3].check_interval_seconds': input should be greater than or equal to 1.",
        ),
        ([GOOD, {"url": "https://example.com/"}], "Field 'sites[1].name' is required."),
        (
            [GOOD, {**GOOD, "webhooks": [HOOK, "discord"]}],
            "Field 'sites[1].webhooks[1]': must be an http:// or https:// URL",
        ),
        (
            {"sites": [GOOD, {**GOOD, "headers": {"A": 1}}]},
            "Field 'sites[1].headers.A': input should be a valid string.",
        ),
        (
            {"sites": [GOOD], "webhooks": [HOOK, "x"]},
            "Field 'webhooks[1]': must be an http:// or https:// URL",
        ),
        ({"webhooks": [HOOK]}, "Field 'sites' is required."),
        ([GOOD] * 1001, "Request body must hold 1 to 1000 sites."),
        ([], "Request body must hold 1 to 1000 sites."),
        ({"sites": [GOOD] * 1001}, "Request body must hold 1 to 1000 sites."),
        ("sites", "Request body must be a JSON list of sites, or an object with sites."),
        ([GOOD, "site"], "Field 'sites[1]': input should be an object."),
    ],
    ids=[
        "field",
        "missing",
        "site-webhook",
        "object-form",
        "every-site-webhook",
        "no-sites",
        "1001",
        "empty",
        "1001-object",
        "string",
        "not-a-site",
    ],
)
async def test_one_bad_entry_rejects_the_whole_request(
    client: TestClient, body: Any, detail: str
) -> None:
    answer = await bulk(client, body, status=400)
    assert answer["detail"].startswith(detail), answer
    assert await listed(client, "/sites") == []
    assert await listed(client, "/webhooks") == []


async def test_not_json_is_a_400(client: TestClient) -> None:
    resp = await client.post("/sites/bulk", data=b"[{")
    assert (resp.status, await resp.json()) == (400, {"detail": "Request body is not valid JSON."})


async def test_a_failure_while_writing_leaves_nothing_behind(
    client: TestClient, target: Target
) -> None:
    """All or nothing past validation too: a site whose row the database refuses (here a
    trigger refuses it) rolls back the sites and webhooks before it, and nothing is checked."""
    store = client.server.app[STORE]
    async with store.transaction() as db:
        await db.execute(
            "CREATE TRIGGER refuse_third BEFORE INSERT ON sites WHEN NEW.name = 'third'"
            " BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    sites = [{"url": target.url(), "name": name, "webhooks": [HOOK]} for name in ("a", "b")]
    resp = await client.post(
        "/sites/bulk", json={"sites": [*sites, {"url": target.url(), "name": "third"}]}
    )
    assert resp.status == 500
    assert await listed(client, "/sites") == []
    assert await listed(client, "/webhooks") == []
    assert target.hit_times() == []


async def test_a_thousand_sites_in_one_request(client: TestClient, target: Target) -> None:
    sites = [
        {"url": target.url(f"/s{i}"), "name": f"site {i}", "check_interval_seconds": 3600}
        for i in range(1000)
    ]
    made = await bulk(client, {"sites": sites, "webhooks": [HOOK]})
    assert [s["name"] for s in made] == [f"site {i}" for i in range(1000)]
    assert len({s["id"] for s in made}) == 1000
    assert len(await listed(client, "/sites")) == 1000

    async def all_checked() -> int | None:
        checked = len({path for _, path, _ in target.hits})
        return None if checked < 1000 else checked

    await eventually(all_checked, timeout=30)
