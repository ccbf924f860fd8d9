"""The API server's defences: a connection cap, a header timeout, quiet JSON for malformed HTTP.

In-process tests run the real app behind ``uptimed.api.server.listen`` (what ``uptimed`` runs) and
talk raw HTTP over loopback sockets; one test runs the real process with a low open-files limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import Target, eventually, wait_out
from tests.daemon import Daemon, api, daemon_fixture, free_port  # noqa: F401
from uptimed.api.server import ConnectionCap, listen
from uptimed.app import create_app
from uptimed.config import Settings

Serve = Callable[..., Awaitable[int]]
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
HEALTHZ_CLOSE = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


@pytest.fixture
async def serve(settings: Settings) -> AsyncIterator[Serve]:
    """Start the real app on a free port the way ``uptimed`` does; returns the port."""
    running: list[tuple[web.AppRunner, asyncio.Server, ConnectionCap]] = []

    async def start(report_every: float = 60, **overrides: Any) -> int:
        s = settings.model_copy(update={"port": free_port(), **overrides})
        runner = web.AppRunner(create_app(s))
        await runner.setup()
        listener, cap = await listen(runner, s, report_every=report_every)
        running.append((runner, listener, cap))
        return s.port

    yield start
    for runner, listener, cap in running:
        listener.close()
        cap.close()
        await runner.cleanup()


async def exchange(port: int, data: bytes, *, timeout: float = 5) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


async def keep_open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A keep-alive connection that has had one answer: it is surely counted by the server."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEALTHZ)
    await asyncio.wait_for(reader.readuntil(b'{"status": "ok", "connectivity": "ok"}'), 5)
    return reader, writer


MARK = b"ECHO-ME"
MANY_HEADERS = b"".join(b"X-%d-" % i + MARK + b": v\r\n" for i in range(200))


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + MARK + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + MARK + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: t\r\n" + MANY_HEADERS + b"\r\n", 431),
        (b"G<T /" + MARK + b" HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        (b"GET /" + MARK + b" HTTP/1.X\r\nHost: t\r\n\r\n", 400),
        (b"GET /" + MARK + b" FOO/1.1\r\nHost: t\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nBad " + MARK + b": v\r\n\r\n", 400),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + MARK, 400),
    ],
    ids=[
        "long-request-line",
        "long-header",
        "too-many-headers",
        "bad-method",
        "bad-version",
        "bad-protocol",
        "bad-header-name",
        "tls-on-http-port",
    ],
)
async def test_malformed_requests_get_json_echo_nothing_and_log_nothing(
    serve: Serve, caplog: pytest.LogCaptureFixture, request_bytes: bytes, status: int
) -> None:
    port = await serve()
    caplog.set_level(logging.DEBUG)
    raw = await exchange(port, request_bytes)
    got, headers, body = parse(raw)
    assert got == status, raw[:300]
    assert headers["Content-Type"].startswith("application/json")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    detail = json.loads(body)["detail"]
    assert isinstance(detail, str) and detail
    assert MARK not in raw  # nothing of the request is echoed
    # No error log (aiohttp's is a traceback per request); the access log line, which uptimed
    # keeps at WARNING, quotes nothing of the request either.
    assert [r for r in caplog.records if r.name == "aiohttp.server"] == []
    assert not any(MARK.decode() in r.getMessage() for r in caplog.records)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r for r in warnings if "new, empty database" not in r.getMessage()] == []
    # The server is none the worse for it.
    assert parse(await exchange(port, HEALTHZ_CLOSE))[0] == 200


async def test_connections_over_the_cap_get_503_and_are_logged_once_per_period(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    # Reports every second (60 s in uptimed); held connections are not timed out meanwhile.
    port = await serve(max_connections=3, report_every=1.0, header_timeout_seconds=30)
    held = [await keep_open(port) for _ in range(3)]
    caplog.set_level(logging.WARNING, logger="uptimed.api.server")

    def report_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "uptimed.api.server"]

    answers = [await exchange(port, HEALTHZ) for _ in range(4)]
    for raw in answers:
        status, headers, body = parse(raw)
        assert status == 503
        assert headers["Retry-After"] == "5"
        assert "Too many open connections" in json.loads(body)["detail"]
    assert len(report_lines()) == 1  # the first refusal at once, the others are counted
    assert "refused 1 API connection(s)" in report_lines()[0] and "3 are open" in report_lines()[0]

    async def second_report() -> list[str]:
        return report_lines()[1:]

    assert "refused 3 API connection(s)" in (await eventually(second_report, timeout=3))[0]
    await wait_out(1.5)  # no refusals in the last period: no line
    assert len(report_lines()) == 2

    # A held connection still works, and once one closes a newcomer is served again.
    reader, writer = held[0]
    writer.write(HEALTHZ)
    assert b'{"status": "ok", "connectivity": "ok"}' in await asyncio.wait_for(
        reader.readuntil(b"}"), 5
    )
    held[1][1].close()

    async def served() -> bool:
        return parse(await exchange(port, HEALTHZ_CLOSE))[0] == 200

    await eventually(served, timeout=5)
    for _, w in held:
        w.close()


async def test_headers_must_arrive_within_the_header_timeout(serve: Serve) -> None:
    port = await serve(header_timeout_seconds=1)

    async def trickle() -> float:
        """A slowloris: one header line every 0.2 s, never the blank line that ends them."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        for i in range(25):  # 5 s at most
            if reader.at_eof():
                break
            try:
                writer.write(b"X-%d: v\r\n" % i)
                await writer.drain()
                await asyncio.wait_for(reader.read(1), 0.2)
            except (TimeoutError, ConnectionError):
                continue
        writer.close()
        return time.monotonic() - started

    async def silent() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        return time.monotonic() - started

    async def idle_after_answer() -> float:
        reader, writer = await keep_open(port)
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        return time.monotonic() - started

    for took in await asyncio.gather(trickle(), silent(), idle_after_answer()):
        assert 0.8 < took < 2.5, took


