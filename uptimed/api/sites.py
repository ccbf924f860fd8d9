"""Handlers for /sites: parse, call the store and the scheduler, serialise."""

from __future__ import annotations

import json

from aiohttp import web

from uptimed.alerting import ended_event
from uptimed.api.openapi import Link, operation
from uptimed.api.validation import parse_body, path_id
from uptimed.app_keys import CLOCK, DISPATCHER, MONITOR, SCHEDULER, STORE
from uptimed.models import Detail, Site, SiteId, SiteIn
from uptimed.notify.discord import build_payload

routes = web.RouteTableDef()


@routes.post("/sites")
@operation(
    "Add a site",
    tags=["sites"],
    body=SiteIn,
    response=Site,
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
    """The first check runs within about a second, then one every check_interval_seconds."""
    data = await parse_body(request, SiteIn)
    app = request.app
    site = await app[STORE].insert_site(data, now=app[CLOCK].now_ms())
    app[MONITOR].add(site)
    app[SCHEDULER].schedule(site)
    return web.json_response(site.model_dump(mode="json"))


@routes.get("/sites")
@operation("List all sites", tags=["sites"], response=list[Site])
async def list_sites(request: web.Request) -> web.Response:
    sites = await request.app[STORE].list_sites()
    return web.json_response([s.model_dump(mode="json") for s in sites])


@routes.get("/sites/{id}")
@operation("Get one site", tags=["sites"], path={"id": SiteId}, response=Site)
async def get_site(request: web.Request) -> web.Response:
    site = await request.app[STORE].get_site(path_id(request))
    return web.json_response(site.model_dump(mode="json"))


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
