"""Run the issue-5 benchmark: ``python benchmarks/run.py [--quick] [--both-modes] ...``.

One mode (new connection per check, or ``--keep-alive``) runs, in this order:
1. the bare aiohttp loop against the target, at max speed and at the scenario's rate;
2. uptimed on an empty database; a burst of sites (long interval) to measure creation speed;
3. N sites created through the API, paced over whole intervals so their grids are uniform;
4. one interval of warm-up, then the window of T seconds: first half quiet (CPU per check),
   second half with the API probe (latency under load); then one interval of grace;
5. SIGTERM, offline analysis of the SQLite file, and a restart on the same file.
``--body-contains`` runs each mode twice on a 100 KiB answer, plain sites then sites with
``body_contains``, and compares their CPU per check. ``--kinds http,tcp,https,tcp-tls`` runs
one phase per kind of site (plain HTTP first) and compares each one's CPU per check with plain
HTTP's; the TLS kinds use a TLS port of the target with a certificate made at run time.
``--restart-sites`` then measures a restart with that many sites written straight into SQLite.
``--repeat K`` (default 3) runs each phase K times in a row and prints median (worst) of every
figure. ``--hung N`` adds N sites on a server that never answers, uptimed limited to 1024 open
files, and judges the healthy sites alone. ``--series C,C --rate R`` replaces the phases: CPU
per check at R checks/s for each count C of sites written straight into SQLite.
Everything started here is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import procstat, report
from benchmarks.hang import HangServer
from benchmarks.scenario import (
    KINDS,
    TCP_KINDS,
    TLS_KINDS,
    log,
    run_mode,
    run_restart_big,
    run_series,
)
from benchmarks.target import Target, free_port

SUMMARY_HEAD = ("figure", "median (worst)", "goal", "verdict on the worst")
RESULTS = Path(__file__).resolve().parent / "results"
FULL = {"sites": 40_000, "interval": 20, "duration": 600, "burst": 2000, "bare_seconds": 10}
QUICK = {"sites": 5_000, "interval": 10, "duration": 30, "burst": 1000, "bare_seconds": 4}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small run, under 2 minutes per mode")
    p.add_argument("--sites", type=int, help=f"N sites (default {FULL['sites']}; 0: restart only)")
    p.add_argument("--interval", type=int, help=f"check interval, s ({FULL['interval']})")
    p.add_argument("--duration", type=int, help=f"window T, s ({FULL['duration']})")
    p.add_argument(
        "--burst-sites", type=int, help=f"sites for the creation burst ({FULL['burst']})"
    )
    p.add_argument("--bare-seconds", type=float, help="seconds per bare-loop measurement")
    p.add_argument("--keep-alive", action="store_true", help="UPTIMED_KEEP_ALIVE=1 + per site")
    p.add_argument("--both-modes", action="store_true", help="new connection, then keep-alive")
    p.add_argument(
        "--answer-kib",
        type=int,
        metavar="K",
        help="the target answers K KiB of text ending in a marker (default: 'ok\\n';"
        " 100 with --body-contains)",
    )
    p.add_argument(
        "--body-contains",
        action="store_true",
        help="each mode twice on the same answer: plain sites, then sites with"
        " body_contains=<marker>; prints both CPU per check and their ratio",
    )
    p.add_argument(
        "--kinds",
        default="http",
        metavar="K,K",
        help=f"kinds of site, one phase each, plain http first (added if absent): {','.join(KINDS)}"
        "; prints each one's CPU per check and its ratio to plain http. tcp kinds run in the"
        " new-connection mode only",
    )
    p.add_argument(
        "--tls-key",
        choices=("ecdsa", "rsa"),
        default="ecdsa",
        help="key type of the run-time CA and certificate for the TLS kinds (ecdsa: P-256)",
    )
    p.add_argument(
        "--create-intervals", type=int, default=0, help="pace creation over M intervals (0: auto)"
    )
    p.add_argument("--api-rate", type=float, default=20, help="API probe requests/s")
    p.add_argument("--history-limit", type=int, default=100)
    p.add_argument("--restart-sites", type=int, default=0, help="e.g. 100000 (direct SQLite)")
    p.add_argument("--restart-interval", type=int, default=300)
    p.add_argument(
        "--restart-never-checked",
        action="store_true",
        help="direct sites with no check yet (default: each checked once in the last interval)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        metavar="K",
        help="run each phase K times in a row, then print median (worst) of every figure",
    )
    p.add_argument(
        "--hung",
        type=int,
        default=0,
        metavar="N",
        help="N more sites pointing at a hang server (accepts, never answers); every site gets"
        " timeout_seconds 5; the healthy figures leave them out",
    )
    p.add_argument(
        "--nofile-soft",
        type=int,
        metavar="N",
        help="uptimed's RLIMIT_NOFILE soft limit (default 1024 with --hung, else inherited)",
    )
    p.add_argument(
        "--series",
        metavar="C,C",
        help="CPU per check across site counts, e.g. 5000,20000,40000,100000: each count"
        " written straight into SQLite, interval = C / --rate",
    )
    p.add_argument("--rate", type=float, default=1000, help="checks/s of --series (1000)")
    p.add_argument(
        "--series-window",
        type=float,
        default=0,
        metavar="S",
        help="--series window, s (default max(2 x interval, 30))",
    )
    p.add_argument(
        "--scrape-metrics",
        type=float,
        default=0,
        metavar="S",
        help="GET /metrics (basic auth) every S s through the whole window (e.g. 15): scrape"
        " time, series, and the lateness of the checks due during a scrape; off by default"
        " (the scrapes then also fall in the first half, the CPU-per-check half)",
    )
    p.add_argument("--profile", type=int, default=0, metavar="S", help="py-spy S s in window")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="extra uptimed env")
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness for this harness and all it starts (inherited); e.g. -10 as root on a"
        " shared machine so other tenants' work does not starve the measured processes",
    )
    p.add_argument("--uptimed-src", type=Path, help="run uptimed from this tree (PYTHONPATH)")
    p.add_argument("--python-target", action="store_true", help="skip nginx")
    p.add_argument("--json", type=Path, help="default benchmarks/results/<timestamp>.json")
    p.add_argument("--keep-tmp", action="store_true", help="keep databases and logs")
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    args.sites = args.sites if args.sites is not None else preset["sites"]
    args.interval = args.interval or preset["interval"]
    args.duration = args.duration or preset["duration"]
    args.burst_sites = args.burst_sites if args.burst_sites is not None else preset["burst"]
    args.bare_seconds = args.bare_seconds or preset["bare_seconds"]
    if args.answer_kib is None:
        args.answer_kib = 100 if args.body_contains else 0
    if args.answer_kib < 0 or (args.body_contains and args.answer_kib < 1):
        p.error("--answer-kib must be >= 0, and >= 1 with --body-contains (the marker's room)")
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if unknown := [k for k in kinds if k not in KINDS]:
        p.error(f"--kinds: unknown {', '.join(unknown)}; known: {', '.join(KINDS)}")
    args.kinds = ["http", *dict.fromkeys(k for k in kinds if k != "http")]
    if args.keep_alive and not args.both_modes and any(k in TCP_KINDS for k in args.kinds):
        p.error("--kinds: tcp kinds have no keep-alive; drop --keep-alive or use --both-modes")
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    if args.scrape_metrics < 0:
        p.error("--scrape-metrics must be >= 0 (0: off)")
    if args.nofile_soft is None and args.hung:
        args.nofile_soft = 1024
    if args.hung and args.kinds != ["http"]:
        p.error("--hung runs with plain http sites only")
    counts: list[int] = []
    if args.series:
        try:
            counts = [int(c) for c in args.series.split(",") if c.strip()]
        except ValueError:
            p.error("--series: a comma-separated list of site counts")
        if not counts or min(counts) < 1 or args.rate <= 0:
            p.error("--series: counts >= 1 and --rate > 0")
        if min(counts) / args.rate < 1:
            p.error("--series: every interval C / --rate must be at least 1 s")
    args.series = counts
    return args


def phases(args: argparse.Namespace) -> list[tuple[bool, bool, str]]:
    """(keep_alive, body_contains, kind) of each phase, in order: per connection mode, plain
    http, then body_contains, then the other kinds (tcp ones only without keep-alive)."""
    modes = [False, True] if args.both_modes else [args.keep_alive]
    checks = [False, True] if args.body_contains else [False]
    out = []
    for k in modes:
        out += [(k, b, "http") for b in checks]
        out += [(k, False, kind) for kind in args.kinds[1:] if not (k and kind in TCP_KINDS)]
    return out if args.sites and not args.series else []


def print_mode(res: dict, repeat: int = 1) -> None:
    run = f" (run {res['run']} of {repeat})" if repeat > 1 else ""
    print(f"\n## {res['mode']}{run}: uptimed env {res['uptimed_env'] or '{}'}")
    missing = res["create_paced"].get("fields_not_in_answer") or []
    if missing:
        print(f"note: the API answers lack {', '.join(missing)} (not supported by this build?)")
    print(report.format_table(report.rows(res)))
    for line in res.get("hung", {}).get("log_open_file_lines", []):
        print(f"uptimed log: {line}")
    if "profile" in res:
        print_profile(res["profile"])


def summarise(runs: list[dict]) -> dict:
    """Median (worst) of every figure over the K runs of one phase, printed and returned."""
    rows = report.summary_rows(runs)
    print(f"\n## {runs[0]['mode']}: {len(runs)} runs, median (worst)")
    print(report.format_table(rows, SUMMARY_HEAD))
    return {"mode": runs[0]["mode"], "runs": len(runs), "rows": rows}


def summarise_ratios(pairs: list[dict], body: bool) -> list[dict]:
    """Per connection mode (and kind), median (worst) of the per-run ratios."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in pairs:
        groups.setdefault((c["mode"], c.get("kind", "body_contains")), []).append(c)
    out = []
    for (mode, what), group in groups.items():
        if len(group) < 2:
            continue
        goal = report.GOAL_BODY_CONTAINS_RATIO if body else None
        figures = report.ratio_figures(what, goal)
        rows = [(f"{mode}, {what}: {a}", *rest) for a, *rest in report.summary_rows(group, figures)]
        out.append({"mode": mode, "what": what, "runs": len(group), "rows": rows})
    return out


