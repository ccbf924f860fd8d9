"""The API's web server: aiohttp's, with three defences ``web.run_app`` does not have.

- **A connection cap.** Every connection holds a file descriptor, and so does every check. Without
  a cap, idle connections held against the port (a slowloris, or just many clients) take the last
  descriptors and every check fails with "Too many open files". So at most ``max_connections``
  are served at once (default: a quarter of the soft ``RLIMIT_NOFILE``, read at start); one more
  is answered 503 and closed at once, and the refusals are logged at most once a minute.
- **A header timeout.** A connection must send its request headers within ``header_timeout``
  seconds of opening, or of the previous answer; an idle keep-alive connection is closed after as
  long. aiohttp's ``keepalive_timeout`` does exactly this since 3.14.4 (its timer starts when the
  connection opens and closes it unless a whole request has arrived), so it is that setting.
- **Quiet, JSON answers to malformed HTTP.** aiohttp answers a request it cannot parse with a
  plain-text 400 that quotes the request and logs an ERROR traceback: anyone can flood the log
  without logging in. Here it is ``{"detail": ...}`` (400, or 431 for oversized lines or too many
  headers), quoting nothing, and logs nothing.

aiohttp has no hook for the cap or for its error answers, so the listening socket is opened here
with a protocol factory of our own (aiohttp's ``RequestHandler``, subclassed); the app still runs
in aiohttp's ``AppRunner`` (startup, cleanup, shutdown). A request body has no time limit of its
own: a slow body holds one of the capped connections, never a check's descriptor.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from contextlib import suppress
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong

from uptimed.api.middleware import add_security_headers, error_response
from uptimed.config import Settings
from uptimed.descriptors import api_connections, soft_limit

log = logging.getLogger(__name__)

REFUSAL_REPORT_SECONDS = 60.0
SHUTDOWN_TIMEOUT = 5.0
BACKLOG = 128  # aiohttp's; connections waiting to be accepted hold no descriptor of ours
# aiohttp's own limits, named so the error message can state them.
MAX_LINE_BYTES = 8190
MAX_HEADERS = 128

_REFUSAL_BODY = json.dumps(
    {"detail": "Too many open connections to uptimed; try again in a few seconds."}
).encode()
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n"
    b"Retry-After: 5\r\n"
    b"Cache-Control: no-store\r\n"
    b"X-Content-Type-Options: nosniff\r\n"
    b"Connection: close\r\n\r\n" + _REFUSAL_BODY
)


def malformed(exc: HttpProcessingError) -> tuple[int, str]:
    """Status and detail for a request aiohttp's parser rejected. aiohttp's messages quote the
    request, so none is used: a fixed sentence per kind of error."""
    if isinstance(exc, LineTooLong) or (
        isinstance(exc, BadHttpMessage) and exc.message == "Too many headers received"
    ):
        return 431, (
            f"Request line or headers too large: each line may be at most {MAX_LINE_BYTES} "
            f"bytes, and a request may have at most {MAX_HEADERS} headers."
        )
    return 400, (
        "Malformed HTTP request: expected an HTTP/1.1 request line and headers "
        "(this port does not speak HTTPS)."
    )


class _Refused(asyncio.Protocol):
    """A connection over the cap: a canned 503 and closed, before a byte is read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writer = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio subclass
        writer.write(_REFUSAL)
        writer.close()


class _Handler(web.RequestHandler):
    """aiohttp's protocol, which tells the cap when it closes and answers parse errors quietly."""

    __slots__ = ("_on_close",)

    def __init__(self, manager: web.Server, *, on_close: Callable[[], None], **kwargs: Any):
        super().__init__(manager, **kwargs)
        self._on_close = on_close

    def connection_lost(self, exc: BaseException | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            self._on_close()  # whatever happens, the slot is free again

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):  # a bug: aiohttp logs it with traceback
            return super().handle_error(request, status, exc, message)
        response = error_response(*malformed(exc))
        add_security_headers(response)
        response.force_close()
        return response


class ConnectionCap:
    """The protocol factory for ``loop.create_server``: aiohttp's handler for the first
    ``limit`` connections, a 503 beyond. Counted from accept to close."""

    def __init__(
        self, server: web.Server, *, limit: int, header_timeout: float, report_every: float
    ) -> None:
        self.limit = limit
        self.open = 0
        self._server = server
        self._header_timeout = header_timeout
        self._report_every = report_every
        self._unreported = 0
        self._report: asyncio.TimerHandle | None = None

    def __call__(self) -> asyncio.BaseProtocol:
        if self.open >= self.limit:
            self._refused()
            return _Refused()
        self.open += 1
        return _Handler(
            self._server,
            on_close=self._closed,
            loop=asyncio.get_running_loop(),
            keepalive_timeout=self._header_timeout,
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_LINE_BYTES,
            max_headers=MAX_HEADERS,
        )

    def _closed(self) -> None:
        self.open -= 1

    def _refused(self) -> None:
        self._unreported += 1
        if self._report is None:
            self._log_refusals()

    def _log_refusals(self) -> None:
        """One WARNING now, then one per ``report_every`` while refusals go on."""
        self._report = None
        if not self._unreported:
            return
        log.warning(
            "refused %d API connection(s) since the last report: %d are open, the limit "
            "(UPTIMED_MAX_CONNECTIONS); next report in %g s at the earliest",
            self._unreported,
            self.limit,
            self._report_every,
        )
        self._unreported = 0
        self._report = asyncio.get_running_loop().call_later(self._report_every, self._log_refusals)

    def close(self) -> None:
        if self._report is not None:
            self._report.cancel()
            self._report = None


async def listen(
    runner: web.AppRunner, settings: Settings, *, report_every: float = REFUSAL_REPORT_SECONDS
) -> tuple[asyncio.Server, ConnectionCap]:
    """Listen on the configured address with the cap; ``runner`` must be set up."""
    assert runner.server is not None, "runner.setup() first"
    limit = settings.max_connections or api_connections(soft_limit())
    cap = ConnectionCap(
        runner.server,
        limit=limit,
        header_timeout=settings.header_timeout_seconds,
        report_every=report_every,
    )
    listener = await asyncio.get_running_loop().create_server(
        cap, settings.host, settings.port, backlog=BACKLOG
    )
    return listener, cap


async def serve(app: web.Application, settings: Settings) -> None:
    """Run ``app`` until SIGINT or SIGTERM (aiohttp's ``GracefulExit``), then clean up."""
    runner = web.AppRunner(app, handle_signals=True, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    listener: asyncio.Server | None = None
    cap: ConnectionCap | None = None
    try:
        listener, cap = await listen(runner, settings)
        await asyncio.Event().wait()
    finally:
        if listener is not None:
            listener.close()
        if cap is not None:
            cap.close()
        await runner.cleanup()


def run(app: web.Application, settings: Settings, *, loop: asyncio.AbstractEventLoop) -> None:
    """``web.run_app`` for uptimed: the same start, stop and errors, with ``serve``'s defences.
    An exception at start (a port in use, a failed cleanup context) is raised after clean-up."""
    main = loop.create_task(serve(app, settings))
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            _cancel_remaining(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


def _cancel_remaining(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
