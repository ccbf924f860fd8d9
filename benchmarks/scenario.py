"""The phases of one benchmark run: the bare loop, uptimed under load, the restarts.

``run_mode`` runs one connection mode end to end and returns its results as a dict (the JSON),
with ``--hung`` sites among the healthy ones if asked; ``run_restart_big`` measures a restart
with sites written straight into SQLite; ``run_series`` measures CPU per check across site
counts at one rate. Every wait is bounded; uptimed is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from benchmarks import bare_client, dbstats, procstat, profile, report
from benchmarks.daemon import Daemon, api_session, create_sites, probe_api, scrape_metrics
from benchmarks.hang import HangServer
from benchmarks.target import MARKER, Target, free_port, usage

LATENESS_BUDGET_MS = 500  # the throughput goal's p99 lateness, allowed after a restart too
LONG_INTERVAL = 86_400  # burst sites: checked once at creation, then not again during the run
HUNG_TIMEOUT_S = 5  # --hung: timeout_seconds of every site (the "default timeout 5 s")
HANG_PATH = "/hang/"  # in the URL of every hung site, and of no other
# What the sites check (--kinds): plain http://, https:// (verified against the run's CA),
# tcp:// (connect only) and tcp:// with "tls": true (connect and TLS handshake).
KINDS = ("http", "tcp", "https", "tcp-tls")
TCP_KINDS = ("tcp", "tcp-tls")
TLS_KINDS = ("https", "tcp-tls")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


async def sleep_until(wall: float) -> None:
    if (delay := wall - time.time()) > 0:
        await asyncio.sleep(delay)


def site_url(kind: str, name: str, target: Target) -> str:
    """The URL a site of ``kind`` checks: a path of its own over HTTP(S), the port over TCP."""
    if kind == "https":
        return target.https_url(name)
    if kind == "tcp":
        return f"tcp://127.0.0.1:{target.port}"
    if kind == "tcp-tls":
        return f"tcp://127.0.0.1:{target.tls_port}"
    return target.url(name)


def bodies(
    count: int,
    interval: int,
    prefix: str,
    target: Target,
    keep_alive: bool,
    contains: str | None,
    kind: str = "http",
    timeout: float | None = None,
) -> list:
    """POST bodies; tcp:// sites carry none of the HTTP-only fields (the API refuses them)."""
    extra: dict = {"keep_alive": True} if keep_alive and kind not in TCP_KINDS else {}
    if kind not in TCP_KINDS:
        extra["expected_status_code"] = 200
    if kind in TLS_KINDS:
        extra["verify_tls"] = True  # the default, said out loud: verification is the real cost
    if kind == "tcp-tls":
        extra["tls"] = True
    if contains is not None:
        extra["body_contains"] = contains
    if timeout is not None:
        extra["timeout_seconds"] = timeout
    return [
        {
            "url": site_url(kind, f"{prefix}-{i}", target),
            "name": f"{prefix}-{i}",
            "check_interval_seconds": interval,
            **extra,
        }
        for i in range(count)
    ]


async def measure_bare(
    target: Target, *, rate: float, seconds: float, keep_alive: bool, kind: str = "http"
) -> dict:
    """The bare loop for ``kind``: aiohttp GETs (http, https), or asyncio connections (tcp)."""
    requests = int(rate * seconds) if rate else int(12_000 * seconds)
    before, t0 = procstat.group_cpu(target.pids()), time.time()
    result = await asyncio.to_thread(
        bare_client.run,
        site_url(kind, "bare", target),
        requests=requests,
        rate=rate,
        keep_alive=keep_alive,
        max_seconds=seconds,
        tls=kind == "tcp-tls",
        ca_file=target.ca_file if kind in TLS_KINDS else None,
    )
    result["target"] = usage(before, procstat.group_cpu(target.pids()), time.time() - t0)
    return result


@dataclass(frozen=True)
class Snapshot:
    """Everything read from /proc (and nginx) at one edge of the window."""

    cpu: procstat.CpuSample
    counters: dict[str, int] | None
    target_cpu: dict[int, float]
    machine: tuple[int, int]
    harness_cpu: float
    processes: dict[int, tuple[str, float]]
    rss: int


