"""Handlers for /webhooks: the Discord webhooks that hear about a site's transitions."""

from __future__ import annotations

import logging

from aiohttp import web

from uptimed.alerting import muted, started_event, trial_event
from uptimed.api.middleware import ApiError
from uptimed.api.openapi import Link, operation
from uptimed.api.validation import parse_body, path_id
from uptimed.app_keys import CLOCK, DISPATCHER, NOTIFIER, NOTIFY_HTTP, SETTINGS, STORE
from uptimed.models import (
    Detail,
    HistoryRow,
    Site,
    SiteId,
    TrialResult,
    Webhook,
    WebhookId,
    WebhookIn,
    WebhookPatch,
)
from uptimed.notify import NotifyError
from uptimed.notify.discord import build_payload

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.post("/webhooks")
@operation(
    "Add a Discord webhook to a site",
    tags=["webhooks"],
    body=WebhookIn,
    response=Webhook,
    links={
        "test": Link(
            "POST /webhooks/{id}/test",
            "Send it a test message",
            parameters={"id": "$response.body#/id"},
        ),
        "site_webhooks": Link(
            "GET /webhooks/{id}",
            "Its site's webhooks",
            parameters={"id": "$response.body#/site_id"},
        ),
        "set_enabled": Link(
            "PATCH /webhooks/{id}",
            "Enable or disable it",
            parameters={"id": "$response.body#/id"},
            body={"enabled": "$response.body#/enabled"},
        ),
    },
)
async def create_webhook(request: web.Request) -> web.Response:
    """If the site has been checked already, the webhook is sent "Monitoring started" now
    (unless the site's alerts are muted)."""
    data = await parse_body(request, WebhookIn)
    app = request.app
    now = app[CLOCK].now_ms()

    def greeting(site: Site, latest: HistoryRow) -> str | None:
        if muted(site.alerts_muted_until, now):
            return None
        return started_event(site, latest).model_dump_json()

    webhook = await app[STORE].insert_webhook(data, now=now, greeting=greeting)
    if webhook.pending:
        app[DISPATCHER].wake()
    return web.json_response(webhook.model_dump(mode="json"))


@routes.get("/webhooks")
@operation("List all webhooks", tags=["webhooks"], response=list[Webhook])
async def list_webhooks(request: web.Request) -> web.Response:
    webhooks = await request.app[STORE].list_webhooks()
    return web.json_response([w.model_dump(mode="json") for w in webhooks])


# GET takes a site id where DELETE takes a webhook id (the documented API). It is one route
# pattern all the same: OpenAPI counts /webhooks/{site_id} and /webhooks/{id} as one path, and
# two aiohttp resources for one URL shape would each answer for only part of it.
@routes.get("/webhooks/{id}")
@operation(
    "List the webhooks of one site",
    tags=["webhooks"],
    path={"id": SiteId},
    response=list[Webhook],
)
async def site_webhooks(request: web.Request) -> web.Response:
    """Here ``id`` is a site id: the webhooks of that site."""
    webhooks = await request.app[STORE].list_webhooks(path_id(request))
    return web.json_response([w.model_dump(mode="json") for w in webhooks])


@routes.delete("/webhooks/{id}")
@operation("Delete a webhook", tags=["webhooks"], path={"id": WebhookId}, response=Detail)
async def delete_webhook(request: web.Request) -> web.Response:
    """Its undelivered messages are dropped, one being retried included: it hears no more."""
    webhook_id = path_id(request)
    webhook = await request.app[STORE].get_webhook(webhook_id)
    dropped = await request.app[STORE].delete_webhook(webhook_id)
    if dropped:
        request.app[DISPATCHER].dropped()
        log.info(
            "webhook deleted site=%d webhook=%d dropped=%d undelivered messages",
            webhook.site_id,
            webhook_id,
            dropped,
        )
    return web.json_response(Detail(detail="Webhook deleted successfully").model_dump(mode="json"))


@routes.patch("/webhooks/{id}")
@operation(
    "Enable or disable a webhook",
    tags=["webhooks"],
    path={"id": WebhookId},
    body=WebhookPatch,
    response=Webhook,
)
async def patch_webhook(request: web.Request) -> web.Response:
    """A webhook Discord refused for good (404, 401, 403) is disabled and takes no messages;
    ``{"enabled": true}`` takes it back into use, e.g. once its URL works again (a test message
    says whether it does). Every webhook with the same URL changes with it: to Discord they
    are one webhook. Messages it missed while disabled are not sent."""
    webhook_id = path_id(request)
    data = await parse_body(request, WebhookPatch)
    app = request.app
    webhook = await app[STORE].set_webhook_enabled(webhook_id, data.enabled, app[CLOCK].now_ms())
    log.info(
        "webhook %s site=%d webhook=%d (and every webhook with its URL)",
        "enabled" if data.enabled else "disabled",
        webhook.site_id,
        webhook.id,
    )
    return web.json_response(webhook.model_dump(mode="json"))


@routes.post("/webhooks/{id}/test")
@operation(
    "Send a test message now",
    tags=["webhooks"],
    path={"id": WebhookId},
    response=TrialResult,
    errors={502: "Discord did not accept the message; `detail` says what it answered."},
)
async def test_webhook(request: web.Request) -> web.Response:
    """Send a test message now, outside the outbox, and report what Discord answered."""
    app = request.app
    store = app[STORE]
    webhook = await store.get_webhook(path_id(request))
    site = await store.get_site(webhook.site_id)
    now = app[CLOCK].now_ms()
    payload = build_payload(trial_event(site, now))
    try:
        delivery = await app[NOTIFIER].send(
            app[NOTIFY_HTTP],
            webhook.discord_webhook_url,
            payload,
            timeout=app[SETTINGS].discord_timeout_seconds,
        )
    except NotifyError as e:
        await store.record_webhook_result(webhook.discord_webhook_url, now, str(e))
        log.warning("test message failed site=%d webhook=%d error=%r", site.id, webhook.id, str(e))
        raise ApiError(502, f"Test message not delivered: {e}") from None
    await store.record_webhook_result(webhook.discord_webhook_url, now, None)
    log.info(
        "test message delivered site=%d webhook=%d status=%d", site.id, webhook.id, delivery.status
    )
    result = TrialResult(detail="Test message delivered", discord_status=delivery.status)
    return web.json_response(result.model_dump(mode="json"))
