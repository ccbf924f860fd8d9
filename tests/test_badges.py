"""Badges through the real app, asked without credentials: SVG that parses, the right text and
colour, the same 404 for a private site as for an unknown one, and the caching headers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Target, eventually
from uptimed import badges

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
async def anonymous() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def read(svg: str) -> tuple[list[str], str]:
    """The badge's texts (each drawn twice: shadow and text, so taken once) and value colour."""
    root = ET.fromstring(svg)
    texts = [t.text or "" for t in root.iter(f"{SVG}text")][1::2]
    rects = list(root.iter(f"{SVG}rect"))
    return texts, rects[2].attrib["fill"]  # clip, label box, value box, gradient


async def add_checked(client: TestClient, **body: object) -> dict:
    site = await (await client.post("/sites", json=body)).json()

    async def done() -> dict | None:
        view = await (await client.get(f"/sites/{site['id']}")).json()
        return view if view["last_checked"] is not None else None

    return await eventually(done)


async def badge(
    anonymous: aiohttp.ClientSession, client: TestClient, path: str
) -> tuple[list[str], str]:
    resp = await anonymous.get(client.make_url(path))
    text = await resp.text()
    assert resp.status == 200, text
    assert resp.headers["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert resp.headers["Cache-Control"] == "max-age=60"
    assert "script-src 'none'" in resp.headers["Content-Security-Policy"]
    return read(text)


async def test_status_uptime_and_response_time_of_public_sites(
    client: TestClient, target: Target, anonymous: aiohttp.ClientSession
) -> None:
    target.statuses["/down"] = 503
    up = await add_checked(client, url=target.url("/up"), name="up", public=True)
    down = await add_checked(client, url=target.url("/down"), name="down", public=True)
    paused = await (
        await client.post(
            "/sites", json={"url": target.url(), "name": "p", "public": True, "paused": True}
        )
    ).json()

    assert await badge(anonymous, client, f"/badge/{up['id']}/status.svg") == (
        ["status", "up"],
        badges.BRIGHTGREEN,
    )
    assert await badge(anonymous, client, f"/badge/{down['id']}/status.svg") == (
        ["status", "down"],
        badges.RED,
    )
    assert await badge(anonymous, client, f"/badge/{paused['id']}/status.svg") == (
        ["status", "paused"],
        badges.LIGHTGREY,
    )
    assert await badge(anonymous, client, f"/badge/{up['id']}/uptime.svg") == (
        ["uptime 30d", "100%"],
        badges.BRIGHTGREEN,
    )
    assert await badge(anonymous, client, f"/badge/{down['id']}/uptime.svg?window=7d") == (
        ["uptime 7d", "0%"],
        badges.RED,
    )
    assert await badge(anonymous, client, f"/badge/{paused['id']}/uptime.svg") == (
        ["uptime 30d", "no data"],
        badges.LIGHTGREY,
    )
    uptime = await (await client.get(f"/sites/{up['id']}/uptime?window=24h")).json()
    avg = uptime["windows"][0]["response_time_ms"]["avg"]
    assert await badge(anonymous, client, f"/badge/{up['id']}/response-time.svg") == (
        ["response time 24h", f"{round(avg)} ms"],
        badges.BRIGHTGREEN,  # loopback answers in well under 300 ms
    )
    assert await badge(anonymous, client, f"/badge/{up['id']}/response-time.svg?window=1h") == (
        ["response time 1h", f"{round(avg)} ms"],
        badges.BRIGHTGREEN,
    )


@pytest.mark.parametrize("kind", ["status.svg", "uptime.svg", "response-time.svg"])
async def test_a_private_site_is_as_unknown_as_a_missing_one(
    client: TestClient, target: Target, anonymous: aiohttp.ClientSession, kind: str
) -> None:
    private = await (await client.post("/sites", json={"url": target.url(), "name": "p"})).json()
    answers = []
    for site_id in (private["id"], 999, 0, "abc", 2**70):
        resp = await anonymous.get(client.make_url(f"/badge/{site_id}/{kind}"))
        answers.append((resp.status, await resp.json()))
    assert answers == [(404, {"detail": "Site not found"})] * 5


@pytest.mark.parametrize("window", ["0d", "30", "100000d", "1w", "24h,7d"])
async def test_a_bad_window_is_400(
    client: TestClient, target: Target, anonymous: aiohttp.ClientSession, window: str
) -> None:
    site = await (
        await client.post("/sites", json={"url": target.url(), "name": "p", "public": True})
    ).json()
    for kind in ("uptime.svg", "response-time.svg"):
        resp = await anonymous.get(
            client.make_url(f"/badge/{site['id']}/{kind}"), params={"window": window}
        )
        assert resp.status == 400
        assert (await resp.json())["detail"].startswith("Query parameter 'window'")


@pytest.mark.parametrize(
    ("percent", "text", "colour"),
    [
        (100.0, "100%", badges.BRIGHTGREEN),
        (99.9999, "99.99%", badges.BRIGHTGREEN),  # rounded down: never 100 % while down a moment
        (99.9, "99.9%", badges.BRIGHTGREEN),
        (99.5, "99.5%", badges.GREEN),
        (99.0, "99%", badges.GREEN),
        (97.25, "97.25%", badges.YELLOW),
        (94.99, "94.99%", badges.RED),
        (None, "no data", badges.LIGHTGREY),
    ],
    ids=lambda v: str(v),
)
def test_uptime_colours(percent: float | None, text: str, colour: str) -> None:
    assert badges.uptime_value(percent) == (text, colour)


@pytest.mark.parametrize(
    ("ms", "text", "colour"),
    [
        (12.4, "12 ms", badges.BRIGHTGREEN),
        (299.4, "299 ms", badges.BRIGHTGREEN),
        (300, "300 ms", badges.YELLOW),
        (999, "999 ms", badges.YELLOW),
        (1000, "1000 ms", badges.RED),
        (None, "no data", badges.LIGHTGREY),
    ],
    ids=lambda v: str(v),
)
def test_response_time_colours(ms: float | None, text: str, colour: str) -> None:
    assert badges.response_time_value(ms) == (text, colour)


def test_text_is_escaped_and_widths_follow_it() -> None:
    svg = badges.render('<script>"a" & b</script>', "x", badges.RED)
    root = ET.fromstring(svg)  # well-formed: nothing broke out of its text node
    assert not list(root.iter(f"{SVG}script"))
    assert read(svg) == (['<script>"a" & b</script>', "x"], badges.RED)
    narrow = int(ET.fromstring(badges.render("status", "up", badges.RED)).attrib["width"])
    wide = int(ET.fromstring(badges.render("status", "MMMMMM", badges.RED)).attrib["width"])
    assert wide > narrow
