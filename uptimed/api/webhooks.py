"""Handlers for /webhooks: the Discord webhooks that hear about a site's transitions."""

from __future__ import annotations

from aiohttp import web

from uptimed.api.validation import parse_body, path_id
from uptimed.app_keys import CLOCK, STORE
from uptimed.models import WebhookIn

routes = web.RouteTableDef()


@routes.post("/webhooks")
async def create_webhook(request: web.Request) -> web.Response:
    data = await parse_body(request, WebhookIn)
    app = request.app
    webhook = await app[STORE].insert_webhook(data, now=app[CLOCK].now_ms())
    return web.json_response(webhook.model_dump(mode="json"))


@routes.get("/webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    webhooks = await request.app[STORE].list_webhooks()
    return web.json_response([w.model_dump(mode="json") for w in webhooks])


@routes.get("/webhooks/{site_id}")
async def site_webhooks(request: web.Request) -> web.Response:
    webhooks = await request.app[STORE].list_webhooks(path_id(request, "site_id"))
    return web.json_response([w.model_dump(mode="json") for w in webhooks])


@routes.delete("/webhooks/{id}")
async def delete_webhook(request: web.Request) -> web.Response:
    await request.app[STORE].delete_webhook(path_id(request))
    return web.json_response({"detail": "Webhook deleted successfully"})
