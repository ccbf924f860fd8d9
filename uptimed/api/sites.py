"""Handlers for /sites: parse, call the store and the scheduler, serialise."""

from __future__ import annotations

import json

from aiohttp import web

from uptimed.alerting import ended_event
from uptimed.api.validation import parse_body, path_id
from uptimed.app_keys import CLOCK, DISPATCHER, MONITOR, SCHEDULER, STORE
from uptimed.models import SiteIn
from uptimed.notify.discord import build_payload

routes = web.RouteTableDef()


@routes.post("/sites")
async def create_site(request: web.Request) -> web.Response:
    data = await parse_body(request, SiteIn)
    app = request.app
    site = await app[STORE].insert_site(data, now=app[CLOCK].now_ms())
    app[MONITOR].add(site)
    app[SCHEDULER].schedule(site)
    return web.json_response(site.model_dump(mode="json"))


@routes.get("/sites")
async def list_sites(request: web.Request) -> web.Response:
    sites = await request.app[STORE].list_sites()
    return web.json_response([s.model_dump(mode="json") for s in sites])


@routes.get("/sites/{id}")
async def get_site(request: web.Request) -> web.Response:
    site = await request.app[STORE].get_site(path_id(request))
    return web.json_response(site.model_dump(mode="json"))


@routes.delete("/sites/{id}")
async def delete_site(request: web.Request) -> web.Response:
    app = request.app
    site = await app[STORE].get_site(path_id(request))
    now = app[CLOCK].now_ms()
    farewell = json.dumps(build_payload(ended_event(site, now)))
    await app[STORE].delete_site(site.id, farewell=farewell, now=now)
    app[SCHEDULER].unschedule(site.id)
    app[MONITOR].remove(site.id)
    app[DISPATCHER].wake()
    return web.json_response({"detail": "Site deleted successfully"})
