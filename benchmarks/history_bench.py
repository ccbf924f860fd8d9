"""Issue 6: the history, uptime and incident endpoints on a year of data, and what pruning costs.

``python benchmarks/history_bench.py [--quick] [--sites N] [--raw-days D] [--interval S] ...``
(see ``benchmarks/HISTORY.md``). Three phases, each printed as it runs:

1. **Fill.** ``Store.open`` creates the file (the daemon's migrations and pragmas); the rows go in
   straight through ``sqlite3``, not through the API. Per site a year of checks is simulated
   (lognormal response times, outages with reasons); written are the last ``--raw-days`` of
   checks, minute rollups for 2 days, hour rollups for 90 days and day rollups for the year (all
   aggregated from the same simulated checks, histograms by ``RT_BUCKETS``), every incident of
   the year, and the ``meta`` watermarks ``maintenance.rollup`` would leave.
2. **API.** The real daemon serves that file while its sites are checked every ``--interval``
   seconds against a local target, and its maintenance job runs every 60 s. A cheap probe
   (``GET /sites/{id}``, 20/s) shows the maintenance stalls; then N rounds of one request per
   endpoint in turn (random sites, warm page cache), then 8 concurrent clients on the two
   slowest. A second connection (``LockWatch``) sees the daemon's long write transactions and
   its maintenance runs, so each endpoint also gets a "quiet" p99 without the requests a run met.
3. **Pruning.** With the daemon stopped, in-process: ``maintenance.rollup`` and ``prune`` for the
   minute since the daemon's last run (its steady cost), then per simulated day a day of checks
   inserted as the daemon does (time order, sites interleaved), rollup, prune. Every
   ``Store.transaction()`` is timed: one longer than 50 ms holds up checks and API reads. The
   statements behind the slow figures are timed as written and as proposed (writes rolled back).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

try:
    import numpy as np
except ImportError:  # pragma: no cover
    sys.exit("history_bench needs numpy for the fill: .venv/bin/pip install numpy")

from uptimed import __version__
from uptimed.api import reports as api_reports
from uptimed.db import Store, maintenance, reports
from uptimed.db.maintenance import DAY, GRACE_MS, HOUR, MINUTE, Retention
from uptimed.db.schema import HIST_COLUMNS, RT_BUCKETS, rt_bucket_sql
from uptimed.models import HistoryQuery

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
GIB = 2**30
GOAL_P99_MS = 50.0
GOAL_FILE_BYTES = 4 * GIB
GOAL_TX_MS = 50.0
USER, PASSWORD = "bench", "bench-password"
CREDENTIALS = f"{USER}:{PASSWORD}".encode()
NB = len(HIST_COLUMNS)
RT_BOUNDS = np.array(RT_BUCKETS)
FIRST_CHECK_MS = 400  # a new site is checked this long after its creation
REASONS = ("HTTP 503", "timeout after 10s", "connection refused", "HTTP 500", "HTTP 502")
REASON_P = (0.4, 0.25, 0.15, 0.1, 0.1)
FULL = {"sites": 1000, "requests": 200, "probe_s": 70.0, "growth_days": 7}
QUICK = {"sites": 100, "requests": 20, "probe_s": 12.0, "growth_days": 1}
TARGET_SCRIPT = """
import sys
from aiohttp import web
async def ok(request):
    return web.Response(text="ok")
app = web.Application()
app.router.add_get("/{tail:.*}", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


# --- fill ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What the fill writes; ``now`` (epoch ms) is the end of the simulated year."""

    sites: int
    raw_days: float
    interval_ms: int
    days: int
    seed: int
    now: int

    @property
    def watermarks(self) -> tuple[int, int, int]:
        """(minute, hour, day): the end of what ``maintenance.rollup(now)`` has rolled."""
        minute = (self.now - GRACE_MS) // MINUTE * MINUTE
        hour = minute // HOUR * HOUR
        return minute, hour, hour // DAY * DAY

    def created_at(self, site_id: int) -> int:
        return self.now - self.days * DAY + site_id * 250  # created one after another


@dataclass
class SiteYear:
    t: np.ndarray  # checked_at, epoch ms, ascending
    status: np.ndarray  # 1 UP, 2 DOWN
    rt: np.ndarray  # response_time_ms
    reason: np.ndarray  # index into REASONS, -1 when UP
    since: np.ndarray  # status_since of each row
    incidents: list[tuple[int, int | None, str, int]]  # started, ended, reason, checks_failed


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted ``keys``: the first index of each run of equal keys, and each element's run."""
    change = np.empty(len(keys), bool)
    change[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=change[1:])
    return np.flatnonzero(change), np.cumsum(change) - 1


def simulate(rng: np.random.Generator, created_at: int, now: int, interval_ms: int) -> SiteYear:
    """A site's checks from creation to ``now``: a few outages a month, some sites much flakier."""
    n = (now - created_at - FIRST_CHECK_MS - 20) // interval_ms + 1
    t = created_at + FIRST_CHECK_MS + np.arange(n, dtype=np.int64) * interval_ms
    t += rng.integers(0, 20, n)  # scheduler jitter
    per_month = min(rng.lognormal(math.log(3), 0.8), 60)
    count = rng.poisson(per_month * n * interval_ms / (30 * DAY))
    starts = rng.integers(0, n, count)
    kind = rng.random(count)
    lengths = np.where(
        kind < 0.85,
        rng.geometric(0.4, count),  # a blip: 1-5 checks
        np.where(kind < 0.97, rng.geometric(0.05, count), rng.integers(60, 720, count)),
    )
    edges = np.zeros(n + 1, np.int32)
    np.add.at(edges, starts, 1)
    np.add.at(edges, np.minimum(starts + lengths, n), -1)
    status = np.where(np.cumsum(edges[:n]) > 0, 2, 1).astype(np.int8)
    first, run = _groups(status)
    since = t[first][run]
    down_runs = np.flatnonzero(status[first] == 2)
    run_reason = np.full(len(first), -1, np.int8)
    run_reason[down_runs] = rng.choice(len(REASONS), len(down_runs), p=REASON_P)
    reason = run_reason[run]

    median = min(max(rng.lognormal(math.log(80), 0.6), 5.0), 1500.0)
    rt = rng.lognormal(math.log(median), 0.3, n)
    spikes = rng.random(n) < 0.003
    rt[spikes] *= rng.uniform(3, 30, int(spikes.sum()))
    for i, name in enumerate(REASONS):
        mask = reason == i
        k = int(mask.sum())
        if not k:
            continue
        if name.startswith("timeout"):
            rt[mask] = 10_000 + rng.integers(0, 60, k)
        elif name == "connection refused":
            rt[mask] = rng.integers(0, 4, k)
        else:
            rt[mask] = rng.lognormal(math.log(median * 0.6), 0.3, k)
    rt = np.clip(rt, 0, 60_000).astype(np.int64)

    incidents = []
    ends = np.append(first[1:], n)
    for r in down_runs.tolist():
        start, end = int(first[r]), int(ends[r])
        ended = int(t[end]) if end < n else None
        incidents.append((int(t[start]), ended, REASONS[run_reason[r]], end - start))
    return SiteYear(t, status, rt, reason, since, incidents)


def aggregate(bucket: np.ndarray, status: np.ndarray, rt: np.ndarray) -> np.ndarray:
    """Rollup rows (bucket, checks, up, rt_sum, rt_max, h0..h19) of checks with sorted buckets."""
    if not len(bucket):
        return np.zeros((0, 5 + NB), np.int64)
    first, group = _groups(bucket)
    hist = np.bincount(
        group * NB + np.searchsorted(RT_BOUNDS, rt, side="right"), minlength=len(first) * NB
    ).reshape(-1, NB)
    return np.column_stack(
        [
            bucket[first],
            np.diff(np.append(first, len(bucket))),
            np.add.reduceat((status == 1).astype(np.int64), first),
            np.add.reduceat(rt, first),
            np.maximum.reduceat(rt, first),
            hist,
        ]
    )


def merge(rows: np.ndarray, size: int) -> np.ndarray:
    """Roll rollup rows up into buckets of ``size`` (as the hour -> day step does)."""
    if not len(rows):
        return rows
    bucket = rows[:, 0] // size * size
    first, _ = _groups(bucket)
    out = np.add.reduceat(rows, first, axis=0)
    out[:, 0] = bucket[first]
    out[:, 4] = np.maximum.reduceat(rows[:, 4], first)
    return out


def _rollup_insert(table: str) -> str:
    cols = "site_id, bucket, checks, up, rt_sum, rt_max, " + ", ".join(HIST_COLUMNS)
    return f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * (6 + NB))})"


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA journal_size_limit=67108864")
    return conn