def snapshot(daemon: Daemon, target: Target) -> Snapshot:
    times = os.times()
    return Snapshot(
        cpu=procstat.sample(daemon.pid, time.time()),
        counters=target.counters(),
        target_cpu=procstat.group_cpu(target.pids()),
        machine=procstat.machine_jiffies(),
        harness_cpu=times.user + times.system,
        processes=procstat.all_processes(),
        rss=procstat.memory(daemon.pid)[0],
    )


async def snapshot_at(wall: float, daemon: Daemon, target: Target) -> Snapshot:
    await sleep_until(wall)
    return snapshot(daemon, target)


async def restart(
    daemon: Daemon,
    ids: tuple[int, int],
    interval: int,
    extra_s: float,
    stop_timeout: float = 30,
    skip: set[int] | None = None,
) -> dict:
    """Start ``daemon`` on its existing file, watch until every site in ``ids`` was checked (or
    one interval + ``extra_s`` after spawn), stop it, and read each site's first check.

    A site is on time when its first check comes at most its interval after uptimed is ready
    (``/healthz`` answers), plus the 500 ms lateness budget; the strict count (interval after
    the process was spawned) is reported too. Sites in ``skip`` (hung ones) are watched but
    left out of the counts.
    """
    daemon.start()
    watcher = dbstats.CheckWatcher(daemon.db_path, ids, int(daemon.spawned_at * 1000))
    sites = watcher.sites
    healthz = await daemon.wait_healthy(120)
    rss_healthy = procstat.memory(daemon.pid)[0]
    s0 = procstat.sample(daemon.pid, time.time())
    deadline = daemon.spawned_at + interval + extra_s
    while time.time() < deadline:
        await asyncio.sleep(min(2.0, max(0.0, deadline - time.time())))
        if await asyncio.to_thread(watcher.checked) >= sites:
            break
    s1 = procstat.sample(daemon.pid, time.time())
    loop = procstat.cpu_report(s0, s1, daemon.pid)
    rss_end, rss_peak = procstat.memory(daemon.pid)
    stop = daemon.stop(timeout=stop_timeout)
    first = await asyncio.to_thread(watcher.first_checks)
    if skip:
        first = {k: v for k, v in first.items() if k not in skip}
        sites = len(first)
    spawn_ms = daemon.spawned_at * 1000
    delays = [t - spawn_ms for t in first.values() if t is not None]
    ready_ms = healthz * 1000 + LATENESS_BUDGET_MS
    return {
        "sites": sites,
        "interval": interval,
        "healthz_s": round(healthz, 3),
        "checked": len(delays),
        "within_interval_of_spawn": sum(1 for d in delays if d <= interval * 1000),
        "on_time": sum(1 for d in delays if d <= ready_ms + interval * 1000),
        "all_checked_s": round(max(delays) / 1000, 1) if len(delays) == sites else None,
        "first_check_s": round(min(delays) / 1000, 2) if delays else None,
        "rss_healthy": rss_healthy,
        "rss_end": rss_end,
        "rss_peak": rss_peak,
        "cpu_pct": 100 * loop["cpu_s"] / loop["wall_s"] if loop["wall_s"] > 0 else 0.0,
        "loop_thread": {k: v for k, v in loop.items() if k.startswith("main_")},
        "stop": stop,
    }


async def site_view(api: aiohttp.ClientSession, site_id: int | None) -> dict | str | None:
    """``GET /sites/{id}``'s answer, or what went wrong as text."""
    if site_id is None:
        return None
    try:
        async with api.get(f"/sites/{site_id}") as resp:
            if resp.status != 200:
                return f"HTTP {resp.status}"
            return await resp.json()
    except (aiohttp.ClientError, TimeoutError) as e:
        return repr(e)


async def control_status(api: aiohttp.ClientSession, site_id: int | None) -> str | None:
    """The control site's status (it must be DOWN), or what went wrong reading it."""
    view = await site_view(api, site_id)
    return view.get("status") if isinstance(view, dict) else view


