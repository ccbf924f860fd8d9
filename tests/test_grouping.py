"""Grouped alerts: several events to one webhook URL share a message, split only where Discord's
limits force it; a webhook Discord refuses for good is disabled until enabled again; a body
queued by a version before grouping is sent as it was.

End to end through the real app, a real target and the fake Discord (which validates every
body against tests/contract). The 200-site storm, grouping off and a SIGKILL mid-storm are in
test_storm.py, on the real daemon."""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import AppClient, Target, database_at, eventually
from tests.fake_discord import FakeDiscord, NotFound, Unauthorized, validate_body
from uptimed.config import Settings
from uptimed.models import Event, EventKind, Status, iso_ms
from uptimed.notify.discord import URL_MAX
from uptimed.notify.grouped import EMBEDS_MAX, render

T0 = 1_764_553_200_000


def down(i: int, *, name: str | None = None, url: str | None = None) -> Event:
    return Event(
        kind=EventKind.DOWN,
        site_name=name or f"site {i:03d}.",
        site_url=url or f"http://127.0.0.1:40000/s/{i}",
        at=T0 + i,
        status=Status.DOWN,
        reason="HTTP 503",
        down_since=T0 + i,
    )


def up(i: int) -> Event:
    return Event(
        kind=EventKind.UP,
        site_name=f"site {i:03d}.",
        site_url=f"http://127.0.0.1:40000/s/{i}",
        at=T0 + 60_000 + i,
        status=Status.UP,
        reason="HTTP 503",
        down_since=T0 + i,
    )


def lines(body: dict[str, Any]) -> list[str]:
    return [line for e in body["embeds"] for line in e.get("description", "").split("\n")]


def named(body: dict[str, Any]) -> list[str]:
    """The site names a message's lines name, in order ("site 007." style)."""
    return [m[1] for line in lines(body) if (m := re.search(r"(site \d{3}\.)", line))]


# --- rendering ----------------------------------------------------------------------------


def test_one_event_is_the_message_it_always_was() -> None:
    [(body, count)] = render([down(1)])
    assert count == 1
    assert body["embeds"][0]["title"] == "🔴 site 001. is DOWN"
    assert validate_body(body) == []


def test_a_storm_is_a_few_valid_messages_naming_every_site_once_in_order() -> None:
    events = [down(i) for i in range(200)] + [up(i) for i in range(5)]
    messages = render(events)
    assert len(messages) == 2, [count for _, count in messages]
    assert sum(count for _, count in messages) == len(events)
    order = []
    for body, count in messages:
        assert validate_body(body) == []
        assert len(lines(body)) == count
        order += named(body)
    assert order == [f"site {i:03d}." for i in range(200)] + [f"site {i:03d}." for i in range(5)]
    first, *_, last = (body["embeds"][0]["title"] for body, _ in messages)
    assert first == "🔴 108 sites DOWN (1 of 2)"
    assert last == "🔴 92 sites DOWN · 🟢 5 UP (2 of 2)"
    recovery = lines(messages[-1][0])[-1]
    assert recovery == "🟢 [site 004.](http://127.0.0.1:40000/s/4) — UP after 1m"


def test_two_events_make_one_message_with_a_line_each() -> None:
    [(body, count)] = render([down(1), up(1)])
    assert count == 2 and validate_body(body) == []
    assert body["embeds"][0]["title"] == "🔴 1 site DOWN · 🟢 1 UP"
    assert lines(body) == [
        "🔴 [site 001.](http://127.0.0.1:40000/s/1) — HTTP 503",
        "🟢 [site 001.](http://127.0.0.1:40000/s/1) — UP after 1m",
    ]
    assert body["embeds"][-1]["timestamp"] == iso_ms(T0 + 60_001)  # the last event's time


