"""``/openapi.json``, Swagger UI at ``/docs`` and ReDoc at ``/redoc``, all served offline.

The Swagger UI and ReDoc builds come from the ``drf-spectacular-sidecar`` package, which exists
to ship them as static files (its paths are the ones Django users reference, so they stay put).
Its ``__init__`` imports Django; uptimed only needs the files, so it finds the package directory
with ``importlib.util.find_spec``, which does not run that ``__init__``: Django is installed as
the sidecar's dependency but never imported.

The pages load only same-origin files: the two HTML pages and the init scripts live in
``api/static``, the rest is an allowlist of sidecar files under ``/docs/assets/``. The CSP that
enforces this is set in ``middleware.security_headers`` for every HTML answer.

Pages and assets may be cached but are revalidated on every use (``no-cache`` with an ETag), so
an upgrade never leaves a browser with one old script beside a new one.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from aiohttp import hdrs, web

from uptimed.api.openapi import build_spec, operation

_SIDECAR = "drf_spectacular_sidecar"
_OWN = Path(__file__).with_name("static")
ASSETS_PREFIX = "/docs/assets/"


def _sidecar_dir() -> Path:
    spec = importlib.util.find_spec(_SIDECAR)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "drf-spectacular-sidecar is not installed: /docs and /redoc need its files"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "static" / _SIDECAR


def _assets() -> Mapping[str, Path]:
    sidecar = _sidecar_dir()
    return MappingProxyType(
        {
            "swagger-ui-bundle.js": sidecar / "swagger-ui-dist" / "swagger-ui-bundle.js",
            "swagger-ui.css": sidecar / "swagger-ui-dist" / "swagger-ui.css",
            "favicon-32x32.png": sidecar / "swagger-ui-dist" / "favicon-32x32.png",
            "redoc.standalone.js": sidecar / "redoc" / "bundles" / "redoc.standalone.js",
            "swagger-init.js": _OWN / "swagger-init.js",
            "redoc-init.js": _OWN / "redoc-init.js",
        }
    )


ASSETS = _assets()
PAGES = {"/docs": _OWN / "swagger.html", "/redoc": _OWN / "redoc.html"}
# What ``docs_public`` opens to visitors without credentials: none of it holds data.
PATHS = frozenset(
    {"/openapi.json", *PAGES, *(page + "/" for page in PAGES)} | {ASSETS_PREFIX + n for n in ASSETS}
)
_PAGE_HEADERS = {hdrs.CACHE_CONTROL: "no-cache"}

routes = web.RouteTableDef()


@routes.get("/openapi.json")
@operation(hidden=True)
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(build_spec(request.app))


@routes.get("/docs")
@routes.get("/redoc")
@operation(hidden=True)
async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(
        PAGES[request.match_info.route.resource.canonical], headers=_PAGE_HEADERS
    )


@routes.get("/docs/")
@routes.get("/redoc/")
@operation(hidden=True)
async def page_with_slash(request: web.Request) -> web.StreamResponse:
    """``/docs/`` is ``/docs``. A redirect, not the page: the page's links are relative to
    ``/docs``. The Location is relative too (``../docs``), so a proxy's prefix is kept."""
    name = request.match_info.route.resource.canonical.strip("/")
    query = f"?{request.query_string}" if request.query_string else ""
    raise web.HTTPMovedPermanently(f"../{name}{query}")


@routes.get(ASSETS_PREFIX + "{name}")
@operation(hidden=True)
async def asset(request: web.Request) -> web.FileResponse:
    path = ASSETS.get(request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers=_PAGE_HEADERS)