async def test_held_connections_never_starve_checks(daemon: Daemon, target: Target) -> None:
    """The issue's case with the real process: open files limited to 256, several hundred idle
    and trickling connections against the API port. The site must stay UP throughout (no
    "Too many open files"), and the API answers again soon after the header timeout."""
    header_timeout = 3
    daemon.env.update(
        {
            "UPTIMED_HEADER_TIMEOUT_SECONDS": str(header_timeout),
            "UPTIMED_CHECK_RETRIES": "0",  # a failed check would be DOWN at once
            "DEFAULT_TIMEOUT_SECONDS": "2",
        }
    )

    def low_limit() -> None:  # the hard limit too: uptimed raises its soft limit to the hard one
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    await daemon.start(preexec_fn=low_limit)
    status, site = await api(
        daemon,
        "POST",
        "/sites",
        {"url": target.url("/up"), "name": "up", "check_interval_seconds": 1},
    )
    assert status == 200
    await target.wait_hits("/up", 2)

    # Several hundred connections, each with half a request; bounded in count and in time.
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    deadline = time.monotonic() + 10
    for _ in range(400):
        if time.monotonic() > deadline:
            break
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", daemon.port), 2)
        except (OSError, TimeoutError):
            continue
        w.write(b"GET /sites HTTP/1.1\r\nHost: t\r\n")
        conns.append((r, w))
    assert len(conns) >= 300
    hold_started = time.monotonic()
    hits_before = len(target.hit_times("/up"))

    async def refused_at_once(r: asyncio.StreamReader) -> bool:
        """Over the cap: a 503 and closed (reset, when the half request was left unread)."""
        try:
            first = await asyncio.wait_for(r.read(12), 1.0)  # well before the header timeout
        except TimeoutError:
            return False  # held: waiting for the rest of its headers
        except ConnectionError:
            return True
        return first in (b"HTTP/1.1 503", b"")

    refusals = await asyncio.gather(*(refused_at_once(r) for r, _ in conns))
    held = [c for c, refused in zip(conns, refusals, strict=True) if not refused]
    assert 0 < len(held) <= 64  # the cap: a quarter of the soft limit of 256
    assert len(held) < len(conns)

    for i in range(header_timeout + 2):  # trickle a header line each second, like a slowloris
        for _, w in held:
            if not w.is_closing():
                w.write(b"X-%d: v\r\n" % i)
        await asyncio.sleep(1)
    # Every held connection was closed by uptimed, with no answer, at the header timeout.
    ends = await asyncio.gather(
        *(asyncio.wait_for(r.read(), 3) for r, _ in held), return_exceptions=True
    )
    assert all(e == b"" or isinstance(e, ConnectionError) for e in ends), ends
    for _, w in conns:
        w.close()

    async def healthy() -> bool:
        try:
            async with aiohttp.ClientSession() as s, s.get(daemon.base + "/healthz") as r:
                return r.status == 200
        except aiohttp.ClientConnectionError:
            return False

    await eventually(healthy, timeout=5)
    assert time.monotonic() - hold_started < header_timeout + 2 + 3 + 5
    assert len(target.hit_times("/up")) >= hits_before + header_timeout  # checked all along
    status, down = await api(daemon, "GET", f"/sites/{site['id']}/history?status=DOWN")  # type: ignore[index]
    assert (status, down) == (200, [])
    code, out = await daemon.stop(signal.SIGTERM)
    assert code == 0, out
    assert "Too many open files" not in out
    refusals = [line for line in out.splitlines() if "refused" in line]
    assert len(refusals) == 1, refusals  # at most one line a minute
    assert "64 are open" in refusals[0]  # the default: a quarter of the soft limit of 256


async def test_daemon_answers_malformed_requests_without_logging(daemon: Daemon) -> None:
    """The real process, as the issue found it: oversized and broken requests, no login."""
    await daemon.start()
    for request_bytes in (
        b"GET /" + MARK + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + MARK + b"a" * 9000 + b"\r\n\r\n",
        b"G<T /" + MARK + b" HTTP/1.1\r\nHost: t\r\n\r\n",
    ):
        raw = await exchange(daemon.port, request_bytes)
        status, _, body = parse(raw)
        assert status in (400, 431) and "detail" in json.loads(body)
        assert MARK not in raw
    code, out = await daemon.stop(signal.SIGTERM)
    assert code == 0, out
    assert "ERROR" not in out and "Traceback" not in out and MARK.decode() not in out, out
