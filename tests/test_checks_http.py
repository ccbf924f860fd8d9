"""HTTP checks against a real local target: UP, wrong status, timeout, refused, DNS, redirects,
and every field of a site's check (method, headers, body, statuses, assertions, timeout,
redirects, TLS)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohappyeyeballs
import aiohttp
import pytest
import trustme
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from tests.conftest import Target, make_target_app
from uptimed import __version__
from uptimed.checks import check_site
from uptimed.connector import CheckConnector
from uptimed.models import Site, Status


def site(url: str, expected: int = 200, **fields: Any) -> Site:
    return Site(id=1, url=url, name="t", expected_status_code=expected, created_at=0, **fields)


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


METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@pytest.mark.parametrize("method", METHODS)
async def test_the_site_s_method_is_sent(
    session: aiohttp.ClientSession, target: Target, method: str
) -> None:
    result = await check_site(session, site(target.url("/echo"), method=method), timeout=2)
    assert (result.status, result.http_status) == (Status.UP, 200)
    assert [m for m, _, _ in target.requests] == [method]


@pytest.mark.parametrize("method", [m for m in METHODS if m != "HEAD"])
async def test_the_answer_to_the_method_is_read(
    session: aiohttp.ClientSession, target: Target, method: str
) -> None:
    """The echo's JSON names the method: the body read is the answer to that request."""
    s = site(target.url("/echo"), method=method, json_query="method", json_expected=method)
    assert (await check_site(session, s, timeout=2)).status is Status.UP


async def test_headers_are_sent_and_replace_the_user_agent(
    session: aiohttp.ClientSession, target: Target
) -> None:
    headers = {"X-Token": "abc", "Accept": "application/json", "user-agent": "probe/1"}
    result = await check_site(session, site(target.url("/echo"), headers=headers), timeout=2)
    assert result.status is Status.UP
    _, seen, _ = target.requests[0]
    assert seen["X-Token"] == "abc"
    assert seen.getall("Accept") == ["application/json"]
    assert seen.getall("User-Agent") == ["probe/1"]


async def test_without_headers_the_session_s_user_agent_is_sent(
    session: aiohttp.ClientSession, target: Target
) -> None:
    await check_site(session, site(target.url("/echo")), timeout=2)
    _, seen, body = target.requests[0]
    assert seen.getall("User-Agent") == [f"uptimed/{__version__}"]
    assert body == b""


@pytest.mark.parametrize("name", ["Content-Type", "content-type"])
async def test_a_body_is_sent_with_the_content_type_of_the_headers(
    session: aiohttp.ClientSession, target: Target, name: str
) -> None:
    s = site(
        target.url("/echo"),
        method="POST",
        headers={name: "application/json; charset=utf-8"},
        body='{"q": "é"}',
    )
    assert (await check_site(session, s, timeout=2)).status is Status.UP
    method, seen, body = target.requests[0]
    assert (method, body) == ("POST", '{"q": "é"}'.encode())
    assert seen.getall("Content-Type") == ["application/json; charset=utf-8"]
    assert seen["Content-Length"] == str(len(body))


async def test_a_body_without_a_content_type_header_is_sent_with_none(
    session: aiohttp.ClientSession, target: Target
) -> None:
    s = site(target.url("/echo"), method="PUT", body="plain words", headers={"X-A": "1"})
    assert (await check_site(session, s, timeout=2)).status is Status.UP
    method, seen, body = target.requests[0]
    assert (method, body) == ("PUT", b"plain words")
    assert "Content-Type" not in seen


@pytest.mark.parametrize(
    ("status", "accepted", "reason"),
    [
        (204, [204], None),
        (204, ["204"], None),
        (299, ["200-299"], None),
        (200, ["200-299"], None),
        (404, ["4xx"], None),
        (301, ["200-299", 301], None),
        (503, ["200-299"], "HTTP 503 (accepted: 200-299)"),
        (503, ["200-299", 301], "HTTP 503 (accepted: 200-299, 301)"),
        (300, ["2xx"], "HTTP 300 (accepted: 2xx)"),
    ],
)
async def test_accepted_status_codes_decide(
    session: aiohttp.ClientSession,
    target: Target,
    status: int,
    accepted: list[int | str],
    reason: str | None,
) -> None:
    target.status = status
    s = site(target.url(), accepted_status_codes=accepted)
    result = await check_site(session, s, timeout=2, retries=2)
    assert (result.status, result.reason) == (Status.DOWN if reason else Status.UP, reason)
    assert result.http_status == status
    assert len(target.hits) == 1  # an answer is never retried


