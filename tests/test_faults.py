"""Faults of uptimed's own host, tried on the real process: a stepped wall clock and a host
out of file descriptors. Each must neither stop checks nor produce false alerts."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import resource
import shutil
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import libfaketime
import pytest
from aiohttp import web

from tests.conftest import Target, eventually, wait_out
from tests.daemon import Daemon, api, daemon_fixture  # noqa: F401
from tests.fake_discord import FakeDiscord, RateLimited, Recorded, ServerError, Stream


async def read_until(daemon: Daemon, pattern: str, timeout: float = 15) -> str:
    """The daemon's output up to the first line matching ``pattern`` (it is read as it comes)."""
    assert daemon.proc is not None and daemon.proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no line matching {pattern!r} in {timeout}s:\n{''.join(seen)}")
        line = (await asyncio.wait_for(daemon.proc.stdout.readline(), left)).decode()
        seen.append(line)
        if re.search(pattern, line):
            return "".join(seen)


def faketime_env(offset_file: Path) -> dict[str, str]:
    """libfaketime on the daemon: its wall clock is the real one plus the offset in the file,
    reread at every call; its monotonic clock is left alone, as an NTP step leaves it."""
    _, preload = libfaketime.get_reload_information()
    offset_file.write_text("+0")
    return {
        **preload,
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_NO_CACHE": "1",
        "DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


async def test_a_wall_clock_step_back_or_forward_neither_stops_nor_bunches_checks(
    daemon: Daemon, target: Target, tmp_path: Path
) -> None:
    offset = tmp_path / "faketime"
    daemon.env.update(faketime_env(offset))
    await daemon.start()
    status, site = await api(
        daemon,
        "POST",
        "/sites",
        {"url": target.url("/c"), "name": "c", "check_interval_seconds": 2},
    )
    assert status == 200 and isinstance(site, dict)
    await target.wait_hits("/c", 2)

    offset.write_text("-3600")  # an hour back: the next checks are an hour away on the wall
    await read_until(daemon, r"wall clock stepped by -3\d{3}\.\ds")
    before = len(target.hit_times("/c"))
    await target.wait_hits("/c", before + 2, timeout=6)  # checks go on every 2 s
    # ... and each is recorded: stamped after the site's last row, not lost on its key.
    _, rows = await api(daemon, "GET", f"/sites/{site['id']}/history")
    assert isinstance(rows, list) and len(rows) >= before + 2, rows
    stamps = [row["last_checked"] for row in rows]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)

    # An hour forward right after a check: every job is an hour overdue on the wall clock, and
    # would run at once; the next check must still come one interval after the last.
    last = (await target.wait_hits("/c", len(target.hit_times("/c")) + 1, timeout=4))[-1]
    offset.write_text("+0")
    await read_until(daemon, r"wall clock stepped by \+3\d{3}\.\ds")
    times = await target.wait_hits("/c", len(target.hit_times("/c")) + 1, timeout=4)
    gaps = [b - a for a, b in itertools.pairwise(times) if b > last]
    assert gaps and all(gap > 1.5 for gap in gaps), gaps

    code, out = await daemon.stop(signal.SIGTERM)
    assert code == 0 and "Traceback" not in out, out


@pytest.fixture
async def gated(aiohttp_server: Any) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A target whose ``/hang`` holds every request (and its socket) until the event is set."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/hang", hang)
    server = await aiohttp_server(app)
    yield str(server.make_url("/hang")), release
    release.set()


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def test_out_of_descriptors_is_a_fault_of_the_host_not_a_down_site(
    daemon: Daemon, target: Target, gated: tuple[str, asyncio.Event]
) -> None:
    hang_url, release = gated
    daemon.env.update({"DEFAULT_TIMEOUT_SECONDS": "120", "UPTIMED_CHECK_RETRIES": "0"})
    await daemon.start()
    assert daemon.proc is not None
    healthy = []
    for i in range(5):
        site = {"url": target.url(f"/ok{i}"), "name": f"ok{i}", "check_interval_seconds": 1}
        healthy.append((await api(daemon, "POST", "/sites", site))[1]["id"])  # type: ignore[index]
    for i in range(30):  # each holds a socket while its check hangs
        await api(daemon, "POST", "/sites", {"url": hang_url, "name": f"hang{i}"})
    for i in range(5):
        await target.wait_hits(f"/ok{i}", 2)

    # Hold the daemon below the descriptors it already has: every new socket fails (EMFILE).
    pid = daemon.proc.pid
    limits = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (open_files(pid) - 10, limits[1]))
    try:
        await read_until(daemon, r"health: checks: checks cannot run on this host: Too many open")
        hits = sum(len(target.hit_times(f"/ok{i}")) for i in range(5))
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
        release.set()

    async def health() -> tuple[int, Any]:
        async with aiohttp.ClientSession() as s, s.get(daemon.base + "/healthz") as r:
            return r.status, await r.json()

    status, body = await health()
    assert status == 503, body
    assert body["status"] == "failing" and "Too many open files" in body["detail"], body
    for site_id in healthy:  # no check was recorded as DOWN, no incident opened
        _, rows = await api(daemon, "GET", f"/sites/{site_id}/history?status=DOWN")
        assert rows == [], rows
        _, incidents = await api(daemon, "GET", f"/sites/{site_id}/incidents")
        assert incidents == [], incidents
    for i in range(5):  # and checks go on once descriptors are back
        await target.wait_hits(f"/ok{i}", len(target.hit_times(f"/ok{i}")) + 1)
    assert sum(len(target.hit_times(f"/ok{i}")) for i in range(5)) > hits