def control_body(kind: str, target: Target, keep_alive: bool, body_contains: bool) -> dict | None:
    """One long-interval site that must be DOWN when the build really does what the phase
    measures (and would be UP if it ignored the field or the scheme), with what it shows."""
    if body_contains:  # its text is absent from the answer
        body = bodies(1, LONG_INTERVAL, "control", target, keep_alive, MARKER + "-absent")[0]
        return {**body, "what": "body_contains text not in the answer"}
    url = {
        "tcp": f"tcp://127.0.0.1:{free_port()}",  # nothing listens there
        "https": f"https://127.0.0.1:{target.port}/s/control",  # plain HTTP: no handshake
        "tcp-tls": f"tcp://127.0.0.1:{target.port}",  # plain HTTP: no handshake
    }.get(kind)
    if url is None:
        return None
    what = {
        "tcp": "tcp:// to a closed port",
        "https": "https:// to the plain-HTTP port",
        "tcp-tls": "tcp:// with tls to the plain-HTTP port",
    }[kind]
    body = bodies(1, LONG_INTERVAL, "control", target, keep_alive, None, kind)[0]
    return {**body, "url": url, "what": what}


async def create_control(api: aiohttp.ClientSession, body: dict | None) -> int | None:
    if body is None:
        return None
    made = await create_sites(api, [{k: v for k, v in body.items() if k != "what"}])
    if made.errors:
        log(f"control site refused: {made.errors[0]}")
    return made.ids[0] if made.ids else None