@pytest.mark.parametrize("n", [2, 11, 150])
def test_extreme_names_and_urls_stay_valid_and_are_never_cut_away(n: int) -> None:
    """Names of astral emoji and Markdown, 2,048-character URLs, parentheses in links: every
    message is valid and every event is in exactly one of them."""
    long_url = "http://example.com/" + "a(b)" * ((URL_MAX - 19) // 4)
    events = [
        down(i, name=("😀*[x](y)" * 400) + f" site {i:03d}.", url=long_url if i % 2 else None)
        for i in range(n)
    ]
    messages = render(events)
    assert sum(count for _, count in messages) == n
    for body, count in messages:
        assert validate_body(body) == [], body
        assert len(body["embeds"]) <= EMBEDS_MAX
        assert len(lines(body)) == count
    link = next(line for line in lines(messages[0][0]) if "](" in line)
    assert "(b)" not in link  # parentheses in a link's URL are percent-encoded


# --- delivery -----------------------------------------------------------------------------


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeDiscord:
    return await FakeDiscord(enforce_rate_limit=True).start(aiohttp_server)


def grouping(settings: Settings, window: float) -> Settings:
    return settings.model_copy(
        update={
            "alert_group_window_seconds": window,
            "discord_backoff_initial_seconds": 0.05,
            "discord_backoff_max_seconds": 0.2,
        }
    )


async def add_sites(client: TestClient, target: Target, hook: str, n: int) -> list[int]:
    ids = []
    for i in range(n):
        resp = await client.post(
            "/sites",
            json={
                "url": target.url(f"/s/{i}"),
                "name": f"site {i:03d}.",
                "check_interval_seconds": 1,
            },
        )
        assert resp.status == 200, await resp.text()
        ids.append((await resp.json())["id"])
        resp = await client.post(
            "/webhooks", json={"site_id": ids[-1], "discord_webhook_url": hook}
        )
        assert resp.status == 200
    return ids


async def test_a_lone_event_goes_at_once_and_later_ones_wait_out_the_window_together(
    start_app: AppClient, settings: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(grouping(settings, 2.0))
    hook = fake.url()
    await add_sites(client, target, hook, 6)
    # Six "Monitoring started": what finds the URL idle goes at once, the rest waits out the
    # window after it and goes together.
    await eventually(lambda: _all_named(fake, 6), timeout=15)
    count = len(fake.received())
    assert count <= 3, [r.body["embeds"][0]["title"] for r in fake.received()]

    for i in range(6):
        target.statuses[f"/s/{i}"] = 503
    await eventually(lambda: _all_named(fake, 6, since=count, word="DOWN"), timeout=20)
    wave = fake.received()[count:]
    assert len(wave) <= 2, [r.body["embeds"][0]["title"] for r in wave]
    arrivals = [r.at for r in fake.received()]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) >= 2.0 - 0.2, gaps  # never before the window after the last message
    assert [r.status for r in fake.received()] == [204] * len(fake.received())  # no 429
    assert fake.violations() == []


async def _all_named(fake: FakeDiscord, n: int, *, since: int = 0, word: str = "") -> bool:
    seen: set[str] = set()
    for r in fake.received()[since:]:
        if r.body is None or (word and word not in json.dumps(r.body)):
            continue
        seen.update(named(r.body))
        title = r.body["embeds"][0].get("title", "")
        if m := re.search(r"(site \d{3}\.) is", title):  # a message of one event
            seen.add(m[1])
    return len(seen) >= n


# --- webhooks Discord refuses --------------------------------------------------------------


@pytest.mark.parametrize("refusal", [NotFound(), Unauthorized()])
async def test_a_refused_webhook_is_disabled_until_patched_back(
    start_app: AppClient,
    settings: Settings,
    target: Target,
    fake: FakeDiscord,
    refusal: NotFound | Unauthorized,
) -> None:
    client = await start_app(grouping(settings, 0))
    hook = fake.url()
    fake.script(hook, refusal)
    [site] = await add_sites(client, target, hook, 1)

    async def disabled() -> dict[str, Any] | None:
        [w] = await (await client.get("/webhooks")).json()
        return w if not w["enabled"] else None

    webhook = await eventually(disabled, timeout=10)
    assert webhook["disabled_at"] is not None and webhook["pending"] == 0
    assert webhook["last_error"].startswith(f"Discord answered {refusal_status(refusal)}")

    # Disabled: an outage queues nothing for it, and nothing is posted.
    target.statuses["/s/0"] = 503
    await eventually(lambda: _status(client, site, "DOWN"), timeout=10)
    assert len(fake.received()) == 1
    assert (await (await client.get("/webhooks")).json())[0]["pending"] == 0

    resp = await client.patch(f"/webhooks/{webhook['id']}", json={"enabled": True})
    assert resp.status == 200
    back = await resp.json()
    assert (back["enabled"], back["disabled_at"]) == (True, None)
    target.statuses["/s/0"] = 200
    await fake.wait_for(2, timeout=10)
    assert fake.received()[1].body["embeds"][0]["title"] == "🟢 site 000. is UP"
    assert fake.violations() == []


def refusal_status(refusal: NotFound | Unauthorized) -> int:
    return 404 if isinstance(refusal, NotFound) else 401


async def _status(client: TestClient, site_id: int, status: str) -> bool:
    return (await (await client.get(f"/sites/{site_id}")).json())["status"] == status


async def test_every_webhook_of_a_refused_url_is_disabled_and_enabled_together(
    start_app: AppClient, settings: Settings, target: Target, fake: FakeDiscord
) -> None:
    client = await start_app(grouping(settings, 0))
    shared, other = fake.url(id="111111111111111111"), fake.url(id="222222222222222222")
    fake.script(shared, NotFound())
    await add_sites(client, target, shared, 2)
    await add_sites(client, target, other, 1)

    async def states() -> dict[str, list[bool]] | None:
        hooks = await (await client.get("/webhooks")).json()
        found: dict[str, list[bool]] = {}
        for w in hooks:
            found.setdefault(w["discord_webhook_url"], []).append(w["enabled"])
        return found if found[shared] == [False, False] else None

    assert (await eventually(states, timeout=10))[other] == [True]
    first = (await (await client.get("/webhooks")).json())[0]
    resp = await client.patch(f"/webhooks/{first['id']}", json={"enabled": True})
    assert resp.status == 200
    hooks = await (await client.get("/webhooks")).json()
    assert [w["enabled"] for w in hooks] == [True, True, True]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({}, 400, "enabled"),
        ({"enabled": "yes"}, 400, "enabled"),
        ({"enabled": 1}, 400, "enabled"),
    ],
)
async def test_patching_a_webhook_wrongly_is_a_clear_400(
    client: TestClient, target: Target, body: dict[str, Any], status: int, detail: str
) -> None:
    [site] = await add_sites(client, target, "http://127.0.0.1:9/api/webhooks/1/t", 1)
    [w] = await (await client.get(f"/webhooks/{site}")).json()
    resp = await client.patch(f"/webhooks/{w['id']}", json=body)
    assert resp.status == status
    assert detail in (await resp.json())["detail"]