async def test_the_database_deleted_under_it_is_noticed_within_seconds(daemon: Daemon) -> None:
    await daemon.start()
    status, _ = await api(daemon, "POST", "/sites", {"url": "http://127.0.0.1:9/", "name": "x"})
    assert status == 200
    shutil.rmtree(daemon.cwd / "data")  # the database's directory, as an operator's rm -rf
    await read_until(daemon, r"health: database_file: .*uptimed\.db was deleted or replaced")
    async with aiohttp.ClientSession() as s, s.get(daemon.base + "/healthz") as r:
        body = await r.json()
        assert r.status == 503 and "was deleted or replaced" in body["detail"], body


async def healthz(daemon: Daemon) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(daemon.base + "/healthz") as r:
        return r.status, await r.json()


async def test_a_disk_that_refuses_writes_is_a_503_and_shows_on_healthz(
    daemon: Daemon, target: Target
) -> None:
    await daemon.start()
    assert daemon.proc is not None
    site = {"url": target.url("/w"), "name": "w", "check_interval_seconds": 1}
    assert (await api(daemon, "POST", "/sites", site))[0] == 200
    await target.wait_hits("/w", 2)

    # No file of the daemon may grow: every SQLite write fails (disk I/O error), reads work.
    pid = daemon.proc.pid
    limits = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, limits[1]))
    try:
        status, body = await api(daemon, "POST", "/sites", site)
        assert status == 503, body
        assert "cannot be used right now" in body["detail"], body  # type: ignore[index]
        status, body = await healthz(daemon)
        assert status == 503 and "database" in body["detail"], body
        assert (await api(daemon, "GET", "/sites"))[0] == 200  # reads still answer
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, limits)

    assert (await api(daemon, "POST", "/sites", site))[0] == 200

    async def healthy() -> bool:
        return (await healthz(daemon))[0] == 200

    await eventually(healthy)


async def test_alerts_go_out_while_the_disk_refuses_writes_and_are_recorded_once_it_takes_them(
    daemon: Daemon, target: Target, aiohttp_server: Any
) -> None:
    fake = await FakeDiscord().start(aiohttp_server)
    await daemon.start()
    assert daemon.proc is not None
    site = {"url": target.url("/d"), "name": "Shop", "check_interval_seconds": 1}
    site_id = (await api(daemon, "POST", "/sites", site))[1]["id"]  # type: ignore[index]
    hook = {"site_id": site_id, "discord_webhook_url": fake.url()}
    assert (await api(daemon, "POST", "/webhooks", hook))[0] == 200
    await fake.wait_for(1)

    async def nothing_pending() -> bool:
        return (await api(daemon, "GET", "/webhooks"))[1][0]["pending"] == 0  # type: ignore[index]

    await eventually(nothing_pending)

    pid = daemon.proc.pid
    limits = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, limits[1]))
    try:
        target.statuses["/d"] = 503
        await fake.wait_for(2, timeout=10)  # the DOWN alert, from memory
        assert (await healthz(daemon))[0] == 503
        target.statuses["/d"] = 200
        await fake.wait_for(3, timeout=10)  # and the recovery, in order
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, limits)
    titles = [b["embeds"][0]["title"] for b in fake.valid_bodies()]
    assert titles[1:] == ["🔴 Shop is DOWN", "🟢 Shop is UP"], titles

    async def recorded() -> Any:
        _, incidents = await api(daemon, "GET", f"/sites/{site_id}/incidents")
        return incidents if incidents and incidents[0]["ended_at"] else None  # type: ignore[index]

    incidents = await eventually(recorded)  # the held transitions are written, in order
    assert len(incidents) == 1 and incidents[0]["reason"] == "HTTP 503", incidents
    await eventually(nothing_pending)  # written as sent: the outbox does not send them again
    await wait_out(1.5)
    assert len(fake.received()) == 3
    assert fake.violations() == []