@pytest.mark.parametrize(("status", "up"), [(500, False), (200, True)])
async def test_expected_status_code_is_unused_while_accepted_status_codes_is_set(
    session: aiohttp.ClientSession, target: Target, status: int, up: bool
) -> None:
    target.status = status
    s = site(target.url(), expected=500, accepted_status_codes=["2xx"])
    result = await check_site(session, s, timeout=2)
    assert result.status is (Status.UP if up else Status.DOWN)
    if not up:
        assert result.reason == "HTTP 500 (accepted: 2xx)"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"body_contains": "Welcome"}, None),
        ({"body_contains": "Goodbye"}, 'body does not contain "Goodbye"'),
        ({"body_not_contains": "Maintenance"}, None),
        ({"body_not_contains": "Welcome"}, 'body contains "Welcome"'),
        ({"body_contains": "Welcome", "body_not_contains": "Maintenance"}, None),
    ],
)
async def test_body_assertions(
    session: aiohttp.ClientSession, target: Target, fields: dict[str, str], reason: str | None
) -> None:
    target.pages["home"] = (b"<h1>Welcome home</h1>", "text/html; charset=utf-8")
    result = await check_site(session, site(target.url("/page/home"), **fields), timeout=2)
    assert (result.status, result.reason) == (Status.DOWN if reason else Status.UP, reason)
    assert result.http_status == 200
    assert len(target.hits) == 1  # a failed assertion is an answer: not retried


@pytest.mark.parametrize(
    ("page", "query", "expected", "reason"),
    [
        (b'{"status": "ok"}', "status", "ok", None),
        (b'{"status": "degraded"}', "status", "ok", 'JSON status is "degraded", expected "ok"'),
        (b'{"db": {"up": true}}', "db.up", True, None),
        (b'{"db": {"up": 1}}', "db.up", True, "JSON db.up is 1, expected true"),
        (b'{"status": "ok"}', "status", None, None),
        (b'{"state": "ok"}', "status", None, "JSON status is null, expected a value"),
        (b"<html>oops</html>", "status", "ok", "body is not JSON"),
    ],
)
async def test_json_assertions(
    session: aiohttp.ClientSession,
    target: Target,
    page: bytes,
    query: str,
    expected: Any,
    reason: str | None,
) -> None:
    target.pages["health"] = (page, "application/json")
    s = site(target.url("/page/health"), json_query=query, json_expected=expected)
    result = await check_site(session, s, timeout=2, retries=2)
    assert (result.status, result.reason) == (Status.DOWN if reason else Status.UP, reason)
    assert len(target.hits) == 1


async def test_a_slow_answer_is_down_and_not_retried(
    session: aiohttp.ClientSession, target: Target
) -> None:
    target.delays["/slow"] = 0.3
    result = await check_site(
        session, site(target.url("/slow"), max_response_time_ms=100), timeout=2, retries=2
    )
    assert result.status is Status.DOWN
    assert result.reason == f"slow: {result.response_time_ms} ms > 100 ms"
    assert result.response_time_ms >= 300
    assert len(target.hits) == 1


async def test_an_answer_within_max_response_time_is_up(
    session: aiohttp.ClientSession, target: Target
) -> None:
    result = await check_site(session, site(target.url(), max_response_time_ms=5000), timeout=2)
    assert (result.status, result.reason) == (Status.UP, None)


async def test_the_site_s_timeout_overrides_the_default_and_is_retried(
    session: aiohttp.ClientSession, target: Target
) -> None:
    target.delays["/stuck"] = 30
    s = site(target.url("/stuck"), timeout_seconds=1)
    result = await check_site(session, s, timeout=20, retries=1)
    assert (result.status, result.reason) == (Status.DOWN, "timeout after 1s")
    assert result.response_time_ms <= 1000
    assert result.http_status is None
    assert len(target.hits) == 2


@pytest.mark.parametrize(
    ("accepted", "status", "reason"),
    [(None, Status.DOWN, "HTTP 302"), ([302], Status.UP, None), (["3xx"], Status.UP, None)],
)
async def test_without_following_redirects_the_redirect_is_the_answer(
    session: aiohttp.ClientSession,
    target: Target,
    accepted: list[int | str] | None,
    status: Status,
    reason: str | None,
) -> None:
    s = site(target.url("/redirect/1"), follow_redirects=False, accepted_status_codes=accepted)
    result = await check_site(session, s, timeout=2)
    assert (result.status, result.reason, result.http_status) == (status, reason, 302)
    assert [p for _, p, _ in target.hits] == ["/redirect/1"]  # "/" was not asked for


@pytest.fixture(scope="session")
def untrusted_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_target(
    aiohttp_server: Callable[..., Awaitable[TestServer]], untrusted_ca: trustme.CA
) -> Target:
    """The target over HTTPS, with a certificate from a CA the client does not trust."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    untrusted_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    t = Target()
    t.server = await aiohttp_server(make_target_app(t), ssl=context)
    return t


@pytest.mark.parametrize("verify", [True, False])
async def test_verify_tls(session: aiohttp.ClientSession, tls_target: Target, verify: bool) -> None:
    url = tls_target.url()
    assert url.startswith("https://")
    result = await check_site(session, site(url, verify_tls=verify), timeout=2, retries=0)
    if verify:
        assert result.status is Status.DOWN
        assert result.reason is not None and result.reason.startswith("TLS error"), result.reason
        assert "certificate" in result.reason
        assert tls_target.hits == []
    else:
        assert (result.status, result.reason, result.http_status) == (Status.UP, None, 200)
        assert len(tls_target.hits) == 1
