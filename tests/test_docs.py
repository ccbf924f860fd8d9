"""/docs and /redoc: served offline from the sidecar package, public unless docs_public is off."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import AppClient
from uptimed.api.docs import ASSETS, ASSETS_PREFIX, PATHS, accepts_gzip
from uptimed.config import Settings

PAGES = ["/docs", "/redoc"]
NO_AUTH = {"Authorization": ""}


def references(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("page", PAGES)
async def test_pages_load_only_files_uptimed_serves(client: TestClient, page: str) -> None:
    resp = await client.get(page, headers=NO_AUTH)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    html = await resp.text()
    assert "<script>" not in html and " on" not in html  # no inline script or handler
    refs = references(html)
    assert refs, html
    for ref in refs:
        assert ref.startswith("docs/assets/"), ref  # relative: same origin, any prefix
        asset = await client.get("/" + ref, headers=NO_AUTH)
        assert asset.status == 200, ref
        assert asset.content_type in (
            "application/javascript",
            "text/javascript",
            "text/css",
            "image/png",
        )


@pytest.mark.parametrize("name", sorted(ASSETS))
async def test_assets_are_the_packaged_files(client: TestClient, name: str) -> None:
    resp = await client.get(ASSETS_PREFIX + name, headers=NO_AUTH)
    assert resp.status == 200
    assert await resp.read() == ASSETS[name].read_bytes()
    sidecar = "drf_spectacular_sidecar" in str(ASSETS[name])
    assert sidecar == (name not in ("swagger-init.js", "redoc-init.js"))


async def test_init_scripts_fetch_the_spec_relative_to_the_page(client: TestClient) -> None:
    for name in ("swagger-init.js", "redoc-init.js"):
        script = await (await client.get(ASSETS_PREFIX + name)).text()
        assert '"openapi.json"' in script
        assert not re.search(r"https?://", script), script


async def test_unknown_asset_is_a_json_404(client: TestClient) -> None:
    resp = await client.get(ASSETS_PREFIX + "swagger-ui-bundle.js.map")
    assert resp.status == 404
    assert "detail" in await resp.json()
    resp = await client.get(ASSETS_PREFIX + "..%2f..%2fuptimed.db")
    assert resp.status == 404


async def test_docs_need_the_login_when_docs_public_is_off(
    start_app: AppClient, settings: Settings
) -> None:
    client = await start_app(settings.model_copy(update={"docs_public": False}))
    for path in sorted(PATHS):
        resp = await client.get(path, headers=NO_AUTH)
        assert resp.status == 401, path
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="uptimed"'
        assert (await client.get(path)).status == 200, path
    assert (await client.get("/healthz", headers=NO_AUTH)).status == 200


def test_docs_public_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPTIMED_DOCS_PUBLIC", "false")
    assert Settings(_env_file=None).docs_public is False
    monkeypatch.delenv("UPTIMED_DOCS_PUBLIC")
    assert Settings(_env_file=None).docs_public is True


def test_django_is_never_imported() -> None:
    # The sidecar package's __init__ imports Django; uptimed only reads its files.
    code = (
        "import sys; from uptimed.app import create_app; from uptimed.config import Settings; "
        "create_app(Settings(valid_password='x', _env_file=None)); "
        "print(sorted(m for m in sys.modules if m.startswith(('django', 'drf_'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("page", PAGES)
async def test_a_trailing_slash_redirects_to_the_page(client: TestClient, page: str) -> None:
    """Relative, like the pages' own links, so a reverse proxy's prefix survives."""
    resp = await client.get(page + "/", headers=NO_AUTH, allow_redirects=False)
    assert resp.status == 301
    assert resp.headers["Location"] == ".." + page
    assert resp.headers["Cache-Control"] == "no-store"
    resp = await client.get(page + "/?x=1", headers=NO_AUTH, allow_redirects=False)
    assert resp.headers["Location"] == f"..{page}?x=1"
    resp = await client.get(page + "/", headers=NO_AUTH)  # followed, as a browser does
    assert (resp.status, resp.url.path, resp.content_type) == (200, page, "text/html")


BUNDLES = ["swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"]


@pytest.mark.parametrize("name", BUNDLES)
async def test_scripts_and_styles_go_out_gzipped(client: TestClient, name: str) -> None:
    raw = ASSETS[name].read_bytes()
    resp = await client.get(ASSETS_PREFIX + name, headers={"Accept-Encoding": "gzip"})
    assert resp.status == 200
    assert resp.headers["Content-Encoding"] == "gzip"
    assert resp.headers["Vary"] == "Accept-Encoding"
    assert int(resp.headers["Content-Length"]) < len(raw) * 0.31  # measured: 14-30%
    assert resp.content_type in ("application/javascript", "text/javascript", "text/css")
    assert await resp.read() == raw  # the client unpacked it

    plain = await client.get(ASSETS_PREFIX + name, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert int(plain.headers["Content-Length"]) == len(raw)
    assert plain.headers["Vary"] == "Accept-Encoding"
    assert plain.headers["ETag"] != resp.headers["ETag"]  # two representations, two tags
    refused = await client.get(ASSETS_PREFIX + name, headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
async def test_docs_files_are_cached_but_revalidated(client: TestClient, encoding: str) -> None:
    """no-cache: a browser keeps them and asks each time (a 304), so an upgrade is seen."""
    path = ASSETS_PREFIX + "swagger-ui-bundle.js"
    headers = {"Accept-Encoding": encoding}
    first = await client.get(path, headers=headers)
    assert first.headers["Cache-Control"] == "no-cache"
    again = await client.get(path, headers={**headers, "If-None-Match": first.headers["ETag"]})
    assert again.status == 304
    assert again.headers["Cache-Control"] == "no-cache"
    assert again.headers["ETag"] == first.headers["ETag"]
    for page in PAGES:
        assert (await client.get(page)).headers["Cache-Control"] == "no-cache"


async def test_small_and_binary_files_are_not_worth_compressing(client: TestClient) -> None:
    resp = await client.get(
        ASSETS_PREFIX + "favicon-32x32.png", headers={"Accept-Encoding": "gzip"}
    )
    assert "Content-Encoding" not in resp.headers
    assert await resp.read() == ASSETS["favicon-32x32.png"].read_bytes()


@pytest.mark.parametrize(
    ("header", "gzip"),
    [
        ("gzip, deflate, br", True),
        ("GZIP", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("*", True),
        ("gzip;q=0, *", False),
        ("*;q=0", False),
        ("gzip;q=0.000", False),
        ("identity", False),
        ("", False),
        ("gzip;q=x", False),
    ],
)
def test_accept_encoding_is_read_with_its_weights(header: str, gzip: bool) -> None:
    assert accepts_gzip(header) is gzip
