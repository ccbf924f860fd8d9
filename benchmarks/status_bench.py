"""Issue 13: the public status page on a year of history while the daemon checks.

``python benchmarks/status_bench.py [--quick] [--sites N] [--duration D] [--repeat K] ...``
(see ``benchmarks/README.md``). Built on the issue-6 benchmark (``history_bench.py``):

1. **Fill** (once): ``history_bench.fill`` writes N sites with a year of checks (raw rows for
   ``--raw-days``, minute/hour/day rollups, incidents, watermarks) straight into SQLite; then
   every site gets ``public = 1`` and a URL on a local target that answers 200.
2. **Runs** (``--repeat K``, default 3), each on a fresh copy of that file: the real daemon
   (``uptimed --port P``, ``OPTIMISATION=0`` so every check is a row) checks the N sites every
   ``--check-interval`` s; after one interval + 5 s of warm-up (so sites it respread are on
   their new grid), the window of ``--duration`` s: ``GET /status`` (no login) at ``--rate``/s
   and ``GET /status.json`` at ``--json-rate``/s, open loop, each timed from its scheduled
   start until the whole body is read; then 5 s of grace, SIGTERM, and the daemon's check
   lateness in the window from the SQLite file (``dbstats``, each site's grid from its own
   checks, as ``run.py --series``).
3. **Report**: per run, latency p50/p99/max of both endpoints, what the answers show (sites
   listed, bytes, cache headers), the answers that differ from the one before (a new render:
   the cache was missed or had expired) and their latency beside the others', the longest a
   single answer was served, lateness and missed checks, uptimed's CPU; then median (worst)
   over the runs. The JSON goes to ``benchmarks/results/status-<UTC time>.json``.

An endpoint the build does not have (404 before the status page is merged) is reported as such
(its figures "no data"); the run goes on and still measures lateness.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import redirect_stdout, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from benchmarks import dbstats, procstat
from benchmarks import history_bench as hb
from benchmarks.report import Figure, _get, _le, format_table, summary_rows
from uptimed.db.maintenance import Retention

GOAL_P99_MS = 50.0  # issue 13: p99 of /status while the daemon checks
GOAL_LATENESS_P99_MS = 500  # the issue-5 budget for the daemon's checks
CACHE_MAX_S = 10.0  # issue 13: the page is cached for at most 10 s
GRACE_S = 5.0
RESULTS = Path(__file__).resolve().parent / "results"
PATHS = {"html": "/status", "json": "/status.json"}
CACHE_HEADERS = ("Cache-Control", "Age", "ETag", "Last-Modified", "Expires", "Vary")
# A render time in /status.json, if the build gives one: a better identity than the bytes.
STAMP_KEYS = ("generated_at", "rendered_at", "updated_at", "as_of", "cached_at", "now")
SITE_NAME = re.compile(rb"Site (\d+)(?!\d)")  # history_bench names the sites "Site <id>"
FULL = {"days": 365, "raw_days": 30.0, "duration": 60.0, "repeat": 3, "check_interval": None}
QUICK = {"days": 91, "raw_days": 2.0, "duration": 30.0, "repeat": 1, "check_interval": 10}


NO_CHECKS = {
    "scheduled": 0, "scheduled_per_s": 0.0, "done": 0, "missed": 0, "down": 0,
    "late_over_500ms": 0, "lateness_ms": {"p50": None, "p99": None, "max": None},
}  # fmt: skip


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- the database ----------------------------------------------------------------------------


def make_public(db: Path, target_port: int) -> int:
    """Every site public, checking the local target; returns the number of sites."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(sites)")}
        if "public" not in columns:
            sys.exit("this build's schema has no sites.public (schema 10): nothing to show")
        conn.execute(
            "UPDATE sites SET public = 1, url = 'http://127.0.0.1:' || ? || '/site/' || id",
            (target_port,),
        )
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return conn.execute("SELECT count(*) FROM sites WHERE public = 1").fetchone()[0]
    finally:
        conn.close()


