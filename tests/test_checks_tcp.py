"""The TCP probe against real listeners on 127.0.0.1: plain, TLS (trustme certificates), refused,
silent, and a name that never resolves."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import resource
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from cryptography import x509

from uptimed.checks import check_site, tcp
from uptimed.checks.answer import Answer
from uptimed.checks.assertions import first_failure
from uptimed.checks.errors import Failure, LocalFault
from uptimed.models import Certificate, CheckResult, Site, Status

UTC = dt.UTC
VALID_UNTIL = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)


def tcp_site(port: int, host: str = "127.0.0.1", **fields: Any) -> Site:
    return Site.model_validate(
        {"id": 1, "url": f"tcp://{host}:{port}", "name": "t", "created_at": 0, **fields}
    )


def free_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(condition: Callable[[], bool], within: float = 2.0) -> None:
    """Wait for ``condition`` to hold, polling; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.01)


@dataclass
class Listener:
    """A loopback server that counts the TCP connections it accepts (before any TLS) and,
    with TLS, the handshakes the client completed."""

    port: int = 0
    connections: int = 0
    handshakes: int = 0


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    """``await serve(context=None, answer_tls=True)``: a listener; with ``context`` it speaks
    TLS, and with ``answer_tls=False`` it accepts TCP but never answers the handshake."""
    made: list[asyncio.Server] = []

    async def start(context: ssl.SSLContext | None = None, *, answer_tls: bool = True) -> Listener:
        listener = Listener()
        if context is not None and answer_tls:
            # Every ClientHello calls it (SNI or not): counts the tries a handshake failure hides.
            def count_hello(*_: object) -> None:
                listener.connections += 1

            context.sni_callback = count_hello

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if context is None or not answer_tls:
                listener.connections += 1
            else:
                listener.handshakes += 1
            with contextlib.suppress(OSError):
                await reader.read()  # until the client drops the connection; never answers
            writer.close()

        server = await asyncio.start_server(
            handle, "127.0.0.1", 0, ssl=context if answer_tls else None
        )
        made.append(server)
        listener.port = server.sockets[0].getsockname()[1]
        return listener

    yield start
    for server in made:
        server.close()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="uptimed test CA")


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The client trusts ``ca``: its verifying context is built from ``SSL_CERT_FILE``."""
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    tcp.tls_context.cache_clear()
    yield
    tcp.tls_context.cache_clear()


def server_context(leaf: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return context


def issued(leaf: trustme.LeafCert) -> x509.Certificate:
    return x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())


def expired(ca: trustme.CA) -> trustme.LeafCert:
    now = dt.datetime.now(UTC)
    return ca.issue_cert(
        "127.0.0.1",
        not_before=now - dt.timedelta(days=10),
        not_after=(now - dt.timedelta(days=1)).replace(microsecond=0),
    )


async def test_an_open_port_is_up(session: aiohttp.ClientSession, serve: Any) -> None:
    listener = await serve()
    result = await check_site(session, tcp_site(listener.port), timeout=2, clock=lambda: 7.0)
    assert result == CheckResult(
        status=Status.UP, checked_at=7000, response_time_ms=result.response_time_ms
    )
    assert (result.http_status, result.certificate) == (None, None)
    assert 0 <= result.response_time_ms < 2000
    await until(lambda: listener.connections == 1)


async def test_a_closed_port_is_refused_and_retried(session: aiohttp.ClientSession) -> None:
    site = tcp_site(free_port())
    result = await check_site(session, site, timeout=1, retries=1)
    assert (result.status, result.reason) == (Status.DOWN, "connection refused")
    with pytest.raises(Failure) as failure:
        await tcp.probe(session, site, 1)
    assert (failure.value.reason, failure.value.transient) == ("connection refused", True)


async def test_a_name_that_never_resolves_is_a_dns_failure(
    session: aiohttp.ClientSession,
) -> None:
    # .invalid never resolves (RFC 6761). The lookup is the system's: where a DNS server is
    # configured the query goes to it (it answers NXDOMAIN at once); the bound below holds
    # also for a resolver that would hang, because the timeout covers the lookup.
    site = tcp_site(80, host="no-such-host.invalid")
    started = time.monotonic()
    result = await check_site(session, site, timeout=2, retries=0)
    assert (result.status, result.reason) == (Status.DOWN, "DNS lookup failed")
    assert time.monotonic() - started < 2.5
    with pytest.raises(Failure) as failure:
        await tcp.probe(session, site, 2)
    assert failure.value.transient


async def test_a_connect_that_never_completes_times_out(session: aiohttp.ClientSession) -> None:
    # A listener whose accept queue is full: the kernel drops further SYNs, the connect hangs.
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        held = []
        try:
            while True:  # fill the queue until a connect hangs
                s = socket.socket()
                held.append(s)
                s.settimeout(0.2)
                try:
                    s.connect(("127.0.0.1", port))
                except TimeoutError:
                    break
                assert len(held) < 20, "the accept queue never filled"
            started = time.monotonic()
            result = await check_site(session, tcp_site(port), timeout=0.3, retries=0)
            took = time.monotonic() - started
        finally:
            for s in held:
                s.close()
    assert (result.status, result.reason) == (Status.DOWN, "timeout after 0.3s")
    assert result.response_time_ms <= 300
    assert took < 1.0


async def test_a_tls_handshake_that_never_completes_times_out_and_is_retried(
    session: aiohttp.ClientSession, serve: Any, ca: trustme.CA
) -> None:
    listener = await serve(server_context(ca.issue_cert("127.0.0.1")), answer_tls=False)
    site = tcp_site(listener.port, tls=True)
    started = time.monotonic()
    result = await check_site(session, site, timeout=0.3, retries=2)
    assert (result.status, result.reason) == (Status.DOWN, "timeout after 0.3s")
    assert result.response_time_ms <= 300
    assert time.monotonic() - started < 0.3 * 3 + 1.5  # three tries and two waits, no more
    await until(lambda: listener.connections == 3)


async def test_tls_up_reads_the_certificate_as_issued(
    session: aiohttp.ClientSession, serve: Any, ca: trustme.CA, trusted: None
) -> None:
    leaf = ca.issue_cert("127.0.0.1", common_name="tcp.test", not_after=VALID_UNTIL)
    listener = await serve(server_context(leaf))
    result = await check_site(session, tcp_site(listener.port, tls=True), timeout=2, retries=0)
    assert (result.status, result.reason, result.http_status) == (Status.UP, None, None)
    cert = issued(leaf)
    assert result.certificate == Certificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        expires_at=int(VALID_UNTIL.timestamp()) * 1000,
    )
    assert result.certificate.subject.startswith("CN=tcp.test,")
    assert "O=uptimed test CA" in result.certificate.issuer
    await until(lambda: listener.handshakes == 1)


@pytest.mark.parametrize("verify", [True, False], ids=["verify", "no-verify"])
@pytest.mark.parametrize("problem", ["expired", "untrusted"])
async def test_a_bad_certificate_is_a_tls_error_only_when_verified(
    session: aiohttp.ClientSession,
    serve: Any,
    ca: trustme.CA,
    trusted: None,
    problem: str,
    verify: bool,
) -> None:
    # "untrusted": self-signed as far as the client knows, by a CA it was never given.
    leaf = expired(ca) if problem == "expired" else trustme.CA().issue_cert("127.0.0.1")
    listener = await serve(server_context(leaf))
    site = tcp_site(listener.port, tls=True, verify_tls=verify)
    result = await check_site(session, site, timeout=2, retries=2)
    if verify:
        assert result.status is Status.DOWN
        assert result.reason is not None and result.reason.startswith("TLS error: "), result
        detail = "certificate has expired" if problem == "expired" else "unable to get local"
        assert detail in result.reason
        assert result.certificate is None
        assert result.response_time_ms < 2000
        await until(lambda: listener.connections == 1)
        assert listener.handshakes == 0  # and it was not tried again
    else:
        assert (result.status, result.reason) == (Status.UP, None)
        assert result.certificate is not None
        assert result.certificate.subject == issued(leaf).subject.rfc4514_string()
        assert (
            result.certificate.expires_at
            == int(issued(leaf).not_valid_after_utc.timestamp()) * 1000
        )
        await until(lambda: listener.handshakes == 1)


async def test_a_listener_that_speaks_no_tls_fails_a_tls_site(
    session: aiohttp.ClientSession,
) -> None:
    # It greets in plain text and hangs up: the handshake breaks off.
    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 not TLS\r\n")
        writer.close()

    server = await asyncio.start_server(closing, "127.0.0.1", 0)
    async with server:
        site = tcp_site(server.sockets[0].getsockname()[1], tls=True)
        result = await check_site(session, site, timeout=2, retries=0)
    assert result.status is Status.DOWN
    assert result.reason is not None
    assert result.reason.startswith(("TLS error: ", "connection failed: ")), result.reason


async def test_no_descriptor_left_is_this_host_s_fault(
    session: aiohttp.ClientSession, serve: Any
) -> None:
    listener = await serve()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.dup(0)
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # no new descriptor
    try:
        with pytest.raises(LocalFault, match="Too many open files"):
            await check_site(session, tcp_site(listener.port), timeout=1, retries=2)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert listener.connections == 0


def test_only_the_response_time_applies_to_a_tcp_answer() -> None:
    site = tcp_site(1, max_response_time_ms=100)
    assert first_failure(site, Answer(None), 100) is None
    assert first_failure(site, Answer(None), 101) == "slow: 101 ms > 100 ms"
    assert first_failure(tcp_site(1), Answer(None), 10_000) is None
