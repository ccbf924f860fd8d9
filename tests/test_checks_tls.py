"""The leaf certificate: parsed from DER (tls.py), and carried by every https answer, verified or
not, on new and on reused connections."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.conftest import Target, make_target_app
from uptimed.checks import check_site, http
from uptimed.checks.http import TlsResponse
from uptimed.checks.tls import leaf_certificate, parse_certificate
from uptimed.connector import CheckConnector
from uptimed.models import Certificate, Site, Status

VALID_UNTIL = dt.datetime(2030, 6, 7, 8, 9, 10, tzinfo=dt.UTC)


def site(url: str, **fields: Any) -> Site:
    return Site.model_validate({"id": 1, "url": url, "name": "t", "created_at": 0, **fields})


def as_issued(leaf: trustme.LeafCert) -> Certificate:
    """What a check must report for ``leaf``, read independently of the code under test."""
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        expires_at=int(cert.not_valid_after_utc.timestamp()) * 1000,
    )


def der(leaf: trustme.LeafCert) -> bytes:
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    return cert.public_bytes(Encoding.DER)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="uptimed https CA")


@pytest.fixture(scope="session")
def leaf(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("127.0.0.1", common_name="https.test", not_after=VALID_UNTIL)


@pytest.fixture
async def https_target(
    aiohttp_server: Callable[..., Awaitable[TestServer]], leaf: trustme.LeafCert
) -> Target:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    t = Target()
    t.server = await aiohttp_server(make_target_app(t), ssl=context)
    return t


@pytest.fixture(
    params=[
        (connector, keep_alive)
        for connector in (aiohttp.TCPConnector, CheckConnector)
        for keep_alive in (True, False)
    ],
    ids=["aiohttp-keepalive", "aiohttp-close", "uptimed-keepalive", "uptimed-close"],
)
async def session(
    request: pytest.FixtureRequest, ca: trustme.CA
) -> AsyncIterator[aiohttp.ClientSession]:
    """A session that trusts ``ca``, on either connector, reusing connections or not."""
    connector_type, keep_alive = request.param
    trust = ssl.create_default_context()
    ca.configure_trust(trust)
    connector = connector_type(ssl=trust, force_close=not keep_alive)
    async with aiohttp.ClientSession(connector=connector, response_class=TlsResponse) as s:
        yield s


@pytest.mark.parametrize("verify", [True, False], ids=["verify", "no-verify"])
async def test_every_https_answer_carries_the_certificate(
    session: aiohttp.ClientSession,
    https_target: Target,
    leaf: trustme.LeafCert,
    verify: bool,
) -> None:
    checked = site(https_target.url(), verify_tls=verify)
    first = await check_site(session, checked, timeout=2, retries=0)
    second = await check_site(session, checked, timeout=2, retries=0)
    for result in (first, second):
        assert (result.status, result.reason, result.http_status) == (Status.UP, None, 200)
        assert result.certificate == as_issued(leaf)
    assert first.certificate.expires_at == int(VALID_UNTIL.timestamp()) * 1000
    assert first.certificate.subject.startswith("CN=https.test,")
    ports = {seen["X-Peer-Port"] for _, _, seen in https_target.hits}
    keep_alive = not session.connector.force_close  # type: ignore[union-attr]
    assert len(ports) == (1 if keep_alive else 2)  # the second came on the same connection


async def test_an_untrusted_certificate_is_read_when_not_verified(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    stranger = trustme.CA().issue_cert("127.0.0.1")  # a CA no client was given
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    stranger.configure_cert(context)
    t = Target()
    t.server = await aiohttp_server(make_target_app(t), ssl=context)
    async with aiohttp.ClientSession(connector=CheckConnector(), response_class=TlsResponse) as s:
        down = await check_site(s, site(t.url()), timeout=2, retries=0)
        up = await check_site(s, site(t.url(), verify_tls=False), timeout=2, retries=0)
    assert down.status is Status.DOWN and down.certificate is None
    assert (up.status, up.certificate) == (Status.UP, as_issued(stranger))


async def test_an_answer_read_for_its_body_carries_the_certificate(
    session: aiohttp.ClientSession, https_target: Target, leaf: trustme.LeafCert
) -> None:
    result = await check_site(
        session, site(https_target.url(), body_contains="hello"), timeout=2, retries=0
    )
    assert (result.status, result.certificate) == (Status.UP, as_issued(leaf))
    failed = await check_site(
        session, site(https_target.url(), body_contains="absent"), timeout=2, retries=0
    )
    assert failed.status is Status.DOWN  # an answer that fails an assertion still saw TLS
    assert failed.certificate == as_issued(leaf)


async def test_a_plain_http_answer_has_no_certificate_and_is_shared(target: Target) -> None:
    async with aiohttp.ClientSession(response_class=TlsResponse) as s:
        result = await check_site(s, site(target.url()), timeout=2, retries=0)
        first = await http.probe(s, site(target.url()), 2)
        second = await http.probe(s, site(target.url()), 2)
    assert (result.status, result.certificate) == (Status.UP, None)
    assert first is second  # no Answer made per plain check


def test_a_certificate_is_parsed_once(leaf: trustme.LeafCert) -> None:
    parsed = parse_certificate(der(leaf))
    assert parsed == as_issued(leaf)
    assert parse_certificate(bytes(der(leaf))) is parsed  # equal bytes: the cached parse


@pytest.mark.parametrize(
    "data",
    [b"", b"not a certificate", b"\x30\x82\xff\xff", b"\x30\x03\x02\x01\x01"],
    ids=["empty", "text", "truncated", "not-a-certificate"],
)
def test_an_unparseable_certificate_is_none(data: bytes, leaf: trustme.LeafCert) -> None:
    assert parse_certificate(data) is None
    assert parse_certificate(der(leaf)[:-10]) is None


def test_no_tls_object_means_no_certificate() -> None:
    assert leaf_certificate(None) is None


def test_non_ascii_names_are_rfc4514_strings() -> None:
    leaf = trustme.CA(organization_name="Zürich CA").issue_cert(
        "127.0.0.1", common_name='bücher.test, "quoted"'
    )
    parsed = parse_certificate(der(leaf))
    assert parsed is not None
    assert parsed.subject.startswith('CN=bücher.test\\, \\"quoted\\",')
    assert "O=Zürich CA" in parsed.issuer
