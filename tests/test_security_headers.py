"""Headers on every answer: no sniffing, framing or referrers; a CSP; no caching of API data."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

API_CSP = "default-src 'none'; frame-ancestors 'none'"


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/sites", {}, 200),
        ("GET", "/healthz", {}, 200),
        ("GET", "/openapi.json", {}, 200),
        ("GET", "/sites", {"Authorization": ""}, 401),
        ("GET", "/sites/0", {}, 400),
        ("GET", "/nope", {}, 404),
        ("PUT", "/sites", {}, 405),
    ],
    ids=["data", "healthz", "spec", "401", "400", "404", "405"],
)
async def test_json_answers_are_locked_down_and_never_cached(
    client: TestClient, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    resp = await client.request(method, path, headers=headers)
    assert resp.status == status
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Content-Security-Policy"] == API_CSP
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_may_load_only_from_this_origin(client: TestClient, page: str) -> None:
    resp = await client.get(page)
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    directives = dict(
        d.strip().split(" ", 1) for d in resp.headers["Content-Security-Policy"].split(";")
    )
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    sources = " ".join(directives.values()).split()
    assert all(s.startswith("'") or s in ("data:", "blob:") for s in sources), sources


async def test_static_assets_are_not_marked_no_store(client: TestClient) -> None:
    resp = await client.get("/docs/assets/swagger-ui.css")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-cache"  # kept, revalidated by its ETag
    assert "ETag" in resp.headers
