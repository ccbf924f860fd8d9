"""Sites that accept a connection and never answer must not starve the checks of healthy ones.

The real app with a budget of 4 checks in flight (``max_concurrent_checks``; by default the
budget is what the open-file limit allows, far more than a test can fill), six sites that hang
and two that answer, all every second."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable

import pytest

from tests.conftest import AppClient, Target, eventually
from uptimed.config import Settings


class HangingListener:
    """Accepts every connection on 127.0.0.1 and never answers nor closes it."""

    def __init__(self) -> None:
        self.accepted = 0
        self._held: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def open(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._held.append(writer)

    async def close(self) -> None:
        for writer in self._held:
            writer.close()
        if self._server is not None:
            self._server.close()


@pytest.fixture
async def hang_url() -> AsyncIterator[str]:
    listener = HangingListener()
    yield await listener.open()
    await listener.close()


async def test_hung_sites_leave_half_the_budget_to_healthy_ones(
    start_app: AppClient, settings: Settings, target: Target, hang_url: str
) -> None:
    settings.max_concurrent_checks = 4
    settings.check_retries = 1  # a hung check holds its slot for 2 x 1.5 s
    client = await start_app(settings)

    async def add(url: str, name: str) -> int:
        site = {"url": url, "name": name, "check_interval_seconds": 1, "timeout_seconds": 1.5}
        resp = await client.post("/sites", json=site)
        assert resp.status == 200, await resp.text()
        return int((await resp.json())["id"])

    hung = [await add(hang_url, f"hung {i}") for i in range(6)]

    async def down() -> list[int]:
        resp = await client.get("/sites?status=DOWN")
        assert resp.status == 200, await resp.text()
        return sorted(site["id"] for site in await resp.json())

    await eventually(lambda: _equal(down(), hung), timeout=15, interval=0.5)
    healthy = [await add(target.url(f"/ok{i}"), f"ok {i}") for i in range(2)]
    for i in range(2):
        await target.wait_hits(f"/ok{i}", 1)
    # The hung sites go on hanging (DOWN, checked every second, each check 3 s): with one
    # pool of 4 slots they would hold all of them, and the healthy checks would queue.
    started = [len(target.hit_times(f"/ok{i}")) for i in range(2)]
    await target.wait_hits("/ok0", started[0] + 5, timeout=7)
    await target.wait_hits("/ok1", started[1] + 5, timeout=7)
    for i in range(2):
        times = target.hit_times(f"/ok{i}")[started[i] :]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) < 1.5, gaps  # on the 1 s grid, none waited for a slot
    for site_id in healthy:
        resp = await client.get(f"/sites/{site_id}/history?status=DOWN")
        assert await resp.json() == []
    assert await down() == hung  # still DOWN


async def _equal(got: Awaitable[list[int]], expected: list[int]) -> bool:
    return await got == expected
