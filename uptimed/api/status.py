"""``GET /status`` (HTML) and ``GET /status.json``: the public status page, no login needed.

Thin handlers: the data is built in ``web/status.py`` and kept by its ``StatusCache`` for at
most 10 s, rendered once per build (HTML and JSON, the HTML also gzipped). With no public site
the page is off: 404 with the API's ``{"detail": ...}``, for the HTML path too, so both say the
same and nothing suggests a page exists. The page loads only its own stylesheet and icon from
``/status/assets/``; its CSP allows this origin only, and no inline script or style.

The page reloads itself every 60 s through a small script with a pause button, not a bare meta
refresh: an unstoppable refresh moves a screen reader back to the top every minute (WCAG 2.2.1,
axe's ``meta-refresh``, critical). Without JavaScript a ``<noscript>`` meta refresh does it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import hdrs, web

from uptimed.api.docs import accepts_gzip
from uptimed.api.middleware import ApiError
from uptimed.api.openapi import operation
from uptimed.app_keys import CLOCK, RETENTION, SETTINGS, STATUS_CACHE, STORE
from uptimed.web import render, status
from uptimed.web.status import Rendered, StatusCache, StatusPage

ASSETS_PREFIX = "/status/assets/"
_STATIC = Path(status.__file__).with_name("static")
ASSETS = {name: _STATIC / name for name in ("status.css", "refresh.js", "icon.svg")}
PATHS = frozenset({"/status", "/status.json", *(ASSETS_PREFIX + name for name in ASSETS)})
# Only this origin, and of it only what the page uses: a stylesheet, a script, an icon.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
OFF = "No site is public: the status page is off until a site has public: true."
_PAGE_HEADERS = {hdrs.CACHE_CONTROL: "no-cache", hdrs.VARY: hdrs.ACCEPT_ENCODING}

routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    """Jinja2 with autoescaping (a site named ``<script>`` is text) and the page's cache."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("uptimed.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        filters=render.FILTERS,
        default_helpers=False,
    )
    env.globals.update(render.GLOBALS)
    app[STATUS_CACHE] = StatusCache(app[CLOCK])
    app.cleanup_ctx.append(_cache_ctx)
    app.router.add_routes(routes)


async def _cache_ctx(app: web.Application) -> AsyncIterator[None]:
    """Last in, so first out: a build in progress stops before the database closes."""
    yield
    await app[STATUS_CACHE].close()


async def _current(request: web.Request) -> Rendered:
    app = request.app
    settings = app[SETTINGS]
    template = aiohttp_jinja2.get_env(app).get_template("status.html")

    async def build() -> StatusPage | None:
        return await status.build(
            app[STORE],
            now=app[CLOCK].now_ms(),
            retention=app[RETENTION],
            title=settings.status_page_title,
            description=settings.status_page_description,
        )

    rendered = await app[STATUS_CACHE].get(build, lambda page: template.render(page=page))
    if rendered is None:
        raise ApiError(404, OFF)
    return rendered


@routes.get("/status")
@operation(
    "The public status page (HTML)",
    tags=["status page"],
    response=str,
    media_type="text/html",
    public=True,
    errors={404: "No site is public: the page is off."},
)
async def status_page(request: web.Request) -> web.Response:
    """The sites marked ``public``: state, uptime, 90 daily bars, 24 h response times and the
    last incidents. Built at most every 10 s; refreshes itself every 60 s."""
    rendered = await _current(request)
    headers = {**_PAGE_HEADERS, hdrs.CONTENT_SECURITY_POLICY: CSP}
    if accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, "")):
        headers[hdrs.CONTENT_ENCODING] = "gzip"
        body = rendered.html_gzip
    else:
        body = rendered.html
    return web.Response(body=body, content_type="text/html", charset="utf-8", headers=headers)


@routes.get("/status.json")
@operation(
    "The public status page's data",
    tags=["status page"],
    response=StatusPage,
    public=True,
    errors={404: "No site is public: the page is off."},
)
async def status_json(request: web.Request) -> web.Response:
    """The same data as ``/status``, for other tools; as fresh as the page (10 s at most)."""
    rendered = await _current(request)
    return web.Response(body=rendered.json, content_type="application/json")


@routes.get(ASSETS_PREFIX + "{name}")
@operation(hidden=True)
async def asset(request: web.Request) -> web.FileResponse:
    path = ASSETS.get(request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={hdrs.CACHE_CONTROL: "no-cache"})