def print_series(series: dict, repeat: int) -> None:
    """Each repetition's table, then median (worst) per count and the CPU-per-check spread."""
    for rep in series["repetitions"]:
        bare = rep["bare"]
        run = f", run {rep['run']} of {repeat}" if repeat > 1 else ""
        print(
            f"\n## series at {series['rate']:.0f} checks/s{run}: bare aiohttp"
            f" {bare['cpu_us_per_request']:.0f} us/request at {bare['requests_per_s']:.0f} req/s"
            f" ({bare['errors']} errors)"
        )
        print(report.format_table(report.series_rows(rep["points"]), report.SERIES_HEAD))
    table, goals, spread = report.series_summary(series)
    series["spread"] = spread
    if repeat > 1:
        print(f"\n## series: {repeat} runs per count, median (worst)")
        print(report.format_table(table, report.SERIES_HEAD))
    print()
    print(report.format_table(goals))


def compare_body_contains(modes: list[dict]) -> list[dict]:
    """Per connection mode (and run), the body_contains phase against the plain one."""
    plain = {(m["connection"], m.get("run", 1)): m for m in modes if is_plain_http(m)}
    pairs = [
        (plain.get((m["connection"], m.get("run", 1))), m) for m in modes if m["body_contains"]
    ]
    return [{**report.body_contains_ratio(p, m), **_run_label(m)} for p, m in pairs if p]


