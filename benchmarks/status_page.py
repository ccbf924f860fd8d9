"""Issue 13: ``GET /status`` with 100 public sites and a year of history, while the daemon checks.

``python -m benchmarks.status_page [--sites 100] [--seconds 60] [--clients 4] [--interval 10]``

1. **Fill**: ``history_bench.fill`` writes a year of simulated checks per site (raw rows for 30
   days at one a minute, minute/hour/day rollups, every incident); then every site is public and
   checks a local target every ``--interval`` seconds.
2. **Build**: in-process, ``web.status.build`` and the page's render, each timed five times (the
   cost of one cache miss, which ``StatusCache`` pays in the background under steady traffic).
3. **Serve**: the real daemon (a child process) serves the file and checks the sites; ``--clients``
   clients ask for ``/status`` (gzip, as browsers do) back to back, plus one ``/status.json`` a
   second; latencies to the last byte, p50/p99/max. The goal is p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import aiohttp_jinja2

from benchmarks.history_bench import (
    CREDENTIALS,
    TARGET_SCRIPT,
    Child,
    Plan,
    daemon_env,
    fill,
    free_port,
    pct,
    wait_http,
)
from uptimed.app import create_app
from uptimed.config import Settings
from uptimed.db import Store
from uptimed.db.maintenance import Retention
from uptimed.web import status

RAW_DAYS = 30
GOAL_P99_MS = 50.0


def say(text: str) -> None:
    print(text, flush=True)


async def build_phase(db: Path, now: int) -> dict[str, float]:
    """Milliseconds of one build (queries) and one render (HTML, gzip, JSON), best and worst."""
    app = create_app(Settings(valid_password="x", _env_file=None))  # only for its Jinja env
    template = aiohttp_jinja2.get_env(app).get_template("status.html")
    store = await Store.open(db)
    builds, renders, size = [], [], 0
    try:
        for _ in range(5):
            t0 = time.perf_counter()
            page = await status.build(
                store,
                now=now,
                retention=Retention(raw_days=RAW_DAYS),
                title="Status",
                description="",
            )
            builds.append((time.perf_counter() - t0) * 1000)
            assert page is not None
            t0 = time.perf_counter()
            rendered = status._render(page, lambda p: template.render(page=p))
            renders.append((time.perf_counter() - t0) * 1000)
            size = len(rendered.html), len(rendered.html_gzip)
    finally:
        await store.close()
    return {
        "build_ms_min": round(min(builds), 1),
        "build_ms_max": round(max(builds), 1),
        "render_ms_min": round(min(renders), 1),
        "render_ms_max": round(max(renders), 1),
        "html_bytes": size[0],
        "html_gzip_bytes": size[1],
    }


async def serve_phase(db: Path, work: Path, *, seconds: float, clients: int) -> dict[str, object]:
    port, target_port = free_port(), free_port()
    target = Child(
        [sys.executable, "-c", TARGET_SCRIPT, str(target_port)],
        log=work / "target.log",
        env=daemon_env(db, RAW_DAYS),
        cwd=work,
    )
    raw = sqlite3.connect(db)
    raw.execute("UPDATE sites SET url = 'http://127.0.0.1:' || ? || '/site/' || id", (target_port,))
    raw.commit()
    raw.close()
    env = daemon_env(db, RAW_DAYS)
    daemon = Child(
        [sys.executable, "-m", "uptimed", "--host", "127.0.0.1", "--port", str(port)],
        log=work / "daemon.log",
        env=env,
        cwd=work,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(base + "/healthz", daemon, 60)
        await asyncio.sleep(3)  # the sites' first checks are under way
        auth = {"Authorization": "Basic " + base64.b64encode(CREDENTIALS).decode()}
        async with aiohttp.ClientSession(base, headers=auth) as session:
            t0 = time.perf_counter()
            async with session.get("/status") as resp:
                await resp.read()
                assert resp.status == 200, resp.status
            cold_ms = (time.perf_counter() - t0) * 1000
        page: list[float] = []
        data: list[float] = []
        end = time.monotonic() + seconds

        async def visitor(path: str, out: list[float], pause: float) -> None:
            headers = {"Accept-Encoding": "gzip"}
            async with aiohttp.ClientSession(base) as s:
                while time.monotonic() < end:
                    t = time.perf_counter()
                    async with s.get(path, headers=headers) as r:
                        await r.read()
                        assert r.status == 200, r.status
                    out.append((time.perf_counter() - t) * 1000)
                    if pause:
                        await asyncio.sleep(pause)

        await asyncio.gather(
            *(visitor("/status", page, 0.0) for _ in range(clients)),
            visitor("/status.json", data, 1.0),
        )
        async with aiohttp.ClientSession(base, headers=auth) as session:
            async with session.get("/sites?status=DOWN") as resp:
                down = len(await resp.json())
            async with session.get("/sites/1/history?limit=5") as resp:
                recent = await resp.json()
        return {
            "cold_status_ms": round(cold_ms, 1),
            "status": pct(page),
            "status_json": pct(data),
            "requests_per_s": round(len(page) / seconds, 1),
            "checking": {
                "sites_down": down,
                "site_1_last_checks": [r["last_checked"] for r in recent],
            },
        }
    finally:
        daemon.stop()
        target.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--interval", type=int, default=10, help="check interval while serving")
    parser.add_argument("--keep", action="store_true", help="keep the database's directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="uptimed-status-bench-"))
    db = work / "uptimed.db"
    now = int(time.time() * 1000)
    plan = Plan(sites=args.sites, raw_days=RAW_DAYS, interval_ms=60_000, days=365, seed=13, now=now)
    say(f"fill: {args.sites} sites, a year each, in {db}")
    filled = fill(db, plan, Retention(raw_days=RAW_DAYS))
    raw = sqlite3.connect(db)
    raw.execute("UPDATE sites SET public = 1, check_interval_seconds = ?", (args.interval,))
    raw.commit()
    raw.close()
    say(f"  {json.dumps(filled['rows'])} in {filled['fill_s']} s")
    built = asyncio.run(build_phase(db, int(time.time() * 1000)))
    say(f"build: {json.dumps(built)}")
    served = asyncio.run(serve_phase(db, work, seconds=args.seconds, clients=args.clients))
    say(f"serve: {json.dumps(served)}")
    p99 = served["status"]["p99"]  # type: ignore[index]
    say(f"p99 of /status {p99} ms: {'PASS' if p99 <= GOAL_P99_MS else 'FAIL'} (goal 50 ms)")
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
