"""The reference: a bare aiohttp GET loop, in its own process so its CPU is measured alone.

``python -m benchmarks.bare_client URL --requests N [--rate R] [--keep-alive]`` prints one JSON
object. A ``tcp://host:port`` URL opens and drops a connection per request instead (``--tls``: a
TLS handshake too, verified against the default store, so ``SSL_CERT_FILE`` counts), the
reference for uptimed's TCP probe. With ``--rate`` it starts one task per request on a fixed
schedule (as uptimed starts one job per check); without, ``--concurrency`` workers go as fast
as they can. The session is configured like uptimed's (no connection limit, ``force_close``
unless keep-alive, no cookies), but there is no scheduler, no retry wrapper, no redirect
handling and no database. CPU is the process's CPU time around the loop only (imports and
start-up excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp


async def _loop(args: argparse.Namespace) -> dict[str, object]:
    connector = aiohttp.TCPConnector(limit=0, force_close=not args.keep_alive)
    timeout = aiohttp.ClientTimeout(total=10)
    ok = errors = 0
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout
    ) as session:
        tcp = args.url.startswith("tcp://")
        host, _, port = args.url.removeprefix("tcp://").rpartition(":")
        context = ssl.create_default_context() if args.tls else None
        loop = asyncio.get_running_loop()

        async def one(i: int) -> None:
            nonlocal ok, errors
            try:
                if tcp:
                    async with asyncio.timeout(10):
                        transport, _ = await loop.create_connection(
                            asyncio.Protocol, host, int(port), ssl=context
                        )
                    transport.abort()
                    ok += 1
                    return
                async with session.get(f"{args.url}/{i}") as resp:
                    await resp.read()
                    ok += resp.status == 200
                    errors += resp.status != 200
            except (aiohttp.ClientError, OSError):  # OSError: TimeoutError and refusals
                errors += 1

        deadline = time.monotonic() + args.max_seconds
        cpu0, wall0 = time.process_time(), time.monotonic()
        if args.rate > 0:
            tasks: set[asyncio.Task[None]] = set()
            for i in range(args.requests):
                due = wall0 + i / args.rate
                if due > deadline:
                    break
                if (delay := due - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(one(i))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks, timeout=15)
        else:
            counter = iter(range(args.requests))

            async def worker() -> None:
                for i in counter:
                    if time.monotonic() > deadline:
                        return
                    await one(i)

            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    done = ok + errors
    return {
        "mode": "keep-alive" if args.keep_alive else "new connection per request",
        "url": args.url,
        "rate_target": args.rate or None,
        "requests": done,
        "errors": errors,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "requests_per_s": round(done / wall, 1) if wall else 0.0,
        "cpu_us_per_request": round(1e6 * cpu / done, 1) if done else None,
        "cpu_pct_of_one_core": round(100 * cpu / wall, 1) if wall else 0.0,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url", help="base URL; /<n> is appended so each request has its own path")
    p.add_argument("--requests", type=int, required=True)
    p.add_argument("--rate", type=float, default=0, help="requests/s; 0: as fast as possible")
    p.add_argument("--concurrency", type=int, default=32, help="workers when --rate is 0")
    p.add_argument("--keep-alive", action="store_true")
    p.add_argument("--tls", action="store_true", help="tcp:// URLs: a TLS handshake too")
    p.add_argument("--max-seconds", type=float, default=30, help="stop issuing after this")
    return p.parse_args(argv)


def run(
    url: str,
    *,
    requests: int,
    rate: float,
    keep_alive: bool,
    max_seconds: float,
    tls: bool = False,
    ca_file: Path | None = None,
) -> dict:
    """Run the loop in a child process (bounded by ``max_seconds`` + 30 s) and return its JSON;
    ``ca_file`` is its ``SSL_CERT_FILE``."""
    cmd = [sys.executable, "-m", "benchmarks.bare_client", url, "--requests", str(requests)]
    cmd += ["--rate", str(rate), "--max-seconds", str(max_seconds)]
    cmd += ["--keep-alive"] if keep_alive else []
    cmd += ["--tls"] if tls else []
    env = {**os.environ, "SSL_CERT_FILE": str(ca_file)} if ca_file else None
    out = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        timeout=max_seconds + 30,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(out.stdout)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_loop(parse_args()))))
