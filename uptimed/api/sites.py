"""Handlers for /sites: parse, call the sites service (reads: the store), serialise."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from uptimed.api.openapi import Link, operation
from uptimed.api.validation import BadRequest, first_error, parse_body, parse_query, path_id
from uptimed.app_keys import CLOCK, SITES, STORE
from uptimed.models import Detail, SiteId, SiteIn, SitePatch, SiteQuery, SiteView

routes = web.RouteTableDef()
_BADGE = {"site_id": "$response.body#/id"}


@routes.post("/sites")
@operation(
    "Add a site",
    tags=["sites"],
    body=SiteIn,
    response=SiteView,
    links={
        "add_webhook": Link(
            "POST /webhooks", "Add a webhook to this site", body={"site_id": "$response.body#/id"}
        ),
        "webhooks": Link(
            "GET /webhooks/{id}", "This site's webhooks", parameters={"id": "$response.body#/id"}
        ),
        "status_badge": Link(
            "GET /badge/{site_id}/status.svg", "A public site's status badge", parameters=_BADGE
        ),
        "uptime_badge": Link(
            "GET /badge/{site_id}/uptime.svg", "A public site's uptime badge", parameters=_BADGE
        ),
        "response_time_badge": Link(
            "GET /badge/{site_id}/response-time.svg",
            "A public site's response-time badge",
            parameters=_BADGE,
        ),
    },
)
async def create_site(request: web.Request) -> web.Response:
    """The first check runs within about a second, then one every check_interval_seconds
    (unless the site is created paused)."""
    data = await parse_body(request, SiteIn)
    return _answer(await request.app[SITES].add(data))


@routes.get("/sites")
@operation("List all sites", tags=["sites"], query=SiteQuery, response=list[SiteView])
async def list_sites(request: web.Request) -> web.Response:
    """A paused site keeps the status it had when it was paused."""
    query = parse_query(request, SiteQuery)
    sites = await request.app[STORE].list_site_views(
        now=request.app[CLOCK].now_ms(), status=query.status, paused=query.paused
    )
    return web.json_response([s.model_dump(mode="json") for s in sites])


@routes.get("/sites/{id}")
@operation("Get one site", tags=["sites"], path={"id": SiteId}, response=SiteView)
async def get_site(request: web.Request) -> web.Response:
    store, now = request.app[STORE], request.app[CLOCK].now_ms()
    return _answer(await store.get_site_view(path_id(request), now=now))


@routes.patch("/sites/{id}")
@operation("Change a site", tags=["sites"], path={"id": SiteId}, body=SitePatch, response=SiteView)
async def update_site(request: web.Request) -> web.Response:
    """The fields sent change, the others keep their values; null resets a field to its
    default. History, incidents and webhooks stay. A change to what is checked runs the next
    check at once and starts the interval there; `paused` stops or resumes checks and tells
    the site's webhooks."""
    site_id = path_id(request)
    patch = await parse_body(request, SitePatch)
    try:
        await request.app[SITES].update(site_id, patch)
    except ValidationError as e:
        raise BadRequest(first_error(e)) from None
    store, now = request.app[STORE], request.app[CLOCK].now_ms()
    return _answer(await store.get_site_view(site_id, now=now, latest=True))


@routes.delete("/sites/{id}")
@operation("Delete a site", tags=["sites"], path={"id": SiteId}, response=Detail)
async def delete_site(request: web.Request) -> web.Response:
    """Stops its checks and removes its history and webhooks; each webhook still gets a
    "Monitoring ended" message."""
    await request.app[SITES].remove(path_id(request))
    return web.json_response(Detail(detail="Site deleted successfully").model_dump(mode="json"))


def _answer(site: SiteView) -> web.Response:
    return web.json_response(site.model_dump(mode="json"))
