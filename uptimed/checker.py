"""One HTTP check of one site. It returns a ``CheckResult`` and never raises for a down site.

Network failures become a short ``reason`` ("connection refused", "timeout after 10s", ...);
connection errors and timeouts are tried again (tenacity) before DOWN is believed, because a
single lost SYN should not wake a team up. A wrong status code is an answer and is not retried.

A check that cannot be made for a reason on this host (no file descriptor left, no memory)
says nothing about the site: it raises ``LocalFault`` instead of returning a DOWN, so that a
monitor short of descriptors does not report every healthy site down.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import time
from collections.abc import Callable
from functools import lru_cache

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from uptimed.models import CheckResult, Site, Status

MAX_REDIRECTS = 10
BODY_CAP_BYTES = 256 * 1024
RETRY_WAIT = 0.2  # seconds before the first retry; doubles after, at most 1 s
_CHUNK = 64 * 1024


# The monitor's own resources, not the site's: EMFILE/ENFILE (descriptors), ENOMEM, ENOBUFS.
_LOCAL_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_LOCAL_DNS_ERRORS = frozenset({socket.EAI_SYSTEM, socket.EAI_MEMORY})


class LocalFault(Exception):
    """The check could not be made because of this host (``str(e)`` says what ran out)."""


def _local_fault(exc: BaseException | None) -> str | None:
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


class _Failure(Exception):
    """No usable answer; ``transient`` failures are worth one more try."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


def _reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return f"timeout after {timeout:g}s"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "DNS lookup failed"
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
        return f"TLS error: {getattr(exc, 'certificate_error', None) or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc}"
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
        return f"bad answer: {_malformed(exc.message)}"
    return f"bad answer: {exc.__class__.__name__}"


def _malformed(message: str) -> str:
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


async def _get_status(session: aiohttp.ClientSession, site: Site, timeout: float) -> int:
    try:
        async with session.get(
            site.url,
            timeout=_timeout(timeout),
            max_redirects=MAX_REDIRECTS + 1,  # aiohttp raises on reaching the count
            allow_redirects=True,
        ) as resp:
            # Read (and drop) the body, so timing covers the whole answer; stop at the cap.
            read = 0
            async for chunk in resp.content.iter_chunked(_CHUNK):
                read += len(chunk)
                if read >= BODY_CAP_BYTES:
                    break
            return resp.status
    except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as e:
        if local := _local_fault(e):
            raise LocalFault(local) from e
        raise _Failure(_reason(e, timeout), transient=True) from e
    except (aiohttp.ClientError, ssl.SSLError, ValueError) as e:
        # Redirect loops, bad redirect targets, malformed answers: trying again won't help.
        raise _Failure(_reason(e, timeout), transient=False) from e
    except (OSError, MemoryError) as e:
        if local := _local_fault(e):
            raise LocalFault(local) from e
        raise


async def check_site(
    session: aiohttp.ClientSession,
    site: Site,
    *,
    timeout: float,
    retries: int = 2,
    clock: Callable[[], float] = time.time,
) -> CheckResult:
    """GET ``site.url``; UP when the final status equals ``site.expected_status_code``.

    Raises ``LocalFault`` when this host, not the site, kept the check from being made."""
    checked_at = int(clock() * 1000)
    started = time.perf_counter()
    reason: str | None = None
    status_code: int | None = None
    try:
        status_code = await _get_status(session, site, timeout)
    except _Failure as first:
        reason = first.reason
        if first.transient and retries:
            # The happy path above skips tenacity's bookkeeping, which costs more than the
            # check itself at thousands a second; only retries pay for it.
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception(lambda e: isinstance(e, _Failure) and e.transient),
                    stop=stop_after_attempt(retries),
                    wait=wait_exponential(multiplier=RETRY_WAIT, max=1),
                    before=_pause_before_first_retry,
                    reraise=True,
                ):
                    with attempt:
                        started = time.perf_counter()
                        status_code = await _get_status(session, site, timeout)
                        reason = None
            except _Failure as last:
                reason = last.reason
    # The timer also counts the event loop's own delays: never report more than the timeout.
    elapsed_ms = min(int((time.perf_counter() - started) * 1000), int(timeout * 1000))
    if status_code is not None and status_code != site.expected_status_code:
        reason = f"HTTP {status_code}"
    return CheckResult(
        status=Status.DOWN if reason else Status.UP,
        checked_at=checked_at,
        response_time_ms=elapsed_ms,
        reason=reason,
        http_status=status_code,
    )


async def _pause_before_first_retry(state: RetryCallState) -> None:
    if state.attempt_number == 1:
        await asyncio.sleep(RETRY_WAIT)


@lru_cache(maxsize=16)
def _timeout(total: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total)