async def test_patching_a_missing_webhook_is_a_400_like_every_unknown_id(
    client: TestClient,
) -> None:
    resp = await client.patch("/webhooks/999", json={"enabled": True})
    assert (resp.status, await resp.json()) == (400, {"detail": "Webhook not found"})


# --- the upgrade ----------------------------------------------------------------------------


async def test_a_body_pending_at_the_upgrade_is_sent_unchanged_before_newer_events(
    start_app: AppClient, settings: Settings, target: Target, fake: FakeDiscord, tmp_path: Path
) -> None:
    """Schema 8 stored rendered bodies; one pending at the upgrade goes out as it was, alone,
    and first."""
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    hook = fake.url()
    old = {"username": "uptimed", "embeds": [{"title": "🔴 Legacy is DOWN", "color": 1}]}
    raw: sqlite3.Connection = database_at(path, 8)
    raw.execute(
        "INSERT INTO sites (id, url, name, check_interval_seconds, expected_status_code,"
        " created_at, status, status_since, told_status) VALUES (1, ?, 'Legacy', 1, 200, 0,"
        " 'DOWN', 0, 'DOWN')",
        (target.url("/legacy"),),
    )
    raw.execute("INSERT INTO webhooks (id, site_id, url, created_at) VALUES (1, 1, ?, 0)", (hook,))
    raw.execute(
        "INSERT INTO outbox (site_id, webhook_id, url, payload, created_at) VALUES (1, 1, ?, ?, 1)",
        (hook, json.dumps(old)),
    )
    raw.commit()
    raw.close()

    await start_app(grouping(settings, 5.0))
    got = await fake.wait_for(2, timeout=15)  # the old body, then "Legacy is UP"
    assert got[0].body == old
    assert got[1].body["embeds"][0]["title"] == "🟢 Legacy is UP"
    assert fake.violations() == []


def test_the_title_counts_each_kind_in_words_that_fit_the_count() -> None:
    cert = Event(
        kind=EventKind.CERTIFICATE,
        site_name="site 009.",
        site_url="https://127.0.0.1:40000/",
        at=T0,
        days_left=6,
    )
    [(body, _)] = render([down(1), down(2), up(1), cert, cert.model_copy(update={"at": T0 + 1})])
    assert body["embeds"][0]["title"] == "🔴 2 sites DOWN · 🟢 1 UP · 🟠 2 certificate warnings"
    assert lines(body)[-1] == (
        "🟠 [site 009.](https://127.0.0.1:40000/) — certificate expires in 6 days"
    )
    assert validate_body(body) == []
