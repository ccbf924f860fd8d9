"""The stdout table (figure | measured | goal | verdict) and the machine facts."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

MIB = 1024 * 1024
GOAL_RATE = 2000
GOAL_P99_MS = 500
GOAL_RATIO = 1.0  # issue 15: a check costs no more CPU than a bare aiohttp request, same run
GOAL_LOOP_BUSY_PCT = 60  # the event-loop thread's CPU at the scenario's rate, % of one core
GOAL_RSS_40K = 182 * MIB  # RSS at window end with 40,000 sites (issue 15)
GOAL_SPREAD_PCT = 15  # --series: CPU per check max / min - 1 across site counts
GOAL_BYTES_PER_ROW = 64
GOAL_API_P99_MS = 50
GOAL_HEALTHZ_S = 2.0
GOAL_SCRAPE_MS = 1000  # issue 13: a /metrics scrape at 40,000 sites
GOAL_BODY_CONTAINS_RATIO = 1.5  # CPU per check with body_contains : plain, same answer
RSS_BASE, RSS_PER_SITE = 100 * MIB, 2 * 1024
TCP_KINDS = ("tcp", "tcp-tls")  # as in scenario.KINDS
KIND_NAMES = {
    "http": "plain http",
    "https": "https, verified",
    "tcp": "tcp connect",
    "tcp-tls": "tcp + TLS handshake, verified",
}


def machine(src: Path | None = None) -> dict:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    repo = Path(__file__).resolve().parent.parent
    git = subprocess.run(
        ["git", "-C", str(src or repo), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    init = (src or repo) / "uptimed" / "__init__.py"
    found = re.search(r'__version__ = "([^"]+)"', init.read_text()) if init.exists() else None
    uptimed_version = found.group(1) if found else "?"
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "uptimed": uptimed_version,
        "uptimed_src": str(src or repo),
        "git": git or "not a git tree",
        "loadavg_at_start": os.getloadavg(),
    }


def _ms(p: dict, keys: tuple[str, ...] = ("p50", "p99", "max")) -> str:
    vals = [p.get(k) for k in keys]
    if any(v is None for v in vals):
        return "no data"
    return " / ".join(f"{v:.0f}" for v in vals) + " ms"


def _verdict(ok: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "info"}[ok]


def rows(r: dict) -> list[tuple[str, str, str, str]]:
    """The table of one mode's result."""
    w, cpu, out = r["window"], r["cpu"], []
    rate = w["scheduled_per_s"]
    held = w["missed"] == 0 and (w["lateness_ms"]["p99"] or 0) <= GOAL_P99_MS
    rate_verdict = ("PASS" if rate >= GOAL_RATE else "held, rate < goal") if held else "FAIL"
    who = "healthy sites' " if r.get("hung") else ""
    out.append(
        (
            f"{who}checks/s scheduled / done ({w['window_s']:.0f} s window, {w['sites']} sites"
            f" every {r['config']['interval']} s)",
            f"{rate:.0f} / {w['done_per_s']:.0f}",
            f">= {GOAL_RATE} held",
            rate_verdict,
        )
    )
    out.append(
        (
            "lateness p50 / p99 / max",
            _ms(w["lateness_ms"]) + f"  ({w['late_over_500ms']} checks > 500 ms)",
            f"p99 <= {GOAL_P99_MS} ms",
            _verdict((w["lateness_ms"]["p99"] or 0) <= GOAL_P99_MS),
        )
    )
    out.append(
        (
            "missed checks (grid points with no check)",
            f"{w['missed']} of {w['scheduled']}",
            "0",
            _verdict(w["missed"] == 0),
        )
    )
    out.append(
        (
            "lateness p99 per tenth of the window",
            " ".join("-" if b["p99_ms"] is None else f"{b['p99_ms']:.0f}" for b in w["buckets"]),
            "",
            "info",
        )
    )
    out += scrape_rows(r)
    out.append(
        (
            "checks DOWN in window (target errors)",
            f"{w['down']} {w['down_reasons'] or ''}".strip(),
            "0",
            _verdict(w["down"] == 0),
        )
    )
    out.append(
        (
            "check response time p50 / p99 / max",
            _ms(w["response_time_ms"]),
            "",
            "info",
        )
    )
    out += _check_rows(r)
    out.append(
        (
            "uptimed CPU per check (first half, no API load)",
            f"{cpu['us_per_check']:.0f} us (event-loop thread {cpu['main_us_per_check']:.0f},"
            f" other threads {cpu['other_us_per_check']:.0f});"
            f" {cpu['pct_of_one_core']:.0f}% of a core, loop thread {cpu['main_pct']:.0f}%",
            "",
            "info",
        )
    )
    out.append(
        (
            "event-loop thread busy (first half), % of one core",
            f"{cpu['main_pct']:.0f}% at {rate:.0f} checks/s scheduled",
            f"<= {GOAL_LOOP_BUSY_PCT}%",
            _verdict(cpu["main_pct"] <= GOAL_LOOP_BUSY_PCT),
        )
    )
    q = cpu["first_half"]
    if "main_on_cpu_pct" in q:
        out.append(
            (
                "event-loop thread: on CPU / waiting for a CPU / blocked or idle",
                f"{q['main_on_cpu_pct']:.0f}% / {q['main_runqueue_pct']:.0f}% /"
                f" {q['main_blocked_or_idle_pct']:.0f}% of the first half",
                "",
                "info",
            )
        )
    bp, bm = r["bare_paced"], r["bare_max"]
    bare = _bare_name(r)
    out.append(
        (
            f"{bare}, same mode, same rate ({bp['rate_target']:.0f}/s)",
            f"{bp['cpu_us_per_request']:.0f} us/request, {bp['requests_per_s']:.0f} req/s"
            f" ({bp['errors']} errors)",
            "",
            "info",
        )
    )
    out.append(
        (
            "ratio uptimed CPU/check : bare CPU/request (same rate, same run)",
            f"{r['ratio_same_rate']:.2f}  (vs bare at max speed: {r['ratio_max_speed']:.2f})",
            f"<= {GOAL_RATIO}",
            _verdict(r["ratio_same_rate"] <= GOAL_RATIO),
        )
    )
    out.append(
        (
            f"{bare}, same mode, max speed (32 workers)",
            f"{bm['requests_per_s']:.0f} req/s, {bm['cpu_us_per_request']:.0f} us/request,"
            f" {bm['cpu_pct_of_one_core']:.0f}% of a core",
            "",
            "info",
        )
    )
    mem, sites = r["memory"], r["sites_total"]
    goal = RSS_BASE + RSS_PER_SITE * sites
    out.append(
        (
            "RSS at window end / peak",
            f"{mem['rss_end'] / MIB:.0f} / {mem['rss_peak'] / MIB:.0f} MiB",
            f"<= {goal / MIB:.0f} MiB ({sites} sites)",
            _verdict(mem["rss_peak"] <= goal),
        )
    )
    if r["config"]["sites"] == 40_000:
        out.append(
            (
                "RSS at window end, 40,000 sites",
                f"{mem['rss_end'] / MIB:.0f} MiB",
                f"<= {GOAL_RSS_40K / MIB:.0f} MiB",
                _verdict(mem["rss_end"] <= GOAL_RSS_40K),
            )
        )
    out += hung_rows(r)
    st = r["storage"]
    out.append(
        (
            "SQLite bytes per history row, indexes included",
            f"{st['bytes_per_row']:.1f} ({st['history_rows']} rows; {st['method']})",
            f"<= {GOAL_BYTES_PER_ROW}",
            _verdict(st["bytes_per_row"] <= GOAL_BYTES_PER_ROW),
        )
    )
    out.append(
        (
            "DB growth per hour at the measured rate",
            f"{r['growth_mib_per_hour']:.0f} MiB/h",
            "",
            "info",
        )
    )
    api = r["api"]
    for key, label in (("site_ms", "GET /sites/{id}"), ("history_ms", "GET /sites/{id}/history")):
        p = api[key]
        out.append(
            (
                f"API {label} p50 / p99 / max under load ({api['rate'] / 2:.0f}/s)",
                _ms(p) + (f", {api['errors']} errors" if api["errors"] else ""),
                f"p99 <= {GOAL_API_P99_MS} ms",
                _verdict(p["p99"] is not None and p["p99"] <= GOAL_API_P99_MS),
            )
        )
    if p := api.get("healthz_ms"):
        out.append(
            (
                f"GET /healthz (no database) alongside ({api['rate'] / 2:.0f}/s)",
                _ms(p) + (f", {n} errors" if (n := api.get("healthz_errors")) else ""),
                "",
                "info",
            )
        )
    limit_note = (
        "limit ignored"
        if api["history_rows_max"] > api["history_limit"]
        else f"<= limit {api['history_limit']}"
    )
    out.append(
        ("history rows per answer (max)", f"{api['history_rows_max']} ({limit_note})", "", "info")
    )
    s = r["startup"]
    out.append(("start, empty DB: spawn -> /healthz", f"{s['healthz_s']:.2f} s", "", "info"))
    b, m = r["create_burst"], r["create_paced"]
    if b["created"]:
        out.append(
            (
                "create sites as fast as possible (32 connections)",
                f"{b['created']} in {b['wall_s']:.1f} s = {b['sites_per_s']:.0f}/s; POST"
                f" p50/p99 {b['post_latency_ms']['p50']:.0f}/{b['post_latency_ms']['p99']:.0f} ms",
                "",
                "info",
            )
        )
    at_burst = f"; at burst rate N would take {m['created'] / b['sites_per_s']:.0f} s"
    out.append(
        (
            f"create {m['created']} sites, paced over {r['create_intervals']} interval(s)",
            f"{m['wall_s']:.1f} s ({m['sites_per_s']:.0f}/s), max lag {m['max_lag_s']:.2f} s,"
            f" {m['errors']} errors" + (at_burst if b["created"] else ""),
            "",
            "info",
        )
    )
    f = r["first_check_ms"]
    out.append(("new site: creation -> first check p50 / p99 / max", _ms(f), "", "info"))
    rs = r["restart"]
    out.append(
        (
            f"restart with {rs['sites']} sites: spawn -> /healthz",
            f"{rs['healthz_s']:.2f} s",
            f"<= {GOAL_HEALTHZ_S} s (at 100k)",
            _verdict(rs["healthz_s"] <= GOAL_HEALTHZ_S),
        )
    )
    out.append(_restart_checked(rs))
    t = r["target"]
    reuse = r.get("requests_per_connection")
    out.append(
        (
            f"target ({t['kind']}) CPU in window",
            f"{t['cpu_pct_of_one_core']:.0f}% of one core (busiest process"
            f" {t['busiest_process_pct']:.0f}%)",
            "not saturated",
            _verdict(t["busiest_process_pct"] < 80),
        )
    )
    out.append(
        (
            "requests per connection at the target",
            "n/a" if reuse is None else f"{reuse:.2f}",
            "0 for tcp kinds" if r.get("kind") in TCP_KINDS else "1.00 unless keep-alive",
            "info",
        )
    )
    mc = r["machine_cpu"]
    out.append(
        (
            "machine CPU in window (% of one core, 2 = 200)",
            f"all {mc['all']:.0f}: uptimed {mc['uptimed']:.0f}, target {mc['target']:.0f},"
            f" harness {mc['harness']:.0f}, rest {mc['rest']:.0f}"
            + (f" ({', '.join(mc['busiest_others'])})" if mc.get("busiest_others") else ""),
            "",
            "info",
        )
    )
    return out


