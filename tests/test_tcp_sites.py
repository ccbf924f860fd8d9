"""tcp:// sites end to end: the real app checks a TCP listener that accepts or refuses on the
test's command, and tells a fake Discord that validates every body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import AppClient, Target, eventually
from tests.fake_discord import FakeDiscord
from uptimed.config import Settings


class Listener:
    """A TCP port on 127.0.0.1 that accepts (``open``) or refuses (``close``) connections."""

    def __init__(self) -> None:
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    listener = Listener()
    await listener.open()
    yield listener
    await listener.close()


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeDiscord:
    return await FakeDiscord().start(aiohttp_server)


def embed(fake: FakeDiscord, index: int) -> tuple[str, dict[str, str]]:
    got = fake.valid_bodies()[index]["embeds"][0]
    return got["title"], {f["name"]: f["value"] for f in got["fields"]}


async def test_a_tcp_site_is_up_while_its_port_accepts_and_down_when_it_refuses(
    start_app: AppClient, settings: Settings, listener: Listener, fake: FakeDiscord
) -> None:
    client = await start_app(settings)
    url = f"tcp://127.0.0.1:{listener.port}"
    resp = await client.post(
        "/sites", json={"url": url, "name": "Mail", "check_interval_seconds": 1}
    )
    assert resp.status == 200
    site = await resp.json()
    assert (site["url"], site["tls"], site["tls_certificate"]) == (url, False, None)
    await client.post("/webhooks", json={"site_id": site["id"], "discord_webhook_url": fake.url()})

    await fake.wait_for(1)
    title, fields = embed(fake, 0)
    assert title == "🟢 Monitoring started: Mail is UP"
    assert fields["URL"] == url and fields["Response time"].endswith(" ms")
    assert "url" not in fake.valid_bodies()[0]["embeds"][0]  # no link: Discord takes http(s)
    assert listener.accepted >= 1

    await listener.close()
    await fake.wait_for(2)
    title, fields = embed(fake, 1)
    assert title == "🔴 Mail is DOWN"
    assert fields["Reason"] == "connection refused"
    assert "Response time" not in fields  # no connection, no time

    await listener.open()  # the same port again
    await fake.wait_for(3)
    title, fields = embed(fake, 2)
    assert (title, fields["Outage"]) == ("🟢 Mail is UP", "connection refused")
    got = await (await client.get(f"/sites/{site['id']}")).json()
    assert got["status"] == "UP" and got["last_response_time_ms"] is not None
    assert fake.violations() == []


async def test_an_http_site_becomes_a_tcp_site_once_its_http_fields_are_reset(
    start_app: AppClient, settings: Settings, target: Target, listener: Listener
) -> None:
    client = await start_app(settings)
    resp = await client.post(
        "/sites",
        json={"url": target.url("/api"), "name": "Api", "method": "POST", "body": "{}"},
    )
    site = await resp.json()
    tcp = {"url": f"tcp://127.0.0.1:{listener.port}"}

    resp = await client.patch(f"/sites/{site['id']}", json=tcp)
    assert resp.status == 400
    assert (await resp.json())["detail"] == (
        "Field 'method': applies to http(s):// sites only, not to tcp://."
    )

    accepted = listener.accepted
    resp = await client.patch(f"/sites/{site['id']}", json=tcp | {"method": None, "body": None})
    assert resp.status == 200
    changed = await resp.json()
    assert (changed["url"], changed["method"], changed["body"]) == (tcp["url"], "GET", None)

    async def checked_over_tcp() -> bool:
        got = await (await client.get(f"/sites/{site['id']}")).json()
        return listener.accepted > accepted and got["status"] == "UP"

    await eventually(checked_over_tcp)
