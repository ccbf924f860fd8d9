"""Real parts on loopback: the real app on a real SQLite file, a target server whose answers
each test controls, and a clock the test can move."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict

from uptimed.app import create_app
from uptimed.clock import Clock
from uptimed.config import Settings
from uptimed.db.schema import MIGRATIONS
from uptimed.models import Event, EventKind

USER, PASSWORD = "alice", "s3cret-pass"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


async def eventually(
    predicate: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)


async def wait_out(seconds: float) -> None:
    """Let time pass on purpose: for tests whose subject is that something does NOT happen."""
    await asyncio.sleep(seconds)


SITE_STATUS = ("status", "status_since", "last_checked", "last_response_time_ms", "last_reason")


def told(what: str) -> str:
    """An outbox event as JSON whose site name is ``what``: tests of the bookkeeping only."""
    return Event(kind=EventKind.DOWN, site_name=what, site_url="http://h/", at=1).model_dump_json()


def settings_of(site: dict[str, Any]) -> dict[str, Any]:
    """A site as the API shows it, without its read-only status (which moves on by itself)."""
    return {k: v for k, v in site.items() if k not in SITE_STATUS}


@dataclass
class ManualClock:
    """Wall and monotonic time that move only when the test says so."""

    wall: float = 1_739_600_000.0
    mono: float = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def clock(self) -> Clock:
        return Clock(now=lambda: self.wall, monotonic=lambda: self.mono)


@dataclass
class Target:
    """A website under test: ``status`` and ``delay`` (or per-path overrides) decide its answers."""

    status: int = 200
    delay: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    hits: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)
    # /echo: each request's method, headers (repeats kept) and body
    requests: list[tuple[str, CIMultiDict[str], bytes]] = field(default_factory=list)
    # /page/{name}: the body and its Content-Type header
    pages: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    server: TestServer | None = None

    def url(self, path: str = "/") -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    def hit_times(self, path: str | None = None) -> list[float]:
        return [t for t, p, _ in self.hits if path is None or p == path]

    async def wait_hits(self, path: str, count: int, *, timeout: float = 10.0) -> list[float]:
        """Arrival times (monotonic) once ``path`` has been requested ``count`` times."""

        async def enough() -> list[float]:
            times = self.hit_times(path)
            return times if len(times) >= count else []

        return await eventually(enough, timeout=timeout)


def make_target_app(target: Target) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        seen = dict(request.headers)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen["X-Peer-Port"] = str(peer[1]) if peer else ""  # same port: a reused connection
        target.hits.append((time.monotonic(), request.path, seen))
        delay = target.delays.get(request.path, target.delay)
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=target.statuses.get(request.path, target.status), text="hello")

    async def redirect(request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        target.hits.append((time.monotonic(), request.path, dict(request.headers)))
        raise web.HTTPFound("/" if n <= 1 else f"/redirect/{n - 1}")

    async def loop(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/loop")

    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        chunk = b"x" * 65536
        for _ in range(10_000):  # 640 MiB if the checker read it all
            await resp.write(chunk)
        return resp

    async def echo(request: web.Request) -> web.StreamResponse:
        """Any method: records the request, answers its method, headers and body as JSON."""
        body = await request.read()
        target.hits.append((time.monotonic(), request.path, dict(request.headers)))
        target.requests.append((request.method, request.headers.copy(), body))
        seen = {"method": request.method, "headers": dict(request.headers), "body": body.decode()}
        return web.json_response(seen, status=target.statuses.get(request.path, target.status))

    async def page(request: web.Request) -> web.StreamResponse:
        """Any method: the bytes of ``target.pages[name]`` with its Content-Type."""
        target.hits.append((time.monotonic(), request.path, dict(request.headers)))
        delay = target.delays.get(request.path, target.delay)
        if delay:
            await asyncio.sleep(delay)
        data, content_type = target.pages[request.match_info["name"]]
        status = target.statuses.get(request.path, target.status)
        return web.Response(body=data, status=status, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_route("*", "/page/{name}", page)
    app.router.add_get("/redirect/{n}", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_get("/big", big)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture
async def target(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> Target:
    t = Target()
    t.server = await aiohttp_server(make_target_app(t))
    return t


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'uptimed.db'}",
        valid_username=USER,
        valid_password=PASSWORD,
        default_timeout_seconds=2,
        check_retries=0,
        startup_spread_seconds=1,
        shutdown_grace_seconds=2,
        # Most tests follow one event at a time; grouping has its own (test_grouping.py).
        alert_group_window_seconds=0,
        _env_file=None,
    )


AppClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def start_app(aiohttp_client: Callable[..., Awaitable[TestClient]]) -> AppClient:
    """Start the real app on loopback; every request carries valid credentials by default."""

    async def start(settings: Settings, clock: Clock | None = None) -> TestClient:
        client = await aiohttp_client(create_app(settings, clock=clock))
        client.session.headers.update(AUTH)
        return client

    return start


@pytest.fixture
async def client(start_app: AppClient, settings: Settings) -> TestClient:
    return await start_app(settings)


def database_at(path: Path, version: int) -> sqlite3.Connection:
    """A database file as release ``version`` of the schema left it, for migration tests;
    the caller adds its rows, commits and closes."""
    raw = sqlite3.connect(path)
    for script in MIGRATIONS[:version]:
        raw.executescript(script)
    raw.execute(f"PRAGMA user_version = {version}")
    return raw
