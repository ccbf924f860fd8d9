"""Why a check got no answer, in a few words, in one place for every kind of check.

A probe turns the exceptions of its request into ``Failure`` (no usable answer; ``transient``
ones are tried again) or ``LocalFault`` (this host, not the site, kept the check from being
made), so that the reason texts users read ("connection refused", "timeout after 10s", ...)
are written once: for aiohttp's errors (HTTP) and for the bare socket, ``ssl`` and asyncio
errors they wrap (TCP) alike.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl

import aiohttp

# Named here because its reason is: a probe that follows redirects stops after this many.
MAX_REDIRECTS = 10

# The monitor's own resources, not the site's: EMFILE/ENFILE (descriptors), ENOMEM, ENOBUFS.
_LOCAL_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_LOCAL_DNS_ERRORS = frozenset({socket.EAI_SYSTEM, socket.EAI_MEMORY})


class LocalFault(Exception):
    """The check could not be made because of this host (``str(e)`` says what ran out)."""


class Failure(Exception):
    """No usable answer; ``transient`` failures are worth one more try."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


def local_fault(exc: BaseException | None) -> str | None:
    """What ran out on this host, if that is why ``exc`` (or an error under it) happened."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MemoryError):
            return "out of memory"
        cause = getattr(exc, "os_error", None) or exc
        if isinstance(cause, socket.gaierror) and cause.errno in _LOCAL_DNS_ERRORS:
            return f"name lookups fail on this host ({cause.strerror})"
        if isinstance(cause, OSError) and cause.errno in _LOCAL_ERRNOS:
            return os.strerror(cause.errno)
        exc = exc.__cause__ or exc.__context__
    return None


def transient(exc: BaseException, timeout: float) -> LocalFault | Failure:
    """A connection error or timeout: this host's fault, or a failure worth trying again."""
    if local := local_fault(exc):
        return LocalFault(local)
    return Failure(reason(exc, timeout), transient=True)


def reason(exc: BaseException, timeout: float) -> str:
    """A network error as the short reason a DOWN carries."""
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return f"timeout after {timeout:g}s"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "DNS lookup failed"
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
        return f"TLS error: {getattr(exc, 'certificate_error', None) or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc}"
    if isinstance(exc, OSError) and not isinstance(exc, aiohttp.ClientError):
        return _socket_reason(exc)
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused"
        return f"connection failed: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return f"more than {MAX_REDIRECTS} redirects"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "response body broken off"
    if isinstance(
        exc, aiohttp.InvalidUrlRedirectClientError | aiohttp.NonHttpUrlRedirectClientError
    ):
        return "redirect to an invalid or non-http URL"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"bad answer: {malformed(exc.message)}"
    return f"bad answer: {exc.__class__.__name__}"


def _socket_reason(exc: OSError) -> str:
    """A bare socket error (the TCP probe's, which no aiohttp wraps) in the HTTP probe's words."""
    if isinstance(exc, socket.gaierror):
        return "DNS lookup failed"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return f"connection failed: {exc.strerror or exc}"


def malformed(message: str) -> str:
    """aiohttp's parser error in a few words, without echoing the site's bytes."""
    if message.startswith("Got more than"):
        limit = message.split()[3]
        return f"header too long (a line over {limit} bytes)"
    if message.startswith("Too many headers"):
        return "too many headers"
    if message.startswith("Bad status line"):
        return "malformed status line"
    if message.startswith("Invalid header"):
        return "malformed header line"
    return message.split(":", 1)[0].splitlines()[0][:100] or "malformed answer"