async def run_mode(
    args: argparse.Namespace,
    target: Target,
    work: Path,
    keep_alive: bool,
    body_contains: bool = False,
    kind: str = "http",
    hang: HangServer | None = None,
) -> dict:
    """One phase: ``keep_alive`` picks the connection mode; ``body_contains`` gives every site
    ``"body_contains": MARKER``; ``kind`` is what the sites check (``KINDS``). Phases other
    than plain http add one control site that must end DOWN (``control_body``). With
    ``args.hung`` (and ``hang``), that many more sites check the hang server, created among
    the healthy ones so both load the interval evenly; the window's figures are the healthy
    sites', the hung ones' end state and the false alerts are in ``res["hung"]``."""
    mode = "keep-alive" if keep_alive else "new connection per check"
    contains = MARKER if body_contains else None
    rate = args.sites / args.interval
    res: dict = {
        "mode": mode
        + (", body_contains" if body_contains else "")
        + (f", {kind}" if kind != "http" else ""),
        "connection": mode,
        "kind": kind,
        "config": {
            k: getattr(args, k)
            for k in ("sites", "interval", "duration", "burst_sites", "hung", "nofile_soft")
        },
        "answer_bytes": None if kind in TCP_KINDS else target.answer_bytes,
        "body_contains": contains,
    }
    bare = "asyncio connections" if kind in TCP_KINDS else "aiohttp loop"
    log(f"mode {res['mode']}: bare {bare}, max speed and {rate:.0f}/s")
    res["bare_max"] = await measure_bare(
        target, rate=0, seconds=args.bare_seconds, keep_alive=keep_alive, kind=kind
    )
    res["bare_paced"] = await measure_bare(
        target, rate=rate, seconds=args.bare_seconds, keep_alive=keep_alive, kind=kind
    )

    env = dict(e.split("=", 1) for e in args.env)
    if keep_alive:
        env["UPTIMED_KEEP_ALIVE"] = "1"
    if target.ca_file is not None:  # every phase of the run alike, so only the kind differs
        env.setdefault("SSL_CERT_FILE", str(target.ca_file))
    res["uptimed_env"] = env
    daemon = Daemon(
        work, work / "bench.db", free_port(), env, args.uptimed_src, nofile_soft=args.nofile_soft
    )
    hung = args.hung if hang is not None else 0
    timeout = HUNG_TIMEOUT_S if hung else None
    if hung:
        res["mode"] += f", {hung} hung sites (healthy figures without them)"
    try:
        daemon.start()
        res["startup"] = {"healthz_s": round(await daemon.wait_healthy(60), 3)}
        async with api_session(daemon, 32) as api:
            log(f"creating {args.burst_sites} sites as fast as possible")
            burst = await create_sites(
                api,
                bodies(
                    args.burst_sites,
                    LONG_INTERVAL,
                    "burst",
                    target,
                    keep_alive,
                    contains,
                    kind,
                    timeout,
                ),
            )
            res["create_burst"] = burst.summary()
            burst_rate = burst.summary()["sites_per_s"] or rate
            control_site = control_body(kind, target, keep_alive, body_contains)
            control = await create_control(api, control_site)
            if control_site is not None:
                res["control"] = {"what": control_site["what"], "url": control_site["url"]}
            total_rate = (args.sites + hung) / args.interval
            m = args.create_intervals or max(1, math.ceil(total_rate / (0.5 * burst_rate)))
            res["create_intervals"] = m
            log(
                f"creating {args.sites} sites"
                + (f" and {hung} hung ones" if hung else "")
                + f" paced over {m} x {args.interval} s"
            )
            main = await create_sites(
                api,
                with_hung(
                    bodies(
                        args.sites,
                        args.interval,
                        "site",
                        target,
                        keep_alive,
                        contains,
                        kind,
                        timeout,
                    ),
                    hung,
                    hang,
                ),
                spread_s=m * args.interval,
                deadline_s=1.5 * m * args.interval + 60,
            )
            res["create_paced"] = main.summary()
            if not main.ids:
                raise RuntimeError(f"no site created: {main.errors[:3]}")
            ids = (min(main.ids), max(main.ids))
            hung_ids = (
                await asyncio.to_thread(dbstats.sites_with_url, daemon.db_path, ids, HANG_PATH)
                if hung
                else set()
            )
            res["sites_total"] = len(main.ids) + len(burst.ids)
            w0 = time.time() + args.interval
            w1 = w0 + args.duration
            wmid = w0 + args.duration / 2
            log(f"warm-up {args.interval} s, then the window of {args.duration} s")
            await sleep_until(w0)
            a = snapshot(daemon, target)
            scrape = (
                asyncio.create_task(scrape_metrics(daemon, args.scrape_metrics, w1))
                if getattr(args, "scrape_metrics", 0)
                else None
            )
            await sleep_until(wmid)
            s1 = procstat.sample(daemon.pid, time.time())
            log("second half: API probe" + (" and py-spy" if args.profile else ""))
            end = asyncio.create_task(snapshot_at(w1, daemon, target))  # on time, not after
            jobs = [
                probe_api(
                    api,
                    main.ids,
                    rate=args.api_rate,
                    seconds=w1 - time.time(),
                    history_limit=args.history_limit,
                )
            ]
            secs = int(min(args.profile, w1 - time.time() - 1))
            if secs >= 1:
                out_file = args.json_path.with_suffix(f".{work.name}.speedscope.json")
                jobs.append(profile.record(daemon.pid, secs, out_file))
            probe, *prof = await asyncio.gather(*jobs)
            res["api"] = probe
            b = await end
            rss_end = b.rss
            if scrape is not None:
                res["metrics_scrape"] = await scrape
            if hung and hang is not None:
                nofile = procstat.open_files_limit(daemon.pid)
                held_at_end = hang.held()
            log(f"grace {args.interval} s for late checks of the window")
            await asyncio.sleep(args.interval)
            res["control_status"] = await control_status(api, control)
            if kind in TLS_KINDS:  # the certificate the checks read, as the API shows it
                view = await site_view(api, main.ids[0])
                res["certificate"] = view.get("tls_certificate") if isinstance(view, dict) else view
            _, rss_peak = procstat.memory(daemon.pid)
        res["memory"] = {"rss_end": rss_end, "rss_peak": rss_peak}
        res["stop"] = daemon.stop()
        log("analysing the database")
        ms = (int(w0 * 1000), int(w1 * 1000), int(wmid * 1000))
        healthy = (
            await asyncio.to_thread(dbstats.created_at, daemon.db_path, ids, hung_ids)
            if hung
            else None
        )
        w = await asyncio.to_thread(
            dbstats.window_stats,
            daemon.db_path,
            ids,
            args.interval,
            ms[0],
            ms[1],
            args.interval * 1000,
            origins=healthy,
            spans=scrape_spans(res.get("metrics_scrape")),
        )
        res["window"] = w
        if hung and healthy is not None:
            last = await asyncio.to_thread(dbstats.last_status, daemon.db_path, hung_ids, ms[1])
            res["hung"] = {
                "sites": len(hung_ids),
                "timeout_seconds": timeout,
                "down_at_end": sum(1 for v in last.values() if v == "DOWN"),
                "up_at_end": sum(1 for v in last.values() if v == "UP"),
                "never_checked": len(hung_ids) - len(last),
                "false_alerts": await asyncio.to_thread(
                    dbstats.alerts, daemon.db_path, set(healthy), ms[0], ms[1]
                ),
                "nofile": nofile,
                "held_at_end": held_at_end,
            }
        checks = await asyncio.to_thread(dbstats.count_checks, daemon.db_path, ms[0], ms[2])
        res["first_check_ms"] = await asyncio.to_thread(
            dbstats.first_check_delays, daemon.db_path, ids
        )
        res["storage"] = await asyncio.to_thread(dbstats.storage, daemon.db_path)

        quiet = procstat.cpu_report(a.cpu, s1, daemon.pid)
        whole = procstat.cpu_report(a.cpu, b.cpu, daemon.pid)
        checks = max(1, checks)
        res["cpu"] = {
            "first_half": quiet,
            "window": whole,
            "checks_first_half": checks,
            "us_per_check": 1e6 * quiet["cpu_s"] / checks,
            "main_us_per_check": 1e6 * quiet["main_thread_s"] / checks,
            "other_us_per_check": 1e6 * quiet["other_threads_s"] / checks,
            "us_per_check_window": 1e6 * whole["cpu_s"] / max(1, w["done_all_sites"]),
            "pct_of_one_core": 100 * quiet["cpu_s"] / quiet["wall_s"],
            "main_pct": 100 * quiet["main_thread_s"] / quiet["wall_s"],
        }
        bare_us = res["bare_paced"]["cpu_us_per_request"] or math.inf
        res["ratio_same_rate"] = res["cpu"]["us_per_check"] / bare_us
        res["ratio_max_speed"] = res["cpu"]["us_per_check"] / (
            res["bare_max"]["cpu_us_per_request"] or math.inf
        )
        res["growth_mib_per_hour"] = (
            res["storage"]["bytes_per_row"] * w["done_per_s"] * 3600 / report.MIB
        )
        wall = b.cpu.wall - a.cpu.wall
        res["target"] = {"kind": target.kind, **usage(a.target_cpu, b.target_cpu, wall)}
        k0, k2 = a.counters, b.counters
        if k0 and k2 and k2["accepts"] > k0["accepts"]:
            res["requests_per_connection"] = (k2["requests"] - k0["requests"]) / (
                k2["accepts"] - k0["accepts"]
            )
        everything = procstat.machine_busy_pct(a.machine, b.machine)
        harness = 100 * (b.harness_cpu - a.harness_cpu) / wall
        res["machine_cpu"] = {
            "all": everything,
            "uptimed": 100 * whole["cpu_s"] / wall,
            "target": res["target"]["cpu_pct_of_one_core"],
            "harness": harness,
        }
        res["machine_cpu"]["rest"] = everything - sum(
            res["machine_cpu"][k] for k in ("uptimed", "target", "harness")
        )
        ours = {os.getpid(), daemon.pid, *target.pids()}
        if hang is not None and hang.pid is not None:
            ours.add(hang.pid)
        res["machine_cpu"]["busiest_others"] = procstat.busiest_others(
            a.processes, b.processes, wall, ours
        )
        if prof and prof[0] is not None:
            res["profile"] = {"file": str(prof[0]), "threads": profile.summarise(prof[0], 25)}

        log(f"restart on the same database ({len(main.ids)} sites)")
        res["restart"] = await restart(daemon, ids, args.interval, extra_s=15, skip=hung_ids)
        if "hung" in res:  # the whole log: the window and the restart
            res["hung"]["log_open_file_lines"] = daemon.log_lines("open file")[:20]
            res["hung"]["too_many_open_files"] = len(daemon.log_lines("too many open files"))
    finally:
        daemon.kill()
        if daemon.proc is not None and daemon.proc.returncode not in (0, None):
            log(f"uptimed exited {daemon.proc.returncode}; log tail:\n{daemon.log_tail()}")
    return res


