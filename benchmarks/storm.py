"""Alert storm through one Discord webhook: ``python benchmarks/storm.py [--sites N] ...``.

uptimed runs as a real process with N sites (checked every second) whose webhooks all share one
URL on a fake Discord that answers 429 past 5 requests per 2 s, as Discord does. Per run:
1. uptimed starts (grouping on, so the N "Monitoring started" messages take seconds, not
   N / 2.5), the sites and their webhooks are created through the API, and every greeting is
   delivered; then uptimed restarts with the window under test (``--windows``, 10 then 0:
   grouping on, then off) and the URL is left idle;
2. the down wave: every site answers 503 from within 2 s; until every site was named DOWN;
3. once the URL is idle again, the recovery wave: every site answers 200 again.
Per wave: the messages Discord accepted, seconds from the flip to the first message and to the
one naming the last site, and the 429s answered. ``--repeat K`` (default 3) runs each window K
times and prints median (worst); the JSON goes to ``benchmarks/results/storm-<time>.json``.

The target and the fake Discord are served by this process (a minimal copy of the bucket in
tests/fake_discord.py: the benchmarks import nothing from the tests); uptimed is stopped on
exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web

from benchmarks.daemon import Daemon, api_session
from benchmarks.scenario import log
from benchmarks.target import free_port

RESULTS = Path(__file__).resolve().parent / "results"
LIMIT, WINDOW = 5, 2.0  # Discord's per-webhook bucket: 5 requests per 2 s
FLIP_STEPS, FLIP_SPREAD = 8, 1.5  # every site flips within 2 s
SETUP_WINDOW = 10  # the grouping window while the greetings go out
WEBHOOK = "/api/v10/webhooks/123456789012345678/storm-token"
_NAME = re.compile(r"storm (\d+)\.")
_ESCAPE = re.compile(r"\\(.)")


# --- the fake Discord and the target ---------------------------------------------------------


@dataclass
class Answered:
    at: float  # time.monotonic() on arrival
    status: int
    body: Any


@dataclass
class FakeDiscord:
    """Execute-webhook with Discord's fixed 5-per-2 s bucket: 204 with X-RateLimit-* headers,
    429 with ``retry_after`` once the bucket is full."""

    answered: list[Answered] = field(default_factory=list)
    started: float = -math.inf
    count: int = 0

    async def execute(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        body = await request.json()
        if now - self.started >= WINDOW:
            self.started, self.count = now, 0
        reset_after = self.started + WINDOW - now
        if self.count >= LIMIT:
            self.answered.append(Answered(now, 429, body))
            headers = {
                "Retry-After": str(math.ceil(reset_after)),
                "X-RateLimit-Limit": str(LIMIT),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Scope": "user",
            }
            answer = {
                "message": "You are being rate limited.",
                "retry_after": round(reset_after, 3),
            }
            return web.json_response({**answer, "global": False}, status=429, headers=headers)
        self.count += 1
        self.answered.append(Answered(now, 204, body))
        headers = {
            "X-RateLimit-Limit": str(LIMIT),
            "X-RateLimit-Remaining": str(LIMIT - self.count),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": "storm",
        }
        return web.Response(status=204, headers=headers)


@dataclass
class Servers:
    discord: FakeDiscord
    statuses: dict[str, int]
    runner: web.AppRunner
    base: str

    def site_url(self, i: int, width: int) -> str:
        return f"{self.base}/storm/{i:0{width}d}"


async def serve() -> Servers:
    discord, statuses = FakeDiscord(), {}

    async def site(request: web.Request) -> web.Response:
        return web.Response(status=statuses.get(request.match_info["i"], 200), text="storm")

    app = web.Application()
    app.router.add_post("/api/v10/webhooks/{id}/{token}", discord.execute)
    app.router.add_get("/storm/{i}", site)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return Servers(discord, statuses, runner, f"http://127.0.0.1:{port}")


# --- reading the messages --------------------------------------------------------------------


def named(body: Any, kind: str) -> list[int]:
    """The sites a message names as ``kind`` (DOWN or UP): in a single-event embed's title,
    or in a grouped embed's description line (by its emoji)."""
    emoji = "🔴" if kind == "DOWN" else "🟢"
    sites = []
    for embed in body.get("embeds") or []:
        title = _ESCAPE.sub(r"\1", embed.get("title") or "")
        if _NAME.search(title):
            if title.startswith(emoji) and title.endswith(f" is {kind}"):
                sites += [int(n) for n in _NAME.findall(title)]
            continue
        for line in (embed.get("description") or "").splitlines():
            plain = _ESCAPE.sub(r"\1", line)
            if plain.startswith(emoji) and "started" not in plain:
                sites += [int(n) for n in _NAME.findall(plain)]
    return sites


