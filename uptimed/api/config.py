"""``POST /config/reload``: the config file's sites and webhooks, read again and applied (as
SIGHUP does), answered with what changed or with the file's error."""

from __future__ import annotations

from aiohttp import web

from uptimed.api.middleware import error_response
from uptimed.api.openapi import operation
from uptimed.api.validation import BadRequest
from uptimed.app_keys import SITES
from uptimed.declared import DeclarationError
from uptimed.sites import NoConfigFile, Reloaded

routes = web.RouteTableDef()


@routes.post("/config/reload")
@operation(
    "Reload the config file's sites and webhooks",
    tags=["config"],
    response=Reloaded,
    errors={
        400: "The file has an error (bad TOML, a bad field, a duplicate key, an unknown webhook"
        " name, an unset ${NAME}), named in one line; nothing was changed.",
        409: "uptimed was started without a config file: there is nothing to reload.",
    },
)
async def reload_config(request: web.Request) -> web.Response:
    """Makes the sites and webhooks declared in the config file match it, in one transaction,
    as SIGHUP does: new ones are created, changed ones changed (history kept), removed ones
    deleted with "Monitoring ended". Sites and webhooks made through the API are not touched.
    Settings other than sites and webhooks need a restart."""
    try:
        reloaded = await request.app[SITES].reload_file()
    except DeclarationError as e:
        raise BadRequest(str(e)) from None
    except NoConfigFile as e:
        return error_response(409, str(e))
    return web.json_response(reloaded.model_dump(mode="json"))