SCRAPE_AFTER_MS = 1000  # checks due this long after a scrape's end still count as during it


def scrape_spans(scrape: dict | None) -> list[tuple[int, int]]:
    """Each ``--scrape-metrics`` scrape, from its start to 1 s after its end (ms), merged
    where they touch: the checks due then are the ones a scrape could make late."""
    out: list[tuple[int, int]] = []
    for a, b in (scrape or {}).get("spans_ms", []):
        b += SCRAPE_AFTER_MS
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def with_hung(healthy: list[dict], hung: int, hang: HangServer | None) -> list:
    """``healthy`` with ``hung`` bodies for the hang server spread evenly among them, so the
    paced creation puts both kinds evenly over the interval."""
    if not hung or hang is None:
        return healthy
    template = {k: v for k, v in healthy[0].items() if k not in ("url", "name", "body_contains")}
    total, out, j = len(healthy) + hung, [], 0
    for i in range(total):
        if (i + 1) * hung // total > i * hung // total:
            out.append({**template, "url": hang.url(j), "name": f"hung-{j}"})
            j += 1
        else:
            out.append(healthy[i - j])
    return out


async def run_restart_big(args: argparse.Namespace, target: Target, work: Path) -> dict:
    """Restart with ``--restart-sites`` sites written straight into SQLite (not via the API)."""
    env = dict(e.split("=", 1) for e in args.env)
    daemon = Daemon(work, work / "big.db", free_port(), env, args.uptimed_src)
    try:
        daemon.start()  # creates the schema (and runs any migration) on the empty file
        await daemon.wait_healthy(60)
        daemon.stop()
        t0 = time.monotonic()
        ids = await asyncio.to_thread(
            dbstats.insert_sites_direct,
            daemon.db_path,
            args.restart_sites,
            args.restart_interval,
            lambda i: target.url(f"big-{i}"),
            int(time.time() * 1000),
            checked_before=not args.restart_never_checked,
        )
        insert_s = time.monotonic() - t0
        log(f"{args.restart_sites} sites written directly; starting uptimed")
        res = await restart(daemon, ids, args.restart_interval, extra_s=30, stop_timeout=60)
        res["insert_s"] = insert_s
        res["checked_before"] = not args.restart_never_checked
    finally:
        daemon.kill()
    return res


