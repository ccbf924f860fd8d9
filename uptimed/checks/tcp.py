"""The TCP probe: a ``tcp://host:port`` site is UP when a connection opens within its timeout
and, with ``tls``, a TLS handshake completes over it (its leaf certificate is then read).

The whole try (name lookup, connect, handshake) runs under one ``asyncio.timeout``, so it never
outlasts the site's timeout. Names are looked up with ``loop.getaddrinfo``: the system resolver
in the loop's thread pool, as aiohttp's default resolver does for HTTP sites, and IP literals
skip it. A lookup that hangs holds a pool thread until the system resolver gives up, but the
check ends at its timeout. The addresses are raced as aiohttp races an HTTP site's
(aiohappyeyeballs), so both kinds connect alike and a host refused on every address says
"connection refused". The connection is dropped at once; the peer's goodbye is not awaited.

Certificates are verified against ``ssl.create_default_context()``'s store (the system's, or
``SSL_CERT_FILE``), as aiohttp's default context does for https sites; a failed verification
is not retried, unlike a refused or timed-out connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from functools import lru_cache
from typing import Any

import aiohappyeyeballs
import aiohttp

from uptimed.checks.answer import Answer
from uptimed.checks.errors import Failure, LocalFault, local_fault, reason, transient
from uptimed.checks.tls import leaf_certificate
from uptimed.fields import tcp_address
from uptimed.models import Site

HAPPY_EYEBALLS_DELAY = 0.25  # seconds before the next address is tried too: aiohttp's

_CONNECTED = Answer(None)  # every plain TCP answer is this one
AddrInfo = tuple[Any, ...]  # one row of getaddrinfo: family, type, proto, canonname, sockaddr


async def probe(session: aiohttp.ClientSession, site: Site, timeout: float) -> Answer:
    """Connect to ``site`` (and shake hands); raise ``Failure`` or ``LocalFault`` otherwise.

    ``session`` is unused: a TCP check shares no connection with anything."""
    host, port = tcp_address(site.url)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            addresses = _literal(host, port) or await _lookup(loop, host, port)
            sock = await aiohappyeyeballs.start_connection(
                addresses, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY
            )
            if not site.tls:
                sock.close()
                return _CONNECTED
            # On failure or cancellation the loop closes the transport, and the socket with it.
            transport, _ = await loop.create_connection(
                asyncio.Protocol, sock=sock, ssl=tls_context(site.verify_tls), server_hostname=host
            )
    except ssl.SSLCertVerificationError as e:
        raise Failure(reason(e, timeout), transient=False) from e
    except UnicodeError as e:  # a name IDNA cannot encode: no lookup can find it
        raise Failure("DNS lookup failed", transient=False) from e
    except OSError as e:  # refused, reset, DNS, TLS alerts, and TimeoutError
        raise transient(e, timeout) from e
    except MemoryError as e:
        raise LocalFault(local_fault(e) or "out of memory") from e
    try:
        return Answer(None, None, leaf_certificate(transport.get_extra_info("ssl_object")))
    finally:
        transport.abort()


async def _lookup(loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[AddrInfo]:
    addresses = await loop.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG
    )
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    return addresses


@lru_cache(maxsize=4096)
def _literal(host: str, port: int) -> list[AddrInfo] | None:
    """The address of an IP literal without a trip to the resolver's thread pool."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:  # a name, or an address with a zone ("fe80::1%eth0"): the resolver's
        return None
    if ip.version == 4:
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))]


@lru_cache(maxsize=2)
def tls_context(verify: bool) -> ssl.SSLContext:
    """The client context, made once (loading the trust store takes milliseconds); without
    ``verify`` any certificate is accepted, and still read."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