def scrape_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """``--scrape-metrics``: each scrape's wall time, the series it gave, and the lateness of
    the checks due during a scrape (up to 1 s after it). Empty without the flag."""
    m = r.get("metrics_scrape")
    if not m:
        return []
    bad = ", ".join(f"{n} x HTTP {k}" for k, n in m["not_ok"].items())
    if m["not_ok"].get("404"):
        bad += " (no /metrics in this build)"
    if m["first_error"]:
        bad += f"; {m['first_error']}"
    p = m["ms"]
    sites = r["config"]["sites"]
    out = [
        (
            f"GET /metrics scrape time p50 / max ({m['scrapes']} scrapes, every"
            f" {m['every_s']:g} s, {sites} sites)",
            ("no data" if p["p50"] is None else f"{p['p50']:.0f} / {p['max']:.0f} ms")
            + (f"; {bad}" if bad else ""),
            f"max <= {GOAL_SCRAPE_MS} ms (at 40,000 sites)",
            _verdict(p["max"] is not None and p["max"] <= GOAL_SCRAPE_MS and not m["not_ok"]),
        )
    ]
    if m["ok"]:
        lo, hi = m["series_min"], m["series_max"]
        out.append(
            (
                "/metrics series per scrape (lines not starting with #)",
                (f"{hi}" if lo == hi else f"{lo} - {hi}")
                + f"; {m['bytes_max'] / 1024:.0f} KiB at most, {m['content_type']}",
                "",
                "info",
            )
        )
    near = r.get("window", {}).get("in_spans")
    if near is not None:
        out.append(
            (
                "lateness p50 / p99 / max of checks due during a scrape (+1 s)",
                _ms(near) + f"  ({near['n']} checks)",
                f"p99 <= {GOAL_P99_MS} ms",
                "info" if near["p99"] is None else _verdict(near["p99"] <= GOAL_P99_MS),
            )
        )
    return out