async def create_schema(path: Path) -> None:
    store = await Store.open(path)
    await store.close()


def fill(path: Path, plan: Plan, retention: Retention) -> dict[str, Any]:
    """Write the year; returns row counts and timings."""
    asyncio.run(create_schema(path))
    conn = connect(path)
    conn.execute("PRAGMA synchronous=OFF")  # the fill only; the daemon runs NORMAL
    conn.execute("PRAGMA cache_size=-262144")
    minute_done, hour_done, day_done = plan.watermarks
    raw_from = plan.now - int(retention.raw_days * DAY)
    minute_from = plan.now - int(retention.minute_days * DAY)
    hour_from = plan.now - int(retention.hour_days * DAY)
    reason_obj = np.array([*REASONS, None], dtype=object)  # index -1 is None
    counts = dict.fromkeys(("history", "rollup_minute", "rollup_hour", "rollup_day"), 0)
    incidents: list[tuple[int, int, int | None, str, int]] = []
    t0 = time.monotonic()
    sim_s = 0.0
    step = max(1, plan.sites // 20)
    conn.execute("BEGIN")
    for site_id in range(1, plan.sites + 1):
        s0 = time.monotonic()
        rng = np.random.default_rng([plan.seed, site_id])
        year = simulate(rng, plan.created_at(site_id), plan.now, plan.interval_ms)
        hours = aggregate(year.t // HOUR * HOUR, year.status, year.rt)
        hours = hours[hours[:, 0] < hour_done]
        days = merge(hours[hours[:, 0] < day_done], DAY)
        hours = hours[hours[:, 0] >= hour_from]
        tail = year.t >= minute_from // MINUTE * MINUTE
        minutes = aggregate(year.t[tail] // MINUTE * MINUTE, year.status[tail], year.rt[tail])
        minutes = minutes[(minutes[:, 0] >= minute_from) & (minutes[:, 0] < minute_done)]
        raw = year.t >= raw_from
        sim_s += time.monotonic() - s0
        conn.execute(
            "INSERT INTO sites (id, url, name, check_interval_seconds, expected_status_code,"
            " created_at, status, status_since, last_checked) VALUES (?, ?, ?, ?, 200, ?, ?, ?, ?)",
            (
                site_id,
                f"http://127.0.0.1:9/site/{site_id}",
                f"Site {site_id}",
                plan.interval_ms // 1000,
                plan.created_at(site_id),
                "UP" if year.status[-1] == 1 else "DOWN",
                int(year.since[-1]),
                int(year.t[-1]),
            ),
        )
        conn.executemany(
            "INSERT INTO history (site_id, checked_at, status, response_time_ms, status_since,"
            " reason) VALUES (?, ?, ?, ?, ?, ?)",
            zip(
                itertools.repeat(site_id),
                year.t[raw].tolist(),
                year.status[raw].tolist(),
                year.rt[raw].tolist(),
                year.since[raw].tolist(),
                reason_obj[year.reason[raw]].tolist(),
                strict=False,
            ),
        )
        counts["history"] += int(raw.sum())
        for table, rows in (
            ("rollup_minute", minutes),
            ("rollup_hour", hours),
            ("rollup_day", days),
        ):
            conn.executemany(
                _rollup_insert(table),
                np.column_stack([np.full(len(rows), site_id), rows]).tolist(),
            )
            counts[table] += len(rows)
        incidents.extend((site_id, *inc) for inc in year.incidents)
        if site_id % 10 == 0:
            conn.execute("COMMIT")
            conn.execute("BEGIN")
        if site_id % step == 0 or site_id == plan.sites:
            el = time.monotonic() - t0
            eta = el / site_id * (plan.sites - site_id)
            print(
                f"  fill {site_id}/{plan.sites} sites, {counts['history'] / 1e6:.1f} M raw rows,"
                f" {el:.0f} s (simulation {sim_s:.0f} s), eta {eta:.0f} s",
                flush=True,
            )
    incidents.sort(key=lambda row: row[1])  # ids grow with time, as the daemon's do
    conn.executemany(
        "INSERT INTO incidents (site_id, started_at, ended_at, reason, checks_failed)"
        " VALUES (?, ?, ?, ?, ?)",
        incidents,
    )
    conn.executemany(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        [("rollup_minute", minute_done), ("rollup_hour", hour_done), ("rollup_day", day_done)],
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    counts["incidents"] = len(incidents)
    return {
        "rows": counts,
        "open_incidents": sum(1 for row in incidents if row[2] is None),
        "fill_s": round(time.monotonic() - t0, 1),
        "simulation_s": round(sim_s, 1),
        "now": plan.now,
        "watermarks": dict(
            zip(("rollup_minute", "rollup_hour", "rollup_day"), plan.watermarks, strict=True)
        ),
    }


def file_size(path: Path) -> dict[str, int]:
    wal = path.with_name(path.name + "-wal")
    main = path.stat().st_size if path.exists() else 0
    return {
        "main": main,
        "wal": wal.stat().st_size if wal.exists() else 0,
        "total": main + (wal.stat().st_size if wal.exists() else 0),
    }


def db_stats(path: Path, raw_rows: int) -> dict[str, Any]:
    """Bytes per table from ``dbstat`` (every page is read: a few seconds), and page fill."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    tables = {}
    for name, size, unused, pages in conn.execute(
        "SELECT name, SUM(pgsize), SUM(unused), COUNT(*) FROM dbstat GROUP BY name ORDER BY 2 DESC"
    ):
        tables[name] = {
            "bytes": size,
            "pages": pages,
            "fill_pct": round(100 * (1 - unused / size), 1),
        }
    page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    freelist = conn.execute("PRAGMA freelist_count").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    hist = tables.get("history", {}).get("bytes", 0)
    return {
        "tables": tables,
        "page_size": page_size,
        "page_count": page_count,
        "freelist_count": freelist,
        "history_bytes_per_raw_row": round(hist / raw_rows, 1) if raw_rows else None,
    }


# --- processes -------------------------------------------------------------------------------


def say(text: str) -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Child:
    """A process this benchmark started; ``stop()`` ends it by its pid (SIGTERM, then SIGKILL)."""

    def __init__(self, argv: list[str], *, log: Path, env: dict[str, str], cwd: Path) -> None:
        self.argv = argv
        self.spawned = time.monotonic()
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd
            )
        self.log = log

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def daemon_env(db: Path, raw_days: float) -> dict[str, str]:
    """A clean environment: nothing of the caller's uptimed settings leaks in."""
    drop = ("UPTIMED_", "DATABASE_URL", "VALID_", "RATE_", "OPTIMISATION", "AUTH_FAILURE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        VALID_USERNAME=USER,
        VALID_PASSWORD=PASSWORD,
        DATABASE_URL=f"sqlite:///{db.resolve()}",  # an absolute path: sqlite:////abs/path.db
        RATE_LIMIT="100000000",
        UPTIMED_LOG_LEVEL="WARNING",
        UPTIMED_HISTORY_RETENTION_DAYS=str(raw_days),
    )
    return env


async def wait_http(url: str, child: Child, timeout: float) -> float:
    """Seconds from spawn to the first 200 at ``url``."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.argv[0]} exited: {child.tail()}")
            with suppress(aiohttp.ClientError, TimeoutError):
                async with s.get(url, timeout=aiohttp.ClientTimeout(total=1)) as r:
                    if r.status == 200:
                        return time.monotonic() - child.spawned
            await asyncio.sleep(0.05)
    raise RuntimeError(f"no answer from {url} within {timeout:g} s: {child.tail()}")


class LockWatch(threading.Thread):
    """Watches the daemon from a second connection: its write transactions and maintenance runs.

    Every 20 ms it takes SQLite's write lock (``BEGIN IMMEDIATE``, then ``ROLLBACK`` at once): how
    long that waits is how long a daemon transaction held the lock, to within SQLite's busy-handler
    sleeps (up to 100 ms). It also reads the ``rollup_minute`` watermark: its change marks the
    commit of a maintenance run's first transaction, and the chain of long waits around that mark
    (gaps under a second) is the run. The daemon's reads share its one connection with its
    transactions, so those are also the moments its API waits. Costs the daemon at most a
    busy-handler sleep now and then.
    """

    GAP_S = 1.0

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.done = threading.Event()
        self.waits: list[tuple[float, float]] = []  # monotonic start and end of a wait > 20 ms
        self.marks: list[float] = []  # when the rollup_minute watermark moved
        self.runs: list[tuple[float, float]] = []  # maintenance runs, after stop()
        self.stopped = 0.0

    def run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        mark_sql = "SELECT value FROM meta WHERE key = 'rollup_minute'"
        mark = conn.execute(mark_sql).fetchone()
        while not self.done.wait(0.02):
            t0 = time.monotonic()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            if time.monotonic() - t0 > 0.02:
                self.waits.append((t0, time.monotonic()))
            now = conn.execute(mark_sql).fetchone()
            if now != mark:
                mark = now
                self.marks.append(time.monotonic())
        conn.close()

    def stop(self) -> None:
        if self.done.is_set():
            return
        self.done.set()
        self.join()
        self.stopped = time.monotonic()
        for mark in self.marks:
            start = end = mark
            for a, b in reversed(self.waits):
                if a <= start and b >= start - self.GAP_S:
                    start = min(start, a)
            for a, b in self.waits:
                if b >= end and a <= end + self.GAP_S:
                    end = max(end, b)
            self.runs.append((start, end))

    def in_maintenance(self, start: float, end: float) -> bool:
        return any(a < end and start < b for a, b in self.runs)

    def summary(self, t_base: float, seconds: float) -> dict[str, Any]:
        waits = [(b - a) * 1000 for a, b in self.waits]
        runs = [round(b - a, 2) for a, b in self.runs]
        return {
            "transactions_over_50ms": sum(w > GOAL_TX_MS for w in waits),
            "longest_ms": round(max(waits), 1) if waits else None,
            "maintenance_runs": len(runs),
            "maintenance_run_s": runs,
            "maintenance_at_s": [round(a - t_base, 1) for a, _ in self.runs],
            "maintenance_share": round(sum(runs) / seconds, 3) if seconds else None,
            "over_50ms_at_s": [
                [round(a - t_base, 1), round((b - a) * 1000)]
                for a, b in self.waits
                if (b - a) * 1000 > GOAL_TX_MS
            ][:300],
        }


# --- API measurement -------------------------------------------------------------------------


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pct(values: list[float]) -> dict[str, float | int | None]:
    """Nearest-rank p50 / p99, max, and how many exceeded the goal."""
    out: dict[str, float | int | None] = {"n": len(values)}
    ordered = sorted(values)
    for p in (50, 99):
        out[f"p{p}"] = (
            round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 2) if ordered else None
        )
    out["max"] = round(ordered[-1], 2) if ordered else None
    out["over_50ms"] = sum(v > GOAL_P99_MS for v in values)
    return out


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: Callable[[int, random.Random], str]
    follow_next: bool = False  # time the request for the page the first answer's Link points to


def endpoints(now: int, raw_days: float) -> list[Endpoint]:
    def day_in_raw(sid: int, rng: random.Random) -> str:
        start = now - int(rng.uniform(1, max(1.0, raw_days - 1)) * DAY)
        return f"/sites/{sid}/history?since={iso(start)}&until={iso(start + DAY)}"

    uptime = [
        Endpoint(
            f"GET /sites/{{id}}/uptime?window={w}",
            lambda s, r, w=w: f"/sites/{s}/uptime?window={w}",
        )
        for w in ("24h,7d,30d,90d,365d", "24h", "7d", "30d", "90d", "365d")
    ]
    return [
        Endpoint("GET /sites/{id}  (reference)", lambda s, r: f"/sites/{s}"),
        Endpoint("GET /sites/{id}/history  (newest 1000)", lambda s, r: f"/sites/{s}/history"),
        Endpoint("GET /sites/{id}/history?since=&until=  (1 day)", day_in_raw),
        Endpoint(
            "GET /sites/{id}/history?status=DOWN", lambda s, r: f"/sites/{s}/history?status=DOWN"
        ),
        Endpoint("GET history: Link rel=next (page 2)", lambda s, r: f"/sites/{s}/history", True),
        Endpoint("GET /sites/{id}/history.csv", lambda s, r: f"/sites/{s}/history.csv"),
        *uptime,
        Endpoint("GET /sites/{id}/incidents", lambda s, r: f"/sites/{s}/incidents"),
        Endpoint("GET /incidents", lambda s, r: "/incidents"),
    ]


NL = b"\n"
NEXT_RE = re.compile(r'<([^>]+)>;\s*rel="next"')


async def get(session: aiohttp.ClientSession, path: str) -> tuple[float, int, bytes, str | None]:
    """Latency (ms, until the whole body is read), status, body, the ``rel=next`` link."""
    t0 = time.perf_counter()
    async with session.get(path) as resp:
        body = await resp.read()
        link = resp.headers.get("Link")
    ms = (time.perf_counter() - t0) * 1000
    found = NEXT_RE.search(link) if link else None
    return ms, resp.status, body, found.group(1) if found else None


def shape(path: str, body: bytes) -> str:
    """What one answer held, to show the measured requests did real work."""
    if "history.csv" in path:
        return f"{body.count(NL) - 1} rows, {len(body) // 1024} KiB"
    data = json.loads(body)
    if isinstance(data, list):
        return f"{len(data)} rows, {len(body) // 1024} KiB"
    if "windows" in data:
        return ", ".join(
            f"{w['window']}:{w['resolution']}/{w['checks']} checks" for w in data["windows"]
        )
    return f"{len(body)} B"


async def one(
    session: aiohttp.ClientSession, ep: Endpoint, sid: int, rng: random.Random
) -> tuple[float, int, str, bytes]:
    path = ep.path(sid, rng)
    if ep.follow_next:
        _, status, _, link = await get(session, path)
        if status != 200 or link is None:
            return 0.0, status, path, b""
        path = link
    ms, status, body, _ = await get(session, path)
    return ms, status, path, body


async def round_robin(
    session: aiohttp.ClientSession,
    eps: list[Endpoint],
    rounds: int,
    sites: int,
    rng: random.Random,
    watch: LockWatch,
) -> dict[str, dict[str, Any]]:
    """One request at a time, endpoints in turn, so each meets the maintenance runs equally."""
    lat: dict[str, list[float]] = {ep.name: [] for ep in eps}
    spans: dict[str, list[tuple[float, float]]] = {ep.name: [] for ep in eps}
    errors = dict.fromkeys(lat, 0)
    sample = dict.fromkeys(lat, "")
    for i in range(rounds):
        for ep in eps:
            ms, status, path, body = await one(session, ep, rng.randint(1, sites), rng)
            if status != 200:
                errors[ep.name] += 1
                continue
            lat[ep.name].append(ms)
            spans[ep.name].append((time.monotonic() - ms / 1000, time.monotonic()))
            if not sample[ep.name]:
                sample[ep.name] = shape(path, body)
        if (i + 1) % max(1, rounds // 10) == 0:
            say(f"  round {i + 1}/{rounds}")
    watch.stop()
    return {
        name: {
            **pct(lat[name]),
            "errors": errors[name],
            "sample": sample[name],
            # the same requests without those that overlapped a maintenance run
            "quiet": pct(
                [
                    ms
                    for (a, b), ms in zip(spans[name], lat[name], strict=True)
                    if not watch.in_maintenance(a, b)
                ]
            ),
        }
        for name in lat
    }


async def concurrent(
    session: aiohttp.ClientSession,
    ep: Endpoint,
    clients: int,
    per_client: int,
    sites: int,
    seed: int,
) -> dict[str, Any]:
    lat: list[float] = []
    errors = 0

    async def client(k: int) -> None:
        nonlocal errors
        rng = random.Random(seed * 1000 + k)
        for _ in range(per_client):
            ms, status, _, _ = await one(session, ep, rng.randint(1, sites), rng)
            if status == 200:
                lat.append(ms)
            else:
                errors += 1

    t0 = time.monotonic()
    await asyncio.gather(*(client(k) for k in range(clients)))
    wall = time.monotonic() - t0
    return {
        **pct(lat),
        "errors": errors,
        "clients": clients,
        "req_per_s": round(len(lat) / wall, 1),
    }


async def probe(
    session: aiohttp.ClientSession,
    seconds: float,
    rate: float,
    sites: int,
    rng: random.Random,
    t_base: float,
) -> dict[str, Any]:
    """A cheap read at ``rate``/s: its slow answers are the moments the DB connection was busy."""
    samples: list[tuple[float, float]] = []
    end = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < end:
        sent = time.monotonic() - t_base
        ms, status, _, _ = await get(session, f"/sites/{rng.randint(1, sites)}")
        if status == 200:
            samples.append((sent, ms))
        next_at = max(next_at + 1 / rate, time.monotonic())
        await asyncio.sleep(next_at - time.monotonic())
    stalls: list[dict[str, float]] = []
    for sent, ms in samples:
        if ms <= GOAL_P99_MS:
            continue
        if stalls and sent - stalls[-1]["last_s"] < 5:
            stalls[-1].update(
                last_s=round(sent, 1),
                slow=stalls[-1]["slow"] + 1,
                max_ms=max(stalls[-1]["max_ms"], round(ms, 1)),
            )
        else:
            stalls.append(
                {
                    "at_s": round(sent, 1),
                    "last_s": round(sent, 1),
                    "slow": 1,
                    "max_ms": round(ms, 1),
                }
            )
    return {**pct([ms for _, ms in samples]), "seconds": seconds, "rate": rate, "stalls": stalls}


async def api_phase(
    db: Path,
    workdir: Path,
    *,
    sites: int,
    now: int,
    raw_days: float,
    requests: int,
    probe_s: float,
    seed: int,
) -> dict[str, Any]:
    """Start the target and the daemon, measure, stop both."""
    target_port, port = free_port(), free_port()
    conn = sqlite3.connect(db)
    conn.execute(
        "UPDATE sites SET url = 'http://127.0.0.1:' || ? || '/site/' || id", (target_port,)
    )
    conn.commit()
    conn.close()
    target = Child(
        [sys.executable, "-c", TARGET_SCRIPT, str(target_port)],
        log=workdir / "target.log",
        env=dict(os.environ),
        cwd=workdir,
    )
    daemon: Child | None = None
    watch = LockWatch(db)
    out: dict[str, Any] = {"target": f"aiohttp on 127.0.0.1:{target_port}, answers 200"}
    try:
        await wait_http(f"http://127.0.0.1:{target_port}/", target, 20)
        uptimed = shutil.which("uptimed", path=str(Path(sys.executable).parent)) or "uptimed"
        daemon = Child(
            [uptimed, "--port", str(port)],
            log=workdir / "uptimed.log",
            env=daemon_env(db, raw_days),
            cwd=workdir,
        )
        out["daemon_command"] = f"{uptimed} --port {port}"
        out["healthz_s"] = round(
            await wait_http(f"http://127.0.0.1:{port}/healthz", daemon, 120), 2
        )
        say(
            f"  daemon up in {out['healthz_s']} s, pid {daemon.proc.pid} (target {target.proc.pid})"
        )
        watch.start()
        rng = random.Random(seed)
        eps = endpoints(now, raw_days)
        async with aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": "Basic " + base64.b64encode(CREDENTIALS).decode()},
            connector=aiohttp.TCPConnector(limit=16),
            timeout=aiohttp.ClientTimeout(total=60),
        ) as session:
            for ep in eps:  # warm-up: connections, the daemon's code paths, the page cache
                for _ in range(5):
                    await one(session, ep, rng.randint(1, sites), rng)
            if probe_s > 0:
                say(f"  probe: GET /sites/{{id}} 20/s for {probe_s:g} s (maintenance: every 60 s)")
                out["probe"] = await probe(session, probe_s, 20, sites, rng, daemon.spawned)
            say(f"  {requests} rounds, one request at a time, endpoints in turn")
            results = await round_robin(session, eps, requests, sites, rng, watch)
            for name, r in results.items():
                say(f"  {name:<48} {r['p50']:>7} {r['p99']:>7} {r['max']:>7} ms  {r['sample']}")
            out["sequential"] = results
            heavy = sorted(
                (n for n in results if "reference" not in n), key=lambda n: results[n]["p99"] or 0
            )[-2:]
            out["concurrent"] = {}
            for name in heavy:
                ep = next(e for e in eps if e.name == name)
                c = await concurrent(session, ep, 8, max(3, requests // 8), sites, seed)
                out["concurrent"][name] = c
                say(f"  8 clients: {name:<37} {c['p50']:>7} {c['p99']:>7} {c['max']:>7} ms")
        out["measured_s"] = round(time.monotonic() - daemon.spawned, 1)
        out["watch"] = watch.summary(daemon.spawned, watch.stopped - daemon.spawned)
    finally:
        if watch.is_alive():
            watch.stop()
        if daemon is not None:
            out["daemon_exit"] = daemon.stop()
            out["daemon_log_tail"] = daemon.tail(5)
        target.stop()
    conn = sqlite3.connect(db)
    written, down = conn.execute(
        "SELECT count(*), coalesce(sum(h.status = 2), 0) FROM sites s CROSS JOIN history h"
        " ON h.site_id = s.id AND h.checked_at > ?",
        (now,),
    ).fetchone()
    conn.close()
    out["daemon_checks_written"] = written
    out["daemon_checks_down"] = down
    return out


# --- pruning ---------------------------------------------------------------------------------


class TxTimer:
    """Times every ``store.transaction()`` (lock wait, BEGIN IMMEDIATE ... COMMIT) of one Store."""

    def __init__(self, store: Store) -> None:
        self.times: list[float] = []
        original = store.transaction

        @asynccontextmanager
        async def timed() -> AsyncIterator[Any]:
            t0 = time.perf_counter()
            try:
                async with original() as db:
                    yield db
            finally:
                self.times.append((time.perf_counter() - t0) * 1000)

        store.transaction = timed  # type: ignore[method-assign]

    def take(self) -> dict[str, Any]:
        times, self.times = self.times, []
        return {
            "n": len(times),
            "max_ms": round(max(times), 1) if times else None,
            "p50_ms": round(sorted(times)[len(times) // 2], 1) if times else None,
            "total_ms": round(sum(times), 1),
            "over_50ms": sum(t > GOAL_TX_MS for t in times),
        }


def _meta(conn: sqlite3.Connection, key: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def eligible(path: Path, now: int, retention: Retention) -> dict[str, int]:
    """Rows ``prune(now)`` will delete, per table (same cutoffs; counted by per-site seeks)."""
    conn = sqlite3.connect(path)
    cutoffs = {
        "history": (
            "checked_at",
            min(now - int(retention.raw_days * DAY), _meta(conn, "rollup_minute")),
        ),
        "rollup_minute": (
            "bucket",
            min(now - int(retention.minute_days * DAY), _meta(conn, "rollup_hour")),
        ),
        "rollup_hour": (
            "bucket",
            min(now - int(retention.hour_days * DAY), _meta(conn, "rollup_day")),
        ),
        "rollup_day": ("bucket", now - int(retention.day_days * DAY)),
    }
    out = {
        table: conn.execute(
            f"SELECT count(*) FROM sites s JOIN {table} t ON t.site_id = s.id AND t.{col} < ?",
            (cutoff,),
        ).fetchone()[0]
        for table, (col, cutoff) in cutoffs.items()
    }
    conn.close()
    return out


def _time_sql(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """Best of 3 runs; a write runs in a transaction that is rolled back."""
    plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args)]
    write = not sql.startswith("SELECT")
    best, rows = math.inf, 0
    for _ in range(3):
        if write:
            conn.execute("BEGIN IMMEDIATE")
        t0 = time.perf_counter()
        cur = conn.execute(sql, args)
        rows = cur.rowcount if write else len(cur.fetchall())
        best = min(best, (time.perf_counter() - t0) * 1000)
        if write:
            conn.execute("ROLLBACK")
    return {"ms": round(best, 2), "rows": rows, "plan": plan, "sql": sql}


def prune_cases(
    conn: sqlite3.Connection, now: int, retention: Retention
) -> list[tuple[str, tuple[str, tuple[Any, ...]]]]:
    """Prune's history DELETE for its first batch of sites, as written and as proposed."""
    batch = maintenance.SITES_PER_TRANSACTION
    last_id = conn.execute("SELECT id FROM sites ORDER BY id LIMIT 1 OFFSET ?", (batch - 1,))
    args = (
        1,
        last_id.fetchone()[0],
        min(now - int(retention.raw_days * DAY), _meta(conn, "rollup_minute")),
    )
    return [
        (
            f"prune: history DELETE, {batch} sites, as written (BETWEEN)",
            ("DELETE FROM history WHERE site_id BETWEEN ? AND ? AND checked_at < ?", args),
        ),
        (
            f"prune: history DELETE, {batch} sites, proposed (IN)",
            (
                "DELETE FROM history WHERE site_id IN"
                " (SELECT id FROM sites WHERE id BETWEEN ? AND ?) AND checked_at < ?",
                args,
            ),
        ),
    ]


def diagnosis(path: Path, now: int, retention: Retention) -> dict[str, dict[str, Any]]:
    """The statements behind the slow figures, timed as written and as proposed."""
    conn = sqlite3.connect(path, isolation_level=None)
    minute = _meta(conn, "rollup_minute")
    rollup_sql = maintenance._source_sql("rollup_minute", MINUTE)
    raw_from = now - int(retention.raw_days * DAY)
    hist = ", ".join(f"sum(b = {i})" for i in range(NB))
    sums = ", ".join(f"sum({h})" for h in HIST_COLUMNS)
    raw_stats = (
        f"SELECT count(*), sum(status = 2), sum(response_time_ms), max(response_time_ms), {hist}"
        f" FROM (SELECT status, response_time_ms, {rt_bucket_sql('response_time_ms')} AS b"
        " FROM history WHERE site_id = ? AND checked_at >= ? AND checked_at < ? AND status <> 0)"
    )
    cases = {
        **dict(prune_cases(conn, now, retention)),
        "rollup: one minute of all sites, as written (JOIN)": (
            rollup_sql,
            (minute - MINUTE, minute),
        ),
        "rollup: one minute of all sites, proposed (CROSS JOIN)": (
            rollup_sql.replace(" JOIN ", " CROSS JOIN ", 1),
            (minute - MINUTE, minute),
        ),
        "uptime >= 30d: raw rows with histogram, as written": (raw_stats, (1, raw_from, now + 1)),
        "uptime >= 30d: hour rollups for the same span, proposed": (
            f"SELECT sum(checks), sum(checks - up), sum(rt_sum), max(rt_max), {sums}"
            " FROM rollup_hour WHERE site_id = ? AND bucket >= ? AND bucket < ?",
            (1, raw_from, now),
        ),
    }
    out = {label: _time_sql(conn, sql, args) for label, (sql, args) in cases.items()}
    conn.close()
    return out


def insert_day(path: Path, end: int, interval_ms: int, rng: np.random.Generator) -> dict[str, Any]:
    """Every site's checks up to ``end``, inserted in time order (as the daemon does) in
    transactions of 10 minutes of checks; all UP. Sites continue their own grid."""
    conn = connect(path)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA cache_size=-262144")  # speeds the simulation up, changes no page
    sites = conn.execute(  # the daemon batches unchanged checks: sites.last_checked may lag
        "SELECT id, status, status_since,"
        " (SELECT max(checked_at) FROM history h WHERE h.site_id = s.id) FROM sites s ORDER BY id"
    ).fetchall()
    ids, times, sinces = [], [], []
    for site_id, status, since, last in sites:
        t = last + np.arange(1, (end - last) // interval_ms + 1, dtype=np.int64) * interval_ms
        if not len(t):
            continue
        ids.append(np.full(len(t), site_id))
        times.append(t)
        sinces.append(np.full(len(t), since if status == "UP" else t[0]))
    sid, t, since = (np.concatenate(a) for a in (ids, times, sinces))
    order = np.argsort(t, kind="stable")
    sid, t, since = sid[order], t[order], since[order]
    rt = rng.lognormal(math.log(80), 0.5, len(t)).astype(np.int64)
    cuts = [*np.searchsorted(t, np.arange(t[0], t[-1], 10 * MINUTE)).tolist(), len(t)]
    tx: list[float] = []
    t0 = time.monotonic()
    for a, b in itertools.pairwise(cuts):
        if a == b:
            continue
        s0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO history (site_id, checked_at, status, response_time_ms, status_since)"
            " VALUES (?, ?, 1, ?, ?)",
            zip(
                sid[a:b].tolist(),
                t[a:b].tolist(),
                rt[a:b].tolist(),
                since[a:b].tolist(),
                strict=True,
            ),
        )
        conn.execute("COMMIT")
        tx.append((time.perf_counter() - s0) * 1000)
    last = {int(s): (int(tt), int(ss)) for s, tt, ss in zip(sid, t, since, strict=True)}
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "UPDATE sites SET status = 'UP', status_since = ?, last_checked = ? WHERE id = ?",
        [(ss, tt, s) for s, (tt, ss) in last.items()],
    )
    conn.execute("UPDATE incidents SET ended_at = ? WHERE ended_at IS NULL", (int(t[0]),))
    conn.execute("COMMIT")
    conn.close()
    return {
        "rows": len(t),
        "s": round(time.monotonic() - t0, 1),
        "tx": len(tx),
        "tx_max_ms": round(max(tx), 1),
    }


async def maintenance_step(
    store: Store, timer: TxTimer, path: Path, now: int, retention: Retention, *, diagnose: bool
) -> dict[str, Any]:
    """``maintenance.rollup`` then ``maintenance.prune``, as the daemon's job runs them."""
    t0 = time.monotonic()
    rolled = await maintenance.rollup(store, now)
    roll_s = time.monotonic() - t0
    roll_tx = timer.take()
    extra: dict[str, Any] = {"eligible": eligible(path, now, retention)}
    if diagnose:
        conn = sqlite3.connect(path, isolation_level=None)
        extra["diagnosis"] = {k: _time_sql(conn, *v) for k, v in prune_cases(conn, now, retention)}
        conn.close()
    t0 = time.monotonic()
    deleted = await maintenance.prune(store, now, retention)
    return {
        **extra,
        "rollup": {"buckets": rolled, "s": round(roll_s, 2), "tx": roll_tx},
        "prune": {
            "rows_deleted": deleted,
            "s": round(time.monotonic() - t0, 2),
            "tx": timer.take(),
        },
    }


def page_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    out = {k: conn.execute(f"PRAGMA {k}").fetchone()[0] for k in ("page_count", "freelist_count")}
    conn.close()
    return out


HISTORY_ISO_SQL = (  # the proposed page query: SQLite formats the times (same text as iso_ms)
    "SELECT status, response_time_ms, strftime('%Y-%m-%dT%H:%M:%fZ', checked_at / 1000.0,"
    " 'unixepoch'), strftime('%Y-%m-%dT%H:%M:%fZ', status_since / 1000.0, 'unixepoch'), reason"
    " FROM history WHERE site_id = ? ORDER BY checked_at DESC LIMIT ?"
)


async def serialization(store: Store, n_sites: int) -> dict[str, float]:
    """Where the server time of a default history page goes, in-process (mean of 20 sites, ms)."""
    names = {0: "INITIAL", 1: "UP", 2: "DOWN"}
    to_csv = getattr(api_reports, "_csv", None)
    parts: dict[str, list[float]] = {
        "reports.history_page (aiosqlite + model_construct)": [],
        "model_dump(mode='json') of each row": [],
        "json.dumps": [],
        "CSV body (api.reports._csv)": [],
        "proposed: strftime in SQL, dicts, json.dumps": [],
    }
    keys = list(parts)
    for i in range(21):
        sid = 1 + i * 37 % n_sites
        t = [time.perf_counter()]
        rows, _ = await reports.history_page(store, sid, HistoryQuery())
        t.append(time.perf_counter())
        # Rows are API-shaped dicts since uptimed formats them in SQL; older builds gave models.
        data = [r if isinstance(r, dict) else r.model_dump(mode="json") for r in rows]
        t.append(time.perf_counter())
        json.dumps(data)
        t.append(time.perf_counter())
        if to_csv is not None:
            to_csv(rows)
        t.append(time.perf_counter())
        async with store.conn.execute(HISTORY_ISO_SQL, (sid, 1001)) as cur:
            raw = await cur.fetchall()
        json.dumps(
            [
                {"status": names[a], "response_time_ms": b, "last_checked": c,
                 "last_status_change": d, "reason": e}
                for a, b, c, d, e in raw[:1000]
            ]
        )  # fmt: skip
        t.append(time.perf_counter())
        if i:  # the first is a warm-up
            for key, (a, b) in zip(keys, itertools.pairwise(t), strict=True):
                parts[key].append((b - a) * 1000)
    return {key: round(sum(v) / len(v), 2) for key, v in parts.items()}


async def prune_phase(
    path: Path, retention: Retention, growth_days: int, interval_ms: int, seed: int
) -> dict[str, Any]:
    now0 = int(time.time() * 1000)
    try:  # the diagnosis replays uptimed's SQL by hand; it must not stop the measurement
        diag: dict[str, Any] = diagnosis(path, now0, retention)
    except (sqlite3.Error, TypeError, ValueError) as e:
        diag = {"error": f"{e.__class__.__name__}: {e}"}
    out: dict[str, Any] = {"diagnosis": diag}
    store = await Store.open(path)
    timer = TxTimer(store)
    try:
        async with store.conn.execute("SELECT count(*) FROM sites") as cur:
            (n_sites,) = await cur.fetchone()  # type: ignore[misc]
        out["serialization"] = await serialization(store, n_sites)
        say("  steady state: rollup + prune of the minute since the daemon's last run")
        out["steady_minute"] = await maintenance_step(
            store, timer, path, now0, retention, diagnose=False
        )
        _print_step("minute", out["steady_minute"])
        rng = np.random.default_rng([seed, 999])
        size0 = file_size(path)["main"]
        out["days"] = []
        for d in range(1, growth_days + 1):
            now_d = now0 + d * DAY
            inserted = insert_day(path, now_d, interval_ms, rng)
            step: dict[str, Any] = {"day": d, "insert": inserted}
            step.update(
                await maintenance_step(store, timer, path, now_d, retention, diagnose=d == 1)
            )
            step["size"] = file_size(path)
            step["pages"] = page_counts(path)
            step["growth_bytes"] = step["size"]["main"] - size0
            out["days"].append(step)
            _print_step(f"day {d}", step)
    finally:
        await store.close()
    if growth_days:
        conn = sqlite3.connect(path)
        rows = conn.execute("SELECT count(*) FROM history").fetchone()[0]
        conn.close()
        out["dbstat_at_end"] = db_stats(path, rows)
    return out


def _print_step(label: str, step: dict[str, Any]) -> None:
    p, r = step["prune"], step["rollup"]
    extra = ""
    if "insert" in step:
        ins, size = step["insert"], step["size"]
        extra = (
            f"; inserted {ins['rows']:,} checks in {ins['s']} s;"
            f" file {size['main'] / GIB:.3f} GiB + wal {size['wal'] / 2**20:.0f} MiB"
        )
    print(
        f"  {label}: rollup {r['buckets']} buckets {r['s']} s (longest tx {r['tx']['max_ms']} ms);"
        f" prune {p['rows_deleted']:,} rows {p['s']} s in {p['tx']['n']} tx,"
        f" longest {p['tx']['max_ms']} ms, {p['tx']['over_50ms']} over 50 ms{extra}",
        flush=True,
    )


# --- report ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    git = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu_model": model,
        "nproc": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "numpy": np.__version__,
        "aiohttp": aiohttp.__version__,
        "uptimed": __version__,
        "git": git or "?",
        "loadavg_at_start": os.getloadavg(),
    }


def _row(name: str, r: dict[str, Any], verdict: str) -> str:
    q = r.get("quiet")
    quiet = f"{q['p99']} ({q['n']})" if q else "-"
    return (
        f"{name[:50]:<50} {r['p50']:>7} {r['p99']:>7} {r['max']:>7} {r['over_50ms']:>5}"
        f" {quiet:>13}  {verdict}"
    )


def _pass(r: dict[str, Any]) -> str:
    ok = r["p99"] is not None and r["p99"] <= GOAL_P99_MS and not r.get("errors")
    return ("PASS" if ok else "FAIL") + (f" ({r['errors']} errors)" if r.get("errors") else "")


def table(result: dict[str, Any]) -> str:
    api, cfg = result["api"], result["config"]
    head = f"endpoint ({cfg['requests']} sequential requests each)"
    lines = [
        f"{head:<50} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'>50ms':>5} {'quiet p99 (n)':>13}"
        "  goal p99 <= 50 ms",
        "-" * 110,
    ]
    lines += [_row(name, r, _pass(r)) for name, r in api["sequential"].items()]
    for name, r in api["concurrent"].items():
        short = name.removeprefix("GET /sites/{id}/")
        lines.append(_row(f"8 clients x {r['n'] // 8}: {short}", r, _pass(r)))
    if "probe" in api:
        p = api["probe"]
        lines.append(_row(f"probe GET /sites/{{id}} 20/s for {p['seconds']:g} s", p, "info"))
        lines += [
            f"    stall +{s['at_s']}..+{s['last_s']} s after start: {s['slow']} answers > 50 ms,"
            f" max {s['max_ms']} ms"
            for s in p["stalls"]
        ]
    size, stat, rows = result["size_after_fill"], result["dbstat"], result["fill"]["rows"]
    verdict = "PASS" if size["total"] <= GOAL_FILE_BYTES else "FAIL"
    tables = ", ".join(
        f"{k} {v['bytes'] / 2**20:.0f} MiB ({v['fill_pct']}% full)"
        for k, v in list(stat["tables"].items())[:6]
    )
    w = api["watch"]
    lines += [
        "quiet p99: the same requests without those that overlapped a maintenance run",
        f"maintenance runs seen: {w['maintenance_runs']} (those that rolled a minute up), each"
        f" holding the database for {', '.join(f'{s:g}' for s in w['maintenance_run_s']) or '-'} s"
        f" ({100 * (w['maintenance_share'] or 0):.1f}% of the time);"
        f" daemon write transactions > 50 ms: {w['transactions_over_50ms']},"
        f" longest {w['longest_ms']} ms",
        "-" * 110,
        f"file after fill: {size['total'] / GIB:.3f} GiB = {size['total']:,} B"
        f" (wal {size['wal']:,} B); goal <= 4 GiB: {verdict}",
        f"history: {rows['history']:,} raw rows, {stat['history_bytes_per_raw_row']} B per row"
        f" (dbstat); rollups: {rows['rollup_minute']:,} minute, {rows['rollup_hour']:,} hour,"
        f" {rows['rollup_day']:,} day rows; {rows['incidents']:,} incidents",
        f"by table: {tables}",
        f"daemon meanwhile: {api['daemon_checks_written']:,} checks written"
        f" ({api['daemon_checks_down']} DOWN) in {api['measured_s']} s",
        "-" * 110,
    ]
    pr = result["prune"]
    lines += [
        f"{label}: {v['ms']} ms, {v['rows']:,} rows [{'; '.join(v['plan'])}]"
        if isinstance(v, dict)
        else f"diagnosis {label}: {v}"
        for label, v in pr["diagnosis"].items()
    ]
    if pr["days"] and "diagnosis" in pr["days"][0]:
        lines += [
            f"{label} (day 1): {v['ms']} ms, {v['rows']:,} rows"
            for label, v in pr["days"][0]["diagnosis"].items()
        ]
    lines.append(
        "history page of 1000 rows, server time in-process (ms): "
        + ", ".join(f"{k} {v}" for k, v in pr["serialization"].items())
    )
    for step in [pr["steady_minute"], *pr["days"]]:
        p, tx = step["prune"], step["prune"]["tx"]
        which = ", ".join(f"{k} {v:,}" for k, v in step["eligible"].items() if v) or "none"
        label = f"day {step['day']}" if "day" in step else "the minute since the last run"
        line = (
            f"prune {label}: {p['rows_deleted']:,} rows ({which}) in {p['s']} s,"
            f" {tx['n']} tx, longest {tx['max_ms']} ms, {tx['over_50ms']} tx > 50 ms"
        )
        if "size" in step:
            roll = step["rollup"]
            line += (
                f"; rollup {roll['s']} s (longest tx {roll['tx']['max_ms']} ms);"
                f" main file {step['size']['main'] / GIB:.3f} GiB"
                f" ({step['growth_bytes'] / 2**20:+.1f} MiB),"
                f" wal {step['size']['wal'] / 2**20:.0f} MiB"
            )
        lines.append(line)
    if "dbstat_at_end" in pr:
        end = pr["dbstat_at_end"]
        hist = end["tables"]["history"]
        lines.append(
            f"after {len(pr['days'])} simulated days: history {end['history_bytes_per_raw_row']} B"
            f" per raw row ({hist['fill_pct']}% full pages), {end['page_count']:,} pages of which"
            f" {end['freelist_count']:,} free; file {result['size_at_end']['total'] / GIB:.3f} GiB"
            " (wal checkpointed)"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="100 sites, 40 requests, 15 s probe, 1 growth day"
    )
    ap.add_argument("--sites", type=int, help="sites (default 1000)")
    ap.add_argument(
        "--raw-days", type=float, default=30.0, help="days of raw checks kept (default 30)"
    )
    ap.add_argument("--interval", type=int, default=60, help="check interval, seconds (default 60)")
    ap.add_argument("--days", type=int, default=365, help="days of simulated history (default 365)")
    ap.add_argument("--requests", type=int, help="sequential requests per endpoint (default 200)")
    ap.add_argument("--probe-seconds", type=float, help="the maintenance probe (default 70)")
    ap.add_argument("--growth-days", type=int, help="insert-a-day / prune-a-day cycles (default 7)")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument(
        "--workdir", type=Path, help="where the database goes (default a new dir in /tmp)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the database and logs")
    args = ap.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key in ("sites", "requests", "probe_s", "growth_days"):
        attr = "probe_seconds" if key == "probe_s" else key
        if getattr(args, attr) is None:
            setattr(args, attr, preset[key])
    if args.interval < 1 or args.raw_days < 2 or args.days < 91:
        ap.error("--interval >= 1, --raw-days >= 2 and --days >= 91")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join([sys.executable, *sys.argv])
    made_dir = args.workdir is None
    workdir = (
        Path(tempfile.mkdtemp(prefix="uptimed-history-", dir="/tmp")) if made_dir else args.workdir
    )
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "history.db"
    if db.exists():
        sys.exit(f"{db} exists: pick another --workdir")
    facts = machine()
    free = shutil.disk_usage(workdir).free
    need = int(args.sites * args.raw_days / 30 * 1.8e6)
    say(f"command: {command}")
    say("machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()))
    say(f"database: {db} ({free / GIB:.1f} GiB free there, about {need / GIB:.1f} GiB needed)")
    if free < need * 1.3:
        sys.exit("not enough free disk space")
    now = int(time.time() * 1000)
    plan = Plan(args.sites, args.raw_days, args.interval * 1000, args.days, args.seed, now)
    retention = Retention(raw_days=args.raw_days)
    config = {**vars(args), "workdir": str(workdir)}
    result: dict[str, Any] = {"command": command, "machine": facts, "config": config}
    try:
        say(
            f"1. fill: {args.sites} sites, {args.days} days of checks every {args.interval} s"
            f" simulated; written straight with sqlite3, not through the API: {args.raw_days:g}"
            " days of raw checks, rollups, incidents, watermarks"
        )
        result["fill"] = fill(db, plan, retention)
        result["size_after_fill"] = size = file_size(db)
        result["dbstat"] = db_stats(db, result["fill"]["rows"]["history"])
        say(f"  {json.dumps(result['fill']['rows'])}; {size['total'] / GIB:.3f} GiB")
        say("2. API: the real daemon on that file, its sites checked against a local target")
        result["api"] = asyncio.run(
            api_phase(
                db, workdir, sites=args.sites, now=plan.now, raw_days=args.raw_days,
                requests=args.requests, probe_s=args.probe_seconds, seed=args.seed,
            )
        )  # fmt: skip
        result["size_after_api"] = file_size(db)
        say(f"3. pruning, in-process with the daemon stopped ({args.growth_days} simulated days)")
        result["prune"] = asyncio.run(
            prune_phase(db, retention, args.growth_days, plan.interval_ms, args.seed)
        )
        result["size_at_end"] = file_size(db)
        result["machine"]["loadavg_at_end"] = os.getloadavg()
        print()
        print(table(result))
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"history-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
        out.write_text(json.dumps(result, indent=1, default=str))
        print(f"\nresults: {out}")
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        elif made_dir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for suffix in ("", "-wal", "-shm"):
                with suppress(FileNotFoundError):
                    (workdir / f"history.db{suffix}").unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
