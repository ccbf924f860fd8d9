"""The public status page, through the real app: off (404) until a site is public, only public
sites and only what they show, escaped names, figures equal to ``/sites/{id}/uptime``, the 90
daily bars, the last incidents, a cache of at most 10 s, the JSON's schema and the CSP."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator

from tests.conftest import AppClient, ManualClock, Target, eventually
from tests.test_reports import Sim
from uptimed.api import status as status_api
from uptimed.api.openapi import build_spec
from uptimed.config import Settings
from uptimed.db import Store
from uptimed.db.maintenance import DAY, HOUR, MINUTE
from uptimed.models import SiteIn

NO_AUTH = {"Authorization": ""}  # overrides the client's default credentials: a visitor
NOW = 1_764_547_200_000 + 15 * HOUR  # 2025-12-01 15:00 UTC


async def add_site(client: TestClient, target: Target, **fields: Any) -> dict[str, Any]:
    body = {"url": target.url("/" + fields.get("name", "s")), "check_interval_seconds": 3600}
    resp = await client.post("/sites", json=body | fields)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def visit(client: TestClient, path: str = "/status") -> tuple[int, str]:
    resp = await client.get(path, headers=NO_AUTH)
    return resp.status, await resp.text()


async def test_off_until_a_site_is_public(client: TestClient, target: Target) -> None:
    await add_site(client, target, name="private")
    for path in ("/status", "/status.json"):
        resp = await client.get(path, headers=NO_AUTH)
        assert resp.status == 404
        assert await resp.json() == {"detail": status_api.OFF}


async def test_shows_only_public_sites_without_login(client: TestClient, target: Target) -> None:
    await add_site(client, target, name="Shop", public=True, show_url=True)
    await add_site(client, target, name="Blog", public=True)
    await add_site(client, target, name="Admin")
    status, html = await visit(client)
    assert status == 200
    names = re.findall(r'<h2 class="site-name">(.*?)</h2>', html)
    assert names == ["Shop", "Blog"]
    assert target.url("/Shop") in html  # show_url
    assert target.url("/Blog") not in html and target.url("/Admin") not in html
    assert "Admin" not in html
    data = await (await client.get("/status.json", headers=NO_AUTH)).json()
    assert [(s["name"], s["url"]) for s in data["sites"]] == [
        ("Shop", target.url("/Shop")),
        ("Blog", None),
    ]


async def test_a_name_is_text_not_markup(client: TestClient, target: Target) -> None:
    await add_site(client, target, name="<script>alert(1)</script>", public=True)
    _, html = await visit(client)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The only script is the page's own file, loaded from this origin.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="status/assets/refresh.js" defer>']


async def test_headers_allow_only_this_origin_and_gzip(client: TestClient, target: Target) -> None:
    await add_site(client, target, name="Shop", public=True)
    resp = await client.get("/status", headers={**NO_AUTH, "Accept-Encoding": "gzip"})
    assert resp.status == 200
    assert resp.headers["Content-Encoding"] == "gzip"
    assert resp.headers["Content-Security-Policy"] == status_api.CSP
    assert "unsafe" not in status_api.CSP and "http" not in status_api.CSP
    html = await resp.text()  # aiohttp's client decompressed it
    assert '<noscript><meta http-equiv="refresh" content="60"></noscript>' in html
    assert 'id="refresh-toggle" data-seconds="60" hidden' in html  # the script shows it
    for ref in re.findall(r'(?:href|src)="([^"]+)"', html):
        if ref.startswith("status/"):
            asset = await client.get("/" + ref, headers=NO_AUTH)
            assert asset.status == 200, ref
    plain = await client.get("/status", headers={**NO_AUTH, "Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers


async def test_json_follows_its_documented_schema(client: TestClient, target: Target) -> None:
    await add_site(client, target, name="Shop", public=True)
    resp = await client.get("/status.json", headers=NO_AUTH)
    spec = build_spec(client.server.app)
    schema = {"$ref": "#/components/schemas/StatusPage", "components": spec["components"]}
    Draft202012Validator(schema).validate(await resp.json())
    assert spec["paths"]["/status.json"]["get"]["security"] == []


async def _seed(settings: Settings, target: Target) -> tuple[int, int]:
    """Two public sites with 100 days of history, one private: Shop down 30 minutes on 1 Nov
    2025 and 2 hours ago for 5 minutes, Blog down 2 hours 45 days ago, paused from the second
    for 23 hours; the private one down many times."""
    store = await Store.open(settings.db_path)
    try:
        start = NOW - 100 * DAY
        sims = []
        for name, public in (("Shop", True), ("Blog", True), ("Admin", False)):
            site = await store.insert_site(
                SiteIn(
                    url=target.url("/" + name),
                    name=name,
                    public=public,
                    check_interval_seconds=86400,
                ),
                now=start,
            )
            sims.append(Sim(store, site.id, start))
        shop, blog, admin = sims
        outage = datetime(2025, 11, 1, 12, tzinfo=UTC).timestamp() * 1000
        for sim in sims:
            await sim.check(start + MINUTE, up=True)
        # Blog: down 2 hours, paused from the second (uptime leaves the paused part out).
        await blog.check(NOW - 45 * DAY, up=False)
        await blog.check(NOW - 45 * DAY + 2 * HOUR, up=True)
        async with store.transaction() as db:
            await db.execute(
                "INSERT INTO pauses (site_id, started_at, ended_at) VALUES (?, ?, ?)",
                (blog.site_id, NOW - 45 * DAY + HOUR, NOW - 44 * DAY),
            )
        await shop.check(int(outage), up=False, reason="HTTP 503")
        await shop.check(int(outage) + 30 * MINUTE, up=True)
        for k in range(23, 2, -1):  # hourly checks for the response-time chart
            await shop.check(NOW - k * HOUR + 10 * MINUTE, up=True, rtt=100 + k)
            await blog.check(NOW - k * HOUR + 10 * MINUTE, up=True, rtt=50 + k)
        await shop.check(NOW - 2 * HOUR, up=False, reason="timeout after 2s")
        await blog.check(NOW - 2 * HOUR + MINUTE, up=False, reason="TLS error: for 127.0.0.1")
        await shop.check(NOW - 2 * HOUR + 5 * MINUTE, up=True, rtt=250)
        for k in range(12, 0, -1):
            await admin.check(NOW - (k + 3) * DAY, up=False, reason="secret")
            await admin.check(NOW - (k + 3) * DAY + MINUTE, up=True)
        await blog.check(NOW - HOUR, up=True, rtt=80)
        return shop.site_id, blog.site_id
    finally:
        await store.close()


async def test_figures_bars_and_incidents(
    start_app: AppClient, settings: Settings, target: Target
) -> None:
    shop_id, blog_id = await _seed(settings, target)
    clock = ManualClock(wall=NOW / 1000)
    client = await start_app(settings, clock.clock())
    status, html = await visit(client)
    assert status == 200
    data = await (await client.get("/status.json", headers=NO_AUTH)).json()
    for site in data["sites"]:
        resp = await client.get(f"/sites/{site['id']}/uptime?window=24h,30d,90d")
        expected = [(w["window"], w["uptime_percent"]) for w in (await resp.json())["windows"]]
        assert [(w["window"], w["uptime_percent"]) for w in site["uptime"]] == expected
    shop, blog = data["sites"]
    assert shop["uptime"][0]["uptime_percent"] == round(100 * (1 - 5 / 1440), 4)
    monitored_90d = (NOW - (NOW - 90 * DAY) // DAY * DAY - 23 * HOUR) / HOUR  # hours, not paused
    down_hours = 1 + 59 / 60  # the hour not paused 45 days ago, and 59 minutes today
    assert blog["uptime"][2]["uptime_percent"] == round(100 * (1 - down_hours / monitored_90d), 4)

    # 90 UTC days, today last; the outage day and today carry their down time.
    days = shop["days"]
    assert len(days) == 90 and days[-1]["date"] == "2025-12-01"
    assert days[0]["date"] == "2025-09-03"
    nov1 = next(d for d in days if d["date"] == "2025-11-01")
    assert nov1 == {"date": "2025-11-01", "uptime_percent": 97.9167, "down_seconds": 1800.0}
    assert days[-1]["down_seconds"] == 300.0
    assert html.count('class="bar ') == 180
    assert 'class="bar b-major" title="1 Nov 2025: 97.91% up, 30m down"' in html
    assert '<span class="vh">1 Nov 2025: 97.91% up, 30m down</span>' in html
    assert 'title="30 Nov 2025: 100% up, 0s down"' in html

    # Incidents: the public sites' only, newest first; the private one's are not there.
    assert "127.0.0.1" not in html
    assert [(i["site_name"], i["reason"]) for i in data["incidents"]] == [
        ("Blog", "TLS error: for (host)"),  # its URL is not shown: nor its host
        ("Shop", "timeout after 2s"),
        ("Shop", "HTTP 503"),
        ("Blog", "HTTP 503"),
    ]
    assert "secret" not in html and "Admin" not in html
    assert "lasted 5m" in html and "lasted 30m" in html and "lasted 2h" in html
    assert "All systems operational" in html
    # The chart: an SVG line with a text alternative.
    assert html.count("<polyline") == 2
    assert 'role="img" aria-label="Response time, last 24 hours: average' in html
    assert blog_id != shop_id


async def test_cached_at_most_ten_seconds(
    start_app: AppClient, settings: Settings, target: Target
) -> None:
    clock = ManualClock()
    client = await start_app(settings, clock.clock())
    site = await add_site(client, target, name="Before", public=True)

    async def name() -> str:
        data = await (await client.get("/status.json", headers=NO_AUTH)).json()
        return data["sites"][0]["name"]

    assert await name() == "Before"
    resp = await client.patch(f"/sites/{site['id']}", json={"name": "After"})
    assert resp.status == 200
    clock.advance(6.9)  # no visit asked for a new build before 7 s
    assert await name() == "Before"
    clock.advance(3.1)  # 10 s: never served; this visit waits for the new one
    assert await name() == "After"

    # Visited again 7 s after a build: the old one is served while the next is made.
    resp = await client.patch(f"/sites/{site['id']}", json={"name": "Again"})
    assert resp.status == 200
    clock.advance(7)
    assert await name() == "After"

    async def renamed() -> bool:
        return await name() == "Again"

    await eventually(renamed)  # the clock stands still: the background build did it
    _, html = await visit(client)
    assert '<h2 class="site-name">Again</h2>' in html


@pytest.mark.parametrize("state", ["down", "up"])
async def test_summary_counts_the_sites_down(
    client: TestClient, target: Target, state: str
) -> None:
    target.statuses["/Shop"] = 503 if state == "down" else 200
    site = await add_site(client, target, name="Shop", public=True)
    await add_site(client, target, name="Blog", public=True)

    async def checked() -> bool:
        resp = await client.get(f"/sites/{site['id']}")
        return (await resp.json())["status"] == state.upper()

    await eventually(checked)
    client.server.app[status_api.STATUS_CACHE].max_age = 0  # no waiting out the cache here
    _, html = await visit(client)
    if state == "down":
        assert "1 of 2 systems down" in html
        assert '<span class="state state-down"><span class="icon" aria-hidden="true">' in html
    else:
        assert "All systems operational" in html


async def test_lists_the_last_ten_incidents(
    start_app: AppClient, settings: Settings, target: Target
) -> None:
    store = await Store.open(settings.db_path)
    try:
        site = await store.insert_site(
            SiteIn(url=target.url("/x"), name="Flaky", public=True, check_interval_seconds=86400),
            now=NOW - 20 * DAY,
        )
        sim = Sim(store, site.id, NOW - 20 * DAY)
        for k in range(12, 0, -1):
            await sim.check(NOW - k * DAY, up=False, reason=f"HTTP 50{k % 10}")
            await sim.check(NOW - k * DAY + k * MINUTE, up=True)
    finally:
        await store.close()
    client = await start_app(settings, ManualClock(wall=NOW / 1000).clock())
    data = await (await client.get("/status.json", headers=NO_AUTH)).json()
    assert [i["duration_seconds"] for i in data["incidents"]] == [k * 60.0 for k in range(1, 11)]