def hung_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """``--hung``: the hung sites' end state, false alerts among the healthy, the open-file
    limit the daemon ran with and what its log said about it. Empty without ``--hung``."""
    h = r.get("hung")
    if not h:
        return []
    fa = h["false_alerts"]
    nofile = h["nofile"]
    return [
        (
            f"hung sites DOWN at window end (last check started before it; {h['sites']} sites)",
            f"{h['down_at_end']} of {h['sites']} ({h['never_checked']} never checked,"
            f" {h['up_at_end']} UP)",
            f"all {h['sites']}",
            _verdict(h["down_at_end"] == h["sites"]),
        ),
        (
            "false alerts: healthy sites with a DOWN check or an incident in the window",
            f"{fa['sites']} ({fa['down_rows']} DOWN rows, {fa['incidents']} incidents);"
            f" whole run before the restart: {fa['sites_whole_run']} sites",
            "0",
            _verdict(fa["sites"] == 0),
        ),
        (
            "uptimed RLIMIT_NOFILE soft / hard (/proc/PID/limits)",
            f"{nofile['soft']} / {nofile['hard']}",
            "",
            "info",
        ),
        (
            'uptimed log lines "Too many open files"',
            f"{h['too_many_open_files']}",
            "",
            "info",
        ),
        (
            "hang server: connections held at window end",
            f"{h['held_at_end']}",
            "",
            "info",
        ),
    ]


