"""Routes: ``/healthz`` is public, everything else sits behind Basic auth (see middleware)."""

from __future__ import annotations

from aiohttp import web

from uptimed.api import reports, sites, webhooks

PUBLIC_PATHS = frozenset({"/healthz"})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_routes(sites.routes)
    app.router.add_routes(reports.routes)
    app.router.add_routes(webhooks.routes)
