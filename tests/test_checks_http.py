"""The checker against a real local target: UP, wrong status, timeout, refused, DNS, redirects."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohappyeyeballs
import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from tests.conftest import Target
from uptimed import __version__
from uptimed.checks import check_site
from uptimed.connector import CheckConnector
from uptimed.models import Site, Status


def site(url: str, expected: int = 200) -> Site:
    return Site(id=1, url=url, name="t", expected_status_code=expected, created_at=0)


@pytest.fixture(params=[aiohttp.TCPConnector, CheckConnector], ids=["aiohttp", "uptimed"])
async def session(request: pytest.FixtureRequest) -> AsyncIterator[aiohttp.ClientSession]:
    """Every case runs on aiohttp's connector and on ours, which must behave the same."""
    async with aiohttp.ClientSession(
        connector=request.param(force_close=True),
        headers={"User-Agent": f"uptimed/{__version__}"},
    ) as s:
        yield s


def free_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_up_when_status_matches(session: aiohttp.ClientSession, target: Target) -> None:
    result = await check_site(session, site(target.url()), timeout=2, clock=lambda: 1000.0)
    assert result.status is Status.UP
    assert result.reason is None
    assert result.http_status == 200
    assert result.checked_at == 1_000_000
    assert isinstance(result.response_time_ms, int)
    assert target.hits[0][2]["User-Agent"] == f"uptimed/{__version__}"


@pytest.mark.parametrize(("status", "expected"), [(503, 200), (200, 204), (404, 200), (500, 500)])
async def test_status_code_decides(
    session: aiohttp.ClientSession, target: Target, status: int, expected: int
) -> None:
    target.status = status
    result = await check_site(session, site(target.url(), expected), timeout=2)
    if status == expected:
        assert (result.status, result.reason) == (Status.UP, None)
    else:
        assert (result.status, result.reason) == (Status.DOWN, f"HTTP {status}")
    assert len(target.hits) == 1  # an answer is never retried


async def test_timeout_is_down_and_retried(session: aiohttp.ClientSession, target: Target) -> None:
    target.delay = 5
    result = await check_site(session, site(target.url()), timeout=0.3, retries=2)
    assert (result.status, result.reason) == (Status.DOWN, "timeout after 0.3s")
    assert len(target.hits) == 3


async def test_connection_refused_is_down_and_retried(session: aiohttp.ClientSession) -> None:
    result = await check_site(
        session, site(f"http://127.0.0.1:{free_port()}/"), timeout=1, retries=1
    )
    assert (result.status, result.reason) == (Status.DOWN, "connection refused")


class FailingResolver(AbstractResolver):
    """Name resolution that fails as a missing host does, without asking any DNS server."""

    calls = 0

    async def resolve(
        self, host: str, port: int = 0, family: int = socket.AF_INET
    ) -> list[ResolveResult]:
        FailingResolver.calls += 1
        raise OSError(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        return None


async def test_dns_failure_is_down() -> None:
    connector = aiohttp.TCPConnector(resolver=FailingResolver(), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as s:
        result = await check_site(s, site("http://no-such-host.invalid/"), timeout=1, retries=0)
    assert (result.status, result.reason) == (Status.DOWN, "DNS lookup failed")
    assert FailingResolver.calls >= 1


async def test_tls_error_is_down(session: aiohttp.ClientSession, target: Target) -> None:
    # Speaking TLS to a plain-HTTP listener fails the handshake.
    url = target.url().replace("http://", "https://")
    result = await check_site(session, site(url), timeout=2, retries=0)
    assert result.status is Status.DOWN
    assert result.reason is not None and result.reason.startswith("TLS error")


async def test_redirects_are_followed(session: aiohttp.ClientSession, target: Target) -> None:
    result = await check_site(session, site(target.url("/redirect/10")), timeout=2)
    assert result.status is Status.UP
    assert result.http_status == 200


async def test_redirect_loop_is_down(session: aiohttp.ClientSession, target: Target) -> None:
    result = await check_site(session, site(target.url("/loop")), timeout=2, retries=2)
    assert (result.status, result.reason) == (Status.DOWN, "more than 10 redirects")


async def test_expected_redirect_status_is_not_followed_past_ten(
    session: aiohttp.ClientSession, target: Target
) -> None:
    result = await check_site(session, site(target.url("/redirect/11")), timeout=2)
    assert result.status is Status.DOWN


async def test_huge_body_is_capped(session: aiohttp.ClientSession, target: Target) -> None:
    result = await check_site(session, site(target.url("/big")), timeout=5)
    assert result.status is Status.UP
    assert result.response_time_ms < 5000


class TwoAddressResolver(AbstractResolver):
    """``dual.test`` has two addresses: 127.0.0.2 (nothing listens) and then 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def resolve(
        self, host: str, port: int = 0, family: int = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=ip, port=self.port, family=socket.AF_INET,
                          proto=0, flags=socket.AI_NUMERICHOST)
            for ip in ("127.0.0.2", "127.0.0.1")
        ]  # fmt: skip

    async def close(self) -> None:
        return None


async def test_connector_races_only_when_there_is_more_than_one_address(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One IPv4 address: the loop connects directly. Several: aiohttp's happy eyeballs, which
    falls through to the address that answers."""
    races = 0
    real_start = aiohappyeyeballs.start_connection

    async def counting_start(*args: object, **kwargs: object) -> socket.socket:
        nonlocal races
        races += 1
        return await real_start(*args, **kwargs)

    monkeypatch.setattr(aiohappyeyeballs, "start_connection", counting_start)
    async with aiohttp.ClientSession(connector=CheckConnector(force_close=True)) as s:
        assert (await check_site(s, site(target.url()), timeout=2)).status is Status.UP
    assert races == 0
    assert target.server is not None
    port = target.server.port
    connector = CheckConnector(force_close=True, resolver=TwoAddressResolver(port))
    async with aiohttp.ClientSession(connector=connector) as s:
        result = await check_site(s, site(f"http://dual.test:{port}/"), timeout=2, retries=0)
    assert (result.status, races) == (Status.UP, 1)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", "header too long"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200 + b"\r\n", "too many headers"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed"),
        (b"SPDY/9 ok\r\n\r\n", "malformed"),
    ],
    ids=["100kb-header", "200-headers", "bad-header-line", "bad-status-line"],
)
async def test_a_malformed_answer_says_what_was_wrong(
    session: aiohttp.ClientSession, answer: bytes, reason: str
) -> None:
    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await check_site(session, site(f"http://127.0.0.1:{port}/"), timeout=2)
    assert result.status is Status.DOWN
    assert result.reason is not None and result.reason.startswith("bad answer: "), result.reason
    assert reason in result.reason, result.reason
    assert "ClientResponseError" not in result.reason
