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
an upgrade never leaves a browser with one old script beside a new one. Scripts and styles go
out gzipped to clients that accept it (1.77 MB of Swagger UI become 0.46 MB, ReDoc's 1.10 MB
0.33 MB), compressed once per process at level 9 and kept in memory: compressing per request
(``enable_compression()``) would cost some 40 ms of CPU per unauthenticated request, and
aiohttp's precompressed siblings (``FileResponse`` serves ``x.js.gz``) would need writing
beside the files of an installed package.
"""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
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
_COMPRESSIBLE = (".js", ".css")
_PAGE_HEADERS = {hdrs.CACHE_CONTROL: "no-cache"}
_ASSET_HEADERS = {**_PAGE_HEADERS, hdrs.VARY: hdrs.ACCEPT_ENCODING}

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


@dataclass(frozen=True)
class _Gzipped:
    body: bytes
    etag: str


@cache
def _gzipped(path: Path) -> _Gzipped:
    """The file gzipped, once per process; its ETag is the identity one's plus ``-gzip``."""
    st = path.stat()
    body = gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)
    return _Gzipped(body, f"{st.st_mtime_ns:x}-{st.st_size:x}-gzip")


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value admits gzip: listed (or ``*``) with a q above 0."""
    weights: dict[str, float] = {}
    for item in accept_encoding.lower().split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        weights[coding] = 1.0
        for name, _, value in (param.partition("=") for param in params):
            if name.strip() == "q":
                try:
                    weights[coding] = float(value)
                except ValueError:
                    weights[coding] = 0.0
    weight = next((weights[c] for c in ("gzip", "x-gzip", "*") if c in weights), 0.0)
    return weight > 0


@routes.get(ASSETS_PREFIX + "{name}")
@operation(hidden=True)
async def asset(request: web.Request) -> web.StreamResponse:
    path = ASSETS.get(request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound()
    if path.suffix not in _COMPRESSIBLE or not accepts_gzip(
        request.headers.get(hdrs.ACCEPT_ENCODING, "")
    ):
        return web.FileResponse(path, headers=_ASSET_HEADERS)
    packed = await asyncio.get_running_loop().run_in_executor(None, _gzipped, path)
    if any(tag.value in (packed.etag, "*") for tag in request.if_none_match or ()):
        return web.Response(status=304, headers={**_ASSET_HEADERS, hdrs.ETAG: f'"{packed.etag}"'})
    response = web.Response(body=packed.body, headers=_ASSET_HEADERS)
    response.content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response.headers[hdrs.CONTENT_ENCODING] = "gzip"
    response.etag = packed.etag
    return response
