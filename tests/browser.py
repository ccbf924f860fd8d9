"""Headless Chromium driven over the DevTools protocol with aiohttp's WebSocket client.

Just enough of the protocol for the docs pages: navigate, evaluate JavaScript, type text, and
record every request the page makes and every CSP violation it reports. Chromium is Debian's
``chromium`` package (``.ci/install-chromium``); it is started with no background networking
and with a resolver that fails every host name except 127.0.0.1, so a page that tried to reach
the internet would show it as a failed request rather than quietly succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import eventually

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--window-size=1280,1024",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]

# Runs in every page before its own scripts: collects what the CSP blocked.
_RECORD_CSP = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__csp.push(e.effectiveDirective + ' ' + e.blockedURI));"
)


def chromium_binary() -> str:
    """The Chromium to use; a missing one fails the test (CI installs it, see .ci/run)."""
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    in_ci = os.environ.get("CI") == "true"
    pytest.fail(
        "chromium is not installed"
        + ("" if in_ci else ": run .ci/install-chromium (apt), or deselect with -m 'not browser'")
    )


class Page:
    """One browser tab."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._urls: dict[str, str] = {}
        self.requests: list[str] = []  # every URL the page asked for
        self.failed: dict[str, str] = {}  # URL -> why it got no answer ("csp": blocked by it)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self._ws:
            data = json.loads(msg.data)
            if "id" in data:
                self._pending.pop(data["id"]).set_result(data)
            elif data.get("method") == "Network.requestWillBeSent":
                url = data["params"]["request"]["url"]
                self._urls[data["params"]["requestId"]] = url
                self.requests.append(url)
            elif data.get("method") == "Network.loadingFailed":
                params = data["params"]
                url = self._urls.get(params["requestId"], "?")
                self.failed[url] = params.get("blockedReason") or params.get("errorText", "?")

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        await self._ws.send_json({"id": msg_id, "method": method, "params": params})
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise AssertionError(f"{method}: {answer['error']}")
        return answer["result"]

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, *, timeout: float = 20) -> Any:
        async def check() -> Any:
            return await self.evaluate(expression)

        return await eventually(check, timeout=timeout, interval=0.1)

    async def open(self, url: str) -> None:
        self.requests.clear()
        self.failed.clear()
        await self.send("Page.navigate", url=url)

    async def type(self, selector: str, text: str) -> None:
        """Click into an input and type, as a user would (React sees real input events)."""
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box[0],
                y=box[1],
                button="left",
                clickCount=1,
            )
        await self.send("Input.insertText", text=text)

    async def click(self, selector: str) -> None:
        await self.wait_for(f"!!document.querySelector({json.dumps(selector)})")
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._ws.close()


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Page]:
    """Start Chromium with a fresh profile and hand over its first tab, ready to record."""
    log = (profile / "chromium.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        chromium_binary(),
        *FLAGS,
        f"--user-data-dir={profile / 'profile'}",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    port_file = profile / "profile" / "DevToolsActivePort"
    try:

        async def devtools_port() -> int | None:
            if proc.returncode is not None:
                raise AssertionError(f"chromium exited {proc.returncode}; see {log.name}")
            lines = port_file.read_text().split() if port_file.exists() else []
            return int(lines[0]) if lines else None

        port = await eventually(devtools_port, timeout=30)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            tab = next(t for t in targets if t["type"] == "page")
            page = Page(await session.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0))
            try:
                for domain in ("Page", "Runtime", "Network"):
                    await page.send(f"{domain}.enable")
                await page.send("Emulation.setFocusEmulationEnabled", enabled=True)
                await page.send("Page.addScriptToEvaluateOnNewDocument", source=_RECORD_CSP)
                yield page
            finally:
                await page.close()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()
