"""/docs and /redoc in a real headless Chromium, with the network limited to loopback.

Marked ``browser`` and left out of the default run (pyproject ``addopts``); ``.ci/run`` installs
Chromium and runs them. A missing Chromium fails them: they never skip.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient

from tests.browser import Page, chromium
from tests.conftest import PASSWORD, USER
from uptimed.api.openapi import build_spec
from uptimed.app import create_app
from uptimed.config import Settings

pytestmark = pytest.mark.browser


def _operation_ids() -> list[str]:
    """Every operation of the real app's spec: the pages must render each one."""
    app = create_app(Settings(valid_password="x", _env_file=None))
    spec = build_spec(app)
    return sorted(op["operationId"] for item in spec["paths"].values() for op in item.values())


OPERATIONS = _operation_ids()


# ReDoc's bundle shows Redocly's logo from its CDN beside "API docs by Redocly". The page's
# CSP (img-src 'self' data:) blocks it before any connection, and ReDoc then hides the image.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def assert_stayed_on_this_origin(
    page: Page, client: TestClient, *, blocked: frozenset[str] = frozenset()
) -> None:
    """Every request went to uptimed (or was data:/blob:), except ``blocked``, which the CSP
    stopped; and no request failed otherwise."""
    origin = urlsplit(str(client.make_url("/"))).netloc
    for url in page.requests:
        parts = urlsplit(url)
        assert parts.scheme in ("data", "blob") or parts.netloc == origin or url in blocked, url
    assert page.failed == dict.fromkeys(blocked, "csp")


async def test_swagger_ui_renders_every_operation_and_try_it_out_works(
    client: TestClient, tmp_path: Path
) -> None:
    resp = await client.post("/sites", json={"url": "http://127.0.0.1:9/", "name": "From docs"})
    assert resp.status == 200

    async with chromium(tmp_path) as page:
        await page.open(str(client.make_url("/docs")))
        await page.wait_for(f"document.querySelectorAll('.opblock').length === {len(OPERATIONS)}")
        ids = await page.evaluate("[...document.querySelectorAll('.opblock')].map(e => e.id)")
        assert sorted(i.rsplit("-", 1)[1] for i in ids) == sorted(OPERATIONS)

        # Log in through the Authorize dialog, as a user does.
        await page.click(".auth-wrapper .btn.authorize")
        await page.wait_for("!!document.querySelector('.auth-container input[type=password]')")
        await page.type(".auth-container input[type=text]", USER)
        await page.type(".auth-container input[type=password]", PASSWORD)
        await page.click(".auth-btn-wrapper .btn.authorize")
        await page.click(".auth-btn-wrapper .btn-done")

        # Try it out: GET /sites from the page, with the credentials just entered.
        block = "#operations-sites-get_sites"
        await page.click(f"{block} .opblock-summary-control")
        await page.click(f"{block} .try-out__btn")
        await page.click(f"{block} .btn.execute")
        status = await page.wait_for(
            f"document.querySelector('{block} .live-responses-table tbody .response-col_status')"
            "?.textContent.trim()"
        )
        assert status == "200"
        body = await page.evaluate(
            f"document.querySelector('{block} .live-responses-table .microlight').textContent"
        )
        assert [site["name"] for site in json.loads(body)] == ["From docs"]

        assert await page.evaluate("window.__csp") == []
        assert_stayed_on_this_origin(page, client)


async def test_redoc_renders_every_operation(client: TestClient, tmp_path: Path) -> None:
    async with chromium(tmp_path) as page:
        await page.open(str(client.make_url("/redoc")))
        sections = await page.wait_for(
            "(() => { const s = [...document.querySelectorAll('[data-section-id^=\"operation/\"]')]"
            f"; return s.length === {len(OPERATIONS)} && s.map(e => e.dataset.sectionId) }})()"
        )
        assert sorted(s.removeprefix("operation/") for s in sections) == sorted(OPERATIONS)
        # The search box works: its index runs in a web worker, which the CSP must allow.
        await page.type("input[placeholder='Search...']", "history")
        found = await page.wait_for(
            "[...document.querySelectorAll('[data-role=\"search:results\"] li')]"
            ".map(e => e.dataset.itemId)"
        )
        assert "tag/history/operation/get_sites_id_history" in found

        assert await page.evaluate("window.__csp") == [f"img-src {REDOC_LOGO}"]
        assert_stayed_on_this_origin(page, client, blocked=frozenset({REDOC_LOGO}))
