"""``/openapi.json``: the API description, built on each request from the routes' declarations
(see ``api/openapi.py``). Public like ``/healthz``: it holds no data."""

from __future__ import annotations

from aiohttp import web

from uptimed.api.openapi import build_spec, operation

routes = web.RouteTableDef()


@routes.get("/openapi.json")
@operation(hidden=True)
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(build_spec(request.app))
