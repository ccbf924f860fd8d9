"""``GET /metrics`` (Prometheus text format) and the middleware that counts API requests.

A scrape reads only the outbox's pending count from the database; the sites' names, paused
flags and counts are in memory (see ``metrics.py``). The answer is streamed (chunked): the
registry's families first, then the per-site ones, rendered on the loop a few thousand sites at
a time with a yield between chunks, so at 40,000 sites (11 MiB) no check or API request waits
more than a few ms for a scrape, and no whole answer is held in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from uptimed.api.openapi import operation
from uptimed.app_keys import CLOCK, METRICS, MONITOR, STORE
from uptimed.metrics import Metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PATH = "/metrics"
UNMATCHED = "unmatched"  # the route label of requests no route matched (404, bad method)

routes = web.RouteTableDef()


@routes.get(PATH)
@operation(
    "Prometheus metrics",
    description=(
        "The Prometheus text exposition format: per-site status, response time, TLS days left "
        "and checks by result; check duration and scheduler lateness histograms; skipped "
        "checks, history rows, Discord messages, API requests; process metrics. Needs the "
        "API's credentials unless the setting `metrics_public` is true."
    ),
    tags=["metrics"],
    response=str,
    media_type="text/plain",
)
async def scrape(request: web.Request) -> web.StreamResponse:
    app = request.app
    metrics = app[METRICS]
    head = metrics.registry_text(pending=await app[STORE].pending_count())
    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE_LATEST})
    await response.prepare(request)
    if request.method == "HEAD":  # aiohttp would send a streamed body to a HEAD too
        await response.write_eof()
        return response
    try:
        await response.write(head)
        monitor = app.get(MONITOR)
        if monitor is not None:
            await metrics.write_sites(
                response.write,
                monitor.states,
                monitor.certificates.expires_at,
                now_ms=app[CLOCK].now_ms(),
            )
        await response.write_eof()
    except ConnectionResetError:  # the scraper went away (a timeout): nothing more to say
        pass
    return response


def route_of(request: web.Request) -> str:
    """The matched route's pattern (``/sites/{id}``): bounded, unlike the raw path."""
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


def count_requests(
    metrics: Metrics,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Outermost middleware: sees the status the error middleware settled on, 401s included."""

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as e:  # a redirect or an error raised past the error layer
            metrics.request(route_of(request), request.method, e.status)
            raise
        metrics.request(route_of(request), request.method, response.status)
        return response

    return count
