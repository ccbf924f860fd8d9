"""Scheduled checks end to end: the real app checks a real local target whose answers flip."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import AppClient, ManualClock, Target, eventually, wait_out
from uptimed.app_keys import STORE
from uptimed.config import Settings


async def add_site(client: TestClient, url: str, interval: int = 1, **extra: Any) -> int:
    resp = await client.post(
        "/sites", json={"url": url, "name": "t", "check_interval_seconds": interval, **extra}
    )
    assert resp.status == 200, await resp.text()
    return (await resp.json())["id"]


async def history(client: TestClient, site_id: int) -> list[dict[str, Any]]:
    return await (await client.get(f"/sites/{site_id}/history")).json()


async def wait_rows(
    client: TestClient, site_id: int, count: int, timeout: float = 10
) -> list[dict]:
    async def enough() -> list[dict]:
        rows = await history(client, site_id)
        return rows if len(rows) >= count else []

    return await eventually(enough, timeout=timeout)


async def test_down_and_recovery_are_recorded_with_reason(
    client: TestClient, target: Target
) -> None:
    site_id = await add_site(client, target.url())
    await wait_rows(client, site_id, 2)
    target.status = 503

    async def down() -> list[dict]:
        rows = await history(client, site_id)
        return rows if rows[-1]["status"] == "DOWN" else []

    rows = await eventually(down)
    assert rows[-1]["reason"] == "HTTP 503"
    down_since = rows[-1]["last_status_change"]
    assert down_since == rows[-1]["last_checked"]
    target.status = 200

    async def up_again() -> list[dict]:
        rows = await history(client, site_id)
        return rows if rows[-1]["status"] == "UP" else []

    rows = await eventually(up_again)
    statuses = [r["status"] for r in rows]
    assert statuses[0] == "INITIAL"
    first_down = statuses.index("DOWN")
    assert set(statuses[1:first_down]) == {"UP"}
    assert rows[-1]["last_status_change"] == rows[-1]["last_checked"]
    assert all(r["last_status_change"] == down_since for r in rows if r["status"] == "DOWN")


@pytest.mark.parametrize(
    ("setup", "reason"),
    [("timeout", "timeout after 0.5s"), ("refused", "connection refused"), ("status", "HTTP 500")],
)
async def test_failures_record_reason(
    start_app: AppClient, settings: Settings, target: Target, setup: str, reason: str
) -> None:
    client = await start_app(settings.model_copy(update={"default_timeout_seconds": 0.5}))
    url = target.url()
    if setup == "timeout":
        target.delay = 3
    elif setup == "refused":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{s.getsockname()[1]}/"
    else:
        target.status = 500
    site_id = await add_site(client, url, interval=60)
    rows = await wait_rows(client, site_id, 2)
    assert (rows[1]["status"], rows[1]["reason"]) == ("DOWN", reason)
    assert isinstance(rows[1]["response_time_ms"], int)


async def test_optimisation_0_appends_every_check(client: TestClient, target: Target) -> None:
    site_id = await add_site(client, target.url())
    rows = await wait_rows(client, site_id, 4)
    assert [r["status"] for r in rows[:4]] == ["INITIAL", "UP", "UP", "UP"]
    assert len({r["last_checked"] for r in rows}) == len(rows)


async def test_optimisation_1_keeps_one_row_per_status(
    start_app: AppClient, settings: Settings, target: Target
) -> None:
    client = await start_app(settings.model_copy(update={"optimisation": True}))
    site_id = await add_site(client, target.url("/opt"))

    await target.wait_hits("/opt", 3)

    async def settled() -> list[dict]:
        rows = await history(client, site_id)
        return (
            rows
            if len(rows) == 2 and rows[1]["last_checked"] > rows[1]["last_status_change"]
            else []
        )

    rows = await eventually(settled)
    assert [r["status"] for r in rows] == ["INITIAL", "UP"]
    target.status = 502

    async def down() -> list[dict]:
        rows = await history(client, site_id)
        return rows if rows[-1]["status"] == "DOWN" else []

    rows = await eventually(down)
    assert [r["status"] for r in rows] == ["INITIAL", "UP", "DOWN"]


async def test_a_hanging_site_delays_no_other_check(client: TestClient, target: Target) -> None:
    target.delays["/hang"] = 30  # longer than the 2 s timeout: every check of it times out
    await add_site(client, target.url("/hang"))
    await add_site(client, target.url("/fast"))

    times = await target.wait_hits("/fast", 5)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.7 < g < 1.3 for g in gaps), gaps


async def test_checks_keep_a_fixed_grid_despite_slow_answers(
    client: TestClient, target: Target
) -> None:
    target.delays["/slow"] = 0.4
    await add_site(client, target.url("/slow"))

    times = await target.wait_hits("/slow", 6, timeout=12)
    # Start n is n seconds after start 0: the 0.4 s answers do not push later checks back.
    drift = [abs((t - times[0]) - n) for n, t in enumerate(times[:6])]
    assert max(drift) < 0.2, drift


async def test_the_grid_starts_at_the_creation_stamp(client: TestClient, target: Target) -> None:
    """Check n is due n intervals after the ``created_at`` the API answered, even when the
    insert waited for the database: lateness counts from a time the user can see."""
    async with client.app[STORE].transaction():  # a long write holds the insert back 0.6 s
        creating = asyncio.create_task(add_site(client, target.url("/grid")))
        await asyncio.sleep(0.6)
    site_id = await creating
    created = (await (await client.get(f"/sites/{site_id}")).json())["created_at"]
    rows = await wait_rows(client, site_id, 4)  # INITIAL and three checks
    checks = [r for r in rows if r["status"] != "INITIAL"][:3]

    def ms(stamp: str) -> float:
        return datetime.fromisoformat(stamp).timestamp() * 1000

    # Check 0 is as late as the insert; checks 1 and 2 are back on the grid.
    offsets = [ms(r["last_checked"]) - ms(created) - 1000 * n for n, r in enumerate(checks)]
    assert offsets[0] >= 500, offsets
    assert all(0 <= o < 150 for o in offsets[1:]), offsets


@pytest.mark.parametrize(
    ("global_keep_alive", "site_keep_alive", "reused"),
    [(False, None, False), (False, True, True), (True, None, True), (True, False, False)],
    ids=["default-fresh", "site-on", "global-on", "site-off-overrides"],
)
async def test_keep_alive_global_and_per_site(
    start_app: AppClient,
    settings: Settings,
    target: Target,
    global_keep_alive: bool,
    site_keep_alive: bool | None,
    reused: bool,
) -> None:
    client = await start_app(settings.model_copy(update={"keep_alive": global_keep_alive}))
    body: dict[str, Any] = {"url": target.url("/ka"), "name": "ka", "check_interval_seconds": 1}
    if site_keep_alive is not None:
        body["keep_alive"] = site_keep_alive
    resp = await client.post("/sites", json=body)
    assert (await resp.json())["keep_alive"] == site_keep_alive

    async def three() -> list[dict[str, str]]:
        hits = [h for _, p, h in target.hits if p == "/ka"]
        return hits if len(hits) >= 3 else []

    hits = await eventually(three)
    # aiohttp asks the server to close when it will not reuse the connection.
    assert all((h.get("Connection", "").lower() == "close") is not reused for h in hits), hits
    ports = {h["X-Peer-Port"] for h in hits}
    assert len(ports) == (1 if reused else len(hits)), ports


async def test_a_check_outlasting_its_interval_is_named_once_a_minute(
    start_app: AppClient, settings: Settings, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(wall=time.time())  # the scheduler's grid runs on real time
    client = await start_app(
        settings.model_copy(update={"default_timeout_seconds": 5}), clock.clock()
    )
    target.delays["/slow"] = 4  # the runs due while a check is going are skipped
    site_id = await add_site(client, target.url("/slow"), interval=1)
    caplog.set_level(logging.INFO)

    def skip_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if "run skipped" in r.getMessage()]

    async def skipped(n: int) -> bool:
        return len(skip_lines()) >= n

    await eventually(lambda: skipped(1), timeout=5)
    await wait_out(2.2)  # two more runs come due and are skipped: the minute has not passed
    assert len(skip_lines()) == 1
    assert f"site={site_id} name='t'" in skip_lines()[0]
    clock.advance(61)
    await eventually(lambda: skipped(2), timeout=5)
    assert "skipped_since_last_report=" in skip_lines()[1]
    assert "skipped_since_last_report=1 " not in skip_lines()[1]  # the quiet ones are counted
    assert not [r for r in caplog.records if "maximum number of running" in r.getMessage()]