@dataclass
class Wave:
    messages: int = 0
    first_s: float | None = None  # from the flip to the first message naming a site
    last_named_s: float | None = None  # from the flip to the message naming the last site
    named: int = 0
    named_again: int = 0  # a site named a second time in the wave: a duplicate
    rate_limited: int = 0  # 429s answered from the flip until the next wave

    def figures(self) -> dict[str, Any]:
        keys = ("messages", "first_s", "last_named_s", "named", "named_again")
        return {k: getattr(self, k) for k in keys} | {"429s": self.rate_limited}


def wave(discord: FakeDiscord, kind: str, flip: float, until: float, sites: int) -> Wave:
    out, seen = Wave(), set()
    for a in discord.answered:
        if not flip <= a.at < until:
            continue
        if a.status == 429:
            out.rate_limited += 1
            continue
        got = named(a.body, kind)
        if not got:
            continue
        out.messages += 1
        if out.first_s is None:
            out.first_s = a.at - flip
        new = set(got) - seen
        out.named_again += len(got) - len(new)
        seen |= new
        if new and len(seen) == sites:
            out.last_named_s = a.at - flip
    out.named = len(seen)
    return out


# --- one run ---------------------------------------------------------------------------------


async def flip(servers: Servers, sites: int, width: int, status: int) -> float:
    started = time.monotonic()
    keys = [f"{i:0{width}d}" for i in range(sites)]
    for step in range(FLIP_STEPS):
        for key in keys[step::FLIP_STEPS]:
            servers.statuses[key] = status
        if step < FLIP_STEPS - 1:
            await asyncio.sleep(FLIP_SPREAD / (FLIP_STEPS - 1))
    return started


async def until(what: str, predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:g}s")
        await asyncio.sleep(0.2)


async def settle(daemon: Daemon, discord: FakeDiscord, status: str, idle: float) -> None:
    """Every site ``status``, nothing pending, and the URL idle for ``idle`` seconds."""
    async with api_session(daemon, 4) as s:

        async def sites_are() -> bool:
            async with s.get("/sites") as r:
                return r.status == 200 and all(x["status"] == status for x in await r.json())

        async def nothing_pending() -> bool:
            async with s.get("/webhooks") as r:
                return r.status == 200 and all(h["pending"] == 0 for h in await r.json())

        await until(f"every site {status}", sites_are, 60)
        await until("nothing pending", nothing_pending, 600)

    async def quiet() -> bool:
        last = discord.answered[-1].at if discord.answered else -math.inf
        return time.monotonic() - last >= idle

    await until("the URL idle", quiet, idle + 60)


async def create(daemon: Daemon, servers: Servers, sites: int, width: int) -> None:
    async with api_session(daemon, 16) as s:
        queue = iter(range(sites))

        async def worker() -> None:
            for i in queue:
                body = {
                    "url": servers.site_url(i, width),
                    "name": f"storm {i:0{width}d}.",
                    "check_interval_seconds": 1,
                }
                async with s.post("/sites", json=body) as r:
                    site = await r.json()
                    if r.status != 200:
                        raise RuntimeError(f"POST /sites: {r.status} {site}")
                hook = {"site_id": site["id"], "discord_webhook_url": servers.base + WEBHOOK}
                async with s.post("/webhooks", json=hook) as r:
                    if r.status != 200:
                        raise RuntimeError(f"POST /webhooks: {r.status} {await r.text()}")

        await asyncio.gather(*(worker() for _ in range(16)))