async def test_a_database_lock_after_discord_accepted_never_sends_the_alert_twice(
    daemon: Daemon, target: Target, aiohttp_server: Any
) -> None:
    """Another process (a backup, say) holds the database past the 5 s busy timeout just as
    Discord accepts the DOWN alert: the delivered mark waits for it; the alert is not resent."""
    fake = await FakeDiscord().start(aiohttp_server)
    await daemon.start()
    site = {"url": target.url("/l"), "name": "Shop", "check_interval_seconds": 1}
    site_id = (await api(daemon, "POST", "/sites", site))[1]["id"]  # type: ignore[index]
    hook = {"site_id": site_id, "discord_webhook_url": fake.url()}
    assert (await api(daemon, "POST", "/webhooks", hook))[0] == 200
    await fake.wait_for(1)

    holder = sqlite3.connect(daemon.cwd / "data" / "uptimed.db", isolation_level=None)
    locked = asyncio.Event()

    async def lock_then_accept(record: Recorded) -> None:
        if len(fake.received()) == 2:  # the DOWN alert
            holder.execute("BEGIN EXCLUSIVE")
            locked.set()

    fake.before_answer = lock_then_accept
    target.statuses["/l"] = 503
    try:
        await asyncio.wait_for(locked.wait(), 10)
        # Past the 5 s busy timeout the delivered mark fails, and is retried.
        await read_until(daemon, r"marking=delivered .*database is locked")
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    async def delivered() -> bool:
        hooks = (await api(daemon, "GET", "/webhooks"))[1]
        return hooks[0]["pending"] == 0  # type: ignore[index]

    await eventually(delivered, timeout=15)
    await wait_out(1.5)
    titles = [b["embeds"][0]["title"] for b in fake.valid_bodies()]
    assert titles == ["🟢 Monitoring started: Shop is UP", "🔴 Shop is DOWN"], titles
    code, out = await daemon.stop(signal.SIGTERM)
    assert code == 0 and "Traceback" not in out, out


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def test_discords_odd_waits_and_a_huge_answer_on_the_real_process(
    daemon: Daemon, target: Target, aiohttp_server: Any
) -> None:
    """A global 429 asking for 1e9 s, then -5 s and a 503 with Retry-After 0, then a 300 MiB
    answer: each wait is clamped (here to a backoff of 0.2..1 s), nothing spins, and the huge
    answer is cut after a few KiB without the process growing."""
    fake = await FakeDiscord().start(aiohttp_server)
    daemon.env.update(
        {
            "UPTIMED_DISCORD_BACKOFF_INITIAL_SECONDS": "0.2",
            "UPTIMED_DISCORD_BACKOFF_MAX_SECONDS": "1",
        }
    )
    await daemon.start()
    assert daemon.proc is not None
    url = fake.url()
    fake.script(
        url,
        RateLimited(retry_after=1e9, global_=True),
        *[RateLimited(retry_after=-5)] * 3,
        *[ServerError(status=503, retry_after=0)] * 3,
        Stream(status=500),
    )
    site = {"url": target.url("/q"), "name": "Shop", "check_interval_seconds": 3600}
    site_id = (await api(daemon, "POST", "/sites", site))[1]["id"]  # type: ignore[index]
    assert (
        await api(daemon, "POST", "/webhooks", {"site_id": site_id, "discord_webhook_url": url})
    )[0] == 200

    got = await fake.wait_for(9, timeout=20)  # 8 odd answers, then the 204
    assert [r.status for r in got][-1] == 204
    spent = got[-1].at - got[0].at
    assert 8 * 0.2 <= spent <= 8 * 1.0 + 3, spent  # each wait within the backoff's bounds
    streamed = got[7]
    assert streamed.disconnected and streamed.sent < 32 * 1024 * 1024, streamed.sent
    assert peak_rss_mib(daemon.proc.pid) < 200  # 300 MiB were offered

    async def delivered() -> bool:
        return (await api(daemon, "GET", "/webhooks"))[1][0]["pending"] == 0  # type: ignore[index]

    await eventually(delivered)
    code, out = await daemon.stop(signal.SIGTERM)
    assert code == 0 and "out of range" in out, out
