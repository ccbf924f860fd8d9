"""Handlers for /sites: parse, call the store and the scheduler, serialise."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from uptimed.alerting import ended_event, paused_event
from uptimed.api.openapi import Link, operation
from uptimed.api.validation import BadRequest, first_error, parse_body, parse_query, path_id
from uptimed.app_keys import CLOCK, DISPATCHER, MONITOR, SCHEDULER, STORE
from uptimed.models import Detail, Site, SiteId, SiteIn, SitePatch, SiteQuery, SiteView
from uptimed.notify.discord import build_payload

routes = web.RouteTableDef()


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
    },
)
async def create_site(request: web.Request) -> web.Response:
    """The first check runs within about a second, then one every check_interval_seconds
    (unless the site is created paused)."""
    data = await parse_body(request, SiteIn)
    app = request.app
    site = await app[STORE].insert_site(data, now=app[CLOCK].now_ms())
    app[MONITOR].add(site)
    if site.paused:
        app[MONITOR].pause(site.id)
    else:
        app[SCHEDULER].schedule(site)
    return _answer(await app[STORE].get_site_view(site.id))


@routes.get("/sites")
@operation("List all sites", tags=["sites"], query=SiteQuery, response=list[SiteView])
async def list_sites(request: web.Request) -> web.Response:
    query = parse_query(request, SiteQuery)
    sites = await request.app[STORE].list_site_views(status=query.status, paused=query.paused)
    return web.json_response([s.model_dump(mode="json") for s in sites])


@routes.get("/sites/{id}")
@operation("Get one site", tags=["sites"], path={"id": SiteId}, response=SiteView)
async def get_site(request: web.Request) -> web.Response:
    return _answer(await request.app[STORE].get_site_view(path_id(request)))


@routes.patch("/sites/{id}")
@operation("Change a site", tags=["sites"], path={"id": SiteId}, body=SitePatch, response=SiteView)
async def update_site(request: web.Request) -> web.Response:
    """The fields sent change, the others keep their values; null resets a field to its
    default. History, incidents and webhooks stay. A change to what is checked runs the next
    check at once and starts the interval there; `paused` stops or resumes checks and tells
    the site's webhooks."""
    app = request.app
    site_id = path_id(request)
    patch = await parse_body(request, SitePatch)
    data = patched(await app[STORE].get_site(site_id), patch)
    now = app[CLOCK].now_ms()
    before, after = await app[STORE].update_site(
        site_id,
        data,
        now=now,
        paused_message=json.dumps(build_payload(paused_event(data, now, paused=True))),
        resumed_message=json.dumps(build_payload(paused_event(data, now, paused=False))),
    )
    await app[SCHEDULER].changed(before, after)
    if before.paused != after.paused:
        app[DISPATCHER].wake()
    return _answer(await app[STORE].get_site_view(site_id))


def patched(site: Site, patch: BaseModel) -> SiteIn:
    """The site's settings with the patch's fields applied (null: the field's default),
    validated as a whole, as POST would: a json_expected left without json_query is a 400."""
    values: dict[str, Any] = {name: getattr(site, name) for name in SiteIn.model_fields}
    for name in patch.model_fields_set:
        value = getattr(patch, name)
        if value is None:
            del values[name]
        else:
            values[name] = value
    try:
        return SiteIn.model_validate(values)
    except ValidationError as e:
        raise BadRequest(first_error(e)) from None


@routes.delete("/sites/{id}")
@operation("Delete a site", tags=["sites"], path={"id": SiteId}, response=Detail)
async def delete_site(request: web.Request) -> web.Response:
    """Stops its checks and removes its history and webhooks; each webhook still gets a
    "Monitoring ended" message."""
    app = request.app
    site = await app[STORE].get_site(path_id(request))
    now = app[CLOCK].now_ms()
    farewell = json.dumps(build_payload(ended_event(site, now)))
    await app[STORE].delete_site(site.id, farewell=farewell, now=now)
    app[SCHEDULER].unschedule(site.id)
    app[MONITOR].remove(site.id)
    app[DISPATCHER].wake()
    return web.json_response(Detail(detail="Site deleted successfully").model_dump(mode="json"))


def _answer(site: SiteView) -> web.Response:
    return web.json_response(site.model_dump(mode="json"))