async def run_once(args: argparse.Namespace, window: float, workdir: Path) -> dict[str, Any]:
    servers = await serve()
    width = max(3, len(str(args.sites - 1)))
    env = {"UPTIMED_STARTUP_SPREAD_SECONDS": "1", "UPTIMED_DISCORD_TIMEOUT_SECONDS": "10"}
    daemon = Daemon(workdir, workdir / "uptimed.db", free_port(), env)
    try:
        daemon.env["UPTIMED_ALERT_GROUP_WINDOW_SECONDS"] = str(SETUP_WINDOW)
        daemon.start()
        await daemon.wait_healthy(30)
        await create(daemon, servers, args.sites, width)
        await settle(daemon, servers.discord, "UP", 0)
        await asyncio.to_thread(daemon.stop)
        daemon.env["UPTIMED_ALERT_GROUP_WINDOW_SECONDS"] = f"{window:g}"
        daemon.start()
        await daemon.wait_healthy(30)
        idle = max(window, WINDOW) + 0.5  # the URL idle as uptimed sees it, the bucket empty
        await settle(daemon, servers.discord, "UP", idle)
        log(f"window {window:g}: {args.sites} sites UP, greetings delivered; the down wave")

        down_flip = await flip(servers, args.sites, width, 503)
        await settle(daemon, servers.discord, "DOWN", idle)
        log(f"window {window:g}: the recovery wave")
        up_flip = await flip(servers, args.sites, width, 200)
        await settle(daemon, servers.discord, "UP", idle)
        end = time.monotonic()
    finally:
        await asyncio.to_thread(daemon.stop)
        await servers.runner.cleanup()
    d = servers.discord
    down = wave(d, "DOWN", down_flip, up_flip, args.sites)
    up = wave(d, "UP", up_flip, end, args.sites)
    return {"window": window, "down": down.figures(), "up": up.figures()}


# --- the report ------------------------------------------------------------------------------

ROWS = [  # (wave, figure, label, format)
    ("down", "messages", "down wave: messages", "{:.0f}"),
    ("down", "first_s", "down wave: flip -> first message, s", "{:.2f}"),
    ("down", "last_named_s", "down wave: flip -> last site named, s", "{:.2f}"),
    ("down", "named_again", "down wave: sites named twice", "{:.0f}"),
    ("down", "429s", "down wave: 429s answered", "{:.0f}"),
    ("up", "messages", "recovery: messages", "{:.0f}"),
    ("up", "first_s", "recovery: flip -> first message, s", "{:.2f}"),
    ("up", "last_named_s", "recovery: flip -> last site named, s", "{:.2f}"),
    ("up", "named_again", "recovery: sites named twice", "{:.0f}"),
    ("up", "429s", "recovery: 429s answered", "{:.0f}"),
]


def cell(runs: Sequence[dict[str, Any]], part: str, key: str, fmt: str) -> str:
    values = [r[part][key] for r in runs]
    if any(v is None for v in values):  # a wave that never named every site
        return "not all named"
    text = fmt.format(statistics.median(values))
    return text if len(values) == 1 else f"{text} ({fmt.format(max(values))})"


def table(args: argparse.Namespace, results: dict[float, list[dict[str, Any]]]) -> str:
    heads = ["figure", *(f"window {w:g}" + (" (off)" if w == 0 else "") for w in results)]
    rows = [heads]
    for part, key, label, fmt in ROWS:
        rows.append([label, *(cell(runs, part, key, fmt) for runs in results.values())])
    widths = [max(len(r[i]) for r in rows) for i in range(len(heads))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    what = "median (worst)" if args.repeat > 1 else "one run"
    return f"{args.sites} sites on one webhook, 5 requests / 2 s; {what} of {args.repeat}\n" + (
        "\n".join(lines)
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sites", type=int, default=200, help="sites on the one webhook (200)")
    p.add_argument(
        "--windows",
        default="10,0",
        help="alert_group_window_seconds values to run, comma-separated (10,0: on, then off)",
    )
    p.add_argument("--repeat", type=int, default=3, help="runs per window (3): median (worst)")
    p.add_argument("--json", type=Path, help="where the JSON goes (benchmarks/results/...)")
    args = p.parse_args(argv)
    args.windows = [float(w) for w in args.windows.split(",")]
    if args.sites < 1 or args.repeat < 1:
        p.error("--sites and --repeat must be at least 1")
    return args


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results: dict[float, list[dict[str, Any]]] = {w: [] for w in args.windows}
    with tempfile.TemporaryDirectory(prefix="uptimed-storm-") as tmp:
        for window in args.windows:
            for k in range(args.repeat):
                log(f"window {window:g}: run {k + 1} of {args.repeat}")
                run = await run_once(args, window, Path(tmp) / f"w{window:g}-{k}")
                log(f"window {window:g}: {json.dumps(run)}")
                results[window].append(run)
    print(table(args, results))
    path = args.json or RESULTS / f"storm-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    out = {"sites": args.sites, "repeat": args.repeat, "runs": results}
    path.write_text(json.dumps({**out, "argv": sys.argv}, indent=2, default=str))
    log(f"JSON: {path}")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