def is_plain_http(res: dict) -> bool:
    return not res["body_contains"] and res.get("kind", "http") == "http"


def compare_kinds(modes: list[dict]) -> list[dict]:
    """Per connection mode (and run), each other kind's phase against the plain http one."""
    plain = {(m["connection"], m.get("run", 1)): m for m in modes if is_plain_http(m)}
    pairs = [
        (plain.get((m["connection"], m.get("run", 1))), m)
        for m in modes
        if m.get("kind", "http") != "http"
    ]
    return [{**report.kind_ratio(p, m), **_run_label(m)} for p, m in pairs if p]


def _run_label(m: dict) -> dict:
    """The run's number, and a label naming it when the phase ran more than once."""
    run = m.get("run", 1)
    repeated = run > 1 or m.get("repeat", 1) > 1
    return {"run": run, **({"label": f"{m['connection']}, run {run}"} if repeated else {})}


def print_profile(prof: dict) -> None:
    for thread, summary in prof["threads"].items():
        print(f"\npy-spy, thread {thread} ({summary['samples']} samples): own time, % of thread")
        rows = 15 if thread == "MainThread" else 5
        for pct, func in summary["own"][:rows]:
            print(f"  {pct:5.1f}%  {func}")
        if thread == "MainThread":
            print("  by total (self + callees; frames in more than 80% of samples left out):")
            for pct, func in [t for t in summary["total"] if t[0] <= 80][:rows]:
                print(f"  {pct:5.1f}%  {func}")
    print(f"profile: {prof['file']} (speedscope.app)")


async def machine_noise(seconds: float) -> str:
    """How busy the machine is before we start: the shared machine's noise floor."""
    m0, p0, t0 = procstat.machine_jiffies(), procstat.all_processes(), time.time()
    await asyncio.sleep(seconds)
    m1, p1, wall = procstat.machine_jiffies(), procstat.all_processes(), time.time() - t0
    busy = procstat.machine_busy_pct(m0, m1)
    others = procstat.busiest_others(p0, p1, wall, {os.getpid()})
    return f"{busy:.0f}% of one core busy ({', '.join(others) or 'idle'})"