def set_interval(db: Path, seconds: int) -> None:
    """The daemon's check interval, if other than the simulated year's."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("UPDATE sites SET check_interval_seconds = ?", (seconds,))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def copy_db(src: Path, dst: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with suppress(FileNotFoundError):
            (dst.parent / (dst.name + suffix)).unlink()
    shutil.copyfile(src, dst)


# --- the client ------------------------------------------------------------------------------


def identity(kind: str, body: bytes) -> tuple[str, float | None]:
    """What tells one render from another, and its time (epoch s) if the answer says: a render
    time in the JSON if there is one, else the bytes (a page with nothing changed since the
    last render looks like the same one)."""
    if kind == "json":
        with suppress(ValueError, AttributeError):
            data = json.loads(body)
            if isinstance(data, dict):
                for key in STAMP_KEYS:
                    if key in data:
                        return f"{key}={data[key]}", epoch_s(data[key])
    return hashlib.blake2b(body, digest_size=12).hexdigest(), None


def epoch_s(value: object) -> float | None:
    """An ISO 8601 time or epoch (s or ms) as epoch seconds; None if neither."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value / 1000 if value > 1e11 else float(value)
    if isinstance(value, str):
        with suppress(ValueError):
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    return None


def mark_new(samples: dict[str, list[dict]]) -> None:
    """Mark each 200 answer ``new`` (the first to show a new render: the request that found the
    cache expired and waited for the build) or not (a hit). Both endpoints are taken together in
    time order, as one build may serve both (uptimed renders the HTML and the JSON of a build
    at once): an answer whose render changed since its endpoint's previous request is not new
    if the other endpoint already showed a change in between (that request made the build)."""
    merged = sorted(
        ((s["at_s"], kind, s) for kind, ss in samples.items() for s in ss if "id" in s),
        key=lambda x: x[0],
    )
    last_id: dict[str, str] = {}
    last_at: dict[str, float] = {}
    changes: list[tuple[float, str]] = []  # (at_s, kind) of each answer showing a change
    for at, kind, s in merged:
        previous = last_id.get(kind)
        if previous is None:
            s["new"] = None  # the window's first: when it was made is not known
        elif s["id"] == previous:
            s["new"] = False
        else:
            since = last_at[kind]
            s["new"] = not any(since < t <= at and k != kind for t, k in changes[-4:])
            changes.append((at, kind))
        last_id[kind], last_at[kind] = s["id"], at


def shown(kind: str, body: bytes) -> int | None:
    """How many of the sites the answer lists (names "Site <id>", or the JSON's list)."""
    if kind == "json":
        with suppress(ValueError):
            data = json.loads(body)
            if isinstance(data, list):
                return len(data)
            if isinstance(data, dict):
                for key in ("sites", "monitors", "services"):
                    if isinstance(data.get(key), list):
                        return len(data[key])
    return len(set(SITE_NAME.findall(body))) or None


