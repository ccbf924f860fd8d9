"""``GET /metrics`` (Prometheus text format) and the middleware that counts API requests.

A scrape reads the sites' names and the outbox's pending count from the database, copies the
monitor's in-memory state in the loop (``Metrics.snapshot``), then renders the text in a
thread: at 40,000 sites rendering takes about a tenth of a second (see ``metrics.py``), which
on the loop would make every check due meanwhile that much late.
"""

from __future__ import annotations

import asyncio
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
async def scrape(request: web.Request) -> web.Response:
    app = request.app
    store, metrics = app[STORE], app[METRICS]
    sites = await store.site_labels()
    pending = await store.pending_count()
    monitor = app.get(MONITOR)
    if monitor is not None:
        await metrics.snapshot(
            sites,
            monitor.states,
            monitor.certificates.expires_at,
            now_ms=app[CLOCK].now_ms(),
            pending=pending,
        )
    body = await asyncio.to_thread(metrics.render)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


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