async def main_async(args: argparse.Namespace, work: Path) -> dict:
    out: dict = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": report.machine(args.uptimed_src),
    }
    print(f"command: {out['command']}")
    print("machine: " + ", ".join(f"{k}={v}" for k, v in out["machine"].items()))
    out["machine"]["busy_before"] = await machine_noise(2.0)
    print(f"machine before start: {out['machine']['busy_before']}")
    hang: HangServer | None = None
    target = Target(
        work,
        prefer_nginx=not args.python_target,
        answer_kib=args.answer_kib,
        tls=any(k in TLS_KINDS for k in args.kinds),
        tls_key=args.tls_key,
    )
    try:
        target.start()
        out["target"] = {"kind": target.kind, "version": target.version()}
        out["target"]["answer_bytes"] = target.answer_bytes
        print(
            f"target: {target.kind} {out['target']['version']} at {target.base},"
            f" answer {target.answer_bytes} bytes"
        )
        if target.tls_info:
            out["target"]["tls"] = target.tls_info
            tls = target.tls_info
            print(
                f"target TLS: {target.https_base}, {tls['protocol_cipher']}, {args.tls_key}"
                f" certificate from a run-time CA (uptimed gets SSL_CERT_FILE={target.ca_file});"
                f" refused without that CA: {tls['refused_without_ca']}"
            )
        if args.hung and phases(args):
            hang = HangServer(work, free_port())
            hang.start()
            print(f"hang server: http://127.0.0.1:{hang.port} (accepts, never answers)")
        out["modes"], out["summaries"] = [], []
        for keep_alive, body_contains, kind in phases(args):
            name = ("keepalive" if keep_alive else "close") + ("-body" if body_contains else "")
            name += f"-{kind}" if kind != "http" else ""
            runs = []
            for i in range(args.repeat):
                run_dir = work / (name if args.repeat == 1 else f"{name}-{i + 1}")
                res = await run_mode(args, target, run_dir, keep_alive, body_contains, kind, hang)
                res["run"], res["repeat"] = i + 1, args.repeat
                out["modes"].append(res)
                runs.append(res)
                print_mode(res, args.repeat)
            if args.repeat > 1:
                out["summaries"].append(summarise(runs))
        out["body_contains"] = compare_body_contains(out["modes"])
        if out["body_contains"]:
            print("\n## body_contains against plain checks, same answer")
            print(report.format_table(report.body_contains_rows(out["body_contains"])))
            if ratios := summarise_ratios(out["body_contains"], body=True):
                print(f"\n## body_contains : plain, {args.repeat} runs, median (worst)")
                print(report.format_table([r for g in ratios for r in g["rows"]], SUMMARY_HEAD))
                out["body_contains_summary"] = ratios
        out["kinds"] = compare_kinds(out["modes"])
        if out["kinds"]:
            print("\n## kinds of site against plain http, same target")
            print(report.format_table(report.kind_rows(out["kinds"])))
            if ratios := summarise_ratios(out["kinds"], body=False):
                print(f"\n## kinds : plain http, {args.repeat} runs, median (worst)")
                print(report.format_table([r for g in ratios for r in g["rows"]], SUMMARY_HEAD))
                out["kinds_summary"] = ratios
        if args.series:
            out["series"] = await run_series(args, target, work / "series")
            print_series(out["series"], args.repeat)
        if args.restart_sites:
            bigs = []
            for i in range(args.repeat):
                run = f" (run {i + 1} of {args.repeat})" if args.repeat > 1 else ""
                log(f"restart with {args.restart_sites} sites{run}")
                big_dir = work / ("big" if args.repeat == 1 else f"big-{i + 1}")
                bigs.append(await run_restart_big(args, target, big_dir))
                print(
                    f"\n## restart with {args.restart_sites} sites (created directly in SQLite)"
                    + run
                )
                print(report.format_table(report.restart_big_rows(bigs[-1])))
            out["restart_big"] = bigs[0] if args.repeat == 1 else bigs
            if args.repeat > 1:
                rows = report.summary_rows(bigs, report.RESTART_BIG_FIGURES)
                head = f"restart with {args.restart_sites} sites: {len(bigs)} runs"
                print(f"\n## {head}, median (worst)")
                print(report.format_table(rows, SUMMARY_HEAD))
                out["restart_big_summary"] = rows
    finally:
        if hang is not None:
            hang.stop()
        target.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="uptimed-bench-"))
    path = args.json or RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    args.json_path = path

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)  # so `kill` of the harness still cleans up
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # children inherit it
    try:
        out = asyncio.run(main_async(args, work))
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        return 130
    finally:
        if args.keep_tmp:
            log(f"kept {work}")
        else:
            with suppress(OSError):
                shutil.rmtree(work)
    path.write_text(json.dumps(out, indent=2, default=str))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
