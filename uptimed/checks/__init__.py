"""One check of one site. ``check_site`` returns a ``CheckResult`` and never raises for a down
site.

How a kind of check plugs in: a probe (``answer.Probe``) is one async function
``probe(session, site, timeout) -> Answer`` that makes one try, in one module of this package
(``http.py`` for http(s):// sites, ``tcp.py`` for tcp:// ones; ``tls.py`` reads the
certificate either saw). It raises ``errors.Failure`` when no usable answer came (with the
reason text, written in ``errors.py`` for every kind) and ``LocalFault`` when this host kept
the try from being made. ``_probe_for`` picks a site's probe; ``check_site`` owns what is the
same for every kind: the timing, the retries and the assertions (``assertions.py``) over the
answer, and hands on the certificate an answer carries.

Connection errors and timeouts are tried again (tenacity) before DOWN is believed, because a
single lost SYN should not wake a team up. An answer that fails an assertion is an answer and
is not retried.

A check that cannot be made for a reason on this host (no file descriptor left, no memory)
says nothing about the site: it raises ``LocalFault`` instead of returning a DOWN, so that a
monitor short of descriptors does not report every healthy site down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from uptimed.checks import http, tcp
from uptimed.checks.answer import Answer, Probe
from uptimed.checks.assertions import first_failure
from uptimed.checks.errors import Failure, LocalFault
from uptimed.models import CheckResult, Site, Status

__all__ = ["Answer", "LocalFault", "Probe", "check_site"]

RETRY_WAIT = 0.2  # seconds before the first retry; doubles after, at most 1 s


def _probe_for(site: Site) -> Probe:
    """The one place a site's kind picks its probe."""
    return tcp.probe if site.is_tcp else http.probe


async def check_site(
    session: aiohttp.ClientSession,
    site: Site,
    *,
    timeout: float,
    retries: int = 2,
    clock: Callable[[], float] = time.time,
) -> CheckResult:
    """Check ``site`` once (plus ``retries`` for network errors); UP when an answer came and
    every assertion holds. ``timeout`` is the default a site's ``timeout_seconds`` overrides.

    Raises ``LocalFault`` when this host, not the site, kept the check from being made."""
    checked_at = int(clock() * 1000)
    timeout = site.timeout(timeout)
    probe = _probe_for(site)
    started = time.perf_counter()
    reason: str | None = None
    answer: Answer | None = None
    try:
        answer = await probe(session, site, timeout)
    except Failure as first:
        reason = first.reason
        if first.transient and retries:
            # The happy path above skips tenacity's bookkeeping, which costs more than the
            # check itself at thousands a second; only retries pay for it.
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception(lambda e: isinstance(e, Failure) and e.transient),
                    stop=stop_after_attempt(retries),
                    wait=wait_exponential(multiplier=RETRY_WAIT, max=1),
                    before=_pause_before_first_retry,
                    reraise=True,
                ):
                    with attempt:
                        started = time.perf_counter()
                        answer = await probe(session, site, timeout)
                        reason = None
            except Failure as last:
                reason = last.reason
    # The timer also counts the event loop's own delays: never report more than the timeout.
    elapsed_ms = min(int((time.perf_counter() - started) * 1000), int(timeout * 1000))
    if answer is not None:
        reason = first_failure(site, answer, elapsed_ms)
    return CheckResult(
        status=Status.DOWN if reason else Status.UP,
        checked_at=checked_at,
        response_time_ms=elapsed_ms,
        reason=reason,
        http_status=None if answer is None else answer.status,
        certificate=None if answer is None else answer.certificate,
    )


async def _pause_before_first_retry(state: RetryCallState) -> None:
    if state.attempt_number == 1:
        await asyncio.sleep(RETRY_WAIT)
