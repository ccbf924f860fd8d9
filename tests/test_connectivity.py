"""A monitor that knows it is offline: the real app, a real target, a canary whose answers the
test controls, and a refused tcp:// port. When the canary fails with the sites, their failures
are the monitor's own: nothing is recorded or sent, and once the canary answers again each
webhook URL of the sites set aside gets one message about the span."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import AUTH, Target, eventually, wait_out
from tests.fake_discord import FakeDiscord
from uptimed.app import create_app
from uptimed.app_keys import CONNECTIVITY
from uptimed.config import Settings
from uptimed.connectivity import Connectivity
from uptimed.db import Store
from uptimed.models import Event, EventKind

INTERVAL = 0.3  # seconds between connectivity probes in these tests (10 in production)


@dataclass
class Canary:
    """A connectivity target on loopback: answers HEAD with 204, or, while ``down``, refuses
    every connection (nothing listens on its port); ``hits`` are the answers' times."""

    port: int = 0
    hits: list[float] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.hits.append(time.monotonic())
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        self.server = None

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    c = Canary()
    await c.up()
    yield c
    if c.server is not None:
        await c.down()


def refused_tcp() -> str:
    """A tcp:// target that refuses: a port bound and closed again, nothing listens on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def conn_settings(settings: Settings, canary: Canary) -> Settings:
    return settings.model_copy(
        update={
            "connectivity_check_urls": [refused_tcp(), canary.url()],
            "alert_group_window_seconds": 0,  # one message per event: each one's own embed
        }
    )


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeDiscord:
    return await FakeDiscord().start(aiohttp_server)


def titles(fake: FakeDiscord, url: str | None = None) -> list[str]:
    return [b["embeds"][0]["title"] for b in fake.valid_bodies(url)]


async def start(aiohttp_client: Any, settings: Settings) -> TestClient:
    client = await aiohttp_client(create_app(settings, connectivity_interval=INTERVAL))
    client.session.headers.update(AUTH)
    return client


async def add_site(client: TestClient, url: str, name: str) -> int:
    resp = await client.post("/sites", json={"url": url, "name": name, "check_interval_seconds": 1})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["id"]


async def add_hook(client: TestClient, site_id: int, url: str) -> int:
    resp = await client.post("/webhooks", json={"site_id": site_id, "discord_webhook_url": url})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["id"]


async def health(client: TestClient) -> tuple[int, dict[str, Any]]:
    resp = await client.get("/healthz")
    return resp.status, await resp.json()


def db(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.db_path)


def rows(settings: Settings, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with db(settings) as conn:
        return conn.execute(sql, args).fetchall()


@dataclass
class Storm:
    client: TestClient
    sites: list[int]
    hooks: list[int]
    outbox: int  # outbox rows before the storm


async def offline_storm(
    aiohttp_client: Any, settings: Settings, target: Target, canary: Canary, fake: FakeDiscord
) -> Storm:
    """Two UP sites (webhooks: site 1 -> URL 1; site 2 -> URL 1 and URL 2), then the target
    and the canary fail together until /healthz says offline and each site failed twice."""
    client = await start(aiohttp_client, settings)
    a = await add_site(client, target.url("/a"), "A")
    b = await add_site(client, target.url("/b"), "B")
    hooks = [
        await add_hook(client, a, fake.url("1")),
        await add_hook(client, b, fake.url("1")),
        await add_hook(client, b, fake.url("2")),
    ]
    await fake.wait_for(3)  # "Monitoring started", once per webhook
    outbox = rows(settings, "SELECT count(*) FROM outbox")[0][0]
    assert (await health(client)) == (200, {"status": "ok", "connectivity": "ok"})
    assert canary.hits == []  # online and every check passing: nobody probes

    target.status = 503
    await canary.down()

    async def offline() -> bool:
        return (await health(client))[1]["connectivity"] == "offline"

    await eventually(offline)
    for path in ("/a", "/b"):  # checks go on (and fail), set aside
        await target.wait_hits(path, len(target.hit_times(path)) + 2)
    return Storm(client, [a, b], hooks, outbox)


async def test_a_canary_failing_with_every_site_records_nothing_and_sends_nothing(
    aiohttp_client: Any, conn_settings: Settings, target: Target, canary: Canary, fake: FakeDiscord
) -> None:
    storm = await offline_storm(aiohttp_client, conn_settings, target, canary, fake)
    client = storm.client
    assert await health(client) == (200, {"status": "ok", "connectivity": "offline"})
    for site_id in storm.sites:
        site = await (await client.get(f"/sites/{site_id}")).json()
        assert site["status"] == "UP", site
        down = await (await client.get(f"/sites/{site_id}/history?status=DOWN")).json()
        assert down == []
        assert await (await client.get(f"/sites/{site_id}/incidents")).json() == []
    assert rows(conn_settings, "SELECT count(*) FROM outbox")[0][0] == storm.outbox
    assert len(fake.received()) == 3
    spans = rows(conn_settings, "SELECT id, started_at, last_seen_at, ended_at FROM offline")
    assert len(spans) == 1 and spans[0][3] is None, spans
    assert spans[0][2] >= spans[0][1]


async def test_a_canary_that_stays_up_while_sites_fail_changes_nothing(
    aiohttp_client: Any, conn_settings: Settings, target: Target, canary: Canary, fake: FakeDiscord
) -> None:
    client = await start(aiohttp_client, conn_settings)
    site_id = await add_site(client, target.url("/s"), "S")
    await add_hook(client, site_id, fake.url())
    await fake.wait_for(1)
    target.status = 503

    async def down() -> dict[str, Any] | None:
        site = await (await client.get(f"/sites/{site_id}")).json()
        return site if site["status"] == "DOWN" else None

    site = await eventually(down)
    assert site["last_reason"] == "HTTP 503"
    assert canary.hits  # it was asked, and it answered
    assert len(await (await client.get(f"/sites/{site_id}/incidents")).json()) == 1
    await fake.wait_for(2)
    assert titles(fake) == ["🟢 Monitoring started: S is UP", "🔴 S is DOWN"]
    assert await health(client) == (200, {"status": "ok", "connectivity": "ok"})
    assert rows(conn_settings, "SELECT count(*) FROM offline") == [(0,)]


async def test_back_online_ends_the_span_and_queues_one_message_per_webhook_url(
    aiohttp_client: Any,
    conn_settings: Settings,
    target: Target,
    canary: Canary,
    fake: FakeDiscord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="uptimed.connectivity")
    storm = await offline_storm(aiohttp_client, conn_settings, target, canary, fake)
    client = storm.client
    target.status = 200
    await canary.up()

    async def online() -> bool:
        return (await health(client))[1]["connectivity"] == "ok"

    await eventually(online)
    (span,) = rows(conn_settings, "SELECT id, started_at, last_seen_at, ended_at FROM offline")
    span_id, started_at, _, ended_at = span
    assert ended_at is not None and ended_at >= started_at
    assert rows(
        conn_settings,
        "SELECT site_id FROM offline_sites WHERE offline_id = ? ORDER BY site_id",
        (span_id,),
    ) == [(s,) for s in storm.sites]
    messages = rows(
        conn_settings,
        "SELECT site_id, webhook_id, url, event, payload, created_at FROM outbox"
        " WHERE json_extract(event, '$.kind') = 'offline' ORDER BY id",
    )
    expected = [(storm.hooks[0], fake.url("1"), 2), (storm.hooks[2], fake.url("2"), 1)]
    assert len(messages) == len(expected), messages
    for (site_id, hook_id, url, event, payload, created_at), (hook, want_url, checks) in zip(
        messages, expected, strict=True
    ):
        assert (site_id, hook_id, url, payload) == (None, hook, want_url, None)
        assert created_at == ended_at
        assert Event.model_validate_json(event) == Event(
            kind=EventKind.OFFLINE,
            site_name="",
            site_url="",
            at=ended_at,
            down_since=started_at,
            checks=checks,
        )
    # Each URL gets one message about the span, saying how many of its sites were set aside.
    await fake.wait_for(5)
    for url, sites in ((fake.url("1"), "2 sites"), (fake.url("2"), "1 site")):
        (embed,) = [
            b["embeds"][0]
            for b in fake.valid_bodies(url)
            if b["embeds"][0]["title"] == "📡 uptimed was offline"
        ]
        assert f"<t:{started_at // 1000}:f> to <t:{ended_at // 1000}:f>" in embed["description"]
        assert f"check {sites} of this webhook" in embed["description"], embed
    assert fake.violations() == []
    # Nothing was recorded while offline, and the sites never left UP.
    for site_id in storm.sites:
        down = await (await client.get(f"/sites/{site_id}/history?status=DOWN")).json()
        assert down == []
    # One line when it began and one when it ended, however many checks and probes between.
    lines = [r.getMessage() for r in caplog.records if r.name == "uptimed.connectivity"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("connectivity: offline: none of 2 connectivity checks answered")
    assert "connection refused" in lines[0] and "set aside, not recorded" in lines[0]
    assert "online again after" in lines[1] and "2 site(s)" in lines[1], lines[1]
    assert "2 reconnect message(s)" in lines[1], lines[1]


async def test_a_span_left_open_is_resumed_at_start_and_closed_by_the_next_answer(
    aiohttp_client: Any, conn_settings: Settings, target: Target, canary: Canary, fake: FakeDiscord
) -> None:
    client = await start(aiohttp_client, conn_settings)
    site_id = await add_site(client, target.url("/r"), "R")
    hook_id = await add_hook(client, site_id, fake.url())
    await fake.wait_for(1)
    await client.close()
    # As a run that crashed while offline leaves it: a span open, a site set aside in it.
    store = await Store.open(conn_settings.db_path)
    span_id = await store.start_offline(1_700_000_000_000)
    await store.note_offline(span_id, 1_700_000_060_000, [site_id])
    await store.close()

    await canary.down()
    client = await start(aiohttp_client, conn_settings)
    assert (await health(client))[1]["connectivity"] == "offline"  # before any check failed
    await wait_out(3 * INTERVAL)  # probes fail meanwhile: still offline, still one span
    assert (await health(client))[1]["connectivity"] == "offline"
    await canary.up()

    async def closed() -> list[tuple[Any, ...]]:
        return rows(conn_settings, "SELECT ended_at FROM offline WHERE ended_at IS NOT NULL")

    await eventually(closed)
    assert (await health(client))[1]["connectivity"] == "ok"
    assert rows(conn_settings, "SELECT count(*) FROM offline") == [(1,)]
    ((hook, event),) = rows(
        conn_settings,
        "SELECT webhook_id, event FROM outbox WHERE json_extract(event, '$.kind') = 'offline'",
    )
    assert hook == hook_id
    parsed = Event.model_validate_json(event)
    assert (parsed.kind, parsed.down_since, parsed.checks) == (
        EventKind.OFFLINE,
        1_700_000_000_000,
        1,
    )
    await fake.wait_for(2)
    assert titles(fake)[1] == "📡 uptimed was offline"


async def test_without_the_setting_there_is_no_connectivity_at_all(
    aiohttp_client: Any, settings: Settings, target: Target
) -> None:
    client = await start(aiohttp_client, settings)
    assert CONNECTIVITY not in client.app
    site_id = await add_site(client, target.url("/n"), "N")
    target.status = 503

    async def down() -> bool:
        return (await (await client.get(f"/sites/{site_id}")).json())["status"] == "DOWN"

    await eventually(down)
    assert await health(client) == (200, {"status": "ok", "connectivity": "ok"})


# --- the probe rule, on the Connectivity itself -------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "c.db")
    yield s
    await s.close()


@pytest.fixture
async def connectivity(canary: Canary, store: Store) -> AsyncIterator[Connectivity]:
    async with aiohttp.ClientSession() as session:
        c = Connectivity([canary.url()], session, store, min_interval=INTERVAL, timeout=1)
        await c.start()
        yield c
        await c.stop()


async def test_a_probe_older_than_the_check_is_not_trusted(
    connectivity: Connectivity, canary: Canary
) -> None:
    first = time.monotonic()
    assert not await connectivity.set_aside(1, first)  # probes now: online
    assert len(canary.hits) == 1
    await canary.down()
    # A check that started before that probe trusts it: online, and no new probe is made
    # (one would find the canary down).
    assert not await connectivity.set_aside(1, first - 60)
    assert not connectivity.offline

    # A check that started after the last probe waits for a new one (the uplink may have died
    # since), which starts no sooner than min_interval after the last.
    assert await connectivity.set_aside(1, time.monotonic())
    assert time.monotonic() - first >= INTERVAL
    assert connectivity.offline


async def test_checks_failing_together_share_one_probe(
    connectivity: Connectivity, canary: Canary, store: Store
) -> None:
    now = time.monotonic()
    verdicts = await asyncio.gather(*(connectivity.set_aside(i, now) for i in range(1, 51)))
    assert verdicts == [False] * 50
    assert len(canary.hits) == 1  # one probe for 50 checks

    await canary.down()
    now = time.monotonic()
    verdicts = await asyncio.gather(*(connectivity.set_aside(i, now) for i in range(1, 51)))
    assert verdicts == [True] * 50
    async with store.latest() as conn:  # written with the span, in the probe's transaction
        rows = await conn.execute_fetchall("SELECT offline_id, count(*) FROM offline_sites")
    assert [tuple(r) for r in rows] == [(1, 50)]


async def test_checks_begun_offline_are_set_aside_by_the_probe_that_finds_it_online(
    connectivity: Connectivity, canary: Canary, store: Store
) -> None:
    await canary.down()
    assert await connectivity.set_aside(1, time.monotonic())
    begun_offline = time.monotonic()  # e.g. a timeout that began offline, ends online
    await canary.up()
    assert await connectivity.set_aside(2, begun_offline)  # its probe ends the span
    assert not connectivity.offline
    assert not await connectivity.set_aside(3, time.monotonic())  # begun online: recorded
    async with store.latest() as conn:
        rows = await conn.execute_fetchall(
            "SELECT o.ended_at IS NOT NULL, s.site_id FROM offline o"
            " JOIN offline_sites s ON s.offline_id = o.id ORDER BY s.site_id"
        )
    assert [tuple(r) for r in rows] == [(1, 1), (1, 2)]


async def test_a_site_already_down_keeps_its_interval_without_waiting_for_probes(
    aiohttp_client: Any, conn_settings: Settings, target: Target, canary: Canary
) -> None:
    """Its failure cannot change anything, so it asks no probe: checked every second while
    probes may start only every 5 s, it keeps its 1 s grid and records its failed checks."""
    client = await aiohttp_client(create_app(conn_settings, connectivity_interval=5.0))
    client.session.headers.update(AUTH)
    target.status = 503
    site_id = await add_site(client, target.url("/down"), "Down")

    async def down() -> bool:
        return (await (await client.get(f"/sites/{site_id}")).json())["status"] == "DOWN"

    await eventually(down, timeout=15)  # its first failure waited for one probe
    probes = len(canary.hits)
    before = len(target.hit_times("/down"))
    times = await target.wait_hits("/down", before + 4, timeout=8)
    gaps = [b - a for a, b in zip(times[before:], times[before + 1 :], strict=False)]
    assert max(gaps) < 2.5, gaps  # one probe wait would be up to 5 s
    history = await (await client.get(f"/sites/{site_id}/history?status=DOWN")).json()
    assert len(history) >= 4
    assert len(canary.hits) == probes  # asked nothing more
