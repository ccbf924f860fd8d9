"""Public SVG badges of public sites, for READMEs and wikis: status, uptime, response time.

No login (the auth middleware lets these route patterns through), so a badge must say nothing
about a site that is not public: such a site, an unknown id and an id that is not a number all
get the same 404. Badges are cached for a minute (``Cache-Control: max-age=60``): image proxies
such as GitHub's camo then ask at most once a minute.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field

from uptimed import badges
from uptimed.api.middleware import ApiError
from uptimed.api.openapi import operation
from uptimed.api.validation import parse_query
from uptimed.app_keys import CLOCK, RETENTION, STORE
from uptimed.db import MAX_SQLITE_INT, NotFound, reports
from uptimed.models import WINDOW_RE, QueryModel, SiteView, UptimeWindow

STATUS = "/badge/{site_id}/status.svg"
UPTIME = "/badge/{site_id}/uptime.svg"
RESPONSE_TIME = "/badge/{site_id}/response-time.svg"
PATTERNS = frozenset({STATUS, UPTIME, RESPONSE_TIME})

MAX_AGE = 60
# The SVG may draw itself and nothing else: no script, no style sheet, no fetch.
BADGE_CSP = "default-src 'none'; script-src 'none'; frame-ancestors 'none'"
NOT_FOUND = "Site not found"
_WINDOW = "a window like 30m, 24h, 7d, 30d, 365d (1 to 99999 minutes, hours or days)"

routes = web.RouteTableDef()
PublicSiteId = Annotated[int, Field(ge=1, description="The id of a site marked public.")]


class UptimeBadgeQuery(QueryModel):
    window: Annotated[str, Field(pattern=WINDOW_RE)] = Field("30d", description=_WINDOW)


class ResponseTimeBadgeQuery(QueryModel):
    window: Annotated[str, Field(pattern=WINDOW_RE)] = Field("24h", description=_WINDOW)


_ERRORS = {404: f"`{NOT_FOUND}`: no such site, or it is not public (the same answer)."}


async def _public_site(request: web.Request) -> SiteView:
    raw = request.match_info["site_id"]
    site_id = int(raw) if raw.isascii() and raw.isdigit() else 0
    if not 1 <= site_id <= MAX_SQLITE_INT:
        raise ApiError(404, NOT_FOUND)
    try:
        site = await request.app[STORE].get_site_view(site_id, now=request.app[CLOCK].now_ms())
    except NotFound:
        raise ApiError(404, NOT_FOUND) from None
    if not site.public:
        raise ApiError(404, NOT_FOUND)
    return site


def _svg(label: str, value: tuple[str, str]) -> web.Response:
    return web.Response(
        text=badges.render(label, *value),
        content_type="image/svg+xml",
        headers={"Cache-Control": f"max-age={MAX_AGE}", "Content-Security-Policy": BADGE_CSP},
    )


async def _window(request: web.Request, site: SiteView, window: str) -> UptimeWindow:
    app = request.app
    [figures] = await reports.uptime(
        app[STORE], site, [window], now=app[CLOCK].now_ms(), retention=app[RETENTION]
    )
    return figures


@routes.get(STATUS)
@operation(
    "A public site's status as an SVG badge",
    description="up (green), down (red), pending or paused (grey). Cached for 60 s.",
    tags=["badges"],
    path={"site_id": PublicSiteId},
    response=str,
    media_type="image/svg+xml",
    public=True,
    errors=_ERRORS,
)
async def status_badge(request: web.Request) -> web.Response:
    site = await _public_site(request)
    return _svg("status", badges.status_value(site.status, paused=site.paused))


@routes.get(UPTIME)
@operation(
    "A public site's uptime over a window as an SVG badge",
    description="From 99.9 % brightgreen, from 99 % green, from 95 % yellow, else red; grey "
    "without data. Cached for 60 s.",
    tags=["badges"],
    path={"site_id": PublicSiteId},
    query=UptimeBadgeQuery,
    response=str,
    media_type="image/svg+xml",
    public=True,
    errors=_ERRORS,
)
async def uptime_badge(request: web.Request) -> web.Response:
    site = await _public_site(request)
    query = parse_query(request, UptimeBadgeQuery)
    figures = await _window(request, site, query.window)
    return _svg(f"uptime {query.window}", badges.uptime_value(figures.uptime_percent))


@routes.get(RESPONSE_TIME)
@operation(
    "A public site's average response time over a window as an SVG badge",
    description="Under 300 ms green, under 1 s yellow, else red; grey without data. Cached "
    "for 60 s.",
    tags=["badges"],
    path={"site_id": PublicSiteId},
    query=ResponseTimeBadgeQuery,
    response=str,
    media_type="image/svg+xml",
    public=True,
    errors=_ERRORS,
)
async def response_time_badge(request: web.Request) -> web.Response:
    site = await _public_site(request)
    query = parse_query(request, ResponseTimeBadgeQuery)
    figures = await _window(request, site, query.window)
    value = badges.response_time_value(figures.response_time_ms.avg)
    return _svg(f"response time {query.window}", value)
