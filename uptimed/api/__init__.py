"""Routes: ``/healthz``, the status page (``/status``, ``/status.json``) and the badges of
public sites are public, the docs pages are public unless ``docs_public`` is off, ``/metrics``
only when ``metrics_public`` is on; everything else sits behind Basic auth (see middleware).
Every handler declares its OpenAPI operation (see ``api/openapi.py``)."""

from __future__ import annotations

from aiohttp import web

from uptimed.api import badges, config, docs, metrics, reports, sites, status, webhooks
from uptimed.api.openapi import operation
from uptimed.app_keys import CONNECTIVITY, HEALTH
from uptimed.models import Health

PUBLIC_PATHS = frozenset({"/healthz", *badges.PATTERNS}) | status.PATHS


@operation(
    "Health probe",
    tags=["health"],
    response=Health,
    public=True,
    errors={503: "uptimed cannot check or record right now; `problems` lists why."},
)
async def healthz(request: web.Request) -> web.Response:
    """No auth and no site data: for load balancers, container and systemd health checks. 503
    while checks cannot run or the database cannot be written, so the fault is seen; not for
    being offline (``connectivity``), which a restart cannot mend."""
    problems = request.app[HEALTH].problems()
    connectivity = request.app.get(CONNECTIVITY)
    offline = connectivity is not None and connectivity.offline
    if not problems:
        return web.json_response({"status": "ok", "connectivity": "offline" if offline else "ok"})
    body = Health(
        status="failing", problems=problems, connectivity="offline" if offline else "ok"
    ).model_dump(mode="json")
    return web.json_response({"detail": "; ".join(problems), **body}, status=503)


def public_paths(*, docs_public: bool, metrics_public: bool = False) -> frozenset[str]:
    """The paths (or route patterns, see the auth middleware) served without credentials."""
    paths = PUBLIC_PATHS | docs.PATHS if docs_public else PUBLIC_PATHS
    return paths | {metrics.PATH} if metrics_public else paths


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_routes(sites.routes)
    app.router.add_routes(reports.routes)
    app.router.add_routes(webhooks.routes)
    app.router.add_routes(config.routes)
    app.router.add_routes(metrics.routes)
    app.router.add_routes(badges.routes)
    app.router.add_routes(docs.routes)
    status.setup(app)