def _bare_name(r: dict) -> str:
    return "bare asyncio connect" if r.get("kind") in TCP_KINDS else "bare aiohttp"


def _check_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """What each check did (kind, answer size, assertion), and the phase's control site."""
    kind = r.get("kind", "http")
    size = r.get("answer_bytes")
    if kind in TCP_KINDS:
        out = [("check: kind", KIND_NAMES[kind] + ", no request", "", "info")]
    elif size is None:  # results from before --answer-kib
        return []
    else:
        what = f'body_contains "{r["body_contains"]}"' if r.get("body_contains") else "plain"
        how = "" if kind == "http" else f" over {KIND_NAMES[kind]}"
        out = [("check: answer size, assertion", f"{size} bytes, {what}{how}", "", "info")]
    status = r.get("control_status")
    control = r.get("control", {}).get("what")
    if control is None and r.get("body_contains"):  # results from before --kinds
        control = "body_contains text not in the answer"
    if control is not None:
        word = "asserted" if r.get("body_contains") else "probed"
        out.append(
            (
                f"control site, {control}",
                f"{status} ({word if status == 'DOWN' else f'not {word} by this build'})",
                "DOWN",
                _verdict(status == "DOWN"),
            )
        )
    if "certificate" in r:
        cert = r["certificate"]
        out.append(
            (
                "certificate read by the checks (GET /sites/{id})",
                f"{cert['subject']}, issuer {cert['issuer']}, {cert['days_left']} days left"
                if isinstance(cert, dict)
                else f"none ({cert})",
                "read",
                _verdict(isinstance(cert, dict)),
            )
        )
    return out


def kind_ratio(plain: dict, other: dict) -> dict:
    """A kind's phase's CPU per check against the plain http phase's, same connection mode."""
    return {
        "mode": plain["connection"],
        "kind": other["kind"],
        "plain_us_per_check": plain["cpu"]["us_per_check"],
        "kind_us_per_check": other["cpu"]["us_per_check"],
        "ratio": other["cpu"]["us_per_check"] / plain["cpu"]["us_per_check"],
        "plain_main_us": plain["cpu"]["main_us_per_check"],
        "kind_main_us": other["cpu"]["main_us_per_check"],
        "plain_bare_us": plain["bare_paced"]["cpu_us_per_request"] or 0.0,
        "kind_bare_us": other["bare_paced"]["cpu_us_per_request"] or 0.0,
        "checks_per_s": (plain["window"]["done_per_s"], other["window"]["done_per_s"]),
        "down": (plain["window"]["down"], other["window"]["down"]),
        "control_status": other.get("control_status"),
        "checked": other.get("control_status") == "DOWN",
    }


def kind_rows(pairs: list[dict]) -> list[tuple[str, str, str, str]]:
    """Per connection mode: plain http's CPU per check once, then each kind's and its ratio."""
    out, seen = [], set()
    for c in pairs:
        head = f"{c.get('label', c['mode'])}:"
        if head not in seen:
            seen.add(head)
            out.append(
                (
                    f"{head} CPU per check, {KIND_NAMES['http']}",
                    f"{c['plain_us_per_check']:.0f} us (event-loop thread"
                    f" {c['plain_main_us']:.0f}); {c['checks_per_s'][0]:.0f} checks/s, DOWN"
                    f" {c['down'][0]}; bare {c['plain_bare_us']:.0f} us",
                    "",
                    "info",
                )
            )
        checked = "" if c["checked"] else f" (control {c['control_status']}: NOT checked)"
        out.append(
            (
                f"{head} CPU per check, {KIND_NAMES[c['kind']]}",
                f"{c['kind_us_per_check']:.0f} us (event-loop thread {c['kind_main_us']:.0f});"
                f" {c['checks_per_s'][1]:.0f} checks/s, DOWN {c['down'][1]};"
                f" bare {c['kind_bare_us']:.0f} us",
                "",
                "info",
            )
        )
        out.append(
            (
                f"{head} ratio {c['kind']} : http",
                f"{c['ratio']:.2f}{checked}",
                "",
                "info",
            )
        )
    return out


def body_contains_ratio(plain: dict, body: dict) -> dict:
    """The body_contains phase's CPU per check against the plain phase's, same answer."""
    return {
        "mode": plain["connection"],
        "answer_bytes": body["answer_bytes"],
        "plain_us_per_check": plain["cpu"]["us_per_check"],
        "body_us_per_check": body["cpu"]["us_per_check"],
        "ratio": body["cpu"]["us_per_check"] / plain["cpu"]["us_per_check"],
        "plain_main_us": plain["cpu"]["main_us_per_check"],
        "body_main_us": body["cpu"]["main_us_per_check"],
        "bare_us_per_request": body["bare_paced"]["cpu_us_per_request"] or 0.0,
        "down": (plain["window"]["down"], body["window"]["down"]),
        "asserted": body.get("control_status") == "DOWN",
    }


