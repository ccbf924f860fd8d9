"""Handlers for /sites: parse, call the sites service (reads: the store), serialise."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from uptimed.api.openapi import Link, operation
from uptimed.api.validation import BadRequest, first_error, parse_body, parse_query, path_id
from uptimed.app_keys import CLOCK, SITES, STORE
from uptimed.fields import HttpUrl
from uptimed.models import Detail, SiteId, SiteIn, SitePatch, SiteQuery, SiteView

routes = web.RouteTableDef()
_BADGE = {"site_id": "$response.body#/id"}

MAX_BULK_SITES = 1000
MAX_BULK_BYTES = 16 * 1024 * 1024  # 1,000 sites with headers and bodies outgrow the usual 1 MiB
MAX_SITE_WEBHOOKS = 50
MAX_EVERY_SITE_WEBHOOKS = 100
_DISCORD = "https://discord.com/api/v10/webhooks/123456789012345678/token"


class BulkSite(SiteIn):
    """A site of ``POST /sites/bulk``: what ``POST /sites`` takes, and its own webhooks."""

    webhooks: list[HttpUrl] = Field(
        default_factory=list,
        max_length=MAX_SITE_WEBHOOKS,
        examples=[[_DISCORD]],
        description="Discord webhook URLs made with the site, each hearing only it.",
    )


class BulkSites(BaseModel):
    """The object form of ``POST /sites/bulk``: sites, and webhooks that hear every site."""

    model_config = ConfigDict(strict=True, extra="ignore")

    sites: list[BulkSite] = Field(max_length=MAX_BULK_SITES)
    webhooks: list[HttpUrl] = Field(
        default_factory=list,
        max_length=MAX_EVERY_SITE_WEBHOOKS,
        examples=[[_DISCORD]],
        description="Discord webhook URLs that hear every site, present and future; a URL "
        "that a webhook of every site has already is not added again.",
    )


BulkList = Annotated[list[BulkSite], Field(min_length=1, max_length=MAX_BULK_SITES)]
_LIST = TypeAdapter(BulkList)
_OBJECT = TypeAdapter(BulkSites)


def _bulk_error(exc: ValidationError, *, listed: bool) -> str:
    """The first problem, named by the site's index: ``Field 'sites[3].name' is required.``"""
    err = exc.errors(include_url=False)[0]
    kind, loc, msg = err["type"], err["loc"], err["msg"]
    if kind == "json_invalid":
        return "Request body is not valid JSON."
    if listed:
        loc = ("sites", *loc)
    if loc in ((), ("sites",)) and kind != "missing":
        if kind in ("too_long", "too_short"):
            return f"Request body must hold 1 to {MAX_BULK_SITES} sites."
        return "Request body must be a JSON list of sites, or an object with sites."
    field = ""
    for part in loc:
        field += f"[{part}]" if isinstance(part, int) else f"{'.' if field else ''}{part}"
    if kind == "missing":
        return f"Field '{field}' is required."
    return f"Field '{field}': {msg[0].lower()}{msg[1:]}."


async def _parse_bulk(request: web.Request) -> BulkSites:
    body = await request.clone(client_max_size=MAX_BULK_BYTES).read()
    listed = body.lstrip()[:1] == b"["
    try:
        if listed:
            return BulkSites.model_construct(sites=_LIST.validate_json(body), webhooks=[])
        return _OBJECT.validate_json(body)  # no sites: an empty file's import (or webhooks only)
    except ValidationError as e:
        raise BadRequest(_bulk_error(e, listed=listed)) from None


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


@routes.post("/sites/bulk")
@operation(
    "Add many sites at once",
    tags=["sites"],
    body=BulkList | BulkSites,
    response=list[SiteView],
    errors={413: f"Request body over {MAX_BULK_BYTES // (1024 * 1024)} MiB."},
)
async def create_sites(request: web.Request) -> web.Response:
    """Up to 1,000 sites in one transaction: all are added, or, if any is invalid, none (the
    400 names the first problem by its index: `Field 'sites[3].name' is required.`). The body
    is a list of sites, each as POST /sites takes it plus its own `webhooks`, or an object
    `{"sites": [...], "webhooks": [...]}` whose `webhooks` hear every site (what `uptimed
    import` sends). The answer lists the sites made, in the order sent; each is checked as
    a site made by POST /sites is."""
    bulk = await _parse_bulk(request)
    sites = [(site, site.webhooks) for site in bulk.sites]
    views = await request.app[SITES].add_many(sites, bulk.webhooks)
    return web.json_response([_dump(view) for view in views])


# Without it GET, PATCH or DELETE /sites/bulk would reach /sites/{id} and answer that "bulk"
# is no id, where the method is what is wrong.
@routes.route("*", "/sites/bulk")
@operation(hidden=True)
async def bulk_other_methods(request: web.Request) -> web.Response:
    raise web.HTTPMethodNotAllowed(request.method, ["POST"])


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


def _dump(site: SiteView) -> dict[str, Any]:
    return site.model_dump(mode="json")