SERIES_WARMUP_S = 5  # --series: after the first interval, before the window


async def run_series(args: argparse.Namespace, target: Target, work: Path) -> dict:
    """``--series``: CPU per check at one rate across site counts. Each repetition measures
    the bare loop at ``--rate`` once, then every count in turn (interleaved, so drift on the
    machine hits all counts alike), each on a fresh file with its sites written directly."""
    out: dict = {"rate": args.rate, "counts": args.series, "repetitions": []}
    for rep in range(args.repeat):
        log(f"series {rep + 1}/{args.repeat}: bare aiohttp loop at {args.rate:.0f}/s")
        bare = await measure_bare(
            target, rate=args.rate, seconds=args.bare_seconds, keep_alive=args.keep_alive
        )
        points = []
        for count in args.series:
            point = await series_point(args, target, work / f"{count}-{rep + 1}", count)
            bare_us = bare["cpu_us_per_request"] or math.inf
            point["ratio_same_rate"] = point["us_per_check"] / bare_us
            points.append(point)
        out["repetitions"].append({"run": rep + 1, "bare": bare, "points": points})
    return out


async def series_point(args: argparse.Namespace, target: Target, work: Path, count: int) -> dict:
    """One count of ``--series``: ``count`` sites written directly (each checked once in the
    last interval, so uptimed resumes uniform grids), interval ``count / rate``; one interval
    and a few seconds of warm-up after ``/healthz``, then the window.

    uptimed resumes a site on its seeded grid only if the next check is still ahead when it
    reads the file, which it does in the background after ``/healthz`` answers (an unknown
    moment); the others it respreads. So each site's grid is taken from its own checks around
    the window (``dbstats.grid_origins``), not from the seeded check.
    """
    interval = max(1, round(count / args.rate))
    # Whole intervals: uptimed may respread some sites' phases, and a window of whole
    # intervals counts each site's checks alike whatever its phase.
    window = interval * math.ceil((args.series_window or max(2 * interval, 30)) / interval)
    grace = min(interval, 15)
    env = dict(e.split("=", 1) for e in args.env)
    if args.keep_alive:
        env["UPTIMED_KEEP_ALIVE"] = "1"
    daemon = Daemon(
        work, work / "series.db", free_port(), env, args.uptimed_src, nofile_soft=args.nofile_soft
    )
    res: dict = {"sites": count, "interval": interval, "rate": count / interval, "window_s": window}
    try:
        daemon.start()  # the schema (and any migration) on the empty file
        await daemon.wait_healthy(60)
        daemon.stop()
        t0 = time.monotonic()
        ids = await asyncio.to_thread(
            dbstats.insert_sites_direct,
            daemon.db_path,
            count,
            interval,
            lambda i: target.url(f"series-{i}"),
            lambda: int(time.time() * 1000),
            checked_before=True,
        )
        res["insert_s"] = round(time.monotonic() - t0, 2)
        log(f"series: {count} sites every {interval} s written; starting uptimed")
        daemon.start()
        res["healthz_s"] = round(await daemon.wait_healthy(120), 3)
        ready = daemon.spawned_at + res["healthz_s"]
        w0 = ready + interval + SERIES_WARMUP_S
        w1 = w0 + window
        log(f"series: warm-up {interval + SERIES_WARMUP_S} s, window {window:.0f} s")
        await sleep_until(w0)
        a = procstat.sample(daemon.pid, time.time())
        m0 = procstat.machine_jiffies()
        await sleep_until(w1)
        b = procstat.sample(daemon.pid, time.time())
        m1 = procstat.machine_jiffies()
        rss_end, _ = procstat.memory(daemon.pid)
        await asyncio.sleep(grace)
        _, rss_peak = procstat.memory(daemon.pid)
        res["stop"] = daemon.stop()
        ms = (int(w0 * 1000), int(w1 * 1000))
        origins = await asyncio.to_thread(
            dbstats.grid_origins,
            daemon.db_path,
            ids,
            interval,
            ms[0] - interval * 1000,
            ms[1] + grace * 1000,
        )
        w = await asyncio.to_thread(
            dbstats.window_stats,
            daemon.db_path,
            ids,
            interval,
            ms[0],
            ms[1],
            grace * 1000,
            origins=origins,
        )
        checks = max(1, w["done_all_sites"])
        cpu = procstat.cpu_report(a, b, daemon.pid)
        res.update(
            {
                "window": w,
                "analysed_sites": len(origins),
                "unchecked_sites": count - len(origins),
                "checks": checks,
                "done_per_s": checks / cpu["wall_s"],
                "cpu": cpu,
                "us_per_check": 1e6 * cpu["cpu_s"] / checks,
                "main_us_per_check": 1e6 * cpu["main_thread_s"] / checks,
                "pct_of_one_core": 100 * cpu["cpu_s"] / cpu["wall_s"],
                "main_pct": 100 * cpu["main_thread_s"] / cpu["wall_s"],
                "rss_end": rss_end,
                "rss_peak": rss_peak,
                "machine_pct": procstat.machine_busy_pct(m0, m1),
            }
        )
    finally:
        daemon.kill()
        if daemon.proc is not None and daemon.proc.returncode not in (0, None):
            log(f"uptimed exited {daemon.proc.returncode}; log tail:\n{daemon.log_tail()}")
    return res