def body_contains_rows(pairs: list[dict]) -> list[tuple[str, str, str, str]]:
    """One block per connection mode: both CPU per check figures and their ratio."""
    out = []
    for c in pairs:
        head = f"{c.get('label', c['mode'])}, {c['answer_bytes']} bytes:"
        for key, label in (("plain", "plain"), ("body", "body_contains")):
            out.append(
                (
                    f"{head} CPU per check, {label}",
                    f"{c[f'{key}_us_per_check']:.0f} us (event-loop thread"
                    f" {c[f'{key}_main_us']:.0f}); DOWN in window"
                    f" {c['down'][key == 'body']}",
                    "",
                    "info",
                )
            )
        asserted = "" if c["asserted"] else " (body_contains NOT asserted by this build)"
        out.append(
            (
                f"{head} ratio body_contains : plain",
                f"{c['ratio']:.2f}{asserted}; bare aiohttp {c['bare_us_per_request']:.0f}"
                " us/request",
                f"<= {GOAL_BODY_CONTAINS_RATIO}",
                _verdict(c["ratio"] <= GOAL_BODY_CONTAINS_RATIO) if c["asserted"] else "info",
            )
        )
    return out


def format_table(
    table: list[tuple[str, ...]], head: tuple[str, ...] = ("figure", "measured", "goal", "verdict")
) -> str:
    widths = [max(len(row[i]) for row in [head, *table]) for i in range(len(head))]
    line = " | ".join("-" * w for w in widths)
    fmt = " | ".join(f"{{:{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), line, *(fmt.format(*row) for row in table)])


def _restart_checked(r: dict) -> tuple[str, str, str, str]:
    return (
        "restart: sites checked within interval of ready (+0.5 s)",
        f"{r['on_time']}/{r['sites']} ({r['within_interval_of_spawn']} within interval of"
        f" spawn); {r['checked']} checked; last first-check {r['all_checked_s']} s after spawn,"
        f" first {r['first_check_s']} s",
        "all",
        _verdict(r["on_time"] == r["sites"]),
    )


def restart_big_rows(r: dict) -> list[tuple[str, str, str, str]]:
    out = [
        (
            f"{r['sites']} sites written directly into SQLite",
            f"in {r['insert_s']:.1f} s (not through the API), interval {r['interval']} s, "
            + (
                "each checked once in the last interval"
                if r.get("checked_before", True)
                else "never checked (INITIAL only)"
            ),
            "",
            "info",
        ),
        (
            "spawn -> /healthz",
            f"{r['healthz_s']:.2f} s",
            f"<= {GOAL_HEALTHZ_S} s",
            _verdict(r["healthz_s"] <= GOAL_HEALTHZ_S),
        ),
        _restart_checked(r),
        (
            "RSS after start / at end / peak",
            f"{r['rss_healthy'] / MIB:.0f} / {r['rss_end'] / MIB:.0f} / {r['rss_peak'] / MIB:.0f}"
            " MiB",
            f"<= {(RSS_BASE + RSS_PER_SITE * r['sites']) / MIB:.0f} MiB",
            _verdict(r["rss_peak"] <= RSS_BASE + RSS_PER_SITE * r["sites"]),
        ),
        (
            "uptimed CPU from ready until all checked (or the watch ended)",
            f"{r['cpu_pct']:.0f}% of one core; event-loop thread on CPU / waiting for a CPU /"
            f" blocked or idle: {r['loop_thread']['main_on_cpu_pct']:.0f}% /"
            f" {r['loop_thread']['main_runqueue_pct']:.0f}% /"
            f" {r['loop_thread']['main_blocked_or_idle_pct']:.0f}%",
            "",
            "info",
        ),
        ("stop (SIGTERM -> exit)", f"{r['stop']}", "", "info"),
    ]
    return out


@dataclass(frozen=True)
class Figure:
    """One number of a run for the summary over repeats: ``worse`` is the goal's direction
    ("max": higher is worse, "min": lower is worse); ``judge`` gives the verdict on the worst
    value (and all the runs, for goals that depend on the run); None means info."""

    label: str
    get: Callable[[dict], float | None]
    worse: str = "max"
    fmt: str = "{:.0f}"
    goal: Callable[[dict], str] | str = ""
    judge: Callable[[float, list[dict]], str] | None = None


def _held(r: dict) -> bool:
    w = r["window"]
    return w["missed"] == 0 and (w["lateness_ms"]["p99"] or 0) <= GOAL_P99_MS


def _rate_verdict(worst: float, runs: list[dict]) -> str:
    if not all(_held(r) for r in runs):
        return "FAIL"
    rate = min(r["window"]["scheduled_per_s"] for r in runs)
    return "PASS" if rate >= GOAL_RATE else "held, rate < goal"


def _le(goal: float) -> Callable[[float, list[dict]], str]:
    return lambda worst, runs: _verdict(worst <= goal)


def _rss_goal(r: dict) -> float:
    return (
        GOAL_RSS_40K
        if r["config"]["sites"] == 40_000
        else RSS_BASE + RSS_PER_SITE * r["sites_total"]
    )


def _get(*keys: str) -> Callable[[dict], float | None]:
    def get(r: dict) -> float | None:
        v: object = r
        for k in keys:
            if not isinstance(v, dict) or v.get(k) is None:
                return None
            v = v[k]
        return v  # type: ignore[return-value]

    return get


MODE_FIGURES = [
    Figure("checks/s scheduled", _get("window", "scheduled_per_s"), "min"),
    Figure(
        "checks/s done",
        _get("window", "done_per_s"),
        "min",
        goal=f">= {GOAL_RATE} held",
        judge=_rate_verdict,
    ),
    Figure("lateness p50, ms", _get("window", "lateness_ms", "p50")),
    Figure(
        "lateness p99, ms",
        _get("window", "lateness_ms", "p99"),
        goal=f"<= {GOAL_P99_MS}",
        judge=_le(GOAL_P99_MS),
    ),
    Figure("lateness max, ms", _get("window", "lateness_ms", "max")),
    Figure("checks > 500 ms late", _get("window", "late_over_500ms")),
    Figure("missed checks", _get("window", "missed"), goal="0", judge=_le(0)),
    Figure("checks DOWN in window", _get("window", "down"), goal="0", judge=_le(0)),
    Figure("check response time p99, ms", _get("window", "response_time_ms", "p99")),
    Figure("uptimed CPU per check, us (first half)", _get("cpu", "us_per_check")),
    Figure("  event-loop thread, us per check", _get("cpu", "main_us_per_check")),
    Figure("  other threads, us per check", _get("cpu", "other_us_per_check")),
    Figure("uptimed CPU, % of one core", _get("cpu", "pct_of_one_core")),
    Figure(
        "event-loop thread busy, % of one core",
        _get("cpu", "main_pct"),
        goal=f"<= {GOAL_LOOP_BUSY_PCT}",
        judge=_le(GOAL_LOOP_BUSY_PCT),
    ),
    Figure(
        "event-loop thread waiting for a CPU, %",
        _get("cpu", "first_half", "main_runqueue_pct"),
    ),
    Figure("bare CPU per request, same rate, us", _get("bare_paced", "cpu_us_per_request")),
    Figure(
        "ratio CPU/check : bare CPU/request, same run",
        _get("ratio_same_rate"),
        fmt="{:.2f}",
        goal=f"<= {GOAL_RATIO}",
        judge=_le(GOAL_RATIO),
    ),
    Figure("ratio to bare at max speed", _get("ratio_max_speed"), fmt="{:.2f}"),
    Figure(
        "RSS at window end, MiB",
        lambda r: r["memory"]["rss_end"] / MIB,
        goal=lambda r: f"<= {_rss_goal(r) / MIB:.0f}",
        judge=lambda worst, runs: _verdict(worst <= min(_rss_goal(r) for r in runs) / MIB),
    ),
    Figure("RSS peak, MiB", lambda r: r["memory"]["rss_peak"] / MIB),
    Figure(
        "SQLite bytes per history row",
        _get("storage", "bytes_per_row"),
        fmt="{:.1f}",
        goal=f"<= {GOAL_BYTES_PER_ROW}",
        judge=_le(GOAL_BYTES_PER_ROW),
    ),
    Figure("DB growth, MiB/h", _get("growth_mib_per_hour")),
    Figure(
        "API GET /sites/{id} p99, ms",
        _get("api", "site_ms", "p99"),
        goal=f"<= {GOAL_API_P99_MS}",
        judge=_le(GOAL_API_P99_MS),
    ),
    Figure(
        "API GET /sites/{id}/history p99, ms",
        _get("api", "history_ms", "p99"),
        goal=f"<= {GOAL_API_P99_MS}",
        judge=_le(GOAL_API_P99_MS),
    ),
    Figure("GET /healthz p99, ms", _get("api", "healthz_ms", "p99")),
    Figure("API errors", _get("api", "errors")),
    Figure("GET /metrics scrape time p50, ms", _get("metrics_scrape", "ms", "p50")),
    Figure(
        "GET /metrics scrape time max, ms",
        _get("metrics_scrape", "ms", "max"),
        goal=f"<= {GOAL_SCRAPE_MS}",
        judge=_le(GOAL_SCRAPE_MS),
    ),
    Figure("/metrics series (max per scrape)", _get("metrics_scrape", "series_max")),
    Figure(
        "GET /metrics scrapes not answered 200",
        lambda r: (m := r.get("metrics_scrape")) and m["scrapes"] - m["ok"],
        goal="0",
        judge=_le(0),
    ),
    Figure(
        "lateness p99 of checks due during a scrape, ms",
        _get("window", "in_spans", "p99"),
        goal=f"<= {GOAL_P99_MS}",
        judge=_le(GOAL_P99_MS),
    ),
    Figure("start, empty DB: spawn -> /healthz, s", _get("startup", "healthz_s"), fmt="{:.2f}"),
    Figure("create sites as fast as possible, /s", _get("create_burst", "sites_per_s"), "min"),
    Figure("new site: creation -> first check p99, ms", _get("first_check_ms", "p99")),
    Figure(
        "restart: spawn -> /healthz, s",
        _get("restart", "healthz_s"),
        fmt="{:.2f}",
        goal=f"<= {GOAL_HEALTHZ_S} (at 100k)",
        judge=_le(GOAL_HEALTHZ_S),
    ),
    Figure(
        "restart: sites checked on time",
        _get("restart", "on_time"),
        "min",
        goal=lambda r: f"all {r['restart']['sites']}",
        judge=lambda worst, runs: _verdict(worst >= max(r["restart"]["sites"] for r in runs)),
    ),
    Figure(
        "restart: last first-check after spawn, s", _get("restart", "all_checked_s"), fmt="{:.1f}"
    ),
    Figure(
        "target busiest process, % of one core",
        _get("target", "busiest_process_pct"),
        goal="< 80",
        judge=lambda worst, runs: _verdict(worst < 80),
    ),
    Figure("machine CPU, % of one core (2 = 200)", _get("machine_cpu", "all")),
    Figure("  of it: rest (other tenants, kernel)", _get("machine_cpu", "rest")),
    Figure(
        "hung sites DOWN at window end",
        _get("hung", "down_at_end"),
        "min",
        goal=lambda r: f"all {r['hung']['sites']}",
        judge=lambda worst, runs: _verdict(worst >= max(r["hung"]["sites"] for r in runs)),
    ),
    Figure(
        "false alerts (healthy sites DOWN or with an incident)",
        _get("hung", "false_alerts", "sites"),
        goal="0",
        judge=_le(0),
    ),
    Figure('log lines "Too many open files"', _get("hung", "too_many_open_files")),
]


RESTART_BIG_FIGURES = [
    Figure("sites written directly, s", _get("insert_s"), fmt="{:.1f}"),
    Figure(
        "spawn -> /healthz, s",
        _get("healthz_s"),
        fmt="{:.2f}",
        goal=f"<= {GOAL_HEALTHZ_S}",
        judge=_le(GOAL_HEALTHZ_S),
    ),
    Figure(
        "sites checked on time",
        _get("on_time"),
        "min",
        goal=lambda r: f"all {r['sites']}",
        judge=lambda worst, runs: _verdict(worst >= max(r["sites"] for r in runs)),
    ),
    Figure("last first-check after spawn, s", _get("all_checked_s"), fmt="{:.1f}"),
    Figure("RSS after start, MiB", lambda r: r["rss_healthy"] / MIB),
    Figure("RSS at end, MiB", lambda r: r["rss_end"] / MIB),
    Figure(
        "RSS peak, MiB",
        lambda r: r["rss_peak"] / MIB,
        goal=lambda r: f"<= {(RSS_BASE + RSS_PER_SITE * r['sites']) / MIB:.0f}",
        judge=lambda worst, runs: _verdict(
            worst <= min(RSS_BASE + RSS_PER_SITE * r["sites"] for r in runs) / MIB
        ),
    ),
    Figure("uptimed CPU until all checked, % of one core", _get("cpu_pct")),
]


def summary_rows(runs: list[dict], figures: list[Figure] = MODE_FIGURES) -> list[tuple[str, ...]]:
    """``median (worst)`` of each figure over the runs, the verdict judged on the worst."""
    out = []
    for f in figures:
        values = [v for v in (f.get(r) for r in runs) if v is not None]
        if not values:
            continue
        worst = max(values) if f.worse == "max" else min(values)
        median = statistics.median(values)
        missing = f", {len(runs) - len(values)} runs without" if len(values) < len(runs) else ""
        goal = f.goal(runs[0]) if callable(f.goal) else f.goal
        out.append(
            (
                f.label,
                f"{f.fmt.format(median)} ({f.fmt.format(worst)}){missing}",
                goal,
                f.judge(worst, runs) if f.judge else "info",
            )
        )
    return out


def ratio_figures(what: str, goal: float | None) -> list[Figure]:
    """The figures of a comparison's per-run pairs (``kind_ratio``, ``body_contains_ratio``);
    ``goal`` judges the ratio when every run's control proved the check was made."""

    def judge(worst: float, runs: list[dict]) -> str:
        asserted = all(r.get("asserted", True) for r in runs)
        return _verdict(worst <= goal) if goal is not None and asserted else "info"

    return [
        Figure("plain CPU per check, us", _get("plain_us_per_check")),
        Figure(
            f"{what} CPU per check, us",
            lambda c: c.get("kind_us_per_check", c.get("body_us_per_check")),
        ),
        Figure(
            f"ratio {what} : plain",
            _get("ratio"),
            fmt="{:.2f}",
            goal=f"<= {goal}" if goal is not None else "",
            judge=judge if goal is not None else None,
        ),
    ]


SERIES_HEAD = (
    "sites",
    "interval",
    "checks/s sched / done",
    "CPU/check us (loop thread)",
    "ratio to bare",
    "loop busy %",
    "RSS end MiB",
    "lateness p99 ms (sites analysed)",
    "missed",
    "machine %",
)
SERIES_FIGURES = [  # (key, worse, format) of one count's point, for median (worst)
    ("done_per_s", "min", "{:.0f}"),
    ("us_per_check", "max", "{:.0f}"),
    ("main_us_per_check", "max", "{:.0f}"),
    ("ratio_same_rate", "max", "{:.2f}"),
    ("main_pct", "max", "{:.0f}"),
    ("rss_end_mib", "max", "{:.0f}"),
    ("p99", "max", "{:.0f}"),
    ("missed", "max", "{:.0f}"),
    ("machine_pct", "max", "{:.0f}"),
]


def _series_values(p: dict) -> dict[str, float | None]:
    w = p["window"]
    return {
        "done_per_s": p["done_per_s"],
        "us_per_check": p["us_per_check"],
        "main_us_per_check": p["main_us_per_check"],
        "ratio_same_rate": p["ratio_same_rate"],
        "main_pct": p["main_pct"],
        "rss_end_mib": p["rss_end"] / MIB,
        "p99": w["lateness_ms"]["p99"],
        "missed": w["missed"],
        "machine_pct": p["machine_pct"],
    }


def series_rows(points: list[dict]) -> list[tuple[str, ...]]:
    """One row per count of one repetition."""
    out = []
    for p in points:
        v = _series_values(p)
        p99 = "no data" if v["p99"] is None else f"{v['p99']:.0f}"
        out.append(
            (
                f"{p['sites']}",
                f"{p['interval']} s",
                f"{p['rate']:.0f} / {v['done_per_s']:.0f}",
                f"{v['us_per_check']:.0f} ({v['main_us_per_check']:.0f})",
                f"{v['ratio_same_rate']:.2f}",
                f"{v['main_pct']:.0f}",
                f"{v['rss_end_mib']:.0f}",
                f"{p99} ({p['analysed_sites']})",
                f"{v['missed']} of {p['window']['scheduled']}"
                + (f"; {n} sites unchecked" if (n := p.get("unchecked_sites")) else ""),
                f"{v['machine_pct']:.0f}",
            )
        )
    return out


def _mw(values: list[float], worse: str, fmt: str) -> str:
    if not values:
        return "no data"
    worst = max(values) if worse == "max" else min(values)
    return f"{fmt.format(statistics.median(values))} ({fmt.format(worst)})"


def series_summary(series: dict) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]], dict]:
    """Median (worst) per count over the repetitions, and the spread of CPU per check across
    counts (max / min - 1) from the medians and from the worst values."""
    by_count: dict[int, list[dict]] = {}
    for rep in series["repetitions"]:
        for p in rep["points"]:
            by_count.setdefault(p["sites"], []).append(p)
    table, medians, worsts = [], {}, {}
    for count, points in by_count.items():
        vals = [_series_values(p) for p in points]
        cells = {
            key: _mw([v[key] for v in vals if v[key] is not None], worse, fmt)
            for key, worse, fmt in SERIES_FIGURES
        }
        cpu = [v["us_per_check"] for v in vals]
        medians[count], worsts[count] = statistics.median(cpu), max(cpu)
        analysed = min(p["analysed_sites"] for p in points)
        table.append(
            (
                f"{count}",
                f"{points[0]['interval']} s",
                f"{points[0]['rate']:.0f} / {cells['done_per_s']}",
                f"{cells['us_per_check']}, loop {cells['main_us_per_check']}",
                cells["ratio_same_rate"],
                cells["main_pct"],
                cells["rss_end_mib"],
                f"{cells['p99']} (>= {analysed})",
                cells["missed"],
                cells["machine_pct"],
            )
        )
    spread = {
        "from_medians_pct": 100 * (max(medians.values()) / min(medians.values()) - 1),
        "from_worst_pct": 100 * (max(worsts.values()) / min(worsts.values()) - 1),
    }
    goals = [
        (
            f"CPU per check spread across counts (max / min - 1), from the {what}",
            f"{spread[key]:.1f}%",
            f"<= {GOAL_SPREAD_PCT}%",
            _verdict(spread[key] <= GOAL_SPREAD_PCT),
        )
        for key, what in (("from_medians_pct", "medians"), ("from_worst_pct", "worst values"))
    ]
    return table, goals, spread