async def load(base: str, rates: dict[str, float], seconds: float) -> dict[str, list[dict]]:
    """Open-loop GETs of each path at its rate for ``seconds``, no login; each timed from its
    scheduled start (a stalled server cannot hide its stall) to the last byte of the body."""
    samples: dict[str, list[dict]] = {kind: [] for kind in rates}
    tasks: set[asyncio.Task[None]] = set()
    t0, wall0 = time.monotonic(), time.time()

    async def one(session: aiohttp.ClientSession, kind: str, due: float) -> None:
        s: dict[str, Any] = {"at_s": round(due - t0, 3)}
        try:
            async with session.get(PATHS[kind]) as resp:
                body = await resp.read()
                s["status"] = resp.status
                s["headers"] = {h: resp.headers[h] for h in CACHE_HEADERS if h in resp.headers}
                s["content_type"] = resp.headers.get("Content-Type", "")
        except (aiohttp.ClientError, TimeoutError) as e:
            s.update(status=None, error=repr(e)[:200])
            samples[kind].append(s)
            return
        s["ms"] = 1000 * (time.monotonic() - due)
        s["bytes"] = len(body)
        if s["status"] == 200:
            s["id"], made = identity(kind, body)
            s["wall"] = wall0 + (due - t0)
            if made is not None:  # how old the render was when asked for (a lower bound)
                s["made"] = made
                s["age_s"] = round(s["wall"] - made, 3)
            if not any("shown" in x for x in samples[kind]):
                s["shown"] = shown(kind, body)
        samples[kind].append(s)

    schedule = sorted(
        (i / rate, kind) for kind, rate in rates.items() if rate > 0
        for i in range(int(rate * seconds))
    )  # fmt: skip
    async with aiohttp.ClientSession(
        base_url=base,
        connector=aiohttp.TCPConnector(limit=16),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as session:
        for offset, kind in schedule:
            due = t0 + offset
            if (delay := due - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(session, kind, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=35)
    for kind in samples:
        samples[kind].sort(key=lambda s: s["at_s"])
    by_build(samples)
    mark_new(samples)
    return samples


def by_build(samples: dict[str, list[dict]]) -> None:
    """Answers without a render time of their own (the HTML) get the build of the newest render
    time another endpoint showed (the JSON's ``generated_at``) that began before their answer
    arrived: one build serves both, and two builds can give the same HTML bytes (a page whose
    time shows minutes only, nothing changed meanwhile). Without render times, the bytes stay
    the identity. A request sent just before a build began (by another request) may still have
    been served the previous one: if its bytes are the previous build's and it came back sooner
    than half a build's time (from JSON requests that waited for a whole build), it gets that."""
    made = sorted({s["made"] for ss in samples.values() for s in ss if "made" in s})
    if not made:
        return
    waited = [  # JSON requests sent before their build began: they took a whole build
        s["wall"] + s["ms"] / 1000 - s["made"]
        for ss in samples.values()
        for s in ss
        if "made" in s and s["wall"] <= s["made"]
    ]
    build_s = min(waited) if waited else 0.0
    for ss in samples.values():
        body_of: dict[int, str] = {}  # build index -> the bytes (identity) seen for it
        for s in sorted(ss, key=lambda x: x["at_s"]):
            if "id" not in s or "made" in s:
                continue
            arrived = s["wall"] + s["ms"] / 1000
            i = bisect.bisect_right(made, arrived) - 1
            if i < 0:  # before the first build seen: keep the bytes
                continue
            if (
                i > 0
                and made[i] > s["wall"]
                and body_of.get(i - 1) == s["id"]
                and arrived - made[i] < build_s / 2
            ):
                i -= 1
            body_of.setdefault(i, s["id"])
            s["body_id"], s["id"], s["by_build"] = s["id"], f"build@{made[i]:.3f}", True
            s["age_s"] = round(s["wall"] - made[i], 3)


def analyse(kind: str, samples: list[dict], sites: int) -> dict[str, Any]:
    """Latency of the 200s; answers unlike the one before (new renders) against the others;
    how long one answer was served (first to last time it was seen)."""
    ok = [s for s in samples if s.get("status") == 200]
    statuses = Counter(str(s.get("status")) for s in samples if s.get("status") != 200)
    out: dict[str, Any] = {
        "path": PATHS[kind],
        "requests": len(samples),
        "ok": len(ok),
        "not_ok": dict(statuses),
        "first_error": next((s.get("error") for s in samples if s.get("error")), None),
        "ms": hb.pct([s["ms"] for s in ok]),
    }
    if not ok:
        return out
    first = ok[0]
    out["content_type"] = first["content_type"]
    out["cache_headers"] = first["headers"]
    out["bytes"] = statistics.median(s["bytes"] for s in ok)
    out["sites_shown"] = next((s["shown"] for s in ok if "shown" in s), None)
    out["sites"] = sites
    # A request that started before the first answer of its render had arrived waited for
    # that build (a miss made it, or another request's miss): "joined" a build, not a hit.
    ready: dict[str, float] = {}
    for s in ok:
        end = s["at_s"] + s["ms"] / 1000
        ready[s["id"]] = min(ready.get(s["id"], end), end)
    for s in ok:  # (the window's first answer is neither a miss nor joined: not known)
        s["joined"] = s.get("new") is False and s["at_s"] < ready[s["id"]]
    new = [s["ms"] for s in ok if s.get("new")]
    joined = [s["ms"] for s in ok if s["joined"]]
    same = [s["ms"] for s in ok if s.get("new") is False and not s["joined"]]
    seen: dict[str, list[float]] = {}  # each render: when it was first and last seen
    for s in ok:
        seen.setdefault(s["id"], [s["at_s"], s["at_s"]])[1] = s["at_s"]
    ages = [s["age_s"] for s in ok if "age_s" in s]
    out["cache"] = {
        # the first answer of the window is neither: it is not known when that one was made
        "new_answers": len(new),
        "joined_answers": len(joined),
        "same_answers": len(same),
        "changed_after_other_endpoint": sum(
            1 for a, b in itertools.pairwise(ok) if a["id"] != b["id"] and not b.get("new")
        ),
        "distinct_answers": len(seen),
        "new_ms": hb.pct(new),
        "joined_ms": hb.pct(joined),
        "same_ms": hb.pct(same),
        "longest_served_s": round(max(b - a for a, b in seen.values()), 2),
        "answers_per_render": round(len(ok) / len(seen), 1),
        "max_age_s": max(ages) if ages else None,  # from the render times in the answers
        "told_by": "render times (the JSON's)"
        if any("made" in s or s.get("by_build") for s in ok)
        else "the bytes",
    }
    return out


# --- one run ---------------------------------------------------------------------------------


async def one_run(
    args: argparse.Namespace, pristine: Path, workdir: Path, target_port: int, sites: int, run: int
) -> dict[str, Any]:
    db = workdir / f"run-{run}.db"
    copy_db(pristine, db)
    port = hb.free_port()
    env = hb.daemon_env(db, args.raw_days)
    env.update(OPTIMISATION="0", **dict(e.split("=", 1) for e in args.env))
    if args.uptimed_src is not None:  # that source tree instead of the installed package
        env["PYTHONPATH"] = str(args.uptimed_src.resolve())
        argv = [sys.executable, "-m", "uptimed", "--port", str(port)]
    else:
        uptimed = shutil.which("uptimed", path=str(Path(sys.executable).parent)) or "uptimed"
        argv = [uptimed, "--port", str(port)]
    daemon = hb.Child(argv, log=workdir / f"uptimed-{run}.log", env=env, cwd=workdir)
    base = f"http://127.0.0.1:{port}"
    res: dict[str, Any] = {"run": run, "sites": sites, "daemon_command": shlex.join(argv)}
    try:
        res["healthz_s"] = round(await hb.wait_http(base + "/healthz", daemon, 120), 2)
        pid = daemon.proc.pid
        warm = args.check_interval + 5
        say(f"run {run}: uptimed up in {res['healthz_s']} s (pid {pid}); warm-up {warm} s")
        async with aiohttp.ClientSession() as s:
            for kind, path in PATHS.items():  # is it there at all? (the first render, cold)
                t0 = time.monotonic()
                async with s.get(base + path) as r:
                    await r.read()
                    res[f"{kind}_first_status"] = r.status
                res[f"{kind}_first_ms"] = round(1000 * (time.monotonic() - t0), 1)
        if res["html_first_status"] != 200:
            say(f"  GET /status answered HTTP {res['html_first_status']}: not in this build?")
        await asyncio.sleep(warm)
        w0 = time.time()
        c0 = procstat.sample(pid, w0)
        m0 = procstat.machine_jiffies()
        say(
            f"  window {args.duration:g} s: /status {args.rate:g}/s,"
            f" /status.json {args.json_rate:g}/s"
        )
        rates = {"html": args.rate, "json": args.json_rate}
        samples = await load(base, rates, args.duration)
        w1 = max(time.time(), w0 + args.duration)
        c1 = procstat.sample(pid, time.time())
        m1 = procstat.machine_jiffies()
        res["window_s"] = round(w1 - w0, 1)
        cpu = procstat.cpu_report(c0, c1, pid)
        res["uptimed_cpu_pct"] = 100 * cpu["cpu_s"] / cpu["wall_s"]
        res["uptimed_loop_pct"] = 100 * cpu["main_thread_s"] / cpu["wall_s"]
        res["machine_cpu_pct"] = procstat.machine_busy_pct(m0, m1)
        await asyncio.sleep(GRACE_S)
        _, res["rss_peak"] = procstat.memory(pid)
        res["stop"] = {"exit_code": daemon.stop()}
        for kind in PATHS:
            res[kind] = analyse(kind, samples[kind], sites)
        step = args.check_interval
        ms0, ms1, grace = int(w0 * 1000), int(w1 * 1000), int(GRACE_S * 1000)
        origins = dbstats.grid_origins(db, (1, sites), step, ms0 - step * 1000, ms1 + grace)
        if origins:
            res["checks"] = dbstats.window_stats(
                db, (1, sites), step, ms0, ms1, grace, origins=origins
            )
        else:  # no check at all: nothing to measure lateness against
            res["checks"] = dict(NO_CHECKS)
        res["checks"]["sites_analysed"] = len(origins)
        res["raw_samples"] = samples if args.keep else None
    finally:
        code = daemon.stop()
        if code not in (0, None):
            res["log_tail"] = daemon.tail(10)
            say(f"uptimed exited {code}; log tail:\n{res['log_tail']}")
    return res


# --- report ----------------------------------------------------------------------------------


def _ms(p: dict) -> str:
    if p.get("p50") is None:
        return "no data"
    return f"{p['p50']:.1f} / {p['p99']:.1f} / {p['max']:.1f} ms (n {p['n']})"


def _endpoint_rows(r: dict, kind: str, goal: bool) -> list[tuple[str, str, str, str]]:
    e, path = r[kind], PATHS[kind]
    bad = ", ".join(f"{n} x HTTP {k}" for k, n in e["not_ok"].items())
    if e["not_ok"].get("404") or e["not_ok"].get("401"):
        bad += " (not in this build? 401: asks for a login)"
    if e["first_error"]:
        bad += f"; {e['first_error']}"
    p99 = e["ms"]["p99"]
    verdict = "PASS" if p99 is not None and p99 <= GOAL_P99_MS and not e["not_ok"] else "FAIL"
    rows = [
        (
            f"GET {path} p50 / p99 / max (no login, {e['requests']} requests)",
            _ms(e["ms"]) + (f"; {bad}" if bad else ""),
            f"p99 <= {GOAL_P99_MS:.0f} ms" if goal else f"(as /status: <= {GOAL_P99_MS:.0f})",
            verdict if goal else "info",
        )
    ]
    if not e["ok"]:
        return rows
    c = e["cache"]
    shown = e["sites_shown"]
    rows += [
        (
            f"  {path}: answer",
            f"{e['bytes'] / 1024:.0f} KiB {e['content_type']}; sites shown"
            f" {shown if shown is not None else '?'} of {e['sites']};"
            f" headers {e['cache_headers'] or 'no cache headers'}",
            f"{e['sites']} sites",
            "PASS" if shown == e["sites"] else "info",
        ),
        (
            f"  {path}: answers: misses (made a build) / joined a build / hits",
            f"{c['new_answers']} / {c['joined_answers']} / {c['same_answers']}"
            f" ({c['distinct_answers']} builds told by {c['told_by']},"
            f" {c['answers_per_render']} requests per build)",
            "",
            "info",
        ),
        (f"  {path}: latency of the new ones (misses)", _ms(c["new_ms"]), "", "info"),
        *(
            [
                (
                    f"  {path}: changed, but the other endpoint's request made that build",
                    f"{n} answers (not counted as misses)",
                    "",
                    "info",
                )
            ]
            if (n := c["changed_after_other_endpoint"])
            else []
        ),
        (
            f"  {path}: latency of those that joined a build under way",
            _ms(c["joined_ms"]),
            "",
            "info",
        ),
        (f"  {path}: latency of the hits (served from the cache)", _ms(c["same_ms"]), "", "info"),
        (
            f"  {path}: longest one build was served (first to last seen)",
            "no data" if c["longest_served_s"] is None else f"{c['longest_served_s']:.1f} s",
            f"<= {CACHE_MAX_S:.0f} s",
            "info"
            if c["longest_served_s"] is None
            else "PASS"
            if c["longest_served_s"] <= CACHE_MAX_S + 0.25
            else "over (or a re-render identical to the last)",
        ),
    ]
    if c["max_age_s"] is not None:
        rows.append(
            (
                f"  {path}: oldest build served (request time - the build's render time)",
                f"{c['max_age_s']:.2f} s",
                f"<= {CACHE_MAX_S:.0f} s",
                _pf(c["max_age_s"] <= CACHE_MAX_S + 0.05),
            )
        )
    return rows


def rows(r: dict) -> list[tuple[str, str, str, str]]:
    w = r["checks"]
    late = w["lateness_ms"]
    p99 = late["p99"]
    out = _endpoint_rows(r, "html", True) + _endpoint_rows(r, "json", False)
    out += [
        (
            f"daemon checks in the window: scheduled / done ({w['sites_analysed']} of"
            f" {r['sites']} sites checked)",
            f"{w['scheduled']} / {w['done']} ({w['scheduled_per_s']:.1f}/s)",
            "",
            "info",
        ),
        (
            "check lateness p50 / p99 / max",
            "no data"
            if p99 is None
            else f"{late['p50']:.0f} / {p99:.0f} / {late['max']:.0f} ms"
            f" ({w['late_over_500ms']} > 500 ms)",
            f"p99 <= {GOAL_LATENESS_P99_MS} ms",
            "info" if p99 is None else "PASS" if p99 <= GOAL_LATENESS_P99_MS else "FAIL",
        ),
        (
            "missed checks",
            f"{w['missed']} of {w['scheduled']}",
            "0",
            _pf(w["missed"] == 0) if w["scheduled"] else "info",
        ),
        ("checks DOWN in the window", f"{w['down']}", "0", _pf(w["down"] == 0)),
        (
            "uptimed CPU in the window, % of one core",
            f"{r['uptimed_cpu_pct']:.0f} (event-loop thread {r['uptimed_loop_pct']:.0f});"
            f" machine {r['machine_cpu_pct']:.0f} of 200",
            "",
            "info",
        ),
        ("uptimed spawn -> /healthz on the year's file", f"{r['healthz_s']:.2f} s", "", "info"),
        (
            "first GET /status, /status.json after /healthz (cold, before the warm-up)",
            f"{r['html_first_ms']:.0f} ms (HTTP {r['html_first_status']}),"
            f" {r['json_first_ms']:.0f} ms (HTTP {r['json_first_status']})",
            "",
            "info",
        ),
    ]
    return out


def _pf(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


FIGURES = [
    Figure(
        "GET /status p99, ms",
        _get("html", "ms", "p99"),
        fmt="{:.1f}",
        goal=f"<= {GOAL_P99_MS:.0f}",
        judge=_le(GOAL_P99_MS),
    ),
    Figure(
        "GET /status answers not 200",
        lambda r: r["html"]["requests"] - r["html"]["ok"],
        goal="0",
        judge=_le(0),
    ),
    Figure("GET /status p50, ms", _get("html", "ms", "p50"), fmt="{:.1f}"),
    Figure("GET /status max, ms", _get("html", "ms", "max"), fmt="{:.1f}"),
    Figure("  new answers (misses) p50, ms", _get("html", "cache", "new_ms", "p50"), fmt="{:.1f}"),
    Figure("  new answers (misses) max, ms", _get("html", "cache", "new_ms", "max"), fmt="{:.1f}"),
    Figure("  joined a build p99, ms", _get("html", "cache", "joined_ms", "p99"), fmt="{:.1f}"),
    Figure("  hits p99, ms", _get("html", "cache", "same_ms", "p99"), fmt="{:.1f}"),
    Figure("  new answers, count", _get("html", "cache", "new_answers")),
    Figure(
        "  longest one build was served, s",
        _get("html", "cache", "longest_served_s"),
        fmt="{:.1f}",
        goal=f"<= {CACHE_MAX_S:.0f}",
    ),
    Figure(
        "  /status: oldest build served, s",
        _get("html", "cache", "max_age_s"),
        fmt="{:.2f}",
        goal=f"<= {CACHE_MAX_S:.0f}",
        judge=_le(CACHE_MAX_S + 0.05),
    ),
    Figure(
        "  /status.json: oldest build served, s",
        _get("json", "cache", "max_age_s"),
        fmt="{:.2f}",
        goal=f"<= {CACHE_MAX_S:.0f}",
        judge=_le(CACHE_MAX_S + 0.05),
    ),
    Figure("GET /status.json p99, ms", _get("json", "ms", "p99"), fmt="{:.1f}"),
    Figure("GET /status.json p50, ms", _get("json", "ms", "p50"), fmt="{:.1f}"),
    Figure("GET /status.json answers not 200", lambda r: r["json"]["requests"] - r["json"]["ok"]),
    Figure(
        "check lateness p99, ms",
        _get("checks", "lateness_ms", "p99"),
        goal=f"<= {GOAL_LATENESS_P99_MS}",
        judge=_le(GOAL_LATENESS_P99_MS),
    ),
    Figure("missed checks", _get("checks", "missed"), goal="0", judge=_le(0)),
    Figure("uptimed CPU, % of one core", _get("uptimed_cpu_pct")),
    Figure("machine CPU, % of one core (2 = 200)", _get("machine_cpu_pct")),
]


def summary(runs: list[dict]) -> list[tuple[str, ...]]:
    return summary_rows(runs, FIGURES)


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 91 days (2 raw), checks every 10 s, 30 s window, 1 run",
    )
    ap.add_argument("--sites", type=int, default=100, help="public sites (100)")
    ap.add_argument("--days", type=int, help="days of simulated history (365)")
    ap.add_argument("--raw-days", type=float, help="days of raw checks kept (30)")
    ap.add_argument("--interval", type=int, default=60, help="the year's check interval, s (60)")
    ap.add_argument(
        "--check-interval", type=int, help="the daemon's check interval, s (default --interval)"
    )
    ap.add_argument("--duration", type=float, help="the window, s (60; >= 30 to see expiries)")
    ap.add_argument("--rate", type=float, default=5, help="GET /status per second (5)")
    ap.add_argument("--json-rate", type=float, default=2, help="GET /status.json per second (2)")
    ap.add_argument("--repeat", type=int, help="runs, each on a fresh copy of the file (3)")
    ap.add_argument("--env", action="append", default=[], metavar="K=V", help="extra uptimed env")
    ap.add_argument(
        "--uptimed-src",
        type=Path,
        metavar="DIR",
        help="run uptimed from this tree (a directory holding uptimed/), as run.py",
    )
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--workdir", type=Path, help="where the database goes (default a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the files; every sample in the JSON")
    ap.add_argument("--json", type=Path, help="default benchmarks/results/status-<time>.json")
    args = ap.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key in ("days", "raw_days", "duration", "repeat", "check_interval"):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    args.check_interval = args.check_interval or args.interval
    if args.sites < 1 or args.repeat < 1 or args.rate <= 0 or args.json_rate < 0:
        ap.error("--sites, --repeat >= 1, --rate > 0, --json-rate >= 0")
    if args.interval < 1 or args.check_interval < 1 or args.raw_days < 2 or args.days < 91:
        ap.error("--interval, --check-interval >= 1, --raw-days >= 2 and --days >= 91")
    return args


async def main_async(args: argparse.Namespace, workdir: Path, out: dict[str, Any]) -> None:
    pristine = workdir / "year.db"
    now = int(time.time() * 1000)
    plan = hb.Plan(args.sites, args.raw_days, args.interval * 1000, args.days, args.seed, now)
    say(
        f"fill: {args.sites} sites, {args.days} days every {args.interval} s"
        f" ({args.raw_days:g} raw days, rollups, incidents), straight into SQLite"
    )
    with redirect_stdout(sys.stderr):  # its progress lines, away from the tables
        # in a thread: fill runs asyncio.run itself (Store.open makes the schema)
        out["fill"] = await asyncio.to_thread(hb.fill, pristine, plan, Retention(args.raw_days))
    target_port = hb.free_port()
    sites = make_public(pristine, target_port)
    if args.check_interval != args.interval:
        set_interval(pristine, args.check_interval)
    out["fill"]["public_sites"] = sites
    out["size"] = hb.file_size(pristine)
    say(f"  {json.dumps(out['fill']['rows'])}; {out['size']['total'] / 2**20:.0f} MiB")
    target = hb.Child(
        [sys.executable, "-c", hb.TARGET_SCRIPT, str(target_port)],
        log=workdir / "target.log",
        env=dict(os.environ),
        cwd=workdir,
    )
    out["runs"] = []
    try:
        await hb.wait_http(f"http://127.0.0.1:{target_port}/", target, 20)
        for run in range(1, args.repeat + 1):
            res = await one_run(args, pristine, workdir, target_port, sites, run)
            out["runs"].append(res)
            label = f" (run {run} of {args.repeat})" if args.repeat > 1 else ""
            print(
                f"\n## status page, {sites} public sites, a year of history, checks every"
                f" {args.check_interval} s{label}"
            )
            print(format_table(rows(res)))
            with suppress(FileNotFoundError):
                (workdir / f"run-{run}.db").unlink()
    finally:
        target.stop()
    if args.repeat > 1:
        print(f"\n## status page: {args.repeat} runs, median (worst)")
        out["summary"] = summary(out["runs"])
        print(format_table(out["summary"], ("figure", "median (worst)", "goal", "verdict")))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)  # so `kill` of the harness still cleans up
    command = shlex.join([sys.executable, *sys.argv])
    made = args.workdir is None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="uptimed-status-", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    if (workdir / "year.db").exists():
        sys.exit(f"{workdir / 'year.db'} exists: pick another --workdir")
    facts = hb.machine()
    print(f"command: {command}")
    print("machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()))
    if args.duration < 3 * CACHE_MAX_S:
        print(f"note: a window under {3 * CACHE_MAX_S:.0f} s sees few cache expiries")
    out: dict[str, Any] = {"command": command, "machine": facts, "config": vars(args)}
    path = args.json or RESULTS / f"status-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    try:
        asyncio.run(main_async(args, workdir, out))
    except KeyboardInterrupt:
        say("interrupted; everything started was stopped")
        return 130
    finally:
        if args.keep:
            say(f"kept {workdir}")
        elif made:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for name in ("year.db", "year.db-wal", "year.db-shm"):
                with suppress(FileNotFoundError):
                    (workdir / name).unlink()
    out["machine"]["loadavg_at_end"] = os.getloadavg()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
