"""/status in a real headless Chromium: at 375 and 1440 px, light and dark, with the network
limited to loopback. Each view is screenshotted, checked for overflow, for requests that left
the origin, for CSP reports, and by axe-core (no serious or critical violation).

Screenshots go to ``$UPTIMED_SCREENSHOTS`` if set (CI keeps that directory as an artefact),
else to the test's ``tmp_path``; the README's ``docs/status-page.png`` is the 1440 px light one.
axe-core comes from npm (``.ci/install-axe``, called by ``.ci/install-chromium``); a missing
copy fails the test, as a missing Chromium does.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from tests.browser import chromium
from tests.conftest import AppClient, ManualClock, Target
from tests.test_browser import assert_stayed_on_this_origin
from tests.test_status_page import NOW, _seed
from uptimed.config import Settings

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent.parent / ".ci" / "node_modules" / "axe-core" / "axe.min.js"
BACKGROUNDS = {"light": "rgb(246, 248, 250)", "dark": "rgb(13, 17, 23)"}
VIEWS = [(width, scheme) for width in (375, 1440) for scheme in ("light", "dark")]


def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"axe-core is not installed at {AXE}: run .ci/install-axe (npm)")
    return AXE.read_text()


def screenshot_dir(tmp_path: Path) -> Path:
    where = Path(os.environ.get("UPTIMED_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


async def test_status_page_in_chromium(
    start_app: AppClient, settings: Settings, target: Target, tmp_path: Path
) -> None:
    await _seed(settings, target)
    client = await start_app(
        settings.model_copy(
            update={
                "status_page_title": "Example Ltd status",
                "status_page_description": "Our public services, checked every minute.",
            }
        ),
        ManualClock(wall=NOW / 1000).clock(),
    )
    # A long name must wrap, not widen the page.
    resp = await client.post(
        "/sites",
        json={
            "url": target.url("/api"),
            "name": "Payments API (eu-west, primary cluster)",
            "public": True,
            "show_url": True,
            "check_interval_seconds": 86400,
        },
    )
    assert resp.status == 200
    axe = axe_source()
    shots = screenshot_dir(tmp_path)
    url = str(client.make_url("/status"))

    async with chromium(tmp_path) as page:
        for width, scheme in VIEWS:
            await page.send(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=900,
                deviceScaleFactor=1,
                mobile=width < 600,
            )
            await page.send(
                "Emulation.setEmulatedMedia",
                features=[{"name": "prefers-color-scheme", "value": scheme}],
            )
            await page.open(url)
            await page.wait_for("document.readyState === 'complete'")
            view = f"{width}px {scheme}"

            assert await page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") == (
                scheme == "dark"
            ), view
            background = await page.evaluate(
                "getComputedStyle(document.documentElement).backgroundColor"
            )
            assert background == BACKGROUNDS[scheme], view  # the stylesheet's, per scheme
            assert await page.evaluate("document.documentElement.scrollWidth") <= width, view
            visible_bars = await page.evaluate(
                "[...document.querySelectorAll('.site:first-child .bar')]"
                ".filter(b => b.getBoundingClientRect().width > 0).length"
            )
            assert visible_bars == (30 if width < 600 else 90), view
            assert await page.evaluate("document.styleSheets.length") == 1, view  # status.css
            assert await page.evaluate("window.__csp") == [], view
            assert_stayed_on_this_origin(page, client)

            shot = await page.send(
                "Page.captureScreenshot", format="png", captureBeyondViewport=True
            )
            (shots / f"status-{width}-{scheme}.png").write_bytes(base64.b64decode(shot["data"]))

            await page.evaluate(axe)
            result = await page.evaluate(
                "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations"
                ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length,"
                " target: v.nodes[0].target})))"
            )
            serious = [v for v in result if v["impact"] in ("serious", "critical")]
            assert serious == [], f"{view}: {json.dumps(serious)}"

        # The refresh: pausable by the visitor (WCAG 2.2.1) and remembered across reloads...
        toggle = "document.getElementById('refresh-toggle')"
        assert await page.evaluate(f"{toggle}.hidden") is False
        await page.click("#refresh-toggle")
        assert await page.evaluate(f"{toggle}.getAttribute('aria-pressed')") == "true"
        assert await page.evaluate("sessionStorage.getItem('uptimed-status-refresh')") == "paused"
        await page.click("#refresh-toggle")
        assert await page.evaluate(f"{toggle}.textContent") == "Pause auto-refresh"
        # ... and running: 61 s of the page's virtual time later, it is a new document.
        await page.evaluate("window.__before = true")
        await page.send("Emulation.setVirtualTimePolicy", policy="advance", budget=61_000)
        await page.wait_for("window.__before === undefined")
        assert_stayed_on_this_origin(page, client)

    # Without JavaScript: the <noscript> meta refresh is live, and no dead button shows.
    (tmp_path / "nojs").mkdir()
    async with chromium(tmp_path / "nojs") as page:
        await page.send("Emulation.setScriptExecutionDisabled", value=True)
        await page.open(url)
        await page.wait_for("document.readyState === 'complete'")
        assert (
            await page.evaluate("document.querySelector('meta[http-equiv=refresh]')?.content")
            == "60"
        )
        assert await page.evaluate("document.getElementById('refresh-toggle').hidden") is True
        assert await page.evaluate("document.querySelectorAll('.bar').length") == 270
