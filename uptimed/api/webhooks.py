"""Handlers for /webhooks: the Discord webhooks that hear about a site's transitions, or about
every site's (``site_id`` null).

A webhook declared in the config file, or any webhook of a declared site, is changed in the
file: DELETE and POST answer 409 (``ReadOnly``). PATCH ``enabled`` stays open to all: it is
delivery state (Discord refused the URL), not what the file declares."""

from __future__ import annotations

import logging

from aiohttp import web

from uptimed.alerting import muted, started_event, trial_event
from uptimed.api.middleware import ApiError
from uptimed.api.openapi import Link, operation
from uptimed.api.validation import parse_body, path_id
from uptimed.app_keys import CLOCK, CONFIG_PATH, DISPATCHER, NOTIFIER, NOTIFY_HTTP, SETTINGS, STORE
from uptimed.declared import ReadOnly
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
from uptimed.notify.discord import build_payload, every_site_trial_payload

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
_READ_ONLY = "Declared in the config file: change it there and reload; `detail` names the file."


def _site(webhook: Webhook) -> str:
    """The ``site=`` of a log line: the site's id, or ``all`` for a webhook of every site."""
    return "all" if webhook.site_id is None else str(webhook.site_id)


@routes.post("/webhooks")
@operation(
    "Add a Discord webhook to a site, or to every site",
    tags=["webhooks"],
    body=WebhookIn,
    response=Webhook,
    errors={409: "The site is declared in the config file: so are its webhooks."},
    links={
        "test": Link(
            "POST /webhooks/{id}/test",
            "Send it a test message",
            parameters={"id": "$response.body#/id"},
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
    (unless the site's alerts are muted). With `"site_id": null` it hears every site, those
    there now and those added later; a site's event goes once to each URL, so a site whose own
    webhook has the same URL gets one message, not two."""
    data = await parse_body(request, WebhookIn)
    app = request.app
    if data.site_id is not None and (key := await app[STORE].declared_key(data.site_id)):
        raise ReadOnly("Site", key, app.get(CONFIG_PATH))
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
    "List the webhooks that hear one site",
    tags=["webhooks"],
    path={"id": SiteId},
    response=list[Webhook],
)
async def site_webhooks(request: web.Request) -> web.Response:
    """Here ``id`` is a site id: that site's own webhooks and those of every site
    (``site_id`` null)."""
    webhooks = await request.app[STORE].list_webhooks(path_id(request))
    return web.json_response([w.model_dump(mode="json") for w in webhooks])


@routes.delete("/webhooks/{id}")
@operation(
    "Delete a webhook",
    tags=["webhooks"],
    path={"id": WebhookId},
    response=Detail,
    errors={409: _READ_ONLY},
)
async def delete_webhook(request: web.Request) -> web.Response:
    """Its undelivered messages are dropped, one being retried included: it hears no more."""
    webhook_id = path_id(request)
    webhook = await request.app[STORE].get_webhook(webhook_id)
    if webhook.source == "config":
        raise ReadOnly("Webhook", webhook.key, request.app.get(CONFIG_PATH))
    dropped = await request.app[STORE].delete_webhook(webhook_id)
    if dropped:
        request.app[DISPATCHER].dropped()
        log.info(
            "webhook deleted site=%s webhook=%d dropped=%d undelivered messages",
            _site(webhook),
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
        "webhook %s site=%s webhook=%d (and every webhook with its URL)",
        "enabled" if data.enabled else "disabled",
        _site(webhook),
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
    """Send a test message now, outside the outbox, and report what Discord answered. A
    webhook of every site gets a message that says so; one of a site names the site."""
    app = request.app
    store = app[STORE]
    webhook = await store.get_webhook(path_id(request))
    now = app[CLOCK].now_ms()
    if webhook.site_id is None:
        payload = every_site_trial_payload(now)
    else:
        payload = build_payload(trial_event(await store.get_site(webhook.site_id), now))
    try:
        delivery = await app[NOTIFIER].send(
            app[NOTIFY_HTTP],
            webhook.discord_webhook_url,
            payload,
            timeout=app[SETTINGS].discord_timeout_seconds,
        )
    except NotifyError as e:
        await store.record_webhook_result(webhook.discord_webhook_url, now, str(e))
        log.warning(
            "test message failed site=%s webhook=%d error=%r", _site(webhook), webhook.id, str(e)
        )
        raise ApiError(502, f"Test message not delivered: {e}") from None
    await store.record_webhook_result(webhook.discord_webhook_url, now, None)
    log.info(
        "test message delivered site=%s webhook=%d status=%d",
        _site(webhook),
        webhook.id,
        delivery.status,
    )
    result = TrialResult(detail="Test message delivered", discord_status=delivery.status)
    return web.json_response(result.model_dump(mode="json"))
