"""Issue 14: reloading 1,000 declared sites while the daemon checks.

``python benchmarks/reload.py [--runs 3] [--declared 1000] [--api-sites 200] ...``

Per run (a fresh directory, database and target each time):

1. A local target (``target.py``: nginx, or two aiohttp processes) and the real daemon
   (``uptimed --port P --config FILE``, ``OPTIMISATION=0``: every check is a history row), its
   config file declaring no site yet.
2. ``--api-sites`` sites created through the API, checked every second; ``--warmup`` s.
3. The measured window, four reloads by ``POST /config/reload``, ``--pause`` s apart: the file
   declares ``--declared`` sites (created), then the same sites with another name each
   (renamed: written, not rescheduled), then with another URL each (changed: the heavy case,
   every one rescheduled and checked at once), then none (removed, each one's "Monitoring
   ended" queued for its shared webhook). Each reload's wall time is
   taken from the request's start to its answer (reading the file included), beside the
   time the daemon reports (``seconds``: the transaction and the scheduler moves).
4. After ``--pause`` s more, SIGTERM; the API sites' check lateness in the window is read from
   the SQLite file (``dbstats.window_stats``, each site's grid from its ``created_at``), all of
   it and that of the checks due while a reload ran.

Then the median (worst) over the runs. The goals: each reload <= 2 s; lateness p99 <= 500 ms
(issue 5's goal, README Performance). The JSON goes to ``benchmarks/results/reload-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import dbstats
from benchmarks.daemon import Daemon, api_session, create_sites
from benchmarks.target import Target, free_port

RESULTS = Path(__file__).resolve().parent / "results"
RELOAD_GOAL_S = 2.0
LATENESS_GOAL_MS = 500
HOOK = "http://127.0.0.1:9/api/webhooks/1/reload-bench"  # refused at once: nothing listens
PHASES = ("created", "renamed", "changed", "removed")


def declaration(target: Target, count: int, *, name: str = "a", url: str = "a") -> str:
    """A config file declaring ``count`` sites and one webhook they share; ``name`` and ``url``
    are part of each site's name and URL (a new value changes every site)."""
    parts = [f'[webhooks.team]\nurl = "{HOOK}"\n']
    for i in range(count):
        parts.append(
            f'[[sites]]\nkey = "site-{i}"\nname = "{name}-{i}"\n'
            f'url = "{target.url(f"d{i}")}?v={url}"\n'
            'check_interval_seconds = 300\nwebhooks = ["team"]\n'
        )
    return "\n".join(parts)


async def one_run(args: argparse.Namespace, workdir: Path, run: int) -> dict[str, Any]:
    target = Target(workdir, prefer_nginx=not args.python_target)
    target.start()
    config = workdir / "uptimed.toml"
    config.write_text("# declared sites are written here by the benchmark\n")
    db = workdir / "uptimed.db"
    daemon = Daemon(
        workdir / "daemon",
        db,
        free_port(),
        {"UPTIMED_STARTUP_SPREAD_SECONDS": "1", "DISCORD_GIVE_UP_AFTER_SECONDS": "5"},
    )
    daemon.command += ["--config", str(config)]
    out: dict[str, Any] = {"run": run, "target": target.kind}
    try:
        daemon.start()
        await daemon.wait_healthy(30)
        async with api_session(daemon, 16) as session:
            bodies = [
                {"url": target.url(f"a{i}"), "name": f"a{i}", "check_interval_seconds": 1}
                for i in range(args.api_sites)
            ]
            created = await create_sites(session, bodies)
            if created.errors:
                raise RuntimeError(f"API sites: {created.errors[:3]}")
            ids = (min(created.ids), max(created.ids))
            await asyncio.sleep(args.warmup)
            w0 = int(time.time() * 1000)
            reloads: list[dict[str, Any]] = []
            spans: list[tuple[int, int]] = []
            for phase, text in zip(
                PHASES,
                (
                    declaration(target, args.declared),
                    declaration(target, args.declared, name="b"),
                    declaration(target, args.declared, name="b", url="b"),
                    "# none declared\n",
                ),
                strict=True,
            ):
                config.write_text(text)
                started = time.time()
                async with session.post("/config/reload") as resp:
                    answer = await resp.json()
                ended = time.time()
                if resp.status != 200:
                    raise RuntimeError(f"reload ({phase}): HTTP {resp.status} {answer}")
                spans.append((int(started * 1000), int(ended * 1000)))
                reloads.append({"phase": phase, "wall_s": round(ended - started, 3), **answer})
                print(f"run {run}: {phase}: {reloads[-1]}", file=sys.stderr)
                await asyncio.sleep(args.pause)
            w1 = int(time.time() * 1000)
        out["reloads"] = reloads
        out["stop"] = daemon.stop()
        out["checks"] = dbstats.window_stats(db, ids, 1, w0, w1, grace=2000, spans=spans)
        out["errors_logged"] = daemon.log_lines(" ERROR ", "Traceback")[:5]
    finally:
        daemon.kill()
        target.stop()
    return out


def median_worst(values: list[float], *, worst: Any = max) -> str:
    return f"{statistics.median(values):g} ({worst(values):g})"


def report(runs: list[dict[str, Any]]) -> list[str]:
    lines = [f"{len(runs)} run(s); each figure: median (worst)"]
    for i, phase in enumerate(PHASES):
        wall = [r["reloads"][i]["wall_s"] for r in runs]
        inside = [r["reloads"][i]["seconds"] for r in runs]
        lines.append(
            f"reload, {phase:<7}: wall {median_worst(wall)} s (goal <= {RELOAD_GOAL_S:g} s),"
            f" in the daemon {median_worst(inside)} s"
        )
    checks = [r["checks"] for r in runs]
    p99 = [c["lateness_ms"]["p99"] for c in checks]
    most = [c["lateness_ms"]["max"] for c in checks]
    span_p99 = [c["in_spans"]["p99"] or 0 for c in checks]
    span_max = [c["in_spans"]["max"] or 0 for c in checks]
    missed = [c["missed"] for c in checks]
    lines += [
        f"API sites' checks in the window: {median_worst([c['done'] for c in checks], worst=min)}"
        f" done, missed {median_worst(missed)}",
        f"lateness p99 {median_worst(p99)} ms, max {median_worst(most)} ms"
        f" (goal p99 <= {LATENESS_GOAL_MS} ms)",
        f"lateness of the checks due during a reload: p99 {median_worst(span_p99)} ms,"
        f" max {median_worst(span_max)} ms ({median_worst([c['in_spans']['n'] for c in checks])}"
        " checks)",
    ]
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--declared", type=int, default=1000, help="sites in the config file")
    ap.add_argument("--api-sites", type=int, default=200, help="API sites checked every second")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds before the window")
    ap.add_argument("--pause", type=float, default=4.0, help="seconds after each reload")
    ap.add_argument("--python-target", action="store_true", help="aiohttp even if nginx is here")
    ap.add_argument("--json", type=Path, help="default benchmarks/results/reload-<time>.json")
    return ap.parse_args(argv)


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    runs = []
    for run in range(1, args.runs + 1):
        workdir = Path(tempfile.mkdtemp(prefix="uptimed-reload-", dir="/tmp"))
        runs.append(await one_run(args, workdir, run))
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs = asyncio.run(main_async(args))
    lines = report(runs)
    print("\n".join(lines))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.json or RESULTS / f"reload-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"args": vars(args) | {"json": str(path)}, "runs": runs}, indent=1))
    print(f"JSON: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
